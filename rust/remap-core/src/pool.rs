//! Choosing the state of a pool of spares.
//!
//! Every spare of a setup carries the whole state in its five copies. Each spare's own
//! copies go through [`super::repair::select`]; [`choose`] then picks, from what each
//! spare found, the spare whose state is loaded, and which spares hold that very state
//! (the others are rewritten whole). [`members`] matches the spare devices to the
//! records of the chosen state's spare list by the UUID each spare's copies carry.
//!
//! Like `select`, these functions refuse rather than guess: spares of different
//! setups, two spares claiming to be the same record (a copied image), or two spares
//! holding different states under one version number are refused, and nothing is
//! written.

use super::meta::{Decoded, MAX_SPARES, SPARE_DRAINING, SPARE_FAILED};
use super::repair::{Refusal, Selection};

/// What one spare's own copy selection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpareFind {
    /// Every copy blank: a fresh spare.
    Blank,
    /// A state selection would load.
    State {
        /// Its setup UUID.
        setup: [u8; 16],
        /// The spare UUID its copies' headers carry (which record of the list this
        /// spare is; zero in format 1).
        spare: [u8; 16],
        /// The selected version.
        version: u64,
        /// [`Decoded::body_crc`] of the selected state.
        state_crc: u32,
    },
    /// The spare's own selection refused.
    Refused(Refusal),
    /// No read of any of the spare's copies succeeded (a pool spare whose device does
    /// not answer). Only a record already recorded lost ([`SPARE_FAILED`]) may be such a
    /// spare ([`members`]); [`choose`] never loads from it.
    Unreadable,
}

impl SpareFind {
    /// What a spare's own selection found. With `format`, a spare holding no valid
    /// copy (foreign data, or a first write torn) counts as blank, as the table option
    /// `format_spare` makes the module take it.
    pub fn of(sel: &Selection<'_>, format: bool) -> SpareFind {
        match sel {
            Selection::Blank => SpareFind::Blank,
            Selection::Refuse {
                reason: Refusal::NoValidCopy,
                ..
            } if format => SpareFind::Blank,
            Selection::Refuse { reason, .. } => SpareFind::Refused(*reason),
            Selection::Load {
                state,
                version,
                state_crc,
                ..
            } => SpareFind::State {
                setup: state.uuid,
                spare: state.spare_uuid,
                version: *version,
                state_crc: *state_crc,
            },
        }
    }
}

/// Why a pool cannot be loaded. Nothing is written in any of these cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolRefusal {
    /// Spare `index`'s own copies were refused.
    Spare {
        /// The spare (position among the devices given).
        index: usize,
        /// Its refusal.
        reason: Refusal,
    },
    /// Spares of different setups.
    MixedSetups,
    /// Two spares carry the same spare UUID: one is a copy of the other.
    SameSpare {
        /// The first of the two.
        first: usize,
        /// The second.
        second: usize,
    },
    /// Two spares hold different states under the same version.
    Conflict {
        /// The version they share.
        version: u64,
    },
    /// More devices than a pool holds.
    TooMany,
    /// A spare holds a state of this setup but is not in the chosen state's list (it
    /// was removed from the pool, or its addition never committed).
    NotAMember {
        /// The spare.
        index: usize,
    },
    /// A spare does not read at all and is not a record the chosen state recorded lost.
    Unreadable {
        /// The spare.
        index: usize,
    },
    /// A record of the chosen state's list has no device among those given.
    Missing {
        /// The record's position in the list.
        record: usize,
    },
}

impl PoolRefusal {
    /// Short, stable text for the kernel log and `remapctl`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Spare { .. } => "a spare's metadata copies are refused",
            Self::MixedSetups => "the spares belong to different setups",
            Self::SameSpare { .. } => "two spares carry the same spare UUID (one is a copy)",
            Self::Conflict { .. } => "spares hold different states under the same version",
            Self::TooMany => "more than 16 spares",
            Self::NotAMember { .. } => "a spare of this setup is not in its spare list",
            Self::Missing { .. } => "a spare of the spare list is not among the devices",
            Self::Unreadable { .. } => {
                "a spare does not read at all and the metadata does not record it lost"
            }
        }
    }
}

