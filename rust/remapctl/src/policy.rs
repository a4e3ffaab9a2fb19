//! `remapctl monitor --policy FILE`: rules the monitor applies by itself when a target's
//! figures cross a line — add a spare from a list of devices, start or stop the
//! background scan, run a program — so that a fleet's hosts look after their disks
//! without an admin at each.
//!
//! The file is TOML, one `[[rule]]` table per rule:
//!
//! ```toml
//! [[rule]]
//! when = "spare_free_percent < 10"      # <figure> <op> <value>
//! action = "spare-add"                   # spare-add | scan-start | scan-stop |
//!                                        # proactive-off | proactive-on | exec | mail
//! devices = ["/dev/sdx", "/dev/sdy"]     # spare-add: tried in order
//! target = "data"                        # optional: only this target
//!
//! [[rule]]
//! when = "spare_free_percent < 10"
//! action = "spare-add"
//! pool = "/etc/dm-remap/pool.d"          # or: a directory whose entries (links to
//!                                        # block devices) are tried in name order
//!
//! [[rule]]
//! when = "alert_level >= warning"
//! action = "mail"
//! to = ["root", "storage@example.com"]   # mail: the recipients
//! sendmail = "/usr/sbin/sendmail"        # optional (this is the default)
//! ```
//!
//! `proactive-off` and `proactive-on` reload the target's table with the option
//! `proactive_remap` changed (as `dmsetup reload` would). `mail` hands a message to
//! `sendmail -oi -t` (the interface every MTA provides, as mdadm's `MAILADDR` and
//! smartd's `-m` use it): the subject names the host, target and rule; the body says
//! what the monitor sees and carries the target's `status --json`.
//!
//! Figures: `spare_free_percent`, `spare_free`, `remapped`, `pending`, `fenced`,
//! `health_score`, `alert_level` (a number 0..4 or a level name), `failed` (0 or 1),
//! `ttf_hours` (no estimate: the rule does not hold). Operators `<`, `<=`, `>`, `>=`,
//! `==`, `!=`. A rule acts when its condition becomes true for a target (and again only
//! after it was false in between), at the first sweep that sees it: at start, and on
//! every device-mapper event. A file that does not parse, an unknown key, figure,
//! operator or action, or an action without what it needs is refused at start with its
//! line and the reason (exit 2).

use crate::dm::{Dm, Target};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// A figure of a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    /// Free spare blocks, percent of all spare blocks (rounded down).
    SpareFreePercent,
    /// Free spare blocks.
    SpareFree,
    /// Remapped blocks.
    Remapped,
    /// Pending blocks.
    Pending,
    /// Fenced blocks.
    Fenced,
    /// Health score 0..100.
    HealthScore,
    /// Alert level 0 (info) .. 4 (emergency).
    AlertLevel,
    /// 1 in mode failed.
    Failed,
    /// Time to failure in hours (none: no value).
    TtfHours,
}

const FIGURES: [(&str, Figure); 9] = [
    ("spare_free_percent", Figure::SpareFreePercent),
    ("spare_free", Figure::SpareFree),
    ("remapped", Figure::Remapped),
    ("pending", Figure::Pending),
    ("fenced", Figure::Fenced),
    ("health_score", Figure::HealthScore),
    ("alert_level", Figure::AlertLevel),
    ("failed", Figure::Failed),
    ("ttf_hours", Figure::TtfHours),
];

const LEVELS: [&str; 5] = ["info", "notice", "warning", "critical", "emergency"];

/// A parsed condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cond {
    /// What is compared.
    pub figure: Figure,
    /// How.
    pub op: Op,
    /// With what.
    pub value: u64,
}

