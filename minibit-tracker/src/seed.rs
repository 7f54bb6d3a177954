//! The embedded seeder: `minibit-tracker FILE...` hashes each file or
//! folder, builds its `.torrent` (announce URL pointing at this tracker),
//! catalogues it, and seeds it with one `minibit-peer` [`Client`] on one
//! peer port for every torrent; the client announces into this tracker's
//! registry like any other peer. Torrents can be added and removed while
//! it runs ([`Seeder::add`], [`Seeder::remove`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use minibit_core::metainfo::Metainfo;
use minibit_core::metainfo::{BuildError, InfoHash, MetainfoBuilder};
use minibit_peer::catalogue::URL_ESCAPE;
use minibit_peer::{AddTorrent, Client, ClientConfig, ClientError, TorrentHandle};
use percent_encoding::utf8_percent_encode;
use tokio::sync::RwLock;

use crate::catalogue::CatalogueError;
use crate::http::TrackerState;

/// Why a file could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The path cannot be resolved.
    #[error("{path}: {source}")]
    Path {
        /// The path given.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// Hashing or building the `.torrent` failed.
    #[error("cannot build a torrent for {path}: {source}")]
    Build {
        /// The path given.
        path: PathBuf,
        /// The failure.
        source: BuildError,
    },
    /// The hashing task panicked.
    #[error("hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The catalogue refused the torrent (e.g. a second file of the same name).
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    /// The seeding client could not start, or refused the torrent.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// [`Seeder::remove`] of an info-hash the seeder does not seed.
    #[error("not seeding {0}")]
    NotSeeding(InfoHash),
    /// The tracker's address is not set up
    /// ([`crate::ServiceConfig::tracker_addr`]), so there is nothing to
    /// announce to.
    #[error("the tracker's address is not set up")]
    NoAddress,
}

/// Where and how to seed.
#[derive(Clone, Debug)]
pub struct SeedOptions {
    /// The tracker's base URL (`http://ADDR`); the torrent's announce URL is `BASE/announce`.
    pub tracker_url: String,
    /// Address the seeding client listens on for peers, one port for every
    /// torrent (port 0: a free port).
    pub listen: SocketAddr,
    /// Piece length, bytes (a power of two, 16 KiB-16 MiB), or `None` to choose from the size.
    pub piece_length: Option<u32>,
}

/// A torrent seeded by a [`Seeder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seeded {
    /// The torrent's name, as catalogued.
    pub name: String,
    /// Its info-hash.
    pub info_hash: InfoHash,
    /// Where its `.torrent` is served.
    pub torrent_url: String,
}

/// Hashes `path` (calling `progress(bytes_hashed, total_bytes)`) into a
/// metainfo announcing to `options.tracker_url`; returns it with the
/// folder that holds the content.
async fn build(
    path: &Path,
    options: &SeedOptions,
    progress: impl FnMut(u64, u64) + Send + 'static,
) -> Result<(Metainfo, PathBuf), SeedError> {
    let path = std::fs::canonicalize(path).map_err(|source| SeedError::Path {
        path: path.to_owned(),
        source,
    })?;
    let builder = MetainfoBuilder::new(&path)
        .announce(format!("{}/announce", options.tracker_url))
        .piece_length(options.piece_length)
        .created_by(concat!("minibit-tracker/", env!("CARGO_PKG_VERSION")));
    let metainfo = tokio::task::spawn_blocking(move || builder.build_with_progress(progress))
        .await?
        .map_err(|source| SeedError::Build {
            path: path.clone(),
            source,
        })?;
    // canonicalize gives an absolute path, so a file always has a parent.
    let folder = path.parent().unwrap_or(&path).to_owned();
    Ok((metainfo, folder))
}

/// Catalogues `metainfo` (its `.torrent` served by the tracker).
fn catalogue(state: &TrackerState, metainfo: &Metainfo) -> Result<(), CatalogueError> {
    state.catalogue_mut().add(
        metainfo.info().name().to_owned(),
        metainfo.info_hash(),
        metainfo.total_length(),
        metainfo.info().piece_length().into(),
        metainfo.to_bytes(),
    )
}

