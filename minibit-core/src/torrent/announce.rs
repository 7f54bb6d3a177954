//! When to announce to the tracker (BEP 3 "trackers"): `started` first,
//! then every tracker interval, `completed` once, retries with exponential
//! back-off after failures.

use std::time::{Duration, Instant};

use super::types::AnnounceEvent;

/// Shortest re-announce interval accepted from a tracker.
pub(super) const MIN_INTERVAL: Duration = Duration::from_secs(15);

/// Longest re-announce interval accepted from a tracker (one day).
pub(super) const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// The announce timer and the event the next announce carries.
#[derive(Debug)]
pub(super) struct AnnounceSchedule {
    /// The event to send at the next announce (kept across failed attempts,
    /// so a lost `started` or `completed` is retried as such).
    pending: AnnounceEvent,
    /// When the next announce is due; `None` while one is in flight or after `stopped`.
    due: Option<Instant>,
    /// Delay before the next retry after a failure.
    backoff: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
}

impl AnnounceSchedule {
    /// A schedule whose first announce (`started`) is due at `now`.
    pub(super) fn new(now: Instant, min_backoff: Duration, max_backoff: Duration) -> Self {
        Self {
            pending: AnnounceEvent::Started,
            due: Some(now),
            backoff: min_backoff,
            min_backoff,
            max_backoff,
        }
    }

    /// When the next announce is due.
    pub(super) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// If an announce is due at `now`, the event it carries; the schedule
    /// then waits for its outcome.
    pub(super) fn take_due(&mut self, now: Instant) -> Option<AnnounceEvent> {
        if self.due.is_some_and(|due| due <= now) {
            self.due = None;
            Some(self.pending)
        } else {
            None
        }
    }

    /// Every piece verified: announce `completed` now.
    pub(super) fn completed(&mut self, now: Instant) {
        self.pending = AnnounceEvent::Completed;
        self.due = Some(now);
    }

    /// The tracker answered: next regular announce after `interval`,
    /// clamped to [`MIN_INTERVAL`]..=[`MAX_INTERVAL`] (the value comes from
    /// the network).
    pub(super) fn succeeded(&mut self, now: Instant, interval: Duration) {
        self.pending = AnnounceEvent::None;
        self.backoff = self.min_backoff;
        self.due = Some(now + interval.clamp(MIN_INTERVAL, MAX_INTERVAL));
    }

    /// The announce failed: retry after the current back-off, which then doubles.
    /// Returns the delay chosen.
    pub(super) fn failed(&mut self, now: Instant) -> Duration {
        let delay = self.backoff;
        self.due = Some(now + delay);
        self.backoff = (self.backoff * 2).min(self.max_backoff);
        delay
    }

    /// Shutting down: no announce after `stopped`.
    pub(super) fn stop(&mut self) {
        self.due = None;
        self.pending = AnnounceEvent::Stopped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_clock::origin as t0;

    const MIN: Duration = Duration::from_secs(15);
    const MAX: Duration = Duration::from_secs(30 * 60);

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        let t0 = t0();
        let mut schedule = AnnounceSchedule::new(t0, MIN, MAX);
        assert_eq!(schedule.take_due(t0), Some(AnnounceEvent::Started));
        let mut delays = Vec::new();
        let mut now = t0;
        for _ in 0..10 {
            let delay = schedule.failed(now);
            delays.push(delay.as_secs());
            assert_eq!(schedule.take_due(now + delay / 2), None);
            now += delay;
            assert_eq!(schedule.take_due(now), Some(AnnounceEvent::Started));
        }
        assert_eq!(delays, [15, 30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
        schedule.succeeded(now, Duration::from_secs(100));
        assert_eq!(schedule.due(), Some(now + Duration::from_secs(100)));
        assert_eq!(schedule.failed(now), MIN, "success resets the back-off");
    }

    #[test]
    fn completed_is_due_at_once_and_then_regular() {
        let t0 = t0();
        let mut schedule = AnnounceSchedule::new(t0, MIN, MAX);
        schedule.take_due(t0);
        schedule.succeeded(t0, Duration::from_secs(60));
        schedule.completed(t0 + Duration::from_secs(5));
        assert_eq!(
            schedule.take_due(t0 + Duration::from_secs(5)),
            Some(AnnounceEvent::Completed)
        );
        schedule.succeeded(t0 + Duration::from_secs(5), Duration::from_secs(60));
        assert_eq!(
            schedule.take_due(t0 + Duration::from_secs(65)),
            Some(AnnounceEvent::None)
        );
        schedule.stop();
        assert_eq!(schedule.due(), None);
    }

    #[test]
    fn tracker_intervals_are_clamped() {
        let t0 = t0();
        let mut schedule = AnnounceSchedule::new(t0, MIN, MAX);
        schedule.succeeded(t0, Duration::ZERO);
        assert_eq!(schedule.due(), Some(t0 + MIN_INTERVAL));
        schedule.succeeded(t0, Duration::MAX);
        assert_eq!(schedule.due(), Some(t0 + MAX_INTERVAL));
    }
}
