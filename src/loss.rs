// SPDX-License-Identifier: GPL-2.0

//! Losing a spare of a pool.
//!
//! A failed I/O of a spare is counted where it happens ([`Remap::spare_io_error`], any
//! context). With one spare the target enters mode `failed` as it always has. In a pool
//! the worker decides, under the core mutex, whether the spare is *lost*
//! ([`Remap::handle_spare_errors`]): a spare that no longer reads any of its five
//! metadata copy sectors, while another spare of the pool is active, is recorded lost
//! (`meta::SPARE_FAILED`, committed to the other spares). From then on every block that
//! lived on it counts as having all its sectors lost: `map` (and the worker's routing)
//! fails its reads and hands its writes to the worker, which puts the block on another
//! spare (`worker::apply`). The entries themselves do not change: the spare's state in
//! the metadata says it, so recording a loss takes one commit whatever the spare held,
//! and `spare_remove` later moves the entries off it with their sectors lost. A spare
//! that still answers has a bad spot, not a lost device: mode `failed`, as before.
//!
//! A commit or a remap that meets the dead spare first does not wait for the worker's
//! check: [`Remap::lose_now`] probes and records the spare lost on the spot, and the
//! commit is made again without it ([`Remap::commit_surviving`]) or the remap's blocks
//! placed again on the other spares (`worker::apply`), so the bios waiting for them
//! complete.
//!
//! Ordering: `lost_spares` (read by `map` with the table, inside its RCU section) gets
//! the spare's bit before the commit. A bio routed before that goes to the spare and
//! fails there: a read completes with the error, a write comes back to the worker
//! (`remap_end_io`) and is placed on another spare by a later batch, after this commit.
//! A bio routed after it is failed (read) or deferred to the worker (write). Either way
//! no write to a block of the lost spare completes before the commit recording the loss,
//! and no read returns data from it. Should the commit fail, the target enters mode
//! `failed` (writes to the lost blocks then fail, as writes to lost sectors do there).

