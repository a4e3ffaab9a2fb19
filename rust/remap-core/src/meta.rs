//! On-disk metadata format, version 2 (reads version 1): encoding and validating one
//! copy.
//!
//! `Documentation/on-disk-format.md` is the reference for the byte layout; this module
//! implements it. A copy is a 128-byte header followed by sections, each a 16-byte
//! section header and a payload padded to 8 bytes. Every field is little-endian and
//! goes through [`super::cursor`]. Checksums are CRC-32 salted per section type
//! ([`super::crc::salted`]); the header checksum covers the body checksum, which
//! covers every section, so one CRC check of the header chain covers the copy.
//!
//! [`decode`] checks, in this order, each with its own [`Diagnosis`]: blank, location,
//! magic, format version, lengths, header checksum, body checksum, section checksums,
//! then the encoding's own rules: reserved bytes zero, each section once, lengths,
//! every value in its domain (block sizes, retries, known flags, roles and states),
//! arrays strictly increasing, lost-sector records only for remapped blocks, pending
//! blocks not remapped. A copy that passes is *ours and intact* and can be iterated
//! without further errors; it is then selected by version ([`super::repair`], which
//! also checks the setup UUID). Whether the selected state makes sense — the spare
//! list, ranges against the target and the spare, one spare block per entry — and
//! whether it belongs to the devices at hand is decided by [`super::judge`], the one
//! set of rules the kernel and `remapctl` share.
//!
//! This file holds the format's constants, types and sizes; `meta/encode.rs` writes a
//! copy and `meta/decode.rs` validates and reads one.

use super::crc;
use super::cursor::{OutOfBounds, Reader, Writer};
use super::layout;
use super::remap_table::{
    stores_remapped, Entry, BUSY, FENCED_MOVED, NO_MIRROR, PENDING, REMAPPED,
};
use super::table_line::MAX_READ_RETRIES;
use super::units::{BlockSize, Sectors};

mod decode;
mod encode;
pub mod identity;

pub use decode::{decode, decode_own, Decoded};
pub use encode::{encode, set_copy_sector, set_copy_spare};

/// Magic bytes at offset 0 of every copy.
pub const MAGIC: [u8; 8] = *b"DMREMAP\x01";
/// The format version this code writes.
pub const FORMAT_VERSION: u32 = 2;
/// The earlier format version this code still reads (a loader upgrades it by writing
/// every copy in [`FORMAT_VERSION`]).
pub const FORMAT_V1: u32 = 1;
/// Size of the copy header.
pub const HEADER_LEN: usize = 128;
/// Size of a section header.
pub const SECTION_HEADER_LEN: usize = 16;
/// Most spares a setup may have.
pub const MAX_SPARES: usize = 16;
/// Bytes of the main device's identity ([`identity`]).
pub const IDENTITY_LEN: usize = 32;
/// Most remapped and pending blocks a state may hold: what a copy of the smallest
/// record (a pending block, 8 bytes) holds, and what the module's in-memory table is
/// sized for. Runs could record more in the bytes of a copy; [`encode`] refuses that
/// ([`EncodeError::TooLarge`]), so no writer makes a state the module cannot load.
pub const MAX_BLOCKS: usize = layout::COPY_MAX_BYTES / PENDING_ENTRY_LEN;
/// Encoded size of one remap entry (a single remapped block).
pub const REMAP_ENTRY_LEN: usize = 12;
/// Encoded size of one remap run (neighbouring blocks on neighbouring spare blocks).
pub const RUN_ENTRY_LEN: usize = 16;
/// Longest run one record holds (24 bits); a longer run takes several records.
pub const MAX_RUN_LEN: u64 = (1 << 24) - 1;
/// Encoded size of one lost-sectors record.
pub const LOST_ENTRY_LEN: usize = 24;
/// Encoded size of one second-copy record (`redundancy 2`).
pub const MIRROR_ENTRY_LEN: usize = 16;
/// Encoded size of one pending block.
pub const PENDING_ENTRY_LEN: usize = 8;
/// Encoded size of one spare record.
pub const SPARE_ENTRY_LEN: usize = 48;
/// Largest block number a remap entry can hold (48 bits).
pub const MAX_ENTRY_BLOCK: u64 = (1 << 48) - 1;
/// Largest spare data block a remap entry can hold (40 bits).
pub const MAX_SPARE_BLOCK: u64 = (1 << 40) - 1;

