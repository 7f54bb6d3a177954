//! The tracker as a service: what the API needs besides the registry and
//! the catalogue. The API token, the data folder published files go to,
//! the catalogue database (`--state`), the catalogue events pushed at
//! `/api/catalogue/events`, and the seeding sessions started at run time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use minibit_core::metainfo::InfoHash;
use minibit_peer::SessionHandle;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::catalogue::CatalogueEntry;
use crate::store::Store;
use crate::token::ApiToken;

/// Catalogue events buffered for a slow subscriber before it misses some.
const EVENT_BUFFER: usize = 256;

/// How the service side is set up.
#[derive(Debug, Default)]
pub struct ServiceConfig {
    /// The tracker's address: published torrents announce to
    /// `http://ADDR/announce` and are seeded on its IP. `None` refuses
    /// publications.
    pub tracker_addr: Option<SocketAddr>,
    /// The token state-changing requests must carry; `None` refuses them all.
    pub token: Option<ApiToken>,
    /// The folder published files are stored in; `None` accepts only
    /// `.torrent` publications.
    pub data_root: Option<PathBuf>,
    /// The catalogue database (`--state`); `None` keeps it in memory.
    pub store: Option<Store>,
}

/// A change of the catalogue, as sent on `/api/catalogue/events`
/// (`event: publish` or `event: remove`, the JSON in `data:`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CatalogueEvent {
    /// `publish` or `remove`.
    #[serde(skip)]
    pub kind: EventKind,
    /// The torrent's name.
    pub name: String,
    /// Its info-hash, 40 hex digits.
    pub info_hash: String,
    /// Total content size, bytes.
    pub size: u64,
    /// URL path of its `.torrent` on this tracker (gone after a removal).
    pub torrent: String,
}

/// What happened to a catalogue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Catalogued.
    Publish,
    /// Removed from the catalogue.
    Remove,
}

impl EventKind {
    /// The SSE event name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Remove => "remove",
        }
    }
}

impl CatalogueEvent {
    /// The event of `kind` for `entry`.
    pub fn new(kind: EventKind, entry: &CatalogueEntry) -> Self {
        Self {
            kind,
            name: entry.name.clone(),
            info_hash: entry.info_hash.to_hex(),
            size: entry.size,
            torrent: torrent_path(&entry.name),
        }
    }
}

/// URL path of the `.torrent` of the catalogued torrent `name`.
pub fn torrent_path(name: &str) -> String {
    format!(
        "/torrents/{}.torrent",
        percent_encoding::utf8_percent_encode(name, minibit_peer::catalogue::URL_ESCAPE)
    )
}

/// The service side of a tracker (see the module docs).
#[derive(Debug)]
pub struct Service {
    config: ServiceConfig,
    events: broadcast::Sender<CatalogueEvent>,
    /// Becomes `true` when the server shuts down: event streams end.
    closing: watch::Sender<bool>,
    sessions: Mutex<HashMap<InfoHash, SessionHandle>>,
    /// Payload bytes uploaded by seeding sessions already stopped.
    uploaded_by_stopped: AtomicU64,
}

impl Service {
    /// The service side set up by `config`, seeding nothing yet.
    pub fn new(config: ServiceConfig) -> Self {
        Self {
            config,
            events: broadcast::channel(EVENT_BUFFER).0,
            closing: watch::channel(false).0,
            sessions: Mutex::new(HashMap::new()),
            uploaded_by_stopped: AtomicU64::new(0),
        }
    }

    /// The tracker's address.
    pub fn tracker_addr(&self) -> Option<SocketAddr> {
        self.config.tracker_addr
    }

    /// The API token, if any is set.
    pub fn token(&self) -> Option<&ApiToken> {
        self.config.token.as_ref()
    }

    /// The data folder, if any.
    pub fn data_root(&self) -> Option<&Path> {
        self.config.data_root.as_deref()
    }

    /// The catalogue database, with `--state`.
    pub fn store(&self) -> Option<&Store> {
        self.config.store.as_ref()
    }

    /// Receives every catalogue event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CatalogueEvent> {
        self.events.subscribe()
    }

    /// Resolves once [`Service::close_events`] was called.
    pub fn events_closed(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut closing = self.closing.subscribe();
        async move {
            let _ = closing.wait_for(|closed| *closed).await;
        }
    }

    /// Ends every event stream (before a graceful shutdown, which waits
    /// for open connections).
    pub fn close_events(&self) {
        self.closing.send_replace(true);
    }

    /// Sends `event` to the subscribers (none: dropped).
    pub fn notify(&self, event: CatalogueEvent) {
        let _ = self.events.send(event);
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<InfoHash, SessionHandle>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps the seeding `session` of `info_hash` (stopped by
    /// [`Service::stop_seeding`] or [`Service::shutdown`]).
    pub fn keep_session(&self, info_hash: InfoHash, session: SessionHandle) {
        self.sessions().insert(info_hash, session);
    }

    /// Whether `info_hash` is being seeded.
    pub fn seeds(&self, info_hash: &InfoHash) -> bool {
        self.sessions().contains_key(info_hash)
    }

    /// Stops seeding `info_hash` (the session announces `stopped`, waiting
    /// at most 2 s for the tracker); returns whether it was seeded.
    pub async fn stop_seeding(&self, info_hash: &InfoHash) -> bool {
        let Some(session) = self.sessions().remove(info_hash) else {
            return false;
        };
        self.stop(*info_hash, session).await;
        true
    }

    async fn stop(&self, info_hash: InfoHash, session: SessionHandle) {
        let uploaded = session.progress().borrow().uploaded;
        self.uploaded_by_stopped
            .fetch_add(uploaded, Ordering::Relaxed);
        if let Err(e) = session.shutdown().await {
            tracing::warn!(%info_hash, error = %e, "seeder ended with an error");
        }
    }

    /// Stops every seeding session.
    pub async fn shutdown(&self) {
        let sessions: Vec<_> = self.sessions().drain().collect();
        for (info_hash, session) in sessions {
            self.stop(info_hash, session).await;
        }
    }

    /// Payload bytes uploaded by the embedded seeders since start, bytes.
    pub fn uploaded(&self) -> u64 {
        let running: u64 = self
            .sessions()
            .values()
            .map(|s| s.progress().borrow().uploaded)
            .sum();
        running + self.uploaded_by_stopped.load(Ordering::Relaxed)
    }
}
