//! The day-level models: error-rate trend (linear and exponential, chosen by
//! backtest; or the baseline model's new bad blocks), spare exhaustion,
//! periodic pattern, and latency degradation. They run after a day closes, one per
//! sample, over the daily history, the per-day figures cached when each day closed
//! ([`DayCache`]) or the hourly sums of the last days ([`HourDays`]), and each returns
//! a [`Verdict`].

use super::super::fixed;
use super::super::stats::{Daily, Day, Sample, DAY_S};
use super::fit::{least_squares, Fit, Series};
use super::{level_for, Config, Model, Reason, Verdict, NO_TTF};

const PPB: i64 = 1_000_000_000;
/// Days of history the error-rate trend fits.
pub(super) const TREND_DAYS: usize = 14;
/// New bad blocks (growth of the remapped count) over the fitted days below which the
/// trend models' confidence is halved.
const TREND_BAD_BLOCKS: u32 = 3;
/// Days needed before the trend models speak.
const MIN_DAYS: usize = 5;
/// Days the backtest holds out.
const HOLDOUT: usize = 3;
/// Days the spare model fits.
const SPARE_DAYS: usize = 7;
/// Days the periodic model folds.
const PERIODIC_DAYS: u64 = 14;
/// Widest peak window of the periodic model, hours: a third of the day (errors spread
/// evenly put a third of them there).
const PEAK_HOURS_MAX: usize = 8;
/// Share of the folded errors (permille) the peak window must hold.
const PEAK_SHARE: u32 = 600;
/// Days (with I/O in the peak window) the periodic fit needs: a week, so that a
/// pattern is seen recurring on its days, and a fit of a few points on a new device
/// (a spell of errors in its first days) is not taken for a trend.
const PERIODIC_MIN_DAYS: usize = 7;
/// Growth of the peak window's errors from the older to the newer week of the folded
/// days, times, with the newer week's largest day left out.
const PERIODIC_GROWTH: u128 = 2;
/// Errors the peak window must hold in the newer week for the growth rule.
const PERIODIC_GROWTH_MIN: u64 = 20;
/// Days of the newer week with errors in the peak window, for the growth rule.
const PERIODIC_GROWTH_DAYS: usize = 4;
/// Standard deviations (numerator, denominator) by which the peak window's hours with
/// errors must exceed its share of the day's for the growth rule.
const PERIODIC_HOURS_Z: (u64, u64) = (3, 1);
/// Days the latency model looks back over.
const LATENCY_DAYS: usize = 21;
/// Steady days the latency model needs.
const LATENCY_MIN_DAYS: usize = 7;
/// Days at another load the latency model skips in a row (a weekend); more end the
/// days it fits (a load shift).
const LATENCY_GAP_DAYS: usize = 2;
/// ln 2 in Q16.
const LN2_Q16: i64 = 45_426;

/// Error rate in ppb, clamped to `[0, 2^31)`; `None` without I/O.
fn rate_ppb(errors: u64, ios: u64) -> Option<i64> {
    if ios == 0 {
        return None;
    }
    let e = errors.min(1 << 40) as i64;
    let ios = ios.min(i64::MAX as u64) as i64;
    fixed::mul_div(e, PPB, ios).map(|r| r.clamp(0, (1 << 31) - 1))
}

/// log2 of the error rate in ppb with half an error added (so error-free days have a
/// finite, load-dependent floor), Q16; `None` without I/O.
fn log_rate_q16(errors: u64, ios: u64) -> Option<i64> {
    if ios == 0 {
        return None;
    }
    let e2 = errors.min(1 << 40).saturating_mul(2).saturating_add(1) as i64;
    let ios2 = ios.min(1 << 61).saturating_mul(2) as i64;
    let r = fixed::mul_div(e2, PPB, ios2)?.max(1);
    fixed::log2_q16(r as u64)
}

/// What the models derive from one closed day; the log2s are the costly part, so they
/// are computed once, when the day closes, and kept for [`CACHE_DAYS`] days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Derived {
    /// The day these figures are for.
    day: u32,
    /// [`rate_ppb`] of the day.
    rate: Option<i64>,
    /// [`log_rate_q16`] of the day.
    log_rate: Option<i64>,
    /// log2(median p99) - log2(median I/Os) / 2, Q16, when both medians are non-zero.
    lat_y: Option<i64>,
}

impl Derived {
    const NONE: Derived = Derived {
        day: u32::MAX,
        rate: None,
        log_rate: None,
        lat_y: None,
    };

    /// The figures of `d`.
    pub(super) fn of(d: &Day) -> Derived {
        let lat_y = match (
            fixed::log2_q16(u64::from(d.lat_p99_med)),
            fixed::log2_q16(u64::from(d.ios_med)),
        ) {
            (Some(l), Some(m)) => Some(l - m / 2),
            _ => None,
        };
        Derived {
            day: d.day,
            rate: rate_ppb(d.errors, d.ios),
            log_rate: log_rate_q16(d.errors, d.ios),
            lat_y,
        }
    }
}

