//! `remapctl import-badblocks`: remap, on a live target, the blocks a bad-block list
//! names, before anything writes them.
//!
//! Two list formats: the output of `badblocks -o` (one block number per line, in
//! badblocks' block size, `-b`, 1024 bytes unless given) and a GNU ddrescue mapfile
//! (every area not marked finished, `+`, is taken as bad: bad sectors `-`, and areas
//! ddrescue did not try, trim or scrape, `?` `*` `/`). Each block of the target that
//! such an area touches is remapped with the target's `remap` message: what of it still
//! reads is copied to the spare, what does not is recorded as lost (reads of those
//! sectors fail until they are written), never invented.
//!
//! The remap-storm bound of the target (`max_remap_rate`) counts these remaps like any
//! other: the import sends at most half of it per minute, so that the failing writes of
//! the disk itself keep the other half, and says so when that makes it wait.

use crate::dm::Dm;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The list's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `badblocks -o` output.
    Badblocks,
    /// A GNU ddrescue mapfile.
    Ddrescue,
}

/// `remapctl import-badblocks`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The dm-remap target.
    pub name: String,
    /// The list.
    pub file: PathBuf,
    /// The list's format (default: a ddrescue mapfile if the file looks like one).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// badblocks' block size (`badblocks -b`).
    #[arg(long, default_value_t = 1024)]
    pub badblocks_block_size: u64,
    /// Print the blocks and remap nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Byte ranges `[start, end)` a list names as bad.
pub fn parse(text: &str, format: Format, bb_size: u64) -> Result<Vec<(u64, u64)>, String> {
    let mut out = Vec::new();
    match format {
        Format::Badblocks => {
            if bb_size == 0 || !bb_size.is_power_of_two() {
                return Err(format!(
                    "badblocks block size {bb_size} is not a power of two"
                ));
            }
            for (i, line) in text.lines().enumerate() {
                let t = line.trim();
                if t.is_empty() {
                    continue;
                }
                let b: u64 = t
                    .parse()
                    .map_err(|_| format!("line {}: not a block number: {t:?}", i + 1))?;
                let range = b
                    .checked_mul(bb_size)
                    .and_then(|s| Some((s, s.checked_add(bb_size)?)))
                    .ok_or_else(|| format!("line {}: block {b} is out of range", i + 1))?;
                out.push(range);
            }
        }
        Format::Ddrescue => {
            let num = |s: &str, i: usize| -> Result<u64, String> {
                // As ddrescue reads them (strtoull, base 0): 0x hex, a leading 0 octal.
                let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                    Some(h) => u64::from_str_radix(h, 16),
                    None if s.len() > 1 && s.starts_with('0') => u64::from_str_radix(&s[1..], 8),
                    None => s.parse(),
                };
                r.map_err(|_| format!("line {}: not a number: {s:?}", i + 1))
            };
            let mut status_seen = false;
            for (i, line) in text.lines().enumerate() {
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                // The first data line is the status line: current_pos current_status
                // [current_pass].
                if !status_seen {
                    let f: Vec<&str> = t.split_ascii_whitespace().collect();
                    let ok = matches!(f.as_slice(), [pos, st, ..] if f.len() <= 3
                        && num(pos, i).is_ok() && st.len() == 1);
                    if !ok {
                        return Err(format!("line {}: not a ddrescue status line: {t:?}", i + 1));
                    }
                    status_seen = true;
                    continue;
                }
                let f: Vec<&str> = t.split_ascii_whitespace().collect();
                let [pos, size, st] = f.as_slice() else {
                    return Err(format!("line {}: expected `pos size status`: {t:?}", i + 1));
                };
                let (pos, size) = (num(pos, i)?, num(size, i)?);
                match *st {
                    "+" => {}
                    "-" | "?" | "*" | "/" => {
                        let end = pos
                            .checked_add(size)
                            .ok_or_else(|| format!("line {}: area out of range", i + 1))?;
                        if size > 0 {
                            out.push((pos, end));
                        }
                    }
                    other => return Err(format!("line {}: unknown status {other:?}", i + 1)),
                }
            }
            if !status_seen {
                return Err("not a ddrescue mapfile: no status line".into());
            }
        }
    }
    Ok(out)
}

