//! `remap-lab tracegen`: synthetic device traces with known outcomes, for measuring the
//! prediction engine (`remap-lab evaluate`). Deterministic for a seed.
//!
//! Every trace is hourly samples in the trace CSV format. A device has a base load
//! (20k–1M I/Os per hour, 50–85% reads, a daily cycle), latency that follows load
//! (p50 80 µs–4 ms, p99 3–8× p50), multiplicative noise, and a spare of 4k–200k blocks.
//! Errors become pending blocks (reads) or remaps (writes); pending blocks are remapped
//! as they are rewritten (10% an hour). The classes are documented on [`Class`]; the
//! unusable error rate `U` below is the engine's default (0.1% of I/Os).

use clap::Args;
use remap_core::stats::Sample;
use remapctl::trace::HEADER;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// CSV header of a fleet directory's `truth.csv`: the file, class, onset and failure
/// time of every trace (times empty when not applicable).
pub const TRUTH_HEADER: &str = "file,class,onset_t,fail_t";

const HOUR: u64 = 3600;
const DAY: u64 = 86_400;
/// First sample time: day 19 000 (2022-01-08) at 01:00.
const T0: u64 = 19_000 * DAY;
/// Unusable failed-I/O fraction (the engine's default).
const U: f64 = 1e-3;

/// splitmix64: small, fast, and good enough for test data.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.f()
    }
    fn log_range(&mut self, a: f64, b: f64) -> f64 {
        (a.ln() + (b.ln() - a.ln()) * self.f()).exp()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f() < p
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.f().max(1e-300);
        let u2 = self.f();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda < 30.0 {
            let l = (-lambda).exp();
            let (mut k, mut p) = (0u64, 1.0);
            loop {
                p *= self.f();
                if p <= l {
                    return k;
                }
                k += 1;
            }
        }
        (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u64
    }
}

/// Trace classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Healthy, no errors at all.
    Clean,
    /// Healthy with isolated errors: one every 3–10 days on average, 1–3 errors each.
    Isolated,
    /// Healthy with 1–3 error bursts (cable/power glitch): 1–3 hours of 20–5000 errors
    /// per hour, p99 ×10, almost no remaps.
    Burst,
    /// Healthy with a nightly backup starting on some day: 1–3 hours a night of 2–8×
    /// extra reads, p99 ×3–10, and a 5% chance a night of one timeout error.
    Nightly,
    /// Healthy with a permanent load step (×1.5–4) on some day; latency follows the load
    /// and may step up to ×1.5 more.
    LoadShift,
    /// Healthy but weak: a steady 0.5–4 errors a day at random hours, not growing.
    Background,
    /// Healthy with isolated errors, a burst, nightly backups and a load step together.
    Mixed,
    /// Degrading: after a healthy start, the error rate grows linearly to a terminal rate
    /// of 0.3–3 U over 20–60 days; fails there or when the spare runs out.
    Linear,
    /// Degrading: the error rate doubles every 2–7 days up to 0.3–3 U (at most 70 days
    /// from a rate 2^14 times lower).
    Exponential,
    /// Degrading: p99 and p50 latency grow exponentially to ×8–20 over 20–50 days at
    /// steady load; errors appear only in the last 40%, growing linearly to 0.3–3 U.
    LatencyFirst,
    /// Degrading: errors only in a 3-hour window each day, doubling every 3–8 days up to
    /// 0.3–3 U in that window (at most 60 days).
    Periodic,
    /// Fails with no warning sign at all after 20–90 healthy days.
    Sudden,
}

impl Class {
    /// Every class, healthy ones first.
    pub const ALL: [Class; 12] = [
        Class::Clean,
        Class::Isolated,
        Class::Burst,
        Class::Nightly,
        Class::LoadShift,
        Class::Background,
        Class::Mixed,
        Class::Linear,
        Class::Exponential,
        Class::LatencyFirst,
        Class::Periodic,
        Class::Sudden,
    ];

