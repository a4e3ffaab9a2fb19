// SPDX-License-Identifier: GPL-2.0

//! The remap worker: failed writes, failed reads and deferred bios.
//!
//! C header: [include/linux/dm-io.h](srctree/include/linux/dm-io.h)
//!
//! Runs on an ordered workqueue, so one batch at a time, under the core mutex; it takes
//! up to [`MAX_BIOS`] queued bios, does the data I/O synchronously through dm-io, makes
//! the resulting mappings durable with one metadata commit (group commit), publishes
//! the new table and only then completes the bios. Everything it needs is in
//! [`Scratch`], reserved by the constructor: completing a bio never allocates.

use crate::bindings as b;
use crate::engine::{
    is_fenced, mask_any, mask_clear, mask_set, Route, Special, BUSY, FENCED, FENCED_MOVED, PENDING,
    REMAPPED,
};
use crate::remap_core::layout;
use crate::remap_core::meta::MAX_SPARES;
use crate::remap_core::remap_table::NO_MIRROR;
use crate::remap_core::units::{BlockSize, Blocks, Sectors};
use crate::reserve::Fixed;
use crate::target::{
    Core, PerBio, Remap, ST_DEFERRED, ST_FLUSH_FAILED, ST_HANDLED, ST_MAIN, ST_READ_FAILED,
    ST_SPARE, ST_WRITE_FAILED,
};
use core::sync::atomic::Ordering::{AcqRel, Relaxed};
use kernel::bindings::bio;
use kernel::prelude::*;

macro_rules! dmwarn {
    ($($arg:tt)*) => { pr_warn!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}

/// Bios one batch takes from the queue (the rest wait for the next batch).
pub(crate) const MAX_BIOS: usize = 64;
/// Blocks one commit remaps; a batch that needs more commits more than once.
pub(crate) const MAX_JOBS: usize = 128;
/// Pieces of bios (one per bio and block) one commit carries.
const MAX_SLICES: usize = 256;
/// Blocks one commit records as pending.
const MAX_PENDING: usize = 128;

const STS_OK: u8 = b::DMR_STS_OK as u8;
const STS_IOERR: u8 = b::DMR_STS_IOERR as u8;

/// A bio pointer that can sit in a [`Fixed`].
#[derive(Clone, Copy, Default)]
struct BioPtr(*mut bio);

/// The worker's reserved working storage (kept in `Core`, used under its mutex).
pub(crate) struct Scratch {
    bios: Fixed<BioPtr>,
    jobs: Fixed<Job>,
    slices: Fixed<Slice>,
    pending: Fixed<u64>,
    changes: Fixed<Special>,
    /// One block of data.
    buf: KVVec<u8>,
    /// Nonzero: the batch's source blocks must be copied whole (a proactive remap of
    /// a block that still reads), in at most this many read attempts: a block that does
    /// not read completely is not remapped, rather than remapped with lost sectors.
    copy_whole: u32,
}

impl Scratch {
    /// Drops bio `i` from the batch (it was sent on; the worker must not touch it).
    fn forget(&mut self, i: usize) {
        if let Some(slot) = self.bios.as_mut_slice().get_mut(i) {
            *slot = BioPtr::default();
        }
    }

    /// Storage for one batch of blocks of size `bs`.
    pub(crate) fn new(bs: BlockSize) -> Result<Self> {
        Ok(Self {
            bios: Fixed::new(MAX_BIOS)?,
            jobs: Fixed::new(MAX_JOBS)?,
            slices: Fixed::new(MAX_SLICES)?,
            pending: Fixed::new(MAX_PENDING)?,
            changes: Fixed::new(MAX_JOBS + MAX_PENDING)?,
            buf: KVVec::from_elem(0u8, bs.bytes() as usize, GFP_KERNEL)?,
            copy_whole: 0,
        })
    }

    /// No storage: the placeholder left in `Core` while the worker holds the real one.
    pub(crate) const fn empty() -> Self {
        Self {
            bios: Fixed::empty(),
            jobs: Fixed::empty(),
            slices: Fixed::empty(),
            pending: Fixed::empty(),
            changes: Fixed::empty(),
            buf: KVVec::new(),
            copy_whole: 0,
        }
    }
}

/// Which device an I/O goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dev {
    Main,
    /// Spare `n` of the pool.
    Spare(u8),
}

/// A block being remapped in this batch.
#[derive(Clone, Copy, Default)]
struct Job {
    block: u64,
    prev: Option<Special>,
    spare: u8,
    spare_block: u64,
    covered: crate::engine::SectorMask,
    lost: crate::engine::SectorMask,
    /// The second copy (`redundancy 2`): spare and block, `NO_MIRROR` when none.
    mirror: u8,
    mirror_block: u64,
    /// The blocks this job allocated (bit 0: `spare_block`, bit 1: `mirror_block`):
    /// freed when the job is given up.
    fresh: u8,
    /// `move_with`: the copy that moves (to `spare`, `spare_block`) is the block's
    /// second.
    second: bool,
    /// `move_with`: the copy on the leaving spare is dropped, not moved (the block
    /// keeps its other copy, on a spare not lost; no spare besides that one has room).
    drop_copy: bool,
    /// `apply`: the lost spares when the job was placed (a copy named on one of them
    /// is not written; one lost since makes the job be placed again).
    lost_at: u32,
    /// Its data is on its spare block(s) (`apply`'s step 3 done for it): a retry of the
    /// batch after a spare was lost keeps it unless a spare it is on is the lost one.
    written: bool,
}

impl Job {
    fn new(block: u64, prev: Option<Special>) -> Self {
        Self {
            block,
            prev,
            spare: 0,
            spare_block: u64::MAX,
            covered: [0; 2],
            lost: [0; 2],
            mirror: NO_MIRROR,
            mirror_block: 0,
            fresh: 0,
            second: false,
            drop_copy: false,
            lost_at: 0,
            written: false,
        }
    }

    /// `move_with`: where the moving copy is now, (spare, block).
    fn moving_from(&self) -> Option<(u8, u64)> {
        let p = self.prev?;
        Some(if self.second {
            (p.mirror, p.mirror_block)
        } else {
            (p.spare, p.spare_block)
        })
    }

    /// `move_with`: the block's entry with the moving copy at the job's place (or
    /// without it, `drop_copy`).
    fn moved(&self) -> Option<Special> {
        let p = self.prev?;
        Some(if self.drop_copy {
            let (from, _) = self.moving_from()?;
            p.without_copy_on(from)
        } else if self.second {
            Special {
                mirror: self.spare,
                mirror_block: self.spare_block,
                lost: self.lost,
                ..p
            }
        } else {
            Special {
                spare: self.spare,
                spare_block: self.spare_block,
                lost: self.lost,
                ..p
            }
        })
    }

    /// The job's copies: (spare, block), the first, then the second if any.
    fn copies(&self) -> impl Iterator<Item = (u8, u64)> {
        self.special(REMAPPED).copies()
    }

    /// Frees the blocks the job allocated and forgets them.
    fn free_fresh(&mut self, core: &mut Core) {
        if self.fresh & 1 != 0 && self.spare_block != u64::MAX {
            core.free_block(self.spare, self.spare_block);
        }
        if self.fresh & 2 != 0 && self.mirror != NO_MIRROR {
            core.free_block(self.mirror, self.mirror_block);
        }
        self.fresh = 0;
        self.spare_block = u64::MAX;
        self.mirror = NO_MIRROR;
    }

    /// Whether the block was already remapped before this job.
    fn was_remapped(&self) -> bool {
        self.prev.is_some_and(|p| p.state == REMAPPED)
    }

    /// Whether the block was remapped to spares that were all lost and this job gave
    /// it a block on another spare (`apply`): nothing of it is left to read.
    fn relocated(&self) -> bool {
        self.spare_block != u64::MAX
            && self.fresh & 1 != 0
            && self.prev.is_some_and(|p| p.state == REMAPPED)
    }

    /// The job's block in `state`, at its spare block.
    fn special(&self, state: u8) -> Special {
        Special {
            block: self.block,
            state,
            spare: self.spare,
            spare_block: self.spare_block,
            lost: self.lost,
            mirror: self.mirror,
            mirror_block: if self.mirror == NO_MIRROR {
                0
            } else {
                self.mirror_block
            },
        }
    }
}

/// The part of a bio that falls into a job's block.
#[derive(Clone, Copy, Default)]
struct Slice {
    job: usize,
    bio: usize,
    in_block: u64,
    sectors: u64,
    bio_off: u64,
}

impl Remap {
    /// Synchronous I/O of `buf[..sectors*512]` at `sector` of `dev`.
    pub(crate) fn sync_io(
        &self,
        dev: Dev,
        sector: u64,
        buf: &mut [u8],
        sectors: u64,
        op: b::dmr_io_op,
    ) -> Result {
        if (buf.len() as u64) < sectors * 512 {
            return Err(EINVAL);
        }
        let bdev = match dev {
            Dev::Main => self.main_bdev(),
            Dev::Spare(i) => self.spare_bdev(i).ok_or(EINVAL)?,
        };
        // SAFETY: the client and device are live while the target exists; `buf` is a
        // kernel buffer of at least `sectors` sectors that outlives the synchronous call.
        let r = unsafe {
            b::dmr_io(
                self.io_client,
                bdev,
                sector,
                sectors,
                buf.as_mut_ptr().cast(),
                op,
            )
        };
        kernel::error::to_result(r)
    }

    /// Synchronous I/O of a whole block between `buf` and data block `blk` of spare
    /// `sp`.
    fn spare_block_io(&self, sp: u8, blk: u64, buf: &mut [u8], op: b::dmr_io_op) -> Result {
        let bs = self.cfg.block_size;
        let at = layout::data_block_sector(bs, Blocks(blk)).ok_or(EINVAL)?;
        self.sync_io(Dev::Spare(sp), at.0, buf, bs.sectors(), op)
    }

