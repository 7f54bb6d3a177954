//! HTTP tracker client (BEP 3 "trackers", compact peer lists BEP 23): the
//! announce query comes from [`AnnounceRequest::to_query`], the answer is
//! decoded by [`AnnounceResponse::decode`].

use std::time::Duration;

use minibit_core::metainfo::InfoHash;
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::{
    AnnounceRequest, AnnounceResponse, MAX_RESPONSE_BYTES, TrackerResponseError,
};
use minibit_core::wire::PeerId;
use thiserror::Error;

use crate::http::{FetchError, get_bounded};

/// Peers asked for in each announce (`numwant`).
const NUMWANT: u32 = 50;

/// Why an announce failed.
#[derive(Debug, Error)]
pub enum AnnounceError {
    /// The HTTP request failed.
    #[error("announce to {url}: {source}")]
    Fetch {
        /// The tracker.
        url: String,
        /// The failure.
        source: FetchError,
    },
    /// The tracker's answer was a failure or could not be decoded.
    #[error("announce to {url}: {source}")]
    Response {
        /// The tracker.
        url: String,
        /// The failure.
        source: TrackerResponseError,
    },
}

/// Announces one torrent to one HTTP tracker. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TrackerClient {
    http: reqwest::Client,
    url: String,
    info_hash: InfoHash,
    peer_id: PeerId,
    port: u16,
}

impl TrackerClient {
    /// A client for the tracker at `url` (the metainfo's `announce`),
    /// reporting `port` as our listen port; each announce times out after
    /// `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        url: String,
        info_hash: InfoHash,
        peer_id: PeerId,
        port: u16,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self {
            http,
            url,
            info_hash,
            peer_id,
            port,
        })
    }

    /// The full announce URL for these counters (bytes) and `event`.
    pub fn announce_url(
        &self,
        event: AnnounceEvent,
        uploaded: u64,
        downloaded: u64,
        left: u64,
    ) -> String {
        let request = AnnounceRequest {
            info_hash: self.info_hash,
            peer_id: self.peer_id,
            port: self.port,
            uploaded,
            downloaded,
            left,
            event,
            compact: true,
            numwant: Some(NUMWANT),
            ip: None,
            key: None,
        };
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{separator}{}", self.url, request.to_query())
    }

    /// Sends one announce and decodes the answer.
    ///
    /// # Errors
    /// [`AnnounceError`]: HTTP failure or timeout, or a failure / malformed answer.
    pub async fn announce(
        &self,
        event: AnnounceEvent,
        uploaded: u64,
        downloaded: u64,
        left: u64,
    ) -> Result<AnnounceResponse, AnnounceError> {
        let url = self.announce_url(event, uploaded, downloaded, left);
        let body = get_bounded(&self.http, &url, MAX_RESPONSE_BYTES)
            .await
            .map_err(|source| AnnounceError::Fetch {
                url: self.url.clone(),
                source,
            })?;
        AnnounceResponse::decode(&body).map_err(|source| AnnounceError::Response {
            url: self.url.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_url_carries_port_event_and_compact() {
        let client = TrackerClient::new(
            "http://127.0.0.1:6969/announce".into(),
            InfoHash([0xab; 20]),
            PeerId(*b"-MB0001-abcdefghijkl"),
            51413,
            Duration::from_secs(5),
        )
        .unwrap();
        let url = client.announce_url(AnnounceEvent::Started, 1, 2, 3);
        let (base, query) = url.split_once('?').unwrap();
        assert_eq!(base, "http://127.0.0.1:6969/announce");
        let parsed = AnnounceRequest::parse_query(query).unwrap();
        assert_eq!(parsed.port, 51413);
        assert_eq!(parsed.event, AnnounceEvent::Started);
        assert!(parsed.compact);
        assert_eq!((parsed.uploaded, parsed.downloaded, parsed.left), (1, 2, 3));
        assert_eq!(parsed.info_hash, InfoHash([0xab; 20]));
    }
}
