//! `remapctl predict` and the development tools' `remap-lab tracegen` and `evaluate`
//! end to end: a hand-written CSV, a generated fleet as a directory (predicted and
//! evaluated), and bad input; the admin CLI has no development commands.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output};

const HEADER: &str = "t_s,reads,read_errors,writes,write_errors,lat_p50_us,lat_p99_us,remapped_total,pending_total,spare_free_blocks";

fn remapctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_remapctl"))
        .args(args)
        .output()
        .expect("run remapctl")
}

fn lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_remap-lab"))
        .args(args)
        .output()
        .expect("run remap-lab")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("remapctl-predict-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 30 days of hourly samples; from day 10 the error rate grows 10 ppm a day, and the
/// spare runs out in the last hour.
fn degrading_csv() -> String {
    let mut s = format!("{HEADER}\n");
    let mut remapped = 0u64;
    for h in 0..30 * 24u64 {
        let d = h / 24;
        let errs = d.saturating_sub(10);
        remapped += errs;
        let free = if h == 30 * 24 - 1 {
            0
        } else {
            100_000 - remapped
        };
        writeln!(
            s,
            "{},70000,{errs},30000,0,200,1000,{remapped},0,{free}",
            (h + 1) * 3600
        )
        .unwrap();
    }
    s
}

#[test]
fn predict_json_on_a_degrading_trace() {
    let d = scratch("json");
    let f = d.join("dev.csv");
    std::fs::write(&f, degrading_csv()).unwrap();
    let o = remapctl(&["predict", "--trace", f.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = v.as_array().unwrap();
    let levels: Vec<&str> = list.iter().map(|a| a["level"].as_str().unwrap()).collect();
    assert!(levels.contains(&"warning"), "{levels:?}");
    assert_eq!(*levels.last().unwrap(), "emergency");
    let w = list.iter().find(|a| a["level"] == "warning").unwrap();
    for k in ["t_s", "level", "ttf_s", "confidence", "model", "reason"] {
        assert!(w.get(k).is_some(), "{k} missing in {w}");
    }
    // A forecast, unless the deciding model is the baseline one (a step or weekly
    // growth against the device's own past: a warning without a forecast).
    assert!(
        w["ttf_s"].as_u64().is_some() || w["model"] == "baseline",
        "{w}"
    );
    assert_eq!(list.last().unwrap()["reason"], "spare exhausted");
    assert_eq!(list.last().unwrap()["reason_id"], "spare_exhausted");
    // Every model's figures, the deciding one among them.
    let models = w["models"].as_array().unwrap();
    assert_eq!(models.len(), 5, "{w}");
    assert!(
        models
            .iter()
            .any(|m| m["model"] == w["model"] && m["reason_id"] == w["reason_id"]),
        "{w}"
    );
    assert!(w["detail"].as_i64().is_some(), "{w}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn tracegen_then_predict_a_directory() {
    let d = scratch("dir");
    let o = lab(&[
        "tracegen",
        "--out",
        d.to_str().unwrap(),
        "--seed",
        "3",
        "--count",
        "6",
    ]);
    assert!(o.status.success());
    let truth = std::fs::read_to_string(d.join("truth.csv")).unwrap();
    assert_eq!(truth.lines().count(), 7);
    let o = remapctl(&["predict", "--trace", d.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 6);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn predict_bad_input() {
    let d = scratch("bad");
    let f = d.join("bad.csv");
    std::fs::write(&f, "t_s,reads\n1,2\n").unwrap();
    let o = remapctl(&["predict", "--trace", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("header"));
    std::fs::write(&f, format!("{HEADER}\n1,2,3,4,5,6,7,8,9\n")).unwrap();
    let o = remapctl(&["predict", "--trace", f.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains(":2: 9 fields"));
    std::fs::write(&f, format!("{HEADER}\n1,2,3,4,5,6,7,8,9,x\n")).unwrap();
    let o = remapctl(&["predict", "--trace", f.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad number `x`"));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn development_commands_are_not_in_the_admin_cli() {
    for cmd in ["tracegen", "evaluate", "crosseval"] {
        let o = remapctl(&[cmd, "--help"]);
        assert_eq!(o.status.code(), Some(2), "remapctl {cmd}");
        let o = lab(&[cmd, "--help"]);
        assert!(o.status.success(), "remap-lab {cmd}");
    }
}

#[test]
fn evaluate_reads_a_tracegen_directory() {
    let d = scratch("eval");
    let dir = d.to_str().unwrap();
    let o = lab(&["tracegen", "--out", dir, "--seed", "4", "--count", "25"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = lab(&["evaluate", "--dir", dir, "--passes", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let from_dir = String::from_utf8(o.stdout).unwrap();
    let o = lab(&["evaluate", "--seed", "4", "--count", "25", "--passes", "0"]);
    assert!(o.status.success());
    let generated = String::from_utf8(o.stdout).unwrap();
    // The same figures; the directory run also timed every sample.
    let figures = |s: &str| s.split("\nengine cost").next().unwrap_or("").to_string();
    assert_eq!(figures(&from_dir), figures(&generated));
    assert!(
        from_dir.contains("15 healthy, 8 degrading, 2 sudden"),
        "{from_dir}"
    );
    assert!(from_dir.contains("max"), "{from_dir}");
    // --dir and --seed exclude each other; a directory without truth.csv is an error.
    let o = lab(&["evaluate", "--dir", dir, "--seed", "4"]);
    assert!(!o.status.success());
    std::fs::remove_file(d.join("truth.csv")).unwrap();
    let o = lab(&["evaluate", "--dir", dir]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("truth.csv"));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn predict_plot_draws_the_trace_and_the_alerts() {
    let d = scratch("plot");
    let f = d.join("dev.csv");
    let svg = d.join("dev.svg");
    std::fs::write(&f, degrading_csv()).unwrap();
    let o = remapctl(&[
        "predict",
        "--trace",
        f.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The alerts are still printed.
    assert!(String::from_utf8_lossy(&o.stdout).contains("emergency"));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..80.min(text.len())]);
    for caption in [
        "error rate, ppm of I/Os",
        "p99 latency, ms",
        "spare used, %",
        "alert level",
        "emergency",
    ] {
        assert!(text.contains(caption), "{caption} missing");
    }
    // A directory cannot be plotted into one file.
    let o = remapctl(&[
        "predict",
        "--trace",
        d.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("single trace"));
    let _ = std::fs::remove_dir_all(d);
}