    /// Copies `len` bytes at `off` of the bio's data into `buf` (or back, `to_bio`).
    fn bio_copy(bio: *mut bio, off: u64, buf: &mut [u8], len: u64, to_bio: bool) {
        let len = len.min(buf.len() as u64);
        // SAFETY: the worker owns `bio` (its iterator restored); `buf` holds `len` bytes.
        unsafe {
            b::dmr_bio_copy(
                bio,
                off as u32,
                buf.as_mut_ptr().cast(),
                len as u32,
                i32::from(to_bio),
            )
        };
    }

    /// The worker's entry point.
    pub(crate) fn work(&self) {
        loop {
            let mut core = self.core.lock();
            // Read under the core mutex: remaps by messages and the scan (also under
            // it) before this point are not this batch's.
            let remaps = self.stats.remaps.load(Relaxed);
            // SAFETY: the worker is live while the target exists.
            let mut head = unsafe { b::dmr_worker_take_bios(self.worker, MAX_BIOS as u32) };
            // Spares with failed I/O (lost, or mode failed), after taking the batch: a
            // write that failed on a spare set the spare's bit before it was queued,
            // so its loss is recorded before the batch places the write elsewhere.
            let mut event = self.handle_spare_errors(&mut core);
            event |= self.record_failed(&mut core);
            event |= self.loss_event.swap(false, AcqRel);
            if head.is_null() {
                drop(core);
                if event {
                    self.raise_event();
                }
                return;
            }
            let mut sc = core::mem::replace(&mut core.scratch, Scratch::empty());
            sc.bios.clear();
            while !head.is_null() {
                let cur = head;
                // SAFETY: `cur` is a bio of the list the worker took; unlinks it.
                head = unsafe { b::dmr_bio_next(cur) };
                if sc.bios.push(BioPtr(cur)).is_err() {
                    // Cannot happen (the list holds at most MAX_BIOS bios); never drop
                    // a bio, though.
                    self.complete(cur, STS_IOERR);
                }
            }
            // Bios that failed on the main device wait for this batch's map changes:
            // expedited grace periods (see `Published::publish`).
            core.expedite = true;
            self.process(&mut core, &mut sc);
            core.expedite = false;
            core.scratch = sc;
            self.mirror(&core);
            // A batch that remapped blocks raises a dm event (`dmsetup wait`, `remapctl
            // monitor` wake), as does entering mode failed; outside the core mutex (see
            // `raise_event`). `clear_stats` may zero `remaps` meanwhile: at worst one
            // event too many.
            event |= self.stats.remaps.load(Relaxed) != remaps;
            event |= self.loss_event.swap(false, AcqRel);
            drop(core);
            if event {
                self.raise_event();
            }
        }
    }

    /// Completes a bio the worker owns.
    fn complete(&self, bio: *mut bio, status: u8) {
        let pb = Self::per_bio(bio);
        // SAFETY: `pb` is this bio's per-bio data; the worker owns the bio.
        unsafe { (*pb).state = ST_HANDLED };
        if status != STS_OK {
            // SAFETY: as above.
            if unsafe { (*pb).kind } == b::dmr_bio_kind_DMR_BIO_READ {
                self.stats.read_errors.fetch_add(1, Relaxed);
            } else {
                self.stats.write_errors.fetch_add(1, Relaxed);
            }
        }
        // SAFETY: the worker owns `bio`; completing hands it back to dm core, which calls
        // `end_io` (sees ST_HANDLED) and finishes the original bio.
        unsafe { b::dmr_bio_endio(bio, status) };
    }

    /// Sends a deferred bio on its way according to the current table. Returns whether
    /// it was sent: from then on the bio belongs to the block layer (it may complete
    /// and be freed at once), so the caller forgets it without touching it again.
    ///
    /// Ordering: the worker holds the core mutex, so the table cannot change until the
    /// bio is tracked; a later remap or unremap of its block publishes BUSY and drains
    /// the in-flight SRCU, which this bio entered, as `map` does for its bios.
    fn resubmit(&self, bio: *mut bio, pb: &mut PerBio, route: Route) -> bool {
        let (bdev, sector) = match route {
            Route::Main => (self.main_bdev(), pb.sector),
            // A spare beyond the pool fails the bio (see `remap_map`).
            Route::Spare(i, s) if self.spare_bdev(i).is_some() => {
                (self.spare_bdev(i).unwrap_or(core::ptr::null_mut()), s)
            }
            Route::Fail | Route::Defer | Route::Spare(..) => {
                pb.result = STS_IOERR;
                return false;
            }
        };
        pb.state = if route == Route::Main {
            ST_MAIN
        } else {
            ST_SPARE
        };
        if let Route::Spare(i, _) = route {
            pb.spare = i;
        }
        if pb.kind == b::dmr_bio_kind_DMR_BIO_WRITE || pb.state == ST_SPARE {
            // SAFETY: the worker is live; released in end_io.
            pb.srcu = unsafe { b::dmr_io_enter(self.worker) };
            pb.has_srcu = 1;
        }
        // SAFETY: the worker owns `bio` and its iterator is at the start; the device is
        // held by the target. After the submission neither `bio` nor `pb` is touched.
        unsafe {
            b::dmr_bio_restore(bio, &mut pb.rec);
            b::dmr_bio_remap(bio, bdev, sector);
            b::dmr_bio_submit(bio);
        }
        true
    }

    /// One batch: every bio the worker took, with as few commits as the reserved
    /// storage allows (one, unless more than [`MAX_JOBS`] blocks need the spare).
    fn process(&self, core: &mut Core, sc: &mut Scratch) {
        let bs = self.cfg.block_size;
        let spb = bs.sectors();
        sc.jobs.clear();
        sc.slices.clear();
        sc.pending.clear();
        let failed = self.is_failed();

        for i in 0..sc.bios.as_slice().len() {
            let Some(&BioPtr(bio)) = sc.bios.as_slice().get(i) else {
                break;
            };
            // SAFETY: per-bio data of a bio the worker owns.
            let pb = unsafe { &mut *Self::per_bio(bio) };
            // SAFETY: restores the data iterator saved in `map`.
            unsafe { b::dmr_bio_restore(bio, &mut pb.rec) };
            pb.result = STS_OK;
            pb.via_spare = false;
            let write = pb.kind == b::dmr_bio_kind_DMR_BIO_WRITE;
            let first = bs.block_of(Sectors(pb.sector)).0;
            let end = pb.sector + u64::from(pb.sectors);
            let last = bs.block_of(Sectors(end.saturating_sub(1))).0;
            match pb.state {
                ST_DEFERRED => {
                    // Its block was busy, pending, or had lost sectors; route it again
                    // with the table as it is now (a deferred bio covers one block).
                    let cur = self.published.items_locked();
                    let cur = crate::remap_core::remap_table::find(cur, first).copied();
                    let snap = self.published.current_locked();
                    let lost = self.lost_spares.load(core::sync::atomic::Ordering::Acquire);
                    let (mut r, cut) = crate::engine::route(
                        snap,
                        bs,
                        pb.sector,
                        u64::from(pb.sectors),
                        write,
                        lost,
                    );
                    if cut.is_some() {
                        // Cannot happen: `map` defers a bio only up to the end of its
                        // block, and a bio within one block is never cut. Were it cut,
                        // its rest would belong elsewhere: fail it rather than send it
                        // whole to where only its first part goes.
                        pr_err!(
                            "device-mapper: remap: deferred bio at sector {} spans blocks\n",
                            pb.sector
                        );
                        r = Route::Fail;
                    }
                    let bstart = first * spb;
                    let in_block = pb.sector - bstart;
                    let n = end.min(bstart + spb) - pb.sector;
                    // A write of a block with two copies (`redundancy 2`) that only
                    // overwrites data: written to every copy here.
                    let two = cur.filter(|c| {
                        r == Route::Defer
                            && write
                            && c.state == REMAPPED
                            && c.has_mirror()
                            && !mask_any(&c.lost, in_block, in_block + n)
                    });
                    if let Some(c) = two {
                        match self.write_copies(core, bio, &c, in_block, n, &mut sc.buf) {
                            Some(true) => continue,
                            Some(false) => {
                                pb.result = STS_IOERR;
                                continue;
                            }
                            None if failed => {
                                pb.result = STS_IOERR;
                                continue;
                            }
                            None => {}
                        }
                    }
                    match r {
                        Route::Main | Route::Spare(..) => {
                            if self.resubmit(bio, pb, r) {
                                sc.forget(i);
                            }
                        }
                        Route::Fail => pb.result = STS_IOERR,
                        Route::Defer if write && failed => {
                            // No remaps in mode failed: a pending block is written in
                            // place (the drive may reallocate it); lost sectors stay.
                            if cur.is_some_and(|c| c.state == PENDING) {
                                if self.resubmit(bio, pb, Route::Main) {
                                    sc.forget(i);
                                }
                            } else {
                                pb.result = STS_IOERR;
                            }
                        }
                        Route::Defer if write => {
                            self.add_slice(core, sc, i, first, in_block, n, 0);
                        }
                        Route::Defer => pb.result = STS_IOERR,
                    }
                }
                ST_WRITE_FAILED => {
                    // Try the main device again, block by block (with FUA when the
                    // bio asked for it): only the blocks that still fail are remapped.
                    // SAFETY: `bio` is valid.
                    let fua = unsafe { b::dmr_bio_has_fua_or_flush(bio) } != 0;
                    let op = if fua {
                        b::dmr_io_op_DMR_IO_WRITE_FUA
                    } else {
                        b::dmr_io_op_DMR_IO_WRITE
                    };
                    let mut to_spare = false;
                    for blk in first..=last {
                        let (bstart, s0, n, bio_off) = piece(spb, pb.sector, end, blk);
                        let cur = crate::remap_core::remap_table::find(
                            self.published.items_locked(),
                            blk,
                        )
                        .copied();
                        // Retried on main unless the block's data lives on the spare, the
                        // block is pending (remapped by its next write, as drive firmware
                        // does; written in place in mode failed), or this batch already
                        // moves it (a write acknowledged from main could be overwritten
                        // by that move's copy).
                        if cur.is_some_and(|c| is_fenced(c.state)) {
                            // A bio that failed on main before the block was fenced:
                            // nothing completes there until the fence is lifted.
                            pb.result = STS_IOERR;
                            break;
                        }
                        let in_batch = sc.jobs.as_slice().iter().any(|j| j.block == blk);
                        let on_main = !in_batch
                            && !cur.is_some_and(|c| {
                                c.state == REMAPPED || (c.state == PENDING && !failed)
                            });
                        if on_main {
                            Self::bio_copy(bio, bio_off, &mut sc.buf, n * 512, false);
                            if self.sync_io(Dev::Main, s0, &mut sc.buf, n, op).is_ok() {
                                continue;
                            }
                        }
                        if failed {
                            pb.result = STS_IOERR;
                            break;
                        }
                        to_spare = true;
                        self.add_slice(core, sc, i, blk, s0 - bstart, n, bio_off);
                    }
                    if !to_spare && pb.result == STS_OK {
                        self.stats.write_retried_ok.fetch_add(1, Relaxed);
                    }
                }
                ST_READ_FAILED => {
                    let mut all_main = true;
                    for blk in first..=last {
                        let (bstart, s0, n, bio_off) = piece(spb, pb.sector, end, blk);
                        let cur = crate::remap_core::remap_table::find(
                            self.published.items_locked(),
                            blk,
                        )
                        .copied();
                        let ok = match cur {
                            Some(c) if is_fenced(c.state) => false,
                            // Remapped since the read was sent: its data is on the spare.
                            Some(c) if c.state == REMAPPED => {
                                all_main = false;
                                self.read_spare_part(&c, s0 - bstart, n, &mut sc.buf)
                            }
                            _ => (0..self.cfg.read_retries).any(|_| {
                                self.sync_io(
                                    Dev::Main,
                                    s0,
                                    &mut sc.buf,
                                    n,
                                    b::dmr_io_op_DMR_IO_READ,
                                )
                                .is_ok()
                            }),
                        };
                        if ok {
                            Self::bio_copy(bio, bio_off, &mut sc.buf, n * 512, true);
                            continue;
                        }
                        pb.result = STS_IOERR;
                        let record = cur.is_none()
                            && !failed
                            && self.writable
                            && !sc.pending.as_slice().contains(&blk);
                        if record && sc.pending.push(blk).is_err() {
                            // Full: this batch records what it can; the block is
                            // recorded by the next read that fails on it.
                        }
                    }
                    if pb.result == STS_OK && all_main {
                        self.stats.read_retried_ok.fetch_add(1, Relaxed);
                    }
                }
                ST_FLUSH_FAILED => {
                    // A flush that failed on spare `pb.spare` (`remap_end_io`); the loss
                    // check ran after this batch was taken, so it has decided.
                    // Successfully only once the loss is on the disk (or is put there
                    // now): a spare the metadata still records active may be read again
                    // after a reload, and what the flush was to make durable is not on it.
                    pb.result = if self.spare_is_lost(pb.spare)
                        && (!core.loss_unrecorded(pb.spare) || self.commit_current(core).is_ok())
                    {
                        STS_OK
                    } else {
                        STS_IOERR
                    };
                }
                _ => pb.result = STS_IOERR,
            }
        }

        self.flush_batch(core, sc);
        for &BioPtr(bio) in sc.bios.as_slice() {
            if bio.is_null() {
                // Resubmitted: no longer ours.
                continue;
            }
            // SAFETY: per-bio data of a bio the worker owns.
            let pb = unsafe { &*Self::per_bio(bio) };
            if pb.via_spare && pb.result == STS_OK {
                self.stats.write_errors_hidden.fetch_add(1, Relaxed);
            }
            self.complete(bio, pb.result);
        }
        sc.bios.clear();
    }

