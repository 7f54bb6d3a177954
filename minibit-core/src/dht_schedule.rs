//! When one torrent talks to the Mainline DHT (BEP 5): `get_peers` lookups
//! while it needs peers, with back-off while they find none, and
//! `announce_peer` once it can be reached, renewed before the nodes forget
//! it. Sans-IO: the driver runs the queries and reports their outcome.
//!
//! BEP 5 nodes keep an announced peer for about 30 minutes (libtorrent and
//! Transmission re-announce every 15-30 minutes), so the announce is
//! renewed after a random 15-30 minutes. A lookup that found peers is
//! repeated after [`DhtScheduleConfig::lookup_interval`] while the torrent
//! still needs peers; one that found none is retried after a back-off that
//! doubles from [`DhtScheduleConfig::first_retry`] up to the interval. A
//! private torrent (BEP 27) never gets a schedule: the driver must not
//! create one.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Tunables of a [`DhtSchedule`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtScheduleConfig {
    /// Shortest time between two announces of the torrent (default 15 min).
    pub announce_min: Duration,
    /// Longest time between two announces (default 30 min); each renewal is
    /// drawn uniformly between the two so many torrents do not announce in
    /// step.
    pub announce_max: Duration,
    /// Time between two lookups that found peers, while peers are still
    /// needed (default 5 min).
    pub lookup_interval: Duration,
    /// Wait before retrying a lookup that found no peer (default 10 s),
    /// doubled after each empty lookup up to `lookup_interval`.
    pub first_retry: Duration,
}

impl Default for DhtScheduleConfig {
    fn default() -> Self {
        Self {
            announce_min: Duration::from_secs(15 * 60),
            announce_max: Duration::from_secs(30 * 60),
            lookup_interval: Duration::from_secs(5 * 60),
            first_retry: Duration::from_secs(10),
        }
    }
}

/// A DHT query the driver should start now.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DhtQuery {
    /// Look the info-hash up (`get_peers`) and hand the peers found to the
    /// torrent; then call [`DhtSchedule::handle_lookup_done`].
    GetPeers,
    /// Store our address for the info-hash (`announce_peer` with our TCP
    /// listen port); then call [`DhtSchedule::handle_announce_done`].
    Announce,
}

/// What the torrent needs, as the driver sees it at a poll.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DhtNeeds {
    /// The torrent wants more peers (no metadata yet, or fewer
    /// connections than it would like).
    pub peers: bool,
    /// The torrent can be announced: it has its metadata and a listen port.
    pub announce: bool,
}

/// The DHT timetable of one torrent.
#[derive(Clone, Debug)]
pub struct DhtSchedule {
    config: DhtScheduleConfig,
    rng: ChaCha8Rng,
    next_lookup: Instant,
    retry: Duration,
    lookup_in_flight: bool,
    next_announce: Instant,
    announce_in_flight: bool,
}

