//! When to announce to the tracker (BEP 3 "trackers"): `started` first,
//! then every tracker interval, `completed` once, retries with exponential
//! back-off after failures, and a short doubling back-off while an
//! incomplete torrent has no peer at all (so a seeder that joins a moment
//! later is found within seconds, not after the whole interval).

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
    /// When the next regular announce is due; `None` while one is in flight or after `stopped`.
    due: Option<Instant>,
    /// When an earlier announce is due if we are still alone by then
    /// (see [`AnnounceSchedule::succeeded`]).
    early: Option<Instant>,
    /// The (clamped) interval of the last answer: the alone back-off's cap.
    interval: Duration,
    /// Delay before the next retry after a failure.
    backoff: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    /// Delay before the next announce if the next answer still leaves us alone.
    alone_backoff: Duration,
    /// First delay of the alone back-off.
    min_alone_backoff: Duration,
}

impl AnnounceSchedule {
    /// A schedule whose first announce (`started`) is due at `now`.
    /// `min_backoff`..`max_backoff` bound the retries after failures,
    /// `min_alone_backoff` is the first delay of the alone back-off (see
    /// [`AnnounceSchedule::succeeded`]).
    pub(super) fn new(
        now: Instant,
        min_backoff: Duration,
        max_backoff: Duration,
        min_alone_backoff: Duration,
    ) -> Self {
        Self {
            pending: AnnounceEvent::Started,
            due: Some(now),
            early: None,
            interval: MAX_INTERVAL,
            backoff: min_backoff,
            min_backoff,
            max_backoff,
            alone_backoff: min_alone_backoff,
            min_alone_backoff,
        }
    }

    /// When the schedule must be looked at next (the early or the regular
    /// announce).
    pub(super) fn due(&self) -> Option<Instant> {
        match (self.early, self.due) {
            (Some(early), Some(due)) => Some(early.min(due)),
            (early, due) => early.or(due),
        }
    }

    /// When the next regular announce is due; `None` while one is in
    /// flight or after `stopped`.
    pub(super) fn next_regular(&self) -> Option<Instant> {
        self.due
    }

    /// If an announce is due at `now`, the event it carries; the schedule
    /// then waits for its outcome. The early announce goes out only if we
    /// are `alone` when it is due (incomplete, no peer connected); it then
    /// doubles the alone back-off. Not alone by then: it is dropped and
    /// the back-off starts over.
    pub(super) fn take_due(&mut self, now: Instant, alone: bool) -> Option<AnnounceEvent> {
        if self.early.is_some_and(|early| early <= now) {
            self.early = None;
            if alone {
                self.alone_backoff = (self.alone_backoff * 2).min(self.interval);
                self.due = None;
                return Some(self.pending);
            }
            self.alone_backoff = self.min_alone_backoff;
        }
        if self.due.is_some_and(|due| due <= now) {
            self.due = None;
            self.early = None;
            Some(self.pending)
        } else {
            None
        }
    }

    /// Every piece verified: announce `completed` now.
    pub(super) fn completed(&mut self, now: Instant) {
        self.pending = AnnounceEvent::Completed;
        self.due = Some(now);
        self.early = None;
    }

    /// The tracker answered: next regular announce after `interval`,
    /// clamped to [`MIN_INTERVAL`]..=[`MAX_INTERVAL`] (the value comes from
    /// the network), and an early one in case we are still alone then (see
    /// [`AnnounceSchedule::take_due`]) after the alone back-off: it starts
    /// at `min_alone_backoff` and doubles with each early announce sent, up
    /// to that interval, never below the tracker's `min_interval` (BEP 3
    /// trackers' `min interval`). Returns the early delay.
    pub(super) fn succeeded(
        &mut self,
        now: Instant,
        interval: Duration,
        min_interval: Option<Duration>,
    ) -> Duration {
        self.pending = AnnounceEvent::None;
        self.backoff = self.min_backoff;
        self.interval = interval.clamp(MIN_INTERVAL, MAX_INTERVAL);
        self.due = Some(now + self.interval);
        let early = self
            .alone_backoff
            .max(min_interval.unwrap_or(Duration::ZERO))
            .min(self.interval);
        self.early = Some(now + early);
        early
    }

    /// The announce failed: retry after the current back-off, which then doubles.
    /// Returns the delay chosen.
    pub(super) fn failed(&mut self, now: Instant) -> Duration {
        let delay = self.backoff;
        self.due = Some(now + delay);
        self.early = None;
        self.backoff = (self.backoff * 2).min(self.max_backoff);
        delay
    }

