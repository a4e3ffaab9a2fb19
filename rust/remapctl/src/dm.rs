//! The kernel's device-mapper interface, through the `devicemapper` crate (the DM
//! ioctls on `/dev/mapper/control`, as stratisd uses them): list, create, remove,
//! status and messages of `remap` targets.

use crate::status::{Info, Table};
use devicemapper::{errors, DevId, DmError, DmFlags, DmName, DmOptions, DmUuid, DM};
use std::path::{Path, PathBuf};

/// A DM failure, in words.
pub fn describe(e: &DmError) -> String {
    match e {
        DmError::Core(errors::Error::Ioctl(_, _, _, errno)) => errno.desc().to_string(),
        other => other.to_string(),
    }
}

/// The errno of a DM ioctl failure, if that is what `e` is.
pub fn errno(e: &DmError) -> Option<i32> {
    match e {
        DmError::Core(errors::Error::Ioctl(_, _, _, errno)) => Some(**errno as i32),
        _ => None,
    }
}

/// One `remap` target, as the kernel reports it.
#[derive(Debug, serde::Serialize)]
pub struct Target {
    /// The DM device's name.
    pub name: String,
    /// `dm-N`.
    pub device: String,
    /// `major:minor`.
    pub devno: String,
    /// Length in sectors.
    pub sectors: u64,
    /// Whether the device is suspended.
    pub suspended: bool,
    /// The table line.
    pub table: Table,
    /// The INFO status.
    pub status: Info,
}

/// One spare of a target's pool, as a line of the `spare_stats` message's answer
/// (`spare=I dev=MAJ:MIN blocks=.. used=.. free=.. errors=.. state=..`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpareStat {
    /// Its place in the pool, from 0.
    pub index: u64,
    /// `major:minor`.
    pub dev: String,
    /// Data blocks.
    pub blocks: u64,
    /// Data blocks in use.
    pub used: u64,
    /// Data blocks free.
    pub free: u64,
    /// I/O errors since the table was loaded.
    pub errors: u64,
    /// `active`, `draining` or `failed`.
    pub state: String,
}

impl SpareStat {
    /// The spares of a `spare_stats` answer; a line without `spare=` is skipped, a
    /// field that is missing or not a number reads as 0.
    pub fn parse_all(answer: &str) -> Vec<SpareStat> {
        answer
            .lines()
            .filter_map(|l| {
                let f: Vec<(&str, &str)> = l
                    .split_ascii_whitespace()
                    .filter_map(|w| w.split_once('='))
                    .collect();
                let get = |k: &str| f.iter().find(|(a, _)| *a == k).map(|(_, v)| *v);
                let num = |k: &str| get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
                get("spare")?;
                Some(SpareStat {
                    index: num("spare"),
                    dev: get("dev").unwrap_or("?").to_string(),
                    blocks: num("blocks"),
                    used: num("used"),
                    free: num("free"),
                    errors: num("errors"),
                    state: get("state").unwrap_or("?").to_string(),
                })
            })
            .collect()
    }
}

/// An open DM control handle.
pub struct Dm {
    dm: DM,
}

fn name(n: &str) -> Result<&DmName, String> {
    DmName::new(n).map_err(|e| format!("{n:?} is not a valid device-mapper name: {}", describe(&e)))
}

/// Whether `n` can name a device-mapper device (the kernel also refuses `/`, and
/// `.`/`..` would be odd nodes under /dev/mapper).
pub fn check_name(n: &str) -> Result<(), String> {
    if n.contains('/') || n == "." || n == ".." {
        return Err(format!("{n:?} is not a valid device-mapper name"));
    }
    name(n).map(|_| ())
}

impl Dm {
    /// Opens `/dev/mapper/control`.
    pub fn open() -> Result<Dm, String> {
        DM::new()
            .map(|dm| Dm { dm })
            .map_err(|e| format!("cannot open /dev/mapper/control: {}", describe(&e)))
    }

