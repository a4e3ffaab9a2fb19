//! `remap-lab evaluate`: the prediction engine against two baselines over a generated
//! fleet (see `tracegen` for the classes), or over a directory written by
//! `remap-lab tracegen --out DIR` (`--dir DIR`: its `truth.csv` gives the outcomes).
//!
//! A detector *alerts* on a device at the first sample where it would page an admin:
//! the engine at level warning or above; the *first error* baseline at the first failed
//! I/O; the *threshold* baseline when the error rate over the last 24 hours reaches
//! 100 ppm (a tenth of the unusable rate). Figures:
//! - **detection**: degrading devices alerted between the onset of degradation and the
//!   failure (an alert before the onset is an early false alarm, not a detection);
//! - **median lead**: failure time minus alert time over the detected devices;
//! - **false alarms**: healthy devices alerted at any time.
//!
//! Sudden failures are counted apart: nothing can detect them from these signals.
//!
//! Cost: every sample is also timed alone (`--passes N` times over fresh engines, the
//! smallest timing kept, so an interrupt or preemption during one pass does not count)
//! and the average, 99.9th percentile and maximum are reported, overall and per kind of
//! sample (ordinary, closing a day, each phase of the day-level work).

use crate::tracegen::{self, Class, Family, Truth, TRUTH_HEADER};
use clap::Args;
use remap_core::predict::{Engine, Level, Phase};
use remap_core::stats::Sample;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Something that alerts on a device.
trait Detector {
    fn push(&mut self, s: &Sample) -> bool;
}

struct EngineDet(Box<Engine>);
impl Detector for EngineDet {
    fn push(&mut self, s: &Sample) -> bool {
        self.0.push(s);
        self.0.current().level >= Level::Warning
    }
}

struct FirstError;
impl Detector for FirstError {
    fn push(&mut self, s: &Sample) -> bool {
        s.errors() > 0
    }
}

/// 24-hour error rate at or above `ppm`.
struct Threshold {
    ppm: u64,
    win: VecDeque<(u64, u64, u64)>,
    errors: u64,
    ios: u64,
}
impl Detector for Threshold {
    fn push(&mut self, s: &Sample) -> bool {
        self.win.push_back((s.t_s, s.errors(), s.ios()));
        self.errors += s.errors();
        self.ios += s.ios();
        while let Some(&(t, e, n)) = self.win.front() {
            if t + 86_400 > s.t_s {
                break;
            }
            self.win.pop_front();
            self.errors -= e;
            self.ios -= n;
        }
        self.ios > 0 && self.errors * 1_000_000 >= self.ppm * self.ios
    }
}

/// One detector's figures.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Figures {
    /// Healthy devices.
    pub healthy: usize,
    /// Healthy devices alerted.
    pub false_alarms: usize,
    /// Degrading devices.
    pub degrading: usize,
    /// Degrading devices alerted after onset.
    pub detected: usize,
    /// Degrading devices alerted before onset.
    pub early: usize,
    /// Lead times of the detected devices, hours.
    pub leads_h: Vec<u64>,
    /// Sudden failures, and how many were alerted before failing.
    pub sudden: (usize, usize),
}

impl Figures {
    /// Detection rate, percent.
    pub fn detection_pct(&self) -> f64 {
        pct(self.detected, self.degrading)
    }
    /// False-alarm rate, percent.
    pub fn false_alarm_pct(&self) -> f64 {
        pct(self.false_alarms, self.healthy)
    }
    /// Median lead time, hours (lower median).
    pub fn median_lead_h(&self) -> u64 {
        let mut v = self.leads_h.clone();
        v.sort_unstable();
        v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
    }

