//! The client's node on the Mainline DHT (BEP 5), through the `mainline`
//! crate (its own thread and UDP socket; we never implement Kademlia):
//! start it on a UDP port (by default the TCP listen port's number),
//! look torrents up (`get_peers`), announce them (`announce_peer`), and keep
//! the routing table across restarts in a file of `IP:PORT` lines.
//!
//! Nodes that peers name in BEP 5 `port` messages are pinged and, once
//! they answer, in the routing table (BEP 5: "the node should attempt to
//! ping the node on the received port and IP address"; `mainline` 8 has
//! no call for that: the workspace's patched copy, `vendor/mainline`,
//! adds `AsyncDht::ping`); they are also kept ([`DhtNode::learn`]) and
//! saved with the routing table, so the next start bootstraps from them.
//!
//! Peers a lookup returns are untrusted: [`DhtNode::get_peers`] drops port
//! 0, unspecified, multicast and broadcast addresses and our own address,
//! removes duplicates and stops at a cap, so a hostile node listing
//! thousands of peers costs nothing; the dial limits and bans of the
//! session apply to the rest like to tracker and PEX peers.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use mainline::async_dht::AsyncDht;
use mainline::{Dht, Id};
use minibit_core::metainfo::InfoHash;
use thiserror::Error;

/// Well-known public bootstrap routers, used when none is given.
pub const DEFAULT_BOOTSTRAP: &[&str] = &[
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
    "dht.libtorrent.org:25401",
];

/// Most nodes of a saved routing table read back at start.
const MAX_SAVED_NODES: usize = 500;

/// Most nodes kept from BEP 5 `port` messages (the oldest go first).
pub const MAX_LEARNED_NODES: usize = 256;

/// How a [`DhtNode`] starts.
#[derive(Clone, Debug)]
pub struct DhtConfig {
    /// UDP port to listen on; 0 picks a free port.
    pub port: u16,
    /// Address to bind (default 0.0.0.0: a DHT node must be reachable).
    pub bind: Ipv4Addr,
    /// Bootstrap nodes as `HOST:PORT` (names resolved at start; ones that
    /// do not resolve are skipped).
    pub bootstrap: Vec<String>,
    /// File the routing table is saved to by [`DhtNode::save_routing_table`]
    /// and read from at start (its nodes bootstrap us too).
    pub routing_table: Option<PathBuf>,
    /// Answer other nodes' queries from the start (a bootstrap node, a
    /// test network) instead of `mainline`'s adaptive mode, which turns
    /// server mode on once the node sees it is reachable.
    pub server_mode: bool,
    /// Longest wait for one node's answer (default 2 s, `mainline`'s).
    pub request_timeout: Duration,
}

impl DhtConfig {
    /// A node on UDP `port`, bootstrapped from [`DEFAULT_BOOTSTRAP`],
    /// adaptive mode, no saved routing table.
    pub fn new(port: u16) -> Self {
        Self {
            port,
            bind: Ipv4Addr::UNSPECIFIED,
            bootstrap: DEFAULT_BOOTSTRAP.iter().map(|s| (*s).to_owned()).collect(),
            routing_table: None,
            server_mode: false,
            request_timeout: Duration::from_secs(2),
        }
    }
}

