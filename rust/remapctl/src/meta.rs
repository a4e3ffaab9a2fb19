//! `remapctl meta`: dump, restore, check and repair of a spare's metadata.
//!
//! Works on spare devices and on image files. Everything about the format —
//! validation, selection of the newest copy, what to rewrite, and whether the state
//! is acceptable ([`remap_core::judge`]) — is remap-core's, the same code the kernel
//! module runs, so `check` passes exactly the states the kernel's judge passes and
//! `restore`/`repair` never write one it refuses. This file reads and writes the five
//! copies and turns the state into stable JSON (`dump`) and back (`restore`), like
//! thin_dump/thin_restore do for dm-thin.

pub(crate) mod device;
mod json;

use clap::Subcommand;
use device::Spare;
use remap_core::judge::{self, Verdict};
use remap_core::layout::{COPY_COUNT, COPY_MAX_BYTES, COPY_SECTORS};
use remap_core::log;
use remap_core::meta::{self, CONFIG_FLAG_FAILED};
use remap_core::pool;
use remap_core::repair::{self, CopyRead, CopyStatus, Selection};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status: metadata clean.
const EXIT_CLEAN: u8 = 0;
/// Exit status: loadable, but some copies are stale or damaged (repair fixes them).
const EXIT_NEEDS_REPAIR: u8 = 1;
/// Exit status: no usable state (refused), or an operation failed.
const EXIT_BAD: u8 = 2;
/// Exit status: the metadata area is blank (never formatted).
const EXIT_BLANK: u8 = 3;

/// `remapctl meta` subcommands.
#[derive(Subcommand)]
pub enum MetaCmd {
    /// Print the newest valid state as JSON.
    Dump {
        /// Spare device or image file.
        path: PathBuf,
        /// Only accept copies of this setup UUID.
        #[arg(long)]
        uuid: Option<String>,
    },
    /// Write a state from JSON (as printed by `dump`) to all five copies.
    Restore {
        /// JSON file (`-` for standard input).
        json: PathBuf,
        /// Spare device or image file.
        path: PathBuf,
    },
    /// Check all five copies and judge the selected state; exit 0 when clean, 1 when
    /// repair is needed, 2 when no state can be loaded or the state is refused, 3 when
    /// the area is blank.
    Check {
        /// Spare device or image file; several: the spares of one pool, checked
        /// together (each spare's copies, then the pool's newest state, judged).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Only accept copies of this setup UUID.
        #[arg(long)]
        uuid: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rewrite stale or damaged copies from the newest valid one.
    Repair {
        /// Spare device or image file; several: the spares of one pool (each spare
        /// behind gets the pool's newest state).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Only accept copies of this setup UUID.
        #[arg(long)]
        uuid: Option<String>,
    },
}

/// Runs a `meta` subcommand.
pub fn run(cmd: MetaCmd) -> ExitCode {
    let r = match cmd {
        MetaCmd::Dump { path, uuid } => dump(&path, uuid.as_deref()),
        MetaCmd::Restore { json, path } => restore(&json, &path),
        MetaCmd::Check { paths, uuid, json } => match paths.as_slice() {
            [path] => check(path, uuid.as_deref(), json),
            _ => check_pool(&paths, uuid.as_deref(), json),
        },
        MetaCmd::Repair { paths, uuid } => match paths.as_slice() {
            [path] => repair(path, uuid.as_deref()),
            _ => repair_pool(&paths, uuid.as_deref()),
        },
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("remapctl meta: {e}");
            ExitCode::from(EXIT_BAD)
        }
    }
}

/// What a device's metadata area holds, as the kernel would judge it at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Every copy blank: the kernel formats it.
    Blank,
    /// A loadable state of setup `uuid` at `version`.
    Setup {
        /// The setup UUID, as text.
        uuid: String,
        /// The selected version.
        version: u64,
    },
    /// Not loadable (the refusal's text); `foreign` when no copy is valid at all (data
    /// that is not dm-remap metadata, or every copy damaged).
    Refused {
        /// Why.
        reason: &'static str,
        /// No valid copy.
        foreign: bool,
    },
}

