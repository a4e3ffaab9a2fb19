// SPDX-License-Identifier: GPL-2.0

//! The `remap` target: registration and the target operations.
//!
//! C header: [include/linux/device-mapper.h](srctree/include/linux/device-mapper.h)
//!
//! Each `extern "C"` hook is a thin trampoline: it turns dm core's raw pointers into
//! references (with the reasons they are valid) and calls a safe method on [`Remap`],
//! the per-target state that `ti->private` owns.

use crate::bindings as b;
use crate::remap_core::error::CoreError;
use crate::remap_core::layout;
use crate::remap_core::message::{Message, VERBS};
use crate::remap_core::table_line::TableConfig;
use crate::remap_core::units::Sectors;
use crate::resultbuf::ResultBuf;
use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::ffi::{c_char, c_int, c_uint};
use kernel::prelude::*;

/// Target version reported to `dmsetup targets` and in IMA measurements.
const VERSION: [u32; 3] = [0, 1, 0];

/// Most arguments a table line can have: two devices, the count and its options.
const MAX_ARGS: usize = 3 + crate::remap_core::table_line::MAX_OPT_ARGS as usize;

macro_rules! dmerr {
    ($($arg:tt)*) => { pr_err!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}
macro_rules! dminfo {
    ($($arg:tt)*) => { pr_info!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}

impl From<CoreError> for Error {
    fn from(e: CoreError) -> Error {
        match e {
            CoreError::OutputFull => ENOSPC,
            _ => EINVAL,
        }
    }
}

/// The module: owns the registered `target_type`.
pub(crate) struct DmRemap {
    /// Registered with dm core from `init` until `drop`.
    tt: KBox<UnsafeCell<b::target_type>>,
}

// SAFETY: after registration the `target_type` is only read and linked by dm core under
// its own locking; this module never touches it again until it unregisters it in
// `drop`, which the module loader runs once, after `init`, on one thread.
unsafe impl Sync for DmRemap {}
// SAFETY: as above: the value holds no thread-bound state.
unsafe impl Send for DmRemap {}

impl kernel::Module for DmRemap {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let tt = b::target_type {
            name: c"remap".as_ptr().cast(),
            version: VERSION,
            module: module.as_ptr(),
            ctr: Some(remap_ctr),
            dtr: Some(remap_dtr),
            map: Some(remap_map),
            end_io: Some(remap_end_io),
            status: Some(remap_status),
            message: Some(remap_message),
            iterate_devices: Some(remap_iterate_devices),
            io_hints: Some(remap_io_hints),
            ..Default::default()
        };
        let tt = KBox::new(UnsafeCell::new(tt), GFP_KERNEL)?;
        // SAFETY: `tt` is a fully initialised target_type in a heap allocation that
        // stays at the same address until `drop` unregisters it.
        kernel::error::to_result(unsafe { b::dm_register_target(tt.get()) })?;
        dminfo!(
            "version {}.{}.{} loaded",
            VERSION[0],
            VERSION[1],
            VERSION[2]
        );
        Ok(DmRemap { tt })
    }
}

impl Drop for DmRemap {
    fn drop(&mut self) {
        // SAFETY: registered in `init`; dm core holds a module reference while any
        // table uses the target, so no target instance exists any more.
        unsafe { b::dm_unregister_target(self.tt.get()) };
    }
}

/// I/O counters, updated lock-free from `map` and `end_io`.
#[derive(Default)]
struct Stats {
    reads: AtomicU64,
    writes: AtomicU64,
    flushes: AtomicU64,
    read_sectors: AtomicU64,
    write_sectors: AtomicU64,
    read_errors: AtomicU64,
    write_errors: AtomicU64,
}

impl Stats {
    fn clear(&self) {
        for c in [
            &self.reads,
            &self.writes,
            &self.flushes,
            &self.read_sectors,
            &self.write_sectors,
            &self.read_errors,
            &self.write_errors,
        ] {
            c.store(0, Relaxed);
        }
    }

    fn write(&self, out: &mut dyn Write, sep: &str) -> core::fmt::Result {
        write!(
            out,
            "reads={r}{sep}writes={w}{sep}flushes={f}{sep}read_sectors={rs}{sep}write_sectors={ws}{sep}read_errors={re}{sep}write_errors={we}",
            r = self.reads.load(Relaxed),
            w = self.writes.load(Relaxed),
            f = self.flushes.load(Relaxed),
            rs = self.read_sectors.load(Relaxed),
            ws = self.write_sectors.load(Relaxed),
            re = self.read_errors.load(Relaxed),
            we = self.write_errors.load(Relaxed),
        )
    }
}

/// What `map` leaves for `end_io` in the per-bio data.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct PerBio {
    kind: u32,
}

