// SPDX-License-Identifier: GPL-2.0

//! Metadata I/O and the writer-side state: the spare allocator and the commits.
//!
//! C header: [include/linux/dm-io.h](srctree/include/linux/dm-io.h)
//!
//! The format, copy selection, repair planning, commit ordering and the allocator are
//! remap-core's; this file only moves their bytes to and from the spare.

use crate::bindings as b;
use crate::engine::{Snapshot, Special, PENDING};
use crate::remap_core::alloc::{words_for, Bitmap};
use crate::remap_core::judge;
use crate::remap_core::layout::{COPY_COUNT, COPY_MAX_BYTES, COPY_SECTORS};
use crate::remap_core::log::{self, CopyWrite, LogEnd, RecordHead};
use crate::remap_core::meta::identity::{self, IdentityText};
use crate::remap_core::meta::{
    self, Config, Fingerprint, ScanCheckpoint, SpareInfo, State, MAX_SPARES,
};
use crate::remap_core::pool::{self, PoolChoice, PoolRefusal, SpareFind};
use crate::remap_core::repair::{self, CopyRead, CopyStatus, Refusal, Selection, COMMIT_PLAN};
use crate::remap_core::storm::StormGuard;
use crate::remap_core::table_line::TableConfig;
use crate::remap_core::units::Sectors;
use crate::remap_core::uuid::UuidText;
use crate::worker::Scratch;
use core::ffi::CStr;
use kernel::bindings::block_device;
use kernel::ffi::c_int;
use kernel::prelude::*;