/// Reads the five copies of `path` and says what the kernel would find, for the
/// setup `uuid` if given (`None`: any).
pub fn probe(path: &std::path::Path, uuid: Option<[u8; 16]>) -> Result<Probe, MetaError> {
    let spare = Spare::open(path, false)?;
    let copies = Copies::read(&spare);
    let sel = repair::select(&copies.reads(), uuid);
    Ok(match sel {
        Selection::Blank => Probe::Blank,
        Selection::Load { state, version, .. } => Probe::Setup {
            uuid: json::uuid_string(&state.uuid),
            version,
        },
        Selection::Refuse { reason, .. } => Probe::Refused {
            reason: reason.as_str(),
            foreign: reason == repair::Refusal::NoValidCopy,
        },
    })
}

/// What assembling a setup needs from a spare's selected state.
#[derive(Debug, Clone)]
pub struct SetupInfo {
    /// The setup UUID.
    pub uuid: [u8; 16],
    /// The selected version.
    pub version: u64,
    /// The main device's size in sectors and logical block size.
    pub main_sectors: u64,
    /// The main device's logical block size.
    pub main_lbs: u32,
    /// Whether the main device's own identifier is recorded (the kernel then checks it).
    pub identity: bool,
    /// The configuration recorded with the map.
    pub config: meta::Config,
    /// The spare UUID this device's copies carry (which record of the list it is).
    pub spare_uuid: [u8; 16],
    /// The spare list's UUIDs, in pool order.
    pub spares: Vec<[u8; 16]>,
    /// The spare list's records lost (`meta::SPARE_FAILED`): record, size in sectors.
    pub lost: Vec<(usize, u64)>,
    /// The selected state's body checksum.
    pub state_crc: u32,
}

/// The setup a device's metadata holds, if it holds a loadable one (`None`: blank,
/// foreign, or refused).
pub fn setup_of(path: &std::path::Path) -> Result<Option<SetupInfo>, MetaError> {
    let spare = Spare::open(path, false)?;
    let copies = Copies::read(&spare);
    Ok(match repair::select(&copies.reads(), None) {
        Selection::Load {
            state,
            version,
            state_crc,
            ..
        } => Some(SetupInfo {
            spare_uuid: state.spare_uuid,
            spares: (0..state.spare_count())
                .filter_map(|i| state.spare(i).map(|s| s.uuid))
                .collect(),
            lost: (0..state.spare_count())
                .filter_map(|i| state.spare(i).map(|s| (i, s)))
                .filter(|(_, s)| s.state == remap_core::meta::SPARE_FAILED)
                .map(|(i, s)| (i, s.sectors))
                .collect(),
            state_crc,
            uuid: state.uuid,
            version,
            main_sectors: state.fingerprint.main_sectors,
            main_lbs: state.fingerprint.logical_block_bytes,
            identity: state.fingerprint.identity != [0u8; remap_core::meta::IDENTITY_LEN],
            config: state.config,
        }),
        _ => None,
    })
}

/// Errors of the `meta` commands.
#[derive(Debug)]
pub enum MetaError {
    /// Opening, reading or writing the device or image failed.
    Io(PathBuf, std::io::Error),
    /// The device is in use (mounted, or held by a dm table).
    InUse(PathBuf),
    /// Bad JSON or a state that cannot be encoded.
    Input(String),
    /// The metadata cannot be loaded.
    Refused(&'static str),
    /// The spare bitmap for the judge cannot be allocated.
    NoMemory(u64),
}

impl std::fmt::Display for MetaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            MetaError::InUse(p) => write!(
                f,
                "{}: device is in use (mounted or held by a dm target); refusing to write",
                p.display()
            ),
            MetaError::Input(s) => write!(f, "{s}"),
            MetaError::Refused(s) => write!(f, "{s}; nothing was written"),
            MetaError::NoMemory(w) => write!(f, "cannot allocate a spare bitmap of {w} words"),
        }
    }
}

impl std::error::Error for MetaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MetaError::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

/// The five copies as read from a spare.
struct Copies {
    bytes: Vec<Vec<u8>>,
    ok: [bool; COPY_COUNT],
}

impl Copies {
    fn read(spare: &Spare) -> Copies {
        let mut bytes = Vec::with_capacity(COPY_COUNT);
        let mut ok = [false; COPY_COUNT];
        for (i, &s) in COPY_SECTORS.iter().enumerate() {
            match spare.read_extent(s * 512, COPY_MAX_BYTES) {
                Ok(b) => {
                    bytes.push(b);
                    ok[i] = true;
                }
                Err(_) => bytes.push(Vec::new()),
            }
        }
        Copies { bytes, ok }
    }

