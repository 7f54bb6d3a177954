//! What the driver keeps for each torrent beside the core's `Torrent`:
//! its files, in-flight block buffer, read cache, tracker client and
//! status, and the progress it publishes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use minibit_core::metainfo::InfoHash;
use minibit_core::torrent::Torrent;
use minibit_core::wire::PeerId;
use tokio::sync::watch;

use super::open::Prepared;
use super::types::{ClientError, Progress};
use crate::hasher::PieceHash;
use crate::inflight::{InFlight, MemoryBudget};
use crate::read_cache::ReadCache;
use crate::storage::Storage;
use crate::tracker_client::TrackerClient;
use crate::tracker_status::TrackerStatus;

/// Bytes of recently read extents kept to serve one torrent's blocks
/// (16 x 512 KiB).
const READ_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// Most distinct peer ids remembered for [`Progress::peers_seen`] (the
/// count stops growing there, memory stays bounded).
const MAX_PEERS_SEEN: usize = 10_000;

/// The driver's side of one torrent.
pub(crate) struct TorrentState {
    pub name: String,
    pub info_hash: InfoHash,
    /// The files (renamed from `NAME.part` as their pieces are verified).
    pub storage: Storage,
    pub inflight: InFlight,
    /// Extents read to serve blocks.
    pub reads: ReadCache,
    pub hashes: Arc<[PieceHash]>,
    pub tracker: Option<TrackerClient>,
    /// Whether any tracker answered (the user is told when none did).
    pub tracker_status: TrackerStatus,
    progress: watch::Sender<Progress>,
    error: Arc<Mutex<Option<ClientError>>>,
    /// Distinct peer ids that completed a handshake (at most [`MAX_PEERS_SEEN`]).
    peers_seen: HashSet<PeerId>,
}

impl TorrentState {
    pub(crate) fn new(prepared: Prepared, budget: Arc<MemoryBudget>) -> Self {
        Self {
            inflight: InFlight::new(prepared.storage.clone(), budget),
            reads: ReadCache::new(prepared.storage.clone(), READ_CACHE_BYTES),
            name: prepared.name,
            info_hash: prepared.info_hash,
            storage: prepared.storage,
            hashes: prepared.hashes,
            tracker: prepared.tracker,
            tracker_status: prepared.tracker_status,
            progress: prepared.progress,
            error: prepared.error,
            peers_seen: HashSet::new(),
        }
    }

    /// A peer with this id completed a handshake.
    pub(crate) fn seen(&mut self, peer_id: PeerId) {
        if self.peers_seen.len() < MAX_PEERS_SEEN {
            self.peers_seen.insert(peer_id);
        }
    }

    /// Drops the blocks of unfinished pieces (the torrent was paused: a
    /// resumed torrent requests them again).
    pub(crate) fn forget_inflight(&mut self) {
        let budget = self.inflight.budget();
        self.inflight = InFlight::new(self.storage.clone(), budget);
    }

    /// The error that stopped the torrent, for its handle.
    pub(crate) fn set_error(&self, error: ClientError) {
        *self
            .error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
    }

    /// A progress snapshot of `torrent`.
    pub(crate) fn snapshot(&self, torrent: &Torrent) -> Progress {
        let stats = torrent.stats();
        let layout = torrent.layout();
        Progress {
            have_bytes: layout.total_length() - stats.left,
            total_bytes: layout.total_length(),
            pieces_have: stats.pieces_have,
            piece_count: layout.piece_count(),
            uploaded: stats.uploaded,
            downloaded: stats.downloaded,
            download_rate: stats.download_rate,
            upload_rate: stats.upload_rate,
            peers: stats.peers,
            peers_seen: self.peers_seen.len(),
            complete: torrent.have().is_complete(),
        }
    }

    /// Publishes a snapshot of `torrent` (receivers wake only on a change).
    pub(crate) fn publish(&self, torrent: &Torrent) {
        let progress = self.snapshot(torrent);
        self.progress.send_if_modified(|current| {
            let changed = *current != progress;
            *current = progress;
            changed
        });
    }
}
