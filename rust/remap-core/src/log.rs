//! The commit log: records appended after a copy's base (format 2).
//!
//! A copy's extent holds a base — a whole copy as [`super::meta`] encodes it — and,
//! after it, records of the commits since that base, each one the changes of one
//! commit. A commit appends one record to each copy (one logical block of the spare
//! for a few changes) instead of rewriting the whole map; when a copy's log is full, or
//! holds [`MAX_RECORDS`] records, or the commit changes more than a record holds or
//! anything but the map and the scan checkpoint, the commit writes a new base there
//! instead. `Documentation/on-disk-format.md` §8 is the reference.
//!
//! Records start at multiples of the spare's logical block size (the record that
//! follows a base starts at the base's length rounded up to it), so appending one
//! never rewrites a block that holds an earlier record or the base: a torn append
//! damages only the record being written, which then fails its checksum, and the copy
//! reads as its previous version. A record names the base it follows (the base's
//! header checksum) and the version it applies to: records left beyond the end of the
//! log by an earlier base or an earlier commit never chain onto the current one.
//!
//! Every record carries the checksum the state it produces has as a base
//! ([`Decoded::body_crc`] of its encoding): selection compares copies by it, and a
//! reader that replays a log checks that the state it rebuilt encodes to it.

use super::crc;
use super::cursor::{Reader, Writer};
use super::meta::{self, Decoded, EncodeError, ScanCheckpoint};
use super::remap_table::{
    stores_remapped, Entry, FENCED_MOVED, NO_MIRROR, PENDING, REMAPPED, REMOVE,
};

/// Magic bytes at the start of every record.
pub const RECORD_MAGIC: [u8; 8] = *b"DMRLOG02";
/// Size of a record header.
pub const RECORD_HEADER_LEN: usize = 48;
/// Bytes of the scan checkpoint at the start of a record's payload.
const SCAN_LEN: usize = 24;
/// Size of one change.
pub const CHANGE_LEN: usize = 40;
/// Salt of a record's checksum.
pub const SALT_RECORD: u32 = 0x5244_4c47;
/// Largest record, header included (before padding).
pub const MAX_RECORD_BYTES: usize = 65536;
/// Most changes one record holds.
pub const MAX_CHANGES: usize = (MAX_RECORD_BYTES - RECORD_HEADER_LEN - SCAN_LEN) / CHANGE_LEN;
/// Most records a copy's log holds before the next commit writes a new base there
/// (bounds the work of replaying a log when the table is loaded).
pub const MAX_RECORDS: usize = 64;

/// Where a copy's log starts: its base's length rounded up to the spare's logical
/// block size, and that size (records start at its multiples). `None` for a copy
/// that has no log: format 1, or a spare record without a block size.
pub fn log_start(base: &Decoded<'_>) -> Option<(usize, usize)> {
    if base.format_version == meta::FORMAT_V1 {
        return None;
    }
    let align = (0..base.spare_count())
        .filter_map(|i| base.spare(i))
        .find(|s| s.uuid == base.spare_uuid)?
        .logical_block_bytes;
    let start = meta::padded_len(base.total_len, align)?;
    Some((start, align as usize))
}

/// One record of a log.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The version the record makes.
    pub version: u64,
    /// The version it applies to.
    pub prev: u64,
    /// [`Decoded::body_crc`] of the state it makes.
    pub state_crc: u32,
    /// The scan checkpoint of that state.
    pub scan: ScanCheckpoint,
    /// Offset of the record in the copy's extent.
    pub at: usize,
    changes: &'a [u8],
}

impl<'a> Record<'a> {
    /// The changes, sorted by block: the new entry of each block that changed, with
    /// state [`REMOVE`] for a block that is neither remapped nor pending any more.
    pub fn changes(&self) -> impl Iterator<Item = Entry> + 'a {
        self.changes
            .chunks_exact(CHANGE_LEN)
            .filter_map(|c| change(c).ok())
    }

    /// Number of changes.
    pub fn change_count(&self) -> usize {
        self.changes.len() / CHANGE_LEN
    }
}