impl Cond {
    /// Parses `<figure> <op> <value>`.
    pub fn parse(s: &str) -> Result<Cond, String> {
        let f: Vec<&str> = s.split_ascii_whitespace().collect();
        let [fig, op, val] = f.as_slice() else {
            return Err(format!(
                "when {s:?}: expected `<figure> <op> <value>`, e.g. \"spare_free_percent < 10\""
            ));
        };
        let figure = FIGURES
            .iter()
            .find(|(n, _)| n == fig)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = FIGURES.iter().map(|(n, _)| *n).collect();
                format!(
                    "when {s:?}: unknown figure {fig:?} (one of {})",
                    names.join(", ")
                )
            })?;
        let op = match *op {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            o => {
                return Err(format!(
                    "when {s:?}: unknown operator {o:?} (<, <=, >, >=, ==, !=)"
                ))
            }
        };
        let value = match (figure, LEVELS.iter().position(|l| l == val)) {
            (Figure::AlertLevel, Some(i)) => i as u64,
            _ => val.parse().map_err(|_| {
                format!(
                    "when {s:?}: {val:?} is not a whole number{}",
                    if figure == Figure::AlertLevel {
                        " or a level name (info .. emergency)"
                    } else {
                        ""
                    }
                )
            })?,
        };
        Ok(Cond { figure, op, value })
    }

    /// The figure's value for a target (`None`: it has none, e.g. no time to failure).
    pub fn figure_of(&self, t: &Target) -> Option<u64> {
        let s = &t.status;
        Some(match self.figure {
            Figure::SpareFreePercent => (s.spare_free * 100)
                .checked_div(s.spare_free + s.spare_used)
                .unwrap_or(0),
            Figure::SpareFree => s.spare_free,
            Figure::Remapped => s.remapped,
            Figure::Pending => s.pending,
            Figure::Fenced => s.fenced,
            Figure::HealthScore => s.health_score,
            Figure::AlertLevel => LEVELS.iter().position(|l| *l == s.alert)? as u64,
            Figure::Failed => u64::from(s.mode == "failed"),
            Figure::TtfHours => s.ttf_s? / 3600,
        })
    }

    /// Whether it holds for a target.
    pub fn holds(&self, t: &Target) -> bool {
        let Some(v) = self.figure_of(t) else {
            return false;
        };
        match self.op {
            Op::Lt => v < self.value,
            Op::Le => v <= self.value,
            Op::Gt => v > self.value,
            Op::Ge => v >= self.value,
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
        }
    }
}

/// What a rule does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Add the first device of these that can join (`remapctl spare-add`).
    SpareAdd(Candidates),
    /// `scan start`.
    ScanStart,
    /// `scan stop`.
    ScanStop,
    /// Run the program (the target's status JSON on standard input).
    Exec(PathBuf),
    /// Turn proactive remapping off (false) or on (true).
    Proactive(bool),
    /// Mail these recipients through this sendmail.
    Mail(Vec<String>, PathBuf),
}

/// Where a spare-add rule finds its devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Candidates {
    /// These, in this order.
    Devices(Vec<PathBuf>),
    /// The entries of this directory (a pool of spare devices the admin keeps, e.g.
    /// links to `/dev/disk/by-id/...`), read when the rule acts, in name order; names
    /// starting with `.` are skipped.
    Pool(PathBuf),
}

impl Candidates {
    /// The devices to try, in order.
    pub fn list(&self) -> Result<Vec<PathBuf>, String> {
        match self {
            Candidates::Devices(d) => Ok(d.clone()),
            Candidates::Pool(dir) => {
                let rd =
                    std::fs::read_dir(dir).map_err(|e| format!("pool {}: {e}", dir.display()))?;
                let mut names: Vec<_> = rd
                    .filter_map(|e| e.ok().map(|e| e.file_name()))
                    .filter(|n| !n.to_string_lossy().starts_with('.'))
                    .collect();
                names.sort();
                Ok(names.into_iter().map(|n| dir.join(n)).collect())
            }
        }
    }
}

/// Whether `a` can be handed to `sendmail -t` as a recipient: one word of printable
/// characters with no comma, no header syntax and no leading dash.
fn address_ok(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 254
        && !a.starts_with('-')
        && a.chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, ',' | ';' | '<' | '>' | '"' | '(' | ')'))
}

/// A rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its place in the file, from 1.
    pub number: usize,
    /// The line of its `[[rule]]` header.
    pub line: usize,
    /// The condition as written.
    pub when_text: String,
    /// The condition.
    pub when: Cond,
    /// The action.
    pub action: Action,
    /// Only this target, if given.
    pub target: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<toml::Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    when: String,
    action: String,
    target: Option<String>,
    devices: Option<Vec<PathBuf>>,
    pool: Option<PathBuf>,
    program: Option<PathBuf>,
    to: Option<Vec<String>>,
    sendmail: Option<PathBuf>,
}

/// The line (from 1) of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at).map_or(0, |p| p.matches('\n').count()) + 1
}

