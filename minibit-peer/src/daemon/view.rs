//! The JSON shapes of the daemon's API: a torrent in the list
//! ([`TorrentView`]) and its detail ([`DetailView`]: files and piece map).
//! Sizes in bytes, rates in bytes/s, times in seconds. A leaf module.

use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::{InfoHash, Metainfo};
use minibit_core::priority::Priority;
use serde::{Deserialize, Serialize};

use crate::client::Progress;
use crate::file_select::path_in_torrent;

/// What a torrent is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Started from a magnet link: fetching the metadata from peers (BEP 9).
    #[serde(rename = "fetching_metadata")]
    FetchingMetadata,
    /// Fetching pieces.
    Downloading,
    /// Every wanted piece verified; uploading to others.
    Seeding,
    /// Paused: no connections, no announces.
    Paused,
    /// Stopped by an error (see `error`).
    Error,
}

/// One torrent, as `GET /api/torrents` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TorrentView {
    /// Info-hash, 40 hex digits.
    pub info_hash: String,
    /// Name (the metainfo's).
    pub name: String,
    /// Total content size, bytes.
    pub size: u64,
    /// Bytes of the wanted files' pieces (less than `size` with skipped files).
    pub wanted: u64,
    /// Bytes of verified wanted pieces.
    pub have: u64,
    /// What it is doing.
    pub state: State,
    /// `have / wanted`, 0 to 1.
    pub progress: f64,
    /// Download rate, bytes/s.
    pub download_rate: f64,
    /// Upload rate, bytes/s.
    pub upload_rate: f64,
    /// Seconds until complete at the current download rate (`null`:
    /// complete, or no download under way).
    pub eta: Option<u64>,
    /// Payload bytes uploaded since the daemon started divided by `wanted`.
    pub ratio: f64,
    /// Payload bytes uploaded since the daemon started.
    pub uploaded: u64,
    /// Verified bytes downloaded since the daemon started.
    pub downloaded: u64,
    /// Connected peers.
    pub peers: usize,
    /// Folder the content is in.
    pub save_dir: String,
    /// Why it stopped, in state `error`.
    pub error: Option<String>,
}

impl TorrentView {
    /// The view of a torrent named `metainfo` at `progress`; `paused`, or
    /// stopped with `error`.
    pub fn new(
        metainfo: &Metainfo,
        progress: &Progress,
        paused: bool,
        error: Option<&str>,
        save_dir: &str,
    ) -> Self {
        let mut view = Self::of_parts(
            &metainfo.info_hash(),
            metainfo.info().name(),
            progress,
            paused,
            error,
            save_dir,
        );
        view.size = metainfo.layout().total_length();
        view
    }

    /// The view of a torrent started from a magnet link whose metadata has
    /// not arrived: `name` is the link's `dn` (or the info-hash), sizes 0,
    /// state [`State::FetchingMetadata`] unless paused or stopped.
    pub fn fetching(
        info_hash: &InfoHash,
        name: &str,
        progress: &Progress,
        paused: bool,
        error: Option<&str>,
        save_dir: &str,
    ) -> Self {
        Self::of_parts(info_hash, name, progress, paused, error, save_dir)
    }

