//! `remapctl assemble`: rebuild dm-remap targets from what the disks hold, after a
//! reboot or on another host — as mdadm assembles md arrays from their superblocks.
//!
//! Every block device that is not in use is read: those whose metadata area holds a
//! loadable dm-remap state are spares, grouped by setup UUID. For each setup the main
//! device is found by the fingerprint the metadata records: its size and logical block
//! size, and — when the kernel could read one when the setup was made — the device's
//! own identifier, which the kernel checks when the table loads (so a candidate of the
//! right size but the wrong identity is refused by the kernel, and the next one is
//! tried). Without a recorded identifier, a size shared by several candidates is
//! ambiguous and refused. The table gets the configuration the metadata records, and
//! the setup UUID, so that it loads only that setup.
//!
//! A spare the newest metadata records lost (`meta::SPARE_FAILED`) may be missing, or
//! no longer read: an error device of its recorded size (`<name>-lost<N>`) stands in
//! for it in the table, and the kernel, whose copy reads of it all fail, takes it for
//! the lost record. `remapctl spare-remove` of that device removes it.

use crate::dm::Dm;
use crate::meta::{self, SetupInfo};
use clap::Args;
use remap_core::uuid::UuidText;
use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `remapctl assemble`.
#[derive(Args, Debug)]
pub struct AssembleArgs {
    /// The one setup the setups file (`--conf`) names so (it gets that name).
    #[arg(conflicts_with_all = ["scan", "uuid", "name"])]
    pub setup: Option<String>,
    /// Every setup found on the disks.
    #[arg(long, conflicts_with = "uuid")]
    pub scan: bool,
    /// Only the setup with this UUID.
    #[arg(long)]
    pub uuid: Option<String>,
    /// Device-mapper name for the one setup `--uuid` names (default `remap-` and the
    /// UUID's first 8 hex digits).
    #[arg(long)]
    pub name: Option<String>,
    /// The main device of the one setup `--uuid` names, when the search cannot tell
    /// (checked like any candidate: size, block size, and the kernel's identity check).
    #[arg(long)]
    pub main: Option<PathBuf>,
    /// Say what would be created; create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// For the boot units: a setup already active is success, not a refusal.
    #[arg(long)]
    pub incremental: bool,
    /// The setups file giving setups their names (`<name> <setup-uuid>` lines); a setup
    /// it does not name gets `remap-` and its UUID's first 8 hex digits.
    #[arg(long, default_value = crate::boot::SETUPS_FILE)]
    pub conf: PathBuf,
}

/// A block device that is not in use.
struct Free {
    path: PathBuf,
    sectors: u64,
    /// Its sysfs name, and the sysfs name of the disk it is a partition of.
    name: String,
    disk: String,
}

/// The disk a block device belongs to (itself when it is not a partition).
fn disk_of(name: &str) -> String {
    let sys = Path::new("/sys/class/block").join(name);
    if sys.join("partition").exists() {
        if let Ok(real) = std::fs::canonicalize(&sys) {
            if let Some(parent) = real.parent().and_then(|p| p.file_name()) {
                return parent.to_string_lossy().into_owned();
            }
        }
    }
    name.to_string()
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Whether the device can be opened exclusively (not mounted, not held by a table).
fn not_in_use(path: &Path) -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(path)
        .is_ok()
}

/// Every block device of nonzero size that nothing holds or has mounted, and that is
/// not itself a live dm-remap target.
fn free_devices(dm: &Dm) -> Vec<Free> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/sys/class/block") else {
        return out;
    };
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let sys = Path::new("/sys/class/block").join(&n);
        let Some(sectors) = read_u64(&sys.join("size")).filter(|&s| s > 0) else {
            continue;
        };
        let held = std::fs::read_dir(sys.join("holders")).is_ok_and(|mut d| d.next().is_some());
        if held {
            continue;
        }
        if let Ok(dmname) = std::fs::read_to_string(sys.join("dm/name")) {
            if matches!(dm.target(dmname.trim()), Ok(Some(_))) {
                continue;
            }
        }
        // sysfs writes '/' in a device name as '!' (cciss!c0d0 is /dev/cciss/c0d0).
        let path = Path::new("/dev").join(n.replace('!', "/"));
        if path.exists() && not_in_use(&path) {
            out.push(Free {
                path,
                sectors,
                disk: disk_of(&n),
                name: n,
            });
        }
    }
    out
}