    /// Lower-case name (file names, tables).
    pub fn name(self) -> &'static str {
        match self {
            Class::Clean => "clean",
            Class::Isolated => "isolated",
            Class::Burst => "burst",
            Class::Nightly => "nightly",
            Class::LoadShift => "loadshift",
            Class::Background => "background",
            Class::Mixed => "mixed",
            Class::Linear => "linear",
            Class::Exponential => "exponential",
            Class::LatencyFirst => "latency-first",
            Class::Periodic => "periodic",
            Class::Sudden => "sudden",
        }
    }

    /// The class named `name` (as [`Class::name`] spells it).
    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Healthy devices never fail.
    pub fn healthy(self) -> bool {
        self < Class::Linear
    }

    /// Degrading devices show signs before failing.
    pub fn degrading(self) -> bool {
        !self.healthy() && self != Class::Sudden
    }
}

/// What is known about a generated trace.
#[derive(Debug, Clone, Copy)]
pub struct Truth {
    /// The class.
    pub class: Class,
    /// When degradation started (degrading classes).
    pub onset_t: Option<u64>,
    /// Time of the last sample, at which the device failed (not for healthy classes).
    pub fail_t: Option<u64>,
}

/// The class of device `i` of a fleet of `n`: 60% healthy (evenly over the healthy
/// classes), 32% degrading (evenly), 8% sudden.
pub fn fleet_class(i: usize, n: usize) -> Class {
    let n = n.max(1);
    let p = i * 100 / n;
    if p < 60 {
        Class::ALL[i % 7]
    } else if p < 92 {
        Class::ALL[7 + i % 4]
    } else {
        Class::Sudden
    }
}

/// A trace family: an independent generator (see the module docs of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Family {
    /// This module: hourly samples, Poisson errors.
    A,
    /// `tracegen_b`: mixed intervals, overdispersed clustered errors, weekly cycles.
    B,
}

impl Family {
    /// Upper-case name.
    pub fn name(self) -> &'static str {
        match self {
            Family::A => "A",
            Family::B => "B",
        }
    }

    /// Generates device `idx` of class `class` for `seed` with this family's generator.
    pub fn generate(self, seed: u64, idx: u64, class: Class) -> (Vec<Sample>, Truth) {
        match self {
            Family::A => generate(seed, idx, class),
            Family::B => crate::tracegen_b::generate(seed, idx, class),
        }
    }
}