/// Days of [`Derived`] figures kept: as many as any model looks back over.
pub(super) const CACHE_DAYS: usize = if LATENCY_DAYS > TREND_DAYS {
    LATENCY_DAYS
} else {
    TREND_DAYS
};

/// [`Derived`] figures of the newest closed days, pushed as each day closes.
#[derive(Debug, Clone, Copy)]
pub(super) struct DayCache {
    days: [Derived; CACHE_DAYS],
    /// Slot the next day goes to.
    head: usize,
}

impl DayCache {
    pub(super) const fn new() -> Self {
        DayCache {
            days: [Derived::NONE; CACHE_DAYS],
            head: 0,
        }
    }

    /// Records the figures of a day that just closed.
    pub(super) fn push(&mut self, d: &Day) {
        if let Some(slot) = self.days.get_mut(self.head) {
            *slot = Derived::of(d);
        }
        self.head = (self.head + 1) % CACHE_DAYS;
    }

    /// The figures of `d`, the closed day `age` days ago: from the cache when it holds
    /// that day, computed otherwise (the same values either way).
    fn get(&self, age: usize, d: &Day) -> Derived {
        let slot = (self.head + CACHE_DAYS - 1 - age % CACHE_DAYS) % CACHE_DAYS;
        match self.days.get(slot) {
            Some(c) if age < CACHE_DAYS && c.day == d.day => *c,
            _ => Derived::of(d),
        }
    }
}

/// A day whose errors are spread over more than one clock hour (a single bad hour is a
/// glitch, not a trend), whatever the interval. When at most two hours of the day were
/// observed (a sample a day, or a few), any error counts.
fn active(d: &Day) -> bool {
    if d.hours <= 2 {
        d.errors > 0
    } else {
        d.err_hours >= 2
    }
}

/// `(target - now) / slope` in seconds, for a slope in y per day (both Q-scaled alike);
/// 0 when already at the target, [`NO_TTF`] without growth.
fn time_to(target: i64, now: i64, slope: i64) -> u64 {
    if now >= target {
        return 0;
    }
    if slope <= 0 {
        return NO_TTF;
    }
    let gap = target.saturating_sub(now);
    match fixed::mul_div(gap, DAY_S as i64, slope) {
        Some(s) if s >= 0 => s as u64,
        _ => NO_TTF,
    }
}

fn permille(num: usize, den: usize) -> u32 {
    (num.min(den) * 1000).checked_div(den).unwrap_or(0) as u32
}

/// `a * b / 1000` for permille values.
fn pm(a: u32, b: u32) -> u32 {
    a.min(1000) * b.min(1000) / 1000
}

/// The error-rate trend's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Trend {
    pub(super) verdict: Verdict,
    /// Backtest skill of the linear and exponential fits, permille.
    pub(super) skill: [u16; 2],
    /// Doubling time of the error rate, seconds, when the exponential fit was chosen.
    pub(super) doubling_s: u64,
}

impl Trend {
    /// No trend.
    pub(super) const NONE: Trend = Trend {
        verdict: Verdict::info(Model::Linear, Reason::Healthy),
        skill: [0, 0],
        doubling_s: NO_TTF,
    };
}

/// Backtest: fit the first `n - HOLDOUT` points, predict the held-out rates, score
/// `1000 - sum|pred - actual| / sum max(pred, actual, floor)`.
fn skill(s: &Series, rates: &Series, log: bool, floor: i64) -> u16 {
    let n = s.len();
    if n < MIN_DAYS + HOLDOUT {
        return 0;
    }
    let Some(f) = least_squares(s, n - HOLDOUT) else {
        return 0;
    };
    let (mut err, mut den) = (0u128, 0u128);
    for i in n - HOLDOUT..n {
        let (Some(x), Some(act)) = (rates.x(i), rates.y(i)) else {
            continue;
        };
        let at = f.at(x) >> fixed::Q;
        let pred = if log {
            (fixed::exp2_q16(at) >> fixed::Q).min(1 << 40) as i64
        } else {
            at.max(0)
        };
        err += u128::from(pred.abs_diff(act));
        den += pred.max(act).max(floor) as u128;
    }
    (1000 - fixed::ratio_permille(err, den)) as u16
}

