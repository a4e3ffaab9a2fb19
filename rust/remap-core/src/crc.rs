//! CRC-32 (IEEE 802.3, reflected polynomial `0xEDB88320`), as zlib and `crc32fast`
//! compute it, salted per metadata section type.
//!
//! The kernel module and the host tools compute checksums with this same code, and
//! [`self_test`] checks the fixed vectors in [`VECTORS`] at module load and in
//! `cargo test` (where `crc32fast` cross-checks them), so both builds are known to
//! produce the same bytes.

/// Reflected CRC-32 polynomial.
const POLY: u32 = 0xEDB8_8320;

/// Slicing-by-8 tables: `TABLES[0]` is the classic byte table; `TABLES[k][b]` is the
/// CRC contribution of byte `b` followed by `k` zero bytes. Eight bytes are then folded
/// with eight independent lookups instead of eight dependent ones (the method of
/// zlib's and the kernel's `crc32_le`), 8 KiB of tables, several times faster than one
/// byte at a time: a commit checksums the whole state twice, a load every copy.
// `i < 256` and `k < 8` by the loop bounds; const fns cannot use `get_mut`.
#[allow(clippy::indexing_slicing)]
const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { POLY ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = make_tables();

/// `TABLES[k][b]`; `k < 8` at every call, so the fallback is never taken.
#[inline(always)]
fn lookup(k: usize, b: u8) -> u32 {
    TABLES
        .get(k)
        .and_then(|t| t.get(usize::from(b)))
        .copied()
        .unwrap_or(0)
}

/// Running CRC-32 state.
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// A fresh computation.
    pub const fn new() -> Self {
        Crc32(!0)
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let [b0, b1, b2, b3, b4, b5, b6, b7] = <[u8; 8]>::try_from(w).unwrap_or([0; 8]);
            let lo = c ^ u32::from_le_bytes([b0, b1, b2, b3]);
            let [l0, l1, l2, l3] = lo.to_le_bytes();
            c = lookup(7, l0)
                ^ lookup(6, l1)
                ^ lookup(5, l2)
                ^ lookup(4, l3)
                ^ lookup(3, b4)
                ^ lookup(2, b5)
                ^ lookup(1, b6)
                ^ lookup(0, b7);
        }
        for &b in words.remainder() {
            c = lookup(0, (c as u8) ^ b) ^ (c >> 8);
        }
        self.0 = c;
    }

    /// The checksum of everything fed so far.
    pub const fn finish(self) -> u32 {
        !self.0
    }
}

/// CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(data);
    c.finish()
}

/// CRC-32 of the salt's four little-endian bytes followed by `data`.
///
/// Each section type has its own salt, so a block of one type can never pass the
/// check of another even when their bytes happen to match.
pub fn salted(salt: u32, data: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(&salt.to_le_bytes());
    c.update(data);
    c.finish()
}

/// [`salted`] over the concatenation of `parts`.
pub fn salted_parts(salt: u32, parts: &[&[u8]]) -> u32 {
    let mut c = Crc32::new();
    c.update(&salt.to_le_bytes());
    for p in parts {
        c.update(p);
    }
    c.finish()
}

/// Fixed test vectors: `(salt, data, salted CRC)`. A salt of 0 is *not* the plain
/// CRC; plain CRC vectors are in [`PLAIN_VECTORS`].
pub const VECTORS: [(u32, &[u8], u32); 4] = [
    (0x5245_4d48, b"", 0x0fcd_3ac5),
    (0x5245_4d48, b"dm-remap", 0x92a5_a426),
    (0x5245_4d53, b"123456789", 0x22fb_6573),
    (0x0000_0000, b"\x00\x00\x00\x00", 0x6522_df69),
];

/// Plain CRC-32 vectors: `(data, CRC)`; the first is the standard check value.
pub const PLAIN_VECTORS: [(&[u8], u32); 3] = [
    (b"123456789", 0xcbf4_3926),
    (b"", 0),
    (b"The quick brown fox jumps over the lazy dog", 0x414f_a339),
];

/// Checks [`crc32`] and [`salted`] against the fixed vectors.
pub fn self_test() -> bool {
    PLAIN_VECTORS.iter().all(|&(d, want)| crc32(d) == want)
        && VECTORS.iter().all(|&(s, d, want)| salted(s, d) == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_crc32fast() {
        for (d, want) in PLAIN_VECTORS {
            assert_eq!(crc32fast::hash(d), want);
            assert_eq!(crc32(d), want);
        }
        for (s, d, want) in VECTORS {
            let mut h = crc32fast::Hasher::new();
            h.update(&s.to_le_bytes());
            h.update(d);
            assert_eq!(h.finalize(), want, "vector {s:#x} {d:?}");
            assert_eq!(salted(s, d), want);
        }
        assert!(self_test());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_match_crc32fast(d in proptest::collection::vec(proptest::num::u8::ANY, 0..2000), s: u32) {
            proptest::prop_assert_eq!(crc32(&d), crc32fast::hash(&d));
            let mut h = crc32fast::Hasher::new();
            h.update(&s.to_le_bytes());
            h.update(&d);
            proptest::prop_assert_eq!(salted(s, &d), h.finalize());
        }

        /// Feeding the bytes in two parts split anywhere (unaligned word boundaries)
        /// gives the checksum of the whole.
        #[test]
        fn split_updates_match(d in proptest::collection::vec(proptest::num::u8::ANY, 0..300), at in 0usize..300) {
            let at = at.min(d.len());
            let mut c = Crc32::new();
            c.update(&d[..at]);
            c.update(&d[at..]);
            proptest::prop_assert_eq!(c.finish(), crc32fast::hash(&d));
        }
    }
}
