//! UDP tracker client (BEP 15): connect, then announce or scrape with the
//! connection id, over one socket per tracker.
//!
//! - The connection id is reused for a minute after the connect response
//!   arrived ([`CONNECTION_ID_LIFETIME`]); an announce or scrape that gets
//!   no answer forgets it, so the next one connects again.
//! - A request is sent again when no answer came `base * 2^n` after its
//!   n-th sending (BEP 15: `15 * 2^n` s; the base is
//!   [`UdpConfig::retransmit`]); the whole exchange (connect included)
//!   gives up after [`UdpConfig::timeout`].
//! - The socket is connected to the tracker's address, so datagrams from
//!   anywhere else never reach it. An answer must echo the request's
//!   transaction id: datagrams with another one are ignored (a late answer
//!   to an earlier request) and counted in [`UdpError::NoAnswer`]; an
//!   answer with the right id that is malformed, of the wrong action, or
//!   an error action ends the exchange with a typed [`UdpError`].
//! - Announce answers list IPv4 peers over an IPv4 socket and IPv6 peers
//!   over an IPv6 one (BEP 15 "IPv6").

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use minibit_core::metainfo::InfoHash;
use minibit_core::tracker::udp::{
    Family, Request, Response, UdpAnnounce, UdpScrapeStats, UdpTrackerError,
};
use minibit_core::tracker::{AnnounceRequest, AnnounceResponse, TrackerPeer};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long a connection id may be used after its connect response
/// arrived (BEP 15: "until one minute after it has received it").
pub const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);

/// Largest datagram read, bytes: every valid answer is at most 1472.
const RECV_BUFFER: usize = 2048;

/// Most doublings of the retransmission delay (BEP 15: n up to 8).
const MAX_DOUBLINGS: u32 = 8;

/// Timing of one UDP tracker exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpConfig {
    /// Delay before the first retransmission; the n-th waits
    /// `retransmit * 2^n` (BEP 15: 15 s).
    pub retransmit: Duration,
    /// Longest time one announce or scrape may take, connect included.
    pub timeout: Duration,
}

