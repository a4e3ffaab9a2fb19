// SPDX-License-Identifier: GPL-2.0

//! The remap worker: failed writes, failed reads and deferred bios.
//!
//! C header: [include/linux/dm-io.h](srctree/include/linux/dm-io.h)
//!
//! Runs on an ordered workqueue, so one batch at a time; it takes every queued bio,
//! does the data I/O synchronously through dm-io, makes all resulting mappings durable
//! with one metadata commit (group commit), publishes the new table and only then
//! completes the bios.

use crate::bindings as b;
use crate::engine::{mask_any, mask_clear, mask_set, Route, Special, BUSY, PENDING, REMAPPED};
use crate::remap_core::layout;
use crate::remap_core::units::{Blocks, Sectors};
use crate::target::{
    PerBio, Remap, ST_DEFERRED, ST_HANDLED, ST_READ_FAILED, ST_SPARE, ST_WRITE_FAILED,
};
use core::sync::atomic::Ordering::Relaxed;
use kernel::bindings::bio;
use kernel::prelude::*;

/// A buffer dm-io can read into and write from.
pub(crate) struct IoBuf {
    pub(crate) buf: VVec<u8>,
}

impl IoBuf {
    /// A zeroed buffer of `len` bytes.
    pub(crate) fn new(len: usize) -> Result<Self> {
        Ok(Self {
            buf: VVec::from_elem(0u8, len, GFP_KERNEL)?,
        })
    }
}

