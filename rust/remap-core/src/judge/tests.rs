//! Every verdict of the judge, each from a state that breaks exactly one rule and is
//! otherwise valid (encoded with valid checksums, so decode accepts it).

use super::super::layout::COPY_MAX_BYTES;
use super::super::meta::identity::{
    identity_from_partuuid, identity_from_unique_id, IDENTITY_NONE,
};
use super::super::meta::{
    decode, encode, spare_info, Config, Fingerprint, ScanCheckpoint, SpareInfo, State,
};
use super::super::remap_table::Entry;
use super::*;

const UUID: [u8; 16] = *b"setup-uuid-00001";
const MAIN: u64 = 1 << 21;
/// 1000 data blocks of 4 KiB after the metadata area.
const SPARE: u64 = 9216 + 8 * 1000;

/// An owned state to encode.
#[derive(Clone)]
struct S {
    fingerprint: Fingerprint,
    config: Config,
    spares: Vec<SpareInfo>,
    entries: Vec<Entry>,
    scan: ScanCheckpoint,
}

fn bs(bytes: u32) -> BlockSize {
    BlockSize::from_bytes(u64::from(bytes)).unwrap()
}

fn naa() -> [u8; IDENTITY_LEN] {
    identity_from_unique_id(3, &[0x50, 0x00, 0xc5, 0x00, 0xa1, 0xb2, 0xc3, 0xd4]).unwrap()
}

fn valid() -> S {
    S {
        fingerprint: Fingerprint {
            main_sectors: MAIN,
            logical_block_bytes: 512,
            physical_block_bytes: 4096,
            identity: naa(),
        },
        config: Config {
            block_bytes: 4096,
            read_retries: 1,
            target_sectors: MAIN,
            flags: 0,
            scan_interval_s: 0,
            scan_rate_kibs: 0,
            predict_interval_s: 0,
            alert_min_level: 0,
        },
        spares: vec![spare_info(*b"spare-uuid-00001", SPARE, 512, bs(4096), 0)],
        entries: vec![
            Entry::remapped(5, 0, 0),
            Entry::pending(9),
            Entry {
                lost: [0b1000_0001, 0],
                ..Entry::remapped(70, 0, 1)
            },
            Entry::remapped(1000, 0, 999),
        ],
        scan: ScanCheckpoint {
            cursor_block: 100,
            passes: 1,
            last_pass_end_s: 0,
        },
    }
}

