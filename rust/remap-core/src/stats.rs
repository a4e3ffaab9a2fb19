//! Health statistics: the per-device ring of the last [`RING_LEN`] samples, window
//! summaries (min, max, mean, standard deviation, percentiles) in integer arithmetic,
//! and daily aggregation.
//!
//! A [`Sample`] is what the module records each interval (1 h by default; any interval
//! works): counts over the interval for I/O and errors, latency percentiles of the
//! interval, and three levels (remapped blocks, pending blocks, free spare blocks).
//!
//! # State size
//! A ring slot is a packed 56-byte record (counts above `u32` saturate where a `u32` is
//! stored), so the ring is 56 000 bytes; the daily history ([`DAYS`] days of 56 bytes)
//! adds 3 584, a day's median selection in progress about 1 100. [`Health`] as a whole
//! is checked to stay below 60 KiB in the tests,
//! leaving room for the prediction state within the 64 KiB per-device budget.

use super::fixed;

/// Samples kept per device.
pub const RING_LEN: usize = 1000;
/// Days of daily aggregates kept per device.
pub const DAYS: usize = 64;
/// Seconds per day.
pub const DAY_S: u64 = 86_400;

/// The header of a trace (CSV): the [`Sample`] fields in order.
pub const TRACE_HEADER: &str = "t_s,reads,read_errors,writes,write_errors,lat_p50_us,lat_p99_us,remapped_total,pending_total,spare_free_blocks";

/// One interval's record, as the module produces it and as a trace row holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// End of the interval, seconds on the caller's clock (monotonic per device).
    pub t_s: u64,
    /// Reads completed in the interval.
    pub reads: u64,
    /// Reads that failed in the interval.
    pub read_errors: u64,
    /// Writes completed in the interval.
    pub writes: u64,
    /// Writes that failed on the main device in the interval.
    pub write_errors: u64,
    /// Median I/O latency over the interval, µs.
    pub lat_p50_us: u64,
    /// 99th percentile I/O latency over the interval, µs.
    pub lat_p99_us: u64,
    /// Blocks remapped so far (level).
    pub remapped_total: u64,
    /// Blocks known bad but not yet remapped (level).
    pub pending_total: u64,
    /// Free blocks left on the spares (level).
    pub spare_free_blocks: u64,
}

impl Sample {
    /// The sample as the ring keeps it (the fields held in 32 bits saturated): what a
    /// trace dumped from the ring holds, so a replay of the dump sees what the engine
    /// saw when the sampler feeds it this form.
    pub const fn saturated(&self) -> Sample {
        Rec::pack(self).unpack()
    }

    /// Writes the sample as a trace row (the fields of [`TRACE_HEADER`], no newline).
    pub fn write_row(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        write!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            self.t_s,
            self.reads,
            self.read_errors,
            self.writes,
            self.write_errors,
            self.lat_p50_us,
            self.lat_p99_us,
            self.remapped_total,
            self.pending_total,
            self.spare_free_blocks
        )
    }

    /// Failed I/Os in the interval.
    pub const fn errors(&self) -> u64 {
        self.read_errors.saturating_add(self.write_errors)
    }
    /// I/Os in the interval.
    pub const fn ios(&self) -> u64 {
        self.reads.saturating_add(self.writes)
    }
}

/// A quantity that can be summarised over a window of the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// [`Sample::reads`].
    Reads,
    /// [`Sample::read_errors`].
    ReadErrors,
    /// [`Sample::writes`].
    Writes,
    /// [`Sample::write_errors`].
    WriteErrors,
    /// Reads plus writes.
    Ios,
    /// Read plus write errors.
    Errors,
    /// [`Sample::lat_p50_us`].
    LatP50,
    /// [`Sample::lat_p99_us`].
    LatP99,
    /// [`Sample::remapped_total`].
    Remapped,
    /// [`Sample::pending_total`].
    Pending,
    /// [`Sample::spare_free_blocks`].
    SpareFree,
}

impl Field {
    /// The field's value in `s`.
    pub const fn of(self, s: &Sample) -> u64 {
        match self {
            Field::Reads => s.reads,
            Field::ReadErrors => s.read_errors,
            Field::Writes => s.writes,
            Field::WriteErrors => s.write_errors,
            Field::Ios => s.ios(),
            Field::Errors => s.errors(),
            Field::LatP50 => s.lat_p50_us,
            Field::LatP99 => s.lat_p99_us,
            Field::Remapped => s.remapped_total,
            Field::Pending => s.pending_total,
            Field::SpareFree => s.spare_free_blocks,
        }
    }
}

