//! The commit log (format 2): commits as records appended to each copy, replayed at
//! load; a new base when a log is full; power cuts at every write and torn writes
//! inside every record leave the previous or the new version, never anything else.
#![allow(clippy::needless_range_loop)]

mod common;

use proptest::prelude::*;
use remap_core::layout::{COPY_COUNT, COPY_MAX_BYTES, COPY_SECTORS};
use remap_core::log::{self, CopyWrite, LogEnd, RecordHead};
use remap_core::meta::*;
use remap_core::remap_table::{Entry, PENDING, REMAPPED};
use remap_core::repair::*;
use remap_core::units::BlockSize;

const UUID: [u8; 16] = *b"commit-log-setup";
const SPARE_SECTORS: u64 = 1 << 20;

/// Two spares: the copies are the first's; with `redundancy 2` (below) blocks may
/// have their second copy on the other.
fn spares(lbs: u32) -> Vec<SpareInfo> {
    let bs = BlockSize::from_bytes(4096).unwrap();
    vec![
        spare_info(*b"commit-log-spare", SPARE_SECTORS, lbs, bs, 0),
        spare_info(*b"commit-log-mirro", SPARE_SECTORS, lbs, bs, 1),
    ]
}

fn state<'a>(
    spares: &'a [SpareInfo],
    entries: &'a [Entry],
    version: u64,
    scan: ScanCheckpoint,
) -> State<'a> {
    let mut st = common::state(UUID, spares, entries, version, scan);
    st.config.flags = CONFIG_FLAG_REDUNDANCY;
    st
}

/// One write of a commit: copy, offset in its extent, bytes.
type Write = (usize, usize, Vec<u8>);

/// A writer following the module's policy: a record per copy while its log has room,
/// a new base otherwise.
struct Writer {
    lbs: u32,
    version: u64,
    logs: [Option<LogEnd>; COPY_COUNT],
    prev: Vec<Entry>,
    prev_crc: u32,
    bases: usize,
    appends: usize,
}

impl Writer {
    fn new(lbs: u32) -> Self {
        Writer {
            lbs,
            version: 0,
            logs: [None; COPY_COUNT],
            prev: Vec::new(),
            prev_crc: 0,
            bases: 0,
            appends: 0,
        }
    }

    /// The writes of the commit of `entries` (sorted) as the next version.
    fn commit(&mut self, entries: &[Entry], scan: ScanCheckpoint) -> Vec<Write> {
        let sp = spares(self.lbs);
        let version = self.version + 1;
        let mut base = vec![0u8; COPY_MAX_BYTES];
        let len = encode(&state(&sp, entries, version, scan), 0, &mut base).unwrap();
        let padded = padded_len(len, self.lbs).unwrap();
        let body_crc = decode(&base[..len], 0).unwrap().body_crc;
        let mut rec = vec![0u8; log::MAX_RECORD_BYTES + 65536];
        let head = RecordHead {
            version,
            prev: self.version,
            base_crc: 0,
            state_crc: body_crc,
            scan,
        };
        let changes = log::diff(self.prev.iter().copied(), entries);
        let rec_len = log::encode_record(&mut rec, &head, changes, self.lbs as usize).ok();
        let mut writes = Vec::new();
        for step in COMMIT_PLAN {
            let k = step.copy;
            let w = log::plan_write(
                self.logs[k].filter(|e| e.state_crc == self.prev_crc),
                rec_len,
            );
            let base_crc = match w {
                CopyWrite::Append { offset } => {
                    let n = rec_len.unwrap();
                    log::set_record_base(&mut rec, self.logs[k].unwrap().base_crc, self.version)
                        .unwrap();
                    writes.push((k, offset, rec[..n].to_vec()));
                    self.appends += 1;
                    0
                }
                CopyWrite::Base => {
                    set_copy_sector(&mut base, COPY_SECTORS[k]).unwrap();
                    let end = (padded + self.lbs as usize).min(COPY_MAX_BYTES);
                    writes.push((k, 0, base[..end].to_vec()));
                    self.bases += 1;
                    u32::from_le_bytes(base[124..128].try_into().unwrap())
                }
            };
            self.logs[k] = log::after_write(
                self.logs[k],
                w,
                rec_len.unwrap_or(0),
                (base_crc, padded),
                (version, body_crc),
            );
        }
        self.version = version;
        self.prev_crc = body_crc;
        self.prev = entries
            .iter()
            .copied()
            .filter(|e| e.state == REMAPPED || e.state == PENDING)
            .collect();
        writes
    }
}

