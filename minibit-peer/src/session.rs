//! The one-torrent API: [`Session::start`] starts a [`Client`] on its own
//! listener and adds one torrent to it; [`SessionHandle`] watches that
//! torrent's progress and stops the client. The `minibit-peer` program
//! and most tests use it; everything runs in the client.
//!
//! Memory stays bounded whatever the torrent's size: block data lives only
//! in the in-flight buffer (capped, spilling to disk), in the core's
//! bounded serve pipeline (a few `ReadBlock`s per peer) and in the bounded
//! per-connection channels.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use minibit_core::magnet::Magnet;
use minibit_core::metainfo::Metainfo;
use minibit_core::session::SessionConfig as RouterConfig;
use tokio::sync::watch;

use crate::dht::DhtConfig;
use crate::lsd::LsdConfig;

use crate::client::{
    AddMagnet, AddOptions, AddTorrent, Client, ClientConfig, ClientError, PeerSink, Progress,
    TorrentHandle,
};

/// What a [`Session`] downloads: a `.torrent`'s metainfo, or a magnet
/// link (BEP 9: the metadata is fetched from peers first).
#[derive(Clone, Debug)]
pub enum TorrentSource {
    /// A `.torrent`.
    Metainfo(Box<Metainfo>),
    /// A magnet link.
    Magnet(Magnet),
}

/// How a [`Session`] runs.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The torrent.
    pub source: TorrentSource,
    /// Output and state folders, resume interval (default 5 s; the
    /// resume data is also saved at shutdown), the core's tunables.
    pub options: AddOptions,
    /// Address to listen on for incoming peers; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Tracker URL to announce to instead of the metainfo's `announce` and
    /// `announce-list` tiers (BEP 12).
    pub announce_url: Option<String>,
    /// Longest wait for an outgoing TCP connect.
    pub connect_timeout: Duration,
    /// Longest wait for a peer's handshake.
    pub handshake_timeout: Duration,
    /// Longest wait for one tracker's announce answer (then the next
    /// tracker of the tier is tried).
    pub tracker_timeout: Duration,
    /// First retransmission delay of a UDP tracker request, doubling with
    /// each (BEP 15: 15 s).
    pub udp_retransmit: Duration,
    /// Most bytes of unverified blocks kept in memory before blocks are
    /// spilled to disk.
    pub max_buffered_bytes: usize,
    /// Most bytes queued for one peer and not yet written to its socket; a
    /// peer that stops reading until the queue holds this much is
    /// disconnected.
    pub max_queued_bytes: usize,
    /// Most connections (dialling, handshaking or connected, both
    /// directions); past it an incoming connection evicts the oldest one
    /// still handshaking, or is refused.
    pub max_connections: usize,
    /// Upload rate limit, payload bytes per second (0 = unlimited).
    pub upload_limit: u64,
    /// Download rate limit, payload bytes per second (0 = unlimited).
    pub download_limit: u64,
    /// Seed mode: see [`AddTorrent::seed_mode`]. Off by default.
    pub seed_mode: bool,
    /// The Mainline DHT node: see [`ClientConfig::dht`] (default `None`).
    pub dht: Option<DhtConfig>,
    /// Local service discovery: see [`ClientConfig::lsd`] (default `None`).
    pub lsd: Option<LsdConfig>,
}

impl SessionConfig {
    /// Defaults: listen on every interface on a free port, the metainfo's
    /// tracker, 5 s connect timeout, 10 s handshake timeout, 15 s tracker
    /// timeout, BEP 15's 15 s UDP retransmission, 64 MiB of buffered
    /// blocks, 8 MiB queued per peer, 100 connections, no rate limit, seed
    /// mode off, resume data in `.minibit` inside `output_dir` saved at
    /// most every 5 s, no DHT, no LSD.
    pub fn new(metainfo: Metainfo, output_dir: impl Into<PathBuf>) -> Self {
        Self::with_source(TorrentSource::Metainfo(Box::new(metainfo)), output_dir)
    }

    /// The defaults of [`SessionConfig::new`] for a magnet link (see
    /// [`Client::add_magnet`]; [`SessionConfig::announce_url`] and
    /// [`SessionConfig::seed_mode`] do not apply to it).
    pub fn from_magnet(magnet: Magnet, output_dir: impl Into<PathBuf>) -> Self {
        Self::with_source(TorrentSource::Magnet(magnet), output_dir)
    }

    fn with_source(source: TorrentSource, output_dir: impl Into<PathBuf>) -> Self {
        Self {
            source,
            options: AddOptions::new(output_dir),
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            announce_url: None,
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            tracker_timeout: Duration::from_secs(15),
            udp_retransmit: Duration::from_secs(15),
            max_buffered_bytes: 64 * 1024 * 1024,
            max_queued_bytes: 8 * 1024 * 1024,
            max_connections: 100,
            upload_limit: 0,
            download_limit: 0,
            seed_mode: false,
            dht: None,
            lsd: None,
        }
    }
}