const fn sat32(v: u64) -> u32 {
    if v > u32::MAX as u64 {
        u32::MAX
    } else {
        v as u32
    }
}

/// A ring slot: a [`Sample`] with the fields that never need 64 bits saturated to 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Rec {
    t_s: u64,
    reads: u64,
    writes: u64,
    spare_free_blocks: u64,
    read_errors: u32,
    write_errors: u32,
    lat_p50_us: u32,
    lat_p99_us: u32,
    remapped_total: u32,
    pending_total: u32,
}

impl Rec {
    const ZERO: Rec = Rec {
        t_s: 0,
        reads: 0,
        writes: 0,
        spare_free_blocks: 0,
        read_errors: 0,
        write_errors: 0,
        lat_p50_us: 0,
        lat_p99_us: 0,
        remapped_total: 0,
        pending_total: 0,
    };

    const fn pack(s: &Sample) -> Rec {
        Rec {
            t_s: s.t_s,
            reads: s.reads,
            writes: s.writes,
            spare_free_blocks: s.spare_free_blocks,
            read_errors: sat32(s.read_errors),
            write_errors: sat32(s.write_errors),
            lat_p50_us: sat32(s.lat_p50_us),
            lat_p99_us: sat32(s.lat_p99_us),
            remapped_total: sat32(s.remapped_total),
            pending_total: sat32(s.pending_total),
        }
    }

    const fn unpack(&self) -> Sample {
        Sample {
            t_s: self.t_s,
            reads: self.reads,
            read_errors: self.read_errors as u64,
            writes: self.writes,
            write_errors: self.write_errors as u64,
            lat_p50_us: self.lat_p50_us as u64,
            lat_p99_us: self.lat_p99_us as u64,
            remapped_total: self.remapped_total as u64,
            pending_total: self.pending_total as u64,
            spare_free_blocks: self.spare_free_blocks,
        }
    }
}

/// The last [`RING_LEN`] samples of a device, newest first by age.
#[derive(Debug, Clone)]
pub struct Ring {
    recs: [Rec; RING_LEN],
    /// Slot the next sample goes to.
    head: usize,
    /// Valid slots.
    len: usize,
}

impl Default for Ring {
    fn default() -> Self {
        Self::new()
    }
}

impl Ring {
    /// An empty ring.
    pub const fn new() -> Self {
        Ring {
            recs: [Rec::ZERO; RING_LEN],
            head: 0,
            len: 0,
        }
    }

    /// Appends `s`, dropping the oldest sample when full. Values that the ring stores in
    /// 32 bits (error counts, latencies, remapped and pending levels) saturate there.
    pub fn push(&mut self, s: &Sample) {
        if let Some(slot) = self.recs.get_mut(self.head) {
            *slot = Rec::pack(s);
        }
        self.head = if self.head + 1 >= RING_LEN {
            0
        } else {
            self.head + 1
        };
        if self.len < RING_LEN {
            self.len += 1;
        }
    }

    /// Samples held.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True when no sample has been pushed.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sample `age` pushes ago (0: the newest), if still held.
    pub fn get(&self, age: usize) -> Option<Sample> {
        if age >= self.len {
            return None;
        }
        // head >= 1 + age - RING_LEN never underflows: add RING_LEN first.
        let idx = (self.head + RING_LEN - 1 - age) % RING_LEN;
        self.recs.get(idx).map(Rec::unpack)
    }

    /// The newest sample.
    pub fn latest(&self) -> Option<Sample> {
        self.get(0)
    }

    /// Iterates over the newest `n` samples (or all held), newest first.
    pub fn recent(&self, n: usize) -> impl Iterator<Item = Sample> + '_ {
        // Newest first: the slots below `head` backwards, then (once the ring has
        // wrapped) the slots from the end down to `head`.
        let (newer, older) = match (self.recs.get(..self.head), self.recs.get(self.head..)) {
            (Some(a), Some(b)) if self.len == RING_LEN => (a, b),
            (Some(a), _) => (a, &[][..]),
            _ => (&[][..], &[][..]),
        };
        newer
            .iter()
            .rev()
            .chain(older.iter().rev())
            .take(n.min(self.len))
            .map(Rec::unpack)
    }
}

