//! Failure prediction: fixed-point models over a device's health statistics, an
//! ensemble, and alert levels with hysteresis.
//!
//! [`Engine::push`] takes one [`Sample`] per interval. Every sample updates the
//! statistics, a window of the last 24 clock hours and the hourly sums of the last 15
//! days, and runs the threshold model (absolute levels: spare left, error rate, pending
//! blocks). When a sample opens a new day the day-level models run over the closed days
//! and those hourly sums (see `models`): the error-rate trend (linear and exponential
//! fits, weighted by how well each predicted the last days: a backtest on the history)
//! and the baseline model (the device against its own past: new bad blocks coming
//! several times as fast as they used to), spare exhaustion, the daily periodic pattern and load-normalised
//! latency. Rules about duration and spread count clock time, not samples, so any
//! sampling interval gives the same verdicts. Each model returns a [`Verdict`]; the
//! ensemble takes the most severe one whose confidence supports its level, and
//! hysteresis turns that into the reported [`Alert`].
//!
//! Work per sample is bounded, whatever the interval: the sample that closes a day
//! takes the day's medians (at most 32 samples, sorted; a longer day's are found over
//! the next samples, see [`Health::median_step`]) and caches the day's logarithms; the
//! day-level models then run over the following samples, one [`Phase`] (or one step of
//! the periodic model) per sample, and their verdicts are published together when the
//! last one is done. No allocation, no floats, deterministic: the same samples give the
//! same alerts on every machine.

mod fit;
mod models;

use super::fixed;
use super::stats::{Health, Pushed, Sample, DAY_S};

/// No time-to-failure: no growth, or no forecast.
pub const NO_TTF: u64 = u64::MAX;

/// Alert levels, in increasing severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    /// Nothing to report.
    #[default]
    Info,
    /// Something seen (errors, remaps, a slow trend); no action needed.
    Notice,
    /// Degradation established: failure or spare exhaustion forecast within the
    /// warning horizon. Plan the replacement, check backups.
    Warning,
    /// Failure or spare exhaustion forecast within days. Replace the disk now.
    Critical,
    /// Failing now: spare exhausted, unusable error rate, or failure within a day.
    /// Copy the data off.
    Emergency,
}

impl Level {
    /// Lower-case name, as in status lines and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Notice => "notice",
            Level::Warning => "warning",
            Level::Critical => "critical",
            Level::Emergency => "emergency",
        }
    }
}

/// The model behind a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    /// Absolute levels and rate limits.
    #[default]
    Threshold,
    /// Least-squares line.
    Linear,
    /// Log-linear fit: exponential growth.
    Exponential,
    /// Daily periodic pattern.
    Periodic,
    /// Load-normalised latency trend.
    Latency,
    /// New bad blocks against the device's own past.
    Baseline,
}

impl Model {
    /// Lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Model::Threshold => "threshold",
            Model::Linear => "linear",
            Model::Exponential => "exponential",
            Model::Periodic => "periodic",
            Model::Latency => "latency",
            Model::Baseline => "baseline",
        }
    }
}

/// Why a verdict has its level. [`Verdict::detail`] qualifies some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reason {
    /// No sign of trouble.
    #[default]
    Healthy,
    /// Errors in the last day, no trend (detail: errors in the last 24 h).
    ErrorsSeen,
    /// Blocks known bad and waiting for a write (detail: count).
    PendingBlocks,
    /// Over half the spare used (detail: permille used).
    SpareUsed,
    /// Spare nearly used up (detail: permille used).
    SpareLow,
    /// No free spare block left.
    SpareExhausted,
    /// The error rate of the last 24 h is at the unusable level (detail: ppb).
    ErrorRateUnusable,
    /// The error rate grows linearly (detail: ppb per day).
    ErrorRateTrend,
    /// The error rate grows exponentially (detail: doubling time, seconds).
    ErrorRateGrowth,
    /// Remaps consume the spare (detail: remaps per day).
    SpareTrend,
    /// Errors recur at the same hours, not growing (detail: first hour of the window).
    RecurringErrors,
    /// Errors recur at the same hours and grow (detail: first hour of the window).
    PeriodicWorsening,
    /// Errors recur at the same hours and grew from one week to the next, leaving bad
    /// blocks (detail: how many times the rate of the week before, permille).
    PeriodicGrowing,
    /// p99 latency rises at steady load (detail: percent per day).
    LatencyRising,
    /// New bad blocks over the last two weeks, several times the device's own past
    /// rate and still coming (detail: how many times, permille).
    BadBlocksGrowing,
}