    /// The selected state as one base when it is not the chosen copy's base as it
    /// stands: a base with its log's records applied, encoded (what the kernel loads);
    /// `None` when the chosen copy's base is the state. A current copy whose log does
    /// not replay to the state it records is dropped from `sel` (reported, rewritten
    /// by a repair) and the next current copy is used, as the kernel does
    /// (`repair::load_order`); refused when none gives the state.
    fn replayed(&self, sel: &mut Selection<'_>) -> Result<Option<Vec<u8>>, MetaError> {
        let Selection::Load {
            state,
            chosen,
            version,
            state_crc,
            logs,
            ..
        } = *sel
        else {
            return Ok(None);
        };
        if version == state.version {
            return Ok(None);
        }
        let mut why = "the metadata log does not replay to the state it records";
        let mut dropped = Vec::new();
        let mut found = None;
        for k in repair::load_order(chosen, &logs) {
            if !self.ok[k] {
                continue;
            }
            let extent = &self.bytes[k];
            let Ok(base) = meta::decode(extent, COPY_SECTORS[k]) else {
                continue;
            };
            if base.version == version {
                // A base of the selected version (no records): the state as it is,
                // moved to sector 0 for the caller (only the header changes).
                let mut b = extent[..base.total_len].to_vec();
                meta::set_copy_sector(&mut b, 0).map_err(|e| MetaError::Input(format!("{e:?}")))?;
                found = Some(b);
                break;
            }
            match Self::apply_log(&base, extent, version) {
                Ok(buf) => match meta::decode(&buf, 0) {
                    Ok(d) if d.body_crc == state_crc => {
                        found = Some(buf);
                        break;
                    }
                    _ => why = "the metadata log does not replay to the state it records",
                },
                Err(e) => why = e,
            }
            eprintln!(
                "remapctl meta: copy {k} (sector {}): {why}; using another current copy",
                COPY_SECTORS[k]
            );
            dropped.push(k);
        }
        for k in dropped {
            sel.drop_copy(k);
        }
        found.map(Some).ok_or(MetaError::Refused(why))
    }

    /// `base` with the records of its log (in `extent`) applied, encoded as a base at
    /// sector 0; the log must end at `version`.
    fn apply_log(
        base: &meta::Decoded<'_>,
        extent: &[u8],
        version: u64,
    ) -> Result<Vec<u8>, &'static str> {
        let mut items: Vec<remap_core::remap_table::Entry> = base.entries().collect();
        let mut scan = base.scan;
        let mut last = base.version;
        for r in log::records(extent, base) {
            items = log::apply(items.into_iter(), r.changes()).collect();
            scan = r.scan;
            last = r.version;
        }
        if last != version {
            return Err("the metadata log does not reach the selected version");
        }
        let spares: Vec<meta::SpareInfo> = (0..base.spare_count())
            .filter_map(|i| base.spare(i))
            .collect();
        let st = meta::State {
            uuid: base.uuid,
            version,
            fingerprint: base.fingerprint,
            config: base.config,
            spares: &spares,
            entries: &items,
            scan,
        };
        let mut buf = vec![0u8; COPY_MAX_BYTES];
        let n = meta::encode(&st, 0, &mut buf)
            .map_err(|_| "the metadata log replays to a state that cannot be encoded")?;
        buf.truncate(n);
        Ok(buf)
    }

    fn reads(&self) -> [CopyRead<'_>; COPY_COUNT] {
        std::array::from_fn(|i| {
            if self.ok[i] {
                CopyRead::Bytes(&self.bytes[i])
            } else {
                CopyRead::IoError
            }
        })
    }
}

fn parse_uuid_opt(u: Option<&str>) -> Result<Option<[u8; 16]>, MetaError> {
    u.map(|s| json::parse_uuid(s).map_err(MetaError::Input))
        .transpose()
}

fn status_text(s: &CopyStatus, version: u64) -> String {
    match s {
        CopyStatus::Current => format!("ok (version {version})"),
        CopyStatus::Stale { version: v } => format!("stale (version {v} < {version})"),
        CopyStatus::Bad(d) => diag_text(d),
    }
}

