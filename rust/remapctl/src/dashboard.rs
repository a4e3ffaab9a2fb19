//! The web dashboard of `remapctl monitor --http`: one page (`GET /`) for the host,
//! rendered on the server from what the kernel reports at each request — plain HTML and
//! inline SVG, nothing fetched from elsewhere, no script. The page reloads itself every
//! 15 seconds. Read-only: it changes nothing.
//!
//! Per target: its devices and mode; the failure prediction's level, health score and
//! time to failure; the spare pool with a usage bar per spare (`spare_stats`); the remap
//! map (where on the main device the remapped and pending blocks are, from `list`); the
//! health history (the samples the kernel holds, from `samples`, drawn with the alerts
//! the prediction engine raises over them, as `remapctl predict --plot` draws a trace);
//! the kernel's last level changes (`alerts`). Then the monitor's recent events.
//!
//! With `remapctl monitor --actions` each target also gets forms to start and stop its
//! scan and to add a spare (crate::actions: each carries the monitor's token), and the
//! page reloads every 60 seconds instead of 15, so that a device name being typed is not
//! lost.

use crate::dm::{Dm, Target};
use std::fmt::Write;

/// At most this many special blocks are drawn on a target's remap map (64 per message).
const MAP_MAX: usize = 4096;

/// Text as HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `key=value` fields of a message answer's line.
fn kv(line: &str) -> Vec<(&str, &str)> {
    line.split_ascii_whitespace()
        .filter_map(|f| f.split_once('='))
        .collect()
}

fn get<'a>(f: &[(&str, &'a str)], k: &str) -> Option<&'a str> {
    f.iter().find(|(a, _)| *a == k).map(|(_, v)| *v)
}

/// A special block: its number and whether it is remapped (else pending).
#[derive(Debug, PartialEq, Eq)]
pub struct Special {
    /// Block number.
    pub block: u64,
    /// Remapped (true) or pending.
    pub remapped: bool,
}

/// The special blocks in one `list` answer, and where the next page starts.
pub fn parse_list(answer: &str) -> (Vec<Special>, Option<u64>) {
    let mut out = Vec::new();
    let mut next = None;
    for l in answer.lines() {
        if let Some(n) = l.trim().strip_prefix("next=") {
            next = n.parse().ok();
            continue;
        }
        let f = kv(l);
        if let Some(b) = get(&f, "block").and_then(|b| b.parse().ok()) {
            out.push(Special {
                block: b,
                remapped: get(&f, "state") == Some("remapped"),
            });
        }
    }
    (out, next)
}

/// The samples' trace text from the pages of `samples` answers (the header once).
pub fn join_samples(pages: &[String]) -> String {
    let mut text = String::new();
    for (i, p) in pages.iter().enumerate() {
        for (j, l) in p.lines().enumerate() {
            if l.starts_with("next=") || l == "end" || (j == 0 && i > 0) {
                continue;
            }
            text.push_str(l);
            text.push('\n');
        }
    }
    text
}

/// The answers of a paged message (`list`, `samples`): `verb 0`, then from each
/// answer's `next=` on, at most `max` pages; the pages read before an error.
fn pages(dm: &Dm, t: &Target, verb: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0u64;
    while out.len() < max {
        let Ok(a) = dm.message(&t.name, &format!("{verb} {from}")) else {
            break;
        };
        let next = a
            .lines()
            .find_map(|l| l.trim().strip_prefix("next="))
            .and_then(|n| n.parse::<u64>().ok());
        out.push(a);
        match next {
            Some(n) if n > from => from = n,
            _ => break,
        }
    }
    out
}

fn special_blocks(dm: &Dm, t: &Target) -> Vec<Special> {
    // 64 blocks per answer.
    let mut all: Vec<Special> = pages(dm, t, "list", MAP_MAX.div_ceil(64))
        .iter()
        .flat_map(|a| parse_list(a).0)
        .collect();
    all.truncate(MAP_MAX);
    all
}

fn samples(dm: &Dm, t: &Target) -> Vec<remap_core::stats::Sample> {
    // 64 samples per answer; the kernel holds 1000.
    let text = join_samples(&pages(dm, t, "samples", 32));
    remapctl::trace::parse(std::path::Path::new("samples"), &text).unwrap_or_default()
}

/// The remap map: the main device as a strip, a mark per special block (red remapped,
/// amber pending) at its place.
pub fn map_svg(blocks: u64, special: &[Special]) -> String {
    let (w, h) = (800u64, 40u64);
    let mut s = format!(
        "<svg class=\"map\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\"><title>{} special blocks of {blocks}</title><rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#e8ece8\"/>",
        special.len()
    );
    for b in special {
        let x = (b.block.min(blocks.saturating_sub(1)).saturating_mul(w))
            .checked_div(blocks)
            .unwrap_or(0);
        let c = if b.remapped { "#c0392b" } else { "#e67e22" };
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"0\" width=\"2\" height=\"{h}\" fill=\"{c}\"/>"
        );
    }
    s.push_str("</svg>");
    s
}

