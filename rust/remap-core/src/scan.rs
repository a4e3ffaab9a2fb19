//! The background scan's decisions: what to read next, how long to pause, which reads
//! are slow, and when a weak block may take a spare block.
//!
//! The kernel's scanner (`src/scan.rs`) reads the main device in chunks of at most
//! [`CHUNK_BYTES`], never across a special block (remapped, pending or busy: its data
//! is not on the main device, or is being moved), pauses after each chunk so that its
//! average rate stays at the rate in force, and judges each read's time against the
//! device's norm (a moving average of the time per MiB of the chunks that were not
//! slow).

use super::remap_table::{lower_bound, Entry};

/// Largest read of one scan step.
pub const CHUNK_BYTES: u64 = 256 * 1024;
/// Default scan rate while the target has other I/O, KiB/s (module parameter
/// `scan_rate_min_kib`).
pub const DEFAULT_RATE_MIN_KIBS: u32 = 1024;
/// Default scan rate while the target is idle, KiB/s (module parameter
/// `scan_rate_max_kib`).
pub const DEFAULT_RATE_MAX_KIBS: u32 = 65_536;
/// The scan position is committed to the metadata at most this often while a pass
/// runs (and at the end of each pass, on `scan stop` and on suspend).
pub const CHECKPOINT_MS: u64 = 60_000;
/// A read is slow when it takes more than this many times the norm ...
pub const SLOW_FACTOR: u64 = 16;
/// ... plus this many microseconds (one slow I/O of a busy or emulated machine is
/// not a weak block).
pub const SLOW_FLOOR_US: u64 = 500_000;
/// Chunks measured before any read is judged slow.
pub const NORM_WARMUP: u32 = 8;

const MIB: u64 = 1024 * 1024;
/// Fixed-point scale of the norm.
const NORM_SCALE: u64 = 16;

/// Blocks of `block_bytes` in one scan chunk (at least one).
pub const fn chunk_blocks(block_bytes: u32) -> u64 {
    let b = block_bytes as u64;
    if b == 0 || b >= CHUNK_BYTES {
        1
    } else {
        CHUNK_BYTES / b
    }
}

/// The next blocks to read at or after `cursor`: `[start, end)`, at most `chunk`
/// blocks, none of them in `specials` (sorted by block). `None` when no block is left
/// before `total`: the pass is over.
pub fn next_range(specials: &[Entry], cursor: u64, total: u64, chunk: u64) -> Option<(u64, u64)> {
    let mut start = cursor;
    let mut i = lower_bound(specials, start);
    while let Some(e) = specials.get(i) {
        if e.block != start {
            break;
        }
        start = start.saturating_add(1);
        i += 1;
    }
    if start >= total {
        return None;
    }
    let mut end = start.saturating_add(chunk.max(1)).min(total);
    if let Some(e) = specials.get(i) {
        if e.block < end {
            end = e.block;
        }
    }
    Some((start, end))
}

/// Pending blocks the scan reads again in one step, at most.
pub const PENDING_PER_STEP: usize = 8;

/// The pending blocks in `from..to` (`specials` sorted by block), in block order, into
/// `out`; returns how many. A pending block failed every read once; the scan reads it
/// again as it passes it (the run of special blocks [`next_range`] skips), since a
/// device with intermittent errors may read it whole again.
pub fn pending_between(specials: &[Entry], from: u64, to: u64, out: &mut [u64]) -> usize {
    let mut n = 0;
    let start = lower_bound(specials, from);
    for e in specials.get(start..).unwrap_or(&[]) {
        if e.block >= to || n >= out.len() {
            break;
        }
        if e.state == super::remap_table::PENDING {
            if let Some(o) = out.get_mut(n) {
                *o = e.block;
                n += 1;
            }
        }
    }
    n
}

/// The rate in force: `min` while the target has other I/O (`busy`), else `max`;
/// never above `max`.
pub const fn rate_kibs(min: u32, max: u32, busy: bool) -> u32 {
    if busy && min < max {
        min
    } else {
        max
    }
}

