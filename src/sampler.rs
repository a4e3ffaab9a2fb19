// SPDX-License-Identifier: GPL-2.0

//! Statistics sampling and failure prediction in the kernel.
//!
//! C header: [include/linux/percpu.h](srctree/include/linux/percpu.h)
//!
//! The hot path records, per read or write bio, its latency from `map` to its final
//! `end_io` in a per-CPU log-linear histogram (one `this_cpu_inc`: no lock, no atomic,
//! no allocation), and counts the I/Os the main device failed beside the other I/O
//! counters (per-CPU counters and atomics, `counters.rs`). Every `sample_interval_s` seconds (module parameter, default
//! 3600) a delayed work item on `system_long_wq` takes one [`Sample`] of the interval:
//! the counters' growth (hot path and scan, each differenced on its own), the latency
//! percentiles of the histogram's growth, the remapped and pending blocks and the free
//! spare blocks; and feeds it to remap-core's prediction engine. The engine (about
//! 64 KiB: the last 1000 samples, daily aggregates, the models' state) is allocated
//! when the target is constructed, never on the stack.
//!
//! What the engine reports is published in atomics for the status line (health score,
//! alert level, time to failure); a change of the reported level is logged, kept in a
//! log of the last [`ALERT_LOG`] changes (`alerts`), and raises a dm event. The
//! engine's hysteresis (a raised level must hold 2 h, a lowered one 48 h; only an
//! emergency is reported at once) bounds those to a few a day.
//!
//! Locks: the sampler's own mutex, held by a sample step (no I/O under it) and by the
//! `health`, `alerts` and `samples` messages. It is never held with the core mutex.
//! The work item runs from the first resume until the target is destroyed (`Drop`
//! cancels it first); it does no I/O, so it also runs while the device is suspended
//! (the samples then show no I/O).

use crate::bindings as b;
use crate::engine::{FENCED, FENCED_MOVED, PENDING, REMAPPED};
use crate::remap_core::history::{self, SLOT_BYTES, SLOT_SECTORS, SLOT_SECTOR_COUNT};
use crate::remap_core::latency::{self, BUCKETS};
use crate::remap_core::meta::MAX_SPARES;
use crate::remap_core::predict::{Alert, Config, Engine, Level};
use crate::remap_core::sampling::{self, Levels, Totals};
use crate::remap_core::stats::{DAY_S, TRACE_HEADER};
use crate::target::Remap;
use crate::worker::Dev;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

const _: () = assert!(b::DMR_LAT_BUCKETS as usize == BUCKETS);

/// Level changes `alerts` keeps.
pub(crate) const ALERT_LOG: usize = 16;

/// Most samples one `samples` answer holds; `next=<n>` continues.
const SAMPLES_MAX: u64 = 64;

/// A fresh engine, copied from here into its allocation (never built on the stack).
static FRESH: Engine = Engine::new(Config::DEFAULT);
/// What a fresh engine reports (fills the empty slots of the alert log).
const NO_ALERT: Alert = *Engine::new(Config::DEFAULT).current();

macro_rules! dmwarn {
    ($($arg:tt)*) => { pr_warn!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}
macro_rules! dminfo {
    ($($arg:tt)*) => { pr_info!("device-mapper: remap: {}\n", format_args!($($arg)*)) };
}

/// The sample step's state.
struct State {
    engine: KVBox<Engine>,
    /// The counters at the previous sample: hot path, scan.
    then: [Totals; 2],
    /// Hot-path counts `clear_stats` zeroed since the previous sample (they belong to
    /// the next one).
    carry: Totals,
    /// When the next sample is due (monotonic ms): samples keep to a fixed grid of
    /// intervals from the first one, whatever the timer's rounding.
    due_ms: u64,
    /// The engine refused a sample (its time went back): logged once until one is
    /// taken again.
    refusing: bool,
    /// The history slots: both (of each spare in turn) read at the first resume, the first half used to
    /// encode each write.
    slots: KVVec<u8>,
    /// The next history write's generation and slot.
    generation: u64,
    next_slot: usize,
    /// Suspended: no history write (the device must see no new I/O).
    quiet: bool,
    /// History writes that failed; the last one failed (logged once per run).
    history_errors: u64,
    history_failing: bool,
    /// The histogram at the previous sample, and room to read the current one.
    hist_then: KVVec<u64>,
    hist_now: KVVec<u64>,
    /// The last level changes, oldest first once full (`head` is the next slot).
    log: [Alert; ALERT_LOG],
    log_len: usize,
    log_head: usize,
    /// Level changes since the target was created.
    changes: u64,
}

/// What status shows, readable without locks.
pub(crate) struct Figures {
    pub(crate) level: AtomicU32,
    pub(crate) score: AtomicU32,
    /// Forecast seconds to failure from the last sample; `u64::MAX`: none.
    pub(crate) ttf_s: AtomicU64,
    pub(crate) samples: AtomicU64,
}

/// The sampler of one target.
pub(crate) struct Sampler {
    work: crate::timer::Timer,
    /// The per-CPU latency histogram (C shim).
    lat: *mut core::ffi::c_void,
    state: Pin<KBox<Mutex<State>>>,
    started: AtomicBool,
    pub(crate) fig: Figures,
}

// SAFETY: `lat` is a C per-CPU histogram usable from any context (updated with
// this_cpu ops, read with READ_ONCE); the rest is a work item, atomics and a kernel
// mutex.
unsafe impl Send for Sampler {}
// SAFETY: as above.
unsafe impl Sync for Sampler {}

/// An alert as its `alerts` line, for the kernel log.
struct Shown<'a>(&'a Alert);

