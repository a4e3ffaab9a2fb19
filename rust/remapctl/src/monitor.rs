//! `remapctl monitor`: waits on device-mapper events and reports what changed on every
//! dm-remap target — in its log (standard output: the journal under systemd) and through
//! an alert hook, as smartd's `-M exec` and `mdadm --monitor --program` do.
//!
//! No polling loop: the monitor arms the DM control device (`DM_DEV_ARM_POLL`), reads
//! every target's event counter, and sleeps in `poll` until the kernel reports an event
//! on any device-mapper device (a target raises one when it enters or leaves mode
//! failed, and when the background scan records what it found). Arming before reading
//! means an event that arrives while it reads wakes the next `poll` at once.
//!
//! For each target whose event counter moved (and each target that appears or goes), the
//! hook program runs with the event in its environment — `DMREMAP_TARGET`,
//! `DMREMAP_EVENT` (`event`, `new`, `gone`), `DMREMAP_EVENT_NR`, `DMREMAP_MODE`,
//! `DMREMAP_PREV_MODE`, `DMREMAP_REMAPPED`, `DMREMAP_PENDING`, `DMREMAP_SPARE_FREE` — and
//! the target as `remapctl status NAME --json` prints it on standard input. A hook that
//! fails is logged; the monitor goes on.

use crate::dm::{Dm, Target};
use clap::Args;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

