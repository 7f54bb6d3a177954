//! Tit-for-tat choking (BEP 3 "Choking and Optimistic Unchoking").
//!
//! [`Choker`] is pure: the torrent calls [`Choker::rechoke`] every
//! [`RECHOKE_INTERVAL`] with a snapshot of every connected peer
//! ([`PeerStats`]) and sends the `choke` / `unchoke` messages listed in the
//! returned [`ChokeChanges`]. The 30 s optimistic-unchoke rotation is kept
//! inside the choker and driven by the `now` passed in.

use std::time::{Duration, Instant};

use crate::torrent::PeerKey;

/// How often the torrent calls [`Choker::rechoke`] (BEP 3: "once every ten seconds").
pub const RECHOKE_INTERVAL: Duration = Duration::from_secs(10);

/// Tunables of a [`Choker`]; `Default` gives the BEP 3 values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChokerConfig {
    /// Upload slots including the optimistic unchoke (default 4). Zero
    /// unchokes nobody; one is the optimistic slot only.
    pub slots: usize,
    /// How long one peer holds the optimistic unchoke (default 30 s).
    pub optimistic_interval: Duration,
    /// A peer we could download from that sent no block for this long is
    /// snubbed (default 60 s); see [`Choker::is_snubbed`].
    pub snub_timeout: Duration,
    /// Peers connected for less than this are "new" and three times as
    /// likely to get the optimistic unchoke (default 60 s).
    pub new_peer_window: Duration,
    /// When seeding, how long an unchoked peer keeps its regular slot
    /// before yielding to the peers that waited longest (default 30 s).
    pub seed_turn: Duration,
}

impl Default for ChokerConfig {
    fn default() -> Self {
        Self {
            slots: 4,
            optimistic_interval: Duration::from_secs(30),
            snub_timeout: Duration::from_secs(60),
            new_peer_window: Duration::from_secs(60),
            seed_turn: Duration::from_secs(30),
        }
    }
}

/// One connected peer as the choker sees it at a rechoke.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct PeerStats {
    /// The peer.
    pub peer: PeerKey,
    /// The peer is interested in us (BEP 3 "interested").
    pub interested: bool,
    /// We are currently choking the peer.
    pub choked: bool,
    /// Download rate from the peer to us, bytes/s.
    pub download_rate: f64,
    /// Upload rate from us to the peer, bytes/s.
    pub upload_rate: f64,
    /// When the peer connected.
    pub connected_at: Instant,
    /// Since when we could download from the peer: the later of the
    /// instant it unchoked us and the instant we became interested in it;
    /// `None` while it chokes us or we are not interested.
    pub can_download_since: Option<Instant>,
    /// When the last block from the peer arrived, if any.
    pub last_block_at: Option<Instant>,
}

/// What a rechoke changed: send `unchoke` to every peer in `unchoke` and
/// `choke` to every peer in `choke`. Peers in neither keep their state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChokeChanges {
    /// Peers to unchoke (currently choked).
    pub unchoke: Vec<PeerKey>,
    /// Peers to choke (currently unchoked).
    pub choke: Vec<PeerKey>,
}

/// The tit-for-tat choker of one torrent.
///
/// Leeching: the `slots - 1` interested, not snubbed peers with the best
/// download rate to us get the regular slots; one interested peer holds the
/// optimistic unchoke, rotated every `optimistic_interval` to a random
/// choked interested peer (new peers weighted three times).
///
/// Seeding: the regular slots go by upload rate to the peer, and a peer
/// yields its slot after `seed_turn` to the interested peers that have
/// waited longest since their last unchoke (never unchoked first), so every
/// leecher gets a turn; the optimistic unchoke works as when leeching.
#[derive(Clone, Debug)]
pub struct Choker {
    _todo: (),
}

impl Choker {
    /// A choker with `config`; `rng_seed` drives the optimistic choice.
    pub fn new(config: ChokerConfig, rng_seed: u64) -> Self {
        let _ = (config, rng_seed);
        todo!()
    }

    /// The configuration.
    pub fn config(&self) -> &ChokerConfig {
        todo!()
    }

    /// Decides who is unchoked at `now`. `peers` lists every connected peer
    /// once; `seeding` is `true` when we have every piece. Never more than
    /// `slots` peers end up unchoked, and only interested ones.
    pub fn rechoke(&mut self, now: Instant, seeding: bool, peers: &[PeerStats]) -> ChokeChanges {
        let _ = (now, seeding, peers);
        todo!()
    }

    /// The peer holding the optimistic unchoke, if any.
    pub fn optimistic(&self) -> Option<PeerKey> {
        todo!()
    }

    /// Forgets `peer` (disconnected) so a later peer reusing its key starts fresh.
    pub fn remove_peer(&mut self, peer: PeerKey) {
        let _ = peer;
        todo!()
    }

    /// Anti-snubbing: the peer is snubbed when we could download from it
    /// (`can_download_since` is set) and no block arrived from it for
    /// `snub_timeout`, counted from the later of `can_download_since` and
    /// `last_block_at`. A snubbed peer loses its regular slot when leeching
    /// (it may still get the optimistic one).
    pub fn is_snubbed(&self, now: Instant, stats: &PeerStats) -> bool {
        let _ = (now, stats);
        todo!()
    }
}
