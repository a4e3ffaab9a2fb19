//! remap-forge: writes spare images for testing the metadata judge.
//!
//! A development tool, apart from the admin CLI: `remap-forge <case> <image>
//! <main-sectors> <spare-sectors>` writes a spare image (all five copies, valid
//! checksums) holding the state of one corpus case, and `remap-forge --list` prints
//! every case with the verdict text the judge gives it, or `OK`. Tests feed each image
//! to `remapctl meta check` and to the kernel and require that verdict from both.
//!
//! `--log-mismatch` then appends to every copy's log one record (the case's version + 1)
//! that remaps one more block, all carrying the checksum of that state; copy 0's record
//! names another spare block, so it passes its own checksum but does not replay to the
//! state it records. A loader must use another current copy and rewrite copy 0.

mod corpus;

use clap::Parser;
use corpus::{Forged, Params, CASES};
use remap_core::judge::{self, Verdict};
use remap_core::layout::{self, COPY_MAX_BYTES, COPY_SECTORS};
use remap_core::log;
use remap_core::meta::{self, identity, State};
use remap_core::remap_table::{Entry, REMAPPED};
use remap_core::units::{BlockSize, Sectors};
use remap_core::uuid::{parse_uuid, UuidText};
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Setup UUID of forged images unless `--uuid` names one.
const DEFAULT_UUID: &str = "5eed0000-0000-4000-8000-00000000f0a9";

/// Writes dm-remap spare images that break one metadata rule each (test corpus).
#[derive(Parser)]
#[command(name = "remap-forge", about)]
struct Args {
    /// Print `case<TAB>verdict` for every case (`OK` for an accepted state).
    #[arg(long, exclusive = true)]
    list: bool,
    /// The corpus case to write.
    #[arg(required_unless_present = "list")]
    case: Option<String>,
    /// Image file (created or overwritten; sized to the spare) or spare block device.
    #[arg(required_unless_present = "list")]
    image: Option<PathBuf>,
    /// Size of the main device the state is for, in 512-byte sectors.
    #[arg(required_unless_present = "list")]
    main_sectors: Option<u64>,
    /// Size of the spare, in 512-byte sectors.
    #[arg(required_unless_present = "list")]
    spare_sectors: Option<u64>,
    /// Remap block size in bytes.
    #[arg(long, default_value_t = 4096)]
    block_size: u64,
    /// Main device logical block size in bytes.
    #[arg(long, default_value_t = 512)]
    lbs: u32,
    /// Main device physical block size in bytes.
    #[arg(long, default_value_t = 512)]
    pbs: u32,
    /// Spare device logical block size in bytes (recorded in the spare list).
    #[arg(long, default_value_t = 512)]
    spare_lbs: u32,
    /// Setup UUID.
    #[arg(long, default_value = DEFAULT_UUID)]
    uuid: String,
    /// Main device identity to record (`none`, `naa:<hex>`, `eui64:<hex>`,
    /// `t10:<hex>`, `partuuid:<uuid>`).
    #[arg(long, default_value = "none")]
    identity: String,
    /// Append a record to every copy's log, copy 0's not replaying to its state.
    #[arg(long)]
    log_mismatch: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for c in CASES {
            println!("{}\t{}", c.name, c.expect.map_or("OK", Verdict::as_str));
        }
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("remap-forge: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(a: &Args) -> Result<(), String> {
    let (Some(name), Some(image), Some(main_sectors), Some(spare_sectors)) =
        (&a.case, &a.image, a.main_sectors, a.spare_sectors)
    else {
        return Err("usage: remap-forge <case> <image> <main-sectors> <spare-sectors>".into());
    };
    let case = corpus::find(name).ok_or_else(|| {
        let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
        format!("unknown case {name:?} (one of: {})", names.join(", "))
    })?;
    let block_size =
        BlockSize::from_bytes(a.block_size).map_err(|e| format!("--block-size: {e}"))?;
    for (what, v) in [
        ("--lbs", a.lbs),
        ("--pbs", a.pbs),
        ("--spare-lbs", a.spare_lbs),
    ] {
        if !v.is_power_of_two() || !(512..=65536).contains(&v) {
            return Err(format!("{what}: a power of two from 512 to 65536"));
        }
    }
    let p = Params {
        main_sectors,
        spare_sectors,
        block_size,
        lbs: a.lbs,
        pbs: a.pbs,
        spare_lbs: a.spare_lbs,
        uuid: parse_uuid(a.uuid.as_bytes()).map_err(|e| format!("--uuid: {e}"))?,
        identity: identity::parse_identity(a.identity.as_bytes())
            .ok_or_else(|| format!("--identity: cannot read {:?}", a.identity))?,
    };
    let forged = corpus::build(case, &p)?;
    write_image(image, &forged, spare_sectors)?;
    if a.log_mismatch {
        let (block, spare_block) = append_mismatch(image, &forged, spare_sectors, a.spare_lbs)?;
        println!(
            "{}: appended version {} (block {block} on spare block {spare_block}); copy 0's record names spare block {}",
            image.display(),
            forged.state().version + 1,
            spare_block - 1
        );
    }
    // The image must hold what the case promises: read it back and judge it as
    // `remapctl meta check` does.
    let got = judge_image(image, spare_sectors)?;
    if got != case.expect {
        return Err(format!(
            "{}: judged {:?}, the case promises {:?}",
            image.display(),
            got.map(Verdict::as_str),
            case.expect.map(Verdict::as_str)
        ));
    }
    println!(
        "{}: {} ({}): target {} sectors, block_size {}, uuid {}, expect: {}",
        image.display(),
        case.name,
        case.what,
        p.target_sectors(),
        block_size.bytes(),
        UuidText(&p.uuid),
        case.expect.map_or("OK", Verdict::as_str)
    );
    Ok(())
}

/// Writes the five copies of `f` (and zeros over the rest of each copy's extent).
fn write_image(path: &Path, f: &Forged, spare_sectors: u64) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(err)?;
    let md = file.metadata().map_err(err)?;
    if !md.file_type().is_block_device() {
        let bytes = spare_sectors
            .checked_mul(512)
            .ok_or("spare size overflows")?;
        file.set_len(0).map_err(err)?;
        file.set_len(bytes).map_err(err)?;
    }
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    let len = meta::encode(&f.state(), 0, &mut buf)
        .map_err(|e| format!("cannot encode the state: {e:?}"))?;
    for &sector in &COPY_SECTORS {
        meta::set_copy_sector(&mut buf, sector).map_err(|e| format!("{e:?}"))?;
        buf[len..].fill(0);
        file.write_all_at(&buf, sector * 512).map_err(err)?;
    }
    file.sync_all().map_err(err)
}

