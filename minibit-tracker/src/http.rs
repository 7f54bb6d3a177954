//! The HTTP side: `/announce` and `/scrape` (BEP 3, BEP 23, BEP 48) over
//! the [`Registry`], the catalogue routes `/torrents` and
//! `/torrents/{name}.torrent`, every swarm at `/swarms`, and a plain HTML
//! page at `/`.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use minibit_core::metainfo::InfoHash;
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::{AnnounceRequest, ScrapeRequest, encode_failure};
use minibit_peer::PeerSink;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::activity::Activity;
use crate::catalogue::Catalogue;
use crate::index;
use crate::registry::{Registry, RegistryConfig};

/// How often [`serve`] drops stale peers from the registry.
const EXPIRY_PERIOD: Duration = Duration::from_secs(60);

/// How long after a leecher's announce it is handed to the embedded seeder.
const HANDOVER_DELAY: Duration = Duration::from_secs(2);

/// What the HTTP handlers share: the swarm registry and the catalogue.
/// Both locks are held only for in-memory work, never across an `.await`.
#[derive(Debug)]
pub struct TrackerState {
    registry: Mutex<Registry>,
    catalogue: RwLock<Catalogue>,
    /// The embedded seeder of each info-hash this tracker seeds.
    seeders: Mutex<HashMap<InfoHash, PeerSink>>,
    /// Announces counted for the log's summary line.
    activity: Activity,
    /// Interval between two summary lines in the log.
    summary_interval: Duration,
}

/// Default interval between two summary lines in the log.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

impl TrackerState {
    /// A tracker with an empty registry and catalogue, logging a summary
    /// line every [`SUMMARY_INTERVAL`] (60 s).
    pub fn new(config: RegistryConfig) -> Self {
        Self {
            registry: Mutex::new(Registry::new(config)),
            catalogue: RwLock::new(Catalogue::new()),
            seeders: Mutex::new(HashMap::new()),
            activity: Activity::default(),
            summary_interval: SUMMARY_INTERVAL,
        }
    }

    /// Sets the interval between two summary lines of [`serve`]'s log
    /// (announces received, swarms, seeders, leechers), at least 1 s.
    #[must_use]
    pub fn with_summary_interval(mut self, interval: Duration) -> Self {
        self.summary_interval = interval.max(Duration::from_secs(1));
        self
    }

    /// The interval between two summary lines.
    pub fn summary_interval(&self) -> Duration {
        self.summary_interval
    }

    /// Registers the embedded seeder of `info_hash`: from now on every
    /// leecher announcing it (any event but `stopped`) is handed to
    /// `seeder` 2 s later, which dials it unless it is already connected. Peers that only accept connections
    /// (Transmission ignores loopback peers from a tracker) are thus
    /// reached without waiting for the seeder's next announce.
    pub fn add_seeder(&self, info_hash: InfoHash, seeder: PeerSink) {
        self.seeders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(info_hash, seeder);
    }

    /// Hands the client of `req` (from `remote_ip`) to the embedded seeder
    /// of its info-hash, if there is one and the client is a leecher that
    /// is not leaving.
    pub(crate) fn tell_seeder(&self, req: &AnnounceRequest, remote_ip: IpAddr) {
        if req.left == 0 || req.event == AnnounceEvent::Stopped {
            return;
        }
        let seeders = self.seeders.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(seeder) = seeders.get(&req.info_hash) {
            let (seeder, addr, peer_id) = (
                seeder.clone(),
                Registry::announcer_addr(req, remote_ip),
                req.peer_id,
            );
            // Most clients dial the seeder they were just told about: give
            // them time to, so the two do not dial each other at once.
            tokio::spawn(async move {
                tokio::time::sleep(HANDOVER_DELAY).await;
                seeder.add_peer(addr, peer_id);
            });
        }
    }