macro_rules! dmwarn {
    ($($arg:tt)*) => { pr_warn!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}
macro_rules! dminfo {
    ($($arg:tt)*) => { pr_info!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}
macro_rules! dmerr {
    ($($arg:tt)*) => { pr_err!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}

/// What the constructor learnt about the devices.
pub(crate) struct Geometry {
    /// Main device size.
    pub(crate) main_len: Sectors,
    /// Main device logical block size in bytes.
    pub(crate) main_lbs: u32,
    /// Main device physical block size in bytes.
    pub(crate) main_pbs: u32,
    /// Spare device sizes, in table (pool) order; the first `nspares` are used.
    pub(crate) spare_len: [Sectors; MAX_SPARES],
    /// Target length.
    pub(crate) target_len: Sectors,
    /// Spare logical block sizes in bytes (metadata copies are padded to them).
    pub(crate) spare_lbs: [u32; MAX_SPARES],
    /// Number of spares.
    pub(crate) nspares: usize,
    /// The table may write (read-only tables never format, repair or commit).
    pub(crate) writable: bool,
    /// The main device's own identifier (`meta::identity` encoding; none: all zero).
    pub(crate) identity: [u8; meta::IDENTITY_LEN],
}

/// The load's refusal when the chosen spare reads differently the second time (a live
/// table committing during a reload; the constructor tries again).
pub(crate) const CHANGED_WHILE_READ: &CStr = c"Spare metadata changed while it was being read";

/// A constructor failure: the `ti->error` text and the errno.
pub(crate) type LoadError = (&'static CStr, Error);

/// One spare of the pool, writer side: its record, its device and the state of its
/// five copies.
pub(crate) struct PoolSpare {
    bdev: *mut block_device,
    /// Logical block size: its copies and log records are written in whole ones.
    lbs: u32,
    /// Data blocks and how many are in use.
    pub(crate) nblocks: u64,
    pub(crate) used: u64,
    /// Its part of the pool bitmap (`judge::pool_offsets`).
    word_off: usize,
    words: usize,
    /// Copies to (re)write before the target first resumes: a fresh format or repairs.
    pending_writes: [bool; COPY_COUNT],
    /// Per copy: where its log ends and the version it holds, when known (`None`
    /// after a failed write, and for copies being rewritten: a base goes there).
    logs: [Option<LogEnd>; COPY_COUNT],
    /// Copies that do not hold the loaded state (stale, damaged, unreadable, a new
    /// spare) when a change at load skips the repairs: the commit of the change writes
    /// them first, so that a cut while it overwrites a current copy leaves the new
    /// version on them.
    damaged: [bool; COPY_COUNT],
}

/// Writer-side state, behind the target's mutex.
pub(crate) struct Core {
    /// Result of the last commit: 0 or a negative errno.
    pub(crate) last_commit: c_int,
    /// Copies rewritten when the metadata was loaded.
    pub(crate) repaired: u32,
    /// Remap storm bound.
    pub(crate) storm: StormGuard,
    /// Set by the worker while it handles a batch: its map changes take expedited
    /// grace periods (see `Published::publish`).
    pub(crate) expedite: bool,
    /// `FENCED` entries in the published table (see `Remap::settle_fences`).
    pub(crate) fenced: u32,
    /// The pool bitmap: each spare's part at its `word_off`.
    bitmap: KVVec<u64>,
    /// The spares, in spare list order (the table's order).
    pub(crate) spares: KVVec<PoolSpare>,
    /// Their records in the spare list (what a commit encodes), in the same order.
    pub(crate) infos: KVVec<SpareInfo>,
    version: u64,
    uuid: [u8; 16],
    fingerprint: Fingerprint,
    config: Config,
    scan: ScanCheckpoint,
    /// Encoding buffer of one copy (vmalloc'd, reused by every commit).
    buf: KVVec<u8>,
    /// The last state written to every copy it was meant for, encoded as a base: what
    /// the next commit's record is the difference from (swapped with `buf` after each
    /// successful write).
    prev_buf: KVVec<u8>,
    /// The copy sector `prev_buf`'s header names; whether `prev_buf` holds a state.
    prev_sector: u64,
    prev_ok: bool,
    /// Encoding buffer of one log record.
    rec_buf: KVVec<u8>,
    /// The configuration or binding differs from the loaded copy: the first resume
    /// commits a new version.
    config_changed: bool,
    /// Copies the last `write_copies` wrote before it returned (also on failure).
    landed: u32,
    /// Whether the last `write_copies` issued a write (a failed write may still have
    /// reached the disk whole).
    issued: bool,
    /// The spare whose write or flush failed the last `write_copies`, if one did (the
    /// target then checks whether it was lost: `loss`).
    pub(crate) failed_spare: Option<u8>,
    /// Spares recorded lost in memory (`set_lost`) since the last successful commit:
    /// the disk may still record them active (bit `i`: spare `i`).
    unrecorded_lost: u32,
    client: *mut b::dm_io_client,
    /// The unpublished table version writers rebuild (see `engine`).
    pub(crate) standby: Option<KBox<Snapshot>>,
    /// The worker's reserved storage.
    pub(crate) scratch: Scratch,
}

// SAFETY: the raw pointers are the dm-io client and the spares' block devices, all
// owned by the target for the lifetime of `Core` and usable from any thread; `Core`
// is only used behind the target's mutex.
unsafe impl Send for Core {}

/// Synchronous I/O of `sectors` sectors of `buf` at `sector` of `bdev`.
fn io(
    client: *mut b::dm_io_client,
    bdev: *mut block_device,
    sector: u64,
    buf: &mut [u8],
    op: b::dmr_io_op,
) -> Result {
    let sectors = (buf.len() / 512) as u64;
    // SAFETY: `client` and `bdev` are live for the caller's target; `buf` is a kernel
    // buffer of `sectors` sectors that outlives this synchronous call.
    let r = unsafe { b::dmr_io(client, bdev, sector, sectors, buf.as_mut_ptr().cast(), op) };
    kernel::error::to_result(r)
}

fn new_uuid() -> [u8; 16] {
    let mut u = [0u8; 16];
    // SAFETY: `u` is a valid buffer of 16 bytes.
    unsafe { b::dmr_random_bytes(u.as_mut_ptr().cast(), u.len()) };
    // RFC 4122 version 4, variant 1.
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

impl Core {
    /// Spare data blocks in use, over the pool.
    pub(crate) fn used_blocks(&self) -> u64 {
        self.spares.iter().map(|s| s.used).sum()
    }

    /// Spare data blocks free for new remaps, over the pool (only active spares': a
    /// draining or lost spare's are not).
    pub(crate) fn free_blocks(&self) -> u64 {
        self.spares
            .iter()
            .zip(self.infos.iter())
            .filter(|(_, i)| i.state == meta::SPARE_ACTIVE)
            .map(|(s, _)| s.nblocks.saturating_sub(s.used))
            .sum()
    }

    /// Free data blocks of spare `i`.
    pub(crate) fn spare_free(&self, i: u8) -> u64 {
        self.spares
            .get(usize::from(i))
            .map_or(0, |s| s.nblocks.saturating_sub(s.used))
    }

    /// Whether spare `i` is draining (`spare_remove`).
    pub(crate) fn is_draining(&self, i: u8) -> bool {
        self.spare_state(i) == Some(meta::SPARE_DRAINING)
    }

    /// Whether spare `i` was lost (`meta::SPARE_FAILED`).
    pub(crate) fn is_lost(&self, i: u8) -> bool {
        self.spare_state(i) == Some(meta::SPARE_FAILED)
    }

    /// The lost spares as a bit mask (bit `i`: spare `i`).
    pub(crate) fn lost_mask(&self) -> u32 {
        self.infos
            .iter()
            .take(32)
            .enumerate()
            .filter(|(_, s)| s.state == meta::SPARE_FAILED)
            .fold(0, |m, (i, _)| m | 1u32 << i)
    }

    /// Whether spare `i` takes new blocks (neither draining nor lost).
    pub(crate) fn is_active(&self, i: u8) -> bool {
        self.spare_state(i) == Some(meta::SPARE_ACTIVE)
    }

    /// Spare `i`'s state in the spare list (`None` beyond the pool).
    fn spare_state(&self, i: u8) -> Option<u8> {
        self.infos.get(usize::from(i)).map(|s| s.state)
    }

    /// Records spare `i` lost for the next commit (`meta::SPARE_FAILED`): nothing is
    /// allocated on it and no commit writes it from now on.
    pub(crate) fn set_lost(&mut self, i: u8) {
        if let Some(s) = self.infos.get_mut(usize::from(i)) {
            s.state = meta::SPARE_FAILED;
            if i < 32 {
                self.unrecorded_lost |= 1u32 << i;
            }
        }
    }

    /// Whether spare `i` was recorded lost in memory and no commit has written that
    /// since (the disk may still have it active).
    pub(crate) fn loss_unrecorded(&self, i: u8) -> bool {
        i < 32 && self.unrecorded_lost & (1u32 << i) != 0
    }

    /// Marks spare `i`'s data blocks in use exactly where `items` (the published
    /// table) put blocks, freeing the rest: for a draining spare once `spare_remove`
    /// has moved its blocks, whose fences (`FENCED_MOVED`) kept the blocks they came
    /// from allocated. Only for a draining or lost spare: the blocks it frees may still
    /// be named by the last version on disk until a commit lands, and nothing allocates
    /// on such a spare (it never becomes active again while the table lives).
    pub(crate) fn recount_spare(&mut self, i: u8, items: &[Special]) {
        let Some(sp) = self.spares.get_mut(usize::from(i)) else {
            return;
        };
        let Some(words) = self.bitmap.get_mut(sp.word_off..sp.word_off + sp.words) else {
            return;
        };
        words.fill(0);
        if let Ok(mut bm) = Bitmap::new(words, sp.nblocks) {
            for e in items.iter().filter(|e| e.state != PENDING) {
                for (_, b) in e.copies().filter(|&(s, _)| s == i) {
                    let _ = bm.mark_used(b);
                }
            }
            sp.used = bm.used();
        }
    }

    /// Marks spare `i` draining (or active again) for the next commit.
    pub(crate) fn set_draining(&mut self, i: u8, on: bool) {
        if let Some(s) = self.infos.get_mut(usize::from(i)) {
            s.state = if on {
                meta::SPARE_DRAINING
            } else {
                meta::SPARE_ACTIVE
            };
        }
    }

    /// The setup UUID.
    pub(crate) fn uuid(&self) -> [u8; 16] {
        self.uuid
    }

    /// Version of the last committed metadata.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The scan position of the last loaded or committed state (or the next commit).
    pub(crate) fn scan_checkpoint(&self) -> ScanCheckpoint {
        self.scan
    }

    /// Sets the scan position the next commit records.
    pub(crate) fn set_scan_checkpoint(&mut self, cp: ScanCheckpoint) {
        self.scan = cp;
    }

    /// Whether mode `failed` is recorded.
    pub(crate) fn failed_flag(&self) -> bool {
        self.config.flags & meta::CONFIG_FLAG_FAILED != 0
    }

    /// Records (or clears) mode `failed` for the next commit.
    pub(crate) fn set_failed_flag(&mut self, on: bool) {
        if on {
            self.config.flags |= meta::CONFIG_FLAG_FAILED;
        } else {
            self.config.flags &= !meta::CONFIG_FLAG_FAILED;
        }
    }

    /// Takes over the reserved storage of the state this one replaces.
    pub(crate) fn adopt_reserves(&mut self, old: &mut Core) {
        self.standby = old.standby.take();
        self.scratch = core::mem::replace(&mut old.scratch, Scratch::empty());
    }

    /// Allocates a data block on the first spare, in pool order, that has one free
    /// (first fit within it) and is active (not draining, not lost): `(spare, block)`.
    /// Blocks allocated one after another land next to each other while a spare has
    /// room, so neighbouring bad blocks form runs on one spare.
    pub(crate) fn alloc_block(&mut self) -> Option<(u8, u64)> {
        self.alloc_where(|_| true)
    }

    /// [`Self::alloc_block`] over the spares `ok` takes (by index).
    fn alloc_where(&mut self, ok: impl Fn(usize) -> bool) -> Option<(u8, u64)> {
        for (i, sp) in self.spares.iter_mut().enumerate() {
            let active = self
                .infos
                .get(i)
                .is_some_and(|s| s.state == meta::SPARE_ACTIVE);
            if sp.used >= sp.nblocks || !active || !ok(i) {
                continue;
            }
            let words = self.bitmap.get_mut(sp.word_off..sp.word_off + sp.words)?;
            let mut bm = Bitmap::resume(words, sp.nblocks).ok()?;
            let r = bm.alloc();
            sp.used = bm.used();
            if let Some(b) = r {
                return Some((u8::try_from(i).ok()?, b));
            }
        }
        None
    }

    /// Allocates a data block as [`Self::alloc_block`] does, on an active spare other
    /// than `avoid`: the second copy of a block whose first copy is on `avoid`.
    pub(crate) fn alloc_block_besides(&mut self, avoid: u8) -> Option<(u8, u64)> {
        self.alloc_where(|i| i != usize::from(avoid))
    }

    /// Frees the data blocks of every copy of entry `e`.
    pub(crate) fn free_copies(&mut self, e: &Special) {
        for (s, b) in e.copies() {
            self.free_block(s, b);
        }
    }

    /// Frees data block `blk` of spare `spare`.
    pub(crate) fn free_block(&mut self, spare: u8, blk: u64) {
        let Some(sp) = self.spares.get_mut(usize::from(spare)) else {
            return;
        };
        let Some(words) = self.bitmap.get_mut(sp.word_off..sp.word_off + sp.words) else {
            return;
        };
        if let Ok(mut bm) = Bitmap::resume(words, sp.nblocks) {
            bm.free_block(blk);
            sp.used = bm.used();
        }
    }

    /// Reads the metadata of the pool's spares (formatting blank ones) and returns the
    /// state and the sorted special blocks.
    ///
    /// Each spare's five copies are selected on their own (`repair::select`); the
    /// pool's state is the newest among the spares (`pool::choose`), loaded from that
    /// spare as a lone spare's would be; the spares are matched to the records of its
    /// spare list (`pool::members`; a blank spare in the place of a record that maps
    /// no block is that record, its first copies never landed), which must list them
    /// in the table's order. Blank
    /// spares after the listed ones are added to the list (the first resume commits
    /// that). Spares not holding the loaded state are rewritten whole, like damaged
    /// copies.
    pub(crate) fn load(
        client: *mut b::dm_io_client,
        bdevs: &[*mut block_device],
        cfg: &TableConfig<'_>,
        g: &Geometry,
        report: bool,
        uuid_hint: Option<[u8; 16]>,
    ) -> core::result::Result<(Core, KVVec<Special>), LoadError> {
        let nomem = |_| (c"Cannot allocate metadata buffers", ENOMEM);
        let bs = cfg.block_size;
        let n = bdevs.len();
        if n == 0 || n > MAX_SPARES || n != g.nspares {
            return Err((c"Too many spare devices (at most 16)", EINVAL));
        }
        let mut area =
            KVVec::from_elem(0u8, COPY_COUNT * COPY_MAX_BYTES, GFP_KERNEL).map_err(nomem)?;
        // Pass 1: what each spare's own copies hold, and (for a spare with a state) its
        // copies' rewrite plan and logs. On the heap: the constructor runs deep in the
        // ioctl path, on a 16 KiB stack.
        let mut finds: KVVec<SpareFind> = KVVec::with_capacity(n, GFP_KERNEL).map_err(nomem)?;
        let mut plans: KVVec<([bool; COPY_COUNT], [Option<LogEnd>; COPY_COUNT])> =
            KVVec::with_capacity(n, GFP_KERNEL).map_err(nomem)?;
        for (i, &bdev) in bdevs.iter().enumerate() {
            let ok = read_area(client, bdev, &mut area);
            if n > 1 && !ok.iter().any(|&o| o) {
                // A pool spare none of whose copies reads: acceptable only as a spare
                // the metadata records lost (`pool::members`). Nothing is planned for
                // it: no commit writes a lost spare.
                dmwarn!("spare {}: no metadata copy reads", i);
                plans
                    .push(([false; COPY_COUNT], [None; COPY_COUNT]), GFP_KERNEL)
                    .map_err(nomem)?;
                finds
                    .push(SpareFind::Unreadable, GFP_KERNEL)
                    .map_err(nomem)?;
                continue;
            }
            let reads = area_reads(&area, &ok);
            let find = match repair::select(&reads, None) {
                Selection::Blank
                | Selection::Refuse {
                    reason: Refusal::NoValidCopy,
                    ..
                } if !g.writable => {
                    return Err((
                        c"Read-only table: the spare has no metadata to load",
                        EINVAL,
                    ));
                }
                Selection::Blank => SpareFind::Blank,
                Selection::Refuse {
                    reason: Refusal::NoValidCopy,
                    diagnosis,
                } if cfg.format_spare => {
                    for (k, d) in diagnosis.iter().enumerate() {
                        if let Some(d) = d {
                            dmwarn!("format_spare: spare {} copy {} was: {}", i, k, d.as_str());
                        }
                    }
                    dmwarn!(
                        "format_spare: overwriting foreign data in the metadata area of spare {}",
                        i
                    );
                    SpareFind::Blank
                }
                Selection::Refuse { reason, diagnosis } => {
                    for (k, d) in diagnosis.iter().enumerate() {
                        if let Some(d) = d {
                            dmerr!(
                                "spare {} metadata copy {} at sector {}: {}",
                                i,
                                k,
                                COPY_SECTORS.get(k).unwrap_or(&0),
                                d.as_str()
                            );
                        }
                    }
                    dmerr!("spare {}: {}", i, reason.as_str());
                    let msg = match reason {
                        Refusal::NoValidCopy => {
                            c"Spare holds foreign data or corrupt metadata (format_spare overrides)"
                        }
                        Refusal::MixedSetups => c"Spare metadata copies belong to different setups",
                        Refusal::Conflict { .. } => {
                            c"Spare metadata copies of the same version disagree"
                        }
                        Refusal::BlankWithErrors => c"Spare metadata area unreadable",
                    };
                    return Err((msg, EINVAL));
                }
                sel @ Selection::Load { rewrite, logs, .. } => {
                    plans.push((rewrite, logs), GFP_KERNEL).map_err(nomem)?;
                    SpareFind::of(&sel, false)
                }
            };
            if !matches!(find, SpareFind::State { .. }) {
                plans
                    .push(([true; COPY_COUNT], [None; COPY_COUNT]), GFP_KERNEL)
                    .map_err(nomem)?;
            }
            finds.push(find, GFP_KERNEL).map_err(nomem)?;
        }
        let finds = &finds[..];
        let choice = pool::choose(finds);
        let (best, current) = match choice {
            PoolChoice::Blank => (None, [false; MAX_SPARES]),
            PoolChoice::Load { best, current, .. } => (Some(best), current),
            PoolChoice::Refuse(r) => {
                dmerr!("{}", r.as_str());
                return Err((pool_refusal_text(r), EINVAL));
            }
        };
        // The chosen spare's copies, loaded as a lone spare's are.
        let ok = match best.and_then(|b| bdevs.get(b)) {
            Some(&bdev) => read_area(client, bdev, &mut area),
            None => [false; COPY_COUNT],
        };
        let reads = area_reads(&area, &ok);
        let fingerprint = Fingerprint {
            main_sectors: g.main_len.0,
            logical_block_bytes: g.main_lbs,
            physical_block_bytes: g.main_pbs,
            identity: g.identity,
        };
        // The setup UUID of a pool formatted now: the one the table names, else the
        // one an earlier load of this table chose (the constructor's load writes
        // nothing; the first resume formats), else a new one.
        let fresh_uuid = cfg.uuid.or(uuid_hint).unwrap_or_else(new_uuid);
        let mut core = Core {
            expedite: false,
            last_commit: 0,
            repaired: 0,
            // SAFETY: reads the monotonic clock.
            storm: StormGuard::new(cfg.max_remap_rate, unsafe { b::dmr_now_ms() }),
            fenced: 0,
            bitmap: KVVec::new(),
            spares: KVVec::with_capacity(n, GFP_KERNEL).map_err(nomem)?,
            infos: KVVec::with_capacity(n, GFP_KERNEL).map_err(nomem)?,
            version: 0,
            uuid: [0; 16],
            fingerprint,
            config: Config {
                block_bytes: bs.bytes(),
                read_retries: u32::from(cfg.read_retries),
                target_sectors: g.target_len.0,
                flags: if cfg.copies() > 1 {
                    meta::CONFIG_FLAG_REDUNDANCY
                } else {
                    0
                },
                scan_interval_s: cfg.scan_interval_s.unwrap_or(0),
                scan_rate_kibs: cfg.scan_rate_kibs.unwrap_or(0),
                predict_interval_s: 0,
                alert_min_level: 0,
            },
            scan: ScanCheckpoint::default(),
            buf: KVVec::new(),
            prev_buf: KVVec::from_elem(0u8, COPY_MAX_BYTES, GFP_KERNEL).map_err(nomem)?,
            prev_sector: 0,
            prev_ok: false,
            rec_buf: KVVec::new(),
            config_changed: false,
            landed: 0,
            issued: false,
            failed_spare: None,
            unrecorded_lost: 0,
            client,
            standby: None,
            scratch: Scratch::empty(),
        };
        let mut items = KVVec::new();
        // The records of the spares the loaded state lists (with their blocks in use)
        // and the judged bitmap of those spares.
        let mut recs: KVVec<SpareInfo> =
            KVVec::from_elem(SpareInfo::default(), n, GFP_KERNEL).map_err(nomem)?;
        let mut used_per = [0u64; MAX_SPARES];
        let mut nrec = 0usize;
        let mut judged: KVVec<u64> = KVVec::new();
        let sel = repair::select(&reads, None);
        // The chosen spare read again must give what it gave in the first pass (a read
        // error in between could select an older copy while the other spares holding
        // the newer version count as current).
        if let (
            Some(b),
            Selection::Load {
                version, state_crc, ..
            },
        ) = (best, &sel)
        {
            let same = matches!(
                finds.get(b),
                Some(SpareFind::State { version: v, state_crc: c, .. }) if v == version && c == state_crc
            );
            if !same {
                return Err((CHANGED_WHILE_READ, EINVAL));
            }
        }
        let (best_rw, best_logs) = match (best, sel) {
            (None, _) => {
                core.uuid = fresh_uuid;
                if report {
                    dminfo!("formatting {} blank spare(s)", n);
                }
                ([true; COPY_COUNT], [None; COPY_COUNT])
            }
            (
                Some(_),
                Selection::Load {
                    state,
                    status,
                    rewrite: rw,
                    chosen,
                    version,
                    state_crc,
                    logs,
                },
            ) => {
                // Runs let a copy record more blocks than a state may hold (and than the
                // in-memory table holds); refused before the judge walks them (checked
                // again on the state loaded, which may come from another copy).
                check_block_count(&state)?;
                // The chosen copy's log: its records applied to its base give the state,
                // which must encode to the checksum the last record carries. The
                // replayed state, encoded into `prev_buf`, is what gets judged and
                // loaded; without records, the base itself. A current copy whose log
                // does not replay to the state it records (records that pass their own
                // checksums but are wrong) is not loaded: the next current copy is
                // tried (one holding that version as a base, or another log), and the
                // failed copy is rewritten like a damaged one.
                let mut rw = rw;
                let mut logs = logs;
                let mut status = status;
                let mut found: Option<(usize, Option<usize>)> = None;
                let mut why = c"Spare metadata log does not replay to the state it records";
                let mut dropped = [false; COPY_COUNT];
                for k in repair::load_order(chosen, &logs) {
                    let Some(CopyRead::Bytes(bytes)) = reads.get(k) else {
                        continue;
                    };
                    let base = if k == chosen {
                        Ok(state)
                    } else {
                        meta::decode(bytes, *COPY_SECTORS.get(k).unwrap_or(&0))
                    };
                    let Ok(base) = base else {
                        continue;
                    };
                    if base.version == version {
                        found = Some((k, None));
                        break;
                    }
                    match replay(&base, bytes, version, &mut core.prev_buf) {
                        Ok(n) => match meta::decode(core.prev_buf.get(..n).unwrap_or(&[]), 0) {
                            Ok(st) if st.body_crc == state_crc => {
                                found = Some((k, Some(n)));
                                break;
                            }
                            Ok(_) => {
                                why = c"Spare metadata log does not replay to the state it records"
                            }
                            Err(_) => why = c"Spare metadata log replays to an invalid state",
                        },
                        Err(e) => why = e,
                    }
                    if why == c"Cannot allocate metadata buffers" {
                        return Err((why, ENOMEM));
                    }
                    if report {
                        dmwarn!(
                            "metadata log of copy {}: {}; trying another current copy",
                            k,
                            why.to_str().unwrap_or("")
                        );
                    }
                    if let Some(d) = dropped.get_mut(k) {
                        *d = true;
                    }
                }
                // Copies whose log did not replay are rewritten like damaged ones.
                for (k, _) in dropped.iter().enumerate().filter(|(_, &d)| d) {
                    if let Some(r) = rw.get_mut(k) {
                        *r = true;
                    }
                    if let Some(l) = logs.get_mut(k) {
                        *l = None;
                    }
                    if let Some(st) = status.get_mut(k) {
                        *st = CopyStatus::Bad(meta::Diagnosis::LogReplay);
                    }
                }
                let state = match found {
                    None => return Err((why, EINVAL)),
                    Some((_, Some(n))) => {
                        core.prev_sector = 0;
                        meta::decode(core.prev_buf.get(..n).unwrap_or(&[]), 0).map_err(|_| {
                            (c"Spare metadata log replays to an invalid state", EINVAL)
                        })?
                    }
                    Some((k, None)) => {
                        let bytes = match reads.get(k) {
                            Some(CopyRead::Bytes(b)) => *b,
                            _ => &[],
                        };
                        let sector = *COPY_SECTORS.get(k).unwrap_or(&0);
                        let base = meta::decode(bytes, sector)
                            .map_err(|_| (c"Spare metadata copy unreadable", EINVAL))?;
                        let n = base.total_len;
                        let dst = core
                            .prev_buf
                            .get_mut(..n)
                            .ok_or((c"Spare metadata too long", EINVAL))?;
                        dst.copy_from_slice(
                            bytes.get(..n).ok_or((c"Spare metadata too long", EINVAL))?,
                        );
                        core.prev_sector = sector;
                        base
                    }
                };
                check_block_count(&state)?;
                // Records `spare_remove` drained whose spares the table no longer names
                // leave the list: the state without them (their successors renumbered)
                // is encoded into `prev_buf` and loaded as a replayed one is; the first
                // resume commits it (a new base on every copy: its checksum matches no
                // copy's log).
                let gone = pool::removable(finds, &state);
                let state = if gone == 0 {
                    state
                } else {
                    for r in (0..state.spare_count()).filter(|r| gone & (1 << r) != 0) {
                        if report {
                            dminfo!(
                                "dropping drained spare {} from the pool (record {})",
                                UuidText(&state.spare(r).unwrap_or_default().uuid),
                                r
                            );
                        }
                    }
                    let mut tmp =
                        KVVec::from_elem(0u8, COPY_MAX_BYTES, GFP_KERNEL).map_err(nomem)?;
                    let n = without_records(&state, gone, &mut tmp)?;
                    core.prev_buf
                        .get_mut(..n)
                        .zip(tmp.get(..n))
                        .map(|(d, s)| d.copy_from_slice(s))
                        .ok_or((c"Spare metadata too long", EINVAL))?;
                    drop(tmp);
                    core.prev_sector = 0;
                    core.config_changed = true;
                    meta::decode(core.prev_buf.get(..n).unwrap_or(&[]), 0).map_err(|_| {
                        (
                            c"Spare metadata without the drained spares is invalid",
                            EINVAL,
                        )
                    })?
                };
                core.prev_ok = true;
                // The judge's first rules (a list of 1 to 16 distinct spares, each record
                // consistent) before the list is used to match the spares.
                if let Err(v) = judge::spare_data_blocks(&state) {
                    dmerr!("{}", v.as_str());
                    return Err((v.as_cstr(), EINVAL));
                }
                // The spares, matched to the records of the state's list: the listed
                // ones first, in list order, then blank ones being added.
                let m = pool::members(finds, &state).map_err(|r| {
                    dmerr!("{}", r.as_str());
                    (pool_refusal_text(r), EINVAL)
                })?;
                nrec = state.spare_count();
                for (i, mi) in m.iter().enumerate().take(n) {
                    let want = if i < nrec { Some(i) } else { None };
                    if *mi != want {
                        dmerr!(
                            "spare {} of the table is record {:?} of the metadata's spare list",
                            i,
                            mi
                        );
                        return Err((
                            c"Spares are named in another order than the metadata lists them",
                            EINVAL,
                        ));
                    }
                }
                // One judge (remap-core), the same rules `remapctl meta check` applies:
                // the state in itself, then against these devices and this table line.
                let words = usize::try_from(judge::bitmap_words(&state, |r| {
                    g.spare_len.get(r).filter(|_| r < n).map(|l| l.0)
                }))
                .map_err(|_| (c"Spare too large", EINVAL))?;
                judged = KVVec::from_elem(0u64, words, GFP_KERNEL).map_err(nomem)?;
                let mut devs = [judge::SpareDev { sectors: 0, lbs: 0 }; MAX_SPARES];
                for (r, d) in devs.iter_mut().enumerate().take(nrec) {
                    *d = judge::SpareDev {
                        sectors: g.spare_len.get(r).map_or(0, |l| l.0),
                        lbs: g.spare_lbs.get(r).copied().unwrap_or(0),
                    };
                }
                let verdict = judge::judge_state(&state, &mut judged).and_then(|used| {
                    let expect = judge::Expect {
                        uuid: cfg.uuid,
                        main_sectors: g.main_len.0,
                        main_lbs: g.main_lbs,
                        main_pbs: g.main_pbs,
                        identity: &g.identity,
                        block_bytes: bs.bytes(),
                        target_sectors: g.target_len.0,
                        spares: devs.get(..nrec).unwrap_or(&[]),
                    };
                    judge::judge_against(&state, &expect).map(|()| used)
                });
                used_per = match verdict {
                    Ok(used) => used,
                    Err(v) => {
                        dmerr!("{}", v.as_str());
                        if v == judge::Verdict::MainIdentity {
                            dmerr!(
                                "the spare's setup was made on main device {}; this one is {}",
                                IdentityText(&state.fingerprint.identity),
                                IdentityText(&g.identity)
                            );
                        }
                        return Err((v.as_cstr(), EINVAL));
                    }
                };
                if nrec > n {
                    return Err((c"A spare of the pool is missing from the table", EINVAL));
                }
                for (r, rec) in recs.iter_mut().enumerate().take(nrec) {
                    *rec = state.spare(r).unwrap_or_default();
                    // Format 1 did not record the spare's logical block size.
                    if rec.logical_block_bytes == 0 {
                        rec.logical_block_bytes = g.spare_lbs.get(r).copied().unwrap_or(512);
                    }
                }
                core.uuid = state.uuid;
                core.version = version;
                core.fingerprint = state.fingerprint;
                core.config = state.config;
                core.scan = state.scan;
                let retries = u32::from(cfg.read_retries);
                if core.config.read_retries != retries {
                    core.config.read_retries = retries;
                    core.config_changed = true;
                }
                // The scan options as the table gives them (0: not given).
                let scan = (
                    cfg.scan_interval_s.unwrap_or(0),
                    cfg.scan_rate_kibs.unwrap_or(0),
                );
                if (core.config.scan_interval_s, core.config.scan_rate_kibs) != scan {
                    (core.config.scan_interval_s, core.config.scan_rate_kibs) = scan;
                    core.config_changed = true;
                }
                // The redundancy flag: set while the table asks for two copies or any
                // block still has a second copy (a reader that does not know second
                // copies must refuse such a state).
                let redundant = cfg.copies() > 1 || state.mirrors().next().is_some();
                if (core.config.flags & meta::CONFIG_FLAG_REDUNDANCY != 0) != redundant {
                    core.config.flags ^= meta::CONFIG_FLAG_REDUNDANCY;
                    core.config_changed = true;
                }
                // A setup made where the main device showed no identifier (or by an
                // older version) is bound to the identifier it shows now.
                if core.fingerprint.identity != g.identity
                    && core.fingerprint.identity == identity::IDENTITY_NONE
                {
                    if report {
                        dminfo!(
                            "binding the setup to main device identity {}",
                            IdentityText(&g.identity)
                        );
                    }
                    core.fingerprint.identity = g.identity;
                    core.config_changed = true;
                }
                let (r, l, p) = state.counts();
                items = KVVec::with_capacity(r + p, GFP_KERNEL).map_err(nomem)?;
                for e in state.entries() {
                    items.push(e, GFP_KERNEL).map_err(nomem)?;
                }
                for (i, st) in status.iter().enumerate().filter(|_| report) {
                    match st {
                        CopyStatus::Current => {}
                        CopyStatus::Stale { version } => {
                            dmwarn!(
                                "metadata copy {}: stale (version {} < {}), rewriting",
                                i,
                                version,
                                state.version
                            )
                        }
                        CopyStatus::Bad(d) => {
                            dmwarn!("metadata copy {}: {}, rewriting", i, d.as_str())
                        }
                    }
                }
                if report {
                    dminfo!(
                        "loaded metadata version {}: {} remapped ({} with lost sectors), {} pending",
                        state.version,
                        r,
                        l,
                        p
                    );
                }
                // A format 1 state is upgraded by a commit (version + 1, every copy in
                // format 2), not by repairs: a copy rewritten in format 2 under the
                // version the format 1 copies hold would differ from them in its body,
                // and a cut before the rest followed would leave two different copies of
                // one version, which selection refuses. The commit at the first resume
                // rewrites all five copies, the damaged ones included.
                if state.format_version == meta::FORMAT_V1 {
                    if report {
                        dminfo!(
                            "metadata version {} is in format 1: upgrading to format 2 at the first resume",
                            state.version
                        );
                    }
                    core.config_changed = true;
                }
                (rw, logs)
            }
            (Some(_), _) => {
                return Err((CHANGED_WHILE_READ, EINVAL));
            }
        };
        drop(area);
        // The pool: listed spares with their records, then new ones (a fresh pool:
        // all), each given a record of its own now.
        let mut nblocks = [0u64; MAX_SPARES];
        for (i, nb) in nblocks.iter_mut().enumerate().take(n) {
            if i >= nrec {
                let len = g.spare_len.get(i).map_or(0, |l| l.0);
                let lbs = g.spare_lbs.get(i).copied().unwrap_or(512);
                if let Some(r) = recs.get_mut(i) {
                    *r = meta::spare_info(new_uuid(), len, lbs, bs, i as u8);
                }
                if best.is_some() {
                    if report {
                        dminfo!("adding spare {} to the pool", i);
                    }
                    core.config_changed = true;
                }
            }
            *nb = recs.get(i).map_or(0, |r| r.data_blocks);
        }
        let off = judge::pool_offsets(nblocks.get(..n).unwrap_or(&[]));
        let total = usize::try_from(off.get(n).copied().unwrap_or(0))
            .map_err(|_| (c"Spare too large", EINVAL))?;
        core.bitmap = KVVec::from_elem(0u64, total, GFP_KERNEL).map_err(nomem)?;
        // The listed spares' parts, as the judge marked them (the same layout: the
        // devices' sizes equal the records').
        for (dst, src) in core.bitmap.iter_mut().zip(judged.iter()) {
            *dst = *src;
        }
        for i in 0..n {
            let (rw, logs) = match best {
                Some(b) if i == b => (best_rw, best_logs),
                // A lost spare: no commit writes it (`write_copies`), whatever it holds.
                Some(_)
                    if i < nrec && recs.get(i).is_some_and(|r| r.state == meta::SPARE_FAILED) =>
                {
                    if report {
                        dmwarn!("spare {} is recorded lost: it is not written", i);
                    }
                    ([false; COPY_COUNT], [None; COPY_COUNT])
                }
                Some(_) if i < nrec && current.get(i).copied().unwrap_or(false) => plans
                    .get(i)
                    .copied()
                    .unwrap_or(([true; COPY_COUNT], [None; COPY_COUNT])),
                Some(_) => {
                    if report && i < nrec {
                        dmwarn!(
                            "spare {} does not hold metadata version {}: rewriting it",
                            i,
                            core.version
                        );
                    }
                    ([true; COPY_COUNT], [None; COPY_COUNT])
                }
                None => (best_rw, [None; COPY_COUNT]),
            };
            let word_off = usize::try_from(off.get(i).copied().unwrap_or(0))
                .map_err(|_| (c"Spare too large", EINVAL))?;
            let words = usize::try_from(words_for(nblocks.get(i).copied().unwrap_or(0)))
                .map_err(|_| (c"Spare too large", EINVAL))?;
            // When the load changes the state, the commit of the change writes every
            // copy as a base, those that do not hold the loaded state first (see
            // `damaged`); otherwise they are repaired at the first resume.
            let (pending_writes, damaged) = if core.config_changed {
                ([false; COPY_COUNT], rw)
            } else {
                (rw, [false; COPY_COUNT])
            };
            core.infos
                .push(recs.get(i).copied().unwrap_or_default(), GFP_KERNEL)
                .map_err(nomem)?;
            core.spares
                .push(
                    PoolSpare {
                        bdev: bdevs.get(i).copied().unwrap_or(core::ptr::null_mut()),
                        lbs: g.spare_lbs.get(i).copied().unwrap_or(512),
                        nblocks: nblocks.get(i).copied().unwrap_or(0),
                        used: used_per.get(i).copied().unwrap_or(0),
                        word_off,
                        words,
                        pending_writes,
                        logs,
                        damaged,
                    },
                    GFP_KERNEL,
                )
                .map_err(nomem)?;
        }
        // Keep one copy's worth for encoding.
        core.buf = KVVec::from_elem(0u8, COPY_MAX_BYTES, GFP_KERNEL).map_err(nomem)?;
        core.rec_buf =
            KVVec::from_elem(0u8, log::MAX_RECORD_BYTES + 65536, GFP_KERNEL).map_err(nomem)?;
        Ok((core, items))
    }

    /// The record of a commit of `items` (whose encoding has body checksum
    /// `body_crc`) against `prev`, the last written state, into `rec_buf`, padded to
    /// `align` bytes (a spare's logical block size); its padded length. `None` when
    /// the commit cannot be a record: a change besides the map and the scan
    /// checkpoint, or more changes than a record holds.
    fn make_record(
        &self,
        prev: &meta::Decoded<'_>,
        items: &[Special],
        body_crc: u32,
        rec_buf: &mut [u8],
        align: usize,
    ) -> Option<usize> {
        let same = prev.uuid == self.uuid
            && prev.fingerprint == self.fingerprint
            && prev.config == self.config
            && prev.spare_count() == self.infos.len()
            && self
                .infos
                .iter()
                .enumerate()
                .all(|(i, s)| prev.spare(i) == Some(*s));
        if !same {
            return None;
        }
        let head = RecordHead {
            version: self.version,
            prev: prev.version,
            base_crc: 0,
            state_crc: body_crc,
            scan: self.scan,
        };
        let changes = log::diff(prev.entries(), items);
        log::encode_record(rec_buf, &head, changes, align).ok()
    }

    /// Encodes the current state with `items` and writes it to every spare of the
    /// pool, spare by spare (those behind the state first, see below), and on each to the copies
    /// `which` marks
    /// (its `pending_writes` when `pending`, else all five), one at a time in commit
    /// order, each durable before the next: as a record appended to the copy's log
    /// where `records` allows it and the copy's log has room (`log::plan_write`), else
    /// as a new base. Returns how many copies were written.
    ///
    /// Cut safety is the same for both kinds of write and across spares: one copy in
    /// flight at a time, and a record goes to whole logical blocks past the copy's
    /// last record, so a torn write damages only itself (it fails its checksum and the
    /// copy reads as the previous version). Once a copy of the new version is written
    /// on any spare, a load picks it (the newest across the pool, `pool::choose`) and
    /// rewrites the spares left behind. A record is only appended to a copy known to
    /// hold the version the record applies to (`LogEnd::version`); after a failed
    /// write no copy is known, and the next commit writes bases everywhere.
    fn write_copies(&mut self, items: &[Special], pending: bool, records: bool) -> Result<u32> {
        // Nothing landed yet, whatever makes this call fail (also before any write).
        self.landed = 0;
        self.issued = false;
        self.failed_spare = None;
        let st = State {
            uuid: self.uuid,
            version: self.version,
            fingerprint: self.fingerprint,
            config: self.config,
            spares: &self.infos,
            entries: items,
            scan: self.scan,
        };
        let len = match meta::encode(&st, 0, &mut self.buf) {
            Ok(n) => n,
            Err(meta::EncodeError::TooLarge) => {
                dmerr!("metadata full: the map cannot hold more entries");
                return Err(ENOSPC);
            }
            Err(_) => return Err(EINVAL),
        };
        // Whole logical blocks of each spare (a 4 KiB-sector disk fails smaller I/O);
        // the padding is zeroed, whatever an earlier, longer encoding left there. A
        // base is written with one zeroed logical block after it (where its log's
        // first record would go), when the extent has room: records an earlier base
        // left there must not chain onto this one. They would if this base had the
        // same header checksum as theirs — a repair writing back the very state a
        // damaged copy held — and bring back a version that was never acknowledged.
        let max_lbs = self.spares.iter().map(|s| s.lbs).max().unwrap_or(512);
        let Some(padded_max) = meta::padded_len(len, max_lbs) else {
            dmerr!("metadata full: the map cannot hold more entries");
            return Err(ENOSPC);
        };
        let zero_to = padded_max
            .saturating_add(max_lbs as usize)
            .min(COPY_MAX_BYTES);
        if let Some(pad) = self.buf.get_mut(len..zero_to) {
            pad.fill(0);
        }
        let body_crc = self
            .buf
            .get(56..60)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or(EINVAL)?;
        // The last written state, decoded once: what a record is made against. Only a
        // copy holding exactly it (same body checksum, not merely the same version:
        // repairs at load may have written the selected version with another
        // configuration) gets the record. `prev_buf` holds what the last commit encoded,
        // or the copy the load selected (which passed `decode`): its checksums are not
        // checked again.
        let prev_buf = core::mem::replace(&mut self.prev_buf, KVVec::new());
        let mut rec_buf = core::mem::replace(&mut self.rec_buf, KVVec::new());
        let prev = match meta::decode_own(&prev_buf, self.prev_sector) {
            Ok(p) if self.prev_ok => Some(p),
            _ => None,
        };
        let prev_crc = prev.as_ref().map(|p| p.body_crc);
        let client = self.client;
        let mut sector_in_buf = 0u64;
        let mut n = 0;
        // The record as encoded for one logical block size (re-encoded when a spare
        // of another size comes).
        let mut rec: Option<(u32, Option<usize>)> = None;
        let mut result = Ok(());
        // Spares none of whose copies holds the current state (a spare joining the
        // pool, one left behind by a cut) go first, then those with some copies behind,
        // then the others, each group in list order: a joining spare holds the new
        // version (which lists it) before any other spare does, so a cut or a failed
        // write while it is written leaves the others with the previous version,
        // loadable without it.
        let nsp = self.spares.len();
        //
        // Draining spares (`spare_remove`) come last, whatever their copies hold: a load
        // without such a spare, once it holds no block, drops it from the list
        // (`pool::removable`), so no version may reach it before every other spare holds
        // it whole (the writes stop at the first failure; a commit writes all five
        // copies of each spare).
        //
        // Lost spares (`meta::SPARE_FAILED`) are not written at all: their device stopped
        // answering, and the state they hold is older than any the others hold from the
        // commit that recorded the loss on, so a load never picks it.
        let state_of = |i: usize| self.infos.get(i).map_or(meta::SPARE_ACTIVE, |s| s.state);
        let rank = |i: &usize| match self.spares.get(*i) {
            _ if state_of(*i) == meta::SPARE_FAILED => 4,
            _ if state_of(*i) == meta::SPARE_DRAINING => 3,
            Some(s) if s.damaged.iter().all(|&d| d) => 0,
            Some(s) if s.damaged.iter().any(|&d| d) => 1,
            _ => 2,
        };
        let order_iter = (0..4u8).flat_map(|r| (0..nsp).filter(move |i| rank(i) == r));
        let mut order = [0usize; MAX_SPARES];
        // The spares this commit writes: `order[..nw]`.
        let mut nw = 0;
        for (o, i) in order.iter_mut().zip(order_iter) {
            *o = i;
            nw += 1;
        }
        if nw == 0 {
            // Every spare lost: no copy can be written (the loss path never records
            // the last active spare lost, so this is a safety net).
            dmerr!("metadata commit: no spare of the pool is left to write");
            self.prev_buf = prev_buf;
            self.rec_buf = rec_buf;
            return Err(EIO);
        }
        // Remapped data goes to the spares with plain writes; a commit makes it durable
        // before any copy refers to it. The first copy write on each spare carries a
        // preflush, but the first spare's copies are written before the others' first
        // one: every other spare is flushed now, before any copy is written, so that no
        // cut can leave a new copy (on one spare) naming data another spare has not
        // made durable. A failed flush fails the commit before anything is written.
        for &si in order.iter().take(nw).skip(1) {
            if let Some(sp) = self.spares.get(si) {
                if let Err(e) = io(client, sp.bdev, 0, &mut [], b::dmr_io_op_DMR_IO_FLUSH) {
                    dmerr!(
                        "flush of spare {} before a metadata commit failed: {:?}",
                        si,
                        e
                    );
                    self.failed_spare = u8::try_from(si).ok();
                    result = Err(e);
                }
            }
        }
        'spares: for &si in order.iter().take(nw) {
            if result.is_err() {
                break;
            }
            let Some(sp) = self.spares.get(si) else {
                break;
            };
            let (bdev, lbs) = (sp.bdev, sp.lbs);
            let uuid = self.infos.get(si).map_or([0; 16], |i| i.uuid);
            let which = if pending {
                sp.pending_writes
            } else {
                [true; COPY_COUNT]
            };
            let damaged = sp.damaged;
            let Some(padded) = meta::padded_len(len, lbs) else {
                result = Err(ENOSPC);
                break;
            };
            let base_write = padded.saturating_add(lbs as usize).min(COPY_MAX_BYTES);
            let rec_len = match (rec, &prev) {
                (Some((a, r)), _) if a == lbs => r,
                (_, Some(p)) if records => {
                    let r = self.make_record(p, items, body_crc, &mut rec_buf, lbs as usize);
                    rec = Some((lbs, r));
                    r
                }
                _ => None,
            };
            // Copies that do not hold the current state go first (see `damaged`),
            // then the rest, each group in commit order.
            let first = COMMIT_PLAN
                .iter()
                .filter(|s| damaged.get(s.copy).copied().unwrap_or(false));
            let rest = COMMIT_PLAN
                .iter()
                .filter(|s| !damaged.get(s.copy).copied().unwrap_or(false));
            for step in Iterator::chain(first, rest) {
                let k = step.copy;
                if !which.get(k).copied().unwrap_or(false) {
                    continue;
                }
                let Some(&copy_sector) = COPY_SECTORS.get(k) else {
                    result = Err(EINVAL);
                    break 'spares;
                };
                let end = self
                    .spares
                    .get(si)
                    .and_then(|s| s.logs.get(k).copied().flatten())
                    .filter(|e| Some(e.state_crc) == prev_crc);
                let w = log::plan_write(end, rec_len);
                let mut base_crc = 0u32;
                let r = match (w, end) {
                    (CopyWrite::Append { offset }, Some(e)) => {
                        match rec_buf.get_mut(..rec_len.unwrap_or(0)) {
                            Some(r) => match log::set_record_base(r, e.base_crc, e.version) {
                                Ok(()) => {
                                    let at = copy_sector + (offset / 512) as u64;
                                    self.issued = true;
                                    io(client, bdev, at, r, b::dmr_io_op_DMR_IO_WRITE_FUA)
                                }
                                Err(_) => Err(EINVAL),
                            },
                            None => Err(EINVAL),
                        }
                    }
                    _ => match self.buf.get_mut(..base_write) {
                        Some(buf) => {
                            // The copy's place: the spare it is written on and its
                            // sector.
                            if meta::set_copy_spare(buf, &uuid).is_ok()
                                && meta::set_copy_sector(buf, copy_sector).is_ok()
                            {
                                sector_in_buf = copy_sector;
                                base_crc = buf
                                    .get(124..128)
                                    .and_then(|b| b.try_into().ok())
                                    .map_or(0, u32::from_le_bytes);
                                self.issued = true;
                                io(
                                    client,
                                    bdev,
                                    copy_sector,
                                    buf,
                                    b::dmr_io_op_DMR_IO_WRITE_FUA,
                                )
                            } else {
                                Err(EINVAL)
                            }
                        }
                        None => Err(EINVAL),
                    },
                };
                if let Err(e) = r {
                    dmerr!(
                        "metadata write of spare {} copy {} (version {}) failed: {:?}",
                        si,
                        k,
                        self.version,
                        e
                    );
                    self.failed_spare = u8::try_from(si).ok();
                    result = Err(e);
                    break 'spares;
                }
                if let Some(sp) = self.spares.get_mut(si) {
                    if let Some(slot) = sp.logs.get_mut(k) {
                        *slot = log::after_write(
                            end,
                            w,
                            rec_len.unwrap_or(0),
                            (base_crc, padded),
                            (self.version, body_crc),
                        );
                    }
                    if let Some(d) = sp.damaged.get_mut(k) {
                        *d = false;
                    }
                }
                n += 1;
                self.landed = n;
            }
        }
        self.prev_buf = prev_buf;
        self.rec_buf = rec_buf;
        if let Err(e) = result {
            for sp in self.spares.iter_mut() {
                sp.logs = [None; COPY_COUNT];
            }
            self.prev_ok = false;
            return Err(e);
        }
        // The state just written is what the next record is made against.
        core::mem::swap(&mut self.buf, &mut self.prev_buf);
        self.prev_sector = sector_in_buf;
        self.prev_ok = true;
        Ok(n)
    }

    /// Writes what loading found missing (a fresh format, or copies to repair).
    ///
    /// Loading itself writes nothing: during a table reload the old table is still live
    /// and may commit until it is suspended, so writes wait for the first resume.
    pub(crate) fn write_pending(&mut self, items: &[Special]) -> Result {
        if self
            .spares
            .iter()
            .any(|s| s.pending_writes.iter().any(|&w| w))
        {
            let n = self.write_copies(items, true, false)?;
            for s in self.spares.iter_mut() {
                s.pending_writes = [false; COPY_COUNT];
            }
            self.repaired = n;
            dminfo!("wrote {} metadata copies (version {})", n, self.version);
        }
        if self.config_changed {
            self.commit(items)?;
            self.config_changed = false;
            dminfo!("configuration changed: committed version {}", self.version);
        }
        Ok(())
    }

    /// Commits `items` as the new metadata version.
    ///
    /// The version is consumed even when the commit fails, so a later commit never
    /// reuses the number of copies that may have reached the disk.
    pub(crate) fn commit(&mut self, items: &[Special]) -> Result {
        self.landed = 0;
        self.issued = false;
        self.version = self.version.checked_add(1).ok_or(EINVAL)?;
        let r = self.write_copies(items, false, true);
        if r.is_ok() {
            // Every copy written holds the spare list as it is now.
            self.unrecorded_lost = 0;
        }
        r.map(|_| ())
    }

    /// [`Self::commit`] again after a commit failed (`loss::commit_surviving`: a spare
    /// recorded lost since). What the failed attempt wrote or issued still counts for
    /// [`Self::commit_landed`] and [`Self::commit_uncertain`]: both attempts hold the
    /// same map, so if either may be on the disk, the map may be what loads.
    pub(crate) fn commit_again(&mut self, items: &[Special]) -> Result {
        let (landed, issued) = (self.landed, self.issued);
        let r = self.commit(items);
        self.landed = self.landed.saturating_add(landed);
        self.issued |= issued;
        r
    }

    /// A buffer of `n` bytes to read into for the loss check (`loss::spare_answers`):
    /// the encoding buffer, which holds nothing to keep outside `write_copies` (a
    /// commit encodes into it first; a successful one swaps it with `prev_buf`).
    pub(crate) fn probe_buf(&mut self, n: usize) -> Option<&mut [u8]> {
        self.buf.get_mut(..n)
    }

    /// Whether the last commit, failed or not, wrote at least one copy.
    pub(crate) fn commit_landed(&self) -> bool {
        self.landed > 0
    }

    /// Whether the last commit failed with its outcome unknown: a copy write was
    /// issued and failed, none was known written, and the failed one may still be on
    /// the disk whole (an error reported after the data landed), so the next load may
    /// select either the new version or the previous one.
    pub(crate) fn commit_uncertain(&self) -> bool {
        self.issued && self.landed == 0
    }

    /// Whether `items` (in-memory states included) plus `extra` new remaps still fit
    /// one metadata copy and the in-memory table. Blocks being moved (`BUSY`) and the
    /// new ones count as singles: where they land decides whether they join a run;
    /// with the redundancy flag, each with a second copy.
    pub(crate) fn fits(&self, items: &[Special], extra: usize) -> bool {
        let copies = if self.config.flags & meta::CONFIG_FLAG_REDUNDANCY != 0 {
            2
        } else {
            1
        };
        meta::fits_entries(self.spares.len(), items, extra, copies)
    }
}

/// Reads the five copy extents of a spare into `area`; which reads succeeded.
fn read_area(
    client: *mut b::dm_io_client,
    bdev: *mut block_device,
    area: &mut [u8],
) -> [bool; COPY_COUNT] {
    let mut ok = [false; COPY_COUNT];
    for (i, (chunk, &sector)) in area
        .chunks_mut(COPY_MAX_BYTES)
        .zip(COPY_SECTORS.iter())
        .enumerate()
    {
        let r = io(client, bdev, sector, chunk, b::dmr_io_op_DMR_IO_READ);
        if let Some(o) = ok.get_mut(i) {
            *o = r.is_ok();
        }
    }
    ok
}

/// What `read_area` returned, as selection takes it.
fn area_reads<'a>(area: &'a [u8], ok: &[bool; COPY_COUNT]) -> [CopyRead<'a>; COPY_COUNT] {
    let mut chunks = area.chunks(COPY_MAX_BYTES);
    core::array::from_fn(|i| match chunks.next() {
        Some(c) if ok.get(i).copied().unwrap_or(false) => CopyRead::Bytes(c),
        _ => CopyRead::IoError,
    })
}

/// The `ti->error` text of a pool refusal.
fn pool_refusal_text(r: PoolRefusal) -> &'static CStr {
    match r {
        PoolRefusal::Spare { .. } => c"Spare holds foreign data or corrupt metadata",
        PoolRefusal::MixedSetups => c"Spares belong to different setups",
        PoolRefusal::SameSpare { .. } => {
            c"Two spares carry the same spare UUID (one is a copy of the other)"
        }
        PoolRefusal::Conflict { .. } => c"Spares hold different states under the same version",
        PoolRefusal::TooMany => c"Too many spare devices (at most 16)",
        PoolRefusal::NotAMember { .. } => {
            c"A spare of this setup is not in its spare list (removed from the pool)"
        }
        PoolRefusal::Missing { .. } => c"A spare of the pool is missing from the table",
        PoolRefusal::Unreadable { .. } => {
            c"A spare does not read at all and the metadata does not record it lost"
        }
    }
}

/// Refuses a state recording more remapped and pending blocks than the module keeps in
/// memory ([`meta::MAX_BLOCKS`]).
fn check_block_count(
    state: &meta::Decoded<'_>,
) -> core::result::Result<(), (&'static CStr, Error)> {
    let (r, p) = (state.counts().0, state.counts().2);
    if r.checked_add(p).map_or(true, |n| n > meta::MAX_BLOCKS) {
        dmerr!(
            "the metadata records {} remapped and {} pending blocks; this module keeps at most {} in memory",
            r,
            p,
            meta::MAX_BLOCKS
        );
        return Err((
            c"Spare metadata holds more blocks than this module keeps in memory",
            EINVAL,
        ));
    }
    Ok(())
}

/// The state of a copy whose log holds records: its base `base` (read from `extent`)
/// with the records applied, encoded as a base into `out`; returns the length.
/// `state` without the records of `drop` (`pool::removable`: drained, no block maps
/// to them), the other records' blocks renumbered, encoded into `out`; its length.
fn without_records(
    state: &meta::Decoded<'_>,
    drop: u32,
    out: &mut [u8],
) -> core::result::Result<usize, LoadError> {
    let nomem = |_| (c"Cannot allocate metadata buffers", ENOMEM);
    let mut items: KVVec<Special> = KVVec::new();
    for e in state.entries() {
        let spare = pool::renumbered(e.spare, drop);
        let mirror = if e.has_mirror() {
            pool::renumbered(e.mirror, drop)
        } else {
            e.mirror
        };
        items
            .push(Special { spare, mirror, ..e }, GFP_KERNEL)
            .map_err(nomem)?;
    }
    let mut spares = [SpareInfo::default(); meta::MAX_SPARES];
    let mut n = 0usize;
    for r in (0..state.spare_count().min(meta::MAX_SPARES)).filter(|r| drop & (1 << r) == 0) {
        if let Some(slot) = spares.get_mut(n) {
            *slot = state.spare(r).unwrap_or_default();
            // The priority follows the position.
            slot.priority = n as u8;
            n += 1;
        }
    }
    let st = State {
        uuid: state.uuid,
        version: state.version,
        fingerprint: state.fingerprint,
        config: state.config,
        spares: spares.get(..n).unwrap_or(&[]),
        entries: &items,
        scan: state.scan,
    };
    meta::encode(&st, 0, out).map_err(|_| {
        (
            c"Spare metadata without the drained spares does not fit a copy",
            EINVAL,
        )
    })
}

fn replay(
    base: &meta::Decoded<'_>,
    extent: &[u8],
    version: u64,
    out: &mut [u8],
) -> core::result::Result<usize, &'static CStr> {
    let nomem = c"Cannot allocate metadata buffers";
    let mut items: KVVec<Special> = KVVec::new();
    for e in base.entries() {
        items.push(e, GFP_KERNEL).map_err(|_| nomem)?;
    }
    let mut scan = base.scan;
    let mut last = base.version;
    for r in log::records(extent, base) {
        let mut next =
            KVVec::with_capacity(items.len() + r.change_count(), GFP_KERNEL).map_err(|_| nomem)?;
        for e in log::apply(items.iter().copied(), r.changes()) {
            next.push(e, GFP_KERNEL).map_err(|_| nomem)?;
        }
        items = next;
        scan = r.scan;
        last = r.version;
    }
    if last != version {
        return Err(c"Spare metadata log does not reach the selected version");
    }
    let mut spares = [SpareInfo::default(); meta::MAX_SPARES];
    let n = base.spare_count().min(meta::MAX_SPARES);
    for (i, s) in spares.iter_mut().enumerate().take(n) {
        *s = base.spare(i).unwrap_or_default();
    }
    let st = State {
        uuid: base.uuid,
        version,
        fingerprint: base.fingerprint,
        config: base.config,
        spares: spares.get(..n).unwrap_or(&[]),
        entries: &items,
        scan,
    };
    meta::encode(&st, 0, out)
        .map_err(|_| c"Spare metadata log replays to a state that does not fit a copy")
}