    /// `redundancy 2`: writes sectors `in_block..in_block+n` of block `c` (remapped,
    /// two copies, none of those sectors lost) from `bio` to each copy whose spare is
    /// not lost, with FUA when the bio asks for it. `Some(true)`: written to every such
    /// copy, or to one while the spares of the others failed the write and were then
    /// recorded lost, with a commit (the entry still names them; reads go to the copy
    /// left, `route_with`); the bio completes. `Some(false)`: that commit failed (mode
    /// failed); the bio fails. `None`: a copy failed on a spare that still answers (a
    /// bad spot), or no copy took the write: the caller goes the remap way
    /// (`add_slice`), which rewrites the block and fails it as for one copy.
    ///
    /// Ordering: under the core mutex, like every change of the block's entry and
    /// every move of its data (which publish it BUSY and drain first); bios `map` sends
    /// to the block meanwhile are reads, which see the old or the new data of this
    /// write, as reads racing a write may.
    fn write_copies(
        &self,
        core: &mut Core,
        bio: *mut bio,
        c: &Special,
        in_block: u64,
        n: u64,
        buf: &mut [u8],
    ) -> Option<bool> {
        // SAFETY: `bio` is valid (the worker owns it).
        let fua = unsafe { b::dmr_bio_has_fua_or_flush(bio) } != 0;
        let op = if fua {
            b::dmr_io_op_DMR_IO_WRITE_FUA
        } else {
            b::dmr_io_op_DMR_IO_WRITE
        };
        Self::bio_copy(bio, 0, buf, n * 512, false);
        let mut wrote = false;
        // A copy skipped or failed on a spare whose loss the disk may not record yet:
        // that loss is committed before the write completes, so a copy left stale on
        // the lost spare is never read again (not even after a reload that finds the
        // spare answering).
        let mut lost = false;
        let mut bad_spot = false;
        for (sp, blk) in c.copies() {
            if self.spare_is_lost(sp) {
                lost |= core.loss_unrecorded(sp);
                continue;
            }
            let Some(at) = layout::data_block_sector(self.cfg.block_size, Blocks(blk)) else {
                bad_spot = true;
                break;
            };
            if self
                .sync_io(Dev::Spare(sp), at.0 + in_block, buf, n, op)
                .is_ok()
            {
                wrote = true;
                continue;
            }
            self.spare_io_error(sp, c"spare write error");
            if !self.lose_now(core, sp, "a write of a block's copy failed there") {
                bad_spot = true;
                break;
            }
            lost = true;
        }
        if lost && self.commit_current(core).is_err() {
            self.enter_failed(c"metadata write failed while recording a lost spare");
            return Some(false);
        }
        if bad_spot || !wrote {
            return None;
        }
        Some(true)
    }

    /// Reads remapped block `e` whole into `buf`, from its copies whose spare was not
    /// lost in turn (`redundancy 2`: the second where the first fails). Each failure
    /// is a spare I/O error, as on any other path: counted, and mode failed unless the
    /// spare is found lost (the event is raised by the worker, outside the core mutex).
    /// Spares in `failed` (bit `i`: spare `i`) are not tried; one that fails is added:
    /// a step over many blocks does not wait for a dead spare's timeouts block after
    /// block (its loss can only be recorded once the step lets go of the core mutex).
    fn read_any_copy(&self, e: &Special, buf: &mut [u8], failed: &mut u32) -> Result {
        let mut r = Err(EIO);
        let skip = *failed;
        let tried = move |sp: u8| sp < 32 && skip & (1u32 << sp) != 0;
        for (sp, blk) in e
            .copies()
            .filter(|&(sp, _)| !self.spare_is_lost(sp) && !tried(sp))
        {
            r = self.spare_block_io(sp, blk, buf, b::dmr_io_op_DMR_IO_READ);
            if r.is_ok() {
                break;
            }
            self.spare_io_error(sp, c"spare read error while moving a block back to main");
            if sp < 32 {
                *failed |= 1u32 << sp;
            }
        }
        r
    }

    /// Reads `n` sectors at `off` of remapped block `c` from the spare into `buf`.
    /// False when a lost sector is asked for or the spare fails (mode failed then).
    /// A block with two copies (`redundancy 2`) is read from the second where the
    /// first fails, and from a copy whose spare was not lost.
    fn read_spare_part(&self, c: &Special, off: u64, n: u64, buf: &mut [u8]) -> bool {
        if mask_any(&self.lost_of(c), off, off + n) {
            return false;
        }
        for (sp, blk) in c.copies().filter(|&(sp, _)| !self.spare_is_lost(sp)) {
            let Some(base) = layout::data_block_sector(self.cfg.block_size, Blocks(blk)) else {
                continue;
            };
            if self
                .sync_io(
                    Dev::Spare(sp),
                    base.0 + off,
                    buf,
                    n,
                    b::dmr_io_op_DMR_IO_READ,
                )
                .is_ok()
            {
                return true;
            }
            self.spare_io_error(sp, c"spare read error");
        }
        false
    }

    /// Adds the piece `in_block..in_block+n` of block `blk` of bio `i` to the batch's
    /// remaps, committing the batch first when the reserved storage is full.
    #[expect(clippy::too_many_arguments)]
    fn add_slice(
        &self,
        core: &mut Core,
        sc: &mut Scratch,
        i: usize,
        blk: u64,
        in_block: u64,
        n: u64,
        bio_off: u64,
    ) {
        if sc.jobs.room() == 0 || sc.slices.room() == 0 {
            self.flush_batch(core, sc);
        }
        let job = match sc.jobs.as_slice().iter().position(|j| j.block == blk) {
            Some(j) => j,
            None => {
                // The table only changes in `flush_batch`, under this same mutex: the
                // block's state now is the one the remap starts from.
                let prev = crate::remap_core::remap_table::find(self.published.items_locked(), blk)
                    .copied()
                    .filter(|p| p.state != BUSY);
                // A flush of the batch just above may have fenced the block.
                if prev.is_some_and(|p| is_fenced(p.state)) {
                    self.fail_bio(sc, i);
                    return;
                }
                if sc.jobs.push(Job::new(blk, prev)).is_err() {
                    self.fail_bio(sc, i);
                    return;
                }
                sc.jobs.as_slice().len() - 1
            }
        };
        let sl = Slice {
            job,
            bio: i,
            in_block,
            sectors: n,
            bio_off,
        };
        if sc.slices.push(sl).is_err() {
            self.fail_bio(sc, i);
        }
    }

