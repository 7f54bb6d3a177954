//! Preparing a torrent for the client before it reaches the driver task:
//! opening (and preallocating) its files, verifying the pieces already on
//! disk (resume) and building its tracker client. Runs on the caller's
//! task so the driver never waits for a disk.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::{InfoHash, Metainfo};
use minibit_core::piece::Layout;
use minibit_core::priority::Priority;
use minibit_core::torrent::TorrentConfig;
use minibit_core::tracker::Tiers;
use minibit_core::wire::PeerId;
use tokio::sync::watch;
use tracing::info;

use super::add_options::AddOptions;
use super::types::{ClientError, Progress};
use crate::hasher::PieceHash;
use crate::resume;
use crate::resume_data::{self, ResumeData, parts_dir, resume_path};
use crate::resume_writer::ResumeWriter;
use crate::storage::{FileEntry, Selection, Storage, blocking};
use crate::tracker_client::{TrackerClient, TrackerConfig};
use crate::tracker_status::TrackerStatus;

/// A torrent to add to a [`crate::Client`].
#[derive(Clone, Debug)]
pub struct AddTorrent {
    /// The torrent.
    pub metainfo: Metainfo,
    /// Tracker URL to announce to instead of the metainfo's `announce` and
    /// `announce-list` tiers (BEP 12).
    pub announce_url: Option<String>,
    /// Seed mode: the files under the output folder are the ones the
    /// metainfo was just built from (hashed a moment ago), so every piece
    /// is taken as ours without reading the files back for the resume
    /// check. A piece that changed anyway still fails each leecher's SHA-1
    /// check (BEP 3). Off by default. A seed-mode torrent writes no resume
    /// data.
    pub seed_mode: bool,
    /// Output and state folders, resume interval, the core's tunables.
    pub options: AddOptions,
}

impl AddTorrent {
    /// Defaults: the metainfo's tracker, seed mode off, [`AddOptions::new`].
    pub fn new(metainfo: Metainfo, output_dir: impl Into<PathBuf>) -> Self {
        Self::with_options(metainfo, AddOptions::new(output_dir))
    }

