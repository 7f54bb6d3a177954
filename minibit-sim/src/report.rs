//! What a simulation measured, and the bookkeeping that measures it.

use std::time::Duration;

use minibit_core::piece::PieceIndex;
use serde::Serialize;

use super::SimConfig;
use crate::availability::Availability;
use crate::network::UplinkIdle;

/// Download times in seconds (from a peer's arrival to its last verified piece).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FinishTimes {
    /// Median, seconds.
    pub p50: f64,
    /// 90th percentile, seconds.
    pub p90: f64,
    /// Slowest, seconds.
    pub max: f64,
}

/// Copies of the file (bytes uploaded ÷ file size) the initial seed uploaded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeedCopies {
    /// Until the first leecher completed (`None` if none did).
    pub until_first_complete: Option<f64>,
    /// Until every leecher that is not a free rider completed (`None` if not all did).
    pub until_all_complete: Option<f64>,
    /// Until every piece was held by at least one leecher present: the
    /// copies the seed must upload before it can leave without the swarm
    /// losing a piece (`None` if that never happened). The initial seed's
    /// spread keeps this at 1.0.
    pub until_every_piece_out: Option<f64>,
}

/// How long the initial seed took to put every piece out, and how busy
/// its uplink was meanwhile: with one seed as fast as a leecher the seed
/// is the bottleneck of a flash crowd (the fluid bound is `F/u_s`), so
/// every second its uplink idles or repeats a piece before then shows in
/// the finish.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EveryPieceOut {
    /// Virtual seconds from the start until every piece was held by a
    /// leecher present.
    pub at_s: f64,
    /// Block bytes the seed uploaded by then ÷ (its upload capacity ×
    /// `at_s`): 1.0 is a seed never idle.
    pub seed_upload_use: f64,
    /// The seed's uplink idle time until then, as in
    /// [`SimReport::uplink_idle`].
    pub seed_uplink_idle: IdleShare,
}

/// Fractions of a span an uplink carried no block, by why (as of the
/// messages its node sent and received).
#[derive(Copy, Clone, Debug, Default, PartialEq, Serialize)]
pub struct IdleShare {
    /// Idle while a peer it unchoked was interested in it: the requests
    /// that would have kept it busy were missing (the downloader's pipeline
    /// too short for the round trip, a new unchoke still ramping up).
    pub starved: f64,
    /// Idle while no unchoked peer was interested in it (nothing others
    /// want yet, or everyone who wants something is choked).
    pub no_demand: f64,
}

impl IdleShare {
    fn of(idle: UplinkIdle, span_s: f64) -> Self {
        let span = span_s.max(f64::MIN_POSITIVE);
        Self {
            starved: idle.starved_s / span,
            no_demand: idle.no_demand_s / span,
        }
    }
}

/// The outcome of one simulated swarm.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimReport {
    /// Leechers (free riders included; the seed excluded).
    pub peers: usize,
    /// Size of the file, bytes.
    pub file_bytes: u64,
    /// Kumar–Ross minimum distribution time, seconds:
    /// `max(F/u_s, F/d_min, N·F/(u_s + Σu_i))`.
    pub fluid_bound_s: f64,
    /// Download times of the leechers that are not free riders and completed.
    pub finish_s: Option<FinishTimes>,
    /// Entry `k - 1`: the fewest leechers holding any one piece at the
    /// moment the leechers present first held `k` copies of the file
    /// between them (their mean availability). Rarest-first keeps this
    /// close to `k`; a picker blind to availability lets it lag.
    pub min_availability: Vec<u32>,
    /// Per completed leecher (free riders included), seconds from its
    /// second-to-last verified piece to its last: the last-piece delay
    /// that endgame mode exists to cut (BEP 3 "endgame").
    pub last_piece_delay_s: Option<FinishTimes>,
    /// Download times of the free riders that completed, when there are any.
    pub free_rider_finish_s: Option<FinishTimes>,
    /// `finish_s.max / fluid_bound_s`.
    pub ratio_to_bound: Option<f64>,
    /// Bytes of blocks the initial seed uploaded.
    pub seed_uploaded_bytes: u64,
    /// The same in copies of the file, at two moments.
    pub seed_upload_copies: SeedCopies,
    /// When every piece was out, and the seed's uplink use until then
    /// (`None` if that never happened).
    pub every_piece_out: Option<EveryPieceOut>,
    /// Block requests the initial seed received (BEP 3 "request").
    pub seed_requests_received: u64,
    /// Of those, how many it answered with a BEP 6 reject (initial
    /// spread: the piece is another peer's; choked; queue full).
    pub seed_rejects_sent: u64,
    /// Mean fraction of upload capacity the contributing leechers used while downloading.
    pub upload_utilization: f64,
    /// Mean fractions of their download time the contributing leechers'
    /// uplinks carried no block, by why.
    pub uplink_idle: IdleShare,
    /// Block bytes the leechers received twice or never asked for (an
    /// endgame duplicate, a request cancelled or handed to another peer
    /// too late): upload capacity spent on nothing.
    pub wasted_bytes: u64,
    /// Whether every leecher that is not a free rider and did not leave completed.
    pub all_completed: bool,
    /// Leechers that left the swarm before completing (churn).
    pub left_unfinished: usize,
    /// Simulation events processed.
    pub events: u64,
    /// Virtual time at the end of the run, seconds.
    pub virtual_s: f64,
}