/// Where the tracker at `tracker_url` serves the `.torrent` named `name`.
fn torrent_url(tracker_url: &str, name: &str) -> String {
    format!(
        "{tracker_url}/torrents/{}.torrent",
        utf8_percent_encode(name, URL_ESCAPE)
    )
}

/// How long [`Seeder::seed`] waits for the torrent's first announce to reach the registry.
const ANNOUNCE_WAIT: Duration = Duration::from_secs(5);

/// Waits (at most [`ANNOUNCE_WAIT`]) until the registry lists a peer on
/// `port` for `info_hash`: the session's `started` announce has arrived,
/// so leechers from now on are told about the seeder.
pub(crate) async fn announced(state: &TrackerState, info_hash: InfoHash, port: u16) -> bool {
    let listed = || {
        state
            .registry()
            .peer_addrs(&info_hash)
            .any(|a| a.port() == port)
    };
    let deadline = tokio::time::Instant::now() + ANNOUNCE_WAIT;
    while !listed() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// What the seeder sees of one torrent it seeds, as
/// `GET /api/torrents/{info_hash}` answers.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SeedStatus {
    /// The info-hash, 40 hex digits.
    pub info_hash: String,
    /// Payload upload rate to its peers, bytes/s.
    pub upload_rate: f64,
    /// Payload bytes uploaded since start.
    pub uploaded: u64,
    /// Connected peers.
    pub peers: usize,
    /// Copies of each piece among those peers (the seeder's own not
    /// counted), one count per piece.
    pub availability: Vec<u32>,
}

/// One client seeding every torrent of this tracker on one peer port.
#[derive(Debug)]
pub struct Seeder {
    /// `None` once shut down.
    client: RwLock<Option<Client>>,
    local_addr: SocketAddr,
    options: SeedOptions,
    /// The client's torrent of each info-hash seeded.
    seeding: Mutex<HashMap<InfoHash, TorrentHandle>>,
    /// Payload bytes uploaded by torrents no longer seeded, bytes.
    uploaded_by_removed: AtomicU64,
}

impl Seeder {
    /// Starts the client on [`SeedOptions::listen`] (no torrent yet).
    ///
    /// # Errors
    /// [`SeedError::Client`] when the port cannot be bound.
    pub async fn start(options: SeedOptions) -> Result<Self, SeedError> {
        let client = Client::start(ClientConfig {
            listen: options.listen,
            ..ClientConfig::default()
        })
        .await?;
        Ok(Self {
            local_addr: client.local_addr(),
            client: RwLock::new(Some(client)),
            options,
            seeding: Mutex::default(),
            uploaded_by_removed: AtomicU64::new(0),
        })
    }

