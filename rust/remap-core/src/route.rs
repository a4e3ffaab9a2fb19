//! Where `map` sends a bio: the routing decision over one version of the remap table.
//!
//! The kernel's `map` looks the bio's first block up in the published table (see
//! `src/engine.rs`) and calls [`route`], which says where the bio goes and, when it must
//! be cut, how many sectors the first part keeps (dm core sends the rest as a new bio,
//! routed again). A bio is cut only where the route changes:
//!
//! - a range of blocks that are not in the table goes to the main device whole, up to
//!   the next special block;
//! - a range of remapped blocks that continue each other — neighbouring blocks on
//!   neighbouring blocks of one spare, the runs of the on-disk format (§4.8) — goes to
//!   the spare whole, up to the end of the run (or to the first sector recorded as lost
//!   that the bio reads or writes);
//! - every other special block (busy, fenced, pending, or holding lost sectors the bio
//!   touches) is routed on its own, block by block. A read of a pending block goes to
//!   the main device, but alone: when it fails again, the worker retries that block,
//!   not a whole bio of clean neighbours (with `read_retries 0` they would be recorded
//!   pending too).
//!
//! So a large bio over a scratch of neighbouring bad blocks remapped in one go is sent
//! once, not once per block.

use super::layout;
use super::remap_table::{
    first_in, lower_bound, mask_any, Entry, BUSY, FENCED, FENCED_MOVED, PENDING,
};
use super::units::{BlockSize, Blocks, Sectors};

/// Where a bio (or its first part) goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To the main device at the same sector.
    Main,
    /// To spare `.0` (its index in the spare list) at sector `.1`.
    Spare(u8, u64),
    /// To the worker (the block is busy, pending, or has lost sectors being written).
    Defer,
    /// Fail it: a read of sectors whose data was lost, or any I/O to a fenced block.
    Fail,
}

/// Routes the I/O `sector..sector+n` (target-relative) over `items` (one table version,
/// sorted by block). Returns the route and, when the bio must be cut, the number of
/// sectors the first part keeps (always at least one sector and less than `n`).
pub fn route(
    items: &[Entry],
    bs: BlockSize,
    sector: u64,
    n: u64,
    write: bool,
) -> (Route, Option<u64>) {
    route_with(items, bs, sector, n, write, 0)
}

/// [`route`] in a pool with lost spares: bit `i` of `lost_spares` set means spare `i`
/// was lost (`meta::SPARE_FAILED`), and every sector of a block remapped to it counts
/// as lost whatever its entry records: a read of it fails, a write of it goes to the
/// worker (which puts the block on another spare), block by block.
pub fn route_with(
    items: &[Entry],
    bs: BlockSize,
    sector: u64,
    n: u64,
    write: bool,
    lost_spares: u32,
) -> (Route, Option<u64>) {
    if items.is_empty() || n == 0 {
        return (Route::Main, None);
    }
    let b0 = bs.block_of(Sectors(sector)).0;
    let end = sector.saturating_add(n);
    let last = bs.block_of(Sectors(end - 1)).0;
    let Some(s) = first_in(items, b0, last) else {
        return (Route::Main, None);
    };
    let block_start = |blk: u64| bs.first_sector(Blocks(blk)).map_or(u64::MAX, |s| s.0);
    if s.block > b0 {
        return (Route::Main, Some(block_start(s.block) - sector));
    }
    let end_of_block = block_start(b0).saturating_add(bs.sectors());
    let keep = end_of_block - sector;
    let cut = |keep: u64| if n > keep { Some(keep) } else { None };
    let len = n.min(keep);
    let off = bs.offset_in_block(Sectors(sector));
    let is_lost = |spare: u8| spare < 32 && lost_spares & (1u32 << spare) != 0;
    let r = match s.state {
        BUSY => Route::Defer,
        // Where the block lives is unknown until a later commit lands: no I/O to it
        // may complete (see `FENCED`).
        FENCED | FENCED_MOVED => Route::Fail,
        PENDING if write => Route::Defer,
        // A read of a pending block goes to main on its own: when it fails, the worker
        // retries it alone and records no neighbour of it pending.
        PENDING => Route::Main,
        // A remapped block: to the copy its I/O goes to. A block with two copies
        // (`redundancy 2`): a write goes to the worker, which writes both; a read to
        // the first copy whose spare is not lost (the worker reads the other when it
        // fails). A block with no copy on a spare not lost, or whose lost sectors the
        // bio touches: a write goes to the worker (which places it anew), a read fails.
        _ => {
            let live = if !is_lost(s.spare) {
                Some((s.spare, s.spare_block))
            } else if s.has_mirror() && !is_lost(s.mirror) {
                Some((s.mirror, s.mirror_block))
            } else {
                None
            };
            match live {
                _ if write && s.has_mirror() => Route::Defer,
                Some((spare, at)) if !mask_any(&s.lost, off, off + len) => {
                    match layout::data_block_sector(bs, Blocks(at)) {
                        Some(base) => {
                            let keep = run_end(items, bs, s, end) - sector;
                            return match base.0.checked_add(off) {
                                Some(at) => (Route::Spare(spare, at), cut(keep)),
                                None => (Route::Fail, cut(keep)),
                            };
                        }
                        None => Route::Fail,
                    }
                }
                _ if write => Route::Defer,
                _ => Route::Fail,
            }
        }
    };
    (r, cut(keep))
}

