//! Transfer rate estimators (bytes/s over a sliding window), used for
//! choking (BEP 3 "download rate") and for the request pipeline depth.

use std::time::{Duration, Instant};

/// Default averaging window: 20 s.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(20);

/// Bytes per second over a sliding window of whole-second buckets; time is
/// passed in. For a constant rate the estimate is exact once the estimator
/// is older than one second.
#[derive(Clone, Debug)]
pub struct RateEstimator {
    start: Instant,
    /// Latest instant seen, as time since `start`.
    latest: Duration,
    /// Bytes per second; bucket `s % len` holds second `s` since `start`.
    buckets: Vec<u64>,
    /// The second (since `start`) of the newest bucket.
    head: u64,
    /// Sum of `buckets` (seconds `head - len + 1 ..= head`), so a rate
    /// query is O(1) while the window is current.
    in_buckets: u64,
    total: u64,
}

impl RateEstimator {
    /// An estimator averaging over `window` (rounded up to whole seconds,
    /// at least 1 s), starting at `now`.
    pub fn new(window: Duration, now: Instant) -> Self {
        let secs = window.as_secs() + u64::from(window.subsec_nanos() > 0);
        Self {
            start: now,
            latest: Duration::ZERO,
            buckets: vec![0; secs.max(1) as usize],
            head: 0,
            in_buckets: 0,
            total: 0,
        }
    }

    /// Records `bytes` transferred at `now`. Instants before the start or
    /// going backwards count at the latest instant seen.
    pub fn record(&mut self, now: Instant, bytes: u64) {
        let elapsed = self.elapsed(now);
        self.latest = elapsed;
        let second = elapsed.as_secs();
        let len = self.buckets.len() as u64;
        if second > self.head {
            for s in (self.head + 1)..=second.min(self.head + len) {
                let bucket = &mut self.buckets[(s % len) as usize];
                self.in_buckets -= *bucket;
                *bucket = 0;
            }
            self.head = second;
        }
        self.buckets[(second % len) as usize] += bytes;
        self.in_buckets += bytes;
        self.total += bytes;
    }

    /// The rate at `now` in bytes/s: bytes recorded in the window divided by
    /// the time the window covers (less than `window` while the estimator
    /// is young, never less than 1 s).
    pub fn rate(&self, now: Instant) -> f64 {
        self.rate_over_at_least(now, Duration::from_secs(1))
    }

    /// As [`Self::rate`], but a young estimator divides by its age down to
    /// `min_span` (instead of 1 s): a fair estimate a few round trips after
    /// the start, for a rate that must be followed quickly (the request
    /// pipeline after an unchoke); noisier for the first few records.
    /// Spans shorter than 1 ms count as 1 ms.
    pub fn rate_over_at_least(&self, now: Instant, min_span: Duration) -> f64 {
        let elapsed = self.elapsed(now);
        let second = elapsed.as_secs();
        let len = self.buckets.len() as u64;
        let first = (second + 1).saturating_sub(len);
        // `second >= head` (time never goes back): the window drops the
        // oldest `second - head` buckets, which a record at `now` would clear.
        let gap = second - self.head;
        let bytes = if gap >= len {
            0
        } else if gap == 0 {
            self.in_buckets
        } else {
            // Buckets `head + 1 ..= head + gap`, wrapping: two slices, no
            // division per bucket (asked on every request top-up).
            let from = ((self.head + 1) % len) as usize;
            let gap = gap as usize;
            let tail = gap.min(self.buckets.len() - from);
            let dropped: u64 = self.buckets[from..from + tail].iter().sum::<u64>()
                + self.buckets[..gap - tail].iter().sum::<u64>();
            self.in_buckets - dropped
        };
        let span = elapsed.saturating_sub(Duration::from_secs(first));
        bytes as f64
            / span
                .max(min_span)
                .max(Duration::from_millis(1))
                .as_secs_f64()
    }

    /// Every byte recorded since the start.
    pub fn total(&self) -> u64 {
        self.total
    }

    fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.start).max(self.latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::test_clock::origin as epoch;

    #[test]
    fn constant_rate_is_exact() {
        let t0 = epoch();
        let mut rate = RateEstimator::new(DEFAULT_WINDOW, t0);
        // 1000 bytes every 100 ms for 60 s: 10 kB/s.
        for i in 1..=600u64 {
            rate.record(t0 + Duration::from_millis(i * 100), 1000);
        }
        let r = rate.rate(t0 + Duration::from_secs(60));
        assert!((r - 10_000.0).abs() < 600.0, "rate {r}");
        assert_eq!(rate.total(), 600_000);
    }

    #[test]
    fn old_bytes_leave_the_window() {
        let t0 = epoch();
        let mut rate = RateEstimator::new(Duration::from_secs(5), t0);
        rate.record(t0 + Duration::from_millis(500), 50_000);
        assert!(rate.rate(t0 + Duration::from_secs(2)) > 20_000.0);
        assert!(rate.rate(t0 + Duration::from_millis(4_900)) > 0.0);
        assert!(rate.rate(t0 + Duration::from_secs(5)).abs() < f64::EPSILON);

        // A long silence then new traffic: only the new traffic counts.
        rate.record(t0 + Duration::from_secs(100), 5_000);
        let r = rate.rate(t0 + Duration::from_millis(100_500));
        assert!((r - 5_000.0 / 4.5).abs() < 1.0, "rate {r}");
    }

    #[test]
    fn young_estimator_divides_by_at_least_one_second() {
        let t0 = epoch();
        let mut rate = RateEstimator::new(DEFAULT_WINDOW, t0);
        rate.record(t0 + Duration::from_millis(10), 1_000);
        assert!((rate.rate(t0 + Duration::from_millis(10)) - 1_000.0).abs() < 1e-9);
        // Time going backwards is ignored.
        rate.record(t0, 1_000);
        assert_eq!(rate.total(), 2_000);
        assert!((rate.rate(t0) - 2_000.0).abs() < 1e-9);
    }

    proptest! {
        /// The estimate equals the bytes recorded in the covered seconds over the covered span.
        #[test]
        fn matches_brute_force(
            events in proptest::collection::vec((0u64..40_000, 0u64..100_000), 1..60),
            window in 1u64..30,
            probe in 0u64..50_000,
        ) {
            let t0 = epoch();
            let mut rate = RateEstimator::new(Duration::from_secs(window), t0);
            let mut events = events;
            events.sort_unstable();
            for &(ms, bytes) in &events {
                rate.record(t0 + Duration::from_millis(ms), bytes);
            }
            let last = events.last().unwrap().0;
            let now_ms = last.max(probe);
            let second = now_ms / 1000;
            let first = (second + 1).saturating_sub(window);
            let in_window: u64 = events.iter().filter(|e| e.0 / 1000 >= first).map(|e| e.1).sum();
            let span = ((now_ms - first * 1000) as f64 / 1000.0).max(1.0);
            let got = rate.rate(t0 + Duration::from_millis(now_ms));
            prop_assert!((got - in_window as f64 / span).abs() < 1e-6);
            prop_assert_eq!(rate.total(), events.iter().map(|e| e.1).sum::<u64>());
        }
    }
}