/// A usage bar: `used` of `total`.
pub fn bar_svg(used: u64, total: u64) -> String {
    let w = 300u64;
    let u = (used.min(total).saturating_mul(w))
        .checked_div(total)
        .unwrap_or(0);
    let c = if total > 0 && used.saturating_mul(10) >= total.saturating_mul(9) {
        "#c0392b"
    } else {
        "#2e86c1"
    };
    format!(
        "<svg class=\"bar\" width=\"{w}\" height=\"14\" xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"{w}\" height=\"14\" fill=\"#e8ece8\"/><rect width=\"{u}\" height=\"14\" fill=\"{c}\"/></svg>"
    )
}

fn row(out: &mut String, id: &str, k: &str, v: &str) {
    let _ = write!(
        out,
        "<tr><th>{}</th><td id=\"{}\">{}</td></tr>",
        esc(k),
        esc(id),
        esc(v)
    );
}

/// A target's action forms (crate::actions), each with the token.
fn action_forms(t: &Target, token: &str, out: &mut String) {
    let hidden = format!(
        "<input type=\"hidden\" name=\"token\" value=\"{}\"><input type=\"hidden\" name=\"target\" value=\"{}\">",
        esc(token),
        esc(&t.name)
    );
    let id = esc(&format!("t-{}-act", t.name));
    let _ = write!(
        out,
        "<h3>Actions</h3><div class=\"actions\" id=\"{id}\">\
         <form method=\"post\" action=\"/action\">{hidden}<input type=\"hidden\" name=\"do\" value=\"scan-start\"><button id=\"{id}-scan-start\">Start scan</button></form>\
         <form method=\"post\" action=\"/action\">{hidden}<input type=\"hidden\" name=\"do\" value=\"scan-stop\"><button id=\"{id}-scan-stop\">Stop scan</button></form>\
         <form method=\"post\" action=\"/action\">{hidden}<input type=\"hidden\" name=\"do\" value=\"spare-add\"><input id=\"{id}-device\" name=\"device\" placeholder=\"/dev/sdX\" required pattern=\"/dev/.+\"><button id=\"{id}-spare-add\">Add spare</button></form></div>"
    );
}

fn target_section(dm: &Dm, t: &Target, token: Option<&str>, out: &mut String) {
    let s = &t.status;
    let id = |k: &str| format!("t-{}-{k}", t.name);
    let _ = write!(
        out,
        "<section class=\"target\" id=\"t-{0}\"><h2>{0} <small>{1}, {2} sectors</small></h2><table class=\"figures\">",
        esc(&t.name),
        esc(&t.device),
        t.sectors
    );
    row(out, &id("mode"), "mode", &s.mode);
    row(out, &id("alert"), "alert level", &s.alert);
    row(
        out,
        &id("health"),
        "health score",
        &s.health_score.to_string(),
    );
    row(
        out,
        &id("ttf"),
        "time to failure",
        &s.ttf_s.map_or("none".to_string(), remapctl::trace::days),
    );
    row(
        out,
        &id("remapped"),
        "remapped blocks",
        &s.remapped.to_string(),
    );
    row(
        out,
        &id("pending"),
        "pending blocks",
        &s.pending.to_string(),
    );
    row(out, &id("main"), "main device", &t.table.main);
    row(
        out,
        &id("uuid"),
        "setup",
        t.table.uuid.as_deref().unwrap_or("-"),
    );
    row(
        out,
        &id("io"),
        "I/O since load",
        &format!(
            "{} reads, {} writes, {} read errors, {} write errors",
            s.reads, s.writes, s.read_errors, s.write_errors
        ),
    );
    row(
        out,
        &id("scan"),
        "scan",
        &format!(
            "{}, block {}, {} passes, {} weak, {} unreadable",
            s.scan_state, s.scan_cursor, s.scan_passes, s.scan_weak, s.scan_unreadable
        ),
    );
    out.push_str("</table><h3>Spares</h3><table class=\"spares\"><tr><th>spare</th><th>device</th><th>state</th><th>used</th><th></th><th>errors</th></tr>");
    for sp in dm.spare_stats(&t.name).unwrap_or_default() {
        let _ = write!(
            out,
            "<tr id=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{} of {}</td><td>{}</td><td>{}</td></tr>",
            esc(&format!("t-{}-spare-{}", t.name, sp.index)),
            sp.index,
            esc(&sp.dev),
            esc(&sp.state),
            sp.used,
            sp.blocks,
            bar_svg(sp.used, sp.blocks),
            sp.errors
        );
    }
    out.push_str("</table>");
    if let Some(token) = token {
        action_forms(t, token, out);
    }
    let blocks = (t.sectors * 512).checked_div(s.block_size).unwrap_or(0);
    let special = special_blocks(dm, t);
    let _ = write!(
        out,
        "<h3>Remap map</h3><p class=\"legend\">{} blocks; <span class=\"r\">remapped</span>, <span class=\"p\">pending</span>{}</p>{}",
        blocks,
        if special.len() >= MAP_MAX { format!(" (the first {MAP_MAX} shown)") } else { String::new() },
        map_svg(blocks, &special)
    );
    let samples = samples(dm, t);
    let _ = write!(
        out,
        "<h3>Health history</h3><p id=\"{}\">{} samples held</p>",
        esc(&id("samples")),
        samples.len()
    );
    if samples.len() >= 2 {
        let alerts: Vec<_> = crate::predict::alerts_with_verdicts(&samples)
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        match crate::plot::svg_text(&t.name, &samples, &alerts, (900, 600)) {
            Ok(svg) => {
                out.push_str("<div class=\"chart\">");
                out.push_str(&svg);
                out.push_str("</div>");
            }
            Err(e) => {
                let _ = write!(out, "<p>chart: {}</p>", esc(&e));
            }
        }
    }
    let alerts = dm.message(&t.name, "alerts").unwrap_or_default();
    out.push_str("<h3>Level changes</h3><ul class=\"alerts\">");
    let mut any = false;
    for l in alerts.lines().filter(|l| !l.trim().is_empty()) {
        any = true;
        let _ = write!(out, "<li>{}</li>", esc(l));
    }
    if !any {
        out.push_str("<li>none since the table was loaded</li>");
    }
    out.push_str("</ul></section>");
}

