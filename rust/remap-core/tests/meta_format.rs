//! On-disk format 2 (and reading format 1): round trips, runs, capacity, validation of
//! every field, the format 1 fixture, the corruption matrix over all subsets of the
//! five copies, and power cuts during a commit.
#![allow(clippy::needless_range_loop, clippy::type_complexity)]

use proptest::prelude::*;
use remap_core::crc;
use remap_core::judge::{judge_state, Verdict};
use remap_core::layout::{COPY_COUNT, COPY_MAX_BYTES, COPY_SECTORS};
use remap_core::meta::*;
use remap_core::remap_table::{Entry, BUSY, FENCED};
use remap_core::repair::*;
use remap_core::units::BlockSize;

const UUID: [u8; 16] = *b"0123456789abcdef";
const OTHER: [u8; 16] = *b"fedcba9876543210";
const SPARE_SECTORS: u64 = 1 << 20;

fn bs() -> BlockSize {
    BlockSize::from_bytes(4096).unwrap()
}

fn spares() -> Vec<SpareInfo> {
    vec![spare_info(
        *b"spare-uuid-00001",
        SPARE_SECTORS,
        512,
        bs(),
        0,
    )]
}

fn config() -> Config {
    Config {
        block_bytes: 4096,
        read_retries: 1,
        target_sectors: 1 << 24,
        flags: 0,
        scan_interval_s: 3600,
        scan_rate_kibs: 1024,
        predict_interval_s: 3600,
        alert_min_level: 2,
    }
}

fn fingerprint() -> Fingerprint {
    let identity = identity::identity_from_unique_id(1, b"WD-12345").unwrap();
    Fingerprint {
        main_sectors: 1 << 25,
        logical_block_bytes: 512,
        physical_block_bytes: 4096,
        identity,
    }
}

fn entries(n: u64, salt: u64) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let b = i * 3 + salt % 2;
            match i % 5 {
                3 => Entry::pending(b),
                4 => Entry {
                    lost: [(1 | (i << 3)) & 0xff, 0],
                    ..Entry::remapped(b, 0, i)
                },
                _ => Entry::remapped(b, 0, i),
            }
        })
        .collect()
}

struct Owned {
    spares: Vec<SpareInfo>,
    entries: Vec<Entry>,
    version: u64,
    uuid: [u8; 16],
}

impl Owned {
    fn new(version: u64, n: u64) -> Self {
        Owned {
            spares: spares(),
            entries: entries(n, version),
            version,
            uuid: UUID,
        }
    }
    fn state(&self) -> State<'_> {
        State {
            uuid: self.uuid,
            version: self.version,
            fingerprint: fingerprint(),
            config: config(),
            spares: &self.spares,
            entries: &self.entries,
            scan: ScanCheckpoint {
                cursor_block: 17,
                passes: 2,
                last_pass_end_s: 1_700_000_000,
            },
        }
    }
    fn copy(&self, i: usize) -> Vec<u8> {
        let mut buf = vec![0u8; COPY_MAX_BYTES];
        let n = encode(&self.state(), COPY_SECTORS[i], &mut buf).unwrap();
        assert_eq!(n % 512, 0);
        buf
    }
}

fn reads(copies: &[Vec<u8>]) -> [CopyRead<'_>; COPY_COUNT] {
    std::array::from_fn(|i| CopyRead::Bytes(&copies[i]))
}

fn assert_same_state(d: &Decoded<'_>, o: &Owned) {
    let st = o.state();
    assert_eq!(d.uuid, st.uuid);
    assert_eq!(d.version, st.version);
    assert_eq!(d.fingerprint, st.fingerprint);
    assert_eq!(d.config, st.config);
    assert_eq!(d.scan, st.scan);
    assert_eq!(d.spare_count(), st.spares.len());
    for (i, s) in st.spares.iter().enumerate() {
        assert_eq!(d.spare(i), Some(*s));
    }
    let want: Vec<Entry> = st
        .entries
        .iter()
        .copied()
        .filter(|e| e.state != BUSY && e.state != FENCED)
        .collect();
    assert_eq!(d.entries().collect::<Vec<_>>(), want);
}

#[test]
fn round_trip_every_field() {
    let o = Owned::new(42, 1000);
    for i in 0..COPY_COUNT {
        let c = o.copy(i);
        let d = decode(&c, COPY_SECTORS[i]).unwrap();
        assert_eq!(d.copy_sector, COPY_SECTORS[i]);
        assert_same_state(&d, &o);
    }
}

#[test]
fn busy_entries_are_not_stored() {
    let mut o = Owned::new(1, 10);
    o.entries[2].state = BUSY;
    let c = o.copy(0);
    let d = decode(&c, 0).unwrap();
    assert_eq!(d.entries().count(), 9);
    assert!(d.entries().all(|e| e.block != o.entries[2].block));
}

#[test]
fn fenced_entries_are_stored_as_absent() {
    // A fenced block is encoded exactly as if it were not in the table, also when it
    // sits inside what would otherwise be a run.
    let mut o = Owned::new(1, 10);
    o.entries[2].state = FENCED;
    o.entries[5].state = FENCED;
    let with = o.copy(0);
    let mut without = Owned::new(1, 10);
    without
        .entries
        .retain(|e| e.block != o.entries[2].block && e.block != o.entries[5].block);
    assert_eq!(with, without.copy(0));
    let d = decode(&with, 0).unwrap();
    assert_same_state(&d, &o);
    let mut run = Owned::new(1, 0);
    run.entries = (0..6)
        .map(|i| Entry::remapped(100 + i, 0, 40 + i))
        .collect();
    run.entries[3].state = FENCED;
    let c = run.copy(0);
    let d = decode(&c, 0).unwrap();
    assert_eq!(d.entries().count(), 5);
    assert!(d.entries().all(|e| e.block != 103));
}

#[test]
fn copies_of_one_version_differ_only_in_the_header() {
    let o = Owned::new(5, 100);
    let a = o.copy(0);
    let b = o.copy(3);
    assert_ne!(a[..128], b[..128]);
    assert_eq!(a[128..], b[128..]);
}

fn counts(singles: usize, runs: usize, lost: usize, pending: usize) -> Counts {
    Counts {
        singles,
        runs,
        lost,
        pending,
        mirrors: 0,
        remapped: singles + 2 * runs,
    }
}