    fn fail_bio(&self, sc: &Scratch, i: usize) {
        if let Some(&BioPtr(bio)) = sc.bios.as_slice().get(i) {
            // SAFETY: per-bio data of a bio the worker owns.
            unsafe { (*Self::per_bio(bio)).result = STS_IOERR };
        }
    }

    /// Applies the batch's remaps and pending blocks (one commit) and settles the bios
    /// that depend on them.
    fn flush_batch(&self, core: &mut Core, sc: &mut Scratch) {
        let ok = self.apply(core, sc);
        for s in sc.slices.as_slice() {
            let Some(&BioPtr(bio)) = sc.bios.as_slice().get(s.bio) else {
                continue;
            };
            // SAFETY: per-bio data of a bio the worker owns.
            let pb = unsafe { &mut *Self::per_bio(bio) };
            if ok {
                pb.via_spare = true;
            } else {
                pb.result = STS_IOERR;
            }
        }
        sc.jobs.clear();
        sc.slices.clear();
        sc.pending.clear();
    }

    /// Remaps the batch's jobs and records its pending blocks, with one commit.
    /// Returns whether every mapping the bios depend on is durable.
    fn apply(&self, core: &mut Core, sc: &mut Scratch) -> bool {
        // A block remapped in this batch is not pending; a pending block already in the
        // table stays as it is.
        {
            let (jobs, table) = (&sc.jobs, self.published.items_locked());
            sc.pending.retain(|&p| {
                !jobs.as_slice().iter().any(|j| j.block == p)
                    && crate::remap_core::remap_table::find(table, p).is_none()
            });
        }
        if sc.jobs.as_slice().is_empty() && sc.pending.as_slice().is_empty() {
            return true;
        }
        let bs = self.cfg.block_size;
        let spb = bs.sectors();
        // 0. A storm of new remaps means the main device is failing as a whole.
        let new = sc
            .jobs
            .as_slice()
            .iter()
            .filter(|j| !j.was_remapped())
            .count() as u64;
        // Pending blocks are recorded only while the map has room for them besides the
        // new remaps: without the record their reads still fail (from the main device)
        // and their next write goes to the main device first; only that shortcut is
        // lost.
        // Blocks of a lost spare placed on another one (below) may each take a single
        // entry and a lost-sectors record, and split the run they were in (52 bytes at
        // most: five singles' room).
        let relocating = Self::relocations(core, sc);
        let pend = sc.pending.as_slice().len();
        let room = (new as usize).saturating_add(relocating.saturating_mul(5));
        if pend > 0 && !core.fits(self.published.items_locked(), room.saturating_add(pend)) {
            sc.pending.clear();
            if sc.jobs.as_slice().is_empty() {
                return true;
            }
        }
        // SAFETY: reads the monotonic clock.
        let now = unsafe { b::dmr_now_ms() };
        if new > 0 && self.is_failed() {
            // Mode failed (possibly entered earlier in this batch or by `end_io`): no
            // new remaps.
            return false;
        }
        if room > 0 && !core.fits(self.published.items_locked(), room) {
            self.enter_failed(c"metadata full: the remap table cannot hold more entries");
            return false;
        }
        if new > 0 && !core.storm.take(new, now) {
            self.enter_failed(c"remap storm: more than max_remap_rate remaps per minute, the main device looks failed");
            return false;
        }
        // Steps 1-3 run again when a spare of the pool turns out dead under them (a
        // read or write of a block's data failed there and `lose_now` recorded it lost):
        // the batch's blocks are placed afresh on the spares left, so the bios do not
        // fail while another spare is active. Once per spare lost, so at most
        // MAX_SPARES times. Ordering: the blocks stay busy (published and drained once,
        // in step 2) across the retries, so no bio reaches any of them meanwhile; the
        // lost spare's `lost_spares` bit is set (`lose_now`) before the commit (step 4)
        // that records the loss, as in `lose_spare`.
        let mut ok;
        let mut unreadable;
        let mut spare_err;
        let mut busy = false;
        let mut tries = 0usize;
        loop {
            // 1. Spare blocks for new remaps.
            for k in 0..sc.jobs.as_slice().len() {
                let Some(j) = sc.jobs.as_mut_slice().get_mut(k) else {
                    break;
                };
                if j.written {
                    // Placed and written by an earlier pass, on a spare still active.
                    continue;
                }
                // The block's copies, a live one first: a copy on a lost spare stays
                // named (it is not written; `spare_remove` of that spare makes it
                // again from the live one), unless every copy is on a lost spare.
                let live = j.prev.filter(|p| p.state == REMAPPED).map(|p| {
                    if core.is_lost(p.spare) && p.has_mirror() && !core.is_lost(p.mirror) {
                        Special {
                            spare: p.mirror,
                            spare_block: p.mirror_block,
                            mirror: p.spare,
                            mirror_block: p.spare_block,
                            ..p
                        }
                    } else {
                        p
                    }
                });
                j.lost_at = core.lost_mask();
                match live {
                    Some(p) if core.is_lost(p.spare) => {
                        // Every spare it was on was lost (every sector of it counts as
                        // lost): what the bios write goes to a block on another spare,
                        // the rest stays lost (whatever the entry's own mask says).
                        match core.alloc_block() {
                            Some((sp, blk)) => {
                                j.spare = sp;
                                j.spare_block = blk;
                                j.fresh = 1;
                                j.lost = [0; 2];
                                mask_set(&mut j.lost, 0, spb);
                            }
                            None => {
                                self.enter_failed(c"spare full: no free spare block");
                                self.drop_jobs(core, sc, busy);
                                return false;
                            }
                        }
                    }
                    Some(p) => {
                        j.spare = p.spare;
                        j.spare_block = p.spare_block;
                        j.mirror = p.mirror;
                        j.mirror_block = p.mirror_block;
                        j.lost = p.lost;
                    }
                    None => match core.alloc_block() {
                        Some((sp, blk)) => {
                            j.spare = sp;
                            j.spare_block = blk;
                            j.fresh = 1;
                        }
                        None => {
                            self.enter_failed(c"spare full: no free spare block");
                            self.drop_jobs(core, sc, busy);
                            return false;
                        }
                    },
                }
                // `redundancy 2`: a new remap (or a relocation off lost spares) gets a
                // second copy on another active spare, written with the first in step
                // 3. None while no other spare has room: the block keeps one copy. A
                // block remapped before keeps its copies (`spare_remove` makes a lost
                // one again): a copy added here would be left out of a fence of this
                // job (`fence_jobs` puts the previous entry back).
                if self.cfg.copies() > 1
                    && j.mirror == NO_MIRROR
                    && (!j.was_remapped() || j.fresh & 1 != 0)
                {
                    if let Some((sp, blk)) = core.alloc_block_besides(j.spare) {
                        j.mirror = sp;
                        j.mirror_block = blk;
                        j.fresh |= 2;
                    }
                }
            }
            // 2. Make the blocks busy and wait for the bios already on their way to them
            //    (see `remap_map` for why the drain sees every one of them).
            sc.changes.clear();
            for j in sc.jobs.as_slice() {
                let _ = sc.changes.push(j.special(BUSY));
            }
            if !busy && !sc.changes.as_slice().is_empty() {
                if self
                    .publish_changes(core, sc.changes.as_mut_slice())
                    .is_err()
                {
                    Self::free_jobs(core, sc);
                    return false;
                }
                // SAFETY: the worker is live; waits for in-flight tracked bios.
                unsafe { b::dmr_io_drain(self.worker) };
                busy = true;
            }
            // 3. Build each block's data and write it to the spare.
            ok = true;
            unreadable = false;
            spare_err = false;
            let mut lost_now = false;
            for ji in 0..sc.jobs.as_slice().len() {
                let Some(mut j) = sc.jobs.as_slice().get(ji).copied() else {
                    break;
                };
                if j.written {
                    continue;
                }
                for s in sc.slices.as_slice().iter().filter(|s| s.job == ji) {
                    mask_set(&mut j.covered, s.in_block, s.in_block + s.sectors);
                }
                let Some(base) = layout::data_block_sector(bs, Blocks(j.spare_block)) else {
                    ok = false;
                    break;
                };
                // Current contents: from the spare if already remapped, else from main
                // (unit by unit of the device's logical block where the block does not
                // read as a whole).
                let (src, src_at) = if j.was_remapped() {
                    (Dev::Spare(j.spare), base.0)
                } else {
                    (Dev::Main, j.block * spb)
                };
                if j.relocated() {
                    // Nothing to read: the lost spare held the block's only data. The
                    // block holds what the bios write; its other sectors stay lost.
                    sc.buf.fill(0);
                } else if sc.copy_whole > 0 {
                    if !(0..sc.copy_whole).any(|_| {
                        self.sync_io(src, src_at, &mut sc.buf, spb, b::dmr_io_op_DMR_IO_READ)
                            .is_ok()
                    }) {
                        unreadable = true;
                        break;
                    }
                } else if !mask_count_full(&j.covered, spb) {
                    let lost_before = j.lost;
                    self.read_salvage(src, src_at, &mut j, &mut sc.buf);
                    // Only sectors the bio does not cover count: a unit of a 4Kn spare
                    // that failed sets the bits of covered sectors too (cleared below).
                    let newly_lost = j
                        .lost
                        .iter()
                        .zip(lost_before.iter())
                        .zip(j.covered.iter())
                        .any(|((now, was), cov)| now & !cov != was & !cov);
                    // A block with two copies (both live: step 1 dropped a lost one) is
                    // read from the second where the first does not read.
                    // Only a second copy the block had before this job (not one
                    // allocated by it, which holds nothing yet), and only read whole.
                    let old_second = j.was_remapped()
                        && j.mirror != NO_MIRROR
                        && j.fresh & 2 == 0
                        && !core.is_lost(j.mirror);
                    let newly_lost = if newly_lost && old_second {
                        let whole = self
                            .spare_block_io(
                                j.mirror,
                                j.mirror_block,
                                &mut sc.buf,
                                b::dmr_io_op_DMR_IO_READ,
                            )
                            .is_ok();
                        if whole {
                            self.count_spare_error(j.spare);
                            j.lost = lost_before;
                        } else {
                            self.spare_io_error(j.mirror, c"spare read error");
                        }
                        !whole
                    } else {
                        newly_lost
                    };
                    if matches!(src, Dev::Spare(_)) && newly_lost {
                        // The spare failed to read the block's own data (a remapped block
                        // whose lost sectors are being written): a spare I/O error. Its
                        // sectors are not rewritten as zeros and recorded lost -- the error
                        // may pass and the data is still there -- the write fails instead.
                        self.spare_io_error(
                            j.spare,
                            c"spare read error while rewriting a remapped block",
                        );
                        lost_now = self.lose_now(core, j.spare, "a remap read a block from it");
                        spare_err = true;
                        ok = false;
                        break;
                    }
                }
                for s in sc.slices.as_slice().iter().filter(|s| s.job == ji) {
                    let Some(&BioPtr(bio)) = sc.bios.as_slice().get(s.bio) else {
                        continue;
                    };
                    let off = (s.in_block * 512) as usize;
                    if let Some(dst) = sc.buf.get_mut(off..) {
                        Self::bio_copy(bio, s.bio_off, dst, s.sectors * 512, false);
                    }
                }
                for k in 0..spb {
                    if mask_any(&j.covered, k, k + 1) {
                        mask_clear(&mut j.lost, k, k + 1);
                    }
                }
                if let Some(slot) = sc.jobs.as_mut_slice().get_mut(ji) {
                    *slot = j;
                }
                // Every copy (`redundancy 2`: the second too), each whole; not one named
                // on a lost spare.
                let mut failed_on = None;
                for (sp, blk) in j.copies().filter(|&(sp, _)| !core.is_lost(sp)) {
                    let w = self.spare_block_io(sp, blk, &mut sc.buf, b::dmr_io_op_DMR_IO_WRITE);
                    if w.is_err() {
                        failed_on = Some(sp);
                        break;
                    }
                }
                if let Some(sp) = failed_on {
                    // In a pool the worker then checks whether the spare is lost
                    // (`handle_spare_errors`); the batch's bios fail either way.
                    self.spare_io_error(sp, c"spare or metadata write failed");
                    lost_now = self.lose_now(core, sp, "a remap wrote a block to it");
                    spare_err = true;
                    ok = false;
                    break;
                }
                if let Some(slot) = sc.jobs.as_mut_slice().get_mut(ji) {
                    slot.written = true;
                }
            }
            if lost_now && tries < MAX_SPARES {
                tries += 1;
                // Jobs written to a spare still active keep their blocks; the others
                // (on the spare just lost, or not reached yet) give theirs up and are
                // placed again: the main device, which is failing, is read again only
                // for blocks not yet copied.
                for j in sc.jobs.as_mut_slice() {
                    let newly_lost =
                        |sp: u8| core.is_lost(sp) && (sp >= 32 || j.lost_at & (1u32 << sp) == 0);
                    if j.written && !j.copies().any(|(sp, _)| newly_lost(sp)) {
                        continue;
                    }
                    j.free_fresh(core);
                    *j = Job::new(j.block, j.prev);
                }
                // The blocks of the spare just lost become relocations (five singles'
                // room each, as above); the jobs' own entries are in the table already,
                // as busy singles.
                let relocating = Self::relocations(core, sc);
                let room = relocating.saturating_mul(5);
                let pend = sc.pending.as_slice().len();
                if pend > 0 && !core.fits(self.published.items_locked(), room.saturating_add(pend))
                {
                    sc.pending.clear();
                }
                if room > 0 && !core.fits(self.published.items_locked(), room) {
                    self.enter_failed(c"metadata full: the remap table cannot hold more entries");
                    self.undo_jobs(core, sc);
                    return false;
                }
                continue;
            }
            break;
        }
        // 4. Data durable on the spare, then the mapping (one commit for the batch).
        sc.changes.clear();
        if unreadable {
            // A whole copy was asked for and the source no longer reads: nothing
            // changes, and this is no failure of the spare. A spare lost by an earlier
            // pass is recorded now (as `lose_spare` does), else mode failed.
            self.undo_jobs(core, sc);
            if tries > 0 && self.commit_current(core).is_err() {
                self.enter_failed(c"metadata write failed while recording a lost spare");
            }
            return false;
        }
        if ok {
            for j in sc.jobs.as_slice() {
                ok &= sc.changes.push(j.special(REMAPPED)).is_ok();
            }
            for &p in sc.pending.as_slice() {
                ok &= sc.changes.push(Special::pending(p)).is_ok();
            }
        }
        if ok {
            // Every job's block was written to its spare (step 3).
            let placed = sc
                .jobs
                .as_slice()
                .iter()
                .flat_map(|j| j.copies())
                .filter(|&(sp, _)| sp < 32 && !core.is_lost(sp))
                .fold(0u32, |m, (sp, _)| m | 1u32 << sp);
            if let Err(f) = self.commit_changes(core, sc.changes.as_mut_slice(), placed) {
                if f.adopted {
                    // The new map may be what the next load finds: it stays, with its
                    // spare blocks (their data is durable: the commit's flushes of
                    // every spare came before its first copy write). The bios still
                    // fail: the commit did not complete.
                    self.stats.remaps.fetch_add(new, Relaxed);
                    return false;
                }
                if f.uncertain {
                    if !self.is_failed() {
                        self.enter_failed(c"spare or metadata write failed");
                    }
                    self.fence_jobs(core, sc);
                    return false;
                }
                ok = false;
            }
        }
        if !ok {
            // A spare I/O error was handled by `spare_io_error` (mode failed with one
            // spare; in a pool, the worker's loss check).
            if !self.is_failed() && !spare_err {
                self.enter_failed(c"spare or metadata write failed");
            }
            self.undo_jobs(core, sc);
            return false;
        }
        self.stats.remaps.fetch_add(new, Relaxed);
        true
    }

