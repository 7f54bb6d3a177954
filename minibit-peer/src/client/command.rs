//! Requests from the [`crate::Client`] API (and [`crate::PeerSink`]s) to
//! the driver task.

use std::net::SocketAddr;
use std::path::PathBuf;

use minibit_core::id::TorrentId;
use minibit_core::wire::PeerId;
use tokio::sync::oneshot;

use super::magnet::PreparedMagnet;
use super::open::Prepared;
use super::types::{ClientError, TorrentDetail, TorrentStatus};
use crate::resume_writer::FinalSave;

/// The driver's answer to a command.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

/// What is left to do for the caller of a removal.
#[derive(Debug)]
pub(crate) struct Removed {
    /// The torrent's files (final paths).
    pub paths: Vec<PathBuf>,
    /// The folder of its skipped files' part files (none for a magnet
    /// link that never got its metadata).
    pub parts_dir: Option<PathBuf>,
    /// The `.torrent` saved from a magnet link's metadata.
    pub saved_torrent: Option<PathBuf>,
    /// Its last resume data save (none in seed mode).
    pub resume: Option<FinalSave>,
}

pub(crate) enum Command {
    /// Add a prepared torrent.
    Add {
        torrent: Box<Prepared>,
        reply: Reply<TorrentId>,
    },
    /// Add a torrent from a magnet link (BEP 9).
    AddMagnet {
        torrent: Box<PreparedMagnet>,
        reply: Reply<TorrentId>,
    },
    /// Remove a torrent; the reply lists its files and what is left to do
    /// with its resume data.
    Remove {
        id: TorrentId,
        reply: Reply<Removed>,
    },
    Pause {
        id: TorrentId,
        reply: Reply<()>,
    },
    Resume {
        id: TorrentId,
        reply: Reply<()>,
    },
    List {
        reply: oneshot::Sender<Vec<TorrentStatus>>,
    },
    /// One torrent in detail (pieces, files, peers, trackers, limits).
    Detail {
        id: TorrentId,
        reply: Reply<TorrentDetail>,
    },
    /// Peers learned outside the announces (a hint, never answered).
    AddPeers {
        id: TorrentId,
        peers: Vec<(SocketAddr, Option<PeerId>)>,
    },
    /// New limits of one torrent, payload bytes per second (0 = unlimited).
    SetTorrentRateLimits {
        id: TorrentId,
        upload: u64,
        download: u64,
        reply: Reply<()>,
    },
    /// New rate limits, payload bytes per second (0 = unlimited).
    SetRateLimits {
        upload: u64,
        download: u64,
    },
}
