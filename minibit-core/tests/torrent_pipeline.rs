//! The request pipeline at a high bandwidth-delay product: its depth
//! follows the peer's rate since it unchoked us and the round trip we
//! measure (BEP 3 "pipelining"), so one peer's link stays busy whatever
//! the latency, and a new unchoke fills it within about ten round trips.

mod support;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use minibit_core::piece::{BLOCK_SIZE, BlockRef};
use minibit_core::torrent::{PeerKey, TorrentConfig};
use minibit_core::wire::Message;
use support::{Content, Harness};

/// `pieces` pieces of 16 blocks (256 KiB each).
fn content(pieces: u64) -> Content {
    Content::new(
        pieces * 16 * u64::from(BLOCK_SIZE),
        16 * u64::from(BLOCK_SIZE),
        3,
    )
}

/// A remote seeder as the leecher sees it: each request reaches it half a
/// round trip after it was sent, it sends one block every `block_time`
/// (its upload rate) in request order, and each block arrives half a
/// round trip after it left.
struct Uploader {
    peer: PeerKey,
    rtt: Duration,
    block_time: Duration,
    /// Requests on their way or queued: (when it can be served, block).
    queue: VecDeque<(Instant, BlockRef)>,
    /// Blocks on their way: (arrival, block).
    in_flight: VecDeque<(Instant, BlockRef)>,
    /// When the uplink is free for the next block.
    free_at: Instant,
    /// Blocks delivered so far.
    delivered: u64,
}

impl Uploader {
    /// Connects a seeder with `rtt` and `rate_bps` to `h`, and lets it
    /// unchoke us once `idle` has passed on the connection.
    fn join(h: &mut Harness, rtt: Duration, rate_bps: u64, idle: Duration) -> Self {
        let peer = h.connect(1, true);
        h.recv(peer, Message::HaveAll);
        h.actions();
        h.advance(idle);
        h.actions();
        h.recv(peer, Message::Unchoke);
        let block_time = Duration::from_secs_f64(1.0 / blocks_per_s(rate_bps));
        let mut up = Self {
            peer,
            rtt,
            block_time,
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            free_at: h.now,
            delivered: 0,
        };
        up.take_requests(h);
        up
    }

    /// Outstanding requests: queued at the uploader, or answered and on their way.
    fn outstanding(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }

    fn take_requests(&mut self, h: &mut Harness) {
        let at = h.now + self.rtt / 2;
        for block in h.take_requests(self.peer) {
            self.queue.push_back((at, block));
        }
    }

    /// Runs the exchange in steps of 1 ms until `until`.
    fn run(&mut self, h: &mut Harness, until: Instant) {
        while h.now < until {
            h.now += Duration::from_millis(1);
            while let Some(&(ready, block)) = self.queue.front() {
                if ready > h.now || self.free_at > h.now {
                    break;
                }
                self.queue.pop_front();
                let start = self.free_at.max(ready);
                self.free_at = start + self.block_time;
                self.in_flight
                    .push_back((self.free_at + self.rtt / 2, block));
            }
            while let Some(&(arrives, block)) = self.in_flight.front() {
                if arrives > h.now {
                    break;
                }
                self.in_flight.pop_front();
                h.deliver(self.peer, block);
                self.delivered += 1;
            }
            self.take_requests(h);
        }
    }
}

/// Blocks per second at `rate_bps`.
fn blocks_per_s(rate_bps: u64) -> f64 {
    rate_bps as f64 / f64::from(BLOCK_SIZE)
}

#[test]
fn a_new_unchoke_fills_the_link_within_a_few_round_trips_on_an_old_connection() {
    // 100 ms round trip, 12.5 MB/s: the link needs ~76 blocks in flight.
    // The connection sat idle for 30 s before the unchoke: a rate averaged
    // since the connection started would stay low for many seconds. Each
    // round trip's blocks raise the 2 s rate, and the pipeline covers
    // 0.5 s of it: it grows by a third or more per round trip (filled
    // after 11 round trips; under 8 with the former 2 s target).
    let mut h = Harness::new(content(64), &[], TorrentConfig::default());
    let rate = 12_500_000;
    let rtt = Duration::from_millis(100);
    let mut up = Uploader::join(&mut h, rtt, rate, Duration::from_secs(30));
    assert_eq!(up.outstanding(), 4, "the pipeline starts at min_pipeline");
    let start = h.now;
    let needed = (blocks_per_s(rate) * rtt.as_secs_f64()) as usize;
    let mut round_trips = 0;
    while up.outstanding() < needed {
        round_trips += 1;
        assert!(
            round_trips <= 12,
            "after 12 round trips {} requests outstanding, the link needs {needed}",
            up.outstanding()
        );
        up.run(&mut h, start + rtt * round_trips);
    }
}

#[test]
fn the_pipeline_covers_a_long_round_trip() {
    // A 1 MB/s peer behind a 3 s round trip (a congested satellite path)
    // needs 183 blocks in flight; 0.5 s of its rate (the default
    // `pipeline_target`) are 30. The pipeline covers four measured round
    // trips, so the download runs at the peer's rate; on a 30 ms path the
    // same peer gets no more than the 0.5 s target asks for.
    let rate = 1_000_000;
    let mut depths = Vec::new();
    for rtt_ms in [30, 3000] {
        let rtt = Duration::from_millis(rtt_ms);
        // 48 MiB: the download lasts beyond the 35 s looked at.
        let mut h = Harness::new(content(192), &[], TorrentConfig::default());
        let mut up = Uploader::join(&mut h, rtt, rate, Duration::ZERO);
        let start = h.now;
        up.run(&mut h, start + Duration::from_secs(25));
        let before = up.delivered;
        up.run(&mut h, start + Duration::from_secs(35));
        let got = ((up.delivered - before) * u64::from(BLOCK_SIZE)) as f64 / 10.0;
        assert!(
            got >= 0.95 * rate as f64,
            "{rtt_ms} ms: {got:.0} bytes/s from a {rate} bytes/s peer"
        );
        depths.push(up.outstanding());
    }
    let target = (0.5 * blocks_per_s(rate)) as usize;
    assert!(
        depths[0] <= 4 + target + 2,
        "30 ms path: {} outstanding, the 0.5 s target asks for {}",
        depths[0],
        4 + target
    );
}