    fn of_parts(
        info_hash: &InfoHash,
        name: &str,
        progress: &Progress,
        paused: bool,
        error: Option<&str>,
        save_dir: &str,
    ) -> Self {
        let state = if error.is_some() {
            State::Error
        } else if paused {
            State::Paused
        } else if progress.fetching_metadata {
            State::FetchingMetadata
        } else if progress.complete {
            State::Seeding
        } else {
            State::Downloading
        };
        let left = progress.total_bytes - progress.have_bytes;
        let eta = (state == State::Downloading && progress.download_rate >= 1.0)
            .then(|| (left as f64 / progress.download_rate).ceil() as u64);
        // Nothing is known of the size while the metadata is fetched.
        let share = |bytes: u64| {
            if progress.fetching_metadata {
                0.0
            } else if progress.total_bytes == 0 {
                1.0
            } else {
                bytes as f64 / progress.total_bytes as f64
            }
        };
        Self {
            info_hash: info_hash.to_hex(),
            name: name.to_owned(),
            size: progress.total_bytes,
            wanted: progress.total_bytes,
            have: progress.have_bytes,
            state,
            progress: share(progress.have_bytes),
            download_rate: progress.download_rate,
            upload_rate: progress.upload_rate,
            eta,
            ratio: share(progress.uploaded),
            uploaded: progress.uploaded,
            downloaded: progress.downloaded,
            peers: progress.peers,
            save_dir: save_dir.to_owned(),
            error: error.map(str::to_owned),
        }
    }
}

/// A file's priority in the API: `skip`, `normal` or `high`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilePriority {
    /// Not downloaded.
    Skip,
    /// Downloaded, rarest first.
    Normal,
    /// Downloaded before the normal files.
    High,
}

impl From<Priority> for FilePriority {
    fn from(p: Priority) -> Self {
        match p {
            Priority::Skip => Self::Skip,
            Priority::Normal => Self::Normal,
            Priority::High => Self::High,
        }
    }
}

impl From<FilePriority> for Priority {
    fn from(p: FilePriority) -> Self {
        match p {
            FilePriority::Skip => Self::Skip,
            FilePriority::Normal => Self::Normal,
            FilePriority::High => Self::High,
        }
    }
}

/// One file of a torrent in its detail.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileView {
    /// Index in the torrent.
    pub index: usize,
    /// Path inside the torrent, components joined by `/`.
    pub path: String,
    /// Size, bytes.
    pub size: u64,
    /// Its priority.
    pub priority: FilePriority,
    /// Bytes of it inside verified pieces.
    pub have: u64,
}

/// One torrent in detail, as `GET /api/torrents/{info_hash}` answers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DetailView {
    /// Everything the list says.
    #[serde(flatten)]
    pub torrent: TorrentView,
    /// Piece length, bytes.
    pub piece_length: u32,
    /// The piece map: one character per piece, `1` verified, `0` missing.
    pub pieces: String,
    /// The files, in torrent order.
    pub files: Vec<FileView>,
}

impl DetailView {
    /// The detail of `torrent` (the view of `metainfo`) with its verified
    /// pieces `have` and file `priorities`.
    pub fn new(
        torrent: TorrentView,
        metainfo: &Metainfo,
        have: &Bitfield,
        priorities: &[Priority],
    ) -> Self {
        let layout = metainfo.layout();
        let pieces = layout
            .pieces()
            .map(|p| if have.has(p) { '1' } else { '0' })
            .collect();
        let files = metainfo
            .info()
            .files()
            .iter()
            .enumerate()
            .map(|(index, file)| FileView {
                index,
                path: path_in_torrent(metainfo, index),
                size: file.length,
                priority: priorities.get(index).copied().unwrap_or_default().into(),
                have: file_have(metainfo, have, index),
            })
            .collect();
        Self {
            torrent,
            piece_length: layout.piece_length(),
            pieces,
            files,
        }
    }
}

/// Bytes of file `index` that lie in verified pieces.
fn file_have(metainfo: &Metainfo, have: &Bitfield, index: usize) -> u64 {
    let layout = metainfo.layout();
    let (Some(range), Some(pieces)) = (layout.file_range(index), layout.file_pieces(index)) else {
        return 0;
    };
    let (first, last) = (*pieces.start() as usize, *pieces.end() as usize);
    layout
        .pieces()
        .skip(first)
        .take(last + 1 - first)
        .filter(|&p| have.has(p))
        .map(|p| {
            let start = layout.piece_offset(p);
            let end = start + u64::from(layout.piece_size(p));
            end.min(range.end).saturating_sub(start.max(range.start))
        })
        .sum()
}
