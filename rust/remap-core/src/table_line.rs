//! The `remap` table line:
//! `<main_dev> <spare_dev> [<spare_dev>...] [<#opt_args> <opt_arg>...]`.
//!
//! One to [`MAX_SPARES`] spare devices follow the main device, in the order the
//! metadata's spare list records them (the pool's allocation order). A spare is named
//! by a path or by `major:minor`, so every spare argument after the first holds a `/`
//! or a `:`; the first later argument that holds neither is the optional-argument
//! count.
//!
//! Strict parsing in the style of dm-flakey's `parse_features`: the argument count is
//! checked first, optional arguments form a counted group, every number is decimal
//! without sign, junk or overflow, every option may appear once, and each failure has
//! its own [`CoreError`]. [`TableConfig::write_table`] prints the canonical line that
//! `dmsetup table` shows; parsing that line again yields the same configuration and
//! prints the same bytes.
//!
//! Options:
//! - `block_size <bytes>`: remap granularity, power of two in 512..=65536 (default 4096).
//! - `read_retries <n>`: extra attempts of a failed read before it is reported, 0..=16
//!   (default 1).
//! - `format_spare`: a one-shot creation option. It formats a spare whose metadata area
//!   holds no valid copy of dm-remap metadata (foreign data: a filesystem, another
//!   tool's label, noise). It never formats over valid dm-remap metadata, of this setup
//!   or of another one; such a spare is loaded and judged ([`super::judge`]), or refused.
//!   It is not printed back by [`TableConfig::write_table`], so a reload of the printed
//!   line never carries it.
//! - `max_remap_rate <n>`: remaps per minute beyond which the main device is taken to
//!   be failing as a whole and the target stops remapping (0: no limit; default
//!   [`DEFAULT_MAX_REMAP_RATE`]).
//! - `scan_interval <seconds>`: the background scan starts a pass this long after the
//!   previous one ended (0: no periodic passes, a pass runs when `scan start` asks;
//!   default: the module parameter `scan_interval_s`, itself 0 unless set). At most
//!   [`MAX_SCAN_INTERVAL_S`] (a year).
//! - `scan_rate <KiB/s>`: the rate the scan reads at while the target has no other I/O
//!   ([`MIN_SCAN_RATE_KIBS`]..=[`MAX_SCAN_RATE_KIBS`]; default: the module parameter
//!   `scan_rate_max_kib`). With foreground I/O it reads at the module parameter
//!   `scan_rate_min_kib` (or this rate, if lower), as md's `sync_speed_min/max` do.
//! - `proactive_remap <on|off>`: whether blocks the scan finds weak (readable only after
//!   retries, or far slower than the device's norm) are copied to the spare and
//!   remapped while still readable (default on).
//! - `proactive_reserve <percent>`: the share of the pool's spare blocks proactive
//!   remaps leave free for blocks whose writes fail, 0..=100 (default: the module
//!   parameter `proactive_reserve_pct`, itself 25 unless set).
//! - `proactive_region <blocks>`: while the target's alert level is warning or above,
//!   the readable blocks up to this many on either side of a weak block move to the
//!   spare with it, 0..=[`MAX_PROACTIVE_REGION`] (default: the module parameter
//!   `proactive_region_blocks`, itself 4 unless set).
//! - `redundancy <1|2>`: copies of each newly remapped block (default 1). With 2,
//!   every new remap writes its data to two spares of the pool (never one spare
//!   twice), reads fall back to the second copy, and the loss of either spare loses
//!   nothing. While fewer than two spares are active, new remaps get one copy.
//! - `uuid <uuid>`: the setup UUID the spare's metadata must carry (32 hex digits or
//!   the 8-4-4-4-12 form, not all zero); a spare of another setup is refused. The
//!   printed line always names the loaded setup's UUID, so reloading it only ever
//!   loads the same setup.

use super::error::CoreError;
use super::layout;
use super::meta::MAX_SPARES;
use super::units::{BlockSize, Sectors};
use super::uuid::{parse_uuid, UuidText};
use core::fmt;