/// Section flag: a reader that does not know the section type must reject the copy.
pub const SECTION_CRITICAL: u16 = 1;

/// Section types.
pub mod section {
    /// Main-device fingerprint.
    pub const FINGERPRINT: u16 = 1;
    /// Configuration.
    pub const CONFIG: u16 = 2;
    /// Spare list.
    pub const SPARES: u16 = 3;
    /// Remap entries.
    pub const REMAPS: u16 = 4;
    /// Sectors lost in remapped blocks.
    pub const LOST: u16 = 5;
    /// Pending blocks.
    pub const PENDING: u16 = 6;
    /// Scan checkpoint.
    pub const SCAN: u16 = 7;
    /// Remap runs (format 2).
    pub const RUNS: u16 = 8;
    /// Second copies of remapped blocks (format 2, `redundancy 2`; present only when
    /// a block has one, and then with [`super::CONFIG_FLAG_REDUNDANCY`] set).
    pub const MIRRORS: u16 = 9;
}

/// Salt of the header checksum.
pub const SALT_HEADER: u32 = 0x5244_4d48;
/// Salt of the body checksum.
pub const SALT_BODY: u32 = 0x5244_4d42;

/// Salt of a section checksum.
pub const fn section_salt(kind: u16) -> u32 {
    0x5244_0000 | kind as u32
}

/// Fixed payload sizes of v1's fixed-size sections.
const FINGERPRINT_LEN: usize = 16 + IDENTITY_LEN;
const CONFIG_LEN: usize = 64;
const SCAN_LEN: usize = 32;
/// Bytes of a section before an array's entries (count + reserved).
const ARRAY_HEAD_LEN: usize = 8;

/// Configuration flag: the target is in mode `failed` (a remap storm, a spare or a
/// metadata failure); it stays failed across reloads until the admin clears it.
pub const CONFIG_FLAG_FAILED: u64 = 1;

/// Configuration flag: `redundancy 2`, every new remap gets a second copy on another
/// spare. A copy that holds any second copy has it set, so a reader that does not know
/// second copies refuses the copy (and the log records after it) rather than loading a
/// map without them.
pub const CONFIG_FLAG_REDUNDANCY: u64 = 2;

/// Known configuration flag bits; a copy with any other bit set is refused, so a
/// future feature that changes behaviour is never silently ignored.
pub const CONFIG_KNOWN_FLAGS: u64 = CONFIG_FLAG_FAILED | CONFIG_FLAG_REDUNDANCY;

/// Identity of the main device, checked on every load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// Size of the main device in sectors.
    pub main_sectors: u64,
    /// Logical block size of the main device.
    pub logical_block_bytes: u32,
    /// Physical block size of the main device.
    pub physical_block_bytes: u32,
    /// The device's own identifier, encoded as [`identity`] describes (kind, length,
    /// bytes); all zero when the kernel has none.
    pub identity: [u8; IDENTITY_LEN],
}

/// Configuration persisted with the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Remap block size in bytes.
    pub block_bytes: u32,
    /// Extra attempts of a failed read.
    pub read_retries: u32,
    /// Length of the target in sectors.
    pub target_sectors: u64,
    /// Feature flags ([`CONFIG_KNOWN_FLAGS`]).
    pub flags: u64,
    /// Seconds between scan passes (0: scanning off).
    pub scan_interval_s: u32,
    /// Scan rate limit in KiB/s (0: default).
    pub scan_rate_kibs: u32,
    /// Seconds per prediction sample (0: default).
    pub predict_interval_s: u32,
    /// Lowest alert level reported as a dm event (0: default).
    pub alert_min_level: u32,
}

