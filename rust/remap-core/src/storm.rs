//! Remap storm guard: a token bucket over remaps per minute.
//!
//! A disk that grows bad blocks loses a few at a time; a dying or vanished disk fails
//! everything at once. Remapping every failed block of the latter would only fill the
//! spare with a copy of a dead disk, so beyond a configured rate the target stops
//! remapping and reports a failed state instead (DESIGN §5).
//!
//! The bucket holds up to `rate` remaps and refills at `rate` per minute: a burst of
//! `rate` remaps is allowed at once, a steady `rate` per minute forever, anything
//! faster trips it. Time is the caller's monotonic clock in milliseconds.

/// Milliseconds per minute: one remap costs this many token units.
const UNIT: u64 = 60_000;

/// The token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StormGuard {
    /// Remaps per minute; 0 disables the guard.
    rate: u64,
    /// Tokens, in units of 1/60000 remap.
    tokens: u64,
    /// Time of the last update.
    last_ms: u64,
}

impl StormGuard {
    /// A full bucket for `rate` remaps per minute (0: no limit), at time `now_ms`.
    pub const fn new(rate: u32, now_ms: u64) -> Self {
        let rate = rate as u64;
        StormGuard {
            rate,
            tokens: rate.saturating_mul(UNIT),
            last_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms).min(UNIT);
        self.tokens = self
            .tokens
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(self.rate.saturating_mul(UNIT));
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Whether `n` remaps at `now_ms` would be within the rate (nothing is taken).
    pub fn has_room(&mut self, n: u64, now_ms: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        self.refill(now_ms);
        n.checked_mul(UNIT).is_some_and(|cost| cost <= self.tokens)
    }

    /// Takes `n` remaps at `now_ms`; false (and nothing taken) when that exceeds the rate.
    pub fn take(&mut self, n: u64, now_ms: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        self.refill(now_ms);
        match n.checked_mul(UNIT) {
            Some(cost) if cost <= self.tokens => {
                self.tokens -= cost;
                true
            }
            _ => false,
        }
    }

    /// Remaps available right now.
    pub fn available(&self, now_ms: u64) -> u64 {
        if self.rate == 0 {
            return u64::MAX;
        }
        let mut c = *self;
        c.refill(now_ms);
        c.tokens / UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_room_takes_nothing() {
        let mut g = StormGuard::new(4, 0);
        assert!(g.has_room(4, 0));
        assert!(!g.has_room(5, 0));
        assert!(g.has_room(4, 0), "asking took nothing");
        assert!(g.take(3, 0));
        assert!(g.has_room(1, 0) && !g.has_room(2, 0));
        // A quarter of a minute refills one of 4 per minute.
        assert!(g.has_room(2, 15_000));
        assert!(!g.has_room(u64::MAX, 15_000));
        assert!(StormGuard::new(0, 0).has_room(u64::MAX, 0));
    }

    #[test]
    fn burst_then_steady_rate() {
        let mut g = StormGuard::new(60, 1000);
        assert_eq!(g.available(1000), 60);
        assert!(g.take(60, 1000));
        assert!(!g.take(1, 1000), "the burst is spent");
        assert!(!g.take(1, 1999));
        assert!(g.take(1, 2000), "one per second comes back");
        assert!(!g.take(2, 3000));
        assert!(g.take(1, 3000));
        // A long pause refills to the burst size, not beyond.
        assert_eq!(g.available(10_000_000), 60);
        assert!(!g.take(61, 10_000_000));
    }

    #[test]
    fn zero_is_unlimited_and_time_going_backwards_is_harmless() {
        let mut g = StormGuard::new(0, 0);
        assert!(g.take(u64::MAX, 0));
        let mut g = StormGuard::new(10, 5000);
        assert!(g.take(10, 5000));
        assert!(!g.take(1, 100));
        assert!(g.take(1, 11_000));
    }

    proptest::proptest! {
        #[test]
        fn never_more_than_burst_plus_rate(rate in 1u32..5000, steps in proptest::collection::vec((0u64..5000, 1u64..50), 1..200)) {
            let mut g = StormGuard::new(rate, 0);
            let mut now = 0u64;
            let mut taken = 0u64;
            for (dt, n) in steps {
                now += dt;
                if g.take(n, now) { taken += n; }
                // Over [0, now]: at most the burst plus the refill.
                let bound = u64::from(rate) + now * u64::from(rate) / 60_000;
                proptest::prop_assert!(taken <= bound, "{taken} > {bound}");
            }
        }
    }
}
