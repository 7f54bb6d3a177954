//! minibit-sim: a deterministic swarm simulator, a driver of
//! [`minibit_core`] like `minibit-peer` (but on a virtual clock, with no I/O).
//!
//! Drives many [`Torrent`]s on a virtual clock over a seeded link model:
//! every node has an upload and a download capacity (bytes/s), every message
//! a one-way latency, and an optional loss rate (a lost message costs one
//! retransmission timeout, as TCP would). A node's uplink carries one block
//! at a time, round-robin over its connections, so bandwidth is shared
//! between its active uploads at block granularity; other messages (HAVE,
//! requests, ...) leave at once, slipped between the packets of a block
//! under way as TCP would, and their bytes delay the next block. Messages
//! on one connection arrive in order.
//!
//! Events sit in a monotone radix heap; a message travels inside its
//! delivery event. Within each window of one latency the nodes run one
//! after the other, each through its own events in time order (nothing a
//! node does reaches another sooner than one latency later, the lookahead
//! of conservative parallel simulation), so a node's state stays in the
//! cache across its events; the run is memory bound (README figures). The
//! few reads across nodes (which nodes the tracker lists, a receiver's
//! downlink queue when download capacity is limited) see the other node as
//! of some instant of the current window.
//!
//! Node 0 is the initial seed; nodes `1..=peers` are leechers, of which the
//! last `free_riders` never upload a block; the first `leavers` leave at a
//! random instant (churn). A simple tracker answers every announce with up
//! to `tracker_numwant` random other nodes present. Nothing here reads a clock or
//! the OS: the same [`SimConfig`] gives the same [`SimReport`] (wall time
//! is measured by the caller).
//!
//! Addresses are identifiers in 127.0.0.0/8; no packet is ever sent.

mod availability;
mod network;
mod report;

use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::InfoHash;
use minibit_core::piece::{BLOCK_SIZE, BlockRef, Layout, LayoutError};
use minibit_core::torrent::{
    Action, Direction, Event, PeerKey, PickerStrategy, Torrent, TorrentConfig,
};
use minibit_core::wire::{Message, PeerId};

use network::{LinkId, Network, Sent};
pub use report::{EveryPieceOut, FinishTimes, IdleShare, SeedCopies, SimReport};

/// Block bytes waiting on one connection's uplink under which a node reads
/// (serves) more of that peer's requests, as minibit-peer reads blocks
/// for a peer only while its outgoing backlog is under 1 MiB: requests
/// beyond stay queued in the core, where a cancel still withdraws them.
const SEND_BACKLOG: u64 = 1024 * 1024;

/// Announce interval the simulated tracker hands out.
const TRACKER_INTERVAL: Duration = Duration::from_secs(300);

/// Parameters of one simulated swarm.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of leechers (the seed comes on top).
    pub peers: usize,
    /// Size of the shared file in bytes.
    pub file_bytes: u64,
    /// Piece length in bytes.
    pub piece_length: u32,
    /// Upload capacity of each leecher, bytes/s.
    pub upload_bps: f64,
    /// Download capacity of each leecher, bytes/s (`None`: unlimited).
    pub download_bps: Option<f64>,
    /// Upload capacity of the initial seed, bytes/s.
    pub seed_upload_bps: f64,
    /// One-way latency of every link.
    pub latency: Duration,
    /// Probability that a message is lost once and retransmitted (0.0..1.0).
    pub loss: f64,
    /// Seed of every random choice of the simulation and of the torrents.
    pub rng_seed: u64,
    /// How many of the leechers never upload.
    pub free_riders: usize,
    /// How many leechers (nodes right after the leavers, never free riders)
    /// upload at `slow_upload_bps` instead of `upload_bps` (default 0): the
    /// slow peers a leecher's last blocks can get stuck behind (endgame).
    pub slow_peers: usize,
    /// Upload capacity of each slow peer, bytes/s.
    pub slow_upload_bps: f64,
    /// Piece-selection strategy of every node.
    pub picker: PickerStrategy,
    /// Whether the initial seed uses super-seeding.
    pub super_seed: bool,
    /// Whether the initial seed spreads its first copy, each piece to one
    /// peer ([`TorrentConfig::initial_spread`]; default true).
    pub initial_spread: bool,
    /// The initial seed leaves once it uploaded this many copies of the file.
    pub seed_leaves_after_copies: Option<f64>,
    /// Leechers arrive uniformly over this long (zero: a flash crowd at t = 0).
    pub arrival_spread: Duration,
    /// How many leechers (nodes `1..=leavers`, never free riders) leave the
    /// swarm for good at a random instant, uniformly within `leave_within`
    /// of their arrival, finished or not (default 0).
    pub leavers: usize,
    /// Span after its arrival within which each leaver leaves (default 60 s).
    pub leave_within: Duration,
    /// Peers a tracker answer holds at most (default 50, a real tracker's `numwant`).
    pub tracker_numwant: usize,
    /// BEP 11 peer exchange on every node ([`TorrentConfig::peer_exchange`];
    /// default: the core's default, on).
    pub peer_exchange: bool,
    /// Time each node's request pipeline covers at a peer's rate
    /// ([`TorrentConfig::pipeline_target`]; default: the core's).
    pub pipeline_target: Duration,
    /// Virtual time after which the run stops even if peers are unfinished.
    pub time_limit: Duration,
}

