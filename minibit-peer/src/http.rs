//! Bounded HTTP GETs (reqwest): a response body is read chunk by chunk and
//! refused once it passes a size cap, so a hostile server cannot make us
//! buffer without limit. [`client`] builds the one HTTP client
//! configuration (HTTPS through rustls, extra trusted roots).

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use thiserror::Error;

/// Environment variable naming a PEM file of extra root certificates to
/// trust for `https://` trackers and `.torrent` URLs, on top of the
/// built-in Mozilla roots (webpki-roots): for a tracker with a private
/// certificate authority or a self-signed certificate.
pub const EXTRA_CA_CERTS_VAR: &str = "MINIBIT_EXTRA_CA_CERTS";

/// Why the HTTP client could not be built.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The extra root certificates could not be read.
    #[error("{EXTRA_CA_CERTS_VAR}={}: cannot read it", path.display())]
    ReadRoots {
        /// The file named by [`EXTRA_CA_CERTS_VAR`].
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The extra root certificates are not PEM certificates.
    #[error("{EXTRA_CA_CERTS_VAR}={}: not a PEM certificate file", path.display())]
    BadRoots {
        /// The file named by [`EXTRA_CA_CERTS_VAR`].
        path: PathBuf,
        /// The failure.
        source: reqwest::Error,
    },
    /// reqwest refused the configuration.
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
}

/// An HTTP(S) client (rustls; the built-in Mozilla roots plus those of
/// the PEM file named by [`EXTRA_CA_CERTS_VAR`], if set) whose requests
/// time out after `timeout`.
///
/// # Errors
/// [`ClientError`] when the extra roots cannot be read or parsed.
pub fn client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    with_roots(reqwest::Client::builder().timeout(timeout))
}

/// A client like [`client`] for long responses read as they come (an
/// event stream): connecting times out after `timeout`, and so does a
/// wait of `timeout` for the next bytes; the whole response has no limit.
///
/// # Errors
/// [`ClientError`] when the extra roots cannot be read or parsed.
pub fn streaming_client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    with_roots(
        reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout),
    )
}

fn with_roots(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, ClientError> {
    let mut builder = builder.use_rustls_tls();
    if let Some(path) = std::env::var_os(EXTRA_CA_CERTS_VAR).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        let pem = std::fs::read(&path).map_err(|source| ClientError::ReadRoots {
            path: path.clone(),
            source,
        })?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
            ClientError::BadRoots {
                path: path.clone(),
                source,
            }
        })?;
        if roots.is_empty() {
            return Err(ClientError::ReadRoots {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "no PEM certificate in it",
                ),
            });
        }
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    builder.build().map_err(ClientError::Build)
}

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