    /// Counts one device whose first alert (if any) came at `alert_t`.
    pub fn add(&mut self, truth: &Truth, alert_t: Option<u64>) {
        let c = truth.class;
        if c.healthy() {
            self.healthy += 1;
            self.false_alarms += usize::from(alert_t.is_some());
        } else if c == Class::Sudden {
            self.sudden.0 += 1;
            self.sudden.1 += usize::from(alert_t.is_some());
        } else {
            self.degrading += 1;
            let onset = truth.onset_t.unwrap_or(0);
            let fail = truth.fail_t.unwrap_or(u64::MAX);
            match alert_t {
                Some(t) if t < onset => self.early += 1,
                Some(t) => {
                    self.detected += 1;
                    self.leads_h.push(fail.saturating_sub(t) / 3600);
                }
                None => {}
            }
        }
    }
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

/// What a sample did beyond the per-sample work, for the cost breakdown.
pub const SAMPLE_KINDS: [&str; 6] = [
    "ordinary sample",
    "closes a day (medians, logs)",
    "phase: medians (a step)",
    "phase: trend, spare",
    "phase: periodic (a step)",
    "phase: latency, publish",
];

/// Per-sample cost of the engine.
#[derive(Debug, Default)]
pub struct Cost {
    /// Timing passes over each device.
    pub passes: usize,
    /// Every sample's cost, ns: the smallest of the passes (an interrupt or a
    /// preemption hits one pass, not all of them).
    pub per_sample_ns: Vec<u32>,
    /// Per kind of sample ([`SAMPLE_KINDS`]): count, total ns, largest ns.
    pub by_kind: [(u64, u64, u32); 6],
    /// Largest single timing of any pass, ns, and how many timings (over all passes)
    /// exceeded 2 µs: what the machine's load added.
    pub raw_max_ns: u32,
    /// See `raw_max_ns`.
    pub raw_over_2us: u64,
}

impl Cost {
    /// Mean, ns.
    pub fn avg_ns(&self) -> f64 {
        let n = self.per_sample_ns.len().max(1) as f64;
        self.per_sample_ns
            .iter()
            .map(|&v| f64::from(v))
            .sum::<f64>()
            / n
    }
    /// Largest, ns.
    pub fn max_ns(&self) -> u32 {
        self.per_sample_ns.iter().copied().max().unwrap_or(0)
    }
    /// The `permille`/1000 percentile (nearest rank), ns.
    pub fn percentile_ns(&self, permille: usize) -> u32 {
        let mut v = self.per_sample_ns.clone();
        if v.is_empty() {
            return 0;
        }
        let rank = (v.len() * permille).div_ceil(1000).clamp(1, v.len());
        *v.select_nth_unstable(rank - 1).1
    }
}

/// The evaluation of a fleet.
#[derive(Debug, Default)]
pub struct Report {
    /// Engine, first-error baseline, threshold baseline.
    pub figures: [Figures; 3],
    /// Engine figures per class.
    pub per_class: BTreeMap<Class, Figures>,
    /// Samples fed to the engine.
    pub samples: u64,
    /// Engine time over all samples in one run, ns.
    pub engine_ns: u128,
    /// Every sample timed alone (when asked for).
    pub cost: Cost,
    /// One line per device the engine got wrong (a missed degrading device, an alerted
    /// healthy one), for `--misses`.
    pub misses: Vec<String>,
}

/// Names of the detectors, in [`Report::figures`] order.
pub const DETECTORS: [&str; 3] = ["engine", "first error", "threshold 100 ppm/24h"];

fn first_alert(d: &mut dyn Detector, samples: &[Sample]) -> Option<u64> {
    let mut first = None;
    for s in samples {
        if d.push(s) && first.is_none() {
            first = Some(s.t_s);
        }
    }
    first
}

/// Times every sample of one device alone, `passes` times over fresh engines; keeps the
/// smallest timing of each sample.
fn time_samples(samples: &[Sample], passes: usize, cost: &mut Cost) {
    let mut best = vec![u32::MAX; samples.len()];
    let mut kind = vec![0usize; samples.len()];
    for _ in 0..passes {
        let mut e = Box::<Engine>::default();
        for (i, s) in samples.iter().enumerate() {
            let phase = e.day_phase();
            let open = e.health().open_day().map(|d| d.day);
            let t = Instant::now();
            e.push(s);
            let ns = u32::try_from(t.elapsed().as_nanos()).unwrap_or(u32::MAX);
            let closed = open.is_some() && e.health().open_day().map(|d| d.day) != open;
            kind[i] = match phase {
                _ if closed => 1,
                Phase::Idle => 0,
                Phase::Medians => 2,
                Phase::Trend => 3,
                Phase::Periodic => 4,
                Phase::Latency => 5,
            };
            best[i] = best[i].min(ns);
            cost.raw_max_ns = cost.raw_max_ns.max(ns);
            cost.raw_over_2us += u64::from(ns > 2000);
        }
    }
    for (&ns, &k) in best.iter().zip(&kind) {
        let b = &mut cost.by_kind[k];
        b.0 += 1;
        b.1 += u64::from(ns);
        b.2 = b.2.max(ns);
    }
    cost.per_sample_ns.extend_from_slice(&best);
}

impl Report {
    /// Adds one device: the three detectors over its samples, and with `passes` > 0 the
    /// engine's cost of every sample.
    fn add_device(&mut self, samples: &[Sample], truth: &Truth, passes: usize) {
        let mut eng = EngineDet(Box::default());
        let start = Instant::now();
        let mut a0 = None;
        let mut why = None;
        for s in samples {
            if eng.push(s) && a0.is_none() {
                a0 = Some(s.t_s);
                why = Some(*eng.0.current());
            }
        }
        self.engine_ns += start.elapsed().as_nanos();
        let c = truth.class;
        let interval = match samples {
            [a, b, ..] => b.t_s - a.t_s,
            _ => 0,
        };
        let wrong = if c.healthy() {
            a0.is_some()
        } else {
            c.degrading() && a0.is_none_or(|t| t < truth.onset_t.unwrap_or(0))
        };
        if wrong {
            let day =
                |t: Option<u64>| t.map_or("-".into(), |t| format!("{:.1}", t as f64 / 86_400.0));
            let t0 = samples.first().map_or(0, |s| s.t_s);
            let rel = |t: Option<u64>| day(t.map(|t| t.saturating_sub(t0)));
            self.misses.push(format!(
                "{:<14} #{:<4} every {:>4} s  onset {:>6} fail {:>6} alert {:>6} {}",
                c.name(),
                self.per_class
                    .get(&c)
                    .map_or(0, |f| f.healthy + f.degrading + f.sudden.0),
                interval,
                rel(truth.onset_t),
                rel(truth.fail_t),
                rel(a0),
                why.map_or(String::new(), |a| format!(
                    "{} {} {} conf {}",
                    a.level.as_str(),
                    a.model.as_str(),
                    remapctl::trace::reason_text(&a),
                    a.confidence
                )),
            ));
        }
        if passes > 0 {
            time_samples(samples, passes, &mut self.cost);
        }
        self.samples += samples.len() as u64;
        let a1 = first_alert(&mut FirstError, samples);
        let mut th = Threshold {
            ppm: 100,
            win: VecDeque::new(),
            errors: 0,
            ios: 0,
        };
        let a2 = first_alert(&mut th, samples);
        for (f, a) in self.figures.iter_mut().zip([a0, a1, a2]) {
            f.add(truth, a);
        }
        self.per_class
            .entry(truth.class)
            .or_default()
            .add(truth, a0);
    }
}

/// Evaluates a generated fleet of `count` devices of `family` for `seed`; with
/// `passes` > 0, also times every sample alone, `passes` times.
pub fn evaluate(family: Family, seed: u64, count: usize, passes: usize) -> Report {
    let mut rep = Report {
        cost: Cost {
            passes,
            ..Cost::default()
        },
        ..Report::default()
    };
    for i in 0..count {
        let class = tracegen::fleet_class(i, count);
        let (samples, truth) = family.generate(seed, i as u64, class);
        rep.add_device(&samples, &truth, passes);
    }
    rep
}

/// Evaluates the traces of a directory written by `remap-lab tracegen` (or laid out
/// alike): `truth.csv` with `file,class,onset_t,fail_t` (times empty when not
/// applicable) names every trace file of the directory and its outcome.
pub fn evaluate_dir(dir: &Path, passes: usize) -> Result<Report, String> {
    let tp = dir.join("truth.csv");
    let text = std::fs::read_to_string(&tp).map_err(|e| format!("{}: {e}", tp.display()))?;
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim_end() == TRUTH_HEADER => {}
        _ => return Err(format!("{}: header is not `{TRUTH_HEADER}`", tp.display())),
    }
    let mut rep = Report {
        cost: Cost {
            passes,
            ..Cost::default()
        },
        ..Report::default()
    };
    for (i, line) in lines {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let bad = |m: &str| format!("{}:{}: {m}", tp.display(), i + 1);
        let f: Vec<&str> = line.split(',').collect();
        let [file, class, onset, fail] = *f.as_slice() else {
            return Err(bad(&format!("{} fields, want 4", f.len())));
        };
        let class = Class::from_name(class).ok_or_else(|| bad(&format!("no class `{class}`")))?;
        let time = |v: &str| -> Result<Option<u64>, String> {
            if v.is_empty() {
                Ok(None)
            } else {
                v.parse()
                    .map(Some)
                    .map_err(|_| bad(&format!("bad time `{v}`")))
            }
        };
        let truth = Truth {
            class,
            onset_t: time(onset)?,
            fail_t: time(fail)?,
        };
        if class.degrading() && (truth.onset_t.is_none() || truth.fail_t.is_none()) {
            return Err(bad("a degrading device needs onset_t and fail_t"));
        }
        let p = dir.join(file);
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let samples = remapctl::trace::parse(&p, &text).map_err(|e| e.to_string())?;
        rep.add_device(&samples, &truth, passes);
    }
    Ok(rep)
}