#[test]
fn capacity_is_stated_and_enforced() {
    // Isolated blocks: what format 1 held (a copy without runs has no runs section).
    const { assert!(CAPACITY_ONE_SPARE == 43_651 && CAPACITY_FULL_SPARE_LIST == 43_591) };
    const { assert!(CAPACITY_RUNS_ONE_SPARE >= 32_000) };
    println!(
        "capacity: {CAPACITY_ONE_SPARE} isolated blocks (1 spare), {CAPACITY_FULL_SPARE_LIST} \
         (16 spares), {CAPACITY_RUNS_ONE_SPARE} runs of up to {MAX_RUN_LEN} blocks (1 spare)"
    );
    let mut o = Owned::new(1, 0);
    o.entries = (0..CAPACITY_ONE_SPARE as u64)
        .map(|i| Entry::remapped(i * 2, 0, i))
        .collect();
    let c = o.copy(4);
    let d = decode(&c, COPY_SECTORS[4]).unwrap();
    assert_eq!(d.counts().0, CAPACITY_ONE_SPARE);
    assert_eq!(d.records(), (CAPACITY_ONE_SPARE, 0));
    assert_eq!(d.entries().count(), CAPACITY_ONE_SPARE);
    // One more does not fit: a clear error, not a truncated map.
    o.entries
        .push(Entry::remapped(u64::from(u32::MAX), 0, 99_999));
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    assert_eq!(encode(&o.state(), 0, &mut buf), Err(EncodeError::TooLarge));
    assert!(!fits(1, &counts(CAPACITY_ONE_SPARE + 1, 0, 0, 0)));
    assert!(fits(1, &counts(CAPACITY_ONE_SPARE, 0, 0, 0)));
    // Lost and pending records share the budget.
    assert!(!fits(1, &counts(CAPACITY_ONE_SPARE - 1, 0, 1, 0)));
    assert!(fits(1, &counts(CAPACITY_ONE_SPARE - 2, 0, 0, 1)));
    assert!(fits(1, &counts(0, CAPACITY_RUNS_ONE_SPARE, 0, 0)));
    assert!(!fits(1, &counts(0, CAPACITY_RUNS_ONE_SPARE + 1, 0, 0)));
    // Runs of two blocks: as many as fit, then the map is full.
    o.entries = (0..CAPACITY_RUNS_ONE_SPARE as u64)
        .flat_map(|i| {
            [
                Entry::remapped(i * 3, 0, i * 2),
                Entry::remapped(i * 3 + 1, 0, i * 2 + 1),
            ]
        })
        .collect();
    let c = o.copy(0);
    let d = decode(&c, 0).unwrap();
    assert_eq!(d.records(), (0, CAPACITY_RUNS_ONE_SPARE));
    assert_eq!(d.counts().0, 2 * CAPACITY_RUNS_ONE_SPARE);
    o.entries
        .push(Entry::remapped(u64::from(u32::MAX), 0, 999_999));
    assert_eq!(encode(&o.state(), 0, &mut buf), Err(EncodeError::TooLarge));
}

#[test]
fn neighbouring_blocks_are_one_run() {
    // A scratch of 5,000 neighbouring blocks on neighbouring spare blocks, a single
    // block after a gap, then 3 neighbours whose spare blocks are not neighbours.
    let mut o = Owned::new(1, 0);
    o.entries = (0..5_000u64)
        .map(|i| Entry::remapped(100 + i, 0, 7 + i))
        .collect();
    o.entries.push(Entry::remapped(6_000, 0, 6_000));
    for (i, sb) in [9_000u64, 8_000, 9_001].iter().enumerate() {
        o.entries.push(Entry::remapped(7_000 + i as u64, 0, *sb));
    }
    o.entries[17].lost = [0b101, 0];
    let c = count(&o.entries);
    assert_eq!(
        c,
        Counts {
            singles: 4,
            runs: 1,
            lost: 1,
            pending: 0,
            mirrors: 0,
            remapped: 5_004
        }
    );
    let c = o.copy(1);
    let d = decode(&c, COPY_SECTORS[1]).unwrap();
    assert_eq!(d.records(), (4, 1));
    assert_eq!(
        d.ranges().collect::<Vec<_>>(),
        vec![
            Range {
                block: 100,
                len: 5_000,
                spare: 0,
                spare_block: 7
            },
            Range {
                block: 6_000,
                len: 1,
                spare: 0,
                spare_block: 6_000
            },
            Range {
                block: 7_000,
                len: 1,
                spare: 0,
                spare_block: 9_000
            },
            Range {
                block: 7_001,
                len: 1,
                spare: 0,
                spare_block: 8_000
            },
            Range {
                block: 7_002,
                len: 1,
                spare: 0,
                spare_block: 9_001
            },
        ]
    );
    assert_eq!(d.entries().collect::<Vec<_>>(), o.entries);
    // The run costs one 16-byte record: the copy is as small as five singles'.
    assert!(d.total_len <= 1024, "{}", d.total_len);
}

#[test]
fn a_run_longer_than_a_record_takes_several() {
    // More blocks than a state may hold (MAX_BLOCKS): counted as two runs, refused by
    // encode.
    let n = MAX_RUN_LEN + 5;
    let entries: Vec<Entry> = (0..n).map(|i| Entry::remapped(i, 0, i)).collect();
    let c = count(&entries);
    assert_eq!((c.singles, c.runs, c.remapped as u64), (0, 2, n));
    let mut o = Owned::new(1, 0);
    o.entries = entries;
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    assert_eq!(encode(&o.state(), 0, &mut buf), Err(EncodeError::TooLarge));
    // MAX_BLOCKS neighbours fit, as one run; one more block does not.
    o.entries.truncate(MAX_BLOCKS);
    let n = encode(&o.state(), 0, &mut buf).unwrap();
    assert_eq!(decode(&buf[..n], 0).unwrap().records(), (0, 1));
    o.entries.truncate(MAX_BLOCKS - 1);
    o.entries.push(Entry::pending(MAX_BLOCKS as u64 + 10));
    assert!(encode(&o.state(), 0, &mut buf).is_ok());
    o.entries.push(Entry::pending(MAX_BLOCKS as u64 + 11));
    assert_eq!(encode(&o.state(), 0, &mut buf), Err(EncodeError::TooLarge));
}