/// Shortest pause the scan takes, in microseconds. A delayed work item sleeps in whole
/// timer ticks (4 ms at HZ=250, and up to a tick more until the timer fires), so a
/// pause of its own share after every chunk (under a millisecond at high rates) would
/// hold the scan to about one chunk per 8 ms whatever its rate. The [`Pacer`] lets the
/// reads run ahead of the rate until they are this far ahead, then pauses the whole
/// lead at once.
pub const MIN_PAUSE_US: u64 = 20_000;
/// Time a read may start after the rate's schedule and still be on it (a pause that
/// overslept by a tick or two): within it, the schedule is kept, so the reads catch
/// up; beyond it (the scan waited for something else), the schedule starts again at the
/// read, and no burst makes up for the wait.
pub const PACER_SLACK_US: u64 = 20_000;

/// Keeps the scan's average at the rate in force across steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pacer {
    /// When the reads so far are due to have ended at the rate, µs (monotonic clock).
    due_us: u64,
}

impl Pacer {
    /// A pacer with no reads yet.
    pub const fn new() -> Self {
        Pacer { due_us: 0 }
    }

    /// After a read of `bytes` that started at `start_us` and ended at `end_us`: the
    /// milliseconds to pause before the next read so that the scan averages
    /// `rate_kibs` (0 while the reads are less than [`MIN_PAUSE_US`] ahead of it).
    pub fn after(&mut self, bytes: u64, start_us: u64, end_us: u64, rate_kibs: u32) -> u64 {
        let per_s = u64::from(rate_kibs.max(1)) * 1024;
        let need_us = bytes.saturating_mul(1_000_000).div_ceil(per_s);
        let from = if start_us <= self.due_us.saturating_add(PACER_SLACK_US) {
            self.due_us
        } else {
            start_us
        };
        self.due_us = from.saturating_add(need_us);
        let ahead = self.due_us.saturating_sub(end_us);
        if ahead >= MIN_PAUSE_US {
            ahead.div_ceil(1000)
        } else {
            0
        }
    }
}

/// Seconds the rest of a pass takes at `rate_kibs`.
pub fn eta_s(remaining_blocks: u64, block_bytes: u32, rate_kibs: u32) -> u64 {
    let per_s = u64::from(rate_kibs.max(1)) * 1024;
    remaining_blocks
        .saturating_mul(u64::from(block_bytes))
        .div_ceil(per_s)
}

/// The device's read-time norm: a moving average (weight 1/8) of the time per MiB of
/// the chunks that were not slow, in 1/16 µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Norm {
    per_mib: u64,
    samples: u32,
}

impl Norm {
    /// No measurement yet.
    pub const fn new() -> Self {
        Norm {
            per_mib: 0,
            samples: 0,
        }
    }

    /// Microseconds a read of `bytes` takes by the norm; `None` while warming up.
    pub fn expected_us(&self, bytes: u64) -> Option<u64> {
        if self.samples < NORM_WARMUP {
            return None;
        }
        Some(self.per_mib.saturating_mul(bytes) / (NORM_SCALE * MIB))
    }

    /// Whether a read of `bytes` that took `us` is slow: more than [`SLOW_FACTOR`]
    /// times the norm plus [`SLOW_FLOOR_US`]. Never while warming up.
    pub fn is_slow(&self, bytes: u64, us: u64) -> bool {
        self.expected_us(bytes)
            .is_some_and(|e| us > e.saturating_mul(SLOW_FACTOR).saturating_add(SLOW_FLOOR_US))
    }

    /// Folds a read of `bytes` that took `us` into the norm (callers leave slow reads
    /// out, so a slow region does not become the norm).
    pub fn observe(&mut self, bytes: u64, us: u64) {
        if bytes == 0 {
            return;
        }
        let v = us.saturating_mul(NORM_SCALE * MIB) / bytes;
        self.per_mib = if self.samples == 0 {
            v
        } else {
            self.per_mib - self.per_mib / 8 + v / 8
        };
        self.samples = self.samples.saturating_add(1);
    }

    /// Chunks folded in.
    pub const fn samples(&self) -> u32 {
        self.samples
    }
}

/// Default share of the pool, percent, that proactive remaps leave free for the blocks
/// whose writes fail (`proactive_reserve`).
pub const DEFAULT_PROACTIVE_RESERVE_PCT: u8 = 25;
/// Default `proactive_region`: blocks on either side of a weak block that move with it
/// while the alert level is warning or above.
pub const DEFAULT_PROACTIVE_REGION: u8 = 4;