fn diag_text(d: &meta::Diagnosis) -> String {
    match d {
        meta::Diagnosis::WrongLocation { found } => {
            format!("{} (written for sector {found})", d.as_str())
        }
        meta::Diagnosis::UnsupportedFormat { found } => format!("{} ({found})", d.as_str()),
        meta::Diagnosis::SectionChecksum { kind }
        | meta::Diagnosis::UnknownCriticalSection { kind } => {
            format!("{} (type {kind})", d.as_str())
        }
        _ => d.as_str().to_string(),
    }
}

/// The judge's verdict on `state`, read from (or to be written to) `spare`: the
/// bitmap is sized from the spare device, as the kernel sizes it, so a state that
/// records a larger spare is refused before anything is allocated from its sizes.
fn judge_state(
    state: &meta::Decoded<'_>,
    spare: &Spare,
) -> Result<Result<u64, Verdict>, MetaError> {
    // The device is the spare its copies name (a format 1 copy names none: its one
    // spare); the pool's other spares are sized as recorded.
    let me = (0..state.spare_count())
        .position(|i| state.spare(i).is_some_and(|s| s.uuid == state.spare_uuid))
        .unwrap_or(0);
    let words = judge::bitmap_words(state, |i| (i == me).then_some(spare.len() / 512));
    let n = usize::try_from(words).map_err(|_| MetaError::NoMemory(words))?;
    let mut bitmap = Vec::new();
    bitmap
        .try_reserve_exact(n)
        .map_err(|_| MetaError::NoMemory(words))?;
    bitmap.resize(n, 0u64);
    Ok(judge::judge_state(state, &mut bitmap).map(|used| used.iter().sum()))
}

fn dump(path: &std::path::Path, uuid: Option<&str>) -> Result<u8, MetaError> {
    let spare = Spare::open(path, false)?;
    let copies = Copies::read(&spare);
    let mut sel = repair::select(&copies.reads(), parse_uuid_opt(uuid)?);
    let replayed = copies.replayed(&mut sel)?;
    match sel {
        Selection::Load { state, chosen, .. } => {
            // The spare these copies are: the chosen base's header says (a replayed
            // state is encoded afresh).
            let me = state.spare_uuid;
            let state = match replayed.as_deref().map(|b| meta::decode(b, 0)) {
                Some(Ok(d)) => d,
                _ => state,
            };
            // The dump shows the state either way (it is what a repair would start
            // from); a refused one is said so on stderr.
            if let Err(v) = judge_state(&state, &spare)? {
                eprintln!("remapctl meta: warning: the kernel refuses this state: {v}");
            }
            let mut doc = json::Dump::from_decoded(&state, chosen);
            doc.spare_uuid = (me != [0; 16]).then(|| json::uuid_string(&me));
            let text =
                serde_json::to_string_pretty(&doc).map_err(|e| MetaError::Input(e.to_string()))?;
            println!("{text}");
            Ok(EXIT_CLEAN)
        }
        Selection::Blank => Err(MetaError::Refused(
            "metadata area is blank (never formatted)",
        )),
        Selection::Refuse { reason, diagnosis } => {
            for (i, d) in diagnosis.iter().enumerate() {
                if let Some(d) = d {
                    eprintln!("copy {i} (sector {}): {}", COPY_SECTORS[i], diag_text(d));
                }
            }
            Err(MetaError::Refused(reason.as_str()))
        }
    }
}