impl DhtSchedule {
    /// A schedule whose first lookup and first announce are due at `now`.
    /// `rng_seed` draws the announce renewals.
    pub fn new(config: DhtScheduleConfig, now: Instant, rng_seed: u64) -> Self {
        let retry = config.first_retry;
        Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            next_lookup: now,
            retry,
            lookup_in_flight: false,
            next_announce: now,
            announce_in_flight: false,
        }
    }

    /// The query to start at `now`, if one is due; call again until `None`.
    /// At most one lookup and one announce are in flight at a time.
    pub fn poll(&mut self, now: Instant, needs: DhtNeeds) -> Option<DhtQuery> {
        if needs.announce && !self.announce_in_flight && self.next_announce <= now {
            self.announce_in_flight = true;
            return Some(DhtQuery::Announce);
        }
        if needs.peers && !self.lookup_in_flight && self.next_lookup <= now {
            self.lookup_in_flight = true;
            return Some(DhtQuery::GetPeers);
        }
        None
    }

    /// A lookup finished at `now` having found `peers` usable peers.
    pub fn handle_lookup_done(&mut self, now: Instant, peers: usize) {
        self.lookup_in_flight = false;
        if peers > 0 {
            self.retry = self.config.first_retry;
            self.next_lookup = now + self.config.lookup_interval;
        } else {
            self.next_lookup = now + self.retry;
            self.retry = (self.retry * 2).min(self.config.lookup_interval);
        }
    }

    /// An announce finished at `now` (stored or not: a failed one is
    /// retried like a lookup that found nothing, at the lookup back-off).
    pub fn handle_announce_done(&mut self, now: Instant, stored: bool) {
        self.announce_in_flight = false;
        let wait = if stored {
            let (min, max) = (self.config.announce_min, self.config.announce_max);
            min + (max.saturating_sub(min)).mul_f64(self.rng.random::<f64>())
        } else {
            self.retry
        };
        self.next_announce = now + wait;
    }

    /// The earliest instant a query may become due, given `needs`; `None`
    /// when nothing will be due without a change of needs.
    pub fn poll_timeout(&self, needs: DhtNeeds) -> Option<Instant> {
        let lookup = (needs.peers && !self.lookup_in_flight).then_some(self.next_lookup);
        let announce = (needs.announce && !self.announce_in_flight).then_some(self.next_announce);
        lookup.into_iter().chain(announce).min()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::test_clock::origin;

    const BOTH: DhtNeeds = DhtNeeds {
        peers: true,
        announce: true,
    };

    #[test]
    fn announces_and_looks_up_at_once_then_waits() {
        let t0 = origin();
        let mut s = DhtSchedule::new(DhtScheduleConfig::default(), t0, 1);
        assert_eq!(s.poll(t0, BOTH), Some(DhtQuery::Announce));
        assert_eq!(s.poll(t0, BOTH), Some(DhtQuery::GetPeers));
        assert_eq!(s.poll(t0, BOTH), None, "one of each in flight");
        s.handle_announce_done(t0, true);
        s.handle_lookup_done(t0, 3);
        let next = s.poll_timeout(BOTH).unwrap();
        assert_eq!(next, t0 + Duration::from_secs(300), "lookup after 5 min");
        assert_eq!(s.poll(next, BOTH), Some(DhtQuery::GetPeers));
        assert_eq!(s.poll(next, BOTH), None, "announce renewed after 15-30 min");
    }

    #[test]
    fn empty_lookups_back_off_doubling_up_to_the_interval() {
        let t0 = origin();
        let needs = DhtNeeds {
            peers: true,
            announce: false,
        };
        let mut s = DhtSchedule::new(DhtScheduleConfig::default(), t0, 1);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            assert_eq!(s.poll(now, needs), Some(DhtQuery::GetPeers));
            s.handle_lookup_done(now, 0);
            let at = s.poll_timeout(needs).unwrap();
            waits.push((at - now).as_secs());
            now = at;
        }
        assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300, 300]);
        // Peers found: the back-off starts over.
        assert_eq!(s.poll(now, needs), Some(DhtQuery::GetPeers));
        s.handle_lookup_done(now, 5);
        s.handle_lookup_done(now + Duration::from_secs(300), 0);
        let at = s.poll_timeout(needs).unwrap();
        assert_eq!(
            at - (now + Duration::from_secs(300)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn nothing_is_due_when_nothing_is_needed() {
        let t0 = origin();
        let mut s = DhtSchedule::new(DhtScheduleConfig::default(), t0, 1);
        assert_eq!(s.poll(t0, DhtNeeds::default()), None);
        assert_eq!(s.poll_timeout(DhtNeeds::default()), None);
        // Once the torrent can be announced, that is due at once.
        assert_eq!(s.poll_timeout(BOTH), Some(t0));
    }

    proptest! {
        #[test]
        fn announce_renewals_stay_within_15_to_30_minutes(seed in any::<u64>(), rounds in 1usize..20) {
            let t0 = origin();
            let needs = DhtNeeds { peers: false, announce: true };
            let mut s = DhtSchedule::new(DhtScheduleConfig::default(), t0, seed);
            let mut now = t0;
            for _ in 0..rounds {
                prop_assert_eq!(s.poll(now, needs), Some(DhtQuery::Announce));
                s.handle_announce_done(now, true);
                let at = s.poll_timeout(needs).unwrap();
                let wait = at - now;
                prop_assert!(wait >= Duration::from_secs(900) && wait <= Duration::from_secs(1800));
                prop_assert_eq!(s.poll(now + wait / 2, needs), None);
                now = at;
            }
        }
    }
}