/// Generates device `idx` of class `class` for `seed` (family A).
pub fn generate(seed: u64, idx: u64, class: Class) -> (Vec<Sample>, Truth) {
    let mut r = Rng::new(seed ^ idx.wrapping_mul(0xA24B_AED4_963E_E407));
    for _ in 0..4 {
        r.next();
    }
    let load = r.log_range(2e4, 1e6);
    let read_frac = r.range(0.5, 0.85);
    let amp = r.range(0.2, 0.6);
    let peak_h = r.range(10.0, 16.0);
    let p50 = r.log_range(80.0, 4000.0);
    let p99f = r.range(3.0, 8.0);
    let mut spare_free = r.log_range(4000.0, 200_000.0) as u64;
    let r_term = U * r.log_range(0.3, 3.0);

    // Degradation shape: total days, onset day, duration in days, doubling time in days.
    let pre = r.range(15.0, 40.0);
    let (days, onset, dur, doubling) = match class {
        c if c.healthy() => (90.0, f64::INFINITY, 0.0, 1.0),
        Class::Sudden => (r.range(20.0, 90.0), f64::INFINITY, 0.0, 1.0),
        Class::Linear => {
            let d = r.range(20.0, 60.0);
            (pre + d, pre, d, 1.0)
        }
        Class::Exponential => {
            let t = r.range(2.0, 7.0);
            let d = (14.0 * t).min(70.0);
            (pre + d, pre, d, t)
        }
        Class::LatencyFirst => {
            let d = r.range(20.0, 50.0);
            (pre + d, pre, d, 1.0)
        }
        _ => {
            let t = r.range(3.0, 8.0);
            let d = (12.0 * t).min(60.0);
            (pre + d, pre, d, t)
        }
    };
    let lat_growth = r.range(8.0, 20.0);
    let periodic_h = r.below(24) as f64;

    // Confusers.
    let mixed = class == Class::Mixed;
    let pre_confusers = class.degrading() || class == Class::Sudden;
    let isolated = class == Class::Isolated || mixed || (pre_confusers && r.chance(0.3));
    let isolated_every_h = r.range(3.0, 10.0) * 24.0;
    let nightly = class == Class::Nightly || mixed || (pre_confusers && r.chance(0.3));
    let nightly_start = r.range(0.0, 60.0);
    let nightly_h = r.below(4) as f64;
    let nightly_len = 1.0 + r.below(3) as f64;
    let nightly_reads = r.range(2.0, 8.0);
    let nightly_p99 = r.range(3.0, 10.0);
    let mut bursts: Vec<(f64, f64, f64)> = Vec::new();
    if class == Class::Burst || mixed {
        for _ in 0..1 + r.below(if mixed { 1 } else { 3 }) {
            bursts.push((
                r.range(1.0, 88.0) * 24.0,
                1.0 + r.below(3) as f64,
                r.log_range(20.0, 5000.0),
            ));
        }
    }
    let shift = class == Class::LoadShift || mixed;
    let shift_day = r.range(10.0, 70.0);
    let shift_load = r.log_range(1.5, 4.0);
    let shift_lat = r.range(1.0, 1.5);
    let background = if class == Class::Background {
        r.range(0.5, 4.0) / 24.0
    } else {
        0.0
    };

    let hours = (days * 24.0) as u64;
    let (mut remapped, mut pending) = (0u64, 0u64);
    let mut out = Vec::with_capacity(hours as usize);
    let mut fail_t = None;
    for h in 0..hours {
        let t = T0 + (h + 1) * HOUR;
        let day_f = h as f64 / 24.0;
        let hod = (h % 24) as f64;
        let tau = day_f - onset;
        let mut l = load * (1.0 + amp * ((hod - peak_h) / 24.0 * std::f64::consts::TAU).cos());
        let mut lat_mult = 1.0;
        if shift && day_f >= shift_day {
            l *= shift_load;
            lat_mult *= shift_lat;
        }
        l *= (0.1 * r.normal()).exp();
        let mut reads = l * read_frac;
        let writes = l * (1.0 - read_frac);
        let mut lat = p50 * (l / load).powf(0.3);
        let mut p99x = p99f;
        if nightly && day_f >= nightly_start && hod >= nightly_h && hod < nightly_h + nightly_len {
            reads += load * nightly_reads;
            lat *= 2.0;
            p99x *= nightly_p99;
        }
        // Failed-I/O fraction of the hour.
        let mut rate = 0.0;
        if tau >= 0.0 {
            let x = tau / dur;
            rate = match class {
                Class::Linear => r_term * x,
                Class::Exponential => r_term * 2f64.powf((tau - dur) / doubling),
                Class::LatencyFirst => {
                    lat_mult *= lat_growth.powf(x);
                    if x >= 0.6 {
                        r_term * (x - 0.6) / 0.4
                    } else {
                        0.0
                    }
                }
                Class::Periodic => {
                    let in_win = (hod - periodic_h).rem_euclid(24.0) < 3.0;
                    if in_win {
                        r_term * 2f64.powf((tau - dur) / doubling)
                    } else {
                        0.0
                    }
                }
                _ => 0.0,
            };
        }
        let reads_n = reads.round() as u64;
        let writes_n = writes.round() as u64;
        let mut rerr = r.poisson(rate * reads_n as f64);
        let mut werr = r.poisson(rate * writes_n as f64);
        let mut glitch = 0u64;
        if isolated && r.chance(1.0 / isolated_every_h) {
            rerr += 1 + r.below(3);
        }
        if background > 0.0 {
            rerr += r.poisson(background);
        }
        if nightly && day_f >= nightly_start && hod == nightly_h && r.chance(0.05) {
            glitch += 1;
        }
        for &(at, len, per_h) in &bursts {
            let hf = h as f64;
            if hf >= at && hf < at + len {
                glitch += r.poisson(per_h);
                p99x *= 10.0;
                if r.chance(0.5) {
                    werr += r.below(3);
                }
            }
        }
        // Media errors leave bad blocks: reads make them pending, writes remap them.
        if rerr > 0 {
            pending += rerr.div_ceil(2);
        }
        let resolved = r.poisson(pending as f64 * 0.1).min(pending);
        pending -= resolved;
        let new_remaps = werr + resolved;
        rerr += glitch;
        lat *= lat_mult * (0.12 * r.normal()).exp();
        if rerr + werr > 0 {
            p99x *= 1.0 + ((rerr + werr) as f64 / 20.0).min(5.0);
        }
        let exhausted = new_remaps >= spare_free;
        let used = new_remaps.min(spare_free);
        spare_free -= used;
        remapped += used;
        out.push(Sample {
            t_s: t,
            reads: reads_n,
            read_errors: rerr,
            writes: writes_n,
            write_errors: werr,
            lat_p50_us: lat.round().max(1.0) as u64,
            lat_p99_us: (lat * p99x).round().max(1.0) as u64,
            remapped_total: remapped,
            pending_total: pending,
            spare_free_blocks: spare_free,
        });
        if exhausted && !class.healthy() && class != Class::Sudden {
            fail_t = Some(t);
            break;
        }
    }
    let last_t = out.last().map_or(T0, |s| s.t_s);
    let truth = Truth {
        class,
        onset_t: onset.is_finite().then(|| T0 + (onset * DAY as f64) as u64),
        fail_t: if class.healthy() {
            None
        } else {
            Some(fail_t.unwrap_or(last_t))
        },
    };
    (out, truth)
}

