//! Client of a minibit tracker's catalogue: `GET /torrents?q=QUERY` lists
//! the torrents it tracks as JSON, `GET /torrents/NAME.torrent` serves one,
//! `GET /api/catalogue/events` pushes each publication and removal
//! (server-sent events, see [`CatalogueEvents`]).

use std::collections::VecDeque;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use thiserror::Error;

use crate::http::{FetchError, get_bounded};
use crate::sse::SseDecoder;

/// Largest catalogue listing accepted, in bytes.
const MAX_LISTING_BYTES: usize = 16 * 1024 * 1024;
/// Largest `.torrent` accepted, in bytes.
pub const MAX_TORRENT_BYTES: usize = 16 * 1024 * 1024;

/// One torrent of a tracker's catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CatalogueEntry {
    /// The torrent's name (`info.name`).
    pub name: String,
    /// The info-hash, 40 hex characters.
    pub info_hash: String,
    /// Total size in bytes.
    pub size: u64,
    /// Piece length in bytes.
    pub piece_length: u64,
    /// Peers with every piece.
    pub seeders: u32,
    /// Peers still downloading.
    pub leechers: u32,
    /// Downloads completed.
    pub completed: u32,
}

/// Why a catalogue request failed.
#[derive(Debug, Error)]
pub enum CatalogueError {
    /// The HTTP request failed.
    #[error("{url}")]
    Fetch {
        /// The URL.
        url: String,
        /// The failure.
        source: FetchError,
    },
    /// The listing is not the expected JSON.
    #[error("{url}: bad catalogue listing")]
    Json {
        /// The URL.
        url: String,
        /// The failure.
        source: serde_json::Error,
    },
    /// No torrent has exactly that name.
    #[error("the tracker has no torrent named {0:?}")]
    NotFound(String),
    /// The event stream broke the server-sent events format or carried
    /// an event that is not the expected JSON.
    #[error("{url}: bad catalogue event stream: {reason}")]
    BadEvents {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// A catalogue entry as named by a catalogue event.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Publication {
    /// The torrent's name (`info.name`).
    pub name: String,
    /// The info-hash, 40 hex characters.
    pub info_hash: String,
}

/// A change of a tracker's catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogueChange {
    /// A torrent was published (`event: publish`).
    Published(Publication),
    /// A torrent was removed (`event: remove`).
    Removed(Publication),
    /// The tracker dropped events this reader was too slow for
    /// (`event: lagged`): list the catalogue again.
    Lagged,
}

/// The open event stream of a tracker's catalogue
/// (`GET /api/catalogue/events`).
#[derive(Debug)]
pub struct CatalogueEvents {
    url: String,
    response: reqwest::Response,
    decoder: SseDecoder,
    ready: VecDeque<CatalogueChange>,
}

impl CatalogueEvents {
    /// Opens the event stream of `tracker` (its base URL). Give a client
    /// without a total timeout ([`crate::http::streaming_client`]): the
    /// stream lasts as long as the tracker runs.
    ///
    /// # Errors
    /// [`CatalogueError::Fetch`]: unreachable, or not a `200`.
    pub async fn open(client: &reqwest::Client, tracker: &str) -> Result<Self, CatalogueError> {
        let url = format!("{}/api/catalogue/events", base(tracker));
        let fetch = |source| CatalogueError::Fetch {
            url: url.clone(),
            source,
        };
        let response = client
            .get(&url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| fetch(FetchError::Http(e.without_url())))?;
        if !response.status().is_success() {
            return Err(fetch(FetchError::Status(response.status())));
        }
        Ok(Self {
            url,
            response,
            decoder: SseDecoder::new(),
            ready: VecDeque::new(),
        })
    }

