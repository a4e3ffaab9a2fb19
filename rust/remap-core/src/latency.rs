//! I/O latency as a log-linear histogram: what the module's hot path records per bio
//! (one bucket index, found with a leading-zero count and two shifts), and the
//! percentiles a sample takes from the counts of an interval.
//!
//! Times are kept in units of 2^[`UNIT_SHIFT`] ns (1.024 µs). Below 16 units every unit
//! has its bucket; above, each power of two is split in 16 buckets, so a bucket is at
//! most 1/16 (6.25%) of its lower bound wide: a percentile read from the histogram (the
//! middle of its bucket) is within 3.2% of the exact one, plus one unit. The last bucket
//! holds everything from about 266 s up.

/// Bits of a value kept below its leading one (16 buckets per power of two).
pub const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Nanoseconds per histogram unit, as a shift (1 unit = 1,024 ns).
pub const UNIT_SHIFT: u32 = 10;
/// Buckets of a histogram.
pub const BUCKETS: usize = 400;

/// The bucket of an I/O that took `ns` nanoseconds.
pub const fn bucket(ns: u64) -> usize {
    let v = ns >> UNIT_SHIFT;
    if v < SUB {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    // v >> shift is in SUB..2*SUB.
    let b = (shift as u64) * SUB + (v >> shift);
    if b >= BUCKETS as u64 {
        BUCKETS - 1
    } else {
        b as usize
    }
}

/// The lowest value of bucket `b`, in units.
const fn low_units(b: usize) -> u64 {
    let b = b as u64;
    if b < SUB {
        return b;
    }
    let shift = b / SUB - 1;
    (b - shift * SUB) << shift
}

/// The lowest latency bucket `b` holds, in nanoseconds.
pub const fn low_ns(b: usize) -> u64 {
    low_units(b) << UNIT_SHIFT
}

/// The value a percentile falling in bucket `b` is reported as, in µs: the middle of
/// the bucket (the last bucket, open-ended: its lower bound).
pub const fn value_us(b: usize) -> u64 {
    let lo = low_units(b);
    let mid2 = if b + 1 >= BUCKETS {
        2 * lo
    } else {
        lo + low_units(b + 1)
    };
    // (mid2 / 2) units * 1024 ns / 1000.
    mid2 * 512 / 1000
}

/// The `permille` percentile (1..=1000) of the interval whose per-bucket counts are
/// `now[i] - then[i]` (cumulative counters read at the interval's end and start; a
/// counter lower than before was reset, and counts from zero), in µs; 0 when the
/// interval holds no I/O. The rank is the nearest-rank one: the smallest value at or
/// below which `permille`‰ of the I/Os lie.
pub fn percentile_us(now: &[u64], then: &[u64], permille: u32) -> u64 {
    let delta = |i: usize| {
        let n = now.get(i).copied().unwrap_or(0);
        let t = then.get(i).copied().unwrap_or(0);
        n.checked_sub(t).unwrap_or(n)
    };
    let total = (0..BUCKETS).fold(0u64, |a, i| a.saturating_add(delta(i)));
    if total == 0 {
        return 0;
    }
    let permille = u64::from(permille.clamp(1, 1000));
    // ceil(total * permille / 1000) without overflow: total < 2^64, permille <= 1000.
    let rank = (total / 1000) * permille + ((total % 1000) * permille).div_ceil(1000);
    let rank = rank.max(1);
    let mut seen = 0u64;
    for i in 0..BUCKETS {
        seen = seen.saturating_add(delta(i));
        if seen >= rank {
            return value_us(i);
        }
    }
    value_us(BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1023), 0);
        assert_eq!(bucket(1024), 1);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        for b in 1..BUCKETS {
            assert!(low_ns(b) > low_ns(b - 1), "bucket {b}");
            assert_eq!(bucket(low_ns(b)), b, "low of {b}");
            assert_eq!(bucket(low_ns(b) - 1), b - 1, "below {b}");
        }
        // The last bucket starts near 266 s.
        assert!(low_ns(BUCKETS - 1) > 260_000_000_000);
        assert!(low_ns(BUCKETS - 1) < 270_000_000_000);
    }

    #[test]
    fn percentiles_of_known_intervals() {
        let mut h = [0u64; BUCKETS];
        assert_eq!(percentile_us(&h, &h, 500), 0);
        // 99 I/Os of 100 µs, one of 50 ms.
        h[bucket(100_000)] += 99;
        h[bucket(50_000_000)] += 1;
        let zero = [0u64; BUCKETS];
        let p50 = percentile_us(&h, &zero, 500);
        let p99 = percentile_us(&h, &zero, 990);
        let p100 = percentile_us(&h, &zero, 1000);
        assert!((97..=103).contains(&p50), "p50 {p50}");
        assert_eq!(p99, p50);
        assert!((48_500..=51_500).contains(&p100), "p100 {p100}");
        // Only the interval counts: the same counts at both ends give nothing.
        assert_eq!(percentile_us(&h, &h, 500), 0);
        // A counter below its previous value was reset: it counts from zero.
        let mut before = [0u64; BUCKETS];
        before[bucket(100_000)] = 1000;
        assert_eq!(percentile_us(&h, &before, 990), p50);
    }

    proptest! {
        #[test]
        fn a_percentile_is_within_a_bucket_of_the_exact_one(
            mut v in proptest::collection::vec(0u64..20_000_000_000, 1..400),
            pm in 1u32..=1000,
        ) {
            let mut h = [0u64; BUCKETS];
            for &ns in &v {
                h[bucket(ns)] += 1;
            }
            v.sort_unstable();
            let n = v.len() as u64;
            let rank = (n * u64::from(pm)).div_ceil(1000).max(1);
            let exact_us = v[(rank - 1) as usize] / 1000;
            let got = percentile_us(&h, &[0u64; BUCKETS], pm);
            // Within 3.2% plus a unit (1.024 µs) and the ns -> µs rounding.
            let tol = exact_us / 31 + 3;
            prop_assert!(got.abs_diff(exact_us) <= tol, "exact {} got {}", exact_us, got);
        }
    }
}