/// `--log-mismatch`: appends a record (the next version: the highest free block remapped
/// to a free spare data block) to every copy; copy 0's names the spare block before it.
/// Returns the block and its spare block.
fn append_mismatch(
    path: &Path,
    f: &Forged,
    spare_sectors: u64,
    spare_lbs: u32,
) -> Result<(u64, u64), String> {
    let st = f.state();
    let bs = BlockSize::from_bytes(u64::from(st.config.block_bytes)).map_err(|e| e.to_string())?;
    // The highest block the state does not name, and the highest pair of free spare
    // blocks.
    let blocks = st.config.target_sectors / bs.sectors();
    let block = (0..blocks)
        .rev()
        .find(|b| st.entries.iter().all(|e| e.block != *b))
        .ok_or("--log-mismatch: no free block")?;
    let used = |s: u64| {
        st.entries
            .iter()
            .any(|e| e.state == REMAPPED && e.spare_block == s)
    };
    let spare_block = (1..layout::data_blocks(Sectors(spare_sectors), bs).0)
        .rev()
        .find(|s| !used(*s) && !used(*s - 1))
        .ok_or("--log-mismatch: no two free spare blocks")?;
    let mut next = st.entries.to_vec();
    next.push(Entry::remapped(block, 0, spare_block));
    next.sort_by_key(|e| e.block);
    let v = st.version;
    let v6 = State {
        version: v + 1,
        entries: &next,
        ..st
    };
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    let n = meta::encode(&v6, 0, &mut buf).map_err(|e| format!("{e:?}"))?;
    let state_crc = meta::decode(&buf[..n], 0)
        .map_err(|d| d.as_str().to_string())?
        .body_crc;
    let head = log::RecordHead {
        version: v + 1,
        prev: v,
        base_crc: 0,
        state_crc,
        scan: st.scan,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut base = vec![0u8; COPY_MAX_BYTES];
    let len = meta::encode(&st, 0, &mut base).map_err(|e| format!("{e:?}"))?;
    let at = meta::padded_len(len, spare_lbs).ok_or("no room for a log")?;
    for (k, &sector) in COPY_SECTORS.iter().enumerate() {
        meta::set_copy_sector(&mut base, sector).map_err(|e| format!("{e:?}"))?;
        let base_crc = u32::from_le_bytes(base[124..128].try_into().map_err(|_| "header")?);
        let sb = if k == 0 { spare_block - 1 } else { spare_block };
        let change = [Entry::remapped(block, 0, sb)];
        let mut rec = vec![0u8; log::MAX_RECORD_BYTES + 65536];
        let rl = log::encode_record(&mut rec, &head, change.into_iter(), spare_lbs as usize)
            .map_err(|e| format!("record: {e:?}"))?;
        log::set_record_base(&mut rec, base_crc, v).map_err(|e| format!("{e:?}"))?;
        file.write_all_at(&rec[..rl], sector * 512 + at as u64)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    file.sync_all().map_err(|e| e.to_string())?;
    Ok((block, spare_block))
}

/// Decodes copy 0 of the image and judges it with a bitmap sized from the spare.
fn judge_image(path: &Path, spare_sectors: u64) -> Result<Option<Verdict>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; COPY_MAX_BYTES];
    file.read_exact_at(&mut buf, 0)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let d = meta::decode(&buf, 0).map_err(|d| format!("copy 0 does not decode: {}", d.as_str()))?;
    let mut bm =
        vec![0u64; judge::bitmap_words(&d, |i| (i == 0).then_some(spare_sectors)) as usize];
    Ok(judge::judge_state(&d, &mut bm).err())
}