impl S {
    fn encoded(&self) -> Vec<u8> {
        let st = State {
            uuid: UUID,
            version: 7,
            fingerprint: self.fingerprint,
            config: self.config,
            spares: &self.spares,
            entries: &self.entries,
            scan: self.scan,
        };
        let mut buf = vec![0u8; COPY_MAX_BYTES];
        let n = encode(&st, 0, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    /// judge_state with a bitmap sized from a spare device of `spare` sectors.
    /// (the first spare's device; the others as recorded). The total used blocks.
    fn judge_on(&self, spare: u64) -> Result<u64, Verdict> {
        let buf = self.encoded();
        let d = decode(&buf, 0).expect("decode accepts every test state");
        let words = bitmap_words(&d, |i| (i == 0).then_some(spare));
        let mut bm = vec![u64::MAX; words as usize];
        judge_state(&d, &mut bm).map(|u| u.iter().sum())
    }

    fn judge(&self) -> Result<u64, Verdict> {
        self.judge_on(self.spares.first().map_or(SPARE, |s| s.sectors))
    }

    fn against(&self, e: &Expect<'_>) -> Result<(), Verdict> {
        let buf = self.encoded();
        judge_against(&decode(&buf, 0).unwrap(), e)
    }
}

fn with(f: impl FnOnce(&mut S)) -> S {
    let mut s = valid();
    f(&mut s);
    s
}

#[test]
fn a_valid_state_is_accepted_and_its_blocks_marked() {
    let s = valid();
    assert_eq!(s.judge(), Ok(3));
    let buf = s.encoded();
    let d = decode(&buf, 0).unwrap();
    assert_eq!(spare_data_blocks(&d).map(|n| n[0]), Ok(1000));
    assert_eq!(bitmap_words(&d, |_| Some(SPARE)), 16);
    assert_eq!(bitmap_words(&d, |_| None), 16);
    let mut bm = vec![u64::MAX; 16];
    assert_eq!(judge_state(&d, &mut bm).map(|u| u[0]), Ok(3));
    assert_eq!(bm[0], 0b11);
    assert_eq!(bm[15], 1 << (999 % 64));
    assert!(bm[1..15].iter().all(|&w| w == 0));
    // Edges that are still valid: the last block of the target, the last spare block,
    // the scan cursor at the end of the target, no identity, lost sectors up to the
    // block's last sector.
    let s = with(|s| {
        s.entries = vec![Entry {
            lost: [0xff, 0],
            ..Entry::remapped(MAIN / 8 - 1, 0, 999)
        }];
        s.scan.cursor_block = MAIN / 8;
        s.fingerprint.identity = IDENTITY_NONE;
    });
    assert_eq!(s.judge(), Ok(1));
    let s = with(|s| s.fingerprint.identity = identity_from_partuuid(&[7; 16]));
    assert_eq!(s.judge(), Ok(3));
}

#[test]
fn spare_count() {
    // A second spare with the first one's UUID.
    let s = with(|s| {
        s.spares
            .push(spare_info(*b"spare-uuid-00001", SPARE, 512, bs(4096), 1))
    });
    assert_eq!(s.judge(), Err(Verdict::SpareCount));
    let s = with(|s| {
        s.spares.clear();
        s.entries
            .retain(|e| e.state != crate::remap_table::REMAPPED);
    });
    assert_eq!(s.judge_on(SPARE), Err(Verdict::SpareCount));
}

/// A pool of three spares of different sizes: each spare's blocks are marked in its
/// own part of the bitmap, and the rules hold per spare.
#[test]
fn a_pool_of_spares() {
    const SMALL: u64 = 9216 + 8 * 10;
    const BIG: u64 = 9216 + 8 * 2000;
    let pool = |s: &mut S| {
        s.spares.push(spare_info([2; 16], SMALL, 4096, bs(4096), 1));
        s.spares.push(spare_info([3; 16], BIG, 512, bs(4096), 2));
        s.entries.push(Entry::remapped(100, 1, 9));
        s.entries.push(Entry::remapped(101, 2, 1999));
        s.entries.push(Entry::remapped(102, 2, 0));
        s.entries.sort_by_key(|e| e.block);
    };
    let s = with(pool);
    assert_eq!(s.judge(), Ok(6));
    let buf = s.encoded();
    let d = decode(&buf, 0).unwrap();
    assert_eq!(
        spare_data_blocks(&d).map(|n| [n[0], n[1], n[2], n[3]]),
        Ok([1000, 10, 2000, 0])
    );
    let words = bitmap_words(&d, |_| None);
    assert_eq!(words, 16 + 1 + 32);
    assert_eq!(pool_offsets(&[1000, 10, 2000])[..4], [0, 16, 17, 49]);
    let mut bm = vec![u64::MAX; words as usize];
    let used = judge_state(&d, &mut bm).unwrap();
    assert_eq!(used[..3], [3, 1, 2]);
    assert_eq!(bm[16], 1 << 9);
    assert_eq!((bm[17], bm[48]), (1, 1 << (1999 % 64)));
    // A spare beyond the list, a block beyond the small spare, the same block of one
    // spare twice; the same block number on two spares is fine.
    let s = with(|s| {
        pool(s);
        s.entries.push(Entry::remapped(103, 3, 0));
        s.entries.sort_by_key(|e| e.block);
    });
    assert_eq!(s.judge(), Err(Verdict::SpareIndex));
    let s = with(|s| {
        pool(s);
        s.entries.push(Entry::remapped(103, 1, 10));
        s.entries.sort_by_key(|e| e.block);
    });
    assert_eq!(s.judge(), Err(Verdict::BeyondSpare));
    let s = with(|s| {
        pool(s);
        s.entries.push(Entry::remapped(103, 2, 1999));
        s.entries.sort_by_key(|e| e.block);
    });
    assert_eq!(s.judge(), Err(Verdict::SharedSpareBlock));
    let s = with(|s| {
        pool(s);
        s.entries.push(Entry::remapped(103, 1, 0));
        s.entries.sort_by_key(|e| e.block);
    });
    assert_eq!(s.judge(), Ok(7));
    // A bitmap one word short of the last spare.
    let s = with(pool);
    let buf = s.encoded();
    let d = decode(&buf, 0).unwrap();
    let mut bm = vec![0; words as usize - 1];
    assert_eq!(
        judge_state(&d, &mut bm),
        Err(Verdict::SpareLargerThanDevice)
    );
    // Against the devices: one per record, in list order.
    let devs = [
        SpareDev {
            sectors: SPARE,
            lbs: 512,
        },
        SpareDev {
            sectors: SMALL,
            lbs: 4096,
        },
        SpareDev {
            sectors: BIG,
            lbs: 512,
        },
    ];
    let e = |d: &'static [SpareDev]| Expect {
        spares: d,
        ..expect(&IDENTITY_NONE)
    };
    let s = with(|s| {
        pool(s);
        s.fingerprint.identity = IDENTITY_NONE;
    });
    let leak: &'static [SpareDev] = Box::leak(Box::new(devs));
    assert_eq!(s.against(&e(leak)), Ok(()));
    assert_eq!(s.against(&e(&leak[..2])), Err(Verdict::SpareCount));
    let swapped: &'static [SpareDev] = Box::leak(Box::new([devs[1], devs[0], devs[2]]));
    assert_eq!(s.against(&e(swapped)), Err(Verdict::SpareSize));
    // A record the state holds lost: any device stands in for it (here one of another
    // size and block size); the other records are still checked.
    let s = with(|s| {
        pool(s);
        s.fingerprint.identity = IDENTITY_NONE;
        s.spares[1].state = SPARE_FAILED;
    });
    let standin: &'static [SpareDev] = Box::leak(Box::new([
        devs[0],
        SpareDev {
            sectors: 8,
            lbs: 512,
        },
        devs[2],
    ]));
    assert_eq!(s.against(&e(standin)), Ok(()));
    let wrong: &'static [SpareDev] = Box::leak(Box::new([devs[2], devs[1], devs[0]]));
    assert_eq!(s.against(&e(wrong)), Err(Verdict::SpareSize));
}

