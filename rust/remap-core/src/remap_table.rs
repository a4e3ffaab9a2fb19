//! The remap table: special blocks sorted by block number.
//!
//! The table is a sorted slice of [`Entry`]; the functions here search and edit it
//! without allocating. The kernel keeps each version of the table in a `KVVec` and
//! publishes it to lock-free readers; a new version is built with [`merge`] into fresh
//! storage and swapped in. [`Table`] is the in-place editor over caller storage that
//! the host tools use.

/// The block's data lives on a spare.
pub const REMAPPED: u8 = 1;
/// A read of the block failed after retries; the next write remaps it.
pub const PENDING: u8 = 2;
/// In memory only, never on disk: the block is being remapped or unremapped.
pub const BUSY: u8 = 3;
/// In memory only, never on disk: a commit that moved the block (to the spare, or back
/// to the main device) failed after a copy write was issued and before any copy was
/// known written, so the next load may find either place. All I/O to the block fails
/// until a later commit is known written (which stores the block as not remapped: the
/// main device holds the data it was last acknowledged with); the spare block stays
/// allocated until then. Not stored, like [`BUSY`].
pub const FENCED: u8 = 4;
/// In memory only, never on disk: a commit that moved the block from one spare block
/// to another (`spare_remove`) failed after a copy write was issued and before any copy
/// was known written. Both spare blocks hold its data and the next load may find
/// either. All I/O to the block fails, as for [`FENCED`], until a later commit is known
/// written; unlike [`FENCED`], the state stores the block as remapped at the entry's
/// (new) spare block, so that commit makes it [`REMAPPED`] there.
pub const FENCED_MOVED: u8 = 5;
/// In a change list: remove the block from the table.
pub const REMOVE: u8 = 0;

/// Whether `state` fences its block: all I/O to it fails ([`FENCED`], [`FENCED_MOVED`]).
pub const fn is_fenced(state: u8) -> bool {
    state == FENCED || state == FENCED_MOVED
}

/// Whether an entry in `state` is stored as remapped ([`REMAPPED`], [`FENCED_MOVED`]).
pub const fn stores_remapped(state: u8) -> bool {
    state == REMAPPED || state == FENCED_MOVED
}

/// Per-sector bitmap of one block (a block has at most 128 sectors).
pub type SectorMask = [u64; 2];

/// [`Entry::mirror`] of a block with one copy.
pub const NO_MIRROR: u8 = u8::MAX;

/// One special block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Block number, counted from the start of the target.
    pub block: u64,
    /// [`REMAPPED`], [`PENDING`], [`BUSY`], [`FENCED`], [`FENCED_MOVED`] (or [`REMOVE`]
    /// in a change list).
    pub state: u8,
    /// Index of the spare in the spare list (for [`REMAPPED`]).
    pub spare: u8,
    /// Data block on that spare (for [`REMAPPED`]).
    pub spare_block: u64,
    /// Sectors of the block whose data could not be read when it was remapped: reads
    /// of them fail until they are written again.
    pub lost: SectorMask,
    /// With `redundancy 2`: index of the spare that holds the block's second copy
    /// ([`NO_MIRROR`]: none). Always another spare than [`Entry::spare`]; both copies
    /// hold the same data, and its lost sectors are the same.
    pub mirror: u8,
    /// Data block of the second copy on spare [`Entry::mirror`].
    pub mirror_block: u64,
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            block: 0,
            state: REMOVE,
            spare: 0,
            spare_block: 0,
            lost: [0; 2],
            mirror: NO_MIRROR,
            mirror_block: 0,
        }
    }
}

impl Entry {
    /// A remapped block.
    pub const fn remapped(block: u64, spare: u8, spare_block: u64) -> Self {
        Self::mirrored(block, spare, spare_block, NO_MIRROR, 0)
    }

    /// A remapped block with two copies: on `spare` at `spare_block` and on `mirror` at
    /// `mirror_block`.
    pub const fn mirrored(
        block: u64,
        spare: u8,
        spare_block: u64,
        mirror: u8,
        mirror_block: u64,
    ) -> Self {
        Entry {
            block,
            state: REMAPPED,
            spare,
            spare_block,
            lost: [0; 2],
            mirror,
            mirror_block,
        }
    }

    /// A pending block.
    pub const fn pending(block: u64) -> Self {
        Entry {
            block,
            state: PENDING,
            spare: 0,
            spare_block: 0,
            lost: [0; 2],
            mirror: NO_MIRROR,
            mirror_block: 0,
        }
    }

    /// Whether the block has a second copy.
    pub const fn has_mirror(&self) -> bool {
        self.mirror != NO_MIRROR
    }

    /// The block's copies as (spare, spare block): the first, then the second if any.
    pub fn copies(&self) -> impl Iterator<Item = (u8, u64)> {
        let second = self
            .has_mirror()
            .then_some((self.mirror, self.mirror_block));
        core::iter::once((self.spare, self.spare_block)).chain(second)
    }

