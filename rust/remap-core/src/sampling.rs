//! The module's sampler, the part that needs no kernel: one [`Sample`] from the
//! cumulative counters read at the start and end of an interval, the health score the
//! status line shows, and the text of an alert as the `health` and `alerts` messages
//! print it.

use super::latency;
use super::predict::{Alert, Level, Verdict, NO_TTF};
use super::stats::Sample;

/// Cumulative counters read at a sample's time: I/Os the target mapped and the scan
/// read, and errors the devices returned (whether hidden by a remap, recovered by a
/// retry, or passed up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Reads mapped, plus blocks the scan read.
    pub reads: u64,
    /// Writes mapped.
    pub writes: u64,
    /// Reads the main device failed (hot path and scan).
    pub read_errors: u64,
    /// Writes the main device failed.
    pub write_errors: u64,
}

impl Totals {
    /// Field by field, `self + o` (saturating).
    pub const fn plus(&self, o: &Totals) -> Totals {
        Totals {
            reads: self.reads.saturating_add(o.reads),
            writes: self.writes.saturating_add(o.writes),
            read_errors: self.read_errors.saturating_add(o.read_errors),
            write_errors: self.write_errors.saturating_add(o.write_errors),
        }
    }

    /// Field by field, the growth since `then` ([`delta`]).
    pub const fn since(&self, then: &Totals) -> Totals {
        Totals {
            reads: delta(self.reads, then.reads),
            writes: delta(self.writes, then.writes),
            read_errors: delta(self.read_errors, then.read_errors),
            write_errors: delta(self.write_errors, then.write_errors),
        }
    }
}

/// Levels at a sample's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Levels {
    /// Blocks remapped.
    pub remapped: u64,
    /// Blocks pending.
    pub pending: u64,
    /// Free spare data blocks.
    pub spare_free: u64,
}

/// `now - then` of a cumulative counter; a counter below its previous value was reset
/// (`clear_stats`) and counts from zero.
pub const fn delta(now: u64, then: u64) -> u64 {
    match now.checked_sub(then) {
        Some(d) => d,
        None => now,
    }
}

/// The sample of the interval ending at `t_s`. Each source of counters (the hot path,
/// the scan) is a pair (now, then) differenced on its own, so that one source's reset
/// does not hide the other's counts; latency percentiles come from the difference of
/// the histograms; levels as given. Returned saturated as the ring keeps it
/// ([`Sample::saturated`]).
pub fn sample(
    t_s: u64,
    sources: &[(Totals, Totals)],
    hist_now: &[u64],
    hist_then: &[u64],
    levels: &Levels,
) -> Sample {
    let mut s = Sample {
        t_s,
        lat_p50_us: latency::percentile_us(hist_now, hist_then, 500),
        lat_p99_us: latency::percentile_us(hist_now, hist_then, 990),
        remapped_total: levels.remapped,
        pending_total: levels.pending,
        spare_free_blocks: levels.spare_free,
        ..Sample::default()
    };
    let sum = sources
        .iter()
        .fold(Totals::default(), |a, (now, then)| a.plus(&now.since(then)));
    s.reads = sum.reads;
    s.read_errors = sum.read_errors;
    s.writes = sum.writes;
    s.write_errors = sum.write_errors;
    s.saturated()
}

/// Health score, 0 (failing now) to 100 (nothing to report), from the reported alert:
/// each level has its band, and within the band a more confident verdict scores
/// lower. info 100; notice 70-89; warning 40-69; critical 10-39; emergency 0-9.
pub fn health_score(a: &Alert) -> u8 {
    let (top, span) = match a.level {
        Level::Info => (100, 0),
        Level::Notice => (89, 19),
        Level::Warning => (69, 29),
        Level::Critical => (39, 29),
        Level::Emergency => (9, 9),
    };
    let conf = u32::from(a.confidence.min(1000));
    let drop = (conf * span) / 1000;
    (top - drop) as u8
}

/// Writes `v` in seconds, or `-` when there is none.
fn opt(out: &mut dyn core::fmt::Write, v: Option<u64>) -> core::fmt::Result {
    match v {
        Some(v) => write!(out, "{v}"),
        None => out.write_str("-"),
    }
}

/// Writes an alert as `t_s=.. level=.. score=.. ttf_s=..|- tts_s=..|- confidence=..
/// model=.. reason=.. detail=..` (confidence in permille; no newline).
pub fn write_alert(out: &mut dyn core::fmt::Write, a: &Alert) -> core::fmt::Result {
    write!(
        out,
        "t_s={} level={} score={} ttf_s=",
        a.t_s,
        a.level.as_str(),
        health_score(a)
    )?;
    opt(out, a.ttf_s)?;
    out.write_str(" tts_s=")?;
    opt(out, a.tts_s)?;
    write!(
        out,
        " confidence={} model={} reason={} detail={}",
        a.confidence,
        a.model.as_str(),
        a.reason.as_str(),
        a.detail
    )
}