/// The end (exclusive, target sector, at most `end`) of the range that can go to the
/// spare with remapped block `first`: `first` itself, then every following block that
/// continues it (the next block, remapped to the next block of the same spare) and has
/// no lost sector below `end`. `first`'s own lost sectors were checked by the caller.
fn run_end(items: &[Entry], bs: BlockSize, first: &Entry, end: u64) -> u64 {
    let block_start = |blk: u64| bs.first_sector(Blocks(blk)).map_or(u64::MAX, |s| s.0);
    let mut stop = block_start(first.block).saturating_add(bs.sectors());
    let mut prev = first;
    let rest = items
        .get(lower_bound(items, first.block).saturating_add(1)..)
        .unwrap_or(&[]);
    for e in rest {
        if stop >= end || !continues(prev, e) {
            break;
        }
        // Sectors of `e` the bio covers: all of it, or its first `end - stop`.
        let upto = (end - stop).min(bs.sectors());
        if mask_any(&e.lost, 0, upto) {
            break;
        }
        stop = stop.saturating_add(bs.sectors());
        prev = e;
    }
    stop.min(end)
}

/// Whether remapped entry `b` continues remapped entry `a`: the next block, on the next
/// block of the same spare, and, when they have second copies, those continue each
/// other too (a read of a run goes to one of the two spares whole).
fn continues(a: &Entry, b: &Entry) -> bool {
    b.state == super::remap_table::REMAPPED
        && a.block.checked_add(1) == Some(b.block)
        && a.mirror == b.mirror
        && (!a.has_mirror() || a.mirror_block.checked_add(1) == Some(b.mirror_block))
        && a.spare == b.spare
        && a.spare_block.checked_add(1) == Some(b.spare_block)
}

#[cfg(test)]
mod tests {
    use super::super::remap_table::{mask_set, REMAPPED};
    use super::*;
    use proptest::prelude::*;

    fn bs(bytes: u64) -> BlockSize {
        BlockSize::from_bytes(bytes).unwrap()
    }

    fn spare_sector(b: BlockSize, spare_block: u64) -> u64 {
        layout::data_block_sector(b, Blocks(spare_block)).unwrap().0
    }

    /// A scratch of 5,000 neighbouring blocks remapped to neighbouring spare blocks: a
    /// 1 MiB bio over it goes to the spare whole.
    #[test]
    fn a_bio_over_a_run_is_not_cut() {
        let b = bs(4096);
        let items: Vec<Entry> = (0..5000u64)
            .map(|i| Entry::remapped(1000 + i, 0, 7 + i))
            .collect();
        let sector = 1000 * 8 + 8 * 100;
        let (r, cut) = route(&items, b, sector, 2048, false);
        assert_eq!(r, Route::Spare(0, spare_sector(b, 107)));
        assert_eq!(cut, None);
        // Unaligned start and end inside the run.
        let (r, cut) = route(&items, b, sector + 3, 2048, true);
        assert_eq!(r, Route::Spare(0, spare_sector(b, 107) + 3));
        assert_eq!(cut, None);
        // Past the end of the run: cut there, the rest goes to main.
        let tail = (1000 + 5000) * 8;
        let (r, cut) = route(&items, b, tail - 16, 64, false);
        assert_eq!(r, Route::Spare(0, spare_sector(b, 7 + 4998)));
        assert_eq!(cut, Some(16));
        assert_eq!(route(&items, b, tail, 48, false), (Route::Main, None));
    }

    #[test]
    fn a_run_ends_where_the_spare_blocks_stop_following() {
        let b = bs(4096);
        let items = [
            Entry::remapped(10, 0, 0),
            Entry::remapped(11, 0, 1),
            Entry::remapped(12, 0, 5),
            Entry::remapped(13, 1, 6),
            Entry::remapped(14, 1, 7),
        ];
        assert_eq!(
            route(&items, b, 80, 40, false),
            (Route::Spare(0, spare_sector(b, 0)), Some(16))
        );
        assert_eq!(
            route(&items, b, 96, 24, false),
            (Route::Spare(0, spare_sector(b, 5)), Some(8))
        );
        assert_eq!(
            route(&items, b, 104, 16, false),
            (Route::Spare(1, spare_sector(b, 6)), None)
        );
    }

