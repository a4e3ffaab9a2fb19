//! What boot-time assembly needs beyond `remapctl assemble`: `remapctl probe` (udev's
//! question "is this device a dm-remap spare, and of which setup?") and the setups file
//! that gives an assembled setup the name the admin chose.
//!
//! The pieces installed by `make install` (`contrib/`): udev rule 69-dm-remap.rules
//! runs `remapctl probe --export` on every block device that appears or changes; a
//! device holding a setup's metadata gets `DM_REMAP_SETUP_UUID` and pulls in
//! `remapctl-assemble@<uuid>.service`, which runs `remapctl assemble --uuid <uuid>
//! --incremental` — as mdadm's incremental assembly does for md members.

use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The setups file: one `<name> <setup-uuid>` per line, `#` comments.
pub const SETUPS_FILE: &str = "/etc/dm-remap/setups.conf";

/// `remapctl probe`.
#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// The block device to read.
    pub device: PathBuf,
    /// Print `KEY=value` lines for udev's `IMPORT{program}` (nothing for a device that
    /// holds no dm-remap setup), and exit 0 unless the device cannot be read.
    #[arg(long)]
    pub export: bool,
}

/// `remapctl probe`: whether the device holds a loadable dm-remap setup. Exit 0 with
/// the setup's figures when it does; 1 when it does not (blank, foreign, refused:
/// the reason is printed), unless `--export`, which is quiet then.
pub fn probe(a: ProbeArgs) -> ExitCode {
    // A device a table holds or a filesystem has mounted is not read: it is no spare
    // waiting for assembly (a live target's spare is held by it), and reading it would
    // first flush its page cache (BLKFLSBUF syncs a mounted filesystem).
    if let Some(why) = in_use(&a.device) {
        if !a.export {
            println!("{}: in use ({why}): not read", a.device.display());
        }
        return ExitCode::SUCCESS;
    }
    let info = match crate::meta::setup_of(&a.device) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("remapctl probe: {}: {e}", a.device.display());
            return ExitCode::from(crate::admin::EXIT_FAILED);
        }
    };
    let Some(i) = info else {
        if a.export {
            return ExitCode::SUCCESS;
        }
        let why = match crate::meta::probe(&a.device, None) {
            Ok(crate::meta::Probe::Blank) => "blank".to_string(),
            Ok(crate::meta::Probe::Refused { reason, .. }) => reason.to_string(),
            Ok(crate::meta::Probe::Setup { .. }) => "changed while read".to_string(),
            Err(e) => e.to_string(),
        };
        println!("{}: no dm-remap setup ({why})", a.device.display());
        return ExitCode::from(crate::admin::EXIT_FAILED);
    };
    let setup = remap_core::uuid::UuidText(&i.uuid).to_string();
    let spare = remap_core::uuid::UuidText(&i.spare_uuid).to_string();
    let index = i
        .spares
        .iter()
        .position(|s| *s == i.spare_uuid)
        .unwrap_or(0);
    if a.export {
        // Values are hex and digits only: nothing udev would have to unquote.
        println!("DM_REMAP_SETUP_UUID={setup}");
        println!("DM_REMAP_SPARE_UUID={spare}");
        println!("DM_REMAP_SPARE_INDEX={index}");
        println!("DM_REMAP_SPARES={}", i.spares.len());
        println!("DM_REMAP_VERSION={}", i.version);
    } else {
        println!(
            "{}: dm-remap spare {index} of {} of setup {setup} (spare {spare}), metadata version {}, main device {} sectors",
            a.device.display(),
            i.spares.len(),
            i.version,
            i.main_sectors
        );
    }
    ExitCode::SUCCESS
}

/// Why a block device is in use, from sysfs and the mount table (no open, so nothing
/// is disturbed): a holder (a device-mapper table, md, ...) or a mount. `None` for a
/// free device or a path that is not a block device.
pub fn in_use(path: &Path) -> Option<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = std::fs::metadata(path).ok()?;
    if !md.file_type().is_block_device() {
        return None;
    }
    devno_in_use(libc::major(md.rdev()), libc::minor(md.rdev()))
}

