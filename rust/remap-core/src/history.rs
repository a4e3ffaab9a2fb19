//! The sample history a target keeps on its first spare, so that a table reload or a
//! reboot does not restart the prediction's warm-up: the last [`RING_LEN`] samples,
//! written after every sample to one of two slots in turn (the other one keeps the
//! previous history whole if a write is torn), and replayed through a fresh engine when
//! the table is loaded. The slots lie in the gap between metadata copies 3 and 4,
//! which the copies never use (format §1).
//!
//! A slot (all integers little-endian):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `DMRHIST1` |
//! | 8 | 4 | format, 1 |
//! | 12 | 4 | `count`: samples held, at most 1000 |
//! | 16 | 8 | `generation`: one more than the previous write's, of either slot |
//! | 24 | 16 | the setup UUID |
//! | 40 | 16 | zero |
//! | 56 | 4 | checksum of the samples (salt `0x52444853`) |
//! | 60 | 4 | checksum of bytes 0..60 (salt `0x52444848`) |
//! | 64 | 56 × `count` | the samples, oldest first |
//!
//! A sample: `t_s`, `reads`, `writes`, `spare_free_blocks` (u64 each), then
//! `read_errors`, `write_errors`, `lat_p50_us`, `lat_p99_us`, `remapped_total`,
//! `pending_total` (u32 each: the ring's saturated form). The rest of the slot is zero.

use super::crc;
use super::cursor::{OutOfBounds, Reader, Writer};
use super::layout::{COPY_MAX_SECTORS, COPY_SECTORS};
use super::stats::{Sample, RING_LEN};

/// First sectors of the two slots.
pub const SLOT_SECTORS: [u64; 2] = [5120, 5248];
/// Bytes of a slot (a multiple of every logical block size a spare may have).
pub const SLOT_BYTES: usize = 65536;
/// Sectors of a slot.
pub const SLOT_SECTOR_COUNT: u64 = (SLOT_BYTES / 512) as u64;
const MAGIC: [u8; 8] = *b"DMRHIST1";
const FORMAT: u32 = 1;
const HEADER: usize = 64;
const REC: usize = 56;
const SALT_BODY: u32 = 0x5244_4853;
const SALT_HEADER: u32 = 0x5244_4848;

// The slots lie after copy 3's extent and before copy 4, and hold a full ring.
const _: () = assert!(COPY_SECTORS[3] + COPY_MAX_SECTORS <= SLOT_SECTORS[0]);
const _: () = assert!(SLOT_SECTORS[0] + SLOT_SECTOR_COUNT <= SLOT_SECTORS[1]);
const _: () = assert!(SLOT_SECTORS[1] + SLOT_SECTOR_COUNT <= COPY_SECTORS[4]);
const _: () = assert!(HEADER + REC * RING_LEN <= SLOT_BYTES);

/// A slot that checks out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Its write's generation.
    pub generation: u64,
    /// Samples it holds.
    pub count: usize,
}

fn put(w: &mut Writer<'_>, s: &Sample) -> Result<(), OutOfBounds> {
    let s = s.saturated();
    for v in [s.t_s, s.reads, s.writes, s.spare_free_blocks] {
        w.u64(v)?;
    }
    for v in [
        s.read_errors,
        s.write_errors,
        s.lat_p50_us,
        s.lat_p99_us,
        s.remapped_total,
        s.pending_total,
    ] {
        w.u32(u32::try_from(v).unwrap_or(u32::MAX))?;
    }
    Ok(())
}

/// Encodes `samples` (oldest first; at most [`RING_LEN`] are taken) into `out`, which
/// must be [`SLOT_BYTES`] long; returns the samples written, or `None` when `out` is
/// the wrong size.
pub fn encode(
    out: &mut [u8],
    uuid: &[u8; 16],
    generation: u64,
    samples: impl Iterator<Item = Sample>,
) -> Option<usize> {
    if out.len() != SLOT_BYTES {
        return None;
    }
    out.fill(0);
    let (head, body) = out.split_at_mut(HEADER);
    let mut n = 0usize;
    {
        let mut w = Writer::new(body);
        for s in samples.take(RING_LEN) {
            put(&mut w, &s).ok()?;
            n += 1;
        }
    }
    let body_crc = crc::salted(SALT_BODY, body.get(..n * REC)?);
    let mut w = Writer::new(head);
    w.bytes(&MAGIC).ok()?;
    w.u32(FORMAT).ok()?;
    w.u32(n as u32).ok()?;
    w.u64(generation).ok()?;
    w.bytes(uuid).ok()?;
    w.zeros(16).ok()?;
    w.u32(body_crc).ok()?;
    let header_crc = crc::salted(SALT_HEADER, head.get(..60)?);
    head.get_mut(60..64)?
        .copy_from_slice(&header_crc.to_le_bytes());
    Some(n)
}

