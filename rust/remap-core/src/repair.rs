//! Copy selection, repair planning and commit planning, as pure functions.
//!
//! The caller reads the five copies of a spare (or gets an I/O error for some) and
//! hands the results to [`select`]. It picks the newest valid copy, lists which copies
//! to rewrite, and refuses — so that nothing gets overwritten — when no copy is valid
//! or when valid copies disagree. [`COMMIT_PLAN`] is the order in which a new version
//! is written.

use super::layout::{COPY_COUNT, COPY_SECTORS};
use super::log::{self, LogEnd};
use super::meta::{decode, Decoded, Diagnosis};

/// What reading one copy's extent returned.
#[derive(Debug, Clone, Copy)]
pub enum CopyRead<'a> {
    /// The bytes of the copy's extent (up to [`super::layout::COPY_MAX_BYTES`]).
    Bytes(&'a [u8]),
    /// The read failed.
    IoError,
}

/// The verdict on one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyStatus {
    /// Valid and holding the selected version.
    Current,
    /// Valid, same setup, older version: rewrite.
    Stale {
        /// The copy's version.
        version: u64,
    },
    /// Not usable: rewrite.
    Bad(Diagnosis),
}

/// Why the metadata cannot be loaded. Nothing is written in any of these cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No copy is valid and not all are blank: foreign data or total corruption.
    NoValidCopy,
    /// Valid copies carry different setup UUIDs and none was asked for.
    MixedSetups,
    /// Valid copies of the same version differ (their states' body checksums).
    Conflict {
        /// The version they share.
        version: u64,
    },
    /// Every copy is blank but some could not be read: refuse to format over I/O errors.
    BlankWithErrors,
}

impl Refusal {
    /// Short, stable text for `ti->error` and `remapctl`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoValidCopy => "no valid metadata copy (foreign data or all copies corrupt)",
            Self::MixedSetups => "metadata copies belong to different setups",
            Self::Conflict { .. } => "valid metadata copies of the same version disagree",
            Self::BlankWithErrors => "metadata area blank but partly unreadable",
        }
    }
}

/// The copies a loader may build the selected state from, best first: the chosen copy,
/// then the other copies holding the selected state (`logs[k]` set). A loader whose
/// replay of one copy's log does not give the state the log records (records that
/// pass their own checksums but are wrong) goes on with the next, and rewrites the
/// copy it dropped ([`Selection::drop_copy`]).
pub fn load_order(
    chosen: usize,
    logs: &[Option<LogEnd>; COPY_COUNT],
) -> impl Iterator<Item = usize> + '_ {
    core::iter::once(chosen).chain(
        (0..COPY_COUNT).filter(move |&k| k != chosen && logs.get(k).is_some_and(|l| l.is_some())),
    )
}

/// Outcome of [`select`]. Returned by value once per load, so the size difference
/// between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// Load this state; rewrite the copies marked in `rewrite`.
    Load {
        /// Index of a copy holding the selected state.
        chosen: usize,
        /// The chosen copy's base. When its log holds records ([`log::records`] of
        /// the chosen copy's bytes), the selected state is the base with them applied.
        state: Decoded<'a>,
        /// The selected version (the base's, or its last record's).
        version: u64,
        /// [`Decoded::body_crc`] of the selected state.
        state_crc: u32,
        /// Per copy holding the selected state: its log, for appending.
        logs: [Option<LogEnd>; COPY_COUNT],
        /// Verdict per copy.
        status: [CopyStatus; COPY_COUNT],
        /// Copies to rewrite with the selected state.
        rewrite: [bool; COPY_COUNT],
    },
    /// Every copy is blank: a fresh spare, to be formatted.
    Blank,
    /// Refuse to load; write nothing.
    Refuse {
        /// Why.
        reason: Refusal,
        /// Diagnosis per copy (`None`: the copy is valid).
        diagnosis: [Option<Diagnosis>; COPY_COUNT],
    },
}

impl Selection<'_> {
    /// Marks copy `k` as not holding the selected state after all (its log did not
    /// replay, [`load_order`]): reported as [`Diagnosis::LogReplay`] and rewritten.
    pub fn drop_copy(&mut self, k: usize) {
        if let Selection::Load {
            logs,
            status,
            rewrite,
            ..
        } = self
        {
            if let Some(l) = logs.get_mut(k) {
                *l = None;
            }
            if let Some(s) = status.get_mut(k) {
                *s = CopyStatus::Bad(Diagnosis::LogReplay);
            }
            if let Some(r) = rewrite.get_mut(k) {
                *r = true;
            }
        }
    }

    /// Number of copies to rewrite.
    pub fn rewrite_count(&self) -> usize {
        match self {
            Selection::Load { rewrite, .. } => rewrite.iter().filter(|&&r| r).count(),
            _ => 0,
        }
    }
}

/// A valid copy's state: version and body checksum after its log, and its log's end.
fn effective(read: &CopyRead<'_>, d: &Decoded<'_>) -> (u64, u32, LogEnd) {
    let CopyRead::Bytes(b) = read else {
        return (
            d.version,
            d.body_crc,
            LogEnd {
                tail: 0,
                base_crc: d.header_crc,
                records: 0,
                version: d.version,
                state_crc: d.body_crc,
            },
        );
    };
    let mut recs = log::records(b, d);
    let mut crc = d.body_crc;
    for r in recs.by_ref() {
        crc = r.state_crc;
    }
    let end = LogEnd {
        tail: recs.tail(),
        base_crc: d.header_crc,
        records: recs.record_count(),
        version: recs.version(),
        state_crc: crc,
    };
    (recs.version(), crc, end)
}

