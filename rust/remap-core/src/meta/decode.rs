//! Decoding and validating one copy ([`decode`]) and reading the decoded state
//! ([`Decoded`], and the iterator over its entries).

use super::{
    crc, layout, section, section_salt, BlockSize, Config, Diagnosis, Entries, Entry, Fingerprint,
    Malformed, OutOfBounds, Range, Ranges, Reader, ScanCheckpoint, SpareInfo,
    CONFIG_FLAG_REDUNDANCY, CONFIG_KNOWN_FLAGS, CONFIG_LEN, FORMAT_V1, FORMAT_VERSION, HEADER_LEN,
    LOST_ENTRY_LEN, MAGIC, MAX_ENTRY_BLOCK, MAX_READ_RETRIES, MAX_RUN_LEN, MAX_SPARES,
    MAX_SPARE_BLOCK, MAX_SPARE_ROLE, MAX_SPARE_STATE, MIRROR_ENTRY_LEN, PENDING_ENTRY_LEN,
    REMAP_ENTRY_LEN, RUN_ENTRY_LEN, SALT_BODY, SALT_HEADER, SECTION_CRITICAL, SPARE_ENTRY_LEN,
};

/// A copy that passed every check; its fields and entries borrow the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    /// The copy's format version ([`FORMAT_VERSION`] or [`FORMAT_V1`]).
    pub format_version: u32,
    /// Setup UUID.
    pub uuid: [u8; 16],
    /// UUID of the spare the copy was written on (format 2; all zero in format 1).
    pub spare_uuid: [u8; 16],
    /// Commit counter.
    pub version: u64,
    /// The header checksum (bytes 124..128; differs from copy to copy).
    pub header_crc: u32,
    /// The body checksum: the same in every copy of one state.
    pub body_crc: u32,
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
    singles: &'a [u8],
    runs: &'a [u8],
    lost: &'a [u8],
    pending: &'a [u8],
    mirrors: &'a [u8],
    /// Remapped blocks in all (singles and the blocks of every run).
    remapped: usize,
}

fn malformed(m: Malformed) -> Diagnosis {
    Diagnosis::Malformed(m)
}

fn oob(m: Malformed) -> impl Fn(OutOfBounds) -> Diagnosis {
    move |_| Diagnosis::Malformed(m)
}

/// Decodes and validates the copy in `buf`, read from `at_sector`.
pub fn decode(buf: &[u8], at_sector: u64) -> Result<Decoded<'_>, Diagnosis> {
    decode_with(buf, at_sector, true)
}

/// [`decode`] of a copy kept in memory that was encoded here or already passed
/// [`decode`] (the module's last written state, which the next commit's record is
/// made against): every check but the checksums, which cost two passes over the whole
/// copy and guard against damage on a device, not in memory. Never for bytes just
/// read from a device.
pub fn decode_own(buf: &[u8], at_sector: u64) -> Result<Decoded<'_>, Diagnosis> {
    decode_with(buf, at_sector, false)
}

