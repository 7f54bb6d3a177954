//! What the driver keeps for each torrent beside the core's `Torrent`:
//! its files, in-flight block buffer, read cache, tracker client and
//! status, and the progress it publishes.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::{InfoHash, Metainfo};
use minibit_core::priority::Priority;
use minibit_core::torrent::Torrent;
use minibit_core::wire::PeerId;
use tokio::sync::watch;

use super::command::Removed;
use super::magnet::{AddMagnet, PreparedMagnet};
use super::open::{OpenedFiles, Prepared};
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
    /// Its files; `None` while a magnet link fetches the metadata.
    pub files: Option<Files>,
    /// Started from a magnet link and still without files: what opening
    /// them takes once the metadata arrives.
    pub magnet: Option<AddMagnet>,
    /// The `.torrent` saved from a magnet link's metadata (deleted with
    /// the torrent's data).
    saved_torrent: Option<PathBuf>,
    pub tracker: Option<TrackerClient>,
    /// Whether any tracker answered (the user is told when none did).
    pub tracker_status: TrackerStatus,
    progress: watch::Sender<Progress>,
    error: Arc<Mutex<Option<ClientError>>>,
    /// Distinct peer ids that completed a handshake (at most [`MAX_PEERS_SEEN`]).
    peers_seen: HashSet<PeerId>,
    /// Pieces that failed verification since start.
    pieces_failed: u64,
    /// Private (BEP 27), as far as known (a magnet link: once its
    /// metadata arrives).
    private: bool,
}

/// A torrent's files and the buffers in front of them.
pub(crate) struct Files {
    /// The files (renamed from `NAME.part` as their pieces are verified).
    pub storage: Storage,
    pub inflight: InFlight,
    /// Extents read to serve blocks.
    pub reads: ReadCache,
    pub hashes: Arc<[PieceHash]>,
    /// Saves the resume data (none in seed mode).
    resume: Option<ResumeWriter>,
    /// The folder of the skipped files' part files.
    parts_dir: PathBuf,
}

impl Files {
    pub(crate) fn new(opened: OpenedFiles, budget: Arc<MemoryBudget>) -> Self {
        Self {
            inflight: InFlight::new(opened.storage.clone(), budget),
            reads: ReadCache::new(opened.storage.clone(), READ_CACHE_BYTES),
            storage: opened.storage,
            hashes: opened.hashes,
            resume: opened.resume,
            parts_dir: opened.parts_dir,
        }
    }
}

impl TorrentState {
    pub(crate) fn new(prepared: Prepared, budget: Arc<MemoryBudget>) -> Self {
        Self {
            name: prepared.name,
            info_hash: prepared.info_hash,
            files: Some(Files::new(prepared.files, budget)),
            magnet: None,
            saved_torrent: None,
            tracker: prepared.tracker,
            tracker_status: prepared.tracker_status,
            progress: prepared.progress,
            error: prepared.error,
            peers_seen: HashSet::new(),
            pieces_failed: 0,
            private: prepared.config.private,
        }
    }

    /// A torrent started from a magnet link: no files until its metadata
    /// arrives.
    pub(crate) fn fetching(prepared: PreparedMagnet) -> Self {
        Self {
            name: prepared.name,
            info_hash: prepared.add.magnet.info_hash,
            files: None,
            saved_torrent: Some(prepared.add.torrent_path()),
            magnet: Some(prepared.add),
            tracker: prepared.tracker,
            tracker_status: prepared.tracker_status,
            progress: prepared.progress,
            error: prepared.error,
            peers_seen: HashSet::new(),
            pieces_failed: 0,
            private: false,
        }
    }

    /// The metadata of a magnet link arrived and its files are open.
    pub(crate) fn open(&mut self, metainfo: &Metainfo, files: Files) {
        self.private = metainfo.info().private();
        metainfo.info().name().clone_into(&mut self.name);
        self.files = Some(files);
    }

    /// The torrent's piece count, `None` while it has no metadata.
    pub(crate) fn piece_count(&self) -> Option<u32> {
        self.files
            .as_ref()
            .map(|files| files.storage.layout().piece_count())
    }

    /// A peer with this id completed a handshake.
    pub(crate) fn seen(&mut self, peer_id: PeerId) {
        if self.peers_seen.len() < MAX_PEERS_SEEN {
            self.peers_seen.insert(peer_id);
        }
    }

    /// A piece failed verification.
    pub(crate) fn piece_failed(&mut self) {
        self.pieces_failed += 1;
    }

    /// Drops the blocks of unfinished pieces (the torrent was paused: a
    /// resumed torrent requests them again).
    pub(crate) fn forget_inflight(&mut self) {
        if let Some(files) = &mut self.files {
            let budget = files.inflight.budget();
            files.inflight = InFlight::new(files.storage.clone(), budget);
        }
    }

    /// Pieces of `torrent` were verified: the resume data is saved soon.
    pub(crate) fn changed(&mut self, now: Instant, torrent: &Torrent) {
        if let Some(resume) = self.resume() {
            resume.changed();
        }
        self.save_resume(now, torrent);
    }

    /// Saves the resume data in the background if it changed and its
    /// interval passed (call on every progress tick).
    pub(crate) fn save_resume(&mut self, now: Instant, torrent: &Torrent) {
        if let Some(resume) = self.resume() {
            resume.tick(now, torrent.have(), torrent.file_priorities());
        }
    }

    /// The last save of the resume data, at shutdown.
    pub(crate) async fn flush_resume(&mut self, torrent: &Torrent) {
        if let Some(resume) = self.resume() {
            resume
                .flush(torrent.have(), torrent.file_priorities())
                .await;
        }
    }

    fn resume(&mut self) -> Option<&mut ResumeWriter> {
        self.files.as_mut().and_then(|files| files.resume.as_mut())
    }

    /// What is left to do once the torrent is removed; `last` is its final
    /// verified pieces and file priorities.
    pub(crate) fn into_removed(self, last: Option<(Bitfield, Vec<Priority>)>) -> Removed {
        let saved_torrent = self.saved_torrent;
        let Some(files) = self.files else {
            return Removed {
                paths: Vec::new(),
                parts_dir: None,
                saved_torrent,
                resume: None,
            };
        };
        Removed {
            paths: files.storage.paths().to_vec(),
            parts_dir: Some(files.parts_dir),
            saved_torrent,
            resume: files
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
        if self.files.is_none() {
            // The layout is a placeholder until the metadata arrives.
            return Progress {
                uploaded: stats.uploaded,
                downloaded: stats.downloaded,
                download_rate: stats.download_rate,
                upload_rate: stats.upload_rate,
                peers: stats.peers,
                peers_seen: self.peers_seen.len(),
                fetching_metadata: true,
                private: self.private,
                ..Progress::default()
            };
        }
        Progress {
            have_bytes: stats.wanted - stats.left,
            total_bytes: stats.wanted,
            pieces_have: stats.pieces_have,
            piece_count: layout.piece_count(),
            pieces_failed: self.pieces_failed,
            uploaded: stats.uploaded,
            downloaded: stats.downloaded,
            download_rate: stats.download_rate,
            upload_rate: stats.upload_rate,
            peers: stats.peers,
            peers_seen: self.peers_seen.len(),
            complete: torrent.is_finished(),
            fetching_metadata: false,
            private: self.private,
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
