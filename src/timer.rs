// SPDX-License-Identifier: GPL-2.0

//! A target's delayed work item (the C shim's `dmr_scanner`, on `system_long_wq`),
//! as the background scan and the sampler use it: created with the target, queued by
//! its own runs, cancelled and freed before the target goes.
//!
//! C header: [include/linux/workqueue.h](srctree/include/linux/workqueue.h)

use crate::bindings as b;
use kernel::prelude::*;

/// One delayed work item, or none yet.
pub(crate) struct Timer {
    work: *mut b::dmr_scanner,
}

// SAFETY: `work` is a C work item usable from any thread.
unsafe impl Send for Timer {}
// SAFETY: as above.
unsafe impl Sync for Timer {}

impl Timer {
    /// No work item yet.
    pub(crate) const fn none() -> Self {
        Self {
            work: core::ptr::null_mut(),
        }
    }

    /// Creates the work item: each run calls `f(ctx)`.
    ///
    /// # Safety
    /// `ctx` must stay valid for `f` until [`Timer::destroy`] (or the drop) returns.
    pub(crate) unsafe fn create(
        &mut self,
        f: unsafe extern "C" fn(*mut core::ffi::c_void),
        ctx: *mut core::ffi::c_void,
    ) -> Result {
        // SAFETY: per the contract `ctx` outlives the work item.
        let w = unsafe { b::dmr_scanner_create(Some(f), ctx) };
        if w.is_null() {
            return Err(ENOMEM);
        }
        self.destroy();
        self.work = w;
        Ok(())
    }

    /// (Re)schedules a run in `delay_ms` (the shim waits at most an hour: a caller
    /// with a later deadline checks it when it runs).
    pub(crate) fn queue(&self, delay_ms: u64) {
        if !self.work.is_null() {
            // SAFETY: the work item lives until `destroy`.
            unsafe { b::dmr_scanner_queue(self.work, delay_ms) };
        }
    }

    /// Cancels a pending run and waits for one in progress (which cannot requeue
    /// meanwhile). Process context, with no lock a run takes held.
    pub(crate) fn cancel(&self) {
        if !self.work.is_null() {
            // SAFETY: as above.
            unsafe { b::dmr_scanner_cancel(self.work) };
        }
    }

    /// Cancels (as [`Timer::cancel`]) and frees the work item.
    pub(crate) fn destroy(&mut self) {
        if !self.work.is_null() {
            // SAFETY: created by `create`; freed once, here.
            unsafe { b::dmr_scanner_destroy(self.work) };
            self.work = core::ptr::null_mut();
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.destroy();
    }
}