    /// After a commit of the batch failed with its outcome unknown: a block that was
    /// remapped before keeps its entry (both versions have it on that spare block; its
    /// new data there belongs to writes that fail); the others, which the batch moved
    /// to the spare, are fenced (`Remap::fence`) with their new spare blocks kept.
    fn fence_jobs(&self, core: &mut Core, sc: &mut Scratch) {
        sc.changes.clear();
        for j in sc.jobs.as_slice().iter().filter(|j| !j.was_remapped()) {
            let _ = sc.changes.push(j.special(FENCED));
        }
        self.fence(core, sc.changes.as_mut_slice());
        sc.changes.clear();
        for j in sc.jobs.as_slice().iter().filter(|j| j.was_remapped()) {
            if let Some(p) = j.prev {
                let _ = sc.changes.push(p);
            }
        }
        if !sc.changes.as_slice().is_empty() {
            let _ = self.publish_changes(core, sc.changes.as_mut_slice());
        }
        for j in sc.jobs.as_mut_slice() {
            j.spare_block = u64::MAX;
        }
    }

    /// Undoes the batch's jobs: the blocks go back to what they were (their BUSY
    /// entries replaced, bios deferred meanwhile routed again by the next batch) and
    /// their new spare blocks are freed.
    fn undo_jobs(&self, core: &mut Core, sc: &mut Scratch) {
        sc.changes.clear();
        for j in sc.jobs.as_slice() {
            let s = j.prev.unwrap_or(Special {
                state: 0,
                ..Special::pending(j.block)
            });
            let _ = sc.changes.push(s);
        }
        Self::free_jobs(core, sc);
        let _ = self.publish_changes(core, sc.changes.as_mut_slice());
    }

    /// Reads the current contents of a block being remapped into `buf`; sectors that
    /// cannot be read are zeroed and marked lost in `j` (unless the batch overwrites
    /// them). Reads go unit by unit of the source's logical block size.
    fn read_salvage(&self, src: Dev, src_at: u64, j: &mut Job, buf: &mut [u8]) {
        let spb = self.cfg.block_size.sectors();
        if self
            .sync_io(src, src_at, buf, spb, b::dmr_io_op_DMR_IO_READ)
            .is_ok()
        {
            return;
        }
        let unit = self.lbs_sectors(src).max(1);
        let mut k = 0;
        while k < spb {
            let u = unit.min(spb - k);
            if mask_count_range(&j.covered, k, k + u) == u {
                k += u;
                continue;
            }
            let off = (k * 512) as usize;
            let len = (u * 512) as usize;
            let ok_one = match buf.get_mut(off..off + len) {
                Some(one) => self
                    .sync_io(src, src_at + k, one, u, b::dmr_io_op_DMR_IO_READ)
                    .is_ok(),
                None => false,
            };
            if !ok_one {
                mask_set(&mut j.lost, k, k + u);
                if let Some(one) = buf.get_mut(off..off + len) {
                    one.fill(0);
                }
            }
            k += u;
        }
    }

    /// Reads into `buf`, unit by unit of `src`'s logical block size, the sectors `j`
    /// has lost beyond `was` (what it had lost before), from `src` at `src_at`; those
    /// that read are no longer lost.
    fn fill_lost(
        &self,
        src: Dev,
        src_at: u64,
        j: &mut Job,
        was: crate::engine::SectorMask,
        buf: &mut [u8],
    ) {
        let spb = self.cfg.block_size.sectors();
        let unit = self.lbs_sectors(src).max(1);
        let mut k = 0;
        while k < spb {
            let u = unit.min(spb - k);
            let mut new: crate::engine::SectorMask = [0; 2];
            mask_set(&mut new, k, k + u);
            let newly = (j.lost[0] & !was[0] & new[0]) | (j.lost[1] & !was[1] & new[1]) != 0;
            let off = (k * 512) as usize;
            let len = (u * 512) as usize;
            if newly {
                let ok = buf.get_mut(off..off + len).is_some_and(|one| {
                    self.sync_io(src, src_at + k, one, u, b::dmr_io_op_DMR_IO_READ)
                        .is_ok()
                });
                if ok {
                    mask_clear(&mut j.lost, k, k + u);
                    j.lost[0] |= was[0] & new[0];
                    j.lost[1] |= was[1] & new[1];
                }
            }
            k += u;
        }
    }

