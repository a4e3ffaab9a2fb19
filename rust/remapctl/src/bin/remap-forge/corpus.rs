//! The corpus: a valid state for the devices given, and one case per rule of
//! `remap_core::judge::judge_state`, each breaking that rule and nothing else. Every
//! state encodes with valid checksums, so the format accepts it and only the judge
//! can refuse it.

use remap_core::judge::Verdict;
use remap_core::meta::identity::IDENTITY_NONE;
use remap_core::meta::{spare_info, Config, Fingerprint, ScanCheckpoint, SpareInfo, State};
use remap_core::remap_table::{Entry, REMAPPED};
use remap_core::units::{BlockSize, Sectors};

/// The devices and options a state is forged for.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Main device size in sectors.
    pub main_sectors: u64,
    /// Spare device (image) size in sectors.
    pub spare_sectors: u64,
    /// Remap block size.
    pub block_size: BlockSize,
    /// Main device logical block size in bytes.
    pub lbs: u32,
    /// Main device physical block size in bytes.
    pub pbs: u32,
    /// Spare device logical block size in bytes.
    pub spare_lbs: u32,
    /// Setup UUID.
    pub uuid: [u8; 16],
    /// Main device identity recorded in the fingerprint.
    pub identity: [u8; remap_core::meta::IDENTITY_LEN],
}

impl Params {
    /// Target length: the main device rounded down to whole blocks.
    pub fn target_sectors(&self) -> u64 {
        self.main_sectors & !(self.block_size.sectors() - 1)
    }
    fn target_blocks(&self) -> u64 {
        self.block_size.whole_blocks(Sectors(self.main_sectors)).0
    }
}

/// A state to encode.
#[derive(Debug, Clone)]
pub struct Forged {
    /// Setup UUID.
    pub uuid: [u8; 16],
    /// Fingerprint.
    pub fingerprint: Fingerprint,
    /// Configuration.
    pub config: Config,
    /// Spare list.
    pub spares: Vec<SpareInfo>,
    /// Entries, sorted by block.
    pub entries: Vec<Entry>,
    /// Scan checkpoint.
    pub scan: ScanCheckpoint,
}

impl Forged {
    /// The state as `meta::encode` takes it.
    pub fn state(&self) -> State<'_> {
        State {
            uuid: self.uuid,
            version: 5,
            fingerprint: self.fingerprint,
            config: self.config,
            spares: &self.spares,
            entries: &self.entries,
            scan: self.scan,
        }
    }

    fn remapped_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.entries.iter_mut().filter(|e| e.state == REMAPPED)
    }

    fn push(&mut self, e: Entry) {
        self.entries.push(e);
        self.entries.sort_by_key(|e| e.block);
    }
}

/// Spare UUID of the forged spare record.
const SPARE_UUID: [u8; 16] = *b"remap-forge-spar";

/// The valid state: blocks 1 (spare block 0), 3 (spare block 1, first sector lost)
/// and the target's last block (the spare's last block) remapped, block 2 pending.
pub fn valid(p: &Params) -> Result<Forged, String> {
    let bs = p.block_size;
    let spare = spare_info(SPARE_UUID, p.spare_sectors, p.spare_lbs, bs, 0);
    let n = spare.data_blocks;
    let t = p.target_blocks();
    if n < 4 {
        return Err(format!(
            "a spare of {} sectors holds {n} data blocks of {} bytes; the corpus needs 4",
            p.spare_sectors,
            bs.bytes()
        ));
    }
    if t < 8 {
        return Err(format!(
            "a main device of {} sectors holds {t} blocks; the corpus needs 8",
            p.main_sectors
        ));
    }
    Ok(Forged {
        uuid: p.uuid,
        fingerprint: Fingerprint {
            main_sectors: p.main_sectors,
            logical_block_bytes: p.lbs,
            physical_block_bytes: p.pbs,
            identity: p.identity,
        },
        config: Config {
            block_bytes: bs.bytes(),
            read_retries: 1,
            target_sectors: p.target_sectors(),
            flags: 0,
            scan_interval_s: 0,
            scan_rate_kibs: 0,
            predict_interval_s: 0,
            alert_min_level: 0,
        },
        spares: vec![spare],
        entries: vec![
            Entry::remapped(1, 0, 0),
            Entry::pending(2),
            Entry {
                lost: [1, 0],
                ..Entry::remapped(3, 0, 1)
            },
            Entry::remapped(t - 1, 0, n - 1),
        ],
        scan: ScanCheckpoint {
            cursor_block: t / 2,
            passes: 1,
            last_pass_end_s: 0,
        },
    })
}

/// One corpus case.
pub struct Case {
    /// Name on the command line.
    pub name: &'static str,
    /// The judge's verdict on it (`None`: accepted).
    pub expect: Option<Verdict>,
    /// What it breaks.
    pub what: &'static str,
    /// Turns the valid state into the case's.
    pub apply: fn(&mut Forged, &Params) -> Result<(), String>,
}

fn ok(_: &mut Forged, _: &Params) -> Result<(), String> {
    Ok(())
}

