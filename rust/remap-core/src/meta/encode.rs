//! Encoding one copy of a state ([`encode`]) and moving it to another copy slot
//! ([`set_copy_sector`]).

use super::super::remap_table::stores_remapped;
use super::{
    continues, count, crc, fits, layout, section, section_salt, EncodeError, State, Writer,
    ARRAY_HEAD_LEN, CONFIG_FLAG_REDUNDANCY, CONFIG_LEN, FINGERPRINT_LEN, FORMAT_VERSION,
    HEADER_LEN, LOST_ENTRY_LEN, MAGIC, MAX_ENTRY_BLOCK, MAX_SPARES, MAX_SPARE_BLOCK,
    MIRROR_ENTRY_LEN, PENDING_ENTRY_LEN, REMAP_ENTRY_LEN, RUN_ENTRY_LEN, SALT_BODY, SALT_HEADER,
    SCAN_LEN, SECTION_CRITICAL, SECTION_HEADER_LEN, SPARE_ENTRY_LEN,
};
use super::{Entry, Reader, PENDING};

/// Sections a format 2 copy holds: seven, the runs when there are any, and the second
/// copies when there are any (without either a copy holds what format 1 held, in the
/// same space).
const fn sections(runs: usize, mirrors: usize) -> usize {
    7 + (runs > 0) as usize + (mirrors > 0) as usize
}

fn is_copy_sector(s: u64) -> bool {
    layout::COPY_SECTORS.contains(&s)
}

/// The remapped blocks of `entries` as runs `(first entry, length)`, in block order.
fn runs(entries: &[Entry]) -> impl Iterator<Item = (Entry, u64)> + '_ {
    let mut it = entries
        .iter()
        .filter(|e| stores_remapped(e.state))
        .peekable();
    core::iter::from_fn(move || {
        let first = *it.next()?;
        let (mut last, mut n) = (first, 1u64);
        while let Some(e) = it.next_if(|e| continues(&last, e, n)) {
            last = *e;
            n += 1;
        }
        Some((first, n))
    })
}

/// The logical block size a spare record stores: log2 of the bytes, 9..=16.
fn lbs_shift(lbs: u32) -> Result<u8, EncodeError> {
    if lbs.is_power_of_two() && (512..=65536).contains(&lbs) {
        Ok(lbs.trailing_zeros() as u8)
    } else {
        Err(EncodeError::BadEntry)
    }
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
    let counts = count(st.entries);
    let (ns, nruns, nl, np) = (counts.singles, counts.runs, counts.lost, counts.pending);
    let nm = counts.mirrors;
    if nm > 0 && st.config.flags & CONFIG_FLAG_REDUNDANCY == 0 {
        return Err(EncodeError::BadEntry);
    }
    if !fits(st.spares.len(), &counts) {
        return Err(EncodeError::TooLarge);
    }
    let mut prev: Option<u64> = None;
    for e in st.entries {
        if prev.is_some_and(|p| p >= e.block) || e.block > MAX_ENTRY_BLOCK {
            return Err(EncodeError::BadEntry);
        }
        if stores_remapped(e.state) && e.spare_block > MAX_SPARE_BLOCK {
            return Err(EncodeError::BadEntry);
        }
        if stores_remapped(e.state)
            && e.has_mirror()
            && (e.mirror == e.spare || e.mirror_block > MAX_SPARE_BLOCK)
        {
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
                w.u8(lbs_shift(s.logical_block_bytes)?)?;
                w.zeros(4)?;
            }
            Ok(())
        })?;
        put_section(
            &mut w,
            section::REMAPS,
            ARRAY_HEAD_LEN + ns * REMAP_ENTRY_LEN,
            |w| {
                w.u32(ns as u32)?;
                w.u32(0)?;
                for (e, _) in runs(st.entries).filter(|&(_, n)| n == 1) {
                    w.uint(e.block, 6)?;
                    w.u8(e.spare)?;
                    w.uint(e.spare_block, 5)?;
                }
                Ok(())
            },
        )?;
        if nruns > 0 {
            put_section(
                &mut w,
                section::RUNS,
                ARRAY_HEAD_LEN + nruns * RUN_ENTRY_LEN,
                |w| {
                    w.u32(nruns as u32)?;
                    w.u32(0)?;
                    for (e, n) in runs(st.entries).filter(|&(_, n)| n > 1) {
                        w.uint(e.block, 6)?;
                        w.u8(e.spare)?;
                        w.u8(0)?;
                        w.uint(e.spare_block, 5)?;
                        w.uint(n, 3)?;
                    }
                    Ok(())
                },
            )?;
        }
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
                    .filter(|e| stores_remapped(e.state) && e.has_lost())
                {
                    w.u64(e.block)?;
                    w.u64(e.lost[0])?;
                    w.u64(e.lost[1])?;
                }
                Ok(())
            },
        )?;
        if nm > 0 {
            put_section(
                &mut w,
                section::MIRRORS,
                ARRAY_HEAD_LEN + nm * MIRROR_ENTRY_LEN,
                |w| {
                    w.u32(nm as u32)?;
                    w.u32(0)?;
                    for e in st
                        .entries
                        .iter()
                        .filter(|e| stores_remapped(e.state) && e.has_mirror())
                    {
                        w.u64(e.block)?;
                        w.u8(e.mirror)?;
                        w.zeros(2)?;
                        w.uint(e.mirror_block, 5)?;
                    }
                    Ok(())
                },
            )?;
        }
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
    for _ in 0..sections(nruns, nm) {
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
        w.u32(sections(nruns, nm) as u32)?;
        w.bytes(&st.uuid)?;
        w.u64(copy_sector)?;
        w.u64(st.version)?;
        w.u32(body_crc)?;
        // The spare this copy is written on: the state's one spare.
        w.bytes(&st.spares.first().map_or([0; 16], |s| s.uuid))?;
        w.zeros(HEADER_LEN - 80)?;
    }
    set_copy_sector(buf, copy_sector)?;
    Ok(total)
}

/// Rewrites the spare UUID of an encoded copy in `buf` (and its header checksum): the
/// copies of one version on the spares of a pool differ there (and in the copy
/// sector).
pub fn set_copy_spare(buf: &mut [u8], spare_uuid: &[u8; 16]) -> Result<(), EncodeError> {
    let sector = buf
        .get(40..48)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or(EncodeError::ShortBuffer)?;
    buf.get_mut(60..76)
        .ok_or(EncodeError::ShortBuffer)?
        .copy_from_slice(spare_uuid);
    set_copy_sector(buf, sector)
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