/// Checks a slot read from the spare: `None` unless it is a well-formed slot of this
/// setup whose checksums hold.
pub fn check(buf: &[u8], uuid: &[u8; 16]) -> Option<Slot> {
    let head = buf.get(..HEADER)?;
    let mut r = Reader::new(head);
    if r.array::<8>().ok()? != MAGIC || r.u32().ok()? != FORMAT {
        return None;
    }
    let count = r.u32().ok()? as usize;
    let generation = r.u64().ok()?;
    if r.array::<16>().ok()? != *uuid || count > RING_LEN {
        return None;
    }
    r.skip(16).ok()?;
    let body_crc = r.u32().ok()?;
    let header_crc = r.u32().ok()?;
    if crc::salted(SALT_HEADER, head.get(..60)?) != header_crc {
        return None;
    }
    let body = buf.get(HEADER..HEADER + count * REC)?;
    if crc::salted(SALT_BODY, body) != body_crc {
        return None;
    }
    Some(Slot { generation, count })
}

/// Sample `i` (0: the oldest) of a slot that [`check`] accepted.
pub fn sample(buf: &[u8], i: usize) -> Option<Sample> {
    let at = HEADER.checked_add(i.checked_mul(REC)?)?;
    let mut r = Reader::new(buf.get(at..at.checked_add(REC)?)?);
    let mut s = Sample {
        t_s: r.u64().ok()?,
        reads: r.u64().ok()?,
        writes: r.u64().ok()?,
        spare_free_blocks: r.u64().ok()?,
        ..Sample::default()
    };
    s.read_errors = r.u32().ok()?.into();
    s.write_errors = r.u32().ok()?.into();
    s.lat_p50_us = r.u32().ok()?.into();
    s.lat_p99_us = r.u32().ok()?.into();
    s.remapped_total = r.u32().ok()?.into();
    s.pending_total = r.u32().ok()?.into();
    Some(s)
}

/// Which of the two slots to restore from: the valid one of the higher generation.
pub fn newest(slots: [Option<Slot>; 2]) -> Option<usize> {
    match slots {
        [Some(a), Some(b)] => Some(if b.generation > a.generation { 1 } else { 0 }),
        [Some(_), None] => Some(0),
        [None, Some(_)] => Some(1),
        [None, None] => None,
    }
}