/// A setup found on the disks.
struct Found {
    /// The state of the setup's newest spare.
    info: SetupInfo,
    /// Every free device holding the setup, with what its own copies hold.
    spares: Vec<(PathBuf, SetupInfo)>,
}

/// A record of a setup's spare list, as assembly found it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PoolDev {
    /// The free device that holds it.
    Device(PathBuf),
    /// A spare the metadata records lost, with no readable device: the record's
    /// position and recorded size. An error device stands in for it.
    Lost(usize, u64),
}

impl PoolDev {
    fn path(&self) -> Option<&Path> {
        match self {
            PoolDev::Device(p) => Some(p),
            PoolDev::Lost(..) => None,
        }
    }
}

/// The devices of a setup's pool, in the order its newest spare list records them:
/// each record's device found by the spare UUID its copies carry. Refused when two
/// devices claim one record (one is a copy of the other), when spares of one version
/// disagree, or when a record has no device — unless the metadata records that spare
/// lost (its device died and may be gone, or no longer reads).
fn pool_devices(u: &str, f: &Found) -> Result<Vec<PoolDev>, String> {
    let finds: Vec<remap_core::pool::SpareFind> = f
        .spares
        .iter()
        .map(|(_, i)| remap_core::pool::SpareFind::State {
            setup: i.uuid,
            spare: i.spare_uuid,
            version: i.version,
            state_crc: i.state_crc,
        })
        .collect();
    if let remap_core::pool::PoolChoice::Refuse(r) = remap_core::pool::choose(&finds) {
        let list: Vec<String> = f
            .spares
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        return Err(format!(
            "setup {u}: {} ({}): refusing to choose",
            r.as_str(),
            list.join(", ")
        ));
    }
    let mut out = Vec::new();
    for (r, rec) in f.info.spares.iter().enumerate() {
        // A format 1 state: its one spare's copies name no spare.
        let dev = f.spares.iter().find(|(_, i)| {
            &i.spare_uuid == rec || (i.spare_uuid == [0; 16] && f.info.spares.len() == 1)
        });
        let lost = f.info.lost.iter().find(|(l, _)| *l == r);
        match (dev, lost) {
            (Some((p, _)), _) => out.push(PoolDev::Device(p.clone())),
            (None, Some(&(_, sectors))) => out.push(PoolDev::Lost(r, sectors)),
            (None, None) => {
                return Err(format!(
                    "setup {u}: spare {r} of its pool ({}) is not among the free devices",
                    UuidText(rec)
                ))
            }
        }
    }
    for (p, i) in &f.spares {
        if !f.info.spares.contains(&i.spare_uuid) && i.spare_uuid != [0; 16] {
            eprintln!(
                "remapctl assemble: setup {u}: {} is not in the pool's spare list (removed from it): left out",
                p.display()
            );
        }
    }
    Ok(out)
}

/// The table options that give the kernel the configuration the metadata records.
fn options(info: &SetupInfo) -> Vec<String> {
    let c = &info.config;
    let mut o = Vec::new();
    if c.block_bytes != 4096 {
        o.extend(["block_size".to_string(), c.block_bytes.to_string()]);
    }
    if c.read_retries != u32::from(remap_core::table_line::DEFAULT_READ_RETRIES) {
        o.extend(["read_retries".to_string(), c.read_retries.to_string()]);
    }
    if c.scan_interval_s != 0 {
        o.extend(["scan_interval".to_string(), c.scan_interval_s.to_string()]);
    }
    if c.scan_rate_kibs != 0 {
        o.extend(["scan_rate".to_string(), c.scan_rate_kibs.to_string()]);
    }
    // Set while the table asked for two copies, or any block still has two.
    if c.flags & remap_core::meta::CONFIG_FLAG_REDUNDANCY != 0 {
        o.extend(["redundancy".to_string(), "2".to_string()]);
    }
    o.extend(["uuid".to_string(), UuidText(&info.uuid).to_string()]);
    o
}

fn devno(p: &Path) -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(format!(
        "{}:{}",
        libc::major(md.rdev()),
        libc::minor(md.rdev())
    ))
}

