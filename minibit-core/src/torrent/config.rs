//! [`TorrentConfig`]: the tunables of a [`super::Torrent`].

use std::net::SocketAddr;
use std::time::Duration;

pub use crate::picker::PickerStrategy;
use crate::priority::Priority;

/// Tunables of a [`super::Torrent`]. `Default` gives the values real clients use.
// Independent on/off tunables, not a state machine.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Debug)]
pub struct TorrentConfig {
    /// Seed of the RNG behind every random choice (tie-breaks, optimistic
    /// unchoke). `None` (the default) asks the driver to seed from OS
    /// entropy (minibit-peer does), so two clients never draw the same
    /// stream. The core itself never reads OS randomness: a
    /// [`super::Torrent`] given `None` seeds from a hash of its peer id and
    /// info-hash, deterministic for equal inputs and distinct per peer id
    /// and torrent. Tests and the simulator give `Some(seed)`.
    pub rng_seed: Option<u64>,
    /// Piece-selection strategy.
    pub picker: PickerStrategy,
    /// Upload slots including the optimistic unchoke (default 4).
    pub unchoke_slots: usize,
    /// Super-seeding for an initial seed (BEP 16 idea).
    pub super_seed: bool,
    /// Initial spreading for a torrent that starts complete and is not
    /// super-seeding: until every block was uploaded once, each piece is
    /// served to one peer only and other BEP 6 peers' requests for it are
    /// rejected (default true).
    pub initial_spread: bool,
    /// Most connected peers, dials in progress included (default 50).
    pub max_peers: usize,
    /// Most dials in progress at once (default 25, half of `max_peers`): the
    /// other slots stay open to inbound connections.
    pub max_dials: usize,
    /// Dial addresses learned from the tracker (default true).
    pub connect_to_peers: bool,
    /// Smallest request pipeline per peer, in blocks (default 4).
    pub min_pipeline: usize,
    /// Time the request pipeline to a peer covers at the peer's rate (over
    /// the last 2 s), or four measured round trips when longer (default
    /// 0.5 s: a piece a peer just got waits behind at most this much of
    /// our queue at it before it travels on; in the simulator 0.5 s beat
    /// 2 s at 25 and 100 ms latency, README "High bandwidth-delay
    /// product").
    pub pipeline_target: Duration,
    /// A request unanswered this long goes to another peer (default 30 s).
    pub request_timeout: Duration,
    /// Most queued incoming requests per peer (default 256).
    pub max_queued_requests: usize,
    /// Hash failures a peer may take part in before it is banned (default 3).
    pub max_strikes: u32,
    /// Announce interval used before the tracker gives one (default 30 min).
    pub default_announce_interval: Duration,
    /// Our own listening address, if known: never dialled (default `None`).
    pub listen_addr: Option<SocketAddr>,
    /// Most outstanding block requests to one peer, whatever its rate (default 250).
    pub max_pipeline: usize,
    /// Most [`super::Action::ReadBlock`]s in flight for one peer (default 4).
    pub max_reads_in_flight: usize,
    /// Size of the BEP 6 allowed-fast set offered to each fast-extension
    /// peer with an IPv4 address (default 10, BEP 6's k); a choked peer
    /// holding fewer pieces than this may request those pieces. Offered
    /// only for torrents of at least four times as many pieces; 0 disables.
    pub allowed_fast_count: usize,
    /// Interval between two rechokes (BEP 3: 10 s).
    pub rechoke_interval: Duration,
    /// A peer we sent nothing to for this long gets a keep-alive (default 90 s).
    pub keep_alive_interval: Duration,
    /// A peer that sent nothing at all for this long is dropped (default 180 s).
    pub peer_timeout: Duration,
    /// A peer that sent no block for this long while we had requests
    /// outstanding is snubbed (default 60 s).
    pub snub_timeout: Duration,
    /// First retry delay after a failed announce; doubles up to
    /// `max_announce_backoff` (default 15 s).
    pub min_announce_backoff: Duration,
    /// Longest retry delay after failed announces (default 30 min).
    pub max_announce_backoff: Duration,
    /// After a tracker answer, an incomplete torrent that has no peer
    /// connected this much later re-announces then; doubles with each such
    /// early announce up to the tracker's interval, never below its
    /// `min interval` (default 2 s).
    pub alone_announce_backoff: Duration,
    /// BEP 11 peer exchange: advertise `ut_pex`, send our connected peers to
    /// peers that support it and learn theirs (default true).
    pub peer_exchange: bool,
    /// A private torrent (BEP 27, the metainfo's `private` = 1): peers come
    /// from its trackers only, so `ut_pex` is neither advertised in the
    /// extended handshake, nor sent, nor accepted, whatever
    /// `peer_exchange` says (default false).
    pub private: bool,
    /// UDP port of our BEP 5 DHT node, `None` (the default) when none runs.
    /// With a port (and not [`Self::private`]), our handshake sets the DHT
    /// bit (`reserved[7] & 0x01`), peers that set it get a `port` message
    /// right after the handshake, and a `port` message received becomes
    /// [`super::Event::DhtNodeLearned`].
    pub dht_port: Option<u16>,
    /// Least time between two `ut_pex` messages to one peer (BEP 11: at
    /// most one per minute; default 60 s).
    pub pex_interval: Duration,
    /// First delay before an address whose dial failed or whose connection
    /// ended is dialled again; doubles with each re-dial, and the address
    /// is forgotten after six (default 15 s).
    pub redial_backoff: Duration,
    /// Selective download: one priority per file, in torrent order (empty,
    /// the default, or missing entries: [`Priority::Normal`]). Pieces lying
    /// only in skipped files are never requested; the torrent is finished
    /// once every wanted piece is verified. Changed at run time with
    /// [`super::Torrent::set_file_priorities`].
    pub file_priorities: Vec<Priority>,
}