/// Summary of a field over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Samples in the window.
    pub n: u32,
    /// Smallest value.
    pub min: u64,
    /// Largest value.
    pub max: u64,
    /// Mean, rounded down.
    pub mean: u64,
    /// Population standard deviation, rounded down (integer square root of the
    /// exact variance about the exact mean, itself rounded down).
    pub stddev: u64,
}

/// Summary of `field` over the newest `window` samples; `None` when the ring is empty.
///
/// Exact: the mean is accumulated as quotient and remainder so no sum overflows, and
/// the variance in 128 bits about the exact rational mean.
pub fn summary(ring: &Ring, field: Field, window: usize) -> Option<Summary> {
    let n = window.min(ring.len());
    if n == 0 {
        return None;
    }
    let n64 = n as u64;
    let (mut min, mut max) = (u64::MAX, 0u64);
    let (mut q, mut r) = (0u64, 0u64);
    for s in ring.recent(n) {
        let v = field.of(&s);
        min = min.min(v);
        max = max.max(v);
        q = q.saturating_add(v / n64);
        r += v % n64;
    }
    // sum = q*n + r exactly; mean = q + r/n.
    let mean = q.saturating_add(r / n64);
    let stddev = stddev_of(ring, field, n, max - min, min);
    Some(Summary {
        n: n as u32,
        min,
        max,
        mean,
        stddev,
    })
}

/// Population standard deviation of `field` over the newest `n` (> 0) samples whose
/// values span `range` from `min`.
///
/// With d = n*v - sum (the deviation in units of 1/n), the variance is
/// sum(d^2) / n^3, computed exactly in 128 bits while the values span less than 2^48
/// (|d| < 2^58, sum(d^2) < 2^126). Wider spans are shifted down first, which bounds the
/// relative error by 2^-46.
fn stddev_of(ring: &Ring, field: Field, n: usize, range: u64, min: u64) -> u64 {
    let shift = (64 - range.leading_zeros()).saturating_sub(48);
    let w = |s: &Sample| field.of(s).saturating_sub(min) >> shift;
    let n128 = n as u128;
    let mut sum: u128 = 0;
    for s in ring.recent(n) {
        sum += w(&s) as u128;
    }
    let mut ss: u128 = 0;
    for s in ring.recent(n) {
        let d = (w(&s) as u128 * n128).abs_diff(sum);
        ss = ss.saturating_add(d * d);
    }
    let var = fixed::div_u128(ss, n128 * n128 * n128).unwrap_or(0);
    fixed::isqrt_u128(var) << shift
}

/// Number of values `<= v` among `field` of the newest `window` samples.
fn count_le(ring: &Ring, field: Field, window: usize, v: u64) -> usize {
    ring.recent(window).filter(|s| field.of(s) <= v).count()
}

/// The `permille`/1000 percentile (nearest rank) of `field` over the newest `window`
/// samples; `None` when empty. 500 is the median (lower), 1000 the maximum.
///
/// Selection by bisection over the value range: no copy, at most 64 passes.
pub fn percentile(ring: &Ring, field: Field, window: usize, permille: u32) -> Option<u64> {
    let n = window.min(ring.len());
    let s = summary_minmax(ring, field, n)?;
    let rank = rank_for(n, permille);
    Some(select(s, rank, |v| count_le(ring, field, n, v)))
}

/// Nearest rank (1-based) of the `permille` percentile among `n` values.
pub(crate) const fn rank_for(n: usize, permille: u32) -> usize {
    let p = if permille > 1000 { 1000 } else { permille } as usize;
    let r = (n * p).div_ceil(1000);
    if r == 0 {
        1
    } else {
        r
    }
}

fn summary_minmax(ring: &Ring, field: Field, n: usize) -> Option<(u64, u64)> {
    if n == 0 {
        return None;
    }
    let mut mm = (u64::MAX, 0u64);
    for s in ring.recent(n) {
        let v = field.of(&s);
        mm = (mm.0.min(v), mm.1.max(v));
    }
    Some(mm)
}