impl core::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        sampling::write_alert(f, self.0)
    }
}

fn level_code(l: Level) -> u32 {
    l as u32
}

/// The engine's tunables from the module parameters (read when a target is made; their
/// own checks keep them in range): the unusable error rate, the warning and critical
/// horizons (a critical horizon beyond the warning one is taken as the warning one), the
/// confidence a warning needs and the hysteresis holds.
fn params_config() -> Config {
    // SAFETY: plain reads of module parameters.
    let (ppm, warn_d, crit_d, conf, raise, lower) = unsafe {
        (
            b::dmr_param_predict_unusable_ppm(),
            b::dmr_param_predict_warning_days(),
            b::dmr_param_predict_critical_days(),
            b::dmr_param_predict_min_confidence(),
            b::dmr_param_predict_raise_hold_s(),
            b::dmr_param_predict_lower_hold_s(),
        )
    };
    let warning = u64::from(warn_d.max(1)) * DAY_S;
    Config {
        unusable_ppb: u64::from(ppm.clamp(1, 1_000_000)) * 1000,
        warning_horizon_s: warning,
        critical_horizon_s: (u64::from(crit_d.max(1)) * DAY_S).min(warning),
        min_confidence: conf.clamp(1, 1000) as u16,
        raise_hold_s: u64::from(raise),
        lower_hold_s: u64::from(lower),
        ..Config::DEFAULT
    }
}

impl Sampler {
    /// Whether the reported alert level is `l` or above.
    pub(crate) fn level_at_least(&self, l: Level) -> bool {
        self.fig.level.load(Relaxed) >= level_code(l)
    }
}

fn level_name(code: u32) -> &'static str {
    [
        Level::Info,
        Level::Notice,
        Level::Warning,
        Level::Critical,
        Level::Emergency,
    ]
    .into_iter()
    .find(|&l| level_code(l) == code)
    .map_or("info", Level::as_str)
}

impl Sampler {
    /// A sampler with a fresh engine; its work item and histogram come with
    /// [`Sampler::attach`]. (Not inlined: the constructor's frame stays small.)
    #[inline(never)]
    pub(crate) fn new() -> Result<Self> {
        let mut slot = KVBox::<Engine>::new_uninit(GFP_KERNEL)?;
        // SAFETY: `slot` is a fresh allocation for one `Engine`, which cannot overlap
        // the static; the copy initialises it whole (an `Engine` is plain data).
        let mut engine = unsafe {
            core::ptr::copy_nonoverlapping(&FRESH, slot.as_mut_ptr(), 1);
            slot.assume_init()
        };
        engine.set_config(params_config());
        let state = State {
            engine,
            then: [Totals::default(); 2],
            carry: Totals::default(),
            due_ms: 0,
            refusing: false,
            slots: KVVec::from_elem(0u8, 2 * SLOT_BYTES, GFP_KERNEL)?,
            generation: 1,
            next_slot: 0,
            quiet: true,
            history_errors: 0,
            history_failing: false,
            hist_then: KVVec::from_elem(0u64, BUCKETS, GFP_KERNEL)?,
            hist_now: KVVec::from_elem(0u64, BUCKETS, GFP_KERNEL)?,
            log: [NO_ALERT; ALERT_LOG],
            log_len: 0,
            log_head: 0,
            changes: 0,
        };
        Ok(Self {
            work: crate::timer::Timer::none(),
            lat: core::ptr::null_mut(),
            state: KBox::pin_init(new_mutex!(state), GFP_KERNEL)?,
            started: AtomicBool::new(false),
            fig: Figures {
                level: AtomicU32::new(level_code(Level::Info)),
                score: AtomicU32::new(100),
                ttf_s: AtomicU64::new(u64::MAX),
                samples: AtomicU64::new(0),
            },
        })
    }

