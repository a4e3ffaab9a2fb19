//! Shared by the fuzz targets: the round-trip oracle, and the judge on whatever decodes.

use remap_core::judge::{judge_against, judge_state, Expect, SpareDev};
use remap_core::layout::COPY_MAX_BYTES;
use remap_core::meta::{decode, encode, Decoded, SpareInfo, State};
use remap_core::remap_table::Entry;

/// For a copy that decodes: encoding its state again gives a copy that decodes to
/// the same state (decode ∘ encode = id on valid states).
pub fn round_trip(d: &Decoded<'_>) {
    // Runs may stand for billions of blocks: expand only what a real map could hold.
    if d.counts().0 > 1 << 20 {
        judge(d);
        return;
    }
    // A format 1 copy records no spare block size; its upgrade takes the device's.
    let spares: Vec<SpareInfo> = (0..d.spare_count())
        .map(|i| d.spare(i).expect("spare"))
        .map(|s| SpareInfo {
            logical_block_bytes: if s.logical_block_bytes == 0 {
                512
            } else {
                s.logical_block_bytes
            },
            ..s
        })
        .collect();
    let entries: Vec<Entry> = d.entries().collect();
    let st = State {
        uuid: d.uuid,
        version: d.version,
        fingerprint: d.fingerprint,
        config: d.config,
        spares: &spares,
        entries: &entries,
        scan: d.scan,
    };
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    let n = match encode(&st, d.copy_sector, &mut buf) {
        Ok(n) => n,
        Err(_) => {
            // decode checks that a copy is ours and intact; the range rules live in the
            // judge, and encode refuses what breaks them: the judge must refuse it too.
            // Each spare's part sized from its record.
            let words = remap_core::judge::bitmap_words(d, |_| None);
            if words <= 1 << 20 {
                let mut bm = vec![0u64; words as usize];
                assert!(
                    judge_state(d, &mut bm).is_err(),
                    "encode refuses a state the judge accepts"
                );
            }
            return;
        }
    };
    let e = decode(&buf[..n], d.copy_sector).expect("an encoded state decodes");
    assert_eq!(e.uuid, d.uuid);
    assert_eq!(e.version, d.version);
    assert_eq!(e.fingerprint, d.fingerprint);
    assert_eq!(e.config, d.config);
    assert_eq!(e.scan, d.scan);
    assert!(e.entries().eq(d.entries()));
    assert!((0..d.spare_count()).all(|i| e.spare(i) == Some(spares[i])));
    judge(d);
}

/// The judge never panics on a decoded state, whatever bitmap it gets, and a state it
/// accepts marks exactly its remapped entries and their second copies.
fn judge(d: &Decoded<'_>) {
    for words in [0usize, 1, 4096] {
        let mut bm = vec![0u64; words];
        if let Ok(per_spare) = judge_state(d, &mut bm) {
            let used: u64 = per_spare.iter().sum();
            let marked: u64 = bm.iter().map(|w| u64::from(w.count_ones())).sum();
            assert_eq!(used, marked);
            assert_eq!(used as usize, d.counts().0 + d.mirrors().count());
        }
    }
    let id = d.fingerprint.identity;
    let devs: Vec<SpareDev> = (0..d.spare_count())
        .filter_map(|i| d.spare(i))
        .map(|s| SpareDev {
            sectors: s.sectors,
            lbs: s.logical_block_bytes,
        })
        .collect();
    let _ = judge_against(
        d,
        &Expect {
            uuid: Some(d.uuid),
            main_sectors: d.fingerprint.main_sectors,
            main_lbs: d.fingerprint.logical_block_bytes,
            main_pbs: d.fingerprint.physical_block_bytes,
            identity: &id,
            block_bytes: d.config.block_bytes,
            target_sectors: d.config.target_sectors,
            spares: &devs,
        },
    );
}