/// Copy 0 of a spare written by the module in format 1 (tests/fixtures/make-v1-spare.sh):
/// blocks 3, 4, 5 (spare blocks 0..2), 10, 200 and 400 (sector 3 lost) remapped, 300
/// pending, version 7.
const V1_COPY0: &[u8] = include_bytes!("fixtures/v1-copy0.bin");

#[test]
fn a_format_1_copy_reads_and_upgrades() {
    let d = decode(V1_COPY0, 0).unwrap();
    assert_eq!((d.format_version, d.version, d.spare_uuid), (1, 7, [0; 16]));
    let want = vec![
        Entry::remapped(3, 0, 0),
        Entry::remapped(4, 0, 1),
        Entry::remapped(5, 0, 2),
        Entry::remapped(10, 0, 3),
        Entry::remapped(200, 0, 4),
        Entry::pending(300),
        Entry {
            lost: [1 << 3, 0],
            ..Entry::remapped(400, 0, 5)
        },
    ];
    let entries: Vec<Entry> = d.entries().collect();
    assert_eq!(entries, want);
    // Format 1 stored every block as a single and no spare block size.
    assert_eq!(d.records(), (6, 0));
    let spare = d.spare(0).unwrap();
    assert_eq!((spare.sectors, spare.logical_block_bytes), (16384, 0));
    let mut bm = vec![0u64; 64];
    assert_eq!(judge_state(&d, &mut bm).map(|u| u[0]), Ok(6));
    // The upgrade: the same state written in format 2, with the spare's block size.
    let sp = [SpareInfo {
        logical_block_bytes: 512,
        ..spare
    }];
    let st = State {
        uuid: d.uuid,
        version: d.version + 1,
        fingerprint: d.fingerprint,
        config: d.config,
        spares: &sp,
        entries: &entries,
        scan: d.scan,
    };
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    let n = encode(&st, 0, &mut buf).unwrap();
    let u = decode(&buf[..n], 0).unwrap();
    assert_eq!(
        (u.format_version, u.version, u.spare_uuid),
        (2, 8, spare.uuid)
    );
    assert_eq!(u.records(), (3, 1));
    assert_eq!(u.entries().collect::<Vec<_>>(), want);
    assert_eq!(judge_state(&u, &mut bm).map(|u| u[0]), Ok(6));
}

#[test]
fn format_rules_of_runs_and_versions() {
    let mut o = Owned::new(1, 0);
    o.entries = vec![
        Entry::remapped(10, 0, 20),
        Entry::remapped(11, 0, 21),
        Entry::remapped(12, 0, 22),
        Entry::remapped(40, 0, 5),
    ];
    let base = o.copy(0);
    let d = decode(&base, 0).unwrap();
    assert_eq!(d.records(), (1, 1));
    let runs = section(&base, section::RUNS) + 8;
    let singles = section(&base, section::REMAPS) + 8;
    let spares = section(&base, section::SPARES) + 8;
    let check = |f: &dyn Fn(&mut Vec<u8>), want: Diagnosis| {
        let mut b = base.clone();
        f(&mut b);
        reseal(&mut b);
        assert_eq!(decode(&b, 0).err(), Some(want));
    };
    let remaps = Diagnosis::Malformed(Malformed::Remaps);
    // A run of one block, or of none.
    check(&|b| b[runs + 13] = 1, remaps);
    check(&|b| b[runs + 13] = 0, remaps);
    // A run reaching over the single (block 40): 10 + 31 blocks.
    check(&|b| b[runs + 13] = 31, remaps);
    // The single moved into the run.
    check(&|b| b[singles] = 11, remaps);
    // The single moved to continue the run (block 13 on spare block 23): not canonical.
    check(
        &|b| {
            b[singles] = 13;
            b[singles + 7] = 23
        },
        remaps,
    );
    // The run's reserved byte.
    check(&|b| b[runs + 7] = 1, remaps);
    // A run whose last spare block is beyond what 40 bits address.
    check(
        &|b| b[runs + 8..runs + 13].copy_from_slice(&[0xff; 5]),
        remaps,
    );
    // Spare block size: log2 out of 9..=16, or absent in format 2.
    check(
        &|b| b[spares + 43] = 17,
        Diagnosis::Malformed(Malformed::Spares),
    );
    check(
        &|b| b[spares + 43] = 0,
        Diagnosis::Malformed(Malformed::Spares),
    );
    // Format 1 copies: no runs section, no spare block size, no spare UUID.
    check(&|b| b[8] = 1, Diagnosis::Malformed(Malformed::Reserved));
    check(
        &|b| {
            b[8] = 1;
            b[60..76].fill(0)
        },
        Diagnosis::Malformed(Malformed::SectionSet),
    );
    let mut v1 = V1_COPY0.to_vec();
    let sp1 = section(&v1, section::SPARES) + 8;
    v1[sp1 + 43] = 12;
    reseal(&mut v1);
    assert_eq!(
        decode(&v1, 0).err(),
        Some(Diagnosis::Malformed(Malformed::Spares))
    );
    // A pending block inside a run; a lost record for a block inside a run is fine.
    let mut o2 = Owned::new(1, 0);
    o2.entries = vec![
        Entry::remapped(10, 0, 20),
        Entry {
            lost: [1, 0],
            ..Entry::remapped(11, 0, 21)
        },
        Entry::pending(13),
    ];
    let c = o2.copy(0);
    assert_eq!(
        decode(&c, 0).unwrap().entries().collect::<Vec<_>>(),
        o2.entries
    );
    let pe = section(&c, section::PENDING) + 8;
    let mut b = c.clone();
    b[pe] = 11;
    reseal(&mut b);
    assert_eq!(
        decode(&b, 0).err(),
        Some(Diagnosis::Malformed(Malformed::Pending))
    );
}