use crate::bindings as b;
use crate::engine::{mask_set, SectorMask, Special};
use crate::remap_core::layout::COPY_SECTORS;
use crate::remap_core::remap_table::stores_remapped;
use crate::target::{Core, Remap};
use crate::worker::Dev;
use core::ffi::CStr;
use core::sync::atomic::{
    AtomicU32,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use kernel::prelude::*;

macro_rules! dmerr {
    ($($arg:tt)*) => { pr_err!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}

impl Remap {
    /// A failed I/O of spare `i`, from any context (`end_io` included): counted. In a
    /// pool the worker then decides whether the spare is lost
    /// ([`Self::handle_spare_errors`]); with one spare the target enters mode `failed`
    /// at once (`why`).
    pub(crate) fn spare_io_error(&self, i: u8, why: &CStr) {
        self.count_spare_error(i);
        if !self.mark_spare(&self.spare_suspects, i) {
            self.enter_failed(why);
        }
    }

    /// Sets spare `i`'s bit in `bits` (`spare_suspects` or `spare_checks`) and kicks
    /// the worker, for a pool spare; false (nothing done) otherwise.
    fn mark_spare(&self, bits: &AtomicU32, i: u8) -> bool {
        if !self.pool_handles_spare_errors() || usize::from(i) >= self.nspares || i >= 32 {
            return false;
        }
        bits.fetch_or(1u32 << i, AcqRel);
        // SAFETY: the worker is live while the target exists; kicking it is allowed
        // from any context.
        unsafe { b::dmr_worker_kick(self.worker) };
        true
    }

    /// Whether a spare with a failed I/O is a pool spare whose error the worker
    /// handles ([`Self::spare_io_error`]): a write that failed on it is then handed to
    /// the worker, which places it on another spare if the spare turns out lost.
    pub(crate) fn pool_handles_spare_errors(&self) -> bool {
        self.nspares > 1
    }

    /// Marks pool spare `i` for the worker's loss check only, without counting an
    /// error: a failure that is no I/O error of a remapped block (a metadata copy write
    /// or flush of a commit, whose failure the commit handles; a flush; a history slot
    /// write). A spare that still answers is then left as it is, not a cause for mode
    /// `failed`; one that does not is recorded lost when another spare is active.
    pub(crate) fn suspect_spare(&self, i: u8) {
        self.mark_spare(&self.spare_checks, i);
    }

    /// Whether spare `i` was recorded lost (lock-free: `map`, the sampler).
    pub(crate) fn spare_is_lost(&self, i: u8) -> bool {
        i < 32 && self.lost_spares.load(Acquire) & (1u32 << i) != 0
    }

    /// The sectors of remapped block `e` that hold no data: its recorded lost sectors,
    /// or all of them when the spares of all its copies were lost.
    pub(crate) fn lost_of(&self, e: &Special) -> SectorMask {
        if e.copies().all(|(sp, _)| self.spare_is_lost(sp)) {
            let mut all: SectorMask = [0; 2];
            mask_set(&mut all, 0, self.cfg.block_size.sectors());
            all
        } else {
            e.lost
        }
    }

    /// The worker, under the core mutex: the spares with failed I/O since the last
    /// call, each recorded lost, or mode `failed` entered (see the module comment).
    /// Called after the worker took its batch of bios: a write that failed on a spare
    /// set the spare's bit before it was queued, so the batch that carries it sees the
    /// loss recorded. Returns whether a dm event is due (a spare was recorded lost).
    pub(crate) fn handle_spare_errors(&self, core: &mut Core) -> bool {
        let errors = self.spare_suspects.swap(0, AcqRel);
        let checks = self.spare_checks.swap(0, AcqRel);
        let mut event = false;
        for i in (0..self.nspares.min(32)).filter(|&i| (errors | checks) & (1u32 << i) != 0) {
            let Ok(i) = u8::try_from(i) else {
                continue;
            };
            if core.is_lost(i) {
                continue;
            }
            // An I/O error of a remapped block (not a check only): a spare that still
            // answers, or one that cannot be recorded lost, puts the target in mode
            // failed, as with one spare.
            let error = errors & (1u32 << i) != 0;
            // Without another active spare there is nothing to carry on with, and no
            // need to probe a device that may take its timeouts to answer.
            let others = (0..self.nspares)
                .filter_map(|k| u8::try_from(k).ok())
                .any(|k| k != i && core.is_active(k));
            if !others || !self.writable {
                if error {
                    self.enter_failed(c"spare I/O error");
                }
                continue;
            }
            if self.spare_answers(core, i) {
                if error {
                    self.enter_failed(
                        c"spare I/O error (the spare still answers: a bad spot on it)",
                    );
                }
                continue;
            }
            event |= self.lose_spare(core, i);
        }
        event
    }

    /// Whether spare `i` still reads one logical block at any of its metadata copy
    /// sectors. Without a buffer to probe with (cannot happen: `Core::probe_buf` is
    /// allocated at load) it is taken to answer: the safe side.
    fn spare_answers(&self, core: &mut Core, i: u8) -> bool {
        let unit = self.lbs_sectors(Dev::Spare(i)).max(1);
        let Some(buf) = core.probe_buf((unit * 512) as usize) else {
            return true;
        };
        COPY_SECTORS.iter().any(|&at| {
            self.sync_io(Dev::Spare(i), at, buf, unit, b::dmr_io_op_DMR_IO_READ)
                .is_ok()
        })
    }

    /// Records spare `i` lost in memory: the spare list (the next commit writes it),
    /// `lost_spares` (for `map`), the count. Returns how many blocks lived on it
    /// alone (a block with a second copy on a spare not lost still reads).
    fn mark_lost(&self, core: &mut Core, i: u8) -> usize {
        core.set_lost(i);
        self.lost_spares.fetch_or(1u32 << i, AcqRel);
        self.stats.spares_lost.fetch_add(1, Relaxed);
        let lost = self.lost_spares.load(Acquire);
        let gone = |sp: u8| sp < 32 && lost & (1u32 << sp) != 0;
        self.published
            .items_locked()
            .iter()
            .filter(|e| {
                stores_remapped(e.state)
                    && e.copies().any(|(sp, _)| sp == i)
                    && e.copies().all(|(sp, _)| gone(sp))
            })
            .count()
    }

    /// Records spare `i` lost (`lost_spares`, then one commit to the other spares).
    /// Returns true (a dm event is due).
    fn lose_spare(&self, core: &mut Core, i: u8) -> bool {
        let blocks = self.mark_lost(core, i);
        let r = self.commit_current(core);
        dmerr!(
            "{}: spare {} lost (its device no longer answers): {} block(s) on it now read as errors until written again, on the other spares; {}",
            self.main_name(),
            i,
            blocks,
            if r.is_ok() {
                "the other spares recorded the loss"
            } else {
                "the commit recording the loss failed"
            }
        );
        if r.is_err() {
            self.enter_failed(c"metadata write failed while recording a lost spare");
        }
        self.mirror(core);
        true
    }

    /// `core.commit(items)` for the commits the worker, the messages and the scan
    /// make (`commit_current`, `commit_changes`). When it fails because a copy write or
    /// flush of a pool spare failed (`Core::failed_spare`), and that spare no longer
    /// answers while another spare is active, the spare is recorded lost (as
    /// [`Self::handle_spare_errors`] would record it a moment later) and the commit is
    /// made again, to the other spares, under the next version number (the failed
    /// attempt's is consumed): a spare that dies while idle does not put the target in
    /// mode `failed` at the next remap, which commits to every spare.
    ///
    /// Not made again when this commit places data on the dead spare (`placed`, bit
    /// `i`: a remap or move to spare `i` whose data went there before the commit): that
    /// data would be lost with the spare, so the commit fails as before and the bios
    /// waiting for it fail; the worker records the loss afterwards.
    ///
    /// Both attempts write the same map (`items`); only the spare's state differs. So
    /// what the callers learn from `commit_landed`/`commit_uncertain` — whether the map
    /// may be what the next load finds — counts both attempts (`Core::commit_again`).
    /// A cut between them leaves the failed attempt's copies (the spare active) or the
    /// previous version: the load then meets the unreadable spare unrecorded and
    /// refuses, as after a cut before any loss check.
    ///
    /// Ordering: the spare's `lost_spares` bit is set before the second attempt, as in
    /// [`Self::lose_spare`]. Callers hold `core`; sync I/O (the probe) is allowed where
    /// they commit.
    pub(crate) fn commit_surviving(
        &self,
        core: &mut Core,
        items: &[crate::engine::Special],
        placed: u32,
    ) -> Result {
        let r = core.commit(items);
        let (Err(_), Some(si)) = (r, core.failed_spare) else {
            return r;
        };
        if placed & (1u32 << si.min(31)) != 0
            || !self.lose_now(core, si, "a metadata commit met it")
        {
            return r;
        }
        core.failed_spare = None;
        let r2 = core.commit_again(items);
        dmerr!(
            "{}: {}",
            self.main_name(),
            if r2.is_ok() {
                "the commit was made again on the other spares"
            } else {
                "the commit made again on the other spares failed too"
            }
        );
        if r2.is_err() {
            // The loss is in memory only: as in `lose_spare`, mode failed (the next
            // commit, `clear_failed`'s or the mode's own, records it).
            self.enter_failed(c"metadata write failed while recording a lost spare");
        }
        r2
    }

    /// In the worker's batch or a commit, under the core mutex: pool spare `si` just
    /// failed an I/O (`during` says which); if it no longer answers while another
    /// spare is active, it is recorded lost in memory now (the spare list, which the
    /// caller's commit writes; `lost_spares`, the count, the log, the dm event) and
    /// true is returned. False when it still answers, is the only active spare, is
    /// already lost, or the table is read-only: the caller fails as before.
    ///
    /// Ordering: as [`Self::lose_spare`], the `lost_spares` bit is set before the
    /// commit that records the loss; the caller's own blocks are busy (drained) or
    /// placed by that commit.
    pub(crate) fn lose_now(&self, core: &mut Core, si: u8, during: &str) -> bool {
        if si >= 32
            || !self.pool_handles_spare_errors()
            || !self.writable
            || core.is_lost(si)
            || !(0..self.nspares)
                .filter_map(|k| u8::try_from(k).ok())
                .any(|k| k != si && core.is_active(k))
            || self.spare_answers(core, si)
        {
            return false;
        }
        let blocks = self.mark_lost(core, si);
        dmerr!(
            "{}: spare {} lost (its device no longer answers; {}): {} block(s) on it now read as errors until written again, on the other spares",
            self.main_name(),
            si,
            during,
            blocks
        );
        self.loss_event.store(true, Release);
        // SAFETY: the worker is live while the target exists; it raises the dm event
        // once it holds no lock (`raise_event`).
        unsafe { b::dmr_worker_kick(self.worker) };
        true
    }
}
