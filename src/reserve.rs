// SPDX-License-Identifier: GPL-2.0

//! Storage reserved when a target is built, for the completion path.
//!
//! C header: [include/linux/slab.h](srctree/include/linux/slab.h)
//!
//! The worker completes bios that dm core already counted as in flight: if it had to
//! allocate memory to finish one, a system short of memory could fail writes that the
//! main device refused, or stall reclaim behind them. Everything the worker and the
//! table writers need is therefore allocated by the constructor and reused: fixed
//! arrays ([`Fixed`]), the data buffer of one block, and the second table version (see
//! `engine::Tables`). dm-io takes its bios from its client's mempool.

use kernel::prelude::*;

/// A vector of fixed capacity over storage allocated once: `push` never allocates.
pub(crate) struct Fixed<T: Copy + Default> {
    slots: KVVec<T>,
    len: usize,
}

impl<T: Copy + Default> Fixed<T> {
    /// Storage for `cap` items, allocated now.
    pub(crate) fn new(cap: usize) -> Result<Self> {
        Ok(Self {
            slots: KVVec::from_elem(T::default(), cap, GFP_KERNEL)?,
            len: 0,
        })
    }

    /// No storage (a placeholder while the real one is lent out).
    pub(crate) const fn empty() -> Self {
        Self {
            slots: KVVec::new(),
            len: 0,
        }
    }

    /// Appends `v`; `Err(v)` when the capacity is used up.
    pub(crate) fn push(&mut self, v: T) -> core::result::Result<(), T> {
        match self.slots.get_mut(self.len) {
            Some(s) => {
                *s = v;
                self.len += 1;
                Ok(())
            }
            None => Err(v),
        }
    }

    /// Room left.
    pub(crate) fn room(&self) -> usize {
        self.slots.len().saturating_sub(self.len)
    }

    /// Forgets every item (keeps the storage).
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Keeps the items for which `keep` holds, in order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let mut kept = 0;
        for k in 0..self.len {
            let Some(v) = self.slots.get(k).copied() else {
                break;
            };
            if keep(&v) {
                if let Some(s) = self.slots.get_mut(kept) {
                    *s = v;
                }
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// The items.
    pub(crate) fn as_slice(&self) -> &[T] {
        self.slots.get(..self.len).unwrap_or(&[])
    }

    /// The items, mutable.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        self.slots.get_mut(..self.len).unwrap_or(&mut [])
    }
}