/// Error-rate trend over the last [`TREND_DAYS`] closed days: a linear fit of the rate
/// and a linear fit of its log2 (exponential growth), each backtested on the last
/// [`HOLDOUT`] days; the better one gives the time to the unusable rate. Their
/// confidence is halved when the fitted days left fewer than [`TREND_BAD_BLOCKS`] new
/// bad blocks: errors that leave none are not a failing medium.
pub(super) fn trend(daily: &Daily, cache: &DayCache, cfg: &Config) -> Trend {
    let mut lin = Series::new();
    let mut log = Series::new();
    let mut total_errors = 0u64;
    let mut act = 0usize;
    let mut recent = 0usize;
    let span = TREND_DAYS.min(daily.len());
    let first = daily.get(span.saturating_sub(1)).map_or(0, |d| d.day);
    for age in (0..span).rev() {
        let Some(d) = daily.get(age) else { continue };
        let x = i64::from(d.day.saturating_sub(first));
        let dv = cache.get(age, &d);
        if let (Some(r), Some(l)) = (dv.rate, dv.log_rate) {
            lin.push(x, r);
            log.push(x, l);
        }
        total_errors = total_errors.saturating_add(d.errors);
        if age < 7 {
            recent += 1;
            act += usize::from(active(&d));
        }
    }
    let none = Trend::NONE;
    if lin.len() < MIN_DAYS || total_errors == 0 {
        return none;
    }
    let activity = permille(act, recent.max(MIN_DAYS));
    // Errors that left (almost) no bad block over the fitted days are not a failing
    // medium (timeouts, a cable, link resets): half the confidence.
    let rem = |age: usize| daily.get(age).map_or(0, |d| d.remapped_end);
    let medium = if rem(0).saturating_sub(rem(span.saturating_sub(1))) >= TREND_BAD_BLOCKS {
        1000
    } else {
        500
    };
    let u = cfg.unusable_ppb.min(1 << 30) as i64;
    let floor = (u / 1000).max(1);
    let skills = [
        skill(&lin, &lin, false, floor),
        skill(&log, &lin, true, floor),
    ];
    let mut best: Option<(u32, Verdict, u64)> = None;
    let fits: [(Option<Fit>, bool); 2] = [
        (least_squares(&lin, lin.len()), false),
        (least_squares(&log, log.len()), true),
    ];
    for (i, (f, is_log)) in fits.into_iter().enumerate() {
        let Some(f) = f else { continue };
        let sk = u32::from(skills.get(i).copied().unwrap_or(0));
        let conf = pm(pm(pm(f.r2, activity), 400 + sk * 6 / 10), medium);
        let (ttf, model, reason, detail, dbl) = if is_log {
            let target = fixed::log2_q16(u as u64).unwrap_or(0) << fixed::Q;
            let dbl = if f.slope > 0 {
                fixed::mul_div(DAY_S as i64, 1 << 32, f.slope).map_or(NO_TTF, |d| d as u64)
            } else {
                NO_TTF
            };
            let ttf = time_to(target, f.at_last, f.slope);
            (
                ttf,
                Model::Exponential,
                Reason::ErrorRateGrowth,
                dbl as i64,
                dbl,
            )
        } else {
            let ttf = time_to(u << fixed::Q, f.at_last, f.slope);
            let per_day = f.slope >> fixed::Q;
            (ttf, Model::Linear, Reason::ErrorRateTrend, per_day, NO_TTF)
        };
        let v = Verdict {
            level: level_for(ttf, conf as u16, cfg),
            ttf_s: ttf,
            confidence: conf as u16,
            model,
            reason,
            detail,
        };
        match best {
            Some(b) if conf <= b.0 => {}
            _ => best = Some((conf, v, dbl)),
        }
    }
    let st = bad_blocks(daily, cfg);
    match best {
        Some((_, mut v, dbl)) => {
            if v.level == super::Level::Info {
                v.reason = Reason::ErrorsSeen;
            }
            if (st.level, st.confidence) > (v.level, v.confidence) {
                v = st;
            }
            Trend {
                verdict: v,
                skill: skills,
                doubling_s: dbl,
            }
        }
        None => Trend {
            verdict: st,
            ..none
        },
    }
}

/// Days whose new bad blocks the baseline model counts as recent.
const BB_RECENT: usize = 14;
/// Days of history before the recent ones the baseline model needs (the device's own
/// past), and the most it uses: the rest of the daily history.
const BB_PAST_MIN: usize = 7;
/// New bad blocks the recent days must hold.
const BB_MIN: u64 = 20;
/// Recent days with new bad blocks the baseline model needs.
const BB_DAYS: usize = 4;

