// SPDX-License-Identifier: GPL-2.0

//! The remap engine: the table the hot path reads, and the worker that moves blocks.
//!
//! C header: [include/linux/rcupdate.h](srctree/include/linux/rcupdate.h)
//!
//! Readers (`map`) look blocks up in an immutable [`Snapshot`] published through an
//! RCU-protected pointer: no lock, one pointer load and, when the table is not empty, a
//! binary search. Writers (the worker and the messages) hold the `Core` mutex, rebuild
//! the unpublished second version (allocated with the target, so a writer never
//! allocates), publish it, wait for a grace period and keep the old one as the next
//! spare version.
//!
//! A block being remapped or unremapped is first published as [`BUSY`]: `map` then hands
//! every bio that touches it to the worker, and the worker waits for the bios already
//! sent on their way before it moves the block's data (see `target::remap_map` for the
//! ordering). A mapping is durable on the spare (data written and flushed, then the
//! metadata committed) before any bio that depends on it completes.

use crate::bindings as b;
use crate::remap_core::units::BlockSize;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::prelude::*;

use crate::remap_core::remap_table;
pub(crate) use crate::remap_core::remap_table::{
    is_fenced, mask_any, mask_clear, mask_count, mask_set, Entry as Special, SectorMask, BUSY,
    FENCED, FENCED_MOVED, PENDING, REMAPPED,
};
use crate::reserve::Fixed;

/// Most entries a table version can hold: every block a stored state may hold
/// (`meta::MAX_BLOCKS`, which `encode` enforces) plus the in-memory [`BUSY`] entries of
/// one worker batch. [`FENCED`] entries, in memory only too, count against
/// `MAX_BLOCKS`: `Core::fits` counts every entry of the table.
pub(crate) fn table_capacity() -> usize {
    crate::remap_core::meta::MAX_BLOCKS + crate::worker::MAX_JOBS
}

/// An immutable (while published), sorted view of the special blocks.
pub(crate) struct Snapshot {
    items: Fixed<Special>,
}

impl Snapshot {
    /// An empty table version with room for [`table_capacity`] entries.
    pub(crate) fn reserve() -> Result<KBox<Snapshot>> {
        Ok(KBox::new(
            Snapshot {
                items: Fixed::new(table_capacity())?,
            },
            GFP_KERNEL,
        )?)
    }

    /// The entries, sorted by block.
    pub(crate) fn items(&self) -> &[Special] {
        self.items.as_slice()
    }

    /// The entry of block `b`.
    pub(crate) fn get(&self, b: u64) -> Option<&Special> {
        remap_table::find(self.items(), b)
    }

    /// Refills this (unpublished) version with `old` and `changes` applied: each change
    /// replaces the entry of its block or is inserted; one whose `state` is 0 removes
    /// the block. `changes` is sorted here; it must not name a block twice. Never
    /// allocates; fails when the result does not fit.
    pub(crate) fn rebuild(&mut self, old: &[Special], changes: &mut [Special]) -> Result {
        changes.sort_unstable_by_key(|c| c.block);
        if changes
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.block == b.block))
        {
            return Err(EINVAL);
        }
        self.items.clear();
        let items = &mut self.items;
        remap_table::merge(old, changes, |e| items.push(e).map_err(|_| ENOSPC))
    }
}

pub(crate) use crate::remap_core::route::Route;

/// Routes the I/O `sector..sector+n` (target-relative) over the published version
/// `snap`, spares of `lost_spares` (bit `i`: spare `i`) lost (see
/// [`crate::remap_core::route::route_with`]). Returns the route and, when the bio must
/// be cut, the number of sectors the first part keeps.
pub(crate) fn route(
    snap: Option<&Snapshot>,
    bs: BlockSize,
    sector: u64,
    n: u64,
    write: bool,
    lost_spares: u32,
) -> (Route, Option<u64>) {
    match snap {
        Some(snap) => {
            crate::remap_core::route::route_with(snap.items(), bs, sector, n, write, lost_spares)
        }
        None => (Route::Main, None),
    }
}

/// The RCU-published table and its writer-side spare version.
///
/// # Invariants
/// `ptr` is null or comes from `KBox::into_raw` of a [`Snapshot`] that is freed (or
/// reused) only after a grace period has passed since it was unpublished.
pub(crate) struct Published {
    ptr: AtomicPtr<Snapshot>,
}

impl Published {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Self {
            ptr: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Runs `f` on the current snapshot inside an RCU read-side section.
    pub(crate) fn read<R>(&self, f: impl FnOnce(Option<&Snapshot>) -> R) -> R {
        // SAFETY: plain RCU read-side critical section, ended below.
        unsafe { b::dmr_rcu_read_lock() };
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: by the type invariant a non-null pointer is a live snapshot that is not
        // freed or reused before this read-side section ends.
        let r = f(unsafe { p.as_ref() });
        // SAFETY: ends the section begun above.
        unsafe { b::dmr_rcu_read_unlock() };
        r
    }

    /// The current snapshot, for writers that hold the core mutex (which serialises
    /// every `publish`).
    pub(crate) fn current_locked(&self) -> Option<&Snapshot> {
        // SAFETY: writers hold the core mutex, so no `publish` can reuse it meanwhile.
        unsafe { self.ptr.load(Ordering::Acquire).as_ref() }
    }

    /// The current entries (writers, under the core mutex).
    pub(crate) fn items_locked(&self) -> &[Special] {
        self.current_locked().map_or(&[][..], |s| s.items())
    }

    /// Publishes `new` and returns the version it replaces once no reader can see it
    /// any more (after a grace period), for reuse. `expedite`: the worker's changes,
    /// which bios that failed on the main device wait for, take an expedited grace
    /// period (`dmr_synchronize_rcu_expedited`); the others (messages, the scan, table
    /// loads) a normal one, so that a loop of them (`clear`, a scan region) does not
    /// force one expedited grace period after another on every CPU.
    ///
    /// Callers hold the core mutex. Ordering: a reader that loaded the old pointer is
    /// inside an RCU read-side section, and the grace period ends only after every
    /// such section has ended (an expedited one gives the same guarantee). Whatever a
    /// reader did inside its section (in `map`: entering the in-flight SRCU for a bio
    /// it routes) is therefore complete when this returns; a reader that starts later
    /// loads the new pointer.
    pub(crate) fn publish(&self, new: KBox<Snapshot>, expedite: bool) -> Option<KBox<Snapshot>> {
        // INVARIANT: the new pointer comes from `KBox::into_raw`.
        let old = self.ptr.swap(KBox::into_raw(new), Ordering::AcqRel);
        if expedite {
            // SAFETY: waits for a grace period; called from process context.
            unsafe { b::dmr_synchronize_rcu_expedited() };
        } else {
            // SAFETY: as above.
            unsafe { b::dmr_synchronize_rcu() };
        }
        if old.is_null() {
            return None;
        }
        // SAFETY: `old` came from `KBox::into_raw`, is unpublished, and no reader can
        // still see it after the grace period.
        Some(unsafe { KBox::from_raw(old) })
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        let p = self.ptr.swap(ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: the target is being destroyed: dm core runs no more `map` calls,
            // so nothing reads `p`; it came from `KBox::into_raw`.
            drop(unsafe { KBox::from_raw(p) });
        }
    }
}