/// One spare of the setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpareInfo {
    /// The spare's own UUID.
    pub uuid: [u8; 16],
    /// Size in sectors.
    pub sectors: u64,
    /// First sector of the data area.
    pub data_start: u64,
    /// Data blocks in the data area.
    pub data_blocks: u64,
    /// Role (0: data spare).
    pub role: u8,
    /// Allocation priority (lower first).
    pub priority: u8,
    /// State (0: active, 1: draining, 2: failed).
    pub state: u8,
    /// The spare device's logical block size in bytes (format 2; 0 in a format 1 copy,
    /// which did not record it).
    pub logical_block_bytes: u32,
}

/// Largest spare role value v1 knows.
pub const MAX_SPARE_ROLE: u8 = 0;
/// Largest spare state value v1 knows.
pub const MAX_SPARE_STATE: u8 = 2;
/// [`SpareInfo::state`] of a spare in use.
pub const SPARE_ACTIVE: u8 = 0;
/// [`SpareInfo::state`] of a spare being removed (`spare_remove`): nothing new is
/// allocated on it, its blocks move to the other spares, and once it holds none a load
/// whose table no longer names it drops it from the list ([`super::pool::removable`]).
pub const SPARE_DRAINING: u8 = 1;
/// [`SpareInfo::state`] of a spare that was lost (its device stopped answering while
/// other spares were active): nothing is allocated on it, no commit writes it, and every
/// sector of the blocks mapped to it counts as lost, whatever their lost-sector records
/// say (their reads fail until they are written again, on another spare).
/// `spare_remove` moves its entries off it without reading it, recording them lost
/// whole; a load whose table no longer names it then drops it from the list
/// ([`super::pool::removable`]).
pub const SPARE_FAILED: u8 = 2;

/// Where the background scan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanCheckpoint {
    /// Next block to scan.
    pub cursor_block: u64,
    /// Completed passes.
    pub passes: u64,
    /// Time the last pass ended (seconds since the epoch, 0: never).
    pub last_pass_end_s: u64,
}

/// Everything one copy holds, for encoding.
#[derive(Debug, Clone, Copy)]
pub struct State<'a> {
    /// Setup UUID, shared by every copy on every spare of the setup.
    pub uuid: [u8; 16],
    /// Commit counter.
    pub version: u64,
    /// Main-device fingerprint.
    pub fingerprint: Fingerprint,
    /// Configuration.
    pub config: Config,
    /// Spare list.
    pub spares: &'a [SpareInfo],
    /// Remap table, sorted by block. [`REMAPPED`] and [`PENDING`] entries are stored;
    /// `BUSY` and `FENCED` entries are in-memory only and skipped.
    pub entries: &'a [Entry],
    /// Scan checkpoint.
    pub scan: ScanCheckpoint,
}

/// Why a copy is not usable, one variant per check, in checking order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diagnosis {
    /// Reading the copy failed.
    ReadError,
    /// The copy's extent is all zeros (never written).
    Blank,
    /// The copy says it belongs at another sector (misdirected write or moved data).
    WrongLocation {
        /// The sector recorded in the copy.
        found: u64,
    },
    /// No dm-remap magic: not our data.
    BadMagic,
    /// A format version this code does not read.
    UnsupportedFormat {
        /// The version recorded in the copy.
        found: u32,
    },
    /// Header or total length out of range.
    BadLength,
    /// Header checksum mismatch.
    HeaderChecksum,
    /// Body checksum mismatch (torn or corrupted copy).
    BodyChecksum,
    /// A section's own checksum mismatch.
    SectionChecksum {
        /// The section type.
        kind: u16,
    },
    /// A section this version does not know and must understand.
    UnknownCriticalSection {
        /// The section type.
        kind: u16,
    },
    /// The copy belongs to another setup.
    ForeignSetup,
    /// Checksums match but a field is out of range or inconsistent.
    Malformed(Malformed),
    /// The copy's log records pass their checksums but do not replay to the state the
    /// last one records (found when the state is loaded from the copy; another current
    /// copy is used instead).
    LogReplay,
}