/// Assembles one setup; what it did, or why not.
fn assemble_one(
    dm: &Dm,
    f: &Found,
    free: &[Free],
    used: &mut Vec<PathBuf>,
    want_main: Option<&Path>,
    name: &str,
    dry_run: bool,
) -> Result<String, String> {
    let u = UuidText(&f.info.uuid).to_string();
    let pool_list = pool_devices(&u, f)?;
    let pool: Vec<PathBuf> = pool_list
        .iter()
        .filter_map(|d| d.path().map(Path::to_path_buf))
        .collect();
    let Some(spare) = pool.first() else {
        return Err(format!("setup {u}: no device of its pool is present"));
    };
    if let Ok(ts) = dm.targets() {
        if let Some(t) = ts.iter().find(|t| t.table.uuid.as_deref() == Some(&u)) {
            return Err(format!("setup {u}: already active as {}", t.name));
        }
    }
    // Not a spare, nor a partition of a spare's disk or the disk it is on, nor a device
    // an earlier setup of this run took (the kernel lets two tables share a main
    // device).
    let spare_disks: Vec<String> = free
        .iter()
        .filter(|d| pool.contains(&d.path))
        .map(|d| d.disk.clone())
        .collect();
    let mut cands: Vec<&Free> = free
        .iter()
        .filter(|d| d.sectors == f.info.main_sectors && !pool.contains(&d.path))
        .filter(|d| !spare_disks.contains(&d.disk) && !spare_disks.contains(&d.name))
        .filter(|d| !used.contains(&d.path))
        .filter(|d| {
            // The same device by any name (a /dev/mapper node is no symlink
            // without udev): compare device numbers.
            want_main.is_none_or(|m| {
                m == d.path || (devno(m).is_ok() && devno(m).ok() == devno(&d.path).ok())
            })
        })
        .filter(|d| {
            meta::probe(&d.path, None).is_ok_and(|p| {
                !matches!(
                    p,
                    meta::Probe::Setup { .. } | meta::Probe::Refused { foreign: false, .. }
                )
            })
        })
        .collect();
    cands.retain(|d| {
        meta::device::Spare::open(&d.path, false)
            .is_ok_and(|s| s.logical_block_bytes() == f.info.main_lbs)
    });
    let names = |c: &[&Free]| {
        c.iter()
            .map(|d| d.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if cands.is_empty() {
        return Err(format!(
            "setup {u} (spare {}): main device missing: no free device of {} sectors with {}-byte logical blocks",
            spare.display(),
            f.info.main_sectors,
            f.info.main_lbs
        ));
    }
    if !f.info.identity && cands.len() > 1 {
        return Err(format!(
            "setup {u} (spare {}): main device ambiguous: {} devices of {} sectors ({}) and no recorded identifier to tell them apart",
            spare.display(),
            cands.len(),
            f.info.main_sectors,
            names(&cands)
        ));
    }
    let opts = options(&f.info);
    let sectors = f.info.config.target_sectors;
    // A lost spare with no device: an error device of its recorded size stands in
    // (made once, before the candidates are tried; removed again when none is taken).
    let hex: String = u.chars().filter(|c| *c != '-').collect();
    let mut standins: Vec<(usize, String, PathBuf)> = Vec::new();
    let mut spares: Vec<(String, String)> = Vec::new();
    for d in &pool_list {
        match d {
            PoolDev::Device(p) => spares.push((devno(p)?, p.display().to_string())),
            PoolDev::Lost(r, lost_sectors) => {
                let n = standin_name(name, *r);
                if dry_run {
                    spares.push((n.clone(), format!("an error device {n} for lost spare {r}")));
                    continue;
                }
                let made = dm
                    .create_error(
                        &n,
                        &format!("{STANDIN_UUID_PREFIX}{hex}-{r}"),
                        *lost_sectors,
                    )
                    .and_then(|node| Ok((devno(&node)?, node)));
                match made {
                    Ok((no, node)) => {
                        spares.push((no, node.display().to_string()));
                        standins.push((*r, n, node));
                    }
                    Err(e) => {
                        remove_standins(dm, &standins);
                        return Err(format!(
                            "setup {u}: spare {r} is recorded lost and missing, and no error device could stand in for it: {e}"
                        ));
                    }
                }
            }
        }
    }
    let spares_text = spares
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let mut refused = Vec::new();
    for c in &cands {
        let mut devs = vec![devno(&c.path)?];
        devs.extend(spares.iter().map(|(no, _)| no.clone()));
        let params = format!("{} {} {}", devs.join(" "), opts.len(), opts.join(" "));
        if dry_run {
            return Ok(format!(
                "setup {u}: would create {name}: 0 {sectors} remap {params} (main {}, spare {spares_text})",
                c.path.display(),
            ));
        }
        match dm.create(name, sectors, &params) {
            Ok(node) => {
                used.push(c.path.clone());
                used.extend(pool.iter().cloned());
                let mut out = format!(
                    "setup {u}: created {name} ({}): main {}, spare {spares_text}, metadata version {}",
                    node.display(),
                    c.path.display(),
                    f.info.version
                );
                for (r, _, node) in &standins {
                    out += &format!(
                        "; spare {r} is recorded lost and its device is missing: the error device {} stands in for it (remapctl spare-remove {name} {} takes it out of the pool)",
                        node.display(),
                        node.display()
                    );
                }
                return Ok(out);
            }
            Err(e) => refused.push(format!("{}: {e}", c.path.display())),
        }
    }
    remove_standins(dm, &standins);
    Err(format!(
        "setup {u}: no candidate main device was accepted: {}",
        refused.join("; ")
    ))
}

/// The DM UUID prefix of an error device standing in for a lost spare (then the setup
/// UUID's 32 hex digits, `-` and the record's position). `DMREMAP-`: the udev rule
/// does not probe it.
pub const STANDIN_UUID_PREFIX: &str = "DMREMAP-LOST-";

/// The name of the error device standing in for lost spare `record` of target `name`.
fn standin_name(name: &str, record: usize) -> String {
    format!("{name}-lost{record}")
}

fn remove_standins(dm: &Dm, standins: &[(usize, String, PathBuf)]) {
    for (_, n, _) in standins {
        if let Err(e) = dm.remove(n) {
            eprintln!("remapctl assemble: {e}");
        }
    }
}

/// `remapctl assemble`.
pub fn run(mut a: AssembleArgs) -> ExitCode {
    // Bad usage: exit 2, as the argument parser's own errors.
    let usage = |m: String| {
        eprintln!("remapctl assemble: {m}");
        ExitCode::from(2)
    };
    if let Some(n) = a.setup.take() {
        let text = match std::fs::read_to_string(&a.conf) {
            Ok(t) => t,
            Err(e) => return usage(format!("{n}: cannot read {}: {e}", a.conf.display())),
        };
        match crate::boot::uuid_in(&text, &n) {
            Ok(Some(u)) => {
                a.uuid = Some(UuidText(&u).to_string());
                a.name = Some(n);
            }
            Ok(None) => return usage(format!("{} names no setup {n:?}", a.conf.display())),
            Err(e) => return usage(format!("{}: {e}", a.conf.display())),
        }
    }
    if !a.scan && a.uuid.is_none() {
        return usage(
            "say --scan (every setup), --uuid U or a name from the setups file (one)".into(),
        );
    }
    if (a.name.is_some() || a.main.is_some()) && a.uuid.is_none() {
        return usage("--name and --main are for the one setup --uuid gives".into());
    }
    let want = match &a.uuid {
        Some(u) => match remap_core::uuid::parse_uuid(u.as_bytes()) {
            Ok(w) => Some(w),
            Err(_) => return usage(format!("bad UUID {u:?}")),
        },
        None => None,
    };
    let r = (|| -> Result<bool, String> {
        let dm = Dm::open()?;
        // An active setup's spare is held by its target, so it is not among the free
        // devices: say where it is.
        if let Some(w) = want {
            let w = UuidText(&w).to_string();
            if let Some(t) = dm
                .targets()?
                .iter()
                .find(|t| t.table.uuid.as_deref() == Some(&w))
            {
                if a.incremental {
                    println!("setup {w}: already active as {}", t.name);
                    return Ok(true);
                }
                return Err(format!("setup {w}: already active as {}", t.name));
            }
        }
        let free = free_devices(&dm);
        let mut setups: BTreeMap<[u8; 16], Found> = BTreeMap::new();
        for d in &free {
            if let Ok(Some(info)) = meta::setup_of(&d.path) {
                let f = setups.entry(info.uuid).or_insert_with(|| Found {
                    info: info.clone(),
                    spares: Vec::new(),
                });
                // The newest state found among the setup's spares.
                if info.version > f.info.version {
                    f.info = info.clone();
                }
                f.spares.push((d.path.clone(), info));
            }
        }
        if let Some(w) = want {
            setups.retain(|u, _| *u == w);
            if setups.is_empty() {
                return Err(format!("no free device holds setup {}", UuidText(&w)));
            }
        }
        if setups.is_empty() {
            println!("no dm-remap setup found on the free block devices");
            return Ok(true);
        }
        let mut all_ok = true;
        let mut used = Vec::new();
        for (u, f) in &setups {
            let name = match (&a.name, want) {
                (Some(n), Some(_)) => n.clone(),
                // A setups file with an error must not stop assembly (at boot it would
                // stop every setup): the error is said, and the default name used.
                _ => match crate::boot::name_for(&a.conf, u) {
                    Ok(Some(n)) => n,
                    Ok(None) => format!("remap-{}", &UuidText(u).to_string()[..8]),
                    Err(e) => {
                        eprintln!(
                            "remapctl assemble: {e}: naming setup {} by its UUID",
                            UuidText(u)
                        );
                        format!("remap-{}", &UuidText(u).to_string()[..8])
                    }
                },
            };
            match assemble_one(
                &dm,
                f,
                &free,
                &mut used,
                a.main.as_deref(),
                &name,
                a.dry_run,
            ) {
                Ok(msg) => println!("{msg}"),
                Err(e) => {
                    eprintln!("remapctl assemble: {e}");
                    all_ok = false;
                }
            }
        }
        Ok(all_ok)
    })();
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("remapctl assemble: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration with every option at its default.
    fn config() -> remap_core::meta::Config {
        remap_core::meta::Config {
            block_bytes: 4096,
            read_retries: 1,
            target_sectors: 8,
            flags: 0,
            scan_interval_s: 0,
            scan_rate_kibs: 0,
            predict_interval_s: 0,
            alert_min_level: 0,
        }
    }

    #[test]
    fn the_options_carry_the_recorded_configuration() {
        let mut config = config();
        let info = |config| SetupInfo {
            uuid: [0x11; 16],
            version: 3,
            main_sectors: 8,
            main_lbs: 512,
            identity: false,
            config,
            spare_uuid: [0x22; 16],
            spares: vec![[0x22; 16]],
            lost: Vec::new(),
            state_crc: 0,
        };
        assert_eq!(
            options(&info(config)).join(" "),
            "uuid 11111111-1111-1111-1111-111111111111"
        );
        config.block_bytes = 512;
        config.read_retries = 3;
        config.scan_interval_s = 60;
        config.scan_rate_kibs = 2048;
        assert_eq!(
            options(&info(config)).join(" "),
            "block_size 512 read_retries 3 scan_interval 60 scan_rate 2048 uuid 11111111-1111-1111-1111-111111111111"
        );
        config.flags =
            remap_core::meta::CONFIG_FLAG_REDUNDANCY | remap_core::meta::CONFIG_FLAG_FAILED;
        assert_eq!(
            options(&info(config)).join(" "),
            "block_size 512 read_retries 3 scan_interval 60 scan_rate 2048 redundancy 2 uuid 11111111-1111-1111-1111-111111111111"
        );
    }

    /// A pool of three whose second spare is recorded lost: found without a device, it
    /// is a `Lost` record (an error device stands in); any other record missing is
    /// refused.
    #[test]
    fn a_lost_spare_may_be_missing() {
        let info = |spare: [u8; 16], lost: Vec<(usize, u64)>| SetupInfo {
            uuid: [0x11; 16],
            version: 9,
            main_sectors: 8,
            main_lbs: 512,
            identity: false,
            config: config(),
            spare_uuid: spare,
            spares: vec![[0xa0; 16], [0xa1; 16], [0xa2; 16]],
            lost,
            state_crc: 7,
        };
        let found = |lost: Vec<(usize, u64)>| Found {
            info: info([0xa0; 16], lost.clone()),
            spares: vec![
                (PathBuf::from("/dev/a"), info([0xa0; 16], lost.clone())),
                (PathBuf::from("/dev/c"), info([0xa2; 16], lost)),
            ],
        };
        assert_eq!(
            pool_devices("u", &found(vec![(1, 32768)])),
            Ok(vec![
                PoolDev::Device("/dev/a".into()),
                PoolDev::Lost(1, 32768),
                PoolDev::Device("/dev/c".into()),
            ])
        );
        let e = pool_devices("u", &found(Vec::new())).unwrap_err();
        assert!(e.contains("spare 1 of its pool"), "{e}");
        // Recorded lost, but the third record is the one missing: refused.
        let e = pool_devices("u", &found(vec![(2, 32768)])).unwrap_err();
        assert!(e.contains("spare 1 of its pool"), "{e}");
    }
}