impl SimConfig {
    /// The core's settings for a node: the initial seed (`seed`), a free
    /// rider, or another leecher.
    fn torrent_config(&self, seed: bool, free_rider: bool) -> TorrentConfig {
        TorrentConfig {
            picker: self.picker,
            super_seed: seed && self.super_seed,
            initial_spread: self.initial_spread,
            // A free rider never unchokes anyone and offers no
            // allowed-fast pieces, so it never uploads a block (it does
            // not swallow requests: peers simply get nothing from it).
            unchoke_slots: if free_rider { 0 } else { 4 },
            allowed_fast_count: if free_rider { 0 } else { 10 },
            peer_exchange: self.peer_exchange,
            pipeline_target: self.pipeline_target,
            ..TorrentConfig::default()
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            peers: 20,
            file_bytes: 64 * 1024 * 1024,
            piece_length: 256 * 1024,
            upload_bps: 1_000_000.0,
            download_bps: None,
            seed_upload_bps: 1_000_000.0,
            latency: Duration::from_millis(25),
            loss: 0.0,
            rng_seed: 1,
            free_riders: 0,
            slow_peers: 0,
            slow_upload_bps: 10_000.0,
            picker: PickerStrategy::RarestFirst,
            super_seed: false,
            initial_spread: true,
            seed_leaves_after_copies: None,
            arrival_spread: Duration::ZERO,
            leavers: 0,
            leave_within: Duration::from_secs(60),
            tracker_numwant: 50,
            peer_exchange: TorrentConfig::default().peer_exchange,
            pipeline_target: TorrentConfig::default().pipeline_target,
            time_limit: Duration::from_secs(24 * 3600),
        }
    }
}

/// Why a simulation could not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The file size and piece length do not make a valid torrent.
    #[error("invalid torrent geometry: {0}")]
    Layout(#[from] LayoutError),
    /// More free riders plus leavers plus slow peers than leechers, or no leecher.
    #[error("need at least one leecher and at most `peers` free riders, leavers and slow peers")]
    BadPeerCounts,
    /// A capacity is zero, negative or not a number.
    #[error("upload and download capacities must be positive")]
    BadCapacity,
}

/// One participant of the swarm.
struct Node {
    torrent: Torrent,
    addr: SocketAddr,
    free_rider: bool,
    joined: bool,
    left: bool,
    arrival: Duration,
    completed_at: Option<Duration>,
    /// Virtual instant of the timer already queued for this node.
    timer: Option<Instant>,
    links: LinkTable,
    /// Reads ([`Action::ReadBlock`]) waiting for their connection's
    /// backlog to fall under [`SEND_BACKLOG`], oldest first.
    deferred_reads: Vec<(LinkId, PeerKey, BlockRef)>,
}

/// Where a running simulation stands ([`Simulation::run_observed`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Latest virtual instant reached, since the start.
    pub virtual_time: Duration,
    /// Events processed so far.
    pub events: u64,
    /// Leechers that completed the download (free riders included).
    pub completed: usize,
    /// Leechers in the swarm (the seed not counted).
    pub leechers: usize,
}

/// A node's links by its [`PeerKey`] for the other end (keys are small
/// slab indices, so a vector beats a hash map on every send).
#[derive(Default)]
struct LinkTable(Vec<Option<LinkId>>);

impl LinkTable {
    fn get(&self, key: PeerKey) -> Option<LinkId> {
        self.0.get(key.0).copied().flatten()
    }

