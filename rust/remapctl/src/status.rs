//! The target's status and table lines, parsed.
//!
//! `dmsetup status` (the INFO status) of a `remap` target is a fixed list of
//! space-separated fields, documented in `Documentation/admin-guide.md` ("Status");
//! the table line is the canonical one `remap-core`'s `TableConfig::write_table`
//! prints. Fields are found by position: a kernel that prints more fields (a later
//! version) parses; one that prints fewer is refused with the field that is missing.

use remap_core::table_line::TableConfig;
use serde::Serialize;

/// The INFO status of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Info {
    /// Remap block size in bytes.
    pub block_size: u64,
    /// Data blocks on the spare.
    pub spare_blocks: u64,
    /// Read bios mapped.
    pub reads: u64,
    /// Write bios mapped.
    pub writes: u64,
    /// Flush bios.
    pub flushes: u64,
    /// Sectors read.
    pub read_sectors: u64,
    /// Sectors written.
    pub write_sectors: u64,
    /// Reads that completed with an error.
    pub read_errors: u64,
    /// Writes (and flushes) that completed with an error.
    pub write_errors: u64,
    /// Blocks living on the spare.
    pub remapped: u64,
    /// Blocks whose read failed and that are not yet rewritten.
    pub pending: u64,
    /// Spare data blocks in use.
    pub spare_used: u64,
    /// Spare data blocks free.
    pub spare_free: u64,
    /// Blocks remapped since the target was created.
    pub remaps: u64,
    /// Version of the last committed metadata.
    pub meta_version: u64,
    /// 0, or the negative errno of the last failed metadata commit.
    pub last_commit: i64,
    /// `ok` or `failed`.
    pub mode: String,
    /// The background scan's state.
    pub scan_state: String,
    /// The next block the scan reads.
    pub scan_cursor: u64,
    /// Scan passes completed.
    pub scan_passes: u64,
    /// Blocks the scan found unreadable.
    pub scan_unreadable: u64,
    /// Blocks the scan found weak.
    pub scan_weak: u64,
    /// Weak blocks copied to the spare and remapped.
    pub proactive_remaps: u64,
    /// Blocks fenced after a metadata commit whose outcome is unknown.
    pub fenced: u64,
    /// Health score from the failure prediction, 0 (failing) to 100.
    pub health_score: u64,
    /// The reported alert level (`info` .. `emergency`).
    pub alert: String,
    /// Forecast seconds to failure; none when no confident model has one.
    pub ttf_s: Option<u64>,
    /// Statistics samples taken since the table was loaded.
    pub samples: u64,
}

/// The field names of [`Info`], in the order the kernel prints them.
pub const FIELDS: [&str; 28] = [
    "block_size",
    "spare_blocks",
    "reads",
    "writes",
    "flushes",
    "read_sectors",
    "write_sectors",
    "read_errors",
    "write_errors",
    "remapped",
    "pending",
    "spare_used",
    "spare_free",
    "remaps",
    "meta_version",
    "last_commit",
    "mode",
    "scan_state",
    "scan_cursor",
    "scan_passes",
    "scan_unreadable",
    "scan_weak",
    "proactive_remaps",
    "fenced",
    "health_score",
    "alert",
    "ttf_s",
    "samples",
];

impl Info {
    /// Parses the INFO status parameters (after `<start> <len> remap`).
    pub fn parse(line: &str) -> Result<Info, String> {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let field = |i: usize| -> Result<&str, String> {
            f.get(i).copied().ok_or_else(|| {
                format!(
                    "status line has {} fields, no `{}` (field {})",
                    f.len(),
                    FIELDS[i],
                    i + 1
                )
            })
        };
        let num = |i: usize| -> Result<u64, String> {
            let s = field(i)?;
            s.parse()
                .map_err(|_| format!("status field `{}` is not a number: {s:?}", FIELDS[i]))
        };
        Ok(Info {
            block_size: num(0)?,
            spare_blocks: num(1)?,
            reads: num(2)?,
            writes: num(3)?,
            flushes: num(4)?,
            read_sectors: num(5)?,
            write_sectors: num(6)?,
            read_errors: num(7)?,
            write_errors: num(8)?,
            remapped: num(9)?,
            pending: num(10)?,
            spare_used: num(11)?,
            spare_free: num(12)?,
            remaps: num(13)?,
            meta_version: num(14)?,
            last_commit: {
                let last = field(15)?;
                last.parse()
                    .map_err(|_| format!("status field `last_commit` is not a number: {last:?}"))?
            },
            mode: field(16)?.to_string(),
            scan_state: field(17)?.to_string(),
            scan_cursor: num(18)?,
            scan_passes: num(19)?,
            scan_unreadable: num(20)?,
            scan_weak: num(21)?,
            proactive_remaps: num(22)?,
            fenced: num(23)?,
            health_score: num(24)?,
            alert: field(25)?.to_string(),
            ttf_s: match field(26)? {
                "-" => None,
                v => Some(
                    v.parse()
                        .map_err(|_| format!("status field `ttf_s` is not a number: {v:?}"))?,
                ),
            },
            samples: num(27)?,
        })
    }
}