    /// Shutting down: no announce after `stopped`.
    pub(super) fn stop(&mut self) {
        self.due = None;
        self.early = None;
        self.pending = AnnounceEvent::Stopped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_clock::origin as t0;

    const MIN: Duration = Duration::from_secs(15);
    const MAX: Duration = Duration::from_secs(30 * 60);
    const ALONE: Duration = Duration::from_secs(2);
    const SECS: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        let t0 = t0();
        let mut schedule = AnnounceSchedule::new(t0, MIN, MAX, ALONE);
        assert_eq!(schedule.take_due(t0, true), Some(AnnounceEvent::Started));
        let mut delays = Vec::new();
        let mut now = t0;
        for _ in 0..10 {
            let delay = schedule.failed(now);
            delays.push(delay.as_secs());
            assert_eq!(schedule.take_due(now + delay / 2, true), None);
            now += delay;
            assert_eq!(schedule.take_due(now, true), Some(AnnounceEvent::Started));
        }
        assert_eq!(delays, [15, 30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
        schedule.succeeded(now, Duration::from_secs(100), None);
        assert_eq!(
            schedule.take_due(now + ALONE, false),
            None,
            "not alone: no early announce"
        );
        assert_eq!(schedule.due(), Some(now + Duration::from_secs(100)));
        assert_eq!(schedule.failed(now), MIN, "success resets the back-off");
    }

    #[test]
    fn completed_is_due_at_once_and_then_regular() {
        let t0 = t0();
        let mut schedule = AnnounceSchedule::new(t0, MIN, MAX, ALONE);
        schedule.take_due(t0, true);
        schedule.succeeded(t0, Duration::from_secs(60), None);
        schedule.completed(t0 + Duration::from_secs(5));
        assert_eq!(
            schedule.take_due(t0 + Duration::from_secs(5), false),
            Some(AnnounceEvent::Completed)
        );
        schedule.succeeded(t0 + Duration::from_secs(5), Duration::from_secs(60), None);
        assert_eq!(
            schedule.take_due(t0 + Duration::from_secs(65), false),
            Some(AnnounceEvent::None)
        );
        schedule.stop();
        assert_eq!(schedule.due(), None);
    }

    #[test]
    fn tracker_intervals_are_clamped() {
        let t0 = t0();
        let mut schedule = AnnounceSchedule::new(t0, MIN, MAX, ALONE);
        schedule.succeeded(t0, Duration::ZERO, None);
        assert_eq!(schedule.take_due(t0 + ALONE, false), None);
        assert_eq!(schedule.due(), Some(t0 + MIN_INTERVAL));
        schedule.succeeded(t0, Duration::MAX, None);
        assert_eq!(schedule.take_due(t0 + ALONE, false), None);
        assert_eq!(schedule.due(), Some(t0 + MAX_INTERVAL));
    }

    /// Answers `n` announces with `interval` and `min_interval` while we
    /// stay alone; the delays (seconds) until each next announce.
    fn alone_delays(
        schedule: &mut AnnounceSchedule,
        interval: Duration,
        min_interval: Option<Duration>,
        n: usize,
    ) -> Vec<u64> {
        let mut now = t0();
        (0..n)
            .map(|_| {
                let delay = schedule.succeeded(now, interval, min_interval);
                assert_eq!(schedule.due(), Some(now + delay));
                assert_eq!(schedule.take_due(now + delay / 2, true), None);
                now += delay;
                assert_eq!(schedule.take_due(now, true), Some(AnnounceEvent::None));
                delay.as_secs()
            })
            .collect()
    }

    #[test]
    fn alone_a_leecher_reannounces_from_a_few_seconds_up_to_the_interval() {
        let mut schedule = AnnounceSchedule::new(t0(), MIN, MAX, ALONE);
        let delays = alone_delays(&mut schedule, SECS(60), None, 8);
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_peer_by_the_early_moment_drops_it_and_resets_the_back_off() {
        let t0 = t0();
        let mut schedule = AnnounceSchedule::new(t0, MIN, MAX, ALONE);
        assert_eq!(alone_delays(&mut schedule, SECS(60), None, 3), [2, 4, 8]);
        schedule.succeeded(t0, SECS(60), None);
        assert_eq!(schedule.due(), Some(t0 + SECS(16)));
        assert_eq!(schedule.take_due(t0 + SECS(16), false), None, "a peer came");
        assert_eq!(schedule.due(), Some(t0 + SECS(60)), "the regular interval");
        assert_eq!(
            schedule.take_due(t0 + SECS(60), false),
            Some(AnnounceEvent::None)
        );
        assert_eq!(
            schedule.succeeded(t0 + SECS(60), SECS(60), None),
            ALONE,
            "the back-off starts over"
        );
    }

    #[test]
    fn the_alone_back_off_never_goes_below_the_min_interval() {
        let mut schedule = AnnounceSchedule::new(t0(), MIN, MAX, ALONE);
        let delays = alone_delays(&mut schedule, SECS(300), Some(SECS(10)), 5);
        assert_eq!(delays, [10, 10, 10, 16, 32]);
        // A min interval above the interval: the (clamped) interval wins,
        // as for a regular answer.
        let mut schedule = AnnounceSchedule::new(t0(), MIN, MAX, ALONE);
        assert_eq!(
            schedule.succeeded(t0(), SECS(20), Some(SECS(600))),
            SECS(20)
        );
        // A hostile interval of 0 is clamped to 15 s, which caps the back-off.
        let mut schedule = AnnounceSchedule::new(t0(), MIN, MAX, ALONE);
        let delays = alone_delays(&mut schedule, Duration::ZERO, None, 5);
        assert_eq!(delays, [2, 4, 8, 15, 15]);
    }
}