/// Why the DHT failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DhtError {
    /// The UDP socket could not be bound (port taken, no permission).
    #[error("cannot start the DHT node on UDP port {port}")]
    Start {
        /// The port asked for.
        port: u16,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// `announce_peer` reached no node that stored it (no node known yet,
    /// or none answered).
    #[error("no DHT node stored our announce: {0}")]
    Announce(String),
    /// The routing table file could not be written.
    #[error("cannot save the DHT routing table to {path}")]
    Save {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// What the node knows, for the API and the web UI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtStats {
    /// The node's UDP address.
    pub local_addr: SocketAddr,
    /// Nodes in the routing table.
    pub routing_table_nodes: usize,
    /// Estimated number of nodes in the whole DHT.
    pub size_estimate: usize,
    /// Whether the node answers other nodes' queries.
    pub server_mode: bool,
}

/// One Mainline DHT node. Cheap to clone (a handle on `mainline`'s actor
/// thread, which stops when the last clone is dropped).
#[derive(Clone, Debug)]
pub struct DhtNode {
    dht: AsyncDht,
    local_addr: SocketAddr,
    routing_table: Option<PathBuf>,
    /// Nodes from `port` messages, oldest first, without duplicates.
    learned: Arc<Mutex<VecDeque<SocketAddrV4>>>,
}

impl DhtNode {
    /// Binds the UDP socket and starts the node; bootstrapping continues in
    /// the background.
    ///
    /// # Errors
    /// [`DhtError::Start`] when the socket cannot be bound.
    pub async fn start(config: DhtConfig) -> Result<Self, DhtError> {
        let port = config.port;
        let routing_table = config.routing_table.clone();
        let saved = match &routing_table {
            Some(path) => read_routing_table(path).await,
            None => Vec::new(),
        };
        let dht = tokio::task::spawn_blocking(move || {
            let mut builder = Dht::builder();
            builder
                .port(config.port)
                .bind_address(config.bind)
                .request_timeout(config.request_timeout);
            let bootstrap: Vec<String> = saved.into_iter().chain(config.bootstrap).collect();
            if bootstrap.is_empty() {
                builder.no_bootstrap();
            } else {
                builder.bootstrap(&resolvable(&bootstrap));
            }
            if config.server_mode {
                builder.server_mode();
            }
            builder.build()
        })
        .await
        .map_err(|e| DhtError::Start {
            port,
            source: io::Error::other(e),
        })?
        .map_err(|source| DhtError::Start { port, source })?
        .as_async();
        let info = dht.info().await;
        Ok(Self {
            local_addr: SocketAddr::V4(info.local_addr()),
            dht,
            routing_table,
            learned: Arc::default(),
        })
    }

    /// The node's UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `IP:PORT` of this node, for other nodes to bootstrap from.
    pub fn bootstrap_addr(&self) -> String {
        let ip = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, self.local_addr.port()).to_string()
    }

    /// Stores our address with TCP port `port` for `info_hash` on the
    /// nodes closest to it (BEP 5 `announce_peer`); they keep it for
    /// about 30 minutes.
    ///
    /// # Errors
    /// [`DhtError::Announce`] when no node stored it.
    pub async fn announce(&self, info_hash: &InfoHash, port: u16) -> Result<(), DhtError> {
        self.dht
            .announce_peer(Id::from(info_hash.0), Some(port))
            .await
            .map(|_| ())
            .map_err(|e| DhtError::Announce(e.to_string()))
    }

    /// Looks `info_hash` up (BEP 5 `get_peers`) and returns at most `limit`
    /// distinct usable peers (see [`usable_peer`]; `own` is our TCP listen
    /// address, never returned). Ends when the lookup is exhausted or the
    /// cap is reached.
    pub async fn get_peers(
        &self,
        info_hash: &InfoHash,
        limit: usize,
        own: SocketAddr,
    ) -> Vec<SocketAddr> {
        let mut stream = self.dht.get_peers(Id::from(info_hash.0));
        let mut seen = HashSet::new();
        let mut peers = Vec::new();
        while let Some(batch) = stream.next().await {
            for peer in batch {
                let peer = SocketAddr::V4(peer);
                if peers.len() < limit && usable_peer(peer, own) && seen.insert(peer) {
                    peers.push(peer);
                }
            }
            if peers.len() >= limit {
                break;
            }
        }
        peers
    }

    /// A DHT node a peer named in a BEP 5 `port` message (the peer's IP,
    /// the port it gave): pinged, so it joins the routing table once it
    /// answers (BEP 5), and kept (at most [`MAX_LEARNED_NODES`], the
    /// oldest dropped first) to be written with the routing table by
    /// [`Self::save_routing_table`], so the next start bootstraps from it
    /// even if it never answered. Returns whether it was new (only a new
    /// node is pinged); IPv6, port 0, unspecified, multicast and
    /// broadcast addresses and our own node are ignored.
    pub fn learn(&self, addr: SocketAddr) -> bool {
        let SocketAddr::V4(v4) = addr else {
            return false;
        };
        if !usable_peer(addr, self.local_addr) {
            return false;
        }
        let mut learned = self.learned.lock().unwrap_or_else(PoisonError::into_inner);
        if learned.contains(&v4) {
            return false;
        }
        if learned.len() == MAX_LEARNED_NODES {
            learned.pop_front();
        }
        learned.push_back(v4);
        self.dht.ping(v4);
        true
    }

    /// The nodes kept by [`Self::learn`], oldest first.
    pub fn learned_nodes(&self) -> Vec<SocketAddrV4> {
        self.learned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// What the node knows now.
    pub async fn stats(&self) -> DhtStats {
        let info = self.dht.info().await;
        DhtStats {
            local_addr: self.local_addr,
            routing_table_nodes: self.dht.to_bootstrap().await.len(),
            size_estimate: info.dht_size_estimate().0,
            server_mode: info.server_mode(),
        }
    }

    /// Writes the routing table, then the nodes of [`Self::learn`] not in
    /// it, to the file of [`DhtConfig::routing_table`] (temp file, then
    /// rename: a crash leaves the old table or the new; its folder is
    /// created if missing).
    /// Nothing happens without one, or when both are empty (the
    /// table saved before is kept).
    ///
    /// # Errors
    /// [`DhtError::Save`] when the file cannot be written.
    pub async fn save_routing_table(&self) -> Result<(), DhtError> {
        let Some(path) = self.routing_table.clone() else {
            return Ok(());
        };
        let mut nodes = self.dht.to_bootstrap().await;
        for node in self.learned_nodes() {
            let node = node.to_string();
            if !nodes.contains(&node) {
                nodes.push(node);
            }
        }
        if nodes.is_empty() {
            // Nothing learned (offline): keep the table saved before.
            return Ok(());
        }
        let mut text = nodes.join("\n");
        text.push('\n');
        let tmp = path.with_extension("tmp");
        let write = async {
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            tokio::fs::write(&tmp, text).await?;
            tokio::fs::rename(&tmp, &path).await
        };
        write
            .await
            .map_err(|source| DhtError::Save { path, source })
    }
}

/// Whether a peer address from the DHT is worth dialling: a real port, a
/// unicast address, not our own listen address `own` (when `own` is the
/// unspecified address, our port on loopback).
pub fn usable_peer(peer: SocketAddr, own: SocketAddr) -> bool {
    let ip = peer.ip();
    let unicast = match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    };
    // Listening on every interface, we are at least on loopback.
    let ours = peer.port() == own.port()
        && (peer.ip() == own.ip() || (own.ip().is_unspecified() && peer.ip().is_loopback()));
    peer.port() != 0 && unicast && !ours
}