/// Writes a model's verdict as `model=.. level=.. ttf_s=..|- confidence=.. reason=..
/// detail=..` (no newline).
pub fn write_verdict(out: &mut dyn core::fmt::Write, v: &Verdict) -> core::fmt::Result {
    write!(
        out,
        "model={} level={} ttf_s=",
        v.model.as_str(),
        v.level.as_str()
    )?;
    opt(out, (v.ttf_s != NO_TTF).then_some(v.ttf_s))?;
    write!(
        out,
        " confidence={} reason={} detail={}",
        v.confidence,
        v.reason.as_str(),
        v.detail
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::{bucket, BUCKETS};
    use crate::predict::{Engine, Model, Reason};

    #[test]
    fn a_sample_is_the_interval_difference() {
        let then = Totals {
            reads: 100,
            writes: 50,
            read_errors: 1,
            write_errors: 0,
        };
        let now = Totals {
            reads: 160,
            writes: 70,
            read_errors: 4,
            write_errors: 2,
        };
        let mut h0 = [0u64; BUCKETS];
        h0[bucket(5_000_000)] = 1000;
        let mut h1 = h0;
        h1[bucket(200_000)] += 79;
        h1[bucket(9_000_000)] += 1;
        let lv = Levels {
            remapped: 7,
            pending: 2,
            spare_free: 90,
        };
        let scan_then = Totals {
            reads: 1000,
            read_errors: 10,
            ..Totals::default()
        };
        let scan_now = Totals {
            reads: 1064,
            read_errors: 11,
            ..Totals::default()
        };
        let s = sample(3600, &[(now, then)], &h1, &h0, &lv);
        assert_eq!((s.t_s, s.reads, s.writes), (3600, 60, 20));
        assert_eq!((s.read_errors, s.write_errors), (3, 2));
        assert!((195..=205).contains(&s.lat_p50_us), "{}", s.lat_p50_us);
        assert!((8_800..=9_300).contains(&s.lat_p99_us), "{}", s.lat_p99_us);
        assert_eq!(
            (s.remapped_total, s.pending_total, s.spare_free_blocks),
            (7, 2, 90)
        );
        // Two sources add up.
        let s = sample(3600, &[(now, then), (scan_now, scan_then)], &h1, &h0, &lv);
        assert_eq!((s.reads, s.read_errors, s.writes), (124, 4, 20));
        // clear_stats between two samples: the hot path's counters start again from
        // zero; the scan's, larger than the hot path's, still count only their growth.
        let cleared = Totals {
            reads: 5,
            ..Totals::default()
        };
        let s = sample(
            7200,
            &[(cleared, now), (scan_now, scan_then)],
            &h1,
            &h1,
            &lv,
        );
        assert_eq!((s.reads, s.writes, s.lat_p50_us), (69, 0, 0));
        // Counts the ring keeps in 32 bits saturate as the ring saturates them.
        let big = Totals {
            read_errors: 1 << 40,
            ..Totals::default()
        };
        let s = sample(1, &[(big, Totals::default())], &h0, &h0, &lv);
        assert_eq!(s.read_errors, u64::from(u32::MAX));
    }

    #[test]
    fn scores_fall_with_the_level() {
        let mut a = *Engine::default().current();
        assert_eq!(health_score(&a), 100);
        let mut last = 101;
        for level in [
            Level::Info,
            Level::Notice,
            Level::Warning,
            Level::Critical,
            Level::Emergency,
        ] {
            a.level = level;
            for conf in [0u16, 500, 1000] {
                a.confidence = conf;
                let s = health_score(&a);
                assert!(
                    s < last || (level == Level::Info && s == 100),
                    "{level:?} {conf}"
                );
                last = s;
            }
            // A confidence beyond 1000 (none is made) scores as 1000.
            a.confidence = 60_000;
            assert_eq!(health_score(&a), last);
        }
        assert_eq!(last, 0);
    }

    #[test]
    fn samples_are_numbered_while_the_ring_holds_them() {
        let mut e = Engine::default();
        let n = crate::stats::RING_LEN as u64 + 5;
        for t in 0..n {
            e.push(&Sample {
                t_s: t * 60,
                reads: t,
                ..Sample::default()
            });
        }
        // Going back in time is refused and not numbered.
        e.push(&Sample::default());
        assert_eq!(e.samples(), n);
        assert_eq!(e.sample(4), None);
        assert_eq!(e.sample(5).map(|s| s.reads), Some(5));
        assert_eq!(e.sample(n - 1).map(|s| s.t_s), Some((n - 1) * 60));
        assert_eq!(e.sample(n), None);
        assert_eq!(e.sample(u64::MAX), None);
    }

    #[test]
    fn alert_text() {
        let a = Alert {
            t_s: 12,
            level: Level::Emergency,
            ttf_s: Some(0),
            tts_s: None,
            confidence: 1000,
            model: Model::Threshold,
            reason: Reason::SpareExhausted,
            detail: 1000,
        };
        let mut s = String::new();
        write_alert(&mut s, &a).unwrap();
        assert_eq!(
            s,
            "t_s=12 level=emergency score=0 ttf_s=0 tts_s=- confidence=1000 model=threshold reason=spare_exhausted detail=1000"
        );
    }
}