/// The valid records of a copy's log, in order ([`records`]); iteration stops at the
/// first byte range that is not the next record of this base.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    extent: &'a [u8],
    off: usize,
    align: usize,
    base_crc: u32,
    version: u64,
    count: usize,
}

/// The log of the copy whose extent is `extent` and whose base decoded to `base`.
pub fn records<'a>(extent: &'a [u8], base: &Decoded<'_>) -> Records<'a> {
    let (off, align) = log_start(base).unwrap_or((extent.len(), 512));
    Records {
        extent,
        off,
        align,
        base_crc: base.header_crc,
        version: base.version,
        count: 0,
    }
}

impl Records<'_> {
    /// Where the next record goes (valid once iteration has ended).
    pub fn tail(&self) -> usize {
        self.off
    }

    /// The version the copy holds after the records returned so far.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Records returned so far.
    pub fn record_count(&self) -> usize {
        self.count
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.count >= MAX_RECORDS {
            return None;
        }
        let rest = self.extent.get(self.off..)?;
        let rec = parse(rest, self.base_crc, self.version).ok()?;
        let len = rec.0;
        let mut r = rec.1;
        r.at = self.off;
        self.off = self
            .off
            .checked_add(len.checked_next_multiple_of(self.align)?)?;
        self.version = r.version;
        self.count += 1;
        Some(r)
    }
}

/// Why bytes are not the next record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NotARecord;

impl From<super::cursor::OutOfBounds> for NotARecord {
    fn from(_: super::cursor::OutOfBounds) -> Self {
        NotARecord
    }
}

/// Parses the record at the start of `b` that follows version `prev` of the base
/// whose header checksum is `base_crc`; returns its length and the record.
fn parse(b: &[u8], base_crc: u32, prev: u64) -> Result<(usize, Record<'_>), NotARecord> {
    let mut r = Reader::new(b);
    if r.array::<8>()? != RECORD_MAGIC {
        return Err(NotARecord);
    }
    let len = r.u32()? as usize;
    let count = r.u32()? as usize;
    let version = r.u64()?;
    let rec_prev = r.u64()?;
    let rec_base = r.u32()?;
    let state_crc = r.u32()?;
    let reserved = r.u32()?;
    let sum = r.u32()?;
    if count > MAX_CHANGES || len != RECORD_HEADER_LEN + SCAN_LEN + count * CHANGE_LEN {
        return Err(NotARecord);
    }
    let head = b.get(..RECORD_HEADER_LEN - 4).ok_or(NotARecord)?;
    let payload = b.get(RECORD_HEADER_LEN..len).ok_or(NotARecord)?;
    if crc::salted_parts(SALT_RECORD, &[head, payload]) != sum {
        return Err(NotARecord);
    }
    if reserved != 0 || rec_base != base_crc || rec_prev != prev || version <= prev {
        return Err(NotARecord);
    }
    let mut p = Reader::new(payload);
    let scan = ScanCheckpoint {
        cursor_block: p.u64()?,
        passes: p.u64()?,
        last_pass_end_s: p.u64()?,
    };
    let changes = p.bytes(count * CHANGE_LEN)?;
    // Each change well formed, blocks strictly increasing.
    let mut last: Option<u64> = None;
    for c in changes.chunks_exact(CHANGE_LEN) {
        let e = change(c)?;
        if last.is_some_and(|l| l >= e.block) {
            return Err(NotARecord);
        }
        last = Some(e.block);
    }
    Ok((
        len,
        Record {
            version,
            prev,
            state_crc,
            scan,
            at: 0,
            changes,
        },
    ))
}

