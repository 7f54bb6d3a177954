//! The embedded seeder: `minibit-tracker FILE...` hashes each file or
//! folder, builds its `.torrent` (announce URL pointing at this tracker),
//! catalogues it, and seeds it with the `minibit-peer` session driver,
//! which announces into this tracker's registry like any other peer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use minibit_core::metainfo::{BuildError, InfoHash, MetainfoBuilder};
use minibit_peer::catalogue::URL_ESCAPE;
use minibit_peer::{Session, SessionConfig, SessionError, SessionHandle};
use percent_encoding::utf8_percent_encode;

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
    /// The seeding session could not start.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Where and how to seed.
#[derive(Clone, Debug)]
pub struct SeedOptions {
    /// The tracker's base URL (`http://ADDR`); the torrent's announce URL is `BASE/announce`.
    pub tracker_url: String,
    /// Address the seeding session listens on for peers (port 0: a free port).
    pub listen: SocketAddr,
    /// Piece length, bytes (a power of two, 16 KiB-16 MiB), or `None` to choose from the size.
    pub piece_length: Option<u32>,
}

/// A torrent being seeded.
#[derive(Debug)]
pub struct Seeding {
    /// The torrent's name, as catalogued.
    pub name: String,
    /// Its info-hash.
    pub info_hash: InfoHash,
    /// Where its `.torrent` is served.
    pub torrent_url: String,
    /// The running session (shut it down to announce `stopped`).
    pub session: SessionHandle,
}

/// How long [`seed`] waits for the session's first announce to reach the registry.
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

/// Hashes `path` (calling `progress(bytes_hashed, total_bytes)`), builds
/// and catalogues its torrent, and starts seeding it; returns once the
/// seeder's first announce has reached this tracker (or after 5 s).
///
/// # Errors
/// [`SeedError`]: the path, the build, the catalogue or the session failed.
pub async fn seed(
    path: &Path,
    options: &SeedOptions,
    state: &TrackerState,
    progress: impl FnMut(u64, u64) + Send + 'static,
) -> Result<Seeding, SeedError> {
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
    let name = metainfo.info().name().to_owned();
    let info_hash = metainfo.info_hash();
    let (size, piece_length) = (metainfo.total_length(), metainfo.info().piece_length());
    let torrent = metainfo.to_bytes();
    // canonicalize gives an absolute path, so a file always has a parent.
    let folder = path.parent().unwrap_or(&path).to_owned();
    let mut config = SessionConfig::new(metainfo, folder);
    config.listen = options.listen;
    // The files were hashed just above: no second read-back to check them.
    config.seed_mode = true;
    let session = Session::start(config).await?;
    let added =
        state
            .catalogue_mut()
            .add(name.clone(), info_hash, size, piece_length.into(), torrent);
    if let Err(e) = added {
        // Best effort: the error to report is `e`, not how the session ended.
        let _ = session.shutdown().await;
        return Err(e.into());
    }
    state.add_seeder(info_hash, session.peer_sink());
    if !announced(state, info_hash, session.local_addr().port()).await {
        tracing::warn!(%name, "the seeder has not announced to this tracker yet");
    }
    Ok(Seeding {
        torrent_url: format!(
            "{}/torrents/{}.torrent",
            options.tracker_url,
            utf8_percent_encode(&name, URL_ESCAPE)
        ),
        name,
        info_hash,
        session,
    })
}