impl Default for UdpConfig {
    /// BEP 15's 15 s retransmission base, 15 s in all (one sending; a
    /// tracker that never answers costs its tier 15 s).
    fn default() -> Self {
        Self {
            retransmit: Duration::from_secs(15),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Why a UDP tracker exchange failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UdpError {
    /// The URL is not `udp://HOST:PORT[/PATH]`.
    #[error("not a UDP tracker URL (udp://HOST:PORT/announce)")]
    BadUrl,
    /// The host name did not resolve.
    #[error("cannot resolve {host}")]
    Resolve {
        /// The host of the URL.
        host: String,
        /// The failure (none: no address).
        #[source]
        source: Option<io::Error>,
    },
    /// Binding, sending or receiving failed (e.g. the port is closed: an
    /// ICMP "port unreachable" comes back as a refused connection).
    #[error("socket error")]
    Io(#[from] io::Error),
    /// An answer with our transaction id that cannot be decoded.
    #[error("malformed answer")]
    Malformed(#[from] UdpTrackerError),
    /// An answer with our transaction id but of another action.
    #[error("answered a {asked} with a {got} packet")]
    WrongAction {
        /// What we asked: `connect`, `announce` or `scrape`.
        asked: &'static str,
        /// What came back.
        got: &'static str,
    },
    /// A scrape answer whose number of entries is not the number asked.
    #[error("scrape answer with {got} entries for {asked} info-hashes")]
    WrongCount {
        /// Info-hashes asked about.
        asked: usize,
        /// Entries answered.
        got: usize,
    },
    /// The tracker answered with an error (action 3).
    #[error("tracker error: {0}")]
    Tracker(String),
    /// No answer with our transaction id in time.
    #[error(
        "no answer after {sends} sendings in {elapsed:?} ({ignored} datagrams with another transaction id ignored)"
    )]
    NoAnswer {
        /// How many times the request went out.
        sends: u32,
        /// Time waited.
        elapsed: Duration,
        /// Datagrams that did not echo the transaction id.
        ignored: u32,
    },
}

/// One UDP tracker: its address, socket and current connection id.
#[derive(Debug)]
pub struct UdpTracker {
    host: String,
    port: u16,
    config: UdpConfig,
    /// One exchange at a time (answers are matched on this one socket).
    conn: Mutex<Conn>,
}

#[derive(Debug, Default)]
struct Conn {
    /// Bound and connected to the tracker on first use; dropped after a
    /// socket error so the next exchange resolves and binds again.
    socket: Option<(UdpSocket, Family)>,
    /// The current connection id and when it arrived.
    id: Option<(u64, Instant)>,
}

impl UdpTracker {
    /// The tracker at `url` (`udp://HOST:PORT`, any path, e.g.
    /// `/announce`; HOST may be a name, an IPv4 address or `[IPv6]`).
    /// Nothing is resolved or bound before the first exchange.
    ///
    /// # Errors
    /// [`UdpError::BadUrl`] for another scheme, no host or no port.
    pub fn new(url: &str, config: UdpConfig) -> Result<Self, UdpError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| UdpError::BadUrl)?;
        if parsed.scheme() != "udp" {
            return Err(UdpError::BadUrl);
        }
        // An IPv6 host comes in brackets, which the resolver does not take.
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(UdpError::BadUrl)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = parsed.port().ok_or(UdpError::BadUrl)?;
        Ok(Self {
            host,
            port,
            config,
            conn: Mutex::new(Conn::default()),
        })
    }

    /// Announces `request` (its `ip` and `key` are not sent; `key` is
    /// ours, a per-session token) and converts the answer: seeders to
    /// `complete`, leechers to `incomplete`, no `min interval`.
    ///
    /// # Errors
    /// [`UdpError`].
    pub async fn announce(
        &self,
        request: &AnnounceRequest,
        key: u32,
    ) -> Result<AnnounceResponse, UdpError> {
        let deadline = Instant::now() + self.config.timeout;
        let mut conn = self.conn.lock().await;
        let (connection_id, family) = self.connect(&mut conn, deadline).await?;
        let announce = Request::Announce(UdpAnnounce {
            connection_id,
            transaction_id: rand::random(),
            info_hash: request.info_hash,
            peer_id: request.peer_id,
            downloaded: request.downloaded,
            left: request.left,
            uploaded: request.uploaded,
            event: request.event,
            ip: None,
            key,
            num_want: request.numwant,
            port: request.port,
        });
        match self
            .exchange(&mut conn, &announce, family, deadline)
            .await?
        {
            Response::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            } => Ok(AnnounceResponse {
                interval,
                min_interval: None,
                complete: seeders,
                incomplete: leechers,
                peers: peers
                    .addrs()
                    .into_iter()
                    .map(|addr| TrackerPeer {
                        addr,
                        peer_id: None,
                    })
                    .collect(),
                warning: None,
            }),
            other => Err(wrong_action("announce", &other)),
        }
    }

    /// Scrapes `info_hashes` (1 to
    /// [`MAX_SCRAPE_HASHES`](minibit_core::tracker::udp::MAX_SCRAPE_HASHES)):
    /// the counts of each, in the same order.
    ///
    /// # Errors
    /// [`UdpError`]; [`UdpError::WrongCount`] when the answer does not
    /// hold one entry per info-hash.
    ///
    /// # Panics
    /// More than `MAX_SCRAPE_HASHES` info-hashes (split the list).
    pub async fn scrape(&self, info_hashes: &[InfoHash]) -> Result<Vec<UdpScrapeStats>, UdpError> {
        let deadline = Instant::now() + self.config.timeout;
        let mut conn = self.conn.lock().await;
        let (connection_id, family) = self.connect(&mut conn, deadline).await?;
        let scrape = Request::Scrape {
            connection_id,
            transaction_id: rand::random(),
            info_hashes: info_hashes.to_vec(),
        };
        match self.exchange(&mut conn, &scrape, family, deadline).await? {
            Response::Scrape { stats, .. } if stats.len() == info_hashes.len() => Ok(stats),
            Response::Scrape { stats, .. } => Err(UdpError::WrongCount {
                asked: info_hashes.len(),
                got: stats.len(),
            }),
            other => Err(wrong_action("scrape", &other)),
        }
    }