/// Whether a proactive remap may take a spare block now: it takes one only while more
/// than `reserve_pct` percent of the pool's `total` blocks are free, so that share stays
/// for the blocks whose writes fail (100: never).
pub const fn proactive_allowed(free: u64, total: u64, reserve_pct: u8) -> bool {
    let pct = if reserve_pct > 100 { 100 } else { reserve_pct };
    // free / total > pct / 100, without division or overflow.
    (free as u128) * 100 > (total as u128) * (pct as u128)
}

/// The verdicts of a chunk of `n` blocks read block by block, out of the step's buffer
/// `all` (sized for the longest chunk): its later entries are an earlier chunk's, so
/// only the first `n` count. (`all` itself if it is shorter: every entry is this
/// chunk's then.)
pub fn chunk_verdicts(all: &[u8], n: u64) -> &[u8] {
    usize::try_from(n)
        .ok()
        .and_then(|n| all.get(..n))
        .unwrap_or(all)
}

/// The verdict of block `blk` in the chunk that starts at `first` and has the verdicts
/// `v` (see [`chunk_verdicts`]): `None` for a block outside the chunk.
pub fn verdict_at(first: u64, v: &[u8], blk: u64) -> Option<u8> {
    blk.checked_sub(first)
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| v.get(i))
        .copied()
}

