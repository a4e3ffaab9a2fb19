//! Mutations of a valid copy with every checksum recomputed afterwards, so that the
//! fuzzer reaches the field checks behind the CRCs: decode never panics, and what
//! decodes round-trips.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use remap_core::crc;
use remap_core::layout::COPY_MAX_BYTES;
use remap_core::meta::*;
use remap_core::remap_table::Entry;
use remap_core::units::BlockSize;
use std::sync::OnceLock;

fn seed() -> &'static [u8] {
    static SEED: OnceLock<Vec<u8>> = OnceLock::new();
    SEED.get_or_init(|| {
        let bs = BlockSize::from_bytes(4096).unwrap();
        let spares = [
            spare_info([7; 16], 1 << 20, 512, bs, 0),
            spare_info([8; 16], 1 << 19, 4096, bs, 1),
        ];
        let mut entries: Vec<Entry> = (0..40u64)
            .map(|i| match i % 4 {
                0 => Entry::pending(i * 5),
                1 => Entry {
                    lost: [0b1010, 0],
                    ..Entry::remapped(i * 5, (i % 2) as u8, i)
                },
                _ => Entry::remapped(i * 5, (i % 2) as u8, i),
            })
            .collect();
        // Two runs (one with lost sectors in it), so that mutations reach the runs.
        entries.extend((0..6u64).map(|i| Entry::remapped(250 + i, 0, 500 + i)));
        entries.extend((0..3u64).map(|i| Entry::remapped(300 + i, 1, 600 + i)));
        entries[42].lost = [1, 0];
        // Second copies (`redundancy 2`), so that mutations reach their section: on a
        // run, and on singles of either spare.
        for (i, e) in entries.iter_mut().enumerate() {
            if e.state == remap_core::remap_table::REMAPPED && i % 3 != 2 {
                e.mirror = 1 - e.spare;
                e.mirror_block = 1000 + i as u64;
            }
        }
        let st = State {
            uuid: [3; 16],
            version: 77,
            fingerprint: Fingerprint {
                main_sectors: 1 << 22,
                logical_block_bytes: 512,
                physical_block_bytes: 4096,
                identity: [0; IDENTITY_LEN],
            },
            config: Config {
                block_bytes: 4096,
                read_retries: 1,
                target_sectors: 1 << 21,
                flags: CONFIG_FLAG_REDUNDANCY,
                scan_interval_s: 60,
                scan_rate_kibs: 0,
                predict_interval_s: 0,
                alert_min_level: 0,
            },
            spares: &spares,
            entries: &entries,
            scan: ScanCheckpoint {
                cursor_block: 9,
                passes: 1,
                last_pass_end_s: 0,
            },
        };
        let mut buf = vec![0u8; COPY_MAX_BYTES];
        let n = encode(&st, 0, &mut buf).unwrap();
        buf.truncate(n);
        buf
    })
}

fn rd32(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

fn reseal(buf: &mut [u8]) -> Option<()> {
    let total = (rd32(buf, 16)? as usize).min(buf.len());
    let mut off = HEADER_LEN;
    for _ in 0..rd32(buf, 20)?.min(64) {
        let kind = u16::from_le_bytes(buf.get(off..off + 2)?.try_into().ok()?);
        let len = rd32(buf, off + 4)? as usize;
        let p = off + SECTION_HEADER_LEN;
        let c = crc::salted(section_salt(kind), buf.get(p..p.checked_add(len)?)?);
        buf.get_mut(off + 8..off + 12)?
            .copy_from_slice(&c.to_le_bytes());
        off = p.checked_add(len.checked_next_multiple_of(8)?)?;
    }
    let body = crc::salted(SALT_BODY, buf.get(HEADER_LEN..total)?);
    buf.get_mut(56..60)?.copy_from_slice(&body.to_le_bytes());
    let h = crc::salted(SALT_HEADER, buf.get(..HEADER_LEN - 4)?);
    buf.get_mut(HEADER_LEN - 4..HEADER_LEN)?
        .copy_from_slice(&h.to_le_bytes());
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let mut buf = seed().to_vec();
    // Each 3 input bytes: a 16-bit offset into the copy and a byte to XOR there.
    for m in data.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([m[0], m[1]])) % buf.len();
        buf[at] ^= m[2];
    }
    let _ = reseal(&mut buf);
    if let Ok(d) = decode(&buf, 0) {
        common::round_trip(&d);
    }
});
