//! `remapctl metrics`: every dm-remap target's figures in the Prometheus text exposition
//! format (the `prometheus-client` crate), on standard output or written atomically to
//! a file for node_exporter's textfile collector.
//!
//! Names follow the conventions node_exporter's md collector uses (`node_md_*`): a
//! `dmremap_` prefix, `_total` for counters, units in the name (`_bytes`, `_blocks`),
//! and one label set per target: `target` (the device-mapper name) and `device`
//! (`dm-N`). The I/O counters are the target's status counters, which start at 0 with
//! each table load (a reload is a counter reset to Prometheus).
//!
//! The crate encodes OpenMetrics; the textfile collector and `promtool check metrics`
//! read the Prometheus text format, which differs for counters (the `# HELP`/`# TYPE`
//! lines name the sample, `…_total`) and has no `# EOF`: [`to_prometheus_text`]
//! converts (`--format openmetrics` prints the crate's output as it is).

use crate::dm::{Dm, SpareStat, Target};
use clap::Args;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::process::ExitCode;

/// `remapctl metrics`.
#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// Write to this file (through a temporary file and a rename, as node_exporter's
    /// textfile collector needs) instead of standard output.
    #[arg(long)]
    pub textfile: Option<PathBuf>,
    /// The exposition format.
    #[arg(long, value_enum, default_value_t = Format::Prometheus)]
    pub format: Format,
}

/// Exposition formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The Prometheus text format (0.0.4), as node_exporter's textfile collector reads it.
    Prometheus,
    /// OpenMetrics text.
    Openmetrics,
}

