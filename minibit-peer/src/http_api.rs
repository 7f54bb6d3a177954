//! What the HTTP APIs of both programs (`minibit-peer daemon`,
//! `minibit-tracker`) share: JSON errors, the bearer token check, the
//! same-origin guard, bounded body reads, and the script both pages load
//! first ([`PAGE_COMMON_SCRIPT`]).

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt as _};

use crate::token::ApiToken;

/// The script both pages load before their own, served at `/common.js`:
/// the API token taken from the login URL (`#token=...`) and kept in the
/// browser's localStorage under the key named by the page's
/// `<html data-token-key="...">`, and the page's calls of the JSON API with
/// `Authorization: Bearer TOKEN`.
pub const PAGE_COMMON_SCRIPT: &str = include_str!("page_common.js");

/// `source` served as JavaScript (a page's script compiled into the binary).
pub fn javascript(source: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        source,
    )
        .into_response()
}

/// A JSON error: `{"error": message}` with `status` (a 401 also says
/// `WWW-Authenticate: Bearer`).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error answered with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// Its status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    /// A query string that does not parse: 400 with axum's explanation.
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.message }));
        if self.status == StatusCode::UNAUTHORIZED {
            (self.status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
        } else {
            (self.status, body).into_response()
        }
    }
}

/// Checks `Authorization: Bearer TOKEN` against `token` (`None`: every
/// request is refused).
///
/// # Errors
/// 401 when the header is missing or the token is wrong.
pub fn check_bearer(headers: &HeaderMap, token: Option<&ApiToken>) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (token, given) {
        (Some(token), Some(given)) if token.matches(given.trim()) => Ok(()),
        (_, None) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this request needs the API token: Authorization: Bearer TOKEN",
        )),
        _ => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong API token")),
    }
}

/// Refuses (403) a request whose `Origin` header is not this server's own
/// (`http://HOST` or `https://HOST` of its `Host` header): a script on
/// another site cannot use the API from a visitor's browser (no CORS).
pub async fn same_origin_only(req: Request, next: Next) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        let own = host.is_some_and(|host| {
            origin
                .to_str()
                .is_ok_and(|o| o == format!("http://{host}") || o == format!("https://{host}"))
        });
        if !own {
            return ApiError::new(StatusCode::FORBIDDEN, "cross-origin requests are refused")
                .into_response();
        }
    }
    next.run(req).await
}

/// Most bytes of a refused body read (and dropped) before the refusal is
/// sent: a server that answers while the client is still sending closes
/// the connection under it, and the client sees a broken connection
/// instead of the answer.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// Longest time [`drain`] spends on a refused body.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Reads and drops what is left of a refused upload's body (at most 64 MiB
/// or 10 s), so the client receives the answer instead of a broken
/// connection (a `409` for a name taken arrived as "the connection broke
/// off" in about half the tries without it).
pub async fn drain(mut stream: impl Stream<Item = Result<Bytes, axum::Error>> + Unpin) {
    let read = async {
        let mut total = 0;
        while let Some(Ok(chunk)) = stream.next().await {
            total += chunk.len();
            if total > DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}

/// Reads `body`, at most `limit` bytes.
///
/// # Errors
/// 413 when it is longer (declared or sent), 400 when it breaks off.
pub async fn read_bounded(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body may be at most {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    let mut bytes = BytesMut::new();
    let mut total = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        total += chunk.len();
        if total > DRAIN_BYTES {
            return Err(too_large());
        }
        if total <= limit {
            bytes.extend_from_slice(&chunk);
        }
    }
    if total > limit || declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    Ok(bytes.freeze())
}