/// New bad blocks over the recent days, the device measured against itself, as the
/// daily history stands `skip` days ago: the remapped count's growth over the
/// [`BB_RECENT`] days at least [`BB_MIN`] blocks, on at least [`BB_DAYS`] of them (one
/// bad day is not growth), at a rate per day at least
/// [`Config::baseline_ratio`] times that of all the days before them (one block a week
/// added, so that a past without any is not a zero rate), and still coming: the newer
/// half of the recent days added at least as many as the older half. `None` when the
/// rule does not hold; else the recent rate over the past one, permille.
fn bad_blocks_at(daily: &Daily, cfg: &Config, skip: usize) -> Option<i64> {
    // New bad blocks of the day of age `age`: the growth of the remapped count from the
    // end of the day before (a drop, blocks given back by `unremap` or `clear`, is none).
    let rem = |age: usize| daily.get(age).map(|d| u64::from(d.remapped_end));
    let new = |age: usize| match (rem(age), rem(age + 1)) {
        (Some(a), Some(b)) => a.saturating_sub(b),
        _ => 0,
    };
    // Days with a day before them: the oldest day's own growth is unknown.
    let days = daily.len().checked_sub(1 + skip)?;
    let past_days = days.checked_sub(BB_RECENT)?;
    if past_days < BB_PAST_MIN {
        return None;
    }
    let (mut newer, mut older, mut days_with) = (0u64, 0u64, 0usize);
    for age in skip..skip + BB_RECENT {
        let n = new(age);
        days_with += usize::from(n > 0);
        if age < skip + BB_RECENT / 2 {
            newer = newer.saturating_add(n);
        } else {
            older = older.saturating_add(n);
        }
    }
    let past = (skip + BB_RECENT..skip + BB_RECENT + past_days)
        .fold(0u64, |acc, age| acc.saturating_add(new(age)));
    let recent = newer.saturating_add(older);
    if recent < BB_MIN || newer < older || days_with < BB_DAYS {
        return None;
    }
    // recent / R >= ratio * (past + P/7) / P, with R recent and P past days:
    // 7 * recent * P >= ratio * (7 * past + P) * R.
    let ratio = u128::from(cfg.baseline_ratio.max(1));
    let (r, p) = (BB_RECENT as u128, past_days as u128);
    let lhs = 7u128.saturating_mul(u128::from(recent)).saturating_mul(p);
    let base = 7u128.saturating_mul(u128::from(past)).saturating_add(p);
    if lhs < ratio.saturating_mul(base).saturating_mul(r) {
        return None;
    }
    // How many times the past rate, permille: 1000 * lhs / (base * R).
    fixed::div_u128(lhs.saturating_mul(1000), base.saturating_mul(r))
        .map(|t| t.min(i64::MAX as u128) as i64)
}

/// The baseline model: bad blocks appearing faster than the device's own past, at the
/// last two day closes (a spell of a day does not hold across both). Catches what the
/// trend fits miss: a failure that steps up and stays on a plateau, or grows while its
/// error rate is still far below the unusable one, whatever the noise of its daily
/// error counts. New bad blocks, not errors: errors that leave none (a cable, timeouts,
/// a full thin pool) are not a failing medium, and a load change moves error counts,
/// not the medium's bad blocks. A device that always had bad blocks coming (its past
/// has them too) does not count. A warning without a forecast: such failures may stay
/// far below the unusable rate.
pub(super) fn bad_blocks(daily: &Daily, cfg: &Config) -> Verdict {
    match (bad_blocks_at(daily, cfg, 0), bad_blocks_at(daily, cfg, 1)) {
        (Some(times), Some(_)) => Verdict {
            level: super::Level::Warning,
            ttf_s: NO_TTF,
            confidence: 800,
            model: Model::Baseline,
            reason: Reason::BadBlocksGrowing,
            detail: times,
        },
        _ => Verdict::info(Model::Baseline, Reason::Healthy),
    }
}

/// Spare exhaustion: a linear fit of the remapped count over [`SPARE_DAYS`] days, and
/// (when the error rate grows exponentially with doubling time T, and the remaps of the
/// last 3 days are at least 1.5 times those of the 3 before) the time at which an
/// exponentially growing remap rate r0 * 2^(t/T) has used the free blocks F:
/// t = T log2(1 + F ln2 / (r0 T)). The sooner of the two.
pub(super) fn spare(daily: &Daily, trend: &Trend, cfg: &Config) -> Verdict {
    let mut s = Series::new();
    let span = (SPARE_DAYS + 1).min(daily.len());
    let first = daily.get(span.saturating_sub(1)).map_or(0, |d| d.day);
    let mut prev: Option<u32> = None;
    let mut inc_days = 0usize;
    let mut diffs = 0usize;
    let mut last_inc = 0i64;
    // Remaps of the newest 3 days and of the 3 before.
    let rem = |age: usize| daily.get(age).map_or(0, |d| i64::from(d.remapped_end));
    let (new3, old3) = (rem(0) - rem(3), rem(3) - rem(6));
    let accelerating = daily.len() > 6 && new3 * 2 >= old3 * 3 && new3 >= 3;
    for age in (0..span).rev() {
        let Some(d) = daily.get(age) else { continue };
        if let Some(p) = prev {
            diffs += 1;
            last_inc = i64::from(d.remapped_end.saturating_sub(p));
            inc_days += usize::from(d.remapped_end > p);
        }
        prev = Some(d.remapped_end);
        s.push(
            i64::from(d.day.saturating_sub(first)),
            i64::from(d.remapped_end),
        );
    }
    let free = daily.get(0).map_or(0, |d| d.spare_free_end).min(1 << 40) as i64;
    let none = Verdict::info(Model::Linear, Reason::Healthy);
    let Some(f) = least_squares(&s, s.len()) else {
        return none;
    };
    if s.len() < MIN_DAYS || f.slope <= 0 {
        return none;
    }
    let conf = pm(f.r2, permille(inc_days, diffs.max(MIN_DAYS)));
    let mut tts = time_to(free << fixed::Q, 0, f.slope);
    let mut model = Model::Linear;
    if trend.doubling_s != NO_TTF
        && trend.verdict.model == Model::Exponential
        && trend.verdict.confidence >= cfg.min_confidence
        && last_inc > 0
        && accelerating
    {
        let t_q16 = fixed::mul_div(trend.doubling_s as i64, fixed::ONE, DAY_S as i64).unwrap_or(0);
        let den = last_inc.saturating_mul(t_q16);
        if let Some(v) = fixed::mul_div(free.saturating_mul(LN2_Q16), fixed::ONE, den) {
            let l = fixed::log2_q16((fixed::ONE as u64).saturating_add(v.max(0) as u64))
                .unwrap_or(0)
                - (16 << fixed::Q);
            let days_q16 = fixed::mul_div(t_q16, l, fixed::ONE).unwrap_or(i64::MAX);
            let t = fixed::mul_div(days_q16, DAY_S as i64, fixed::ONE).map_or(NO_TTF, |t| t as u64);
            if t < tts {
                tts = t;
                model = Model::Exponential;
            }
        }
    }
    Verdict {
        level: level_for(tts, conf as u16, cfg),
        ttf_s: tts,
        confidence: conf as u16,
        model,
        reason: Reason::SpareTrend,
        detail: f.slope >> fixed::Q,
    }
}

