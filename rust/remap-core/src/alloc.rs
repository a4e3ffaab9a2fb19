//! Spare allocator: a first-fit bitmap per spare, spares tried in priority order.
//!
//! Bit `i` of a spare's bitmap covers data block `i` of that spare; data blocks are
//! counted from the start of the data area (after the last metadata copy), so the
//! metadata area can never be handed out. The bitmaps are not stored on disk: they
//! are rebuilt from the remap table on load ([`Bitmap::mark_used`]), so they cannot
//! drift from it.

/// Why an allocator operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// The block number is beyond the spare's data area.
    OutOfRange,
    /// The block is already in use (two table entries claim it).
    InUse,
    /// The caller's word buffer is too small for the number of blocks.
    ShortBuffer,
}

/// Number of `u64` words a bitmap of `nblocks` needs.
pub const fn words_for(nblocks: u64) -> u64 {
    nblocks.div_ceil(64)
}

/// A bitmap over caller-provided words.
#[derive(Debug)]
pub struct Bitmap<'a> {
    words: &'a mut [u64],
    nblocks: u64,
    used: u64,
    /// Word where the next search starts (every word before it is full).
    hint: usize,
}

impl<'a> Bitmap<'a> {
    /// An empty bitmap of `nblocks` over `words` (cleared here).
    pub fn new(words: &'a mut [u64], nblocks: u64) -> Result<Self, AllocError> {
        if (words.len() as u64) < words_for(nblocks) {
            return Err(AllocError::ShortBuffer);
        }
        words.fill(0);
        Ok(Bitmap {
            words,
            nblocks,
            used: 0,
            hint: 0,
        })
    }

    /// A bitmap over `words` as they are, with `used` counted from them.
    pub fn resume(words: &'a mut [u64], nblocks: u64) -> Result<Self, AllocError> {
        if (words.len() as u64) < words_for(nblocks) {
            return Err(AllocError::ShortBuffer);
        }
        let used = words.iter().map(|w| u64::from(w.count_ones())).sum();
        Ok(Bitmap {
            words,
            nblocks,
            used,
            hint: 0,
        })
    }

    /// Blocks in use.
    pub const fn used(&self) -> u64 {
        self.used
    }

    /// Blocks free.
    pub const fn free(&self) -> u64 {
        self.nblocks.saturating_sub(self.used)
    }

    /// Total blocks.
    pub const fn total(&self) -> u64 {
        self.nblocks
    }

    /// Whether block `b` is in use.
    pub fn is_used(&self, b: u64) -> bool {
        b < self.nblocks
            && self
                .words
                .get((b / 64) as usize)
                .is_some_and(|w| w & (1 << (b % 64)) != 0)
    }

    /// Marks block `b` used (rebuilding from the table).
    pub fn mark_used(&mut self, b: u64) -> Result<(), AllocError> {
        if b >= self.nblocks {
            return Err(AllocError::OutOfRange);
        }
        let w = self
            .words
            .get_mut((b / 64) as usize)
            .ok_or(AllocError::OutOfRange)?;
        if *w & (1 << (b % 64)) != 0 {
            return Err(AllocError::InUse);
        }
        *w |= 1 << (b % 64);
        self.used += 1;
        Ok(())
    }

    /// Allocates the lowest free block.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.used >= self.nblocks {
            return None;
        }
        let start = self.hint;
        for (wi, w) in self.words.iter_mut().enumerate().skip(start) {
            if *w == u64::MAX {
                continue;
            }
            let bit = u64::from((!*w).trailing_zeros());
            let b = (wi as u64) * 64 + bit;
            if b >= self.nblocks {
                return None;
            }
            *w |= 1 << bit;
            self.used += 1;
            self.hint = wi;
            return Some(b);
        }
        None
    }

    /// Frees block `b`; returns whether it was in use.
    pub fn free_block(&mut self, b: u64) -> bool {
        if b >= self.nblocks {
            return false;
        }
        let wi = (b / 64) as usize;
        match self.words.get_mut(wi) {
            Some(w) if *w & (1 << (b % 64)) != 0 => {
                *w &= !(1 << (b % 64));
                self.used -= 1;
                self.hint = self.hint.min(wi);
                true
            }
            _ => false,
        }
    }
}

/// Allocates from the first spare, in `order` (spare indices by priority), that has
/// a free block. Returns `(spare index, block)`.
pub fn alloc_in_order(spares: &mut [Bitmap<'_>], order: &[u8]) -> Option<(u8, u64)> {
    for &i in order {
        if let Some(b) = spares.get_mut(usize::from(i)).and_then(Bitmap::alloc) {
            return Some((i, b));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn first_fit_and_limits() {
        let mut w = [0u64; 2];
        let mut bm = Bitmap::new(&mut w, 70).unwrap();
        for i in 0..70 {
            assert_eq!(bm.alloc(), Some(i));
        }
        assert_eq!(bm.alloc(), None);
        assert!(bm.free_block(5));
        assert!(!bm.free_block(5));
        assert!(bm.free_block(66));
        assert_eq!(bm.alloc(), Some(5));
        assert_eq!(bm.alloc(), Some(66));
        assert_eq!(bm.mark_used(70), Err(AllocError::OutOfRange));
        assert_eq!(bm.mark_used(3), Err(AllocError::InUse));
        assert_eq!((bm.used(), bm.free()), (70, 0));
        let mut small = [0u64; 1];
        assert_eq!(
            Bitmap::new(&mut small, 65).err(),
            Some(AllocError::ShortBuffer)
        );
    }

    #[test]
    fn priority_order() {
        let (mut a, mut b) = ([0u64; 1], [0u64; 1]);
        let mut s = [
            Bitmap::new(&mut a, 1).unwrap(),
            Bitmap::new(&mut b, 2).unwrap(),
        ];
        assert_eq!(alloc_in_order(&mut s, &[1, 0]), Some((1, 0)));
        assert_eq!(alloc_in_order(&mut s, &[1, 0]), Some((1, 1)));
        assert_eq!(alloc_in_order(&mut s, &[1, 0]), Some((0, 0)));
        assert_eq!(alloc_in_order(&mut s, &[1, 0, 7]), None);
    }

    proptest! {
        #[test]
        fn matches_model(n in 1u64..300, ops in proptest::collection::vec((any::<bool>(), 0u64..320), 0..400)) {
            let mut w = vec![0u64; words_for(n) as usize];
            let mut bm = Bitmap::new(&mut w, n).unwrap();
            let mut model = BTreeSet::new();
            for (a, x) in ops {
                if a {
                    let want = (0..n).find(|b| !model.contains(b));
                    prop_assert_eq!(bm.alloc(), want);
                    if let Some(b) = want { model.insert(b); }
                } else {
                    prop_assert_eq!(bm.free_block(x), model.remove(&x));
                }
                prop_assert_eq!(bm.used(), model.len() as u64);
            }
            // Rebuilding from the set of used blocks gives the same bitmap.
            let snapshot = w.clone();
            let mut w2 = vec![0u64; words_for(n) as usize];
            let mut re = Bitmap::new(&mut w2, n).unwrap();
            for &b in &model { re.mark_used(b).unwrap(); }
            prop_assert_eq!(re.used(), model.len() as u64);
            prop_assert_eq!(w2, snapshot);
        }
    }
}
