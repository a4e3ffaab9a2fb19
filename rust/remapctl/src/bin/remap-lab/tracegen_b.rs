//! Trace family B: a second, independent generator of device traces with known
//! outcomes, written apart from [`crate::tracegen`] (family A) so that the prediction
//! engine can be tuned on one family and measured on the other.
//!
//! Same CSV columns, same class names and the same fleet mix as family A; everything
//! else differs on purpose:
//! - **Sampling**: each device samples every 1 min (22%), 5 min (17%), 15 min (11%) or
//!   1 h (50%), from a random time of day.
//! - **Load**: a daily *and* a weekly cycle (weekends 0.2–1.3× the weekday load),
//!   autocorrelated (AR(1), hourly) log-normal noise, Poisson I/O counts.
//! - **Latency**: a power of the load (exponent 0.1–0.6), log-normal noise that grows as
//!   the interval shrinks (fewer I/Os per percentile), and a slow healthy drift of
//!   ×0.7–1.6 over the trace.
//! - **Errors**: overdispersed and clustered: Poisson counts whose intensity is
//!   gamma-distributed per day (shape 0.5–2) and per clock hour (shape 0.1–1), i.e.
//!   negative binomial counts; and a two-state (calm/bad) process whose bad spells last
//!   hours to days.
//! - **Failure shapes**: ramps, staircases, step-then-plateau, saturating exponential
//!   growth; terminal error rates from 10⁻⁵ to 3·10⁻³ of I/Os (mostly well below
//!   the engine's unusable rate of 10⁻³; at least 30 failed I/Os a day at the base
//!   load, since a failure with no sign is the sudden class); a degrading device fails
//!   at the end of its degradation whatever its error rate then, or when its spare runs
//!   out.
//!
//! Deterministic for a seed (its own PCG generator, not family A's).

use crate::tracegen::{Class, Truth};
use remap_core::stats::Sample;

const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;
/// First day: day 19 500 (2023-05-23), a Tuesday.
const T0: u64 = 19_500 * 86_400;

/// PCG-XSH-RR 64/32.
struct Pcg {
    state: u64,
    inc: u64,
}

impl Pcg {
    fn new(seed: u64, stream: u64) -> Self {
        let mut p = Pcg {
            state: 0,
            inc: (stream << 1) | 1,
        };
        p.u32();
        p.state = p.state.wrapping_add(seed);
        p.u32();
        p
    }
    fn u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(self.inc);
        let x = (((old >> 18) ^ old) >> 27) as u32;
        x.rotate_right((old >> 59) as u32)
    }
    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        let hi = u64::from(self.u32()) << 21;
        let lo = u64::from(self.u32()) >> 11;
        ((hi | lo) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn uni(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.unit()
    }
    fn logu(&mut self, a: f64, b: f64) -> f64 {
        a * (b / a).powf(self.unit())
    }
    fn coin(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n - 1)
    }
    fn gauss(&mut self) -> f64 {
        // Marsaglia's polar method.
        loop {
            let u = 2.0 * self.unit() - 1.0;
            let v = 2.0 * self.unit() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * s.ln() / s).sqrt();
            }
        }
    }
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * self.unit().ln()
    }
    /// Gamma(shape k, scale 1), Marsaglia–Tsang (with the k < 1 boost).
    fn gamma(&mut self, k: f64) -> f64 {
        if k < 1.0 {
            return self.gamma(k + 1.0) * self.unit().powf(1.0 / k);
        }
        let d = k - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.gauss();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.unit();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
    fn poisson(&mut self, m: f64) -> u64 {
        if m <= 0.0 || !m.is_finite() {
            return 0;
        }
        if m > 50.0 {
            return (m + m.sqrt() * self.gauss()).round().max(0.0) as u64;
        }
        let l = (-m).exp();
        let (mut k, mut p) = (0u64, self.unit());
        while p > l {
            k += 1;
            p *= self.unit();
        }
        k
    }
}

/// A two-state error clustering process: calm, or a bad spell that multiplies the
/// error intensity. Spells start at `per_day` a day and last `mean_h` hours on average.
struct Spells {
    per_day: f64,
    mean_h: f64,
    mult: f64,
    bad_until: f64,
}

