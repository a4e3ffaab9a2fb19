//! Decoding and validating one copy ([`decode`]) and reading the decoded state
//! ([`Decoded`], and the iterator over its entries).

use super::{
    crc, layout, section, section_salt, BlockSize, Config, Diagnosis, Entries, Entry, Fingerprint,
    Malformed, OutOfBounds, Reader, ScanCheckpoint, SpareInfo, CONFIG_KNOWN_FLAGS, CONFIG_LEN,
    FORMAT_VERSION, HEADER_LEN, LOST_ENTRY_LEN, MAGIC, MAX_READ_RETRIES, MAX_SPARES,
    MAX_SPARE_ROLE, MAX_SPARE_STATE, PENDING_ENTRY_LEN, REMAP_ENTRY_LEN, SALT_BODY, SALT_HEADER,
    SECTION_CRITICAL, SPARE_ENTRY_LEN,
};

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
        if s.role > MAX_SPARE_ROLE || s.state > MAX_SPARE_STATE {
            return Err(malformed(Malformed::Spares));
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
    // Remaps: strictly increasing.
    let mut prev: Option<u64> = None;
    for e in d.remap_iter() {
        let e = e.map_err(|_| malformed(Malformed::Remaps))?;
        if prev.is_some_and(|p| p >= e.block) {
            return Err(malformed(Malformed::Remaps));
        }
        prev = Some(e.block);
    }
    // Lost records: strictly increasing, non-empty, each for a remapped block.
    let mut prev: Option<u64> = None;
    let mut remaps_it = d.remap_iter().peekable();
    for rec in lost.chunks_exact(LOST_ENTRY_LEN) {
        let (b, m) = lost_record(rec).map_err(|_| malformed(Malformed::Lost))?;
        if prev.is_some_and(|p| p >= b) || m == [0, 0] {
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
    // Pending: strictly increasing, not remapped.
    let mut prev: Option<u64> = None;
    let mut remaps_it = d.remap_iter().peekable();
    for rec in pending.chunks_exact(PENDING_ENTRY_LEN) {
        let b = Reader::new(rec).u64().map_err(oob(Malformed::Pending))?;
        if prev.is_some_and(|p| p >= b) {
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
