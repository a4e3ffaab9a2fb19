//! Where things live on a spare device (format v1).
//!
//! Five metadata copies sit at fixed sectors; each may use up to
//! [`COPY_MAX_SECTORS`]; the data area (remapped blocks) starts after the last
//! copy's extent.

use super::units::{BlockSize, Blocks, Sectors};

/// First sector of each of the five metadata copies.
pub const COPY_SECTORS: [u64; 5] = [0, 1024, 2048, 4096, 8192];
/// Number of metadata copies per spare.
pub const COPY_COUNT: usize = COPY_SECTORS.len();
/// Largest extent of one copy, in sectors (512 KiB).
pub const COPY_MAX_SECTORS: u64 = 1024;
/// Largest extent of one copy, in bytes.
pub const COPY_MAX_BYTES: usize = 1024 * 512;
/// First sector of the spare data area: the end of the last copy's extent.
pub const DATA_START_SECTOR: u64 = 8192 + COPY_MAX_SECTORS;

/// First sector of the data area aligned up to `bs`.
pub const fn data_start(bs: BlockSize) -> Sectors {
    let mask = bs.sectors() - 1;
    Sectors((DATA_START_SECTOR + mask) & !mask)
}

/// Number of whole data blocks of size `bs` on a spare of `spare_len` sectors.
pub const fn data_blocks(spare_len: Sectors, bs: BlockSize) -> Blocks {
    let start = data_start(bs).0;
    if spare_len.0 <= start {
        return Blocks(0);
    }
    bs.whole_blocks(Sectors(spare_len.0 - start))
}

/// Sector on the spare where data block `b` lives, or `None` on overflow.
pub const fn data_block_sector(bs: BlockSize, b: Blocks) -> Option<Sectors> {
    match bs.first_sector(b) {
        Some(s) => Sectors(s.0).checked_add(data_start(bs)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_do_not_overlap_and_data_follows() {
        for w in COPY_SECTORS.windows(2) {
            assert!(w[0] + COPY_MAX_SECTORS <= w[1]);
        }
        assert_eq!(DATA_START_SECTOR, 9216);
        let bs = BlockSize::from_bytes(65536).unwrap();
        assert_eq!(data_start(bs), Sectors(9216));
        assert_eq!(data_blocks(Sectors(9216), bs), Blocks(0));
        assert_eq!(data_blocks(Sectors(9216 + 128), bs), Blocks(1));
        assert_eq!(data_block_sector(bs, Blocks(1)), Some(Sectors(9216 + 128)));
    }
}