/// Default number of read retries.
pub const DEFAULT_READ_RETRIES: u8 = 1;
/// Largest accepted `read_retries`.
pub const MAX_READ_RETRIES: u8 = 16;
/// Default `max_remap_rate`, remaps per minute.
pub const DEFAULT_MAX_REMAP_RATE: u32 = 1024;
/// Largest accepted `max_remap_rate`.
pub const MAX_MAX_REMAP_RATE: u64 = 1_000_000;
/// Largest accepted `scan_interval`, seconds (a year).
pub const MAX_SCAN_INTERVAL_S: u64 = 31_536_000;
/// Smallest accepted `scan_rate`, KiB/s.
pub const MIN_SCAN_RATE_KIBS: u64 = 64;
/// Largest accepted `scan_rate`, KiB/s (4 GiB/s).
pub const MAX_SCAN_RATE_KIBS: u64 = 4 * 1024 * 1024;
/// Largest accepted `proactive_region`, blocks on either side of a weak block.
pub const MAX_PROACTIVE_REGION: u64 = 64;
/// Most optional arguments a table line may carry.
pub const MAX_OPT_ARGS: u64 = 32;

/// A parsed table line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableConfig<'a> {
    /// Main device path or `major:minor`.
    pub main: &'a [u8],
    /// Spare device paths or `major:minor`, in pool order; the first
    /// [`Self::spare_count`] are given.
    pub spares: [&'a [u8]; MAX_SPARES],
    /// Number of spares named (1..=[`MAX_SPARES`]).
    pub spare_count: usize,
    /// Remap block size.
    pub block_size: BlockSize,
    /// Whether `block_size` was given (it is then printed back).
    pub block_size_given: bool,
    /// Extra read attempts.
    pub read_retries: u8,
    /// Whether `read_retries` was given.
    pub read_retries_given: bool,
    /// Format a spare holding foreign data.
    pub format_spare: bool,
    /// Remap storm bound, remaps per minute (0: none).
    pub max_remap_rate: u32,
    /// Whether `max_remap_rate` was given.
    pub max_remap_rate_given: bool,
    /// Setup UUID the spare's metadata must carry (`uuid`), if given.
    pub uuid: Option<[u8; 16]>,
    /// Seconds between scan passes (`scan_interval`), if given.
    pub scan_interval_s: Option<u32>,
    /// Idle scan rate in KiB/s (`scan_rate`), if given.
    pub scan_rate_kibs: Option<u32>,
    /// Proactive remapping of weak blocks (`proactive_remap`), if given.
    pub proactive_remap: Option<bool>,
    /// Percent of the pool proactive remaps leave free (`proactive_reserve`), if given.
    pub proactive_reserve_pct: Option<u8>,
    /// Blocks on either side of a weak block moved with it at warning or above
    /// (`proactive_region`), if given.
    pub proactive_region: Option<u8>,
    /// Copies of each new remap (`redundancy`, 1 or 2), if given.
    pub redundancy: Option<u8>,
}

impl TableConfig<'_> {
    /// Copies of each new remap: `redundancy`, 1 unless given.
    pub fn copies(&self) -> u8 {
        self.redundancy.unwrap_or(1)
    }
}

/// Parses a decimal `u64`: digits only, no sign, no junk, no overflow.
pub fn parse_u64(s: &[u8]) -> Result<u64, CoreError> {
    if s.is_empty() {
        return Err(CoreError::BadNumber);
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return Err(CoreError::BadNumber);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or(CoreError::NumberOverflow)?;
    }
    Ok(v)
}

/// The value of a numeric option: the next argument, a decimal number in `range`
/// (`err` otherwise); [`CoreError::DuplicateOption`] when the option was `given`
/// already.
fn number_value<'x>(
    given: bool,
    it: &mut impl Iterator<Item = &'x &'x [u8]>,
    range: core::ops::RangeInclusive<u64>,
    err: CoreError,
) -> Result<u64, CoreError> {
    if given {
        return Err(CoreError::DuplicateOption);
    }
    let v = it.next().ok_or(CoreError::OptionMissingValue)?;
    let r = parse_u64(v)?;
    if !range.contains(&r) {
        return Err(err);
    }
    Ok(r)
}

/// The first `n` of `spares`.
fn spares_named<'s, 'a>(spares: &'s [&'a [u8]; MAX_SPARES], n: usize) -> &'s [&'a [u8]] {
    spares.get(..n).unwrap_or(&[])
}