impl Reason {
    /// Stable identifier.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Healthy => "healthy",
            Reason::ErrorsSeen => "errors_seen",
            Reason::PendingBlocks => "pending_blocks",
            Reason::SpareUsed => "spare_used",
            Reason::SpareLow => "spare_low",
            Reason::SpareExhausted => "spare_exhausted",
            Reason::ErrorRateUnusable => "error_rate_unusable",
            Reason::ErrorRateTrend => "error_rate_trend",
            Reason::ErrorRateGrowth => "error_rate_growth",
            Reason::SpareTrend => "spare_trend",
            Reason::RecurringErrors => "recurring_errors",
            Reason::PeriodicWorsening => "periodic_worsening",
            Reason::PeriodicGrowing => "periodic_growing",
            Reason::LatencyRising => "latency_rising",
            Reason::BadBlocksGrowing => "bad_blocks_growing",
        }
    }
}

/// One model's opinion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Level this model supports.
    pub level: Level,
    /// Forecast seconds to failure (to spare exhaustion for [`Reason::SpareTrend`]),
    /// from the time the verdict was made; [`NO_TTF`] when none.
    pub ttf_s: u64,
    /// Confidence, permille.
    pub confidence: u16,
    /// The model.
    pub model: Model,
    /// The reason.
    pub reason: Reason,
    /// Reason-specific figure (see [`Reason`]).
    pub detail: i64,
}

impl Verdict {
    const fn info(model: Model, reason: Reason) -> Verdict {
        Verdict {
            level: Level::Info,
            ttf_s: NO_TTF,
            confidence: 0,
            model,
            reason,
            detail: 0,
        }
    }
}

/// Tunables. [`Config::DEFAULT`] is what the module uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Error rate at which the device counts as failed, ppb of I/Os.
    pub unusable_ppb: u64,
    /// Forecasts within this many seconds raise a warning.
    pub warning_horizon_s: u64,
    /// ... a critical alert.
    pub critical_horizon_s: u64,
    /// ... an emergency.
    pub emergency_horizon_s: u64,
    /// ... a notice.
    pub notice_horizon_s: u64,
    /// Confidence (permille) a forecast needs for warning or critical.
    pub min_confidence: u16,
    /// A higher level (below emergency) must hold this long before it is reported.
    pub raise_hold_s: u64,
    /// A lower level must hold this long before the reported level drops.
    pub lower_hold_s: u64,
    /// How many times its own past rate of new bad blocks a device's recent rate must
    /// be for the baseline model.
    pub baseline_ratio: u16,
}

impl Config {
    /// Defaults: unusable at 0.1% failed I/O; warning within 90 days, critical within 7,
    /// emergency within 1; confidence 600‰; raise after 2 h, lower after 48 h; bad
    /// blocks coming 6 times as fast as in the device's own past.
    pub const DEFAULT: Config = Config {
        unusable_ppb: 1_000_000,
        warning_horizon_s: 90 * DAY_S,
        critical_horizon_s: 7 * DAY_S,
        emergency_horizon_s: DAY_S,
        notice_horizon_s: 365 * DAY_S,
        min_confidence: 600,
        raise_hold_s: 2 * 3600,
        lower_hold_s: 2 * DAY_S,
        baseline_ratio: 6,
    };
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The level a forecast of `ttf_s` with confidence `conf` supports.
fn level_for(ttf_s: u64, conf: u16, cfg: &Config) -> Level {
    if conf >= cfg.min_confidence {
        if ttf_s <= cfg.emergency_horizon_s && conf >= 700 {
            return Level::Emergency;
        }
        if ttf_s <= cfg.critical_horizon_s {
            return Level::Critical;
        }
        if ttf_s <= cfg.warning_horizon_s {
            return Level::Warning;
        }
    }
    if conf >= 300 && ttf_s <= cfg.notice_horizon_s {
        return Level::Notice;
    }
    Level::Info
}

/// What the engine reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    /// Time of the sample that produced it.
    pub t_s: u64,
    /// Reported level (after hysteresis).
    pub level: Level,
    /// Forecast seconds to failure, if a confident model has one.
    pub ttf_s: Option<u64>,
    /// Forecast seconds to spare exhaustion, if remaps consume the spare.
    pub tts_s: Option<u64>,
    /// Confidence of the deciding verdict, permille.
    pub confidence: u16,
    /// The deciding model.
    pub model: Model,
    /// The deciding reason.
    pub reason: Reason,
    /// Reason-specific figure.
    pub detail: i64,
}