/// The bootstrap entries that resolve to an IPv4 address (`mainline`
/// panics on none of them, but skips names it cannot resolve only one at
/// a time at start; resolving here keeps a dead name from stalling it).
fn resolvable(entries: &[String]) -> Vec<String> {
    use std::net::ToSocketAddrs;
    entries
        .iter()
        .filter(|e| {
            e.to_socket_addrs()
                .is_ok_and(|mut addrs| addrs.any(|a| a.is_ipv4()))
        })
        .cloned()
        .collect()
}

/// The `IP:PORT` lines of a saved routing table (missing file: none;
/// malformed lines skipped; at most [`MAX_SAVED_NODES`]).
async fn read_routing_table(path: &Path) -> Vec<String> {
    let Ok(text) = tokio::fs::read_to_string(path).await else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| line.trim().parse::<SocketAddrV4>().ok())
        .filter(|addr| addr.port() != 0)
        .take(MAX_SAVED_NODES)
        .map(|addr| addr.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hostile_peer_addresses_are_not_usable() {
        let own = addr("0.0.0.0:6881");
        assert!(usable_peer(addr("10.0.0.2:6881"), own));
        assert!(!usable_peer(addr("10.0.0.2:0"), own), "port 0");
        assert!(!usable_peer(addr("0.0.0.0:51413"), own), "unspecified");
        assert!(!usable_peer(addr("224.0.0.1:51413"), own), "multicast");
        assert!(
            !usable_peer(addr("255.255.255.255:51413"), own),
            "broadcast"
        );
        assert!(!usable_peer(addr("127.0.0.1:6881"), own), "our own port");
        let own = addr("192.168.1.2:6881");
        assert!(!usable_peer(addr("192.168.1.2:6881"), own), "ourselves");
        assert!(usable_peer(addr("192.168.1.3:6881"), own));
    }

    #[tokio::test]
    async fn a_saved_routing_table_keeps_valid_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dht.nodes");
        std::fs::write(
            &path,
            "127.0.0.1:6881\ngarbage\n10.0.0.1:0\n[::1]:5\n10.0.0.2:7\n",
        )
        .unwrap();
        assert_eq!(
            read_routing_table(&path).await,
            ["127.0.0.1:6881", "10.0.0.2:7"]
        );
        assert!(
            read_routing_table(&dir.path().join("none"))
                .await
                .is_empty()
        );
    }
}