fn check(path: &std::path::Path, uuid: Option<&str>, as_json: bool) -> Result<u8, MetaError> {
    let spare = Spare::open(path, false)?;
    let copies = Copies::read(&spare);
    let mut sel = repair::select(&copies.reads(), parse_uuid_opt(uuid)?);
    let replayed = copies.replayed(&mut sel)?;
    let mut report = json::CheckReport {
        result: String::new(),
        version: None,
        uuid: None,
        verdict: None,
        failed: false,
        copies: Vec::new(),
    };
    let code = match &sel {
        Selection::Load {
            state,
            status,
            logs,
            ..
        } => {
            let state = &match replayed.as_deref().map(|b| meta::decode(b, 0)) {
                Some(Ok(d)) => d,
                _ => *state,
            };
            report.version = Some(state.version);
            report.uuid = Some(json::uuid_string(&state.uuid));
            report.failed = state.config.flags & CONFIG_FLAG_FAILED != 0;
            let verdict = judge_state(state, &spare)?.err();
            for (i, s) in status.iter().enumerate() {
                report.copies.push(json::CopyReport {
                    index: i,
                    sector: COPY_SECTORS[i],
                    ok: *s == CopyStatus::Current,
                    status: match logs[i].map_or(0, |l| l.records) {
                        0 => status_text(s, state.version),
                        n => format!("{} ({n} log records)", status_text(s, state.version)),
                    },
                });
            }
            if let Some(v) = verdict {
                report.result = format!("refused: {v}");
                report.verdict = Some(v.as_str().into());
                EXIT_BAD
            } else if sel.rewrite_count() == 0 {
                report.result = "clean".into();
                EXIT_CLEAN
            } else {
                report.result = format!(
                    "needs repair: {} of {COPY_COUNT} copies",
                    sel.rewrite_count()
                );
                EXIT_NEEDS_REPAIR
            }
        }
        Selection::Blank => {
            report.result = "blank (never formatted)".into();
            EXIT_BLANK
        }
        Selection::Refuse { reason, diagnosis } => {
            report.result = format!("refused: {}", reason.as_str());
            for (i, d) in diagnosis.iter().enumerate() {
                report.copies.push(json::CopyReport {
                    index: i,
                    sector: COPY_SECTORS[i],
                    ok: d.is_none(),
                    status: d.map_or_else(|| "valid".to_string(), |d| diag_text(&d)),
                });
            }
            EXIT_BAD
        }
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| MetaError::Input(e.to_string()))?
        );
    } else {
        println!("{}: {}", path.display(), report.result);
        if report.failed {
            println!(
                "  mode: failed (the target stopped remapping; it stays failed until cleared)"
            );
        }
        for c in &report.copies {
            println!("  copy {} (sector {}): {}", c.index, c.sector, c.status);
        }
    }
    Ok(code)
}

/// What the spares of a pool hold, read and chosen as the kernel does.
struct PoolView {
    spares: Vec<Spare>,
    /// Per spare: `path: what its own copies hold` (for the report).
    lines: Vec<(String, String)>,
    /// The refusal, if the pool is refused (`pool::choose`/`members` or the judge).
    refused: Option<String>,
    /// Nothing valid anywhere: every spare blank.
    blank: bool,
    /// The chosen state (replayed), when there is one.
    state: Option<json::Owned>,
    /// Per spare: its record in the state's list (`None`: blank, joining).
    members: Vec<Option<usize>>,
    /// Per spare: the copies to rewrite with the chosen state (all five for a spare
    /// that does not hold it).
    rewrite: Vec<[bool; COPY_COUNT]>,
}