/// Hours the threshold model's window covers.
const WINDOW_HOURS: usize = 24;
/// Hours of the window whose own error rate must be at least half the unusable rate
/// before an unusable rate over the window is an emergency: half the day, so that a
/// glitch or a burst of hours (a cable, a controller reset), even with scattered errors
/// in other hours, does not count, however often the device samples.
const EMERGENCY_HOT_HOURS: u32 = 12;
/// New bad blocks (remapped + pending) over the window before an unusable error rate is
/// an emergency: a device failing now is losing blocks; errors that leave none (link
/// resets, timeouts, a full thin pool's ENOSPC) are not a failing medium.
const EMERGENCY_NEW_BAD_BLOCKS: u32 = 3;
/// Closed days whose median I/Os per day is the device's usual load, against which an
/// unusable error rate must hold too before it is an emergency (a week: weekdays and a
/// weekend).
const USUAL_LOAD_DAYS: usize = 7;
/// Days (observed in at least 12 clock hours) the usual load needs.
const USUAL_LOAD_MIN_DAYS: usize = 3;

/// One clock hour of the threshold model's window.
#[derive(Debug, Clone, Copy, Default)]
struct HourSlot {
    /// Hour number (`t_s / 3600`) the sums are for.
    hour: u64,
    ios: u64,
    /// Failed I/Os of the hour (saturating).
    errors: u32,
    /// The lowest bad-block level (remapped + pending, saturating) of the hour's samples.
    bad_lo: u32,
}

/// Sums per clock hour over the last [`WINDOW_HOURS`] hours: time-based, so the same
/// errors give the same figures whether the device samples every minute or every
/// hour, and a sample costs the same after any gap.
#[derive(Debug, Clone, Copy)]
struct Window {
    slots: [HourSlot; WINDOW_HOURS],
}

/// What the window holds.
#[derive(Debug, Clone, Copy, Default)]
struct WindowSums {
    ios: u64,
    errors: u64,
    /// Hours of the window observed.
    hours: u64,
    /// The lowest bad-block level of the window's hours.
    bad_lo: u32,
}

impl Window {
    const fn new() -> Self {
        Window {
            slots: [HourSlot {
                hour: u64::MAX,
                ios: 0,
                errors: 0,
                bad_lo: u32::MAX,
            }; WINDOW_HOURS],
        }
    }

    fn add(&mut self, s: &Sample) {
        let h = s.t_s / 3600;
        if let Some(slot) = self.slots.get_mut((h % WINDOW_HOURS as u64) as usize) {
            if slot.hour != h {
                *slot = HourSlot {
                    hour: h,
                    ios: 0,
                    errors: 0,
                    bad_lo: u32::MAX,
                };
            }
            slot.ios = slot.ios.saturating_add(s.ios());
            let errors = u32::try_from(s.errors()).unwrap_or(u32::MAX);
            slot.errors = slot.errors.saturating_add(errors);
            slot.bad_lo = slot.bad_lo.min(bad_level(s));
        }
    }

    /// Whether the slot holds an hour of `now_h - 23 ..= now_h`.
    const fn live(slot: &HourSlot, now_h: u64) -> bool {
        slot.hour <= now_h && now_h - slot.hour < WINDOW_HOURS as u64
    }

    /// The sums over the hours `now_h - 23 ..= now_h`.
    fn sums(&self, now_h: u64) -> WindowSums {
        let mut w = WindowSums {
            bad_lo: u32::MAX,
            ..WindowSums::default()
        };
        for slot in self.slots.iter().filter(|x| Self::live(x, now_h)) {
            w.ios = w.ios.saturating_add(slot.ios);
            w.errors = w.errors.saturating_add(u64::from(slot.errors));
            w.hours += 1;
            w.bad_lo = w.bad_lo.min(slot.bad_lo);
        }
        w
    }

