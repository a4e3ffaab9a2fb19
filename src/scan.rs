// SPDX-License-Identifier: GPL-2.0

//! The background scan: reads the main device in chunks, finds blocks that no longer
//! read (recorded pending, as a failed read's block is) and blocks that read only after
//! retries or far slower than the device's norm (weak: copied to the spare and remapped
//! while still readable, when `proactive_remap` is on).
//!
//! C header: [include/linux/workqueue.h](srctree/include/linux/workqueue.h)
//!
//! One delayed work item per target (on `system_long_wq`) runs one step at a time: a
//! chunk of at most 256 KiB that holds no special block; the steps are paced to keep
//! the average at the rate in force (`scan_rate_min_kib` while the target has other
//! I/O, else the table's `scan_rate` or `scan_rate_max_kib`), pausing once they are
//! 20 ms ahead of it (remap-core's `Pacer`: a delayed work item sleeps in whole
//! ticks). The decisions (ranges, pacing, the latency norm, the proactive budget) are
//! remap-core's `scan`.
//!
//! Locks, in order: `step` (the step's own state; held by a step for its whole run),
//! then the core mutex (taken only to record what the step found and to checkpoint).
//! `gate` is never held while waiting for anything: start, stop and suspend update it
//! and queue or cancel the work item; `dmr_scanner_cancel` waits for a step in progress
//! and disables the item meanwhile, so a step's requeue during it queues nothing.

use crate::bindings as b;
use crate::engine::{Special, BUSY};
use crate::remap_core::meta::ScanCheckpoint;
use crate::remap_core::predict::Level;
use crate::remap_core::remap_table;
use crate::remap_core::scan::{self as plan, Norm, Pacer};
use crate::remap_core::storm::StormGuard;
use crate::remap_core::table_line;
use crate::target::{Core, Remap};
use crate::worker::Dev;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

// The module parameters' ranges (C shim) are the table options' (remap-core).
const _: () = assert!(b::DMR_SCAN_RATE_LOWEST as u64 == table_line::MIN_SCAN_RATE_KIBS);
const _: () = assert!(b::DMR_PROACTIVE_REGION_LARGEST as u64 == table_line::MAX_PROACTIVE_REGION);
const _: () = assert!(b::DMR_SCAN_RATE_HIGHEST as u64 == table_line::MAX_SCAN_RATE_KIBS);
const _: () = assert!(b::DMR_SCAN_INTERVAL_LONGEST as u64 == table_line::MAX_SCAN_INTERVAL_S);

/// A step waits this long in mode failed or on a read-only table, then looks again.
const PAUSED_RETRY_MS: u64 = 60_000;

/// Not scanning, nothing scheduled.
const IDLE: u32 = 0;
/// A pass is in progress.
const RUNNING: u32 = 1;
/// Waiting for the next periodic pass.
const WAITING: u32 = 2;
/// Stopped by `scan stop` (a pass in progress resumes where it stopped).
const STOPPED: u32 = 3;
/// Waiting: the target is in mode failed or read-only.
const PAUSED: u32 = 4;
/// The device is suspended.
const SUSPENDED: u32 = 5;

fn state_name(s: u32) -> &'static str {
    match s {
        RUNNING => "running",
        WAITING => "waiting",
        STOPPED => "stopped",
        PAUSED => "paused",
        SUSPENDED => "suspended",
        _ => "idle",
    }
}