/// Smallest `v` in `[lo, hi]` with `count_le(v) >= rank`.
fn select(range: (u64, u64), rank: usize, count_le: impl Fn(u64) -> usize) -> u64 {
    let (mut lo, mut hi) = range;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if count_le(mid) >= rank {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// Samples a day up to which the day's medians are taken when it closes, by sorting a
/// copy (intervals of 45 min or more); beyond, [`Health::median_step`] finds them over the
/// next samples, a bounded number of ring samples at a time.
pub const SORT_MEDIAN_MAX: usize = 32;

/// Ring samples [`Health::median_step`] visits per call.
pub const MEDIAN_CHUNK: usize = 96;

/// Samples of a day a deferred median covers at most (the newest of the day): the ring
/// must still hold them all when the last step runs.
const SELECT_MAX: usize = RING_LEN - 64;

/// The lower median of `field` over the newest `n` samples, saturated to `u32` (the
/// saturation is monotonic, so it commutes with the median); 0 when `n` is 0.
///
/// Up to [`SORT_MEDIAN_MAX`] samples: one pass copying the values and an in-place sort
/// of at most 32 of them. More: bisection over the value range, up to 64 passes.
fn day_median(ring: &Ring, field: Field, n: usize) -> u32 {
    let rank = rank_for(n, 500);
    if n <= SORT_MEDIAN_MAX {
        let mut buf = [0u32; SORT_MEDIAN_MAX];
        let mut k = 0;
        for (slot, s) in buf.iter_mut().zip(ring.recent(n)) {
            *slot = sat32(field.of(&s));
            k += 1;
        }
        let Some(vals) = buf.get_mut(..k) else {
            return 0;
        };
        vals.sort_unstable();
        return vals.get(rank - 1).copied().unwrap_or(0);
    }
    match summary_minmax(ring, field, n) {
        Some(mm) => sat32(select(mm, rank, |v| count_le(ring, field, n, v))),
        None => 0,
    }
}

/// Radix selection of one field's lower median: four passes, each counting the values
/// that share the digits found so far by their next 8-bit digit.
#[derive(Debug, Clone, Copy)]
struct Radix {
    field: Field,
    /// Digits found so far, and the mask of their bits.
    prefix: u32,
    mask: u32,
    /// Rank still sought among the values matching the prefix (1-based).
    rank: u32,
    hist: [u16; 256],
}

impl Radix {
    const fn new(field: Field, rank: u32) -> Radix {
        Radix {
            field,
            prefix: 0,
            mask: 0,
            rank,
            hist: [0; 256],
        }
    }

    fn count(&mut self, s: &Sample, shift: u32) {
        let v = sat32(self.field.of(s));
        if v & self.mask == self.prefix {
            if let Some(h) = self.hist.get_mut(((v >> shift) & 0xff) as usize) {
                *h = h.saturating_add(1);
            }
        }
    }

    /// Ends a pass: the digit whose bucket holds the rank sought.
    fn digit(&mut self, shift: u32) {
        let mut below = 0u32;
        for (b, &c) in self.hist.iter().enumerate() {
            let c = u32::from(c);
            if below + c >= self.rank {
                self.rank -= below;
                self.prefix |= (b as u32) << shift;
                break;
            }
            below += c;
        }
        self.mask |= 0xff << shift;
        self.hist = [0; 256];
    }
}

/// The medians of a closed day with more than [`SORT_MEDIAN_MAX`] samples, found over
/// the following samples by [`Health::median_step`]: exact, with at most
/// [`MEDIAN_CHUNK`] ring samples visited per step (4 passes over the day's newest
/// samples, at most `RING_LEN - 64` of them).
#[derive(Debug, Clone, Copy)]
struct MedianSelect {
    /// Samples of the day covered.
    n: usize,
    /// Samples pushed since the day's last one (the day's newest is at this age).
    offset: usize,
    /// Next sample of the day to visit (0: its newest), and the pass (0..4).
    pos: usize,
    pass: u32,
    lat: Radix,
    ios: Radix,
}

/// One day's aggregate./// One day's aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Day {
    /// Day number: `t_s / 86400`.
    pub day: u32,
    /// Samples that fell in the day.
    pub samples: u16,
    /// Samples of the day with at least one error.
    pub err_samples: u16,
    /// Clock hours of the day (0..=24) that hold at least one sample: how much of the
    /// day was observed, whatever the interval.
    pub hours: u8,
    /// Clock hours of the day (0..=24) that hold a sample with errors: how widely the
    /// day's errors are spread in time, whatever the interval.
    pub err_hours: u8,
    /// Median of the samples' p99 latency, µs.
    pub lat_p99_med: u32,
    /// Median I/Os per sample.
    pub ios_med: u32,
    /// I/Os in the day.
    pub ios: u64,
    /// Failed I/Os in the day.
    pub errors: u64,
    /// Largest error count of a single sample of the day.
    pub max_sample_errors: u32,
    /// Remapped blocks at the end of the day.
    pub remapped_end: u32,
    /// Free spare blocks at the end of the day.
    pub spare_free_end: u64,
}

/// Daily aggregates: the last [`DAYS`] closed days, plus the open one.
#[derive(Debug, Clone)]
pub struct Daily {
    days: [Day; DAYS],
    head: usize,
    len: usize,
}

impl Default for Daily {
    fn default() -> Self {
        Self::new()
    }
}

impl Daily {
    /// No days.
    pub const fn new() -> Self {
        Daily {
            days: [Day {
                day: 0,
                samples: 0,
                err_samples: 0,
                hours: 0,
                err_hours: 0,
                lat_p99_med: 0,
                ios_med: 0,
                ios: 0,
                errors: 0,
                max_sample_errors: 0,
                remapped_end: 0,
                spare_free_end: 0,
            }; DAYS],
            head: 0,
            len: 0,
        }
    }

    fn push(&mut self, d: Day) {
        if let Some(slot) = self.days.get_mut(self.head) {
            *slot = d;
        }
        self.head = (self.head + 1) % DAYS;
        self.len = (self.len + 1).min(DAYS);
    }

    /// Closed days held.
    pub const fn len(&self) -> usize {
        self.len
    }

    fn set_newest_medians(&mut self, lat_p99: u32, ios: u32) {
        if let Some(d) = self.days.get_mut((self.head + DAYS - 1) % DAYS) {
            d.lat_p99_med = lat_p99;
            d.ios_med = ios;
        }
    }

    /// True when no day has closed.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The closed day `age` days ago (0: the most recent closed day), if held.
    pub fn get(&self, age: usize) -> Option<Day> {
        if age >= self.len {
            return None;
        }
        self.days.get((self.head + DAYS - 1 - age) % DAYS).copied()
    }
}

/// A device's statistics: the sample ring, the daily history and the open day.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// The newest samples.
    pub ring: Ring,
    /// Closed days.
    pub daily: Daily,
    open: Day,
    open_valid: bool,
    /// Hour of the day (0..24) of the open day's newest sample, and of its newest
    /// sample with errors; 24: none yet.
    open_hour: u8,
    open_err_hour: u8,
    /// The medians of the newest closed day, when still being found.
    select: Option<MedianSelect>,
    /// Samples refused because their time went backwards.
    pub rejected: u32,
}