/// Which of many slots (both slots of every spare of a pool) to restore from: the
/// valid one of the highest generation, the first of those on a tie.
pub fn newest_of(slots: &[Option<Slot>]) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, s) in slots.iter().enumerate() {
        if let Some(s) = s {
            let newer = match best {
                None => true,
                Some((_, g)) => s.generation > g,
            };
            if newer {
                best = Some((i, s.generation));
            }
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::Engine;

    #[test]
    fn the_newest_slot_of_a_pool_is_the_highest_valid_generation() {
        let s = |generation| {
            Some(Slot {
                generation,
                count: 1,
            })
        };
        assert_eq!(newest_of(&[]), None);
        assert_eq!(newest_of(&[None, None, None]), None);
        assert_eq!(newest_of(&[s(4), s(5), None, s(3)]), Some(1));
        // A spare that missed writes (an older generation) loses to one that did not.
        assert_eq!(newest_of(&[None, None, s(7), s(8)]), Some(3));
        assert_eq!(
            newest_of(&[s(9), None, s(9), s(8)]),
            Some(0),
            "first of a tie"
        );
        // Agrees with the two-slot rule.
        for (a, b) in [
            (s(1), s(2)),
            (s(2), s(1)),
            (s(2), s(2)),
            (None, s(1)),
            (s(1), None),
        ] {
            assert_eq!(newest_of(&[a, b]), newest([a, b]));
        }
    }
    use proptest::prelude::*;

    const UUID: [u8; 16] = *b"0123456789abcdef";

    fn samples(n: u64) -> impl Iterator<Item = Sample> {
        (0..n).map(|i| Sample {
            t_s: 1_800_000_000 + i * 3600,
            reads: 1000 + i,
            read_errors: i % 7,
            writes: 500,
            write_errors: u64::from(i % 50 == 0),
            lat_p50_us: 200 + i,
            lat_p99_us: 9000,
            remapped_total: i / 10,
            pending_total: i % 3,
            spare_free_blocks: 10_000 - i / 10,
        })
    }

    #[test]
    fn a_slot_round_trips_and_a_restored_engine_goes_on_as_the_original() {
        let mut buf = vec![0u8; SLOT_BYTES];
        let all: Vec<Sample> = samples(1500).collect();
        let mut e = Engine::default();
        for s in &all[..1200] {
            e.push(s);
        }
        // What the kernel writes: the ring, oldest first.
        let held = e.health().ring.len() as u64;
        let first = e.samples() - held;
        let n = encode(
            &mut buf,
            &UUID,
            9,
            (first..e.samples()).filter_map(|i| e.sample(i)),
        )
        .unwrap();
        assert_eq!(n, RING_LEN);
        let slot = check(&buf, &UUID).unwrap();
        assert_eq!(
            slot,
            Slot {
                generation: 9,
                count: RING_LEN
            }
        );
        // Replayed through a fresh engine, then both fed the same new samples: the
        // same alerts (the ring covers the models' history at this interval).
        let mut r = Engine::default();
        for i in 0..slot.count {
            r.push(&sample(&buf, i).unwrap());
        }
        assert_eq!(r.current(), e.current());
        for s in &all[1200..] {
            assert_eq!(r.push(s), e.push(s));
            assert_eq!(r.verdicts(), e.verdicts());
        }
    }

    #[test]
    fn a_damaged_or_foreign_slot_is_refused() {
        let mut buf = vec![0u8; SLOT_BYTES];
        assert_eq!(check(&buf, &UUID), None);
        encode(&mut buf, &UUID, 3, samples(10)).unwrap();
        assert!(check(&buf, &UUID).is_some());
        assert_eq!(check(&buf, b"fedcba9876543210"), None);
        for at in [0, 9, 13, 20, 30, 57, 62, 64, 64 + 55, 64 + 10 * 56 - 1] {
            let mut b = buf.clone();
            b[at] ^= 0x10;
            assert_eq!(check(&b, &UUID), None, "byte {at}");
        }
        // Past the samples, the slot is not read.
        let mut b = buf.clone();
        b[64 + 10 * 56] ^= 1;
        assert!(check(&b, &UUID).is_some());
        assert_eq!(encode(&mut [0u8; 100], &UUID, 1, samples(1)), None);
        assert_eq!(check(&buf[..63], &UUID), None);
    }

    #[test]
    fn the_newer_valid_slot_wins() {
        let s = |g| {
            Some(Slot {
                generation: g,
                count: 1,
            })
        };
        assert_eq!(newest([s(4), s(5)]), Some(1));
        assert_eq!(newest([s(6), s(5)]), Some(0));
        assert_eq!(newest([None, s(5)]), Some(1));
        assert_eq!(newest([s(1), None]), Some(0));
        assert_eq!(newest([None, None]), None);
    }

    proptest! {
        #[test]
        fn any_bytes_check_without_panic(data in proptest::collection::vec(any::<u8>(), 0..200),
                                         count in 0u32..2000) {
            let mut buf = vec![0u8; SLOT_BYTES];
            encode(&mut buf, &UUID, 1, samples(5)).unwrap();
            buf[12..16].copy_from_slice(&count.to_le_bytes());
            let n = data.len().min(SLOT_BYTES);
            buf[64..64 + n.min(SLOT_BYTES - 64)].copy_from_slice(&data[..n.min(SLOT_BYTES - 64)]);
            let _ = check(&buf, &UUID);
            let _ = sample(&buf, count as usize);
        }
    }
}