/// Every case, `valid` first.
pub const CASES: &[Case] = &[
    Case {
        name: "valid",
        expect: None,
        what: "a consistent state for the devices given",
        apply: ok,
    },
    Case {
        name: "spare-listed-twice",
        expect: Some(Verdict::SpareCount),
        what: "a second record in the spare list with the spare's own UUID",
        apply: |f, p| {
            f.spares.push(spare_info(
                SPARE_UUID,
                p.spare_sectors,
                p.spare_lbs,
                p.block_size,
                1,
            ));
            Ok(())
        },
    },
    Case {
        name: "no-spare",
        expect: Some(Verdict::SpareCount),
        what: "an empty spare list",
        apply: |f, _| {
            f.spares.clear();
            Ok(())
        },
    },
    Case {
        name: "spare-geometry",
        expect: Some(Verdict::SpareGeometry),
        what: "the spare record claims one data block less than its size gives",
        apply: |f, _| {
            f.spares[0].data_blocks -= 1;
            Ok(())
        },
    },
    Case {
        name: "target-beyond-main",
        expect: Some(Verdict::TargetGeometry),
        what: "the target is one block longer than the recorded main device",
        apply: |f, p| {
            f.fingerprint.main_sectors = p.target_sectors();
            f.config.target_sectors = p.target_sectors() + p.block_size.sectors();
            Ok(())
        },
    },
    Case {
        name: "target-unaligned",
        expect: Some(Verdict::TargetGeometry),
        what: "the target length is not a multiple of the block size",
        apply: |f, p| {
            if p.block_size.sectors() == 1 {
                return Err("every length is aligned to 512-byte blocks".into());
            }
            f.config.target_sectors -= 1;
            Ok(())
        },
    },
    Case {
        name: "bad-identity",
        expect: Some(Verdict::BadIdentity),
        what: "free text in the identity field",
        apply: |f, _| {
            f.fingerprint.identity = IDENTITY_NONE;
            f.fingerprint.identity[..6].copy_from_slice(b"disk-7");
            Ok(())
        },
    },
    Case {
        name: "scan-beyond-target",
        expect: Some(Verdict::ScanBeyondTarget),
        what: "the scan checkpoint one block past the end of the target",
        apply: |f, p| {
            f.scan.cursor_block = p.target_blocks() + 1;
            Ok(())
        },
    },
    Case {
        name: "spare-larger-than-device",
        expect: Some(Verdict::SpareLargerThanDevice),
        what: "the spare record describes a spare twice the size of the image",
        apply: |f, p| {
            let big = p.spare_sectors.checked_mul(2).ok_or("spare too large")?;
            f.spares[0] = spare_info(SPARE_UUID, big, p.spare_lbs, p.block_size, 0);
            Ok(())
        },
    },
    Case {
        name: "beyond-target",
        expect: Some(Verdict::BeyondTarget),
        what: "a block remapped one block past the end of the target",
        apply: |f, p| {
            f.push(Entry::remapped(p.target_blocks(), 0, 2));
            Ok(())
        },
    },
    Case {
        name: "pending-beyond-target",
        expect: Some(Verdict::BeyondTarget),
        what: "a pending block past the end of the target",
        apply: |f, p| {
            f.push(Entry::pending(p.target_blocks() + 7));
            Ok(())
        },
    },
    Case {
        name: "bad-spare-index",
        expect: Some(Verdict::SpareIndex),
        what: "a remap on spare 1 of a one-spare list",
        apply: |f, _| {
            if let Some(e) = f.remapped_mut().next() {
                e.spare = 1;
            }
            Ok(())
        },
    },
    Case {
        name: "beyond-spare",
        expect: Some(Verdict::BeyondSpare),
        what: "a remap to the spare block just past the data area",
        apply: |f, _| {
            let n = f.spares[0].data_blocks;
            if let Some(e) = f.remapped_mut().last() {
                e.spare_block = n;
            }
            Ok(())
        },
    },
    Case {
        name: "dup-spare-block",
        expect: Some(Verdict::SharedSpareBlock),
        what: "two blocks remapped to spare block 0",
        apply: |f, _| {
            if let Some(e) = f.remapped_mut().last() {
                e.spare_block = 0;
            }
            Ok(())
        },
    },
    Case {
        name: "lost-beyond-block",
        expect: Some(Verdict::LostBeyondBlock),
        what: "a lost sector just past the end of a block",
        apply: |f, p| {
            let spb = p.block_size.sectors();
            if spb == 128 {
                return Err("a 64 KiB block's mask has no bit past the block".into());
            }
            if let Some(e) = f.remapped_mut().find(|e| e.block == 3) {
                e.lost[(spb / 64) as usize] |= 1 << (spb % 64);
            }
            Ok(())
        },
    },
];

/// The case called `name`.
pub fn find(name: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.name == name)
}

/// The state of `case` for `p`.
pub fn build(case: &Case, p: &Params) -> Result<Forged, String> {
    let mut f = valid(p)?;
    (case.apply)(&mut f, p).map_err(|e| format!("case {}: {e}", case.name))?;
    Ok(f)
}
