//! The [`Client`]: many torrents behind one listen port, in one process.
//!
//! [`Client::start`] binds the listener and spawns the one task that owns
//! the core [`minibit_core::session::Session`] (every torrent, the
//! connection table, the global limits: connections, handshakes, dials,
//! bans, upload and download rate). Each torrent added with
//! [`Client::add_torrent`] has its own files, in-flight block buffer, read
//! cache and tracker client; the hashing pool, the disk I/O and the memory
//! budget for block data are shared. An inbound connection is routed by
//! the initiator's handshake (BEP 3), read before ours is written.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use minibit_core::metainfo::Metainfo;
//! use minibit_peer::{AddTorrent, Client, ClientConfig};
//!
//! let client = Client::start(ClientConfig::default()).await?;
//! println!("listening on {}", client.local_addr());
//! let album = Metainfo::from_bytes(&std::fs::read("album.torrent")?)?;
//! let film = Metainfo::from_bytes(&std::fs::read("film.torrent")?)?;
//! let album = client.add_torrent(AddTorrent::new(album, "downloads")).await?;
//! let film = client.add_torrent(AddTorrent::new(film, "downloads")).await?;
//! for torrent in client.list().await? {
//!     println!("{}: {} of {} bytes", torrent.name, torrent.progress.have_bytes, torrent.progress.total_bytes);
//! }
//! album.wait_complete().await;
//! client.remove(film.id(), true).await?; // drop it, delete its files and resume data
//! client.shutdown().await?; // announces `stopped`, closes connections
//! # Ok(())
//! # }
//! ```
//!
//! | module | job |
//! |---|---|
//! | `add_options` | what every way of adding a torrent shares (a leaf) |
//! | `types` | the public vocabulary: progress, list entries, errors (a leaf) |
//! | `open` | a torrent's files opened and checked before it reaches the task |
//! | `command` | requests from the API to the task |
//! | `torrent` | the task's side of one torrent (files, buffers, tracker) |
//! | `driver` | the task: owns the core session, runs everything else |
//! | `magnet` | torrents started from a magnet link, until their files open |
//! | `discovery` | the DHT and LSD nodes, and each torrent's use of them |

mod add_options;
mod command;
mod discovery;
mod driver;
mod magnet;
mod open;
mod torrent;
mod types;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minibit_core::id::TorrentId;
use minibit_core::metainfo::InfoHash;
use minibit_core::session::{Session, SessionConfig as RouterConfig};
use minibit_core::wire::PeerId;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

pub use add_options::AddOptions;
pub use discovery::{DhtStatus, DhtTorrentStatus, WANTED_PEERS};
pub use magnet::AddMagnet;
pub use open::AddTorrent;
pub use types::{
    ClientError, PeerInfo, Progress, TorrentDetail, TorrentStatus, TrackerAnswer, TrackerInfo,
};

use command::Command;
use discovery::Discovery;
use driver::{Driver, Parts};
use open::Context;

use crate::connection::ConnConfig;
use crate::dht::DhtConfig;
use crate::inflight::MemoryBudget;
use crate::lsd::LsdConfig;
use crate::partial::part_path;
use crate::tracker_client::TrackerConfig;

/// How a [`Client`] runs.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Address to listen on for incoming peers; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The global limits: connections, handshakes (cap and deadline),
    /// dials, rate limits (bytes per second), unchoke slots. Its
    /// `listen_addr` is set from the bound listener.
    pub limits: RouterConfig,
    /// Longest wait for an outgoing TCP connect.
    pub connect_timeout: Duration,
    /// Longest wait for one tracker's announce answer (then the next
    /// tracker of the tier is tried).
    pub tracker_timeout: Duration,
    /// First retransmission delay of a UDP tracker request, doubling with
    /// each (BEP 15: 15 s).
    pub udp_retransmit: Duration,
    /// Most bytes of unverified blocks kept in memory, over all torrents,
    /// before blocks are spilled to disk.
    pub max_buffered_bytes: usize,
    /// Most bytes queued for one peer and not yet written to its socket; a
    /// peer that stops reading until the queue holds this much is
    /// disconnected.
    pub max_queued_bytes: usize,
    /// The Mainline DHT node (BEP 5), `None` for none (the default, so a
    /// library user's client stays off the public DHT unless asked). A
    /// port of 0 means the TCP listen port's number. It starts in the
    /// background; failing to start is a warning. Every non-private
    /// torrent is looked up and announced there (see [`WANTED_PEERS`]).
    pub dht: Option<DhtConfig>,
    /// Local service discovery (BEP 14), `None` for none (the default).
    /// Its `listen_port` is set from the bound listener; failing to join
    /// the multicast group is a warning. Every non-private torrent is
    /// announced there.
    pub lsd: Option<LsdConfig>,
}