#[test]
fn spare_geometry() {
    let s = with(|s| s.spares[0].data_blocks += 1);
    assert_eq!(s.judge(), Err(Verdict::SpareGeometry));
    let s = with(|s| s.spares[0].data_start += 8);
    assert_eq!(s.judge(), Err(Verdict::SpareGeometry));
    let s = with(|s| s.spares[0].sectors += 8);
    assert_eq!(s.judge(), Err(Verdict::SpareGeometry));
    // Consistent but without a single data block.
    let s = with(|s| {
        s.spares[0] = spare_info([1; 16], 9216 + 7, 512, bs(4096), 0);
        s.entries.clear();
    });
    assert_eq!(s.spares[0].data_blocks, 0);
    assert_eq!(s.judge(), Err(Verdict::SpareGeometry));
}

#[test]
fn target_geometry() {
    let s = with(|s| {
        s.config.target_sectors = 0;
        s.entries.clear();
        s.scan.cursor_block = 0;
    });
    assert_eq!(s.judge(), Err(Verdict::TargetGeometry));
    let s = with(|s| s.config.target_sectors = MAIN - 4);
    assert_eq!(s.judge(), Err(Verdict::TargetGeometry));
    let s = with(|s| s.config.target_sectors = MAIN + 8);
    assert_eq!(s.judge(), Err(Verdict::TargetGeometry));
}

#[test]
fn bad_identity() {
    let s = with(|s| {
        s.fingerprint.identity = IDENTITY_NONE;
        s.fingerprint.identity[..6].copy_from_slice(b"disk-7");
    });
    assert_eq!(s.judge(), Err(Verdict::BadIdentity));
    let s = with(|s| s.fingerprint.identity[31] = 1);
    assert_eq!(s.judge(), Err(Verdict::BadIdentity));
}

