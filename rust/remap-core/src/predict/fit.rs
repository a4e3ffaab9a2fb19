//! Least-squares line fit over a short series, in 128-bit integers.
//!
//! x are small non-negative integers (day offsets, < 2^16), y are clamped to
//! |y| < 2^31 (rates in ppb, log2 values in Q16, block counts). With at most
//! [`MAX_POINTS`] points every sum fits an `i128` with room to spare, the slope numerator
//! fits an `i64` (< 2^59), and the only divisions are 128-by-64 shift-subtract ones.

use super::super::fixed;

/// Points a series holds.
pub(super) const MAX_POINTS: usize = 64;
const Y_MAX: i64 = (1 << 31) - 1;
const X_MAX: i64 = (1 << 16) - 1;

/// A series of (x, y) points, oldest first.
#[derive(Clone, Copy)]
pub(super) struct Series {
    x: [i64; MAX_POINTS],
    y: [i64; MAX_POINTS],
    n: usize,
}

impl Series {
    pub(super) const fn new() -> Self {
        Series {
            x: [0; MAX_POINTS],
            y: [0; MAX_POINTS],
            n: 0,
        }
    }

    /// Appends a point (clamped into range); ignored when full.
    pub(super) fn push(&mut self, x: i64, y: i64) {
        if let (Some(px), Some(py)) = (self.x.get_mut(self.n), self.y.get_mut(self.n)) {
            *px = x.clamp(0, X_MAX);
            *py = y.clamp(-Y_MAX, Y_MAX);
            self.n += 1;
        }
    }

    pub(super) const fn len(&self) -> usize {
        self.n
    }

    pub(super) fn y(&self, i: usize) -> Option<i64> {
        if i < self.n {
            self.y.get(i).copied()
        } else {
            None
        }
    }

    pub(super) fn x(&self, i: usize) -> Option<i64> {
        if i < self.n {
            self.x.get(i).copied()
        } else {
            None
        }
    }
}

/// A fitted line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fit {
    /// Slope in Q16 (y units per x unit).
    pub(super) slope: i64,
    /// Fitted y at the last point's x, Q16.
    pub(super) at_last: i64,
    /// x of the last point.
    pub(super) last_x: i64,
    /// Coefficient of determination, permille (0 when y is constant).
    pub(super) r2: u32,
    /// Points fitted.
    pub(super) n: u32,
}

impl Fit {
    /// Fitted y at `x`, Q16, saturating.
    pub(super) fn at(&self, x: i64) -> i64 {
        let dx = i128::from(x.saturating_sub(self.last_x));
        fixed::clamp_i64(i128::from(self.at_last) + i128::from(self.slope) * dx)
    }
}

/// Least-squares fit of the first `upto` points of `s`; `None` with fewer than 3 points
/// or when all x are equal.
pub(super) fn least_squares(s: &Series, upto: usize) -> Option<Fit> {
    let n = upto.min(s.n);
    if n < 3 {
        return None;
    }
    let (mut sx, mut sy, mut sxx, mut sxy, mut syy) = (0i128, 0i128, 0i128, 0i128, 0i128);
    for i in 0..n {
        let x = i128::from(s.x(i)?);
        let y = i128::from(s.y(i)?);
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
        syy += y * y;
    }
    let nn = n as i128;
    let dx = nn * sxx - sx * sx;
    if dx <= 0 {
        return None;
    }
    let num = nn * sxy - sx * sy;
    let dy = nn * syy - sy * sy;
    let slope = fixed::div_i128(num << fixed::Q, dx)?;
    let r2 = if dy <= 0 || num == 0 {
        0
    } else {
        fixed::ratio_permille((num * num).unsigned_abs(), (dx * dy).unsigned_abs())
    };
    let last_x = s.x(n - 1)?;
    let mean_at_0 = fixed::div_i128((sy << fixed::Q) - i128::from(slope) * sx, nn)?;
    let at_last = fixed::clamp_i64(i128::from(mean_at_0) + i128::from(slope) * i128::from(last_x));
    Some(Fit {
        slope,
        at_last,
        last_x,
        r2,
        n: n as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_line() {
        let mut s = Series::new();
        for x in 0..10 {
            s.push(x, 7 + 3 * x);
        }
        let f = least_squares(&s, 64).unwrap();
        assert_eq!(f.slope, 3 << 16);
        assert_eq!(f.at_last, 34 << 16);
        assert_eq!(f.r2, 1000);
        assert_eq!(f.at(12), 43 << 16);
        let f = least_squares(&s, 5).unwrap();
        assert_eq!((f.n, f.last_x, f.at_last), (5, 4, 19 << 16));
    }

    #[test]
    fn degenerate_inputs() {
        let mut s = Series::new();
        s.push(1, 5);
        s.push(1, 6);
        assert!(least_squares(&s, 64).is_none());
        s.push(1, 7);
        assert!(least_squares(&s, 64).is_none());
        let mut c = Series::new();
        for x in 0..5 {
            c.push(x, 9);
        }
        let f = least_squares(&c, 64).unwrap();
        assert_eq!((f.slope, f.r2, f.at_last), (0, 0, 9 << 16));
    }

    proptest! {
        #[test]
        fn matches_f64_reference(pts in proptest::collection::vec((0i64..1000, -1_000_000i64..1_000_000), 3..64)) {
            let mut s = Series::new();
            let mut xs: Vec<i64> = pts.iter().map(|p| p.0).collect();
            xs.sort_unstable();
            for (x, p) in xs.iter().zip(&pts) {
                s.push(*x, p.1);
            }
            let n = pts.len() as f64;
            let (mx, my) = (xs.iter().sum::<i64>() as f64 / n, pts.iter().map(|p| p.1).sum::<i64>() as f64 / n);
            let sxx: f64 = xs.iter().map(|&x| (x as f64 - mx).powi(2)).sum();
            prop_assume!(sxx > 0.0);
            let sxy: f64 = xs.iter().zip(&pts).map(|(&x, p)| (x as f64 - mx) * (p.1 as f64 - my)).sum();
            let syy: f64 = pts.iter().map(|p| (p.1 as f64 - my).powi(2)).sum();
            let slope = sxy / sxx;
            let f = least_squares(&s, 64).unwrap();
            // Slope: truncation of one Q16 unit.
            prop_assert!((f.slope as f64 / 65536.0 - slope).abs() <= 1.0 / 65536.0 + slope.abs() * 1e-12);
            let last = *xs.last().unwrap() as f64;
            let at_last = my + slope * (last - mx);
            prop_assert!((f.at_last as f64 / 65536.0 - at_last).abs() <= 1000.0 / 65536.0 + at_last.abs() * 1e-9,
                "{} vs {}", f.at_last as f64 / 65536.0, at_last);
            if syy > 0.0 {
                let r2 = sxy * sxy / (sxx * syy) * 1000.0;
                prop_assert!((f.r2 as f64 - r2).abs() <= 1.0 + 1e-9 * r2);
            }
        }

        #[test]
        fn extreme_values_never_overflow(pts in proptest::collection::vec((any::<i64>(), any::<i64>()), 0..64)) {
            let mut s = Series::new();
            for (x, y) in pts {
                s.push(x, y);
            }
            if let Some(f) = least_squares(&s, 64) {
                prop_assert!(f.r2 <= 1000);
                let _ = f.at(i64::MAX);
                let _ = f.at(i64::MIN);
            }
        }
    }
}