/// What is inconsistent in a copy whose checksums match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Sections overrun the copy or a section header is truncated.
    SectionBounds,
    /// A section of the copy's format version is missing, appears twice, or belongs
    /// to another version.
    SectionSet,
    /// A section is shorter than its fields or an array's length disagrees with its count.
    SectionLength,
    /// Reserved bytes are not zero.
    Reserved,
    /// Bad main-device block sizes.
    Fingerprint,
    /// Bad block size, retries or unknown feature flag.
    Config,
    /// More than [`MAX_SPARES`] spares, or a spare record with an unknown role or
    /// state or non-zero reserved bytes.
    Spares,
    /// Remap entries or runs not strictly increasing, overlapping, or a run shorter
    /// than two blocks or reaching beyond what a record can address.
    Remaps,
    /// Lost-sector records not strictly increasing, empty, or not for a remapped block.
    Lost,
    /// Pending blocks not strictly increasing, or also remapped.
    Pending,
    /// Second-copy records not strictly increasing, not for a remapped block, on the
    /// block's own spare, or present without [`CONFIG_FLAG_REDUNDANCY`].
    Mirrors,
}

impl Diagnosis {
    /// Short, stable text for logs and `remapctl`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReadError => "read error",
            Self::Blank => "blank (never written)",
            Self::WrongLocation { .. } => "wrong location",
            Self::BadMagic => "bad magic (not dm-remap metadata)",
            Self::UnsupportedFormat { .. } => "unsupported format version",
            Self::BadLength => "bad length",
            Self::HeaderChecksum => "header checksum mismatch",
            Self::BodyChecksum => "body checksum mismatch (torn or corrupt)",
            Self::SectionChecksum { .. } => "section checksum mismatch",
            Self::UnknownCriticalSection { .. } => "unknown critical section",
            Self::ForeignSetup => "belongs to another setup",
            Self::LogReplay => "log does not replay to the state it records",
            Self::Malformed(m) => m.as_str(),
        }
    }
}

impl Malformed {
    /// Short, stable text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SectionBounds => "malformed: section bounds",
            Self::SectionSet => "malformed: missing or repeated section",
            Self::SectionLength => "malformed: section length",
            Self::Reserved => "malformed: reserved bytes not zero",
            Self::Fingerprint => "malformed: fingerprint",
            Self::Config => "malformed: configuration",
            Self::Spares => "malformed: spare list",
            Self::Remaps => "malformed: remap entries",
            Self::Lost => "malformed: lost-sector records",
            Self::Pending => "malformed: pending blocks",
            Self::Mirrors => "malformed: second copies",
        }
    }
}

/// Why a state cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The encoded copy would exceed [`layout::COPY_MAX_BYTES`]: the map is full.
    TooLarge,
    /// The caller's buffer is smaller than the encoded copy.
    ShortBuffer,
    /// More than [`MAX_SPARES`] spares.
    TooManySpares,
    /// Entries not strictly sorted by block, or a field beyond what the format can
    /// store.
    BadEntry,
    /// The copy sector is not one of [`layout::COPY_SECTORS`].
    BadCopySector,
}

impl From<OutOfBounds> for EncodeError {
    fn from(_: OutOfBounds) -> Self {
        EncodeError::ShortBuffer
    }
}

/// Bytes of a section with a payload of `payload` bytes (header + padded payload).
const fn section_bytes(payload: usize) -> usize {
    SECTION_HEADER_LEN + payload.next_multiple_of(8)
}

/// What an entry list stores: remapped blocks grouped into singles and runs
/// ([`count`]), blocks with lost sectors, pending blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Remapped blocks whose neighbours are not on the neighbouring spare blocks.
    pub singles: usize,
    /// Runs of two or more neighbouring blocks on neighbouring blocks of one spare
    /// (at most [`MAX_RUN_LEN`] blocks each).
    pub runs: usize,
    /// Remapped blocks with lost sectors.
    pub lost: usize,
    /// Pending blocks.
    pub pending: usize,
    /// Remapped blocks with a second copy.
    pub mirrors: usize,
    /// Remapped blocks in all (singles and the blocks of every run).
    pub remapped: usize,
}