    /// The swarm registry.
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The catalogue, for reading.
    pub fn catalogue(&self) -> RwLockReadGuard<'_, Catalogue> {
        self.catalogue
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The catalogue, for adding torrents.
    pub fn catalogue_mut(&self) -> RwLockWriteGuard<'_, Catalogue> {
        self.catalogue
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The tracker's routes. Needs the connection's address
/// (`into_make_service_with_connect_info::<SocketAddr>`), as [`serve`] sets up:
///
/// - `GET /announce?...` (BEP 3): always `200` with a bencoded body, either
///   the peer list (compact BEP 23 + BEP 7 `peers6` when `compact=1`, else
///   dictionaries) or `failure reason` naming the bad parameter. The peer's
///   address is the connection's; a claimed `ip` counts only from loopback
///   or private networks (see [`Registry::announce`]);
/// - `GET /scrape?info_hash=...` (BEP 48): counts per info-hash;
/// - `GET /torrents[?q=text]`: JSON array of the catalogue (`name`,
///   `info_hash` in hex, `size` and `piece_length` in bytes, `seeders`,
///   `leechers`, `completed`, `magnet`: the BEP 9 link with `xt`, `dn`, `tr`),
///   filtered by a case-insensitive substring of the name;
/// - `GET /torrents/{name}.torrent`: the `.torrent` file
///   (`application/x-bittorrent`), `404` for unknown names;
/// - `GET /swarms`: JSON array of every swarm announcing here, catalogued
///   or not (`info_hash` in hex, `seeders`, `leechers`, `completed`, and
///   `name` and `torrent` (its URL path) or `null` when this tracker has no
///   `.torrent` for it);
/// - `GET /`: an HTML page of the same, with links.
pub fn router(state: Arc<TrackerState>) -> Router {
    Router::new()
        .route("/", get(index_page))
        .route("/swarms", get(list_swarms))
        .route("/announce", get(announce))
        .route("/scrape", get(scrape))
        .route("/torrents", get(list_torrents))
        .route("/torrents/{file}", get(torrent_file))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` resolves, expiring
/// stale peers every minute and logging a summary line (INFO) every
/// [`TrackerState::summary_interval`].
///
/// # Errors
/// An I/O error from the listener.
pub async fn serve(
    listener: TcpListener,
    state: Arc<TrackerState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let expiry = tokio::spawn({
        let state = Arc::clone(&state);
        async move {
            let mut tick = tokio::time::interval(EXPIRY_PERIOD);
            loop {
                tick.tick().await;
                state.registry().expire(Instant::now());
            }
        }
    });
    let summary = tokio::spawn({
        let state = Arc::clone(&state);
        async move {
            let period = state.summary_interval;
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                let swarms = state.registry().swarms();
                tracing::info!("{}", state.activity.summary(&swarms));
            }
        }
    });
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    expiry.abort();
    summary.abort();
    result
}

/// A bencoded tracker response (always `200`, as clients expect).
fn bencoded(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

async fn announce(
    State(state): State<Arc<TrackerState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Response {
    match AnnounceRequest::parse_query(query.as_deref().unwrap_or("")) {
        Ok(req) => {
            let (resp, new_swarm) = {
                let mut registry = state.registry();
                let known = registry.tracks(&req.info_hash);
                let resp = registry.announce(Instant::now(), &req, remote.ip());
                (resp, !known && registry.tracks(&req.info_hash))
            };
            state.activity.announced(&req, remote, new_swarm);
            state.tell_seeder(&req, remote.ip());
            tracing::debug!(
                info_hash = %req.info_hash, %remote, event = ?req.event, left = req.left,
                peers = resp.peers.len(), "announce"
            );
            bencoded(resp.encode(req.compact))
        }
        Err(e) => {
            tracing::debug!(%remote, error = %e, "bad announce");
            bencoded(encode_failure(&e.to_string()))
        }
    }
}

async fn scrape(State(state): State<Arc<TrackerState>>, RawQuery(query): RawQuery) -> Response {
    match ScrapeRequest::parse_query(query.as_deref().unwrap_or("")) {
        Ok(req) => bencoded(state.registry().scrape(&req.info_hashes).encode()),
        Err(e) => bencoded(encode_failure(&e.to_string())),
    }
}

/// `?q=` of `/torrents`.
#[derive(Deserialize)]
struct Search {
    q: Option<String>,
}

/// One element of the `/torrents` JSON array.
#[derive(Serialize)]
struct Listing {
    name: String,
    info_hash: String,
    size: u64,
    piece_length: u64,
    seeders: u32,
    leechers: u32,
    completed: u64,
    /// BEP 9 magnet link (`xt`, `dn`, `tr`).
    magnet: Option<String>,
}

async fn list_torrents(
    State(state): State<Arc<TrackerState>>,
    Query(search): Query<Search>,
) -> Json<Vec<Listing>> {
    let catalogue = state.catalogue();
    let registry = state.registry();
    let listing = catalogue
        .search(search.q.as_deref().unwrap_or(""))
        .map(|e| {
            let stats = registry.stats(&e.info_hash);
            Listing {
                name: e.name.clone(),
                info_hash: e.info_hash.to_hex(),
                size: e.size,
                piece_length: e.piece_length,
                seeders: stats.complete,
                leechers: stats.incomplete,
                completed: stats.downloaded,
                magnet: crate::index::magnet_link(&e.torrent),
            }
        })
        .collect();
    Json(listing)
}

async fn torrent_file(
    State(state): State<Arc<TrackerState>>,
    Path(file): Path<String>,
) -> Response {
    let entry = file
        .strip_suffix(".torrent")
        .and_then(|name| state.catalogue().get(name).map(|e| e.torrent.clone()));
    match entry {
        Some(bytes) => {
            ([(header::CONTENT_TYPE, "application/x-bittorrent")], bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such torrent\n").into_response(),
    }
}

/// One element of the `/swarms` JSON array.
#[derive(Serialize)]
struct SwarmListing {
    info_hash: String,
    /// The catalogue name, `null` if not catalogued.
    name: Option<String>,
    /// URL path of the `.torrent`, `null` when this tracker has none.
    torrent: Option<String>,
    seeders: u32,
    leechers: u32,
    completed: u64,
}

async fn list_swarms(State(state): State<Arc<TrackerState>>) -> Json<Vec<SwarmListing>> {
    let catalogue = state.catalogue();
    let names: HashMap<InfoHash, &str> = catalogue
        .search("")
        .map(|e| (e.info_hash, e.name.as_str()))
        .collect();
    let swarms = state.registry().swarms();
    let listing = swarms
        .into_iter()
        .map(|(info_hash, stats)| {
            let name = names.get(&info_hash).map(|&n| n.to_owned());
            SwarmListing {
                info_hash: info_hash.to_hex(),
                torrent: name.as_deref().map(|n| {
                    format!(
                        "/torrents/{}.torrent",
                        percent_encoding::utf8_percent_encode(
                            n,
                            minibit_peer::catalogue::URL_ESCAPE
                        )
                    )
                }),
                name,
                seeders: stats.complete,
                leechers: stats.incomplete,
                completed: stats.downloaded,
            }
        })
        .collect();
    Json(listing)
}

async fn index_page(State(state): State<Arc<TrackerState>>) -> Html<String> {
    let catalogue = state.catalogue();
    let registry = state.registry();
    let catalogued: Vec<_> = catalogue
        .search("")
        .map(|e| (e, registry.stats(&e.info_hash)))
        .collect();
    let uncatalogued: Vec<_> = registry
        .swarms()
        .into_iter()
        .filter(|(h, _)| !catalogued.iter().any(|(e, _)| e.info_hash == *h))
        .collect();
    Html(index::render(&catalogued, &uncatalogued))
}