/// Per-target state, owned by `ti->private`.
///
/// # Invariants
/// `main` and `spare` are devices acquired with `dm_get_device` for this target and
/// released only in `drop`.
struct Remap {
    main: *mut b::dm_dev,
    spare: *mut b::dm_dev,
    /// Parsed options; the device fields are empty (names come from `main`/`spare`).
    cfg: TableConfig<'static>,
    len: Sectors,
    spare_len: Sectors,
    stats: Stats,
    ti: *mut b::dm_target,
}

impl Remap {
    fn main_bdev(&self) -> *mut kernel::bindings::block_device {
        // SAFETY: by the type invariant `main` is a live dm_dev.
        unsafe { (*self.main).bdev }
    }

    fn spare_bdev(&self) -> *mut kernel::bindings::block_device {
        // SAFETY: by the type invariant `spare` is a live dm_dev.
        unsafe { (*self.spare).bdev }
    }

    fn dev_name(dev: *mut b::dm_dev) -> &'static str {
        // SAFETY: `dev` is one of our live dm_devs; dm core NUL-terminates `name` and
        // never changes it while the device is held. The returned borrow is only used
        // while the target exists.
        let name = unsafe { CStr::from_ptr((*dev).name.as_ptr().cast()) };
        name.to_str().unwrap_or("?")
    }

    fn write_info(&self, out: &mut dyn Write) -> core::fmt::Result {
        write!(
            out,
            "{} {} ",
            self.cfg.block_size.bytes(),
            layout::data_blocks(self.spare_len, self.cfg.block_size).0
        )?;
        let s = &self.stats;
        write!(
            out,
            "{} {} {} {} {} {} {}",
            s.reads.load(Relaxed),
            s.writes.load(Relaxed),
            s.flushes.load(Relaxed),
            s.read_sectors.load(Relaxed),
            s.write_sectors.load(Relaxed),
            s.read_errors.load(Relaxed),
            s.write_errors.load(Relaxed)
        )
    }

    fn write_ima(&self, out: &mut dyn Write) -> core::fmt::Result {
        write!(
            out,
            "target_name=remap,target_version={}.{}.{},main_dev={},spare_dev={},block_size={},read_retries={},format_spare={};",
            VERSION[0],
            VERSION[1],
            VERSION[2],
            Self::dev_name(self.main),
            Self::dev_name(self.spare),
            self.cfg.block_size.bytes(),
            self.cfg.read_retries,
            if self.cfg.format_spare { "y" } else { "n" }
        )
    }

    fn message(&self, msg: Message, out: &mut dyn Write) -> Result<()> {
        let r = match msg {
            Message::Help => {
                let mut r = Ok(());
                for (verb, what) in VERBS.iter().filter(|(v, _)| Self::implemented(v)) {
                    r = r.and_then(|()| writeln!(out, "{verb:<22}{what}"));
                }
                r
            }
            Message::Stats => self.stats.write(out, " "),
            Message::ClearStats => {
                self.stats.clear();
                Ok(())
            }
            _ => {
                dmerr!("message: verb not available in this version");
                return Err(EINVAL);
            }
        };
        r.map_err(|_| ENOSPC)
    }

    fn implemented(verb: &str) -> bool {
        matches!(verb, "help" | "stats" | "clear_stats")
    }
}

impl Drop for Remap {
    fn drop(&mut self) {
        // SAFETY: by the type invariant both devices were acquired for `ti` and are
        // released exactly once, here.
        unsafe {
            b::dm_put_device(self.ti, self.spare);
            b::dm_put_device(self.ti, self.main);
        }
    }
}

/// Releases a device acquired in `ctr` if construction fails later.
struct DevGuard {
    ti: *mut b::dm_target,
    dev: *mut b::dm_dev,
}

impl DevGuard {
    fn disarm(self) -> *mut b::dm_dev {
        let d = self.dev;
        core::mem::forget(self);
        d
    }
}

impl Drop for DevGuard {
    fn drop(&mut self) {
        // SAFETY: `dev` was acquired with dm_get_device for `ti` and not handed on.
        unsafe { b::dm_put_device(self.ti, self.dev) };
    }
}