fn change(c: &[u8]) -> Result<Entry, NotARecord> {
    let mut r = Reader::new(c);
    let block = r.u64()?;
    let state = r.u8()?;
    let spare = r.u8()?;
    // The second copy: its spare plus one (0: none), then its block (40 bits).
    let mirror = r.u8()?.wrapping_sub(1);
    let mirror_block = r.uint(5)?;
    let spare_block = r.u64()?;
    let lost = [r.u64()?, r.u64()?];
    let e = Entry {
        block,
        state,
        spare,
        spare_block,
        lost,
        mirror,
        mirror_block,
    };
    let one_copy = mirror == NO_MIRROR && mirror_block == 0;
    let plain = spare == 0 && spare_block == 0 && lost == [0, 0] && one_copy;
    match state {
        REMAPPED
            if block <= meta::MAX_ENTRY_BLOCK
                && spare_block <= meta::MAX_SPARE_BLOCK
                && (one_copy || (mirror != NO_MIRROR && mirror != spare)) =>
        {
            Ok(e)
        }
        REMOVE | PENDING if plain => Ok(e),
        _ => Err(NotARecord),
    }
}

/// What a record says besides its changes.
#[derive(Debug, Clone, Copy)]
pub struct RecordHead {
    /// The version the record makes.
    pub version: u64,
    /// The version it applies to.
    pub prev: u64,
    /// Header checksum of the base it follows ([`set_record_base`] changes it).
    pub base_crc: u32,
    /// [`Decoded::body_crc`] of the state it makes.
    pub state_crc: u32,
    /// The scan checkpoint of that state.
    pub scan: ScanCheckpoint,
}

/// Encodes a record with `changes` (sorted by block, [`REMOVE`] for removed blocks)
/// into `buf`, padded with zeros to a multiple of `align`; returns the padded length.
pub fn encode_record(
    buf: &mut [u8],
    head: &RecordHead,
    changes: impl Iterator<Item = Entry>,
    align: usize,
) -> Result<usize, EncodeError> {
    // The changes first, in one pass over them (a diff against a large map is the
    // costly part of a commit), then the header that counts them.
    let start = RECORD_HEADER_LEN + SCAN_LEN;
    let mut count = 0usize;
    {
        let mut w = Writer::new(buf.get_mut(start..).ok_or(EncodeError::ShortBuffer)?);
        let mut last: Option<u64> = None;
        for e in changes {
            if count == MAX_CHANGES {
                return Err(EncodeError::TooLarge);
            }
            let ok = match e.state {
                REMAPPED => {
                    e.block <= meta::MAX_ENTRY_BLOCK
                        && e.spare_block <= meta::MAX_SPARE_BLOCK
                        && (!e.has_mirror()
                            || (e.mirror != e.spare && e.mirror_block <= meta::MAX_SPARE_BLOCK))
                }
                REMOVE | PENDING => true,
                _ => false,
            };
            if !ok || last.is_some_and(|l| l >= e.block) {
                return Err(EncodeError::BadEntry);
            }
            last = Some(e.block);
            let remapped = e.state == REMAPPED;
            w.u64(e.block)?;
            w.u8(e.state)?;
            w.u8(if remapped { e.spare } else { 0 })?;
            let mirrored = remapped && e.has_mirror();
            w.u8(if mirrored {
                e.mirror.wrapping_add(1)
            } else {
                0
            })?;
            w.uint(if mirrored { e.mirror_block } else { 0 }, 5)?;
            w.u64(if remapped { e.spare_block } else { 0 })?;
            let lost = if remapped { e.lost } else { [0, 0] };
            w.u64(lost[0])?;
            w.u64(lost[1])?;
            count += 1;
        }
    }
    let len = start + count * CHANGE_LEN;
    let padded = len
        .checked_next_multiple_of(align)
        .ok_or(EncodeError::TooLarge)?;
    let out = buf.get_mut(..padded).ok_or(EncodeError::ShortBuffer)?;
    {
        let mut w = Writer::new(out.get_mut(..start).ok_or(EncodeError::ShortBuffer)?);
        w.bytes(&RECORD_MAGIC)?;
        w.u32(len as u32)?;
        w.u32(count as u32)?;
        w.u64(head.version)?;
        w.u64(head.prev)?;
        w.u32(head.base_crc)?;
        w.u32(head.state_crc)?;
        w.u32(0)?;
        w.u32(0)?; // checksum, set by `set_record_base`
        w.u64(head.scan.cursor_block)?;
        w.u64(head.scan.passes)?;
        w.u64(head.scan.last_pass_end_s)?;
    }
    out.get_mut(len..).ok_or(EncodeError::ShortBuffer)?.fill(0);
    set_record_base(out, head.base_crc, head.prev)?;
    Ok(padded)
}

