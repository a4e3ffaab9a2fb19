//! The one judge of a decoded metadata state.
//!
//! [`super::meta::decode`] answers "is this an intact copy of our format?" and copy
//! selection ([`super::repair`]) picks the newest such copy. This module answers the
//! two questions that decide whether that state may be used, and nothing else does:
//!
//! - [`judge_state`]: is the state consistent in itself (the spare list, the spare's
//!   geometry, every entry within the target and the spare, no spare block claimed
//!   twice, lost sectors within their block)? It needs no device.
//! - [`judge_against`]: is it the state of *these* devices and of this table line
//!   (setup UUID, main device identity, sizes and block sizes, block size, target
//!   length, spare size)?
//!
//! The kernel runs both before it loads a spare and refuses with the verdict's text
//! as `ti->error`; `remapctl meta check|restore|repair` run [`judge_state`] on the
//! state they select or are given and refuse or flag it with the same text. A host
//! tool that accepts what the kernel refuses is a bug, so every rule lives here once,
//! with its own [`Verdict`].
//!
//! The spare bitmap [`judge_state`] fills is sized by the caller. Sized from the spare
//! device it opened ([`bitmap_words`]), a state that records a larger spare than the
//! device is refused ([`Verdict::SpareLargerThanDevice`]) before anything is marked,
//! so the caller never allocates from a size it has not checked.

use super::alloc::{words_for, AllocError, Bitmap};
use super::layout;
use super::meta::identity::{identity_parts, IdentityKind};
use super::meta::{self, Decoded, IDENTITY_LEN, SPARE_FAILED};
use super::remap_table::SectorMask;
use super::units::{BlockSize, Sectors};
use core::ffi::CStr;
use core::fmt;

/// Why a decoded state is refused: one variant per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The spare list is empty, or names one spare twice (or by the zero UUID); or
    /// (against the devices) it has another number of spares than the caller found.
    SpareCount,
    /// The spare record's data start or data block count does not follow from its
    /// size and the block size, or it has no data block.
    SpareGeometry,
    /// The target length is zero, not a multiple of the block size, or larger than
    /// the recorded main device.
    TargetGeometry,
    /// The recorded main device identity does not follow its encoding.
    BadIdentity,
    /// The scan checkpoint lies beyond the end of the target.
    ScanBeyondTarget,
    /// The caller's bitmap, sized from the spare device, is smaller than the spare
    /// the state records.
    SpareLargerThanDevice,
    /// A remapped or pending block lies beyond the end of the target.
    BeyondTarget,
    /// A remapped block names a spare the list does not hold.
    SpareIndex,
    /// A remapped block's spare block lies beyond the spare's data area.
    BeyondSpare,
    /// Two remapped blocks share one spare block.
    SharedSpareBlock,
    /// A lost-sector mask has bits at or beyond the block's sector count.
    LostBeyondBlock,
    /// The table line names a setup UUID and the state belongs to another setup.
    OtherSetup,
    /// The state records a main device identity and the main device has another one
    /// (or none).
    MainIdentity,
    /// The main device's size differs from the recorded one.
    MainSize,
    /// The main device's logical or physical block size differs from the recorded one.
    MainBlockSizes,
    /// The table's block size differs from the recorded one.
    BlockSize,
    /// The target length differs from the recorded one.
    TargetLength,
    /// The spare device's size differs from the recorded one.
    SpareSize,
    /// The spare device's logical block size differs from the recorded one (format 2
    /// records it).
    SpareBlockSize,
}

impl Verdict {
    /// Every verdict, in checking order ([`judge_state`]'s, then [`judge_against`]'s).
    pub const ALL: [Verdict; 19] = [
        Self::SpareCount,
        Self::SpareGeometry,
        Self::TargetGeometry,
        Self::BadIdentity,
        Self::ScanBeyondTarget,
        Self::SpareLargerThanDevice,
        Self::BeyondTarget,
        Self::SpareIndex,
        Self::BeyondSpare,
        Self::SharedSpareBlock,
        Self::LostBeyondBlock,
        Self::OtherSetup,
        Self::MainIdentity,
        Self::MainSize,
        Self::MainBlockSizes,
        Self::BlockSize,
        Self::TargetLength,
        Self::SpareSize,
        Self::SpareBlockSize,
    ];