    /// `redundancy 2`: a block with two copies is read from the first copy, or from
    /// the second when the first's spare was lost; never from a lost spare; written
    /// by the worker (both copies), block by block.
    #[test]
    fn a_block_with_two_copies_reads_from_a_live_copy_and_writes_through_the_worker() {
        let b = bs(4096);
        let items = [
            Entry::mirrored(10, 0, 3, 1, 40),
            Entry::mirrored(11, 0, 4, 1, 41),
            Entry::mirrored(12, 0, 5, 2, 42),
            Entry::remapped(13, 0, 6),
        ];
        // A read over the first two goes to spare 0 whole (they continue each other on
        // both spares); the third's second copy is elsewhere: cut there.
        assert_eq!(
            route(&items, b, 80, 24, false),
            (Route::Spare(0, spare_sector(b, 3)), Some(16))
        );
        // Spare 0 lost: the same read goes to the second copies on spare 1.
        assert_eq!(
            route_with(&items, b, 84, 20, false, 0b1),
            (Route::Spare(1, spare_sector(b, 40) + 4), Some(12))
        );
        // Spares 0 and 1 lost: nothing to read from.
        assert_eq!(
            route_with(&items, b, 80, 8, false, 0b11),
            (Route::Fail, None)
        );
        // Spare 1 lost: the first copy is still read.
        assert_eq!(
            route_with(&items, b, 96, 8, false, 0b10),
            (Route::Spare(0, spare_sector(b, 5)), None)
        );
        // Writes go to the worker, one block at a time, whatever is lost.
        for lost in [0, 0b1, 0b10, 0b11] {
            assert_eq!(
                route_with(&items, b, 82, 16, true, lost),
                (Route::Defer, Some(6))
            );
        }
        // A run of single-copy blocks does not continue into one with two copies,
        // nor the other way round.
        assert_eq!(
            route(&items, b, 96, 16, false),
            (Route::Spare(0, spare_sector(b, 5)), Some(8))
        );
        // Lost sectors: the read fails whichever copy it would go to.
        let mut lossy = items;
        mask_set(&mut lossy[0].lost, 2, 3);
        assert_eq!(route(&lossy, b, 82, 1, false), (Route::Fail, None));
        assert_eq!(
            route_with(&lossy, b, 82, 1, false, 0b1),
            (Route::Fail, None)
        );
    }

    #[test]
    fn lost_sectors_end_a_run_only_where_the_bio_touches_them() {
        let b = bs(4096);
        let mut items = [
            Entry::remapped(0, 0, 0),
            Entry::remapped(1, 0, 1),
            Entry::remapped(2, 0, 2),
        ];
        mask_set(&mut items[1].lost, 4, 5);
        // A bio ending before the lost sector keeps going.
        assert_eq!(
            route(&items, b, 0, 12, false),
            (Route::Spare(0, spare_sector(b, 0)), None)
        );
        // One reaching it stops at the block boundary; that block fails a read.
        assert_eq!(
            route(&items, b, 0, 24, false),
            (Route::Spare(0, spare_sector(b, 0)), Some(8))
        );
        assert_eq!(route(&items, b, 8, 16, false), (Route::Fail, Some(8)));
        assert_eq!(route(&items, b, 8, 16, true), (Route::Defer, Some(8)));
    }

    /// A read over a pending block and clean neighbours: main, but the pending block
    /// alone (so that a failure of it is retried alone); a write is deferred there.
    #[test]
    fn a_pending_block_is_read_alone() {
        let b = bs(4096);
        let items = [Entry::pending(2)];
        assert_eq!(route(&items, b, 0, 64, false), (Route::Main, Some(16)));
        assert_eq!(route(&items, b, 16, 48, false), (Route::Main, Some(8)));
        assert_eq!(route(&items, b, 24, 40, false), (Route::Main, None));
        assert_eq!(route(&items, b, 16, 48, true), (Route::Defer, Some(8)));
    }

    /// The per-sector meaning of a table version: where one sector goes.
    fn sector_route_with(items: &[Entry], b: BlockSize, s: u64, write: bool, lost: u32) -> Route {
        route_with(items, b, s, 1, write, lost).0
    }

