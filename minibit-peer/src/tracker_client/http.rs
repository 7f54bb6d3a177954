//! HTTP tracker announces (BEP 3 "trackers", compact peer lists BEP 23):
//! the query comes from [`AnnounceRequest::to_query`], the answer is
//! decoded by [`AnnounceResponse::decode`].

use minibit_core::tracker::{AnnounceRequest, AnnounceResponse, MAX_RESPONSE_BYTES};

use super::AnnounceError;
use crate::http::get_bounded;

/// The full announce URL of `request` for the tracker at `base`.
pub fn announce_url(base: &str, request: &AnnounceRequest) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{}", request.to_query())
}

/// Sends `request` to the HTTP tracker at `url` and decodes the answer.
///
/// # Errors
/// [`AnnounceError::Fetch`] (HTTP failure or timeout) or
/// [`AnnounceError::Response`] (a failure reason or a malformed answer).
pub(super) async fn announce(
    http: &reqwest::Client,
    url: &str,
    request: &AnnounceRequest,
) -> Result<AnnounceResponse, AnnounceError> {
    let body = get_bounded(http, &announce_url(url, request), MAX_RESPONSE_BYTES)
        .await
        .map_err(|source| AnnounceError::Fetch {
            url: url.to_owned(),
            source,
        })?;
    AnnounceResponse::decode(&body).map_err(|source| AnnounceError::Response {
        url: url.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use minibit_core::metainfo::InfoHash;
    use minibit_core::torrent::AnnounceEvent;
    use minibit_core::wire::PeerId;

    use super::*;

    #[test]
    fn announce_url_carries_port_event_and_compact() {
        let request = AnnounceRequest {
            info_hash: InfoHash([0xab; 20]),
            peer_id: PeerId(*b"-MB0001-abcdefghijkl"),
            port: 51413,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: AnnounceEvent::Started,
            compact: true,
            numwant: Some(50),
            ip: None,
            key: None,
        };
        let url = announce_url("http://127.0.0.1:6969/announce", &request);
        let (base, query) = url.split_once('?').unwrap();
        assert_eq!(base, "http://127.0.0.1:6969/announce");
        assert_eq!(AnnounceRequest::parse_query(query).unwrap(), request);
        let url = announce_url("http://t/announce?passkey=x", &request);
        assert!(
            url.starts_with("http://t/announce?passkey=x&info_hash="),
            "{url}"
        );
    }
}