/// Bookkeeping during a run. Node 0 is the seed.
pub(super) struct Recorder {
    file_bytes: u64,
    /// `(arrival, free rider)` per node.
    nodes: Vec<(Duration, bool)>,
    completed: Vec<Option<Duration>>,
    uploaded_while_downloading: Vec<u64>,
    seed_uploaded: u64,
    seed_requests: u64,
    seed_rejects: u64,
    copies_first: Option<f64>,
    copies_all: Option<f64>,
    copies_every_piece_out: Option<f64>,
    /// When `copies_every_piece_out` was taken, and the seed's uplink
    /// idle time by then.
    every_piece_out_at: Option<(Duration, UplinkIdle)>,
    /// Each node's uplink idle time at its completion.
    idle_at_completion: Vec<Option<UplinkIdle>>,
    availability: Availability,
    min_availability: Vec<u32>,
    /// Pieces each node verified, and when it verified the latest one.
    verified: Vec<(u32, Duration)>,
    /// Per node, the time from its second-to-last verified piece to its last.
    last_piece_delay: Vec<Option<Duration>>,
    contributors_left: usize,
    /// Leechers (free riders included) neither completed nor gone.
    leechers_left: usize,
    left_unfinished: usize,
}

impl Recorder {
    pub fn new(file_bytes: u64, piece_count: u32, nodes: Vec<(Duration, bool)>) -> Self {
        let contributors_left = nodes.iter().skip(1).filter(|(_, free)| !free).count();
        let n = nodes.len();
        Self {
            file_bytes,
            completed: vec![None; n],
            uploaded_while_downloading: vec![0; n],
            nodes,
            seed_uploaded: 0,
            seed_requests: 0,
            seed_rejects: 0,
            copies_first: None,
            copies_all: None,
            copies_every_piece_out: None,
            every_piece_out_at: None,
            idle_at_completion: vec![None; n],
            availability: Availability::new(n, piece_count),
            min_availability: Vec::new(),
            verified: vec![(0, Duration::ZERO); n],
            last_piece_delay: vec![None; n],
            contributors_left,
            leechers_left: n - 1,
            left_unfinished: 0,
        }
    }

    pub fn contributors_done(&self) -> bool {
        self.contributors_left == 0
    }

    /// Every leecher, free riders included, completed or left.
    pub fn leechers_done(&self) -> bool {
        self.leechers_left == 0
    }

    /// Leechers that completed so far.
    pub fn completed_leechers(&self) -> usize {
        self.completed.iter().skip(1).flatten().count()
    }

    pub fn seed_uploaded(&self) -> u64 {
        self.seed_uploaded
    }

    fn copies(&self) -> f64 {
        self.seed_uploaded as f64 / self.file_bytes as f64
    }

    /// The initial seed received a request.
    pub fn seed_request(&mut self) {
        self.seed_requests += 1;
    }

