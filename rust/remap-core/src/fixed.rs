//! Integer and fixed-point arithmetic for the statistics and prediction code.
//!
//! The kernel has no floating point and no 128-bit division helper, so everything here
//! is built from 64-bit operations, 128-bit multiplications and a shift-and-subtract
//! divider. Every function is total: it returns `None` or saturates instead of
//! overflowing, and never panics.
//!
//! # Formats
//! - **Q16** (`i64` or `u64`, 16 fractional bits): `x` stands for `x / 65536`. Used for
//!   log2 values, regression slopes and fitted values. Resolution 1.5e-5.
//! - **permille** (`u32`/`u16`, 0..=1000): confidences, shares and R².
//! - **ppb** (`u64`): error rates, failed I/Os per 10^9 I/Os.
//!
//! # Accuracy bounds (checked against `f64` in the tests)
//! - [`isqrt_u64`], [`isqrt_u128`], [`div_u128`], [`div_i128`]: exact (floor, or
//!   truncation toward zero for the signed divider).
//! - [`log2_q16`]: absolute error ≤ 2⁻¹⁶ (one Q16 unit) for every `u64` input.
//! - [`exp2_q16`]: relative error ≤ 2⁻¹⁴ while the result fits in 48 integer bits.
//! - [`ratio_permille`]: within 1 permille of the exact ratio (floor).

/// Fractional bits of the Q16 format.
pub const Q: u32 = 16;
/// 1.0 in Q16.
pub const ONE: i64 = 1 << Q;