/// The whole page; with a token, the action forms (crate::actions).
pub fn page(dm: &Dm, token: Option<&str>) -> Result<String, String> {
    let targets = dm.targets()?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"{2}\"><title>dm-remap on {0}</title><style>{STYLE}</style></head><body><h1>dm-remap on {0}</h1><p><a href=\"/metrics\">metrics</a> · {1} target(s)</p>",
        esc(host.trim()),
        targets.len(),
        if token.is_some() { 60 } else { 15 }
    );
    for t in &targets {
        target_section(dm, t, token, &mut out);
    }
    out.push_str("<section id=\"events\"><h2>Recent events</h2><ul>");
    if let Ok(ev) = crate::monitor::EVENTS.lock() {
        for (t, m) in ev.iter().rev() {
            let _ = write!(out, "<li><time>{}</time> {}</li>", utc(*t), esc(m));
        }
    }
    out.push_str("</ul></section></body></html>\n");
    Ok(out)
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (the proleptic Gregorian
/// calendar, H. Hinnant's days-to-civil).
pub fn utc(t: u64) -> String {
    let (days, secs) = (t / 86_400, t % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

const STYLE: &str = "body{font-family:sans-serif;margin:1em 2em;color:#222}h2 small{color:#666;font-weight:normal}table{border-collapse:collapse}th{text-align:left;padding-right:1em;font-weight:normal;color:#555}td{padding:2px 8px}.target{border-top:1px solid #ccc;margin-top:1em}.r{color:#c0392b}.p{color:#e67e22}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_261_273), "2026-12-03 01:27:53 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn list_pages_are_parsed() {
        let (s, next) = parse_list(
            "block=5 state=remapped spare=0 spare_block=0 lost_sectors=0\nblock=9 state=pending\nnext=10\n",
        );
        assert_eq!(
            s,
            vec![
                Special {
                    block: 5,
                    remapped: true
                },
                Special {
                    block: 9,
                    remapped: false
                }
            ]
        );
        assert_eq!(next, Some(10));
        assert_eq!(parse_list("end\n"), (vec![], None));
    }

    #[test]
    fn sample_pages_keep_one_header() {
        let p = ["h\n1\n2\nnext=2\n".to_string(), "h\n3\nend\n".to_string()];
        assert_eq!(join_samples(&p), "h\n1\n2\n3\n");
    }

    #[test]
    fn map_and_bar_place_their_marks() {
        let m = map_svg(
            1000,
            &[
                Special {
                    block: 500,
                    remapped: true,
                },
                Special {
                    block: 999,
                    remapped: false,
                },
            ],
        );
        assert!(
            m.contains("<rect x=\"400\" y=\"0\" width=\"2\" height=\"40\" fill=\"#c0392b\"/>"),
            "{m}"
        );
        assert!(
            m.contains("<rect x=\"799\" y=\"0\" width=\"2\" height=\"40\" fill=\"#e67e22\"/>"),
            "{m}"
        );
        assert!(bar_svg(50, 100).contains("width=\"150\" height=\"14\" fill=\"#2e86c1\""));
        assert!(bar_svg(95, 100).contains("fill=\"#c0392b\""));
        assert!(bar_svg(0, 0).contains("width=\"0\""));
    }
}