    /// The initial seed sent a reject.
    pub fn seed_reject(&mut self) {
        self.seed_rejects += 1;
    }

    pub fn block_sent(&mut self, node: usize, bytes: u64) {
        if node == 0 {
            self.seed_uploaded += bytes;
        } else if self.completed[node].is_none() {
            self.uploaded_while_downloading[node] += bytes;
        }
    }

    /// Leecher `node` verified `piece` at `now`; `seed_idle` gives the
    /// seed's uplink idle time so far (asked when this put the last piece out).
    pub fn piece_verified(
        &mut self,
        node: usize,
        piece: PieceIndex,
        now: Duration,
        seed_idle: impl FnOnce() -> UplinkIdle,
    ) {
        if node == 0 {
            return;
        }
        let (count, last) = &mut self.verified[node];
        *count += 1;
        if *count == self.availability.piece_count() && *count > 1 {
            self.last_piece_delay[node] = Some(now.saturating_sub(*last));
        }
        *last = now;
        if self.availability.add(node, piece) {
            let pieces = u64::from(self.availability.piece_count());
            let next_copy = (self.min_availability.len() as u64 + 1) * pieces;
            if self.availability.total() >= next_copy {
                self.min_availability.push(self.availability.min());
            }
            if self.copies_every_piece_out.is_none() && self.availability.min() > 0 {
                self.copies_every_piece_out = Some(self.copies());
                self.every_piece_out_at = Some((now, seed_idle()));
            }
        }
    }

    /// Leecher `node` completed at `now`, its uplink idle `idle` by then.
    pub fn completed(&mut self, node: usize, now: Duration, idle: UplinkIdle) {
        if node == 0 || self.completed[node].is_some() {
            return;
        }
        self.completed[node] = Some(now);
        self.idle_at_completion[node] = Some(idle);
        self.leechers_left -= 1;
        if self.copies_first.is_none() {
            self.copies_first = Some(self.copies());
        }
        if !self.nodes[node].1 {
            self.contributor_done();
        }
    }

    /// One more contributor needs nothing more (completed, or left).
    fn contributor_done(&mut self) {
        self.contributors_left -= 1;
        if self.contributors_left == 0 {
            self.copies_all = Some(self.copies());
        }
    }

    /// Leecher `node` left the swarm: if unfinished, the run no longer waits for it.
    pub fn left(&mut self, node: usize) {
        if node == 0 {
            return;
        }
        self.availability.remove_node(node);
        if self.completed[node].is_some() {
            return;
        }
        self.left_unfinished += 1;
        self.leechers_left -= 1;
        if !self.nodes[node].1 {
            self.contributor_done();
        }
    }