    /// How many of the batch's jobs are blocks of a lost spare, to be placed on
    /// another one.
    fn relocations(core: &Core, sc: &Scratch) -> usize {
        sc.jobs
            .as_slice()
            .iter()
            .filter(|j| {
                j.prev.is_some_and(|p| {
                    p.state == REMAPPED && p.copies().all(|(sp, _)| core.is_lost(sp))
                })
            })
            .count()
    }

    /// Gives up the batch's jobs before their commit: their new spare blocks freed,
    /// and, once they were published busy (`busy`, a retry of `apply`'s steps 1-3),
    /// their previous entries published again.
    fn drop_jobs(&self, core: &mut Core, sc: &mut Scratch, busy: bool) {
        if busy {
            self.undo_jobs(core, sc);
        } else {
            Self::free_jobs(core, sc);
        }
    }

    fn free_jobs(core: &mut Core, sc: &mut Scratch) {
        for j in sc.jobs.as_mut_slice() {
            j.free_fresh(core);
        }
    }

    /// `remap <block>`: moves a block to the spare now, copying what is readable.
    pub(crate) fn remap_now(&self, core: &mut Core, blk: u64) -> Result {
        self.remap_block(core, blk, 0)
    }

    /// Moves a block that still reads to the spare (the scan's proactive remap): only
    /// when all of it reads, within the read retries; else nothing changes (`EIO`).
    pub(crate) fn remap_whole(&self, core: &mut Core, blk: u64) -> Result {
        self.remap_block(core, blk, 1 + u32::from(self.cfg.read_retries))
    }

    /// As [`Self::remap_whole`] with one read attempt: for a block that has just read
    /// whole (the core mutex is held during the copy, and a block with intermittent
    /// errors may take the drive's error recovery on each attempt).
    pub(crate) fn remap_whole_once(&self, core: &mut Core, blk: u64) -> Result {
        self.remap_block(core, blk, 1)
    }

    /// `whole`: 0, or the read attempts of a whole copy (see `Scratch::copy_whole`).
    fn remap_block(&self, core: &mut Core, blk: u64, whole: u32) -> Result {
        let prev =
            crate::remap_core::remap_table::find(self.published.items_locked(), blk).copied();
        if prev.is_some_and(|p| p.state == REMAPPED) {
            return Err(EEXIST);
        }
        if prev.is_some_and(|p| is_fenced(p.state) || p.state == BUSY) {
            return Err(EBUSY);
        }
        if self.is_failed() {
            return Err(EIO);
        }
        let mut sc = core::mem::replace(&mut core.scratch, Scratch::empty());
        sc.jobs.clear();
        sc.slices.clear();
        sc.pending.clear();
        sc.copy_whole = whole;
        let r = if sc.jobs.push(Job::new(blk, prev)).is_ok() && self.apply(core, &mut sc) {
            Ok(())
        } else {
            Err(EIO)
        };
        sc.copy_whole = 0;
        sc.jobs.clear();
        core.scratch = sc;
        r
    }

    /// `unremap <block>`: copies a remapped block back to the main device and drops the
    /// remap, if the main device takes the write and no sector of it was lost.
    pub(crate) fn unremap_now(&self, core: &mut Core, blk: u64) -> Result {
        let Some(cur) =
            crate::remap_core::remap_table::find(self.published.items_locked(), blk).copied()
        else {
            return Err(ENOENT);
        };
        if cur.state == PENDING {
            let mut gone = [Special { state: 0, ..cur }];
            return self.commit_changes(core, &mut gone, 0).map_err(|f| f.err);
        }
        if cur.state != REMAPPED || crate::engine::mask_count(&self.lost_of(&cur)) != 0 {
            return Err(EBUSY);
        }
        let spb = self.cfg.block_size.sectors();
        let mut sc = core::mem::replace(&mut core.scratch, Scratch::empty());
        let r = self.unremap_with(core, &mut sc.buf, cur, blk * spb, spb);
        core.scratch = sc;
        r
    }

    fn unremap_with(
        &self,
        core: &mut Core,
        buf: &mut [u8],
        cur: Special,
        main_at: u64,
        spb: u64,
    ) -> Result {
        self.publish_changes(core, &mut [Special { state: BUSY, ..cur }])?;
        // Every bio tracked on the block (writes, and reads of its spare copy) is
        // finished after the drain, and later ones wait for the worker (BUSY): the
        // copy below is the block's last data, and no read of the spare block can
        // still be in flight when it is freed and handed to another block.
        // SAFETY: the worker is live.
        unsafe { b::dmr_io_drain(self.worker) };
        let read = self.read_any_copy(&cur, buf, &mut 0);
        let copied = read.and_then(|()| {
            self.sync_io(Dev::Main, main_at, buf, spb, b::dmr_io_op_DMR_IO_WRITE_FUA)
        });
        if let Err(e) = copied {
            // The block stays remapped.
            let _ = self.publish_changes(core, &mut [cur]);
            return Err(e);
        }
        match self.commit_changes(core, &mut [Special { state: 0, ..cur }], 0) {
            Ok(()) => {
                core.free_copies(&cur);
                Ok(())
            }
            Err(f) if f.adopted => {
                // The block is back on main in memory as possibly on disk (its data
                // there was written with FUA); its spare block is free again.
                core.free_copies(&cur);
                Err(f.err)
            }
            Err(f) if f.uncertain => {
                // Main and the spare block both hold its data now, but the next load
                // may map it to either: fenced, the spare block kept. A metadata
                // write failed: mode failed, whose record (the worker's next commit)
                // or `clear_failed` lifts the fence once the spare takes writes.
                self.fence(core, &mut [cur]);
                self.enter_failed(c"metadata write failed while moving a block back to main");
                Err(f.err)
            }
            Err(f) => {
                // The block stays remapped.
                let _ = self.publish_changes(core, &mut [cur]);
                Err(f.err)
            }
        }
    }
}

/// Most entries one step of `clear` takes off the table ([`Remap::clear_step`]).
pub(crate) const CLEAR_BATCH: usize = MAX_JOBS;

/// What one step of `clear` did: how many entries left the table, and the block that
/// could not move (and why), where the step stopped.
pub(crate) type ClearStep = (usize, Option<(u64, kernel::error::Error)>);

impl Remap {
    /// One step of `clear`: the table's first entries, up to [`CLEAR_BATCH`], leave it
    /// together — the remapped ones copied back to main (one busy publication, one
    /// drain, a FUA write each), then one commit that also forgets
    /// the pending ones — instead of one entry at a time with two grace periods and a
    /// commit each. `(0, None)` when the table is empty. The step stops at the first
    /// entry that cannot move (lost sectors, fenced or busy; or its copy failed):
    /// that entry and every one after it, pending ones included, stay as they were
    /// (see below for a commit whose outcome is unknown). A failed copy is reported
    /// with the step's count; an entry that could not be taken (`EBUSY`) only when the
    /// step moved nothing, since the step's commit may have released its fence.
    ///
    /// Ordering, as for one block in `unremap_with`: once the movers are published
    /// busy (`publish_changes` waits a grace period), every `map` hands their bios to
    /// the worker, which waits for the core mutex held here; the drain then waits for
    /// the bios routed before (to their spare copies, in the in-flight SRCU). The
    /// copies read each block's last data and are durable on main (FUA) before the
    /// commit names main again; the commit's publication (another grace period)
    /// makes `map` send the blocks to main before their spare blocks are freed.
    pub(crate) fn clear_step(&self, core: &mut Core) -> ClearStep {
        let mut sc = core::mem::replace(&mut core.scratch, Scratch::empty());
        let r = self.clear_with(core, &mut sc);
        core.scratch = sc;
        r
    }