    /// Creates the histogram and the work item; `ctx` is the target, alive until
    /// [`Sampler::detach`].
    ///
    /// # Safety
    /// `ctx` must be the `Remap` that owns this sampler, at its final address.
    pub(crate) unsafe fn attach(&mut self, ctx: *mut Remap) -> Result {
        // SAFETY: allocates a per-CPU histogram; freed in `detach`.
        let lat = unsafe { b::dmr_lat_alloc() };
        if lat.is_null() {
            return Err(ENOMEM);
        }
        self.lat = lat;
        // SAFETY: per the contract `ctx` outlives the work item (`detach` cancels and
        // frees it before the target goes).
        unsafe { self.work.create(sample_fn, ctx.cast()) }
    }

    /// Cancels and frees the work item (a step in progress finishes first). The
    /// histogram stays until the sampler drops.
    pub(crate) fn detach(&mut self) {
        self.work.destroy();
    }

    /// Counts one read or write that took from `start_ns` (monotonic ns) until now.
    /// Any context; no lock.
    #[inline]
    pub(crate) fn record(&self, start_ns: u64) {
        // SAFETY: reads the monotonic clock.
        let now = unsafe { b::dmr_now_ns() };
        let bucket = latency::bucket(now.saturating_sub(start_ns)) as u32;
        // SAFETY: `lat` was allocated by `attach` (the constructor fails without it)
        // and is freed only when no bio is in flight.
        unsafe { b::dmr_lat_add(self.lat, bucket) };
    }

    fn queue(&self, delay_ms: u64) {
        self.work.queue(delay_ms);
    }

    fn interval_ms() -> u64 {
        // SAFETY: a plain read of a module parameter.
        u64::from(unsafe { b::dmr_param_sample_interval_s() }.max(1)) * 1000
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.detach();
        if !self.lat.is_null() {
            // SAFETY: allocated by `attach`, freed once, here. The sampler drops with
            // the target, after `Remap::drop` destroyed the worker, and dm core
            // destroys a target only after its last bio completed: no `end_io` uses
            // the histogram any more.
            unsafe { b::dmr_lat_free(self.lat) };
            self.lat = core::ptr::null_mut();
        }
    }
}

fn now_ms() -> u64 {
    // SAFETY: reads the monotonic clock.
    unsafe { b::dmr_now_ms() }
}

/// The work item's entry point.
///
/// # Safety
/// `ctx` is the `Remap` the work item was created for, alive until it is destroyed.
unsafe extern "C" fn sample_fn(ctx: *mut core::ffi::c_void) {
    // SAFETY: per the contract.
    let t = unsafe { &*ctx.cast::<Remap>() };
    t.sample_step();
}

impl Remap {
    /// The counters a sample differences: the hot path's, the scan's.
    fn totals(&self) -> [Totals; 2] {
        let s = &self.stats;
        let f = &self.scan.fig;
        let io = s.io.get();
        [
            Totals {
                reads: io.reads,
                writes: io.writes,
                read_errors: s.main_read_errors.load(Relaxed),
                write_errors: s.main_write_errors.load(Relaxed),
            },
            Totals {
                reads: f.scanned.load(Relaxed),
                writes: 0,
                read_errors: f.failed_blocks.load(Relaxed),
                write_errors: 0,
            },
        ]
    }

    fn levels(&self) -> Levels {
        let (remapped, pending) = self.published.read(|s| {
            s.map_or((0, 0), |s| {
                s.items()
                    .iter()
                    .fold((0u64, 0u64), |(r, p), e| match e.state {
                        REMAPPED | FENCED | FENCED_MOVED => (r + 1, p),
                        PENDING => (r, p + 1),
                        _ => (r, p),
                    })
            })
        });
        Levels {
            remapped,
            pending,
            spare_free: self.mirror.free.load(Relaxed),
        }
    }

