//! The HTTP side: `/announce` and `/scrape` (BEP 3, BEP 23, BEP 48) over
//! the [`Registry`], the catalogue routes `/torrents` and
//! `/torrents/{name}.torrent`, every swarm at `/swarms`, and a plain HTML
//! page at `/`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use minibit_core::metainfo::InfoHash;
use minibit_core::tracker::{AnnounceRequest, ScrapeRequest, ScrapeStats, encode_failure};
use minibit_peer::http_api::{PAGE_COMMON_SCRIPT, javascript};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::catalogue::Catalogue;
use crate::counters::Protocol;
use crate::registry::Registry;
use crate::service::torrent_path;
use crate::{api, index, metrics};

pub use crate::state::{SUMMARY_INTERVAL, TrackerState};

/// How often [`serve`] drops stale peers from the registry.
const EXPIRY_PERIOD: Duration = Duration::from_secs(60);

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
///   `leechers`, `completed`, `announces_per_minute` (received in the last
///   60 s, estimated), `magnet`: the BEP 9 link with `xt`, `dn`, `tr`),
///   filtered by a case-insensitive substring of the name;
/// - `GET /torrents/{name}.torrent`: the `.torrent` file
///   (`application/x-bittorrent`), `404` for unknown names;
/// - `GET /swarms`: JSON array of every swarm announcing here, catalogued
///   or not (`info_hash` in hex, `seeders`, `leechers`, `completed`, and
///   `name` and `torrent` (its URL path) or `null` when this tracker has no
///   `.torrent` for it);
/// - `GET /metrics`: Prometheus text format (see [`crate::metrics`]);
/// - the JSON API under `/api/` (see [`crate::api`]);
/// - `GET /[?q=text]`: the HTML page of the same, with links, publish and
///   remove buttons (see [`index`]), and `GET /index.js` its script
///   (after `GET /common.js`, the script both programs' pages share).
///
/// A request whose `Origin` is not this server's own is refused with 403
/// on every route ([`api::same_origin_only`]).
pub fn router(state: Arc<TrackerState>) -> Router {
    Router::new()
        .route("/", get(index_page))
        .route("/index.js", get(index_script))
        .route("/common.js", get(common_script))
        .route("/metrics", get(metrics_page))
        .route("/swarms", get(list_swarms))
        .route("/announce", get(announce))
        .route("/scrape", get(scrape))
        .route("/torrents", get(list_torrents))
        .route("/torrents/{file}", get(torrent_file))
        .merge(api::routes())
        .layer(axum::middleware::from_fn(api::same_origin_only))
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
            let period = state.summary_interval();
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                let swarms = state.registry().swarms();
                tracing::info!("{}", state.activity().summary(&swarms));
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
            let (resp, new_swarm) =
                state.announce(Instant::now(), &req, remote.ip(), Protocol::Http);
            state.activity().announced(&req, remote, new_swarm);
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
    state.counters().scraped(Protocol::Http);
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
    /// Announces received in the last 60 s (estimated), to 0.01.
    announces_per_minute: f64,
    /// BEP 9 magnet link (`xt`, `dn`, `tr`).
    magnet: Option<String>,
}

/// The catalogue's entries whose name contains `query`, each with its
/// swarm's seeders and leechers and its announces per minute at `now`;
/// the completed downloads are the catalogue's count (kept with
/// `--state`).
fn catalogue_rows<'a>(
    catalogue: &'a Catalogue,
    registry: &Registry,
    query: &str,
    now: Instant,
) -> Vec<index::Row<'a>> {
    catalogue
        .search(query)
        .map(|entry| index::Row {
            entry,
            stats: ScrapeStats {
                downloaded: entry.completed,
                ..registry.stats(&entry.info_hash)
            },
            announces_per_minute: registry.announces_per_minute(&entry.info_hash, now),
        })
        .collect()
}

async fn list_torrents(
    State(state): State<Arc<TrackerState>>,
    Query(search): Query<Search>,
) -> Json<Vec<Listing>> {
    let catalogue = state.catalogue();
    let rows = catalogue_rows(
        &catalogue,
        &state.registry(),
        search.q.as_deref().unwrap_or(""),
        Instant::now(),
    );
    let listing = rows
        .into_iter()
        .map(|row| Listing {
            name: row.entry.name.clone(),
            info_hash: row.entry.info_hash.to_hex(),
            size: row.entry.size,
            piece_length: row.entry.piece_length,
            seeders: row.stats.complete,
            leechers: row.stats.incomplete,
            completed: row.stats.downloaded,
            announces_per_minute: (row.announces_per_minute * 100.0).round() / 100.0,
            magnet: index::magnet_link(&row.entry.torrent),
        })
        .collect();
    Json(listing)
}

async fn metrics_page(State(state): State<Arc<TrackerState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics::render(&state),
    )
        .into_response()
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
                torrent: name.as_deref().map(torrent_path),
                name,
                seeders: stats.complete,
                leechers: stats.incomplete,
                completed: stats.downloaded,
            }
        })
        .collect();
    Json(listing)
}

async fn index_page(
    State(state): State<Arc<TrackerState>>,
    Query(search): Query<Search>,
) -> Response {
    let query = search.q.unwrap_or_default();
    let catalogue = state.catalogue();
    let registry = state.registry();
    let catalogued = catalogue_rows(&catalogue, &registry, &query, Instant::now());
    let uncatalogued: Vec<_> = registry
        .swarms()
        .into_iter()
        .filter(|(h, _)| catalogue.get_by_hash(h).is_none())
        .collect();
    (
        [
            (
                header::CONTENT_SECURITY_POLICY,
                index::CONTENT_SECURITY_POLICY,
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(index::render(&catalogued, &uncatalogued, &query)),
    )
        .into_response()
}

async fn index_script() -> Response {
    javascript(index::SCRIPT)
}

async fn common_script() -> Response {
    javascript(PAGE_COMMON_SCRIPT)
}