/// Sets `ti->error` and returns the errno for a failed constructor.
///
/// # Safety
/// `ti` must be the valid target passed to `ctr`.
unsafe fn ctr_fail(ti: *mut b::dm_target, msg: &'static CStr, err: Error) -> c_int {
    // SAFETY: the caller guarantees `ti` is valid; dm core only reads `error`.
    unsafe { (*ti).error = msg.as_ptr().cast_mut().cast() };
    err.to_errno()
}

/// # Safety
/// `ti` valid for the call; `argv` holds `argc` valid C strings.
unsafe extern "C" fn remap_ctr(
    ti: *mut b::dm_target,
    argc: c_uint,
    argv: *mut *mut c_char,
) -> c_int {
    let argc = argc as usize;
    if argc > MAX_ARGS {
        // SAFETY: `ti` is valid per this function's contract.
        return unsafe { ctr_fail(ti, CoreError::TrailingArgs.as_cstr(), EINVAL) };
    }
    let mut args: [&[u8]; MAX_ARGS] = [&[]; MAX_ARGS];
    for (i, slot) in args.iter_mut().take(argc).enumerate() {
        // SAFETY: dm core passes `argc` valid NUL-terminated strings in `argv`, alive
        // for the duration of the call.
        *slot = unsafe { CStr::from_ptr((*argv.add(i)).cast()) }.to_bytes();
    }
    let cfg = match TableConfig::parse(args.get(..argc).unwrap_or(&[])) {
        Ok(c) => c,
        // SAFETY: `ti` is valid per this function's contract.
        Err(e) => return unsafe { ctr_fail(ti, e.as_cstr(), EINVAL) },
    };
    // SAFETY: `ti` is valid and `ti->table` is the table being built.
    let mode = unsafe { b::dm_table_get_mode((*ti).table) };

    let mut main: *mut b::dm_dev = core::ptr::null_mut();
    // SAFETY: `argv[0]` exists (the parser needs two arguments) and is a C string;
    // `main` is a valid out pointer.
    let r = unsafe { b::dm_get_device(ti, *argv, mode, &mut main) };
    if r != 0 {
        // SAFETY: `ti` is valid per this function's contract.
        return unsafe { ctr_fail(ti, c"Main device lookup failed", Error::from_errno(r)) };
    }
    let main = DevGuard { ti, dev: main };
    let mut spare: *mut b::dm_dev = core::ptr::null_mut();
    // SAFETY: as above, for `argv[1]`.
    let r = unsafe { b::dm_get_device(ti, *argv.add(1), mode, &mut spare) };
    if r != 0 {
        // SAFETY: `ti` is valid per this function's contract.
        return unsafe { ctr_fail(ti, c"Spare device lookup failed", Error::from_errno(r)) };
    }
    let spare = DevGuard { ti, dev: spare };

    // SAFETY: both dm_devs are live; their bdevs are open for as long as we hold them.
    let (mbdev, sbdev, len) = unsafe { ((*main.dev).bdev, (*spare.dev).bdev, (*ti).len) };
    // SAFETY: `mbdev` and `sbdev` are open block devices.
    let (main_len, main_lbs, spare_len, spare_lbs, same) = unsafe {
        (
            b::dmr_bdev_nr_sectors(mbdev),
            b::dmr_bdev_logical_block_size(mbdev),
            b::dmr_bdev_nr_sectors(sbdev),
            b::dmr_bdev_logical_block_size(sbdev),
            b::dmr_bdev_devt(mbdev) == b::dmr_bdev_devt(sbdev),
        )
    };
    if let Err(e) = cfg.check_devices(
        Sectors(len),
        Sectors(main_len),
        main_lbs,
        Sectors(spare_len),
        spare_lbs,
        same,
    ) {
        // SAFETY: `ti` is valid per this function's contract.
        return unsafe { ctr_fail(ti, e.as_cstr(), EINVAL) };
    }

    let owned = TableConfig {
        main: b"",
        spare: b"",
        ..cfg
    };
    let state = Remap {
        main: main.dev,
        spare: spare.dev,
        cfg: owned,
        len: Sectors(len),
        spare_len: Sectors(spare_len),
        stats: Stats::default(),
        ti,
    };
    let state = match KBox::new(state, GFP_KERNEL) {
        Ok(s) => s,
        Err(_) => {
            // `state` was moved into the failed allocation and dropped with it, which
            // released both devices: disarm nothing twice.
            // SAFETY: `ti` is valid per this function's contract.
            return unsafe { ctr_fail(ti, c"Cannot allocate target state", ENOMEM) };
        }
    };
    // INVARIANT: ownership of both devices passes to `state`.
    main.disarm();
    spare.disarm();
    // SAFETY: `ti` is valid; dm core reads these after `ctr` returns.
    unsafe {
        (*ti).private = KBox::into_raw(state).cast();
        (*ti).num_flush_bios = 2;
        (*ti).per_io_data_size = core::mem::size_of::<PerBio>() as c_uint;
    }
    0
}

