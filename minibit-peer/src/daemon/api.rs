//! The daemon's HTTP API (axum) under `/api/`, and its page at `/` (with
//! its scripts `/common.js` and `/index.js`).
//!
//! - `POST /api/torrents`: a `.torrent` as the body
//!   (`Content-Type: application/x-bittorrent`, options in the query:
//!   `?save_dir=DIR&only=GLOB&only=INDEX&paused=true`), or JSON
//!   `{"uri": "http(s)://..." or "magnet:?...", "save_dir", "only": [GLOB
//!   or INDEX], "paused"}`. `201` with `{"info_hash"}`. A magnet link
//!   (BEP 9) fetches its metadata from peers first (state
//!   `fetching_metadata`); `only` needs the file list, so not with one.
//! - `GET /api/torrents`: every torrent ([`super::view::TorrentView`]).
//! - `GET /api/torrents/{info_hash}`: one, with files and piece map
//!   ([`super::view::DetailView`]).
//! - `POST /api/torrents/{info_hash}/pause` and `.../resume`: `204`.
//! - `PATCH /api/torrents/{info_hash}` with `{"priorities": ["normal",
//!   "skip", "high", ...]}` (one per file) and/or `{"upload_limit": B,
//!   "download_limit": B}` (bytes/s, 0 = unlimited): `204`.
//! - `DELETE /api/torrents/{info_hash}[?delete_data=true]`: `204`.
//! - `GET /api/subscriptions`: `[{"tracker", "glob"}]` (see
//!   [`super::subscribe`]); `POST` with `{"tracker": URL, "glob": GLOB}`
//!   (`glob` optional: every publication) subscribes, `201` (`409` when
//!   subscribed already); `DELETE ?tracker=URL[&glob=GLOB]` unsubscribes,
//!   `204`, the torrents it added stay.
//! - `GET /api/events`: server-sent events: `event: progress` once a
//!   second with the list, `event: added` with `{"event": "added",
//!   "info_hash", "name"}`, `event: removed` with `{"event": "removed",
//!   "info_hash"}`, `event: lagged` when a slow reader missed some.
//! - `GET /api/dht`: the Mainline DHT node, its routing table, lookups in
//!   flight, peers found per torrent ([`super::dht_view::DhtView`]).
//! - `GET /metrics`: Prometheus text format (see [`super::metrics`]).
//!
//! State-changing requests need `Authorization: Bearer TOKEN`; every route
//! refuses a cross-origin request. Errors are `{"error": "..."}` with 400
//! (malformed), 401 (no or bad token), 403 (cross-origin, save folder
//! outside the download root), 404 (unknown info-hash), 409 (already
//! added), 413 (`.torrent` over 10 MiB), 415 (neither a `.torrent` nor
//! JSON) or 500.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use futures::{Stream, StreamExt as _};
use minibit_core::metainfo::InfoHash;
use serde::Deserialize;
use tokio::sync::{broadcast, watch};

use super::page;
use super::request::{AddRequest, FileSelector};
use super::subscribe::Subscription;
use super::view::{DetailView, FilePriority, TorrentView};
use super::{Daemon, DaemonError, MAX_TORRENT_BYTES};
use crate::http_api::{
    ApiError, PAGE_COMMON_SCRIPT, check_bearer, javascript, read_bounded, same_origin_only,
};
use crate::token::ApiToken;

/// The media type of a `.torrent` body.
pub const TORRENT_TYPE: &str = "application/x-bittorrent";

/// What every route shares.
#[derive(Debug)]
pub struct ApiState {
    daemon: Daemon,
    token: ApiToken,
    closing: watch::Sender<bool>,
}

impl ApiState {
    /// The API of `daemon`, guarded by `token`.
    pub fn new(daemon: Daemon, token: ApiToken) -> Self {
        Self {
            daemon,
            token,
            closing: watch::channel(false).0,
        }
    }

    /// The daemon.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Ends every event stream (before a graceful shutdown, which waits
    /// for open connections).
    pub fn close_events(&self) {
        self.closing.send_replace(true);
    }

    /// Gives the daemon back once every clone of the state is dropped.
    pub fn into_daemon(self) -> Daemon {
        self.daemon
    }
}

impl From<DaemonError> for ApiError {
    fn from(e: DaemonError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(error = %e, "API request failed");
        }
        Self::new(status, crate::error_chain::one_line(&e))
    }
}