    /// The connection id to use now (the cached one while it is younger
    /// than [`CONNECTION_ID_LIFETIME`], else a fresh one from a connect
    /// exchange) and the socket's family.
    async fn connect(&self, conn: &mut Conn, deadline: Instant) -> Result<(u64, Family), UdpError> {
        let family = self.socket(conn).await?.1;
        if let Some((id, at)) = conn.id {
            if at.elapsed() < CONNECTION_ID_LIFETIME {
                return Ok((id, family));
            }
        }
        let connect = Request::Connect {
            transaction_id: rand::random(),
        };
        match self.exchange(conn, &connect, family, deadline).await? {
            Response::Connect { connection_id, .. } => {
                conn.id = Some((connection_id, Instant::now()));
                Ok((connection_id, family))
            }
            other => Err(wrong_action("connect", &other)),
        }
    }

    /// The socket connected to the tracker, resolved and bound on first use.
    async fn socket<'c>(&self, conn: &'c mut Conn) -> Result<&'c (UdpSocket, Family), UdpError> {
        if conn.socket.is_none() {
            let resolve = |source| UdpError::Resolve {
                host: self.host.clone(),
                source,
            };
            let addr = tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .map_err(|e| resolve(Some(e)))?
                .next()
                .ok_or_else(|| resolve(None))?;
            let local: SocketAddr = if addr.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let socket = UdpSocket::bind(local).await?;
            socket.connect(addr).await?;
            conn.id = None;
            conn.socket = Some((socket, Family::of(&addr)));
        }
        Ok(conn.socket.as_ref().expect("bound above"))
    }

    /// Sends `request` until an answer with its transaction id arrives
    /// (again after `retransmit * 2^n`), at most until `deadline`. A socket
    /// error drops the socket; no answer forgets the connection id.
    async fn exchange(
        &self,
        conn: &mut Conn,
        request: &Request,
        family: Family,
        deadline: Instant,
    ) -> Result<Response, UdpError> {
        let result = self
            .send_until_answered(conn, request, family, deadline)
            .await;
        match &result {
            Err(UdpError::Io(_)) => *conn = Conn::default(),
            Err(UdpError::NoAnswer { .. }) => conn.id = None,
            _ => {}
        }
        result
    }

    async fn send_until_answered(
        &self,
        conn: &Conn,
        request: &Request,
        family: Family,
        deadline: Instant,
    ) -> Result<Response, UdpError> {
        let (socket, _) = conn.socket.as_ref().expect("bound by connect");
        let packet = request.encode();
        let transaction_id = request.transaction_id();
        let started = Instant::now();
        let mut buf = [0u8; RECV_BUFFER];
        let (mut sends, mut ignored) = (0u32, 0u32);
        loop {
            socket.send(&packet).await?;
            let wait = self.config.retransmit * 2u32.pow(sends.min(MAX_DOUBLINGS));
            sends += 1;
            let resend_at = (Instant::now() + wait).min(deadline);
            while let Ok(received) = tokio::time::timeout_at(resend_at, socket.recv(&mut buf)).await
            {
                let datagram = &buf[..received?];
                if datagram.len() >= 8 && datagram[4..8] != transaction_id.to_be_bytes() {
                    ignored += 1;
                    continue;
                }
                return match Response::decode(datagram, family)? {
                    Response::Error { message, .. } => Err(UdpError::Tracker(message)),
                    answer => Ok(answer),
                };
            }
            if Instant::now() >= deadline {
                return Err(UdpError::NoAnswer {
                    sends,
                    elapsed: started.elapsed(),
                    ignored,
                });
            }
        }
    }
}

fn wrong_action(asked: &'static str, got: &Response) -> UdpError {
    let got = match got {
        Response::Connect { .. } => "connect",
        Response::Announce { .. } => "announce",
        Response::Scrape { .. } => "scrape",
        Response::Error { .. } => "error",
    };
    UdpError::WrongAction { asked, got }
}

#[cfg(test)]
mod tests;