    /// Stable text for `ti->error`, the kernel log and `remapctl`, as a C string (dm
    /// core keeps a pointer to it).
    pub const fn as_cstr(self) -> &'static CStr {
        match self {
            Self::SpareCount => {
                c"Spare metadata lists no spare, one spare twice, or not the spares given"
            }
            Self::SpareGeometry => {
                c"Spare metadata spare record does not match its size and block_size"
            }
            Self::TargetGeometry => {
                c"Spare metadata target length is zero, not a multiple of block_size or beyond the main device"
            }
            Self::BadIdentity => c"Spare metadata holds a malformed main device identity",
            Self::ScanBeyondTarget => {
                c"Spare metadata scan checkpoint is beyond the end of the target"
            }
            Self::SpareLargerThanDevice => {
                c"Spare metadata records a spare larger than the spare device"
            }
            Self::BeyondTarget => c"Spare metadata has an entry beyond the end of the target",
            Self::SpareIndex => c"Spare metadata remaps a block to an unknown spare",
            Self::BeyondSpare => c"Spare metadata maps a block beyond the end of the spare",
            Self::SharedSpareBlock => c"Spare metadata maps two blocks to one spare block",
            Self::LostBeyondBlock => {
                c"Spare metadata marks lost sectors beyond the end of a block"
            }
            Self::OtherSetup => c"Spare belongs to another setup (uuid differs from the table)",
            Self::MainIdentity => c"Main device identity differs from the spare's metadata",
            Self::MainSize => c"Main device size differs from the spare's metadata",
            Self::MainBlockSizes => c"Main device block sizes differ from the spare's metadata",
            Self::BlockSize => c"block_size differs from the spare's metadata",
            Self::TargetLength => c"Target length differs from the spare's metadata",
            Self::SpareSize => c"Spare device size differs from the spare's metadata",
            Self::SpareBlockSize => {
                c"Spare device logical block size differs from the spare's metadata"
            }
        }
    }

    /// [`Self::as_cstr`] without the terminator.
    pub const fn as_str(self) -> &'static str {
        match self.as_cstr().to_str() {
            Ok(s) => s,
            Err(_) => "Spare metadata refused",
        }
    }

    /// Whether the verdict is one of [`judge_state`]'s (the state is inconsistent in
    /// itself) rather than [`judge_against`]'s (it belongs to other devices).
    pub const fn is_internal(self) -> bool {
        !matches!(
            self,
            Self::OtherSetup
                | Self::MainIdentity
                | Self::MainSize
                | Self::MainBlockSizes
                | Self::BlockSize
                | Self::TargetLength
                | Self::SpareSize
                | Self::SpareBlockSize
        )
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The sectors of a block of `bs`, as a lost-sector mask.
const fn block_mask(bs: BlockSize) -> SectorMask {
    match bs.sectors() {
        128 => [u64::MAX, u64::MAX],
        64 => [u64::MAX, 0],
        n => [(1u64 << n) - 1, 0],
    }
}

/// The state's block size (always valid after decode).
fn block_size(st: &Decoded<'_>) -> Result<BlockSize, Verdict> {
    st.block_size().ok_or(Verdict::TargetGeometry)
}

/// Data blocks of each spare of the list, in list order (the first
/// [`Decoded::spare_count`] entries), each record checked against its size and the
/// block size. The first two rules of [`judge_state`]: the list holds 1 to
/// [`meta::MAX_SPARES`] spares with distinct non-zero UUIDs, and each record's data
/// start and data blocks follow from its size.
pub fn spare_data_blocks(st: &Decoded<'_>) -> Result<[u64; meta::MAX_SPARES], Verdict> {
    let n = st.spare_count();
    if n == 0 || n > meta::MAX_SPARES {
        return Err(Verdict::SpareCount);
    }
    let bs = block_size(st).map_err(|_| Verdict::SpareGeometry)?;
    let mut out = [0u64; meta::MAX_SPARES];
    for i in 0..n {
        let spare = st.spare(i).ok_or(Verdict::SpareCount)?;
        if spare.uuid == [0; 16]
            || (0..i).any(|j| st.spare(j).is_some_and(|o| o.uuid == spare.uuid))
        {
            return Err(Verdict::SpareCount);
        }
        if spare.data_start != layout::data_start(bs).0
            || spare.data_blocks != layout::data_blocks(Sectors(spare.sectors), bs).0
            || spare.data_blocks == 0
        {
            return Err(Verdict::SpareGeometry);
        }
        if let Some(o) = out.get_mut(i) {
            *o = spare.data_blocks;
        }
    }
    Ok(out)
}

/// Words of the pool bitmap a caller passes to [`judge_state`]: for each spare of the
/// list, in list order, the words its data blocks need, computed from the size
/// `device_sectors(i)` gives for the device the caller opened for spare `i`, or from
/// the recorded size when it has none open (`None`). 0 when the state has no valid
/// block size.
pub fn bitmap_words(st: &Decoded<'_>, device_sectors: impl Fn(usize) -> Option<u64>) -> u64 {
    let Some(bs) = st.block_size() else {
        return 0;
    };
    (0..st.spare_count().min(meta::MAX_SPARES))
        .filter_map(|i| {
            let sectors = device_sectors(i).or_else(|| st.spare(i).map(|s| s.sectors))?;
            Some(words_for(layout::data_blocks(Sectors(sectors), bs).0))
        })
        .fold(0u64, u64::saturating_add)
}

/// Word offset of each spare's part of a pool bitmap: spare `i` (list order) owns
/// words `off[i] .. off[i + 1]`, `words_for(nblocks[i])` of them. The kernel's
/// allocator and [`judge_state`] use this one layout.
pub fn pool_offsets(nblocks: &[u64]) -> [u64; meta::MAX_SPARES + 1] {
    let mut off = [0u64; meta::MAX_SPARES + 1];
    let mut at = 0u64;
    for (i, &n) in nblocks.iter().enumerate().take(meta::MAX_SPARES) {
        at = at.saturating_add(words_for(n));
        if let Some(o) = off.get_mut(i + 1) {
            *o = at;
        }
    }
    for o in off.iter_mut().skip(nblocks.len().min(meta::MAX_SPARES) + 1) {
        *o = at;
    }
    off
}

/// Internal consistency of a decoded state, independent of the devices.
///
/// Marks every remapped entry's spare block in `bitmap` — the pool bitmap laid out by
/// [`pool_offsets`] over the recorded spares (cleared here); sized by the caller with
/// [`bitmap_words`] — and returns the number of used blocks of each spare (list
/// order). Rules, in this order: 1 to 16 spares with distinct UUIDs; each spare's data
/// start and data blocks follow from its size and the block size; the target length
/// is non-zero, block-aligned and within the recorded main device; the identity
/// follows its encoding; the scan checkpoint is within the target; the bitmap holds
/// the spares; then for each range of entries in block order: within the target, its
/// spare in the list, its spare blocks within that spare's data area and not already
/// claimed; then each second copy's spare in the list, its block within that spare's
/// data area and not already claimed; pending blocks within the target; lost sectors
/// within the block.
pub fn judge_state(
    st: &Decoded<'_>,
    bitmap: &mut [u64],
) -> Result<[u64; meta::MAX_SPARES], Verdict> {
    let nblocks = spare_data_blocks(st)?;
    let nspares = st.spare_count();
    let bs = block_size(st)?;
    let c = &st.config;
    let target = Sectors(c.target_sectors);
    if target.0 == 0 || !bs.is_aligned(target) || target.0 > st.fingerprint.main_sectors {
        return Err(Verdict::TargetGeometry);
    }
    if identity_parts(&st.fingerprint.identity).is_none() {
        return Err(Verdict::BadIdentity);
    }
    let target_blocks = bs.whole_blocks(target).0;
    if st.scan.cursor_block > target_blocks {
        return Err(Verdict::ScanBeyondTarget);
    }
    let counts = nblocks.get(..nspares).unwrap_or(&[]);
    let off = pool_offsets(counts);
    let total = usize::try_from(off.get(nspares).copied().unwrap_or(u64::MAX))
        .map_err(|_| Verdict::SpareLargerThanDevice)?;
    let pool = bitmap
        .get_mut(..total)
        .ok_or(Verdict::SpareLargerThanDevice)?;
    // One allocator per spare over its part of the pool bitmap.
    let mut bms: [Option<Bitmap<'_>>; meta::MAX_SPARES] = Default::default();
    let mut rest = pool;
    for (i, &n) in counts.iter().enumerate() {
        let w = usize::try_from(words_for(n)).map_err(|_| Verdict::SpareLargerThanDevice)?;
        let (mine, more) = core::mem::take(&mut rest)
            .split_at_mut_checked(w)
            .ok_or(Verdict::SpareLargerThanDevice)?;
        rest = more;
        if let Some(slot) = bms.get_mut(i) {
            *slot = Some(Bitmap::new(mine, n).map_err(|_| Verdict::SpareLargerThanDevice)?);
        }
    }
    let valid = block_mask(bs);
    // Range by range (a run may cover millions of blocks): its last block within the
    // target, its spare known, its last spare block within that spare, then each of
    // its spare blocks marked once. Marking stops at the first block already used, so
    // it touches at most the pool's blocks in all.
    for r in st.ranges() {
        if r.block + (r.len - 1) >= target_blocks {
            return Err(Verdict::BeyondTarget);
        }
        let spare = usize::from(r.spare);
        let (Some(Some(bm)), Some(&n)) = (bms.get_mut(spare), counts.get(spare)) else {
            return Err(Verdict::SpareIndex);
        };
        if r.spare_block + (r.len - 1) >= n {
            return Err(Verdict::BeyondSpare);
        }
        for b in r.spare_block..r.spare_block + r.len {
            match bm.mark_used(b) {
                Ok(()) => {}
                Err(AllocError::InUse) => return Err(Verdict::SharedSpareBlock),
                Err(AllocError::OutOfRange | AllocError::ShortBuffer) => {
                    return Err(Verdict::BeyondSpare)
                }
            }
        }
    }
    // Second copies: decode checked each is for a remapped block (so within the
    // target) on another spare than its first copy.
    for (_, spare, at) in st.mirrors() {
        let spare = usize::from(spare);
        let (Some(Some(bm)), Some(&n)) = (bms.get_mut(spare), counts.get(spare)) else {
            return Err(Verdict::SpareIndex);
        };
        if at >= n {
            return Err(Verdict::BeyondSpare);
        }
        match bm.mark_used(at) {
            Ok(()) => {}
            Err(AllocError::InUse) => return Err(Verdict::SharedSpareBlock),
            Err(AllocError::OutOfRange | AllocError::ShortBuffer) => {
                return Err(Verdict::BeyondSpare)
            }
        }
    }
    if st.pending().any(|b| b >= target_blocks) {
        return Err(Verdict::BeyondTarget);
    }
    // Decode checked that every lost record is for a remapped block.
    if st
        .lost()
        .any(|(_, m)| m[0] & !valid[0] != 0 || m[1] & !valid[1] != 0)
    {
        return Err(Verdict::LostBeyondBlock);
    }
    let mut used = [0u64; meta::MAX_SPARES];
    for (u, bm) in used.iter_mut().zip(bms.iter()) {
        *u = bm.as_ref().map_or(0, Bitmap::used);
    }
    Ok(used)
}

/// What the table line and the devices expect of a state.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Setup UUID named by the table line (`uuid`), if any.
    pub uuid: Option<[u8; 16]>,
    /// Size of the main device in sectors.
    pub main_sectors: u64,
    /// Logical block size of the main device in bytes.
    pub main_lbs: u32,
    /// Physical block size of the main device in bytes.
    pub main_pbs: u32,
    /// The main device's identity as the kernel reads it now
    /// ([`meta::identity`]; all zero when it has none).
    pub identity: &'a [u8; meta::IDENTITY_LEN],
    /// Block size of the table line in bytes.
    pub block_bytes: u32,
    /// Target length in sectors.
    pub target_sectors: u64,
    /// The spare devices, in the order of the state's spare list: size in sectors
    /// and logical block size in bytes of the device that holds each record's spare.
    pub spares: &'a [SpareDev],
}

/// A spare device as the caller opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpareDev {
    /// Size in sectors.
    pub sectors: u64,
    /// Logical block size in bytes.
    pub lbs: u32,
}

