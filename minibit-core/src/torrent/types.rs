//! The public vocabulary of the [`Torrent`](super::Torrent) state machine: peer keys,
//! actions for the driver, events for the user, reasons and statistics.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use crate::bitfield::BitfieldError;
pub use crate::id::PeerKey;
use crate::metadata::FetchError;
use crate::metainfo::{InfoHash, Metainfo, MetainfoError};
use crate::piece::{BlockRef, LayoutError, PieceIndex};
pub use crate::tracker::AnnounceEvent;
use crate::wire::{ExtensionError, Message, MetadataError};

/// Who opened the connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The remote peer connected to us.
    Inbound,
    /// We connected to the remote peer (after an [`Action::Connect`]).
    Outbound,
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send `message` to `peer`.
    Send {
        /// The peer.
        peer: PeerKey,
        /// The message.
        message: Message,
    },
    /// Open a connection to `addr`, handshake, then call
    /// [`Torrent::handle_handshake`](super::Torrent::handle_handshake) (or [`Torrent::handle_connect_failed`](super::Torrent::handle_connect_failed)).
    Connect {
        /// The address to dial.
        addr: SocketAddr,
    },
    /// Close the connection to `peer`; the driver then calls
    /// [`Torrent::handle_peer_disconnected`](super::Torrent::handle_peer_disconnected).
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
    /// Read `block` from storage to serve `peer`, then call [`Torrent::handle_block_read`](super::Torrent::handle_block_read).
    ReadBlock {
        /// The requesting peer.
        peer: PeerKey,
        /// The block.
        block: BlockRef,
    },
    /// Hash `piece` against the metainfo, then call [`Torrent::handle_piece_verified`](super::Torrent::handle_piece_verified).
    VerifyPiece {
        /// The piece, all of whose blocks were written.
        piece: PieceIndex,
    },
    /// Announce to the tracker, then call [`Torrent::handle_announce_response`](super::Torrent::handle_announce_response)
    /// or [`Torrent::handle_announce_failed`](super::Torrent::handle_announce_failed).
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

/// Why a peer was disconnected; `Display` gives the words for a log line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The peer broke the protocol (malformed or illegal message).
    #[error("protocol violation: {0}")]
    ProtocolViolation(Violation),
    /// The peer sent data that failed verification too often.
    #[error("banned for bad data")]
    Banned,
    /// The peer did not answer in time.
    #[error("timed out")]
    Timeout,
    /// Both sides are seeders: nothing to trade.
    #[error("both seeding")]
    BothSeeding,
    /// A second connection to the same peer replaced this one (both sides
    /// dialled at once; the one dialled by the smaller peer id is kept).
    #[error("duplicate connection to the same peer")]
    Duplicate,
    /// We are shutting down.
    #[error("shutting down")]
    Shutdown,
}

/// Why a handshake was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
#[non_exhaustive]
pub enum Event {
    /// A handshake was accepted.
    PeerConnected {
        /// Its key.
        peer: PeerKey,
        /// Its address.
        addr: SocketAddr,
    },
    /// A peer left (after [`Torrent::handle_peer_disconnected`](super::Torrent::handle_peer_disconnected)).
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
    /// A peer was banned for sending bad data: pieces it contributed to
    /// failed their hash check [`super::TorrentConfig::max_strikes`] times.
    /// The ban covers its IP address on every port.
    PeerBanned {
        /// Its IP address.
        ip: IpAddr,
    },
    /// A BEP 11 `ut_pex` message from `peer` gave `count` addresses we did
    /// not know (now dial candidates).
    PexPeersLearned {
        /// The sender.
        peer: PeerKey,
        /// New addresses learned.
        count: usize,
    },
    /// BEP 5: `peer` sent a `port` message: a DHT node listens at its IP
    /// on that UDP port. Reported once per port and peer, never for port
    /// 0, a private torrent or while [`super::TorrentConfig::dht_port`] is
    /// `None`. The driver hands `addr` to its DHT node.
    DhtNodeLearned {
        /// The sender.
        peer: PeerKey,
        /// The peer's IP with the DHT port it gave.
        addr: SocketAddr,
    },
    /// BEP 9: the info dictionary of a torrent started from a magnet link
    /// arrived from peers and its SHA-1 matches the info-hash. The driver
    /// saves the `.torrent` (set trackers with
    /// [`Metainfo::extras_mut`], write [`Metainfo::to_bytes`]), opens the
    /// storage, checks what is already on disk, then calls
    /// [`Torrent::metadata_ready`](super::Torrent::metadata_ready); no
    /// piece is requested before. Other peers are served the metadata
    /// from now on.
    MetadataReceived {
        /// The parsed torrent (no trackers; the info dictionary byte for
        /// byte as the info-hash covers it).
        metainfo: Box<Metainfo>,
    },
    /// BEP 9: the info dictionary hashes to the info-hash but is not a
    /// usable torrent (the magnet link names a broken torrent): nothing
    /// more is fetched; remove the torrent.
    MetadataUnusable {
        /// Why it was refused.
        error: MetainfoError,
    },
}

