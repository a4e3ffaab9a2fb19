//! On-disk metadata format v1: encoding and validating one copy.
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
//! then the meaning of every field (sorting, ranges, cross references). A copy that
//! passes can be iterated without further errors. The setup UUID is checked by copy
//! selection ([`super::repair`]), which knows which setup it is looking for.

use super::crc;
use super::cursor::{OutOfBounds, Reader, Writer};
use super::layout;
use super::remap_table::{Entry, PENDING, REMAPPED};
use super::table_line::MAX_READ_RETRIES;
use super::units::{BlockSize, Sectors};

/// Magic bytes at offset 0 of every copy.
pub const MAGIC: [u8; 8] = *b"DMREMAP\x01";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the copy header.
pub const HEADER_LEN: usize = 128;
/// Size of a section header.
pub const SECTION_HEADER_LEN: usize = 16;
/// Most spares a setup may have.
pub const MAX_SPARES: usize = 16;
/// Bytes of the main device's identity string.
pub const IDENTITY_LEN: usize = 32;
/// Encoded size of one remap entry.
pub const REMAP_ENTRY_LEN: usize = 12;
/// Encoded size of one lost-sectors record.
pub const LOST_ENTRY_LEN: usize = 24;
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

/// Known configuration flag bits; a copy with any other bit set is refused, so a
/// future feature that changes behaviour is never silently ignored.
pub const CONFIG_KNOWN_FLAGS: u64 = CONFIG_FLAG_FAILED;

/// Identity of the main device, checked on every load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// Size of the main device in sectors.
    pub main_sectors: u64,
    /// Logical block size of the main device.
    pub logical_block_bytes: u32,
    /// Physical block size of the main device.
    pub physical_block_bytes: u32,
    /// Optional identity (serial, WWN, label), NUL-padded; all zero when unknown.
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
}

/// Largest spare role value v1 knows.
pub const MAX_SPARE_ROLE: u8 = 0;
/// Largest spare state value v1 knows.
pub const MAX_SPARE_STATE: u8 = 2;

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
    /// `BUSY` entries are in-memory only and skipped.
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
}

/// What is inconsistent in a copy whose checksums match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Sections overrun the copy or a section header is truncated.
    SectionBounds,
    /// A v1 section is missing or appears twice.
    SectionSet,
    /// A section is shorter than its fields or an array's length disagrees with its count.
    SectionLength,
    /// Reserved bytes are not zero.
    Reserved,
    /// Bad main-device block sizes.
    Fingerprint,
    /// Bad block size, retries, target length or unknown feature flag.
    Config,
    /// Too many spares, or a spare record out of range.
    Spares,
    /// Remap entries not strictly increasing or out of range.
    Remaps,
    /// Lost-sector records not matching remapped blocks.
    Lost,
    /// Pending blocks not sorted, out of range or also remapped.
    Pending,
    /// Scan checkpoint beyond the target.
    Scan,
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
            Self::Scan => "malformed: scan checkpoint",
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
    /// Entries not strictly sorted by block, or a field beyond what v1 can store.
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

