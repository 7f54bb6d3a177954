//! The JSON API under `/api/`, and the guard every route sits behind.
//!
//! - `POST /api/publish?name=NAME` with the file as the body: stored as
//!   `DATA/NAME` (streamed; never overwrites), hashed, catalogued, seeded.
//!   `201` with `{"name", "info_hash", "size", "torrent", "seeded"}`.
//! - `POST /api/publish` with `Content-Type: application/x-bittorrent`: a
//!   `.torrent` alone (at most 10 MiB), catalogued, seeded only if its data
//!   is in the data folder. Same answer.
//! - `GET /api/torrents/{info_hash}`: what the embedded seeder sees of a
//!   torrent it seeds ([`crate::seed::SeedStatus`]: `upload_rate` in
//!   bytes/s, `uploaded`, `peers`, and `availability`, the copies of each
//!   piece among its peers); 404 when it does not seed it.
//! - `DELETE /api/torrents/{info_hash}[?delete_data=true]`: `200` with
//!   `{"name", "info_hash", "data_deleted"}`.
//! - `GET /api/catalogue/events`: server-sent events, `event: publish` or
//!   `event: remove` with `{"name", "info_hash", "size", "torrent"}`;
//!   `event: lagged` with the number of events a slow subscriber missed
//!   (read `/torrents` again).
//!
//! The two state-changing routes need `Authorization: Bearer TOKEN`. Every
//! route of the tracker refuses a request whose `Origin` is not the
//! tracker's own (a web page elsewhere cannot drive it; no CORS).
//! Errors are `{"error": "..."}` with 400 (malformed), 401 (no or bad
//! token), 403 (cross-origin, a name outside the data folder, no data
//! folder), 404 (unknown info-hash), 409 (name, file or info-hash taken),
//! 413 (`.torrent` too large) or 500.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::response::Json;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use futures::{Stream, StreamExt as _};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use minibit_core::metainfo::InfoHash;
pub use minibit_peer::http_api::{ApiError, same_origin_only};
use minibit_peer::http_api::{check_bearer, drain, read_bounded};

use crate::catalogue::CatalogueError;
use crate::publish::{self, MAX_TORRENT_BYTES, PublishError, Published, Removed};
use crate::seed::SeedStatus;
use crate::state::TrackerState;
use crate::upload::UploadError;

/// The media type of a `.torrent` body.
pub const TORRENT_TYPE: &str = "application/x-bittorrent";

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        let status = match &e {
            PublishError::Upload(UploadError::BadName(_) | UploadError::Body(_))
            | PublishError::Malformed(_)
            | PublishError::Build(_)
            | PublishError::Catalogue(CatalogueError::BadName(_)) => StatusCode::BAD_REQUEST,
            PublishError::NoDataFolder
            | PublishError::Upload(UploadError::Escapes(_))
            | PublishError::DataOutside(_) => StatusCode::FORBIDDEN,
            PublishError::Unknown(_) => StatusCode::NOT_FOUND,
            PublishError::Upload(UploadError::Exists(_)) | PublishError::Catalogue(_) => {
                StatusCode::CONFLICT
            }
            PublishError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(error = %e, "API request failed");
        }
        Self::new(status, e.to_string())
    }
}

/// Proof that the request carried the API token (`Authorization: Bearer TOKEN`).
#[derive(Debug)]
pub struct Authorized;

impl FromRequestParts<Arc<TrackerState>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<TrackerState>,
    ) -> Result<Self, ApiError> {
        check_bearer(&parts.headers, state.service().token()).map(|()| Self)
    }
}

/// The `/api/` routes (see the module docs).
pub fn routes() -> Router<Arc<TrackerState>> {
    Router::new()
        .route(
            "/api/publish",
            post(publish).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/torrents/{info_hash}", get(seed_status).delete(remove))
        .route("/api/catalogue/events", get(events))
}

/// `?name=` of `POST /api/publish`.
#[derive(Deserialize)]
struct PublishQuery {
    name: Option<String>,
}

fn is_torrent(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(TORRENT_TYPE))
}

async fn publish(
    State(state): State<Arc<TrackerState>>,
    authorized: Result<Authorized, ApiError>,
    query: Result<Query<PublishQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    if let Err(refused) = authorized {
        drain(body.into_data_stream()).await;
        return Err(refused);
    }
    let Query(query) = query?;
    let published = if is_torrent(&headers) {
        let torrent = read_bounded(&headers, body, MAX_TORRENT_BYTES).await?;
        publish::publish_torrent(&state, torrent).await?
    } else {
        let name = query.name.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "give the file's name as ?name=NAME (or send a .torrent as application/x-bittorrent)",
            )
        })?;
        let mut stream = body.into_data_stream();
        let published = publish::publish_file(&state, &name, &mut stream).await;
        if published.is_err() {
            drain(stream).await;
        }
        published?
    };
    Ok((StatusCode::CREATED, Json(published)))
}

/// `?delete_data=` of `DELETE /api/torrents/{info_hash}`.
#[derive(Deserialize)]
struct RemoveQuery {
    #[serde(default)]
    delete_data: bool,
}

async fn remove(
    State(state): State<Arc<TrackerState>>,
    _: Authorized,
    Path(info_hash): Path<String>,
    query: Result<Query<RemoveQuery>, QueryRejection>,
) -> Result<Json<Removed>, ApiError> {
    let Query(query) = query?;
    let info_hash = parse_hash(&info_hash)?;
    Ok(Json(
        publish::remove(&state, info_hash, query.delete_data).await?,
    ))
}

fn parse_hash(text: &str) -> Result<InfoHash, ApiError> {
    InfoHash::from_hex(text).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{text:?} is not an info-hash (40 hex digits)"),
        )
    })
}

async fn seed_status(
    State(state): State<Arc<TrackerState>>,
    Path(info_hash): Path<String>,
) -> Result<Json<SeedStatus>, ApiError> {
    let info_hash = parse_hash(&info_hash)?;
    state
        .service()
        .seed_status(&info_hash)
        .await
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("this tracker does not seed {info_hash}"),
            )
        })
}

async fn events(
    State(state): State<Arc<TrackerState>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.service().subscribe();
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        let sse = match receiver.recv().await {
            Ok(event) => Event::default()
                .event(event.kind.as_str())
                .json_data(&event)
                .unwrap_or_default(),
            Err(RecvError::Lagged(missed)) => {
                Event::default().event("lagged").data(missed.to_string())
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(sse), receiver))
    });
    let stream = stream.take_until(state.service().events_closed());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