#[test]
fn a_huge_run_is_judged_by_its_ends() {
    // A run of 2^24 - 1 blocks on a spare of far fewer: refused at once, not block by
    // block; and within the target but past the spare's end.
    let mut o = Owned::new(1, 0);
    o.entries = vec![Entry::remapped(0, 0, 0), Entry::remapped(1, 0, 1)];
    let mut b = o.copy(0);
    let runs = section(&b, section::RUNS) + 8;
    b[runs + 13..runs + 16].copy_from_slice(&[0xff, 0xff, 0xff]);
    reseal(&mut b);
    let d = decode(&b, 0).unwrap();
    assert_eq!(d.counts().0 as u64, MAX_RUN_LEN);
    let t = std::time::Instant::now();
    let r = judge_state(&d, &mut vec![0u64; 4096]);
    assert!(
        matches!(r, Err(Verdict::BeyondTarget | Verdict::BeyondSpare)),
        "{r:?}"
    );
    assert!(t.elapsed().as_millis() < 100);
}

#[test]
fn failed_flag_round_trips() {
    assert_eq!(CONFIG_KNOWN_FLAGS & CONFIG_FLAG_FAILED, CONFIG_FLAG_FAILED);
    let o = Owned::new(8, 20);
    let mut st = o.state();
    st.config.flags = CONFIG_FLAG_FAILED;
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    let n = encode(&st, COPY_SECTORS[2], &mut buf).unwrap();
    let d = decode(&buf[..n], COPY_SECTORS[2]).unwrap();
    assert_eq!(d.config.flags, CONFIG_FLAG_FAILED);
    assert_eq!(d.config, st.config);
}

#[test]
fn a_copy_padded_to_4k_decodes_whatever_the_padding_holds() {
    let o = Owned::new(4, 123);
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    let n = encode(&o.state(), 0, &mut buf).unwrap();
    let p = padded_len(n, 4096).unwrap();
    assert!(p >= n && p % 4096 == 0 && p - n < 4096);
    buf[n..p].fill(0xa5);
    assert_same_state(&decode(&buf[..p], 0).unwrap(), &o);
}

#[test]
fn encode_rejects_what_it_cannot_store() {
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    let mut o = Owned::new(1, 3);
    assert_eq!(
        encode(&o.state(), 5, &mut buf),
        Err(EncodeError::BadCopySector)
    );
    o.entries.swap(0, 1);
    assert_eq!(encode(&o.state(), 0, &mut buf), Err(EncodeError::BadEntry));
    let o = Owned::new(1, 3);
    let mut small = vec![0u8; 300];
    assert_eq!(
        encode(&o.state(), 0, &mut small),
        Err(EncodeError::ShortBuffer)
    );
    let mut o = Owned::new(1, 0);
    o.spares = vec![o.spares[0]; MAX_SPARES + 1];
    assert_eq!(
        encode(&o.state(), 0, &mut buf),
        Err(EncodeError::TooManySpares)
    );
}

/// Recomputes every checksum of a hand-edited copy, so that decode reaches its
/// semantic checks.
fn reseal(buf: &mut [u8]) {
    let _ = try_reseal(buf);
}

fn try_reseal(buf: &mut [u8]) -> Option<()> {
    let rd32 = |b: &[u8], o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let total = rd32(buf, 16)? as usize;
    let n = rd32(buf, 20)?;
    let mut off = HEADER_LEN;
    for _ in 0..n.min(64) {
        let kind = u16::from_le_bytes(buf.get(off..off + 2)?.try_into().ok()?);
        let len = rd32(buf, off + 4)? as usize;
        let p = off + SECTION_HEADER_LEN;
        let c = crc::salted(section_salt(kind), buf.get(p..p.checked_add(len)?)?);
        buf.get_mut(off + 8..off + 12)?
            .copy_from_slice(&c.to_le_bytes());
        off = p + len.next_multiple_of(8);
    }
    let body = crc::salted(SALT_BODY, buf.get(HEADER_LEN..total)?);
    buf[56..60].copy_from_slice(&body.to_le_bytes());
    let h = crc::salted(SALT_HEADER, &buf[..HEADER_LEN - 4]);
    buf[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&h.to_le_bytes());
    Some(())
}

/// Offset of the payload of section `kind`.
fn section(buf: &[u8], kind: u16) -> usize {
    let mut off = HEADER_LEN;
    loop {
        let k = u16::from_le_bytes(buf[off..off + 2].try_into().unwrap());
        let len = u32::from_le_bytes(buf[off + 4..off + 8].try_into().unwrap()) as usize;
        if k == kind {
            return off + SECTION_HEADER_LEN;
        }
        off += SECTION_HEADER_LEN + len.next_multiple_of(8);
    }
}

/// `base` edited by `f` and resealed: decode refuses it with `want`.
fn refused(base: &[u8], f: &dyn Fn(&mut Vec<u8>), want: Diagnosis) {
    let mut b = base.to_vec();
    f(&mut b);
    reseal(&mut b);
    assert_eq!(decode(&b, 0).err(), Some(want));
}

/// `base` edited by `f` and resealed: decode accepts it (ours, intact) and the judge
/// refuses the state with `want` (rules about what a state means are the judge's).
fn judged(base: &[u8], f: &dyn Fn(&mut Vec<u8>), want: Verdict) {
    let mut b = base.to_vec();
    f(&mut b);
    reseal(&mut b);
    let d = decode(&b, 0).expect("decode leaves this rule to the judge");
    let mut bm = vec![0u64; 1 << 14];
    assert_eq!(judge_state(&d, &mut bm), Err(want));
}