/// Whether the recorded identity `recorded` accepts the main device's `current` one:
/// a state that recorded none accepts any device (sizes are then all that binds it);
/// one that recorded an identifier accepts only that identifier.
pub fn identity_matches(recorded: &[u8; IDENTITY_LEN], current: &[u8; IDENTITY_LEN]) -> bool {
    matches!(identity_parts(recorded), Some((IdentityKind::None, _))) || recorded == current
}

/// Whether a state belongs to the devices and the table line described by `e`.
///
/// Rules, in this order: the setup UUID when the table names one; the main device's
/// identity ([`identity_matches`]); the main device's size; its logical and physical
/// block sizes; the block size; the target length; the spare device's size against
/// the spare list's entry, then its logical block size when the entry records one.
pub fn judge_against(st: &Decoded<'_>, e: &Expect<'_>) -> Result<(), Verdict> {
    let f = &st.fingerprint;
    if e.uuid.is_some_and(|u| u != st.uuid) {
        return Err(Verdict::OtherSetup);
    }
    if !identity_matches(&f.identity, e.identity) {
        return Err(Verdict::MainIdentity);
    }
    if f.main_sectors != e.main_sectors {
        return Err(Verdict::MainSize);
    }
    if f.logical_block_bytes != e.main_lbs || f.physical_block_bytes != e.main_pbs {
        return Err(Verdict::MainBlockSizes);
    }
    if st.config.block_bytes != e.block_bytes {
        return Err(Verdict::BlockSize);
    }
    if st.config.target_sectors != e.target_sectors {
        return Err(Verdict::TargetLength);
    }
    if e.spares.len() != st.spare_count() {
        return Err(Verdict::SpareCount);
    }
    for (i, d) in e.spares.iter().enumerate() {
        match st.spare(i) {
            // A lost spare is never read or written again: whatever device stands in
            // for it (`remapctl assemble` makes an error device when it is missing)
            // need not have its size or block size.
            Some(s) if s.state == SPARE_FAILED => {}
            Some(s) if s.sectors != d.sectors => return Err(Verdict::SpareSize),
            Some(s) if s.logical_block_bytes != 0 && s.logical_block_bytes != d.lbs => {
                return Err(Verdict::SpareBlockSize)
            }
            Some(_) => {}
            None => return Err(Verdict::SpareCount),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