    /// Hours of `now_h - 23 ..= now_h` that are hot: errors at least half
    /// `unusable_ppb` of the hour's I/Os, or of the window's mean I/Os per observed
    /// hour when that is more (the open hour, or an idle one, is not hot through a
    /// single error). `w` is [`Window::sums`] for `now_h`.
    fn hot_hours(&self, now_h: u64, w: &WindowSums, unusable_ppb: u64) -> u32 {
        let mean = w.ios.checked_div(w.hours).unwrap_or(0);
        let mut hot = 0;
        for slot in self.slots.iter().filter(|x| Self::live(x, now_h)) {
            // errors / ios >= unusable / 2 / 10^9, without division.
            hot += u32::from(
                slot.errors > 0
                    && u128::from(slot.errors) * 2_000_000_000
                        >= u128::from(slot.ios.max(mean)) * u128::from(unusable_ppb),
            );
        }
        hot
    }
}

/// A sample's bad-block level: remapped plus pending blocks, saturated to `u32`.
fn bad_level(s: &Sample) -> u32 {
    u32::try_from(s.remapped_total.saturating_add(s.pending_total)).unwrap_or(u32::MAX)
}

/// Hysteresis state.
#[derive(Debug, Clone, Copy, Default)]
struct Hold {
    /// Since when the candidate has been above the reported level, and the lowest
    /// candidate level seen since (what may be reported).
    up: Option<(u64, u32, Level)>,
    /// Since when the candidate has been below, and the highest candidate seen since.
    down: Option<(u64, Level)>,
}

/// A phase of the day-level work. After a day closes, the following samples run one
/// phase (or one step of a phase) each, so no sample pays for all the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Nothing pending.
    #[default]
    Idle,
    /// The closed day's medians, when it had more than 32 samples: a step of a pass
    /// over its samples (at most 96; see [`Health::median_step`]).
    Medians,
    /// The error-rate trend (linear and exponential fits, backtests), then spare
    /// exhaustion (which uses the trend's doubling time).
    Trend,
    /// The daily periodic pattern, in two steps: the last 14 days' hourly sums folded
    /// by hour of day, the peak window and its per-day sums; then their fit.
    Periodic,
    /// Load-normalised latency; then the new verdicts are published together.
    Latency,
}

/// Day-level work under way: the verdicts computed so far, published together when the
/// last phase is done.
#[derive(Debug, Clone, Copy)]
struct DayWork {
    /// The phase the next sample runs.
    next: Phase,
    /// A day closed while the work was under way: start over once it is published.
    again: bool,
    /// Time of the sample that closed the day the work is for.
    t: u64,
    trend: models::Trend,
    spare: Verdict,
    /// The periodic model's window, between its two steps.
    window: Option<models::PeriodicWindow>,
    periodic: Verdict,
}

/// The per-device prediction engine. Its size is checked to stay within 64 KiB.
#[derive(Debug, Clone)]
pub struct Engine {
    cfg: Config,
    health: Health,
    seq: u64,
    win: Window,
    /// Errors and I/Os per clock hour of the last days, for the periodic model.
    hours: models::HourDays,
    /// Day-level verdicts: trend, spare, periodic, latency; and when they were made.
    day_verdicts: [Verdict; 4],
    day_t: u64,
    work: DayWork,
    /// Per-day figures of the newest closed days (their log2s), for the models.
    cache: models::DayCache,
    skill: [u16; 2],
    threshold: Verdict,
    hold: Hold,
    current: Alert,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new(Config::DEFAULT)
    }
}

impl Engine {
    /// Replaces the tunables: a fresh engine's before its first sample (the kernel
    /// copies a fresh engine made with [`Config::DEFAULT`] and sets the module
    /// parameters' values); later, the next verdicts use them.
    pub fn set_config(&mut self, cfg: Config) {
        self.cfg = cfg;
    }

    /// The tunables.
    pub const fn config(&self) -> &Config {
        &self.cfg
    }