    /// The next change; `None` when the tracker ended the stream (it
    /// stopped). Events of other kinds are skipped.
    ///
    /// # Errors
    /// [`CatalogueError::Fetch`] when the connection breaks or stalls,
    /// [`CatalogueError::BadEvents`] for a malformed stream.
    pub async fn next(&mut self) -> Result<Option<CatalogueChange>, CatalogueError> {
        loop {
            if let Some(change) = self.ready.pop_front() {
                return Ok(Some(change));
            }
            let chunk = self
                .response
                .chunk()
                .await
                .map_err(|e| CatalogueError::Fetch {
                    url: self.url.clone(),
                    source: FetchError::Http(e.without_url()),
                })?;
            let Some(chunk) = chunk else {
                return Ok(None);
            };
            let bad = |reason: String| CatalogueError::BadEvents {
                url: self.url.clone(),
                reason,
            };
            for event in self.decoder.push(&chunk).map_err(|e| bad(e.to_string()))? {
                let publication = || {
                    serde_json::from_str::<Publication>(&event.data)
                        .map_err(|e| bad(format!("event {}: {e}", event.event)))
                };
                match event.event.as_str() {
                    "publish" => self
                        .ready
                        .push_back(CatalogueChange::Published(publication()?)),
                    "remove" => self
                        .ready
                        .push_back(CatalogueChange::Removed(publication()?)),
                    "lagged" => self.ready.push_back(CatalogueChange::Lagged),
                    _ => {}
                }
            }
        }
    }
}

/// What is escaped in a catalogue name or query put in a URL: everything
/// but the RFC 3986 unreserved characters (letters, digits, `-._~`).
pub const URL_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, URL_ESCAPE).to_string()
}

fn base(tracker: &str) -> &str {
    tracker.trim_end_matches('/')
}

async fn fetch(
    client: &reqwest::Client,
    url: String,
    limit: usize,
) -> Result<Vec<u8>, CatalogueError> {
    get_bounded(client, &url, limit)
        .await
        .map_err(|source| CatalogueError::Fetch { url, source })
}

/// The URL of the `.torrent` of the catalogue entry `name` on `tracker`.
pub fn torrent_url(tracker: &str, name: &str) -> String {
    format!("{}/torrents/{}.torrent", base(tracker), encode(name))
}

/// The catalogue entries of `tracker` (its base URL) whose name contains `query`.
///
/// # Errors
/// [`CatalogueError::Fetch`] or [`CatalogueError::Json`].
pub async fn search(
    client: &reqwest::Client,
    tracker: &str,
    query: &str,
) -> Result<Vec<CatalogueEntry>, CatalogueError> {
    let url = format!("{}/torrents?q={}", base(tracker), encode(query));
    let body = fetch(client, url.clone(), MAX_LISTING_BYTES).await?;
    serde_json::from_slice(&body).map_err(|source| CatalogueError::Json { url, source })
}

/// The `.torrent` bytes of the catalogue entry named exactly `name`.
///
/// # Errors
/// [`CatalogueError::NotFound`] when no entry has that name, otherwise
/// fetch or JSON errors.
pub async fn fetch_torrent(
    client: &reqwest::Client,
    tracker: &str,
    name: &str,
) -> Result<Vec<u8>, CatalogueError> {
    let entries = search(client, tracker, name).await?;
    if !entries.iter().any(|e| e.name == name) {
        return Err(CatalogueError::NotFound(name.to_owned()));
    }
    fetch(client, torrent_url(tracker, name), MAX_TORRENT_BYTES).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_entries_parse_from_the_tracker_json() {
        let json = r#"[{"name":"a b.mkv","info_hash":"00112233445566778899aabbccddeeff00112233",
            "size":123,"piece_length":16384,"seeders":1,"leechers":2,"completed":3}]"#;
        let entries: Vec<CatalogueEntry> = serde_json::from_str(json).unwrap();
        assert_eq!(entries[0].name, "a b.mkv");
        assert_eq!(
            (
                entries[0].seeders,
                entries[0].leechers,
                entries[0].completed
            ),
            (1, 2, 3)
        );
    }

    #[test]
    fn names_are_percent_encoded_in_urls() {
        assert_eq!(encode("a b/c.mkv"), "a%20b%2Fc.mkv");
        assert_eq!(encode("x-y_z~1?&#%"), "x-y_z~1%3F%26%23%25");
        assert_eq!(base("http://t:1/"), "http://t:1");
        assert_eq!(
            torrent_url("http://t:1/", "a b.jpg"),
            "http://t:1/torrents/a%20b.jpg.torrent"
        );
    }
}
