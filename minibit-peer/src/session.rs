//! The session API: [`Session::start`] opens the files, verifies what is
//! already on disk, binds the listener and spawns the one task that owns
//! the core [`Torrent`] (the private `driver` module); [`SessionHandle`] watches
//! its progress and stops it.
//!
//! Memory stays bounded whatever the torrent's size: block data lives only
//! in the [`crate::inflight::InFlight`] buffer (capped, spilling to disk), in the core's
//! bounded serve pipeline (a few `ReadBlock`s per peer) and in the bounded
//! per-connection channels.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::Metainfo;
use minibit_core::priority::Priority;
use minibit_core::torrent::{Torrent, TorrentConfig};
use minibit_core::tracker::Tiers;
use minibit_core::wire::PeerId;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::info;

use crate::connection::ConnConfig;
use crate::driver::{Driver, Parts};
use crate::hasher::PieceHash;
use crate::resume;
use crate::resume_data::{self, DEFAULT_STATE_DIR, ResumeData, parts_dir, resume_path};
use crate::resume_writer::ResumeWriter;
use crate::storage::{FileEntry, Selection, Storage, blocking};
use crate::tracker_client::{TrackerClient, TrackerConfig};
use crate::tracker_status::TrackerStatus;

/// How a [`Session`] runs.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The torrent.
    pub metainfo: Metainfo,
    /// Folder the torrent's files go in (for a seeder: the folder that
    /// already holds them).
    pub output_dir: PathBuf,
    /// Address to listen on for incoming peers; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Tracker URL to announce to instead of the metainfo's `announce` and
    /// `announce-list` tiers (BEP 12).
    pub announce_url: Option<String>,
    /// The core's tunables (RNG seed, slots, super-seeding, ...).
    pub torrent: TorrentConfig,
    /// Longest wait for an outgoing TCP connect.
    pub connect_timeout: Duration,
    /// Longest wait for a peer's handshake.
    pub handshake_timeout: Duration,
    /// Longest wait for one tracker's announce answer (then the next
    /// tracker of the tier is tried).
    pub tracker_timeout: Duration,
    /// First retransmission delay of a UDP tracker request, doubling with
    /// each (BEP 15: 15 s).
    pub udp_retransmit: Duration,
    /// Most bytes of unverified blocks kept in memory before blocks are
    /// spilled to disk.
    pub max_buffered_bytes: usize,
    /// Most bytes queued for one peer and not yet written to its socket; a
    /// peer that stops reading until the queue holds this much is
    /// disconnected.
    pub max_queued_bytes: usize,
    /// Most connections (connected or still handshaking, both directions)
    /// before incoming connections are refused.
    pub max_connections: usize,
    /// Seed mode: the files under `output_dir` are the ones the metainfo
    /// was just built from (hashed a moment ago), so every piece is taken
    /// as ours without reading the files back for the resume check. A
    /// piece that changed anyway still fails each leecher's SHA-1 check
    /// (BEP 3). Off by default. A seed-mode session writes no resume data.
    pub seed_mode: bool,
    /// Folder of the resume data and of the skipped files' part files
    /// (`None`, the default: `.minibit` inside `output_dir`).
    pub state_dir: Option<PathBuf>,
    /// Least time between two saves of the resume data while pieces are
    /// verified (default 5 s); it is also saved at shutdown.
    pub resume_interval: Duration,
}

impl SessionConfig {
    /// Defaults: listen on every interface on a free port, the metainfo's
    /// tracker, 5 s connect timeout, 10 s handshake timeout, 15 s tracker
    /// timeout, BEP 15's 15 s UDP retransmission, 64 MiB of buffered blocks, 8 MiB queued per peer,
    /// 100 connections, seed mode off.
    pub fn new(metainfo: Metainfo, output_dir: impl Into<PathBuf>) -> Self {
        Self {
            metainfo,
            output_dir: output_dir.into(),
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            announce_url: None,
            torrent: TorrentConfig::default(),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            tracker_timeout: Duration::from_secs(15),
            udp_retransmit: Duration::from_secs(15),
            max_buffered_bytes: 64 * 1024 * 1024,
            max_queued_bytes: 8 * 1024 * 1024,
            max_connections: 100,
            seed_mode: false,
            state_dir: None,
            resume_interval: Duration::from_secs(5),
        }
    }

