//! `remapctl predict`: the remap-core prediction engine over recorded traces.
//!
//! A trace is a CSV file with the header [`tracegen::HEADER`] and one row per sample.
//! The engine runs over it exactly as in the kernel; every change of the reported level
//! is printed (as text, or with `--json` as a list of
//! `{"t_s", "level", "ttf_s", "tts_s", "confidence", "model", "reason", "reason_id",
//! "detail", "models"}`, `models` holding every model's verdict at that sample). A directory
//! is processed file by file (`*.csv`, sorted, `truth.csv` skipped).

use crate::tracegen::HEADER;
use clap::Args;
use remap_core::predict::{Alert, Engine, Reason, Verdict, NO_TTF};
use remap_core::stats::Sample;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `remapctl predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// Trace CSV file, or a directory of them.
    #[arg(long)]
    pub trace: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Also draw the trace (error rate, p99 latency, spare used) and the alert level on
    /// one time axis into this SVG file (a single trace only).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// Errors reading a trace.
#[derive(Debug)]
pub enum TraceError {
    /// The file could not be read.
    Io(PathBuf, std::io::Error),
    /// The header is not the trace header.
    Header(PathBuf),
    /// A row is malformed (1-based line number).
    Row(PathBuf, usize, String),
    /// The plot could not be drawn.
    Plot(PathBuf, String),
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            TraceError::Header(p) => write!(f, "{}: header is not `{HEADER}`", p.display()),
            TraceError::Row(p, n, m) => write!(f, "{}:{n}: {m}", p.display()),
            TraceError::Plot(p, m) => write!(f, "{}: {m}", p.display()),
        }
    }
}

impl std::error::Error for TraceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TraceError::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Parses a trace.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Sample>, TraceError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim_end() == HEADER => {}
        _ => return Err(TraceError::Header(path.to_path_buf())),
    }
    let mut out = Vec::new();
    for (i, line) in lines {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let mut v = [0u64; 10];
        let mut n = 0;
        for (k, f) in line.split(',').enumerate() {
            let slot = v.get_mut(k).ok_or_else(|| {
                TraceError::Row(path.to_path_buf(), i + 1, "more than 10 fields".into())
            })?;
            *slot = f.parse().map_err(|_| {
                TraceError::Row(path.to_path_buf(), i + 1, format!("bad number `{f}`"))
            })?;
            n = k + 1;
        }
        if n != 10 {
            return Err(TraceError::Row(
                path.to_path_buf(),
                i + 1,
                format!("{n} fields, want 10"),
            ));
        }
        out.push(Sample {
            t_s: v[0],
            reads: v[1],
            read_errors: v[2],
            writes: v[3],
            write_errors: v[4],
            lat_p50_us: v[5],
            lat_p99_us: v[6],
            remapped_total: v[7],
            pending_total: v[8],
            spare_free_blocks: v[9],
        });
    }
    Ok(out)
}

fn days(s: u64) -> String {
    format!("{:.1} d", s as f64 / 86_400.0)
}

/// Human text for an alert's reason and detail.
pub fn reason_text(a: &Alert) -> String {
    let d = a.detail;
    match a.reason {
        Reason::Healthy => "no sign of trouble".into(),
        Reason::ErrorsSeen => format!("{d} errors in the last day, no trend"),
        Reason::PendingBlocks => format!("{d} blocks pending remap"),
        Reason::SpareUsed => format!("{:.1}% of the spare used", d as f64 / 10.0),
        Reason::SpareLow => format!("spare nearly used up ({:.1}%)", d as f64 / 10.0),
        Reason::SpareExhausted => "spare exhausted".into(),
        Reason::ErrorRateUnusable => {
            format!("error rate {:.3}% over the last day", d as f64 / 1e7)
        }
        Reason::ErrorRateTrend => {
            format!("error rate rising by {:.3} ppm per day", d as f64 / 1000.0)
        }
        Reason::ErrorRateGrowth => format!("error rate doubling every {}", days(d as u64)),
        Reason::SpareTrend => format!("remaps consume the spare at {d} blocks per day"),
        Reason::RecurringErrors => format!("errors recur daily from {d:02}:00"),
        Reason::PeriodicWorsening => format!("errors recur daily from {d:02}:00 and grow"),
        Reason::LatencyRising => format!("p99 latency rising {d}% per day at steady load"),
        Reason::ErrorRateStep => format!(
            "errors on most days, {:.1}x the device's own rate of the weeks before",
            d as f64 / 1000.0
        ),
        Reason::ErrorsGrowingWeekly => format!(
            "errors growing week after week, {:.1}x the rate of three weeks before",
            d as f64 / 1000.0
        ),
    }
}

/// One model's verdict in JSON: the figures behind an alert.
#[derive(Serialize)]
pub struct JVerdict {
    model: &'static str,
    level: &'static str,
    /// Forecast seconds to failure (to spare exhaustion for `spare_trend`) from when
    /// the verdict was made; null when none.
    ttf_s: Option<u64>,
    confidence: f64,
    reason_id: &'static str,
    detail: i64,
}

impl From<&Verdict> for JVerdict {
    fn from(v: &Verdict) -> Self {
        JVerdict {
            model: v.model.as_str(),
            level: v.level.as_str(),
            ttf_s: (v.ttf_s != NO_TTF).then_some(v.ttf_s),
            confidence: f64::from(v.confidence) / 1000.0,
            reason_id: v.reason.as_str(),
            detail: v.detail,
        }
    }
}

/// One alert in JSON.
#[derive(Serialize)]
pub struct JAlert {
    t_s: u64,
    level: &'static str,
    ttf_s: Option<u64>,
    tts_s: Option<u64>,
    confidence: f64,
    model: &'static str,
    reason: String,
    /// Stable identifier of the reason ([`Reason::as_str`]).
    reason_id: &'static str,
    /// The reason's figure (see [`Reason`]).
    detail: i64,
    /// Every model's verdict when the alert was raised: threshold, error-rate trend
    /// (or baseline), spare, periodic, latency.
    models: Vec<JVerdict>,
}

impl JAlert {
    fn new(a: &Alert, verdicts: &[Verdict]) -> Self {
        JAlert {
            t_s: a.t_s,
            level: a.level.as_str(),
            ttf_s: a.ttf_s,
            tts_s: a.tts_s,
            confidence: f64::from(a.confidence) / 1000.0,
            model: a.model.as_str(),
            reason: reason_text(a),
            reason_id: a.reason.as_str(),
            detail: a.detail,
            models: verdicts.iter().map(JVerdict::from).collect(),
        }
    }
}

/// Runs the engine over `samples`: the alerts at every level change, with every
/// model's verdict at each.
pub fn alerts_with_verdicts(samples: &[Sample]) -> Vec<(Alert, [Verdict; 5])> {
    let mut e = Engine::default();
    samples
        .iter()
        .filter_map(|s| e.push(s).map(|a| (a, e.verdicts())))
        .collect()
}

fn text_line(a: &Alert) -> String {
    let opt = |v: Option<u64>| v.map_or("-".to_string(), days);
    format!(
        "{} {:<9} ttf {:>8} spare {:>8} conf {:.2} {:<11} {}",
        a.t_s,
        a.level.as_str(),
        opt(a.ttf_s),
        opt(a.tts_s),
        f64::from(a.confidence) / 1000.0,
        a.model.as_str(),
        reason_text(a)
    )
}

#[derive(Serialize)]
struct JFile {
    file: String,
    alerts: Vec<JAlert>,
}

/// Prints a line; a closed stdout (`| head`) is not an error worth a panic.
fn out(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn run_inner(a: &PredictArgs) -> Result<(), TraceError> {
    let read = |p: &Path| -> Result<Vec<(Alert, [Verdict; 5])>, TraceError> {
        let text = std::fs::read_to_string(p).map_err(|e| TraceError::Io(p.to_path_buf(), e))?;
        Ok(alerts_with_verdicts(&parse(p, &text)?))
    };
    if a.trace.is_dir() {
        if let Some(p) = &a.plot {
            return Err(TraceError::Plot(
                p.clone(),
                "--plot takes a single trace, not a directory".into(),
            ));
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&a.trace)
            .map_err(|e| TraceError::Io(a.trace.clone(), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "csv")
                    && p.file_name().is_some_and(|n| n != "truth.csv")
            })
            .collect();
        files.sort();
        let mut files_out = Vec::new();
        for f in &files {
            let al = read(f)?;
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if a.json {
                files_out.push(JFile {
                    file: name,
                    alerts: al.iter().map(|(a, v)| JAlert::new(a, v)).collect(),
                });
            } else {
                out(&format!("== {name}"));
                for x in &al {
                    out(&text_line(&x.0));
                }
            }
        }
        if a.json {
            out(&serde_json::to_string_pretty(&files_out).unwrap_or_default());
        }
    } else {
        let text =
            std::fs::read_to_string(&a.trace).map_err(|e| TraceError::Io(a.trace.clone(), e))?;
        let samples = parse(&a.trace, &text)?;
        let al = alerts_with_verdicts(&samples);
        if let Some(p) = &a.plot {
            let only: Vec<Alert> = al.iter().map(|x| x.0).collect();
            let title = a.trace.display().to_string();
            crate::plot::svg(p, &title, &samples, &only)
                .map_err(|m| TraceError::Plot(p.clone(), m))?;
        }
        if a.json {
            let j: Vec<JAlert> = al.iter().map(|(a, v)| JAlert::new(a, v)).collect();
            out(&serde_json::to_string_pretty(&j).unwrap_or_default());
        } else {
            for x in &al {
                out(&text_line(&x.0));
            }
        }
    }
    Ok(())
}

/// Runs `predict`.
pub fn run(a: PredictArgs) -> ExitCode {
    match run_inner(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("remapctl predict: {e}");
            ExitCode::from(1)
        }
    }
}