/// What [`Health::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The sample was added to the open day.
    Added,
    /// The sample started a new day: the previous one was closed first.
    ClosedDay,
    /// The sample's time is before the newest sample's; it was ignored.
    Rejected,
}

impl Health {
    /// Empty statistics.
    pub const fn new() -> Self {
        Health {
            ring: Ring::new(),
            daily: Daily::new(),
            open: Day {
                day: 0,
                samples: 0,
                err_samples: 0,
                hours: 0,
                err_hours: 0,
                lat_p99_med: 0,
                ios_med: 0,
                ios: 0,
                errors: 0,
                max_sample_errors: 0,
                remapped_end: 0,
                spare_free_end: 0,
            },
            open_valid: false,
            open_hour: 24,
            open_err_hour: 24,
            select: None,
            rejected: 0,
        }
    }

    /// Records `s`. A sample in a later day than the open one closes that day first
    /// (its medians are computed from the ring, at most [`RING_LEN`] samples).
    pub fn push(&mut self, s: &Sample) -> Pushed {
        if let Some(last) = self.ring.latest() {
            if s.t_s < last.t_s {
                self.rejected = self.rejected.saturating_add(1);
                return Pushed::Rejected;
            }
        }
        let day = sat32(s.t_s / DAY_S);
        let mut res = Pushed::Added;
        if self.open_valid && day != self.open.day {
            self.close_day();
            res = Pushed::ClosedDay;
        }
        if !self.open_valid {
            self.open = Day {
                day,
                ..Day::default()
            };
            self.open_valid = true;
            self.open_hour = 24;
            self.open_err_hour = 24;
        }
        let o = &mut self.open;
        o.samples = o.samples.saturating_add(1);
        // Samples arrive in time order, so a new hour of the day is one not seen last.
        let hour = ((s.t_s % DAY_S) / 3600) as u8;
        if hour != self.open_hour {
            self.open_hour = hour;
            o.hours = o.hours.saturating_add(1);
        }
        let e = s.errors();
        if e > 0 {
            o.err_samples = o.err_samples.saturating_add(1);
            if hour != self.open_err_hour {
                self.open_err_hour = hour;
                o.err_hours = o.err_hours.saturating_add(1);
            }
        }
        o.ios = o.ios.saturating_add(s.ios());
        o.errors = o.errors.saturating_add(e);
        o.max_sample_errors = o.max_sample_errors.max(sat32(e));
        o.remapped_end = sat32(s.remapped_total);
        o.spare_free_end = s.spare_free_blocks;
        self.ring.push(s);
        if let Some(sel) = &mut self.select {
            sel.offset += 1;
        }
        res
    }