impl Report {
    /// The report as a text table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let f0 = &self.figures[0];
        s.push_str(&format!(
            "{} healthy, {} degrading, {} sudden devices\n\n",
            f0.healthy, f0.degrading, f0.sudden.0
        ));
        s.push_str(&format!(
            "{:<24} {:>10} {:>12} {:>13} {:>7} {:>7}\n",
            "detector", "detection", "median lead", "false alarms", "early", "sudden"
        ));
        for (name, f) in DETECTORS.iter().zip(&self.figures) {
            s.push_str(&format!(
                "{:<24} {:>9.1}% {:>10} h {:>12.2}% {:>7} {:>4}/{}\n",
                name,
                f.detection_pct(),
                f.median_lead_h(),
                f.false_alarm_pct(),
                f.early,
                f.sudden.1,
                f.sudden.0
            ));
        }
        s.push_str("\nengine per class:\n");
        for (c, f) in &self.per_class {
            if c.healthy() {
                s.push_str(&format!(
                    "  {:<14} false alarms {}/{}\n",
                    c.name(),
                    f.false_alarms,
                    f.healthy
                ));
            } else if c.degrading() {
                s.push_str(&format!(
                    "  {:<14} detected {}/{} (early {}), median lead {} h\n",
                    c.name(),
                    f.detected,
                    f.degrading,
                    f.early,
                    f.median_lead_h()
                ));
            } else {
                s.push_str(&format!(
                    "  {:<14} alerted {}/{}\n",
                    c.name(),
                    f.sudden.1,
                    f.sudden.0
                ));
            }
        }
        if self.samples > 0 {
            s.push_str(&format!(
                "\nengine cost, one run: {:.0} ns per sample over {} samples\n",
                self.engine_ns as f64 / self.samples as f64,
                self.samples
            ));
        }
        let c = &self.cost;
        if !c.per_sample_ns.is_empty() {
            s.push_str(&format!(
                "every sample timed alone (smallest of {} passes, clock included): \
                 avg {:.0} ns, p99.9 {} ns, max {} ns\n",
                c.passes,
                c.avg_ns(),
                c.percentile_ns(999),
                c.max_ns()
            ));
            for (name, &(n, sum, max)) in SAMPLE_KINDS.iter().zip(&c.by_kind) {
                s.push_str(&format!(
                    "  {:<26} {:>8} samples, avg {:>5} ns, max {:>5} ns\n",
                    name,
                    n,
                    sum.checked_div(n).unwrap_or(0),
                    max
                ));
            }
            s.push_str(&format!(
                "single timings: max {} ns, {} over 2 us (interrupts, preemption); \
                 engine state {} bytes\n",
                c.raw_max_ns,
                c.raw_over_2us,
                std::mem::size_of::<Engine>()
            ));
        }
        s
    }
}