    fn clear_with(&self, core: &mut Core, sc: &mut Scratch) -> ClearStep {
        let movable = |e: &Special| {
            e.state == PENDING
                || (e.state == REMAPPED && crate::engine::mask_count(&self.lost_of(e)) == 0)
        };
        // The step's entries: movers in `changes`, pending blocks in `pending`.
        sc.changes.clear();
        sc.pending.clear();
        // `busy`: the first entry that cannot move, where gathering stopped (reported
        // only when the step moves nothing: the step's commit may release a fence);
        // `stop`: the first copy that failed.
        let mut busy: Option<(u64, kernel::error::Error)> = None;
        let mut stop: Option<(u64, kernel::error::Error)> = None;
        {
            let items = self.published.items_locked();
            for e in items.iter().take(CLEAR_BATCH) {
                if !movable(e) {
                    busy = Some((e.block, EBUSY));
                    break;
                }
                // Cannot fail: each holds CLEAR_BATCH entries.
                let _ = if e.state == PENDING {
                    sc.pending.push(e.block).map_err(|_| ())
                } else {
                    sc.changes
                        .push(Special { state: BUSY, ..*e })
                        .map_err(|_| ())
                };
            }
        }
        if let Some(&first) = sc.changes.as_slice().first() {
            if let Err(e) = self.publish_changes(core, sc.changes.as_mut_slice()) {
                return (0, Some((first.block, e)));
            }
            // SAFETY: the worker is live.
            unsafe { b::dmr_io_drain(self.worker) };
            let bs = self.cfg.block_size;
            let spb = bs.sectors();
            // `publish_changes` sorted the movers by block.
            let mut spare_failed = false;
            let mut failed_spares = 0u32;
            for e in sc.changes.as_mut_slice().iter_mut() {
                if stop.is_some_and(|(b, _)| b < e.block) || spare_failed {
                    // After the first failure: not copied, stays remapped.
                    e.state = REMAPPED;
                    continue;
                }
                let read = self.read_any_copy(e, &mut sc.buf, &mut failed_spares);
                spare_failed |= read.is_err();
                let copied = read.and_then(|()| {
                    self.sync_io(
                        Dev::Main,
                        e.block * spb,
                        &mut sc.buf,
                        spb,
                        b::dmr_io_op_DMR_IO_WRITE_FUA,
                    )
                });
                match copied {
                    Ok(()) => e.state = 0,
                    Err(err) => {
                        e.state = REMAPPED;
                        stop = Some((e.block, err));
                    }
                }
            }
            if spare_failed {
                // No commit once a block read from no copy (as `unremap_with`; a copy
                // that failed where the other then read does not count): every mover
                // stays remapped (what reached main is a harmless second copy).
                for e in sc.changes.as_mut_slice().iter_mut() {
                    e.state = REMAPPED;
                }
                let _ = self.publish_changes(core, sc.changes.as_mut_slice());
                return (0, stop.or(busy));
            }
        }
        // The pending blocks before the stop leave in the same commit.
        for &blk in sc.pending.as_slice() {
            if stop.is_some_and(|(b, _)| b < blk) {
                break;
            }
            let _ = sc.changes.push(Special {
                state: 0,
                ..Special::pending(blk)
            });
        }
        let left = sc
            .changes
            .as_slice()
            .iter()
            .filter(|e| e.state == 0)
            .count();
        let Some(&first) = sc.changes.as_slice().first() else {
            return (0, stop.or(busy));
        };
        if left == 0 {
            // Nothing moved: the movers go back to remapped.
            let _ = self.publish_changes(core, sc.changes.as_mut_slice());
            return (0, stop.or(busy));
        }
        // `commit_changes` sorts the slice by block. A mover whose state is 0 was
        // copied; a pending block is one `pending` lists (sorted: the table's order).
        let is_mover = |pending: &Fixed<u64>, e: &Special| {
            e.state == 0 && pending.as_slice().binary_search(&e.block).is_err()
        };
        match self.commit_changes(core, sc.changes.as_mut_slice(), 0) {
            Ok(()) => {
                for e in sc.changes.as_slice() {
                    if is_mover(&sc.pending, e) {
                        core.free_copies(e);
                    }
                }
                (left, stop)
            }
            Err(f) if f.adopted => {
                // Back on main in memory as possibly on disk (copied and flushed);
                // their spare blocks are free again.
                for e in sc.changes.as_slice() {
                    if is_mover(&sc.pending, e) {
                        core.free_copies(e);
                    }
                }
                (left, Some((first.block, f.err)))
            }
            Err(f) => {
                // Not published: the pending blocks stay pending, the movers busy
                // until they are put back here. Sorted into copied movers, movers
                // not copied (remapped), pending blocks.
                let pending = &sc.pending;
                let changes = sc.changes.as_mut_slice();
                let class = |e: &Special| match e.state {
                    0 if is_mover(pending, e) => 0u8,
                    REMAPPED => 1,
                    _ => 2,
                };
                changes.sort_unstable_by_key(|e| (class(e), e.block));
                let copied = changes.iter().take_while(|e| class(e) == 0).count();
                let movers = changes.iter().take_while(|e| class(e) < 2).count();
                for e in changes.iter_mut().take(copied) {
                    e.state = REMAPPED;
                }
                if f.uncertain {
                    // Main and the spare blocks both hold their data, but the next load
                    // may map them to either: fenced, their spare blocks kept (see
                    // `unremap_with`); the others back to remapped.
                    let (moved, rest) = changes.split_at_mut(copied);
                    self.fence(core, moved);
                    self.enter_failed(c"metadata write failed while moving a block back to main");
                    if let Some(r) = rest.get_mut(..movers - copied).filter(|r| !r.is_empty()) {
                        let _ = self.publish_changes(core, r);
                    }
                } else if let Some(m) = changes.get_mut(..movers).filter(|m| !m.is_empty()) {
                    // The blocks stay remapped.
                    let _ = self.publish_changes(core, m);
                }
                (0, Some((first.block, f.err)))
            }
        }
    }
}

/// What one step of `spare_remove` did ([`Remap::move_step`]): how many blocks moved
/// off the spare, and the error that stopped it.
pub(crate) type MoveStep = (usize, Option<kernel::error::Error>);

impl Remap {
    /// One step of `spare_remove`: up to [`MAX_JOBS`] of the blocks remapped to spare
    /// `from` (which is draining, so the allocator skips it) move to blocks allocated
    /// on the other spares -- one busy publication, one drain, a copy each (read from
    /// `from`, written with FUA), then one commit naming the new places. `(0, None)`
    /// when no block is left on `from`; `EBUSY` when only blocks that cannot move now
    /// are (fenced or busy), or blocks moved off it are fenced until a commit lands;
    /// `ENOSPC` when the other spares have no free block. Sectors of a block that do
    /// not read on `from` are recorded lost at its new place (counted as spare errors
    /// and logged; no mode failed: the spare is leaving), unless nothing of the block
    /// reads and `from` does not read its first metadata sector either: then the step
    /// stops with `EIO` (a spare gone for a moment). A spare only partly gone (one disk
    /// of a striped volume) reads that sector: its blocks there are recorded lost. A
    /// move can turn runs into
    /// single entries: a commit that would not fit a copy fails with nothing written
    /// and the blocks stay where they were.
    ///
    /// Ordering, as `clear_with`: once the movers are published busy
    /// (`publish_changes` waits a grace period), every `map` hands their bios to the
    /// worker, which waits for the core mutex held here; the drain then waits for the
    /// bios routed before (to `from`, in the in-flight SRCU). The copies read each
    /// block's last data and are durable at the new places (FUA) before the commit
    /// names them; the commit's publication (another grace period) makes `map` send
    /// the blocks there before the old blocks are freed. A commit whose outcome is
    /// unknown leaves both places holding the data and the next load free to pick
    /// either: the moved blocks are fenced with [`FENCED_MOVED`] (all their I/O fails)
    /// until a later commit, which stores them at the new places, is known written.
    pub(crate) fn move_step(&self, core: &mut Core, from: u8) -> MoveStep {
        let mut sc = core::mem::replace(&mut core.scratch, Scratch::empty());
        let r = self.move_with(core, &mut sc, from);
        core.scratch = sc;
        r
    }

