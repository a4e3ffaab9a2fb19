// SPDX-License-Identifier: GPL-2.0

//! Losing a spare of a pool.
//!
//! A failed I/O of a spare is counted where it happens ([`Remap::spare_io_error`], any
//! context). With one spare, or when no other spare of the pool is active, the target
//! enters mode `failed` as it always has. Otherwise the worker decides, under the core
//! mutex, whether the spare is *lost* ([`Remap::handle_spare_errors`]): a spare that
//! no longer reads any of its five metadata copy sectors is recorded lost
//! (`meta::SPARE_FAILED`), every block that lived on it is recorded with all its
//! sectors lost (reads fail honestly; the next write of a block puts it on another
//! spare, `worker::apply`), and one commit to the other spares records it. A spare that
//! still answers has a bad spot, not a lost device: mode `failed`, as before.
//!
//! Ordering: the entries are republished with their sectors lost before the commit
//! (each publish waits for a grace period, `Published::publish`). From then on `map`
//! fails reads of them and hands writes to the worker, which is the caller here and
//! processes them after this returns: no write to a block of the lost spare completes
//! before the commit recording the loss. Bios already sent to the spare fail there
//! (reads complete with the error; writes come back to the worker as failed writes,
//! `remap_end_io`, and are placed on another spare by the batch after this). Should the
//! commit fail, the target enters mode `failed`: the lost blocks stay lost in memory
//! (their reads fail, as they would on the dead spare) and their writes fail, as in
//! mode `failed` a write to lost sectors does.

use crate::bindings as b;
use crate::engine::{mask_set, SectorMask, Special};
use crate::remap_core::layout::COPY_SECTORS;
use crate::remap_core::remap_table::stores_remapped;
use crate::target::{Core, Remap};
use crate::worker::Dev;
use core::ffi::CStr;
use core::sync::atomic::Ordering::{AcqRel, Relaxed};
use kernel::prelude::*;

macro_rules! dmerr {
    ($($arg:tt)*) => { pr_err!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}

/// Entries republished per grace period while a lost spare's blocks are marked.
const MARK_BATCH: usize = 32;

impl Remap {
    /// A failed I/O of spare `i`, from any context (`end_io` included): counted. In a
    /// pool the worker then decides whether the spare is lost
    /// ([`Self::handle_spare_errors`]); with one spare the target enters mode `failed`
    /// at once (`why`).
    pub(crate) fn spare_io_error(&self, i: u8, why: &CStr) {
        self.count_spare_error(i);
        if self.nspares > 1 && usize::from(i) < self.nspares && i < 32 {
            self.spare_suspects.fetch_or(1u32 << i, AcqRel);
            // SAFETY: the worker is live while the target exists; kicking it is
            // allowed from any context.
            unsafe { b::dmr_worker_kick(self.worker) };
        } else {
            self.enter_failed(why);
        }
    }

    /// Whether a spare with a failed I/O is a pool spare whose error the worker
    /// handles ([`Self::spare_io_error`]): a write that failed on it is then handed to
    /// the worker, which places it on another spare if the spare turns out lost.
    pub(crate) fn pool_handles_spare_errors(&self) -> bool {
        self.nspares > 1
    }

    /// The worker, under the core mutex: the spares with failed I/O since the last
    /// call, each recorded lost, or mode `failed` entered (see the module comment).
    /// Returns whether a dm event is due (a spare was recorded lost).
    pub(crate) fn handle_spare_errors(&self, core: &mut Core) -> bool {
        let bits = self.spare_suspects.swap(0, AcqRel);
        let mut event = false;
        for i in (0..self.nspares.min(32)).filter(|&i| bits & (1u32 << i) != 0) {
            let Ok(i) = u8::try_from(i) else {
                continue;
            };
            if core.is_lost(i) {
                continue;
            }
            if self.spare_answers(core, i) {
                self.enter_failed(c"spare I/O error (the spare still answers: a bad spot on it)");
                continue;
            }
            let others = (0..self.nspares)
                .filter_map(|k| u8::try_from(k).ok())
                .any(|k| k != i && core.is_active(k));
            if !others || !self.writable {
                self.enter_failed(c"spare I/O error: the spare no longer answers");
                continue;
            }
            event |= self.lose_spare(core, i);
        }
        event
    }

    /// Whether spare `i` still reads one logical block at any of its metadata copy
    /// sectors.
    fn spare_answers(&self, core: &mut Core, i: u8) -> bool {
        let unit = self.lbs_sectors(Dev::Spare(i)).max(1);
        let Some(buf) = core.scratch.block_buf().get_mut(..(unit * 512) as usize) else {
            return false;
        };
        COPY_SECTORS.iter().any(|&at| {
            self.sync_io(Dev::Spare(i), at, buf, unit, b::dmr_io_op_DMR_IO_READ)
                .is_ok()
        })
    }

    /// Records spare `i` lost: its blocks' sectors all lost, republished, then
    /// committed to the other spares. Blocks fenced on their way to it
    /// (`FENCED_MOVED`) keep their fence, with every sector lost for when it settles.
    /// Returns true (a dm event is due).
    fn lose_spare(&self, core: &mut Core, i: u8) -> bool {
        let spb = self.cfg.block_size.sectors();
        let mut all: SectorMask = [0; 2];
        mask_set(&mut all, 0, spb);
        core.set_lost(i);
        let expedite = core.expedite;
        core.expedite = true;
        let mut marked = 0u64;
        loop {
            let mut batch = [Special::default(); MARK_BATCH];
            let mut n = 0;
            let on_it = self
                .published
                .items_locked()
                .iter()
                .filter(|e| e.spare == i && stores_remapped(e.state) && e.lost != all);
            for (slot, e) in batch.iter_mut().zip(on_it) {
                *slot = Special { lost: all, ..*e };
                n += 1;
            }
            let Some(changes) = batch.get_mut(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            if self.publish_changes(core, changes).is_err() {
                // Cannot happen (the standby version is there between operations and
                // the table does not grow). The spare stays recorded lost in memory.
                break;
            }
            marked += n as u64;
        }
        core.expedite = expedite;
        self.stats.spares_lost.fetch_add(1, Relaxed);
        let r = self.commit_current(core);
        dmerr!(
            "{}: spare {} lost (its device no longer answers): {} block(s) on it now read as errors until written again, on the other spares; {}",
            self.main_name(),
            i,
            marked,
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
}