#[test]
fn scan_beyond_target() {
    let s = with(|s| s.scan.cursor_block = MAIN / 8 + 1);
    assert_eq!(s.judge(), Err(Verdict::ScanBeyondTarget));
}

#[test]
fn spare_larger_than_device() {
    // The bitmap sized from a device of half the recorded spare.
    let s = valid();
    assert_eq!(
        s.judge_on(9216 + 8 * 500),
        Err(Verdict::SpareLargerThanDevice)
    );
    // A larger device is fine for the state itself (judge_against compares sizes).
    assert_eq!(s.judge_on(SPARE * 2), Ok(3));
}

#[test]
fn beyond_target() {
    let s = with(|s| s.entries.push(Entry::remapped(MAIN / 8, 0, 3)));
    assert_eq!(s.judge(), Err(Verdict::BeyondTarget));
    let s = with(|s| s.entries.push(Entry::pending(MAIN / 8 + 5)));
    assert_eq!(s.judge(), Err(Verdict::BeyondTarget));
}

#[test]
fn spare_index() {
    let s = with(|s| s.entries[0].spare = 1);
    assert_eq!(s.judge(), Err(Verdict::SpareIndex));
    let s = with(|s| s.entries[3].spare = 255);
    assert_eq!(s.judge(), Err(Verdict::SpareIndex));
}

#[test]
fn beyond_spare() {
    let s = with(|s| s.entries[3].spare_block = 1000);
    assert_eq!(s.judge(), Err(Verdict::BeyondSpare));
    let s = with(|s| s.entries[3].spare_block = meta::MAX_SPARE_BLOCK);
    assert_eq!(s.judge(), Err(Verdict::BeyondSpare));
}

#[test]
fn shared_spare_block() {
    let s = with(|s| s.entries[3].spare_block = 0);
    assert_eq!(s.judge(), Err(Verdict::SharedSpareBlock));
}

#[test]
fn lost_beyond_block() {
    let s = with(|s| s.entries[2].lost = [1 << 8, 0]);
    assert_eq!(s.judge(), Err(Verdict::LostBeyondBlock));
    let s = with(|s| s.entries[2].lost = [1, 1]);
    assert_eq!(s.judge(), Err(Verdict::LostBeyondBlock));
    // With 64 KiB blocks all 128 bits are sectors of the block.
    let s = with(|s| {
        s.config.block_bytes = 65536;
        s.spares[0] = spare_info([1; 16], SPARE, 512, bs(65536), 0);
        s.entries = vec![Entry {
            lost: [u64::MAX, u64::MAX],
            ..Entry::remapped(3, 0, 0)
        }];
        s.scan.cursor_block = 0;
    });
    assert_eq!(s.judge(), Ok(1));
    // With 32 KiB blocks only the low word is.
    let s = with(|s| {
        s.config.block_bytes = 32768;
        s.spares[0] = spare_info([1; 16], SPARE, 512, bs(32768), 0);
        s.entries = vec![Entry {
            lost: [u64::MAX, 1],
            ..Entry::remapped(3, 0, 0)
        }];
        s.scan.cursor_block = 0;
    });
    assert_eq!(s.judge(), Err(Verdict::LostBeyondBlock));
}

fn expect(id: &[u8; IDENTITY_LEN]) -> Expect<'_> {
    Expect {
        uuid: Some(UUID),
        main_sectors: MAIN,
        main_lbs: 512,
        main_pbs: 4096,
        identity: id,
        block_bytes: 4096,
        target_sectors: MAIN,
        spares: &[SpareDev {
            sectors: SPARE,
            lbs: 512,
        }],
    }
}

