//! How many offers a super-seeding seed lets each unchoked peer hold (the
//! window of [`crate::superseed::SuperSeeder::set_window`]), from what the
//! seed measures: its upload rate, the round trip to its peers and the time
//! an offered piece takes to spread.
//!
//! The window covers what the seed's upload to the peer carries while its
//! offers spread. When the seed's link to a slot is latency-bound (a slot's
//! turnover, [`TURNOVER_ROUND_TRIPS`] round trips, outlasts half a piece at
//! the slot's rate) that span is the measured spread time; else a fixed
//! [`OFFER_HORIZON`], which keeps one offer (BEP 16's rule) in swarms where
//! the seed's uplink is busy anyway.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::piece::PieceIndex;

use super::types::PeerKey;

/// The span a window covers while the seed's link is not latency-bound:
/// about the time a piece offered to a peer the seed unchokes takes to be
/// reported by another peer in a small swarm.
const OFFER_HORIZON: Duration = Duration::from_secs(1);

/// Round trips a slot of the seed idles when it turns over to another
/// peer: the peer learns of the unchoke, its first requests come back, its
/// request pipeline ramps up from its minimum, and its last HAVE (and
/// not-interested) comes back. (Measured about 4.7 at 100 ms; 3 to 5 gave
/// the same swarms, 8 gave the 20 × 4 MiB swarm windows of 2 and lost it.)
const TURNOVER_ROUND_TRIPS: u32 = 4;

/// Weight of a new sample in the smoothed spread time (1/8, as TCP's
/// smoothed round trip).
const SPREAD_SAMPLE_WEIGHT: u32 = 8;

/// Measurements that size the windows of offers in super-seed mode.
#[derive(Debug, Default)]
pub(super) struct OfferPacing {
    /// Highest torrent-wide upload rate seen, bytes/s (the current rate
    /// would shrink the windows as the seed starves, starving it more).
    peak_rate: f64,
    /// When we unchoked each peer not served since.
    unchoked_at: HashMap<PeerKey, Instant>,
    /// Shortest time seen from an unchoke to the first block served after
    /// it: a round trip to the peer.
    round_trip: Option<Duration>,
    /// When each piece was offered, and to whom, until another peer
    /// reports it.
    offered_at: HashMap<PieceIndex, (PeerKey, Instant)>,
    /// Smoothed time from an offer to another peer reporting the piece.
    spread_time: Option<Duration>,
}

impl OfferPacing {
    /// The torrent-wide upload rate is `rate` bytes/s.
    pub(super) fn observe_rate(&mut self, rate: f64) {
        self.peak_rate = self.peak_rate.max(rate);
    }

    /// We unchoked `peer` at `now`: the first block we serve it times a
    /// round trip.
    pub(super) fn unchoked(&mut self, peer: PeerKey, now: Instant) {
        self.unchoked_at.insert(peer, now);
    }

    /// We choked `peer`: no round trip to time.
    pub(super) fn choked(&mut self, peer: PeerKey) {
        self.unchoked_at.remove(&peer);
    }

    /// `peer` left: its offers will not spread through it.
    pub(super) fn left(&mut self, peer: PeerKey) {
        self.unchoked_at.remove(&peer);
        self.offered_at.retain(|_, (owner, _)| *owner != peer);
    }

    /// We served `peer` a block at `now`.
    pub(super) fn served(&mut self, peer: PeerKey, now: Instant) {
        if let Some(since) = self.unchoked_at.remove(&peer) {
            let sample = now.saturating_duration_since(since);
            self.round_trip = Some(self.round_trip.map_or(sample, |rtt| rtt.min(sample)));
        }
    }

    /// We offered `piece` to `peer` at `now`.
    pub(super) fn offered(&mut self, peer: PeerKey, piece: PieceIndex, now: Instant) {
        self.offered_at.insert(piece, (peer, now));
    }

    /// `peer` reported `piece` at `now`: a spread-time sample if the piece
    /// was offered to another peer.
    pub(super) fn reported(&mut self, peer: PeerKey, piece: PieceIndex, now: Instant) {
        let Some(&(owner, at)) = self.offered_at.get(&piece) else {
            return;
        };
        if owner == peer {
            return;
        }
        self.offered_at.remove(&piece);
        let sample = now.saturating_duration_since(at);
        self.spread_time = Some(self.spread_time.map_or(sample, |smoothed| {
            (smoothed * (SPREAD_SAMPLE_WEIGHT - 1) + sample) / SPREAD_SAMPLE_WEIGHT
        }));
    }