fn eq_ignore_case(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

impl<'a> TableConfig<'a> {
    /// Parses the target arguments (everything after the target name).
    pub fn parse(args: &[&'a [u8]]) -> Result<Self, CoreError> {
        let (main, rest) = match args {
            [m, rest @ ..] => (*m, rest),
            _ => return Err(CoreError::MissingArgs),
        };
        let mut spares: [&'a [u8]; MAX_SPARES] = [b""; MAX_SPARES];
        let mut spare_count = 0;
        let mut rest = rest;
        while let Some((d, more)) = rest.split_first() {
            if spare_count > 0 && !d.iter().any(|&c| c == b'/' || c == b':') {
                break;
            }
            if spares_named(&spares, spare_count).contains(d) {
                return Err(CoreError::DuplicateSpare);
            }
            *spares
                .get_mut(spare_count)
                .ok_or(CoreError::TooManySpares)? = d;
            spare_count += 1;
            rest = more;
        }
        if spare_count == 0 {
            return Err(CoreError::MissingArgs);
        }
        let mut cfg = TableConfig {
            main,
            spares,
            spare_count,
            block_size: BlockSize::DEFAULT,
            block_size_given: false,
            read_retries: DEFAULT_READ_RETRIES,
            read_retries_given: false,
            format_spare: false,
            max_remap_rate: DEFAULT_MAX_REMAP_RATE,
            max_remap_rate_given: false,
            uuid: None,
            scan_interval_s: None,
            scan_rate_kibs: None,
            proactive_remap: None,
            proactive_reserve_pct: None,
            proactive_region: None,
            redundancy: None,
        };
        let Some((count, opts)) = rest.split_first() else {
            return Ok(cfg);
        };
        let n = parse_u64(count).map_err(|_| CoreError::BadOptCount)?;
        if n > MAX_OPT_ARGS {
            return Err(CoreError::BadOptCount);
        }
        let n = n as usize;
        if n > opts.len() {
            return Err(CoreError::BadOptCount);
        }
        if n < opts.len() {
            return Err(CoreError::TrailingArgs);
        }
        let mut it = opts.iter();
        while let Some(name) = it.next() {
            if eq_ignore_case(name, "block_size") {
                if cfg.block_size_given {
                    return Err(CoreError::DuplicateOption);
                }
                let v = it.next().ok_or(CoreError::OptionMissingValue)?;
                let bytes = parse_u64(v)?;
                cfg.block_size = BlockSize::from_bytes(bytes)?;
                cfg.block_size_given = true;
            } else if eq_ignore_case(name, "read_retries") {
                let r = number_value(
                    cfg.read_retries_given,
                    &mut it,
                    0..=u64::from(MAX_READ_RETRIES),
                    CoreError::BadRetries,
                )?;
                cfg.read_retries = r as u8;
                cfg.read_retries_given = true;
            } else if eq_ignore_case(name, "format_spare") {
                if cfg.format_spare {
                    return Err(CoreError::DuplicateOption);
                }
                cfg.format_spare = true;
            } else if eq_ignore_case(name, "max_remap_rate") {
                let r = number_value(
                    cfg.max_remap_rate_given,
                    &mut it,
                    0..=MAX_MAX_REMAP_RATE,
                    CoreError::BadRemapRate,
                )?;
                cfg.max_remap_rate = r as u32;
                cfg.max_remap_rate_given = true;
            } else if eq_ignore_case(name, "scan_interval") {
                let r = number_value(
                    cfg.scan_interval_s.is_some(),
                    &mut it,
                    0..=MAX_SCAN_INTERVAL_S,
                    CoreError::BadScanInterval,
                )?;
                cfg.scan_interval_s = Some(r as u32);
            } else if eq_ignore_case(name, "scan_rate") {
                let r = number_value(
                    cfg.scan_rate_kibs.is_some(),
                    &mut it,
                    MIN_SCAN_RATE_KIBS..=MAX_SCAN_RATE_KIBS,
                    CoreError::BadScanRate,
                )?;
                cfg.scan_rate_kibs = Some(r as u32);
            } else if eq_ignore_case(name, "proactive_remap") {
                if cfg.proactive_remap.is_some() {
                    return Err(CoreError::DuplicateOption);
                }
                let v = it.next().ok_or(CoreError::OptionMissingValue)?;
                cfg.proactive_remap = Some(if eq_ignore_case(v, "on") {
                    true
                } else if eq_ignore_case(v, "off") {
                    false
                } else {
                    return Err(CoreError::BadSwitch);
                });
            } else if eq_ignore_case(name, "proactive_reserve") {
                let r = number_value(
                    cfg.proactive_reserve_pct.is_some(),
                    &mut it,
                    0..=100,
                    CoreError::BadProactiveReserve,
                )?;
                cfg.proactive_reserve_pct = Some(r as u8);
            } else if eq_ignore_case(name, "proactive_region") {
                let r = number_value(
                    cfg.proactive_region.is_some(),
                    &mut it,
                    0..=MAX_PROACTIVE_REGION,
                    CoreError::BadProactiveRegion,
                )?;
                cfg.proactive_region = Some(r as u8);
            } else if eq_ignore_case(name, "redundancy") {
                let r = number_value(
                    cfg.redundancy.is_some(),
                    &mut it,
                    1..=2,
                    CoreError::BadRedundancy,
                )?;
                cfg.redundancy = Some(r as u8);
            } else if eq_ignore_case(name, "uuid") {
                if cfg.uuid.is_some() {
                    return Err(CoreError::DuplicateOption);
                }
                let v = it.next().ok_or(CoreError::OptionMissingValue)?;
                let u = parse_uuid(v)?;
                if u == [0; 16] {
                    return Err(CoreError::BadUuid);
                }
                cfg.uuid = Some(u);
            } else {
                return Err(CoreError::UnknownOption);
            }
        }
        Ok(cfg)
    }

    /// The spare devices named, in pool order.
    pub fn spare_list(&self) -> &[&'a [u8]] {
        spares_named(&self.spares, self.spare_count)
    }

    /// Number of optional arguments [`Self::write_table`] prints with the setup UUID
    /// `uuid`.
    pub fn opt_count(&self, uuid: Option<&[u8; 16]>) -> u32 {
        2 * u32::from(self.block_size_given)
            + 2 * u32::from(self.read_retries_given)
            + 2 * u32::from(self.max_remap_rate_given)
            + 2 * u32::from(self.scan_interval_s.is_some())
            + 2 * u32::from(self.scan_rate_kibs.is_some())
            + 2 * u32::from(self.proactive_remap.is_some())
            + 2 * u32::from(self.proactive_reserve_pct.is_some())
            + 2 * u32::from(self.proactive_region.is_some())
            + 2 * u32::from(self.redundancy.is_some())
            + 2 * u32::from(uuid.is_some())
    }

    /// Checks the line against the devices it names: lengths in sectors and logical
    /// block sizes in bytes. Called by the constructor once the devices are open, once
    /// per spare (`spare_len`, `spare_lbs`, `same_device`: that spare is the main).
    pub fn check_devices(
        &self,
        target_len: Sectors,
        main_len: Sectors,
        main_lbs: u32,
        spare_len: Sectors,
        spare_lbs: u32,
        same_device: bool,
    ) -> Result<(), CoreError> {
        if same_device {
            return Err(CoreError::SpareIsMain);
        }
        if self.block_size.bytes() < main_lbs || self.block_size.bytes() < spare_lbs {
            return Err(CoreError::BlockSizeBelowLogical);
        }
        if target_len.0 == 0 || !self.block_size.is_aligned(target_len) {
            return Err(CoreError::BadLength);
        }
        if target_len > main_len {
            return Err(CoreError::BeyondMainDevice);
        }
        if layout::data_blocks(spare_len, self.block_size).0 == 0 {
            return Err(CoreError::SpareTooSmall);
        }
        Ok(())
    }

    /// Writes the canonical table arguments, naming the devices `main` and `spares`
    /// (the kernel passes their `major:minor`, every spare of the pool in its order) and the setup `uuid` (the kernel passes
    /// the loaded setup's, so that the printed line reloads only that setup). Options
    /// come in the order `block_size`, `read_retries`, `max_remap_rate`,
    /// `scan_interval`, `scan_rate`, `proactive_remap`, `proactive_reserve`,
    /// `proactive_region`, `redundancy`, `uuid`, each only when given;
    /// `format_spare` is never printed.
    pub fn write_table(
        &self,
        out: &mut dyn fmt::Write,
        main: &str,
        spares: &[&str],
        uuid: Option<&[u8; 16]>,
    ) -> fmt::Result {
        write!(out, "{main}")?;
        for s in spares {
            write!(out, " {s}")?;
        }
        let n = self.opt_count(uuid);
        if n == 0 {
            return Ok(());
        }
        write!(out, " {n}")?;
        if self.block_size_given {
            write!(out, " block_size {}", self.block_size.bytes())?;
        }
        if self.read_retries_given {
            write!(out, " read_retries {}", self.read_retries)?;
        }
        if self.max_remap_rate_given {
            write!(out, " max_remap_rate {}", self.max_remap_rate)?;
        }
        if let Some(v) = self.scan_interval_s {
            write!(out, " scan_interval {v}")?;
        }
        if let Some(v) = self.scan_rate_kibs {
            write!(out, " scan_rate {v}")?;
        }
        if let Some(v) = self.proactive_remap {
            write!(out, " proactive_remap {}", if v { "on" } else { "off" })?;
        }
        if let Some(v) = self.proactive_reserve_pct {
            write!(out, " proactive_reserve {v}")?;
        }
        if let Some(v) = self.proactive_region {
            write!(out, " proactive_region {v}")?;
        }
        if let Some(v) = self.redundancy {
            write!(out, " redundancy {v}")?;
        }
        if let Some(u) = uuid {
            write!(out, " uuid {}", UuidText(u))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<&[u8]> {
        s.split_whitespace().map(str::as_bytes).collect()
    }

    fn parse(s: &str) -> Result<TableConfig<'_>, CoreError> {
        TableConfig::parse(&split(s))
    }

    #[test]
    fn minimal_line_uses_defaults() {
        let c = parse("7:0 7:1").unwrap();
        assert_eq!(c.main, b"7:0");
        assert_eq!(c.spare_list(), [b"7:1".as_slice()]);
        assert_eq!(c.block_size.bytes(), 4096);
        assert_eq!(c.read_retries, DEFAULT_READ_RETRIES);
        assert!(!c.format_spare);
    }

    #[test]
    fn several_spares_in_order() {
        let c = parse("/dev/a /dev/b 7:2 /dev/c 2 read_retries 0").unwrap();
        assert_eq!(
            c.spare_list(),
            [
                b"/dev/b".as_slice(),
                b"7:2".as_slice(),
                b"/dev/c".as_slice()
            ]
        );
        assert_eq!(c.read_retries, 0);
        let mut s = String::new();
        c.write_table(&mut s, "7:0", &["7:1", "7:2", "7:3"], None)
            .unwrap();
        assert_eq!(s, "7:0 7:1 7:2 7:3 2 read_retries 0");
        let again = parse(&s).unwrap();
        assert_eq!(again.spare_count, 3);
        // Sixteen spares is the most; a seventeenth is refused, as is a spare named
        // twice and a line without a spare.
        let many: Vec<String> = (1..=17).map(|i| format!("7:{i}")).collect();
        let line16 = format!("7:0 {}", many[..16].join(" "));
        assert_eq!(parse(&line16).unwrap().spare_count, 16);
        let line17 = format!("7:0 {}", many.join(" "));
        assert_eq!(parse(&line17), Err(CoreError::TooManySpares));
        assert_eq!(parse("a /b /c /b"), Err(CoreError::DuplicateSpare));
        assert_eq!(parse("a"), Err(CoreError::MissingArgs));
        // The first spare is taken as given; later ones need a '/' or ':'.
        assert_eq!(parse("a b c"), Err(CoreError::BadOptCount));
        // After the count, a device-like word is an unknown option.
        assert_eq!(parse("a b 1 /c"), Err(CoreError::UnknownOption));
    }

    #[test]
    fn options_parse_in_any_order_and_case() {
        let c = parse("a b 5 READ_RETRIES 3 format_spare Block_Size 512").unwrap();
        assert_eq!(c.block_size.bytes(), 512);
        assert_eq!(c.read_retries, 3);
        assert!(c.format_spare);
        let mut s = String::new();
        c.write_table(&mut s, "7:0", &["7:1"], None).unwrap();
        assert_eq!(s, "7:0 7:1 4 block_size 512 read_retries 3");
    }

    #[test]
    fn uuid_option_is_parsed_and_printed_canonically() {
        let want = [
            0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x49, 0x78, 0x86, 0x95, 0xa4, 0xb3, 0xc2, 0xd1,
            0xe0, 0xf0,
        ];
        for form in [
            "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0",
            "0F1E2D3C4B5A49788695A4B3C2D1E0F0",
        ] {
            let line = format!("a b 2 UUID {form}");
            let c = parse(&line).unwrap();
            assert_eq!(c.uuid, Some(want));
            let mut s = String::new();
            c.write_table(&mut s, "7:0", &["7:1"], c.uuid.as_ref())
                .unwrap();
            assert_eq!(s, "7:0 7:1 2 uuid 0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0");
        }
        // The printed UUID is the one passed in (the loaded setup's).
        let c = parse("a b 2 max_remap_rate 5").unwrap();
        assert_eq!(c.uuid, None);
        let mut s = String::new();
        c.write_table(&mut s, "7:0", &["7:1"], Some(&want)).unwrap();
        assert_eq!(
            s,
            "7:0 7:1 4 max_remap_rate 5 uuid 0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0"
        );
    }

    #[test]
    fn scan_options_round_trip() {
        let c = parse("a b 6 PROACTIVE_REMAP Off scan_rate 64 Scan_Interval 0").unwrap();
        assert_eq!(c.scan_interval_s, Some(0));
        assert_eq!(c.scan_rate_kibs, Some(64));
        assert_eq!(c.proactive_remap, Some(false));
        let mut s = String::new();
        c.write_table(&mut s, "7:0", &["7:1"], None).unwrap();
        assert_eq!(
            s,
            "7:0 7:1 6 scan_interval 0 scan_rate 64 proactive_remap off"
        );
        let again = TableConfig::parse(&split(&s)).unwrap();
        assert_eq!(
            again,
            TableConfig {
                main: b"7:0",
                spares: TableConfig::parse(&split("7:0 7:1")).unwrap().spares,
                ..c
            }
        );
        let c = parse("a b 4 scan_rate 4194304 scan_interval 31536000").unwrap();
        assert_eq!(c.scan_rate_kibs, Some(4_194_304));
        assert_eq!(c.scan_interval_s, Some(31_536_000));
        assert_eq!(parse("a b").unwrap().proactive_remap, None);
    }

    #[test]
    fn proactive_budget_options_round_trip() {
        let c = parse("a b 6 proactive_region 64 Proactive_Reserve 0 proactive_remap on").unwrap();
        assert_eq!(c.proactive_reserve_pct, Some(0));
        assert_eq!(c.proactive_region, Some(64));
        let mut s = String::new();
        c.write_table(&mut s, "7:0", &["7:1"], None).unwrap();
        assert_eq!(
            s,
            "7:0 7:1 6 proactive_remap on proactive_reserve 0 proactive_region 64"
        );
        let again = TableConfig::parse(&split(&s)).unwrap();
        assert_eq!(
            (again.proactive_reserve_pct, again.proactive_region),
            (Some(0), Some(64))
        );
        let c = parse("a b 2 proactive_reserve 100").unwrap();
        assert_eq!(
            (c.proactive_reserve_pct, c.proactive_region),
            (Some(100), None)
        );
        let c = parse("a b").unwrap();
        assert_eq!((c.proactive_reserve_pct, c.proactive_region), (None, None));
    }

    #[test]
    fn format_spare_is_parsed_but_never_printed() {
        let c = parse("a b 1 format_spare").unwrap();
        assert!(c.format_spare);
        let mut s = String::new();
        c.write_table(&mut s, "7:0", &["7:1"], None).unwrap();
        assert_eq!(s, "7:0 7:1");
        let c2 = TableConfig::parse(&split(&s)).unwrap();
        assert!(!c2.format_spare);
    }

    #[test]
    fn redundancy_round_trips_and_defaults_to_one_copy() {
        let c = parse("7:0 7:1 7:2 4 redundancy 2 block_size 4096").unwrap();
        assert_eq!((c.redundancy, c.copies()), (Some(2), 2));
        let mut s = String::new();
        c.write_table(&mut s, "7:0", &["7:1", "7:2"], None).unwrap();
        assert_eq!(s, "7:0 7:1 7:2 4 block_size 4096 redundancy 2");
        assert_eq!(parse(&s).unwrap(), c);
        let c = parse("7:0 7:1").unwrap();
        assert_eq!((c.redundancy, c.copies()), (None, 1));
    }

    #[test]
    fn every_error_class_is_distinct() {
        let cases: &[(&str, CoreError)] = &[
            ("", CoreError::MissingArgs),
            ("a", CoreError::MissingArgs),
            ("a b -1", CoreError::BadOptCount),
            ("a b x", CoreError::BadOptCount),
            ("a b 3 block_size 4096", CoreError::BadOptCount),
            ("a b 99999999999999999999999", CoreError::BadOptCount),
            ("a b 33", CoreError::BadOptCount),
            ("a b 1 block_size 4096", CoreError::TrailingArgs),
            ("a b 0 junk", CoreError::TrailingArgs),
            ("a b 1 bogus", CoreError::UnknownOption),
            ("a b 1 block_size", CoreError::OptionMissingValue),
            ("a b 2 block_size 4k", CoreError::BadNumber),
            ("a b 2 block_size +4096", CoreError::BadNumber),
            (
                "a b 2 block_size 99999999999999999999",
                CoreError::NumberOverflow,
            ),
            ("a b 2 block_size 3000", CoreError::BadBlockSize),
            ("a b 2 block_size 131072", CoreError::BadBlockSize),
            (
                "a b 4 block_size 512 block_size 512",
                CoreError::DuplicateOption,
            ),
            ("a b 2 read_retries 17", CoreError::BadRetries),
            ("a b 2 max_remap_rate 1000001", CoreError::BadRemapRate),
            (
                "a b 4 max_remap_rate 1 max_remap_rate 2",
                CoreError::DuplicateOption,
            ),
            (
                "a b 2 format_spare format_spare",
                CoreError::DuplicateOption,
            ),
            ("a b 2 scan_interval 31536001", CoreError::BadScanInterval),
            ("a b 2 scan_rate 63", CoreError::BadScanRate),
            ("a b 2 scan_rate 4194305", CoreError::BadScanRate),
            ("a b 2 scan_rate -5", CoreError::BadNumber),
            ("a b 1 scan_rate", CoreError::OptionMissingValue),
            ("a b 2 proactive_remap yes", CoreError::BadSwitch),
            (
                "a b 2 proactive_reserve 101",
                CoreError::BadProactiveReserve,
            ),
            ("a b 2 proactive_reserve -1", CoreError::BadNumber),
            ("a b 2 proactive_region 65", CoreError::BadProactiveRegion),
            ("a b 2 redundancy 0", CoreError::BadRedundancy),
            ("a b 2 redundancy 3", CoreError::BadRedundancy),
            (
                "a b 4 redundancy 2 redundancy 2",
                CoreError::DuplicateOption,
            ),
            ("a b 2 proactive_region", CoreError::BadOptCount),
            (
                "a b 4 proactive_region 1 proactive_region 2",
                CoreError::DuplicateOption,
            ),
            (
                "a b 4 proactive_reserve 1 proactive_reserve 2",
                CoreError::DuplicateOption,
            ),
            (
                "a b 4 scan_interval 1 scan_interval 1",
                CoreError::DuplicateOption,
            ),
            (
                "a b 4 proactive_remap on proactive_remap off",
                CoreError::DuplicateOption,
            ),
            ("a b 1 uuid", CoreError::OptionMissingValue),
            ("a b 2 uuid 0f1e2d3c", CoreError::BadUuid),
            (
                "a b 2 uuid 0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0fg",
                CoreError::BadUuid,
            ),
            (
                "a b 2 uuid 0f1e2d3c4b5a-4978-8695-a4b3c2d1e0f0-",
                CoreError::BadUuid,
            ),
            (
                "a b 2 uuid 00000000-0000-0000-0000-000000000000",
                CoreError::BadUuid,
            ),
            (
                "a b 4 uuid 0f1e2d3c4b5a49788695a4b3c2d1e0f0 uuid 0f1e2d3c4b5a49788695a4b3c2d1e0f0",
                CoreError::DuplicateOption,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line), Err(*want), "line {line:?}");
        }
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(parse_u64(b"0"), Ok(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_u64(b"18446744073709551616"),
            Err(CoreError::NumberOverflow)
        );
        assert_eq!(parse_u64(b""), Err(CoreError::BadNumber));
        assert_eq!(parse_u64(b"12 "), Err(CoreError::BadNumber));
        assert_eq!(parse_u64(b"0x10"), Err(CoreError::BadNumber));
    }

    #[test]
    fn device_checks() {
        let c = parse("a b").unwrap();
        let big = Sectors(1 << 20);
        assert_eq!(c.check_devices(big, big, 512, big, 512, false), Ok(()));
        assert_eq!(
            c.check_devices(big, big, 512, big, 512, true),
            Err(CoreError::SpareIsMain)
        );
        assert_eq!(
            c.check_devices(Sectors(big.0 + 8), big, 512, big, 512, false),
            Err(CoreError::BeyondMainDevice)
        );
        assert_eq!(
            c.check_devices(Sectors(0), big, 512, big, 512, false),
            Err(CoreError::BadLength)
        );
        assert_eq!(
            c.check_devices(Sectors(9), big, 512, big, 512, false),
            Err(CoreError::BadLength)
        );
        assert_eq!(
            c.check_devices(big, big, 512, Sectors(9216), 512, false),
            Err(CoreError::SpareTooSmall)
        );
        assert_eq!(
            c.check_devices(big, big, 512, Sectors(9216 + 8), 512, false),
            Ok(())
        );
        let small = parse("a b 2 block_size 512").unwrap();
        assert_eq!(
            small.check_devices(big, big, 4096, big, 512, false),
            Err(CoreError::BlockSizeBelowLogical)
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever parses prints a line that parses to the same thing (less the one-shot
        /// `format_spare`) and prints the same bytes.
        #[test]
        fn table_round_trips(bs_shift in 0u32..8, retries in proptest::option::of(0u8..=16),
                             give_bs in any::<bool>(), fmt in any::<bool>(),
                             rate in proptest::option::of(0u32..=1_000_000),
                             uuid in proptest::option::of((any::<[u8; 16]>(), any::<bool>(), any::<bool>())),
                             reversed in any::<bool>()) {
            let uuid = uuid.filter(|(u, _, _)| *u != [0; 16]);
            let mut opts: Vec<String> = Vec::new();
            let mut canonical: Vec<String> = Vec::new();
            if give_bs {
                opts.push(format!("block_size {}", 512u32 << bs_shift));
                canonical.push(opts[opts.len() - 1].clone());
            }
            if let Some(r) = retries {
                opts.push(format!("read_retries {r}"));
                canonical.push(opts[opts.len() - 1].clone());
            }
            if fmt { opts.push("format_spare".into()); }
            if let Some(r) = rate {
                opts.push(format!("max_remap_rate {r}"));
                canonical.push(opts[opts.len() - 1].clone());
            }
            if let Some((u, dashed, upper)) = uuid {
                let text = UuidText(&u).to_string();
                canonical.push(format!("uuid {text}"));
                let text = if dashed { text } else { text.replace('-', "") };
                opts.push(format!("uuid {}", if upper { text.to_uppercase() } else { text }));
            }
            if reversed { opts.reverse(); }
            let line = |opts: &[String]| {
                let n: usize = opts.iter().map(|o| o.split(' ').count()).sum();
                if n > 0 { format!("7:0 7:1 {n} {}", opts.join(" ")) } else { "7:0 7:1".into() }
            };
            let given = line(&opts);
            let args: Vec<&[u8]> = given.split(' ').map(str::as_bytes).collect();
            let c = TableConfig::parse(&args).unwrap();
            prop_assert_eq!(c.format_spare, fmt);
            prop_assert_eq!(c.uuid, uuid.map(|(u, _, _)| u));
            let mut out = String::new();
            c.write_table(&mut out, "7:0", &["7:1"], c.uuid.as_ref()).unwrap();
            prop_assert_eq!(&out, &line(&canonical));
            let args2: Vec<&[u8]> = out.split(' ').map(str::as_bytes).collect();
            let c2 = TableConfig::parse(&args2).unwrap();
            prop_assert_eq!(c2, TableConfig { format_spare: false, ..c });
            let mut out2 = String::new();
            c2.write_table(&mut out2, "7:0", &["7:1"], c2.uuid.as_ref()).unwrap();
            prop_assert_eq!(out2, out);
        }

        /// Arbitrary argument vectors never panic.
        #[test]
        fn parse_never_panics(args in proptest::collection::vec("[a-z_0-9:+-]{0,12}", 0..12)) {
            let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
            let _ = TableConfig::parse(&a);
        }
    }
}