    /// The state folder: [`SessionConfig::state_dir`] or its default.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| self.output_dir.join(DEFAULT_STATE_DIR))
    }
}

/// Why a session could not start or stopped early.
#[derive(Debug, Error)]
pub enum SessionError {
    /// Creating or opening the files failed.
    #[error("cannot open the files under {}", dir.display())]
    Storage {
        /// The output folder.
        dir: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// Verifying the existing files failed.
    #[error("cannot verify existing data")]
    Resume(#[source] io::Error),
    /// Binding the listener failed.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: io::Error,
    },
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] crate::http::ClientError),
    /// Reading or writing a piece failed while running.
    #[error("disk error")]
    Disk(#[source] io::Error),
    /// The session task panicked or was cancelled.
    #[error("the session task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// A snapshot of a session's progress (published on a watch channel).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// Bytes of verified wanted pieces we hold.
    pub have_bytes: u64,
    /// Bytes of the wanted pieces: the total size of the torrent, or less
    /// with skipped files (selective download).
    pub total_bytes: u64,
    /// Pieces verified.
    pub pieces_have: u32,
    /// Pieces in the torrent.
    pub piece_count: u32,
    /// Payload bytes uploaded since start.
    pub uploaded: u64,
    /// Verified bytes downloaded since start.
    pub downloaded: u64,
    /// Download rate, bytes per second.
    pub download_rate: f64,
    /// Upload rate, bytes per second.
    pub upload_rate: f64,
    /// Connected peers.
    pub peers: usize,
    /// Distinct peers (by peer id) that completed a handshake since start
    /// (counting stops at 10 000).
    pub peers_seen: usize,
    /// Every wanted piece is verified (every piece without a selection).
    pub complete: bool,
}

/// Starts sessions; see [`Session::start`].
#[derive(Debug)]
pub struct Session;

/// Controls a running session. Dropping it stops the session (without
/// waiting for the `stopped` announce); prefer [`SessionHandle::shutdown`].
#[derive(Debug)]
pub struct SessionHandle {
    local_addr: SocketAddr,
    paths: Vec<PathBuf>,
    progress: watch::Receiver<Progress>,
    stop: Option<oneshot::Sender<()>>,
    added_peers: PeerSink,
    task: tokio::task::JoinHandle<Result<(), SessionError>>,
}

/// Capacity of the channel of [`PeerSink::add_peers`] calls not yet
/// taken by the session task.
const ADDED_PEERS_QUEUE: usize = 64;

/// Hands peer addresses learned outside the tracker announce (e.g. by an
/// embedded tracker) to a running session; cheap to clone, outlives the
/// session harmlessly. From [`SessionHandle::peer_sink`].
#[derive(Clone, Debug)]
pub struct PeerSink(mpsc::Sender<Vec<(SocketAddr, Option<PeerId>)>>);

impl PeerSink {
    /// The session dials `peers` like tracker peers (never itself, a banned
    /// or an already known address) while it has free connection slots. A
    /// hint: dropped when the session has ended or already has
    /// `ADDED_PEERS_QUEUE` (64) calls queued.
    pub fn add_peers(&self, peers: Vec<SocketAddr>) {
        let _ = self
            .0
            .try_send(peers.into_iter().map(|a| (a, None)).collect());
    }

    /// Like [`PeerSink::add_peers`] for one peer whose id is known (from
    /// its announce): skipped if a peer with that id is already connected
    /// (it dialled us; a second connection would be refused as a duplicate,
    /// and a peer breaking the tie the other way would close both).
    pub fn add_peer(&self, addr: SocketAddr, peer_id: PeerId) {
        let _ = self.0.try_send(vec![(addr, Some(peer_id))]);
    }
}