impl Default for TorrentConfig {
    fn default() -> Self {
        Self {
            rng_seed: None,
            picker: PickerStrategy::default(),
            unchoke_slots: 4,
            super_seed: false,
            initial_spread: true,
            max_peers: 50,
            max_dials: 25,
            connect_to_peers: true,
            min_pipeline: 4,
            pipeline_target: Duration::from_millis(500),
            request_timeout: Duration::from_secs(30),
            max_queued_requests: 256,
            max_strikes: 3,
            default_announce_interval: Duration::from_secs(30 * 60),
            listen_addr: None,
            max_pipeline: 250,
            max_reads_in_flight: 4,
            allowed_fast_count: 10,
            rechoke_interval: Duration::from_secs(10),
            keep_alive_interval: Duration::from_secs(90),
            peer_timeout: Duration::from_secs(180),
            snub_timeout: Duration::from_secs(60),
            min_announce_backoff: Duration::from_secs(15),
            max_announce_backoff: Duration::from_secs(30 * 60),
            alone_announce_backoff: Duration::from_secs(2),
            peer_exchange: true,
            private: false,
            dht_port: None,
            pex_interval: Duration::from_secs(60),
            redial_backoff: Duration::from_secs(15),
            file_priorities: Vec::new(),
        }
    }
}

impl TorrentConfig {
    /// Whether BEP 11 peer exchange runs: asked for and not a private
    /// torrent (BEP 27).
    pub(super) fn pex_enabled(&self) -> bool {
        self.peer_exchange && !self.private
    }

    /// Our DHT port when BEP 5 `port` messages are exchanged: a DHT node
    /// runs and the torrent is not private (BEP 27).
    pub(super) fn active_dht_port(&self) -> Option<u16> {
        self.dht_port.filter(|_| !self.private)
    }

    /// How many given-up requests (cancelled, choked, timed out) each peer
    /// remembers so that a late block for one is still accepted: two full
    /// pipelines ([`Self::max_pipeline`]).
    pub(super) fn dropped_history(&self) -> usize {
        self.max_pipeline.saturating_mul(2)
    }

    /// The shortest per-peer timer period (request timeout, keep-alive,
    /// silence, peer exchange): no per-peer timer started at `t` is due before `t` plus this.
    pub(super) fn shortest_peer_timer(&self) -> Duration {
        self.request_timeout
            .min(self.keep_alive_interval)
            .min(self.peer_timeout)
            .min(self.pex_interval)
    }
}
