// SPDX-License-Identifier: GPL-2.0

//! A `core::fmt::Write` sink over the buffer dm core hands to `status` and `message`.
//!
//! It behaves like `DMEMIT`/`scnprintf`: output that does not fit is cut, the buffer is
//! always NUL-terminated, and a write that did not fit returns an error (the buffer is then
//! full, which is how dm core tells that it must ask again with a larger one).

use core::fmt;
use kernel::ffi::c_char;

/// Writer over a caller-provided C buffer.
///
/// # Invariants
/// `buf` points to `cap` writable bytes for the lifetime of the value, `cap >= 1`, and
/// `len < cap`.
pub(crate) struct ResultBuf {
    buf: *mut u8,
    cap: usize,
    len: usize,
    overflow: bool,
}

impl ResultBuf {
    /// Wraps `result`/`maxlen` as dm core passes them.
    ///
    /// Returns `None` if the buffer is null or empty.
    ///
    /// # Safety
    /// `result` must point to `maxlen` writable bytes that stay valid and unaliased while
    /// the returned value is alive.
    pub(crate) unsafe fn new(result: *mut c_char, maxlen: u32) -> Option<Self> {
        if result.is_null() || maxlen == 0 {
            return None;
        }
        let cap = maxlen as usize;
        // SAFETY: `result` has at least one writable byte (`maxlen >= 1`).
        unsafe { *result = 0 };
        // INVARIANT: the caller guarantees `cap` writable bytes; `len` = 0 < `cap`.
        Some(Self {
            buf: result.cast(),
            cap,
            len: 0,
            overflow: false,
        })
    }
}

impl ResultBuf {
    /// Bytes written so far (the terminating NUL not counted).
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl fmt::Write for ResultBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.cap - 1 - self.len;
        let n = s.len().min(room);
        if n < s.len() {
            self.overflow = true;
        }
        // SAFETY: `len + n <= cap - 1`, so the copy and the terminator stay inside the
        // `cap` bytes the type invariant guarantees; `s` cannot overlap a buffer we own.
        unsafe {
            core::ptr::copy_nonoverlapping(s.as_ptr(), self.buf.add(self.len), n);
            *self.buf.add(self.len + n) = 0;
        }
        // INVARIANT: `len + n <= cap - 1 < cap`.
        self.len += n;
        if self.overflow {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}