impl Session {
    /// Opens (and preallocates) the files, verifies the pieces already on
    /// disk (resume), binds the listener and starts the session task, which
    /// announces `started` and joins the swarm.
    ///
    /// # Errors
    /// [`SessionError`] for file, resume, listener or HTTP client failures.
    pub async fn start(config: SessionConfig) -> Result<SessionHandle, SessionError> {
        let metainfo = &config.metainfo;
        let hashes: Arc<[PieceHash]> = metainfo.info().pieces().into();
        let (storage, have) = open_and_resume(&config, Arc::clone(&hashes)).await?;
        let resume = (!config.seed_mode).then(|| {
            ResumeWriter::new(
                resume_path(&config.state_dir(), &metainfo.info_hash()),
                metainfo.info_hash(),
                storage.clone(),
                config.resume_interval,
                Instant::now(),
            )
        });
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| SessionError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| SessionError::Listen {
                addr: config.listen,
                source,
            })?;
        let peer_id = PeerId::generate(rand::random());
        let (tracker, tracker_status) = tracker_for(&config, peer_id, local_addr.port())?;
        let mut torrent_config = config.torrent.clone();
        // BEP 27: a private torrent's peers come from its trackers only.
        torrent_config.private |= metainfo.info().private();
        torrent_config.listen_addr = Some(reachable(local_addr));
        // `None` means: seed from OS entropy (the core never reads it).
        torrent_config.rng_seed.get_or_insert_with(rand::random);
        let torrent = Torrent::new(
            torrent_config,
            metainfo.info_hash(),
            peer_id,
            metainfo.layout().clone(),
            have,
            Instant::now(),
        );
        let conn_config = ConnConfig {
            handshake: torrent.handshake(),
            piece_count: metainfo.layout().piece_count(),
            connect_timeout: config.connect_timeout,
            handshake_timeout: config.handshake_timeout,
            max_queued_bytes: config.max_queued_bytes,
        };
        let (progress_tx, progress) = watch::channel(Progress::default());
        let (stop, stop_rx) = oneshot::channel();
        let (added_peers, added_peers_rx) = mpsc::channel(ADDED_PEERS_QUEUE);
        let paths = storage.paths().to_vec();
        let driver = Driver::new(Parts {
            torrent,
            storage,
            hashes,
            tracker,
            tracker_status,
            listener,
            conn_config,
            max_buffered_bytes: config.max_buffered_bytes,
            max_connections: config.max_connections,
            progress: progress_tx,
            added_peers: added_peers_rx,
            resume,
        });
        driver.publish();
        let task = tokio::spawn(driver.run(stop_rx));
        Ok(SessionHandle {
            local_addr,
            paths,
            progress,
            stop: Some(stop),
            added_peers: PeerSink(added_peers),
            task,
        })
    }
}

