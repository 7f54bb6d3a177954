//! The request pipeline at a high bandwidth-delay product: its depth
//! follows the peer's rate since it unchoked us and the round trip we
//! measure (BEP 3 "pipelining"), so one peer's link stays busy whatever
//! the latency, and a new unchoke fills it within a few round trips.

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
    // since the connection started would stay low for many seconds.
    let mut h = Harness::new(content(64), &[], TorrentConfig::default());
    let rate = 12_500_000;
    let rtt = Duration::from_millis(100);
    let mut up = Uploader::join(&mut h, rtt, rate, Duration::from_secs(30));
    assert_eq!(up.outstanding(), 4, "the pipeline starts at min_pipeline");
    let start = h.now;
    up.run(&mut h, start + 8 * rtt);
    let needed = (blocks_per_s(rate) * rtt.as_secs_f64()) as usize;
    assert!(
        up.outstanding() >= needed,
        "after 8 round trips {} requests outstanding, the link needs {needed}",
        up.outstanding()
    );
}

#[test]
fn the_pipeline_covers_a_long_round_trip() {
    // A 1 MB/s peer behind a 3 s round trip (a congested satellite path)
    // needs 183 blocks in flight; 2 s of its rate (the default
    // `pipeline_target`) are 122. The pipeline covers four measured round
    // trips, so the download runs at the peer's rate; on a 30 ms path the
    // same peer gets no more than the 2 s target asks for.
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
    let two_seconds = (2.0 * blocks_per_s(rate)) as usize;
    assert!(
        depths[0] <= 4 + two_seconds + 2,
        "30 ms path: {} outstanding, the 2 s target asks for {}",
        depths[0],
        4 + two_seconds
    );
}

/// A seeder whose pipeline is deep (1 MB/s, 50 ms: about 2 s of requests
/// queued at it), then a second peer, which has one piece whose every
/// block waits in that queue (the newest such piece with `tail`, else the
/// oldest), unchokes us. Returns that piece's queued blocks in queue order
/// with their positions among our requests to the seeder, the requests
/// sent to the second peer and the cancels sent to the seeder.
fn deep_pipeline_then_second_source(
    config: TorrentConfig,
    tail: bool,
) -> (Vec<(usize, BlockRef)>, Vec<BlockRef>, Vec<BlockRef>) {
    let mut h = Harness::new(content(64), &[], config);
    let mut a = Uploader::join(&mut h, Duration::from_millis(50), 1_000_000, Duration::ZERO);
    let start = h.now;
    a.run(&mut h, start + Duration::from_secs(3));
    // Our requests to the seeder, oldest first: answered and on their way, then queued.
    let outstanding: Vec<BlockRef> = a
        .in_flight
        .iter()
        .chain(&a.queue)
        .map(|&(_, block)| block)
        .collect();
    assert!(
        outstanding.len() > 64,
        "{} requests outstanding",
        outstanding.len()
    );
    let whole = |piece| a.queue.iter().filter(|(_, b)| b.piece == piece).count() == 16;
    let mut pieces = a.queue.iter().map(|(_, b)| b.piece).filter(|&p| whole(p));
    let piece = if tail {
        pieces.next_back()
    } else {
        pieces.next()
    }
    .expect("a whole piece queued");
    let blocks: Vec<(usize, BlockRef)> = outstanding
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, b)| b.piece == piece)
        .collect();
    let b = h.connect(2, true);
    h.recv(
        b,
        support::bitfield_message(&h.content.layout, &[piece.get()]),
    );
    h.actions();
    h.recv(b, Message::Unchoke);
    let actions = h.actions();
    let cancelled = Harness::sent_to(&actions, a.peer)
        .into_iter()
        .filter_map(|m| match m {
            Message::Cancel {
                piece,
                offset,
                length,
            } => Some(h.content.layout.block_ref(piece, offset, length).unwrap()),
            _ => None,
        })
        .collect();
    (blocks, h.requests_to(&actions, b), cancelled)
}

/// The hand-over on, past what a peer sends in 0.5 s.
fn handing_over() -> TorrentConfig {
    TorrentConfig {
        steal_after: Some(Duration::from_millis(500)),
        ..TorrentConfig::default()
    }
}

fn sorted(mut blocks: Vec<BlockRef>) -> Vec<BlockRef> {
    blocks.sort_unstable_by_key(|b| (b.piece, b.offset));
    blocks
}

#[test]
fn a_source_with_nothing_free_takes_over_the_unsent_tail_of_a_deep_pipeline() {
    let (piece, asked, cancelled) = deep_pipeline_then_second_source(handing_over(), true);
    // Every block of the second peer's piece waits at the seeder, deep in
    // its queue: nothing is free for the second peer, yet it gets the
    // newest of those requests at once (a new source starts at
    // `min_pipeline`, 4).
    assert_eq!(asked.len(), 4, "{asked:?}");
    let newest: Vec<BlockRef> = piece[piece.len() - 4..].iter().map(|&(_, b)| b).collect();
    assert_eq!(
        sorted(asked.clone()),
        sorted(newest),
        "the newest requests move"
    );
    assert_eq!(
        sorted(cancelled),
        sorted(asked),
        "each moved request is cancelled at the seeder, nothing else"
    );
}

#[test]
fn requests_about_to_be_sent_are_not_taken_over() {
    // The second peer's piece is the oldest whole one queued at the
    // seeder, within what it sends in 0.5 s (4 + 61 blocks/s x 0.5 s):
    // it stays there.
    let (piece, asked, cancelled) = deep_pipeline_then_second_source(handing_over(), false);
    let last = piece.last().unwrap().0;
    assert!(last < 4 + 30, "premise: the piece ends at request {last}");
    assert!(asked.is_empty(), "{asked:?}");
    assert!(cancelled.is_empty(), "{cancelled:?}");
}

#[test]
fn without_the_hand_over_a_second_source_waits() {
    // The default: off.
    let (_, asked, cancelled) = deep_pipeline_then_second_source(TorrentConfig::default(), true);
    assert!(asked.is_empty(), "{asked:?}");
    assert!(cancelled.is_empty(), "{cancelled:?}");
}