/// Arguments of `remap-lab evaluate`.
#[derive(Args)]
pub struct EvaluateArgs {
    /// Seed of the generated fleet.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of devices.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Trace family (generator) of the fleet.
    #[arg(long, value_enum, default_value_t = Family::A)]
    pub family: Family,
    /// Evaluate the traces of a directory written by `remap-lab tracegen` (its
    /// `truth.csv` gives every file's class, onset and failure) instead of generating
    /// a fleet.
    #[arg(long, conflicts_with_all = ["seed", "count", "family"])]
    pub dir: Option<PathBuf>,
    /// Also list every device the engine got wrong (missed or falsely alerted).
    #[arg(long)]
    pub misses: bool,
    /// Timing passes per device (each sample's cost is the smallest); 0: no timing.
    #[arg(long, default_value_t = 3)]
    pub passes: usize,
}

/// Runs `evaluate`.
pub fn run(a: EvaluateArgs) -> ExitCode {
    let rep = match &a.dir {
        Some(dir) => match evaluate_dir(dir, a.passes) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("remap-lab evaluate: {e}");
                return ExitCode::from(1);
            }
        },
        None => evaluate(a.family, a.seed, a.count, a.passes),
    };
    print!("{}", rep.table());
    if a.misses {
        println!();
        for m in &rep.misses {
            println!("{m}");
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (detected, degrading, median lead h, false alarms, healthy, early) per detector.
    fn key(f: &Figures) -> (usize, usize, u64, usize, usize, usize) {
        (
            f.detected,
            f.degrading,
            f.median_lead_h(),
            f.false_alarms,
            f.healthy,
            f.early,
        )
    }

    #[test]
    fn a_tracegen_directory_evaluates_like_the_generated_fleet() {
        let dir = std::env::temp_dir().join(format!("remap-lab-eval-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let code = tracegen::run(tracegen::TracegenArgs {
            out: dir.clone(),
            seed: 7,
            count: 40,
            family: Family::A,
        });
        assert_eq!(code, ExitCode::SUCCESS);
        let from_dir = evaluate_dir(&dir, 0).unwrap();
        let generated = evaluate(Family::A, 7, 40, 0);
        assert_eq!(from_dir.figures, generated.figures);
        assert_eq!(from_dir.per_class, generated.per_class);
        assert_eq!(from_dir.samples, generated.samples);
        assert_eq!(from_dir.figures[0].degrading, 13);
        // Broken truth files are reported with their line.
        let truth = dir.join("truth.csv");
        let text = std::fs::read_to_string(&truth).unwrap();
        std::fs::write(&truth, text.replacen(",linear,", ",lineal,", 1)).unwrap();
        let e = evaluate_dir(&dir, 0).unwrap_err();
        assert!(e.contains("no class `lineal`"), "{e}");
        std::fs::write(&truth, "file,class\n").unwrap();
        assert!(evaluate_dir(&dir, 0).unwrap_err().contains("header"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Change detector, not a quality measure: the figures of a fixed family-A fleet
    /// (the family the engine was first tuned on), pinned, so that any change in the
    /// engine that moves them must update this test on purpose. The quality that counts
    /// is the held-out family's, in Documentation/prediction.md (`remap-lab crosseval`).
    #[test]
    fn evaluator_figures_pinned_for_seed_42_600_devices() {
        let rep = evaluate(Family::A, 42, 600, 0);
        println!("{}", rep.table());
        let [e, first, thr] = &rep.figures;
        assert_eq!(key(e), (192, 192, 650, 0, 360, 0), "engine");
        assert_eq!(key(first), (136, 192, 855, 255, 360, 56), "first error");
        assert_eq!(key(thr), (163, 192, 241, 65, 360, 0), "threshold");
        assert_eq!(e.sudden, (48, 0));
        // The targets, and better than both baselines on detection and false alarms.
        assert!(e.detection_pct() >= 97.0);
        assert!(e.median_lead_h() >= 240);
        assert!(e.false_alarm_pct() <= 0.5);
        for b in [first, thr] {
            assert!(e.detection_pct() > b.detection_pct());
            assert!(e.false_alarm_pct() < b.false_alarm_pct());
        }
        assert!(e.median_lead_h() > thr.median_lead_h());
    }

    /// Change detector for family B, as the family-A one above: a small fleet (a
    /// fifth of its devices sample every minute), pinned.
    #[test]
    fn evaluator_figures_pinned_for_family_b_seed_42_60_devices() {
        let rep = evaluate(Family::B, 42, 60, 0);
        println!("{}", rep.table());
        let [e, first, thr] = &rep.figures;
        assert_eq!(key(e), (20, 20, 527, 0, 36, 0), "engine");
        assert_eq!(key(first), (10, 20, 706, 23, 36, 10), "first error");
        assert_eq!(key(thr), (16, 20, 428, 12, 36, 0), "threshold");
        assert_eq!(e.sudden, (4, 0));
    }
}
