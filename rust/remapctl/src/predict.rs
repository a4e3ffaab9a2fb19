//! `remapctl predict`: the remap-core prediction engine over recorded traces.
//!
//! A trace is a CSV file with the header [`remapctl::trace::HEADER`] and one row per
//! sample.
//! The engine runs over it exactly as in the kernel; every change of the reported level
//! is printed (as text, or with `--json` as a list of
//! `{"t_s", "level", "ttf_s", "tts_s", "confidence", "model", "reason", "reason_id",
//! "detail", "models"}`, `models` holding every model's verdict at that sample). A directory
//! is processed file by file (`*.csv`, sorted, `truth.csv` skipped).

use clap::Args;
use remap_core::predict::{Alert, Engine, Verdict, NO_TTF};
use remap_core::stats::Sample;
use remapctl::trace::{days, parse, reason_text, TraceError};
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