    fn insert(&mut self, key: PeerKey, link: LinkId) {
        if self.0.len() <= key.0 {
            self.0.resize(key.0 + 1, None);
        }
        self.0[key.0] = Some(link);
    }

    fn remove(&mut self, key: PeerKey) {
        if let Some(slot) = self.0.get_mut(key.0) {
            *slot = None;
        }
    }

    fn iter(&self) -> impl Iterator<Item = LinkId> + '_ {
        self.0.iter().flatten().copied()
    }
}

/// Something that happens at a virtual instant.
#[derive(Debug)]
enum SimEvent {
    /// A leecher joins the swarm.
    Join(usize),
    /// A leecher leaves the swarm for good.
    Leave(usize),
    /// A node's `poll_timeout` instant.
    Timer(usize),
    /// A dialer's connection attempt reaches the listener.
    ConnectArrives { from: usize, to: usize },
    /// The listener refused (or was gone): the refusal reaches the dialer.
    ConnectRefused { dialer: usize, listener: usize },
    /// The listener's handshake answer reaches the dialer.
    HandshakeArrives { link: LinkId, dialer: usize },
    /// A node's uplink finished sending its current block.
    UplinkDone(usize),
    /// A message on `link` reaches `to` (whose key for the sender was
    /// `key` when it was sent, if known then). Messages on one link arrive
    /// in the order sent (their instants never decrease).
    Deliver {
        link: LinkId,
        to: usize,
        key: Option<PeerKey>,
        message: Message,
    },
    /// A disconnect notice reaches the other end of a link.
    Hangup { link: LinkId, to: usize },
}

impl SimEvent {
    /// The node whose state the event changes: every event changes one
    /// node's state only.
    fn node(&self) -> usize {
        match *self {
            Self::Join(node) | Self::Leave(node) | Self::Timer(node) | Self::UplinkDone(node) => {
                node
            }
            Self::ConnectArrives { to, .. }
            | Self::Deliver { to, .. }
            | Self::Hangup { to, .. } => to,
            Self::ConnectRefused { dialer, .. } | Self::HandshakeArrives { dialer, .. } => dialer,
        }
    }
}

/// Where an event sits in the queue: (latency window, node, virtual ns,
/// sequence number).
///
/// Anything one node sends another arrives at least one latency later, so
/// within a window of one latency the nodes cannot affect each other: their
/// events may run node by node, each node's in time order, with the same
/// outcome as in strict time order, and a node's state stays in the cache
/// across its events of the window. (Zero latency falls back to strict
/// time order.)
type EventKey = (u64, u64, u64, u64);

/// A deterministic swarm on a virtual clock.
pub struct Simulation {
    config: SimConfig,
    base: Instant,
    now: Duration,
    layout: Layout,
    nodes: Vec<Node>,
    by_addr: HashMap<SocketAddr, usize>,
    network: Network,
    /// Events by [`EventKey`]: a monotone priority queue, as no event is
    /// ever scheduled before the present (a node schedules its own events
    /// no earlier than now, others' a window later at least).
    queue: radix_heap::RadixHeapMap<Reverse<EventKey>, SimEvent>,
    /// Window length in virtual ns: the latency.
    window_ns: u64,
    /// Scratch space for [`Network::send_ready`] (reused, never reallocated per event).
    sent: Vec<Sent>,
    seq: u64,
    rng: ChaCha8Rng,
    processed: u64,
    zeros: Bytes,
    report: report::Recorder,
}

