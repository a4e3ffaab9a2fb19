//! Units: 512-byte sectors, remap blocks and the block size, converted only through
//! named, checked methods.

use super::error::CoreError;

/// Bytes in a sector, the unit of every bio and of `dmsetup` tables.
pub const SECTOR_BYTES: u64 = 512;
/// log2 of [`SECTOR_BYTES`].
pub const SECTOR_SHIFT: u32 = 9;

/// A count or position in 512-byte sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Sectors(pub u64);

/// A count or position in remap blocks (of [`BlockSize`] bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Blocks(pub u64);

/// The remap granularity: a power of two between 512 and 65536 bytes.
///
/// # Invariants
/// `shift` is in `0..=7`: the block is `512 << shift` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockSize {
    shift: u32,
}

/// Smallest accepted block size in bytes.
pub const MIN_BLOCK_BYTES: u32 = 512;
/// Largest accepted block size in bytes.
pub const MAX_BLOCK_BYTES: u32 = 65536;
/// Default block size in bytes.
pub const DEFAULT_BLOCK_BYTES: u32 = 4096;

impl BlockSize {
    /// The default, 4096 bytes.
    pub const DEFAULT: BlockSize = BlockSize { shift: 3 };

    /// Checks `bytes` and builds a block size.
    pub const fn from_bytes(bytes: u64) -> Result<Self, CoreError> {
        if bytes < MIN_BLOCK_BYTES as u64
            || bytes > MAX_BLOCK_BYTES as u64
            || !bytes.is_power_of_two()
        {
            return Err(CoreError::BadBlockSize);
        }
        // INVARIANT: 512 <= bytes <= 65536 and a power of two, so the shift is 0..=7.
        Ok(BlockSize {
            shift: bytes.trailing_zeros() - SECTOR_SHIFT,
        })
    }

    /// Size in bytes.
    pub const fn bytes(self) -> u32 {
        (MIN_BLOCK_BYTES) << self.shift
    }

    /// Size in sectors.
    pub const fn sectors(self) -> u64 {
        1u64 << self.shift
    }

    /// log2 of the size in sectors.
    pub const fn sector_shift(self) -> u32 {
        self.shift
    }

    /// The block that holds `s`.
    pub const fn block_of(self, s: Sectors) -> Blocks {
        Blocks(s.0 >> self.shift)
    }

    /// Offset of `s` inside its block, in sectors.
    pub const fn offset_in_block(self, s: Sectors) -> u64 {
        s.0 & (self.sectors() - 1)
    }

    /// First sector of block `b`, or `None` on overflow.
    pub const fn first_sector(self, b: Blocks) -> Option<Sectors> {
        if b.0 > (u64::MAX >> self.shift) {
            return None;
        }
        Some(Sectors(b.0 << self.shift))
    }

    /// Whole blocks in `s` sectors (rounded down).
    pub const fn whole_blocks(self, s: Sectors) -> Blocks {
        Blocks(s.0 >> self.shift)
    }

    /// Whether `s` is a multiple of the block size.
    pub const fn is_aligned(self, s: Sectors) -> bool {
        self.offset_in_block(s) == 0
    }
}

impl Default for BlockSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Sectors {
    /// Bytes in this many sectors, or `None` on overflow.
    pub const fn bytes(self) -> Option<u64> {
        self.0.checked_mul(SECTOR_BYTES)
    }

    /// Checked addition.
    pub const fn checked_add(self, o: Sectors) -> Option<Sectors> {
        match self.0.checked_add(o.0) {
            Some(v) => Some(Sectors(v)),
            None => None,
        }
    }

    /// Checked subtraction.
    pub const fn checked_sub(self, o: Sectors) -> Option<Sectors> {
        match self.0.checked_sub(o.0) {
            Some(v) => Some(Sectors(v)),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_size_accepts_powers_of_two_only() {
        for bytes in [512u64, 1024, 2048, 4096, 8192, 16384, 32768, 65536] {
            let b = BlockSize::from_bytes(bytes).unwrap();
            assert_eq!(u64::from(b.bytes()), bytes);
            assert_eq!(b.sectors() * 512, bytes);
        }
        for bad in [0u64, 1, 256, 511, 513, 3000, 4095, 131072, u64::MAX] {
            assert_eq!(
                BlockSize::from_bytes(bad),
                Err(CoreError::BadBlockSize),
                "{bad}"
            );
        }
    }

    #[test]
    fn block_arithmetic() {
        let b = BlockSize::from_bytes(4096).unwrap();
        assert_eq!(b.block_of(Sectors(17)), Blocks(2));
        assert_eq!(b.offset_in_block(Sectors(17)), 1);
        assert_eq!(b.first_sector(Blocks(2)), Some(Sectors(16)));
        assert_eq!(b.first_sector(Blocks(u64::MAX)), None);
        assert!(b.is_aligned(Sectors(24)));
        assert!(!b.is_aligned(Sectors(25)));
    }
}