    /// Closes the open day. Up to [`SORT_MEDIAN_MAX`] samples its medians are taken at
    /// once; beyond, they are left 0 and found by [`Health::median_step`] over the next
    /// samples (a pending selection for the previous day is finished first, at once).
    fn close_day(&mut self) {
        while self.select.is_some() {
            self.median_step();
        }
        let n = usize::from(self.open.samples).min(self.ring.len());
        if n <= SORT_MEDIAN_MAX {
            self.open.lat_p99_med = day_median(&self.ring, Field::LatP99, n);
            self.open.ios_med = day_median(&self.ring, Field::Ios, n);
        } else {
            let n = n.min(SELECT_MAX);
            let rank = rank_for(n, 500) as u32;
            self.select = Some(MedianSelect {
                n,
                offset: 0,
                pos: 0,
                pass: 0,
                lat: Radix::new(Field::LatP99, rank),
                ios: Radix::new(Field::Ios, rank),
            });
        }
        self.daily.push(self.open);
        self.open_valid = false;
    }

    /// True while the newest closed day's medians are still being found.
    pub const fn median_pending(&self) -> bool {
        self.select.is_some()
    }

    /// Visits up to [`MEDIAN_CHUNK`] samples towards the newest closed day's medians;
    /// when found, they are stored in its [`Day`]. True when none is pending any more.
    pub fn median_step(&mut self) -> bool {
        let Some(sel) = &mut self.select else {
            return true;
        };
        let shift = 24u32.saturating_sub(sel.pass * 8);
        let take = MEDIAN_CHUNK.min(sel.n.saturating_sub(sel.pos));
        for s in self
            .ring
            .recent(RING_LEN)
            .skip(sel.offset + sel.pos)
            .take(take)
        {
            sel.lat.count(&s, shift);
            sel.ios.count(&s, shift);
        }
        sel.pos += take;
        if sel.pos < sel.n {
            return false;
        }
        sel.lat.digit(shift);
        sel.ios.digit(shift);
        sel.pos = 0;
        sel.pass += 1;
        if sel.pass < 4 {
            return false;
        }
        let (lat, ios) = (sel.lat.prefix, sel.ios.prefix);
        self.select = None;
        self.daily.set_newest_medians(lat, ios);
        true
    }

