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
    _todo: (),
}

impl RateEstimator {
    /// An estimator averaging over `window` (rounded up to whole seconds,
    /// at least 1 s), starting at `now`.
    pub fn new(window: Duration, now: Instant) -> Self {
        let _ = (window, now);
        todo!()
    }

    /// Records `bytes` transferred at `now`. Instants before the start or
    /// going backwards count at the latest instant seen.
    pub fn record(&mut self, now: Instant, bytes: u64) {
        let _ = (now, bytes);
        todo!()
    }

    /// The rate at `now` in bytes/s: bytes recorded in the window divided by
    /// the time the window covers (less than `window` while the estimator
    /// is young, never less than 1 s).
    pub fn rate(&self, now: Instant) -> f64 {
        let _ = now;
        todo!()
    }

    /// Every byte recorded since the start.
    pub fn total(&self) -> u64 {
        todo!()
    }
}