fn decode_with(buf: &[u8], at_sector: u64, sums: bool) -> Result<Decoded<'_>, Diagnosis> {
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
    if fv != FORMAT_VERSION && fv != FORMAT_V1 {
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
    let spare_uuid = h.array::<16>().map_err(bl)?;
    let reserved = h.bytes(HEADER_LEN - 80).map_err(bl)?;
    let header_crc = h.u32().map_err(bl)?;
    let hdr = buf.get(..HEADER_LEN - 4).ok_or(Diagnosis::BadLength)?;
    if sums && crc::salted(SALT_HEADER, hdr) != header_crc {
        return Err(Diagnosis::HeaderChecksum);
    }
    let body = buf.get(HEADER_LEN..total).ok_or(Diagnosis::BadLength)?;
    if sums && crc::salted(SALT_BODY, body) != body_crc {
        return Err(Diagnosis::BodyChecksum);
    }
    // Format 1 had no spare UUID in the header: those bytes were reserved.
    if reserved.iter().any(|&b| b != 0) || (fv == FORMAT_V1 && spare_uuid != [0; 16]) {
        return Err(malformed(Malformed::Reserved));
    }

    // Sections.
    let mut found: [Option<&[u8]>; 10] = [None; 10];
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
        if sums && crc::salted(section_salt(kind), payload) != c {
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
    // Runs are format 2's (absent there when there are none); format 1 had none.
    let runs_b = found.get(usize::from(section::RUNS)).copied().flatten();
    // So are second copies (absent when there are none).
    let mirrors_b = found.get(usize::from(section::MIRRORS)).copied().flatten();
    if fv == FORMAT_V1 && (runs_b.is_some() || mirrors_b.is_some()) {
        return Err(malformed(Malformed::SectionSet));
    }

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
    if BlockSize::from_bytes(u64::from(config.block_bytes)).is_err()
        || config.read_retries > u32::from(MAX_READ_RETRIES)
        || config.flags & !CONFIG_KNOWN_FLAGS != 0
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

    let spares = array(sp_b, SPARE_ENTRY_LEN)?;
    if spares.len() / SPARE_ENTRY_LEN > MAX_SPARES {
        return Err(malformed(Malformed::Spares));
    }
    for rec in spares.chunks_exact(SPARE_ENTRY_LEN) {
        let s = spare_record(rec).map_err(|_| malformed(Malformed::Spares))?;
        // Format 1 did not record the spare's logical block size (zero there).
        let lbs_ok = match fv {
            FORMAT_V1 => s.logical_block_bytes == 0,
            _ => s.logical_block_bytes != 0,
        };
        if s.role > MAX_SPARE_ROLE || s.state > MAX_SPARE_STATE || !lbs_ok {
            return Err(malformed(Malformed::Spares));
        }
    }

    let singles = array(rm_b, REMAP_ENTRY_LEN)?;
    let runs = match runs_b {
        Some(b) => array(b, RUN_ENTRY_LEN)?,
        None => &[],
    };
    let lost = array(lo_b, LOST_ENTRY_LEN)?;
    let pending = array(pe_b, PENDING_ENTRY_LEN)?;
    let mirrors = match mirrors_b {
        Some(b) => array(b, MIRROR_ENTRY_LEN)?,
        None => &[],
    };
    let mut d = Decoded {
        format_version: fv,
        uuid,
        spare_uuid,
        version,
        header_crc,
        body_crc,
        copy_sector: sector,
        total_len: total,
        fingerprint,
        config,
        scan,
        body,
        spares,
        singles,
        runs,
        lost,
        pending,
        mirrors,
        remapped: 0,
    };
    // Singles and runs: each strictly increasing; runs at least two blocks long and
    // within what a record addresses; merged, no two ranges meet. Checked range by
    // range, never block by block: a run may cover millions of blocks.
    let mut remapped = 0usize;
    for recs in [(singles, REMAP_ENTRY_LEN), (runs, RUN_ENTRY_LEN)] {
        let mut end: Option<u64> = None;
        for rec in recs.0.chunks_exact(recs.1) {
            let r = range_record(rec).map_err(|_| malformed(Malformed::Remaps))?;
            if end.is_some_and(|e| e > r.block) {
                return Err(malformed(Malformed::Remaps));
            }
            end = Some(r.block + r.len);
        }
    }
    // Canonical too: a range that continues the previous one (next block, same spare,
    // next spare block) while that one is shorter than a record allows would have
    // been part of it. Two encodings of one state would differ, and a copy repaired
    // from the decoded state would then disagree with its siblings.
    let mut prev: Option<Range> = None;
    for r in d.ranges() {
        if let Some(p) = prev {
            let end = p.block + p.len;
            let joins = end == r.block
                && p.spare == r.spare
                && p.spare_block + p.len == r.spare_block
                && p.len < MAX_RUN_LEN
                && fv != FORMAT_V1;
            if end > r.block || joins {
                return Err(malformed(Malformed::Remaps));
            }
        }
        prev = Some(r);
        remapped = usize::try_from(r.len)
            .ok()
            .and_then(|n| remapped.checked_add(n))
            .ok_or(malformed(Malformed::Remaps))?;
    }
    d.remapped = remapped;
    // Lost records: strictly increasing, non-empty, each for a remapped block.
    let mut prev: Option<u64> = None;
    let mut ranges = d.ranges().peekable();
    for rec in lost.chunks_exact(LOST_ENTRY_LEN) {
        let (b, m) = lost_record(rec).map_err(|_| malformed(Malformed::Lost))?;
        if prev.is_some_and(|p| p >= b) || m == [0, 0] {
            return Err(malformed(Malformed::Lost));
        }
        while ranges.next_if(|r| r.block + r.len <= b).is_some() {}
        if ranges.peek().is_none_or(|r| r.block > b) {
            return Err(malformed(Malformed::Lost));
        }
        prev = Some(b);
    }
    // Second copies: strictly increasing, each for a remapped block, on another spare
    // than the block's own, and only with the redundancy flag (which makes a reader
    // that does not know them refuse the copy). Which spares exist is the judge's.
    if !mirrors.is_empty() && config.flags & CONFIG_FLAG_REDUNDANCY == 0 {
        return Err(malformed(Malformed::Mirrors));
    }
    let mut prev: Option<u64> = None;
    let mut ranges = d.ranges().peekable();
    for rec in mirrors.chunks_exact(MIRROR_ENTRY_LEN) {
        let (b, spare, _) = mirror_record(rec).map_err(|_| malformed(Malformed::Mirrors))?;
        if prev.is_some_and(|p| p >= b) {
            return Err(malformed(Malformed::Mirrors));
        }
        while ranges.next_if(|r| r.block + r.len <= b).is_some() {}
        if ranges
            .peek()
            .is_none_or(|r| r.block > b || r.spare == spare)
        {
            return Err(malformed(Malformed::Mirrors));
        }
        prev = Some(b);
    }
    // Pending: strictly increasing, not remapped.
    let mut prev: Option<u64> = None;
    let mut ranges = d.ranges().peekable();
    for rec in pending.chunks_exact(PENDING_ENTRY_LEN) {
        let b = Reader::new(rec).u64().map_err(oob(Malformed::Pending))?;
        if prev.is_some_and(|p| p >= b) {
            return Err(malformed(Malformed::Pending));
        }
        while ranges.next_if(|r| r.block + r.len <= b).is_some() {}
        if ranges.peek().is_some_and(|r| r.block <= b) {
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
    let mut s = SpareInfo {
        uuid: r.array()?,
        sectors: r.u64()?,
        data_start: r.u64()?,
        data_blocks: r.u64()?,
        role: r.u8()?,
        priority: r.u8()?,
        state: r.u8()?,
        logical_block_bytes: 0,
    };
    s.logical_block_bytes = match r.u8()? {
        0 => 0,
        shift @ 9..=16 => 1 << shift,
        _ => return Err(OutOfBounds),
    };
    if r.bytes(4)?.iter().any(|&b| b != 0) {
        return Err(OutOfBounds);
    }
    Ok(s)
}

/// A single (12 bytes) or a run (16 bytes) record; a run is at least two blocks long,
/// and its last block and last spare block are within what a record addresses.
fn range_record(rec: &[u8]) -> Result<Range, OutOfBounds> {
    // Fixed-size arrays, not a cursor: this runs for every record of every copy read
    // and of the state each commit diffs against.
    let le = |b: [u8; 8]| u64::from_le_bytes(b);
    if let Ok([b0, b1, b2, b3, b4, b5, spare, s0, s1, s2, s3, s4]) =
        <[u8; REMAP_ENTRY_LEN]>::try_from(rec)
    {
        return Ok(Range {
            block: le([b0, b1, b2, b3, b4, b5, 0, 0]),
            len: 1,
            spare,
            spare_block: le([s0, s1, s2, s3, s4, 0, 0, 0]),
        });
    }
    let [b0, b1, b2, b3, b4, b5, spare, zero, s0, s1, s2, s3, s4, l0, l1, l2] =
        <[u8; RUN_ENTRY_LEN]>::try_from(rec).map_err(|_| OutOfBounds)?;
    let block = le([b0, b1, b2, b3, b4, b5, 0, 0]);
    let spare_block = le([s0, s1, s2, s3, s4, 0, 0, 0]);
    let len = le([l0, l1, l2, 0, 0, 0, 0, 0]);
    if zero != 0
        || len < 2
        || block + (len - 1) > MAX_ENTRY_BLOCK
        || spare_block + (len - 1) > MAX_SPARE_BLOCK
    {
        return Err(OutOfBounds);
    }
    Ok(Range {
        block,
        len,
        spare,
        spare_block,
    })
}

/// A second-copy record: block, spare, spare block. The spare is never
/// [`super::NO_MIRROR`] (that would be no second copy) and the reserved bytes are zero.
fn mirror_record(rec: &[u8]) -> Result<(u64, u8, u64), OutOfBounds> {
    let mut r = Reader::new(rec);
    let block = r.u64()?;
    let spare = r.u8()?;
    let reserved = r.uint(2)?;
    let spare_block = r.uint(5)?;
    if spare == super::NO_MIRROR || reserved != 0 || block > MAX_ENTRY_BLOCK {
        return Err(OutOfBounds);
    }
    Ok((block, spare, spare_block))
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

    /// Numbers of remapped blocks, lost-sector records and pending blocks.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.remapped,
            self.lost.len() / LOST_ENTRY_LEN,
            self.pending.len() / PENDING_ENTRY_LEN,
        )
    }

    /// Numbers of single and run records of the remapped blocks.
    pub fn records(&self) -> (usize, usize) {
        (
            self.singles.len() / REMAP_ENTRY_LEN,
            self.runs.len() / RUN_ENTRY_LEN,
        )
    }

    /// The block size.
    pub fn block_size(&self) -> Option<BlockSize> {
        BlockSize::from_bytes(u64::from(self.config.block_bytes)).ok()
    }

    /// The remapped ranges (singles and runs), sorted by block.
    pub fn ranges(&self) -> Ranges<'a> {
        Ranges {
            singles: self.singles,
            runs: self.runs,
        }
    }

    /// Second copies (`redundancy 2`): (block, spare, spare block), in block order.
    pub fn mirrors(&self) -> impl Iterator<Item = (u64, u8, u64)> + 'a {
        self.mirrors
            .chunks_exact(MIRROR_ENTRY_LEN)
            .filter_map(|r| mirror_record(r).ok())
    }

    /// The lost-sector records `(block, mask)`, sorted by block.
    pub fn lost(&self) -> impl Iterator<Item = (u64, [u64; 2])> + 'a {
        self.lost
            .chunks_exact(LOST_ENTRY_LEN)
            .filter_map(|r| lost_record(r).ok())
    }

    /// The pending blocks, sorted.
    pub fn pending(&self) -> impl Iterator<Item = u64> + 'a {
        self.pending
            .chunks_exact(PENDING_ENTRY_LEN)
            .filter_map(|r| Reader::new(r).u64().ok())
    }

    /// Every entry, one per block (remapped with its lost sectors, and pending), sorted
    /// by block. A run yields each of its blocks.
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            ranges: self.ranges(),
            cur: None,
            lost: self.lost,
            pending: self.pending,
            mirrors: self.mirrors,
        }
    }
}

