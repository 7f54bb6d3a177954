//! The UDP side (BEP 15): connect, announce and scrape over one UDP socket,
//! into the same registry as the HTTP routes.
//!
//! Connection ids follow opentracker: an id is a keyed hash (SHA-1 of a
//! 16-byte key drawn at start, the time window and the client's address),
//! so the tracker keeps no per-client state, an id cannot be guessed
//! without the key, and an id issued to one address is worthless from
//! another. An id is accepted in the window it was issued in and the next
//! one: 60 to 120 s (BEP 15 lets clients use it for one minute).
//!
//! Anything that is not a well-formed request with a valid connection id
//! (truncated, unknown action, wrong protocol id, forged or foreign id) is
//! dropped without an answer, so the tracker never answers a spoofed
//! source with more than the 16 bytes of a connect response. Announce
//! answers hold at most [`max_peers`](minibit_core::tracker::udp::max_peers) peers (242 IPv4, 79 IPv6): one
//! unfragmented datagram.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use minibit_core::tracker::udp::{Family, Request, Response, UdpPeers, UdpScrapeStats};
use sha1::{Digest, Sha1};
use tokio::net::{TcpListener, UdpSocket};

use crate::counters::Protocol;
use crate::state::TrackerState;

/// Length of a connection-id time window; an id lives one to two windows.
pub const ID_WINDOW: Duration = Duration::from_secs(60);

/// Largest datagram read; longer ones are cut (no valid request is longer
/// than a 1496-byte scrape plus BEP 41 options).
const RECV_BUFFER: usize = 2048;

/// Issues and checks connection ids (IO-free: time is an argument).
#[derive(Clone)]
pub struct ConnectionIds {
    key: [u8; 16],
    origin: Instant,
}

impl std::fmt::Debug for ConnectionIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionIds").finish_non_exhaustive()
    }
}

impl ConnectionIds {
    /// Ids keyed with `key` (draw it at random, e.g. `rand::random()`),
    /// windows counted from `origin`.
    pub fn new(key: [u8; 16], origin: Instant) -> Self {
        Self { key, origin }
    }

    /// The id for a client at `addr` at time `now`.
    pub fn issue(&self, addr: SocketAddr, now: Instant) -> u64 {
        self.id(addr, self.window(now))
    }

    /// Whether `id` was issued to `addr` in the window of `now` or the one
    /// before.
    pub fn check(&self, id: u64, addr: SocketAddr, now: Instant) -> bool {
        let window = self.window(now);
        id == self.id(addr, window) || (window > 0 && id == self.id(addr, window - 1))
    }

    fn window(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs() / ID_WINDOW.as_secs()
    }

    fn id(&self, addr: SocketAddr, window: u64) -> u64 {
        let ip = match addr.ip().to_canonical() {
            std::net::IpAddr::V4(ip) => ip.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(ip) => ip.octets(),
        };
        let digest = Sha1::new()
            .chain_update(self.key)
            .chain_update(window.to_be_bytes())
            .chain_update(ip)
            .chain_update(addr.port().to_be_bytes())
            .finalize();
        let mut id = [0; 8];
        id.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(id)
    }
}