#[test]
fn semantic_checks_each_have_a_diagnosis() {
    let o = Owned::new(9, 10);
    let base = o.copy(0);
    let check = |f: &dyn Fn(&mut Vec<u8>), want: Diagnosis| refused(&base, f, want);
    let judged = |f: &dyn Fn(&mut Vec<u8>), want: Verdict| judged(&base, f, want);
    let rm = section(&base, section::REMAPS) + 8;
    // Two remap entries out of order.
    check(
        &|b| b.copy_within(rm..rm + 12, rm + 12),
        Diagnosis::Malformed(Malformed::Remaps),
    );
    // Spare block beyond the spare.
    judged(
        &|b| b[rm + 7..rm + 12].copy_from_slice(&[0xff; 5]),
        Verdict::BeyondSpare,
    );
    // Unknown spare index.
    judged(&|b| b[rm + 6] = 3, Verdict::SpareIndex);
    // A pending block that is also remapped.
    let pe = section(&base, section::PENDING) + 8;
    check(
        &|b| b[pe..pe + 8].copy_from_slice(&1u64.to_le_bytes()),
        Diagnosis::Malformed(Malformed::Pending),
    );
    // Lost sectors recorded for a block that is not remapped.
    let lo = section(&base, section::LOST) + 8;
    check(
        &|b| b[lo..lo + 8].copy_from_slice(&0u64.to_le_bytes()),
        Diagnosis::Malformed(Malformed::Lost),
    );
    // Lost sectors beyond the block's 8 sectors.
    judged(
        &|b| b[lo + 8..lo + 16].copy_from_slice(&(1u64 << 9).to_le_bytes()),
        Verdict::LostBeyondBlock,
    );
    // Unknown feature flag (bit 0 is CONFIG_FLAG_FAILED, bit 1 CONFIG_FLAG_REDUNDANCY,
    // bit 2 is unknown).
    let cf = section(&base, section::CONFIG);
    check(&|b| b[cf + 16] = 4, Diagnosis::Malformed(Malformed::Config));
    // Block size not a power of two.
    check(
        &|b| b[cf..cf + 4].copy_from_slice(&4000u32.to_le_bytes()),
        Diagnosis::Malformed(Malformed::Config),
    );
    // Reserved header bytes.
    check(&|b| b[100] = 1, Diagnosis::Malformed(Malformed::Reserved));
    // Array count disagreeing with the section length.
    check(
        &|b| b[rm - 8] += 1,
        Diagnosis::Malformed(Malformed::SectionLength),
    );
    // A section type repeated.
    let pe_hdr = section(&base, section::PENDING) - SECTION_HEADER_LEN;
    check(
        &|b| b[pe_hdr] = section::LOST as u8,
        Diagnosis::Malformed(Malformed::SectionSet),
    );
    // Unknown critical section.
    check(
        &|b| b[pe_hdr] = 40,
        Diagnosis::UnknownCriticalSection { kind: 40 },
    );
    // Unknown section without the critical flag: skipped, but PENDING is then missing.
    check(
        &|b| {
            b[pe_hdr] = 40;
            b[pe_hdr + 2] = 0
        },
        Diagnosis::Malformed(Malformed::SectionSet),
    );
    // Scan cursor beyond the target.
    let sc = section(&base, section::SCAN);
    judged(&|b| b[sc + 7] = 0x10, Verdict::ScanBeyondTarget);
}

#[test]
fn unknown_optional_section_is_skipped() {
    // Rebuild a copy with an extra non-critical section appended: still valid.
    let o = Owned::new(3, 20);
    let mut b = o.copy(1);
    let total = u32::from_le_bytes(b[16..20].try_into().unwrap()) as usize;
    let end = {
        let mut off = HEADER_LEN;
        for _ in 0..8 {
            let len = u32::from_le_bytes(b[off + 4..off + 8].try_into().unwrap()) as usize;
            off += SECTION_HEADER_LEN + len.next_multiple_of(8);
        }
        off
    };
    assert!(end + 32 <= total);
    b[end..end + 2].copy_from_slice(&99u16.to_le_bytes());
    b[end + 4..end + 8].copy_from_slice(&16u32.to_le_bytes());
    b[end + 16..end + 32].copy_from_slice(b"future feature!!");
    b[20] = 9;
    reseal(&mut b);
    let d = decode(&b, COPY_SECTORS[1]).unwrap();
    assert_same_state(&d, &o);
}

#[test]
fn header_checks_come_in_order() {
    let o = Owned::new(1, 5);
    let c = o.copy(2);
    assert_eq!(
        decode(&c, COPY_SECTORS[1]).err(),
        Some(Diagnosis::WrongLocation { found: 2048 })
    );
    let mut b = c.clone();
    b[0] ^= 1;
    assert_eq!(decode(&b, 2048).err(), Some(Diagnosis::BadMagic));
    let mut b = c.clone();
    b[8] = 3;
    assert_eq!(
        decode(&b, 2048).err(),
        Some(Diagnosis::UnsupportedFormat { found: 3 })
    );
    let mut b = c.clone();
    b[16] = 1;
    assert_eq!(decode(&b, 2048).err(), Some(Diagnosis::BadLength));
    let mut b = c.clone();
    b[50] ^= 1;
    assert_eq!(decode(&b, 2048).err(), Some(Diagnosis::HeaderChecksum));
    let mut b = c.clone();
    b[300] ^= 1;
    assert_eq!(decode(&b, 2048).err(), Some(Diagnosis::BodyChecksum));
    assert_eq!(decode(&vec![0u8; 4096], 2048).err(), Some(Diagnosis::Blank));
    assert_eq!(decode(&c[..100], 2048).err(), Some(Diagnosis::BadLength));
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    BitFlip,
    Zeroed,
    Torn,
    Stale,
    Foreign,
    WrongLocation,
}

const DAMAGES: [Damage; 6] = [
    Damage::BitFlip,
    Damage::Zeroed,
    Damage::Torn,
    Damage::Stale,
    Damage::Foreign,
    Damage::WrongLocation,
];

/// Builds five copies of `cur` and damages those in `mask`.
fn damaged(cur: &Owned, old: &Owned, foreign: &Owned, mask: u32, d: Damage) -> Vec<Vec<u8>> {
    (0..COPY_COUNT)
        .map(|i| {
            let mut c = cur.copy(i);
            if mask & (1 << i) == 0 {
                return c;
            }
            match d {
                Damage::BitFlip => c[4096 + i * 13] ^= 0x10,
                Damage::Zeroed => c.fill(0),
                Damage::Torn => {
                    // The first sectors of the new version over an older copy.
                    let o = old.copy(i);
                    c[1024..].copy_from_slice(&o[1024..]);
                }
                Damage::Stale => c = old.copy(i),
                Damage::Foreign => c = foreign.copy(i),
                Damage::WrongLocation => c = cur.copy((i + 1) % COPY_COUNT),
            }
            c
        })
        .collect()
}

