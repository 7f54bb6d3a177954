//! The tracker as a service: what the API needs besides the registry and
//! the catalogue. The API token, the data folder published files go to,
//! the catalogue database (`--state`), the catalogue events pushed at
//! `/api/catalogue/events`, and the embedded seeder: one client on one peer
//! port for every torrent seeded, started when the first one is.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use minibit_core::metainfo::InfoHash;
use serde::Serialize;
use tokio::sync::{OnceCell, broadcast, watch};

use crate::catalogue::CatalogueEntry;
use crate::seed::{SeedError, SeedOptions, SeedStatus, Seeder};
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
    /// TCP port of the embedded seeder on the tracker's IP, one for every
    /// torrent (0: a free port).
    pub peer_port: u16,
    /// Piece length of the torrents the seeder builds from files, bytes
    /// (a power of two, 16 KiB-16 MiB), or `None` to choose from the size.
    pub piece_length: Option<u32>,
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
    /// The embedded seeder, started by the first torrent seeded.
    seeder: OnceCell<Seeder>,
}

impl Service {
    /// The service side set up by `config`, seeding nothing yet.
    pub fn new(config: ServiceConfig) -> Self {
        Self {
            config,
            events: broadcast::channel(EVENT_BUFFER).0,
            closing: watch::channel(false).0,
            seeder: OnceCell::new(),
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

    /// The embedded seeder, started on the first call: it listens on the
    /// tracker's IP at [`ServiceConfig::peer_port`] and announces to
    /// `http://ADDR/announce`.
    ///
    /// # Errors
    /// [`SeedError::NoAddress`] without [`ServiceConfig::tracker_addr`];
    /// [`SeedError::Client`] when the peer port cannot be bound.
    pub async fn seeder(&self) -> Result<&Seeder, SeedError> {
        let addr = self.config.tracker_addr.ok_or(SeedError::NoAddress)?;
        self.seeder
            .get_or_try_init(|| {
                Seeder::start(SeedOptions {
                    tracker_url: format!("http://{addr}"),
                    listen: SocketAddr::new(addr.ip(), self.config.peer_port),
                    piece_length: self.config.piece_length,
                })
            })
            .await
    }

    /// Whether `info_hash` is being seeded.
    pub fn seeds(&self, info_hash: &InfoHash) -> bool {
        self.seeder.get().is_some_and(|s| s.seeds(info_hash))
    }

    /// What the embedded seeder sees of `info_hash` (see
    /// [`Seeder::status`]); `None` when it does not seed it.
    pub async fn seed_status(&self, info_hash: &InfoHash) -> Option<SeedStatus> {
        self.seeder.get()?.status(info_hash).await
    }

    /// Stops seeding `info_hash` (it announces `stopped`); returns whether
    /// it was seeded.
    pub async fn stop_seeding(&self, info_hash: &InfoHash) -> bool {
        match self.seeder.get() {
            Some(seeder) => seeder.remove(*info_hash).await.is_ok(),
            None => false,
        }
    }

    /// Stops the embedded seeder: every torrent announces `stopped`
    /// (waiting at most 2 s in all for the tracker).
    pub async fn shutdown(&self) {
        if let Some(Err(e)) =
            futures::future::OptionFuture::from(self.seeder.get().map(Seeder::shutdown)).await
        {
            tracing::warn!(error = %e, "the seeder ended with an error");
        }
    }

    /// Payload bytes uploaded by the embedded seeder since start, bytes.
    pub fn uploaded(&self) -> u64 {
        self.seeder.get().map_or(0, Seeder::uploaded)
    }
}
