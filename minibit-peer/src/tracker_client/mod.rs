//! Tracker client: announces one torrent to its trackers, tier by tier
//! (BEP 12), over HTTP ([`http`]: BEP 3, compact BEP 23) or UDP ([`udp`]:
//! BEP 15), whichever each tracker's URL names.
//!
//! An announce tries the trackers in the order the core's [`Tiers`] gives
//! (each tier shuffled once; a tracker that answered first in its tier)
//! and returns the first answer; it moves to the next tier only when every
//! tracker of a tier failed. Each tracker gets at most
//! [`TrackerConfig::timeout`]; a refused TCP or UDP port fails at once.

pub mod http;
pub mod udp;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minibit_core::metainfo::InfoHash;
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::{AnnounceRequest, AnnounceResponse, Tiers, TrackerResponseError};
use minibit_core::wire::PeerId;
use thiserror::Error;
use tracing::info;

use crate::error_chain::one_line;
use crate::http::{ClientError, FetchError, client};
use udp::{UdpConfig, UdpError, UdpTracker};

/// Peers asked for in each announce (`numwant`).
const NUMWANT: u32 = 50;

/// Timing of announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Longest wait for one tracker's answer (HTTP request, or UDP connect
    /// and announce with their retransmissions), default 15 s.
    pub timeout: Duration,
    /// First UDP retransmission delay, doubling with each (BEP 15: 15 s).
    pub udp_retransmit: Duration,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            udp_retransmit: Duration::from_secs(15),
        }
    }
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
    /// The UDP exchange failed.
    #[error("announce to {url}")]
    Udp {
        /// The tracker.
        url: String,
        /// The failure.
        source: UdpError,
    },
    /// A tracker URL of another scheme than `http`, `https` and `udp`.
    #[error(
        "announce to {url}: unsupported scheme (only http://, https:// and udp:// trackers are spoken)"
    )]
    Unsupported {
        /// The tracker.
        url: String,
    },
    /// Every tracker of every tier failed (when there are several; with
    /// one tracker its own error is returned).
    #[error("no tracker answered: {}", summary(.0))]
    AllFailed(Vec<AnnounceError>),
}

impl AnnounceError {
    /// Each tracker that failed with its cause chain in one line, in the
    /// order they were tried.
    pub fn failures(&self) -> Vec<(&str, String)> {
        match self {
            Self::AllFailed(all) => all.iter().flat_map(Self::failures).collect(),
            Self::Fetch { url, source } => vec![(url, one_line(source))],
            Self::Response { url, source } => vec![(url, one_line(source))],
            Self::Udp { url, source } => vec![(url, one_line(source))],
            Self::Unsupported { url } => vec![(url, "unsupported scheme".to_owned())],
        }
    }
}

/// `URL (cause: cause); URL (cause)` for [`AnnounceError::AllFailed`].
fn summary(all: &[AnnounceError]) -> String {
    let mut line = String::new();
    for (i, (url, cause)) in all.iter().flat_map(AnnounceError::failures).enumerate() {
        let sep = if i == 0 { "" } else { "; " };
        let _ = write!(line, "{sep}{url} ({cause})");
    }
    line
}

/// The answer of [`TrackerClient::announce_to_first`].
#[derive(Debug)]
pub struct Answered {
    /// The tracker that answered.
    pub url: String,
    /// Its answer.
    pub response: AnnounceResponse,
    /// The trackers tried before it, each with its error.
    pub failures: Vec<AnnounceError>,
}

/// One tracker, by the protocol its URL names.
#[derive(Debug)]
enum Tracker {
    Http,
    Udp(UdpTracker),
    /// `udp://` without a host or a port.
    BadUdpUrl,
    Unsupported,
}

#[derive(Debug)]
struct Inner {
    /// The order to try the trackers in (BEP 12).
    tiers: Mutex<Tiers>,
    trackers: HashMap<String, Tracker>,
    http: reqwest::Client,
    info_hash: InfoHash,
    peer_id: PeerId,
    port: u16,
    /// Our BEP 15 `key`, one per client.
    key: u32,
}

/// Announces one torrent to its trackers (HTTP and UDP, BEP 12 tiers).
/// Cheap to clone: clones share the tier order and the UDP connection ids.
#[derive(Clone, Debug)]
pub struct TrackerClient {
    inner: Arc<Inner>,
}