/// Reads the spares of a pool: each spare's copies selected on their own
/// (`repair::select`), the pool's state chosen among them (`pool::choose`: the
/// newest; spares of other setups, copied spares and conflicting states refuse), the
/// spares matched to the records of its spare list (`pool::members`) and the state
/// judged with a bitmap sized from the devices.
fn read_pool(
    paths: &[PathBuf],
    want: Option<[u8; 16]>,
    write: bool,
) -> Result<PoolView, MetaError> {
    let mut spares = Vec::new();
    let mut copies = Vec::new();
    for p in paths {
        let sp = Spare::open(p, write)?;
        copies.push(Copies::read(&sp));
        spares.push(sp);
    }
    let mut sels: Vec<Selection<'_>> = copies
        .iter()
        .map(|c| repair::select(&c.reads(), want))
        .collect();
    let mut replayed = Vec::new();
    for (c, sel) in copies.iter().zip(sels.iter_mut()) {
        replayed.push(c.replayed(sel)?);
    }
    let finds: Vec<pool::SpareFind> = sels.iter().map(|s| pool::SpareFind::of(s, false)).collect();
    let lines = paths
        .iter()
        .zip(sels.iter())
        .map(|(p, sel)| {
            let what = match sel {
                Selection::Blank => "blank".to_string(),
                Selection::Refuse { reason, .. } => format!("refused: {}", reason.as_str()),
                Selection::Load { version, .. } => match sel.rewrite_count() {
                    0 => format!("version {version}"),
                    n => format!("version {version}, {n} of {COPY_COUNT} copies need repair"),
                },
            };
            (p.display().to_string(), what)
        })
        .collect();
    let mut view = PoolView {
        lines,
        refused: None,
        blank: false,
        state: None,
        members: Vec::new(),
        rewrite: Vec::new(),
        spares: Vec::new(),
    };
    let (best, current) = match pool::choose(&finds) {
        pool::PoolChoice::Blank => {
            view.blank = true;
            view.spares = spares;
            return Ok(view);
        }
        pool::PoolChoice::Refuse(r) => {
            view.refused = Some(r.as_str().to_string());
            view.spares = spares;
            return Ok(view);
        }
        pool::PoolChoice::Load { best, current, .. } => (best, current),
    };
    let Some(Selection::Load { state, .. }) = sels.get(best) else {
        return Err(MetaError::Input("pool choice without a state".into()));
    };
    let state = &match replayed.get(best).and_then(|r| r.as_deref()) {
        Some(b) => meta::decode(b, 0).map_err(|d| MetaError::Input(diag_text(&d)))?,
        None => *state,
    };
    view.state = Some(json::Owned::from_decoded(state));
    // The judge's first rules before the list is used to match the spares (as the
    // kernel orders them).
    if let Err(v) = judge::spare_data_blocks(state) {
        view.refused = Some(v.as_str().to_string());
        view.spares = spares;
        return Ok(view);
    }
    let m = match pool::members(&finds, state) {
        Ok(m) => m,
        Err(r) => {
            view.refused = Some(r.as_str().to_string());
            view.spares = spares;
            return Ok(view);
        }
    };
    view.members = m.iter().take(paths.len()).copied().collect();
    // Each record's part of the bitmap sized from the device matched to it.
    let size = |rec: usize| {
        m.iter()
            .position(|&x| x == Some(rec))
            .and_then(|i| spares.get(i))
            .map(|sp| sp.len() / 512)
    };
    let words = judge::bitmap_words(state, size);
    let n = usize::try_from(words).map_err(|_| MetaError::NoMemory(words))?;
    let mut bitmap = vec![0u64; n];
    if let Err(v) = judge::judge_state(state, &mut bitmap) {
        view.refused = Some(v.as_str().to_string());
    }
    view.rewrite = (0..paths.len())
        .map(|i| match sels.get(i) {
            Some(Selection::Load { rewrite, .. }) if current[i] => *rewrite,
            _ => [true; COPY_COUNT],
        })
        .collect();
    view.spares = spares;
    Ok(view)
}

/// `meta check` of several spares: the spares of one pool ([`read_pool`]). Exit codes
/// as for one spare: 0 clean, 1 a spare needs repair (stale, damaged or blank in a
/// record's place), 2 refused, 3 all blank.
fn check_pool(paths: &[PathBuf], uuid: Option<&str>, as_json: bool) -> Result<u8, MetaError> {
    let v = read_pool(paths, parse_uuid_opt(uuid)?, false)?;
    let version = v.state.as_ref().map(|s| s.version);
    let behind = v.rewrite.iter().filter(|r| r.iter().any(|&x| x)).count();
    let (code, result) = if v.blank {
        (EXIT_BLANK, "blank (never formatted)".to_string())
    } else if let Some(r) = &v.refused {
        (EXIT_BAD, format!("refused: {r}"))
    } else if behind > 0 {
        (
            EXIT_NEEDS_REPAIR,
            format!(
                "needs repair: {behind} of {} spares do not hold version {} in every copy",
                paths.len(),
                version.unwrap_or(0)
            ),
        )
    } else {
        (EXIT_CLEAN, "clean".to_string())
    };
    if as_json {
        let spares: Vec<_> = v
            .lines
            .iter()
            .map(|(p, w)| serde_json::json!({ "path": p, "status": w }))
            .collect();
        let out = serde_json::json!({ "result": result, "version": version, "spares": spares });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| MetaError::Input(e.to_string()))?
        );
    } else {
        println!("pool of {} spares: {result}", paths.len());
        for (p, w) in &v.lines {
            println!("  {p}: {w}");
        }
    }
    Ok(code)
}