    /// A fresh engine.
    pub const fn new(cfg: Config) -> Self {
        let info = Verdict::info(Model::Threshold, Reason::Healthy);
        Engine {
            cfg,
            health: Health::new(),
            seq: 0,
            win: Window::new(),
            hours: models::HourDays::new(),
            day_verdicts: [info; 4],
            day_t: 0,
            work: DayWork {
                next: Phase::Idle,
                again: false,
                t: 0,
                trend: models::Trend::NONE,
                spare: info,
                window: None,
                periodic: info,
            },
            cache: models::DayCache::new(),
            skill: [0, 0],
            threshold: info,
            hold: Hold {
                up: None,
                down: None,
            },
            current: Alert {
                t_s: 0,
                level: Level::Info,
                ttf_s: None,
                tts_s: None,
                confidence: 0,
                model: Model::Threshold,
                reason: Reason::Healthy,
                detail: 0,
            },
        }
    }

    /// The statistics behind the engine.
    pub const fn health(&self) -> &Health {
        &self.health
    }

    /// Samples taken so far (those refused for going back in time not counted): the
    /// ring holds numbers `samples() - ring.len() .. samples()`.
    pub const fn samples(&self) -> u64 {
        self.seq
    }

    /// Sample number `n` (0: the first one taken), while the ring still holds it.
    pub fn sample(&self, n: u64) -> Option<Sample> {
        let age = self.seq.checked_sub(n)?.checked_sub(1)?;
        self.health.ring.get(usize::try_from(age).ok()?)
    }

    /// The reported state after the last sample.
    pub const fn current(&self) -> &Alert {
        &self.current
    }

    /// The current verdict of every model: threshold, trend (linear or exponential),
    /// spare, periodic, latency.
    pub fn verdicts(&self) -> [Verdict; 5] {
        let [a, b, c, d] = self.day_verdicts;
        [self.threshold, a, b, c, d]
    }

    /// Backtest skill (permille) of the linear and exponential error-rate fits.
    pub const fn skill(&self) -> [u16; 2] {
        self.skill
    }

    /// Feeds one sample. Returns the new alert when the reported level changed.
    /// Samples whose time goes backwards are ignored.
    pub fn push(&mut self, s: &Sample) -> Option<Alert> {
        if self.health.ring.latest().is_some_and(|l| s.t_s < l.t_s) {
            self.health.rejected = self.health.rejected.saturating_add(1);
            return None;
        }
        // At most one phase (or step) of day-level work per sample. A sample that closes
        // a day runs none, unless the previous day's work is still under way (a day of
        // a few samples: its medians and logarithms cost little).
        let closed = self.health.push(s) == Pushed::ClosedDay;
        if closed {
            self.day_closed(s.t_s);
        } else if self.health.median_pending() {
            if self.health.median_step() {
                self.cache_newest_day();
            }
        } else {
            self.day_step();
        }
        self.win.add(s);
        self.hours.add(s);
        self.seq += 1;
        self.threshold = self.threshold_model(s);
        self.decide(s.t_s)
    }

    /// The phase of day-level work the next sample runs ([`Phase::Idle`]: none), unless
    /// it closes a day. A sample that closes a day takes the day's medians (or starts
    /// finding them, [`Phase::Medians`]) and logarithms; the next ones run the trend
    /// and spare models, the periodic model in steps, and the latency model, which
    /// publishes the new verdicts together.
    pub const fn day_phase(&self) -> Phase {
        if self.health.median_pending() {
            Phase::Medians
        } else {
            self.work.next
        }
    }

    /// Derives the newest closed day's figures, once its medians are known.
    fn cache_newest_day(&mut self) {
        if let Some(d) = self.health.daily.get(0) {
            self.cache.push(&d);
        }
    }

    /// A day closed at `now`: its models run over the next samples. When work for an
    /// earlier day is still under way it goes on (over the newer history from here)
    /// and starts over once published, so that with long intervals the verdicts are
    /// still published every few samples.
    fn day_closed(&mut self, now: u64) {
        let pending = self.health.median_pending();
        if !pending {
            self.cache_newest_day();
        }
        if self.work.next == Phase::Idle {
            self.work.next = Phase::Trend;
            self.work.t = now;
        } else {
            self.work.again = true;
            if !pending {
                self.day_step();
            }
        }
    }