/// `remapctl monitor`.
#[derive(Args, Debug)]
pub struct MonitorArgs {
    /// Program to run on each event (the event in its environment, the target's
    /// status as JSON on its standard input).
    #[arg(long)]
    pub program: Option<PathBuf>,
    /// Report the current state once and exit instead of waiting for events.
    #[arg(long)]
    pub once: bool,
    /// Serve the metrics (`GET /metrics`, as `remapctl metrics` prints them) on this
    /// loopback address, e.g. 127.0.0.1:9577.
    #[arg(long, value_name = "ADDR:PORT")]
    pub http: Option<String>,
    /// Let the dashboard act: forms to start or stop the scan and add a spare, each
    /// request checked against a token drawn at start (crate::actions). Off by
    /// default: the dashboard is read-only.
    #[arg(long, requires = "http")]
    pub actions: bool,
    /// Rules to apply by themselves (TOML; crate::policy): add a spare, start or stop
    /// the scan, run a program when a figure crosses a line.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// How long a hook may run.
const HOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// What the monitor remembers of a target.
struct Seen {
    event_nr: Option<u32>,
    mode: String,
}

/// The last [`EVENTS_KEPT`] log lines, with the time they were logged (seconds since
/// the epoch), for the dashboard's "recent events".
pub static EVENTS: std::sync::Mutex<std::collections::VecDeque<(u64, String)>> =
    std::sync::Mutex::new(std::collections::VecDeque::new());
const EVENTS_KEPT: usize = 50;

pub(crate) fn log(msg: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Ok(mut ev) = EVENTS.lock() {
        if ev.len() == EVENTS_KEPT {
            ev.pop_front();
        }
        ev.push_back((now, msg.to_string()));
    }
    println!("{msg}");
    let _ = std::io::stdout().flush();
}

fn hook(
    program: &PathBuf,
    kind: &str,
    t: Option<&Target>,
    name: &str,
    prev_mode: &str,
    nr: Option<u32>,
) {
    let mut c = Command::new(program);
    c.env("DMREMAP_TARGET", name)
        .env("DMREMAP_EVENT", kind)
        .env(
            "DMREMAP_EVENT_NR",
            nr.map_or(String::new(), |n| n.to_string()),
        )
        .env("DMREMAP_PREV_MODE", prev_mode);
    let json = match t {
        Some(t) => {
            c.env("DMREMAP_MODE", &t.status.mode)
                .env("DMREMAP_REMAPPED", t.status.remapped.to_string())
                .env("DMREMAP_PENDING", t.status.pending.to_string())
                .env("DMREMAP_SPARE_FREE", t.status.spare_free.to_string());
            serde_json::to_string(t).unwrap_or_default()
        }
        None => "null".to_string(),
    };
    match run_fed(&mut c, json.as_bytes(), name) {
        Ok(st) if st.success() => {}
        Ok(st) => log(&format!(
            "{name}: hook {} exited with {st}",
            program.display()
        )),
        Err(e) => log(&format!(
            "{name}: hook {} could not run: {e}",
            program.display()
        )),
    }
}

/// Runs `c` with `input` on its standard input and waits for it; one that hangs is
/// killed after [`HOOK_TIMEOUT`] (logged for target `name`), so that it cannot stop the
/// monitor.
pub(crate) fn run_fed(
    c: &mut Command,
    input: &[u8],
    name: &str,
) -> std::io::Result<std::process::ExitStatus> {
    use std::os::unix::process::CommandExt;
    // Its own process group, so that a kill reaches what it started too.
    let mut child = c.stdin(Stdio::piped()).process_group(0).spawn()?;
    // The input from a thread of its own: a program that does not read it must not hold
    // the monitor once the pipe is full.
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        std::thread::spawn(move || {
            // A program that does not read its input is not an error.
            let _ = stdin.write_all(&input);
        });
    }
    let start = std::time::Instant::now();
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st);
        }
        if start.elapsed() > HOOK_TIMEOUT {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: a plain kill(2) of the group this monitor started.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let _ = child.kill();
            log(&format!(
                "{name}: {} killed after {} s",
                c.get_program().to_string_lossy(),
                HOOK_TIMEOUT.as_secs()
            ));
            return child.wait();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub(crate) fn describe(t: &Target) -> String {
    let s = &t.status;
    format!(
        "mode {}, remapped {}, pending {}, fenced {}, spare free {} of {}, last commit {}, scan {}",
        s.mode,
        s.remapped,
        s.pending,
        s.fenced,
        s.spare_free,
        s.spare_used + s.spare_free,
        s.last_commit,
        s.scan_state
    )
}

/// One look at every target: reports what changed since `seen`.
fn sweep(
    dm: &Dm,
    seen: &mut BTreeMap<String, Seen>,
    program: Option<&PathBuf>,
    mut policy: Option<&mut crate::policy::Policy>,
) -> Result<(), String> {
    let counters: BTreeMap<String, Option<u32>> = dm.event_counters()?.into_iter().collect();
    let mut now = BTreeMap::new();
    for (name, nr) in &counters {
        let Ok(Some(t)) = dm.target(name) else {
            continue;
        };
        let prev = seen.get(name);
        let kind = match prev {
            None => Some("new"),
            Some(p) if p.event_nr != *nr || p.mode != t.status.mode => Some("event"),
            Some(_) => None,
        };
        let prev_mode = prev.map_or(String::new(), |p| p.mode.clone());
        if let Some(kind) = kind {
            let change = if !prev_mode.is_empty() && prev_mode != t.status.mode {
                format!(" (mode {prev_mode} -> {})", t.status.mode)
            } else {
                String::new()
            };
            log(&format!(
                "{name}: {kind}, event {}{change}: {}",
                nr.map_or("-".to_string(), |n| n.to_string()),
                describe(&t)
            ));
            if let Some(p) = program {
                hook(p, kind, Some(&t), name, &prev_mode, *nr);
            }
        }
        if let Some(p) = policy.as_deref_mut() {
            for r in p.fire(&t) {
                let run = |prog: &std::path::Path, t: &Target| {
                    hook(
                        &prog.to_path_buf(),
                        "policy",
                        Some(t),
                        &t.name,
                        &t.status.mode,
                        *nr,
                    );
                    format!("ran {}", prog.display())
                };
                log(&crate::policy::act(dm, &r, &t, &run));
            }
        }
        now.insert(
            name.clone(),
            Seen {
                event_nr: *nr,
                mode: t.status.mode.clone(),
            },
        );
    }
    for (name, p) in seen.iter() {
        if !now.contains_key(name) {
            log(&format!("{name}: gone"));
            if let Some(p) = policy.as_deref_mut() {
                p.forget(name);
            }
            if let Some(prog) = program {
                hook(prog, "gone", None, name, &p.mode, p.event_nr);
            }
        }
    }
    *seen = now;
    Ok(())
}

/// `remapctl monitor`.
pub fn run(a: MonitorArgs) -> ExitCode {
    let addr = match a.http.as_deref().map(crate::http::parse_addr).transpose() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("remapctl monitor: {e}");
            return ExitCode::from(2);
        }
    };
    let mut policy = match a.policy.as_deref().map(crate::policy::load).transpose() {
        Ok(rules) => rules.map(crate::policy::Policy::new),
        Err(e) => {
            eprintln!("remapctl monitor: policy {e}");
            return ExitCode::from(2);
        }
    };
    let r = (|| -> Result<(), String> {
        let dm = Dm::open()?;
        if let (Some(path), Some(p)) = (&a.policy, &policy) {
            log(&format!(
                "policy {}: {} rule(s)",
                path.display(),
                p.rules().len()
            ));
        }
        if let Some(addr) = addr {
            let token = if a.actions {
                Some(crate::actions::new_token()?)
            } else {
                None
            };
            crate::http::start(addr, token)?;
            log(&format!(
                "serving metrics on http://{addr}/metrics and the dashboard on http://{addr}/{}",
                if a.actions { " (actions on)" } else { "" }
            ));
        }
        let mut seen = BTreeMap::new();
        loop {
            dm.arm()?;
            sweep(&dm, &mut seen, a.program.as_ref(), policy.as_mut())?;
            if a.once {
                return Ok(());
            }
            dm.wait_event()?;
        }
    })();
    crate::admin::done(r, "monitor")
}
