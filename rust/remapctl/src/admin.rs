//! `remapctl create`, `remove`, `status` and `list`: the admin's commands over live
//! targets, through the kernel's DM ioctls ([`crate::dm`]).
//!
//! `create` checks the devices the way the kernel will (the table line is parsed and
//! checked against the devices by remap-core's `TableConfig`, the spare's metadata is
//! judged by remap-core's selection) and adds what the kernel cannot know: whether a
//! device is in use, and whether the main device is itself a dm-remap spare. A refusal
//! names its reason and leaves everything as it was.
//!
//! Exit status: 0 done; 1 refused or failed (the reason on standard error); 2 bad
//! usage (from the argument parser).

use crate::dm::{Dm, Target};
use crate::meta::{self, device::Spare, Probe};
use clap::{Args, ValueEnum};
use remap_core::table_line::TableConfig;
use remap_core::units::Sectors;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit status: refused or failed.
pub(crate) const EXIT_FAILED: u8 = 1;

/// `on` or `off`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// `remapctl create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Name of the device-mapper device (`/dev/mapper/NAME`).
    pub name: String,
    /// The main device: the ageing disk.
    #[arg(long)]
    pub main: PathBuf,
    /// The spare device; given several times, the pool's spares in order.
    #[arg(long, required = true)]
    pub spare: Vec<PathBuf>,
    /// Target length in sectors (default: the main device, rounded down to the block
    /// size).
    #[arg(long)]
    pub sectors: Option<u64>,
    /// Remap block size in bytes (table option `block_size`).
    #[arg(long)]
    pub block_size: Option<u64>,
    /// Extra read attempts (`read_retries`).
    #[arg(long)]
    pub read_retries: Option<u64>,
    /// Remap-storm bound, remaps per minute; 0: none (`max_remap_rate`).
    #[arg(long)]
    pub max_remap_rate: Option<u64>,
    /// Seconds between background scan passes; 0: no periodic pass (`scan_interval`).
    #[arg(long)]
    pub scan_interval: Option<u64>,
    /// Idle scan rate in KiB/s (`scan_rate`).
    #[arg(long)]
    pub scan_rate: Option<u64>,
    /// Copy weak blocks to the spare before they fail (`proactive_remap`).
    #[arg(long, value_enum)]
    pub proactive_remap: Option<Switch>,
    /// Percent of the spare pool proactive remaps leave free for failed writes
    /// (`proactive_reserve`, 0..100).
    #[arg(long)]
    pub proactive_reserve: Option<u64>,
    /// Blocks on either side of a weak block that move with it while the alert level
    /// is warning or above (`proactive_region`, 0..64).
    #[arg(long)]
    pub proactive_region: Option<u64>,
    /// The setup UUID the spare's metadata must carry (`uuid`).
    #[arg(long)]
    pub uuid: Option<String>,
    /// Format a spare that holds other data (destroys it).
    #[arg(long)]
    pub format_spare: bool,
    /// Check and print the table line; create nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `remapctl status` and `list`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// One target (default: every dm-remap target).
    pub name: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `remapctl list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print JSON.
    #[arg(long, conflicts_with = "conf")]
    pub json: bool,
    /// Print a setups file line (`<name> <setup-uuid>`) for each target, for
    /// /etc/dm-remap/setups.conf: boot-time assembly then gives each setup its name.
    #[arg(long)]
    pub conf: bool,
}

pub(crate) fn done(r: Result<(), String>, verb: &str) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("remapctl {verb}: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// A block device named on the command line.
struct Dev {
    path: PathBuf,
    devno: (u32, u32),
    sectors: u64,
    lbs: u32,
}

impl Dev {
    fn open(path: &Path, role: &str) -> Result<Dev, String> {
        let md = std::fs::metadata(path).map_err(|e| format!("{role} {}: {e}", path.display()))?;
        if !md.file_type().is_block_device() {
            return Err(format!("{role} {}: not a block device", path.display()));
        }
        let rdev = md.rdev();
        // A block device opened with O_EXCL fails while it is mounted, or held by a
        // device-mapper table, md, or another exclusive opener.
        if let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_EXCL)
            .open(path)
        {
            return Err(if e.raw_os_error() == Some(libc::EBUSY) {
                format!(
                    "{role} {}: in use (mounted, or held by another device: see /sys/dev/block/{}:{}/holders)",
                    path.display(),
                    libc::major(rdev),
                    libc::minor(rdev)
                )
            } else {
                format!("{role} {}: {e}", path.display())
            });
        }
        let s = Spare::open(path, false).map_err(|e| format!("{role}: {e}"))?;
        Ok(Dev {
            path: path.into(),
            devno: (libc::major(rdev), libc::minor(rdev)),
            sectors: s.len() / 512,
            lbs: s.logical_block_bytes(),
        })
    }

    fn devno(&self) -> String {
        format!("{}:{}", self.devno.0, self.devno.1)
    }
}

/// The table's arguments after the devices, from the options given.
fn options(a: &CreateArgs) -> Vec<String> {
    let mut o = Vec::new();
    let mut opt = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            o.push(k.to_string());
            o.push(v);
        }
    };
    opt("block_size", a.block_size.map(|v| v.to_string()));
    opt("read_retries", a.read_retries.map(|v| v.to_string()));
    opt("max_remap_rate", a.max_remap_rate.map(|v| v.to_string()));
    opt("scan_interval", a.scan_interval.map(|v| v.to_string()));
    opt("scan_rate", a.scan_rate.map(|v| v.to_string()));
    opt(
        "proactive_remap",
        a.proactive_remap
            .map(|s| if matches!(s, Switch::On) { "on" } else { "off" }.to_string()),
    );
    opt(
        "proactive_reserve",
        a.proactive_reserve.map(|v| v.to_string()),
    );
    opt(
        "proactive_region",
        a.proactive_region.map(|v| v.to_string()),
    );
    opt("uuid", a.uuid.clone());
    if a.format_spare {
        o.push("format_spare".to_string());
    }
    o
}

/// Checks everything it can and returns the table line's length and parameters.
fn plan(a: &CreateArgs) -> Result<(u64, String), String> {
    let main = Dev::open(&a.main, "main device")?;
    let mut spares = Vec::new();
    for p in &a.spare {
        spares.push(Dev::open(p, "spare")?);
    }
    let mut params = main.devno();
    for s in &spares {
        params += &format!(" {}", s.devno());
    }
    let opts = options(a);
    if !opts.is_empty() {
        params += &format!(" {} {}", opts.len(), opts.join(" "));
    }
    // The kernel's own parser and device checks, on the same line.
    let args: Vec<&[u8]> = params.split(' ').map(str::as_bytes).collect();
    let cfg = TableConfig::parse(&args).map_err(|e| format!("table line {params:?}: {e}"))?;
    let bs = cfg.block_size.sectors();
    let sectors = a.sectors.unwrap_or(main.sectors / bs * bs);
    for (i, spare) in spares.iter().enumerate() {
        cfg.check_devices(
            Sectors(sectors),
            Sectors(main.sectors),
            main.lbs,
            Sectors(spare.sectors),
            spare.lbs,
            main.devno == spare.devno,
        )
        .map_err(|e| format!("{e}"))?;
        if spares.iter().take(i).any(|o| o.devno == spare.devno) {
            return Err(format!("{}: named twice", spare.path.display()));
        }
    }
    // What the first resume will find on the spare.
    let probe =
        |d: &Dev| meta::probe(&d.path, None).map_err(|e| format!("{}: {e}", d.path.display()));
    if let Probe::Setup { uuid, .. } = probe(&main)? {
        return Err(format!(
            "main device {} holds dm-remap metadata (setup {uuid}): it is a spare; are main and spare swapped?",
            main.path.display()
        ));
    }
    for spare in &spares {
        match probe(spare)? {
        Probe::Blank => println!("spare {}: blank, the kernel formats it", spare.path.display()),
        Probe::Setup { uuid, version } => {
            if let Some(want) = &cfg.uuid {
                let want = remap_core::uuid::UuidText(want).to_string();
                if want != uuid {
                    return Err(format!(
                        "spare {} belongs to setup {uuid}, not {want}",
                        spare.path.display()
                    ));
                }
            }
            println!(
                "spare {}: setup {uuid}, metadata version {version}: its map is loaded",
                spare.path.display()
            );
        }
        Probe::Refused { foreign: true, .. } if a.format_spare => println!(
            "spare {}: holds other data; --format-spare: the kernel formats it",
            spare.path.display()
        ),
        Probe::Refused { foreign: true, .. } => {
            return Err(format!(
                "spare {} holds data that is not dm-remap metadata (or every copy is damaged); refusing to format it (--format-spare destroys what it holds)",
                spare.path.display()
            ))
        }
        Probe::Refused { reason, .. } => {
            return Err(format!("spare {}: {reason}", spare.path.display()))
        }
    }
    }
    Ok((sectors, params))
}

/// `remapctl create`.
pub fn create(a: CreateArgs) -> ExitCode {
    let r = (|| {
        let (sectors, params) = plan(&a)?;
        let line = format!("0 {sectors} remap {params}");
        if a.dry_run {
            println!("{line}");
            return Ok(());
        }
        let dm = Dm::open()?;
        let node = dm.create(&a.name, sectors, &params)?;
        println!("created {} ({}): {line}", a.name, node.display());
        if let Some(t) = dm.target(&a.name)? {
            print_status(&t);
        }
        Ok(())
    })();
    done(r, "create")
}

/// `remapctl spare-add`.
#[derive(Args, Debug)]
pub struct SpareAddArgs {
    /// Name of the dm-remap device.
    pub name: String,
    /// The blank block device to add to its pool.
    pub spare: PathBuf,
    /// Format the device even though it holds data that is not dm-remap metadata
    /// (destroys that data).
    #[arg(long)]
    pub format_spare: bool,
    /// Print the new table line; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `remapctl spare-add`: adds a blank spare to a live target's pool by reloading its
/// table with the device named after the others (the kernel writes the metadata to it
/// and records it in the spare list at the resume; I/O waits during the swap).
pub fn spare_add(a: SpareAddArgs) -> ExitCode {
    let r = spare_add_to(&a).map(|m| println!("{m}"));
    done(r, "spare-add")
}

/// What `remapctl spare-add` does, its outcome in words (the new table line for a dry
/// run); `remapctl monitor --policy` uses it too.
pub fn spare_add_to(a: &SpareAddArgs) -> Result<String, String> {
    // One table change at a time in this process: the dashboard's threads and the
    // policy could otherwise each read a table and load their change over the other's.
    let _one = RELOAD.lock().unwrap_or_else(|e| e.into_inner());
    {
        let dm = Dm::open()?;
        let Some(t) = dm.target(&a.name)? else {
            return Err(format!("{} is not a dm-remap target", a.name));
        };
        let dev = Dev::open(&a.spare, "spare")?;
        let devno = dev.devno();
        if t.table.main == devno || t.table.spares.contains(&devno) {
            return Err(format!(
                "{} ({devno}) is already a device of {}",
                dev.path.display(),
                a.name
            ));
        }
        if t.table.spares.len() >= remap_core::meta::MAX_SPARES {
            return Err(format!(
                "{} has {} spares, the most a pool holds",
                a.name,
                t.table.spares.len()
            ));
        }
        let mut format = false;
        match meta::probe(&dev.path, None).map_err(|e| format!("{}: {e}", dev.path.display()))? {
            Probe::Blank => {}
            Probe::Refused { foreign: true, .. } if a.format_spare => format = true,
            Probe::Refused { foreign: true, .. } => {
                return Err(format!(
                    "{} holds data that is not dm-remap metadata; refusing to format it (--format-spare destroys what it holds)",
                    dev.path.display()
                ))
            }
            Probe::Setup { uuid, .. } => {
                return Err(format!(
                    "{} holds dm-remap metadata (setup {uuid}); only a blank device joins a pool",
                    dev.path.display()
                ))
            }
            Probe::Refused { reason, .. } => {
                return Err(format!("{}: {reason}", dev.path.display()))
            }
        }
        // The line as the kernel prints it, with the new spare after the others (and
        // `format_spare` when asked: a one-shot option the kernel never prints back).
        let old = params_of(&t);
        let mut opts: Vec<String> = t
            .table
            .options
            .split_ascii_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect();
        if format {
            opts.push("format_spare".into());
        }
        let mut params = format!("{} {} {devno}", t.table.main, t.table.spares.join(" "));
        if !opts.is_empty() {
            params += &format!(" {} {}", opts.len(), opts.join(" "));
        }
        // The kernel's own parser and checks of the new spare.
        let args: Vec<&[u8]> = params.split(' ').map(str::as_bytes).collect();
        let cfg = TableConfig::parse(&args).map_err(|e| format!("table line {params:?}: {e}"))?;
        if cfg.block_size.bytes() < dev.lbs {
            return Err(format!(
                "{}: its {}-byte logical blocks are larger than the block size {}",
                dev.path.display(),
                dev.lbs,
                cfg.block_size.bytes()
            ));
        }
        if remap_core::layout::data_blocks(Sectors(dev.sectors), cfg.block_size).0 == 0 {
            return Err(format!(
                "{}: too small for the metadata and one data block",
                dev.path.display()
            ));
        }
        let line = format!("0 {} remap {params}", t.sectors);
        if a.dry_run {
            return Ok(line);
        }
        dm.reload(&a.name, t.sectors, &params, &old)?;
        let now = dm
            .target(&a.name)?
            .ok_or_else(|| format!("{} is gone", a.name))?;
        if !now.table.spares.contains(&devno) {
            return Err(format!(
                "{}: the table after the reload does not name {devno}",
                a.name
            ));
        }
        Ok(format!(
            "{}: {} added as spare {} of {}",
            a.name,
            dev.path.display(),
            now.table.spares.len().saturating_sub(1),
            now.table.spares.len()
        ))
    }
}

/// `remapctl spare-remove`.
#[derive(Args, Debug)]
pub struct SpareRemoveArgs {
    /// Name of the dm-remap device.
    pub name: String,
    /// The spare to take out of its pool.
    pub spare: PathBuf,
    /// Leave the removed spare's metadata on it (by default its metadata area is
    /// zeroed, so the device reads as blank).
    #[arg(long)]
    pub keep_metadata: bool,
}

/// `remapctl spare-remove`: moves the spare's blocks to the other spares of the pool
/// (the `spare_remove` message: I/O goes on, the spare is marked draining), reloads the
/// table without it (the kernel drops the drained record and commits the shorter
/// list), then zeroes its metadata area (not a lost spare's: it no longer answers; the
/// error device `remapctl assemble` made to stand in for a missing lost spare is
/// removed).
pub fn spare_remove(a: SpareRemoveArgs) -> ExitCode {
    let r = spare_remove_from(&a).map(|m| println!("{m}"));
    done(r, "spare-remove")
}

/// What `remapctl spare-remove` does; its outcome in words.
pub fn spare_remove_from(a: &SpareRemoveArgs) -> Result<String, String> {
    let _one = RELOAD.lock().unwrap_or_else(|e| e.into_inner());
    let dm = Dm::open()?;
    let Some(t) = dm.target(&a.name)? else {
        return Err(format!("{} is not a dm-remap target", a.name));
    };
    let md = std::fs::metadata(&a.spare).map_err(|e| format!("{}: {e}", a.spare.display()))?;
    if !md.file_type().is_block_device() {
        return Err(format!("{}: not a block device", a.spare.display()));
    }
    let devno = format!("{}:{}", libc::major(md.rdev()), libc::minor(md.rdev()));
    if !t.table.spares.contains(&devno) {
        return Err(format!(
            "{} ({devno}) is not a spare of {}",
            a.spare.display(),
            a.name
        ));
    }
    if t.table.spares.len() < 2 {
        return Err(format!("{devno} is the last spare of {}", a.name));
    }
    let moved = dm
        .message(&a.name, &format!("spare_remove {devno}"))
        .map_err(|(_, e)| format!("spare_remove {devno}: {e} (the kernel log says why)"))?;
    let old = params_of(&t);
    let rest: Vec<&str> = t
        .table
        .spares
        .iter()
        .filter(|s| **s != devno)
        .map(String::as_str)
        .collect();
    let mut params = format!("{} {}", t.table.main, rest.join(" "));
    if !t.table.options.is_empty() {
        params += &format!(" {}", t.table.options);
    }
    dm.reload(&a.name, t.sectors, &params, &old)?;
    let now = dm
        .target(&a.name)?
        .ok_or_else(|| format!("{} is gone", a.name))?;
    if now.table.spares.contains(&devno) {
        return Err(format!(
            "{}: the table after the reload still names {devno}",
            a.name
        ));
    }
    let mut out = format!(
        "{}: {} removed ({}), {} spare(s) left",
        a.name,
        a.spare.display(),
        moved.trim(),
        now.table.spares.len()
    );
    if let Some(n) = dm.name_with_uuid_prefix(&devno, crate::assemble::STANDIN_UUID_PREFIX) {
        // The error device `remapctl assemble` made for a lost spare that was missing.
        dm.remove(&n)?;
        out += &format!("; it was lost, and the error device {n} standing in for it is removed");
    } else if moved.contains("state=failed") {
        // A lost spare: its device no longer answers, nothing to zero.
        out += "; it was lost, its metadata area is left as it is";
    } else if !a.keep_metadata {
        wipe_metadata(&a.spare)?;
        out += "; its metadata area zeroed";
    }
    Ok(out)
}

/// Zeroes the metadata area (the five copies) of a spare no table holds (opened
/// exclusively), and makes it durable.
fn wipe_metadata(path: &Path) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_EXCL)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let zeros = vec![0u8; remap_core::layout::COPY_MAX_BYTES];
    for &at in remap_core::layout::COPY_SECTORS.iter() {
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(at * 512))
            .and_then(|_| f.write_all(&zeros))
            .map_err(|e| format!("{}: zeroing its metadata: {e}", path.display()))?;
    }
    f.sync_all()
        .map_err(|e| format!("{}: zeroing its metadata: {e}", path.display()))
}

/// Held across the read, the reload and the check of a table change made by this
/// process (a spare added, proactive remapping switched): the monitor's dashboard and
/// its policy act from different threads.
static RELOAD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Target `t`'s table parameters as the kernel prints them (what a reload compares).
fn params_of(t: &Target) -> String {
    format!(
        "{} {}{}{}",
        t.table.main,
        t.table.spares.join(" "),
        if t.table.options.is_empty() { "" } else { " " },
        t.table.options
    )
}

/// Turns proactive remapping of target `name` on or off (the table option
/// `proactive_remap`, by a reload of the same line with that option changed); the
/// outcome in words. `remapctl monitor --policy` uses it.
pub fn set_proactive(name: &str, on: bool) -> Result<String, String> {
    let _one = RELOAD.lock().unwrap_or_else(|e| e.into_inner());
    let word = if on { "on" } else { "off" };
    let dm = Dm::open()?;
    let Some(t) = dm.target(name)? else {
        return Err(format!("{name} is not a dm-remap target"));
    };
    let old = params_of(&t);
    let args: Vec<&[u8]> = old.split(' ').map(str::as_bytes).collect();
    let mut cfg = TableConfig::parse(&args).map_err(|e| format!("table line {old:?}: {e}"))?;
    if cfg.proactive_remap.unwrap_or(true) == on {
        return Ok(format!("{name}: proactive remapping is already {word}"));
    }
    cfg.proactive_remap = Some(on);
    let spares: Vec<&str> = t.table.spares.iter().map(String::as_str).collect();
    let mut params = String::new();
    cfg.write_table(&mut params, &t.table.main, &spares, cfg.uuid.as_ref())
        .map_err(|_| format!("{name}: cannot write the table line"))?;
    dm.reload(name, t.sectors, &params, &old)?;
    let now = dm.target(name)?.ok_or_else(|| format!("{name} is gone"))?;
    if !now
        .table
        .options
        .contains(&format!("proactive_remap {word}"))
    {
        return Err(format!(
            "{name}: the table after the reload does not say proactive_remap {word}"
        ));
    }
    Ok(format!("{name}: proactive remapping turned {word}"))
}

/// `remapctl remove`.
pub fn remove(name: &str) -> ExitCode {
    let r = Dm::open().and_then(|dm| {
        match dm.target(name)? {
            Some(_) => {}
            None => return Err(format!("{name} is not a dm-remap target")),
        }
        dm.remove(name)?;
        println!("removed {name}");
        Ok(())
    });
    done(r, "remove")
}

fn targets(name: Option<&str>) -> Result<Vec<Target>, String> {
    let dm = Dm::open()?;
    match name {
        None => dm.targets(),
        Some(n) => match dm.target(n)? {
            Some(t) => Ok(vec![t]),
            None => Err(format!("{n} is not a dm-remap target")),
        },
    }
}

fn print_status(t: &Target) {
    let s = &t.status;
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    println!(
        "{} ({}, {} sectors{}): mode {}",
        t.name,
        t.device,
        t.sectors,
        if t.suspended { ", suspended" } else { "" },
        s.mode
    );
    println!(
        "  main {}  spare {}  setup {}",
        t.table.main,
        t.table.spare,
        t.table.uuid.as_deref().unwrap_or("-")
    );
    println!(
        "  remapped {}  pending {}  fenced {}  spare used {} of {} blocks of {} bytes ({:.1}%)",
        s.remapped,
        s.pending,
        s.fenced,
        s.spare_used,
        s.spare_used + s.spare_free,
        s.block_size,
        pct(s.spare_used, s.spare_used + s.spare_free)
    );
    println!(
        "  reads {} ({} errors)  writes {} ({} errors)  remaps since created {}",
        s.reads, s.read_errors, s.writes, s.write_errors, s.remaps
    );
    let commit = if s.last_commit == 0 {
        "ok".to_string()
    } else {
        format!("failed ({})", s.last_commit)
    };
    println!(
        "  metadata version {}, last commit {commit}",
        s.meta_version
    );
    println!(
        "  scan {}: pass {}, next block {}, unreadable {}, weak {}, proactive remaps {}",
        s.scan_state,
        s.scan_passes,
        s.scan_cursor,
        s.scan_unreadable,
        s.scan_weak,
        s.proactive_remaps
    );
    println!(
        "  health {}/100, alert {}, time to failure {}, samples {}",
        s.health_score,
        s.alert,
        s.ttf_s.map_or("-".to_string(), remapctl::trace::days),
        s.samples
    );
}

/// `remapctl status`.
pub fn status(a: StatusArgs) -> ExitCode {
    let r = targets(a.name.as_deref()).and_then(|ts| {
        if a.json {
            let v = match (a.name.is_some(), ts.as_slice()) {
                (true, [t]) => serde_json::to_string_pretty(t),
                _ => serde_json::to_string_pretty(&ts),
            };
            println!("{}", v.map_err(|e| e.to_string())?);
        } else if ts.is_empty() {
            println!("no dm-remap targets");
        } else {
            for t in &ts {
                print_status(t);
            }
        }
        Ok(())
    });
    done(r, "status")
}

/// `remapctl list`.
pub fn list(a: ListArgs) -> ExitCode {
    let r = targets(None).and_then(|ts| {
        if a.json {
            let rows: Vec<_> = ts
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "name": t.name, "device": t.device, "sectors": t.sectors,
                        "main": t.table.main, "spare": t.table.spare,
                        "remapped": t.status.remapped, "pending": t.status.pending,
                        "mode": t.status.mode,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?
            );
        } else if a.conf {
            // A name the setups file cannot hold (white space, `#`) is left out, said
            // on standard error (exit 1): a line with it would be an error in the file.
            let mut left_out = Vec::new();
            for t in &ts {
                let u =
                    t.table.uuid.as_deref().ok_or_else(|| {
                        format!("{}: its table line carries no setup UUID", t.name)
                    })?;
                if t.name.contains(|c: char| c.is_whitespace() || c == '#') {
                    left_out.push(t.name.clone());
                    continue;
                }
                println!("{} {u}", t.name);
            }
            if !left_out.is_empty() {
                return Err(format!(
                    "left out (white space or '#' in the name; a setups file cannot hold it): {left_out:?}"
                ));
            }
        } else {
            for t in &ts {
                println!(
                    "{} {} {} main={} spare={} remapped={} pending={} mode={}",
                    t.name,
                    t.device,
                    t.sectors,
                    t.table.main,
                    t.table.spare,
                    t.status.remapped,
                    t.status.pending,
                    t.status.mode
                );
            }
        }
        Ok(())
    });
    done(r, "list")
}