/// `floor(sqrt(n))`, exact.
pub const fn isqrt_u64(n: u64) -> u64 {
    let mut x = n;
    let mut res: u64 = 0;
    let mut bit: u64 = 1 << 62;
    while bit > n {
        bit >>= 2;
    }
    // INVARIANT: res < 2^32 and bit <= 2^62, so res + bit cannot overflow.
    while bit != 0 {
        if x >= res + bit {
            x -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    res
}

/// `floor(sqrt(n))` of a 128-bit value, exact.
pub const fn isqrt_u128(n: u128) -> u64 {
    let mut x = n;
    let mut res: u128 = 0;
    let mut bit: u128 = 1 << 126;
    while bit > n {
        bit >>= 2;
    }
    while bit != 0 {
        if x >= res + bit {
            x -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    // res < 2^64 because n < 2^128.
    res as u64
}

/// `floor(n / d)` for a 128-bit dividend, without a 128-bit division instruction or
/// helper. `None` when `d` is 0.
///
/// Both below 2^64: one 64-bit division. A divisor below 2^32: long division by 32-bit
/// digits (four 64-bit divisions). Otherwise shift-and-subtract over the quotient's
/// bits only (the divisor aligned with the dividend's top bit first): one iteration per
/// quotient bit, at most 96 since the divisor has at least 33 bits.
pub const fn div_u128(n: u128, d: u128) -> Option<u128> {
    if d == 0 {
        return None;
    }
    if n < d {
        return Some(0);
    }
    if n >> 64 == 0 {
        // d <= n < 2^64.
        return Some(((n as u64) / (d as u64)) as u128);
    }
    if d >> 32 == 0 {
        let d = d as u64;
        let mut q: u128 = 0;
        let mut r: u64 = 0;
        let mut k = 4;
        while k > 0 {
            k -= 1;
            // r < d < 2^32, so the next partial dividend fits in 64 bits.
            let cur = (r << 32) | ((n >> (32 * k)) as u64 & 0xffff_ffff);
            q |= ((cur / d) as u128) << (32 * k);
            r = cur % d;
        }
        return Some(q);
    }
    // n >= d, so d has at least as many leading zeros as n: the shift loses nothing.
    let shift = d.leading_zeros() - n.leading_zeros();
    let mut dd = d << shift;
    let mut r = n;
    let mut q: u128 = 0;
    let mut i = shift + 1;
    // INVARIANT: r < 2 * dd before each step (dd and the dividend share their top bit,
    // then each step leaves r < dd and halves dd exactly, back down to d).
    while i > 0 {
        i -= 1;
        if r >= dd {
            r -= dd;
            q |= 1 << i;
        }
        dd >>= 1;
    }
    Some(q)
}

/// `n / d` for signed 128-bit values, truncated toward zero and saturated to `i64`.
/// `None` when `d` is 0.
pub const fn div_i128(n: i128, d: i128) -> Option<i64> {
    let neg = (n < 0) != (d < 0);
    let q = match div_u128(n.unsigned_abs(), d.unsigned_abs()) {
        Some(q) => q,
        None => return None,
    };
    if neg {
        if q > i64::MAX as u128 + 1 {
            Some(i64::MIN)
        } else {
            Some((q as i128).wrapping_neg() as i64)
        }
    } else if q > i64::MAX as u128 {
        Some(i64::MAX)
    } else {
        Some(q as i64)
    }
}

/// `a * b / d` with a 128-bit intermediate, truncated toward zero and saturated to
/// `i64`. `None` when `d` is 0.
pub const fn mul_div(a: i64, b: i64, d: i64) -> Option<i64> {
    div_i128(a as i128 * b as i128, d as i128)
}

/// `1000 * a / b` (floor), clamped to 1000; 0 when `b` is 0.
///
/// Both operands are shifted down together until `b` fits in 40 bits, so the result
/// is within 1 permille of the exact ratio without a 128-bit division.
pub const fn ratio_permille(a: u128, b: u128) -> u32 {
    if b == 0 {
        return 0;
    }
    if a >= b {
        return 1000;
    }
    let shift = if b >> 40 == 0 {
        0
    } else {
        128 - b.leading_zeros() - 40
    };
    let a = (a >> shift) as u64;
    let b = (b >> shift) as u64;
    if b == 0 {
        return 0;
    }
    // a < 2^40 (a < b), so a * 1000 < 2^50.
    let r = a * 1000 / b;
    if r > 1000 {
        1000
    } else {
        r as u32
    }
}

/// `log2(x)` in Q16 (floor at 2⁻¹⁶ resolution, error ≤ 2⁻¹⁶); `None` for 0.
///
/// Integer part from the position of the top bit; fractional bits one at a time by
/// squaring the mantissa (in Q2.62, with a 128-bit product).
pub const fn log2_q16(x: u64) -> Option<i64> {
    if x == 0 {
        return None;
    }
    let int = 63 - x.leading_zeros();
    // Mantissa in [1, 2) as Q2.62.
    let mut m: u64 = if int <= 62 { x << (62 - int) } else { x >> 1 };
    let mut frac: i64 = 0;
    let mut i = 0;
    while i < Q {
        let sq = ((m as u128 * m as u128) >> 62) as u64;
        frac <<= 1;
        if sq >= 1 << 63 {
            frac |= 1;
            m = sq >> 1;
        } else {
            m = sq;
        }
        i += 1;
    }
    Some(((int as i64) << Q) | frac)
}

/// `2^(y / 65536)` in Q16, saturating at `u64::MAX`; `y` is a Q16 exponent.
///
/// The fractional part uses a degree-5 polynomial for `2^f` on `[0, 1)` in Q30.
pub const fn exp2_q16(y: i64) -> u64 {
    let int = y >> Q; // floor
    let f = (y & (ONE - 1)) as u64; // Q16 in [0, 1)
                                    // 2^f = e^(f ln2): Taylor terms in Q30 with ln2 = 0.693147 (Q30: 744261118).
    const LN2_Q30: u64 = 744_261_118;
    let t = (f * LN2_Q30) >> Q; // f*ln2 in Q30, < 2^30
    let mut sum: u64 = 1 << 30;
    let mut term: u64 = 1 << 30;
    let mut k = 1;
    while k <= 7 {
        term = ((term * t) >> 30) / k;
        sum += term;
        k += 1;
    }
    // sum is 2^f in Q30, in [2^30, 2^31).
    let shift = int + Q as i64 - 30;
    if shift >= 0 {
        if shift >= 33 {
            u64::MAX
        } else {
            sum << shift
        }
    } else if shift <= -64 {
        0
    } else {
        sum >> (-shift)
    }
}

/// Saturating conversion of an `i128` to `i64`.
pub const fn clamp_i64(v: i128) -> i64 {
    if v > i64::MAX as i128 {
        i64::MAX
    } else if v < i64::MIN as i128 {
        i64::MIN
    } else {
        v as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn isqrt_known_values() {
        for (n, r) in [
            (0u64, 0u64),
            (1, 1),
            (3, 1),
            (4, 2),
            (15, 3),
            (16, 4),
            (u64::MAX, 4294967295),
        ] {
            assert_eq!(isqrt_u64(n), r, "{n}");
        }
        assert_eq!(isqrt_u128(u128::MAX), u64::MAX);
        assert_eq!(isqrt_u128(1 << 100), 1 << 50);
    }

    #[test]
    fn log2_exact_powers_and_bound() {
        for k in 0..64 {
            assert_eq!(log2_q16(1u64 << k), Some((k as i64) << 16));
        }
        assert_eq!(log2_q16(0), None);
        let mut x: u64 = 1;
        while x < u64::MAX / 3 {
            let got = log2_q16(x).unwrap() as f64 / 65536.0;
            let want = (x as f64).log2();
            assert!((got - want).abs() <= 1.0 / 65536.0, "{x}: {got} vs {want}");
            x = x * 3 + 1;
        }
    }

    #[test]
    fn exp2_matches_f64() {
        for y in (-20 * 65536..40 * 65536).step_by(12345) {
            let got = exp2_q16(y) as f64 / 65536.0;
            let want = (y as f64 / 65536.0).exp2();
            if want >= 1.0 {
                assert!(
                    (got - want).abs() / want <= 1.0 / 16384.0,
                    "{y}: {got} vs {want}"
                );
            }
        }
        assert_eq!(exp2_q16(0), 65536);
        assert_eq!(exp2_q16(i64::MAX), u64::MAX);
        assert_eq!(exp2_q16(i64::MIN), 0);
    }

    #[test]
    fn ratio_and_division_edges() {
        assert_eq!(ratio_permille(1, 3), 333);
        assert!(ratio_permille(u128::MAX - 1, u128::MAX) >= 999);
        assert_eq!(ratio_permille(5, 0), 0);
        assert_eq!(div_u128(u128::MAX, 1), Some(u128::MAX));
        assert_eq!(div_u128(u128::MAX, u128::MAX), Some(1));
        assert_eq!(div_u128(1, 0), None);
        assert_eq!(div_u128(u128::MAX, 3), Some(u128::MAX / 3));
        assert_eq!(div_u128(u128::MAX, 1 << 32), Some(u128::MAX >> 32));
        assert_eq!(
            div_u128(u128::MAX, (1 << 32) - 1),
            Some(u128::MAX / 0xffff_ffff)
        );
        assert_eq!(div_u128(1 << 64, 1 << 64), Some(1));
        assert_eq!(div_u128((1 << 64) - 1, 7), Some(((1 << 64) - 1) / 7));
        assert_eq!(div_i128(-7, 2), Some(-3));
        assert_eq!(div_i128(i128::MIN, 1), Some(i64::MIN));
        assert_eq!(div_i128(i128::MAX, -1), Some(i64::MIN));
        assert_eq!(mul_div(i64::MAX, i64::MAX, i64::MAX), Some(i64::MAX));
    }

    proptest! {
        #[test]
        fn isqrt_is_floor(n: u64) {
            let r = isqrt_u64(n) as u128;
            prop_assert!(r * r <= n as u128 && (r + 1) * (r + 1) > n as u128);
        }

        #[test]
        fn isqrt128_is_floor(n: u128) {
            let r = isqrt_u128(n) as u128;
            prop_assert!(r * r <= n);
            prop_assert!((r + 1).checked_mul(r + 1).is_none_or(|s| s > n));
        }

        #[test]
        fn div_u128_matches_native(n: u128, d in 1u128..) {
            prop_assert_eq!(div_u128(n, d), Some(n / d));
        }

        #[test]
        fn div_u128_matches_native_on_every_path(
            n: u128,
            nbits in 0u32..=128,
            dbits in 1u32..=128,
            d: u128,
        ) {
            // Dividends and divisors of every width: one 64-bit division, 32-bit digits,
            // shift-and-subtract over the quotient bits.
            let n = n.checked_shr(128 - nbits).unwrap_or(0);
            let d = (d.checked_shr(128 - dbits).unwrap_or(0)).max(1);
            prop_assert_eq!(div_u128(n, d), Some(n / d));
            prop_assert_eq!(div_u128(n | 1 << 127, d), Some((n | 1 << 127) / d));
        }

        #[test]
        fn div_i128_matches_native(n: i128, d: i128) {
            prop_assume!(d != 0);
            let want = n.checked_div(d).map(|q| q.clamp(i64::MIN as i128, i64::MAX as i128) as i64);
            prop_assume!(want.is_some());
            prop_assert_eq!(div_i128(n, d), want);
        }

        #[test]
        fn log2_within_one_unit(x in 1u64..) {
            let got = log2_q16(x).unwrap() as f64 / 65536.0;
            prop_assert!((got - (x as f64).log2()).abs() <= 1.0 / 65536.0);
        }

        #[test]
        fn ratio_within_one_permille(a: u128, b in 1u128..) {
            let got = ratio_permille(a, b) as f64;
            let want = ((a as f64 / b as f64) * 1000.0).min(1000.0);
            prop_assert!((got - want).abs() <= 1.0 + 1e-9 * want, "{} vs {}", got, want);
        }

        #[test]
        fn exp2_never_panics(y: i64) {
            let _ = exp2_q16(y);
        }
    }
}