macro_rules! dminfo {
    ($($arg:tt)*) => { pr_info!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}
macro_rules! dmwarn {
    ($($arg:tt)*) => { pr_warn!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}

/// Who may queue the work item.
struct Gate {
    /// The target is resumed (suspend clears it before cancelling the work).
    allowed: bool,
    /// Passes are wanted: periodic ones (`scan_interval` > 0) or one `scan start` asked.
    wanted: bool,
}

/// The step's own state.
struct Step {
    /// One chunk of data (vmalloc'd at construction).
    buf: KVVec<u8>,
    norm: Norm,
    /// Keeps the reads at the rate in force across steps.
    pacer: Pacer,
    /// The checkpoint was taken from the metadata (at the first resume).
    loaded: bool,
    cursor: u64,
    passes: u64,
    last_pass_end_s: u64,
    /// Foreground I/Os counted at the previous step.
    fg_seen: u64,
    /// When the position was last committed (monotonic ms).
    last_checkpoint_ms: u64,
    /// Bounds the unreadable blocks recorded per minute (`max_remap_rate`).
    guard: StormGuard,
    /// Per block of a chunk read block by block: what its reads showed.
    verdicts: KVVec<u8>,
}

/// What status and `scan status` show, readable without locks.
#[derive(Default)]
pub(crate) struct Figures {
    state: AtomicU32,
    cursor: AtomicU64,
    passes: AtomicU64,
    rate_kibs: AtomicU32,
    last_pass_end_s: AtomicU64,
    /// Blocks read by the scan since the target was created.
    pub(crate) scanned: AtomicU64,
    /// Reads of the scan that failed (each attempt).
    pub(crate) read_errors: AtomicU64,
    /// Blocks of which at least one read failed (the samples' scan errors, in the
    /// unit of `scanned`).
    pub(crate) failed_blocks: AtomicU64,
    /// Blocks the scan found unreadable and recorded pending.
    unreadable: AtomicU64,
    /// Blocks the scan found weak (readable only after retries, or slow).
    weak: AtomicU64,
    /// Of those, the slow ones.
    slow: AtomicU64,
    /// Blocks copied to the spare and remapped proactively (weak blocks, the blocks
    /// of their regions, and recovered pending blocks).
    proactive: AtomicU64,
    /// Pending blocks that read whole again (remapped, or no longer pending).
    recovered: AtomicU64,
}

/// The scanner of one target.
pub(crate) struct Scanner {
    work: crate::timer::Timer,
    gate: Pin<KBox<Mutex<Gate>>>,
    step: Pin<KBox<Mutex<Step>>>,
    /// `scan start` asked for a pass now (not after the periodic wait).
    force: AtomicBool,
    /// A stop or suspend is cancelling the work: a step in progress returns at the next
    /// block instead of finishing its chunk.
    stopping: AtomicBool,
    /// Serialises `scan start` and `scan stop` (a start must not fall into the window
    /// in which a stop's cancel has the work item disabled).
    ctl: Pin<KBox<Mutex<()>>>,
    pub(crate) fig: Figures,
    /// Seconds between passes (0: none).
    interval_s: u32,
    /// Rate while the target is idle, KiB/s (the table's `scan_rate` or the module
    /// parameter; sysfs `scan/rate_max_kibs` changes it while the table is live).
    rate_max_kibs: AtomicU32,
    proactive: bool,
    /// Percent of the pool proactive remaps leave free (`proactive_reserve`).
    reserve_pct: u8,
    /// Blocks on either side of a weak block that move with it at alert level warning
    /// or above (`proactive_region`).
    region: u8,
}

impl Scanner {
    /// A scanner for a table line (module parameters fill what it does not give); its
    /// work item is created by [`Scanner::attach`].
    pub(crate) fn new(cfg: &table_line::TableConfig<'_>) -> Result<Self> {
        // SAFETY: plain reads of module parameters.
        let (interval, rate_max, reserve, region) = unsafe {
            (
                b::dmr_param_scan_interval_s(),
                b::dmr_param_scan_rate_max_kib(),
                b::dmr_param_proactive_reserve_pct(),
                b::dmr_param_proactive_region_blocks(),
            )
        };
        // The parameters' own checks keep them in range; clamped again all the same.
        let reserve_pct = cfg.proactive_reserve_pct.unwrap_or(reserve.min(100) as u8);
        let region = cfg
            .proactive_region
            .unwrap_or(region.min(table_line::MAX_PROACTIVE_REGION as u32) as u8);
        let interval_s = cfg.scan_interval_s.unwrap_or(interval);
        let rate_max_kibs = cfg.scan_rate_kibs.unwrap_or(rate_max);
        let step = Step {
            buf: KVVec::from_elem(0u8, plan::CHUNK_BYTES as usize, GFP_KERNEL)?,
            norm: Norm::new(),
            pacer: Pacer::new(),
            loaded: false,
            cursor: 0,
            passes: 0,
            last_pass_end_s: 0,
            fg_seen: 0,
            last_checkpoint_ms: 0,
            // SAFETY: reads the monotonic clock.
            guard: StormGuard::new(cfg.max_remap_rate, unsafe { b::dmr_now_ms() }),
            verdicts: KVVec::from_elem(
                0u8,
                plan::chunk_blocks(cfg.block_size.bytes()) as usize,
                GFP_KERNEL,
            )?,
        };
        Ok(Self {
            work: crate::timer::Timer::none(),
            gate: KBox::pin_init(
                new_mutex!(Gate {
                    allowed: false,
                    wanted: interval_s > 0,
                }),
                GFP_KERNEL,
            )?,
            step: KBox::pin_init(new_mutex!(step), GFP_KERNEL)?,
            force: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            ctl: KBox::pin_init(new_mutex!(()), GFP_KERNEL)?,
            fig: Figures {
                rate_kibs: AtomicU32::new(rate_max_kibs),
                ..Figures::default()
            },
            interval_s,
            rate_max_kibs: AtomicU32::new(rate_max_kibs),
            proactive: cfg.proactive_remap.unwrap_or(true),
            reserve_pct,
            region,
        })
    }

    /// Creates the work item; `ctx` is the target, alive until [`Scanner::detach`].
    ///
    /// # Safety
    /// `ctx` must be the `Remap` that owns this scanner, at its final address.
    pub(crate) unsafe fn attach(&mut self, ctx: *mut Remap) -> Result {
        // SAFETY: per the contract `ctx` outlives the work item (`detach` cancels and
        // frees it before the target goes).
        unsafe { self.work.create(scan_fn, ctx.cast()) }
    }

    /// Cancels and frees the work item (a step in progress finishes first).
    pub(crate) fn detach(&mut self) {
        self.work.destroy();
    }

    fn queue(&self, delay_ms: u64) {
        self.work.queue(delay_ms);
    }

    fn cancel(&self) {
        self.stopping.store(true, Relaxed);
        self.work.cancel();
    }

    fn set_state(&self, s: u32) {
        self.fig.state.store(s, Relaxed);
    }
}

/// The work item's entry point.
///
/// # Safety
/// `ctx` is the `Remap` the work item was created for, alive until it is destroyed.
unsafe extern "C" fn scan_fn(ctx: *mut core::ffi::c_void) {
    // SAFETY: per the contract.
    let t = unsafe { &*ctx.cast::<Remap>() };
    t.scan_step();
}

impl Remap {
    /// The target resumes (or a suspend is undone): the scan may run again. The first
    /// time, the position comes from the metadata the first resume loaded.
    pub(crate) fn scan_resume(&self) {
        {
            let mut st = self.scan.step.lock();
            if !st.loaded {
                let cp = self.core.lock().scan_checkpoint();
                st.cursor = cp.cursor_block;
                st.passes = cp.passes;
                st.last_pass_end_s = cp.last_pass_end_s;
                st.loaded = true;
                // A pass that a reload, a reboot or a suspend interrupted goes on.
                if cp.cursor_block > 0 {
                    self.scan.gate.lock().wanted = true;
                }
                // SAFETY: reads the monotonic clock.
                st.last_checkpoint_ms = unsafe { b::dmr_now_ms() };
                self.publish_position(&st);
            }
        }
        let mut g = self.scan.gate.lock();
        g.allowed = true;
        self.scan.stopping.store(false, Relaxed);
        if g.wanted {
            self.scan.queue(0);
        } else if self.scan.fig.state.load(Relaxed) == SUSPENDED {
            self.scan.set_state(IDLE);
        }
    }

    /// The target is about to suspend: no scan I/O from now on; the position is
    /// committed.
    pub(crate) fn scan_suspend(&self) {
        self.scan.gate.lock().allowed = false;
        self.scan.cancel();
        self.scan.set_state(SUSPENDED);
        let mut st = self.scan.step.lock();
        if st.loaded {
            self.scan_checkpoint(&mut st);
        }
    }

    /// `scan start`: a pass now, or the stopped one resumed.
    pub(crate) fn scan_start(&self) -> Result {
        let _ctl = self.scan.ctl.lock();
        let mut g = self.scan.gate.lock();
        if !g.allowed {
            return Err(EBUSY);
        }
        g.wanted = true;
        self.scan.stopping.store(false, Relaxed);
        self.scan.force.store(true, Relaxed);
        self.scan.set_state(RUNNING);
        self.scan.queue(0);
        Ok(())
    }

    /// `scan stop`: the pass stops where it is (its position committed), and so do the
    /// periodic passes until `scan start` or a new table.
    pub(crate) fn scan_stop(&self) {
        let _ctl = self.scan.ctl.lock();
        self.scan.gate.lock().wanted = false;
        self.scan.cancel();
        self.scan.set_state(STOPPED);
        let mut st = self.scan.step.lock();
        if st.loaded {
            self.scan_checkpoint(&mut st);
        }
    }

    /// The idle scan rate in force, KiB/s.
    pub(crate) fn scan_rate_max(&self) -> u32 {
        self.scan.rate_max_kibs.load(Relaxed)
    }

    /// Sets the idle scan rate (sysfs); the next chunk reads at it. The caller checks
    /// the range.
    pub(crate) fn set_scan_rate_max(&self, kibs: u32) {
        self.scan.rate_max_kibs.store(kibs, Relaxed);
    }

    /// The scan's state, as status shows it.
    pub(crate) fn scan_state_name(&self) -> &'static str {
        state_name(self.scan.fig.state.load(Relaxed))
    }

    /// The `scan status` answer.
    pub(crate) fn write_scan_status(&self, out: &mut dyn Write) -> core::fmt::Result {
        let f = &self.scan.fig;
        let total = self.cfg.block_size.whole_blocks(self.len).0;
        let cursor = f.cursor.load(Relaxed);
        let rate = f.rate_kibs.load(Relaxed).max(1);
        let state = f.state.load(Relaxed);
        let eta = if state == RUNNING {
            plan::eta_s(
                total.saturating_sub(cursor),
                self.cfg.block_size.bytes(),
                rate,
            )
        } else {
            0
        };
        write!(
            out,
            "state={} cursor={} blocks={} passes={} last_pass_end={} interval_s={} rate_kibs={} eta_s={} scanned={} read_errors={} unreadable={} weak={} slow={} proactive_remaps={} recovered={} proactive_remap={} proactive_reserve={} proactive_region={}",
            state_name(state),
            cursor,
            total,
            f.passes.load(Relaxed),
            f.last_pass_end_s.load(Relaxed),
            self.scan.interval_s,
            rate,
            eta,
            f.scanned.load(Relaxed),
            f.read_errors.load(Relaxed),
            f.unreadable.load(Relaxed),
            f.weak.load(Relaxed),
            f.slow.load(Relaxed),
            f.proactive.load(Relaxed),
            f.recovered.load(Relaxed),
            if self.scan.proactive { "on" } else { "off" },
            self.scan.reserve_pct,
            self.scan.region,
        )
    }

    /// The scan fields of the INFO status line.
    pub(crate) fn write_scan_info(&self, out: &mut dyn Write) -> core::fmt::Result {
        let f = &self.scan.fig;
        write!(
            out,
            "{} {} {} {} {} {}",
            state_name(f.state.load(Relaxed)),
            f.cursor.load(Relaxed),
            f.passes.load(Relaxed),
            f.unreadable.load(Relaxed),
            f.weak.load(Relaxed),
            f.proactive.load(Relaxed),
        )
    }

    fn publish_position(&self, st: &Step) {
        self.scan.fig.cursor.store(st.cursor, Relaxed);
        self.scan.fig.passes.store(st.passes, Relaxed);
        self.scan
            .fig
            .last_pass_end_s
            .store(st.last_pass_end_s, Relaxed);
    }

    /// Commits the scan position if it moved (a log record: a few hundred bytes).
    fn scan_checkpoint(&self, st: &mut Step) {
        let cp = ScanCheckpoint {
            cursor_block: st.cursor,
            passes: st.passes,
            last_pass_end_s: st.last_pass_end_s,
        };
        // SAFETY: reads the monotonic clock.
        st.last_checkpoint_ms = unsafe { b::dmr_now_ms() };
        let mut core = self.core.lock();
        if !self.writable || self.is_failed() || core.scan_checkpoint() == cp {
            return;
        }
        core.set_scan_checkpoint(cp);
        let r = self.commit_current(&mut core);
        self.mirror(&core);
        if r.is_err() {
            self.enter_failed(c"metadata write failed while recording the scan position");
        }
    }

    /// One step of the scan (the work item's run).
    fn scan_step(&self) {
        let sc = &self.scan;
        let mut st = self.scan.step.lock();
        if !st.loaded || !sc.gate.lock().wanted {
            return;
        }
        // SAFETY: reads the monotonic clock.
        let now = unsafe { b::dmr_now_ms() };
        if self.is_failed() || !self.writable {
            // Nothing found could be recorded; reads would only load a failing disk.
            sc.set_state(PAUSED);
            sc.queue(PAUSED_RETRY_MS);
            return;
        }
        let forced = sc.force.swap(false, Relaxed);
        if st.cursor == 0 && !forced && sc.interval_s > 0 && st.last_pass_end_s > 0 {
            // SAFETY: reads the real-time clock.
            let now_s = unsafe { b::dmr_real_seconds() };
            let due = st.last_pass_end_s.saturating_add(u64::from(sc.interval_s));
            if now_s < due {
                sc.set_state(WAITING);
                // At most one interval: a clock set back does not stop the passes.
                let wait = (due - now_s).min(u64::from(sc.interval_s));
                sc.queue(wait.saturating_mul(1000));
                return;
            }
        }
        sc.set_state(RUNNING);
        let total = self.cfg.block_size.whole_blocks(self.len).0;
        let chunk = plan::chunk_blocks(self.cfg.block_size.bytes());
        let range = self.published.read(|s| {
            let items = s.map_or(&[][..], |s| s.items());
            plan::next_range(items, st.cursor, total, chunk)
        });
        // The rate in force: the lower one while the target has other I/O.
        let fg = self.stats.io.activity();
        let busy = fg != st.fg_seen;
        st.fg_seen = fg;
        // SAFETY: plain read of a module parameter.
        let rate_min = unsafe { b::dmr_param_scan_rate_min_kib() };
        let rate = plan::rate_kibs(rate_min, sc.rate_max_kibs.load(Relaxed), busy);
        sc.fig.rate_kibs.store(rate, Relaxed);
        let bs = self.cfg.block_size;
        let spb = bs.sectors();

        // Pending blocks the pass has reached (in the run of special blocks before the
        // next range) are read again first, a few per step, at the rate in force.
        let limit = range.map_or(total, |(first, _)| first);
        let mut pend = [0u64; plan::PENDING_PER_STEP];
        let n = self.published.read(|s| {
            let items = s.map_or(&[][..], |s| s.items());
            plan::pending_between(items, st.cursor, limit, &mut pend)
        });
        if n > 0 {
            let found = sc.fig.recovered.load(Relaxed);
            // SAFETY: reads the monotonic clock.
            let t0 = unsafe { b::dmr_now_us() };
            let mut read = 0u64;
            let mut failed_read = false;
            for &blk in pend.get(..n).unwrap_or(&[]) {
                if sc.stopping.load(Relaxed) || self.is_failed() {
                    break;
                }
                let r = self.scan_pending(blk, &mut st.buf);
                if r == Recheck::NotDone {
                    break;
                }
                read += 1;
                st.cursor = blk + 1;
                if r == Recheck::StillBad {
                    // A block that stays bad may have held the drive in its error
                    // recovery for seconds: the step ends here and pauses at least as
                    // long (below).
                    failed_read = true;
                    break;
                }
            }
            // SAFETY: as above.
            let took = unsafe { b::dmr_now_us() }.saturating_sub(t0);
            sc.fig.scanned.fetch_add(read, Relaxed);
            if sc.fig.recovered.load(Relaxed) != found {
                self.raise_event();
            }
            self.publish_position(&st);
            if now.saturating_sub(st.last_checkpoint_ms) >= plan::CHECKPOINT_MS {
                self.scan_checkpoint(&mut st);
            }
            let mut pause = st
                .pacer
                .after(read * spb * 512, t0, t0.saturating_add(took), rate);
            if failed_read {
                pause = pause.max(took / 1000);
            }
            sc.queue(pause);
            return;
        }
        let Some((first, end)) = range else {
            // The pass is over.
            st.passes = st.passes.saturating_add(1);
            st.cursor = 0;
            // SAFETY: reads the real-time clock.
            st.last_pass_end_s = unsafe { b::dmr_real_seconds() };
            self.publish_position(&st);
            self.scan_checkpoint(&mut st);
            // Monitors (`dmsetup wait`) learn that a pass ended.
            self.raise_event();
            dminfo!(
                "{}: scan pass {} complete ({} unreadable, {} weak blocks found so far)",
                self.main_name(),
                st.passes,
                sc.fig.unreadable.load(Relaxed),
                sc.fig.weak.load(Relaxed)
            );
            let mut g = sc.gate.lock();
            if sc.force.swap(false, Relaxed) {
                // `scan start` during this step: another pass now.
                sc.queue(0);
            } else if sc.interval_s > 0 {
                sc.set_state(WAITING);
                sc.queue(u64::from(sc.interval_s).saturating_mul(1000));
            } else {
                g.wanted = false;
                sc.set_state(IDLE);
            }
            return;
        };

        let blocks = end - first;
        let sectors = blocks * spb;
        let bytes = sectors * 512;
        // SAFETY: reads the monotonic clock.
        let t0 = unsafe { b::dmr_now_us() };
        let Step {
            buf,
            norm,
            guard,
            verdicts,
            ..
        } = &mut *st;
        let r = self.sync_io(
            Dev::Main,
            first * spb,
            buf,
            sectors,
            b::dmr_io_op_DMR_IO_READ,
        );
        // SAFETY: as above.
        let took = unsafe { b::dmr_now_us() }.saturating_sub(t0);
        let found = sc.fig.unreadable.load(Relaxed) + sc.fig.proactive.load(Relaxed);
        let (next, pause) = match r {
            Ok(()) if !norm.is_slow(bytes, took) => {
                norm.observe(bytes, took);
                (end, false)
            }
            Ok(()) => self.scan_blocks((first, end), buf, verdicts, norm, guard, true),
            Err(_) => {
                sc.fig.read_errors.fetch_add(1, Relaxed);
                self.scan_blocks((first, end), buf, verdicts, norm, guard, false)
            }
        };
        if sc.fig.unreadable.load(Relaxed) + sc.fig.proactive.load(Relaxed) != found {
            // A block recorded pending or remapped: a dm event, as for every change of
            // the map (no lock is held here).
            self.raise_event();
        }
        sc.fig.scanned.fetch_add(next - first, Relaxed);
        st.cursor = next;
        self.publish_position(&st);
        if now.saturating_sub(st.last_checkpoint_ms) >= plan::CHECKPOINT_MS {
            self.scan_checkpoint(&mut st);
        }
        if pause {
            sc.set_state(PAUSED);
            sc.queue(PAUSED_RETRY_MS);
            return;
        }
        // Paced to the step's end: the block-by-block reads and remaps of a slow or
        // failed chunk count too.
        // SAFETY: reads the monotonic clock.
        let t1 = unsafe { b::dmr_now_us() };
        // A stop that ended the chunk early is charged only the blocks dealt with.
        let wait = st.pacer.after((next - first) * spb * 512, t0, t1, rate);
        sc.queue(wait);
    }

    /// Reads `first..end` block by block (the chunk failed, or was slow) and deals with
    /// each block that fails every attempt or reads only after retries or slowly.
    /// Returns the block the pass goes on from (`end`, or the first block not dealt
    /// with when the scan is being stopped) and whether to pause: every block of a chunk
    /// of 8 blocks or more failed, which is a device failing as a whole or gone (or a
    /// path down), not bad blocks to record one by one.
    fn scan_blocks(
        &self,
        (first, end): (u64, u64),
        buf: &mut [u8],
        verdicts: &mut [u8],
        norm: &Norm,
        guard: &mut StormGuard,
        slow_chunk: bool,
    ) -> (u64, bool) {
        let bs = self.cfg.block_size;
        let spb = bs.sectors();
        let bytes = spb * 512;
        let attempts = 1 + u32::from(self.cfg.read_retries);
        let mut unreadable = 0u64;
        for (blk, v) in (first..end).zip(verdicts.iter_mut()) {
            if self.scan.stopping.load(Relaxed) {
                // Nothing dealt with yet: the chunk is read again when the scan resumes.
                return (first, false);
            }
            *v = UNREADABLE;
            let mut failed = false;
            for failures in 0..attempts {
                // SAFETY: reads the monotonic clock.
                let t0 = unsafe { b::dmr_now_us() };
                let r = self.sync_io(Dev::Main, blk * spb, buf, spb, b::dmr_io_op_DMR_IO_READ);
                // SAFETY: as above.
                let took = unsafe { b::dmr_now_us() }.saturating_sub(t0);
                if r.is_ok() {
                    *v = if slow_chunk && norm.is_slow(bytes, took) {
                        SLOW
                    } else if failures > 0 {
                        WEAK
                    } else {
                        CLEAN
                    };
                    break;
                }
                self.scan.fig.read_errors.fetch_add(1, Relaxed);
                failed = true;
            }
            if failed {
                self.scan.fig.failed_blocks.fetch_add(1, Relaxed);
            }
            if *v == UNREADABLE {
                unreadable += 1;
            }
        }
        let n = end - first;
        if n >= 8 && unreadable == n {
            dmwarn!(
                "{}: scan: blocks {}..{} all fail to read: not recorded (the main device may be failing or gone); the scan pauses",
                self.main_name(),
                first,
                end - 1
            );
            return (end, true);
        }
        // This chunk's verdicts only: the buffer's later entries are an earlier chunk's.
        let verdicts = plan::chunk_verdicts(verdicts, n);
        for (blk, &v) in (first..end).zip(verdicts.iter()) {
            if self.scan.stopping.load(Relaxed) {
                return (blk, false);
            }
            match v {
                UNREADABLE => self.scan_unreadable(blk, buf, guard, (first, verdicts)),
                WEAK | SLOW => {
                    self.scan.fig.weak.fetch_add(1, Relaxed);
                    if v == SLOW {
                        self.scan.fig.slow.fetch_add(1, Relaxed);
                    }
                    self.scan_weak(blk, false, buf, (first, verdicts));
                }
                _ => {}
            }
        }
        (end, false)
    }

    /// A block that failed every read: recorded pending (its reads fail until a write
    /// remaps it), unless a write repaired it meanwhile, the map is nearly full, or the
    /// failures come faster than `max_remap_rate`.
    ///
    /// Ordering: the block is published BUSY first, so every bio that reaches `map`
    /// from then on goes to the worker, which waits for the core mutex held here; the
    /// drain then waits for the tracked bios already on their way (writes entered the
    /// in-flight SRCU inside the RCU section that read the old table, and `publish`
    /// waited for that section). The reads below therefore see the block's last
    /// acknowledged write: a write that landed after the scan's failed reads makes
    /// them succeed (the drive reallocates on write), and the block is then only weak.
    fn scan_unreadable(
        &self,
        blk: u64,
        buf: &mut [u8],
        guard: &mut StormGuard,
        known: Verdicts<'_>,
    ) {
        let mut core = self.core.lock();
        let items = self.published.items_locked();
        // SAFETY: reads the monotonic clock.
        let now = unsafe { b::dmr_now_ms() };
        // Pending blocks never take the room a worker batch of remaps needs, and the
        // scan records at most `max_remap_rate` of them per minute (its own bucket: a
        // disk failing as a whole is not copied into the map block by block, and the
        // remaps' bound is left to the remaps). Reads of the others fail anyway.
        if self.is_failed()
            || remap_table::find(items, blk).is_some()
            || !core.fits(items, 1 + crate::worker::MAX_JOBS)
            || !guard.take(1, now)
        {
            return;
        }
        let busy = Special {
            state: BUSY,
            ..Special::pending(blk)
        };
        if self.publish_changes(&mut core, &mut [busy]).is_err() {
            return;
        }
        // SAFETY: the worker is live; waits for the tracked bios in flight.
        unsafe { b::dmr_io_drain(self.worker) };
        // One read: the step's attempts failed already; this one only looks for a
        // write that repaired the block before the drain (and keeps the core mutex,
        // which the worker needs, for as short as it can).
        let spb = self.cfg.block_size.sectors();
        let readable = self
            .sync_io(Dev::Main, blk * spb, buf, spb, b::dmr_io_op_DMR_IO_READ)
            .is_ok();
        let gone = Special {
            state: 0,
            ..Special::pending(blk)
        };
        if readable {
            let _ = self.publish_changes(&mut core, &mut [gone]);
            drop(core);
            self.scan.fig.weak.fetch_add(1, Relaxed);
            self.scan_weak(blk, true, buf, known);
            return;
        }
        match self.commit_changes(&mut core, &mut [Special::pending(blk)], 0) {
            Ok(()) => {
                self.scan.fig.unreadable.fetch_add(1, Relaxed);
                dmwarn!(
                    "{}: scan: block {} is unreadable; recorded pending (reads fail until it is written)",
                    self.main_name(),
                    blk
                );
            }
            Err(f) if f.adopted => {
                self.scan.fig.unreadable.fetch_add(1, Relaxed);
            }
            Err(_) => {
                let _ = self.publish_changes(&mut core, &mut [gone]);
                self.enter_failed(c"metadata write failed while recording an unreadable block");
            }
        }
        self.mirror(&core);
    }

    /// A pending block the pass reached: read once again (without a lock: the data
    /// is dropped; one read a pass, since a block that stays bad may take the drive's
    /// whole error recovery each time); when it reads whole, it is recovered under the
    /// core mutex (see [`Self::recover_pending`]). One that still fails stays pending.
    fn scan_pending(&self, blk: u64, buf: &mut [u8]) -> Recheck {
        let spb = self.cfg.block_size.sectors();
        if self
            .sync_io(Dev::Main, blk * spb, buf, spb, b::dmr_io_op_DMR_IO_READ)
            .is_err()
        {
            self.scan.fig.read_errors.fetch_add(1, Relaxed);
            self.scan.fig.failed_blocks.fetch_add(1, Relaxed);
            return Recheck::StillBad;
        }
        self.recover_pending(blk)
    }

    /// A pending block that reads whole again (a device with intermittent errors):
    /// its data on the main device is its last acknowledged write, since a write to a
    /// pending block is remapped (or, in mode failed, written in place on the main
    /// device). With `proactive_remap` on and room for a proactive remap (as
    /// [`Self::proactive_room`] counts it), it is copied to the spare and remapped by `remap_whole_once`
    /// (published BUSY and drained first, so a racing write is never lost; one read
    /// attempt under the mutex, since the block just read whole: a copy whose read fails
    /// leaves it pending). Otherwise its pending record is dropped (as the
    /// `unremap` message drops one) and its reads go to the main device again.
    ///
    /// Ordering: the block's entry is looked up under the core mutex, which every
    /// change of the map holds: a write that remapped the block after the unlocked
    /// read above has changed the entry from PENDING, and nothing is done.
    ///
    /// Returns what became of the block for [`Self::scan_pending`]: `NotDone` when the
    /// scan is stopping or the target is in mode failed as this takes the mutex (the
    /// block is read again when the pass resumes; mode failed entered later, without
    /// the mutex, leaves no room for the copy, and the pending record is dropped if its
    /// metadata write succeeds),
    /// `StillBad` when the copy's read failed (it stays pending).
    fn recover_pending(&self, blk: u64) -> Recheck {
        let mut core = self.core.lock();
        if self.scan.stopping.load(Relaxed) || self.is_failed() {
            return Recheck::NotDone;
        }
        let items = self.published.items_locked();
        if !remap_table::find(items, blk).is_some_and(|e| e.state == crate::engine::PENDING) {
            return Recheck::Done;
        }
        // SAFETY: reads the monotonic clock.
        let now = unsafe { b::dmr_now_ms() };
        let room = self.proactive_room(&mut core, items, now);
        let done = if room {
            self.remap_whole_once(&mut core, blk)
                .map(|()| "copied to the spare and remapped")
        } else {
            self.unremap_now(&mut core, blk)
                .map(|()| "no longer pending (its reads go to the main device again)")
        };
        if done.is_err() && !room && !self.is_failed() {
            // The pending record could not be dropped: the metadata write failed.
            self.enter_failed(c"metadata write failed while dropping a pending block");
        }
        // A copy whose read failed (the block is still pending, the target fine): as a
        // failed read for the step's pacing and figures.
        let still_bad = done.is_err()
            && !self.is_failed()
            && remap_table::find(self.published.items_locked(), blk)
                .is_some_and(|e| e.state == crate::engine::PENDING);
        self.mirror(&core);
        drop(core);
        if let Ok(what) = done {
            self.scan.fig.recovered.fetch_add(1, Relaxed);
            if room {
                self.scan.fig.proactive.fetch_add(1, Relaxed);
            }
            dminfo!(
                "{}: scan: pending block {} reads again: {}",
                self.main_name(),
                blk,
                what
            );
        }
        if still_bad {
            self.scan.fig.read_errors.fetch_add(1, Relaxed);
            self.scan.fig.failed_blocks.fetch_add(1, Relaxed);
            Recheck::StillBad
        } else {
            Recheck::Done
        }
    }

    /// A weak block: copied to the spare and remapped while it still reads, when
    /// proactive remapping is on and there is room for it (see [`Self::proactive_room`]).
    /// While the alert level is warning or above, the readable blocks of its region
    /// (`proactive_region` on either side, nearest first) follow, one remap each under
    /// the same conditions; one that does not read whole stays where it is (this pass
    /// reads it if it lies ahead of the cursor, the next pass if not).
    ///
    /// The core mutex is taken for one block at a time: between two region blocks the
    /// worker (failed reads and writes, bios waiting on a BUSY block) and the messages
    /// get it, and a stop or suspend (`stopping`) ends the region after the block in
    /// progress. The weak block's own copy makes up to 1 + `read_retries` read attempts
    /// under the mutex when the step's reads found it weak (it read within them), one
    /// when `once` (a block [`Self::scan_unreadable`] found readable after all: it failed
    /// the step's attempts and then read once). A region block is read once
    /// without the lock before it is moved, and one that the step found unreadable
    /// (by the verdicts of the chunk the weak block is in) or that fails that
    /// read is skipped; one that reads is copied under the mutex with a single read
    /// attempt. So a region block holds the core mutex, which the worker and its bios
    /// wait for, for at most one read attempt (a block with intermittent errors may
    /// fail it: it then stays where it is), besides the copy's write, its commit and
    /// the two grace periods of its map changes (normal ones: several ticks each).
    fn scan_weak(&self, blk: u64, once: bool, buf: &mut [u8], (first, v): Verdicts<'_>) {
        if !self.scan.proactive || self.proactive_move(blk, once) != Proactive::Moved {
            return;
        }
        dminfo!(
            "{}: scan: weak block {} copied to the spare and remapped",
            self.main_name(),
            blk
        );
        let region = self.scan.region;
        if region == 0 || !self.sampler.level_at_least(Level::Warning) {
            return;
        }
        let total = self.cfg.block_size.whole_blocks(self.len).0;
        let spb = self.cfg.block_size.sectors();
        let mut moved = 0u32;
        for b in plan::region_blocks(blk, region, total) {
            if self.scan.stopping.load(Relaxed) {
                break;
            }
            let found_bad = plan::verdict_at(first, v, b) == Some(UNREADABLE);
            let mapped = self
                .published
                .read(|s| s.is_some_and(|s| remap_table::find(s.items(), b).is_some()));
            if found_bad || mapped {
                continue;
            }
            // The probe (no lock held; its data is dropped: the copy reads again once
            // the block is BUSY and drained).
            if self
                .sync_io(Dev::Main, b * spb, buf, spb, b::dmr_io_op_DMR_IO_READ)
                .is_err()
            {
                self.scan.fig.read_errors.fetch_add(1, Relaxed);
                continue;
            }
            match self.proactive_move(b, true) {
                Proactive::Moved => moved += 1,
                Proactive::NoRoom => break,
                Proactive::Stays => {}
            }
        }
        if moved > 0 {
            dminfo!(
                "{}: scan: alert level warning or above: {} blocks around weak block {} moved with it",
                self.main_name(),
                moved,
                blk
            );
        }
    }

    /// Room for a proactive remap, under the core mutex: proactive remapping is on,
    /// the target is not in mode failed, more than `proactive_reserve` percent of the
    /// pool is free (kept for failed writes), the map keeps room for a worker batch,
    /// and half the remap storm bucket (rounded up) is left besides this remap (a scan
    /// never trips it, nor empties it for the failed writes' remaps).
    fn proactive_room(&self, core: &mut Core, items: &[Special], now_ms: u64) -> bool {
        let rate = self.cfg.max_remap_rate;
        self.scan.proactive
            && !self.is_failed()
            && plan::proactive_allowed(
                core.free_blocks(),
                self.spare_blocks(),
                self.scan.reserve_pct,
            )
            && core.fits(items, 1 + crate::worker::MAX_JOBS)
            && core.storm.has_room(u64::from(rate - rate / 2) + 1, now_ms)
    }

    /// Copies `blk` to the spare and remaps it, under the core mutex, if there is room
    /// (see [`Self::proactive_room`]), it is not in the map yet, and all of it reads:
    /// with one read attempt when `once` (`remap_whole_once`), else within the read
    /// retries (`remap_whole`). Both publish the block BUSY and drain before they copy
    /// (the same protocol as a failed write's remap): a write racing the copy is never
    /// lost.
    fn proactive_move(&self, blk: u64, once: bool) -> Proactive {
        let mut core = self.core.lock();
        // A stop or suspend that came while this waited for the mutex is not held up
        // by one more copy.
        if self.scan.stopping.load(Relaxed) {
            return Proactive::NoRoom;
        }
        let items = self.published.items_locked();
        // SAFETY: reads the monotonic clock.
        let now = unsafe { b::dmr_now_ms() };
        if !self.proactive_room(&mut core, items, now) {
            return Proactive::NoRoom;
        }
        if remap_table::find(items, blk).is_some() {
            return Proactive::Stays;
        }
        let moved = if once {
            self.remap_whole_once(&mut core, blk)
        } else {
            self.remap_whole(&mut core, blk)
        }
        .is_ok();
        if moved {
            self.scan.fig.proactive.fetch_add(1, Relaxed);
        }
        self.mirror(&core);
        if moved {
            Proactive::Moved
        } else {
            Proactive::Stays
        }
    }
}

/// A block's verdict in [`Remap::scan_blocks`]: read at the first attempt.
const CLEAN: u8 = 0;
/// Read only after a failed attempt.
const WEAK: u8 = 1;
/// Read, but far slower than the device's norm.
const SLOW: u8 = 2;
/// Failed every attempt.
const UNREADABLE: u8 = 3;

/// The verdicts of the chunk [`Remap::scan_blocks`] read block by block (its first
/// block, and one verdict per block of that chunk), for the region of a weak block in
/// it.
type Verdicts<'a> = (u64, &'a [u8]);

/// What [`Remap::scan_pending`] did with a pending block.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Recheck {
    /// Read whole, and recovered (or no longer pending by then).
    Done,
    /// Its read (or the copy's) failed again: it stays pending.
    StillBad,
    /// Read whole, but the scan is stopping or the target failed: left for later.
    NotDone,
}

/// What [`Remap::proactive_move`] did with a block.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Proactive {
    /// Copied to the spare and remapped.
    Moved,
    /// Left where it is: already in the map, or it does not read whole.
    Stays,
    /// No room for a proactive remap (reserve, map, storm bucket, or mode failed), or
    /// the scan is stopping.
    NoRoom,
}