/// Days of hourly sums kept for the periodic model: the folded days and the open one.
const HOUR_DAYS: usize = PERIODIC_DAYS as usize + 1;

/// Errors and I/Os per clock hour of the newest [`HOUR_DAYS`] days (the open day
/// included), whatever the sampling interval: what the periodic model folds. A sample
/// counts in the hour and day its time falls in; errors saturate at 2¹⁶−1 and I/Os at
/// 2³²−1 per hour.
#[derive(Debug, Clone, Copy)]
pub(super) struct HourDays {
    /// Day number (`t_s / DAY_S`) of each slot; `u32::MAX`: none.
    day: [u32; HOUR_DAYS],
    errors: [[u16; 24]; HOUR_DAYS],
    ios: [[u32; 24]; HOUR_DAYS],
}

impl HourDays {
    pub(super) const fn new() -> Self {
        HourDays {
            day: [u32::MAX; HOUR_DAYS],
            errors: [[0; 24]; HOUR_DAYS],
            ios: [[0; 24]; HOUR_DAYS],
        }
    }

    /// Adds a sample to its hour.
    pub(super) fn add(&mut self, s: &Sample) {
        let day = (s.t_s / DAY_S).min(u64::from(u32::MAX - 1)) as u32;
        let slot = day as usize % HOUR_DAYS;
        let hour = ((s.t_s % DAY_S) / 3600) as usize;
        if let (Some(d), Some(e), Some(n)) = (
            self.day.get_mut(slot),
            self.errors.get_mut(slot),
            self.ios.get_mut(slot),
        ) {
            if *d != day {
                *d = day;
                *e = [0; 24];
                *n = [0; 24];
            }
            if let (Some(e), Some(n)) = (e.get_mut(hour), n.get_mut(hour)) {
                let err = s.errors().min(u64::from(u16::MAX)) as u16;
                let ios = s.ios().min(u64::from(u32::MAX)) as u32;
                *e = e.saturating_add(err);
                *n = n.saturating_add(ios);
            }
        }
    }

    /// The hourly errors and I/Os of day `day`, when held.
    fn get(&self, day: u64) -> Option<(&[u16; 24], &[u32; 24])> {
        let slot = (day % HOUR_DAYS as u64) as usize;
        match (
            self.day.get(slot),
            self.errors.get(slot),
            self.ios.get(slot),
        ) {
            (Some(&d), Some(e), Some(n)) if u64::from(d) == day => Some((e, n)),
            _ => None,
        }
    }
}