/// Whether `b` continues the run ending with `a`: the next block, on the next block of
/// the same spare, and the run not yet at [`MAX_RUN_LEN`] blocks (`len` so far).
pub fn continues(a: &Entry, b: &Entry, len: u64) -> bool {
    stores_remapped(a.state)
        && stores_remapped(b.state)
        && a.block.checked_add(1) == Some(b.block)
        && a.spare == b.spare
        && a.spare_block.checked_add(1) == Some(b.spare_block)
        && len < MAX_RUN_LEN
}

/// Counts what `entries` (sorted by block) store; `BUSY` and `FENCED` entries are not
/// stored.
pub fn count(entries: &[Entry]) -> Counts {
    let mut c = Counts::default();
    let mut run: Option<(Entry, u64)> = None;
    let close = |c: &mut Counts, run: Option<(Entry, u64)>| match run {
        Some((_, 1)) => c.singles += 1,
        Some(_) => c.runs += 1,
        None => {}
    };
    for e in entries {
        match e.state {
            REMAPPED | FENCED_MOVED => {
                c.remapped += 1;
                c.lost += usize::from(e.has_lost());
                c.mirrors += usize::from(e.has_mirror());
                run = match run {
                    Some((last, n)) if continues(&last, e, n) => Some((*e, n + 1)),
                    prev => {
                        close(&mut c, prev);
                        Some((*e, 1))
                    }
                };
            }
            PENDING => c.pending += 1,
            _ => {}
        }
    }
    close(&mut c, run);
    c
}

/// Number of bytes a copy with these counts encodes to (before rounding to a
/// sector), or `None` on overflow.
pub const fn encoded_len(spares: usize, c: &Counts) -> Option<usize> {
    let arrays = match (
        c.singles.checked_mul(REMAP_ENTRY_LEN),
        c.runs.checked_mul(RUN_ENTRY_LEN),
        c.lost.checked_mul(LOST_ENTRY_LEN),
        c.pending.checked_mul(PENDING_ENTRY_LEN),
        c.mirrors.checked_mul(MIRROR_ENTRY_LEN),
    ) {
        (Some(s), Some(r), Some(l), Some(p), Some(m)) => match s.checked_add(r) {
            Some(sr) => match sr.checked_add(l) {
                Some(srl) => match srl.checked_add(p) {
                    Some(srlp) => srlp.checked_add(m),
                    None => None,
                },
                None => None,
            },
            None => None,
        },
        _ => None,
    };
    let Some(arrays) = arrays else {
        return None;
    };
    let fixed = HEADER_LEN
        + section_bytes(FINGERPRINT_LEN)
        + section_bytes(CONFIG_LEN)
        + section_bytes(SCAN_LEN)
        + 4 * section_bytes(ARRAY_HEAD_LEN)
        + if c.runs > 0 {
            section_bytes(ARRAY_HEAD_LEN)
        } else {
            0
        }
        + if c.mirrors > 0 {
            section_bytes(ARRAY_HEAD_LEN)
        } else {
            0
        }
        + spares * SPARE_ENTRY_LEN;
    // Array payloads are multiples of 8 except singles (12 bytes each): pad.
    arrays.checked_add(fixed + 8)
}

/// Whether a copy with these counts fits the copy extent.
pub const fn fits(spares: usize, c: &Counts) -> bool {
    if c.remapped.saturating_add(c.pending) > MAX_BLOCKS {
        return false;
    }
    match encoded_len(spares, c) {
        Some(n) => n <= layout::COPY_MAX_BYTES,
        None => false,
    }
}

