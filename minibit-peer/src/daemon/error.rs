//! Why a daemon request failed; each kind has its HTTP status (see
//! [`DaemonError::status`]). A leaf module.

use minibit_core::metainfo::{InfoHash, MetainfoError};

use super::store::StoreError;
use crate::client::ClientError;

/// Why a daemon request failed.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The body is not a valid `.torrent`.
    #[error("not a valid .torrent")]
    BadTorrent(#[source] MetainfoError),
    /// A `magnet:` link that does not parse.
    #[error("bad magnet link")]
    BadMagnet(#[from] minibit_core::magnet::MagnetError),
    /// The torrent was added from a magnet link and its metadata (the
    /// file list) has not arrived yet.
    #[error("torrent {0} is still fetching its metadata: its files are not known yet")]
    NoMetadata(InfoHash),
    /// The `.torrent` could not be fetched from its URL.
    #[error("cannot fetch {url}: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The request is malformed (bad JSON, bad URL, bad priorities).
    #[error("{0}")]
    BadRequest(String),
    /// The file selection names no file of the torrent.
    #[error("{0}")]
    Selection(String),
    /// The save folder is absolute or climbs out of the download root.
    #[error("save_dir {0:?} is outside the download root (give a relative path without ..)")]
    SaveDirOutside(String),
    /// The daemon has no torrent with this info-hash.
    #[error("no torrent {0}")]
    Unknown(InfoHash),
    /// The daemon has no such subscription.
    #[error("no subscription {0}")]
    UnknownSubscription(String),
    /// The daemon has this torrent already.
    #[error("torrent {0} is already added")]
    Duplicate(InfoHash),
    /// The `.torrent` is larger than [`super::MAX_TORRENT_BYTES`].
    #[error("a .torrent may be at most {} bytes", super::MAX_TORRENT_BYTES)]
    TooLarge,
    /// The client failed (files, resume, shut down).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DaemonError {
    /// The HTTP status this error is answered with: 400 malformed, 403
    /// outside the download root, 404 unknown, 409 duplicate, 413 too
    /// large, 500 the daemon's own failures; 409 too for the files of a
    /// magnet link still fetching its metadata.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadTorrent(_)
            | Self::BadMagnet(_)
            | Self::Fetch { .. }
            | Self::BadRequest(_)
            | Self::Selection(_) => 400,
            Self::SaveDirOutside(_) => 403,
            Self::Unknown(_) | Self::UnknownSubscription(_) => 404,
            Self::Duplicate(_) | Self::NoMetadata(_) => 409,
            Self::TooLarge => 413,
            Self::Client(_) | Self::Store(_) => 500,
        }
    }
}