/// The target blocks of `block_size` bytes that the byte ranges touch, sorted, each
/// once; an error when one lies past `target_bytes`, or when they are more than `max`
/// (counted before any list is built: an interrupted ddrescue run's mapfile can name a
/// whole disk as not tried).
pub fn blocks(
    ranges: &[(u64, u64)],
    block_size: u64,
    target_bytes: u64,
    max: u64,
) -> Result<Vec<u64>, String> {
    let mut spans = Vec::with_capacity(ranges.len());
    for &(s, e) in ranges {
        if e > target_bytes {
            return Err(format!(
                "the list names bytes {s}..{e}, past the end of the target ({target_bytes} bytes): is it a list of another device?"
            ));
        }
        spans.push((s / block_size, (e - 1) / block_size));
    }
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let count: u64 = merged.iter().map(|&(a, b)| b - a + 1).sum();
    if count > max {
        return Err(format!(
            "the list names {count} blocks, more than the target can take ({max}: the spare's free blocks, at most what the map holds); nothing was remapped"
        ));
    }
    Ok(merged.into_iter().flat_map(|(a, b)| a..=b).collect())
}

fn guess(text: &str) -> Format {
    // A mapfile's data lines have three fields; badblocks' one.
    let data = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    match data {
        Some(l) if l.split_ascii_whitespace().count() > 1 => Format::Ddrescue,
        _ if text
            .lines()
            .any(|l| l.starts_with("# Mapfile") || l.starts_with("# Rescue")) =>
        {
            Format::Ddrescue
        }
        _ => Format::Badblocks,
    }
}

/// `remapctl import-badblocks`.
pub fn run(a: ImportArgs) -> ExitCode {
    let r = (|| -> Result<(), String> {
        let text =
            std::fs::read_to_string(&a.file).map_err(|e| format!("{}: {e}", a.file.display()))?;
        let format = a.format.unwrap_or_else(|| guess(&text));
        let ranges = parse(&text, format, a.badblocks_block_size)
            .map_err(|e| format!("{}: {e}", a.file.display()))?;
        let dm = Dm::open()?;
        let t = dm
            .target(&a.name)?
            .ok_or_else(|| format!("{} is not a dm-remap target", a.name))?;
        let bs = t.status.block_size;
        let room = (remap_core::meta::MAX_BLOCKS as u64)
            .saturating_sub(t.status.remapped + t.status.pending);
        let list = blocks(&ranges, bs, t.sectors * 512, t.status.spare_free.min(room))?;
        println!(
            "{}: {} bad area(s) ({format:?} list) touch {} block(s) of {bs} bytes",
            a.file.display(),
            ranges.len(),
            list.len()
        );
        if a.dry_run {
            for b in &list {
                println!("{b}");
            }
            return Ok(());
        }
        // Half the storm bucket per minute (see the module doc); 0: no bound.
        let rate = max_remap_rate(&t.table.options);
        let per_min = (rate / 2).max(1);
        let (mut done, mut had, mut lost) = (0u64, 0u64, 0u64);
        let mut window = (Instant::now(), 0u64);
        for b in &list {
            if rate > 0 && window.1 >= per_min {
                let wait = Duration::from_secs(60).saturating_sub(window.0.elapsed());
                println!(
                    "  {done} remapped; waiting {} s (max_remap_rate {rate}: the import takes at most {per_min} a minute)",
                    wait.as_secs()
                );
                std::thread::sleep(wait);
                window = (Instant::now(), 0);
            }
            match dm.message(&a.name, &format!("remap {b}")) {
                Ok(_) => {
                    done += 1;
                    window.1 += 1;
                    let q = dm.message(&a.name, &format!("query {b}")).unwrap_or_default();
                    if q.split_ascii_whitespace().any(|f| {
                        f.strip_prefix("lost_sectors=").is_some_and(|n| n != "0")
                    }) {
                        lost += 1;
                    }
                }
                Err((Some(libc::EEXIST), _)) => had += 1,
                Err((_, e)) => {
                    return Err(format!(
                        "remap {b} failed: {e}; {done} block(s) remapped before it (see the kernel log, `remapctl status {}`)",
                        a.name
                    ))
                }
            }
        }
        println!(
            "imported: {done} block(s) remapped ({lost} with sectors that did not read, recorded lost), {had} already remapped"
        );
        Ok(())
    })();
    crate::admin::done(r, "import-badblocks")
}