/// Sets the base a record follows (the base's header checksum differs from copy to
/// copy) and the version it applies to, and recomputes the record's checksum.
pub fn set_record_base(rec: &mut [u8], base_crc: u32, prev: u64) -> Result<(), EncodeError> {
    let len = {
        let mut r = Reader::new(rec);
        r.skip(8)?;
        r.u32()? as usize
    };
    rec.get_mut(24..32)
        .ok_or(EncodeError::ShortBuffer)?
        .copy_from_slice(&prev.to_le_bytes());
    rec.get_mut(32..36)
        .ok_or(EncodeError::ShortBuffer)?
        .copy_from_slice(&base_crc.to_le_bytes());
    let sum = {
        let head = rec
            .get(..RECORD_HEADER_LEN - 4)
            .ok_or(EncodeError::ShortBuffer)?;
        let payload = rec
            .get(RECORD_HEADER_LEN..len)
            .ok_or(EncodeError::ShortBuffer)?;
        crc::salted_parts(SALT_RECORD, &[head, payload])
    };
    rec.get_mut(RECORD_HEADER_LEN - 4..RECORD_HEADER_LEN)
        .ok_or(EncodeError::ShortBuffer)?
        .copy_from_slice(&sum.to_le_bytes());
    Ok(())
}

/// Whether an entry is part of the stored state (`BUSY` and `FENCED` entries are in
/// memory only; a `FENCED_MOVED` entry is stored as remapped, see [`as_stored`]).
fn stored(e: &&Entry) -> bool {
    stores_remapped(e.state) || e.state == PENDING
}

/// A stored entry as the state stores it (`FENCED_MOVED` as [`REMAPPED`]).
fn as_stored(e: Entry) -> Entry {
    if e.state == FENCED_MOVED {
        Entry {
            state: REMAPPED,
            ..e
        }
    } else {
        e
    }
}

/// The changes from the stored state `old` to `new` (both sorted by block; `BUSY` and
/// `FENCED` entries of `new` are not stored, so such a block is removed).
pub fn diff<'a, I>(old: I, new: &'a [Entry]) -> Diff<'a, I>
where
    I: Iterator<Item = Entry> + Clone,
{
    Diff {
        old: old.peekable(),
        new: new.iter().filter(stored as fn(&&Entry) -> bool).peekable(),
    }
}

/// The stored entries of a new state ([`diff`]).
type Stored<'a> = core::iter::Filter<core::slice::Iter<'a, Entry>, fn(&&Entry) -> bool>;

/// Iterator of [`diff`].
#[derive(Clone)]
pub struct Diff<'a, I: Iterator<Item = Entry>> {
    old: core::iter::Peekable<I>,
    new: core::iter::Peekable<Stored<'a>>,
}