    /// The entry without its copy on spare `spare`: the other copy becomes the only
    /// one (the first, if the first was on `spare`). Unchanged when neither copy is on
    /// `spare` or the block has one copy.
    pub const fn without_copy_on(mut self, spare: u8) -> Self {
        if !self.has_mirror() {
            return self;
        }
        if self.spare == spare {
            self.spare = self.mirror;
            self.spare_block = self.mirror_block;
        } else if self.mirror != spare {
            return self;
        }
        self.mirror = NO_MIRROR;
        self.mirror_block = 0;
        self
    }

    /// Whether any sector of the block is recorded as lost.
    pub const fn has_lost(&self) -> bool {
        self.lost[0] | self.lost[1] != 0
    }
}

/// Sets bits `from..to` (clamped to 128) of `m`.
pub fn mask_set(m: &mut SectorMask, from: u64, to: u64) {
    for s in from..to.min(128) {
        if let Some(w) = m.get_mut((s / 64) as usize) {
            *w |= 1u64 << (s % 64);
        }
    }
}

/// Clears bits `from..to` (clamped to 128) of `m`.
pub fn mask_clear(m: &mut SectorMask, from: u64, to: u64) {
    for s in from..to.min(128) {
        if let Some(w) = m.get_mut((s / 64) as usize) {
            *w &= !(1u64 << (s % 64));
        }
    }
}

/// Whether any bit of `from..to` is set in `m`.
pub fn mask_any(m: &SectorMask, from: u64, to: u64) -> bool {
    let mut r: SectorMask = [0; 2];
    mask_set(&mut r, from, to);
    (r[0] & m[0]) | (r[1] & m[1]) != 0
}

/// Number of bits set in `m`.
pub const fn mask_count(m: &SectorMask) -> u32 {
    m[0].count_ones() + m[1].count_ones()
}

/// Index of the first entry with `block >= b` (`s.len()` if none).
pub fn lower_bound(s: &[Entry], b: u64) -> usize {
    s.partition_point(|e| e.block < b)
}

/// The entry of block `b`.
pub fn find(s: &[Entry], b: u64) -> Option<&Entry> {
    s.get(lower_bound(s, b)).filter(|e| e.block == b)
}

/// The first entry whose block lies in `first..=last`.
pub fn first_in(s: &[Entry], first: u64, last: u64) -> Option<&Entry> {
    s.get(lower_bound(s, first)).filter(|e| e.block <= last)
}

/// Numbers of [`REMAPPED`] and [`PENDING`] entries.
pub fn counts(s: &[Entry]) -> (u64, u64) {
    let mut r = 0u64;
    let mut p = 0u64;
    for e in s {
        match e.state {
            REMAPPED => r = r.saturating_add(1),
            PENDING => p = p.saturating_add(1),
            _ => {}
        }
    }
    (r, p)
}

/// Whether `s` is strictly increasing by block (the table invariant).
pub fn is_sorted(s: &[Entry]) -> bool {
    s.windows(2)
        .all(|w| matches!(w, [a, b] if a.block < b.block))
}

/// Builds a new table version: the entries of `old` (sorted) with `changes` applied.
///
/// `changes` must be sorted by block (stable, so that for one block the last change
/// wins); each replaces the entry of its block or is inserted, and a change whose
/// `state` is [`REMOVE`] deletes the block. The result is handed, in order, to `emit`
/// (at most `old.len() + changes.len()` calls); the first error of `emit` stops it.
pub fn merge<E>(
    old: &[Entry],
    changes: &[Entry],
    mut emit: impl FnMut(Entry) -> Result<(), E>,
) -> Result<(), E> {
    let mut i = 0usize;
    let mut j = 0usize;
    loop {
        match (old.get(i), changes.get(j)) {
            (None, None) => return Ok(()),
            (Some(a), None) => {
                emit(*a)?;
                i += 1;
            }
            (Some(a), Some(c)) if a.block < c.block => {
                emit(*a)?;
                i += 1;
            }
            (a, Some(c)) => {
                if a.is_some_and(|a| a.block == c.block) {
                    i += 1;
                }
                let last = changes.get(j + 1).is_none_or(|n| n.block != c.block);
                if last && c.state != REMOVE {
                    emit(*c)?;
                }
                j += 1;
            }
        }
    }
}

/// The table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

/// An editable table over caller-provided storage.
#[derive(Debug)]
pub struct Table<'a> {
    slots: &'a mut [Entry],
    len: usize,
}

impl<'a> Table<'a> {
    /// An empty table that can hold `slots.len()` entries.
    pub fn new(slots: &'a mut [Entry]) -> Self {
        Table { slots, len: 0 }
    }

    /// The entries, sorted by block.
    pub fn as_slice(&self) -> &[Entry] {
        self.slots.get(..self.len).unwrap_or(&[])
    }