/// Parses a policy file's text; the error names the line.
pub fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(text, s.start));
        format!("line {line}: {}", e.message())
    })?;
    let mut out = Vec::new();
    for (i, r) in raw.rule.into_iter().enumerate() {
        let line = line_of(text, r.span().start);
        let r = r.into_inner();
        let err = |m: String| format!("line {line}: rule {}: {m}", i + 1);
        let when = Cond::parse(&r.when).map_err(err)?;
        let mail_keys = r.to.is_some() || r.sendmail.is_some();
        if mail_keys && r.action != "mail" {
            return Err(err(format!(
                "{}: `to` and `sendmail` are for mail",
                r.action
            )));
        }
        if r.pool.is_some() && r.action != "spare-add" {
            return Err(err(format!("{}: `pool` is for spare-add", r.action)));
        }
        let action = match (r.action.as_str(), r.devices, r.program) {
            ("spare-add", Some(_), None) if r.pool.is_some() => {
                return Err(err("spare-add takes `devices` or `pool`, not both".into()))
            }
            ("spare-add", Some(d), None) if !d.is_empty() => {
                Action::SpareAdd(Candidates::Devices(d))
            }
            ("spare-add", None, None) if r.pool.as_ref().is_some_and(|p| p.is_absolute()) => {
                Action::SpareAdd(Candidates::Pool(r.pool.unwrap_or_default()))
            }
            ("spare-add", None, None) if r.pool.is_some() => {
                return Err(err(format!(
                    "pool {:?} must be an absolute path",
                    r.pool.unwrap_or_default().display().to_string()
                )))
            }
            ("spare-add", _, None) => {
                return Err(err(
                    "spare-add needs `devices`, a list of block devices, or `pool`, a directory of them".into()
                ))
            }
            ("exec", None, Some(p)) if p.is_absolute() => Action::Exec(p),
            ("exec", None, Some(p)) => {
                return Err(err(format!(
                    "program {:?} must be an absolute path",
                    p.display().to_string()
                )))
            }
            ("exec", None, None) => return Err(err("exec needs `program`".into())),
            ("scan-start", None, None) => Action::ScanStart,
            ("scan-stop", None, None) => Action::ScanStop,
            ("proactive-off", None, None) => Action::Proactive(false),
            ("proactive-on", None, None) => Action::Proactive(true),
            ("mail", None, None) => {
                let to = r.to.unwrap_or_default();
                if to.is_empty() {
                    return Err(err("mail needs `to`, a list of addresses".into()));
                }
                if let Some(a) = to.iter().find(|a| !address_ok(a)) {
                    return Err(err(format!("mail: {a:?} is not an address")));
                }
                let sendmail = r
                    .sendmail
                    .unwrap_or_else(|| PathBuf::from("/usr/sbin/sendmail"));
                if !sendmail.is_absolute() {
                    return Err(err(format!(
                        "sendmail {:?} must be an absolute path",
                        sendmail.display().to_string()
                    )));
                }
                Action::Mail(to, sendmail)
            }
            (
                "spare-add" | "exec" | "scan-start" | "scan-stop" | "proactive-off"
                | "proactive-on" | "mail",
                _,
                _,
            ) => {
                return Err(err(format!(
                    "{}: `devices` is for spare-add, `program` for exec",
                    r.action
                )))
            }
            (a, _, _) => {
                return Err(err(format!(
                    "unknown action {a:?} (spare-add, scan-start, scan-stop, proactive-off, proactive-on, exec, mail)"
                )))
            }
        };
        if let Some(t) = &r.target {
            crate::dm::check_name(t).map_err(err)?;
        }
        out.push(Rule {
            number: i + 1,
            line,
            when_text: r.when,
            when,
            action,
            target: r.target,
        });
    }
    Ok(out)
}

/// Reads and parses a policy file; the error is `FILE: line N: reason`.
pub fn load(path: &Path) -> Result<Vec<Rule>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The rules and which (rule, target) pairs held at the last sweep.
pub struct Policy {
    rules: Vec<Rule>,
    held: BTreeSet<(usize, String)>,
}

