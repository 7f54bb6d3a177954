//! `minibit-peer daemon`: one [`Client`] run as a service, its torrents
//! kept in a state folder and driven over an HTTP API.
//!
//! The state folder `STATE` holds the database of torrents
//! (`daemon.sqlite3`, see [`store`]: each `.torrent`, save folder, file
//! priorities, paused flag), the resume data of every torrent
//! (`resume/`, see [`crate::resume_data`]) and the API token (`token`,
//! mode 0600, see [`crate::token`]). [`Daemon::start`] adds every stored
//! torrent back: pieces recorded in the resume data of files unchanged
//! since are trusted, not re-hashed.
//!
//! | module | job |
//! |---|---|
//! | [`store`] | the torrents in SQLite |
//! | [`request`] | an add request: save folder inside the root, file selection |
//! | [`view`] | the JSON shapes of the API |
//! | [`error`] | why a request failed, and its HTTP status |
//! | [`api`] | the axum routes under `/api/`, token and origin checks, events |
//! | [`page`] | the page at `/` |
//! | [`metrics`] | `/metrics` in the Prometheus text format |
//! | [`subscribe`] | subscriptions to trackers' catalogues (`--subscribe TRACKER_URL[#GLOB]`) |
//! | `magnet` | torrents added from a magnet link, until their metadata arrives |

pub mod api;
pub mod dht_view;
pub mod error;
mod magnet;
pub mod metrics;
pub mod page;
pub mod request;
pub mod store;
pub mod subscribe;
pub mod view;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::{InfoHash, Metainfo};
use minibit_core::priority::Priority;
use minibit_core::torrent::TorrentConfig;
use serde::Serialize;
use tokio::sync::{Mutex, broadcast, watch};

pub use error::DaemonError;
pub use request::{AddRequest, FileSelector};
use store::{Record, Store};
use subscribe::Subscription;
use view::{DetailView, TorrentView};

use crate::client::{
    AddMagnet, AddOptions, AddTorrent, Client, ClientConfig, TorrentDetail, TorrentHandle,
};
use magnet::Source;

/// Largest `.torrent` accepted (uploaded or fetched), bytes (10 MiB).
pub const MAX_TORRENT_BYTES: usize = 10 * 1024 * 1024;

/// Folder of the resume data inside the state folder.
pub const RESUME_DIR: &str = "resume";

/// Events buffered for a slow subscriber before it misses some.
const EVENT_BUFFER: usize = 256;

/// How a [`Daemon`] runs.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// The state folder (database, resume data, token); created if missing.
    pub state_dir: PathBuf,
    /// Every torrent's save folder is inside this one; created if missing.
    pub download_root: PathBuf,
    /// The client (listen address, limits).
    pub client: ClientConfig,
}

/// A torrent added or removed, as pushed on `/api/events`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum DaemonEvent {
    /// A torrent was added.
    Added {
        /// Its info-hash, 40 hex digits.
        info_hash: String,
        /// Its name.
        name: String,
    },
    /// A torrent was removed.
    Removed {
        /// Its info-hash, 40 hex digits.
        info_hash: String,
    },
}

/// One torrent of the daemon.
struct Entry {
    handle: TorrentHandle,
    /// `None` while a magnet link fetches its metadata.
    metainfo: Option<Metainfo>,
    record: Record,
    /// Why it stopped, once it did.
    error: Option<String>,
}