/// A trace as CSV text.
pub fn to_csv(samples: &[Sample]) -> String {
    let mut s = String::with_capacity(samples.len() * 64 + 128);
    s.push_str(HEADER);
    s.push('\n');
    for x in samples {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{}",
            x.t_s,
            x.reads,
            x.read_errors,
            x.writes,
            x.write_errors,
            x.lat_p50_us,
            x.lat_p99_us,
            x.remapped_total,
            x.pending_total,
            x.spare_free_blocks
        );
    }
    s
}

/// Arguments of `remap-lab tracegen`.
#[derive(Args)]
pub struct TracegenArgs {
    /// Directory to write the traces and `truth.csv` to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of devices.
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Trace family (generator).
    #[arg(long, value_enum, default_value_t = Family::A)]
    pub family: Family,
}

/// Runs `tracegen`: one CSV per device (`NNNN-class.csv`) and `truth.csv` with
/// `file,class,onset_t,fail_t` (empty when not applicable).
pub fn run(a: TracegenArgs) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(&a.out) {
        eprintln!("remap-lab tracegen: {}: {e}", a.out.display());
        return ExitCode::from(1);
    }
    let mut truth = format!("{TRUTH_HEADER}\n");
    for i in 0..a.count {
        let class = fleet_class(i, a.count);
        let (samples, t) = a.family.generate(a.seed, i as u64, class);
        let name = format!("{i:04}-{}.csv", class.name());
        if let Err(e) = std::fs::write(a.out.join(&name), to_csv(&samples)) {
            eprintln!("remap-lab tracegen: {name}: {e}");
            return ExitCode::from(1);
        }
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let _ = writeln!(
            truth,
            "{name},{},{},{}",
            class.name(),
            opt(t.onset_t),
            opt(t.fail_t)
        );
    }
    if let Err(e) = std::fs::write(a.out.join("truth.csv"), truth) {
        eprintln!("remap-lab tracegen: truth.csv: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