impl Default for ClientConfig {
    /// Listen on 127.0.0.1 on a free port (secure by default), the core's
    /// default limits (200 connections, 50 handshaking for at most 5 s,
    /// no rate limit), 5 s connect timeout, 15 s tracker timeout, BEP 15's
    /// 15 s UDP retransmission, 64 MiB
    /// of buffered blocks, 8 MiB queued per peer, no DHT, no LSD.
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            limits: RouterConfig::default(),
            connect_timeout: Duration::from_secs(5),
            tracker_timeout: Duration::from_secs(15),
            udp_retransmit: Duration::from_secs(15),
            max_buffered_bytes: 64 * 1024 * 1024,
            max_queued_bytes: 8 * 1024 * 1024,
            dht: None,
            lsd: None,
        }
    }
}

/// Capacity of the command channel to the client task.
const COMMAND_QUEUE: usize = 256;

/// A running client: one listener, many torrents. Dropping it stops the
/// client (without waiting for the `stopped` announces); prefer
/// [`Client::shutdown`].
#[derive(Debug)]
pub struct Client {
    local_addr: SocketAddr,
    context: Context,
    commands: mpsc::Sender<Command>,
    discovery: Option<Discovery>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ClientError>>,
}

impl Client {
    /// Binds the listener and starts the client task (no torrent yet),
    /// and the DHT and LSD nodes of the config (in the background).
    ///
    /// # Errors
    /// [`ClientError::Listen`] when the address cannot be bound.
    pub async fn start(config: ClientConfig) -> Result<Self, ClientError> {
        let listen_error = |source| ClientError::Listen {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(listen_error)?;
        let local_addr = listener.local_addr().map_err(listen_error)?;
        let peer_id = PeerId::generate(rand::random());
        let mut limits = config.limits.clone();
        limits.listen_addr = Some(reachable(local_addr));
        limits.dht_port = config
            .dht
            .as_ref()
            .map(|dht| discovery::dht_port(dht, local_addr));
        let session = Session::new(limits, peer_id, Instant::now());
        let discovery = (config.dht.is_some() || config.lsd.is_some())
            .then(|| Discovery::start(local_addr, config.dht, config.lsd));
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (stop, stop_rx) = oneshot::channel();
        let driver = Driver::new(Parts {
            session,
            listener,
            conn_config: ConnConfig {
                connect_timeout: config.connect_timeout,
                max_queued_bytes: config.max_queued_bytes,
            },
            budget: MemoryBudget::new(config.max_buffered_bytes),
            commands: commands_rx,
            dht_nodes: discovery.as_ref().and_then(Discovery::learned_nodes),
        });
        let task = tokio::spawn(driver.run(stop_rx));
        Ok(Self {
            local_addr,
            context: Context {
                peer_id,
                port: local_addr.port(),
                tracker: TrackerConfig {
                    timeout: config.tracker_timeout,
                    udp_retransmit: config.udp_retransmit,
                },
            },
            commands,
            discovery,
            stop: Some(stop),
            task,
        })
    }

    /// The address the listener is bound to (its port is the one
    /// announced for every torrent).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Opens (and preallocates) the torrent's files, verifies the pieces
    /// already on disk (resume), then adds the torrent, which announces
    /// `started` and joins its swarm; unless it is private (BEP 27), it is
    /// also looked up and announced on the DHT and LSD when they run.
    ///
    /// # Errors
    /// [`ClientError`] for file, resume or HTTP client failures;
    /// [`ClientError::Torrent`] if the client has this info-hash already;
    /// [`ClientError::ShutDown`].
    pub async fn add_torrent(&self, add: AddTorrent) -> Result<TorrentHandle, ClientError> {
        let private = add.metainfo.info().private();
        let prepared = open::prepare(add, self.context).await?;
        let info_hash = prepared.info_hash;
        let paths = prepared.files.storage.paths().to_vec();
        let progress = prepared.progress.subscribe();
        let error = Arc::clone(&prepared.error);
        let id = self
            .request(|reply| Command::Add {
                torrent: Box::new(prepared),
                reply,
            })
            .await?;
        Ok(self.handle(id, info_hash, private, paths, progress, error))
    }

    /// Adds a torrent from a magnet link (BEP 9). It announces `started`
    /// (with `left` = 16384 bytes: a leecher, as libtorrent does) to the
    /// link's `tr` trackers, dials its `x.pe` peers (host names resolved
    /// in the background), and, when the DHT and LSD run, looks it up
    /// there; it fetches the info dictionary from its peers with
    /// `ut_metadata`, checking its SHA-1 against the info-hash (a peer
    /// sending other metadata, or a `metadata_size` over 8 MiB, is
    /// dropped). Meanwhile its [`Progress::fetching_metadata`] is set and
    /// [`TorrentHandle::paths`] is empty. Then the `.torrent` (with the
    /// link's trackers) is saved in the state folder, the files are opened
    /// and what is on disk is checked, and it downloads like a `.torrent`.
    /// A `.torrent` an earlier run saved for this info-hash is used at
    /// once instead of fetching the metadata again.
    ///
    /// # Errors
    /// As [`Client::add_torrent`].
    pub async fn add_magnet(&self, add: AddMagnet) -> Result<TorrentHandle, ClientError> {
        if let Some(metainfo) = add.saved_metainfo() {
            return self.add_torrent(add.into_add_torrent(metainfo)).await;
        }
        let prepared = magnet::prepare(add, self.context)?;
        let info_hash = prepared.add.magnet.info_hash;
        let magnet = prepared.add.magnet.clone();
        let progress = prepared.progress.subscribe();
        let error = Arc::clone(&prepared.error);
        let id = self
            .request(|reply| Command::AddMagnet {
                torrent: Box::new(prepared),
                reply,
            })
            .await?;
        // The metadata tells whether it is private (BEP 27); until then it
        // is looked up like any torrent.
        let handle = self.handle(id, info_hash, false, Vec::new(), progress, error);
        magnet::resolve_peers(&magnet, handle.peer_sink());
        Ok(handle)
    }

    /// The handle of torrent `id`, registered with the DHT and LSD nodes
    /// unless `private`.
    fn handle(
        &self,
        id: TorrentId,
        info_hash: InfoHash,
        private: bool,
        paths: Vec<PathBuf>,
        progress: watch::Receiver<Progress>,
        error: Arc<Mutex<Option<ClientError>>>,
    ) -> TorrentHandle {
        let handle = TorrentHandle {
            id,
            info_hash,
            paths,
            progress,
            error,
            peers: PeerSink {
                commands: self.commands.clone(),
                torrent: id,
            },
        };
        if let Some(discovery) = &self.discovery {
            discovery.add(
                id,
                info_hash,
                private,
                handle.peer_sink(),
                handle.progress(),
            );
        }
        handle
    }

    /// Removes torrent `id` (it announces `stopped`, its connections
    /// close) and saves its resume data (a later add of the same torrent
    /// resumes without re-hashing); with `delete_data`, its files (and
    /// `NAME.part` files), its resume data, its part files of skipped
    /// files and the `.torrent` saved from its magnet link are deleted
    /// instead.
    ///
    /// # Errors
    /// [`ClientError::Torrent`] for an unknown id, [`ClientError::Delete`],
    /// [`ClientError::ShutDown`].
    pub async fn remove(&self, id: TorrentId, delete_data: bool) -> Result<(), ClientError> {
        let removed = self.request(|reply| Command::Remove { id, reply }).await?;
        if let Some(discovery) = &self.discovery {
            discovery.remove(id);
        }
        if !delete_data {
            if let Some(resume) = removed.resume {
                resume.save().await;
            }
            return Ok(());
        }
        let mut paths = removed.paths;
        if let Some(resume) = removed.resume {
            paths.push(resume.discard().await);
        }
        paths.extend(removed.saved_torrent);
        let parts_dir = removed.parts_dir;
        tokio::task::spawn_blocking(move || delete_files(&paths, parts_dir.as_deref())).await??;
        Ok(())
    }

    /// Pauses torrent `id`: it announces `stopped`, its connections close,
    /// inbound connections for it are refused; its files stay open.
    ///
    /// # Errors
    /// [`ClientError::Torrent`] for an unknown id, [`ClientError::ShutDown`].
    pub async fn pause(&self, id: TorrentId) -> Result<(), ClientError> {
        self.request(|reply| Command::Pause { id, reply }).await
    }

    /// Resumes a paused torrent (announces `started` again).
    ///
    /// # Errors
    /// [`ClientError::Torrent`] for an unknown id, [`ClientError::ShutDown`].
    pub async fn resume(&self, id: TorrentId) -> Result<(), ClientError> {
        self.request(|reply| Command::Resume { id, reply }).await
    }

    /// Waits until the DHT node is up (it starts in the background) and
    /// returns its UDP address; `None` when the client runs no DHT or the
    /// node could not start.
    pub async fn dht_addr(&self) -> Option<SocketAddr> {
        match &self.discovery {
            Some(discovery) => discovery.dht_addr().await,
            None => None,
        }
    }

    /// The DHT's state (BEP 5): the node's routing table, nodes learned
    /// from `port` messages, lookups in flight, each torrent's lookups and
    /// peers found; `None` when the client runs no DHT.
    pub async fn dht_status(&self) -> Option<DhtStatus> {
        match &self.discovery {
            Some(discovery) => discovery.dht_status().await,
            None => None,
        }
    }

    /// Every torrent with its progress and rates, in the order added.
    ///
    /// # Errors
    /// [`ClientError::ShutDown`].
    pub async fn list(&self) -> Result<Vec<TorrentStatus>, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::List { reply })
            .await
            .map_err(|_| ClientError::ShutDown)?;
        answer.await.map_err(|_| ClientError::ShutDown)
    }

    /// Torrent `id` in detail: piece map (verified, downloading),
    /// availability, file priorities, peers, trackers, its own limits.
    ///
    /// # Errors
    /// [`ClientError::Torrent`] for an unknown id, [`ClientError::ShutDown`].
    pub async fn detail(&self, id: TorrentId) -> Result<TorrentDetail, ClientError> {
        self.request(|reply| Command::Detail { id, reply }).await
    }

    /// Sets torrent `id`'s own rate limits, payload bytes per second (0 =
    /// unlimited), applied under the global ones (see
    /// [`minibit_core::session::Session::set_torrent_rate_limits`]).
    ///
    /// # Errors
    /// [`ClientError::Torrent`] for an unknown id, [`ClientError::ShutDown`].
    pub async fn set_torrent_rate_limits(
        &self,
        id: TorrentId,
        upload: u64,
        download: u64,
    ) -> Result<(), ClientError> {
        self.request(|reply| Command::SetTorrentRateLimits {
            id,
            upload,
            download,
            reply,
        })
        .await
    }

    /// Sets the global rate limits, payload bytes per second (0 = unlimited).
    ///
    /// # Errors
    /// [`ClientError::ShutDown`].
    pub async fn set_rate_limits(&self, upload: u64, download: u64) -> Result<(), ClientError> {
        self.commands
            .send(Command::SetRateLimits { upload, download })
            .await
            .map_err(|_| ClientError::ShutDown)
    }

    /// Stops the client: publishes a last progress snapshot of every
    /// torrent, waits (2 s at most) for pending announces, announces
    /// `stopped` for every torrent, closes every connection, saves the
    /// DHT routing table, stops the DHT and LSD nodes, and returns how the
    /// client ended.
    ///
    /// # Errors
    /// The [`ClientError`] that ended the client task, if one did.
    pub async fn shutdown(mut self) -> Result<(), ClientError> {
        if let Some(discovery) = self.discovery.take() {
            discovery.shutdown().await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await?
    }

    async fn request<T>(
        &self,
        command: impl FnOnce(command::Reply<T>) -> Command,
    ) -> Result<T, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| ClientError::ShutDown)?;
        answer.await.map_err(|_| ClientError::ShutDown)?
    }
}