/// A running daemon: a [`Client`] and the torrents it keeps.
pub struct Daemon {
    client: Client,
    store: Store,
    root: PathBuf,
    resume_dir: PathBuf,
    /// In the order added; one lock so two requests never race on a torrent.
    torrents: Mutex<Vec<(InfoHash, Entry)>>,
    events: broadcast::Sender<DaemonEvent>,
    /// The subscriptions, as stored; followers watch it.
    subscriptions: watch::Sender<Vec<Subscription>>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Opens the state folder, starts the client and adds back every
    /// stored torrent (fast resume). A stored torrent that cannot be added
    /// back is logged and left in the database.
    ///
    /// # Errors
    /// [`DaemonError`]: the folders cannot be created, the database cannot
    /// be opened, the client cannot listen.
    pub async fn start(config: DaemonConfig) -> Result<Self, DaemonError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |e: std::io::Error| {
                DaemonError::Client(crate::ClientError::Storage {
                    dir: path,
                    source: e,
                })
            }
        };
        let resume_dir = config.state_dir.join(RESUME_DIR);
        std::fs::create_dir_all(&resume_dir).map_err(io(&resume_dir))?;
        std::fs::create_dir_all(&config.download_root).map_err(io(&config.download_root))?;
        let store = Store::open(&config.state_dir)?;
        let subscriptions = watch::channel(subscribe::stored(&store)?).0;
        let client = Client::start(config.client).await?;
        let daemon = Self {
            client,
            store,
            root: config.download_root,
            resume_dir,
            torrents: Mutex::new(Vec::new()),
            events: broadcast::channel(EVENT_BUFFER).0,
            subscriptions,
        };
        for record in daemon.store.all()? {
            let (name, info_hash) = (record.name.clone(), record.info_hash);
            if let Err(e) = daemon.restore(record).await {
                tracing::error!(%name, %info_hash, error = %e, "cannot add back a stored torrent");
            }
        }
        Ok(daemon)
    }

    /// The client's listen address for peers.
    pub fn peer_addr(&self) -> std::net::SocketAddr {
        self.client.local_addr()
    }

    /// The download root.
    pub fn download_root(&self) -> &Path {
        &self.root
    }

    /// Receives every added/removed event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DaemonEvent> {
        self.events.subscribe()
    }

    async fn restore(&self, record: Record) -> Result<(), DaemonError> {
        let source = Source::parse(&record.torrent)?;
        let mut torrents = self.torrents.lock().await;
        let entry = self.open(source, record).await?;
        torrents.push((entry.record.info_hash, entry));
        Ok(())
    }

    /// Adds `source` to the client as `record` says (save folder,
    /// priorities, paused).
    async fn open(&self, source: Source, record: Record) -> Result<Entry, DaemonError> {
        let options = AddOptions {
            state_dir: Some(self.resume_dir.clone()),
            torrent: TorrentConfig {
                file_priorities: record.priorities.clone(),
                ..TorrentConfig::default()
            },
            ..AddOptions::new(&record.save_dir)
        };
        let (handle, metainfo) = match source {
            Source::Metainfo(metainfo) => {
                let add = AddTorrent::with_options(metainfo.clone(), options);
                (self.client.add_torrent(add).await?, Some(metainfo))
            }
            Source::Magnet(magnet) => {
                let add = AddMagnet { magnet, options };
                (self.client.add_magnet(add).await?, None)
            }
        };
        let (upload, download) = self.store.limits(&record.info_hash)?;
        if upload != 0 || download != 0 {
            self.client
                .set_torrent_rate_limits(handle.id(), upload, download)
                .await?;
        }
        if record.paused {
            self.client.pause(handle.id()).await?;
        }
        Ok(Entry {
            handle,
            metainfo,
            record,
            error: None,
        })
    }

    /// Adds a torrent: checks the request, opens its files, stores it.
    /// Returns its info-hash. A magnet link fetches its metadata first
    /// (stored as the link until then, so a restart resumes the fetch).
    ///
    /// # Errors
    /// [`DaemonError`]: not a `.torrent` nor a magnet link (400), a bad
    /// selection or one with a magnet link (400), a save folder outside
    /// the download root (403), already added (409), the files cannot be
    /// opened (500).
    pub async fn add(&self, request: AddRequest) -> Result<InfoHash, DaemonError> {
        if request.torrent.len() > MAX_TORRENT_BYTES {
            return Err(DaemonError::TooLarge);
        }
        let source = Source::parse(&request.torrent)?;
        let save_dir = request::save_dir(&self.root, request.save_dir.as_deref())?;
        let priorities = match &source {
            Source::Metainfo(metainfo) => request::priorities(metainfo, &request.only)?,
            Source::Magnet(_) if request.only.is_empty() => Vec::new(),
            Source::Magnet(_) => {
                return Err(DaemonError::BadRequest(
                    "only needs the file list, which a magnet link does not carry: set file priorities once its metadata arrived".into(),
                ));
            }
        };
        let info_hash = source.info_hash();
        let mut torrents = self.torrents.lock().await;
        if torrents.iter().any(|(ih, _)| *ih == info_hash) {
            return Err(DaemonError::Duplicate(info_hash));
        }
        let record = Record {
            info_hash,
            name: source.name(),
            torrent: request.torrent,
            save_dir,
            priorities,
            paused: request.paused,
            added: unix_now(),
        };
        let entry = self.open(source, record).await?;
        if let Err(e) = self.store.put(&entry.record) {
            let _ = self.client.remove(entry.handle.id(), false).await;
            return Err(e.into());
        }
        tracing::info!(name = %entry.record.name, %info_hash, "added");
        let _ = self.events.send(DaemonEvent::Added {
            info_hash: info_hash.to_hex(),
            name: entry.record.name.clone(),
        });
        torrents.push((info_hash, entry));
        Ok(info_hash)
    }

    /// Every torrent, in the order added.
    ///
    /// # Errors
    /// [`DaemonError::Client`] when the client has shut down.
    pub async fn list(&self) -> Result<Vec<TorrentView>, DaemonError> {
        let mut torrents = self.torrents.lock().await;
        let statuses = self.client.list().await?;
        Ok(torrents
            .iter_mut()
            .map(|(_, entry)| {
                self.refresh(entry);
                let status = statuses.iter().find(|s| s.id == entry.handle.id());
                view(entry, status.map(|s| s.paused))
            })
            .collect())
    }

    /// The client's DHT (`GET /api/dht`).
    pub async fn dht(&self) -> dht_view::DhtView {
        dht_view::DhtView::new(self.client.dht_status().await)
    }

    /// The `/metrics` page (Prometheus text format).
    ///
    /// # Errors
    /// [`DaemonError::Client`] when the client has shut down.
    pub async fn metrics(&self) -> Result<String, DaemonError> {
        let list = self.list().await?;
        let pieces =
            self.client
                .list()
                .await?
                .iter()
                .fold(metrics::PieceCounts::default(), |sum, s| {
                    metrics::PieceCounts {
                        verified: sum.verified + u64::from(s.progress.pieces_have),
                        failed: sum.failed + s.progress.pieces_failed,
                    }
                });
        Ok(metrics::render(&list, pieces))
    }

    /// One torrent with its files and piece map.
    ///
    /// # Errors
    /// [`DaemonError::Unknown`] (404); [`DaemonError::Client`].
    pub async fn detail(&self, info_hash: InfoHash) -> Result<DetailView, DaemonError> {
        let mut torrents = self.torrents.lock().await;
        let entry = find(&mut torrents, info_hash)?;
        self.refresh(entry);
        let status = self.client.list().await?;
        let paused = status
            .iter()
            .find(|s| s.id == entry.handle.id())
            .map(|s| s.paused);
        let torrent = view(entry, paused);
        let metainfo = entry
            .metainfo
            .as_ref()
            .ok_or(DaemonError::NoMetadata(info_hash))?;
        let detail = self
            .client
            .detail(entry.handle.id())
            .await
            .unwrap_or_else(|_| stopped_detail(metainfo, &entry.record.priorities));
        Ok(DetailView::new(torrent, metainfo, &detail))
    }

    /// Sets a torrent's own rate limits, payload bytes/s (0 = unlimited;
    /// `None` keeps that one), applied under the global ones and kept
    /// across restarts.
    ///
    /// # Errors
    /// [`DaemonError::Unknown`] (404); [`DaemonError::Client`],
    /// [`DaemonError::Store`].
    pub async fn set_limits(
        &self,
        info_hash: InfoHash,
        upload: Option<u64>,
        download: Option<u64>,
    ) -> Result<(), DaemonError> {
        let torrents = self.torrents.lock().await;
        let index = position(&torrents, info_hash)?;
        let (old_upload, old_download) = self.store.limits(&info_hash)?;
        let limits = (
            upload.unwrap_or(old_upload),
            download.unwrap_or(old_download),
        );
        self.store.set_limits(&info_hash, limits)?;
        let id = torrents[index].1.handle.id();
        self.client
            .set_torrent_rate_limits(id, limits.0, limits.1)
            .await?;
        Ok(())
    }

    /// Pauses (`true`) or resumes (`false`) a torrent; kept across restarts.
    ///
    /// # Errors
    /// [`DaemonError::Unknown`] (404); [`DaemonError::Client`],
    /// [`DaemonError::Store`].
    pub async fn set_paused(&self, info_hash: InfoHash, paused: bool) -> Result<(), DaemonError> {
        let mut torrents = self.torrents.lock().await;
        let entry = find(&mut torrents, info_hash)?;
        let id = entry.handle.id();
        if paused {
            self.client.pause(id).await?;
        } else {
            self.client.resume(id).await?;
        }
        entry.record.paused = paused;
        self.store.set_paused(&info_hash, paused)?;
        Ok(())
    }

    /// Sets a torrent's file priorities: the torrent is taken out of the
    /// client (its resume data saved) and added back with them, so files
    /// no longer skipped are created and their pieces fetched; pieces of
    /// unchanged files are not re-hashed.
    ///
    /// # Errors
    /// [`DaemonError::BadRequest`] when `priorities` does not have one
    /// entry per file (400); [`DaemonError::Unknown`] (404);
    /// [`DaemonError::Client`], [`DaemonError::Store`].
    pub async fn set_priorities(
        &self,
        info_hash: InfoHash,
        priorities: Vec<Priority>,
    ) -> Result<(), DaemonError> {
        let mut torrents = self.torrents.lock().await;
        let index = position(&torrents, info_hash)?;
        self.refresh(&mut torrents[index].1);
        let files = torrents[index]
            .1
            .metainfo
            .as_ref()
            .ok_or(DaemonError::NoMetadata(info_hash))?
            .info()
            .files()
            .len();
        if priorities.len() != files {
            return Err(DaemonError::BadRequest(format!(
                "give one priority per file: the torrent has {files} files, not {}",
                priorities.len()
            )));
        }
        let (_, entry) = torrents.remove(index);
        let _ = self.client.remove(entry.handle.id(), false).await;
        let record = Record {
            priorities,
            ..entry.record
        };
        self.store.set_priorities(&info_hash, &record.priorities)?;
        let metainfo = entry.metainfo.ok_or(DaemonError::NoMetadata(info_hash))?;
        let reopened = self.open(Source::Metainfo(metainfo), record).await?;
        torrents.insert(index, (info_hash, reopened));
        Ok(())
    }

    /// Removes a torrent (its resume data is deleted with it); with
    /// `delete_data`, its files too.
    ///
    /// # Errors
    /// [`DaemonError::Unknown`] (404); [`DaemonError::Client`] when its
    /// files cannot be deleted, [`DaemonError::Store`].
    pub async fn remove(&self, info_hash: InfoHash, delete_data: bool) -> Result<(), DaemonError> {
        let mut torrents = self.torrents.lock().await;
        let index = position(&torrents, info_hash)?;
        let (_, entry) = torrents.remove(index);
        self.store.delete(&info_hash)?;
        let removed = self.client.remove(entry.handle.id(), delete_data).await;
        if !delete_data {
            let resume = crate::resume_data::resume_path(&self.resume_dir, &info_hash);
            let _ = tokio::fs::remove_file(resume).await;
            let saved = crate::resume_data::torrent_path(&self.resume_dir, &info_hash);
            let _ = tokio::fs::remove_file(saved).await;
        }
        tracing::info!(name = %entry.record.name, %info_hash, delete_data, "removed");
        let _ = self.events.send(DaemonEvent::Removed {
            info_hash: info_hash.to_hex(),
        });
        match removed {
            Ok(()) | Err(crate::ClientError::Torrent(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A magnet link whose metadata arrived: its entry and its row take
    /// the `.torrent` the client saved (a failure to store it is logged;
    /// a restart then finds the saved `.torrent` all the same).
    fn refresh(&self, entry: &mut Entry) {
        if entry.metainfo.is_some() || entry.handle.progress().borrow().fetching_metadata {
            return;
        }
        let info_hash = entry.record.info_hash;
        let Some((metainfo, bytes)) = magnet::saved_torrent(&self.resume_dir, &info_hash) else {
            return;
        };
        metainfo.info().name().clone_into(&mut entry.record.name);
        entry.record.torrent = bytes;
        if let Err(e) = self.store.put(&entry.record) {
            tracing::warn!(%info_hash, "cannot store the metadata of a magnet link: {e}");
        }
        entry.metainfo = Some(metainfo);
    }

    /// Stops the client (every torrent announces `stopped`, resume data
    /// saved).
    ///
    /// # Errors
    /// The [`DaemonError::Client`] that ended the client, if one did.
    pub async fn shutdown(self) -> Result<(), DaemonError> {
        self.client.shutdown().await?;
        Ok(())
    }
}

/// The list view of `entry`; `paused` is the client's flag, `None` when
/// the torrent left the client (an error stopped it).
fn view(entry: &mut Entry, paused: Option<bool>) -> TorrentView {
    if paused.is_none() && entry.error.is_none() {
        entry.error = Some(entry.handle.take_error().map_or_else(
            || "stopped".to_owned(),
            |e| {
                crate::error_report::report(&anyhow::Error::new(e), false)
                    .trim_start_matches("error: ")
                    .to_owned()
            },
        ));
    }
    let progress = entry.handle.progress().borrow().clone();
    let (paused, save_dir) = (
        paused.unwrap_or(entry.record.paused),
        entry.record.save_dir.display().to_string(),
    );
    match &entry.metainfo {
        Some(metainfo) => TorrentView::new(
            metainfo,
            &progress,
            paused,
            entry.error.as_deref(),
            &save_dir,
        ),
        None => TorrentView::fetching(
            &entry.record.info_hash,
            &entry.record.name,
            &progress,
            paused,
            entry.error.as_deref(),
            &save_dir,
        ),
    }
}

/// The detail of a torrent an error stopped: nothing verified is known
/// any more, no peer, no tracker.
fn stopped_detail(metainfo: &Metainfo, priorities: &[Priority]) -> TorrentDetail {
    let none = Bitfield::new(metainfo.layout().piece_count());
    TorrentDetail {
        have: none.clone(),
        downloading: none,
        availability: Vec::new(),
        distributed_copies: 0.0,
        file_priorities: priorities.to_vec(),
        peers: Vec::new(),
        trackers: Vec::new(),
        upload_limit: 0,
        download_limit: 0,
    }
}

fn position(torrents: &[(InfoHash, Entry)], info_hash: InfoHash) -> Result<usize, DaemonError> {
    torrents
        .iter()
        .position(|(ih, _)| *ih == info_hash)
        .ok_or(DaemonError::Unknown(info_hash))
}

fn find(
    torrents: &mut [(InfoHash, Entry)],
    info_hash: InfoHash,
) -> Result<&mut Entry, DaemonError> {
    let index = position(torrents, info_hash)?;
    Ok(&mut torrents[index].1)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