/// The torrent's tracker client (BEP 12: the metainfo's tiers, shuffled
/// with the core's RNG seed when one is given, or the one tracker asked
/// for) and the status that tells the user when none answered.
fn tracker_for(
    config: &SessionConfig,
    peer_id: PeerId,
    port: u16,
) -> Result<(Option<TrackerClient>, TrackerStatus), SessionError> {
    let metainfo = &config.metainfo;
    // BEP 12: the metainfo's tiers (shuffled with the core's RNG seed
    // when one is given), or the one tracker asked for.
    let tiers = match &config.announce_url {
        Some(url) => Tiers::new([vec![url.clone()]], 0),
        None => Tiers::of_metainfo(
            metainfo,
            config.torrent.rng_seed.unwrap_or_else(rand::random),
        ),
    };
    let tracker = (!tiers.is_empty())
        .then(|| {
            TrackerClient::with_tiers(
                tiers,
                metainfo.info_hash(),
                peer_id,
                port,
                TrackerConfig {
                    timeout: config.tracker_timeout,
                    udp_retransmit: config.udp_retransmit,
                },
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

/// Opens (creating and preallocating) the torrent's files under the
/// output folder (skipped files: part files in the state folder) and finds
/// the verified pieces: in seed mode every piece without reading; else
/// from the resume data, hashing only the files whose size or mtime
/// changed; else, when some file had data, by hashing every piece.
async fn open_and_resume(
    config: &SessionConfig,
    hashes: Arc<[PieceHash]>,
) -> Result<(Storage, Bitfield), SessionError> {
    let metainfo = &config.metainfo;
    let dir = &config.output_dir;
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
    let state_dir = config.state_dir();
    let selection = Selection {
        skipped: (0..files.len())
            .map(|i| config.torrent.file_priorities.get(i) == Some(&Priority::Skip))
            .collect(),
        parts_dir: parts_dir(&state_dir, &metainfo.info_hash()),
    };
    let open_dir = dir.clone();
    let (storage, report) =
        blocking(move || Storage::open_selected(&open_dir, &files, layout, &selection))
            .await
            .map_err(|source| SessionError::Storage {
                dir: dir.clone(),
                source,
            })?;
    let pieces = metainfo.layout().piece_count();
    let resume = if config.seed_mode {
        None
    } else {
        let path = resume_path(&state_dir, &metainfo.info_hash());
        ResumeData::load(&path, &metainfo.info_hash(), metainfo.layout())
            .map_err(SessionError::Resume)?
    };
    let have = if config.seed_mode {
        Bitfield::full(pieces)
    } else if let Some(resume) = resume {
        let recorded = resume.have_bits().unwrap_or_else(|| Bitfield::new(pieces));
        let plan = resume_data::plan(metainfo.layout(), &recorded, &resume.files, &report.found);
        let mut have = resume::verify_pieces(&storage, hashes, &plan.verify)
            .await
            .map_err(SessionError::Resume)?;
        for piece in plan.trusted.iter_set() {
            have.set(piece);
        }
        info!(
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
            .map_err(SessionError::Resume)?
    } else {
        Bitfield::new(pieces)
    };
    info!(
        pieces = have.count(),
        of = have.len(),
        "resume: verified pieces on disk"
    );
    let (named, bits) = (storage.clone(), have.clone());
    blocking(move || named.complete_files(&bits))
        .await
        .map_err(SessionError::Disk)?;
    Ok((storage, have))
}

/// The address other peers reach us at, as far as we can tell: an
/// unspecified listen address becomes loopback (used by the core only to
/// avoid dialling ourselves).
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

impl SessionHandle {
    /// The address the listener is bound to (its port is the one announced).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Full paths of the torrent's files, in torrent order (their final
    /// names: until all its pieces are verified a file is `NAME.part`, see
    /// [`crate::partial`]).
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// A receiver of progress snapshots (updated every 250 ms, on
    /// completion and at shutdown). Do not hold a `borrow()` guard across an
    /// `.await`: the session task blocks while publishing until it is dropped.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// Peer addresses learned outside the tracker announce: see
    /// [`PeerSink::add_peers`].
    pub fn add_peers(&self, peers: Vec<SocketAddr>) {
        self.added_peers.add_peers(peers);
    }

    /// A handle that adds peers to this session, for code that does not
    /// own the [`SessionHandle`].
    pub fn peer_sink(&self) -> PeerSink {
        self.added_peers.clone()
    }

    /// Waits until every piece is verified (`true`), or the session ended
    /// first (`false`; [`SessionHandle::shutdown`] then gives the reason).
    pub async fn wait_complete(&self) -> bool {
        let mut progress = self.progress.clone();
        progress.wait_for(|p| p.complete).await.is_ok()
    }

    /// Waits until the session task ends on its own (a fatal error).
    pub async fn wait_ended(&self) {
        let mut progress = self.progress.clone();
        while progress.changed().await.is_ok() {}
    }

    /// Stops the session: publishes a last progress snapshot (the final
    /// counters, still readable from a [`SessionHandle::progress`] receiver),
    /// waits (bounded) for pending announces, announces `stopped`,
    /// disconnects every peer, and returns how the session ended.
    ///
    /// # Errors
    /// The [`SessionError`] that ended the session, if one did.
    pub async fn shutdown(mut self) -> Result<(), SessionError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await?
    }
}

/// The path a single-file torrent's content lands at, or the folder of a
/// multi-file one, under `output_dir`.
pub fn content_path(metainfo: &Metainfo, output_dir: &Path) -> PathBuf {
    output_dir.join(metainfo.info().name())
}
