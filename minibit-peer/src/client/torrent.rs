//! What the driver keeps for each torrent beside the core's `Torrent`:
//! its files, in-flight block buffer, read cache, tracker client and
//! status, and the progress it publishes.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::InfoHash;
use minibit_core::priority::Priority;
use minibit_core::torrent::Torrent;
use minibit_core::wire::PeerId;
use tokio::sync::watch;

use super::command::Removed;
use super::open::Prepared;
use super::types::{ClientError, Progress, TorrentDetail};
use crate::hasher::PieceHash;
use crate::inflight::{InFlight, MemoryBudget};
use crate::read_cache::ReadCache;
use crate::resume_writer::ResumeWriter;
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
    /// Saves the resume data (none in seed mode).
    resume: Option<ResumeWriter>,
    /// The folder of the skipped files' part files.
    parts_dir: PathBuf,
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
            resume: prepared.resume,
            parts_dir: prepared.parts_dir,
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

    /// Pieces of `torrent` were verified: the resume data is saved soon.
    pub(crate) fn changed(&mut self, now: Instant, torrent: &Torrent) {
        if let Some(resume) = &mut self.resume {
            resume.changed();
        }
        self.save_resume(now, torrent);
    }

    /// Saves the resume data in the background if it changed and its
    /// interval passed (call on every progress tick).
    pub(crate) fn save_resume(&mut self, now: Instant, torrent: &Torrent) {
        if let Some(resume) = &mut self.resume {
            resume.tick(now, torrent.have(), torrent.file_priorities());
        }
    }

    /// The last save of the resume data, at shutdown.
    pub(crate) async fn flush_resume(&mut self, torrent: &Torrent) {
        if let Some(resume) = &mut self.resume {
            resume
                .flush(torrent.have(), torrent.file_priorities())
                .await;
        }
    }

    /// What is left to do once the torrent is removed; `last` is its final
    /// verified pieces and file priorities.
    pub(crate) fn into_removed(self, last: Option<(Bitfield, Vec<Priority>)>) -> Removed {
        Removed {
            paths: self.storage.paths().to_vec(),
            parts_dir: self.parts_dir,
            resume: self
                .resume
                .zip(last)
                .map(|(resume, (have, priorities))| resume.finish(have, priorities)),
        }
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
            have_bytes: stats.wanted - stats.left,
            total_bytes: stats.wanted,
            pieces_have: stats.pieces_have,
            piece_count: layout.piece_count(),
            uploaded: stats.uploaded,
            downloaded: stats.downloaded,
            download_rate: stats.download_rate,
            upload_rate: stats.upload_rate,
            peers: stats.peers,
            peers_seen: self.peers_seen.len(),
            complete: torrent.is_finished(),
        }
    }

    /// `torrent` in detail at `now`; `limits` are its own (upload,
    /// download) rate limits, bytes/s.
    pub(crate) fn detail(
        &self,
        now: Instant,
        torrent: &Torrent,
        limits: (u64, u64),
    ) -> TorrentDetail {
        let wall = SystemTime::now();
        let next_announce = torrent
            .next_announce()
            .map(|at| wall + at.saturating_duration_since(now));
        let tiers = self
            .tracker
            .as_ref()
            .map(TrackerClient::tiered_urls)
            .unwrap_or_default();
        TorrentDetail {
            have: torrent.have().clone(),
            downloading: torrent.downloading(),
            availability: torrent.availability(),
            distributed_copies: torrent.distributed_copies(),
            file_priorities: torrent.file_priorities().to_vec(),
            peers: torrent.peer_infos(),
            trackers: self.tracker_status.infos(tiers, next_announce),
            upload_limit: limits.0,
            download_limit: limits.1,
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