    /// Number of entries.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entry of block `b`.
    pub fn get(&self, b: u64) -> Option<&Entry> {
        find(self.as_slice(), b)
    }

    /// Inserts `e`, replacing the entry of its block; returns the replaced entry.
    pub fn insert(&mut self, e: Entry) -> Result<Option<Entry>, TableFull> {
        let pos = lower_bound(self.as_slice(), e.block);
        if let Some(slot) = self.slots.get_mut(pos).filter(|_| pos < self.len) {
            if slot.block == e.block {
                let old = *slot;
                *slot = e;
                return Ok(Some(old));
            }
        }
        if self.len >= self.slots.len() {
            return Err(TableFull);
        }
        self.slots.copy_within(pos..self.len, pos + 1);
        if let Some(slot) = self.slots.get_mut(pos) {
            *slot = e;
        }
        self.len += 1;
        Ok(None)
    }

    /// Removes block `b`; returns its entry.
    pub fn remove(&mut self, b: u64) -> Option<Entry> {
        let pos = lower_bound(self.as_slice(), b);
        let old = *self
            .slots
            .get(pos)
            .filter(|e| pos < self.len && e.block == b)?;
        self.slots.copy_within(pos + 1..self.len, pos);
        self.len -= 1;
        Some(old)
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn masks() {
        let mut m = [0; 2];
        mask_set(&mut m, 60, 70);
        assert_eq!(mask_count(&m), 10);
        assert!(mask_any(&m, 69, 200));
        assert!(!mask_any(&m, 70, 128));
        mask_clear(&mut m, 0, 65);
        assert_eq!(m, [0, 0b11_1110]);
        mask_set(&mut m, 0, 1000);
        assert_eq!(m, [u64::MAX; 2]);
    }

    #[test]
    fn range_lookup() {
        let s = [
            Entry::remapped(3, 0, 0),
            Entry::pending(10),
            Entry::remapped(11, 0, 1),
        ];
        assert_eq!(first_in(&s, 0, 2), None);
        assert_eq!(first_in(&s, 0, 3).map(|e| e.block), Some(3));
        assert_eq!(first_in(&s, 4, 10).map(|e| e.block), Some(10));
        assert_eq!(first_in(&s, 12, u64::MAX), None);
        assert_eq!(find(&s, 11).map(|e| e.spare_block), Some(1));
        assert_eq!(find(&s, 4), None);
        assert_eq!(counts(&s), (2, 1));
        assert!(is_sorted(&s));
    }

    fn op() -> impl Strategy<Value = (bool, u64, u8)> {
        (any::<bool>(), 0u64..64, 1u8..3)
    }

    proptest! {
        #[test]
        fn table_matches_model(ops in proptest::collection::vec(op(), 0..200)) {
            let mut slots = [Entry::default(); 40];
            let mut t = Table::new(&mut slots);
            let mut model = BTreeMap::new();
            for (ins, b, st) in ops {
                if ins {
                    let e = Entry { state: st, ..Entry::remapped(b, 0, b * 7) };
                    let full = model.len() == 40 && !model.contains_key(&b);
                    match t.insert(e) {
                        Ok(old) => { prop_assert!(!full); prop_assert_eq!(old, model.insert(b, e)); }
                        Err(TableFull) => prop_assert!(full),
                    }
                } else {
                    prop_assert_eq!(t.remove(b), model.remove(&b));
                }
                prop_assert!(is_sorted(t.as_slice()));
                let want: Vec<Entry> = model.values().copied().collect();
                prop_assert_eq!(t.as_slice(), &want[..]);
                for q in 0..64 {
                    prop_assert_eq!(t.get(q), model.get(&q));
                    let next = model.range(q..q + 5).next().map(|(_, e)| e);
                    prop_assert_eq!(first_in(t.as_slice(), q, q + 4), next);
                }
            }
        }

        #[test]
        fn merge_matches_model(
            old in proptest::collection::btree_set(0u64..100, 0..40),
            ch in proptest::collection::vec((0u64..100, 0u8..3), 0..40),
        ) {
            let old: Vec<Entry> = old.into_iter().map(|b| Entry::remapped(b, 0, b)).collect();
            let mut changes: Vec<Entry> = ch
                .iter()
                .enumerate()
                .map(|(i, &(b, st))| Entry { state: st, ..Entry::remapped(b, 1, i as u64) })
                .collect();
            changes.sort_by_key(|e| e.block);
            let mut model: BTreeMap<u64, Entry> = old.iter().map(|e| (e.block, *e)).collect();
            for c in &changes {
                if c.state == REMOVE { model.remove(&c.block); } else { model.insert(c.block, *c); }
            }
            let mut out = Vec::new();
            merge::<()>(&old, &changes, |e| { out.push(e); Ok(()) }).unwrap();
            let want: Vec<Entry> = model.values().copied().collect();
            prop_assert_eq!(out, want);
        }
    }
}