/// Outcome of [`choose`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolChoice {
    /// Every spare is blank: a fresh pool.
    Blank,
    /// Load the state spare `best` selected (the lowest-indexed spare holding the
    /// newest version). `current[i]`: spare `i` holds that very state; every other
    /// spare (older, or blank: a spare being added) is rewritten whole.
    Load {
        /// The spare to load from.
        best: usize,
        /// The selected version.
        version: u64,
        /// Which spares hold the selected state.
        current: [bool; MAX_SPARES],
    },
    /// Refuse; write nothing.
    Refuse(PoolRefusal),
}

/// Chooses the state of a pool from what each spare's own selection found.
///
/// Rules, in this order: at most [`MAX_SPARES`] spares; a spare whose own selection
/// refused refuses the pool; spares with a state must share one setup UUID and carry
/// distinct spare UUIDs; the highest version wins, and two spares holding it must hold
/// the same state (body checksum); all blank is a fresh pool.
pub fn choose(finds: &[SpareFind]) -> PoolChoice {
    if finds.len() > MAX_SPARES {
        return PoolChoice::Refuse(PoolRefusal::TooMany);
    }
    let mut setup: Option<[u8; 16]> = None;
    let mut best: Option<(usize, u64, u32)> = None;
    for (i, f) in finds.iter().enumerate() {
        match *f {
            SpareFind::Blank | SpareFind::Unreadable => {}
            SpareFind::Refused(reason) => {
                return PoolChoice::Refuse(PoolRefusal::Spare { index: i, reason })
            }
            SpareFind::State {
                setup: s,
                spare,
                version,
                state_crc,
            } => {
                if setup.is_some_and(|u| u != s) {
                    return PoolChoice::Refuse(PoolRefusal::MixedSetups);
                }
                setup = Some(s);
                if let Some(first) = finds
                    .iter()
                    .take(i)
                    .position(|g| matches!(*g, SpareFind::State { spare: o, .. } if o == spare))
                {
                    return PoolChoice::Refuse(PoolRefusal::SameSpare { first, second: i });
                }
                match best {
                    Some((_, v, _)) if v >= version => {}
                    _ => best = Some((i, version, state_crc)),
                }
            }
        }
    }
    let Some((best, version, crc)) = best else {
        // Nothing to load: a fresh pool, unless a spare does not read (which could
        // hold the state: nothing is formatted over it).
        if let Some(index) = finds.iter().position(|f| *f == SpareFind::Unreadable) {
            return PoolChoice::Refuse(PoolRefusal::Unreadable { index });
        }
        return PoolChoice::Blank;
    };
    // Every spare at the selected version must hold the same state.
    let mut current = [false; MAX_SPARES];
    for (c, f) in current.iter_mut().zip(finds.iter()) {
        if let SpareFind::State {
            version: v,
            state_crc,
            ..
        } = *f
        {
            if v == version && state_crc != crc {
                return PoolChoice::Refuse(PoolRefusal::Conflict { version });
            }
            *c = v == version;
        }
    }
    PoolChoice::Load {
        best,
        version,
        current,
    }
}