#[test]
fn corruption_matrix_every_subset() {
    let cur = Owned::new(10, 2000);
    let old = Owned::new(9, 1990);
    let mut foreign = Owned::new(50, 7);
    foreign.uuid = OTHER;
    let mut cases = 0;
    for d in DAMAGES {
        for mask in 1u32..32 {
            let copies = damaged(&cur, &old, &foreign, mask, d);
            let r = reads(&copies);
            let n = mask.count_ones() as usize;
            for expect in [None, Some(UUID)] {
                cases += 1;
                let sel = select(&r, expect);
                let ctx = format!("{d:?} mask {mask:05b} expect {expect:?}");
                match (d, n, expect, sel) {
                    (Damage::Zeroed, 5, _, Selection::Blank) => {}
                    (Damage::Stale, 5, _, Selection::Load { state, rewrite, .. }) => {
                        assert_eq!(state.version, 9, "{ctx}");
                        assert_eq!(rewrite, [false; 5], "{ctx}");
                        assert_same_state(&state, &old);
                    }
                    (Damage::Foreign, 5, None, Selection::Load { state, .. }) => {
                        // Consistent copies of one other setup: that setup's state.
                        assert_eq!(state.uuid, OTHER, "{ctx}");
                    }
                    (Damage::Foreign, 1..=4, None, Selection::Refuse { reason, .. }) => {
                        assert_eq!(reason, Refusal::MixedSetups, "{ctx}");
                    }
                    (_, 5, _, Selection::Refuse { reason, diagnosis }) => {
                        assert_eq!(reason, Refusal::NoValidCopy, "{ctx}");
                        assert!(diagnosis.iter().all(|x| x.is_some()), "{ctx}");
                    }
                    (
                        _,
                        1..=4,
                        _,
                        Selection::Load {
                            chosen,
                            state,
                            status,
                            rewrite,
                            ..
                        },
                    ) => {
                        assert_eq!(mask & (1 << chosen), 0, "{ctx}");
                        assert_eq!(state.version, 10, "{ctx}");
                        assert_same_state(&state, &cur);
                        for i in 0..COPY_COUNT {
                            let hit = mask & (1 << i) != 0;
                            assert_eq!(rewrite[i], hit, "{ctx} copy {i}");
                            let want = match (hit, d) {
                                (false, _) => CopyStatus::Current,
                                (true, Damage::BitFlip) => CopyStatus::Bad(Diagnosis::BodyChecksum),
                                (true, Damage::Zeroed) => CopyStatus::Bad(Diagnosis::Blank),
                                (true, Damage::Torn) => CopyStatus::Bad(Diagnosis::BodyChecksum),
                                (true, Damage::Stale) => CopyStatus::Stale { version: 9 },
                                (true, Damage::Foreign) => CopyStatus::Bad(Diagnosis::ForeignSetup),
                                (true, Damage::WrongLocation) => {
                                    CopyStatus::Bad(Diagnosis::WrongLocation {
                                        found: COPY_SECTORS[(i + 1) % COPY_COUNT],
                                    })
                                }
                            };
                            assert_eq!(status[i], want, "{ctx} copy {i}");
                        }
                    }
                    (_, _, _, other) => panic!("{ctx}: unexpected {other:?}"),
                }
            }
        }
    }
    assert_eq!(cases, 6 * 31 * 2);
}

#[test]
fn io_errors_and_conflicts_refuse() {
    let cur = Owned::new(4, 30);
    let copies: Vec<Vec<u8>> = (0..5).map(|i| cur.copy(i)).collect();
    let mut r = reads(&copies);
    r[0] = CopyRead::IoError;
    r[3] = CopyRead::IoError;
    match select(&r, None) {
        Selection::Load {
            rewrite, status, ..
        } => {
            assert_eq!(rewrite, [true, false, false, true, false]);
            assert_eq!(status[0], CopyStatus::Bad(Diagnosis::ReadError));
        }
        s => panic!("{s:?}"),
    }
    // Same version, different content: refuse rather than guess.
    let mut other = Owned::new(4, 30);
    other.entries[0].spare_block += 1000;
    let c2 = other.copy(2);
    let mut copies2 = copies.clone();
    copies2[2] = c2;
    assert!(matches!(
        select(&reads(&copies2), None),
        Selection::Refuse {
            reason: Refusal::Conflict { version: 4 },
            ..
        }
    ));
    // Blank with read errors: refuse to format.
    let blank = vec![vec![0u8; COPY_MAX_BYTES]; 5];
    let mut r = reads(&blank);
    r[4] = CopyRead::IoError;
    assert!(matches!(
        select(&r, None),
        Selection::Refuse {
            reason: Refusal::BlankWithErrors,
            ..
        }
    ));
    assert!(matches!(select(&reads(&blank), None), Selection::Blank));
    // Foreign data (not ours, not blank).
    let junk = vec![vec![0x5au8; COPY_MAX_BYTES]; 5];
    assert!(matches!(
        select(&reads(&junk), None),
        Selection::Refuse {
            reason: Refusal::NoValidCopy,
            ..
        }
    ));
}

/// A spare's metadata area under a sequence of copy writes, where a write is
/// sector-granular and a cut can land between any two sectors in any order.
fn simulate_cut(old: &Owned, new: &Owned, step: usize, written: &[usize]) -> Selection<'static> {
    let mut copies: Vec<Vec<u8>> = (0..COPY_COUNT).map(|i| old.copy(i)).collect();
    for s in &COMMIT_PLAN[..step] {
        copies[s.copy] = new.copy(s.copy);
    }
    if let Some(s) = COMMIT_PLAN.get(step) {
        let n = new.copy(s.copy);
        for &sec in written {
            copies[s.copy][sec * 512..(sec + 1) * 512]
                .copy_from_slice(&n[sec * 512..(sec + 1) * 512]);
        }
    }
    let copies: &'static [Vec<u8>] = Box::leak(copies.into_boxed_slice());
    select(
        &std::array::from_fn(|i| CopyRead::Bytes(&copies[i][..])),
        Some(UUID),
    )
}

