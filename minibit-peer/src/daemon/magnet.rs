//! Torrents the daemon adds from a magnet link (BEP 9). Until the metadata
//! arrives, the store keeps the link's text in the row's `torrent` column
//! (a `.torrent` starts with `d`, a link with `magnet:`), so a restart
//! resumes the fetch; once the client has saved the `.torrent` in the
//! state folder, the row gets its bytes.

use std::path::Path;

use minibit_core::magnet::Magnet;
use minibit_core::metainfo::{InfoHash, Metainfo};

use super::DaemonError;
use crate::resume_data::torrent_path;

/// What a stored or requested torrent is.
pub(super) enum Source {
    /// A `.torrent`.
    Metainfo(Metainfo),
    /// A magnet link still fetching its metadata.
    Magnet(Magnet),
}

impl Source {
    /// Classifies and parses `bytes`: the text of a magnet link, or a
    /// `.torrent`.
    ///
    /// # Errors
    /// [`DaemonError::BadMagnet`], [`DaemonError::BadTorrent`].
    pub(super) fn parse(bytes: &[u8]) -> Result<Self, DaemonError> {
        if bytes.starts_with(b"magnet:") {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| DaemonError::BadRequest("a magnet link must be UTF-8".into()))?;
            return Ok(Self::Magnet(Magnet::parse(text)?));
        }
        Metainfo::from_bytes(bytes)
            .map(Self::Metainfo)
            .map_err(DaemonError::BadTorrent)
    }

    /// The torrent's info-hash.
    pub(super) fn info_hash(&self) -> InfoHash {
        match self {
            Self::Metainfo(metainfo) => metainfo.info_hash(),
            Self::Magnet(magnet) => magnet.info_hash,
        }
    }

    /// The name to show: the metainfo's, or the link's `dn`, or the
    /// info-hash in hex.
    pub(super) fn name(&self) -> String {
        match self {
            Self::Metainfo(metainfo) => metainfo.info().name().to_owned(),
            Self::Magnet(magnet) => magnet
                .name
                .clone()
                .unwrap_or_else(|| magnet.info_hash.to_hex()),
        }
    }
}

/// The `.torrent` the client saved in `state_dir` for `info_hash` once its
/// metadata arrived, with its bytes; `None` while it is not there (or not
/// valid, or of another torrent).
pub(super) fn saved_torrent(state_dir: &Path, info_hash: &InfoHash) -> Option<(Metainfo, Vec<u8>)> {
    let bytes = crate::source::read_torrent_file(&torrent_path(state_dir, info_hash)).ok()?;
    let metainfo = Metainfo::from_bytes(&bytes).ok()?;
    (metainfo.info_hash() == *info_hash).then_some((metainfo, bytes))
}