    #[test]
    fn a_lost_spare_s_blocks_fail_reads_and_defer_writes_block_by_block() {
        let b = bs(4096);
        // Blocks 10..14 a run on spare 1, block 14 on spare 0.
        let mut items: Vec<Entry> = (10..14).map(|k| Entry::remapped(k, 1, k - 10)).collect();
        items.push(Entry::remapped(14, 0, 0));
        let base = layout::data_block_sector(b, Blocks(0)).unwrap().0;
        // Spare 1 fine: the run goes whole.
        assert_eq!(
            route_with(&items, b, 80, 40, false, 0b01),
            (Route::Spare(1, base), Some(32))
        );
        // Spare 1 lost: reads fail, writes are deferred, one block at a time.
        assert_eq!(
            route_with(&items, b, 80, 40, false, 0b10),
            (Route::Fail, Some(8))
        );
        assert_eq!(
            route_with(&items, b, 84, 8, true, 0b10),
            (Route::Defer, Some(4))
        );
        assert_eq!(
            route_with(&items, b, 112, 8, false, 0b10),
            (Route::Spare(0, base), None)
        );
        // Spare numbers beyond the mask's 32 bits are never lost.
        let far = [Entry::remapped(3, 40, 0)];
        assert!(matches!(
            route_with(&far, b, 24, 8, false, u32::MAX).0,
            Route::Spare(40, _)
        ));
    }

    fn arb_table() -> impl Strategy<Value = Vec<Entry>> {
        // Blocks 0..40, most of them remapped in runs, some of every other kind.
        proptest::collection::vec((0u8..9, 0u64..3, any::<u8>()), 40).prop_map(|v| {
            let mut items = Vec::new();
            let mut next_spare = 0u64;
            for (i, (kind, jump, lost)) in v.into_iter().enumerate() {
                let block = i as u64;
                next_spare += jump / 2;
                let mut e = match kind {
                    0 | 1 => continue,
                    2 => Entry {
                        state: BUSY,
                        ..Entry::pending(block)
                    },
                    3 => Entry {
                        state: FENCED,
                        ..Entry::pending(block)
                    },
                    4 => Entry::pending(block),
                    8 => Entry {
                        state: FENCED_MOVED,
                        ..Entry::remapped(block, 1, next_spare)
                    },
                    _ => Entry::remapped(block, (kind == 5) as u8, next_spare),
                };
                if e.state == REMAPPED && lost < 40 {
                    mask_set(&mut e.lost, u64::from(lost % 8), u64::from(lost % 8) + 1);
                }
                next_spare += 1;
                items.push(e);
            }
            items
        })
    }

    proptest! {
        /// A first part [`route`] sends to main or a spare means, sector by sector, what
        /// routing that sector alone means (for the spare: the sector at the same
        /// distance), and it is cut only where it must be: the rest of the bio goes
        /// somewhere else. A first part that is deferred or failed lies in one block and
        /// holds a sector that alone is deferred or failed too (a read touching a lost
        /// sector fails whole).
        #[test]
        fn a_first_part_routes_every_sector_as_alone(
            items in arb_table(), start in 0u64..330, n in 1u64..200, write: bool,
            lost in 0u32..4,
        ) {
            let b = bs(4096);
            let route = |items: &[Entry], b, start, n, write| route_with(items, b, start, n, write, lost);
            let sector_route = |items: &[Entry], b, s, write| sector_route_with(items, b, s, write, lost);
            let (r, cut) = route(&items, b, start, n, write);
            let keep = cut.unwrap_or(n);
            prop_assert!(keep >= 1 && keep <= n);
            prop_assert!(cut.is_none_or(|k| k < n));
            let shifted = |r: Route, i: u64| match r {
                Route::Spare(d, x) => Route::Spare(d, x + i),
                other => other,
            };
            match r {
                Route::Main | Route::Spare(..) => {
                    for i in 0..keep {
                        let alone = sector_route(&items, b, start + i, write);
                        prop_assert_eq!(alone, shifted(r, i), "sector {} of {:?}", start + i, r);
                    }
                    if let Some(k) = cut {
                        let next = route(&items, b, start + k, n - k, write).0;
                        let at = b.block_of(Sectors(start + k)).0;
                        // Main stops at a special block, and after a pending one.
                        let special = items.iter().any(|e| {
                            e.block == at || e.block + 1 == at && e.state == PENDING
                        });
                        // A spare run is cut only where the rest of the bio does not
                        // continue it.
                        prop_assert!(next != shifted(r, k) || r == Route::Main && special,
                            "needless cut at {} ({:?} then {:?})", start + k, r, next);
                    }
                }
                Route::Defer | Route::Fail => {
                    prop_assert_eq!(b.block_of(Sectors(start)), b.block_of(Sectors(start + keep - 1)));
                    prop_assert!((0..keep).any(|i| sector_route(&items, b, start + i, write) == r));
                }
            }
        }
    }
}