/// Which device an I/O goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dev {
    Main,
    Spare,
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
            Dev::Spare => self.spare_bdev(),
        };
        // SAFETY: the client and device are live while the target exists; `buf` is a
        // vmalloc buffer of at least `sectors` sectors that outlives the synchronous call.
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
            // SAFETY: the worker is live while the target exists.
            let mut head = unsafe { b::dmr_worker_take_bios(self.worker) };
            if head.is_null() {
                return;
            }
            let mut bios = KVec::new();
            while !head.is_null() {
                let cur = head;
                // SAFETY: `cur` is a bio of the list the worker took; unlinks it.
                head = unsafe { b::dmr_bio_next(cur) };
                if bios.push(cur, GFP_KERNEL).is_err() {
                    // No memory for the batch list: fail this bio rather than lose it.
                    self.complete(cur, b::DMR_STS_IOERR as u8);
                }
            }
            let mut guard = self.core.lock();
            self.process(&mut guard, &bios);
        }
    }

    /// Completes a bio the worker owns.
    pub(crate) fn complete(&self, bio: *mut bio, status: u8) {
        let pb = Self::per_bio(bio);
        // SAFETY: `pb` is this bio's per-bio data; the worker owns the bio.
        unsafe { (*pb).state = ST_HANDLED };
        if status != 0 {
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

    /// Sends a deferred bio on its way according to the current table.
    fn resubmit(&self, bio: *mut bio, pb: &mut PerBio, route: Route) {
        let (bdev, sector) = match route {
            Route::Main => (self.main_bdev(), pb.sector),
            Route::Spare(s) => (self.spare_bdev(), s),
            Route::Fail | Route::Defer => {
                self.complete(bio, b::DMR_STS_IOERR as u8);
                return;
            }
        };
        pb.state = if route == Route::Main {
            crate::target::ST_MAIN
        } else {
            ST_SPARE
        };
        if pb.kind == b::dmr_bio_kind_DMR_BIO_WRITE {
            // SAFETY: the worker is live; released in end_io.
            pb.srcu = unsafe { b::dmr_io_enter(self.worker) };
            pb.has_srcu = 1;
        }
        // SAFETY: the worker owns `bio` and its iterator is at the start; the device is
        // held by the target.
        unsafe {
            b::dmr_bio_restore(bio, &mut pb.rec);
            b::dmr_bio_remap(bio, bdev, sector);
            b::dmr_bio_submit(bio);
        }
    }

    /// One batch: every bio the worker took, with one metadata commit.
    fn process(&self, core: &mut crate::target::Core, bios: &[*mut bio]) {
        let bs = self.cfg.block_size;
        let spb = bs.sectors();
        let mut jobs: KVec<Job> = KVec::new();
        let mut slices: KVec<Slice> = KVec::new();
        let mut new_pending: KVec<u64> = KVec::new();
        // Status to complete each bio with, once the commit is done (None: resubmitted).
        let mut results: KVec<Option<u8>> = KVec::new();
        let mut buf = match IoBuf::new(bs.bytes() as usize) {
            Ok(b) => b,
            Err(_) => {
                for &bio in bios {
                    self.complete(bio, b::DMR_STS_IOERR as u8);
                }
                return;
            }
        };
        let failed = self.failed.load(Relaxed);

        for (i, &bio) in bios.iter().enumerate() {
            let pb = Self::per_bio(bio);
            // SAFETY: per-bio data of a bio the worker owns.
            let pb = unsafe { &mut *pb };
            // SAFETY: restores the data iterator saved in `map`.
            unsafe { b::dmr_bio_restore(bio, &mut pb.rec) };
            let mut result = Some(0u8);
            let first = bs.block_of(Sectors(pb.sector)).0;
            let end = pb.sector + u64::from(pb.sectors);
            let last = bs.block_of(Sectors(end.saturating_sub(1))).0;
            match pb.state {
                ST_WRITE_FAILED | ST_DEFERRED if pb.kind == b::dmr_bio_kind_DMR_BIO_WRITE => {
                    for blk in first..=last {
                        let bstart = blk * spb;
                        let s0 = pb.sector.max(bstart);
                        let s1 = end.min(bstart + spb);
                        let bio_off = (s0 - pb.sector) * 512;
                        let n = s1 - s0;
                        let cur = self
                            .published
                            .current_locked()
                            .and_then(|s| s.get(blk))
                            .copied();
                        let needs_spare = match cur {
                            Some(s) if s.state == REMAPPED || s.state == PENDING => true,
                            _ => {
                                // Try the main device again, block by block: only the
                                // blocks that still fail are remapped.
                                Self::bio_copy(bio, bio_off, &mut buf.buf, n * 512, false);
                                failed
                                    || pb.state == ST_DEFERRED
                                    || self
                                        .sync_io(
                                            Dev::Main,
                                            s0,
                                            &mut buf.buf,
                                            n,
                                            b::dmr_io_op_DMR_IO_WRITE,
                                        )
                                        .is_err()
                            }
                        };
                        if !needs_spare {
                            continue;
                        }
                        if failed {
                            result = Some(b::DMR_STS_IOERR as u8);
                            break;
                        }
                        let job = match jobs.iter().position(|j| j.block == blk) {
                            Some(j) => j,
                            None => {
                                let j = Job {
                                    block: blk,
                                    prev: cur,
                                    spare_block: u64::MAX,
                                    covered: [0; 2],
                                    lost: [0; 2],
                                };
                                if jobs.push(j, GFP_KERNEL).is_err() {
                                    result = Some(b::DMR_STS_IOERR as u8);
                                    break;
                                }
                                jobs.len() - 1
                            }
                        };
                        let sl = Slice {
                            job,
                            bio: i,
                            in_block: s0 - bstart,
                            sectors: n,
                            bio_off,
                        };
                        if slices.push(sl, GFP_KERNEL).is_err() {
                            result = Some(b::DMR_STS_IOERR as u8);
                            break;
                        }
                    }
                    if pb.state == ST_WRITE_FAILED
                        && result == Some(0)
                        && !slices.iter().any(|s| s.bio == i)
                    {
                        // The main device took every block on the second try.
                        self.stats.write_retried_ok.fetch_add(1, Relaxed);
                    }
                }
                ST_READ_FAILED => {
                    for blk in first..=last {
                        let bstart = blk * spb;
                        let s0 = pb.sector.max(bstart);
                        let s1 = end.min(bstart + spb);
                        let n = s1 - s0;
                        let mut ok = false;
                        for _ in 0..self.cfg.read_retries {
                            if self
                                .sync_io(Dev::Main, s0, &mut buf.buf, n, b::dmr_io_op_DMR_IO_READ)
                                .is_ok()
                            {
                                ok = true;
                                break;
                            }
                        }
                        if ok {
                            Self::bio_copy(
                                bio,
                                (s0 - pb.sector) * 512,
                                &mut buf.buf,
                                n * 512,
                                true,
                            );
                        } else {
                            result = Some(b::DMR_STS_IOERR as u8);
                            let known = self
                                .published
                                .current_locked()
                                .and_then(|s| s.get(blk))
                                .is_some();
                            if !known && !failed && !new_pending.contains(&blk) {
                                let _ = new_pending.push(blk, GFP_KERNEL);
                            }
                        }
                    }
                    if result == Some(0) {
                        self.stats.read_retried_ok.fetch_add(1, Relaxed);
                    }
                }
                _ => {
                    // A deferred read (its block was busy): route it again.
                    let write = pb.kind == b::dmr_bio_kind_DMR_BIO_WRITE;
                    let (r, _) = crate::engine::route(
                        self.published.current_locked(),
                        bs,
                        pb.sector,
                        u64::from(pb.sectors),
                        write,
                    );
                    result = None;
                    if r == Route::Defer {
                        result = Some(b::DMR_STS_IOERR as u8);
                    } else {
                        self.resubmit(bio, pb, r);
                    }
                }
            }
            if results.push(result, GFP_KERNEL).is_err() {
                // Without a result slot the bio cannot wait for the commit: fail it now.
                self.complete(bio, b::DMR_STS_IOERR as u8);
                let _ = results.push(None, GFP_KERNEL);
            }
        }

        let commit_ok = self.apply(core, &mut jobs, &slices, &new_pending, bios, &mut buf);
        for (i, &bio) in bios.iter().enumerate() {
            let Some(Some(mut st)) = results.get(i).copied() else {
                continue;
            };
            let depends = slices.iter().any(|s| s.bio == i);
            if depends && !commit_ok {
                st = b::DMR_STS_IOERR as u8;
            }
            if depends && commit_ok && st == 0 {
                self.stats.write_errors_hidden.fetch_add(1, Relaxed);
            }
            self.complete(bio, st);
        }
    }

    /// Remaps the blocks of `jobs` and records `pending`, with one commit. Returns
    /// whether every mapping the bios depend on is durable.
    fn apply(
        &self,
        core: &mut crate::target::Core,
        jobs: &mut [Job],
        slices: &[Slice],
        pending: &[u64],
        bios: &[*mut bio],
        buf: &mut IoBuf,
    ) -> bool {
        if jobs.is_empty() && pending.is_empty() {
            return true;
        }
        let bs = self.cfg.block_size;
        let spb = bs.sectors();
        // 0. A storm of new remaps means the main device is failing as a whole.
        let new = jobs
            .iter()
            .filter(|j| j.prev.map_or(true, |p| p.state != REMAPPED))
            .count() as u64;
        // SAFETY: reads the monotonic clock.
        let now = unsafe { b::dmr_now_ms() };
        let table = self
            .published
            .current_locked()
            .map_or(&[][..], |s| &s.items[..]);
        if new > 0 && !crate::meta_io::Core::fits(table, new as usize) {
            self.enter_failed(c"metadata full: the remap table cannot hold more entries");
            return false;
        }
        if new > 0 && !core.storm.take(new, now) {
            self.enter_failed(c"remap storm: more than max_remap_rate remaps per minute, the main device looks failed");
            return false;
        }
        // 1. Spare blocks for new remaps.
        for j in jobs.iter_mut() {
            match j.prev {
                Some(p) if p.state == REMAPPED => {
                    j.spare_block = p.spare_block;
                    j.lost = p.lost;
                }
                _ => match core.alloc_block() {
                    Some(s) => j.spare_block = s,
                    None => {
                        self.enter_failed(c"spare full: no free spare block");
                        self.free_jobs(core, jobs);
                        return false;
                    }
                },
            }
        }
        // 2. Make the blocks busy and wait for writes already on their way to main.
        let mut busy = KVec::new();
        for j in jobs.iter() {
            let s = j.special(BUSY);
            if busy.push(s, GFP_KERNEL).is_err() {
                self.free_jobs(core, jobs);
                return false;
            }
        }
        if !busy.is_empty() {
            if !self.publish_changes(&busy) {
                self.free_jobs(core, jobs);
                return false;
            }
            // SAFETY: the worker is live; waits for in-flight main writes.
            unsafe { b::dmr_io_drain(self.worker) };
        }
        // 3. Build each block's data and write it to the spare.
        let mut ok = true;
        for (ji, j) in jobs.iter_mut().enumerate() {
            for s in slices.iter().filter(|s| s.job == ji) {
                mask_set(&mut j.covered, s.in_block, s.in_block + s.sectors);
            }
            let remapped_before = j.prev.is_some_and(|p| p.state == REMAPPED);
            let Some(base) = layout::data_block_sector(bs, Blocks(j.spare_block)) else {
                ok = false;
                break;
            };
            let bstart = j.block * spb;
            // Current contents: from the spare if already remapped, else from main
            // (sector by sector where the block does not read as a whole).
            let src = if remapped_before {
                Dev::Spare
            } else {
                Dev::Main
            };
            let src_at = if remapped_before { base.0 } else { bstart };
            if mask_count_full(&j.covered, spb) {
                // Entirely overwritten: nothing to carry over.
            } else if self
                .sync_io(src, src_at, &mut buf.buf, spb, b::dmr_io_op_DMR_IO_READ)
                .is_err()
            {
                for k in 0..spb {
                    if mask_any(&j.covered, k, k + 1) {
                        continue;
                    }
                    let off = (k * 512) as usize;
                    let ok_one = match buf.buf.get_mut(off..off + 512) {
                        Some(one) => self
                            .sync_io(src, src_at + k, one, 1, b::dmr_io_op_DMR_IO_READ)
                            .is_ok(),
                        None => false,
                    };
                    if !ok_one {
                        mask_set(&mut j.lost, k, k + 1);
                        if let Some(one) = buf.buf.get_mut(off..off + 512) {
                            one.fill(0);
                        }
                    }
                }
            }
            for s in slices.iter().filter(|s| s.job == ji) {
                let Some(&bio) = bios.get(s.bio) else {
                    continue;
                };
                let off = (s.in_block * 512) as usize;
                if let Some(dst) = buf.buf.get_mut(off..) {
                    Self::bio_copy(bio, s.bio_off, dst, s.sectors * 512, false);
                }
            }
            for k in 0..spb {
                if mask_any(&j.covered, k, k + 1) {
                    mask_clear(&mut j.lost, k, k + 1);
                }
            }
            if self
                .sync_io(
                    Dev::Spare,
                    base.0,
                    &mut buf.buf,
                    spb,
                    b::dmr_io_op_DMR_IO_WRITE,
                )
                .is_err()
            {
                ok = false;
                break;
            }
        }
        // 4. Data durable on the spare, then the mapping (one commit for the batch).
        let mut changes = KVec::new();
        if ok {
            for j in jobs.iter() {
                let s = j.special(REMAPPED);
                ok &= changes.push(s, GFP_KERNEL).is_ok();
            }
            for &p in pending {
                let s = Special::pending(p);
                ok &= changes.push(s, GFP_KERNEL).is_ok();
            }
        }
        if ok {
            ok = self.commit_changes(core, &changes).is_ok();
        }
        if !ok {
            if !self.failed.load(Relaxed) {
                self.enter_failed(c"spare or metadata write failed");
            }
            // Undo: the blocks go back to what they were.
            let mut undo = KVec::new();
            for j in jobs.iter() {
                let s = j.prev.unwrap_or(Special {
                    state: 0,
                    ..Special::pending(j.block)
                });
                let _ = undo.push(s, GFP_KERNEL);
            }
            self.free_jobs(core, jobs);
            let _ = self.publish_changes(&undo);
            return false;
        }
        let new_remaps = jobs
            .iter()
            .filter(|j| !j.prev.is_some_and(|p| p.state == REMAPPED))
            .count() as u64;
        self.stats.remaps.fetch_add(new_remaps, Relaxed);
        true
    }

    fn free_jobs(&self, core: &mut crate::target::Core, jobs: &mut [Job]) {
        for j in jobs.iter_mut() {
            let fresh = !j.prev.is_some_and(|p| p.state == REMAPPED);
            if fresh && j.spare_block != u64::MAX {
                core.free_block(j.spare_block);
            }
            j.spare_block = u64::MAX;
        }
    }
}

fn mask_count_full(m: &crate::engine::SectorMask, spb: u64) -> bool {
    u64::from(crate::engine::mask_count(m)) >= spb
}

/// A block being remapped in this batch.
struct Job {
    block: u64,
    prev: Option<Special>,
    spare_block: u64,
    covered: crate::engine::SectorMask,
    lost: crate::engine::SectorMask,
}

impl Job {
    /// The job's block in `state`, at its spare block.
    fn special(&self, state: u8) -> Special {
        Special {
            block: self.block,
            state,
            spare: 0,
            spare_block: self.spare_block,
            lost: self.lost,
        }
    }
}

/// The part of a bio that falls into a job's block.
struct Slice {
    job: usize,
    bio: usize,
    in_block: u64,
    sectors: u64,
    bio_off: u64,
}

impl Remap {
    /// `remap <block>`: moves a block to the spare now, copying what is readable.
    pub(crate) fn remap_now(&self, core: &mut crate::target::Core, blk: u64) -> Result {
        if self.failed.load(Relaxed) {
            return Err(EIO);
        }
        let prev = self
            .published
            .current_locked()
            .and_then(|s| s.get(blk))
            .copied();
        if prev.is_some_and(|p| p.state == REMAPPED) {
            return Err(EEXIST);
        }
        let mut buf = IoBuf::new(self.cfg.block_size.bytes() as usize)?;
        let mut jobs = [Job {
            block: blk,
            prev,
            spare_block: u64::MAX,
            covered: [0; 2],
            lost: [0; 2],
        }];
        if self.apply(core, &mut jobs, &[], &[], &[], &mut buf) {
            Ok(())
        } else {
            Err(EIO)
        }
    }

    /// `unremap <block>`: copies a remapped block back to the main device and drops the
    /// remap, if the main device takes the write and no sector of it was lost.
    pub(crate) fn unremap_now(&self, core: &mut crate::target::Core, blk: u64) -> Result {
        let Some(cur) = self
            .published
            .current_locked()
            .and_then(|s| s.get(blk))
            .copied()
        else {
            return Err(ENOENT);
        };
        if cur.state == PENDING {
            let gone = Special { state: 0, ..cur };
            return self.commit_changes(core, &[gone]);
        }
        if cur.state != REMAPPED || crate::engine::mask_count(&cur.lost) != 0 {
            return Err(EBUSY);
        }
        let bs = self.cfg.block_size;
        let spb = bs.sectors();
        let base = layout::data_block_sector(bs, Blocks(cur.spare_block)).ok_or(EINVAL)?;
        let mut buf = IoBuf::new(bs.bytes() as usize)?;
        if !self.publish_changes(&[Special { state: BUSY, ..cur }]) {
            return Err(ENOMEM);
        }
        // SAFETY: the worker is live; waits for writes already sent to the spare.
        unsafe { b::dmr_io_drain(self.worker) };
        let copied = self
            .sync_io(
                Dev::Spare,
                base.0,
                &mut buf.buf,
                spb,
                b::dmr_io_op_DMR_IO_READ,
            )
            .and_then(|()| {
                self.sync_io(
                    Dev::Main,
                    blk * spb,
                    &mut buf.buf,
                    spb,
                    b::dmr_io_op_DMR_IO_WRITE_FUA,
                )
            });
        let r = copied.and_then(|()| self.commit_changes(core, &[Special { state: 0, ..cur }]));
        match r {
            Ok(()) => {
                core.free_block(cur.spare_block);
                Ok(())
            }
            Err(e) => {
                // The block stays remapped.
                let _ = self.publish_changes(&[cur]);
                Err(e)
            }
        }
    }
}