/// Why the block device `ma:mi` is in use: a holder or a mount, as [`in_use`] says.
pub fn devno_in_use(ma: u32, mi: u32) -> Option<String> {
    let holders = format!("/sys/dev/block/{ma}:{mi}/holders");
    if let Some(h) = std::fs::read_dir(holders).ok()?.flatten().next() {
        return Some(format!("held by {}", h.file_name().to_string_lossy()));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dev = format!("{ma}:{mi}");
    mounts
        .lines()
        .find(|l| l.split(' ').nth(2) == Some(dev.as_str()))
        .map(|l| format!("mounted on {}", l.split(' ').nth(4).unwrap_or("?")))
}

/// A setups file's entries, `(name, setup UUID)` in file order. Lines are
/// `<name> <uuid>` (the UUID in any case, with or without dashes); text after `#` is a
/// comment; a line that is not two fields, a bad UUID or a name the kernel would refuse
/// is an error naming its number.
pub fn entries(text: &str) -> Result<Vec<(String, [u8; 16])>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [] => continue,
            [name, u] => {
                let u = remap_core::uuid::parse_uuid(u.as_bytes())
                    .map_err(|_| format!("line {}: bad setup UUID {u:?}", n + 1))?;
                crate::dm::check_name(name).map_err(|e| format!("line {}: {e}", n + 1))?;
                out.push(((*name).to_string(), u));
            }
            _ => return Err(format!("line {}: expected `<name> <setup-uuid>`", n + 1)),
        }
    }
    Ok(out)
}

/// A setup's name from a setups file's text: the first line naming the UUID.
pub fn name_in(text: &str, uuid: &[u8; 16]) -> Result<Option<String>, String> {
    Ok(entries(text)?
        .into_iter()
        .find(|(_, u)| u == uuid)
        .map(|(n, _)| n))
}

/// The setup UUID a setups file's text gives `name` (the first line naming it).
pub fn uuid_in(text: &str, name: &str) -> Result<Option<[u8; 16]>, String> {
    Ok(entries(text)?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, u)| u))
}

/// The name the setups file `path` gives the setup; `None` when the file is absent or
/// does not name it.
pub fn name_for(path: &Path, uuid: &[u8; 16]) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => name_in(&t, uuid).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: [u8; 16] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ];

    #[test]
    fn the_setups_file_names_a_setup() {
        let text = "# name  setup\n\nother fedcba98765432100123456789abcdef\n\
                    data 01234567-89AB-CDEF-0123-456789abcdef  # the big disk\n\
                    again 0123456789abcdef0123456789abcdef\n";
        assert_eq!(name_in(text, &U).unwrap().as_deref(), Some("data"));
        assert_eq!(
            name_in("other fedcba98765432100123456789abcdef\n", &U).unwrap(),
            None
        );
        assert_eq!(name_in("", &U).unwrap(), None);
    }

    #[test]
    fn a_name_finds_its_setup() {
        let text = "# x\ndata 01234567-89ab-cdef-0123-456789abcdef\nother fedcba98765432100123456789abcdef\n";
        assert_eq!(uuid_in(text, "data").unwrap(), Some(U));
        assert_eq!(uuid_in(text, "nope").unwrap(), None);
        assert!(uuid_in("data zz\n", "data")
            .unwrap_err()
            .starts_with("line 1:"));
    }

    #[test]
    fn a_bad_setups_line_is_an_error_naming_it() {
        let e = name_in("data 0123456789abcdef0123456789abcdef\nx\n", &U).unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = name_in("data not-a-uuid\n", &U).unwrap_err();
        assert!(e.contains("bad setup UUID"), "{e}");
        let e = name_in("a/b 0123456789abcdef0123456789abcdef\n", &U).unwrap_err();
        assert!(e.starts_with("line 1:"), "{e}");
        let e = name_in("a b c\n", &U).unwrap_err();
        assert!(e.contains("expected"), "{e}");
    }
}
