//! The trace format shared by `remapctl predict` and the development tools
//! (`remap-lab`): a CSV file with the header [`HEADER`] and one row per sample, as
//! Documentation/prediction.md describes; and the text of an alert's reason.

use remap_core::predict::{Alert, Reason};
use remap_core::stats::Sample;
use std::path::{Path, PathBuf};

/// CSV header of a trace file.
pub const HEADER: &str = remap_core::stats::TRACE_HEADER;

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

/// Seconds as days, one decimal: `3.2 d`.
pub fn days(s: u64) -> String {
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
        Reason::PeriodicGrowing => format!(
            "errors at the same hours every day, {:.1}x the rate of the week before",
            d as f64 / 1000.0
        ),
        Reason::LatencyRising => format!("p99 latency rising {d}% per day at steady load"),
        Reason::BadBlocksGrowing => format!(
            "new bad blocks over two weeks at {:.1}x the device's own past rate, still coming",
            d as f64 / 1000.0
        ),
    }
}