/// `meta repair` of several spares: every spare that does not hold the pool's state
/// in all five copies gets it, as its own record (its copies name it), as the kernel's
/// first resume does. Refused, writing nothing, whenever `check` would refuse.
fn repair_pool(paths: &[PathBuf], uuid: Option<&str>) -> Result<u8, MetaError> {
    let v = read_pool(paths, parse_uuid_opt(uuid)?, true)?;
    if v.blank {
        return Err(MetaError::Refused(
            "every metadata area is blank: nothing to repair from",
        ));
    }
    if let Some(r) = &v.refused {
        return Err(MetaError::Input(format!("refused: {r}")));
    }
    let Some(mut owned) = v.state else {
        return Err(MetaError::Input("no state chosen".into()));
    };
    let mut wrote = false;
    for (i, sp) in v.spares.iter().enumerate() {
        let which = v.rewrite.get(i).copied().unwrap_or([false; COPY_COUNT]);
        if !which.iter().any(|&w| w) {
            continue;
        }
        // A blank spare after the listed ones is not in the list: nothing to write as.
        let Some(rec) = v.members.get(i).copied().flatten() else {
            println!(
                "{}: blank, not in the spare list: left alone",
                paths[i].display()
            );
            continue;
        };
        owned.me = owned.spares.get(rec).map(|s| s.uuid);
        write_copies(sp, &owned, &which)?;
        wrote = true;
        println!(
            "{}: {} of {COPY_COUNT} copies rewritten with version {} (spare {rec} of the pool)",
            paths[i].display(),
            which.iter().filter(|&&w| w).count(),
            owned.version
        );
    }
    if !wrote {
        println!("pool of {} spares: clean, nothing to repair", paths.len());
    }
    // Read back: the pool must now be clean.
    let after = read_pool(paths, Some(owned.uuid), false)?;
    if after.refused.is_some() || after.rewrite.iter().any(|r| r.iter().any(|&x| x)) {
        return Err(MetaError::Input(
            "the pool is still not clean after the repair (failing device?)".into(),
        ));
    }
    Ok(EXIT_CLEAN)
}

fn repair(path: &std::path::Path, uuid: Option<&str>) -> Result<u8, MetaError> {
    let spare = Spare::open(path, true)?;
    let copies = Copies::read(&spare);
    let mut sel = repair::select(&copies.reads(), parse_uuid_opt(uuid)?);
    let replayed = copies.replayed(&mut sel)?;
    let me;
    let (state, rewrite) = match sel {
        Selection::Load { state, rewrite, .. } => {
            me = (state.spare_uuid != [0; 16]).then_some(state.spare_uuid);
            let state = match replayed.as_deref().map(|b| meta::decode(b, 0)) {
                Some(Ok(d)) => d,
                _ => state,
            };
            if let Err(v) = judge_state(&state, &spare)? {
                return Err(MetaError::Refused(v.as_str()));
            }
            (state, rewrite)
        }
        Selection::Blank => {
            return Err(MetaError::Refused(
                "metadata area is blank: nothing to repair from",
            ))
        }
        Selection::Refuse { reason, diagnosis } => {
            for (i, d) in diagnosis.iter().enumerate() {
                if let Some(d) = d {
                    eprintln!("copy {i} (sector {}): {}", COPY_SECTORS[i], diag_text(d));
                }
            }
            return Err(MetaError::Refused(reason.as_str()));
        }
    };
    let mut owned = json::Owned::from_decoded(&state);
    owned.me = me;
    // A format 1 state is repaired by an upgrade: the state as a new version in format
    // 2 to every copy. Rewriting only the damaged copies in format 2 under the version
    // the others hold in format 1 would leave two different copies of one version.
    let (rewrite, upgrade) = if state.format_version == meta::FORMAT_V1 {
        owned.version = state
            .version
            .checked_add(1)
            .ok_or_else(|| MetaError::Input("version counter exhausted".into()))?;
        ([true; COPY_COUNT], true)
    } else {
        (rewrite, false)
    };
    if !rewrite.iter().any(|&r| r) {
        println!("{}: clean, nothing to repair", path.display());
        return Ok(EXIT_CLEAN);
    }
    write_copies(&spare, &owned, &rewrite)?;
    if upgrade {
        println!(
            "{}: upgraded from format 1 (version {}) to format 2 (version {})",
            path.display(),
            state.version,
            owned.version
        );
    }
    for (i, &r) in rewrite.iter().enumerate() {
        if r {
            println!(
                "copy {i} (sector {}): rewritten with version {}",
                COPY_SECTORS[i], owned.version
            );
        }
    }
    // Read back: the result must now be clean.
    let after = Copies::read(&spare);
    let sel = repair::select(&after.reads(), Some(owned.uuid));
    if sel.rewrite_count() != 0 || !matches!(sel, Selection::Load { .. }) {
        return Err(MetaError::Input(
            "copies still damaged after rewriting them (failing device?)".into(),
        ));
    }
    Ok(EXIT_CLEAN)
}