    /// Starts sampling (the first resume): the newest history on the spares is replayed
    /// and the counters now are the first interval's start. Every resume (and a failed
    /// suspend) allows history writes again.
    pub(crate) fn sampler_start(&self) {
        let sp = &self.sampler;
        if sp.started.swap(true, Relaxed) {
            sp.state.lock().quiet = false;
            return;
        }
        let interval = Sampler::interval_ms();
        {
            let mut st = sp.state.lock();
            st.quiet = false;
            self.restore_history(&mut st);
            st.then = self.totals();
            st.carry = Totals::default();
            st.due_ms = now_ms().saturating_add(interval);
            // SAFETY: `lat` is live; `hist_then` holds `BUCKETS` counters.
            unsafe { b::dmr_lat_sum(sp.lat, st.hist_then.as_mut_ptr()) };
        }
        sp.queue(interval);
    }

    /// Suspend: no history write from now until the next resume (a write in progress
    /// finishes first: it holds the mutex).
    pub(crate) fn sampler_quiet(&self) {
        self.sampler.state.lock().quiet = true;
    }

    /// Publishes what the engine reports for status.
    fn publish_health(&self, e: &Engine) {
        let f = &self.sampler.fig;
        let cur = e.current();
        f.level.store(level_code(cur.level), Relaxed);
        f.score
            .store(u32::from(sampling::health_score(cur)), Relaxed);
        f.ttf_s.store(cur.ttf_s.unwrap_or(u64::MAX), Relaxed);
        f.samples.store(e.samples(), Relaxed);
    }

    /// Reads or writes history slot `slot` (0 or 1) of spare `spare`.
    fn slot_io(&self, spare: u8, slot: usize, buf: &mut [u8], op: b::dmr_io_op) -> Result {
        let sector = SLOT_SECTORS.get(slot).copied().ok_or(EINVAL)?;
        self.sync_io(Dev::Spare(spare), sector, buf, SLOT_SECTOR_COUNT, op)
    }