impl<I: Iterator<Item = Entry> + Clone> Iterator for Diff<'_, I> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        loop {
            let o = self.old.peek().copied();
            let n = self.new.peek().map(|e| as_stored(**e));
            match (o, n) {
                (None, None) => return None,
                (Some(o), n) if n.is_none_or(|n| o.block < n.block) => {
                    self.old.next();
                    return Some(Entry {
                        block: o.block,
                        ..Entry::default()
                    });
                }
                (o, Some(n)) if o.is_none_or(|o| n.block < o.block) => {
                    self.new.next();
                    return Some(n);
                }
                (Some(o), Some(n)) => {
                    self.old.next();
                    self.new.next();
                    if o != n {
                        return Some(n);
                    }
                }
                // Unreachable: the arms above cover every pair.
                _ => return None,
            }
        }
    }
}

/// `old` (sorted by block) with `changes` (sorted, [`REMOVE`] for removals) applied.
pub fn apply<'a, I, C>(old: I, changes: C) -> impl Iterator<Item = Entry> + 'a
where
    I: Iterator<Item = Entry> + 'a,
    C: Iterator<Item = Entry> + 'a,
{
    let mut old = old.peekable();
    let mut changes = changes.peekable();
    core::iter::from_fn(move || loop {
        let o = old.peek().copied();
        let c = changes.peek().copied();
        match (o, c) {
            (None, None) => return None,
            (Some(o), c) if c.is_none_or(|c| o.block < c.block) => {
                old.next();
                return Some(o);
            }
            (o, Some(c)) => {
                if o.is_some_and(|o| o.block == c.block) {
                    old.next();
                }
                changes.next();
                if c.state != REMOVE {
                    return Some(c);
                }
            }
            // Unreachable: the arms above cover every pair.
            _ => return None,
        }
    })
}

/// Where a copy's log ends, for the next record ([`super::repair::Selection::Load`]
/// reports it for each copy that holds the loaded state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEnd {
    /// Offset of the next record in the copy's extent.
    pub tail: usize,
    /// Header checksum of the copy's base (records name it).
    pub base_crc: u32,
    /// Records the log holds.
    pub records: usize,
    /// The version the copy holds.
    pub version: u64,
    /// [`Decoded::body_crc`] of the state it holds: a record may only be appended to a
    /// copy that holds the very state the record's changes apply to.
    pub state_crc: u32,
}

/// What a commit writes to one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyWrite {
    /// The record, at this offset of the copy's extent.
    Append {
        /// Offset (a multiple of the spare's logical block size).
        offset: usize,
    },
    /// A new base (the whole state), at the start of the extent.
    Base,
}

/// How a commit updates a copy whose log ends at `end` (`None`: not known to hold the
/// state the record applies to — the caller passes `None` unless the copy's
/// [`LogEnd::state_crc`] is that state's — e.g. after a failed write) with a record of
/// `record` padded
/// bytes (`None`: the commit cannot be a record — too many changes, or a change
/// besides the map and the scan checkpoint).
pub fn plan_write(end: Option<LogEnd>, record: Option<usize>) -> CopyWrite {
    match (end, record) {
        (Some(e), Some(n))
            if e.records < MAX_RECORDS
                && e.tail
                    .checked_add(n)
                    .is_some_and(|t| t <= super::layout::COPY_MAX_BYTES) =>
        {
            CopyWrite::Append { offset: e.tail }
        }
        _ => CopyWrite::Base,
    }
}

/// The log end after a write planned by [`plan_write`] succeeded: `record` is the
/// record's padded length; `base` the new base's header checksum and log start;
/// `version` and `state_crc` the state written.
pub fn after_write(
    end: Option<LogEnd>,
    w: CopyWrite,
    record: usize,
    base: (u32, usize),
    (version, state_crc): (u64, u32),
) -> Option<LogEnd> {
    match w {
        CopyWrite::Append { offset } => end.map(|e| LogEnd {
            tail: offset.saturating_add(record),
            base_crc: e.base_crc,
            records: e.records.saturating_add(1),
            version,
            state_crc,
        }),
        CopyWrite::Base => Some(LogEnd {
            tail: base.1,
            base_crc: base.0,
            records: 0,
            version,
            state_crc,
        }),
    }
}