/// The answer to one datagram `packet` from `from` at `now`, or `None` to
/// drop it (malformed, or an announce/scrape without a valid connection id).
///
/// An announce is recorded in `state`'s registry like an HTTP one, with
/// `num_want` bounded by [`max_peers`](minibit_core::tracker::udp::max_peers) of the request's family; the
/// answer lists only peers of that family. A scrape answers the counts in
/// request order (zeros for unknown torrents).
pub fn answer(
    state: &TrackerState,
    ids: &ConnectionIds,
    packet: &[u8],
    from: SocketAddr,
    now: Instant,
) -> Option<Vec<u8>> {
    let from = SocketAddr::new(from.ip().to_canonical(), from.port());
    let request = match Request::decode(packet) {
        Ok(request) => request,
        Err(e) => {
            tracing::debug!(%from, error = %e, "dropped UDP packet");
            return None;
        }
    };
    let response = match request {
        Request::Connect { transaction_id } => Response::Connect {
            transaction_id,
            connection_id: ids.issue(from, now),
        },
        Request::Announce(a) => {
            if !ids.check(a.connection_id, from, now) {
                tracing::debug!(%from, "UDP announce with an invalid connection id");
                return None;
            }
            let family = Family::of(&from);
            let req = a.to_announce_request(family);
            let (resp, _) = state.announce(now, &req, from.ip(), Protocol::Udp);
            state.tell_seeder(&req, from.ip());
            tracing::debug!(
                info_hash = %req.info_hash, %from, event = ?req.event, left = req.left,
                peers = resp.peers.len(), "UDP announce"
            );
            Response::Announce {
                transaction_id: a.transaction_id,
                interval: resp.interval,
                leechers: resp.incomplete,
                seeders: resp.complete,
                peers: UdpPeers::select(family, resp.addrs()),
            }
        }
        Request::Scrape {
            connection_id,
            transaction_id,
            info_hashes,
        } => {
            if !ids.check(connection_id, from, now) {
                tracing::debug!(%from, "UDP scrape with an invalid connection id");
                return None;
            }
            state.counters().scraped(Protocol::Udp);
            let registry = state.registry();
            Response::Scrape {
                transaction_id,
                stats: info_hashes
                    .iter()
                    .map(|h| UdpScrapeStats::from(registry.stats(h)))
                    .collect(),
            }
        }
    };
    Some(response.encode())
}

/// Answers BEP 15 requests on `socket` into `state` until `shutdown`
/// resolves. Connection ids are keyed with a key drawn from the OS RNG now.
///
/// # Errors
/// None so far: receive and send errors (e.g. an ICMP error reported for an
/// earlier datagram) are logged and the loop goes on.
pub async fn serve_udp(
    socket: UdpSocket,
    state: Arc<TrackerState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ids = ConnectionIds::new(rand::random(), Instant::now());
    let mut buf = vec![0; RECV_BUFFER];
    tokio::pin!(shutdown);
    loop {
        let (len, from) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(e) => {
                    tracing::debug!(error = %e, "UDP receive failed");
                    continue;
                }
            },
        };
        if let Some(reply) = answer(&state, &ids, &buf[..len], from, Instant::now()) {
            if let Err(e) = socket.send_to(&reply, from).await {
                tracing::debug!(%from, error = %e, "UDP send failed");
            }
        }
    }
}

/// How many free TCP ports [`bind_pair`] tries for port 0 before giving up.
const BIND_ATTEMPTS: usize = 16;

/// A TCP listener and a UDP socket on the same address and port number
/// (the HTTP and UDP sides of one tracker). With port 0, picks a TCP port
/// whose UDP twin is free too.
///
/// # Errors
/// The bind error of either socket (for port 0: after 16 TCP ports whose
/// UDP port was taken).
pub async fn bind_pair(addr: SocketAddr) -> std::io::Result<(TcpListener, UdpSocket)> {
    let attempts = if addr.port() == 0 { BIND_ATTEMPTS } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let tcp = TcpListener::bind(addr).await?;
        match UdpSocket::bind(tcp.local_addr()?).await {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no attempt made")))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), port)
    }

    #[test]
    fn an_id_is_valid_for_its_address_during_one_to_two_windows() {
        let t0 = Instant::now();
        let ids = ConnectionIds::new([7; 16], t0);
        let id = ids.issue(addr(1, 6881), t0 + Duration::from_secs(59));
        assert!(ids.check(id, addr(1, 6881), t0 + Duration::from_secs(59)));
        assert!(ids.check(id, addr(1, 6881), t0 + Duration::from_secs(119)));
        assert!(!ids.check(id, addr(1, 6881), t0 + Duration::from_secs(120)));
        assert!(!ids.check(id, addr(2, 6881), t0 + Duration::from_secs(59)));
        assert!(!ids.check(id, addr(1, 6882), t0 + Duration::from_secs(59)));
    }

    #[test]
    fn ids_depend_on_the_key_and_a_mapped_address_is_the_ipv4_one() {
        let t0 = Instant::now();
        let a = ConnectionIds::new([1; 16], t0);
        let b = ConnectionIds::new([2; 16], t0);
        assert_ne!(a.issue(addr(1, 1), t0), b.issue(addr(1, 1), t0));
        let mapped = SocketAddr::new(IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()), 1);
        assert!(a.check(a.issue(addr(1, 1), t0), mapped, t0));
        let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 1);
        assert!(!a.check(a.issue(addr(1, 1), t0), v6, t0));
    }
}