impl Policy {
    /// A policy of these rules, none holding yet.
    pub fn new(rules: Vec<Rule>) -> Policy {
        Policy {
            rules,
            held: BTreeSet::new(),
        }
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules that start to hold for `t` now (and forgets those that stopped).
    pub fn fire(&mut self, t: &Target) -> Vec<Rule> {
        let mut out = Vec::new();
        for r in &self.rules {
            if r.target.as_ref().is_some_and(|n| *n != t.name) {
                continue;
            }
            let key = (r.number, t.name.clone());
            if r.when.holds(t) {
                if self.held.insert(key) {
                    out.push(r.clone());
                }
            } else {
                self.held.remove(&key);
            }
        }
        out
    }

    /// Forgets a target that went (a new one of that name starts afresh).
    pub fn forget(&mut self, name: &str) {
        self.held.retain(|(_, n)| n != name);
    }
}

/// Carries out a rule's action on `t`; what happened, in words.
pub fn act(dm: &Dm, r: &Rule, t: &Target, run: &dyn Fn(&Path, &Target) -> String) -> String {
    let head = format!(
        "{}: policy rule {} (line {}, {})",
        t.name, r.number, r.line, r.when_text
    );
    match &r.action {
        Action::SpareAdd(c) => {
            let devs = match c.list() {
                Ok(d) => d,
                Err(e) => return format!("{head}: spare-add: {e}"),
            };
            let mut why = Vec::new();
            for d in &devs {
                let a = crate::admin::SpareAddArgs {
                    name: t.name.clone(),
                    spare: d.clone(),
                    format_spare: false,
                    dry_run: false,
                };
                match crate::admin::spare_add_to(&a) {
                    Ok(m) if why.is_empty() => return format!("{head}: {m}"),
                    Ok(m) => return format!("{head}: {m} (skipped: {})", why.join("; ")),
                    Err(e) => why.push(e),
                }
            }
            format!(
                "{head}: spare-add: no device could join: {}",
                why.join("; ")
            )
        }
        Action::ScanStart | Action::ScanStop => {
            scan(dm, &t.name, r.action == Action::ScanStart, &head)
        }
        Action::Exec(p) => format!("{head}: {}", run(p, t)),
        Action::Proactive(on) => match crate::admin::set_proactive(&t.name, *on) {
            Ok(m) => format!("{head}: {m}"),
            Err(e) => format!(
                "{head}: proactive-{} refused: {e}",
                if *on { "on" } else { "off" }
            ),
        },
        Action::Mail(to, sendmail) => {
            let msg = mail_message(r, t, to);
            let mut c = std::process::Command::new(sendmail);
            c.args(["-oi", "-t"]);
            match crate::monitor::run_fed(&mut c, msg.as_bytes(), &t.name) {
                Ok(st) if st.success() => format!("{head}: mailed {}", to.join(", ")),
                Ok(st) => format!("{head}: mail: {} exited with {st}", sendmail.display()),
                Err(e) => format!("{head}: mail: {} could not run: {e}", sendmail.display()),
            }
        }
    }
}

/// Sends `scan start` (or `scan stop`) to target `name`; the answer or the refusal,
/// after `head`, in words. The dashboard's buttons use it too.
pub fn scan(dm: &Dm, name: &str, start: bool, head: &str) -> String {
    let verb = if start { "scan start" } else { "scan stop" };
    match dm.message(name, verb) {
        Ok(a) => format!("{head}: {verb}: {}", a.trim()),
        Err((_, e)) => format!("{head}: {verb} refused: {e}"),
    }
}

/// The message a `mail` rule sends about `t`.
pub fn mail_message(r: &Rule, t: &Target, to: &[String]) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    // Header values come from a name the kernel accepted and a rule the parser
    // accepted: one line each, and ASCII (the body has the names as they are).
    let one_line = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c
                } else {
                    '?'
                }
            })
            .collect::<String>()
    };
    format!(
        "To: {}\nSubject: dm-remap on {}: {}: {}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nAuto-Submitted: auto-generated\n\n\
         Policy rule {} (line {}) holds for {}: {}.\n\n\
         {}: {}; alert level {}, health score {}.\n\n\
         remapctl status {} --json:\n{}\n",
        to.join(", "),
        one_line(host.trim()),
        one_line(&t.name),
        one_line(&r.when_text),
        r.number,
        r.line,
        t.name,
        r.when_text,
        t.name,
        crate::monitor::describe(t),
        t.status.alert,
        t.status.health_score,
        t.name,
        serde_json::to_string_pretty(t).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, free: u64, used: u64, alert: &str, ttf: &str) -> Target {
        let line = format!(
            "4096 {} 5 3 0 40 24 1 2 {used} 0 {used} {free} 7 9 0 ok idle 0 0 0 0 0 0 85 {alert} {ttf} 12",
            free + used
        );
        crate::dm::test_target(name, &line)
    }

    const GOOD: &str = r#"