/// The routes (see the module docs), behind the same-origin guard.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/index.js", get(script))
        .route("/common.js", get(common_script))
        .route(
            "/api/torrents",
            post(add).get(list).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/torrents/{info_hash}",
            get(detail).patch(patch).delete(remove),
        )
        .route("/api/torrents/{info_hash}/pause", post(pause))
        .route("/api/torrents/{info_hash}/resume", post(resume))
        .route(
            "/api/subscriptions",
            get(subscriptions).post(subscribe).delete(unsubscribe),
        )
        .route("/api/events", get(events))
        .route("/api/dht", get(dht))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn(same_origin_only))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` resolves, then
/// ends the event streams and waits for open requests.
///
/// # Errors
/// When accepting connections fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ApiState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = Arc::clone(&state);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.close_events();
        })
        .await
}

async fn index() -> Response {
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            page::CONTENT_SECURITY_POLICY,
        )],
        Html(page::PAGE),
    )
        .into_response()
}

async fn script() -> Response {
    javascript(page::SCRIPT)
}

async fn common_script() -> Response {
    javascript(PAGE_COMMON_SCRIPT)
}

fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    check_bearer(headers, Some(&state.token))
}

fn parse_hash(text: &str) -> Result<InfoHash, ApiError> {
    InfoHash::from_hex(text).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{text:?} is not an info-hash (40 hex digits)"),
        )
    })
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
}

/// The JSON form of `POST /api/torrents`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddJson {
    uri: String,
    save_dir: Option<String>,
    #[serde(default)]
    only: Vec<FileSelector>,
    #[serde(default)]
    paused: bool,
}

async fn add(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let authorized = authorize(&state, &headers);
    let body = read_bounded(&headers, body, MAX_TORRENT_BYTES).await?;
    authorized?;
    let request = match media_type(&headers).as_deref() {
        Some(TORRENT_TYPE) => {
            let Query(pairs) =
                query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
            torrent_request(body.to_vec(), &pairs)?
        }
        Some("application/json") => {
            let json: AddJson = serde_json::from_slice(&body)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
            AddRequest {
                torrent: torrent_of(&json.uri).await?,
                save_dir: json.save_dir,
                only: json.only,
                paused: json.paused,
            }
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("send a .torrent as {TORRENT_TYPE}, or JSON {{\"uri\": URL}}"),
            ));
        }
    };
    let info_hash = state.daemon.add(request).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "info_hash": info_hash.to_hex() })),
    ))
}

/// The add request of a `.torrent` body with the query's options.
fn torrent_request(torrent: Vec<u8>, pairs: &[(String, String)]) -> Result<AddRequest, ApiError> {
    let mut request = AddRequest {
        torrent,
        ..AddRequest::default()
    };
    for (key, value) in pairs {
        match key.as_str() {
            "save_dir" => request.save_dir = Some(value.clone()),
            "only" => request.only.push(
                value
                    .parse()
                    .map_or_else(|_| FileSelector::Glob(value.clone()), FileSelector::Index),
            ),
            "paused" => {
                request.paused = value.parse().map_err(|_| {
                    ApiError::new(StatusCode::BAD_REQUEST, "paused is true or false")
                })?;
            }
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("unknown parameter {other:?} (save_dir, only, paused)"),
                ));
            }
        }
    }
    Ok(request)
}

/// The add request's torrent for `uri`: a magnet link as it is (parsed
/// by the daemon), or the `.torrent` GOT from an http(s) URL (at most 10
/// MiB).
async fn torrent_of(uri: &str) -> Result<Vec<u8>, DaemonError> {
    if uri.starts_with("magnet:") {
        return Ok(uri.as_bytes().to_vec());
    }
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return Err(DaemonError::BadRequest(format!(
            "{uri:?} is neither an http(s) URL of a .torrent nor a magnet link"
        )));
    }
    let fetch_error = |reason: String| DaemonError::Fetch {
        url: uri.to_owned(),
        reason,
    };
    let client =
        crate::http::client(Duration::from_secs(30)).map_err(|e| fetch_error(e.to_string()))?;
    crate::http::get_bounded(&client, uri, MAX_TORRENT_BYTES)
        .await
        .map_err(|e| match e {
            crate::http::FetchError::TooLarge(_) => DaemonError::TooLarge,
            other => fetch_error(other.to_string()),
        })
}

async fn metrics(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let page = state.daemon.metrics().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        page,
    )
        .into_response())
}

async fn dht(State(state): State<Arc<ApiState>>) -> Json<super::dht_view::DhtView> {
    Json(state.daemon.dht().await)
}

async fn list(State(state): State<Arc<ApiState>>) -> Result<Json<Vec<TorrentView>>, ApiError> {
    Ok(Json(state.daemon.list().await?))
}

async fn detail(
    State(state): State<Arc<ApiState>>,
    Path(info_hash): Path<String>,
) -> Result<Json<DetailView>, ApiError> {
    let info_hash = parse_hash(&info_hash)?;
    Ok(Json(state.daemon.detail(info_hash).await?))
}

async fn pause(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(info_hash): Path<String>,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &headers)?;
    state
        .daemon
        .set_paused(parse_hash(&info_hash)?, true)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn resume(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(info_hash): Path<String>,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &headers)?;
    state
        .daemon
        .set_paused(parse_hash(&info_hash)?, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `PATCH /api/torrents/{info_hash}`: at least one field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    priorities: Option<Vec<FilePriority>>,
    /// Bytes/s, 0 = unlimited.
    upload_limit: Option<u64>,
    /// Bytes/s, 0 = unlimited.
    download_limit: Option<u64>,
}

async fn patch(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(info_hash): Path<String>,
    patch: Result<Json<Patch>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &headers)?;
    let info_hash = parse_hash(&info_hash)?;
    // A body that is not the shape above is malformed (400), not axum's 422.
    let Json(patch) = patch.map_err(|e| {
        let status = match e.status() {
            s @ (StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::PAYLOAD_TOO_LARGE) => s,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.body_text())
    })?;
    let limits = patch.upload_limit.is_some() || patch.download_limit.is_some();
    if patch.priorities.is_none() && !limits {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "give \"priorities\", \"upload_limit\" or \"download_limit\"",
        ));
    }
    if limits {
        state
            .daemon
            .set_limits(info_hash, patch.upload_limit, patch.download_limit)
            .await?;
    }
    if let Some(priorities) = patch.priorities {
        let priorities = priorities.into_iter().map(Into::into).collect();
        state.daemon.set_priorities(info_hash, priorities).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `?delete_data=` of `DELETE /api/torrents/{info_hash}`.
#[derive(Deserialize)]
struct RemoveQuery {
    #[serde(default)]
    delete_data: bool,
}

async fn remove(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(info_hash): Path<String>,
    query: Result<Query<RemoveQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &headers)?;
    let info_hash = parse_hash(&info_hash)?;
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    state.daemon.remove(info_hash, query.delete_data).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Seconds between two `progress` events.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

async fn events(
    State(state): State<Arc<ApiState>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = futures::stream::unfold(state.daemon.subscribe(), |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(event) => {
                let kind = match &event {
                    super::DaemonEvent::Added { .. } => "added",
                    super::DaemonEvent::Removed { .. } => "removed",
                };
                Event::default()
                    .event(kind)
                    .json_data(&event)
                    .unwrap_or_default()
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Event::default().event("lagged").data(missed.to_string())
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), receiver))
    });
    let ticks = tokio::time::interval(PROGRESS_EVERY);
    let progress = futures::stream::unfold(
        (ticks, Arc::clone(&state)),
        |(mut ticks, state)| async move {
            ticks.tick().await;
            let list = state.daemon.list().await.ok()?;
            let event = Event::default()
                .event("progress")
                .json_data(&list)
                .unwrap_or_default();
            Some((Ok(event), (ticks, state)))
        },
    );
    let mut closing = state.closing.subscribe();
    let closed = async move {
        let _ = closing.wait_for(|closed| *closed).await;
    };
    let stream = futures::stream::select(changes, progress).take_until(closed);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn subscriptions(State(state): State<Arc<ApiState>>) -> Json<Vec<Subscription>> {
    Json(state.daemon.subscriptions())
}

async fn subscribe(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    subscription: Result<Json<Subscription>, JsonRejection>,
) -> Result<(StatusCode, Json<Subscription>), ApiError> {
    authorize(&state, &headers)?;
    let Json(subscription) = subscription.map_err(|e| {
        let status = match e.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.body_text())
    })?;
    if !state.daemon.add_subscription(subscription.clone())? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("already subscribed to {subscription}"),
        ));
    }
    Ok((StatusCode::CREATED, Json(subscription)))
}

async fn unsubscribe(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    subscription: Result<Query<Subscription>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &headers)?;
    let Query(subscription) = subscription?;
    state.daemon.remove_subscription(&subscription)?;
    Ok(StatusCode::NO_CONTENT)
}