    /// The address of the peer port every torrent is seeded on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn seeding(&self) -> MutexGuard<'_, HashMap<InfoHash, TorrentHandle>> {
        self.seeding.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hashes `path` (calling `progress(bytes_hashed, total_bytes)`),
    /// builds and catalogues its torrent, and starts seeding it; returns
    /// once the seeder's first announce for it has reached this tracker
    /// (or after 5 s).
    ///
    /// # Errors
    /// [`SeedError`]: the path, the build, the catalogue or the client
    /// failed (a torrent already seeded is [`SeedError::Client`]).
    pub async fn add(
        &self,
        path: &Path,
        state: &TrackerState,
        progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<Seeded, SeedError> {
        let (metainfo, folder) = build(path, &self.options, progress).await?;
        let (name, info_hash) = (metainfo.info().name().to_owned(), metainfo.info_hash());
        catalogue(state, &metainfo)?;
        // The files were hashed just above: no second read-back to check them.
        if let Err(e) = self.seed(state, metainfo, folder, true).await {
            state.catalogue_mut().remove(&info_hash);
            return Err(e);
        }
        Ok(Seeded {
            torrent_url: torrent_url(&self.options.tracker_url, &name),
            name,
            info_hash,
        })
    }

    /// Seeds `metainfo` from the files under `folder`, announcing to this
    /// tracker whatever the `.torrent` says (a catalogue restored after a
    /// restart on another port still reaches it); its peer sink is
    /// registered with `state`, and this returns once its first announce
    /// reached the registry (or after 5 s). `verified`: the data was hashed
    /// or fingerprinted already, so it is not read back first (seed mode).
    ///
    /// # Errors
    /// [`SeedError::Client`]: the files cannot be opened or verified, the
    /// torrent is seeded already, or the seeder has shut down.
    pub async fn seed(
        &self,
        state: &TrackerState,
        metainfo: Metainfo,
        folder: PathBuf,
        verified: bool,
    ) -> Result<(), SeedError> {
        let info_hash = metainfo.info_hash();
        let mut add = AddTorrent::new(metainfo, folder);
        add.announce_url = Some(format!("{}/announce", self.options.tracker_url));
        add.seed_mode = verified;
        let torrent = {
            let client = self.client.read().await;
            let client = client.as_ref().ok_or(ClientError::ShutDown)?;
            client.add_torrent(add).await?
        };
        state.add_seeder(info_hash, torrent.peer_sink());
        self.seeding().insert(info_hash, torrent);
        if !announced(state, info_hash, self.local_addr.port()).await {
            tracing::warn!(%info_hash, "the seeder has not announced to this tracker yet");
        }
        Ok(())
    }

    /// Whether `info_hash` is being seeded.
    pub fn seeds(&self, info_hash: &InfoHash) -> bool {
        self.seeding().contains_key(info_hash)
    }

    /// What the seeder sees of `info_hash`: its upload rate and the
    /// availability of each piece among its peers; `None` when it does
    /// not seed it.
    pub async fn status(&self, info_hash: &InfoHash) -> Option<SeedStatus> {
        let (id, progress) = {
            let seeding = self.seeding();
            let torrent = seeding.get(info_hash)?;
            (torrent.id(), torrent.progress().borrow().clone())
        };
        let client = self.client.read().await;
        let detail = client.as_ref()?.detail(id).await.ok()?;
        Some(SeedStatus {
            info_hash: info_hash.to_hex(),
            upload_rate: progress.upload_rate,
            uploaded: progress.uploaded,
            peers: detail.peers.len(),
            availability: detail.availability,
        })
    }

    /// Stops seeding `info_hash` (it announces `stopped`; the files stay).
    /// Taking it out of the catalogue is the caller's business.
    ///
    /// # Errors
    /// [`SeedError::NotSeeding`], or [`SeedError::Client`] if the client
    /// has shut down.
    pub async fn remove(&self, info_hash: InfoHash) -> Result<(), SeedError> {
        let torrent = self
            .seeding()
            .remove(&info_hash)
            .ok_or(SeedError::NotSeeding(info_hash))?;
        self.uploaded_by_removed
            .fetch_add(torrent.progress().borrow().uploaded, Ordering::Relaxed);
        let client = self.client.read().await;
        let client = client.as_ref().ok_or(ClientError::ShutDown)?;
        client.remove(torrent.id(), false).await?;
        Ok(())
    }

    /// Payload bytes uploaded by this seeder since start, bytes.
    pub fn uploaded(&self) -> u64 {
        let seeding: u64 = self
            .seeding()
            .values()
            .map(|t| t.progress().borrow().uploaded)
            .sum();
        seeding + self.uploaded_by_removed.load(Ordering::Relaxed)
    }

    /// Stops the client: every torrent announces `stopped` (to the
    /// still-running tracker, bounded to 2 s in all). Later calls do
    /// nothing; [`Seeder::seed`] fails from then on.
    ///
    /// # Errors
    /// The [`ClientError`] that ended the client task, if one did.
    pub async fn shutdown(&self) -> Result<(), SeedError> {
        let Some(client) = self.client.write().await.take() else {
            return Ok(());
        };
        Ok(client.shutdown().await?)
    }
}