    /// Runs the pending phase (or step) of day-level work, if any.
    fn day_step(&mut self) {
        let cfg = &self.cfg;
        let h = &self.health;
        let w = &mut self.work;
        match w.next {
            Phase::Idle | Phase::Medians => {}
            Phase::Trend => {
                w.trend = models::trend(&h.daily, &self.cache, cfg);
                w.spare = models::spare(&h.daily, &w.trend, cfg);
                if models::periodic_observed(&h.daily) {
                    w.next = Phase::Periodic;
                } else {
                    w.periodic = Verdict::info(Model::Periodic, Reason::Healthy);
                    w.next = Phase::Latency;
                }
            }
            Phase::Periodic => match w.window.take() {
                None => match models::periodic_window(&self.hours, &h.daily) {
                    Ok(win) => w.window = Some(win),
                    Err(v) => {
                        w.periodic = v;
                        w.next = Phase::Latency;
                    }
                },
                Some(win) => {
                    w.periodic = win.fit(&h.daily, cfg);
                    w.next = Phase::Latency;
                }
            },
            Phase::Latency => {
                let latency = models::latency(&h.daily, &self.cache, cfg);
                self.skill = w.trend.skill;
                self.day_verdicts = [w.trend.verdict, w.spare, w.periodic, latency];
                self.day_t = w.t;
                if w.again {
                    w.again = false;
                    w.next = Phase::Trend;
                    w.t = h.ring.latest().map_or(w.t, |l| l.t_s);
                } else {
                    w.next = Phase::Idle;
                }
            }
        }
    }

    /// Absolute levels, as SMART thresholds: spare left, the last 24 h error rate
    /// (sustained: half of the hours near the unusable rate themselves, which rules out
    /// a glitch or a burst of hours), pending blocks.
    fn threshold_model(&self, s: &Sample) -> Verdict {
        let mut v = Verdict::info(Model::Threshold, Reason::Healthy);
        let mut set = |level: Level, reason: Reason, detail: i64, ttf: u64| {
            if level > v.level {
                v = Verdict {
                    level,
                    ttf_s: ttf,
                    confidence: 1000,
                    model: Model::Threshold,
                    reason,
                    detail,
                };
            }
        };
        let free = s.spare_free_blocks;
        let used = s.remapped_total;
        let total = free.saturating_add(used);
        if used > 0 {
            let pm = fixed::ratio_permille(u128::from(used), u128::from(total));
            if free == 0 {
                set(Level::Emergency, Reason::SpareExhausted, i64::from(pm), 0);
            } else if pm >= 950 {
                set(Level::Critical, Reason::SpareLow, i64::from(pm), NO_TTF);
            } else if pm >= 800 {
                set(Level::Warning, Reason::SpareLow, i64::from(pm), NO_TTF);
            } else if pm >= 500 {
                set(Level::Notice, Reason::SpareUsed, i64::from(pm), NO_TTF);
            }
        }
        let now_h = s.t_s / 3600;
        let w = self.win.sums(now_h);
        if w.errors > 0 && w.ios > 0 {
            let rate = fixed::mul_div(
                w.errors.min(1 << 40) as i64,
                1_000_000_000,
                w.ios.min(i64::MAX as u64) as i64,
            )
            .unwrap_or(0);
            if rate as u64 >= self.cfg.unusable_ppb
                && self.win.hot_hours(now_h, &w, self.cfg.unusable_ppb) >= EMERGENCY_HOT_HOURS
                && bad_level(s).saturating_sub(w.bad_lo) >= EMERGENCY_NEW_BAD_BLOCKS
                && self.unusable_at_usual_load(&w)
            {
                set(Level::Emergency, Reason::ErrorRateUnusable, rate, 0);
            } else {
                set(Level::Notice, Reason::ErrorsSeen, w.errors as i64, NO_TTF);
            }
        }
        if s.pending_total > 0 {
            set(
                Level::Notice,
                Reason::PendingBlocks,
                s.pending_total as i64,
                NO_TTF,
            );
        }
        v
    }