/// Matches the spares to the records of the chosen state's spare list.
///
/// `finds` as given to [`choose`]; `state` the state it chose. Returns, per spare, the
/// index of its record, or `None` for a blank spare (a spare being added). A format 1
/// state (its copies carry no spare UUID) has one spare, matched to its one record.
/// A record no spare carries is matched to the spare at its own position when that
/// spare is blank and the state maps no block to the record: a spare whose first
/// copies a cut (or an I/O error) kept from landing while the others took the state
/// that lists it. A spare that does not read at all ([`SpareFind::Unreadable`]) is
/// matched to the record at its position when the state records that spare lost
/// ([`SPARE_FAILED`]; its blocks are all recorded lost, so nothing needs its data).
/// Refuses a spare of the setup that is not in the list, an unreadable spare in any
/// other place, and any other record left without a spare.
pub fn members(
    finds: &[SpareFind],
    state: &Decoded<'_>,
) -> Result<[Option<usize>; MAX_SPARES], PoolRefusal> {
    let mut out = [None; MAX_SPARES];
    let mut seen = [false; MAX_SPARES];
    if finds.len() > MAX_SPARES {
        return Err(PoolRefusal::TooMany);
    }
    for (i, f) in finds.iter().enumerate() {
        let SpareFind::State { spare, .. } = *f else {
            continue;
        };
        let rec = if spare == [0; 16] && state.spare_count() == 1 {
            Some(0)
        } else {
            (0..state.spare_count()).find(|&r| state.spare(r).is_some_and(|s| s.uuid == spare))
        };
        let Some(rec) = rec else {
            return Err(PoolRefusal::NotAMember { index: i });
        };
        if let Some(o) = out.get_mut(i) {
            *o = Some(rec);
        }
        if let Some(s) = seen.get_mut(rec) {
            *s = true;
        }
    }
    for record in 0..state.spare_count().min(MAX_SPARES) {
        if seen.get(record).copied().unwrap_or(true) {
            continue;
        }
        let here = finds.get(record);
        let unreadable = here == Some(&SpareFind::Unreadable);
        let lost_here = unreadable && state.spare(record).is_some_and(|s| s.state == SPARE_FAILED);
        if unreadable && !lost_here {
            return Err(PoolRefusal::Unreadable { index: record });
        }
        let blank_here = here == Some(&SpareFind::Blank);
        let holds_blocks = state.ranges().any(|r| usize::from(r.spare) == record);
        if !lost_here && (!blank_here || holds_blocks) {
            return Err(PoolRefusal::Missing { record });
        }
        if let Some(o) = out.get_mut(record) {
            *o = Some(record);
        }
    }
    // An unreadable spare left unmatched (not a lost record's) would be taken for a
    // spare being added and formatted.
    for (index, f) in finds.iter().enumerate() {
        if *f == SpareFind::Unreadable && out.get(index).copied().flatten().is_none() {
            return Err(PoolRefusal::Unreadable { index });
        }
    }
    Ok(out)
}

/// The records of `state`'s spare list a load drops, as a bit mask (bit `r`: record
/// `r`): each draining record ([`SPARE_DRAINING`]: `spare_remove` moved its blocks
/// away) that maps no block and that no spare of the table carries (`finds`). A
/// record that still maps a block, or that is not draining, stays and [`members`]
/// refuses the load without it. The dropped records' successors move down
/// ([`renumbered`]); the first commit after the load writes the shorter list.
pub fn removable(finds: &[SpareFind], state: &Decoded<'_>) -> u32 {
    let mut drop = 0u32;
    // An unreadable spare carries no UUID to tell which record it is: drop nothing
    // (a lost record it may be stays, and `members` matches it by position).
    if finds.contains(&SpareFind::Unreadable) {
        return 0;
    }
    for r in 0..state.spare_count().min(MAX_SPARES) {
        let Some(rec) = state.spare(r) else {
            continue;
        };
        let carried = finds
            .iter()
            .any(|f| matches!(f, SpareFind::State { spare, .. } if *spare == rec.uuid));
        let holds_blocks = state.ranges().any(|x| usize::from(x.spare) == r)
            || state.mirrors().any(|(_, sp, _)| usize::from(sp) == r);
        let leaving = rec.state == SPARE_DRAINING || rec.state == SPARE_FAILED;
        if leaving && !carried && !holds_blocks {
            drop |= 1 << r;
        }
    }
    drop
}

