//! `remapctl predict --plot FILE.svg`: a trace and the engine's alerts on one time axis,
//! so that an admin can see why an alert fired. Four panels over days since the first
//! sample: the error rate (ppm of I/Os, per sample), p99 latency (ms), spare used (%)
//! and the reported alert level (info..emergency), every level change marked.

use plotters::prelude::*;
use remap_core::predict::{Alert, Level};
use remap_core::stats::Sample;
use std::path::Path;

/// A point: days since the first sample, value.
type Point = (f64, f64);

const LEVELS: [&str; 5] = ["info", "notice", "warning", "critical", "emergency"];

fn level_y(l: Level) -> f64 {
    match l {
        Level::Info => 0.0,
        Level::Notice => 1.0,
        Level::Warning => 2.0,
        Level::Critical => 3.0,
        Level::Emergency => 4.0,
    }
}

/// Draws `samples` and `alerts` (the level changes) into an SVG file at `path`.
pub fn svg(path: &Path, title: &str, samples: &[Sample], alerts: &[Alert]) -> Result<(), String> {
    let text = svg_text(title, samples, alerts, (1200, 900))?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The same drawing as SVG text of `size` pixels (the dashboard embeds it).
pub fn svg_text(
    title: &str,
    samples: &[Sample],
    alerts: &[Alert],
    size: (u32, u32),
) -> Result<String, String> {
    let mut out = String::new();
    draw(
        SVGBackend::with_string(&mut out, size).into_drawing_area(),
        title,
        samples,
        alerts,
    )?;
    Ok(out)
}

fn draw(
    root: DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    samples: &[Sample],
    alerts: &[Alert],
) -> Result<(), String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let t0 = samples.first().map_or(0, |s| s.t_s);
    let day = |t: u64| t.saturating_sub(t0) as f64 / 86_400.0;
    let x_end = samples.last().map_or(1.0, |s| day(s.t_s)).max(1.0);
    let rate: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| {
            let r = if s.ios() == 0 {
                0.0
            } else {
                s.errors() as f64 * 1e6 / s.ios() as f64
            };
            (day(s.t_s), r)
        })
        .collect();
    let lat: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (day(s.t_s), s.lat_p99_us as f64 / 1000.0))
        .collect();
    let spare: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| {
            let total = s.remapped_total.saturating_add(s.spare_free_blocks);
            let pct = if total == 0 {
                0.0
            } else {
                s.remapped_total as f64 * 100.0 / total as f64
            };
            (day(s.t_s), pct)
        })
        .collect();
    // The reported level as a step line: flat until each change.
    let mut level = vec![(0.0, 0.0)];
    let mut cur = 0.0;
    for a in alerts {
        let x = day(a.t_s);
        level.push((x, cur));
        cur = level_y(a.level);
        level.push((x, cur));
    }
    level.push((x_end, cur));

    root.fill(&WHITE).map_err(|x| e(&x))?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(|x| e(&x))?;
    let panels = root.split_evenly((4, 1));
    let max_of = |v: &[(f64, f64)]| v.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-9) * 1.05;
    let series: [(&str, &[Point], RGBColor); 3] = [
        ("error rate, ppm of I/Os", &rate[..], RED),
        ("p99 latency, ms", &lat[..], BLUE),
        ("spare used, %", &spare[..], GREEN),
    ];
    for (area, (name, data, color)) in panels.iter().zip(series) {
        let mut c = ChartBuilder::on(area)
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(60)
            .caption(name, ("sans-serif", 14))
            .build_cartesian_2d(0.0..x_end, 0.0..max_of(data))
            .map_err(|x| e(&x))?;
        c.configure_mesh()
            .x_desc("days")
            .draw()
            .map_err(|x| e(&x))?;
        c.draw_series(LineSeries::new(data.iter().copied(), color))
            .map_err(|x| e(&x))?;
        // The level changes, as vertical marks on every panel.
        let top = max_of(data);
        for a in alerts.iter().filter(|a| a.level >= Level::Warning) {
            let x = day(a.t_s);
            c.draw_series(LineSeries::new([(x, 0.0), (x, top)], BLACK.mix(0.4)))
                .map_err(|x| e(&x))?;
        }
    }
    if let Some(area) = panels.get(3) {
        let mut c = ChartBuilder::on(area)
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(60)
            .caption(
                "alert level (warning and above marked above)",
                ("sans-serif", 14),
            )
            .build_cartesian_2d(0.0..x_end, -0.2..4.2)
            .map_err(|x| e(&x))?;
        c.configure_mesh()
            .x_desc("days")
            .y_labels(5)
            .y_label_formatter(&|y: &f64| {
                LEVELS
                    .get(y.round().max(0.0) as usize)
                    .copied()
                    .unwrap_or("")
                    .to_string()
            })
            .draw()
            .map_err(|x| e(&x))?;
        c.draw_series(LineSeries::new(level, BLACK))
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))
}