# Grow the pool before it runs out.
[[rule]]
when = "spare_free_percent < 10"
action = "spare-add"
devices = ["/dev/sdx", "/dev/sdy"]

[[rule]]
when = "alert_level >= warning"
action = "exec"
program = "/usr/local/bin/page"
target = "data"

[[rule]]
when = "pending > 0"
action = "scan-start"

[[rule]]
when = "alert_level >= critical"
action = "proactive-off"

[[rule]]
when = "alert_level >= warning"
action = "mail"
to = ["root", "storage@example.com"]
"#;

    #[test]
    fn a_policy_parses() {
        let r = parse(GOOD).unwrap();
        assert_eq!(r.len(), 5);
        assert_eq!(r[0].line, 3);
        assert_eq!(
            r[0].when,
            Cond {
                figure: Figure::SpareFreePercent,
                op: Op::Lt,
                value: 10
            }
        );
        assert_eq!(
            r[0].action,
            Action::SpareAdd(Candidates::Devices(vec![
                "/dev/sdx".into(),
                "/dev/sdy".into()
            ]))
        );
        assert_eq!(r[1].when.value, 2);
        assert_eq!(r[1].target.as_deref(), Some("data"));
        assert_eq!(r[2].action, Action::ScanStart);
        assert_eq!(r[3].action, Action::Proactive(false));
        assert_eq!(
            r[4].action,
            Action::Mail(
                vec!["root".into(), "storage@example.com".into()],
                "/usr/sbin/sendmail".into()
            )
        );
        assert!(parse("").unwrap().is_empty());
    }

    /// A mail names the host, target and rule in its subject, and carries the status.
    #[test]
    fn a_mail_says_what_holds() {
        let r = parse(GOOD).unwrap();
        let t = target("safe0", 50, 950, "warning", "-");
        let m = mail_message(&r[4], &t, &["root".into(), "ops@x".into()]);
        let (head, body) = m.split_once("\n\n").unwrap();
        let lines: Vec<&str> = head.lines().collect();
        assert_eq!(lines[0], "To: root, ops@x");
        assert!(
            lines[1].starts_with("Subject: dm-remap on ")
                && lines[1].ends_with(": safe0: alert_level >= warning"),
            "{}",
            lines[1]
        );
        assert_eq!(
            &lines[2..],
            [
                "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=utf-8",
                "Auto-Submitted: auto-generated"
            ],
            "{head}"
        );
        let odd = target("a\u{e9}\nb", 50, 950, "warning", "-");
        let m = mail_message(&r[4], &odd, &["root".into()]);
        let subject = m.lines().nth(1).unwrap();
        assert!(
            subject.ends_with(": a??b: alert_level >= warning"),
            "{subject}"
        );
        assert!(
            body.starts_with("Policy rule 5 (line 22) holds for safe0: alert_level >= warning."),
            "{body}"
        );
        assert!(
            body.contains("alert level warning, health score 85"),
            "{body}"
        );
        let json = body.split_once("--json:\n").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["name"], "safe0");
    }

    #[test]
    fn a_pool_directory_lists_its_devices_in_name_order_when_the_rule_acts() {
        let dir = std::env::temp_dir().join(format!("dmremap-pool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rules = parse(
            "[[rule]]\nwhen = \"spare_free < 1\"\naction = \"spare-add\"\npool = \"POOL\"\n"
                .replace("POOL", dir.to_str().unwrap())
                .as_str(),
        )
        .unwrap();
        let Action::SpareAdd(c) = &rules[0].action else {
            panic!("{:?}", rules[0].action)
        };
        assert_eq!(c.list().unwrap(), Vec::<PathBuf>::new());
        // Entries added after the file was read count; hidden ones do not.
        for n in ["b-disk", "a-disk", ".keep", "c-disk"] {
            std::fs::write(dir.join(n), b"").unwrap();
        }
        let names: Vec<_> = c
            .list()
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a-disk", "b-disk", "c-disk"]);
        std::fs::remove_dir_all(&dir).unwrap();
        let e = c.list().unwrap_err();
        assert!(e.starts_with(&format!("pool {}: ", dir.display())), "{e}");
    }

    #[test]
    fn bad_policies_name_the_line_and_reason() {
        let cases = [
            ("[[rule]]\nwhen = \"spare_free < 1\"\naction = \"reboot\"\n", "line 1: rule 1: unknown action \"reboot\""),
            ("\n\n[[rule]]\nwhen = \"spare_fre < 1\"\naction = \"scan-start\"\n", "line 3: rule 1: when \"spare_fre < 1\": unknown figure"),
            ("[[rule]]\nwhen = \"remapped => 1\"\naction = \"scan-start\"\n", "unknown operator \"=>\""),
            ("[[rule]]\nwhen = \"remapped > lots\"\naction = \"scan-start\"\n", "\"lots\" is not a whole number"),
            ("[[rule]]\nwhen = \"remapped>1\"\naction = \"scan-start\"\n", "expected `<figure> <op> <value>`"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"spare-add\"\n", "spare-add needs `devices`"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"exec\"\nprogram = \"page\"\n", "must be an absolute path"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"scan-stop\"\ndevices = [\"/dev/x\"]\n", "`devices` is for spare-add"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"scan-stop\"\nsevrity = 1\n", "line 4: unknown field `sevrity`"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"scan-stop\"\ntarget = \"a/b\"\n", "not a valid device-mapper name"),
            ("[[rule]\n", "line 1:"),
            ("[[rule]]\naction = \"scan-stop\"\n", "missing field `when`"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"mail\"\n", "mail needs `to`"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"mail\"\nto = [\"-oQ/tmp\"]\n", "\"-oQ/tmp\" is not an address"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"mail\"\nto = [\"a@b\\nBcc: x@y\"]\n", "is not an address"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"mail\"\nto = [\"root\"]\nsendmail = \"sendmail\"\n", "must be an absolute path"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"exec\"\nprogram = \"/bin/true\"\nto = [\"root\"]\n", "`to` and `sendmail` are for mail"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"proactive-off\"\nprogram = \"/bin/true\"\n", "`program` for exec"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"spare-add\"\npool = \"pool.d\"\n", "pool \"pool.d\" must be an absolute path"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"spare-add\"\npool = \"/p\"\ndevices = [\"/dev/x\"]\n", "`devices` or `pool`, not both"),
            ("[[rule]]\nwhen = \"remapped > 1\"\naction = \"scan-start\"\npool = \"/p\"\n", "`pool` is for spare-add"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e:?} does not say {want:?}");
            assert!(e.starts_with("line "), "{e}");
        }
    }

    #[test]
    fn conditions_hold_on_the_figures() {
        let t = target("data", 5, 95, "warning", "7200");
        let c = |s: &str| Cond::parse(s).unwrap().holds(&t);
        assert!(c("spare_free_percent < 10"));
        assert!(!c("spare_free_percent < 5"));
        assert!(c("spare_free == 5") && c("remapped >= 95") && c("alert_level >= warning"));
        assert!(!c("alert_level > warning") && c("ttf_hours <= 2") && c("failed == 0"));
        let none = target("x", 5, 95, "info", "-");
        assert!(!Cond::parse("ttf_hours < 1000").unwrap().holds(&none));
        assert!(
            !Cond::parse("ttf_hours >= 0").unwrap().holds(&none),
            "no estimate: never holds"
        );
    }

    #[test]
    fn a_rule_fires_once_until_it_stops_holding() {
        let mut p = Policy::new(parse(GOOD).unwrap());
        let low = target("data", 5, 95, "info", "-");
        let ok = target("data", 50, 50, "info", "-");
        let other = target("other", 5, 95, "warning", "-");
        assert_eq!(
            p.fire(&low).iter().map(|r| r.number).collect::<Vec<_>>(),
            [1]
        );
        assert!(p.fire(&low).is_empty(), "still holding: not again");
        assert!(p.fire(&ok).is_empty());
        assert_eq!(p.fire(&low).len(), 1, "held again after a break");
        // Rule 2 names target "data" only; rule 5 (any target at warning) holds.
        assert_eq!(
            p.fire(&other).iter().map(|r| r.number).collect::<Vec<_>>(),
            [1, 5]
        );
        p.forget("other");
        assert_eq!(p.fire(&other).len(), 2);
    }
}