/// Periodic pattern at the daily period: errors of the last [`PERIODIC_DAYS`] closed
/// days are folded by clock hour ([`HourDays`]: time-based, so a device sampled every
/// minute folds the same 14 days as one sampled every hour); when a window of 1 to
/// [`PEAK_HOURS_MAX`] hours (the narrowest that does) holds [`PEAK_SHARE`] of them and
/// they recur on most recent days, the peak window's error rate is fitted log-linearly
/// day by day (intensifying errors at the same hours: heat, a nightly job hitting a
/// failing region); the forecast is the time for it to reach the unusable rate. Silent
/// when the newest day was observed in fewer than 12
/// clock hours or the folded days hold fewer than 12 errors. Bounded work: 14 × 24
/// hours folded, 8 widths × 24 windows, a fit of 14 points.
///
/// It runs in two steps (two samples): this function finds the window and its per-day
/// sums, [`PeriodicWindow::fit`] fits them.
///
/// Returns the peak window and its errors and I/Os of each folded day, or the verdict
/// when the model cannot speak.
pub(super) fn periodic_window(hours: &HourDays, daily: &Daily) -> Result<PeriodicWindow, Verdict> {
    let none = Err(Verdict::info(Model::Periodic, Reason::Healthy));
    let Some(last) = daily.get(0) else {
        return none;
    };
    if !periodic_observed(daily) {
        return none;
    }
    let to = u64::from(last.day);
    let from = to.saturating_sub(PERIODIC_DAYS - 1);
    // The daily totals first: a quiet device costs 14 lookups.
    let mut errors = 0u64;
    for age in 0..daily.len() {
        match daily.get(age) {
            Some(d) if u64::from(d.day) >= from => errors = errors.saturating_add(d.errors),
            _ => break,
        }
    }
    if errors < 12 {
        return none;
    }
    let mut bins = [0u64; 24];
    // Hours with errors (of the 14 days) at each clock hour: recurrence counted in
    // time, which one hour of many errors cannot make.
    let mut err_hours = [0u16; 24];
    let mut total = 0u64;
    for day in from..=to {
        let Some((e, _)) = hours.get(day) else {
            continue;
        };
        for ((b, c), &x) in bins.iter_mut().zip(err_hours.iter_mut()).zip(e.iter()) {
            *b = b.saturating_add(u64::from(x));
            *c += u16::from(x > 0);
            total = total.saturating_add(u64::from(x));
        }
    }
    if total < 12 {
        return none;
    }
    // The narrowest window holding the share: for each width, a sum sliding round the
    // day.
    let bin = |h: usize| bins.get(h % 24).copied().unwrap_or(0);
    let mut found = None;
    for width in 1..=PEAK_HOURS_MAX {
        let mut sum = (0..width).fold(0u64, |a, k| a.saturating_add(bin(k)));
        let mut peak = (0usize, sum);
        for h0 in 1..24 {
            sum = sum
                .saturating_sub(bin(h0 - 1))
                .saturating_add(bin(h0 + width - 1));
            if sum > peak.1 {
                peak = (h0, sum);
            }
        }
        let share = fixed::ratio_permille(u128::from(peak.1), u128::from(total));
        if share >= PEAK_SHARE {
            found = Some((peak.0, width, share));
            break;
        }
    }
    let Some((h0, width, share)) = found else {
        return none;
    };
    // The peak window's errors and I/Os of each folded day.
    let hours_in = (0..width).fold(0u16, |a, k| {
        a.saturating_add(err_hours.get((h0 + k) % 24).copied().unwrap_or(0))
    });
    let hours_all = err_hours.iter().fold(0u16, |a, &c| a.saturating_add(c));
    let mut w = PeriodicWindow {
        h0: h0 as u8,
        width: width as u8,
        share,
        hours_in,
        hours_out: hours_all.saturating_sub(hours_in),
        errs: [0; PERIODIC_DAYS as usize],
        ios: [0; PERIODIC_DAYS as usize],
    };
    for (i, day) in (from..=to).enumerate() {
        let Some((e, n)) = hours.get(day) else {
            continue;
        };
        for k in 0..width {
            let h = (h0 + k) % 24;
            if let (Some(de), Some(dn), Some(&x), Some(&y)) =
                (w.errs.get_mut(i), w.ios.get_mut(i), e.get(h), n.get(h))
            {
                *de = de.saturating_add(u64::from(x));
                *dn = dn.saturating_add(u64::from(y));
            }
        }
    }
    Ok(w)
}

/// Whether the newest closed day was observed in enough clock hours (12) for the
/// periodic model to speak.
pub(super) fn periodic_observed(daily: &Daily) -> bool {
    daily.get(0).is_some_and(|d| d.hours >= 12)
}

/// The periodic model's peak window over the folded days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PeriodicWindow {
    /// First hour (0..24), width (hours, 1..=8) and share (permille) of the window.
    h0: u8,
    width: u8,
    /// Hours with errors of the folded days inside and outside the window (≤ 336).
    hours_in: u16,
    hours_out: u16,
    share: u32,
    /// Errors and I/Os in the window, per folded day (oldest first).
    errs: [u64; PERIODIC_DAYS as usize],
    ios: [u64; PERIODIC_DAYS as usize],
}

impl PeriodicWindow {
    /// The peak window's daily error rate, fitted log-linearly; or, when that is below
    /// warning, the growth rule ([`PeriodicWindow::growth`]).
    pub(super) fn fit(&self, daily: &Daily, cfg: &Config) -> Verdict {
        let v = self.fit_rate(cfg);
        if v.level >= super::Level::Warning {
            return v;
        }
        self.growth(daily).unwrap_or(v)
    }