/// Borrows the state of a constructed target.
///
/// # Safety
/// `ti` must be a target whose `ctr` succeeded and whose `dtr` has not run.
unsafe fn state<'a>(ti: *mut b::dm_target) -> &'a Remap {
    // SAFETY: per the contract `private` holds the `Remap` set by `ctr`.
    unsafe { &*(*ti).private.cast::<Remap>() }
}

/// # Safety
/// Called by dm core once for a target whose `ctr` succeeded.
unsafe extern "C" fn remap_dtr(ti: *mut b::dm_target) {
    // SAFETY: `private` was produced by `KBox::into_raw` in `ctr` and is reclaimed once.
    drop(unsafe { KBox::from_raw((*ti).private.cast::<Remap>()) });
}

/// # Safety
/// Called by dm core with a constructed target and a bio it owns.
unsafe extern "C" fn remap_map(ti: *mut b::dm_target, bio: *mut kernel::bindings::bio) -> c_int {
    // SAFETY: dm core calls `map` only between a successful `ctr` and `dtr`.
    let t = unsafe { state(ti) };
    // SAFETY: `bio` is a valid bio owned by dm core for this call.
    let kind = unsafe { b::dmr_bio_kind(bio) };
    // SAFETY: per_io_data_size was set to the size of `PerBio` in `ctr`.
    let pb = unsafe { b::dm_per_bio_data(bio, core::mem::size_of::<PerBio>()) }.cast::<PerBio>();
    // SAFETY: dm core reserves `per_io_data_size` bytes, suitably aligned, per bio.
    unsafe { pb.write(PerBio { kind }) };
    // SAFETY: `ti` is valid.
    let begin = unsafe { (*ti).begin };
    // SAFETY: `bio` is valid.
    let sector = unsafe { b::dmr_bio_sector(bio) }.saturating_sub(begin);
    if kind == b::dmr_bio_kind_DMR_BIO_FLUSH {
        t.stats.flushes.fetch_add(1, Relaxed);
        // SAFETY: `bio` is valid; flush bios are numbered 0 and 1 (num_flush_bios = 2).
        let nr = unsafe { b::dm_bio_get_target_bio_nr(bio) };
        let bdev = if nr == 0 {
            t.main_bdev()
        } else {
            t.spare_bdev()
        };
        // SAFETY: `bio` is valid and `bdev` is held open by this target.
        unsafe { b::dmr_bio_remap(bio, bdev, 0) };
        return b::DM_MAPIO_REMAPPED as c_int;
    }
    // SAFETY: `bio` is valid.
    let n = u64::from(unsafe { b::dmr_bio_sectors(bio) });
    if kind == b::dmr_bio_kind_DMR_BIO_READ {
        t.stats.reads.fetch_add(1, Relaxed);
        t.stats.read_sectors.fetch_add(n, Relaxed);
    } else if kind == b::dmr_bio_kind_DMR_BIO_WRITE {
        t.stats.writes.fetch_add(1, Relaxed);
        t.stats.write_sectors.fetch_add(n, Relaxed);
    }
    // SAFETY: `bio` is valid and the main device is held open by this target.
    unsafe { b::dmr_bio_remap(bio, t.main_bdev(), sector) };
    b::DM_MAPIO_REMAPPED as c_int
}

/// # Safety
/// Called by dm core with a constructed target, a bio that went through `map` and a
/// valid status pointer.
unsafe extern "C" fn remap_end_io(
    ti: *mut b::dm_target,
    bio: *mut kernel::bindings::bio,
    error: *mut kernel::bindings::blk_status_t,
) -> c_int {
    // SAFETY: dm core calls `end_io` only for a constructed target.
    let t = unsafe { state(ti) };
    // SAFETY: `error` is valid for the call.
    let status = unsafe { *error };
    if u32::from(status) != b::DMR_STS_OK {
        // SAFETY: `map` stored a `PerBio` in this bio's per-bio data.
        let pb = unsafe {
            b::dm_per_bio_data(bio, core::mem::size_of::<PerBio>())
                .cast::<PerBio>()
                .read()
        };
        if pb.kind == b::dmr_bio_kind_DMR_BIO_READ {
            t.stats.read_errors.fetch_add(1, Relaxed);
        } else {
            t.stats.write_errors.fetch_add(1, Relaxed);
        }
    }
    b::DM_ENDIO_DONE as c_int
}

