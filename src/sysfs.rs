// SPDX-License-Identifier: GPL-2.0

//! The sysfs files under `/sys/kernel/dm_remap/dm-N/` (the directory and its lifetime are
//! the C shim's: `dmr_sysfs_*` in src/shim.c). The shim calls [`show`] and [`store`]
//! with the resumed target of the md and the file's id, holding the directory's rwsem
//! for reading, which `dtr` takes for writing before the target goes.
//!
//! A read-only file shows one field of the INFO status line (the same text `dmsetup
//! status` prints, made by the same code, so the two never disagree); the id is the
//! field's place. The knobs:
//! - `scan/action`: reads the scan's state; `start` or `stop` as the `scan` message does
//!   (EROFS on a read-only table, EBUSY while suspended; before the first resume no
//!   table is active and every file gives ENODEV);
//! - `scan/rate_max_kibs`: the scan's rate while the target is idle, in KiB/s,
//!   `MIN_SCAN_RATE_KIBS..=MAX_SCAN_RATE_KIBS`; it lasts while the table is live (the
//!   table line keeps the rate it was loaded with).
//!
//! A bad write gets EINVAL and a log line naming the file and the value, and changes
//! nothing.

use crate::bindings as b;
use crate::remap_core::table_line::{parse_u64, MAX_SCAN_RATE_KIBS, MIN_SCAN_RATE_KIBS};
use crate::resultbuf::ResultBuf;
use crate::target::Remap;
use core::fmt::Write;
use kernel::ffi::{c_char, c_long, c_uint, c_void};
use kernel::prelude::*;

macro_rules! dmerr {
    ($($arg:tt)*) => { pr_err!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}

/// The size of the buffer sysfs hands to `show`.
const PAGE: u32 = kernel::page::PAGE_SIZE as u32;

/// Field `n` (from 0) of a space-separated line.
fn field(line: &[u8], n: usize) -> Option<&[u8]> {
    line.split(|&c| c == b' ').nth(n)
}

/// `show` for the file `id` of `target`: its value and a newline in `buf`; the length,
/// or a negative errno.
///
/// # Safety
/// `target` is a live `Remap` that stays alive for the call, and `buf` a buffer of
/// PAGE_SIZE bytes (what sysfs passes).
pub(crate) unsafe extern "C" fn show(target: *mut c_void, id: c_uint, buf: *mut c_char) -> c_long {
    // SAFETY: per the contract.
    let t = unsafe { &*target.cast::<Remap>() };
    // SAFETY: per the contract, `buf` holds PAGE_SIZE writable bytes.
    let Some(mut out) = (unsafe { ResultBuf::new(buf, PAGE) }) else {
        return EINVAL.to_errno() as c_long;
    };
    let done = match id {
        b::dmr_sysfs_knob_DMR_SYSFS_SCAN_ACTION => {
            writeln!(out, "{}", t.scan_state_name()).map(|()| out.len())
        }
        b::dmr_sysfs_knob_DMR_SYSFS_SCAN_RATE_MAX_KIBS => {
            writeln!(out, "{}", t.scan_rate_max()).map(|()| out.len())
        }
        _ => {
            // The status line (a few hundred bytes) in the page itself; the field copied
            // out, then written back at the page's start.
            if t.write_info(&mut out).is_err() {
                return EIO.to_errno() as c_long;
            }
            let len = out.len();
            let mut f = [0u8; 32];
            let n = {
                // SAFETY: `write_info` wrote `len` initialised bytes at `buf`.
                let text = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
                let Some(v) = field(text, id as usize) else {
                    return EINVAL.to_errno() as c_long;
                };
                // No estimate: `-` in the status line, `none` here.
                let v: &[u8] = if v == b"-" { b"none" } else { v };
                let Some(dst) = f.get_mut(..v.len()) else {
                    return EIO.to_errno() as c_long;
                };
                dst.copy_from_slice(v);
                v.len()
            };
            // SAFETY: as above; the slice of the status line is no longer used.
            let Some(mut out) = (unsafe { ResultBuf::new(buf, PAGE) }) else {
                return EINVAL.to_errno() as c_long;
            };
            let text = f
                .get(..n)
                .and_then(|v| core::str::from_utf8(v).ok())
                .unwrap_or("?");
            writeln!(out, "{text}").map(|()| out.len())
        }
    };
    match done {
        Ok(n) => n as c_long,
        Err(_) => EIO.to_errno() as c_long,
    }
}

/// What a knob's written value says, without its trailing newline.
fn value(text: &[u8]) -> &[u8] {
    text.strip_suffix(b"\n").unwrap_or(text)
}

/// `store` for the knob `id` of `target`: `len` on success, or a negative errno (the
/// value changes nothing then).
///
/// # Safety
/// `target` is a live `Remap` that stays alive for the call, and `buf` holds `len`
/// readable bytes.
pub(crate) unsafe extern "C" fn store(
    target: *mut c_void,
    id: c_uint,
    buf: *const c_char,
    len: usize,
) -> c_long {
    // SAFETY: per the contract.
    let t = unsafe { &*target.cast::<Remap>() };
    // SAFETY: per the contract.
    let text = value(unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) });
    let shown = core::str::from_utf8(text).unwrap_or("(not UTF-8)");
    let r: Result = match id {
        b::dmr_sysfs_knob_DMR_SYSFS_SCAN_ACTION => match text {
            b"start" => t
                .may_write("scan/action start")
                .and_then(|()| t.scan_start()),
            b"stop" => {
                t.scan_stop();
                Ok(())
            }
            _ => {
                dmerr!(
                    "{}: scan/action: {:?}: write start or stop",
                    t.main_name(),
                    shown
                );
                Err(EINVAL)
            }
        },
        b::dmr_sysfs_knob_DMR_SYSFS_SCAN_RATE_MAX_KIBS => match parse_u64(text) {
            Ok(v) if (MIN_SCAN_RATE_KIBS..=MAX_SCAN_RATE_KIBS).contains(&v) => {
                // In range, so it fits.
                t.set_scan_rate_max(v as u32);
                Ok(())
            }
            _ => {
                dmerr!(
                    "{}: scan/rate_max_kibs: {:?}: a decimal number of KiB/s, {}..={}",
                    t.main_name(),
                    shown,
                    MIN_SCAN_RATE_KIBS,
                    MAX_SCAN_RATE_KIBS
                );
                Err(EINVAL)
            }
        },
        _ => Err(EINVAL),
    };
    match r {
        Ok(()) => len as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}