/// The index record `r` takes once the records of `drop` ([`removable`]) are gone.
pub const fn renumbered(r: u8, drop: u32) -> u8 {
    let below = if r >= 32 {
        drop
    } else {
        drop & ((1u32 << r) - 1)
    };
    r.saturating_sub(below.count_ones() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{
        self, encode, spare_info, Config, Fingerprint, ScanCheckpoint, SpareInfo, State,
    };
    use crate::units::BlockSize;
    use proptest::prelude::*;

    fn st(spare: u8, version: u64, crc: u32) -> SpareFind {
        SpareFind::State {
            setup: [1; 16],
            spare: [spare; 16],
            version,
            state_crc: crc,
        }
    }

    #[test]
    fn newest_spare_wins_and_older_ones_are_rewritten() {
        let finds = [st(1, 7, 70), st(2, 9, 90), SpareFind::Blank, st(3, 9, 90)];
        let PoolChoice::Load {
            best,
            version,
            current,
        } = choose(&finds)
        else {
            panic!("{:?}", choose(&finds));
        };
        assert_eq!((best, version), (1, 9));
        assert_eq!(current[..4], [false, true, false, true]);
        assert_eq!(
            choose(&[SpareFind::Blank, SpareFind::Blank]),
            PoolChoice::Blank
        );
        assert_eq!(choose(&[]), PoolChoice::Blank);
    }

    #[test]
    fn refusals() {
        let r = |f: &[SpareFind]| match choose(f) {
            PoolChoice::Refuse(r) => Some(r),
            _ => None,
        };
        assert_eq!(
            r(&[st(1, 1, 1), SpareFind::Refused(Refusal::NoValidCopy)]),
            Some(PoolRefusal::Spare {
                index: 1,
                reason: Refusal::NoValidCopy
            })
        );
        let other = SpareFind::State {
            setup: [2; 16],
            spare: [2; 16],
            version: 1,
            state_crc: 1,
        };
        assert_eq!(r(&[st(1, 1, 1), other]), Some(PoolRefusal::MixedSetups));
        assert_eq!(
            r(&[st(1, 1, 1), st(2, 3, 3), st(1, 1, 1)]),
            Some(PoolRefusal::SameSpare {
                first: 0,
                second: 2
            })
        );
        // A conflict at the newest version, whichever spare comes first.
        assert_eq!(
            r(&[st(1, 5, 1), st(2, 5, 2)]),
            Some(PoolRefusal::Conflict { version: 5 })
        );
        assert_eq!(
            r(&[st(1, 4, 1), st(2, 5, 2), st(3, 5, 3)]),
            Some(PoolRefusal::Conflict { version: 5 })
        );
        // Different states at an older version do not matter: both are rewritten.
        assert!(matches!(
            choose(&[st(1, 4, 1), st(2, 4, 2), st(3, 5, 3)]),
            PoolChoice::Load { best: 2, .. }
        ));
        let many = [SpareFind::Blank; MAX_SPARES + 1];
        assert_eq!(r(&many), Some(PoolRefusal::TooMany));
    }

    fn state_bytes(spares: &[[u8; 16]]) -> Vec<u8> {
        state_with(spares, &[])
    }

    fn state_with(spares: &[[u8; 16]], entries: &[crate::remap_table::Entry]) -> Vec<u8> {
        state_draining(spares, 0, entries)
    }

    /// A state listing `spares`, those of mask `draining` draining.
    fn state_draining(
        spares: &[[u8; 16]],
        draining: u32,
        entries: &[crate::remap_table::Entry],
    ) -> Vec<u8> {
        state_marked(spares, draining, meta::SPARE_DRAINING, entries)
    }

    /// A state whose records in `marked` are in state `mark`, the others active.
    fn state_marked(
        spares: &[[u8; 16]],
        marked: u32,
        mark: u8,
        entries: &[crate::remap_table::Entry],
    ) -> Vec<u8> {
        let bs = BlockSize::DEFAULT;
        let list: Vec<_> = spares
            .iter()
            .enumerate()
            .map(|(i, u)| SpareInfo {
                state: if marked & (1 << i) != 0 {
                    mark
                } else {
                    meta::SPARE_ACTIVE
                },
                ..spare_info(*u, 9216 + 8 * 100, 512, bs, i as u8)
            })
            .collect();
        let s = State {
            uuid: [1; 16],
            version: 3,
            fingerprint: Fingerprint {
                main_sectors: 8 * 1000,
                logical_block_bytes: 512,
                physical_block_bytes: 512,
                identity: [0; meta::IDENTITY_LEN],
            },
            config: Config {
                block_bytes: 4096,
                read_retries: 1,
                target_sectors: 8 * 1000,
                flags: 0,
                scan_interval_s: 0,
                scan_rate_kibs: 0,
                predict_interval_s: 0,
                alert_min_level: 0,
            },
            spares: &list,
            entries,
            scan: ScanCheckpoint::default(),
        };
        let mut buf = vec![0u8; crate::layout::COPY_MAX_BYTES];
        let n = encode(&s, 0, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn spares_are_matched_to_their_records() {
        let buf = state_bytes(&[[5; 16], [6; 16], [7; 16]]);
        let d = meta::decode(&buf, 0).unwrap();
        // Devices in another order than the list, and a blank one being added.
        let finds = [st(7, 3, 0), SpareFind::Blank, st(5, 3, 0), st(6, 2, 0)];
        let m = members(&finds, &d).unwrap();
        assert_eq!(m[..4], [Some(2), None, Some(0), Some(1)]);
        // A spare of the setup the list does not name; a record without a device.
        let finds = [st(5, 3, 0), st(6, 3, 0), st(7, 3, 0), st(8, 1, 0)];
        assert_eq!(
            members(&finds, &d),
            Err(PoolRefusal::NotAMember { index: 3 })
        );
        let finds = [st(5, 3, 0), st(7, 3, 0)];
        assert_eq!(members(&finds, &d), Err(PoolRefusal::Missing { record: 1 }));
        // A blank spare in the place of a record that maps no block: its first copies
        // never landed; it is that record. In another place it stays a new spare.
        let finds = [st(5, 3, 0), SpareFind::Blank, st(7, 3, 0)];
        assert_eq!(
            members(&finds, &d).unwrap()[..3],
            [Some(0), Some(1), Some(2)]
        );
        let finds = [st(5, 3, 0), st(7, 3, 0), SpareFind::Blank];
        assert_eq!(members(&finds, &d), Err(PoolRefusal::Missing { record: 1 }));
        // Not when the state maps a block to that record: its data would be missing.
        let with_block = state_with(
            &[[5; 16], [6; 16], [7; 16]],
            &[crate::remap_table::Entry::remapped(10, 1, 0)],
        );
        let d2 = meta::decode(&with_block, 0).unwrap();
        let finds = [st(5, 3, 0), SpareFind::Blank, st(7, 3, 0)];
        assert_eq!(
            members(&finds, &d2),
            Err(PoolRefusal::Missing { record: 1 })
        );
        // A one-spare state whose copies name no spare (format 1).
        let one = state_bytes(&[[5; 16]]);
        let d1 = meta::decode(&one, 0).unwrap();
        assert_eq!(members(&[st(0, 3, 0)], &d1).unwrap()[0], Some(0));
    }

    #[test]
    fn drained_records_missing_from_the_table_are_dropped() {
        use crate::remap_table::Entry;
        let uuids = [[5; 16], [6; 16], [7; 16]];
        // Record 1 draining and empty, not in the table: dropped; record 2 moves down.
        let b = state_draining(&uuids, 0b010, &[Entry::remapped(3, 2, 0)]);
        let d = meta::decode(&b, 0).unwrap();
        let finds = [st(5, 3, 0), st(7, 3, 0)];
        assert_eq!(removable(&finds, &d), 0b010);
        assert_eq!([0, 2].map(|r| renumbered(r, 0b010)), [0, 1]);
        // Still in the table: kept (the spare is still there).
        assert_eq!(removable(&[st(5, 3, 0), st(6, 3, 0), st(7, 3, 0)], &d), 0);
        // Not draining, or still mapping a block: kept, and `members` refuses.
        let b = state_draining(&uuids, 0, &[]);
        let active = meta::decode(&b, 0).unwrap();
        assert_eq!(removable(&finds, &active), 0);
        let busy = state_draining(&uuids, 0b010, &[Entry::remapped(3, 1, 0)]);
        let busy = meta::decode(&busy, 0).unwrap();
        assert_eq!(removable(&finds, &busy), 0);
        assert_eq!(
            members(&finds, &busy),
            Err(PoolRefusal::Missing { record: 1 })
        );
        // Several, first and last.
        let b = state_draining(&uuids, 0b101, &[Entry::remapped(3, 1, 0)]);
        let d = meta::decode(&b, 0).unwrap();
        assert_eq!(removable(&[st(6, 3, 0)], &d), 0b101);
        assert_eq!(renumbered(1, 0b101), 0);
        assert_eq!(renumbered(15, u32::MAX), 0);
    }

    #[test]
    fn an_unreadable_spare_is_only_a_lost_record() {
        use crate::remap_table::Entry;
        let uuids = [[5; 16], [6; 16], [7; 16]];
        let mut lost = Entry::remapped(3, 1, 0);
        lost.lost = [0xff, 0];
        let b = state_marked(&uuids, 0b010, meta::SPARE_FAILED, &[lost]);
        let d = meta::decode(&b, 0).unwrap();
        let finds = [st(5, 3, 0), SpareFind::Unreadable, st(7, 3, 0)];
        // Never loaded from; matched to the lost record at its place (blocks and all).
        assert!(matches!(choose(&finds), PoolChoice::Load { best: 0, .. }));
        assert_eq!(
            members(&finds, &d).unwrap()[..3],
            [Some(0), Some(1), Some(2)]
        );
        assert_eq!(removable(&finds, &d), 0);
        // A record not recorded lost: refused, whatever it maps.
        let b = state_marked(&uuids, 0, meta::SPARE_FAILED, &[]);
        let active = meta::decode(&b, 0).unwrap();
        assert_eq!(
            members(&finds, &active),
            Err(PoolRefusal::Unreadable { index: 1 })
        );
        let b = state_marked(&uuids, 0b010, meta::SPARE_DRAINING, &[]);
        let draining = meta::decode(&b, 0).unwrap();
        assert_eq!(
            members(&finds, &draining),
            Err(PoolRefusal::Unreadable { index: 1 })
        );
        // Beyond the list it would be a spare being added: refused, not formatted.
        let more = [
            st(5, 3, 0),
            SpareFind::Unreadable,
            st(7, 3, 0),
            SpareFind::Unreadable,
        ];
        assert_eq!(
            members(&more, &d),
            Err(PoolRefusal::Unreadable { index: 3 })
        );
        // Nothing else to load from: refused, not a fresh pool.
        assert_eq!(
            choose(&[SpareFind::Blank, SpareFind::Unreadable]),
            PoolChoice::Refuse(PoolRefusal::Unreadable { index: 1 })
        );
    }

    #[test]
    fn failed_records_missing_from_the_table_are_dropped_once_empty() {
        use crate::remap_table::Entry;
        let uuids = [[5; 16], [6; 16], [7; 16]];
        let finds = [st(5, 3, 0), st(7, 3, 0)];
        // A lost spare whose entries `spare_remove` moved off it: dropped.
        let b = state_marked(
            &uuids,
            0b010,
            meta::SPARE_FAILED,
            &[Entry::remapped(3, 2, 0)],
        );
        let d = meta::decode(&b, 0).unwrap();
        assert_eq!(removable(&finds, &d), 0b010);
        // Still in the table, or still holding entries (lost sectors and all): kept.
        assert_eq!(removable(&[st(5, 3, 0), st(6, 3, 0), st(7, 3, 0)], &d), 0);
        let mut lost = Entry::remapped(3, 1, 0);
        lost.lost = [u64::MAX, 0];
        let b = state_marked(&uuids, 0b010, meta::SPARE_FAILED, &[lost]);
        let d = meta::decode(&b, 0).unwrap();
        assert_eq!(removable(&finds, &d), 0);
    }

    proptest! {
        /// Against a model: the chosen spare holds the highest version, is the first
        /// to hold it, and `current` marks exactly the spares holding that version;
        /// a refusal happens exactly when the model finds a reason.
        #[test]
        fn matches_model(spec in proptest::collection::vec((0u8..3, 0u64..4, 0u32..3), 0..8)) {
            let finds: Vec<SpareFind> = spec
                .iter()
                .enumerate()
                .map(|(i, &(kind, v, c))| match kind {
                    0 => SpareFind::Blank,
                    _ => st(i as u8 + 1, v, c),
                })
                .collect();
            let states: Vec<(usize, u64, u32)> = finds
                .iter()
                .enumerate()
                .filter_map(|(i, f)| match *f {
                    SpareFind::State { version, state_crc, .. } => Some((i, version, state_crc)),
                    _ => None,
                })
                .collect();
            let top = states.iter().map(|s| s.1).max();
            let at_top: Vec<_> = states.iter().filter(|s| Some(s.1) == top).collect();
            let conflict = at_top.windows(2).any(|w| w[0].2 != w[1].2);
            match choose(&finds) {
                PoolChoice::Blank => prop_assert!(states.is_empty()),
                PoolChoice::Refuse(PoolRefusal::Conflict { version }) => {
                    prop_assert!(conflict);
                    prop_assert_eq!(Some(version), top);
                }
                PoolChoice::Refuse(r) => prop_assert!(false, "unexpected {:?}", r),
                PoolChoice::Load { best, version, current } => {
                    prop_assert!(!conflict);
                    prop_assert_eq!(Some(version), top);
                    prop_assert_eq!(best, at_top[0].0);
                    for (i, c) in current.iter().enumerate() {
                        prop_assert_eq!(*c, at_top.iter().any(|s| s.0 == i));
                    }
                }
            }
        }
    }
}