/// Writes `owned` to the copies marked in `which`, in commit order, each synced.
fn write_copies(
    spare: &Spare,
    owned: &json::Owned,
    which: &[bool; COPY_COUNT],
) -> Result<(), MetaError> {
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    // The record this device is (in a pool, its copies name it).
    let me = owned.my_record().map_or([0; 16], |s| s.uuid);
    // A format 1 state did not record the spare's logical block size: the device's.
    let mut spares = owned.spares.clone();
    if let Some(s) = spares
        .iter_mut()
        .find(|s| s.uuid == me)
        .filter(|s| s.logical_block_bytes == 0)
    {
        s.logical_block_bytes = spare.logical_block_bytes();
    }
    let st = meta::State {
        spares: &spares,
        ..owned.state()
    };
    let len = meta::encode(&st, 0, &mut buf)
        .map_err(|e| MetaError::Input(format!("cannot encode state: {e:?}")))?;
    // The module pads and appends in the spare device's logical blocks, which the state
    // records: an image file of a 4 KiB-sector spare reads as 512-byte blocks here, but
    // the zeroed block must cover where the module would append the first record.
    let recorded = spares
        .iter()
        .find(|s| s.uuid == me)
        .map_or(0, |s| s.logical_block_bytes);
    let lbs = spare.logical_block_bytes().max(recorded);
    let end = meta::padded_len(len, lbs)
        .map_or(len, |p| p.saturating_add(lbs as usize))
        .min(COPY_MAX_BYTES);
    for step in repair::COMMIT_PLAN {
        if !which[step.copy] {
            continue;
        }
        let sector = COPY_SECTORS[step.copy];
        meta::set_copy_spare(&mut buf, &me).map_err(|e| MetaError::Input(format!("{e:?}")))?;
        meta::set_copy_sector(&mut buf, sector).map_err(|e| MetaError::Input(format!("{e:?}")))?;
        // With one zeroed logical block after the base, as the module writes it: records
        // an earlier base left there never chain onto this one.
        spare.write_durable(sector * 512, &buf[..end])?;
    }
    Ok(())
}

fn restore(json_path: &std::path::Path, path: &std::path::Path) -> Result<u8, MetaError> {
    let text = if json_path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| MetaError::Io(json_path.into(), e))?
    } else {
        std::fs::read_to_string(json_path).map_err(|e| MetaError::Io(json_path.into(), e))?
    };
    let doc: json::Dump = serde_json::from_str(&text)
        .map_err(|e| MetaError::Input(format!("{}: {e}", json_path.display())))?;
    let mut owned = doc.into_owned().map_err(MetaError::Input)?;
    let spare = Spare::open(path, true)?;
    // The record the device is written as (the JSON's `spare_uuid`, else the first).
    let me = owned.my_record().map_or([0; 16], |s| s.uuid);
    if let Some(s) = owned
        .spares
        .iter_mut()
        .find(|s| s.uuid == me)
        .filter(|s| s.logical_block_bytes == 0)
    {
        s.logical_block_bytes = spare.logical_block_bytes();
    }
    // Validate before touching the device: the encoded copy must decode.
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    let st = owned.state();
    let len = meta::encode(&st, 0, &mut buf)
        .map_err(|e| MetaError::Input(format!("cannot encode state: {e:?}")))?;
    meta::set_copy_spare(&mut buf, &me).map_err(|e| MetaError::Input(format!("{e:?}")))?;
    let decoded = meta::decode(&buf[..len], 0)
        .map_err(|d| MetaError::Input(format!("state is not valid: {}", diag_text(&d))))?;
    if let Err(v) = judge_state(&decoded, &spare)? {
        return Err(MetaError::Refused(v.as_str()));
    }
    let need = owned.my_record().map_or(0, |s| s.sectors) * 512;
    if spare.len() < need {
        return Err(MetaError::Input(format!(
            "{}: smaller than the spare recorded in the JSON",
            path.display()
        )));
    }
    write_copies(&spare, &owned, &[true; COPY_COUNT])?;
    println!(
        "{}: wrote version {} to {COPY_COUNT} copies",
        path.display(),
        st.version
    );
    Ok(EXIT_CLEAN)
}
