//! The [`Torrent`] state machine: one info-hash, our pieces, every connected
//! peer, requests, choking and timers (BEP 3 peer protocol, BEP 6, BEP 10).
//!
//! SKELETON: the types and signatures below are the agreed interface between
//! the core and the drivers (minibit-peer, the simulator). Bodies are filled
//! in by the swarm-brain work.
//!
//! # Run loop
//! ```text
//! loop {
//!     wait for: a frame from a peer, a finished disk/hash job, a tracker answer,
//!               or the instant torrent.poll_timeout() returns
//!     call the matching handle_*(now, ...)
//!     while let Some(action) = torrent.poll_action() { carry it out }
//!     while let Some(event) = torrent.poll_event() { report it }
//! }
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::bitfield::Bitfield;
use crate::metainfo::InfoHash;
pub use crate::picker::PickerStrategy;
use crate::piece::{BlockRef, Layout, PieceIndex};
use crate::wire::{Handshake, Message, PeerId};

/// Opaque key of a connected peer, handed out by [`Torrent::handle_handshake`].
/// Valid until the peer disconnects; a later peer may reuse the number.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub usize);

/// Who opened the connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The remote peer connected to us.
    Inbound,
    /// We connected to the remote peer (after an [`Action::Connect`]).
    Outbound,
}

/// The tracker announce event (BEP 3 "event").
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AnnounceEvent {
    /// A regular re-announce.
    None,
    /// The first announce.
    Started,
    /// Every piece verified.
    Completed,
    /// Shutting down.
    Stopped,
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `message` to `peer`.
    Send {
        /// The peer.
        peer: PeerKey,
        /// The message.
        message: Message,
    },
    /// Open a connection to `addr`, handshake, then call
    /// [`Torrent::handle_handshake`] (or [`Torrent::handle_connect_failed`]).
    Connect {
        /// The address to dial.
        addr: SocketAddr,
    },
    /// Close the connection to `peer`; the driver then calls
    /// [`Torrent::handle_peer_disconnected`].
    Disconnect {
        /// The peer.
        peer: PeerKey,
        /// Why, for the log.
        reason: DisconnectReason,
    },
    /// Store a received block. Every `WriteBlock` of a piece is issued before
    /// the `VerifyPiece` of that piece and must be visible to it.
    WriteBlock {
        /// Where the block goes.
        block: BlockRef,
        /// The data, `block.length` bytes.
        data: Bytes,
    },
    /// Read `block` from storage to serve `peer`, then call [`Torrent::handle_block_read`].
    ReadBlock {
        /// The requesting peer.
        peer: PeerKey,
        /// The block.
        block: BlockRef,
    },
    /// Hash `piece` against the metainfo, then call [`Torrent::handle_piece_verified`].
    VerifyPiece {
        /// The piece, all of whose blocks were written.
        piece: PieceIndex,
    },
    /// Announce to the tracker, then call [`Torrent::handle_announce_response`]
    /// or [`Torrent::handle_announce_failed`].
    Announce {
        /// The event to report.
        event: AnnounceEvent,
        /// Bytes uploaded since start.
        uploaded: u64,
        /// Verified bytes downloaded since start.
        downloaded: u64,
        /// Bytes still missing.
        left: u64,
    },
}

/// Why a peer was disconnected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The peer broke the protocol (malformed or illegal message).
    ProtocolViolation(String),
    /// The peer sent data that failed verification too often.
    Banned,
    /// The peer did not answer in time.
    Timeout,
    /// Both sides are seeders: nothing to trade.
    BothSeeding,
    /// We are shutting down.
    Shutdown,
}

/// Why a handshake was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeRejection {
    /// The info-hash is not this torrent's.
    #[error("wrong info-hash {0}")]
    WrongInfoHash(InfoHash),
    /// The peer id is ours: we connected to ourselves.
    #[error("connection to ourselves")]
    OwnPeerId,
    /// A peer with that peer id is already connected.
    #[error("peer id already connected")]
    DuplicatePeer,
    /// The address was banned for bad data.
    #[error("peer is banned")]
    Banned,
    /// The connection limit is reached.
    #[error("too many peers")]
    TooManyPeers,
}

/// Something worth reporting to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A handshake was accepted.
    PeerConnected {
        /// Its key.
        peer: PeerKey,
        /// Its address.
        addr: SocketAddr,
    },
    /// A peer left (after [`Torrent::handle_peer_disconnected`]).
    PeerDisconnected {
        /// Its key (no longer valid).
        peer: PeerKey,
    },
    /// A piece verified and counts as ours.
    PieceCompleted {
        /// The piece.
        piece: PieceIndex,
    },
    /// A piece failed verification and will be fetched again.
    PieceFailed {
        /// The piece.
        piece: PieceIndex,
    },
    /// Every piece is verified.
    DownloadCompleted,
    /// A peer was banned for sending bad data.
    PeerBanned {
        /// Its address.
        addr: SocketAddr,
    },
}