impl Simulation {
    /// A swarm ready to run. `base` is the [`Instant`] that stands for
    /// virtual time zero (any instant: only differences matter).
    ///
    /// # Errors
    /// [`SimError`] when the configuration cannot describe a swarm.
    pub fn new(config: SimConfig, base: Instant) -> Result<Self, SimError> {
        if config.peers == 0
            || config.free_riders + config.leavers + config.slow_peers > config.peers
        {
            return Err(SimError::BadPeerCounts);
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(config.upload_bps)
            || !positive(config.seed_upload_bps)
            || config.download_bps.is_some_and(|d| !positive(d))
            || (config.slow_peers > 0 && !positive(config.slow_upload_bps))
        {
            return Err(SimError::BadCapacity);
        }
        let layout = Layout::new(u64::from(config.piece_length), &[config.file_bytes])?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.rng_seed);
        let info_hash = InfoHash([0x5a; 20]);
        let mut nodes = Vec::with_capacity(config.peers + 1);
        let mut network = Network::new(config.latency, config.loss);
        for index in 0..=config.peers {
            let seed = index == 0;
            let free_rider = !seed && index > config.peers - config.free_riders;
            let addr = node_addr(index);
            let have = if seed {
                Bitfield::full(layout.piece_count())
            } else {
                Bitfield::new(layout.piece_count())
            };
            let torrent_config = TorrentConfig {
                rng_seed: Some(rand::Rng::random(&mut rng)),
                listen_addr: Some(addr),
                ..config.torrent_config(seed, free_rider)
            };
            let arrival = if seed || config.arrival_spread.is_zero() {
                Duration::ZERO
            } else {
                config
                    .arrival_spread
                    .mul_f64(rand::Rng::random::<f64>(&mut rng))
            };
            let slow = (config.leavers + 1..=config.leavers + config.slow_peers).contains(&index);
            let upload = if seed {
                config.seed_upload_bps
            } else if slow {
                config.slow_upload_bps
            } else {
                config.upload_bps
            };
            let download = if seed { None } else { config.download_bps };
            network.add_node(upload, download);
            nodes.push(Node {
                torrent: Torrent::new(
                    torrent_config,
                    info_hash,
                    node_peer_id(index),
                    layout.clone(),
                    have,
                    base + arrival,
                ),
                addr,
                free_rider,
                joined: false,
                left: false,
                arrival,
                completed_at: seed.then_some(Duration::ZERO),
                timer: None,
                links: LinkTable::default(),
                deferred_reads: Vec::new(),
            });
        }
        let by_addr = nodes.iter().enumerate().map(|(i, n)| (n.addr, i)).collect();
        let report = report::Recorder::new(
            layout.total_length(),
            layout.piece_count(),
            nodes.iter().map(|n| (n.arrival, n.free_rider)).collect(),
        );
        let window_ns = config.latency.as_nanos() as u64;
        let mut sim = Self {
            config,
            base,
            now: Duration::ZERO,
            layout,
            nodes,
            by_addr,
            network,
            queue: radix_heap::RadixHeapMap::new(),
            window_ns,
            sent: Vec::new(),
            seq: 0,
            rng,
            processed: 0,
            zeros: Bytes::from(vec![0u8; BLOCK_SIZE as usize]),
            report,
        };
        sim.schedule_arrivals_and_departures();
        Ok(sim)
    }

    /// Queues every node's arrival, and the departure of each leaver at a
    /// random instant within `leave_within` of its arrival.
    fn schedule_arrivals_and_departures(&mut self) {
        for index in 0..self.nodes.len() {
            let at = self.nodes[index].arrival;
            self.schedule(at, SimEvent::Join(index));
        }
        for index in 1..=self.config.leavers {
            let stay = self
                .config
                .leave_within
                .mul_f64(rand::Rng::random(&mut self.rng));
            let at = self.nodes[index].arrival + stay;
            self.schedule(at, SimEvent::Leave(index));
        }
    }

    /// Runs until every leecher (free riders included) finished or left,
    /// nothing is left to happen, or the time limit passes; then reports.
    pub fn run(self) -> SimReport {
        self.run_observed(u64::MAX, |_| {})
    }

    /// As [`Simulation::run`], showing `observer` where the run stands
    /// every `every` events (at least 1): a large swarm takes minutes.
    pub fn run_observed(mut self, every: u64, mut observer: impl FnMut(&Progress)) -> SimReport {
        let every = every.max(1);
        let mut end = Duration::ZERO;
        while let Some((Reverse((_, _, at, _)), event)) = self.queue.pop() {
            let at = Duration::from_nanos(at);
            if self.report.leechers_done() {
                break;
            }
            if at > self.config.time_limit {
                // Later windows hold only later events.
                if self.window_start(at) > self.config.time_limit {
                    break;
                }
                continue;
            }
            self.now = at;
            end = end.max(at);
            self.processed += 1;
            self.dispatch(event);
            if self.processed % every == 0 {
                observer(&Progress {
                    virtual_time: end,
                    events: self.processed,
                    completed: self.report.completed_leechers(),
                    leechers: self.config.peers,
                });
            }
        }
        let wasted = self.nodes.iter().map(|n| n.torrent.wasted()).sum();
        let network = &mut self.network;
        self.report
            .finish(&self.config, (end, self.processed, wasted), |node| {
                network.uplink_idle(node, end)
            })
    }