#[test]
fn commit_plan_survives_a_cut_after_every_write_and_inside_every_copy() {
    assert_eq!(COMMIT_PLAN.iter().filter(|s| s.preflush).count(), 1);
    assert!(COMMIT_PLAN[0].preflush && COMMIT_PLAN.iter().all(|s| s.fua));
    let mut order: Vec<usize> = COMMIT_PLAN.iter().map(|s| s.copy).collect();
    order.sort();
    assert_eq!(order, [0, 1, 2, 3, 4]);

    let old = Owned::new(7, 300);
    let new = Owned::new(8, 310);
    let sectors = new.copy(0).len() / 512;
    let used = (u32::from_le_bytes(new.copy(0)[16..20].try_into().unwrap()) as usize) / 512;
    let mut trials = 0;
    let mut rng = 0x1234_5678_9abc_def0u64;
    for step in 0..=COPY_COUNT {
        let mut variants: Vec<Vec<usize>> = vec![vec![]];
        if step < COPY_COUNT {
            // Prefixes, suffixes and random subsets of the copy's sectors.
            for k in [1, 2, used / 2, used - 1, used, sectors] {
                variants.push((0..k).collect());
                variants.push((sectors - k..sectors).collect());
            }
            for _ in 0..20 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                variants.push((0..used).filter(|i| (rng >> (i % 64)) & 1 == 1).collect());
            }
        }
        for w in &variants {
            trials += 1;
            match simulate_cut(&old, &new, step, w) {
                Selection::Load { state, .. } => {
                    let complete =
                        step == COPY_COUNT || (step == COPY_COUNT - 1 && w.len() >= used);
                    if step >= 1
                        || w.len() >= used
                            && w.iter().take(used).eq((0..used).collect::<Vec<_>>().iter())
                    {
                        assert_eq!(state.version, 8, "step {step} sectors {}", w.len());
                        assert_same_state(&state, &new);
                    } else {
                        assert!(state.version == 7 || state.version == 8);
                    }
                    if complete {
                        assert_eq!(state.version, 8);
                    }
                }
                s => panic!("cut at step {step} with {} sectors written: {s:?}", w.len()),
            }
        }
    }
    assert!(trials > 150, "{trials}");
}

fn arb_state() -> impl Strategy<Value = (u64, Vec<(u64, u8, u64, u64)>, u8, u32, u64)> {
    (
        any::<u64>(),
        proptest::collection::vec(
            (
                1u64..1000,
                0u8..5,
                0u64..(SPARE_SECTORS / 8 - 2000),
                any::<u64>(),
            ),
            0..300,
        ),
        1u8..=16,
        0u32..17,
        0u64..4096,
    )
}

proptest! {
    #[test]
    fn decode_of_encode_is_identity((version, raw, nsp, retries, cursor) in arb_state()) {
        let mut block = 0u64;
        let mut es = Vec::new();
        for (gap, kind, sb, m) in raw {
            // Kinds 3 and 4 continue the previous remapped block (a run), with lost
            // sectors or without, when there is one; otherwise they are pending.
            let last = es.last().copied().filter(|e: &Entry| e.state == remap_core::remap_table::REMAPPED);
            block += if kind >= 3 && last.is_some() { 1 } else { gap };
            es.push(match (kind, last) {
                (0, _) => Entry::remapped(block, (sb % u64::from(nsp)) as u8, sb),
                (1, _) => Entry { lost: [m & 0xff, 0], ..Entry::remapped(block, 0, sb) },
                (3 | 4, Some(l)) => Entry {
                    lost: [if kind == 4 { m & 0xff } else { 0 }, 0],
                    ..Entry::remapped(block, l.spare, l.spare_block + 1)
                },
                _ => Entry::pending(block),
            });
        }
        let sp: Vec<SpareInfo> = (0..nsp).map(|i| spare_info([i; 16], SPARE_SECTORS, 512, bs(), i)).collect();
        let mut cfg = config();
        cfg.read_retries = retries;
        let st = State {
            uuid: UUID, version, fingerprint: fingerprint(), config: cfg, spares: &sp, entries: &es,
            scan: ScanCheckpoint { cursor_block: cursor, passes: version, last_pass_end_s: version ^ 7 },
        };
        let mut buf = vec![0u8; COPY_MAX_BYTES];
        let n = encode(&st, 4096, &mut buf).unwrap();
        let d = decode(&buf[..n], 4096).unwrap();
        prop_assert_eq!(d.version, version);
        prop_assert_eq!(d.config, cfg);
        prop_assert_eq!(d.scan, st.scan);
        prop_assert_eq!(&d.entries().collect::<Vec<_>>(), &es);
        for (i, s) in sp.iter().enumerate() { prop_assert_eq!(d.spare(i), Some(*s)); }
        // The ranges cover exactly the remapped blocks, and the records are as counted.
        let c = count(&es);
        prop_assert_eq!(d.records(), (c.singles, c.runs));
        prop_assert_eq!(d.counts().0, c.remapped);
        let expanded: Vec<u64> = d.ranges().flat_map(|r| r.block..r.block + r.len).collect();
        let remapped: Vec<u64> = es.iter().filter(|e| e.state == remap_core::remap_table::REMAPPED).map(|e| e.block).collect();
        prop_assert_eq!(expanded, remapped);
        // The module's decoding of its own last state (checksums not checked again)
        // reads the same state.
        let own = decode_own(&buf[..n], 4096).unwrap();
        prop_assert_eq!((own.body_crc, own.header_crc, own.version, own.body), (d.body_crc, d.header_crc, d.version, d.body));
        prop_assert!(own.entries().eq(d.entries()));
    }

    /// `decode_own` keeps every check but the checksums: a copy whose entries are
    /// out of order (resealed, so only the structure is wrong) is refused by both.
    #[test]
    fn decode_own_checks_the_structure(flips in proptest::collection::vec((0usize..8192, any::<u8>()), 1..20)) {
        let o = Owned::new(3, 200);
        let mut b = o.copy(0);
        for (at, x) in flips { b[at] ^= x; }
        reseal(&mut b);
        prop_assert_eq!(decode_own(&b, 0).is_ok(), decode(&b, 0).is_ok());
    }

    #[test]
    fn decode_never_panics_on_damaged_copies(flips in proptest::collection::vec((0usize..8192, any::<u8>()), 1..20), cut in 0usize..8192) {
        let o = Owned::new(3, 200);
        let mut b = o.copy(0);
        for (at, x) in flips { b[at] ^= x; }
        let _ = decode(&b, 0);
        let _ = decode(&b[..cut], 0);
        reseal(&mut b);
        if let Ok(d) = decode(&b, 0) {
            // Whatever decodes can be judged without panicking, with any bitmap.
            let _ = judge_state(&d, &mut vec![0u64; 64]);
            let _ = judge_state(&d, &mut []);
        }
    }

    #[test]
    fn decode_never_panics_on_noise(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = decode(&bytes, 0);
    }
}

