//! The client's public vocabulary (progress, list entries, errors): a
//! leaf module, so the client's API and its driver task both import it and
//! neither imports the other.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use minibit_core::bitfield::Bitfield;
use minibit_core::id::TorrentId;
use minibit_core::metainfo::InfoHash;
use minibit_core::priority::Priority;
use minibit_core::session::SessionError as RouterError;
pub use minibit_core::torrent::PeerInfo;
use thiserror::Error;

/// A snapshot of one torrent's progress (published on a watch channel).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// Bytes of verified wanted pieces we hold.
    pub have_bytes: u64,
    /// Bytes of the wanted pieces: the total size of the torrent, or less
    /// with skipped files (selective download).
    pub total_bytes: u64,
    /// Pieces verified.
    pub pieces_have: u32,
    /// Pieces in the torrent.
    pub piece_count: u32,
    /// Pieces whose data failed SHA-1 verification since start (each
    /// downloaded again).
    pub pieces_failed: u64,
    /// Payload bytes uploaded since start.
    pub uploaded: u64,
    /// Verified bytes downloaded since start.
    pub downloaded: u64,
    /// Download rate, bytes per second.
    pub download_rate: f64,
    /// Upload rate, bytes per second.
    pub upload_rate: f64,
    /// Connected peers.
    pub peers: usize,
    /// Distinct peers (by peer id) that completed a handshake since start
    /// (counting stops at 10 000).
    pub peers_seen: usize,
    /// Every wanted piece is verified (every piece without a selection).
    pub complete: bool,
    /// Started from a magnet link and still fetching the metadata (BEP 9):
    /// the size and piece counts are 0 until it arrives.
    pub fetching_metadata: bool,
    /// Private (BEP 27): peers only from its trackers. Known at add for a
    /// `.torrent`, once the metadata arrives for a magnet link.
    pub private: bool,
}

/// One torrent of a client, as [`crate::Client::list`] reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct TorrentStatus {
    /// The torrent's id inside the client.
    pub id: TorrentId,
    /// The torrent's name (its metainfo `name`).
    pub name: String,
    /// Its info-hash.
    pub info_hash: InfoHash,
    /// Whether it is paused.
    pub paused: bool,
    /// Its progress and rates.
    pub progress: Progress,
}

/// One torrent in detail, as [`crate::Client::detail`] reports it: its
/// piece map, files, peers, trackers and limits.
#[derive(Clone, Debug, PartialEq)]
pub struct TorrentDetail {
    /// The verified pieces (one bit per piece, BEP 3 order).
    pub have: Bitfield,
    /// The pieces being downloaded: some block requested or received, not
    /// verified yet (one bit per piece).
    pub downloading: Bitfield,
    /// Copies of each piece among the connected peers (ours not counted),
    /// one count per piece.
    pub availability: Vec<u32>,
    /// Distributed copies among the connected peers and us, as libtorrent
    /// reports them: the copies of the rarest piece plus the fraction of
    /// pieces with more.
    pub distributed_copies: f64,
    /// Each file's priority, in torrent order ([`Priority::Skip`]: not
    /// downloaded).
    pub file_priorities: Vec<Priority>,
    /// The connected peers.
    pub peers: Vec<PeerInfo>,
    /// The torrent's trackers, in the order the next announce tries them
    /// (BEP 12 tiers).
    pub trackers: Vec<TrackerInfo>,
    /// The torrent's own upload limit, payload bytes/s (0 = unlimited; the
    /// client's global limit applies on top).
    pub upload_limit: u64,
    /// The torrent's own download limit, payload bytes/s (0 = unlimited).
    pub download_limit: u64,
}

/// One tracker of a torrent and its last answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerInfo {
    /// Its announce URL.
    pub url: String,
    /// Its tier (BEP 12), from 0.
    pub tier: usize,
    /// When it was last announced to (answered or not).
    pub last_announce: Option<SystemTime>,
    /// Its last answer: seeders, leechers and peers returned.
    pub last_answer: Option<TrackerAnswer>,
    /// When the torrent announces next (each announce tries the trackers
    /// in this order until one answers); `None` while one is under way.
    pub next_announce: Option<SystemTime>,
    /// The error of its last announce, if it failed (`None` once it answers).
    pub error: Option<String>,
}

/// What a tracker's announce answer said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackerAnswer {
    /// Seeders in the swarm (`complete`).
    pub seeders: u32,
    /// Leechers in the swarm (`incomplete`).
    pub leechers: u32,
    /// Peers the answer listed.
    pub peers: usize,
}

/// Why a client (or one of its torrents) could not start or stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Creating or opening the files failed.
    #[error("cannot open the files under {}", dir.display())]
    Storage {
        /// The output folder.
        dir: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// Verifying the existing files failed.
    #[error("cannot verify existing data")]
    Resume(#[source] io::Error),
    /// Binding the listener failed.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: io::Error,
    },
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] crate::http::ClientError),
    /// Reading or writing a piece failed while running (the torrent stopped).
    #[error("disk error")]
    Disk(#[source] io::Error),
    /// Deleting a removed torrent's files failed.
    #[error("cannot delete {}", path.display())]
    Delete {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The torrent is already in the client, or not (any more).
    #[error(transparent)]
    Torrent(#[from] RouterError),
    /// The metadata fetched for a magnet link hashes to its info-hash but
    /// is not a usable torrent (BEP 9).
    #[error("the metadata of this magnet link is not a usable torrent")]
    UnusableMetadata(#[source] minibit_core::metainfo::MetainfoError),
    /// The client has shut down.
    #[error("the client has shut down")]
    ShutDown,
    /// The client task panicked or was cancelled.
    #[error("the client task failed")]
    Task(#[from] tokio::task::JoinError),
}