    /// Every DM device whose (single-target) table is a `remap` target, by name.
    pub fn targets(&self) -> Result<Vec<Target>, String> {
        let mut out = Vec::new();
        let devs = self
            .dm
            .list_devices()
            .map_err(|e| format!("cannot list device-mapper devices: {}", describe(&e)))?;
        for (n, _, _) in devs {
            match self.target(n.to_string().as_str()) {
                Ok(Some(t)) => out.push(t),
                Ok(None) => {}
                // Removed since the listing: not an error.
                Err(e) if e.starts_with("no device-mapper device named") => {}
                // Say so rather than leave the target out silently.
                Err(e) => eprintln!("remapctl: {e}"),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The `remap` target `n`: `None` when the device exists with another table.
    pub fn target(&self, n: &str) -> Result<Option<Target>, String> {
        let id = DevId::Name(name(n)?);
        let err = |what: &str, e: DmError| match errno(&e) {
            Some(libc::ENXIO) => format!("no device-mapper device named {n}"),
            _ => format!("{n}: cannot read its {what}: {}", describe(&e)),
        };
        let (info, table) = self
            .dm
            .table_status(
                &id,
                DmOptions::default().set_flags(DmFlags::DM_STATUS_TABLE),
            )
            .map_err(|e| err("table", e))?;
        let [(_, len, ty, params)] = table.as_slice() else {
            return Ok(None);
        };
        if ty != "remap" {
            return Ok(None);
        }
        let (_, status) = self
            .dm
            .table_status(&id, DmOptions::default().set_flags(DmFlags::DM_NOFLUSH))
            .map_err(|e| err("status", e))?;
        let [(_, _, _, st)] = status.as_slice() else {
            return Err(format!(
                "{n}: its status has {} lines, not one",
                status.len()
            ));
        };
        let dev = info.device();
        Ok(Some(Target {
            name: n.to_string(),
            device: format!("dm-{}", dev.minor),
            devno: format!("{}:{}", dev.major, dev.minor),
            sectors: *len,
            suspended: info.flags().contains(DmFlags::DM_SUSPEND),
            table: Table::parse(params).map_err(|e| format!("{n}: {e}"))?,
            status: Info::parse(st).map_err(|e| format!("{n}: {e}"))?,
        }))
    }

    /// Creates device `n` with the one-line table `0 sectors remap params` and resumes
    /// it. On failure nothing is left behind; the error carries the kernel's reason
    /// when its log gives one.
    ///
    /// A table with a setup UUID gives the device the DM UUID `DMREMAP-<setup UUID in
    /// hex>` (as LVM's `LVM-` and cryptsetup's `CRYPT-` prefixes do): the udev rule
    /// does not probe such a device as a possible spare, and one setup cannot be active
    /// twice under two names.
    pub fn create(&self, n: &str, sectors: u64, params: &str) -> Result<PathBuf, String> {
        let dn = name(n)?;
        let log = KernelLog::open();
        let dm_uuid = dm_uuid_of(params);
        let uuid = match &dm_uuid {
            Some(u) => Some(DmUuid::new(u).map_err(|e| format!("DM UUID {u}: {e}"))?),
            None => None,
        };
        let info = self
            .dm
            .device_create(dn, uuid, DmOptions::default())
            .map_err(|e| match (errno(&e), &dm_uuid) {
                (Some(libc::EBUSY), Some(u)) if self.uuid_taken(u) => {
                    format!("cannot create device {n}: the setup is already active (DM UUID {u})")
                }
                _ => format!("cannot create device {n}: {}", describe(&e)),
            })?;
        let id = DevId::Name(dn);
        let table = [(0, sectors, "remap".to_string(), params.to_string())];
        let loaded = self
            .dm
            .table_load(&id, &table, DmOptions::default())
            .and_then(|_| self.dm.device_suspend(&id, DmOptions::default()));
        if let Err(e) = loaded {
            let why = log.and_then(|l| l.reason()).unwrap_or_else(|| describe(&e));
            let _ = self.dm.device_remove(&id, DmOptions::default());
            return Err(format!("the kernel refused the table: {why}"));
        }
        if dm_uuid.is_none() {
            // A new setup: the kernel chose its UUID when it formatted the spare, and the
            // live table names it. The DM UUID is set now (once, while it is empty).
            let set = self
                .target(n)
                .ok()
                .flatten()
                .and_then(|t| t.table.uuid)
                .and_then(|u| dm_uuid_of(&format!("uuid {u}")))
                .ok_or_else(|| "no setup UUID in the live table".to_string())
                .and_then(|u| {
                    let id = DmUuid::new(&u).map_err(|e| e.to_string())?;
                    self.dm
                        .device_rename(dn, &DevId::Uuid(id))
                        .map_err(|e| describe(&e))
                });
            if let Err(e) = set {
                eprintln!("remapctl: {n}: the DM UUID was not set: {e}");
            }
        }
        let dev = info.device();
        Ok(node(n, dev.major, dev.minor))
    }

    /// Creates device `n` with the table `0 sectors error` and DM UUID `dm_uuid`, and
    /// resumes it: a device every read and write of which fails at once. `remapctl
    /// assemble` names one in the table in place of a spare the metadata records lost
    /// whose device is missing (the kernel reads its copies, all fail, and it takes
    /// the device for the lost record). On failure nothing is left behind.
    pub fn create_error(&self, n: &str, dm_uuid: &str, sectors: u64) -> Result<PathBuf, String> {
        let dn = name(n)?;
        let uuid = DmUuid::new(dm_uuid).map_err(|e| format!("DM UUID {dm_uuid}: {e}"))?;
        let id = DevId::Name(dn);
        let info = match self.dm.device_create(dn, Some(uuid), DmOptions::default()) {
            Ok(info) => info,
            // One an earlier attempt left (its DM UUID says so): taken as it is.
            Err(e) if errno(&e) == Some(libc::EBUSY) => {
                let info = self
                    .dm
                    .device_info(&id)
                    .map_err(|_| format!("cannot create device {n}: {}", describe(&e)))?;
                if info.uuid().map(|u| u.to_string()).as_deref() != Some(dm_uuid) {
                    return Err(format!(
                        "cannot create device {n}: another device has the name"
                    ));
                }
                let dev = info.device();
                return Ok(node(n, dev.major, dev.minor));
            }
            Err(e) => return Err(format!("cannot create device {n}: {}", describe(&e))),
        };
        let table = [(0, sectors, "error".to_string(), String::new())];
        let loaded = self
            .dm
            .table_load(&id, &table, DmOptions::default())
            .and_then(|_| self.dm.device_suspend(&id, DmOptions::default()));
        if let Err(e) = loaded {
            let _ = self.dm.device_remove(&id, DmOptions::default());
            return Err(format!(
                "cannot load device {n}'s error table: {}",
                describe(&e)
            ));
        }
        let dev = info.device();
        Ok(node(n, dev.major, dev.minor))
    }

    /// The name of the device-mapper device with device number `devno`
    /// (`major:minor`) when its DM UUID starts with `prefix`.
    pub fn name_with_uuid_prefix(&self, devno: &str, prefix: &str) -> Option<String> {
        let devs = self.dm.list_devices().ok()?;
        devs.iter().find_map(|(n, d, _)| {
            if format!("{}:{}", d.major, d.minor) != devno {
                return None;
            }
            let info = self.dm.device_info(&DevId::Name(n)).ok()?;
            let u = info.uuid()?.to_string();
            u.starts_with(prefix).then(|| n.to_string())
        })
    }

    /// Replaces device `n`'s table with the one-line table `0 sectors remap params`:
    /// the new table is loaded (the kernel's constructor checks it), the device
    /// suspended (in-flight I/O completes, new I/O waits) and resumed with it. When the
    /// new table is refused nothing changes; when the resume fails (the new table's
    /// first resume writes metadata), `old` is loaded again and the device resumed with
    /// it. The error carries the kernel's reason when its log gives one.
    pub fn reload(&self, n: &str, sectors: u64, params: &str, old: &str) -> Result<(), String> {
        let id = DevId::Name(name(n)?);
        let log = KernelLog::open();
        let table = [(0, sectors, "remap".to_string(), params.to_string())];
        if let Err(e) = self.dm.table_load(&id, &table, DmOptions::default()) {
            let why = log.and_then(|l| l.reason()).unwrap_or_else(|| describe(&e));
            return Err(format!("the kernel refused the table: {why}"));
        }
        if let Err(e) = self
            .dm
            .device_suspend(&id, DmOptions::default().set_flags(DmFlags::DM_SUSPEND))
        {
            let _ = self.dm.table_clear(&id);
            return Err(format!("cannot suspend {n}: {}", describe(&e)));
        }
        let log = KernelLog::open();
        if let Err(e) = self.dm.device_suspend(&id, DmOptions::default()) {
            let why = log.and_then(|l| l.reason()).unwrap_or_else(|| describe(&e));
            let back = [(0, sectors, "remap".to_string(), old.to_string())];
            let restored = self
                .dm
                .table_load(&id, &back, DmOptions::default())
                .and_then(|_| self.dm.device_suspend(&id, DmOptions::default()));
            return Err(match restored {
                Ok(_) => {
                    format!("the new table did not resume ({why}); the old table is live again")
                }
                Err(e2) => format!(
                    "the new table did not resume ({why}), nor the old one ({}): {n} is suspended",
                    describe(&e2)
                ),
            });
        }
        Ok(())
    }

    /// Every DM device's name and event counter (`None`: the kernel reports none).
    pub fn event_counters(&self) -> Result<Vec<(String, Option<u32>)>, String> {
        Ok(self
            .dm
            .list_devices()
            .map_err(|e| format!("cannot list device-mapper devices: {}", describe(&e)))?
            .into_iter()
            .map(|(n, _, ev)| (n.to_string(), ev))
            .collect())
    }

    /// Arms the control device: from now on, any device-mapper event (a target's
    /// `dm_table_event`, a device created or removed) makes it readable, until armed
    /// again — the DM ioctl event mechanism dmeventd uses.
    pub fn arm(&self) -> Result<(), String> {
        self.dm
            .arm_poll()
            .map(|_| ())
            .map_err(|e| format!("cannot arm device-mapper event polling: {}", describe(&e)))
    }

    /// Waits until an event arrived since [`Self::arm`] (no timeout: `poll` sleeps).
    pub fn wait_event(&self) -> Result<(), String> {
        use std::os::unix::io::AsRawFd;
        let mut p = libc::pollfd {
            fd: self.dm.file().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd, for the duration of the call.
            let r = unsafe { libc::poll(&mut p, 1, -1) };
            if r > 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            if r < 0 && e.raw_os_error() != Some(libc::EINTR) {
                return Err(format!("poll on /dev/mapper/control: {e}"));
            }
        }
    }

    /// Sends message `msg` to target `n`; its answer. A failure carries the errno.
    pub fn message(&self, n: &str, msg: &str) -> Result<String, (Option<i32>, String)> {
        let id = DevId::Name(name(n).map_err(|e| (None, e))?);
        self.dm
            .target_msg(&id, None, msg)
            .map(|(_, out)| out.unwrap_or_default())
            .map_err(|e| (errno(&e), describe(&e)))
    }

    /// Target `n`'s spares (`spare_stats`).
    pub fn spare_stats(&self, n: &str) -> Result<Vec<SpareStat>, String> {
        self.message(n, "spare_stats")
            .map(|a| SpareStat::parse_all(&a))
            .map_err(|(_, e)| format!("{n}: spare_stats: {e}"))
    }

    /// Whether a device-mapper device has DM UUID `u`.
    fn uuid_taken(&self, u: &str) -> bool {
        DmUuid::new(u).is_ok_and(|id| self.dm.device_info(&DevId::Uuid(id)).is_ok())
    }

    /// Removes device `n` (and the node [`Self::create`] made for it).
    ///
    /// A device that is open but neither mounted nor held is retried for about 5
    /// seconds (see [`REMOVE_TRIES`]), as `dmsetup remove --retry` and LVM do: udev
    /// opens a device after every change event (blkid, and the dm-remap rule's probe,
    /// which reads the five metadata copies), so a remove right after an umount or a
    /// mkfs can meet such an open, and under emulation it can last over a second.
    pub fn remove(&self, n: &str) -> Result<(), String> {
        let id = DevId::Name(name(n)?);
        let mut tries = 0;
        loop {
            let Err(e) = self.dm.device_remove(&id, DmOptions::default()) else {
                break;
            };
            return Err(match errno(&e) {
                Some(libc::EBUSY) => {
                    let lasting = self.dm.device_info(&id).ok().and_then(|i| {
                        let d = i.device();
                        crate::boot::devno_in_use(d.major, d.minor)
                    });
                    tries += 1;
                    if lasting.is_none() && tries < REMOVE_TRIES {
                        std::thread::sleep(std::time::Duration::from_millis(200));
                        continue;
                    }
                    match lasting {
                        Some(why) => format!("{n} is in use ({why})"),
                        None => format!("{n} is in use (open)"),
                    }
                }
                Some(libc::ENXIO) => format!("no device-mapper device named {n}"),
                _ => format!("cannot remove {n}: {}", describe(&e)),
            });
        }
        if !udev_running() {
            let _ = std::fs::remove_file(Path::new("/dev/mapper").join(n));
        }
        Ok(())
    }
}

/// The DM UUID of a target whose table line `params` names setup UUID `uuid X`:
/// `DMREMAP-` and the 32 hex digits; `None` without one.
pub fn dm_uuid_of(params: &str) -> Option<String> {
    let mut words = params.split_whitespace();
    words.find(|w| *w == "uuid")?;
    let hex: String = words
        .next()?
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| format!("DMREMAP-{hex}"))
}

/// How often a remove that meets a short-lived open is tried, 200 ms apart. Each try
/// is the `devicemapper` crate's `device_remove`, which itself tries 5 times within
/// 0.8 s: about 5 seconds in all (libdevmapper's `dmsetup remove --retry` tries 25
/// times, 200 ms apart).
const REMOVE_TRIES: u32 = 5;

/// Whether udev runs (it then makes `/dev/mapper/NAME`, through the device-mapper
/// rules).
fn udev_running() -> bool {
    Path::new("/run/udev/control").exists()
}

/// The device's node: `/dev/mapper/NAME`, made here (as libdevmapper does) when no udev
/// makes it, else `/dev/dm-N`, which devtmpfs always makes. Under udev, the node is
/// awaited (the device-mapper rules make it when they see the resume's change event;
/// libdevmapper waits the same way, on a cookie): what follows the create may open it
/// at once. When udev has not made it after 10 seconds (no device-mapper rules
/// installed), or an old node of that name points at another device, it is made here.
fn node(n: &str, major: u32, minor: u32) -> PathBuf {
    let mapper = Path::new("/dev/mapper").join(n);
    let dev = libc::makedev(major, minor);
    if udev_running() {
        // The node must be this device's: a stale node of a device that had the name
        // before (made here, where udev does not replace it) is not.
        use std::os::unix::fs::MetadataExt;
        for _ in 0..200 {
            if std::fs::metadata(&mapper).is_ok_and(|m| m.rdev() == dev) {
                return mapper;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let Ok(c) = std::ffi::CString::new(mapper.as_os_str().as_encoded_bytes()) else {
        return PathBuf::from(format!("/dev/dm-{minor}"));
    };
    let _ = std::fs::remove_file(&mapper);
    // SAFETY: `c` is a NUL-terminated path; mknod reads it and takes no other pointer.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFBLK | 0o600, dev) };
    if r == 0 {
        mapper
    } else {
        PathBuf::from(format!("/dev/dm-{minor}"))
    }
}

/// The kernel log from a point on (`/dev/kmsg`, read without blocking): where a
/// refused table's reason is (`ti->error`: dm prints it, the ioctl only says EINVAL).
struct KernelLog {
    file: std::fs::File,
}

impl KernelLog {
    /// Opens the log positioned at its end; `None` when it cannot be read (not root).
    fn open() -> Option<KernelLog> {
        use std::io::Seek;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok()?;
        file.seek(std::io::SeekFrom::End(0)).ok()?;
        Some(KernelLog { file })
    }

    /// The last `device-mapper: table: ...: remap: <reason>` line logged since
    /// [`Self::open`], as `<reason>`.
    fn reason(mut self) -> Option<String> {
        use std::io::Read;
        let mut found = None;
        let mut buf = vec![0u8; 8192];
        // One record per read; EAGAIN at the end.
        while let Ok(n) = self.file.read(&mut buf) {
            if n == 0 {
                break;
            }
            let rec = String::from_utf8_lossy(&buf[..n]);
            let msg = rec.split_once(';').map_or(&*rec, |(_, m)| m);
            let msg = msg.lines().next().unwrap_or("");
            if let Some(i) = msg.find(": remap: ") {
                if msg.starts_with("device-mapper: table:") {
                    // dm core appends the errno: "<ti->error> (-EINVAL)".
                    let r = msg[i + ": remap: ".len()..].trim();
                    let r = r.rsplit_once(" (-").map_or(r, |(why, _)| why);
                    found = Some(r.to_string());
                }
            }
        }
        found
    }
}

/// A target as the tests build it: name `name`, device dm-3, 131072 sectors, table
/// `7:0 7:1` with a fixed setup UUID, and the INFO status `status`.
#[cfg(test)]
pub fn test_target(name: &str, status: &str) -> Target {
    Target {
        name: name.into(),
        device: "dm-3".into(),
        devno: "253:3".into(),
        sectors: 131072,
        suspended: false,
        table: crate::status::Table::parse("7:0 7:1 2 uuid 0123456789abcdef0123456789abcdef")
            .expect("test table line"),
        status: crate::status::Info::parse(status).expect("test status line"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setup_uuid_gives_the_dm_uuid() {
        assert_eq!(
            dm_uuid_of("7:0 7:1 4 read_retries 2 uuid 01234567-89AB-cdef-0123-456789abcdef")
                .as_deref(),
            Some("DMREMAP-0123456789abcdef0123456789abcdef")
        );
        assert_eq!(dm_uuid_of("7:0 7:1 0"), None);
        assert_eq!(dm_uuid_of("7:0 7:1 2 uuid"), None);
        assert_eq!(dm_uuid_of("7:0 7:1 2 uuid 0123"), None);
        assert_eq!(
            dm_uuid_of("7:0 7:1 2 uuid 0123456789abcdef0123456789abcdeg"),
            None
        );
    }
}