/// `redundancy 2`: a state whose blocks have second copies on other spares.
fn mirrored() -> (Vec<SpareInfo>, Vec<Entry>, Config) {
    let sp = vec![
        spare_info(*b"spare-uuid-00001", SPARE_SECTORS, 512, bs(), 0),
        spare_info(*b"spare-uuid-00002", SPARE_SECTORS, 512, bs(), 1),
        spare_info(*b"spare-uuid-00003", SPARE_SECTORS, 4096, bs(), 2),
    ];
    let mut e: Vec<Entry> = (0..40u64)
        .map(|i| Entry::mirrored(100 + i, 0, i, 1, 200 + i))
        .collect();
    e.push(Entry::remapped(300, 1, 5));
    e.push(Entry {
        lost: [0b1010, 0],
        ..Entry::mirrored(301, 2, 9, 0, 77)
    });
    e.push(Entry::pending(302));
    let mut c = config();
    c.flags = CONFIG_FLAG_REDUNDANCY;
    (sp, e, c)
}

fn mirrored_copy(sp: &[SpareInfo], e: &[Entry], c: Config) -> Result<Vec<u8>, EncodeError> {
    let st = State {
        uuid: UUID,
        version: 4,
        fingerprint: fingerprint(),
        config: c,
        spares: sp,
        entries: e,
        scan: ScanCheckpoint::default(),
    };
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    let n = encode(&st, 0, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

#[test]
fn second_copies_round_trip_and_are_counted_on_their_spares() {
    let (sp, e, c) = mirrored();
    let b = mirrored_copy(&sp, &e, c).unwrap();
    let d = decode(&b, 0).unwrap();
    assert_eq!(d.entries().collect::<Vec<_>>(), e);
    assert_eq!(d.mirrors().count(), 41);
    // The 40 neighbours are still one run on spare 0.
    assert_eq!(d.records(), (2, 1));
    let mut bm = vec![0u64; 1 << 14];
    let used = judge_state(&d, &mut bm).unwrap();
    assert_eq!(&used[..3], &[41, 41, 1]);
    // A copy without second copies has no section for them: 7 sections, as before.
    let plain: Vec<Entry> = e.iter().map(|x| x.without_copy_on(x.mirror)).collect();
    let p = mirrored_copy(&sp, &plain, c).unwrap();
    assert_eq!(u32::from_le_bytes(p[20..24].try_into().unwrap()), 8);
    assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 9);
    assert_eq!(decode(&p, 0).unwrap().entries().collect::<Vec<_>>(), plain);
}

#[test]
fn second_copies_that_break_the_rules_are_refused() {
    let (sp, e, c) = mirrored();
    // The encoder stores none without the redundancy flag, nor one on the block's own
    // spare.
    let mut no_flag = c;
    no_flag.flags = 0;
    assert_eq!(mirrored_copy(&sp, &e, no_flag), Err(EncodeError::BadEntry));
    let mut own = e.clone();
    own[3].mirror = 0;
    assert_eq!(mirrored_copy(&sp, &own, c), Err(EncodeError::BadEntry));

    let base = mirrored_copy(&sp, &e, c).unwrap();
    let mi = section(&base, section::MIRRORS) + 8;
    let cf = section(&base, section::CONFIG);
    let check = |f: &dyn Fn(&mut Vec<u8>), want: Diagnosis| refused(&base, f, want);
    let judged = |f: &dyn Fn(&mut Vec<u8>), want: Verdict| judged(&base, f, want);
    let bad = Diagnosis::Malformed(Malformed::Mirrors);
    // Second copies in a copy without the flag (a reader that does not know them
    // would load the map without them).
    check(&|b| b[cf + 16] = 0, bad);
    // On the block's own spare.
    check(&|b| b[mi + 8] = 0, bad);
    // "No second copy" as a record.
    check(&|b| b[mi + 8] = 0xff, bad);
    // Reserved bytes.
    check(&|b| b[mi + 9] = 1, bad);
    // Out of order.
    check(&|b| b.copy_within(mi..mi + 16, mi + 16), bad);
    // For a block that is not remapped (a pending one, one in no entry).
    check(
        &|b| b[mi..mi + 8].copy_from_slice(&302u64.to_le_bytes()),
        bad,
    );
    check(
        &|b| b[mi..mi + 8].copy_from_slice(&99u64.to_le_bytes()),
        bad,
    );
    // A spare the list does not hold.
    judged(&|b| b[mi + 8] = 5, Verdict::SpareIndex);
    // Beyond the spare's data area.
    judged(
        &|b| b[mi + 11..mi + 16].copy_from_slice(&[0xff, 0xff, 0xff, 0, 0]),
        Verdict::BeyondSpare,
    );
    // The block another entry's first copy holds (block 300 is on spare 1 block 5).
    judged(
        &|b| b[mi + 11..mi + 16].copy_from_slice(&[5, 0, 0, 0, 0]),
        Verdict::SharedSpareBlock,
    );
    // Two second copies on one block.
    judged(
        &|b| b[mi + 16 + 11..mi + 16 + 16].copy_from_slice(&[200, 0, 0, 0, 0]),
        Verdict::SharedSpareBlock,
    );
}

#[test]
fn capacity_with_second_copies() {
    println!("capacity: {CAPACITY_MIRRORED_TWO_SPARES} isolated blocks with two copies (2 spares)");
    let (sp, _, c) = mirrored();
    let sp = &sp[..2];
    let n = CAPACITY_MIRRORED_TWO_SPARES as u64;
    let full: Vec<Entry> = (0..n).map(|i| Entry::mirrored(i * 2, 0, i, 1, i)).collect();
    let b = mirrored_copy(sp, &full, c).unwrap();
    assert_eq!(decode(&b, 0).unwrap().mirrors().count(), n as usize);
    let mut more = full.clone();
    more.push(Entry::mirrored(n * 2, 0, n, 1, n));
    assert_eq!(mirrored_copy(sp, &more, c), Err(EncodeError::TooLarge));
}