/// Whether `entries` (sorted by block; in-memory states included) plus `extra` new
/// remaps fit one copy of a pool of `spares` and the in-memory table. Blocks being
/// moved (`BUSY`) and the new ones count as singles: where they land decides whether
/// they join a run.
///
/// No entry encodes to more than a single remap with lost sectors and a second copy
/// (12 + 24 + 16 bytes; a block of a run takes at most 8 bytes of its run's entry, a
/// pending block 8): when the table fits with every entry at that size (and a run
/// section), it fits, and the table is not counted. That holds up to about 10,000
/// entries with one spare; the worker asks before every batch, and counting walks the
/// whole table. With `copies` 2 (`redundancy 2`) the blocks being moved and the new
/// ones count with a second copy.
pub fn fits_entries(spares: usize, entries: &[Entry], extra: usize, copies: u8) -> bool {
    let n = entries.len().saturating_add(extra);
    if n > MAX_BLOCKS {
        return false;
    }
    let largest = Counts {
        singles: n,
        runs: 1,
        lost: n,
        pending: 0,
        mirrors: n,
        remapped: n,
    };
    if fits(spares, &largest) {
        return true;
    }
    let mut c = count(entries);
    let busy = entries.iter().filter(|e| e.state == BUSY).count();
    c.singles = c.singles.saturating_add(busy).saturating_add(extra);
    if copies > 1 {
        c.mirrors = c.mirrors.saturating_add(busy).saturating_add(extra);
    }
    fits(spares, &c)
}

/// Length of an encoded copy of `len` bytes rounded up to the logical block size
/// `logical_block_bytes` of the device it is written to, so that every metadata I/O
/// is a whole number of logical blocks (a 4 KiB-sector disk fails smaller or
/// misaligned bios). `None` when the block size is not a power of two in
/// 512..=65536 or the padded copy would exceed [`layout::COPY_MAX_BYTES`]. The bytes
/// between `len` and the padded length are not part of the copy (decode reads
/// `total_len` bytes); writers zero them.
pub const fn padded_len(len: usize, logical_block_bytes: u32) -> Option<usize> {
    let lbs = logical_block_bytes as usize;
    if !lbs.is_power_of_two() || lbs < 512 || lbs > 65536 {
        return None;
    }
    match len.checked_next_multiple_of(lbs) {
        Some(n) if n <= layout::COPY_MAX_BYTES => Some(n),
        _ => None,
    }
}

/// Most remapped blocks one copy holds with one spare and no lost or pending records
/// when no two of them are neighbours (the worst case: every block a single).
pub const CAPACITY_ONE_SPARE: usize = capacity(1, REMAP_ENTRY_LEN);
/// The same with the full spare list.
pub const CAPACITY_FULL_SPARE_LIST: usize = capacity(MAX_SPARES, REMAP_ENTRY_LEN);
/// Most runs one copy holds with one spare and nothing else; each covers up to
/// [`MAX_RUN_LEN`] blocks.
pub const CAPACITY_RUNS_ONE_SPARE: usize = capacity(1, RUN_ENTRY_LEN);

/// Most remapped blocks one copy holds with two spares when every block has a second
/// copy (`redundancy 2`) and no two of them are neighbours.
pub const CAPACITY_MIRRORED_TWO_SPARES: usize = {
    let one = Counts {
        singles: 1,
        runs: 0,
        lost: 0,
        pending: 0,
        mirrors: 1,
        remapped: 1,
    };
    let each = REMAP_ENTRY_LEN + MIRROR_ENTRY_LEN;
    match encoded_len(2, &one) {
        Some(n) => (layout::COPY_MAX_BYTES - (n - each)) / each,
        None => 0,
    }
};

/// Most records of `entry` bytes one copy holds with `spares` spares and nothing else.
const fn capacity(spares: usize, entry: usize) -> usize {
    let runs = if entry == RUN_ENTRY_LEN { 1 } else { 0 };
    let Some(base) = encoded_len(
        spares,
        &Counts {
            singles: 0,
            runs,
            lost: 0,
            pending: 0,
            mirrors: 0,
            remapped: 0,
        },
    ) else {
        return 0;
    };
    (layout::COPY_MAX_BYTES - base + runs * entry) / entry
}