/// The blocks of a weak block's region, nearest first, alternating below and above:
/// `blk - 1, blk + 1, blk - 2, ...` up to `region` on either side, within
/// `0..blocks`.
pub fn region_blocks(blk: u64, region: u8, blocks: u64) -> impl Iterator<Item = u64> {
    (1..=u64::from(region)).flat_map(move |d| {
        let below = blk.checked_sub(d);
        let above = blk.checked_add(d).filter(|&b| b < blocks);
        below.into_iter().chain(above)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remap_table::Entry;

    fn specials(blocks: &[u64]) -> Vec<Entry> {
        blocks.iter().map(|&b| Entry::pending(b)).collect()
    }

    #[test]
    fn pending_blocks_between_two_blocks() {
        use crate::remap_table::{BUSY, REMAPPED};
        let mut t = specials(&[3, 5, 6, 7, 20]);
        if let Some(e) = t.get_mut(1) {
            e.state = REMAPPED;
        }
        if let Some(e) = t.get_mut(2) {
            e.state = BUSY;
        }
        let mut out = [0u64; 8];
        assert_eq!(pending_between(&t, 0, 100, &mut out), 3);
        assert_eq!(out[..3], [3, 7, 20]);
        assert_eq!(pending_between(&t, 4, 20, &mut out), 1);
        assert_eq!(out[0], 7);
        assert_eq!(pending_between(&t, 8, 20, &mut out), 0);
        assert_eq!(pending_between(&t, 21, 100, &mut out), 0);
        assert_eq!(pending_between(&[], 0, 100, &mut out), 0);
        // At most what `out` holds, the first ones.
        let many = specials(&(0..20).collect::<Vec<_>>());
        assert_eq!(pending_between(&many, 2, 100, &mut out), 8);
        assert_eq!(out, [2, 3, 4, 5, 6, 7, 8, 9]);
        let mut none: [u64; 0] = [];
        assert_eq!(pending_between(&many, 0, 100, &mut none), 0);
    }

    /// The scan as the kernel runs it: reads of 256 KiB taking `read_us`, pauses that
    /// sleep whole 4 ms ticks and then up to one more (the timer fires at the tick
    /// after its expiry), over `secs` seconds. Returns the average rate in KiB/s.
    fn simulate(rate_kibs: u32, read_us: u64, secs: u64) -> u64 {
        let tick = 4_000u64;
        let mut p = Pacer::new();
        let mut now = 1_000_000u64;
        let end = now + secs * 1_000_000;
        let mut bytes = 0u64;
        let mut k = 0u64;
        while now < end {
            let start = now;
            now += read_us;
            bytes += 256 * 1024;
            let pause_us = p.after(256 * 1024, start, now, rate_kibs) * 1000;
            if pause_us > 0 {
                // Rounded up to ticks, plus part of a tick (varying).
                now += pause_us.div_ceil(tick) * tick + (k * 1_237) % tick;
                k += 1;
            }
        }
        bytes / 1024 * 1_000_000 / (now - 1_000_000)
    }

    #[test]
    fn the_pacer_keeps_the_rate_in_force_with_coarse_sleeps() {
        // Reads of 256 KiB in 0.5 ms (512 MiB/s): every rate below that is kept within
        // 10%, above it the reads' own speed is reached.
        for rate in [1024u32, 4096, 65_536, 262_144] {
            let got = simulate(rate, 500, 30);
            assert!(
                got * 10 >= u64::from(rate) * 9 && got * 10 <= u64::from(rate) * 11,
                "rate {rate} KiB/s: {got} KiB/s"
            );
        }
        let got = simulate(4_194_304, 500, 5);
        assert!(got >= 500 * 1024, "{got} KiB/s");
    }

    /// Reads of 64 KiB at 64 MiB/s taking 100 µs each, from `now`: the number of the
    /// first read that pauses (0: none of 99).
    fn first_pause(p: &mut Pacer, mut now: u64) -> u64 {
        for i in 1..100 {
            let ms = p.after(64 * 1024, now, now + 100, 65_536);
            now += 100 + ms * 1000;
            if ms > 0 {
                return i;
            }
        }
        0
    }

    #[test]
    fn a_wait_is_not_made_up_by_a_burst() {
        let mut p = Pacer::new();
        // On schedule: 64 KiB at 64 MiB/s is 977 µs a read; reads of 100 µs gain 877 µs
        // each on the schedule, so the 23rd is the first 20 ms ahead and pauses.
        let mut now = 0;
        let mut paused = 0;
        for _ in 0..40 {
            let ms = p.after(64 * 1024, now, now + 100, 65_536);
            now += 100 + ms * 1000;
            paused += ms;
        }
        assert!(paused >= 20, "{paused}");
        // Then the scan waited 10 s (a stopped scan, a busy worker): the schedule
        // starts again at the next read, as from a standing start (the 23rd read
        // pauses again), rather than letting 10 s of reads catch up.
        let first_pause_after = first_pause(&mut p, now + 10_000_000);
        assert!(
            (18..=25).contains(&first_pause_after),
            "{first_pause_after}"
        );
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(chunk_blocks(4096), 64);
        assert_eq!(chunk_blocks(512), 512);
        assert_eq!(chunk_blocks(65536), 4);
        assert_eq!(chunk_blocks(0), 1);
        assert_eq!(chunk_blocks(1 << 20), 1);
    }

    #[test]
    fn ranges_skip_special_blocks() {
        let s = specials(&[3, 4, 10, 99]);
        assert_eq!(next_range(&s, 0, 100, 64), Some((0, 3)));
        assert_eq!(next_range(&s, 3, 100, 64), Some((5, 10)));
        assert_eq!(next_range(&s, 5, 100, 3), Some((5, 8)));
        assert_eq!(next_range(&s, 10, 100, 64), Some((11, 75)));
        assert_eq!(next_range(&s, 75, 100, 64), Some((75, 99)));
        assert_eq!(next_range(&s, 99, 100, 64), None);
        assert_eq!(next_range(&s, 100, 100, 64), None);
        assert_eq!(next_range(&[], 0, 0, 64), None);
        assert_eq!(next_range(&[], 0, 5, 0), Some((0, 1)));
    }

    #[test]
    fn a_pass_visits_every_plain_block_once() {
        let s = specials(&[0, 1, 7, 8, 9, 31, 63, 64, 127]);
        let total = 128;
        let mut seen = vec![0u32; total as usize];
        let mut cursor = 0;
        while let Some((a, b)) = next_range(&s, cursor, total, 10) {
            assert!(a < b && b - a <= 10 && a >= cursor);
            for blk in a..b {
                seen[blk as usize] += 1;
            }
            cursor = b;
        }
        for (blk, n) in seen.iter().enumerate() {
            let special = s.iter().any(|e| e.block == blk as u64);
            assert_eq!(*n, u32::from(!special), "block {blk}");
        }
    }

    /// Reads of 64 KiB at 64 MiB/s (977 µs each on the schedule) taking `read_us`, with
    /// pauses slept `early_us` short, from `now`; returns (bytes, end time, pauses).
    fn run(
        p: &mut Pacer,
        mut now: u64,
        n: u64,
        read_us: u64,
        early_us: u64,
        rate: u32,
    ) -> (u64, u64, u64) {
        let mut pauses = 0;
        for _ in 0..n {
            let start = now;
            now += read_us;
            let ms = p.after(64 * 1024, start, now, rate);
            if ms > 0 {
                pauses += 1;
                now += (ms * 1000).saturating_sub(early_us);
            }
        }
        (n * 64 * 1024, now, pauses)
    }

    #[test]
    fn reads_slower_than_the_rate_are_never_paused_and_leave_no_debt() {
        let mut p = Pacer::new();
        // 5 ms a read against 977 µs on the schedule: no pause at all.
        let (_, now, pauses) = run(&mut p, 0, 200, 5_000, 0, 65_536);
        assert_eq!(pauses, 0);
        // Fast reads again: the schedule starts at them (the slow reads put every
        // start past it), so the first pause comes as from a standing start, at the
        // 23rd read, not after a burst that makes up the slow second.
        assert_eq!(first_pause(&mut p, now), 23);
    }

    #[test]
    fn a_pause_that_ends_early_is_made_up_by_the_next() {
        // Every pause wakes 3 ms early (a timer firing on an earlier tick): the reads
        // start ahead of the schedule, which keeps it, so the next pause is longer and
        // the average stays at the rate.
        let mut p = Pacer::new();
        let (bytes, end, pauses) = run(&mut p, 0, 10_000, 100, 3_000, 65_536);
        assert!(pauses > 100, "{pauses}");
        let kibs = bytes / 1024 * 1_000_000 / end;
        assert!((62_000..=67_000).contains(&kibs), "{kibs} KiB/s");
    }

    #[test]
    fn a_rate_switch_applies_from_the_next_read() {
        // 2 s at 64 MiB/s, then foreground I/O lowers the rate to 1 MiB/s: the reads
        // after the switch average 1 MiB/s (the lead already paused for stays paid),
        // and a switch back lets them run at 64 MiB/s again at once.
        let mut p = Pacer::new();
        let (_, t1, _) = run(&mut p, 0, 2048, 100, 0, 65_536);
        let (b2, t2, _) = run(&mut p, t1, 256, 100, 0, 1024);
        let kibs = b2 / 1024 * 1_000_000 / (t2 - t1);
        assert!((950..=1050).contains(&kibs), "{kibs} KiB/s at 1 MiB/s");
        let (b3, t3, _) = run(&mut p, t2, 2048, 100, 0, 65_536);
        let kibs = b3 / 1024 * 1_000_000 / (t3 - t2);
        assert!(
            (60_000..=68_000).contains(&kibs),
            "{kibs} KiB/s at 64 MiB/s"
        );
    }

    #[test]
    fn pacing() {
        // 256 KiB at 1024 KiB/s: 250 ms, less the time the read took.
        // 256 KiB at 1 MiB/s: 250 ms a chunk, less the read's own time.
        let mut p = Pacer::new();
        assert_eq!(p.after(256 * 1024, 1_000_000, 1_000_000, 1024), 250);
        let mut p = Pacer::new();
        assert_eq!(p.after(256 * 1024, 1_000_000, 1_040_000, 1024), 210);
        let mut p = Pacer::new();
        assert_eq!(p.after(256 * 1024, 1_000_000, 1_400_000, 1024), 0);
        // Small shares add up before the first pause.
        let mut p = Pacer::new();
        assert_eq!(p.after(4096, 0, 0, 65_536), 0);
        let mut p = Pacer::new();
        assert_eq!(p.after(4096, 0, 0, 0), 4000);
        assert_eq!(rate_kibs(1024, 65_536, true), 1024);
        assert_eq!(rate_kibs(1024, 65_536, false), 65_536);
        assert_eq!(rate_kibs(4096, 512, true), 512);
        assert_eq!(eta_s(25_600, 4096, 1024), 100);
        assert_eq!(eta_s(0, 4096, 1024), 0);
        assert_eq!(eta_s(u64::MAX, 65_536, 64), u64::MAX / 65_536 + 1);
    }

    #[test]
    fn slow_reads_against_the_norm() {
        let mut n = Norm::new();
        // 256 KiB in 2 ms: 8 ms per MiB.
        for _ in 0..NORM_WARMUP - 1 {
            n.observe(256 * 1024, 2_000);
            assert!(!n.is_slow(4096, 10_000_000), "warming up");
        }
        n.observe(256 * 1024, 2_000);
        assert_eq!(n.expected_us(1024 * 1024), Some(8_000));
        // A 4 KiB block: 31 us by the norm; slow beyond 16 x 31 us + 500 ms.
        assert!(!n.is_slow(4096, 500_000));
        assert!(n.is_slow(4096, 500_600));
        // A chunk: 2 ms by the norm; slow beyond 532 ms.
        assert!(!n.is_slow(256 * 1024, 530_000));
        assert!(n.is_slow(256 * 1024, 533_000));
        // The average moves by 1/8 per sample.
        n.observe(256 * 1024, 4_000);
        assert_eq!(n.expected_us(1024 * 1024), Some(9_000));
        n.observe(0, 1);
        assert_eq!(n.samples(), NORM_WARMUP + 1);
        let mut big = Norm::new();
        for _ in 0..NORM_WARMUP {
            big.observe(1, u64::MAX);
        }
        // Saturates, never overflows.
        assert_eq!(big.expected_us(u64::MAX), Some(u64::MAX / (16 * MIB)));
        assert!(big.is_slow(u64::MAX, u64::MAX));
    }

    #[test]
    fn proactive_budget_keeps_the_reserve() {
        let q = DEFAULT_PROACTIVE_RESERVE_PCT;
        assert!(proactive_allowed(100, 100, q));
        assert!(proactive_allowed(26, 100, q));
        assert!(!proactive_allowed(25, 100, q));
        assert!(!proactive_allowed(0, 0, q));
        assert!(proactive_allowed(1, 1, q));
        // No reserve: down to the last block; a full reserve: never.
        assert!(proactive_allowed(1, 1000, 0));
        assert!(!proactive_allowed(0, 1000, 0));
        assert!(!proactive_allowed(1000, 1000, 100));
        assert!(!proactive_allowed(1000, 1000, 200));
        assert!(proactive_allowed(11, 100, 10));
        assert!(!proactive_allowed(10, 100, 10));
        // No overflow at the extremes.
        assert!(proactive_allowed(u64::MAX, u64::MAX, 99));
        assert!(!proactive_allowed(u64::MAX / 2, u64::MAX, 50));
    }

    #[test]
    fn a_short_chunk_has_only_its_own_verdicts() {
        // The buffer holds an earlier chunk of 64 blocks, all unreadable; this chunk,
        // blocks 100..110, read its 10 blocks clean.
        let mut all = [3u8; 64];
        all[..10].fill(0);
        let v = chunk_verdicts(&all, 10);
        assert_eq!(v.len(), 10);
        assert_eq!(verdict_at(100, v, 100), Some(0));
        assert_eq!(verdict_at(100, v, 109), Some(0));
        // Blocks past the chunk's end (the earlier chunk's entries 10..) and before it
        // have no verdict.
        assert_eq!(verdict_at(100, v, 110), None);
        assert_eq!(verdict_at(100, v, 113), None);
        assert_eq!(verdict_at(100, v, 99), None);
        assert_eq!(verdict_at(u64::MAX, v, 0), None);
        assert_eq!(verdict_at(0, v, u64::MAX), None);
        // A count beyond the buffer: the whole buffer.
        assert_eq!(chunk_verdicts(&all, 100).len(), 64);
        assert_eq!(chunk_verdicts(&all, 0).len(), 0);
    }

    #[test]
    fn region_is_nearest_first_and_within_the_device() {
        let v: Vec<u64> = region_blocks(10, 3, 100).collect();
        assert_eq!(v, [9, 11, 8, 12, 7, 13]);
        let v: Vec<u64> = region_blocks(1, 3, 100).collect();
        assert_eq!(v, [0, 2, 3, 4]);
        let v: Vec<u64> = region_blocks(99, 2, 100).collect();
        assert_eq!(v, [98, 97]);
        assert_eq!(region_blocks(5, 0, 100).count(), 0);
        assert_eq!(
            region_blocks(u64::MAX - 1, 2, u64::MAX).collect::<Vec<_>>(),
            [u64::MAX - 2, u64::MAX - 3]
        );
    }
}