/// Where a torrent stands with its metadata (the info dictionary, BEP 9).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataPhase {
    /// Started from a magnet link: fetching the info dictionary with
    /// `ut_metadata`. [`Torrent::layout`](super::Torrent::layout) is a
    /// one-piece placeholder of 16 KiB (so announces say `left` = 16384,
    /// as libtorrent does) and nothing is requested or served.
    Fetching,
    /// [`Event::MetadataReceived`] was reported: waiting for
    /// [`Torrent::metadata_ready`](super::Torrent::metadata_ready). The
    /// metadata is served already; the layout is still the placeholder.
    AwaitingStorage,
    /// The info dictionary is known and the torrent runs normally.
    Ready,
    /// [`Event::MetadataUnusable`] was reported.
    Unusable,
}

/// Misuse of the metadata calls of a [`Torrent`](super::Torrent).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataMisuse {
    /// The info dictionary given does not hash to the torrent's info-hash.
    #[error("the info dictionary does not hash to the info-hash")]
    WrongInfoHash,
    /// `metadata_ready` without a pending [`Event::MetadataReceived`].
    #[error("the torrent is not waiting for storage (metadata not received, or ready already)")]
    NotAwaitingStorage,
    /// The torrent was started from a magnet link: it fetches its
    /// metadata from peers.
    #[error("the torrent fetches its metadata from peers")]
    Magnet,
}

/// Counters for progress display and announces.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct TorrentStats {
    /// Bytes uploaded since start.
    pub uploaded: u64,
    /// Verified bytes downloaded since start.
    pub downloaded: u64,
    /// Bytes of wanted pieces still missing (BEP 3 announce `left`: what
    /// is left to download; 0 once finished, also with skipped files).
    pub left: u64,
    /// Bytes of the wanted pieces (the whole torrent without a selection).
    pub wanted: u64,
    /// Pieces verified.
    pub pieces_have: u32,
    /// Connected peers.
    pub peers: usize,
    /// Download rate, bytes per second.
    pub download_rate: f64,
    /// Upload rate, bytes per second.
    pub upload_rate: f64,
}

/// How a peer broke the protocol (BEP 3, BEP 6, BEP 10, BEP 11); the
/// connection is closed with [`DisconnectReason::ProtocolViolation`].
/// `Display` gives the words for a log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// A bitfield of the wrong size or with spare bits set.
    #[error(transparent)]
    Bitfield(#[from] BitfieldError),
    /// A piece index or block range outside the torrent.
    #[error(transparent)]
    Range(#[from] LayoutError),
    /// BEP 6 messages need the fast-extension bit on both sides.
    #[error("{0} without the fast extension")]
    FastNotNegotiated(&'static str),
    /// BEP 10 messages need the extension-protocol bit on both sides.
    #[error("extended message without the extension protocol")]
    ExtendedNotNegotiated,
    /// A BEP 10 extended handshake that is not a bencoded dictionary.
    #[error("bad extended handshake: {0}")]
    ExtendedHandshake(#[from] ExtensionError),
    /// BEP 11: a `ut_pex` message before the peer's extended handshake.
    #[error("ut_pex message before the extended handshake")]
    PexBeforeHandshake,
    /// BEP 11: a `ut_pex` payload that does not parse.
    #[error("bad ut_pex message: {0}")]
    Pex(ExtensionError),
    /// The peer sent a block we never asked it for (nor gave up on: late
    /// answers to cancelled, choked or timed-out requests are accepted).
    #[error(
        "block of piece {} at offset {} ({} bytes) was never requested",
        .0.piece, .0.offset, .0.length
    )]
    UnrequestedBlock(BlockRef),
    /// The peer asked for a piece we never announced.
    #[error("request for piece {0}, which we do not have")]
    RequestForMissingPiece(u32),
    /// The peer does not read what we send: its send queue already holds
    /// `queued` bytes, over the driver's limit of `limit` bytes.
    #[error("peer is not reading: {queued} bytes already queued (limit {limit})")]
    NotReading {
        /// Bytes queued for the peer.
        queued: usize,
        /// The driver's limit, bytes.
        limit: usize,
    },
    /// A HAVE or bitfield, received before the metadata was known, names a
    /// piece the torrent does not have (or no torrent of at most 8 MiB of
    /// metadata can have).
    #[error("piece {0} does not exist in the torrent")]
    PieceBeyondMetadata(u32),
    /// BEP 9: a `ut_metadata` message that does not parse.
    #[error("bad ut_metadata message: {0}")]
    MetadataMessage(#[from] MetadataError),
    /// BEP 9: a `metadata_size` or a metadata piece that cannot be true
    /// (above the cap, out of range, of the wrong length, another size).
    #[error("ut_metadata: {0}")]
    Metadata(#[from] FetchError),
    /// BEP 9: the peer sent metadata pieces, and the assembled info
    /// dictionary did not hash to the info-hash.
    #[error("sent metadata that does not match the info-hash")]
    MetadataHash,
}