    /// Whether the window's errors are at the unusable rate of the device's usual load
    /// too, not only of the window's own I/Os: a quiet day (a weekend, an idle spell)
    /// makes a rate out of few I/Os, and a steady trickle of errors from a background
    /// weakness, which does not follow the load, then reads as unusable; a medium that
    /// fails now fails at its usual load as well. The usual load is the median I/Os
    /// per day of the last [`USUAL_LOAD_DAYS`] closed days observed in at least 12
    /// clock hours (each scaled to 24 hours), scaled to the hours the window observed;
    /// the window's errors are compared with the larger of that and the window's I/Os.
    /// With fewer than [`USUAL_LOAD_MIN_DAYS`] such days (a new device, one sampled a
    /// few times a day) the window's own rate stands. Bounded: 7 days, sorted.
    #[cold]
    #[inline(never)]
    fn unusable_at_usual_load(&self, w: &WindowSums) -> bool {
        let mut per_day = [0u64; USUAL_LOAD_DAYS];
        let mut n = 0usize;
        for age in 0..USUAL_LOAD_DAYS {
            let Some(d) = self.health.daily.get(age) else {
                break;
            };
            if d.hours < 12 {
                continue;
            }
            if let Some(slot) = per_day.get_mut(n) {
                *slot = d.ios.saturating_mul(24) / u64::from(d.hours);
                n += 1;
            }
        }
        let Some(days) = per_day.get_mut(..n) else {
            return true;
        };
        if n < USUAL_LOAD_MIN_DAYS {
            return true;
        }
        days.sort_unstable();
        let median = days.get((n - 1) / 2).copied().unwrap_or(0);
        let usual = median.saturating_mul(w.hours.min(24)) / 24;
        let ios = w.ios.max(usual);
        // errors / ios >= unusable / 10^9, without division.
        u128::from(w.errors) * 1_000_000_000 >= u128::from(ios) * u128::from(self.cfg.unusable_ppb)
    }

    /// The ensemble: every verdict's forecast is aged by the time since it was made,
    /// its level recomputed, and the most severe (then most confident) one decides.
    fn decide(&mut self, now: u64) -> Option<Alert> {
        let elapsed = now.saturating_sub(self.day_t);
        let mut best = self.threshold;
        let mut ttf = (self.threshold.ttf_s != NO_TTF).then_some(self.threshold.ttf_s);
        let mut tts: Option<u64> = None;
        for v in self.day_verdicts {
            let mut v = v;
            if v.ttf_s != NO_TTF {
                v.ttf_s = v.ttf_s.saturating_sub(elapsed);
                let floor = if v.level >= Level::Notice {
                    Level::Notice
                } else {
                    Level::Info
                };
                v.level = level_for(v.ttf_s, v.confidence, &self.cfg).max(floor);
                if v.reason == Reason::SpareTrend {
                    if v.confidence >= 300 {
                        tts = Some(tts.map_or(v.ttf_s, |t: u64| t.min(v.ttf_s)));
                    }
                } else if v.confidence >= self.cfg.min_confidence {
                    ttf = Some(ttf.map_or(v.ttf_s, |t: u64| t.min(v.ttf_s)));
                }
            }
            if (v.level, v.confidence) > (best.level, best.confidence) {
                best = v;
            }
        }
        let level = self.hysteresis(best.level, now);
        let changed = level != self.current.level;
        self.current = Alert {
            t_s: now,
            level,
            ttf_s: ttf,
            tts_s: tts,
            confidence: best.confidence,
            model: best.model,
            reason: best.reason,
            detail: best.detail,
        };
        changed.then_some(self.current)
    }

    fn hysteresis(&mut self, cand: Level, now: u64) -> Level {
        let cur = self.current.level;
        if cand > cur {
            self.hold.down = None;
            if cand == Level::Emergency {
                self.hold.up = None;
                return cand;
            }
            let (since, n, low) = match self.hold.up {
                Some((t, n, l)) => (t, n.saturating_add(1), l.min(cand)),
                None => (now, 1, cand),
            };
            if n >= 2 && now.saturating_sub(since) >= self.cfg.raise_hold_s {
                self.hold.up = None;
                return low;
            }
            self.hold.up = Some((since, n, low));
            cur
        } else if cand < cur {
            self.hold.up = None;
            let (since, high) = match self.hold.down {
                Some((t, h)) => (t, h.max(cand)),
                None => (now, cand),
            };
            if now.saturating_sub(since) >= self.cfg.lower_hold_s {
                self.hold.down = None;
                return high;
            }
            self.hold.down = Some((since, high));
            cur
        } else {
            self.hold = Hold::default();
            cur
        }
    }
}

#[cfg(test)]
mod tests;