/// Deletes each of `paths` and its `NAME.part`, and the folder of part
/// files of skipped files; missing ones are fine.
fn delete_files(paths: &[PathBuf], parts_dir: Option<&Path>) -> Result<(), ClientError> {
    let missing_is_fine = |path: PathBuf, result: std::io::Result<()>| match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(ClientError::Delete { path, source: e })
        }
        _ => Ok(()),
    };
    for path in paths.iter().flat_map(|p| [p.clone(), part_path(p)]) {
        let result = std::fs::remove_file(&path);
        missing_is_fine(path, result)?;
    }
    match parts_dir {
        Some(dir) => missing_is_fine(dir.to_owned(), std::fs::remove_dir_all(dir)),
        None => Ok(()),
    }
}

/// The address other peers reach us at, as far as we can tell: an
/// unspecified listen address becomes loopback (used by the core only to
/// avoid dialling ourselves).
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

/// One torrent of a [`Client`]: watch its progress, hand it peers. Cheap
/// to keep; it outlives the torrent harmlessly.
#[derive(Debug)]
pub struct TorrentHandle {
    id: TorrentId,
    info_hash: InfoHash,
    paths: Vec<PathBuf>,
    progress: watch::Receiver<Progress>,
    error: Arc<Mutex<Option<ClientError>>>,
    peers: PeerSink,
}

