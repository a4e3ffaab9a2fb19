//! Commits to a pool of spares, cut at any instant: the spares are written one after
//! the other (all five copies of spare 0, then spare 1, ...), one write in flight, a
//! base or a log record per copy as the module does (`src/meta_io.rs`,
//! `Core::write_copies`), each spare with its own logical block size. Loading each
//! spare with `repair::select` and the pool with `pool::choose` must give the old or
//! the new version exactly as committed, the new one as soon as any write of it has
//! landed whole, and the spares must match their records (`pool::members`).

mod common;

use proptest::prelude::*;
use remap_core::layout::{COPY_COUNT, COPY_MAX_BYTES, COPY_SECTORS};
use remap_core::log::{self, CopyWrite, LogEnd, RecordHead};
use remap_core::meta::*;
use remap_core::pool::{self, PoolChoice, SpareFind};
use remap_core::remap_table::{Entry, PENDING, REMAPPED};
use remap_core::repair::*;
use remap_core::units::BlockSize;

const UUID: [u8; 16] = *b"pool-commit-setp";
const SPARE_SECTORS: u64 = 1 << 20;

fn spare_uuid(i: usize) -> [u8; 16] {
    let mut u = *b"pool-commit-sp00";
    u[15] = b'0' + i as u8;
    u
}

fn spares(lbs: &[u32]) -> Vec<SpareInfo> {
    let bs = BlockSize::from_bytes(4096).unwrap();
    lbs.iter()
        .enumerate()
        .map(|(i, &l)| spare_info(spare_uuid(i), SPARE_SECTORS, l, bs, i as u8))
        .collect()
}

fn state<'a>(spares: &'a [SpareInfo], entries: &'a [Entry], version: u64) -> State<'a> {
    common::state(UUID, spares, entries, version, ScanCheckpoint::default())
}

/// One write: spare, copy, offset in the copy's extent, bytes.
type Write = (usize, usize, usize, Vec<u8>);

/// The module's writer over a pool.
struct Writer {
    lbs: Vec<u32>,
    version: u64,
    logs: Vec<[Option<LogEnd>; COPY_COUNT]>,
    prev: Vec<Entry>,
    prev_crc: u32,
    /// Spares in the last committed list.
    list_len: usize,
}

impl Writer {
    fn new(lbs: &[u32]) -> Self {
        Writer {
            lbs: lbs.to_vec(),
            version: 0,
            logs: vec![[None; COPY_COUNT]; lbs.len()],
            prev: Vec::new(),
            prev_crc: 0,
            list_len: lbs.len(),
        }
    }

    fn commit(&mut self, entries: &[Entry]) -> Vec<Write> {
        let order: Vec<usize> = (0..self.lbs.len()).collect();
        self.commit_in(entries, &order)
    }

    /// A spare joins (logical block size `lbs`): the commit of the longer list, the
    /// new spare's copies first (the module writes spares behind the state first).
    fn join(&mut self, entries: &[Entry], lbs: u32) -> Vec<Write> {
        self.lbs.push(lbs);
        self.logs.push([None; COPY_COUNT]);
        let n = self.lbs.len();
        let order: Vec<usize> = std::iter::once(n - 1).chain(0..n - 1).collect();
        self.commit_in(entries, &order)
    }