    /// The window of an unchoked peer (0 or more; the super-seeder clamps
    /// it): the pieces of `piece_length` bytes our highest upload rate,
    /// shared among `slots` unchoke slots, carries over the span the
    /// module docs describe.
    pub(super) fn window(&self, slots: usize, piece_length: u32) -> usize {
        let per_slot = self.peak_rate / slots.max(1) as f64;
        let piece = f64::from(piece_length);
        let turnover = self.round_trip.unwrap_or_default() * TURNOVER_ROUND_TRIPS;
        let latency_bound = turnover.as_secs_f64() * per_slot > piece / 2.0;
        let span = if latency_bound {
            self.spread_time.unwrap_or_default().max(OFFER_HORIZON)
        } else {
            OFFER_HORIZON
        };
        (per_slot * span.as_secs_f64() / piece) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_clock::origin;

    const KIB: u32 = 1024;

    /// Pacing that measured `rate` bytes/s, a round trip of `rtt_ms` and
    /// a spread time of `spread_s`.
    fn measured(rate: f64, rtt_ms: u64, spread_s: u64) -> OfferPacing {
        let t0 = origin();
        let mut pacing = OfferPacing::default();
        pacing.observe_rate(rate);
        pacing.unchoked(PeerKey(0), t0);
        pacing.served(PeerKey(0), t0 + Duration::from_millis(rtt_ms));
        pacing.offered(PeerKey(0), PieceIndex::new_unchecked(3), t0);
        pacing.reported(
            PeerKey(1),
            PieceIndex::new_unchecked(3),
            t0 + Duration::from_secs(spread_s),
        );
        pacing
    }

    #[test]
    fn a_busy_small_swarm_keeps_one_offer() {
        // 20 peers x 4 MiB at 500 kB/s, 20 ms: a slot's turnover is short
        // next to a 64 KiB piece, so the slow spread does not count.
        assert_eq!(measured(500_000.0, 40, 13).window(5, 64 * KIB), 1);
        // 50 peers x 64 MiB at 1 MB/s, 25 ms.
        assert_eq!(measured(1_000_000.0, 50, 13).window(5, 256 * KIB), 0);
    }

    #[test]
    fn a_latency_bound_seed_covers_the_spread_time() {
        // 100 Mbit/s at 100 ms, starved to 1.3 MB/s with one offer each:
        // the window covers 10 s of the slot's rate, not 1 s.
        assert_eq!(measured(1_300_000.0, 200, 10).window(5, 256 * KIB), 9);
        // Spread faster than the horizon: the horizon.
        assert_eq!(measured(1_300_000.0, 200, 0).window(5, 256 * KIB), 0);
    }

    #[test]
    fn only_the_first_block_after_an_unchoke_times_a_round_trip() {
        let t0 = origin();
        let mut pacing = OfferPacing::default();
        pacing.served(PeerKey(0), t0 + Duration::from_millis(5));
        assert_eq!(pacing.round_trip, None);
        pacing.unchoked(PeerKey(0), t0);
        pacing.served(PeerKey(0), t0 + Duration::from_millis(300));
        pacing.served(PeerKey(0), t0 + Duration::from_millis(400));
        assert_eq!(pacing.round_trip, Some(Duration::from_millis(300)));
        pacing.unchoked(PeerKey(1), t0);
        pacing.choked(PeerKey(1));
        pacing.served(PeerKey(1), t0 + Duration::from_millis(100));
        assert_eq!(pacing.round_trip, Some(Duration::from_millis(300)));
    }

    #[test]
    fn spread_time_counts_reports_by_other_peers_only() {
        let t0 = origin();
        let piece = PieceIndex::new_unchecked(0);
        let mut pacing = OfferPacing::default();
        pacing.offered(PeerKey(0), piece, t0);
        // The peer it was offered to fetched it: not spread yet.
        pacing.reported(PeerKey(0), piece, t0 + Duration::from_secs(1));
        assert_eq!(pacing.spread_time, None);
        pacing.reported(PeerKey(1), piece, t0 + Duration::from_secs(8));
        assert_eq!(pacing.spread_time, Some(Duration::from_secs(8)));
        // A later sample moves the smoothed time by an eighth of the gap.
        pacing.offered(PeerKey(0), piece, t0);
        pacing.reported(PeerKey(2), piece, t0 + Duration::from_secs(16));
        assert_eq!(pacing.spread_time, Some(Duration::from_secs(9)));
        // An offer whose peer left gives no sample.
        pacing.offered(PeerKey(0), piece, t0);
        pacing.left(PeerKey(0));
        pacing.reported(PeerKey(2), piece, t0 + Duration::from_secs(100));
        assert_eq!(pacing.spread_time, Some(Duration::from_secs(9)));
    }
}
