//! Announces per minute of one swarm, in O(1) time and memory per
//! announce: the counts of the current and the previous minute, and the
//! sliding-window estimate over the last 60 s (the previous minute's count
//! weighted by the part of it still inside the window, plus the current
//! minute's). IO-free: time is an argument; time going backwards counts
//! as no time passing.

use std::time::{Duration, Instant};

/// The window the rate is over.
const MINUTE: Duration = Duration::from_secs(60);

/// Announce counts of one swarm (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct AnnounceRate {
    /// Start of the current minute (`None` before the first announce).
    start: Option<Instant>,
    /// Announces in the current minute.
    current: u32,
    /// Announces in the minute before it.
    previous: u32,
}

impl AnnounceRate {
    /// Counts one announce at `now`.
    pub fn record(&mut self, now: Instant) {
        self.roll(now);
        self.current = self.current.saturating_add(1);
    }

    /// The announces received in the 60 s before `now` (estimated: the
    /// previous minute's are taken as spread evenly over it).
    pub fn per_minute(&self, now: Instant) -> f64 {
        let mut rate = *self;
        rate.roll(now);
        let Some(start) = rate.start else {
            return 0.0;
        };
        let into = now.saturating_duration_since(start).as_secs_f64() / MINUTE.as_secs_f64();
        f64::from(rate.previous) * (1.0 - into) + f64::from(rate.current)
    }

    /// Moves the window so that `now` is in its current minute.
    fn roll(&mut self, now: Instant) {
        let Some(start) = self.start else {
            self.start = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= MINUTE * 2 {
            *self = Self {
                start: Some(now),
                ..Self::default()
            };
        } else if elapsed >= MINUTE {
            self.previous = self.current;
            self.current = 0;
            self.start = Some(start + MINUTE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn counts_the_last_minute_and_forgets_older_announces() {
        let t0 = Instant::now();
        let mut rate = AnnounceRate::default();
        assert!(rate.per_minute(t0).abs() < f64::EPSILON, "none yet");
        for s in 0..6 {
            rate.record(t0 + secs(s * 10));
        }
        assert!((rate.per_minute(t0 + secs(59)) - 6.0).abs() < 1e-9);
        // 30 s into the next minute half of those are still in the window.
        assert!((rate.per_minute(t0 + secs(90)) - 3.0).abs() < 1e-9);
        rate.record(t0 + secs(90));
        assert!((rate.per_minute(t0 + secs(90)) - 4.0).abs() < 1e-9);
        // Two quiet minutes later: nothing.
        assert!(rate.per_minute(t0 + secs(300)).abs() < f64::EPSILON);
        // Time going backwards changes nothing.
        let before = rate.per_minute(t0 + secs(100));
        rate.record(t0);
        assert!((rate.per_minute(t0 + secs(100)) - before - 1.0).abs() < 1e-9);
    }

    proptest! {
        /// Whatever the announce times, the estimate counts nothing older
        /// than two minutes and nothing twice.
        #[test]
        fn the_estimate_is_at_most_the_announces_of_the_last_two_minutes(
            gaps in proptest::collection::vec(0u64..40_000, 1..200),
            after in 0u64..150_000,
        ) {
            let t0 = Instant::now();
            let mut rate = AnnounceRate::default();
            let mut times = Vec::new();
            let mut t = t0;
            for gap in gaps {
                t += Duration::from_millis(gap);
                rate.record(t);
                times.push(t);
            }
            let now = t + Duration::from_millis(after);
            let last_two_minutes = times.iter().filter(|&&a| now.duration_since(a) < MINUTE * 2).count();
            let estimate = rate.per_minute(now);
            prop_assert!(estimate >= 0.0);
            prop_assert!(estimate <= last_two_minutes as f64 + 1e-9, "{} > {}", estimate, last_two_minutes);
        }

        /// Announces at a steady pace give that pace, within one announce
        /// per minute each side for each of the two minutes counted.
        #[test]
        fn a_steady_pace_is_measured(gap_ms in 200u64..20_000, after in 0.0f64..1.0) {
            let t0 = Instant::now();
            let mut rate = AnnounceRate::default();
            let count = 200_000 / gap_ms + 1;
            for i in 0..count {
                rate.record(t0 + Duration::from_millis(i * gap_ms));
            }
            let now = t0 + Duration::from_millis((count - 1) * gap_ms)
                + Duration::from_millis(gap_ms).mul_f64(after);
            let pace = 60_000.0 / gap_ms as f64;
            let estimate = rate.per_minute(now);
            prop_assert!((estimate - pace).abs() <= 2.0, "{} vs {}", estimate, pace);
        }
    }
}
