//! Bounded HTTP GETs (reqwest): a response body is read chunk by chunk and
//! refused once it passes a size cap, so a hostile server cannot make us
//! buffer without limit.

use reqwest::StatusCode;
use thiserror::Error;

/// Why an HTTP GET failed.
#[derive(Debug, Error)]
pub enum FetchError {
    /// Connection, timeout or protocol error (without the URL, which the
    /// caller's error names).
    #[error(transparent)]
    Http(reqwest::Error),
    /// The server answered with a non-success status.
    #[error("HTTP status {0}")]
    Status(StatusCode),
    /// The body is larger than the cap, in bytes.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
}

fn http(error: reqwest::Error) -> FetchError {
    FetchError::Http(error.without_url())
}

/// GETs `url` and returns its body, at most `limit` bytes.
///
/// # Errors
/// [`FetchError`].
pub async fn get_bounded(
    client: &reqwest::Client,
    url: &str,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let mut response = client.get(url).send().await.map_err(http)?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