/// Iterator over a decoded copy's entries, one per block, merged in block order
/// ([`Decoded::entries`]).
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    ranges: Ranges<'a>,
    /// The range being expanded and how many of its blocks were returned.
    cur: Option<(Range, u64)>,
    lost: &'a [u8],
    pending: &'a [u8],
    mirrors: &'a [u8],
}

/// A remapped range: `len` blocks from `block` on spare blocks from `spare_block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First block (from the start of the target).
    pub block: u64,
    /// Number of blocks (1 for a single).
    pub len: u64,
    /// Index into the spare list.
    pub spare: u8,
    /// First data block on that spare.
    pub spare_block: u64,
}

/// Iterator over a decoded copy's remapped ranges (singles and runs merged in block
/// order, [`Decoded::ranges`]).
#[derive(Debug, Clone)]
pub struct Ranges<'a> {
    singles: &'a [u8],
    runs: &'a [u8],
}

/// Helper for callers building a state: the spare record of a device of `sectors`
/// with logical blocks of `lbs` bytes.
pub fn spare_info(
    uuid: [u8; 16],
    sectors: u64,
    lbs: u32,
    bs: BlockSize,
    priority: u8,
) -> SpareInfo {
    SpareInfo {
        uuid,
        sectors,
        data_start: layout::data_start(bs).0,
        data_blocks: layout::data_blocks(Sectors(sectors), bs).0,
        role: 0,
        priority,
        state: 0,
        logical_block_bytes: lbs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remap_table::FENCED;
    use proptest::prelude::*;

    /// `fits_entries` as it was before its shortcut: every table counted.
    fn fits_counted(spares: usize, entries: &[Entry], extra: usize, copies: u8) -> bool {
        let mut c = count(entries);
        let busy = entries.iter().filter(|e| e.state == BUSY).count();
        c.singles = c.singles.saturating_add(busy).saturating_add(extra);
        if copies > 1 {
            c.mirrors = c.mirrors.saturating_add(busy).saturating_add(extra);
        }
        entries.len().saturating_add(extra) <= MAX_BLOCKS && fits(spares, &c)
    }

    /// A table of `n` entries whose kinds follow `kinds` (cycled): 0 a single, 1 a
    /// block continuing a run, 2 a single with lost sectors, 3 pending, 4 busy, 5 fenced,
    /// 6 fenced while moving between spares (stored as remapped), 7 a single with a
    /// second copy and lost sectors.
    fn table(n: usize, kinds: &[u8]) -> Vec<Entry> {
        let mut v: Vec<Entry> = Vec::with_capacity(n);
        let mut spare_block = 0u64;
        for i in 0..n {
            let kind = kinds.get(i % kinds.len().max(1)).copied().unwrap_or(0);
            // Blocks two apart (no run) unless the entry continues one.
            let block = match v.last() {
                Some(p) if kind == 1 => p.block + 1,
                Some(p) => p.block + 2,
                None => 0,
            };
            spare_block += if kind == 1 { 1 } else { 2 };
            let mut e = Entry::remapped(block, 0, spare_block);
            match kind {
                2 => e.lost = [1, 0],
                3 => e = Entry::pending(block),
                4 => e.state = BUSY,
                5 => e.state = FENCED,
                6 => e.state = crate::remap_table::FENCED_MOVED,
                7 => {
                    e.lost = [1, 0];
                    e.mirror = 1;
                    e.mirror_block = spare_block;
                }
                _ => {}
            }
            v.push(e);
        }
        v
    }

    /// The most singles with lost sectors (and `runs` runs; each with a second copy
    /// when `mirrored`) whose counts fit a copy.
    fn most_lost_singles(spares: usize, runs: usize, mirrored: bool) -> usize {
        let counts = |n: usize| Counts {
            singles: n,
            runs,
            lost: n,
            pending: 0,
            mirrors: if mirrored { n } else { 0 },
            remapped: n,
        };
        (0..MAX_BLOCKS)
            .take_while(|&n| fits(spares, &counts(n)))
            .last()
            .unwrap_or(0)
    }

    #[test]
    fn fits_entries_at_the_edge_of_its_shortcut() {
        for (spares, copies) in [(1, 1), (16, 1), (2, 2), (16, 2)] {
            // The largest table the shortcut admits, every entry at its largest (a
            // single with lost sectors and a second copy).
            let edge = most_lost_singles(spares, 1, true);
            assert!(edge > 10_000, "{edge}");
            for n in [edge, edge + 1] {
                for kinds in [&[2u8][..], &[0], &[1, 1, 1, 2], &[3], &[4, 2], &[7]] {
                    let t = table(n, kinds);
                    assert_eq!(
                        fits_entries(spares, &t, 0, copies),
                        fits_counted(spares, &t, 0, copies),
                        "{spares} spares, {n} entries, kinds {kinds:?}"
                    );
                    // One more of the largest entries than the shortcut admits is
                    // more than the run section the edge left room for.
                    if n == edge || kinds != [7] {
                        assert!(
                            fits_entries(spares, &t, 0, copies),
                            "{n} entries fit a copy"
                        );
                    }
                }
            }
            // Beyond the shortcut the count decides: singles with lost sectors stop
            // fitting well before the table is full, pending blocks do not.
            let many_lost = table(edge * 2, &[2]);
            assert!(!fits_entries(spares, &many_lost, 0, 1));
            let many_pending = table(edge * 2, &[3]);
            assert!(fits_entries(spares, &many_pending, 0, 1));
        }
    }

    #[test]
    fn fits_entries_agrees_with_counting_near_the_largest_tables() {
        // Tables of the largest entries (singles with lost sectors; with new remaps
        // on top) around the size where they stop fitting: a shortcut that admitted
        // them with too small a bound, or without the new remaps, answers yes where
        // counting says no.
        for (spares, copies) in [(1, 1), (16, 1), (2, 2), (16, 2)] {
            // Counted, without building the tables.
            let edge = most_lost_singles(spares, 0, copies > 1);
            let kind: &[u8] = if copies > 1 { &[7] } else { &[2] };
            assert!(fits_counted(spares, &table(edge, kind), 0, copies));
            assert!(!fits_counted(spares, &table(edge + 1, kind), 0, copies));
            for n in (edge.saturating_sub(400)..edge + 800).step_by(5) {
                let t = table(n, kind);
                for extra in [0, 1, 7, 150] {
                    assert_eq!(
                        fits_entries(spares, &t, extra, copies),
                        fits_counted(spares, &t, extra, copies),
                        "{spares} spares, {n} entries, {extra} new"
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn fits_entries_agrees_with_counting(
            n in prop_oneof![0usize..70_000, 14_000usize..15_200, 43_000usize..66_000],
            kinds in proptest::collection::vec(0u8..8, 1..12),
            extra in 0usize..300,
            spares in 2usize..=16,
            copies in 1u8..=2,
        ) {
            let t = table(n, &kinds);
            prop_assert_eq!(fits_entries(spares, &t, extra, copies), fits_counted(spares, &t, extra, copies));
        }
    }

    #[test]
    fn padded_len_rounds_to_the_logical_block() {
        assert_eq!(padded_len(512, 512), Some(512));
        assert_eq!(padded_len(1024, 512), Some(1024));
        assert_eq!(padded_len(512, 4096), Some(4096));
        assert_eq!(padded_len(4096, 4096), Some(4096));
        assert_eq!(padded_len(4608, 4096), Some(8192));
        assert_eq!(padded_len(0, 4096), Some(0));
        assert_eq!(padded_len(1, 65536), Some(65536));
        let max = layout::COPY_MAX_BYTES;
        assert_eq!(padded_len(max, 4096), Some(max));
        assert_eq!(padded_len(max, 65536), Some(max));
        assert_eq!(padded_len(max - 511, 4096), Some(max));
        assert_eq!(padded_len(max + 1, 512), None);
        assert_eq!(padded_len(usize::MAX, 4096), None);
        for bad in [0, 256, 511, 513, 3000, 131072, u32::MAX] {
            assert_eq!(padded_len(512, bad), None, "{bad}");
        }
    }
}