    /// Errors at the same hours that grew from one week to the next, the device
    /// measured against itself: per-day counts in a window of a few hours are too
    /// overdispersed (a day of dozens of errors between days of none) for a day-by-day
    /// fit to be confident, and a failure may stay far below the unusable rate, so this
    /// is a warning without a forecast. The peak window's errors of the newer week of
    /// the folded days, *without its largest day* (one bad day is not growth), at least
    /// [`PERIODIC_GROWTH`] times those of the older week (one added) in count and in
    /// rate per I/O (a load change either way does not make growth); at least
    /// [`PERIODIC_GROWTH_MIN`] errors in the newer week's window, on at least
    /// [`PERIODIC_GROWTH_DAYS`] of its days; a pattern in time, not only in counts (the
    /// window's hours with errors, over the folded days, at least twice as dense as
    /// the other hours'); new bad blocks (the remapped count grew by
    /// at least 3 over the newer week); and a history to compare with: at least a week
    /// of daily history before the folded days, none of whose weeks held half the
    /// newer week's window errors (a device whose spells of errors recur had such
    /// weeks). Bounded: 14 days of window sums, the daily history (≤ 64 days).
    ///
    /// The older week may have had no error: errors that set in at the same hours
    /// every day after quiet weeks are a step onto a plateau, seen here as soon as the
    /// first week of them closes (the baseline's bad-block rule, which wants 20 new
    /// bad blocks in two weeks, may see it later or not at all).
    pub(super) fn growth(&self, daily: &Daily) -> Option<Verdict> {
        const FOLD: usize = PERIODIC_DAYS as usize;
        const WEEK: usize = FOLD / 2;
        if daily.len() < FOLD + 7 {
            return None;
        }
        let sum = |x: &[u64; FOLD], from: usize, to: usize| {
            x.iter()
                .skip(from)
                .take(to - from)
                .fold(0u64, |a, &b| a.saturating_add(b))
        };
        let (old, new) = (sum(&self.errs, 0, WEEK), sum(&self.errs, WEEK, FOLD));
        let (on, nn) = (sum(&self.ios, 0, WEEK), sum(&self.ios, WEEK, FOLD));
        let newer = || self.errs.iter().skip(WEEK);
        let top = newer().copied().max().unwrap_or(0);
        let days = newer().filter(|&&e| e > 0).count();
        // The window's hours with errors at least twice as dense as the rest of the
        // day's (one added outside): a peak made by a few hours of many errors, errors
        // spread over the day otherwise, is not a pattern.
        let (w, out) = (
            u32::from(self.width),
            24u32.saturating_sub(u32::from(self.width)),
        );
        let dense = u32::from(self.hours_in) * out >= 2 * (u32::from(self.hours_out) + 1) * w;
        if !dense
            || !self.hours_significant()
            || new < PERIODIC_GROWTH_MIN
            || days < PERIODIC_GROWTH_DAYS
            || on == 0
            || nn == 0
        {
            return None;
        }
        // The newer week without its largest day against the older week (one error
        // added, so a week of few errors is not taken for a precise rate), in count and
        // in rate.
        let rest = u128::from(new.saturating_sub(top));
        let base = u128::from(old) + 1;
        let times = |a: u128, b: u128| a.saturating_mul(b);
        if rest < times(PERIODIC_GROWTH, base)
            || times(rest, u128::from(on)) < times(times(PERIODIC_GROWTH, base), u128::from(nn))
        {
            return None;
        }
        // New bad blocks over the newer week.
        let rem = |age: usize| daily.get(age).map_or(0, |d| u64::from(d.remapped_end));
        if rem(0).saturating_sub(rem(WEEK)) < 3 {
            return None;
        }
        // The worst week of the daily history before the folded days.
        let mut worst = 0u64;
        let mut week = 0u64;
        for age in FOLD..daily.len() {
            let Some(d) = daily.get(age) else { break };
            week = week.saturating_add(d.errors);
            if (age - FOLD) % 7 == 6 {
                worst = worst.max(week);
                week = 0;
            }
        }
        worst = worst.max(week);
        if new <= worst.saturating_mul(2) {
            return None;
        }
        let ratio = fixed::div_u128(
            times(times(u128::from(new), u128::from(on)), 1000),
            times(base, u128::from(nn)),
        )
        .map_or(i64::MAX, |t| t.min(i64::MAX as u128) as i64);
        Some(Verdict {
            level: super::Level::Warning,
            ttf_s: NO_TTF,
            confidence: 800,
            model: Model::Periodic,
            reason: Reason::PeriodicGrowing,
            detail: ratio,
        })
    }

    /// Whether the window holds significantly more of the folded days' hours with
    /// errors than its share of the day would by chance: with N such hours in all and
    /// a window of w of the 24 clock hours, hours_in - N w/24 at least
    /// [`PERIODIC_HOURS_Z`] standard deviations of the binomial count, sqrt(N w/24 (1 -
    /// w/24)). Errors at random hours (a background weakness whose spells fall
    /// anywhere) put about w/24 of their hours in any window.
    fn hours_significant(&self) -> bool {
        let n = u64::from(self.hours_in) + u64::from(self.hours_out);
        let w = u64::from(self.width);
        // 24 hours_in - N w >= z sqrt(N w (24 - w)), squared, without a root or a
        // division; z = PERIODIC_HOURS_Z.0 / PERIODIC_HOURS_Z.1.
        let Some(excess) = (24 * u64::from(self.hours_in)).checked_sub(n * w) else {
            return false;
        };
        let (zn, zd) = PERIODIC_HOURS_Z;
        excess * excess * zd * zd >= zn * zn * n * w * 24u64.saturating_sub(w)
    }