/// Tunables of a [`Torrent`]. `Default` gives the values real clients use.
#[derive(Clone, Debug)]
pub struct TorrentConfig {
    /// Seed of the RNG behind every random choice (tie-breaks, optimistic unchoke).
    pub rng_seed: u64,
    /// Piece-selection strategy.
    pub picker: PickerStrategy,
    /// Upload slots including the optimistic unchoke (default 4).
    pub unchoke_slots: usize,
    /// Super-seeding for an initial seed (BEP 16 idea).
    pub super_seed: bool,
    /// Most connected peers (default 50).
    pub max_peers: usize,
    /// Dial addresses learned from the tracker (default true).
    pub connect_to_peers: bool,
    /// Smallest request pipeline per peer, in blocks (default 4).
    pub min_pipeline: usize,
    /// Target time the pipeline should cover at the peer's rate (default 2 s).
    pub pipeline_target: Duration,
    /// A request unanswered this long goes to another peer (default 30 s).
    pub request_timeout: Duration,
    /// Most queued incoming requests per peer (default 256).
    pub max_queued_requests: usize,
    /// Hash failures a peer may take part in before it is banned (default 3).
    pub max_strikes: u32,
    /// Announce interval used before the tracker gives one (default 30 min).
    pub default_announce_interval: Duration,
}

/// Counters for progress display and announces.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct TorrentStats {
    /// Bytes uploaded since start.
    pub uploaded: u64,
    /// Verified bytes downloaded since start.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// Pieces verified.
    pub pieces_have: u32,
    /// Connected peers.
    pub peers: usize,
    /// Download rate, bytes per second.
    pub download_rate: f64,
    /// Upload rate, bytes per second.
    pub upload_rate: f64,
}

/// The state machine of one torrent.
#[derive(Debug)]
pub struct Torrent {
    _private: (),
}

impl Torrent {
    /// A torrent with the given geometry; `have` holds the pieces already
    /// verified on disk (resume), all clear for a fresh download, all set
    /// for a seed. Emits `Announce { event: Started }` first.
    pub fn new(
        config: TorrentConfig,
        info_hash: InfoHash,
        peer_id: PeerId,
        layout: Layout,
        have: Bitfield,
        now: Instant,
    ) -> Self {
        let _ = (config, info_hash, peer_id, layout, have, now);
        todo!("swarm-brain work")
    }

    /// Our handshake, with the BEP 6 and BEP 10 reserved bits set.
    pub fn handshake(&self) -> Handshake {
        todo!("swarm-brain work")
    }

    /// Accepts or refuses a peer once its handshake arrived.
    ///
    /// # Errors
    /// A [`HandshakeRejection`] says why the connection must be closed.
    pub fn handle_handshake(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        direction: Direction,
        theirs: &Handshake,
    ) -> Result<PeerKey, HandshakeRejection> {
        let _ = (now, addr, direction, theirs);
        todo!("swarm-brain work")
    }

    /// A message from `peer`. Protocol violations become [`Action::Disconnect`].
    pub fn handle_message(&mut self, now: Instant, peer: PeerKey, message: Message) {
        let _ = (now, peer, message);
        todo!("swarm-brain work")
    }

    /// `peer`'s connection closed (for any reason); `peer` is invalid afterwards.
    pub fn handle_peer_disconnected(&mut self, now: Instant, peer: PeerKey) {
        let _ = (now, peer);
        todo!("swarm-brain work")
    }

    /// An [`Action::Connect`] to `addr` failed or timed out.
    pub fn handle_connect_failed(&mut self, now: Instant, addr: SocketAddr) {
        let _ = (now, addr);
        todo!("swarm-brain work")
    }

    /// The data of an [`Action::ReadBlock`]; sent to the peer if still wanted.
    pub fn handle_block_read(&mut self, now: Instant, peer: PeerKey, block: BlockRef, data: Bytes) {
        let _ = (now, peer, block, data);
        todo!("swarm-brain work")
    }

    /// The outcome of an [`Action::VerifyPiece`].
    pub fn handle_piece_verified(&mut self, now: Instant, piece: PieceIndex, ok: bool) {
        let _ = (now, piece, ok);
        todo!("swarm-brain work")
    }

    /// A tracker answered an [`Action::Announce`]: re-announce after
    /// `interval`, and consider `peers` for connection.
    pub fn handle_announce_response(
        &mut self,
        now: Instant,
        interval: Duration,
        peers: &[SocketAddr],
    ) {
        let _ = (now, interval, peers);
        todo!("swarm-brain work")
    }

    /// An [`Action::Announce`] failed; retried with back-off.
    pub fn handle_announce_failed(&mut self, now: Instant) {
        let _ = now;
        todo!("swarm-brain work")
    }

    /// The instant from [`Torrent::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!("swarm-brain work")
    }

    /// Shut down: announce `stopped` and disconnect every peer.
    pub fn stop(&mut self, now: Instant) {
        let _ = now;
        todo!("swarm-brain work")
    }

    /// The next thing to do, or `None` when there is nothing left.
    pub fn poll_action(&mut self) -> Option<Action> {
        todo!("swarm-brain work")
    }

    /// The next thing to report, or `None`.
    pub fn poll_event(&mut self) -> Option<Event> {
        todo!("swarm-brain work")
    }

    /// When [`Torrent::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!("swarm-brain work")
    }

    /// Pieces verified so far.
    pub fn have(&self) -> &Bitfield {
        todo!("swarm-brain work")
    }

    /// The torrent's geometry.
    pub fn layout(&self) -> &Layout {
        todo!("swarm-brain work")
    }

    /// Transfer counters and rates.
    pub fn stats(&self) -> TorrentStats {
        todo!("swarm-brain work")
    }
}