    fn commit_in(&mut self, entries: &[Entry], order: &[usize]) -> Vec<Write> {
        let sp = spares(&self.lbs);
        let version = self.version + 1;
        let mut base = vec![0u8; COPY_MAX_BYTES];
        let len = encode(&state(&sp, entries, version), 0, &mut base).unwrap();
        let body_crc = decode(&base[..len], 0).unwrap().body_crc;
        let mut writes = Vec::new();
        for &s in order {
            let lbs = self.lbs[s];
            let padded = padded_len(len, lbs).unwrap();
            let mut rec = vec![0u8; log::MAX_RECORD_BYTES + 65536];
            let head = RecordHead {
                version,
                prev: self.version,
                base_crc: 0,
                state_crc: body_crc,
                scan: ScanCheckpoint::default(),
            };
            let changes = log::diff(self.prev.iter().copied(), entries);
            // A record only when nothing but the map changed (as `Core::make_record`):
            // a spare joining changes the list, so every copy gets a base.
            let rec_len = if self.version > 0 && self.list_len == self.lbs.len() {
                log::encode_record(&mut rec, &head, changes, lbs as usize).ok()
            } else {
                None
            };
            for step in COMMIT_PLAN {
                let k = step.copy;
                let end = self.logs[s][k].filter(|e| e.state_crc == self.prev_crc);
                let w = log::plan_write(end, rec_len);
                let base_crc = match w {
                    CopyWrite::Append { offset } => {
                        let n = rec_len.unwrap();
                        log::set_record_base(&mut rec, end.unwrap().base_crc, self.version)
                            .unwrap();
                        writes.push((s, k, offset, rec[..n].to_vec()));
                        0
                    }
                    CopyWrite::Base => {
                        set_copy_spare(&mut base, &spare_uuid(s)).unwrap();
                        set_copy_sector(&mut base, COPY_SECTORS[k]).unwrap();
                        let end = (padded + lbs as usize).min(COPY_MAX_BYTES);
                        writes.push((s, k, 0, base[..end].to_vec()));
                        u32::from_le_bytes(base[124..128].try_into().unwrap())
                    }
                };
                self.logs[s][k] = log::after_write(
                    end,
                    w,
                    rec_len.unwrap_or(0),
                    (base_crc, padded),
                    (version, body_crc),
                );
            }
        }
        self.version = version;
        self.prev_crc = body_crc;
        self.list_len = self.lbs.len();
        self.prev = entries
            .iter()
            .copied()
            .filter(|e| e.state == REMAPPED || e.state == PENDING)
            .collect();
        writes
    }
}

/// disk[spare][copy]: the copy's extent.
type Disk = Vec<Vec<Vec<u8>>>;

fn apply(disk: &mut Disk, w: &Write) {
    disk[w.0][w.1][w.2..w.2 + w.3.len()].copy_from_slice(&w.3);
}

/// What the module loads from the pool: each spare's selection, the pool's choice,
/// then the chosen spare's chosen copy with its log replayed (checked against the
/// checksum its last record carries).
fn load(disk: &Disk, lbs: &[u32]) -> (u64, Vec<Entry>) {
    load_with(disk, lbs, false)
}