fn apply(disk: &mut [Vec<u8>], w: &Write) {
    disk[w.0][w.1..w.1 + w.2.len()].copy_from_slice(&w.2);
}

/// What the module loads: the selected copy's base with its records applied, checked
/// against the checksum the last record carries.
fn load(disk: &[Vec<u8>], lbs: u32) -> (u64, Vec<Entry>, ScanCheckpoint) {
    let reads: [CopyRead<'_>; COPY_COUNT] = std::array::from_fn(|i| CopyRead::Bytes(&disk[i]));
    let Selection::Load {
        chosen,
        state: base,
        version,
        state_crc,
        ..
    } = select(&reads, None)
    else {
        panic!("{:?}", select(&reads, None));
    };
    let mut entries: Vec<Entry> = base.entries().collect();
    let mut scan = base.scan;
    for r in log::records(&disk[chosen], &base) {
        entries = log::apply(entries.into_iter(), r.changes()).collect();
        scan = r.scan;
    }
    let sp = spares(lbs);
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    let n = encode(&state(&sp, &entries, version, scan), 0, &mut buf).unwrap();
    assert_eq!(
        decode(&buf[..n], 0).unwrap().body_crc,
        state_crc,
        "replay gives the recorded state"
    );
    (version, entries, scan)
}

/// A random change to `model`: remap (a third of them with a second copy), mark
/// pending, remove, lose sectors, or drop one copy of a block that has two.
fn mutate(model: &mut Vec<Entry>, rnd: &mut u64, next_spare: &mut u64) {
    let mut r = || {
        *rnd ^= *rnd << 13;
        *rnd ^= *rnd >> 7;
        *rnd ^= *rnd << 17;
        *rnd
    };
    let n = 1 + r() % 6;
    for _ in 0..n {
        let block = r() % 3000;
        let pos = model.binary_search_by_key(&block, |e| e.block);
        let e = match r() % 6 {
            0 | 1 => {
                *next_spare += 1;
                Some(if r() % 3 == 0 {
                    Entry::mirrored(block, 0, *next_spare, 1, *next_spare + 7)
                } else {
                    Entry::remapped(block, 0, *next_spare)
                })
            }
            2 => Some(Entry::pending(block)),
            3 => None,
            4 => match pos {
                Ok(i) if model[i].has_mirror() => Some(model[i].without_copy_on((r() % 2) as u8)),
                _ => continue,
            },
            _ => match pos {
                Ok(i) if model[i].state == REMAPPED => Some(Entry {
                    lost: [r() | 1, 0],
                    ..model[i]
                }),
                _ => continue,
            },
        };
        match (pos, e) {
            (Ok(i), Some(e)) => model[i] = e,
            (Ok(i), None) => {
                model.remove(i);
            }
            (Err(i), Some(e)) => model.insert(i, e),
            (Err(_), None) => {}
        }
    }
    // A scratch now and then: neighbouring blocks on neighbouring spare blocks.
    if r() % 10 == 0 {
        let start = 5000 + r() % 1000;
        for b in start..start + 40 {
            *next_spare += 1;
            let e = Entry::remapped(b, 0, *next_spare);
            match model.binary_search_by_key(&b, |e| e.block) {
                Ok(i) => model[i] = e,
                Err(i) => model.insert(i, e),
            }
        }
    }
}

#[test]
fn commits_replay_to_the_committed_state() {
    for lbs in [512u32, 4096] {
        let mut disk = vec![vec![0u8; COPY_MAX_BYTES]; COPY_COUNT];
        let mut w = Writer::new(lbs);
        let (mut model, mut rnd, mut next) = (Vec::new(), 0x9e37_79b9_7f4a_7c15u64, 0u64);
        for i in 0..300u64 {
            mutate(&mut model, &mut rnd, &mut next);
            let scan = ScanCheckpoint {
                cursor_block: i,
                passes: i / 7,
                last_pass_end_s: 0,
            };
            for wr in w.commit(&model, scan) {
                apply(&mut disk, &wr);
            }
            let (v, es, sc) = load(&disk, lbs);
            assert_eq!((v, sc), (i + 1, scan));
            assert_eq!(es, model, "lbs {lbs} commit {}", i + 1);
        }
        // Most commits were records; every 64 records a copy got a new base.
        println!("lbs {lbs}: {} appends, {} bases", w.appends, w.bases);
        assert!(
            w.appends > 10 * w.bases,
            "{} appends, {} bases",
            w.appends,
            w.bases
        );
        assert!(w.bases >= 5 * 4, "{} bases", w.bases);
    }
}

#[test]
fn a_record_costs_one_logical_block_for_a_few_changes() {
    let mut w = Writer::new(4096);
    let mut model = vec![Entry::remapped(10, 0, 0)];
    w.commit(&model, ScanCheckpoint::default());
    model.push(Entry::remapped(11, 0, 1));
    let writes = w.commit(&model, ScanCheckpoint::default());
    assert_eq!(writes.len(), 5);
    assert!(
        writes.iter().all(|(_, off, b)| *off > 0 && b.len() == 4096),
        "{:?}",
        writes.iter().map(|w| (w.1, w.2.len())).collect::<Vec<_>>()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    /// A cut after any write of any commit, or in the middle of one (a prefix of its
    /// sectors written, the rest of the record's blocks holding what was there or
    /// garbage), loads version n or n + 1 exactly as committed.
    #[test]
    fn a_cut_anywhere_loads_the_old_or_the_new_version(seed in 1u64.., commits in 66usize..80, lbs in prop_oneof![Just(512u32), Just(4096u32)], garbage in any::<bool>()) {
        let mut disk = vec![vec![0u8; COPY_MAX_BYTES]; COPY_COUNT];
        let mut w = Writer::new(lbs);
        let (mut model, mut rnd, mut next) = (Vec::new(), seed | 1, 0u64);
        let mut history: Vec<Vec<Entry>> = vec![Vec::new()];
        for wr in w.commit(&model, ScanCheckpoint::default()) {
            apply(&mut disk, &wr);
        }
        history.push(model.clone());
        for c in 0..commits {
            mutate(&mut model, &mut rnd, &mut next);
            let writes = w.commit(&model, ScanCheckpoint::default());
            history.push(model.clone());
            let n = w.version;
            // Cut before write `k`, with write `k` torn at sector `t`.
            let k = (rnd as usize) % writes.len();
            let mut cut = disk.clone();
            for wr in &writes[..k] {
                apply(&mut cut, wr);
            }
            let (copy, off, bytes) = &writes[k];
            let sectors = bytes.len() / 512;
            let t = (rnd as usize >> 8) % sectors.max(1);
            cut[*copy][*off..off + t * 512].copy_from_slice(&bytes[..t * 512]);
            if garbage && t < sectors {
                for b in &mut cut[*copy][off + t * 512..off + (t + 1) * 512] {
                    *b = 0xa5;
                }
            }
            let (v, es, _) = load(&cut, lbs);
            // Once a write has landed whole, the new version; before, either (a torn
            // write whose bytes that matter all landed is a whole one: the rest of its
            // last logical block is padding).
            let ok = if k > 0 { v == n } else { v == n || v == n - 1 };
            prop_assert!(ok, "commit {} cut before write {} torn at {}/{}: loaded {} of {}", c, k, t, sectors, v, n);
            prop_assert_eq!(&es, &history[v as usize]);
            for wr in &writes {
                apply(&mut disk, wr);
            }
            let (v, es, _) = load(&disk, lbs);
            prop_assert_eq!(v, n);
            prop_assert_eq!(&es, &model);
        }
    }
}

#[test]
fn records_of_an_older_base_do_not_chain() {
    let lbs = 512;
    let mut disk = vec![vec![0u8; COPY_MAX_BYTES]; COPY_COUNT];
    let mut w = Writer::new(lbs);
    let mut model = Vec::new();
    for i in 0..70u64 {
        model.push(Entry::remapped(i * 3, 0, i));
        for wr in w.commit(&model, ScanCheckpoint::default()) {
            apply(&mut disk, &wr);
        }
    }
    // 70 commits: base, 64 records, then a new base (version 66) and 4 records on every
    // copy. The old records still lie beyond the new log's end; none of them chains on.
    let reads: [CopyRead<'_>; COPY_COUNT] = std::array::from_fn(|i| CopyRead::Bytes(&disk[i]));
    let Selection::Load {
        state,
        logs,
        version,
        ..
    } = select(&reads, None)
    else {
        panic!()
    };
    assert_eq!(version, 70);
    assert_eq!(state.version, 66);
    assert!(
        logs.iter().all(|l| l.is_some_and(|l| l.records == 4)),
        "{logs:?}"
    );
    let d = decode(&disk[0], 0).unwrap();
    let stale_at = logs[0].unwrap().tail;
    assert!(
        disk[0][stale_at..stale_at + 8] == log::RECORD_MAGIC,
        "an old record lies there"
    );
    assert_eq!(log::records(&disk[0], &d).count(), 4);
}

#[test]
fn copies_of_one_version_that_differ_are_a_conflict() {
    let lbs = 512;
    let mut a = vec![vec![0u8; COPY_MAX_BYTES]; COPY_COUNT];
    let mut b = a.clone();
    let (mut wa, mut wb) = (Writer::new(lbs), Writer::new(lbs));
    let base = vec![Entry::remapped(1, 0, 1)];
    for (w, d) in [(&mut wa, &mut a), (&mut wb, &mut b)] {
        for wr in w.commit(&base, ScanCheckpoint::default()) {
            apply(d, &wr);
        }
    }
    for wr in wa.commit(
        &[Entry::remapped(1, 0, 1), Entry::remapped(2, 0, 2)],
        ScanCheckpoint::default(),
    ) {
        apply(&mut a, &wr);
    }
    for wr in wb.commit(
        &[Entry::remapped(1, 0, 1), Entry::remapped(3, 0, 2)],
        ScanCheckpoint::default(),
    ) {
        apply(&mut b, &wr);
    }
    // Copies 0-2 from one history, 3-4 from the other: both at version 2.
    let mixed: Vec<Vec<u8>> = (0..5)
        .map(|i| if i < 3 { a[i].clone() } else { b[i].clone() })
        .collect();
    let reads: [CopyRead<'_>; COPY_COUNT] = std::array::from_fn(|i| CopyRead::Bytes(&mixed[i]));
    match select(&reads, None) {
        Selection::Refuse { reason, .. } => assert_eq!(reason, Refusal::Conflict { version: 2 }),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_damaged_record_ends_the_log_there() {
    let lbs = 512;
    let mut disk = vec![vec![0u8; COPY_MAX_BYTES]; COPY_COUNT];
    let mut w = Writer::new(lbs);
    let v1 = vec![Entry::remapped(1, 0, 1)];
    let v2 = vec![Entry::remapped(1, 0, 1), Entry::remapped(9, 0, 7)];
    for wr in w
        .commit(&v1, ScanCheckpoint::default())
        .iter()
        .chain(w.commit(&v2, ScanCheckpoint::default()).iter())
    {
        apply(&mut disk, wr);
    }
    assert_eq!(load(&disk, lbs).0, 2);
    // One bit of a change's spare block, in copy 0's record: the structure stays valid,
    // only the checksum tells. Copy 0 holds version 1 then; the others win.
    let at = w.logs[0].unwrap().tail - 512 + 48 + 24 + 16;
    let mut d = disk.clone();
    d[0][at] ^= 1;
    let reads: [CopyRead<'_>; COPY_COUNT] = std::array::from_fn(|i| CopyRead::Bytes(&d[i]));
    match select(&reads, None) {
        Selection::Load {
            version,
            status,
            rewrite,
            ..
        } => {
            assert_eq!(version, 2);
            assert_eq!(status[0], CopyStatus::Stale { version: 1 });
            assert_eq!(rewrite, [true, false, false, false, false]);
        }
        other => panic!("{other:?}"),
    }
    // The same in every copy (copy 0's is done): version 1 loads, as committed.
    for c in 1..COPY_COUNT {
        let at = w.logs[c].unwrap().tail - 512 + 48 + 24 + 16;
        d[c][at] ^= 1;
    }
    let (v, es, _) = load(&d, lbs);
    assert_eq!((v, es), (1, v1));
}

#[test]
fn a_rewritten_base_does_not_bring_back_records_behind_it() {
    // Copy 0 got a record of version 2 before a cut; the others hold version 1. A repair
    // writes version 1's base back to copy 0 (the same bytes, so the same header
    // checksum the record names). Written with the zeroed block after it, the record no
    // longer chains; written alone, it would bring version 2 back.
    let lbs = 512;
    let mut disk = vec![vec![0u8; COPY_MAX_BYTES]; COPY_COUNT];
    let mut w = Writer::new(lbs);
    let v1 = vec![Entry::remapped(1, 0, 1)];
    let base_writes = w.commit(&v1, ScanCheckpoint::default());
    for wr in &base_writes {
        apply(&mut disk, wr);
    }
    let rec = w.commit(
        &[Entry::remapped(1, 0, 1), Entry::remapped(2, 0, 2)],
        ScanCheckpoint::default(),
    );
    apply(&mut disk, &rec[0]);
    assert_eq!(load(&disk, lbs).0, 2);
    // The repair as the writers do it: base and zeroed block.
    let mut fixed = disk.clone();
    apply(&mut fixed, &base_writes[0]);
    let reads: [CopyRead<'_>; COPY_COUNT] = std::array::from_fn(|i| CopyRead::Bytes(&fixed[i]));
    let Selection::Load { version, .. } = select(&reads, None) else {
        panic!()
    };
    assert_eq!(version, 1);
    // The base alone (no zeroed block): the old record chains again.
    let mut bare = disk.clone();
    let (k, off, b) = &base_writes[0];
    let n = b.len() - lbs as usize;
    bare[*k][*off..off + n].copy_from_slice(&b[..n]);
    let reads: [CopyRead<'_>; COPY_COUNT] = std::array::from_fn(|i| CopyRead::Bytes(&bare[i]));
    let Selection::Load { version, .. } = select(&reads, None) else {
        panic!()
    };
    assert_eq!(version, 2);
}

#[test]
fn a_fenced_block_is_recorded_as_removed() {
    use remap_core::remap_table::{BUSY, FENCED, REMOVE};
    let old = [
        Entry::remapped(5, 0, 1),
        Entry::remapped(9, 0, 2),
        Entry::pending(12),
    ];
    let mut new = old;
    new[0].state = FENCED;
    new[2].state = BUSY;
    let changes: Vec<Entry> = log::diff(old.iter().copied(), &new).collect();
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|c| c.state == REMOVE));
    assert_eq!(changes.iter().map(|c| c.block).collect::<Vec<_>>(), [5, 12]);
}

#[test]
fn a_block_fenced_while_moving_between_spares_is_stored_at_its_new_place() {
    use remap_core::remap_table::FENCED_MOVED;
    let sp = [
        spare_info(
            *b"commit-log-spar0",
            SPARE_SECTORS,
            512,
            BlockSize::from_bytes(4096).unwrap(),
            0,
        ),
        spare_info(
            *b"commit-log-spar1",
            SPARE_SECTORS,
            512,
            BlockSize::from_bytes(4096).unwrap(),
            1,
        ),
    ];
    // Blocks 5..8 a run on spare 0; block 6 moved to spare 1, its commit uncertain.
    let old = [
        Entry::remapped(5, 0, 10),
        Entry::remapped(6, 0, 11),
        Entry::remapped(7, 0, 12),
    ];
    let mut new = old;
    new[1] = Entry {
        state: FENCED_MOVED,
        ..Entry::remapped(6, 1, 3)
    };
    new[1].lost = [4, 0];
    let changes: Vec<Entry> = log::diff(old.iter().copied(), &new).collect();
    let mut want = Entry::remapped(6, 1, 3);
    want.lost = [4, 0];
    assert_eq!(changes, [want]);
    // The same state as the block remapped there: same bytes, same counts.
    let mut stored = new;
    stored[1].state = REMAPPED;
    let enc = |entries: &[Entry]| {
        let mut b = vec![0u8; COPY_MAX_BYTES];
        let n = encode(
            &common::state(UUID, &sp, entries, 3, ScanCheckpoint::default()),
            0,
            &mut b,
        )
        .unwrap();
        b.truncate(n);
        b
    };
    assert_eq!(enc(&new), enc(&stored));
    assert_eq!(count(&new), count(&stored));
    let bytes = enc(&new);
    let d = decode(&bytes, 0).unwrap();
    assert_eq!(d.entries().collect::<Vec<_>>(), stored);
}

#[test]
fn load_order_tries_the_chosen_copy_then_the_other_current_ones() {
    let end = LogEnd {
        tail: 0,
        base_crc: 0,
        records: 0,
        version: 1,
        state_crc: 0,
    };
    let mut logs = [None; COPY_COUNT];
    for k in [0, 2, 3] {
        logs[k] = Some(end);
    }
    assert_eq!(load_order(2, &logs).collect::<Vec<_>>(), [2, 0, 3]);
    assert_eq!(load_order(0, &logs).collect::<Vec<_>>(), [0, 2, 3]);
    assert_eq!(load_order(4, &[None; COPY_COUNT]).collect::<Vec<_>>(), [4]);
}