    /// The report at the end of the run (`now`); `idle` gives a node's
    /// uplink idle time so far (asked for the leechers that did not
    /// complete); `wasted_bytes` is the nodes' wasted block bytes.
    pub fn finish(
        &self,
        config: &SimConfig,
        (now, events, wasted_bytes): (Duration, u64, u64),
        mut idle: impl FnMut(usize) -> UplinkIdle,
    ) -> SimReport {
        let fluid_bound_s = fluid_bound(config);
        let times = |free: bool| {
            let mut t: Vec<f64> = (1..self.nodes.len())
                .filter(|&i| self.nodes[i].1 == free)
                .filter_map(|i| {
                    self.completed[i].map(|c| c.saturating_sub(self.nodes[i].0).as_secs_f64())
                })
                .collect();
            t.sort_by(f64::total_cmp);
            summarise(&t)
        };
        let finish_s = times(false);
        let free_rider_finish_s = if config.free_riders > 0 {
            times(true)
        } else {
            None
        };
        let contributors: Vec<usize> = (1..self.nodes.len())
            .filter(|&i| !self.nodes[i].1)
            .collect();
        let span = |i: usize| {
            let end = self.completed[i].unwrap_or(now);
            end.saturating_sub(self.nodes[i].0).as_secs_f64()
        };
        let utilisations: Vec<f64> = contributors
            .iter()
            .map(|&i| {
                if span(i) > 0.0 {
                    self.uploaded_while_downloading[i] as f64 / (config.upload_bps * span(i))
                } else {
                    0.0
                }
            })
            .collect();
        let mut uplink_idle = IdleShare::default();
        for &i in &contributors {
            let share = IdleShare::of(
                self.idle_at_completion[i].unwrap_or_else(|| idle(i)),
                span(i),
            );
            uplink_idle.starved += share.starved / contributors.len() as f64;
            uplink_idle.no_demand += share.no_demand / contributors.len() as f64;
        }
        let mut delays: Vec<f64> = self
            .last_piece_delay
            .iter()
            .flatten()
            .map(Duration::as_secs_f64)
            .collect();
        delays.sort_by(f64::total_cmp);
        let all_completed = self.contributors_done();
        SimReport {
            peers: config.peers,
            file_bytes: config.file_bytes,
            fluid_bound_s,
            ratio_to_bound: finish_s
                .as_ref()
                .filter(|_| all_completed)
                .map(|f| f.max / fluid_bound_s),
            finish_s,
            min_availability: self.min_availability.clone(),
            last_piece_delay_s: summarise(&delays),
            free_rider_finish_s,
            seed_uploaded_bytes: self.seed_uploaded,
            seed_upload_copies: SeedCopies {
                until_first_complete: self.copies_first,
                until_all_complete: self.copies_all,
                until_every_piece_out: self.copies_every_piece_out,
            },
            every_piece_out: self
                .copies_every_piece_out
                .zip(self.every_piece_out_at)
                .map(|(copies, (at, seed_idle))| {
                    let at_s = at.as_secs_f64();
                    EveryPieceOut {
                        at_s,
                        seed_upload_use: copies * self.file_bytes as f64
                            / (config.seed_upload_bps * at_s).max(f64::MIN_POSITIVE),
                        seed_uplink_idle: IdleShare::of(seed_idle, at_s),
                    }
                }),
            uplink_idle,
            seed_requests_received: self.seed_requests,
            seed_rejects_sent: self.seed_rejects,
            upload_utilization: utilisations.iter().sum::<f64>() / utilisations.len().max(1) as f64,
            wasted_bytes,
            all_completed,
            left_unfinished: self.left_unfinished,
            events,
            virtual_s: now.as_secs_f64(),
        }
    }
}

/// Kumar–Ross lower bound on the time to give every leecher the file, seconds.
pub(super) fn fluid_bound(config: &SimConfig) -> f64 {
    let file = config.file_bytes as f64;
    let slow = config.slow_peers as f64;
    let contributors = (config.peers - config.free_riders) as f64 - slow;
    let total_upload =
        config.seed_upload_bps + contributors * config.upload_bps + slow * config.slow_upload_bps;
    let mut bound = (file / config.seed_upload_bps).max(config.peers as f64 * file / total_upload);
    if let Some(download) = config.download_bps {
        bound = bound.max(file / download);
    }
    bound
}

/// Nearest-rank percentiles of sorted `times`.
fn summarise(sorted: &[f64]) -> Option<FinishTimes> {
    let rank =
        |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    (!sorted.is_empty()).then(|| FinishTimes {
        p50: rank(0.5),
        p90: rank(0.9),
        max: sorted[sorted.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fluid_bound_takes_the_tightest_constraint() {
        let mut config = SimConfig {
            peers: 10,
            file_bytes: 1_000_000,
            upload_bps: 100_000.0,
            seed_upload_bps: 1_000_000.0,
            ..SimConfig::default()
        };
        // Swarm capacity: 10 MB to move over 2 MB/s total upload.
        assert!((fluid_bound(&config) - 5.0).abs() < 1e-9);
        config.seed_upload_bps = 100_000.0;
        // The seed alone needs 10 s to push one copy.
        assert!((fluid_bound(&config) - 10.0).abs() < 1e-9);
        config.download_bps = Some(50_000.0);
        assert!((fluid_bound(&config) - 20.0).abs() < 1e-9);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let t: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = summarise(&t).unwrap();
        assert_eq!((s.p50, s.p90, s.max), (5.0, 9.0, 10.0));
        assert!(summarise(&[]).is_none());
    }
}