/// `load`; with `format_spare`, a spare whose copies hold no valid one (foreign data,
/// or a first write torn) counts as blank, as the table option makes the module do.
fn load_with(disk: &Disk, lbs: &[u32], format_spare: bool) -> (u64, Vec<Entry>) {
    let mut finds = Vec::new();
    let mut sels = Vec::new();
    for sp in disk {
        let reads: [CopyRead<'_>; COPY_COUNT] = std::array::from_fn(|i| CopyRead::Bytes(&sp[i]));
        let sel = select(&reads, None);
        finds.push(SpareFind::of(&sel, format_spare));
        sels.push(sel);
    }
    let PoolChoice::Load { best, .. } = pool::choose(&finds) else {
        panic!("pool not loadable: {:?}", pool::choose(&finds));
    };
    let Selection::Load {
        chosen,
        state: base,
        version,
        state_crc,
        ..
    } = sels[best]
    else {
        unreachable!()
    };
    let m = pool::members(&finds, &base)
        .unwrap_or_else(|e| panic!("not every spare is a member: {e:?} {finds:?} best {best}"));
    for (i, mi) in m.iter().enumerate().take(disk.len()) {
        // A blank spare after the listed ones is one joining the pool.
        let want = (i < base.spare_count()).then_some(i);
        assert_eq!(*mi, want, "spare {i} matches its own record");
    }
    let mut entries: Vec<Entry> = base.entries().collect();
    for r in log::records(&disk[best][chosen], &base) {
        entries = log::apply(entries.into_iter(), r.changes()).collect();
    }
    // The state's own spare list (a joining spare is in the table, not yet in it).
    let sp: Vec<SpareInfo> = (0..base.spare_count())
        .map(|i| base.spare(i).unwrap())
        .collect();
    assert!(sp.len() <= lbs.len());
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    let n = encode(&state(&sp, &entries, version), 0, &mut buf).unwrap();
    assert_eq!(
        decode(&buf[..n], 0).unwrap().body_crc,
        state_crc,
        "replay gives the recorded state"
    );
    (version, entries)
}

fn mutate(model: &mut Vec<Entry>, rnd: &mut u64, nspares: u8) {
    let mut r = || {
        *rnd ^= *rnd << 13;
        *rnd ^= *rnd >> 7;
        *rnd ^= *rnd << 17;
        *rnd
    };
    for _ in 0..1 + r() % 6 {
        let block = r() % 3000;
        let e = match r() % 4 {
            0 | 1 => Some(Entry::remapped(
                block,
                (r() % u64::from(nspares)) as u8,
                r() % 100_000,
            )),
            2 => Some(Entry::pending(block)),
            _ => None,
        };
        match (model.binary_search_by_key(&block, |e| e.block), e) {
            (Ok(i), Some(e)) => model[i] = e,
            (Ok(i), None) => {
                model.remove(i);
            }
            (Err(i), Some(e)) => model.insert(i, e),
            (Err(_), None) => {}
        }
    }
    // Spare blocks need not be unique here: selection does not judge the state.
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A cut before any write of any commit, with that write torn at any sector (the
    /// rest of it holding the old bytes or garbage), loads version n or n - 1 exactly
    /// as committed; n as soon as one write of it has landed whole, whichever spare
    /// it went to.
    #[test]
    fn a_cut_anywhere_in_a_pool_loads_the_old_or_the_new_version(
        seed in 1u64..,
        commits in 20usize..80,
        lbs in prop_oneof![
            Just(vec![512u32, 4096]),
            Just(vec![4096u32, 512, 512]),
            Just(vec![512u32, 512]),
        ],
        garbage in any::<bool>(),
    ) {
        let mut disk: Disk = vec![vec![vec![0u8; COPY_MAX_BYTES]; COPY_COUNT]; lbs.len()];
        let mut w = Writer::new(&lbs);
        let (mut model, mut rnd) = (Vec::new(), seed | 1);
        let mut history: Vec<Vec<Entry>> = vec![Vec::new()];
        for wr in w.commit(&model) {
            apply(&mut disk, &wr);
        }
        history.push(model.clone());
        for c in 0..commits {
            mutate(&mut model, &mut rnd, lbs.len() as u8);
            let writes = w.commit(&model);
            history.push(model.clone());
            let n = w.version;
            let k = (rnd as usize) % writes.len();
            let mut cut = disk.clone();
            for wr in &writes[..k] {
                apply(&mut cut, wr);
            }
            let (s, copy, off, bytes) = &writes[k];
            let sectors = bytes.len() / 512;
            let t = (rnd as usize >> 8) % sectors.max(1);
            cut[*s][*copy][*off..off + t * 512].copy_from_slice(&bytes[..t * 512]);
            if garbage && t < sectors {
                for b in &mut cut[*s][*copy][off + t * 512..off + (t + 1) * 512] {
                    *b = 0xa5;
                }
            }
            let (v, es) = load(&cut, &lbs);
            let ok = if k > 0 { v == n } else { v == n || v == n - 1 };
            prop_assert!(ok, "commit {} cut before write {} (spare {}) torn at {}/{}: loaded {} of {}", c, k, s, t, sectors, v, n);
            prop_assert_eq!(&es, &history[v as usize]);
            for wr in &writes {
                apply(&mut disk, wr);
            }
            let (v, es) = load(&disk, &lbs);
            prop_assert_eq!(v, n);
            prop_assert_eq!(&es, &model);
        }
    }
}

/// A spare joining the pool, cut before any write of that commit (torn or not): with
/// the new spare in the table the pool loads the old version or the new one; without
/// it, the old one as long as only the new spare was written, and a refusal (never
/// another state) once an old spare holds the list that names it.
#[test]
fn a_cut_while_a_spare_joins() {
    let mut w = Writer::new(&[512, 4096]);
    let mut disk: Disk = vec![vec![vec![0u8; COPY_MAX_BYTES]; COPY_COUNT]; 2];
    let v1 = vec![Entry::remapped(3, 0, 1), Entry::remapped(9, 1, 4)];
    for wr in w.commit(&v1) {
        apply(&mut disk, &wr);
    }
    let writes = w.join(&v1, 512);
    disk.push(vec![vec![0u8; COPY_MAX_BYTES]; COPY_COUNT]);
    for k in 0..writes.len() {
        for torn in [false, true] {
            let mut cut = disk.clone();
            for wr in &writes[..k] {
                apply(&mut cut, wr);
            }
            if torn {
                let (s, c, off, bytes) = &writes[k];
                let half = (bytes.len() / 512 / 2) * 512;
                cut[*s][*c][*off..off + half].copy_from_slice(&bytes[..half]);
            }
            // A torn first write leaves the new spare with no valid copy and not blank:
            // refused as foreign data unless the table says `format_spare`.
            let (v, es) = load_with(&cut, &[512, 4096, 512], k == 0 && torn);
            assert!(v == 1 || v == 2, "cut before write {k}: loaded {v}");
            assert_eq!(es, v1);
            // Without the new spare.
            let old: Disk = cut[..2].to_vec();
            let finds: Vec<SpareFind> = old
                .iter()
                .map(|sp| {
                    let reads: [CopyRead<'_>; COPY_COUNT] =
                        std::array::from_fn(|i| CopyRead::Bytes(&sp[i]));
                    SpareFind::of(&select(&reads, None), false)
                })
                .collect();
            let PoolChoice::Load { best, .. } = pool::choose(&finds) else {
                panic!("cut before write {k}: {:?}", pool::choose(&finds));
            };
            let reads: [CopyRead<'_>; COPY_COUNT] =
                std::array::from_fn(|i| CopyRead::Bytes(&old[best][i]));
            let Selection::Load { state, version, .. } = select(&reads, None) else {
                panic!("{k}");
            };
            let touched = writes[..k].iter().any(|w| w.0 < 2) || (torn && writes[k].0 < 2);
            match pool::members(&finds, &state) {
                Ok(_) => {
                    assert_eq!(version, 1, "cut before write {k}");
                    assert_eq!(load(&old, &[512, 4096]), (1, v1.clone()));
                }
                Err(r) => {
                    assert!(
                        touched,
                        "cut before write {k}: refused ({r:?}) with the old spares untouched"
                    );
                    assert!(matches!(r, pool::PoolRefusal::Missing { record: 2 }));
                }
            }
        }
    }
}

/// The first commit writes every copy of every spare as a base naming its own spare;
/// later ones append one record per copy, padded to that spare's logical block size.
#[test]
fn each_spare_gets_its_own_copies_and_records() {
    let lbs = [512u32, 4096];
    let mut w = Writer::new(&lbs);
    let first = w.commit(&[]);
    assert_eq!(first.len(), 2 * COPY_COUNT);
    for (s, copy, off, bytes) in &first {
        assert_eq!(*off, 0);
        let d = decode(bytes, COPY_SECTORS[*copy]).unwrap();
        assert_eq!(d.spare_uuid, spare_uuid(*s));
    }
    let second = w.commit(&[Entry::remapped(7, 1, 3)]);
    let lens: Vec<(usize, usize)> = second.iter().map(|w| (w.0, w.3.len())).collect();
    assert_eq!(
        lens,
        [[(0, 512); COPY_COUNT], [(1, 4096); COPY_COUNT]].concat()
    );
}