/// # Safety
/// Called by dm core with a constructed target and a `maxlen`-byte result buffer.
unsafe extern "C" fn remap_status(
    ti: *mut b::dm_target,
    ty: b::status_type_t,
    _flags: c_uint,
    result: *mut c_char,
    maxlen: c_uint,
) {
    // SAFETY: dm core calls `status` only for a constructed target.
    let t = unsafe { state(ti) };
    // SAFETY: dm core passes a writable buffer of `maxlen` bytes.
    let Some(mut out) = (unsafe { ResultBuf::new(result, maxlen) }) else {
        return;
    };
    // A cut status line is what DMEMIT does too; dm core retries with a larger buffer.
    let _ = match ty {
        b::status_type_t_STATUSTYPE_INFO => t.write_info(&mut out),
        b::status_type_t_STATUSTYPE_TABLE => {
            t.cfg
                .write_table(&mut out, Remap::dev_name(t.main), Remap::dev_name(t.spare))
        }
        b::status_type_t_STATUSTYPE_IMA => t.write_ima(&mut out),
        _ => Ok(()),
    };
}

/// # Safety
/// Called by dm core with a constructed target, `argc` C strings in `argv` and a
/// `maxlen`-byte result buffer.
unsafe extern "C" fn remap_message(
    ti: *mut b::dm_target,
    argc: c_uint,
    argv: *mut *mut c_char,
    result: *mut c_char,
    maxlen: c_uint,
) -> c_int {
    // SAFETY: dm core calls `message` only for a constructed target.
    let t = unsafe { state(ti) };
    let argc = argc as usize;
    if argc > 4 {
        dmerr!("message: too many arguments");
        return EINVAL.to_errno();
    }
    let mut args: [&[u8]; 4] = [&[]; 4];
    for (i, slot) in args.iter_mut().take(argc).enumerate() {
        // SAFETY: dm core passes `argc` valid NUL-terminated strings.
        *slot = unsafe { CStr::from_ptr((*argv.add(i)).cast()) }.to_bytes();
    }
    let msg = match Message::parse(args.get(..argc).unwrap_or(&[])) {
        Ok(m) => m,
        Err(e) => {
            dmerr!("message: {}", e.as_str());
            return EINVAL.to_errno();
        }
    };
    // SAFETY: dm core passes a writable buffer of `maxlen` bytes.
    let Some(mut out) = (unsafe { ResultBuf::new(result, maxlen) }) else {
        return EINVAL.to_errno();
    };
    match t.message(msg, &mut out) {
        Ok(()) if out.overflowed() => ENOSPC.to_errno(),
        Ok(()) => 1,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
/// Called by dm core with a constructed target and a valid callout.
unsafe extern "C" fn remap_iterate_devices(
    ti: *mut b::dm_target,
    f: b::iterate_devices_callout_fn,
    data: *mut core::ffi::c_void,
) -> c_int {
    // SAFETY: dm core calls this only for a constructed target.
    let t = unsafe { state(ti) };
    let Some(f) = f else { return 0 };
    // SAFETY: `f` is dm core's callout; our devices are live.
    let r = unsafe { f(ti, t.main, 0, t.len.0, data) };
    if r != 0 {
        return r;
    }
    let start = layout::data_start(t.cfg.block_size).0;
    // SAFETY: as above.
    unsafe {
        f(
            ti,
            t.spare,
            start,
            t.spare_len.0.saturating_sub(start),
            data,
        )
    }
}

/// # Safety
/// Called by dm core with a constructed target and valid limits.
unsafe extern "C" fn remap_io_hints(
    ti: *mut b::dm_target,
    limits: *mut kernel::bindings::queue_limits,
) {
    // SAFETY: dm core calls this only for a constructed target.
    let t = unsafe { state(ti) };
    // SAFETY: `limits` is valid for the call.
    unsafe { b::dmr_limits_io_min(limits, t.cfg.block_size.bytes()) };
}
