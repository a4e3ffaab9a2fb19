// SPDX-License-Identifier: GPL-2.0

//! The remap engine: the table the hot path reads, and the worker that moves blocks.
//!
//! C header: [include/linux/rcupdate.h](srctree/include/linux/rcupdate.h)
//!
//! Readers (`map`) look blocks up in an immutable [`Snapshot`] published through an
//! RCU-protected pointer: no lock, one pointer load and, when the table is not empty, a
//! binary search. Writers (the worker and the messages) hold the [`Core`] mutex, build a
//! new snapshot, publish it, wait for a grace period and free the old one.
//!
//! A block being remapped is first published as [`BUSY`]: `map` then hands every bio that
//! touches it to the worker, and the worker waits (SRCU) for writes already sent to the
//! main device before it reads the block's other sectors. A mapping is durable on the
//! spare (data written and flushed, then the metadata committed) before any bio that
//! depends on it completes.

use crate::bindings as b;
use crate::remap_core::units::{BlockSize, Blocks, Sectors};
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::prelude::*;

use crate::remap_core::remap_table;
pub(crate) use crate::remap_core::remap_table::{
    mask_any, mask_clear, mask_count, mask_set, Entry as Special, SectorMask, BUSY, PENDING,
    REMAPPED,
};

/// An immutable, sorted view of the special blocks.
pub(crate) struct Snapshot {
    pub(crate) items: KVVec<Special>,
}

impl Snapshot {
    /// A snapshot of `items`, which must be sorted by block.
    pub(crate) fn from_items(items: KVVec<Special>) -> Result<KBox<Snapshot>> {
        Ok(KBox::new(Snapshot { items }, GFP_KERNEL)?)
    }

    /// The first special block in `first..=last`.
    pub(crate) fn first_in(&self, first: u64, last: u64) -> Option<&Special> {
        remap_table::first_in(&self.items, first, last)
    }

    /// The entry of block `b`.
    pub(crate) fn get(&self, b: u64) -> Option<&Special> {
        remap_table::find(&self.items, b)
    }

    /// Counts of remapped and pending blocks.
    pub(crate) fn counts(&self) -> (u64, u64) {
        remap_table::counts(&self.items)
    }

    /// A copy with `changes` applied: each replaces the item of its block, or is
    /// inserted; an item whose `state` is 0 removes the block.
    pub(crate) fn with_changes(&self, changes: &[Special]) -> Result<KBox<Snapshot>> {
        let mut items = KVVec::with_capacity(self.items.len() + changes.len(), GFP_KERNEL)?;
        // Sorted by block and, for one block, by position, so that the last change of
        // a block wins (a stable sort without `alloc`).
        let mut keyed = KVVec::with_capacity(changes.len(), GFP_KERNEL)?;
        for (i, c) in changes.iter().enumerate() {
            keyed.push((c.block, i, *c), GFP_KERNEL)?;
        }
        keyed.sort_unstable_by_key(|&(b, i, _)| (b, i));
        let mut sorted_changes = KVVec::with_capacity(changes.len(), GFP_KERNEL)?;
        for &(_, _, c) in keyed.iter() {
            sorted_changes.push(c, GFP_KERNEL)?;
        }
        remap_table::merge(&self.items, &sorted_changes, |e| items.push(e, GFP_KERNEL))?;
        Ok(KBox::new(Snapshot { items }, GFP_KERNEL)?)
    }
}

/// Where `map` sends a bio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// To the main device at the same sector.
    Main,
    /// To the spare at this sector.
    Spare(u64),
    /// To the worker (the block is busy, pending, or has lost sectors being written).
    Defer,
    /// Fail it: a read of sectors whose data was lost.
    Fail,
}

/// Routes the I/O `sector..sector+n` (target-relative). Returns the route and, when
/// the bio must be cut, the number of sectors the first part keeps.
pub(crate) fn route(
    snap: Option<&Snapshot>,
    bs: BlockSize,
    sector: u64,
    n: u64,
    write: bool,
) -> (Route, Option<u64>) {
    let Some(snap) = snap else {
        return (Route::Main, None);
    };
    if snap.items.is_empty() || n == 0 {
        return (Route::Main, None);
    }
    let b0 = bs.block_of(Sectors(sector)).0;
    let last = bs.block_of(Sectors(sector.saturating_add(n - 1))).0;
    let Some(s) = snap.first_in(b0, last) else {
        return (Route::Main, None);
    };
    let block_start = |blk: u64| bs.first_sector(Blocks(blk)).map_or(u64::MAX, |s| s.0);
    if s.block > b0 {
        return (Route::Main, Some(block_start(s.block) - sector));
    }
    let end_of_block = block_start(b0).saturating_add(bs.sectors());
    let keep = end_of_block - sector;
    let cut = if n > keep { Some(keep) } else { None };
    let len = n.min(keep);
    let off = bs.offset_in_block(Sectors(sector));
    let r = match s.state {
        BUSY => Route::Defer,
        PENDING if write => Route::Defer,
        PENDING => Route::Main,
        _ => {
            if mask_any(&s.lost, off, off + len) {
                if write {
                    Route::Defer
                } else {
                    Route::Fail
                }
            } else {
                match crate::remap_core::layout::data_block_sector(bs, Blocks(s.spare_block)) {
                    Some(base) => Route::Spare(base.0 + off),
                    None => Route::Fail,
                }
            }
        }
    };
    (r, cut)
}

/// The RCU-published snapshot pointer.
///
/// # Invariants
/// `ptr` is null or comes from `KBox::into_raw` of a [`Snapshot`] that is freed only
/// after a grace period has passed since it was unpublished.
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
        // freed before this read-side section ends.
        let r = f(unsafe { p.as_ref() });
        // SAFETY: ends the section begun above.
        unsafe { b::dmr_rcu_read_unlock() };
        r
    }

    /// The current snapshot, for writers that hold the core mutex (which serialises
    /// every `publish`).
    pub(crate) fn current_locked(&self) -> Option<&Snapshot> {
        // SAFETY: writers hold the core mutex, so no `publish` can free it meanwhile.
        unsafe { self.ptr.load(Ordering::Acquire).as_ref() }
    }

    /// Publishes `new`, waits for readers of the old snapshot, frees it.
    ///
    /// Callers hold the core mutex.
    pub(crate) fn publish(&self, new: KBox<Snapshot>) {
        // INVARIANT: the new pointer comes from `KBox::into_raw`.
        let old = self.ptr.swap(KBox::into_raw(new), Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: waits for a grace period; called from process context.
            unsafe { b::dmr_synchronize_rcu() };
            // SAFETY: `old` came from `KBox::into_raw`, is unpublished, and no reader
            // can still see it after the grace period.
            drop(unsafe { KBox::from_raw(old) });
        }
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
