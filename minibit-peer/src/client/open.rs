//! Preparing a torrent for the client before it reaches the driver task:
//! opening (and preallocating) its files, verifying the pieces already on
//! disk (resume) and building its tracker client. Runs on the caller's
//! task so the driver never waits for a disk.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::{InfoHash, Metainfo};
use minibit_core::piece::Layout;
use minibit_core::torrent::TorrentConfig;
use minibit_core::tracker::Tiers;
use minibit_core::wire::PeerId;
use tokio::sync::watch;
use tracing::info;

use super::types::{ClientError, Progress};
use crate::hasher::PieceHash;
use crate::resume;
use crate::storage::{FileEntry, Storage, blocking};
use crate::tracker_client::{TrackerClient, TrackerConfig};
use crate::tracker_status::TrackerStatus;

/// A torrent to add to a [`crate::Client`].
#[derive(Clone, Debug)]
pub struct AddTorrent {
    /// The torrent.
    pub metainfo: Metainfo,
    /// Folder the torrent's files go in (for a seeder: the folder that
    /// already holds them).
    pub output_dir: PathBuf,
    /// Tracker URL to announce to instead of the metainfo's `announce` and
    /// `announce-list` tiers (BEP 12).
    pub announce_url: Option<String>,
    /// The core's tunables (RNG seed, slots, super-seeding, ...); a
    /// `None` [`TorrentConfig::rng_seed`] is seeded from OS entropy.
    pub torrent: TorrentConfig,
    /// Seed mode: the files under `output_dir` are the ones the metainfo
    /// was just built from (hashed a moment ago), so every piece is taken
    /// as ours without reading the files back for the resume check. A
    /// piece that changed anyway still fails each leecher's SHA-1 check
    /// (BEP 3). Off by default.
    pub seed_mode: bool,
}

impl AddTorrent {
    /// Defaults: the metainfo's tracker, the core's default tunables, seed
    /// mode off.
    pub fn new(metainfo: Metainfo, output_dir: impl Into<PathBuf>) -> Self {
        Self {
            metainfo,
            output_dir: output_dir.into(),
            announce_url: None,
            torrent: TorrentConfig::default(),
            seed_mode: false,
        }
    }
}

/// What the client shares with each torrent it prepares.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Context {
    pub peer_id: PeerId,
    /// The port announced to trackers.
    pub port: u16,
    pub tracker: TrackerConfig,
}

/// A torrent whose files are open and checked, ready for the driver.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub name: String,
    pub info_hash: InfoHash,
    pub layout: Layout,
    pub have: Bitfield,
    pub config: TorrentConfig,
    pub storage: Storage,
    pub hashes: Arc<[PieceHash]>,
    pub tracker: Option<TrackerClient>,
    pub tracker_status: TrackerStatus,
    pub progress: watch::Sender<Progress>,
    /// Where the driver leaves the error that stopped the torrent.
    pub error: Arc<Mutex<Option<ClientError>>>,
}

/// Opens `add`'s files, verifies what is on disk and builds its tracker
/// client.
pub(crate) async fn prepare(add: AddTorrent, context: Context) -> Result<Prepared, ClientError> {
    let AddTorrent {
        metainfo,
        output_dir,
        announce_url,
        mut torrent,
        seed_mode,
    } = add;
    let hashes: Arc<[PieceHash]> = metainfo.info().pieces().into();
    let (storage, have) =
        open_and_resume(&metainfo, &output_dir, Arc::clone(&hashes), seed_mode).await?;
    // BEP 12: the metainfo's tiers, or the one tracker asked for.
    let tiers = match &announce_url {
        Some(url) => Tiers::new([vec![url.clone()]], 0),
        None => Tiers::of_metainfo(&metainfo, rand::random()),
    };
    let tracker = (!tiers.is_empty())
        .then(|| {
            TrackerClient::with_tiers(
                tiers,
                metainfo.info_hash(),
                context.peer_id,
                context.port,
                context.tracker,
            )
        })
        .transpose()?;
    let tracker_status = TrackerStatus::new(
        Instant::now(),
        tracker
            .as_ref()
            .map(TrackerClient::urls)
            .unwrap_or_default(),
    );
    // BEP 27: a private torrent's peers come from its trackers only.
    torrent.private |= metainfo.info().private();
    // `None` means: seed from OS entropy (the core never reads it).
    torrent.rng_seed.get_or_insert_with(rand::random);
    let (progress, _) = watch::channel(Progress::default());
    Ok(Prepared {
        name: metainfo.info().name().to_owned(),
        info_hash: metainfo.info_hash(),
        layout: metainfo.layout().clone(),
        have,
        config: torrent,
        storage,
        hashes,
        tracker,
        tracker_status,
        progress,
        error: Arc::default(),
    })
}

/// Opens (creating and preallocating) the torrent's files under `dir` and
/// verifies the pieces already there against `hashes` (in `seed_mode`,
/// takes every piece as ours without reading them).
async fn open_and_resume(
    metainfo: &Metainfo,
    dir: &Path,
    hashes: Arc<[PieceHash]>,
    seed_mode: bool,
) -> Result<(Storage, Bitfield), ClientError> {
    let files: Vec<FileEntry> = metainfo
        .info()
        .files()
        .iter()
        .enumerate()
        .map(|(i, f)| FileEntry {
            path: metainfo.relative_path(i),
            length: f.length,
        })
        .collect();
    let layout = metainfo.layout().clone();
    let open_dir = dir.to_owned();
    let (storage, report) = blocking(move || Storage::open(&open_dir, &files, layout))
        .await
        .map_err(|source| ClientError::Storage {
            dir: dir.to_owned(),
            source,
        })?;
    let have = if seed_mode {
        Bitfield::full(metainfo.layout().piece_count())
    } else if report.had_data {
        resume::verify_existing(&storage, hashes)
            .await
            .map_err(ClientError::Resume)?
    } else {
        Bitfield::new(metainfo.layout().piece_count())
    };
    info!(
        name = metainfo.info().name(),
        pieces = have.count(),
        of = have.len(),
        "resume: verified pieces on disk"
    );
    let (named, bits) = (storage.clone(), have.clone());
    blocking(move || named.complete_files(&bits))
        .await
        .map_err(ClientError::Disk)?;
    Ok((storage, have))
}