    /// The pool's spares, as `slot_io` names them, but lost ones (`loss`): their device
    /// no longer answers.
    fn history_spares(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.nspares.min(MAX_SPARES))
            .filter_map(|i| u8::try_from(i).ok())
            .filter(|&i| !self.spare_is_lost(i))
    }

    /// Replays the newest valid history slot of the pool (both slots of every spare;
    /// a spare that missed writes holds older generations) through the (fresh) engine.
    /// The level changes it replays go to the alert log, not the kernel log.
    fn restore_history(&self, st: &mut State) {
        let State {
            engine,
            slots,
            log,
            log_len,
            log_head,
            changes,
            generation,
            next_slot,
            ..
        } = st;
        // The best so far: (spare, slot index, slot).
        let mut best: Option<(u8, usize, history::Slot)> = None;
        for spare in self.history_spares() {
            let (a, b) = slots.split_at_mut(SLOT_BYTES);
            let mut found = [None, None];
            for (i, (f, buf)) in found.iter_mut().zip([a, b]).enumerate() {
                if self
                    .slot_io(spare, i, buf, b::dmr_io_op_DMR_IO_READ)
                    .is_ok()
                {
                    *f = history::check(buf, &self.uuid);
                }
            }
            let Some(i) = history::newest(found) else {
                continue;
            };
            let Some(Some(slot)) = found.get(i).copied() else {
                continue;
            };
            if best.map_or(true, |(_, _, b)| slot.generation > b.generation) {
                best = Some((spare, i, slot));
            }
        }
        let Some((spare, i, slot)) = best else {
            return;
        };
        // Read again the one chosen (the buffer holds the last spare's slots).
        let Some(buf) = slots.get_mut(..SLOT_BYTES) else {
            return;
        };
        if self
            .slot_io(spare, i, buf, b::dmr_io_op_DMR_IO_READ)
            .is_err()
            || history::check(buf, &self.uuid) != Some(slot)
        {
            return;
        }
        let buf = slots.get(..SLOT_BYTES).unwrap_or(&[]);
        for k in 0..slot.count {
            let Some(s) = history::sample(buf, k) else {
                break;
            };
            if let Some(a) = engine.push(&s) {
                if let Some(slot) = log.get_mut(*log_head) {
                    *slot = a;
                }
                *log_head = (*log_head + 1) % ALERT_LOG;
                *log_len = (*log_len + 1).min(ALERT_LOG);
                *changes += 1;
            }
        }
        *generation = slot.generation.saturating_add(1);
        *next_slot = 1 - i;
        self.publish_health(engine);
        dminfo!(
            "{}: health history: {} samples restored from spare {}; alert level {}",
            self.main_name(),
            engine.samples(),
            spare,
            engine.current().level.as_str()
        );
    }

    /// Writes the engine's samples to the next history slot of every spare of the pool
    /// (unless suspended or read-only), so that the history survives the loss of any
    /// spare but the last (lost spares are left out). A failed write is counted and
    /// logged once until a write to every spare succeeds again, and in a pool has the
    /// worker check the spare for loss (`loss::suspect_spare`: a spare that still
    /// answers stays as it is). The generation moves on when at least one spare took
    /// the slot.
    fn write_history(&self, st: &mut State) {
        if st.quiet || !self.writable {
            return;
        }
        let State {
            engine,
            slots,
            generation,
            next_slot,
            ..
        } = st;
        let total = engine.samples();
        let first = total.saturating_sub(engine.health().ring.len() as u64);
        let Some(buf) = slots.get_mut(..SLOT_BYTES) else {
            return;
        };
        let e: &Engine = engine;
        if history::encode(
            buf,
            &self.uuid,
            *generation,
            (first..total).filter_map(|n| e.sample(n)),
        )
        .is_none()
        {
            return;
        }
        let (mut written, mut failed) = (0u32, None);
        for spare in self.history_spares() {
            match self.slot_io(spare, *next_slot, buf, b::dmr_io_op_DMR_IO_WRITE_FUA) {
                Ok(()) => written += 1,
                Err(e) => {
                    st.history_errors += 1;
                    // The worker checks whether the spare was lost (`loss`).
                    self.suspect_spare(spare);
                    failed.get_or_insert((spare, e));
                }
            }
        }
        if written > 0 {
            *generation = generation.saturating_add(1);
            *next_slot = 1 - (*next_slot & 1);
        }
        match failed {
            None => st.history_failing = false,
            Some((spare, e)) => {
                if !st.history_failing {
                    st.history_failing = true;
                    dmwarn!(
                        "{}: health history: write to spare {} failed ({:?}); {}",
                        self.main_name(),
                        spare,
                        e,
                        if written > 0 {
                            "the other spares hold it"
                        } else {
                            "the samples stay in memory"
                        }
                    );
                }
            }
        }
    }

    /// `clear_stats`: zeroes the I/O counters. Under the sampler's mutex, so that the
    /// counts since the previous sample still reach the next one.
    pub(crate) fn clear_stats(&self) {
        let mut st = self.sampler.state.lock();
        let s = &self.stats;
        let io = s.io.take();
        let old = Totals {
            reads: io.reads,
            writes: io.writes,
            read_errors: s.main_read_errors.swap(0, Relaxed),
            write_errors: s.main_write_errors.swap(0, Relaxed),
        };
        let grown = old.since(&st.then[0]);
        st.carry = st.carry.plus(&grown);
        st.then[0] = Totals::default();
        drop(st);
        s.clear();
    }

    /// One sample: the interval since the previous one, fed to the engine.
    pub(crate) fn sample_step(&self) {
        let sp = &self.sampler;
        let interval = Sampler::interval_ms();
        let levels = self.levels();
        let (changed, refused, next_ms) = {
            let mut guard = sp.state.lock();
            let st = &mut *guard;
            // The timer wakes at most an hour ahead (dmr_scanner_queue): not due yet,
            // wait for the rest.
            let now = now_ms();
            if now < st.due_ms {
                let rest = st.due_ms - now;
                drop(guard);
                sp.queue(rest);
                return;
            }
            // The next sample one interval after this one was due; after a long
            // delay (or a shorter interval), one interval from now.
            st.due_ms = st.due_ms.saturating_add(interval);
            if st.due_ms <= now {
                st.due_ms = now.saturating_add(interval);
            }
            let next_ms = st.due_ms - now;
            // SAFETY: reads the real-time clock.
            let t_s = unsafe { b::dmr_real_seconds() };
            let totals = self.totals();
            // SAFETY: `lat` is live; `hist_now` holds `BUCKETS` counters.
            unsafe { b::dmr_lat_sum(sp.lat, st.hist_now.as_mut_ptr()) };
            let hot = totals[0].plus(&st.carry);
            let sources = [(hot, st.then[0]), (totals[1], st.then[1])];
            let s = sampling::sample(t_s, &sources, &st.hist_now, &st.hist_then, &levels);
            st.then = totals;
            st.carry = Totals::default();
            core::mem::swap(&mut st.hist_now, &mut st.hist_then);
            let before = st.engine.samples();
            let alert = st.engine.push(&s);
            let taken = st.engine.samples() != before;
            if taken {
                self.write_history(st);
            }
            // Log the first refusal of a run of them (the clock went back).
            let refused = !taken && !st.refusing;
            st.refusing = !taken;
            self.publish_health(&st.engine);
            if let Some(a) = alert {
                if let Some(slot) = st.log.get_mut(st.log_head) {
                    *slot = a;
                }
                st.log_head = (st.log_head + 1) % ALERT_LOG;
                st.log_len = (st.log_len + 1).min(ALERT_LOG);
                st.changes += 1;
            }
            (alert, refused.then_some(t_s), next_ms)
        };
        if let Some(t) = refused {
            dmwarn!(
                "{}: health sample refused: the real-time clock went back (to {}); samples resume once it passes the last one",
                self.main_name(),
                t
            );
        }
        if let Some(a) = changed {
            if a.level >= Level::Warning {
                dmwarn!("{}: health alert: {}", self.main_name(), Shown(&a));
            } else {
                dminfo!("{}: health alert: {}", self.main_name(), Shown(&a));
            }
            self.raise_event();
        }
        sp.queue(next_ms);
    }

    /// The `health` answer: the reported state, the sampling figures, then one line
    /// per model.
    pub(crate) fn write_health(&self, out: &mut dyn Write) -> core::fmt::Result {
        let st = self.sampler.state.lock();
        let e = &st.engine;
        sampling::write_alert(out, e.current())?;
        // SAFETY: a plain read of a module parameter.
        let interval = unsafe { b::dmr_param_sample_interval_s() };
        let c = e.config();
        write!(
            out,
            " samples={} refused={} interval_s={} alerts={} history_errors={} unusable_ppm={} warning_days={} critical_days={} min_confidence={} raise_hold_s={} lower_hold_s={}",
            e.samples(),
            e.health().rejected,
            interval,
            st.changes,
            st.history_errors,
            c.unusable_ppb / 1000,
            c.warning_horizon_s / DAY_S,
            c.critical_horizon_s / DAY_S,
            c.min_confidence,
            c.raise_hold_s,
            c.lower_hold_s,
        )?;
        for v in e.verdicts() {
            out.write_char('\n')?;
            sampling::write_verdict(out, &v)?;
        }
        Ok(())
    }

    /// The `alerts` answer: the last level changes, oldest first, one per line (none:
    /// an empty answer).
    pub(crate) fn write_alerts(&self, out: &mut dyn Write) -> core::fmt::Result {
        let st = self.sampler.state.lock();
        let first = (st.log_head + ALERT_LOG - st.log_len) % ALERT_LOG;
        for i in 0..st.log_len {
            if let Some(a) = st.log.get((first + i) % ALERT_LOG) {
                if i > 0 {
                    out.write_char('\n')?;
                }
                sampling::write_alert(out, a)?;
            }
        }
        Ok(())
    }

    /// The `samples [<from>]` answer: the trace header, then the samples held from
    /// number `from` on (the oldest held, when `from` is older), at most
    /// [`SAMPLES_MAX`], then `next=<n>` or `end`.
    pub(crate) fn write_samples(&self, out: &mut dyn Write, from: u64) -> core::fmt::Result {
        let st = self.sampler.state.lock();
        let e = &st.engine;
        let total = e.samples();
        let held = e.health().ring.len() as u64;
        let mut n = from.max(total.saturating_sub(held));
        out.write_str(TRACE_HEADER)?;
        let stop = n.saturating_add(SAMPLES_MAX).min(total);
        while n < stop {
            if let Some(s) = e.sample(n) {
                out.write_char('\n')?;
                s.write_row(out)?;
            }
            n += 1;
        }
        if n < total {
            write!(out, "\nnext={n}")
        } else {
            out.write_str("\nend")
        }
    }

    /// The prediction fields of the status line: health score, alert level, time to
    /// failure (s, or `-`), samples taken.
    pub(crate) fn write_health_info(&self, out: &mut dyn Write) -> core::fmt::Result {
        let f = &self.sampler.fig;
        write!(
            out,
            "{} {} ",
            f.score.load(Relaxed),
            level_name(f.level.load(Relaxed))
        )?;
        match f.ttf_s.load(Relaxed) {
            u64::MAX => out.write_char('-')?,
            v => write!(out, "{v}")?,
        }
        write!(out, " {}", f.samples.load(Relaxed))
    }
}
