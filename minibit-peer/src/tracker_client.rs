//! HTTP tracker client (BEP 3 "trackers", compact peer lists BEP 23): the
//! announce query comes from [`AnnounceRequest::to_query`], the answer is
//! decoded by [`AnnounceResponse::decode`].

use std::time::Duration;

use minibit_core::metainfo::{InfoHash, Metainfo};
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::{
    AnnounceRequest, AnnounceResponse, MAX_RESPONSE_BYTES, TrackerResponseError,
};
use minibit_core::wire::PeerId;
use thiserror::Error;

use crate::http::{ClientError, FetchError, client, get_bounded};

/// Peers asked for in each announce (`numwant`).
const NUMWANT: u32 = 50;

/// The tracker to announce to: the first `http://` or `https://` URL among
/// `announce` and then the `announce-list` tiers (BEP 12), in order. Other
/// schemes (`udp://`, BEP 15) are skipped: only HTTP trackers are spoken.
pub fn pick_tracker_url(metainfo: &Metainfo) -> Option<String> {
    metainfo
        .announce()
        .into_iter()
        .chain(
            metainfo
                .announce_list()
                .iter()
                .flatten()
                .map(String::as_str),
        )
        .find(|url| url.starts_with("http://") || url.starts_with("https://"))
        .map(str::to_owned)
}

/// Why an announce failed.
#[derive(Debug, Error)]
pub enum AnnounceError {
    /// The HTTP request failed.
    #[error("announce to {url}")]
    Fetch {
        /// The tracker.
        url: String,
        /// The failure.
        source: FetchError,
    },
    /// The tracker's answer was a failure or could not be decoded.
    #[error("announce to {url}")]
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
    ) -> Result<Self, ClientError> {
        let http = client(timeout)?;
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

    /// Serves one HTTP response with `body` on 127.0.0.1 and returns the
    /// announce URL.
    async fn answer_once(body: &'static [u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/announce", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
            }
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(body).await.unwrap();
        });
        url
    }

    fn client(url: String) -> TrackerClient {
        TrackerClient::new(
            url,
            InfoHash([1; 20]),
            PeerId(*b"-MB0001-abcdefghijkl"),
            6881,
            Duration::from_secs(30),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn compact_peers_are_decoded() {
        let url = answer_once(b"d8:intervali900e5:peers6:\x7f\x00\x00\x01\x1a\xe1e").await;
        let response = client(url)
            .announce(AnnounceEvent::Started, 0, 0, 10)
            .await
            .unwrap();
        assert_eq!(response.interval, 900);
        let peers: Vec<std::net::SocketAddr> = response.addrs().collect();
        assert_eq!(peers, ["127.0.0.1:6881".parse().unwrap()]);
    }

    #[tokio::test]
    async fn a_failure_reason_is_an_error() {
        let url = answer_once(b"d14:failure reason12:unregisterede").await;
        let err = client(url)
            .announce(AnnounceEvent::None, 0, 0, 10)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            AnnounceError::Response {
                source: TrackerResponseError::Failure(ref reason),
                ..
            } if reason == "unregistered"
        ));
    }

    #[test]
    fn the_first_http_tracker_is_picked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"content").unwrap();
        let build = |announce: &str, list: Vec<Vec<String>>| {
            minibit_core::metainfo::MetainfoBuilder::new(dir.path().join("f"))
                .announce(announce)
                .announce_list(list)
                .build()
                .unwrap()
        };
        let plain = build("http://a/announce", Vec::new());
        assert_eq!(
            pick_tracker_url(&plain).as_deref(),
            Some("http://a/announce")
        );
        let udp_first = build(
            "udp://b:80",
            vec![vec!["udp://c:80".into()], vec!["https://d/announce".into()]],
        );
        assert_eq!(
            pick_tracker_url(&udp_first).as_deref(),
            Some("https://d/announce")
        );
        let udp_only = build("udp://b:80", Vec::new());
        assert_eq!(pick_tracker_url(&udp_only), None);
    }

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