/// `max_remap_rate` from a table line's options (the default, 1024, when absent).
fn max_remap_rate(options: &str) -> u64 {
    let f: Vec<&str> = options.split_ascii_whitespace().collect();
    f.windows(2)
        .find(|w| w[0] == "max_remap_rate")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(u64::from(remap_core::table_line::DEFAULT_MAX_REMAP_RATE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_badblocks_list_is_blocks_of_its_size() {
        let r = parse("12\n13\n\n4096\n", Format::Badblocks, 1024).unwrap();
        assert_eq!(r, vec![(12288, 13312), (13312, 14336), (4194304, 4195328)]);
        // 1 KiB blocks 12 and 13 are 4 KiB block 3; 4096 is block 1024.
        assert_eq!(blocks(&r, 4096, 1 << 30, 100).unwrap(), vec![3, 1024]);
        assert!(parse("12\nx\n", Format::Badblocks, 1024)
            .unwrap_err()
            .contains("line 2"));
        assert!(parse("1\n", Format::Badblocks, 1000).is_err());
    }

    #[test]
    fn a_mapfile_gives_every_area_not_finished() {
        let map = "# Mapfile. Created by GNU ddrescue version 1.27\n\
                   # current_pos  current_status  current_pass\n\
                   0x00100000     +               1\n\
                   #      pos        size  status\n\
                   0x00000000  0x00003000  +\n\
                   0x00003000  0x00000200  -\n\
                   0x00003200  0x00000E00  +\n\
                   0x00004000  0x00002000  ?\n\
                   0x00006000  0x00001000  *\n\
                   0x00007000  0x00F9000  +\n";
        assert_eq!(guess(map), Format::Ddrescue);
        let r = parse(map, Format::Ddrescue, 1024).unwrap();
        assert_eq!(
            r,
            vec![(0x3000, 0x3200), (0x4000, 0x6000), (0x6000, 0x7000)]
        );
        assert_eq!(blocks(&r, 4096, 1 << 20, 100).unwrap(), vec![3, 4, 5, 6]);
        assert!(parse("0x0 +\n0x0 0x10 X\n", Format::Ddrescue, 1024)
            .unwrap_err()
            .contains("unknown status"));
        assert!(parse("# nothing\n", Format::Ddrescue, 1024).is_err());
    }

    #[test]
    fn odd_lists_are_refused_not_misread() {
        let r = parse("12\n4096\n", Format::Badblocks, 1024).unwrap();
        assert!(blocks(&r, 4096, 1 << 30, 1)
            .unwrap_err()
            .contains("names 2 blocks"));
        assert!(parse("18446744073709551615\n", Format::Badblocks, 1024).is_err());
        // ddrescue reads a leading 0 as octal.
        assert_eq!(
            parse("0 +\n010 010 -\n", Format::Ddrescue, 1024).unwrap(),
            vec![(8, 16)]
        );
        let e = parse("0x0 0x10 -\n0x10 0x10 -\n", Format::Ddrescue, 1024).unwrap_err();
        assert!(e.contains("status line"), "{e}");
    }

    #[test]
    fn a_list_past_the_target_is_refused() {
        let e = blocks(&[(4096, 8192)], 4096, 4096, 100).unwrap_err();
        assert!(e.contains("past the end of the target"), "{e}");
    }

    #[test]
    fn the_rate_comes_from_the_table_options() {
        assert_eq!(max_remap_rate("4 max_remap_rate 64 uuid x"), 64);
        assert_eq!(max_remap_rate("2 uuid x"), 1024);
        assert_eq!(guess("12\n13\n"), Format::Badblocks);
    }
}