impl Iterator for Ranges<'_> {
    type Item = Range;

    fn next(&mut self) -> Option<Range> {
        let s = self
            .singles
            .get(..REMAP_ENTRY_LEN)
            .and_then(|b| range_record(b).ok());
        let r = self
            .runs
            .get(..RUN_ENTRY_LEN)
            .and_then(|b| range_record(b).ok());
        match (s, r) {
            (Some(s), r) if r.is_none_or(|r| s.block < r.block) => {
                self.singles = self.singles.get(REMAP_ENTRY_LEN..).unwrap_or(&[]);
                Some(s)
            }
            (_, Some(r)) => {
                self.runs = self.runs.get(RUN_ENTRY_LEN..).unwrap_or(&[]);
                Some(r)
            }
            _ => None,
        }
    }
}

impl Entries<'_> {
    /// The next remapped block, without its lost sectors, not consumed. The range it
    /// belongs to is decoded once, when its first block is asked for.
    fn peek_remapped(&mut self) -> Option<Entry> {
        if self.cur.is_none() {
            self.cur = self.ranges.next().map(|r| (r, 0));
        }
        let (r, i) = self.cur?;
        Some(Entry::remapped(r.block + i, r.spare, r.spare_block + i))
    }

    /// Consumes the block [`Self::peek_remapped`] returned.
    fn advance_remapped(&mut self) {
        // `cur` is the range being expanded and its next block, while one remains.
        self.cur = self
            .cur
            .map(|(r, i)| (r, i + 1))
            .filter(|&(r, n)| n < r.len);
    }
}

impl Iterator for Entries<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let r = self.peek_remapped();
        let p = self
            .pending
            .get(..PENDING_ENTRY_LEN)
            .and_then(|b| Reader::new(b).u64().ok());
        match (r, p) {
            (Some(mut e), p) if p.is_none_or(|p| e.block < p) => {
                self.advance_remapped();
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
                if let Some((b, spare, at)) = self
                    .mirrors
                    .get(..MIRROR_ENTRY_LEN)
                    .and_then(|b| mirror_record(b).ok())
                {
                    if b == e.block {
                        e.mirror = spare;
                        e.mirror_block = at;
                        self.mirrors = self.mirrors.get(MIRROR_ENTRY_LEN..).unwrap_or(&[]);
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