    fn instant(&self) -> Instant {
        self.base + self.now
    }

    fn schedule(&mut self, at: Duration, event: SimEvent) {
        self.seq += 1;
        let ns = at.max(self.now).as_nanos() as u64;
        let key = match self.window_ns {
            0 => (ns, 0, ns, self.seq),
            window => (ns / window, event.node() as u64, ns, self.seq),
        };
        self.queue.push(Reverse(key), event);
    }

    /// The start of the window holding `at`.
    fn window_start(&self, at: Duration) -> Duration {
        let ns = at.as_nanos() as u64;
        Duration::from_nanos(ns - ns.checked_rem(self.window_ns).unwrap_or(0))
    }

    fn dispatch(&mut self, event: SimEvent) {
        match event {
            SimEvent::Join(node) => {
                self.nodes[node].joined = true;
                self.drain(node);
            }
            SimEvent::Timer(node) => {
                let now = self.instant();
                if self.nodes[node].timer.is_some_and(|t| t <= now) {
                    self.nodes[node].timer = None;
                }
                if self.alive(node) {
                    self.nodes[node].torrent.handle_timeout(now);
                    self.drain(node);
                }
            }
            SimEvent::Leave(node) => self.leave(node),
            SimEvent::ConnectArrives { from, to } => self.connect_arrives(from, to),
            SimEvent::ConnectRefused { dialer, listener } => {
                if self.alive(dialer) {
                    let now = self.instant();
                    let addr = self.nodes[listener].addr;
                    self.nodes[dialer].torrent.handle_connect_failed(now, addr);
                    self.drain(dialer);
                }
            }
            SimEvent::HandshakeArrives { link, .. } => self.handshake_arrives(link),
            SimEvent::UplinkDone(node) => {
                self.network.uplink_done(node, self.now);
                self.pump(node);
                self.resume_reads(node);
            }
            SimEvent::Deliver {
                link,
                to,
                key,
                message,
            } => self.deliver(link, to, key, message),
            SimEvent::Hangup { link, to } => {
                if let Some(key) = self.network.end_key(link, to) {
                    self.network.forget_end(link, to);
                    self.nodes[to].links.remove(key);
                    let now = self.instant();
                    self.nodes[to].torrent.handle_peer_disconnected(now, key);
                    self.drain(to);
                }
            }
        }
    }

    fn alive(&self, node: usize) -> bool {
        let n = &self.nodes[node];
        n.joined && !n.left
    }

    fn connect_arrives(&mut self, from: usize, to: usize) {
        let now = self.instant();
        let dialer_addr = self.nodes[from].addr;
        let at = self.now + self.config.latency;
        let refused = SimEvent::ConnectRefused {
            dialer: from,
            listener: to,
        };
        if !self.alive(to) || !self.alive(from) {
            self.schedule(at, refused);
            return;
        }
        let theirs = self.nodes[from].torrent.handshake();
        if let Ok(key) =
            self.nodes[to]
                .torrent
                .handle_handshake(now, dialer_addr, Direction::Inbound, &theirs)
        {
            let link = self.network.open(from, to, key);
            self.nodes[to].links.insert(key, link);
            self.schedule(at, SimEvent::HandshakeArrives { link, dialer: from });
            self.drain(to);
        } else {
            self.schedule(at, refused);
        }
    }

    fn handshake_arrives(&mut self, link: LinkId) {
        let Some((dialer, listener)) = self.network.ends(link) else {
            return;
        };
        let now = self.instant();
        let listener_addr = self.nodes[listener].addr;
        if !self.alive(dialer) {
            self.hang_up(link, dialer);
            return;
        }
        let theirs = self.nodes[listener].torrent.handshake();
        if let Ok(key) = self.nodes[dialer].torrent.handle_handshake(
            now,
            listener_addr,
            Direction::Outbound,
            &theirs,
        ) {
            self.network.set_dialer_key(link, key);
            self.nodes[dialer].links.insert(key, link);
            self.drain(dialer);
        } else {
            self.nodes[dialer]
                .torrent
                .handle_connect_failed(now, listener_addr);
            self.hang_up(link, dialer);
            self.drain(dialer);
        }
    }