/// Number of bytes a copy with these counts encodes to (before rounding to a
/// sector), or `None` on overflow.
pub const fn encoded_len(
    spares: usize,
    remaps: usize,
    lost: usize,
    pending: usize,
) -> Option<usize> {
    let arrays = match (
        remaps.checked_mul(REMAP_ENTRY_LEN),
        lost.checked_mul(LOST_ENTRY_LEN),
        pending.checked_mul(PENDING_ENTRY_LEN),
    ) {
        (Some(r), Some(l), Some(p)) => match r.checked_add(l) {
            Some(rl) => rl.checked_add(p),
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
        + spares * SPARE_ENTRY_LEN;
    // Array payloads are multiples of 8 except remaps (12 bytes each): pad.
    arrays.checked_add(fixed + 8)
}

/// Whether a copy with these counts fits the copy extent.
pub const fn fits(spares: usize, remaps: usize, lost: usize, pending: usize) -> bool {
    match encoded_len(spares, remaps, lost, pending) {
        Some(n) => n <= layout::COPY_MAX_BYTES,
        None => false,
    }
}

/// Most remap entries one copy holds with one spare and no lost or pending records.
pub const CAPACITY_ONE_SPARE: usize = capacity(1);
/// Most remap entries one copy holds with the full spare list.
pub const CAPACITY_FULL_SPARE_LIST: usize = capacity(MAX_SPARES);

const fn capacity(spares: usize) -> usize {
    let Some(base) = encoded_len(spares, 0, 0, 0) else {
        return 0;
    };
    (layout::COPY_MAX_BYTES - base) / REMAP_ENTRY_LEN
}

fn is_copy_sector(s: u64) -> bool {
    layout::COPY_SECTORS.contains(&s)
}

/// Counts of what a state stores.
fn count(entries: &[Entry]) -> (usize, usize, usize) {
    let (mut r, mut l, mut p) = (0usize, 0usize, 0usize);
    for e in entries {
        match e.state {
            REMAPPED => {
                r += 1;
                if e.has_lost() {
                    l += 1;
                }
            }
            PENDING => p += 1,
            _ => {}
        }
    }
    (r, l, p)
}

/// Writes one section: header, payload written by `f`, padding; then its checksum.
fn put_section(
    w: &mut Writer<'_>,
    kind: u16,
    payload_len: usize,
    f: impl FnOnce(&mut Writer<'_>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    w.u16(kind)?;
    w.u16(SECTION_CRITICAL)?;
    w.u32(u32::try_from(payload_len).map_err(|_| EncodeError::TooLarge)?)?;
    w.u32(0)?; // checksum, patched by `encode`
    w.u32(0)?;
    let start = w.pos();
    f(w)?;
    if w.pos() != start + payload_len {
        return Err(EncodeError::BadEntry);
    }
    w.zeros(payload_len.next_multiple_of(8) - payload_len)?;
    Ok(())
}

/// Encodes `st` as the copy for `copy_sector` into `buf`; returns the copy's length
/// in bytes (a multiple of 512; the rest of `buf` up to that length is written).
pub fn encode(st: &State<'_>, copy_sector: u64, buf: &mut [u8]) -> Result<usize, EncodeError> {
    if !is_copy_sector(copy_sector) {
        return Err(EncodeError::BadCopySector);
    }
    if st.spares.len() > MAX_SPARES {
        return Err(EncodeError::TooManySpares);
    }
    let (nr, nl, np) = count(st.entries);
    if !fits(st.spares.len(), nr, nl, np) {
        return Err(EncodeError::TooLarge);
    }
    let mut prev: Option<u64> = None;
    for e in st.entries {
        if prev.is_some_and(|p| p >= e.block) || e.block > MAX_ENTRY_BLOCK {
            return Err(EncodeError::BadEntry);
        }
        if e.state == REMAPPED && e.spare_block > MAX_SPARE_BLOCK {
            return Err(EncodeError::BadEntry);
        }
        prev = Some(e.block);
    }
    let body_len = {
        let mut w = Writer::new(buf);
        w.zeros(HEADER_LEN)?;
        put_section(&mut w, section::FINGERPRINT, FINGERPRINT_LEN, |w| {
            let f = &st.fingerprint;
            w.u64(f.main_sectors)?;
            w.u32(f.logical_block_bytes)?;
            w.u32(f.physical_block_bytes)?;
            w.bytes(&f.identity)?;
            Ok(())
        })?;
        put_section(&mut w, section::CONFIG, CONFIG_LEN, |w| {
            let c = &st.config;
            w.u32(c.block_bytes)?;
            w.u32(c.read_retries)?;
            w.u64(c.target_sectors)?;
            w.u64(c.flags)?;
            w.u32(c.scan_interval_s)?;
            w.u32(c.scan_rate_kibs)?;
            w.u32(c.predict_interval_s)?;
            w.u32(c.alert_min_level)?;
            w.zeros(CONFIG_LEN - 40)?;
            Ok(())
        })?;
        let spares_len = ARRAY_HEAD_LEN + st.spares.len() * SPARE_ENTRY_LEN;
        put_section(&mut w, section::SPARES, spares_len, |w| {
            w.u32(st.spares.len() as u32)?;
            w.u32(0)?;
            for s in st.spares {
                w.bytes(&s.uuid)?;
                w.u64(s.sectors)?;
                w.u64(s.data_start)?;
                w.u64(s.data_blocks)?;
                w.u8(s.role)?;
                w.u8(s.priority)?;
                w.u8(s.state)?;
                w.zeros(5)?;
            }
            Ok(())
        })?;
        put_section(
            &mut w,
            section::REMAPS,
            ARRAY_HEAD_LEN + nr * REMAP_ENTRY_LEN,
            |w| {
                w.u32(nr as u32)?;
                w.u32(0)?;
                for e in st.entries.iter().filter(|e| e.state == REMAPPED) {
                    w.uint(e.block, 6)?;
                    w.u8(e.spare)?;
                    w.uint(e.spare_block, 5)?;
                }
                Ok(())
            },
        )?;
        put_section(
            &mut w,
            section::LOST,
            ARRAY_HEAD_LEN + nl * LOST_ENTRY_LEN,
            |w| {
                w.u32(nl as u32)?;
                w.u32(0)?;
                for e in st
                    .entries
                    .iter()
                    .filter(|e| e.state == REMAPPED && e.has_lost())
                {
                    w.u64(e.block)?;
                    w.u64(e.lost[0])?;
                    w.u64(e.lost[1])?;
                }
                Ok(())
            },
        )?;
        put_section(
            &mut w,
            section::PENDING,
            ARRAY_HEAD_LEN + np * PENDING_ENTRY_LEN,
            |w| {
                w.u32(np as u32)?;
                w.u32(0)?;
                for e in st.entries.iter().filter(|e| e.state == PENDING) {
                    w.u64(e.block)?;
                }
                Ok(())
            },
        )?;
        put_section(&mut w, section::SCAN, SCAN_LEN, |w| {
            w.u64(st.scan.cursor_block)?;
            w.u64(st.scan.passes)?;
            w.u64(st.scan.last_pass_end_s)?;
            w.zeros(8)?;
            Ok(())
        })?;
        w.pos()
    };
    let total = body_len.next_multiple_of(512);
    if total > layout::COPY_MAX_BYTES {
        return Err(EncodeError::TooLarge);
    }
    buf.get_mut(body_len..total)
        .ok_or(EncodeError::ShortBuffer)?
        .fill(0);
    // Section checksums.
    let mut off = HEADER_LEN;
    for _ in 0..7 {
        let (kind, plen) = {
            let mut r = Reader::new(buf.get(off..).ok_or(EncodeError::ShortBuffer)?);
            let kind = r.u16()?;
            r.u16()?;
            (kind, r.u32()? as usize)
        };
        let p0 = off + SECTION_HEADER_LEN;
        let c = crc::salted(
            section_salt(kind),
            buf.get(p0..p0 + plen).ok_or(EncodeError::ShortBuffer)?,
        );
        buf.get_mut(off + 8..off + 12)
            .ok_or(EncodeError::ShortBuffer)?
            .copy_from_slice(&c.to_le_bytes());
        off = p0 + plen.next_multiple_of(8);
    }
    let body_crc = crc::salted(
        SALT_BODY,
        buf.get(HEADER_LEN..total).ok_or(EncodeError::ShortBuffer)?,
    );
    {
        let hdr = buf.get_mut(..HEADER_LEN).ok_or(EncodeError::ShortBuffer)?;
        let mut w = Writer::new(hdr);
        w.bytes(&MAGIC)?;
        w.u32(FORMAT_VERSION)?;
        w.u32(HEADER_LEN as u32)?;
        w.u32(total as u32)?;
        w.u32(7)?;
        w.bytes(&st.uuid)?;
        w.u64(copy_sector)?;
        w.u64(st.version)?;
        w.u32(body_crc)?;
        w.zeros(HEADER_LEN - 64)?;
    }
    set_copy_sector(buf, copy_sector)?;
    Ok(total)
}

/// Rewrites the copy sector of an encoded copy in `buf` (and its header checksum):
/// the five copies of one version differ only there.
pub fn set_copy_sector(buf: &mut [u8], copy_sector: u64) -> Result<(), EncodeError> {
    if !is_copy_sector(copy_sector) {
        return Err(EncodeError::BadCopySector);
    }
    let hdr = buf.get_mut(..HEADER_LEN).ok_or(EncodeError::ShortBuffer)?;
    hdr.get_mut(40..48)
        .ok_or(EncodeError::ShortBuffer)?
        .copy_from_slice(&copy_sector.to_le_bytes());
    let c = crc::salted(
        SALT_HEADER,
        hdr.get(..HEADER_LEN - 4).ok_or(EncodeError::ShortBuffer)?,
    );
    hdr.get_mut(HEADER_LEN - 4..)
        .ok_or(EncodeError::ShortBuffer)?
        .copy_from_slice(&c.to_le_bytes());
    Ok(())
}

/// A copy that passed every check; its fields and entries borrow the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    /// Setup UUID.
    pub uuid: [u8; 16],
    /// Commit counter.
    pub version: u64,
    /// Sector the copy was written for.
    pub copy_sector: u64,
    /// Encoded length in bytes.
    pub total_len: usize,
    /// Main-device fingerprint.
    pub fingerprint: Fingerprint,
    /// Configuration.
    pub config: Config,
    /// Scan checkpoint.
    pub scan: ScanCheckpoint,
    /// The sections (header and padding excluded), identical in every copy of a version.
    pub body: &'a [u8],
    spares: &'a [u8],
    remaps: &'a [u8],
    lost: &'a [u8],
    pending: &'a [u8],
}

fn malformed(m: Malformed) -> Diagnosis {
    Diagnosis::Malformed(m)
}

fn oob(m: Malformed) -> impl Fn(OutOfBounds) -> Diagnosis {
    move |_| Diagnosis::Malformed(m)
}

/// Decodes and validates the copy in `buf`, read from `at_sector`.
pub fn decode(buf: &[u8], at_sector: u64) -> Result<Decoded<'_>, Diagnosis> {
    if buf.iter().all(|&b| b == 0) {
        return Err(Diagnosis::Blank);
    }
    let mut h = Reader::new(buf);
    let bl = |_| Diagnosis::BadLength;
    // Location first: a copy written to (or copied from) another place is not this copy.
    let sector = {
        let mut r = Reader::new(buf);
        r.skip(40).map_err(bl)?;
        r.u64().map_err(bl)?
    };
    if sector != at_sector {
        return Err(Diagnosis::WrongLocation { found: sector });
    }
    if h.array::<8>().map_err(bl)? != MAGIC {
        return Err(Diagnosis::BadMagic);
    }
    let fv = h.u32().map_err(bl)?;
    if fv != FORMAT_VERSION {
        return Err(Diagnosis::UnsupportedFormat { found: fv });
    }
    let header_len = h.u32().map_err(bl)? as usize;
    let total = h.u32().map_err(bl)? as usize;
    let nsections = h.u32().map_err(bl)?;
    if header_len != HEADER_LEN
        || !(HEADER_LEN..=layout::COPY_MAX_BYTES).contains(&total)
        || total % 512 != 0
        || total > buf.len()
        || nsections > 64
    {
        return Err(Diagnosis::BadLength);
    }
    let uuid = h.array::<16>().map_err(bl)?;
    h.u64().map_err(bl)?; // copy sector, checked above
    let version = h.u64().map_err(bl)?;
    let body_crc = h.u32().map_err(bl)?;
    let reserved = h.bytes(HEADER_LEN - 64).map_err(bl)?;
    let header_crc = h.u32().map_err(bl)?;
    let hdr = buf.get(..HEADER_LEN - 4).ok_or(Diagnosis::BadLength)?;
    if crc::salted(SALT_HEADER, hdr) != header_crc {
        return Err(Diagnosis::HeaderChecksum);
    }
    let body = buf.get(HEADER_LEN..total).ok_or(Diagnosis::BadLength)?;
    if crc::salted(SALT_BODY, body) != body_crc {
        return Err(Diagnosis::BodyChecksum);
    }
    if reserved.iter().any(|&b| b != 0) {
        return Err(malformed(Malformed::Reserved));
    }

    // Sections.
    let mut found: [Option<&[u8]>; 8] = [None; 8];
    let mut r = Reader::new(body);
    for _ in 0..nsections {
        let sb = oob(Malformed::SectionBounds);
        let kind = r.u16().map_err(&sb)?;
        let flags = r.u16().map_err(&sb)?;
        let len = r.u32().map_err(&sb)? as usize;
        let c = r.u32().map_err(&sb)?;
        let res = r.u32().map_err(&sb)?;
        let payload = r.bytes(len).map_err(&sb)?;
        r.skip(len.next_multiple_of(8) - len).map_err(&sb)?;
        if crc::salted(section_salt(kind), payload) != c {
            return Err(Diagnosis::SectionChecksum { kind });
        }
        if res != 0 {
            return Err(malformed(Malformed::Reserved));
        }
        match found.get_mut(usize::from(kind)) {
            Some(slot) if kind != 0 => {
                if slot.is_some() {
                    return Err(malformed(Malformed::SectionSet));
                }
                *slot = Some(payload);
            }
            // Rule for future sections: unknown and critical → refuse the copy;
            // unknown and not critical → skip it.
            _ if flags & SECTION_CRITICAL != 0 => {
                return Err(Diagnosis::UnknownCriticalSection { kind });
            }
            _ => {}
        }
    }
    // Anything after the last section up to the total length is padding, zero.
    if r.bytes(r.remaining())
        .map_err(oob(Malformed::SectionBounds))?
        .iter()
        .any(|&b| b != 0)
    {
        return Err(malformed(Malformed::Reserved));
    }
    let get = |k: u16| -> Result<&[u8], Diagnosis> {
        found
            .get(usize::from(k))
            .copied()
            .flatten()
            .ok_or(malformed(Malformed::SectionSet))
    };
    let (fp_b, cfg_b, sp_b, rm_b, lo_b, pe_b, sc_b) = (
        get(section::FINGERPRINT)?,
        get(section::CONFIG)?,
        get(section::SPARES)?,
        get(section::REMAPS)?,
        get(section::LOST)?,
        get(section::PENDING)?,
        get(section::SCAN)?,
    );

    // Fixed sections may be longer than v1 knows: bytes past v1's fields are ignored.
    let fingerprint = {
        let mut r = Reader::new(fp_b);
        let e = oob(Malformed::SectionLength);
        Fingerprint {
            main_sectors: r.u64().map_err(&e)?,
            logical_block_bytes: r.u32().map_err(&e)?,
            physical_block_bytes: r.u32().map_err(&e)?,
            identity: r.array().map_err(&e)?,
        }
    };
    let bs_ok = |v: u32| v.is_power_of_two() && (512..=65536).contains(&v);
    if !bs_ok(fingerprint.logical_block_bytes)
        || !bs_ok(fingerprint.physical_block_bytes)
        || fingerprint.main_sectors == 0
    {
        return Err(malformed(Malformed::Fingerprint));
    }
    let config = {
        let mut r = Reader::new(cfg_b);
        let e = oob(Malformed::SectionLength);
        let c = Config {
            block_bytes: r.u32().map_err(&e)?,
            read_retries: r.u32().map_err(&e)?,
            target_sectors: r.u64().map_err(&e)?,
            flags: r.u64().map_err(&e)?,
            scan_interval_s: r.u32().map_err(&e)?,
            scan_rate_kibs: r.u32().map_err(&e)?,
            predict_interval_s: r.u32().map_err(&e)?,
            alert_min_level: r.u32().map_err(&e)?,
        };
        if r.bytes(CONFIG_LEN - 40)
            .map_err(&e)?
            .iter()
            .any(|&b| b != 0)
        {
            return Err(malformed(Malformed::Reserved));
        }
        c
    };
    let bs = BlockSize::from_bytes(u64::from(config.block_bytes))
        .map_err(|_| malformed(Malformed::Config))?;
    let target_blocks = bs.whole_blocks(Sectors(config.target_sectors)).0;
    if config.read_retries > u32::from(MAX_READ_RETRIES)
        || config.flags & !CONFIG_KNOWN_FLAGS != 0
        || config.target_sectors == 0
        || !bs.is_aligned(Sectors(config.target_sectors))
        || config.target_sectors > fingerprint.main_sectors
    {
        return Err(malformed(Malformed::Config));
    }
    let scan = {
        let mut r = Reader::new(sc_b);
        let e = oob(Malformed::SectionLength);
        ScanCheckpoint {
            cursor_block: r.u64().map_err(&e)?,
            passes: r.u64().map_err(&e)?,
            last_pass_end_s: r.u64().map_err(&e)?,
        }
    };
    if scan.cursor_block > target_blocks {
        return Err(malformed(Malformed::Scan));
    }

    let spares = array(sp_b, SPARE_ENTRY_LEN)?;
    let nspares = spares.len() / SPARE_ENTRY_LEN;
    if nspares > MAX_SPARES || nspares == 0 {
        return Err(malformed(Malformed::Spares));
    }
    let mut spare_blocks = [0u64; MAX_SPARES];
    for (i, rec) in spares.chunks_exact(SPARE_ENTRY_LEN).enumerate() {
        let s = spare_record(rec).map_err(|_| malformed(Malformed::Spares))?;
        let start = layout::data_start(bs).0;
        if s.data_start != start
            || s.data_blocks != layout::data_blocks(Sectors(s.sectors), bs).0
            || s.data_blocks == 0
            || s.role > MAX_SPARE_ROLE
            || s.state > MAX_SPARE_STATE
        {
            return Err(malformed(Malformed::Spares));
        }
        if let Some(slot) = spare_blocks.get_mut(i) {
            *slot = s.data_blocks;
        }
    }

    let remaps = array(rm_b, REMAP_ENTRY_LEN)?;
    let lost = array(lo_b, LOST_ENTRY_LEN)?;
    let pending = array(pe_b, PENDING_ENTRY_LEN)?;
    let d = Decoded {
        uuid,
        version,
        copy_sector: sector,
        total_len: total,
        fingerprint,
        config,
        scan,
        body,
        spares,
        remaps,
        lost,
        pending,
    };
    // Remaps: strictly increasing, in range, spare known.
    let mut prev: Option<u64> = None;
    for e in d.remap_iter() {
        let e = e.map_err(|_| malformed(Malformed::Remaps))?;
        let limit = spare_blocks.get(usize::from(e.spare)).copied().unwrap_or(0);
        if prev.is_some_and(|p| p >= e.block)
            || e.block >= target_blocks
            || usize::from(e.spare) >= nspares
            || e.spare_block >= limit
        {
            return Err(malformed(Malformed::Remaps));
        }
        prev = Some(e.block);
    }
    // Lost records: strictly increasing, each for a remapped block, mask within the block.
    let spb = bs.sectors();
    let valid_mask: [u64; 2] = match spb {
        128 => [u64::MAX, u64::MAX],
        64 => [u64::MAX, 0],
        n => [(1u64 << n) - 1, 0],
    };
    let mut prev: Option<u64> = None;
    let mut remaps_it = d.remap_iter().peekable();
    for rec in lost.chunks_exact(LOST_ENTRY_LEN) {
        let (b, m) = lost_record(rec).map_err(|_| malformed(Malformed::Lost))?;
        if prev.is_some_and(|p| p >= b)
            || m == [0, 0]
            || m[0] & !valid_mask[0] != 0
            || m[1] & !valid_mask[1] != 0
        {
            return Err(malformed(Malformed::Lost));
        }
        while remaps_it
            .peek()
            .is_some_and(|e| e.is_ok_and(|e| e.block < b))
        {
            remaps_it.next();
        }
        if !remaps_it
            .peek()
            .is_some_and(|e| e.is_ok_and(|e| e.block == b))
        {
            return Err(malformed(Malformed::Lost));
        }
        prev = Some(b);
    }
    // Pending: strictly increasing, in range, not remapped.
    let mut prev: Option<u64> = None;
    let mut remaps_it = d.remap_iter().peekable();
    for rec in pending.chunks_exact(PENDING_ENTRY_LEN) {
        let b = Reader::new(rec).u64().map_err(oob(Malformed::Pending))?;
        if prev.is_some_and(|p| p >= b) || b >= target_blocks {
            return Err(malformed(Malformed::Pending));
        }
        while remaps_it
            .peek()
            .is_some_and(|e| e.is_ok_and(|e| e.block < b))
        {
            remaps_it.next();
        }
        if remaps_it
            .peek()
            .is_some_and(|e| e.is_ok_and(|e| e.block == b))
        {
            return Err(malformed(Malformed::Pending));
        }
        prev = Some(b);
    }
    Ok(d)
}

/// The entries of an array section (after its count), checking the length.
fn array(payload: &[u8], entry_len: usize) -> Result<&[u8], Diagnosis> {
    let mut r = Reader::new(payload);
    let e = oob(Malformed::SectionLength);
    let n = r.u32().map_err(&e)? as usize;
    if r.u32().map_err(&e)? != 0 {
        return Err(malformed(Malformed::Reserved));
    }
    let len = n
        .checked_mul(entry_len)
        .ok_or(malformed(Malformed::SectionLength))?;
    if r.remaining() != len {
        return Err(malformed(Malformed::SectionLength));
    }
    r.bytes(len).map_err(e)
}

fn spare_record(rec: &[u8]) -> Result<SpareInfo, OutOfBounds> {
    let mut r = Reader::new(rec);
    let s = SpareInfo {
        uuid: r.array()?,
        sectors: r.u64()?,
        data_start: r.u64()?,
        data_blocks: r.u64()?,
        role: r.u8()?,
        priority: r.u8()?,
        state: r.u8()?,
    };
    if r.bytes(5)?.iter().any(|&b| b != 0) {
        return Err(OutOfBounds);
    }
    Ok(s)
}

fn remap_record(rec: &[u8]) -> Result<Entry, OutOfBounds> {
    let mut r = Reader::new(rec);
    let block = r.uint(6)?;
    let spare = r.u8()?;
    let spare_block = r.uint(5)?;
    Ok(Entry::remapped(block, spare, spare_block))
}

fn lost_record(rec: &[u8]) -> Result<(u64, [u64; 2]), OutOfBounds> {
    let mut r = Reader::new(rec);
    Ok((r.u64()?, [r.u64()?, r.u64()?]))
}

impl<'a> Decoded<'a> {
    /// Number of spares.
    pub fn spare_count(&self) -> usize {
        self.spares.len() / SPARE_ENTRY_LEN
    }

    /// Spare `i` of the list.
    pub fn spare(&self, i: usize) -> Option<SpareInfo> {
        let start = i.checked_mul(SPARE_ENTRY_LEN)?;
        let rec = self
            .spares
            .get(start..start.checked_add(SPARE_ENTRY_LEN)?)?;
        spare_record(rec).ok()
    }

    /// Numbers of remapped, lost-sector and pending records.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.remaps.len() / REMAP_ENTRY_LEN,
            self.lost.len() / LOST_ENTRY_LEN,
            self.pending.len() / PENDING_ENTRY_LEN,
        )
    }

    /// The block size.
    pub fn block_size(&self) -> Option<BlockSize> {
        BlockSize::from_bytes(u64::from(self.config.block_bytes)).ok()
    }

    fn remap_iter(&self) -> impl Iterator<Item = Result<Entry, OutOfBounds>> + 'a {
        self.remaps.chunks_exact(REMAP_ENTRY_LEN).map(remap_record)
    }

    /// Every entry (remapped with its lost sectors, and pending), sorted by block.
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            remaps: self.remaps,
            lost: self.lost,
            pending: self.pending,
        }
    }
}

