//! Bounds-checked little-endian cursors over byte slices.
//!
//! Every on-disk field is read and written through these: no struct is ever
//! transmuted, and running off the end of a buffer is an error, never a panic.

/// Reading or writing past the end of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBounds;

/// Reads little-endian fields from a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub const fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Current offset from the start of the buffer.
    pub const fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub const fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], OutOfBounds> {
        let end = self.pos.checked_add(n).ok_or(OutOfBounds)?;
        let s = self.buf.get(self.pos..end).ok_or(OutOfBounds)?;
        self.pos = end;
        Ok(s)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), OutOfBounds> {
        self.bytes(n).map(|_| ())
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], OutOfBounds> {
        let s = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// A `u8`.
    pub fn u8(&mut self) -> Result<u8, OutOfBounds> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, OutOfBounds> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, OutOfBounds> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, OutOfBounds> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A little-endian unsigned integer of `n` ≤ 8 bytes.
    pub fn uint(&mut self, n: usize) -> Result<u64, OutOfBounds> {
        if n > 8 {
            return Err(OutOfBounds);
        }
        let s = self.bytes(n)?;
        let mut a = [0u8; 8];
        a.get_mut(..n).ok_or(OutOfBounds)?.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
}

/// Writes little-endian fields into a byte slice.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    /// Current offset from the start of the buffer.
    pub const fn pos(&self) -> usize {
        self.pos
    }

    /// Writes `s`.
    pub fn bytes(&mut self, s: &[u8]) -> Result<(), OutOfBounds> {
        let end = self.pos.checked_add(s.len()).ok_or(OutOfBounds)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(OutOfBounds)?
            .copy_from_slice(s);
        self.pos = end;
        Ok(())
    }

    /// Writes `n` zero bytes.
    pub fn zeros(&mut self, n: usize) -> Result<(), OutOfBounds> {
        let end = self.pos.checked_add(n).ok_or(OutOfBounds)?;
        self.buf.get_mut(self.pos..end).ok_or(OutOfBounds)?.fill(0);
        self.pos = end;
        Ok(())
    }

    /// Writes a `u8`.
    pub fn u8(&mut self, v: u8) -> Result<(), OutOfBounds> {
        self.bytes(&[v])
    }

    /// Writes a little-endian `u16`.
    pub fn u16(&mut self, v: u16) -> Result<(), OutOfBounds> {
        self.bytes(&v.to_le_bytes())
    }

    /// Writes a little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> Result<(), OutOfBounds> {
        self.bytes(&v.to_le_bytes())
    }

    /// Writes a little-endian `u64`.
    pub fn u64(&mut self, v: u64) -> Result<(), OutOfBounds> {
        self.bytes(&v.to_le_bytes())
    }

    /// Writes the low `n` ≤ 8 bytes of `v`; fails if `v` does not fit.
    pub fn uint(&mut self, v: u64, n: usize) -> Result<(), OutOfBounds> {
        if n > 8 || (n < 8 && v >> (n * 8) != 0) {
            return Err(OutOfBounds);
        }
        let b = v.to_le_bytes();
        self.bytes(b.get(..n).ok_or(OutOfBounds)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let mut buf = [0u8; 16];
        let mut w = Writer::new(&mut buf);
        w.u8(1).unwrap();
        w.u16(0x0203).unwrap();
        w.u32(0x0405_0607).unwrap();
        w.uint(0x0a_0b0c, 3).unwrap();
        assert_eq!(w.uint(0x1_0000_0000, 4), Err(OutOfBounds));
        w.zeros(2).unwrap();
        assert_eq!(w.u64(0), Err(OutOfBounds));
        assert_eq!(w.pos(), 12);
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x0405_0607));
        assert_eq!(r.uint(3), Ok(0x0a_0b0c));
        assert_eq!(r.remaining(), 6);
        assert_eq!(r.u64(), Err(OutOfBounds));
        assert_eq!(r.pos(), 10, "a failed read consumes nothing");
        assert_eq!(r.bytes(usize::MAX), Err(OutOfBounds));
        assert_eq!(buf[1..3], [3, 2], "little-endian");
    }
}