    /// `from` closes `link`: it forgets it now, the other end after the
    /// latency and after the messages `from` already sent.
    fn hang_up(&mut self, link: LinkId, from: usize) {
        if let Some(key) = self.network.end_key(link, from) {
            self.nodes[from].links.remove(key);
        }
        self.network.forget_end(link, from);
        if let Some(other) = self.network.other_end(link, from) {
            let at = (self.now + self.config.latency).max(self.network.last_arrival(link, from));
            self.schedule(at, SimEvent::Hangup { link, to: other });
        }
        self.network.close(link, self.now);
    }

    /// Hands `message` to `to` if it still holds `link`. The receiver's own
    /// link table answers when the key was known at sending (the link
    /// itself, likely out of cache, only otherwise).
    fn deliver(&mut self, link: LinkId, to: usize, key: Option<PeerKey>, message: Message) {
        let key = match key {
            Some(key) => (self.nodes[to].links.get(key) == Some(link)).then_some(key),
            None => self.network.end_key(link, to),
        };
        let Some(key) = key else {
            return;
        };
        if to == 0 && matches!(message, Message::Request { .. }) {
            self.report.seed_request();
        }
        let now = self.instant();
        self.nodes[to].torrent.handle_message(now, key, message);
        self.drain(to);
    }

    /// Carries out every action of `node`, records its events, re-arms its timer.
    fn drain(&mut self, node: usize) {
        if !self.alive(node) {
            return;
        }
        let now = self.instant();
        loop {
            let Some(action) = self.nodes[node].torrent.poll_action() else {
                break;
            };
            self.act(node, action, now);
            if self.nodes[node].left {
                return;
            }
        }
        while let Some(event) = self.nodes[node].torrent.poll_event() {
            if event == Event::DownloadCompleted && self.nodes[node].completed_at.is_none() {
                self.nodes[node].completed_at = Some(self.now);
                let idle = self.network.uplink_idle(node, self.now);
                self.report.completed(node, self.now, idle);
            }
        }
        self.pump(node);
        if node == 0 {
            self.maybe_seed_leaves();
        }
        if let Some(at) = self.nodes[node].torrent.poll_timeout() {
            let at = at.max(now);
            if self.nodes[node].timer.is_none_or(|t| at < t) {
                self.nodes[node].timer = Some(at);
                self.schedule(at - self.base, SimEvent::Timer(node));
            }
        }
    }

    fn act(&mut self, node: usize, action: Action, now: Instant) {
        match action {
            Action::Send { peer, message } => {
                if node == 0 && matches!(message, Message::Reject { .. }) {
                    self.report.seed_reject();
                }
                if let Some(link) = self.nodes[node].links.get(peer) {
                    let lost = loss_draw(&mut self.rng, self.config.loss);
                    if let Some(sent) = self.network.send(link, node, message, self.now, lost) {
                        self.schedule_arrival(node, sent);
                    }
                }
            }
            Action::Connect { addr } => match self.by_addr.get(&addr) {
                Some(&to) => {
                    let at = self.now + self.config.latency;
                    self.schedule(at, SimEvent::ConnectArrives { from: node, to });
                }
                None => self.nodes[node].torrent.handle_connect_failed(now, addr),
            },
            Action::Disconnect { peer, .. } => {
                if let Some(link) = self.nodes[node].links.get(peer) {
                    self.hang_up(link, node);
                }
                self.nodes[node].torrent.handle_peer_disconnected(now, peer);
            }
            Action::WriteBlock { .. } => {}
            Action::ReadBlock { peer, block } => {
                let Some(link) = self.nodes[node].links.get(peer) else {
                    return;
                };
                let waiting = self.nodes[node]
                    .deferred_reads
                    .iter()
                    .any(|&(l, _, _)| l == link);
                if waiting || self.network.block_backlog(link, node) >= SEND_BACKLOG {
                    self.nodes[node].deferred_reads.push((link, peer, block));
                } else {
                    let data = self.zeros.slice(..block.length as usize);
                    self.nodes[node]
                        .torrent
                        .handle_block_read(now, peer, block, data);
                }
            }
            Action::VerifyPiece { piece } => {
                let network = &mut self.network;
                let at = self.now;
                self.report
                    .piece_verified(node, piece, at, || network.uplink_idle(0, at));
                self.nodes[node]
                    .torrent
                    .handle_piece_verified(now, piece, true);
            }
            Action::Announce { .. } => {
                let peers = self.tracker_peers(node);
                self.nodes[node].torrent.handle_announce_response(
                    now,
                    TRACKER_INTERVAL,
                    None,
                    &peers,
                );
            }
            // A new action of the core must get a model here before a run
            // can mean anything.
            other => panic!("the simulator has no model for {other:?}"),
        }
    }