    fn move_with(&self, core: &mut Core, sc: &mut Scratch, from: u8) -> MoveStep {
        sc.jobs.clear();
        sc.changes.clear();
        let mut stuck = false;
        let mut nospace = false;
        {
            let items = self.published.items_locked();
            // A block with another copy on a spare not lost keeps that copy alone
            // when no spare has room for a new one; the others need room. `need`: the
            // blocks of the latter kind still to place, which blocks with another
            // copy leave room for (as the message's room check counts).
            let lost = core.lost_mask();
            let gone = move |sp: u8| sp < 32 && lost & (1u32 << sp) != 0;
            let other_live = move |e: &Special| e.copies().any(|(sp, _)| sp != from && !gone(sp));
            let mut need = items
                .iter()
                .filter(|e| {
                    e.state == REMAPPED && e.copies().any(|(sp, _)| sp == from) && !other_live(e)
                })
                .count() as u64;
            for e in items
                .iter()
                .filter(|e| e.state != PENDING && e.copies().any(|(sp, _)| sp == from))
            {
                if e.state != REMAPPED {
                    // Fenced or busy on `from`: it moves on a later step.
                    stuck = true;
                    continue;
                }
                if sc.jobs.as_slice().len() >= MAX_JOBS {
                    break;
                }
                // A block with two copies moves the one on `from`, to a spare other
                // than the one of its other copy.
                let second = e.has_mirror() && e.mirror == from;
                let kept = other_live(e);
                let place = match (e.has_mirror(), second) {
                    _ if kept && core.free_blocks() <= need => None,
                    (false, _) => core.alloc_block(),
                    (true, false) => core.alloc_block_besides(e.mirror),
                    (true, true) => core.alloc_block_besides(e.spare),
                };
                if !kept {
                    need = need.saturating_sub(1);
                }
                let mut j = Job::new(e.block, Some(*e));
                j.second = second;
                match place {
                    Some((spare, spare_block)) => {
                        j.spare = spare;
                        j.spare_block = spare_block;
                        j.fresh = 1;
                    }
                    // No room besides the other copy's spare (or none left beyond what
                    // the blocks without another copy need): the block keeps that copy
                    // alone, if its spare was not lost.
                    None if kept => {
                        j.drop_copy = true;
                    }
                    None => {
                        nospace = true;
                        break;
                    }
                }
                // Cannot fail: both hold MAX_JOBS.
                let _ = sc.jobs.push(j);
                let _ = sc.changes.push(Special { state: BUSY, ..*e });
            }
        }
        if sc.jobs.as_slice().is_empty() {
            // Blocks fenced during a move (`FENCED_MOVED`) are on other spares in
            // memory, but until a commit lands the disk's last version may still map
            // them to `from`: the spare is not empty until then.
            let unsettled = self
                .published
                .items_locked()
                .iter()
                .any(|e| e.state == FENCED_MOVED);
            let err = if nospace {
                Some(ENOSPC)
            } else if stuck || unsettled {
                Some(EBUSY)
            } else {
                None
            };
            return (0, err);
        }
        if let Err(e) = self.publish_changes(core, sc.changes.as_mut_slice()) {
            for j in sc.jobs.as_mut_slice() {
                j.free_fresh(core);
            }
            return (0, Some(e));
        }
        // SAFETY: the worker is live.
        unsafe { b::dmr_io_drain(self.worker) };
        let bs = self.cfg.block_size;
        let spb = bs.sectors();
        let mut stop: Option<kernel::error::Error> = None;
        let mut copied = 0usize;
        let mut write_failed: Option<usize> = None;
        // A lost spare (`meta::SPARE_FAILED`) is not read: its entries hold every
        // sector lost already, and move as they are (nothing to write either). A block
        // with two copies is copied from its other copy, when that one's spare was not
        // lost: nothing of it is lost then.
        let from_lost = core.is_lost(from);
        for j in sc.jobs.as_mut_slice() {
            let Some(src) = j.prev else {
                break;
            };
            let at = |blk: u64| layout::data_block_sector(bs, Blocks(blk)).ok_or(EINVAL);
            let other = src
                .copies()
                .find(|&(sp, _)| sp != from && !core.is_lost(sp));
            let (src_dev, src_block) = match other {
                Some(o) => o,
                None => j.moving_from().unwrap_or((from, src.spare_block)),
            };
            let Ok(src_at) = at(src_block) else {
                stop = Some(EINVAL);
                break;
            };
            // The block, read whole (1 + read_retries attempts, and once more by the
            // salvage); after that, what reads of it a logical block at a time (once
            // each), the rest zeroed and recorded lost (with what was lost before). A
            // block of which nothing reads on a spare that does not read its first
            // metadata sector either stops the step: a spare that went away for a
            // moment (a link reset) must not have its blocks recorded lost wholesale;
            // the spare stays draining and `spare_remove` sent again retries. The
            // spare is leaving the pool (a failing spare is the
            // likeliest reason), so its read errors are counted and logged without mode
            // failed, which would stop the remaps of the main device's new bad blocks.
            j.covered = [0; 2];
            j.lost = src.lost;
            if from_lost && other.is_none() {
                mask_set(&mut j.lost, 0, spb);
                copied += 1;
                continue;
            }
            let read_whole = |buf: &mut [u8]| {
                self.sync_io(
                    Dev::Spare(src_dev),
                    src_at.0,
                    buf,
                    spb,
                    b::dmr_io_op_DMR_IO_READ,
                )
                .is_ok()
            };
            let mut whole = (0..=self.cfg.read_retries).any(|_| read_whole(&mut sc.buf));
            if j.drop_copy {
                // The copy kept must read whole. One that does not is written again
                // from the copy on the leaving spare (when that spare was not lost:
                // else its data is gone either way); failing that, the block stays.
                if !whole && !from_lost {
                    let rewritten = j.moving_from().is_some_and(|(sp, blk)| {
                        self.spare_block_io(sp, blk, &mut sc.buf, b::dmr_io_op_DMR_IO_READ)
                            .is_ok()
                            && self
                                .spare_block_io(
                                    src_dev,
                                    src_block,
                                    &mut sc.buf,
                                    b::dmr_io_op_DMR_IO_WRITE_FUA,
                                )
                                .is_ok()
                    });
                    self.count_spare_error(src_dev);
                    if !rewritten {
                        dmwarn!(
                            "{}: spare_remove: block {}: its copy on spare {} does not read and cannot be written again; stopping",
                            self.main_name(),
                            j.block,
                            src_dev
                        );
                        stop = Some(EIO);
                        break;
                    }
                }
                copied += 1;
                continue;
            }
            // A block with two copies that does not read whole from the other one: the
            // copy on the leaving spare, if it was not lost, before anything is
            // recorded lost.
            if !whole && other.is_some() && !from_lost {
                if let Some((sp, blk)) = j.moving_from() {
                    whole = self
                        .spare_block_io(sp, blk, &mut sc.buf, b::dmr_io_op_DMR_IO_READ)
                        .is_ok();
                    if whole {
                        self.count_spare_error(src_dev);
                    }
                }
            }
            if !whole {
                self.count_spare_error(src_dev);
                self.read_salvage(Dev::Spare(src_dev), src_at.0, j, &mut sc.buf);
                // What the other copy lost, the copy on the leaving spare may hold:
                // unit by unit, before it is recorded lost.
                if other.is_some() && !from_lost {
                    if let Some((sp, blk)) = j.moving_from() {
                        if let Ok(a) = at(blk) {
                            self.fill_lost(Dev::Spare(sp), a.0, j, src.lost, &mut sc.buf);
                        }
                    }
                }
                // Nothing of the block reads: a bad spot (recorded lost like any
                // other unreadable sectors) if the spare still reads its first
                // metadata sector, else a spare that is not there (stop).
                let unit = self.lbs_sectors(Dev::Spare(src_dev)).max(1);
                let gone = mask_count_full(&j.lost, spb)
                    && sc
                        .buf
                        .get_mut(..(unit * 512) as usize)
                        .map_or(true, |probe| {
                            let r = self
                                .sync_io(
                                    Dev::Spare(src_dev),
                                    0,
                                    probe,
                                    unit,
                                    b::dmr_io_op_DMR_IO_READ,
                                )
                                .is_err();
                            probe.fill(0);
                            r
                        });
                // The spare reads: one more whole read of the block, in case an outage
                // ended between the salvage and the probe.
                if !gone && mask_count_full(&j.lost, spb) {
                    if read_whole(&mut sc.buf) {
                        j.lost = src.lost;
                    } else {
                        sc.buf.fill(0);
                    }
                }
                if gone {
                    // Not marked suspect (`loss`): a spare that is away for a moment
                    // keeps its blocks, and `spare_remove` sent again carries on. I/O
                    // of its blocks meanwhile does mark it.
                    dmwarn!(
                        "{}: spare_remove: block {}: nothing reads on spare {}, nor its metadata; stopping (send spare_remove again)",
                        self.main_name(),
                        j.block,
                        src_dev
                    );
                    stop = Some(EIO);
                    break;
                }
            }
            let newly = crate::engine::mask_count(&j.lost)
                .saturating_sub(crate::engine::mask_count(&src.lost));
            if newly > 0 {
                dmwarn!(
                    "{}: spare_remove: block {}: {} sector(s) unreadable on spare {}, recorded lost",
                    self.main_name(),
                    j.block,
                    newly,
                    src_dev
                );
            }
            let write = at(j.spare_block).and_then(|a| {
                self.sync_io(
                    Dev::Spare(j.spare),
                    a.0,
                    &mut sc.buf,
                    spb,
                    b::dmr_io_op_DMR_IO_WRITE_FUA,
                )
            });
            if let Err(e) = write {
                // A spare write error, as on the worker's remap path: counted, and mode
                // failed (which stops remaps; `clear_failed` once the spare is dealt
                // with). The block stays where it is; the block that failed the write
                // stays allocated (until the next load), so a retry takes another.
                self.spare_io_error(
                    j.spare,
                    c"spare write error while moving a block off a draining spare",
                );
                write_failed = Some(copied);
                stop = Some(e);
                break;
            }
            j.written = true;
            copied += 1;
        }
        // The change list: the copied blocks at their new places, the others as they
        // were (their new blocks freed, but one whose write failed).
        sc.changes.clear();
        for (k, j) in sc.jobs.as_slice().iter().enumerate() {
            let Some(src) = j.prev else {
                continue;
            };
            let e = if k < copied {
                j.moved().unwrap_or(src)
            } else {
                if write_failed != Some(k) && j.fresh & 1 != 0 {
                    core.free_block(j.spare, j.spare_block);
                }
                src
            };
            let _ = sc.changes.push(e);
        }
        if copied == 0 {
            let _ = self.publish_changes(core, sc.changes.as_mut_slice());
            return (0, stop);
        }
        // `commit_changes` sorts the list by block; the jobs are in block order too
        // (gathered from the sorted table), so `copied` keeps naming the movers, whose
        // data went to their new spares (`placed`).
        // (Only the jobs whose data was written: not those moved off a lost spare
        // without another copy to read.)
        let placed = sc
            .jobs
            .as_slice()
            .iter()
            .take(copied)
            .filter(|j| j.written && j.spare < 32)
            .fold(0u32, |m, j| m | 1u32 << j.spare);
        match self.commit_changes(core, sc.changes.as_mut_slice(), placed) {
            Ok(()) => {
                for j in sc.jobs.as_slice().iter().take(copied) {
                    if let Some((sp, blk)) = j.moving_from() {
                        core.free_block(sp, blk);
                    }
                }
                (copied, stop)
            }
            Err(f) if f.adopted => {
                // At the new places in memory as possibly on disk (copied with FUA);
                // the old blocks are free again.
                for j in sc.jobs.as_slice().iter().take(copied) {
                    if let Some((sp, blk)) = j.moving_from() {
                        core.free_block(sp, blk);
                    }
                }
                (copied, Some(f.err))
            }
            Err(f) => {
                let changes = sc.changes.as_mut_slice();
                if f.uncertain {
                    // Both places hold the data; the next load may pick either: the
                    // movers fenced at their new places (both blocks kept), the rest
                    // back as they were.
                    let (moved, rest) = changes.split_at_mut(copied);
                    self.fence_as(core, moved, FENCED_MOVED);
                    self.enter_failed(
                        c"metadata write failed while moving blocks off a draining spare",
                    );
                    if !rest.is_empty() {
                        let _ = self.publish_changes(core, rest);
                    }
                } else {
                    // Nothing written: every block stays where it was.
                    for (e, j) in changes.iter_mut().zip(sc.jobs.as_mut_slice()).take(copied) {
                        if let Some(src) = j.prev {
                            j.free_fresh(core);
                            *e = src;
                        }
                    }
                    let _ = self.publish_changes(core, changes);
                }
                (0, Some(f.err))
            }
        }
    }
}

/// The part of the I/O `sector..end` that falls into block `blk` (of `spb` sectors):
/// the block's first sector, the part's first sector and length, and its byte offset
/// in the bio.
fn piece(spb: u64, sector: u64, end: u64, blk: u64) -> (u64, u64, u64, u64) {
    let bstart = blk * spb;
    let s0 = sector.max(bstart);
    let n = end.min(bstart + spb) - s0;
    (bstart, s0, n, (s0 - sector) * 512)
}

fn mask_count_full(m: &crate::engine::SectorMask, spb: u64) -> bool {
    u64::from(crate::engine::mask_count(m)) >= spb
}

/// Number of set bits of `m` in `from..to`.
fn mask_count_range(m: &crate::engine::SectorMask, from: u64, to: u64) -> u64 {
    (from..to).filter(|&k| mask_any(m, k, k + 1)).count() as u64
}