/// Starts one-torrent sessions; see [`Session::start`].
#[derive(Debug)]
pub struct Session;

/// Controls a running session. Dropping it stops the session (without
/// waiting for the `stopped` announce); prefer [`SessionHandle::shutdown`].
#[derive(Debug)]
pub struct SessionHandle {
    client: Client,
    torrent: TorrentHandle,
}

impl Session {
    /// Starts a client on `config.listen` and adds the torrent: its files
    /// are opened (and preallocated), the pieces already on disk verified
    /// (resume), then it announces `started` and joins the swarm.
    ///
    /// # Errors
    /// [`ClientError`] for listener, file, resume or HTTP client failures.
    pub async fn start(config: SessionConfig) -> Result<SessionHandle, ClientError> {
        let client = Client::start(ClientConfig {
            listen: config.listen,
            limits: RouterConfig {
                max_connections: config.max_connections,
                // Every connection may be handshaking at once (a flash
                // crowd); past the cap the oldest is still evicted.
                max_handshaking: config.max_connections,
                handshake_timeout: config.handshake_timeout,
                upload_limit: config.upload_limit,
                download_limit: config.download_limit,
                ..RouterConfig::default()
            },
            connect_timeout: config.connect_timeout,
            tracker_timeout: config.tracker_timeout,
            udp_retransmit: config.udp_retransmit,
            max_buffered_bytes: config.max_buffered_bytes,
            max_queued_bytes: config.max_queued_bytes,
            dht: config.dht,
            lsd: config.lsd,
        })
        .await?;
        let added = match config.source {
            TorrentSource::Metainfo(metainfo) => {
                client
                    .add_torrent(AddTorrent {
                        metainfo: *metainfo,
                        announce_url: config.announce_url,
                        seed_mode: config.seed_mode,
                        options: config.options,
                    })
                    .await
            }
            TorrentSource::Magnet(magnet) => {
                client
                    .add_magnet(AddMagnet {
                        magnet,
                        options: config.options,
                    })
                    .await
            }
        };
        match added {
            Ok(torrent) => Ok(SessionHandle { client, torrent }),
            Err(e) => {
                // The error to report is `e`, not how the client ended.
                let _ = client.shutdown().await;
                Err(e)
            }
        }
    }
}

impl SessionHandle {
    /// The address the listener is bound to (its port is the one announced).
    pub fn local_addr(&self) -> SocketAddr {
        self.client.local_addr()
    }

    /// The torrent's name: its metainfo's, or for a magnet link still
    /// fetching its metadata the link's `dn` (else the info-hash in hex).
    ///
    /// # Errors
    /// [`ClientError::ShutDown`].
    pub async fn name(&self) -> Result<String, ClientError> {
        let id = self.torrent.id();
        let list = self.client.list().await?;
        Ok(list
            .into_iter()
            .find(|status| status.id == id)
            .map(|status| status.name)
            .unwrap_or_default())
    }

    /// Full paths of the torrent's files (see [`TorrentHandle::paths`]).
    pub fn paths(&self) -> &[PathBuf] {
        self.torrent.paths()
    }

    /// A receiver of progress snapshots (see [`TorrentHandle::progress`]).
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.torrent.progress()
    }

    /// Peer addresses learned outside the tracker announce: see
    /// [`PeerSink::add_peers`].
    pub fn add_peers(&self, peers: Vec<SocketAddr>) {
        self.torrent.add_peers(peers);
    }

    /// A handle that adds peers to this session, for code that does not
    /// own the [`SessionHandle`].
    pub fn peer_sink(&self) -> PeerSink {
        self.torrent.peer_sink()
    }

    /// Waits until every piece is verified (`true`), or the session ended
    /// first (`false`; [`SessionHandle::shutdown`] then gives the reason).
    pub async fn wait_complete(&self) -> bool {
        self.torrent.wait_complete().await
    }

    /// Waits until the session ends on its own (a fatal error).
    pub async fn wait_ended(&self) {
        self.torrent.wait_ended().await;
    }

    /// Stops the session: publishes a last progress snapshot (the final
    /// counters, still readable from a [`SessionHandle::progress`] receiver),
    /// waits (bounded) for pending announces, announces `stopped`,
    /// disconnects every peer, and returns how the session ended.
    ///
    /// # Errors
    /// The [`ClientError`] that stopped the torrent or the client, if one did.
    pub async fn shutdown(self) -> Result<(), ClientError> {
        let ended = self.client.shutdown().await;
        match self.torrent.take_error() {
            Some(error) => Err(error),
            None => ended,
        }
    }
}