impl TrackerClient {
    /// A client for the single tracker at `url`, reporting `port` as our
    /// listen port; each announce times out after `timeout`.
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
        let config = TrackerConfig {
            timeout,
            ..TrackerConfig::default()
        };
        Self::with_tiers(Tiers::new([vec![url]], 0), info_hash, peer_id, port, config)
    }

    /// A client for the trackers of `tiers` (see
    /// [`Tiers::of_metainfo`]), reporting `port` as our listen port.
    /// URLs of another scheme than `http`, `https` and `udp`
    /// ([`AnnounceError::Unsupported`]), and `udp` URLs without a host or
    /// a port ([`UdpError::BadUrl`]), stay in the list and fail at once.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn with_tiers(
        tiers: Tiers,
        info_hash: InfoHash,
        peer_id: PeerId,
        port: u16,
        config: TrackerConfig,
    ) -> Result<Self, ClientError> {
        let udp = UdpConfig {
            retransmit: config.udp_retransmit,
            timeout: config.timeout,
        };
        let trackers = tiers
            .order()
            .map(|url| {
                let tracker = if url.starts_with("http://") || url.starts_with("https://") {
                    Tracker::Http
                } else if url.starts_with("udp://") {
                    UdpTracker::new(url, udp).map_or(Tracker::BadUdpUrl, Tracker::Udp)
                } else {
                    Tracker::Unsupported
                };
                (url.to_owned(), tracker)
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                tiers: Mutex::new(tiers),
                trackers,
                http: client(config.timeout)?,
                info_hash,
                peer_id,
                port,
                key: rand::random(),
            }),
        })
    }

    /// Every tracker in the order the next announce tries them.
    pub fn urls(&self) -> Vec<String> {
        self.tiers().order().map(str::to_owned).collect()
    }

    /// Every tracker with its tier (BEP 12, from 0), in the order the next
    /// announce tries them.
    pub fn tiered_urls(&self) -> Vec<(usize, String)> {
        self.tiers()
            .tiers()
            .iter()
            .enumerate()
            .flat_map(|(tier, urls)| urls.iter().map(move |url| (tier, url.clone())))
            .collect()
    }

    fn tiers(&self) -> std::sync::MutexGuard<'_, Tiers> {
        // Only ever held for a few statements: never poisoned by a panic elsewhere.
        self.inner
            .tiers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Announces these counters (bytes) and `event` to the first tracker
    /// that answers, tier by tier (BEP 12); that tracker moves to the
    /// front of its tier.
    ///
    /// # Errors
    /// With one tracker, its [`AnnounceError`]; with several that all
    /// failed, [`AnnounceError::AllFailed`] holding each failure.
    pub async fn announce(
        &self,
        event: AnnounceEvent,
        uploaded: u64,
        downloaded: u64,
        left: u64,
    ) -> Result<AnnounceResponse, AnnounceError> {
        self.announce_to_first(event, uploaded, downloaded, left)
            .await
            .map(|answered| answered.response)
    }

    /// [`TrackerClient::announce`], also naming the tracker that answered
    /// and each that failed before it.
    ///
    /// # Errors
    /// As [`TrackerClient::announce`].
    pub async fn announce_to_first(
        &self,
        event: AnnounceEvent,
        uploaded: u64,
        downloaded: u64,
        left: u64,
    ) -> Result<Answered, AnnounceError> {
        let request = AnnounceRequest {
            info_hash: self.inner.info_hash,
            peer_id: self.inner.peer_id,
            port: self.inner.port,
            uploaded,
            downloaded,
            left,
            event,
            compact: true,
            numwant: Some(NUMWANT),
            ip: None,
            key: None,
        };
        let mut failures = Vec::new();
        for url in self.urls() {
            match self.announce_to(&url, &request).await {
                Ok(response) => {
                    self.tiers().answered(&url);
                    return Ok(Answered {
                        url,
                        response,
                        failures,
                    });
                }
                Err(e) => {
                    info!("tracker failed: {}", one_line(&e));
                    failures.push(e);
                }
            }
        }
        Err(if failures.len() == 1 {
            failures.remove(0)
        } else {
            AnnounceError::AllFailed(failures)
        })
    }

    async fn announce_to(
        &self,
        url: &str,
        request: &AnnounceRequest,
    ) -> Result<AnnounceResponse, AnnounceError> {
        match self.inner.trackers.get(url) {
            Some(Tracker::Http) => http::announce(&self.inner.http, url, request).await,
            Some(Tracker::Udp(udp)) => {
                udp.announce(request, self.inner.key)
                    .await
                    .map_err(|source| AnnounceError::Udp {
                        url: url.to_owned(),
                        source,
                    })
            }
            Some(Tracker::BadUdpUrl) => Err(AnnounceError::Udp {
                url: url.to_owned(),
                source: UdpError::BadUrl,
            }),
            Some(Tracker::Unsupported) | None => Err(AnnounceError::Unsupported {
                url: url.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