impl TorrentHandle {
    /// The torrent's id inside its client (for [`Client::remove`],
    /// [`Client::pause`], [`Client::resume`]).
    pub fn id(&self) -> TorrentId {
        self.id
    }

    /// The torrent's info-hash.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// Full paths of the torrent's files, in torrent order (their final
    /// names: until all its pieces are verified a file is `NAME.part`, see
    /// [`crate::partial`]).
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// A receiver of progress snapshots (updated every 250 ms, on
    /// completion and at shutdown). Do not hold a `borrow()` guard across an
    /// `.await`: the client task blocks while publishing until it is dropped.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// Waits until every piece is verified (`true`), or the torrent ended
    /// first (`false`: removed, stopped by an error, or the client stopped).
    pub async fn wait_complete(&self) -> bool {
        let mut progress = self.progress.clone();
        progress.wait_for(|p| p.complete).await.is_ok()
    }

    /// Waits until the torrent leaves the client (removed, a disk error,
    /// or the client stopped).
    pub async fn wait_ended(&self) {
        let mut progress = self.progress.clone();
        while progress.changed().await.is_ok() {}
    }

    /// The error that stopped the torrent, if one did (taken: a second
    /// call gives `None`).
    pub fn take_error(&self) -> Option<ClientError> {
        self.error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Peer addresses learned outside the tracker announce: see
    /// [`PeerSink::add_peers`].
    pub fn add_peers(&self, peers: Vec<SocketAddr>) {
        self.peers.add_peers(peers);
    }

    /// A handle that adds peers to this torrent, for code that does not
    /// own the [`TorrentHandle`].
    pub fn peer_sink(&self) -> PeerSink {
        self.peers.clone()
    }
}

/// Hands peer addresses learned outside the tracker announce (e.g. by an
/// embedded tracker) to one torrent of a running client; cheap to clone,
/// outlives the torrent and the client harmlessly. From
/// [`TorrentHandle::peer_sink`].
#[derive(Clone, Debug)]
pub struct PeerSink {
    commands: mpsc::Sender<Command>,
    torrent: TorrentId,
}

impl PeerSink {
    /// The torrent dials `peers` like tracker peers (never itself, a banned
    /// or an already known address) while it has free connection slots. A
    /// hint: dropped when the client has ended or its command queue is
    /// full.
    pub fn add_peers(&self, peers: Vec<SocketAddr>) {
        let peers = peers.into_iter().map(|a| (a, None)).collect();
        let _ = self.commands.try_send(Command::AddPeers {
            id: self.torrent,
            peers,
        });
    }

    /// Like [`PeerSink::add_peers`] for one peer whose id is known (from
    /// its announce): skipped if a peer with that id is already connected
    /// (it dialled us; a second connection would be refused as a duplicate,
    /// and a peer breaking the tie the other way would close both).
    pub fn add_peer(&self, addr: SocketAddr, peer_id: PeerId) {
        let _ = self.commands.try_send(Command::AddPeers {
            id: self.torrent,
            peers: vec![(addr, Some(peer_id))],
        });
    }
}

/// The path a single-file torrent's content lands at, or the folder of a
/// multi-file one, under `output_dir`.
pub fn content_path(metainfo: &minibit_core::metainfo::Metainfo, output_dir: &Path) -> PathBuf {
    output_dir.join(metainfo.info().name())
}