    /// The metainfo's tracker, seed mode off, `options`.
    pub fn with_options(metainfo: Metainfo, options: AddOptions) -> Self {
        Self {
            metainfo,
            announce_url: None,
            seed_mode: false,
            options,
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

/// A torrent's files, open and checked: what the driver needs to store
/// and verify its pieces.
#[derive(Debug)]
pub(crate) struct OpenedFiles {
    pub storage: Storage,
    pub hashes: Arc<[PieceHash]>,
    /// The pieces verified on disk.
    pub have: Bitfield,
    /// Saves the resume data (none in seed mode).
    pub resume: Option<ResumeWriter>,
    /// The folder of the skipped files' part files.
    pub parts_dir: PathBuf,
}

/// A torrent whose files are open and checked, ready for the driver.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub name: String,
    pub info_hash: InfoHash,
    pub layout: Layout,
    /// The bencoded info dictionary, served to peers (BEP 9 `ut_metadata`).
    pub info_bytes: Bytes,
    pub config: TorrentConfig,
    pub files: OpenedFiles,
    pub tracker: Option<TrackerClient>,
    pub tracker_status: TrackerStatus,
    pub progress: watch::Sender<Progress>,
    /// Where the driver leaves the error that stopped the torrent.
    pub error: Arc<Mutex<Option<ClientError>>>,
}

/// Opens `add`'s files, verifies what is on disk and builds its tracker
/// client.
pub(crate) async fn prepare(add: AddTorrent, context: Context) -> Result<Prepared, ClientError> {
    let files = open_files(&add).await?;
    let AddTorrent {
        metainfo,
        announce_url,
        options: AddOptions { mut torrent, .. },
        ..
    } = add;
    // `None` means: seed from OS entropy (the core never reads it).
    let rng_seed = *torrent.rng_seed.get_or_insert_with(rand::random);
    // BEP 12: the metainfo's tiers (shuffled with the torrent's RNG seed),
    // or the one tracker asked for.
    let tiers = match &announce_url {
        Some(url) => Tiers::new([vec![url.clone()]], 0),
        None => Tiers::of_metainfo(&metainfo, rng_seed),
    };
    let (tracker, tracker_status) = tracker_client(tiers, metainfo.info_hash(), context)?;
    // BEP 27: a private torrent's peers come from its trackers only.
    torrent.private |= metainfo.info().private();
    let (progress, _) = watch::channel(Progress::default());
    Ok(Prepared {
        name: metainfo.info().name().to_owned(),
        info_hash: metainfo.info_hash(),
        layout: metainfo.layout().clone(),
        info_bytes: Bytes::copy_from_slice(metainfo.info_bytes()),
        config: torrent,
        files,
        tracker,
        tracker_status,
        progress,
        error: Arc::default(),
    })
}

/// The tracker client of `tiers` (none when empty) and its status.
pub(crate) fn tracker_client(
    tiers: Tiers,
    info_hash: InfoHash,
    context: Context,
) -> Result<(Option<TrackerClient>, TrackerStatus), ClientError> {
    let tracker = (!tiers.is_empty())
        .then(|| {
            TrackerClient::with_tiers(
                tiers,
                info_hash,
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
    Ok((tracker, tracker_status))
}

/// Opens `add`'s files and verifies what is on disk; the resume writer
/// (none in seed mode).
pub(crate) async fn open_files(add: &AddTorrent) -> Result<OpenedFiles, ClientError> {
    let hashes: Arc<[PieceHash]> = add.metainfo.info().pieces().into();
    let (storage, have) = open_and_resume(add, Arc::clone(&hashes)).await?;
    let info_hash = add.metainfo.info_hash();
    let resume = (!add.seed_mode).then(|| {
        ResumeWriter::new(
            resume_path(&add.options.state_dir(), &info_hash),
            info_hash,
            storage.clone(),
            add.options.resume_interval,
            Instant::now(),
        )
    });
    Ok(OpenedFiles {
        storage,
        hashes,
        have,
        resume,
        parts_dir: parts_dir(&add.options.state_dir(), &info_hash),
    })
}

/// Opens (creating and preallocating) the torrent's files under the
/// output folder (skipped files: part files in the state folder) and finds
/// the verified pieces: in seed mode every piece without reading; else
/// from the resume data, hashing only the files whose size or mtime
/// changed; else, when some file had data, by hashing every piece.
async fn open_and_resume(
    add: &AddTorrent,
    hashes: Arc<[PieceHash]>,
) -> Result<(Storage, Bitfield), ClientError> {
    let metainfo = &add.metainfo;
    let dir = &add.options.output_dir;
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
    let state_dir = add.options.state_dir();
    let selection = Selection {
        skipped: (0..files.len())
            .map(|i| add.options.torrent.file_priorities.get(i) == Some(&Priority::Skip))
            .collect(),
        parts_dir: parts_dir(&state_dir, &metainfo.info_hash()),
    };
    let open_dir = dir.clone();
    let (storage, report) =
        blocking(move || Storage::open_selected(&open_dir, &files, layout, &selection))
            .await
            .map_err(|source| ClientError::Storage {
                dir: dir.clone(),
                source,
            })?;
    let pieces = metainfo.layout().piece_count();
    let resume = if add.seed_mode {
        None
    } else {
        let path = resume_path(&state_dir, &metainfo.info_hash());
        ResumeData::load(&path, &metainfo.info_hash(), metainfo.layout())
            .map_err(ClientError::Resume)?
    };
    let have = if add.seed_mode {
        Bitfield::full(pieces)
    } else if let Some(resume) = resume {
        let recorded = resume.have_bits().unwrap_or_else(|| Bitfield::new(pieces));
        let plan = resume_data::plan(metainfo.layout(), &recorded, &resume.files, &report.found);
        let mut have = resume::verify_pieces(&storage, hashes, &plan.verify)
            .await
            .map_err(ClientError::Resume)?;
        for piece in plan.trusted.iter_set() {
            have.set(piece);
        }
        info!(
            name = metainfo.info().name(),
            trusted = plan.trusted.count(),
            rehashed = plan.verify.count(),
            "resumed from resume data: {} pieces trusted, {} pieces of changed files re-verified",
            plan.trusted.count(),
            plan.verify.count()
        );
        have
    } else if report.had_data {
        resume::verify_existing(&storage, hashes)
            .await
            .map_err(ClientError::Resume)?
    } else {
        Bitfield::new(pieces)
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