    /// Completes the deferred reads of `node` whose connection's backlog
    /// fell under [`SEND_BACKLOG`] (one at a time: each read's block
    /// joins the backlog), dropping those of connections gone.
    fn resume_reads(&mut self, node: usize) {
        while self.alive(node) {
            let now = self.instant();
            let n = &mut self.nodes[node];
            n.deferred_reads
                .retain(|&(link, key, _)| n.links.get(key) == Some(link));
            let network = &self.network;
            let Some(i) = n
                .deferred_reads
                .iter()
                .position(|&(link, _, _)| network.block_backlog(link, node) < SEND_BACKLOG)
            else {
                return;
            };
            let (_, peer, block) = n.deferred_reads.remove(i);
            let data = self.zeros.slice(..block.length as usize);
            n.torrent.handle_block_read(now, peer, block, data);
            self.drain(node);
        }
    }

    /// Up to `tracker_numwant` random other nodes present in the swarm.
    fn tracker_peers(&mut self, node: usize) -> Vec<SocketAddr> {
        let mut present: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| i != node && self.alive(i))
            .collect();
        present.shuffle(&mut self.rng);
        present.truncate(self.config.tracker_numwant);
        present.into_iter().map(|i| self.nodes[i].addr).collect()
    }

    /// Puts what `node`'s uplink can send now on the wire.
    fn pump(&mut self, node: usize) {
        let mut sent = std::mem::take(&mut self.sent);
        let lost = loss_draw(&mut self.rng, self.config.loss);
        if let Some(free_at) = self.network.send_ready(node, self.now, lost, &mut sent) {
            self.schedule(free_at, SimEvent::UplinkDone(node));
        }
        for one in sent.drain(..) {
            self.schedule_arrival(node, one);
        }
        self.sent = sent;
    }

    /// Queues the arrival of a message `node` put on the wire.
    fn schedule_arrival(&mut self, node: usize, sent: Sent) {
        let Sent {
            link,
            to,
            key,
            message,
            arrives_at,
            block_bytes,
        } = sent;
        if block_bytes > 0 {
            self.report.block_sent(node, block_bytes);
        }
        let deliver = SimEvent::Deliver {
            link,
            to,
            key,
            message,
        };
        self.schedule(arrives_at, deliver);
    }

    fn maybe_seed_leaves(&mut self) {
        let Some(copies) = self.config.seed_leaves_after_copies else {
            return;
        };
        if self.nodes[0].left {
            return;
        }
        let limit = copies * self.layout.total_length() as f64;
        if self.report.seed_uploaded() as f64 >= limit {
            self.leave(0);
        }
    }

    /// `node` stops its torrent and closes every connection; it never comes back.
    fn leave(&mut self, node: usize) {
        if !self.alive(node) {
            return;
        }
        let now = self.instant();
        self.nodes[node].left = true;
        self.nodes[node].torrent.stop(now);
        self.report.left(node);
        let links: Vec<LinkId> = self.nodes[node].links.iter().collect();
        for link in links {
            self.hang_up(link, node);
        }
    }
}

/// Asked once per message: whether it is lost once, with probability `loss`.
fn loss_draw(rng: &mut ChaCha8Rng, loss: f64) -> impl FnMut() -> bool + '_ {
    move || rand::Rng::random::<f64>(rng) < loss
}

/// The identifier address of node `index` (127.x.y.1: never sent to). Each
/// node sits in its own /24, as peers of a real swarm sit in different
/// networks: BEP 6 derives the allowed-fast set from the top 24 bits, so
/// nodes sharing a /24 would all get the same set.
fn node_addr(index: usize) -> SocketAddr {
    let n = index as u32 + 1;
    let ip = Ipv4Addr::new(127, (n >> 8) as u8, n as u8, 1);
    SocketAddr::from((ip, 6881))
}

fn node_peer_id(index: usize) -> PeerId {
    let mut id = *b"-MB0001-sim000000000";
    let digits = format!("{index:012}");
    id[8..].copy_from_slice(digits.as_bytes());
    PeerId(id)
}