/// Picks the state to load from the five copies of one spare.
///
/// `expected_uuid` is the setup being assembled when the caller knows it (another
/// spare of the same setup, an admin's choice); copies of other setups are then
/// reported as [`Diagnosis::ForeignSetup`] and rewritten. Without it, all valid
/// copies must agree on the UUID.
pub fn select<'a>(
    reads: &[CopyRead<'a>; COPY_COUNT],
    expected_uuid: Option<[u8; 16]>,
) -> Selection<'a> {
    let mut decoded: [Result<Decoded<'a>, Diagnosis>; COPY_COUNT] =
        [Err(Diagnosis::ReadError); COPY_COUNT];
    for ((slot, read), &sector) in decoded
        .iter_mut()
        .zip(reads.iter())
        .zip(COPY_SECTORS.iter())
    {
        *slot = match read {
            CopyRead::Bytes(b) => decode(b, sector),
            CopyRead::IoError => Err(Diagnosis::ReadError),
        };
    }
    // Setup filter.
    let uuid = match expected_uuid {
        Some(u) => Some(u),
        None => {
            let mut first: Option<[u8; 16]> = None;
            for d in decoded.iter().flatten() {
                match first {
                    None => first = Some(d.uuid),
                    Some(u) if u != d.uuid => {
                        return refuse(Refusal::MixedSetups, &decoded);
                    }
                    Some(_) => {}
                }
            }
            first
        }
    };
    for d in decoded.iter_mut() {
        if matches!(d, Ok(x) if Some(x.uuid) != uuid) {
            *d = Err(Diagnosis::ForeignSetup);
        }
    }
    // Each valid copy's version and state after its log.
    let mut eff: [Option<(u64, u32, LogEnd)>; COPY_COUNT] = [None; COPY_COUNT];
    for ((e, d), read) in eff.iter_mut().zip(decoded.iter()).zip(reads.iter()) {
        if let Ok(d) = d {
            *e = Some(effective(read, d));
        }
    }
    // The newest version; among equals, the lowest copy index.
    let best = eff
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.map(|e| (i, e)))
        .min_by_key(|(i, e)| (core::cmp::Reverse(e.0), *i));
    let chosen_state = best.and_then(|(i, e)| {
        decoded
            .get(i)
            .and_then(|d| d.as_ref().ok())
            .map(|d| (i, *d, e))
    });
    let Some((chosen, state, (version, state_crc, _))) = chosen_state else {
        let all_blank = decoded.iter().all(|d| matches!(d, Err(Diagnosis::Blank)));
        if all_blank {
            return Selection::Blank;
        }
        let blank_or_err = decoded
            .iter()
            .all(|d| matches!(d, Err(Diagnosis::Blank) | Err(Diagnosis::ReadError)));
        let reason = if blank_or_err {
            Refusal::BlankWithErrors
        } else {
            Refusal::NoValidCopy
        };
        return refuse(reason, &decoded);
    };
    let mut status = [CopyStatus::Current; COPY_COUNT];
    let mut rewrite = [false; COPY_COUNT];
    let mut logs = [None; COPY_COUNT];
    for (((d, e), (st, rw)), lg) in decoded
        .iter()
        .zip(eff.iter())
        .zip(status.iter_mut().zip(rewrite.iter_mut()))
        .zip(logs.iter_mut())
    {
        *st = match (d, e) {
            (Ok(_), Some((v, crc, end))) if *v == version => {
                if *crc != state_crc {
                    return refuse(Refusal::Conflict { version }, &decoded);
                }
                *lg = Some(*end);
                CopyStatus::Current
            }
            (Ok(_), Some((v, _, _))) => CopyStatus::Stale { version: *v },
            (Ok(x), None) => CopyStatus::Stale { version: x.version },
            (Err(e), _) => CopyStatus::Bad(*e),
        };
        *rw = *st != CopyStatus::Current;
    }
    Selection::Load {
        chosen,
        state,
        version,
        state_crc,
        logs,
        status,
        rewrite,
    }
}

fn refuse<'a>(
    reason: Refusal,
    decoded: &[Result<Decoded<'a>, Diagnosis>; COPY_COUNT],
) -> Selection<'a> {
    let mut diagnosis = [None; COPY_COUNT];
    for (d, out) in decoded.iter().zip(diagnosis.iter_mut()) {
        *out = d.as_ref().err().copied();
    }
    Selection::Refuse { reason, diagnosis }
}

/// One write of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitStep {
    /// Copy index (into [`COPY_SECTORS`]).
    pub copy: usize,
    /// Flush the device's cache before this write (`REQ_PREFLUSH`), so that the data
    /// blocks the new version points at are durable before any copy refers to them.
    pub preflush: bool,
    /// Write through to stable media (`REQ_FUA`) before the next step starts.
    pub fua: bool,
}

/// The order in which a new version is written: one copy at a time, each durable
/// before the next is started.
///
/// Invariant (tested by simulating a cut after every write and a torn write inside
/// every copy): when a commit from version `n` to `n + 1` starts, all five copies hold
/// `n`. At any instant at most one copy is being written, so at least four hold
/// either `n` or `n + 1` intact and [`select`] returns one of those. Once the first
/// write has completed, a valid `n + 1` exists; the commit is acknowledged only after
/// the last.
pub const COMMIT_PLAN: [CommitStep; COPY_COUNT] = [
    CommitStep {
        copy: 0,
        preflush: true,
        fua: true,
    },
    CommitStep {
        copy: 1,
        preflush: false,
        fua: true,
    },
    CommitStep {
        copy: 2,
        preflush: false,
        fua: true,
    },
    CommitStep {
        copy: 3,
        preflush: false,
        fua: true,
    },
    CommitStep {
        copy: 4,
        preflush: false,
        fua: true,
    },
];
