//! The JSON shapes of the daemon's API: a torrent in the list
//! ([`TorrentView`]) and its detail ([`DetailView`]: files, piece map,
//! availability, peers, trackers, limits). Sizes in bytes, rates in
//! bytes/s, durations in seconds, instants in Unix seconds. A leaf module.

use std::time::{SystemTime, UNIX_EPOCH};

use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::{InfoHash, Metainfo};
use minibit_core::priority::Priority;
use serde::{Deserialize, Serialize};

use crate::client::{PeerInfo, Progress, TorrentDetail, TrackerInfo};
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

/// One connected peer in a torrent's detail.
// The flags are BEP 3's four connection-state bits and a few more.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerView {
    /// Its address, `IP:PORT` (`[IPv6]:PORT`).
    pub address: String,
    /// Its client name from its BEP 10 extended handshake (`v`), made
    /// printable and at most 64 characters; `null` if it sent none.
    pub client: Option<String>,
    /// `outgoing` (we dialled it) or `incoming`.
    pub direction: &'static str,
    /// Transmission's flag letters: `D` downloading from it, `d` we want
    /// its pieces but it chokes us, `U` uploading to it, `u` it wants ours
    /// but we choke it, `O` optimistic unchoke, `S` snubbed, `I` incoming.
    pub flags: String,
    /// We choke it.
    pub am_choking: bool,
    /// We are interested in it.
    pub am_interested: bool,
    /// It chokes us.
    pub peer_choking: bool,
    /// It is interested in us.
    pub peer_interested: bool,
    /// It holds our optimistic unchoke.
    pub optimistic: bool,
    /// It sent no block we asked for lately.
    pub snubbed: bool,
    /// It has every piece.
    pub seed: bool,
    /// Its pieces over the torrent's, 0 to 1.
    pub progress: f64,
    /// Download rate from it, bytes/s.
    pub download_rate: f64,
    /// Upload rate to it, bytes/s.
    pub upload_rate: f64,
}

impl PeerView {
    /// The view of `peer` in a torrent of `piece_count` pieces.
    pub fn new(peer: &PeerInfo, piece_count: u32) -> Self {
        let letters = [
            (peer.am_interested && !peer.peer_choking, 'D'),
            (peer.am_interested && peer.peer_choking, 'd'),
            (peer.peer_interested && !peer.am_choking, 'U'),
            (peer.peer_interested && peer.am_choking, 'u'),
            (peer.optimistic, 'O'),
            (peer.snubbed, 'S'),
            (!peer.outbound, 'I'),
        ];
        Self {
            address: peer.addr.to_string(),
            client: peer.client.clone(),
            direction: if peer.outbound {
                "outgoing"
            } else {
                "incoming"
            },
            flags: letters
                .iter()
                .filter(|(on, _)| *on)
                .map(|&(_, c)| c)
                .collect(),
            am_choking: peer.am_choking,
            am_interested: peer.am_interested,
            peer_choking: peer.peer_choking,
            peer_interested: peer.peer_interested,
            optimistic: peer.optimistic,
            snubbed: peer.snubbed,
            seed: peer.seed,
            progress: if piece_count == 0 {
                0.0
            } else {
                f64::from(peer.pieces) / f64::from(piece_count)
            },
            download_rate: peer.download_rate,
            upload_rate: peer.upload_rate,
        }
    }
}

/// One tracker of a torrent in its detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackerView {
    /// Its announce URL.
    pub url: String,
    /// Its tier (BEP 12), from 0.
    pub tier: usize,
    /// When it was last announced to, Unix seconds (`null`: never).
    pub last_announce: Option<u64>,
    /// Seeders in its last answer.
    pub seeders: Option<u32>,
    /// Leechers in its last answer.
    pub leechers: Option<u32>,
    /// Peers its last answer listed.
    pub peers: Option<usize>,
    /// When the torrent announces next, Unix seconds (each announce tries
    /// the trackers in list order until one answers; `null` while one is
    /// under way, or paused).
    pub next_announce: Option<u64>,
    /// The error of its last announce (`null` once it answers).
    pub error: Option<String>,
}

impl From<&TrackerInfo> for TrackerView {
    fn from(t: &TrackerInfo) -> Self {
        Self {
            url: t.url.clone(),
            tier: t.tier,
            last_announce: t.last_announce.map(unix_seconds),
            seeders: t.last_answer.map(|a| a.seeders),
            leechers: t.last_answer.map(|a| a.leechers),
            peers: t.last_answer.map(|a| a.peers),
            next_announce: t.next_announce.map(unix_seconds),
            error: t.error.clone(),
        }
    }
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// One torrent in detail, as `GET /api/torrents/{info_hash}` answers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DetailView {
    /// Everything the list says.
    #[serde(flatten)]
    pub torrent: TorrentView,
    /// Piece length, bytes.
    pub piece_length: u32,
    /// The piece map: one character per piece, `1` verified, `2` being
    /// downloaded (some block requested or received), `0` missing.
    pub pieces: String,
    /// Copies of each piece among the connected peers (ours not counted).
    pub availability: Vec<u32>,
    /// Distributed copies among the peers and us (libtorrent's: copies of
    /// the rarest piece plus the fraction of pieces with more).
    pub distributed_copies: f64,
    /// The files, in torrent order.
    pub files: Vec<FileView>,
    /// The connected peers.
    pub peer_list: Vec<PeerView>,
    /// The trackers, in the order the next announce tries them.
    pub trackers: Vec<TrackerView>,
    /// The torrent's own upload limit, bytes/s (0: none; the global one
    /// applies on top).
    pub upload_limit: u64,
    /// The torrent's own download limit, bytes/s (0: none).
    pub download_limit: u64,
}

impl DetailView {
    /// The detail of `torrent` (the view of `metainfo`) from the client's
    /// `detail`.
    pub fn new(torrent: TorrentView, metainfo: &Metainfo, detail: &TorrentDetail) -> Self {
        let layout = metainfo.layout();
        let (have, priorities) = (&detail.have, &detail.file_priorities);
        let pieces = layout
            .pieces()
            .map(|p| {
                if have.has(p) {
                    '1'
                } else if detail.downloading.has(p) {
                    '2'
                } else {
                    '0'
                }
            })
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
        let piece_count = layout.piece_count();
        Self {
            torrent,
            piece_length: layout.piece_length(),
            pieces,
            availability: detail.availability.clone(),
            distributed_copies: detail.distributed_copies,
            files,
            peer_list: detail
                .peers
                .iter()
                .map(|p| PeerView::new(p, piece_count))
                .collect(),
            trackers: detail.trackers.iter().map(TrackerView::from).collect(),
            upload_limit: detail.upload_limit,
            download_limit: detail.download_limit,
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