/// OpenMetrics text as the Prometheus text format: a counter family's `# HELP` and
/// `# TYPE` lines name its `_total` sample, and `# EOF` and `# UNIT` lines go.
pub fn to_prometheus_text(open: &str) -> String {
    let counters: std::collections::HashSet<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|r| r.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len());
    for l in open.lines() {
        if l == "# EOF" || l.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .iter()
            .find_map(|p| l.strip_prefix(p).map(|rest| (*p, rest)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = if counters.contains(name) {
                    format!("{name}_total")
                } else {
                    name.to_string()
                };
                out.push_str(&format!("{p}{name} {tail}\n"));
            }
            None => {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

type Labels = Vec<(String, String)>;
/// A metric: name (after the prefix), help, and how to read it off a target.
type Def<T> = (&'static str, &'static str, fn(&Target) -> T);
/// A per-spare metric: name, help, and how to read it off a spare.
type Def2<T> = (&'static str, &'static str, fn(&SpareStat) -> T);

/// A label value as the text format writes it (the crate writes values as given).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(t: &Target) -> Labels {
    vec![
        ("target".into(), esc(&t.name)),
        ("device".into(), esc(&t.device)),
    ]
}

/// The alert level's number (unknown names: -1).
fn alert_level(name: &str) -> i64 {
    ["info", "notice", "warning", "critical", "emergency"]
        .iter()
        .position(|&l| l == name)
        .map_or(-1, |i| i as i64)
}

/// The states a spare can be in (`spare_stats`), each a series of
/// `dmremap_spare_device_state` as node_exporter's `node_md_state` has one per state.
const SPARE_STATES: [&str; 3] = ["active", "draining", "failed"];

/// What a scrape reads: every target, and each one's spares (a target whose
/// `spare_stats` cannot be read has no spare series, and the reason goes to standard
/// error), as OpenMetrics text.
pub fn gather(dm: &Dm) -> Result<String, String> {
    let targets = dm.targets()?;
    let spares: Vec<Vec<SpareStat>> = targets
        .iter()
        .map(|t| {
            dm.spare_stats(&t.name).unwrap_or_else(|e| {
                eprintln!("remapctl: {e}");
                Vec::new()
            })
        })
        .collect();
    render(&targets, &spares)
}

/// The exposition text for `targets`, with the spares of each (`spares[i]` belongs
/// to `targets[i]`; a missing entry means none reported).
pub fn render(targets: &[Target], spares: &[Vec<SpareStat>]) -> Result<String, String> {
    let mut reg = Registry::with_prefix("dmremap");
    let counters: [Def<u64>; 12] = [
        ("reads", "Read bios mapped", |t| t.status.reads),
        ("writes", "Write bios mapped", |t| t.status.writes),
        (
            "flushes",
            "Flush bios (each goes to the main device and the spare)",
            |t| t.status.flushes,
        ),
        ("read_bytes", "Bytes read", |t| t.status.read_sectors * 512),
        ("written_bytes", "Bytes written", |t| {
            t.status.write_sectors * 512
        }),
        ("read_errors", "Reads that completed with an error", |t| {
            t.status.read_errors
        }),
        (
            "write_errors",
            "Writes and flushes that completed with an error",
            |t| t.status.write_errors,
        ),
        (
            "remaps",
            "Blocks remapped since the table was loaded",
            |t| t.status.remaps,
        ),
        (
            "scan_passes",
            "Background scan passes completed (kept in the metadata)",
            |t| t.status.scan_passes,
        ),
        (
            "scan_unreadable_blocks",
            "Blocks the scan found unreadable and recorded pending",
            |t| t.status.scan_unreadable,
        ),
        ("scan_weak_blocks", "Blocks the scan found weak", |t| {
            t.status.scan_weak
        }),
        (
            "proactive_remaps",
            "Weak blocks copied to the spare and remapped",
            |t| t.status.proactive_remaps,
        ),
    ];
    let gauges: [Def<i64>; 14] = [
        ("size_bytes", "Size of the target", |t| {
            (t.sectors * 512) as i64
        }),
        ("block_size_bytes", "Remap block size", |t| {
            t.status.block_size as i64
        }),
        ("remapped_blocks", "Blocks living on the spare", |t| {
            t.status.remapped as i64
        }),
        (
            "pending_blocks",
            "Blocks whose read failed, not yet rewritten",
            |t| t.status.pending as i64,
        ),
        (
            "fenced_blocks",
            "Blocks fenced after a metadata commit of unknown outcome",
            |t| t.status.fenced as i64,
        ),
        ("spare_blocks", "Data blocks on the spare", |t| {
            t.status.spare_blocks as i64
        }),
        ("spare_used_blocks", "Spare data blocks in use", |t| {
            t.status.spare_used as i64
        }),
        ("spare_free_blocks", "Spare data blocks free", |t| {
            t.status.spare_free as i64
        }),
        (
            "metadata_version",
            "Version of the last committed metadata",
            |t| t.status.meta_version as i64,
        ),
        (
            "last_commit_errno",
            "0, or the errno of the last failed metadata commit",
            |t| -t.status.last_commit,
        ),
        ("failed", "1 in mode failed (no more remaps), else 0", |t| {
            i64::from(t.status.mode == "failed")
        }),
        (
            "scan_cursor_block",
            "The next block the background scan reads",
            |t| t.status.scan_cursor as i64,
        ),
        (
            "health_score",
            "Health score of the failure prediction, 0 (failing) to 100",
            |t| t.status.health_score as i64,
        ),
        (
            "alert_level",
            "Reported alert level: 0 info, 1 notice, 2 warning, 3 critical, 4 emergency",
            |t| alert_level(&t.status.alert),
        ),
    ];
    for (name, help, get) in counters {
        let fam = Family::<Labels, Counter>::default();
        for t in targets {
            fam.get_or_create(&labels(t)).inc_by(get(t));
        }
        reg.register(name, help, fam);
    }
    for (name, help, get) in gauges {
        let fam = Family::<Labels, Gauge>::default();
        for t in targets {
            fam.get_or_create(&labels(t)).set(get(t));
        }
        reg.register(name, help, fam);
    }
    // Only for targets whose engine has an estimate: an absent series, not a made-up
    // value, when there is none.
    let ttf = Family::<Labels, Gauge>::default();
    for t in targets {
        if let Some(s) = t.status.ttf_s {
            ttf.get_or_create(&labels(t))
                .set(i64::try_from(s).unwrap_or(i64::MAX));
        }
    }
    reg.register(
        "time_to_failure_seconds",
        "The failure prediction's estimate of the time to failure (absent when it has none)",
        ttf,
    );
    let info = Family::<Labels, Gauge>::default();
    for t in targets {
        let mut l = labels(t);
        l.push(("main".into(), esc(&t.table.main)));
        l.push(("spare".into(), esc(&t.table.spare)));
        l.push((
            "setup_uuid".into(),
            esc(t.table.uuid.as_deref().unwrap_or_default()),
        ));
        info.get_or_create(&l).set(1);
    }
    reg.register(
        "target_info",
        "The target's devices and setup (value 1)",
        info,
    );
    // Per spare, labelled by the spare's place in the pool and its device number.
    let spare_gauges: [Def2<i64>; 3] = [
        ("spare_device_blocks", "Data blocks on this spare", |s| {
            s.blocks as i64
        }),
        (
            "spare_device_used_blocks",
            "Data blocks in use on this spare",
            |s| s.used as i64,
        ),
        (
            "spare_device_free_blocks",
            "Data blocks free on this spare",
            |s| s.free as i64,
        ),
    ];
    let per_spare = || {
        targets.iter().enumerate().flat_map(|(i, t)| {
            spares.get(i).into_iter().flatten().map(move |s| {
                let mut l = labels(t);
                l.push(("spare_index".into(), s.index.to_string()));
                l.push(("spare_device".into(), esc(&s.dev)));
                (l, s)
            })
        })
    };
    for (name, help, get) in spare_gauges {
        let fam = Family::<Labels, Gauge>::default();
        for (l, s) in per_spare() {
            fam.get_or_create(&l).set(get(s));
        }
        reg.register(name, help, fam);
    }
    let errors = Family::<Labels, Counter>::default();
    let state = Family::<Labels, Gauge>::default();
    for (l, s) in per_spare() {
        errors.get_or_create(&l).inc_by(s.errors);
        for st in SPARE_STATES {
            let mut l = l.clone();
            l.push(("state".into(), st.into()));
            state.get_or_create(&l).set(i64::from(s.state == st));
        }
    }
    reg.register(
        "spare_device_errors",
        "I/O errors on this spare since the table was loaded",
        errors,
    );
    reg.register(
        "spare_device_state",
        "1 for the spare's state (active, draining, failed), 0 for the others",
        state,
    );
    let mut out = String::new();
    encode(&mut out, &reg).map_err(|e| format!("cannot encode the metrics: {e}"))?;
    Ok(in_order(&out))
}

/// The exposition with each family's samples sorted: the crate keeps a family's label
/// sets in a hash map, whose order changes from one run to the next, and a textfile
/// that changes with nothing else changing would be rewritten for nothing (and could
/// not be compared).
fn in_order(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut samples: Vec<&str> = Vec::new();
    let flush = |samples: &mut Vec<&str>, out: &mut String| {
        samples.sort_unstable();
        for l in samples.drain(..) {
            out.push_str(l);
            out.push('\n');
        }
    };
    for l in text.lines() {
        if l.starts_with('#') {
            flush(&mut samples, &mut out);
            out.push_str(l);
            out.push('\n');
        } else {
            samples.push(l);
        }
    }
    flush(&mut samples, &mut out);
    out
}

/// `remapctl metrics`.
pub fn run(a: MetricsArgs) -> ExitCode {
    let r = (|| -> Result<(), String> {
        let mut text = gather(&Dm::open()?)?;
        if a.format == Format::Prometheus {
            text = to_prometheus_text(&text);
        }
        match &a.textfile {
            None => print!("{text}"),
            Some(p) => {
                let tmp = p.with_extension("prom.tmp");
                std::fs::write(&tmp, &text).map_err(|e| format!("{}: {e}", tmp.display()))?;
                std::fs::rename(&tmp, p).map_err(|e| format!("{}: {e}", p.display()))?;
            }
        }
        Ok(())
    })();
    crate::admin::done(r, "metrics")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, failed: bool) -> Target {
        let line = format!(
            "4096 2944 5 3 0 40 24 1 2 7 1 7 2937 7 9 {} {} idle 0 0 0 0 0 0 {}",
            if failed { -5 } else { 0 },
            if failed { "failed" } else { "ok" },
            if failed {
                "0 emergency 0 12"
            } else {
                "85 notice - 12"
            }
        );
        crate::dm::test_target(name, &line)
    }

    /// Two spares of one target, as the kernel reports them.
    fn spares() -> Vec<Vec<SpareStat>> {
        vec![SpareStat::parse_all(
            "spare=0 dev=7:1 blocks=2937 used=7 free=2930 errors=0 state=active\n\
             spare=1 dev=7:2 blocks=1000 used=0 free=1000 errors=3 state=failed\n",
        )]
    }

    #[test]
    fn every_spare_is_exposed_with_its_state() {
        let text = to_prometheus_text(&render(&[target("safe0", false)], &spares()).unwrap());
        let l = "target=\"safe0\",device=\"dm-3\"";
        for line in [
            format!("dmremap_spare_device_blocks{{{l},spare_index=\"0\",spare_device=\"7:1\"}} 2937"),
            format!("dmremap_spare_device_used_blocks{{{l},spare_index=\"0\",spare_device=\"7:1\"}} 7"),
            format!("dmremap_spare_device_free_blocks{{{l},spare_index=\"1\",spare_device=\"7:2\"}} 1000"),
            format!("dmremap_spare_device_errors_total{{{l},spare_index=\"1\",spare_device=\"7:2\"}} 3"),
            format!("dmremap_spare_device_state{{{l},spare_index=\"0\",spare_device=\"7:1\",state=\"active\"}} 1"),
            format!("dmremap_spare_device_state{{{l},spare_index=\"0\",spare_device=\"7:1\",state=\"failed\"}} 0"),
            format!("dmremap_spare_device_state{{{l},spare_index=\"1\",spare_device=\"7:2\",state=\"failed\"}} 1"),
            "# TYPE dmremap_spare_device_errors_total counter".to_string(),
        ] {
            assert!(text.lines().any(|x| x == line), "no line {line:?} in\n{text}");
        }
        assert_eq!(
            text.matches("dmremap_spare_device_state{").count(),
            6,
            "three states per spare: {text}"
        );
        // A line that is not a spare's is skipped; a target without an answer has none.
        assert_eq!(SpareStat::parse_all("\nnonsense\n").len(), 0);
        let none = render(&[target("safe0", false)], &[]).unwrap();
        assert!(!none.contains("dmremap_spare_device_blocks{"), "{none}");
    }

    /// The alerting rules and the dashboard in contrib/ name only metrics that exist
    /// (a renamed metric would silence an alert without an error anywhere).
    #[test]
    fn contrib_rules_and_dashboard_name_real_metrics() {
        let text = to_prometheus_text(
            &render(&[target("safe0", false), target("safe1", true)], &[]).unwrap(),
        );
        let exposed: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|r| r.split(' ').next())
            .collect();
        let dashboard = include_str!("../../../contrib/grafana/dmremap-dashboard.json");
        let d: serde_json::Value = serde_json::from_str(dashboard).unwrap();
        let panels = d["panels"].as_array().unwrap();
        assert!(panels.len() >= 8);
        for p in panels {
            let t = p["targets"].as_array().unwrap();
            assert!(
                !t.is_empty() && t.iter().all(|q| q["expr"].is_string()),
                "{p}"
            );
        }
        for (file, body) in [
            (
                "dmremap-alerts.yml",
                include_str!("../../../contrib/prometheus/dmremap-alerts.yml"),
            ),
            ("dmremap-dashboard.json", dashboard),
        ] {
            let mut named = 0;
            for (i, _) in body.match_indices("dmremap_") {
                let name: String = body[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name == "dmremap_" || body[..i].ends_with('-') {
                    continue; // "dmremap-alerts.yml" and the like
                }
                assert!(
                    exposed.contains(name.as_str()),
                    "{file} names {name}, which is not exposed"
                );
                named += 1;
            }
            assert!(named >= 5, "{file}: {named}");
        }
    }

    #[test]
    fn every_figure_is_exposed_per_target() {
        let text = render(&[target("safe0", false), target("safe1", true)], &[]).unwrap();
        for line in [
            "# TYPE dmremap_reads counter",
            "dmremap_reads_total{target=\"safe0\",device=\"dm-3\"} 5",
            "dmremap_read_bytes_total{target=\"safe0\",device=\"dm-3\"} 20480",
            "dmremap_remapped_blocks{target=\"safe1\",device=\"dm-3\"} 7",
            "dmremap_failed{target=\"safe0\",device=\"dm-3\"} 0",
            "dmremap_failed{target=\"safe1\",device=\"dm-3\"} 1",
            "dmremap_last_commit_errno{target=\"safe1\",device=\"dm-3\"} 5",
            "dmremap_size_bytes{target=\"safe0\",device=\"dm-3\"} 67108864",
            "dmremap_health_score{target=\"safe0\",device=\"dm-3\"} 85",
            "dmremap_alert_level{target=\"safe0\",device=\"dm-3\"} 1",
            "dmremap_alert_level{target=\"safe1\",device=\"dm-3\"} 4",
            "dmremap_time_to_failure_seconds{target=\"safe1\",device=\"dm-3\"} 0",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        // No estimate, no series.
        assert!(
            !text.contains("dmremap_time_to_failure_seconds{target=\"safe0\""),
            "{text}"
        );
        assert!(text.contains("setup_uuid=\"01234567-89ab-cdef-0123-456789abcdef\""));
    }

    /// What `promtool check metrics` asks of the text format: every sample's name has
    /// a `# HELP` and a `# TYPE` line of that name, before it.
    #[test]
    fn the_prometheus_text_names_every_sample_in_help_and_type() {
        let text = to_prometheus_text(&render(&[target("safe0", false)], &spares()).unwrap());
        let mut help = std::collections::HashSet::new();
        let mut ty = std::collections::HashSet::new();
        for l in text.lines() {
            if let Some(r) = l.strip_prefix("# HELP ") {
                help.insert(r.split(' ').next().unwrap().to_string());
            } else if let Some(r) = l.strip_prefix("# TYPE ") {
                ty.insert(r.split(' ').next().unwrap().to_string());
            } else {
                assert!(!l.starts_with('#'), "{l}");
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(
                    help.contains(name) && ty.contains(name),
                    "{name} has no HELP/TYPE"
                );
            }
        }
        assert!(
            text.contains("# TYPE dmremap_reads_total counter\n"),
            "{text}"
        );
    }

    /// The same figures give the same text, in order (the crate's families are hash
    /// maps): `metrics --textfile` can be compared and is not rewritten for nothing.
    #[test]
    fn the_text_is_the_same_at_every_run() {
        let ts = [target("safe1", true), target("safe0", false)];
        let sp = [spares()[0].clone(), spares()[0].clone()];
        let first = render(&ts, &sp).unwrap();
        for _ in 0..20 {
            assert_eq!(render(&ts, &sp).unwrap(), first);
        }
        let states: Vec<&str> = first
            .lines()
            .filter(|l| l.starts_with("dmremap_spare_device_state{"))
            .collect();
        let mut sorted = states.clone();
        sorted.sort_unstable();
        assert_eq!(states.len(), 12);
        assert_eq!(states, sorted);
    }

    #[test]
    fn label_values_are_escaped() {
        let text = render(&[target("a\"b\\c\nd", false)], &[]).unwrap();
        assert!(text.contains("target=\"a\\\"b\\\\c\\nd\""), "{text}");
    }

    #[test]
    fn no_targets_is_an_empty_exposition() {
        let text = render(&[], &[]).unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("dmremap_")), "{text}");
    }
}