    /// The peak window's daily error rate, fitted log-linearly, over at least
    /// [`PERIODIC_MIN_DAYS`] days with I/O in the window.
    fn fit_rate(&self, cfg: &Config) -> Verdict {
        let none = Verdict::info(Model::Periodic, Reason::Healthy);
        let mut series = Series::new();
        let mut recur = 0usize;
        for (i, (&e, &n)) in self.errs.iter().zip(self.ios.iter()).enumerate() {
            if let Some(l) = log_rate_q16(e, n) {
                series.push(i as i64, l);
            }
            if i >= self.errs.len() - 7 && e > 0 {
                recur += 1;
            }
        }
        if recur < 3 || series.len() < PERIODIC_MIN_DAYS {
            return none;
        }
        let Some(f) = least_squares(&series, series.len()) else {
            return none;
        };
        let u = cfg.unusable_ppb.clamp(1, 1 << 30);
        let target = fixed::log2_q16(u).unwrap_or(0) << fixed::Q;
        let ttf = time_to(target, f.at_last, f.slope);
        let conf = pm(pm(f.r2, self.share), permille(recur, 7));
        let level = level_for(ttf, conf as u16, cfg).max(super::Level::Notice);
        Verdict {
            level,
            ttf_s: ttf,
            confidence: conf as u16,
            model: Model::Periodic,
            reason: if f.slope > 0 {
                Reason::PeriodicWorsening
            } else {
                Reason::RecurringErrors
            },
            detail: i64::from(self.h0),
        }
    }
}

/// Latency degradation normalised by load: y = log2(median p99) - log2(median I/O per
/// interval) / 2 per day, over the days of the last [`LATENCY_DAYS`] whose load is
/// within 8/7 of the newest day's either way, back to the newest stretch of more than
/// [`LATENCY_GAP_DAYS`] days at another load (a load shift, up or down: latency may
/// settle at another level with it); shorter stretches (a weekend, a backup day) are
/// skipped. So the fit compares days of the same load, and whatever power of the load latency follows (0 to 1), the
/// normalisation errs by at most 0.1 log2. A sustained rise of y (≥ 0.045 log2/day,
/// 3% a day; ≥ 0.5 log2, ×1.41, over the days fitted, at least [`LATENCY_MIN_DAYS`] of
/// them spanning as many days) forecasts the time to 8× the fit's starting latency. A
/// slower rise is left to the error models: a healthy device's p99 drifts with its
/// data and load mix by a few percent a week, and its daily medians, at steady load,
/// scatter enough for a fit over a week or two to find 2% a day on a device that has
/// none.
pub(super) fn latency(daily: &Daily, cache: &DayCache, cfg: &Config) -> Verdict {
    let none = Verdict::info(Model::Latency, Reason::Healthy);
    let Some(newest) = daily.get(0) else {
        return none;
    };
    let r = u64::from(newest.ios_med);
    if r == 0 {
        return none;
    }
    let in_band = |d: &Day| {
        let m = u64::from(d.ios_med);
        d.lat_p99_med > 0 && m * 8 >= r * 7 && m * 7 <= r * 8
    };
    // The days back to the newest stretch of more than LATENCY_GAP_DAYS at another load.
    let mut span = 0;
    let mut gap = 0;
    for age in 0..LATENCY_DAYS.min(daily.len()) {
        let Some(d) = daily.get(age) else { break };
        if in_band(&d) {
            gap = 0;
            span = age + 1;
        } else {
            gap += 1;
            if gap > LATENCY_GAP_DAYS {
                break;
            }
        }
    }
    let first = daily.get(span.saturating_sub(1)).map_or(0, |d| d.day);
    let mut s = Series::new();
    for age in (0..span).rev() {
        let Some(d) = daily.get(age) else { continue };
        if !in_band(&d) {
            continue;
        }
        let Some(y) = cache.get(age, &d).lat_y else {
            continue;
        };
        s.push(i64::from(d.day.saturating_sub(first)), y);
    }
    if s.len() < LATENCY_MIN_DAYS {
        return none;
    }
    let Some(f) = least_squares(&s, s.len()) else {
        return none;
    };
    let per_day = f.slope >> fixed::Q; // log2 per day, Q16
    let rise = per_day.saturating_mul(f.last_x);
    // 0.045 log2 a day (2949 in Q16), 0.5 log2 in all (32768).
    if per_day < 2949 || rise < 32_768 || f.last_x + 1 < LATENCY_MIN_DAYS as i64 {
        return none;
    }
    let start = f.at(0);
    let target = start.saturating_add(3 << (2 * fixed::Q));
    let ttf = time_to(target, f.at_last, f.slope);
    let conf = pm(f.r2, permille(s.len(), 10));
    Verdict {
        level: level_for(ttf, conf as u16, cfg).max(super::Level::Notice),
        ttf_s: ttf,
        confidence: conf as u16,
        model: Model::Latency,
        reason: Reason::LatencyRising,
        // Growth per day in percent: 2^per_day - 1.
        detail: (fixed::exp2_q16(per_day).min(1 << 40) as i64 - fixed::ONE).saturating_mul(100)
            >> fixed::Q,
    }
}