/// Iterator over a decoded copy's entries, merged in block order.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    remaps: &'a [u8],
    lost: &'a [u8],
    pending: &'a [u8],
}

impl Iterator for Entries<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let r = self
            .remaps
            .get(..REMAP_ENTRY_LEN)
            .and_then(|b| remap_record(b).ok());
        let p = self
            .pending
            .get(..PENDING_ENTRY_LEN)
            .and_then(|b| Reader::new(b).u64().ok());
        match (r, p) {
            (Some(mut e), p) if p.is_none_or(|p| e.block < p) => {
                self.remaps = self.remaps.get(REMAP_ENTRY_LEN..).unwrap_or(&[]);
                if let Some((b, m)) = self
                    .lost
                    .get(..LOST_ENTRY_LEN)
                    .and_then(|b| lost_record(b).ok())
                {
                    if b == e.block {
                        e.lost = m;
                        self.lost = self.lost.get(LOST_ENTRY_LEN..).unwrap_or(&[]);
                    }
                }
                Some(e)
            }
            (_, Some(p)) => {
                self.pending = self.pending.get(PENDING_ENTRY_LEN..).unwrap_or(&[]);
                Some(Entry::pending(p))
            }
            (None, None) => None,
            (Some(_), None) => None,
        }
    }
}

/// Helper for callers building a state: the spare record of a device of `sectors`.
pub fn spare_info(uuid: [u8; 16], sectors: u64, bs: BlockSize, priority: u8) -> SpareInfo {
    SpareInfo {
        uuid,
        sectors,
        data_start: layout::data_start(bs).0,
        data_blocks: layout::data_blocks(Sectors(sectors), bs).0,
        role: 0,
        priority,
        state: 0,
    }
}