#[test]
fn against_the_devices() {
    let s = valid();
    let id = naa();
    assert_eq!(s.against(&expect(&id)), Ok(()));
    assert_eq!(
        s.against(&Expect {
            uuid: None,
            ..expect(&id)
        }),
        Ok(())
    );
    let cases: [(Expect<'_>, Verdict); 9] = [
        (
            Expect {
                uuid: Some([9; 16]),
                ..expect(&id)
            },
            Verdict::OtherSetup,
        ),
        (expect(&IDENTITY_NONE), Verdict::MainIdentity),
        (
            Expect {
                main_sectors: MAIN + 8,
                ..expect(&id)
            },
            Verdict::MainSize,
        ),
        (
            Expect {
                main_lbs: 4096,
                ..expect(&id)
            },
            Verdict::MainBlockSizes,
        ),
        (
            Expect {
                main_pbs: 512,
                ..expect(&id)
            },
            Verdict::MainBlockSizes,
        ),
        (
            Expect {
                block_bytes: 8192,
                ..expect(&id)
            },
            Verdict::BlockSize,
        ),
        (
            Expect {
                target_sectors: MAIN - 8,
                ..expect(&id)
            },
            Verdict::TargetLength,
        ),
        (
            Expect {
                spares: &[SpareDev {
                    sectors: SPARE + 8,
                    lbs: 512,
                }],
                ..expect(&id)
            },
            Verdict::SpareSize,
        ),
        (
            Expect {
                spares: &[SpareDev {
                    sectors: SPARE,
                    lbs: 4096,
                }],
                ..expect(&id)
            },
            Verdict::SpareBlockSize,
        ),
    ];
    for (e, want) in cases {
        assert_eq!(s.against(&e), Err(want), "{e:?}");
    }
}

#[test]
fn identity_rules() {
    let id = naa();
    let other = identity_from_unique_id(3, &[0x50, 0, 0, 0, 0, 0, 0, 1]).unwrap();
    let part = identity_from_partuuid(&[1; 16]);
    // Recorded none: any device.
    for cur in [IDENTITY_NONE, id, part] {
        assert!(identity_matches(&IDENTITY_NONE, &cur));
    }
    // Recorded: only the same identifier.
    assert!(identity_matches(&id, &id));
    assert!(!identity_matches(&id, &other));
    assert!(!identity_matches(&id, &IDENTITY_NONE));
    assert!(!identity_matches(&id, &part));
    assert!(!identity_matches(&part, &IDENTITY_NONE));
    // Two same-size disks that swapped names: refused, the setup UUID aside.
    let s = valid();
    assert_eq!(
        s.against(&Expect {
            uuid: None,
            ..expect(&other)
        }),
        Err(Verdict::MainIdentity)
    );
    let s = with(|s| s.fingerprint.identity = IDENTITY_NONE);
    assert_eq!(s.against(&expect(&other)), Ok(()));
}

/// Position of `v` in [`Verdict::ALL`]; the match fails to compile when a verdict
/// is added without a place in the list.
fn index(v: Verdict) -> usize {
    match v {
        Verdict::SpareCount => 0,
        Verdict::SpareGeometry => 1,
        Verdict::TargetGeometry => 2,
        Verdict::BadIdentity => 3,
        Verdict::ScanBeyondTarget => 4,
        Verdict::SpareLargerThanDevice => 5,
        Verdict::BeyondTarget => 6,
        Verdict::SpareIndex => 7,
        Verdict::BeyondSpare => 8,
        Verdict::SharedSpareBlock => 9,
        Verdict::LostBeyondBlock => 10,
        Verdict::OtherSetup => 11,
        Verdict::MainIdentity => 12,
        Verdict::MainSize => 13,
        Verdict::MainBlockSizes => 14,
        Verdict::BlockSize => 15,
        Verdict::TargetLength => 16,
        Verdict::SpareSize => 17,
        Verdict::SpareBlockSize => 18,
    }
}

#[test]
fn texts_are_distinct_and_stable() {
    let mut seen = std::collections::HashSet::new();
    for (i, v) in Verdict::ALL.into_iter().enumerate() {
        assert_eq!(index(v), i);
        let t = v.as_str();
        assert_eq!(v.as_cstr().to_str(), Ok(t));
        assert_eq!(v.to_string(), t);
        assert!(seen.insert(t), "{t}");
        assert!(!t.ends_with('.') && t.len() < 100, "{t}");
        assert_eq!(v.is_internal(), i <= index(Verdict::LostBeyondBlock), "{t}");
    }
    assert_eq!(
        Verdict::SharedSpareBlock.as_str(),
        "Spare metadata maps two blocks to one spare block"
    );
}