    /// The day being filled, if any sample arrived in it.
    pub fn open_day(&self) -> Option<&Day> {
        self.open_valid.then_some(&self.open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(t: u64, v: u64) -> Sample {
        Sample {
            t_s: t,
            reads: v,
            lat_p99_us: v,
            ..Sample::default()
        }
    }

    #[test]
    fn ring_wraps_and_keeps_newest() {
        let mut r = Ring::new();
        assert!(r.is_empty());
        for i in 0..2500u64 {
            r.push(&sample(i, i));
        }
        assert_eq!(r.len(), RING_LEN);
        assert_eq!(r.get(0).unwrap().t_s, 2499);
        assert_eq!(r.get(999).unwrap().t_s, 1500);
        assert_eq!(r.get(1000), None);
    }

    #[test]
    fn recent_is_get_by_age_at_every_fill_level() {
        let mut r = Ring::new();
        for i in 0..2100u64 {
            if i % 97 == 0 || (995..1005).contains(&i) {
                for n in [0, 1, 5, 999, 1000, 1001] {
                    let got: Vec<Sample> = r.recent(n).collect();
                    let want: Vec<Sample> = (0..n).map_while(|a| r.get(a)).collect();
                    assert_eq!(got, want, "after {i} pushes, n {n}");
                }
            }
            r.push(&sample(i, i));
        }
    }

    #[test]
    fn summary_known_values() {
        let mut r = Ring::new();
        for v in [2u64, 4, 4, 4, 5, 5, 7, 9] {
            r.push(&sample(0, v));
        }
        let s = summary(&r, Field::Reads, 100).unwrap();
        assert_eq!((s.n, s.min, s.max, s.mean, s.stddev), (8, 2, 9, 5, 2));
        assert_eq!(percentile(&r, Field::Reads, 100, 500), Some(4));
        assert_eq!(percentile(&r, Field::Reads, 100, 1000), Some(9));
        assert_eq!(percentile(&r, Field::Reads, 100, 0), Some(2));
        assert_eq!(percentile(&r, Field::Reads, 3, 500), Some(7));
        assert_eq!(summary(&Ring::new(), Field::Reads, 10), None);
    }

    #[test]
    fn summary_extreme_values_do_not_overflow() {
        let mut r = Ring::new();
        for i in 0..RING_LEN as u64 {
            r.push(&sample(i, if i % 2 == 0 { u64::MAX } else { 0 }));
        }
        let s = summary(&r, Field::Reads, RING_LEN).unwrap();
        assert_eq!(s.mean, u64::MAX / 2);
        // Exact stddev is 2^63 - 0.5; the span is beyond 2^48, so within 2^-46 relative.
        assert!(s.stddev.abs_diff(1 << 63) <= 1 << 17, "{}", s.stddev);
        assert_eq!(percentile(&r, Field::Reads, RING_LEN, 999), Some(u64::MAX));
    }

    #[test]
    fn daily_aggregation_closes_days_with_medians() {
        let mut h = Health::new();
        for hour in 0..72u64 {
            let s = Sample {
                t_s: hour * 3600,
                reads: 100 + hour % 24,
                read_errors: u64::from(hour % 24 == 5) * 3,
                lat_p99_us: 1000 + (hour % 24) * 10,
                remapped_total: hour / 24,
                spare_free_blocks: 500 - hour / 24,
                ..Sample::default()
            };
            let p = h.push(&s);
            assert_eq!(p == Pushed::ClosedDay, hour % 24 == 0 && hour > 0);
        }
        assert_eq!(h.daily.len(), 2);
        let d = h.daily.get(0).unwrap();
        assert_eq!((d.day, d.samples, d.err_samples, d.errors), (1, 24, 1, 3));
        assert_eq!(d.lat_p99_med, 1110);
        assert_eq!(d.ios_med, 111);
        assert_eq!((d.remapped_end, d.spare_free_end), (1, 499));
        assert_eq!(h.push(&sample(0, 1)), Pushed::Rejected);
        assert_eq!(h.rejected, 1);
    }

    /// Lower median of the newest `n` of `vals`, saturated to `u32`.
    fn reference_median(vals: &[u64], n: usize) -> u32 {
        let mut v: Vec<u32> = vals[vals.len() - n..].iter().map(|&x| sat32(x)).collect();
        v.sort_unstable();
        v[rank_for(n, 500) - 1]
    }

    #[test]
    fn medians_of_long_days_are_found_over_the_next_samples() {
        // 5-minute samples (288 a day) and 1-minute ones (1440, of which the newest 936
        // are covered), stepped once per following sample as the engine does, or not at
        // all (finished when the next day closes); values spanning every byte of a u32,
        // and beyond (saturated).
        for (interval, step) in [(300u64, true), (60, true), (300, false)] {
            let mut h = Health::new();
            let (mut lat, mut ios) = (Vec::new(), Vec::new());
            let mut want = None;
            let mut steps = 0;
            let mut checked = 0;
            for i in 0..4 * DAY_S / interval {
                let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let s = Sample {
                    t_s: i * interval,
                    reads: x >> 34,
                    writes: u64::from(i % 7 == 0) << 33,
                    lat_p99_us: (x >> 3) & 0x1_ffff_ffff,
                    ..Sample::default()
                };
                if h.push(&s) == Pushed::ClosedDay {
                    if let Some(w) = want.take() {
                        // Not stepped: the previous day was finished at this close.
                        assert!(!step);
                        let d = h.daily.get(1).unwrap();
                        assert_eq!((d.lat_p99_med, d.ios_med), w);
                        checked += 1;
                    }
                    let n = lat.len().min(RING_LEN).min(SELECT_MAX);
                    want = Some((reference_median(&lat, n), reference_median(&ios, n)));
                    assert!(h.median_pending());
                    let d = h.daily.get(0).unwrap();
                    assert_eq!((d.lat_p99_med, d.ios_med), (0, 0));
                    lat.clear();
                    ios.clear();
                    steps = 0;
                } else if step && h.median_pending() {
                    steps += 1;
                    if h.median_step() {
                        let d = h.daily.get(0).unwrap();
                        let w = want.take().unwrap();
                        assert_eq!((d.lat_p99_med, d.ios_med), w, "interval {interval}");
                        assert!(steps <= 40, "{steps} steps");
                        checked += 1;
                    }
                }
                lat.push(s.lat_p99_us);
                ios.push(s.ios());
            }
            assert_eq!(checked, if step { 3 } else { 2 }, "interval {interval}");
        }
    }

    #[test]
    fn state_fits_the_budget() {
        assert_eq!(core::mem::size_of::<Rec>(), 56);
        assert!(core::mem::size_of::<Health>() <= 60 * 1024);
    }

    proptest! {
        #[test]
        fn summary_matches_f64(vals in proptest::collection::vec(0u64..1u64 << 40, 1..200)) {
            let mut r = Ring::new();
            for &v in &vals {
                r.push(&sample(0, v));
            }
            let s = summary(&r, Field::Reads, RING_LEN).unwrap();
            let n = vals.len() as f64;
            let mean = vals.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = vals.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            prop_assert!((s.mean as f64 - mean).abs() <= 1.0 + mean * 1e-12);
            prop_assert!((s.stddev as f64 - var.sqrt()).abs() <= 1.0 + var.sqrt() * 1e-9);
            let mut sorted = vals.clone();
            sorted.sort_unstable();
            for p in [0u32, 100, 500, 900, 990, 1000] {
                let want = sorted[rank_for(vals.len(), p) - 1];
                prop_assert_eq!(percentile(&r, Field::Reads, RING_LEN, p), Some(want));
            }
        }

        #[test]
        fn day_median_sorted_or_bisected_is_the_lower_median(
            vals in proptest::collection::vec(prop_oneof![0u64..1000, any::<u64>()], 0..300),
            n in 0usize..300,
        ) {
            let mut r = Ring::new();
            for &v in &vals {
                r.push(&sample(0, v));
            }
            let n = n.min(vals.len());
            let mut want: Vec<u32> = vals[vals.len() - n..].iter().map(|&v| sat32(v)).collect();
            want.sort_unstable();
            let want = want.get(rank_for(n, 500) - 1).copied().unwrap_or(0);
            prop_assert_eq!(day_median(&r, Field::LatP99, n), want);
            prop_assert_eq!(day_median(&r, Field::Reads, n), want);
        }

        #[test]
        fn any_samples_never_panic(vals in proptest::collection::vec(any::<(u64, u64, u64)>(), 1..50)) {
            let mut h = Health::new();
            for (t, a, b) in vals {
                let s = Sample { t_s: t, reads: a, read_errors: b, writes: a, write_errors: b,
                    lat_p50_us: a, lat_p99_us: b, remapped_total: a, pending_total: b, spare_free_blocks: a };
                h.push(&s);
            }
            for f in [Field::Ios, Field::Errors, Field::LatP99, Field::SpareFree] {
                let _ = summary(&h.ring, f, RING_LEN);
                let _ = percentile(&h.ring, f, RING_LEN, 990);
            }
        }
    }
}