impl Spells {
    fn factor(&mut self, r: &mut Pcg, t: f64, dt: f64) -> f64 {
        if t >= self.bad_until && r.coin(self.per_day * dt / DAY) {
            self.bad_until = t + r.exp(self.mean_h * HOUR).max(dt);
        }
        if t < self.bad_until {
            self.mult
        } else {
            1.0
        }
    }
}

/// How a degrading device's error rate moves from onset (x = 0) to failure (x = 1).
#[derive(Clone, Copy)]
enum Shape {
    Ramp,
    Stairs(u32),
    /// A step at the given fraction of the terminal rate, then flat.
    Plateau(f64),
    /// Doubling every `dbl` days, capped at the terminal rate from `cap` on.
    Exp {
        dbl: f64,
        cap: f64,
    },
}

fn shape_at(s: Shape, x: f64, dur_days: f64) -> f64 {
    match s {
        Shape::Ramp => x,
        Shape::Stairs(n) => ((x * f64::from(n)).floor() + 1.0) / f64::from(n),
        Shape::Plateau(f) => f,
        Shape::Exp { dbl, cap } => {
            let xe = x.min(cap);
            2f64.powf((xe - cap) * dur_days / dbl)
        }
    }
}

/// Generates device `idx` of class `class` for `seed` (family B).
pub fn generate(seed: u64, idx: u64, class: Class) -> (Vec<Sample>, Truth) {
    let mut r = Pcg::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ idx, idx ^ 0xB);
    const INTERVALS: [f64; 10] = [
        60.0, 60.0, 60.0, 60.0, 300.0, 300.0, 300.0, 900.0, 900.0, 3600.0,
    ];
    let interval = if r.coin(0.45) {
        3600.0
    } else {
        INTERVALS[r.pick(10)]
    };
    let phase = (r.uni(0.0, 24.0) * HOUR / interval).floor() * interval;

    // Load and latency.
    let load = r.logu(3e3, 3e6); // I/Os per hour
    let read_frac = r.uni(0.3, 0.95);
    let amp_d = r.uni(0.0, 0.8);
    let peak_h = r.uni(0.0, 24.0);
    let weekend = r.logu(0.2, 1.3);
    let ar_sigma = r.uni(0.05, 0.25);
    let p50 = r.logu(30.0, 8000.0);
    let p99x = r.logu(2.0, 20.0);
    let beta = r.uni(0.1, 0.6);
    let drift = r.logu(0.7, 1.6); // healthy latency factor over 100 days
    let lat_sigma = r.uni(0.05, 0.2);
    let mut spare_free = r.logu(2e3, 5e5) as u64;
    let new_frac = r.uni(0.3, 1.0); // share of read errors on blocks not yet pending
    let fix_per_h = r.uni(0.02, 0.2); // pending blocks rewritten per hour

    // Degradation. A failure that shows no sign at all is the sudden class: the
    // terminal rate gives at least 30 failed I/Os a day at the base load.
    let r_term = r.logu(1e-5, 3e-3).max(30.0 / (24.0 * load));
    let healthy_days = r.uni(10.0, 45.0);
    let kshape = r.uni(0.1, 1.0);
    let kday = r.uni(0.5, 2.0);
    let (total_days, onset, dur, shape) = if class.healthy() {
        (r.uni(80.0, 110.0), f64::INFINITY, 1.0, Shape::Ramp)
    } else if class == Class::Sudden {
        (r.uni(15.0, 90.0), f64::INFINITY, 1.0, Shape::Ramp)
    } else {
        let (d, s) = match class {
            Class::Linear => match r.pick(3) {
                0 => (r.uni(15.0, 70.0), Shape::Ramp),
                1 => (r.uni(20.0, 70.0), Shape::Stairs(2 + r.pick(4) as u32)),
                _ => (r.uni(12.0, 50.0), Shape::Plateau(r.uni(0.3, 1.0))),
            },
            Class::Exponential => {
                let dbl = r.uni(1.5, 10.0);
                let d = (dbl * r.uni(8.0, 16.0)).clamp(12.0, 80.0);
                let cap = if r.coin(0.4) { r.uni(0.6, 0.85) } else { 1.0 };
                (d, Shape::Exp { dbl, cap })
            }
            Class::LatencyFirst => (r.uni(15.0, 60.0), Shape::Ramp),
            _ => {
                let dbl = r.uni(3.0, 12.0);
                (
                    (dbl * r.uni(6.0, 12.0)).clamp(15.0, 70.0),
                    Shape::Exp { dbl, cap: 1.0 },
                )
            }
        };
        (healthy_days + d, healthy_days, d, s)
    };
    let lat_growth = r.logu(2.5, 12.0);
    let lat_err_from = r.uni(0.4, 0.8);
    let win_h = 1.0 + r.pick(6) as f64;
    let r_term = if class == Class::Periodic {
        // The errors fall in the window: at least 30 a day there.
        r_term.max(30.0 / (win_h * load))
    } else {
        r_term
    };
    let win_start = r.uni(0.0, 24.0);
    let spill = r.uni(0.0, 0.3);

    // Confusers, chosen per class (a degrading device may carry some before onset).
    let pick_some = |r: &mut Pcg, p: f64| class == Class::Mixed && r.coin(p);
    let pre = !class.healthy();
    let isolated = class == Class::Isolated || pick_some(&mut r, 0.6) || (pre && r.coin(0.3));
    let mut iso = Spells {
        per_day: r.logu(1.0 / 30.0, 1.0 / 4.0),
        mean_h: r.logu(0.2, 36.0),
        mult: 1.0,
        bad_until: 0.0,
    };
    let iso_rate = r.logu(0.2, 4.0); // errors per hour inside a spell
    let background = class == Class::Background || (pre && r.coin(0.15));
    let bg_per_day = r.logu(0.3, 15.0);
    if background && class.healthy() {
        // Healthy: the spare outlasts a few years of the background's remaps.
        spare_free = spare_free.max((bg_per_day * 365.0 * 4.0) as u64);
    }
    let mut bg = Spells {
        per_day: r.logu(0.1, 1.0),
        mean_h: r.logu(1.0, 48.0),
        mult: r.logu(3.0, 30.0),
        bad_until: 0.0,
    };
    let mut bursts: Vec<(f64, f64, f64, f64)> = Vec::new();
    if class == Class::Burst || pick_some(&mut r, 0.6) {
        for _ in 0..1 + r.pick(4) {
            bursts.push((
                r.uni(2.0, total_days - 1.0) * DAY,
                r.logu(300.0, 10.0 * HOUR),
                r.logu(1e-3, 5e-2),
                r.logu(5.0, 50.0),
            ));
        }
    }
    let nightly = class == Class::Nightly || pick_some(&mut r, 0.6) || (pre && r.coin(0.3));
    let weekly_job = r.coin(0.4);
    let job_day = r.pick(7) as f64;
    let job_start = r.uni(0.0, 5.0) + if r.coin(0.3) { 18.0 } else { 0.0 };
    let job_len = if weekly_job {
        r.uni(3.0, 12.0)
    } else {
        r.uni(0.5, 4.0)
    };
    let job_from = r.uni(0.0, 50.0);
    let job_reads = r.logu(1.5, 10.0);
    let job_p99 = r.logu(2.0, 20.0);
    let job_err = r.uni(0.02, 0.1);
    let shift = class == Class::LoadShift || pick_some(&mut r, 0.6);
    let mut shifts = Vec::new();
    if shift {
        for _ in 0..1 + r.pick(2) {
            let f = if r.coin(0.5) {
                r.logu(1.3, 5.0)
            } else {
                1.0 / r.logu(1.3, 5.0)
            };
            shifts.push((r.uni(5.0, 90.0), r.uni(0.0, 4.0), f, r.logu(0.8, 1.4)));
        }
    }

    let end = total_days * DAY;
    let n = (end / interval) as u64;
    let mut out = Vec::with_capacity(n as usize);
    let (mut remapped, mut pending) = (0u64, 0u64);
    let mut ar = 0.0f64;
    let mut last_hour = -1i64;
    let (mut g_media, mut g_bg, mut g_soft, mut g_day) = (1.0, 1.0, 1.0, 1.0);
    let mut last_day = -1i64;
    let mut fail_t = None;
    for k in 1..=n {
        let t = phase + k as f64 * interval;
        let day = t / DAY;
        let hod = (t % DAY) / HOUR;
        let dow = ((day.floor() as i64 + 1) % 7) as f64; // 0 = Monday; T0 is a Tuesday
        let hour = (t / HOUR) as i64;
        if hour != last_hour {
            last_hour = hour;
            // Error intensities are gamma-distributed per clock hour and shared by the
            // hour's samples: counts are negative binomial per hour, whatever the
            // interval (drawn per sample they would average out over an hour).
            if hour.rem_euclid(24) == 0 || last_day < 0 {
                // And per day: bad days and good days.
                last_day = hour / 24;
                g_day = r.gamma(kday) / kday;
            }
            g_media = g_day * r.gamma(kshape) / kshape;
            g_bg = g_day * r.gamma(0.3) / 0.3;
            g_soft = r.gamma(0.5) / 0.5;
            ar = 0.9 * ar + ar_sigma * (1.0 - 0.81f64).sqrt() * r.gauss();
        }
        // Load of the interval.
        let mut l = load * (1.0 + amp_d * ((hod - peak_h) / 24.0 * std::f64::consts::TAU).cos());
        if dow >= 5.0 {
            l *= weekend;
        }
        let mut lat_extra = 1.0;
        for &(at, ramp, f, lat_f) in &shifts {
            let x = if ramp <= 0.0 {
                f64::from(u8::from(day >= at))
            } else {
                ((day - at) / ramp).clamp(0.0, 1.0)
            };
            l *= f.powf(x);
            lat_extra *= lat_f.powf(x);
        }
        l *= ar.exp();
        let mut p99_mult = 1.0;
        let mut job_extra = 0.0;
        let in_job = nightly
            && day >= job_from
            && (!weekly_job || (dow - job_day).abs() < 0.5)
            && (hod - job_start).rem_euclid(24.0) < job_len;
        if in_job {
            job_extra = load * job_reads;
            p99_mult *= job_p99;
        }
        let scale = interval / HOUR;
        let reads = r.poisson((l * read_frac + job_extra) * scale);
        let writes = r.poisson(l * (1.0 - read_frac) * scale);
        let ios = (reads + writes) as f64;

        // Degradation.
        let tau = day - onset;
        let x = tau / dur;
        let mut rate = 0.0;
        let mut lat_deg = 1.0;
        if tau >= 0.0 {
            match class {
                Class::Linear | Class::Exponential => rate = r_term * shape_at(shape, x, dur),
                Class::LatencyFirst => {
                    lat_deg = lat_growth.powf(x);
                    if x >= lat_err_from {
                        rate = r_term * (x - lat_err_from) / (1.0 - lat_err_from);
                    }
                }
                Class::Periodic => {
                    let inw = (hod - win_start).rem_euclid(24.0) < win_h;
                    let w = if inw { 1.0 } else { spill * win_h / 24.0 };
                    rate = r_term * shape_at(shape, x, dur) * w;
                }
                _ => {}
            }
        }
        let mean_media = rate * ios;
        let media = r.poisson(mean_media * g_media);
        let mut media_w = 0;
        let mut media_r = 0;
        if media > 0 {
            let wshare = (1.0 - read_frac).clamp(0.05, 0.7);
            for _ in 0..media.min(64) {
                if r.coin(wshare) {
                    media_w += 1;
                } else {
                    media_r += 1;
                }
            }
            let rest = media - media.min(64);
            media_r += rest;
        }
        // Confusers' errors: soft errors that leave no bad block, and media errors of
        // background weakness that do.
        let mut soft = 0u64;
        if isolated {
            let f = iso.factor(&mut r, t, interval);
            if f > 0.0 && t < iso.bad_until {
                soft += r.poisson(iso_rate * scale * g_soft);
            }
        }
        if background {
            let f = bg.factor(&mut r, t, interval);
            let m = bg_per_day / 24.0 * scale * f / (1.0 + bg.mult * bg.mean_h * bg.per_day / 24.0);
            media_r += r.poisson(m * g_bg);
        }
        if in_job && r.coin(job_err * interval / (job_len * HOUR).max(interval)) {
            soft += 1 + r.pick(3) as u64;
        }
        for &(at, len, frac, lat_f) in &bursts {
            if t >= at && t < at + len {
                soft += r.poisson(frac * ios * g_soft);
                p99_mult *= lat_f;
            }
        }
        // Bad blocks: read errors leave pending blocks, rewritten over time; write
        // errors are remapped at once.
        pending += (media_r as f64 * new_frac).ceil() as u64;
        let fixed = r.poisson(pending as f64 * fix_per_h * scale).min(pending);
        pending -= fixed;
        let new_remaps = media_w + fixed;
        let exhausted = new_remaps >= spare_free && new_remaps > 0;
        let used = new_remaps.min(spare_free);
        spare_free -= used;
        remapped += used;

        let errs = media_r + media_w + soft;
        let noise = lat_sigma * (1.0 + (HOUR / interval).sqrt() / 4.0);
        let lat = p50
            * (l / load).max(0.01).powf(beta)
            * drift.powf(day / 100.0)
            * lat_extra
            * lat_deg
            * (lat_sigma * r.gauss()).exp();
        let retry = 1.0 + (errs as f64 / (ios + 1.0) * 2000.0).min(10.0);
        let p99 = lat * p99x * p99_mult * retry * (noise * r.gauss()).exp();
        out.push(Sample {
            t_s: T0 + t.round() as u64,
            reads,
            read_errors: media_r + soft,
            writes,
            write_errors: media_w,
            lat_p50_us: lat.round().max(1.0) as u64,
            lat_p99_us: p99.round().max(1.0) as u64,
            remapped_total: remapped,
            pending_total: pending,
            spare_free_blocks: spare_free,
        });
        if exhausted && class.degrading() {
            fail_t = Some(T0 + t.round() as u64);
            break;
        }
    }
    let last = out.last().map_or(T0, |s| s.t_s);
    let truth = Truth {
        class,
        // The degradation starts at `t = onset * DAY` (`tau` above); `phase` only
        // shifts the sampling grid, not the onset.
        onset_t: onset.is_finite().then(|| T0 + (onset * DAY).round() as u64),
        fail_t: (!class.healthy()).then_some(fail_t.unwrap_or(last)),
    };
    (out, truth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_b_is_deterministic_and_mixes_intervals() {
        let (a, ta) = generate(3, 5, Class::Linear);
        let (b, tb) = generate(3, 5, Class::Linear);
        assert_eq!(a, b);
        assert_eq!((ta.onset_t, ta.fail_t), (tb.onset_t, tb.fail_t));
        let mut intervals = std::collections::BTreeSet::new();
        for i in 0..40 {
            let (s, _) = generate(1, i, Class::Clean);
            assert!(s.windows(2).all(|w| w[0].t_s < w[1].t_s));
            intervals.insert(s[1].t_s - s[0].t_s);
            assert!(
                s.iter().all(|x| x.errors() == 0),
                "clean device {i} has errors"
            );
        }
        assert!(
            intervals.contains(&60) && intervals.contains(&3600),
            "{intervals:?}"
        );
    }

    #[test]
    fn family_b_errors_are_overdispersed_and_failures_can_be_low_rate() {
        // Background devices with an error a day or more: the variance of daily error
        // counts well above the mean (Poisson: equal).
        let (mut over, mut busy) = (0, 0);
        for i in 0..20 {
            let (s, _) = generate(2, i, Class::Background);
            let mut days = std::collections::BTreeMap::<u64, u64>::new();
            for x in &s {
                *days.entry(x.t_s / 86_400).or_default() += x.errors();
            }
            let v: Vec<f64> = days.values().map(|&e| e as f64).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|e| (e - m).powi(2)).sum::<f64>() / v.len() as f64;
            if m >= 1.0 {
                busy += 1;
                over += usize::from(var > 1.5 * m);
            }
        }
        assert!(
            busy >= 5 && over * 10 >= busy * 8,
            "{over} of {busy} overdispersed"
        );
        // Some degrading devices fail with a last-day error rate below 1e-4.
        let mut low = 0;
        for i in 0..40 {
            let (s, t) = generate(4, i, Class::Linear);
            let fail = t.fail_t.unwrap();
            let day: Vec<&Sample> = s.iter().filter(|x| x.t_s + 86_400 > fail).collect();
            let (e, n) = day
                .iter()
                .fold((0u64, 0u64), |a, x| (a.0 + x.errors(), a.1 + x.ios()));
            low += usize::from((e as f64) < 1e-4 * n as f64);
        }
        assert!(low >= 8, "{low} of 40 fail below 1e-4");
    }
}