/// What a target's table line says (the canonical line the kernel prints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    /// Main device, `major:minor`.
    pub main: String,
    /// The first spare device, `major:minor`.
    pub spare: String,
    /// Every spare device, in pool order (the first is `spare`).
    pub spares: Vec<String>,
    /// The setup UUID.
    pub uuid: Option<String>,
    /// The options as printed (everything after the devices), for a reload.
    pub options: String,
}

impl Table {
    /// Parses the table parameters (after `<start> <len> remap`).
    pub fn parse(line: &str) -> Result<Table, String> {
        let args: Vec<&[u8]> = line.split_ascii_whitespace().map(str::as_bytes).collect();
        let cfg = TableConfig::parse(&args).map_err(|e| format!("table line {line:?}: {e}"))?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let rest: Vec<&str> = line
            .split_ascii_whitespace()
            .skip(1 + cfg.spare_count)
            .collect();
        Ok(Table {
            main: text(cfg.main),
            spare: cfg
                .spare_list()
                .first()
                .map(|s| text(s))
                .unwrap_or_default(),
            spares: cfg.spare_list().iter().map(|s| text(s)).collect(),
            uuid: cfg.uuid.map(|u| remap_core::uuid::UuidText(&u).to_string()),
            options: rest.join(" "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str =
        "4096 2944 5 3 0 40 24 0 1 2 1 2 2942 2 7 0 ok idle 0 0 0 0 0 0 100 info - 0";

    #[test]
    fn a_status_line_parses_by_position() {
        let i = Info::parse(LINE).unwrap();
        assert_eq!(i.block_size, 4096);
        assert_eq!(i.spare_blocks, 2944);
        assert_eq!((i.reads, i.writes, i.write_errors), (5, 3, 1));
        assert_eq!(
            (i.remapped, i.pending, i.spare_used, i.spare_free),
            (2, 1, 2, 2942)
        );
        assert_eq!((i.meta_version, i.last_commit), (7, 0));
        assert_eq!((i.mode.as_str(), i.scan_state.as_str()), ("ok", "idle"));
        assert_eq!(i.fenced, 0);
        assert_eq!(
            (i.health_score, i.alert.as_str(), i.ttf_s, i.samples),
            (100, "info", None, 0)
        );
    }

    #[test]
    fn a_failed_commit_and_more_fields_parse() {
        let i = Info::parse(
            "512 9 0 0 0 0 0 0 0 0 0 0 9 0 3 -5 failed paused 4 1 0 0 0 2 5 emergency 0 41 77",
        )
        .unwrap();
        assert_eq!(
            (i.last_commit, i.mode.as_str(), i.fenced),
            (-5, "failed", 2)
        );
        assert_eq!(
            (i.health_score, i.alert.as_str(), i.ttf_s, i.samples),
            (5, "emergency", Some(0), 41)
        );
        let e = Info::parse(&LINE.replacen(" - 0", " soon 0", 1)).unwrap_err();
        assert!(e.contains("`ttf_s` is not a number"), "{e}");
    }

    #[test]
    fn a_short_or_garbled_line_names_the_field() {
        let e = Info::parse("4096 2944 5").unwrap_err();
        assert!(e.contains("`writes` (field 4)"), "{e}");
        let e = Info::parse(&LINE.replacen("2944", "x", 1)).unwrap_err();
        assert!(e.contains("`spare_blocks` is not a number"), "{e}");
        let e = Info::parse(&LINE.replacen(" 0 ok", " zero ok", 1)).unwrap_err();
        assert!(e.contains("`last_commit`"), "{e}");
    }

    #[test]
    fn the_field_names_match_the_admin_guide() {
        let guide = include_str!("../../../Documentation/admin-guide.md");
        for (i, name) in FIELDS.iter().enumerate() {
            let row = format!("| {} | {} |", i + 1, name);
            assert!(
                guide.contains(&row),
                "admin guide has no status row {row:?}"
            );
        }
    }

    #[test]
    fn a_table_line_gives_devices_uuid_and_options() {
        let t = Table::parse("253:0 7:1 4 block_size 512 uuid 0123456789abcdef0123456789abcdef")
            .unwrap();
        assert_eq!((t.main.as_str(), t.spare.as_str()), ("253:0", "7:1"));
        assert_eq!(
            t.uuid.as_deref(),
            Some("01234567-89ab-cdef-0123-456789abcdef")
        );
        assert_eq!(
            t.options,
            "4 block_size 512 uuid 0123456789abcdef0123456789abcdef"
        );
        assert!(Table::parse("253:0").is_err());
    }
}
