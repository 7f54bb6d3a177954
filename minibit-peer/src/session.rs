//! The session: one task owns the core [`Torrent`] and carries out what it
//! asks. It selects over inbound frames and connection events, finished
//! disk and hash jobs, tracker answers, the listener for incoming peers, a
//! stop request and `sleep_until(poll_timeout())`; after each wake-up it
//! drains `poll_action` then `poll_event` (the core's run loop).
//!
//! Memory stays bounded whatever the torrent's size: block data lives only
//! in the [`InFlight`] buffer (capped, spilling to disk), in the core's
//! bounded serve pipeline (a few `ReadBlock`s per peer) and in the bounded
//! per-connection channels.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::Metainfo;
use minibit_core::piece::{BlockRef, PieceIndex};
use minibit_core::torrent::{
    Action, AnnounceEvent, DisconnectReason, Event, PeerKey, Torrent, TorrentConfig,
};
use minibit_core::tracker::AnnounceResponse;
use minibit_core::wire::{Message, PeerId};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::connection::{self, ConnConfig, ConnEvent, ConnId};
use crate::hasher::PieceHash;
use crate::inflight::InFlight;
use crate::resume;
use crate::storage::{FileEntry, Storage, blocking};
use crate::tracker_client::{AnnounceError, TrackerClient};

/// How a [`Session`] runs.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The torrent.
    pub metainfo: Metainfo,
    /// Folder the torrent's files go in (for a seeder: the folder that
    /// already holds them).
    pub output_dir: PathBuf,
    /// Address to listen on for incoming peers; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Tracker URL to announce to instead of the metainfo's `announce`.
    pub announce_url: Option<String>,
    /// The core's tunables (RNG seed, slots, super-seeding, ...).
    pub torrent: TorrentConfig,
    /// Longest wait for an outgoing TCP connect.
    pub connect_timeout: Duration,
    /// Longest wait for a peer's handshake.
    pub handshake_timeout: Duration,
    /// Longest wait for a tracker announce.
    pub tracker_timeout: Duration,
    /// Most bytes of unverified blocks kept in memory before blocks are
    /// spilled to disk.
    pub max_buffered_bytes: usize,
    /// Capacity of each peer's outgoing message queue; a peer that lets it
    /// fill up is disconnected.
    pub outgoing_capacity: usize,
}

impl SessionConfig {
    /// Defaults: listen on every interface on a free port, the metainfo's
    /// tracker, 5 s connect timeout, 10 s handshake timeout, 15 s tracker
    /// timeout, 64 MiB of buffered blocks, 512 queued messages per peer.
    pub fn new(metainfo: Metainfo, output_dir: impl Into<PathBuf>) -> Self {
        Self {
            metainfo,
            output_dir: output_dir.into(),
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            announce_url: None,
            torrent: TorrentConfig::default(),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            tracker_timeout: Duration::from_secs(15),
            max_buffered_bytes: 64 * 1024 * 1024,
            outgoing_capacity: 512,
        }
    }
}

/// Why a session could not start or stopped early.
#[derive(Debug, Error)]
pub enum SessionError {
    /// Creating or opening the files failed.
    #[error("cannot open the files under {dir}: {source}")]
    Storage {
        /// The output folder.
        dir: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// Verifying the existing files failed.
    #[error("cannot verify existing data: {0}")]
    Resume(io::Error),
    /// Binding the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: io::Error,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// Reading or writing a piece failed while running.
    #[error("disk error: {0}")]
    Disk(io::Error),
    /// The session task panicked or was cancelled.
    #[error("session task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A snapshot of a session's progress (published on a watch channel).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// Bytes of verified pieces we hold.
    pub have_bytes: u64,
    /// Total size of the torrent, bytes.
    pub total_bytes: u64,
    /// Pieces verified.
    pub pieces_have: u32,
    /// Pieces in the torrent.
    pub piece_count: u32,
    /// Payload bytes uploaded since start.
    pub uploaded: u64,
    /// Verified bytes downloaded since start.
    pub downloaded: u64,
    /// Download rate, bytes per second.
    pub download_rate: f64,
    /// Upload rate, bytes per second.
    pub upload_rate: f64,
    /// Connected peers.
    pub peers: usize,
    /// Every piece is verified.
    pub complete: bool,
}

/// Starts sessions; see [`Session::start`].
#[derive(Debug)]
pub struct Session;

/// Controls a running session. Dropping it stops the session (without
/// waiting for the `stopped` announce); prefer [`SessionHandle::shutdown`].
#[derive(Debug)]
pub struct SessionHandle {
    local_addr: SocketAddr,
    paths: Vec<PathBuf>,
    progress: watch::Receiver<Progress>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), SessionError>>,
}

impl Session {
    /// Opens (and preallocates) the files, verifies the pieces already on
    /// disk (resume), binds the listener and starts the session task, which
    /// announces `started` and joins the swarm.
    ///
    /// # Errors
    /// [`SessionError`] for file, resume, listener or HTTP client failures.
    pub async fn start(config: SessionConfig) -> Result<SessionHandle, SessionError> {
        let metainfo = &config.metainfo;
        let files: Vec<FileEntry> = metainfo
            .info()
            .files()
            .iter()
            .enumerate()
            .map(|(i, f)| FileEntry {
                path: metainfo.relative_path(i),
                length: f.length,
            })
            .collect();
        let layout = metainfo.layout().clone();
        let dir = config.output_dir.clone();
        let open_dir = dir.clone();
        let (storage, report) = blocking(move || Storage::open(&open_dir, &files, layout))
            .await
            .map_err(|source| SessionError::Storage { dir, source })?;
        let hashes: Arc<[PieceHash]> = metainfo.info().pieces().into();
        let have = if report.had_data {
            resume::verify_existing(&storage, Arc::clone(&hashes))
                .await
                .map_err(SessionError::Resume)?
        } else {
            Bitfield::new(metainfo.layout().piece_count())
        };
        info!(
            pieces = have.count(),
            of = have.len(),
            "resume: verified pieces on disk"
        );
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| SessionError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| SessionError::Listen {
                addr: config.listen,
                source,
            })?;
        let peer_id = PeerId::generate(rand::random());
        let tracker = config
            .announce_url
            .clone()
            .or_else(|| metainfo.announce().map(str::to_owned))
            .map(|url| {
                TrackerClient::new(
                    url,
                    metainfo.info_hash(),
                    peer_id,
                    local_addr.port(),
                    config.tracker_timeout,
                )
            })
            .transpose()?;
        let mut torrent_config = config.torrent.clone();
        torrent_config.listen_addr = Some(reachable(local_addr));
        let torrent = Torrent::new(
            torrent_config,
            metainfo.info_hash(),
            peer_id,
            metainfo.layout().clone(),
            have,
            Instant::now(),
        );
        let conn_config = ConnConfig {
            handshake: torrent.handshake(),
            piece_count: metainfo.layout().piece_count(),
            connect_timeout: config.connect_timeout,
            handshake_timeout: config.handshake_timeout,
            outgoing_capacity: config.outgoing_capacity,
        };
        let (progress_tx, progress) = watch::channel(Progress::default());
        let (stop, stop_rx) = oneshot::channel();
        let (events_tx, events_rx) = mpsc::channel(1024);
        let paths = storage.paths().to_vec();
        let driver = Driver {
            inflight: InFlight::new(storage.clone(), config.max_buffered_bytes),
            torrent,
            storage,
            hashes,
            tracker,
            listener,
            conn_config,
            next_conn: 0,
            events_tx,
            events_rx,
            peers: HashMap::new(),
            by_conn: HashMap::new(),
            dialing: HashMap::new(),
            conn_tasks: JoinSet::new(),
            jobs: JoinSet::new(),
            announces: JoinSet::new(),
            progress: progress_tx,
        };
        driver.publish();
        let task = tokio::spawn(driver.run(stop_rx));
        Ok(SessionHandle {
            local_addr,
            paths,
            progress,
            stop: Some(stop),
            task,
        })
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

impl SessionHandle {
    /// The address the listener is bound to (its port is the one announced).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Full paths of the torrent's files, in torrent order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// A receiver of progress snapshots.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// Waits until every piece is verified (`true`), or the session ended
    /// first (`false`; [`SessionHandle::shutdown`] then gives the reason).
    pub async fn wait_complete(&self) -> bool {
        let mut progress = self.progress.clone();
        progress.wait_for(|p| p.complete).await.is_ok()
    }

    /// Waits until the session task ends on its own (a fatal error).
    pub async fn wait_ended(&self) {
        let mut progress = self.progress.clone();
        while progress.changed().await.is_ok() {}
    }

    /// Stops the session: waits (bounded) for pending announces, announces
    /// `stopped`, disconnects every peer, and returns how the session ended.
    ///
    /// # Errors
    /// The [`SessionError`] that ended the session, if one did.
    pub async fn shutdown(mut self) -> Result<(), SessionError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await?
    }
}

/// Most time spent on announces while shutting down.
const SHUTDOWN_ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(5);

struct PeerConn {
    id: ConnId,
    outgoing: mpsc::Sender<Message>,
}

/// A finished disk or hash job.
enum JobDone {
    Read {
        peer: PeerKey,
        conn: ConnId,
        block: BlockRef,
        data: io::Result<Bytes>,
    },
    Verified {
        piece: PieceIndex,
        memory_bytes: usize,
        result: io::Result<bool>,
    },
}

struct Driver {
    torrent: Torrent,
    storage: Storage,
    inflight: InFlight,
    hashes: Arc<[PieceHash]>,
    tracker: Option<TrackerClient>,
    listener: TcpListener,
    conn_config: ConnConfig,
    next_conn: u64,
    events_tx: mpsc::Sender<ConnEvent>,
    events_rx: mpsc::Receiver<ConnEvent>,
    /// Connected peers by core key.
    peers: HashMap<PeerKey, PeerConn>,
    /// Core key of each connection past its handshake.
    by_conn: HashMap<ConnId, PeerKey>,
    /// Outbound connections whose handshake has not arrived yet.
    dialing: HashMap<ConnId, SocketAddr>,
    conn_tasks: JoinSet<()>,
    jobs: JoinSet<JobDone>,
    announces: JoinSet<Result<AnnounceResponse, AnnounceError>>,
    progress: watch::Sender<Progress>,
}

impl Driver {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), SessionError> {
        let result = self.event_loop(&mut stop).await;
        self.shutdown().await;
        result
    }

    async fn event_loop(&mut self, stop: &mut oneshot::Receiver<()>) -> Result<(), SessionError> {
        self.drain();
        loop {
            let deadline = self.torrent.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut *stop => return Ok(()),
                Some(event) = self.events_rx.recv() => self.on_conn_event(event),
                Some(done) = self.jobs.join_next() => self.on_job(done?)?,
                Some(answer) = self.announces.join_next() => self.on_announce(answer?),
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let id = self.conn_id();
                        let config = self.conn_config.clone();
                        let events = self.events_tx.clone();
                        self.conn_tasks
                            .spawn(connection::run_inbound(config, id, stream, addr, events));
                    }
                    Err(e) => warn!("accept failed: {e}"),
                },
                Some(_) = self.conn_tasks.join_next() => {}
                () = sleep => self.torrent.handle_timeout(Instant::now()),
            }
            self.drain();
        }
    }

    /// Announces already under way finish (bounded), then `stopped` is
    /// announced and every connection closed.
    async fn shutdown(&mut self) {
        let announces = async { while self.announces.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(SHUTDOWN_ANNOUNCE_TIMEOUT, announces).await;
        self.torrent.stop(Instant::now());
        self.drain();
        let announces = async { while self.announces.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(SHUTDOWN_ANNOUNCE_TIMEOUT, announces).await;
        self.peers.clear();
        self.conn_tasks.shutdown().await;
        self.jobs.shutdown().await;
    }

    fn conn_id(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId(self.next_conn)
    }

    fn on_conn_event(&mut self, event: ConnEvent) {
        let now = Instant::now();
        match event {
            ConnEvent::ConnectFailed { id, addr } => {
                self.dialing.remove(&id);
                debug!(%addr, "connect failed");
                self.torrent.handle_connect_failed(now, addr);
            }
            ConnEvent::Handshake {
                id,
                addr,
                direction,
                handshake,
                outgoing,
            } => {
                self.dialing.remove(&id);
                match self
                    .torrent
                    .handle_handshake(now, addr, direction, &handshake)
                {
                    Ok(peer) => {
                        self.by_conn.insert(id, peer);
                        self.peers.insert(peer, PeerConn { id, outgoing });
                    }
                    // Dropping `outgoing` closes the connection.
                    Err(rejection) => debug!(%addr, "handshake refused: {rejection}"),
                }
            }
            ConnEvent::Message { id, message } => {
                if let Some(&peer) = self.by_conn.get(&id) {
                    self.torrent.handle_message(now, peer, message);
                }
            }
            ConnEvent::Closed { id, reason } => {
                if let Some(addr) = self.dialing.remove(&id) {
                    debug!(%addr, "connection closed before the handshake: {reason}");
                    self.torrent.handle_connect_failed(now, addr);
                } else if let Some(peer) = self.by_conn.remove(&id) {
                    debug!(?peer, "connection closed: {reason}");
                    self.peers.remove(&peer);
                    self.torrent.handle_peer_disconnected(now, peer);
                }
            }
        }
    }

    fn on_job(&mut self, done: JobDone) -> Result<(), SessionError> {
        let now = Instant::now();
        match done {
            JobDone::Read {
                peer,
                conn,
                block,
                data,
            } => {
                let data = data.map_err(SessionError::Disk)?;
                // The key may have been reused by a newer connection.
                if self.peers.get(&peer).is_some_and(|p| p.id == conn) {
                    self.torrent.handle_block_read(now, peer, block, data);
                }
            }
            JobDone::Verified {
                piece,
                memory_bytes,
                result,
            } => {
                self.inflight.release(memory_bytes);
                let ok = result.map_err(SessionError::Disk)?;
                self.torrent.handle_piece_verified(now, piece, ok);
            }
        }
        Ok(())
    }

    fn on_announce(&mut self, answer: Result<AnnounceResponse, AnnounceError>) {
        let now = Instant::now();
        match answer {
            Ok(response) => {
                if let Some(warning) = &response.warning {
                    warn!("tracker warning: {warning}");
                }
                let peers: Vec<SocketAddr> = response.addrs().collect();
                debug!(
                    peers = peers.len(),
                    interval = response.interval,
                    "announce answered"
                );
                let interval = Duration::from_secs(u64::from(response.interval));
                self.torrent.handle_announce_response(now, interval, &peers);
            }
            Err(e) => {
                warn!("{e}");
                self.torrent.handle_announce_failed(now);
            }
        }
    }

    /// Carries out every pending action, then reports every pending event.
    fn drain(&mut self) {
        while let Some(action) = self.torrent.poll_action() {
            self.act(action);
        }
        while let Some(event) = self.torrent.poll_event() {
            report(&event);
        }
        self.publish();
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Send { peer, message } => self.send(peer, message),
            Action::Connect { addr } => {
                let id = self.conn_id();
                self.dialing.insert(id, addr);
                let config = self.conn_config.clone();
                let events = self.events_tx.clone();
                self.conn_tasks
                    .spawn(connection::run_outbound(config, id, addr, events));
            }
            Action::Disconnect { peer, reason } => {
                self.disconnect(peer, &reason);
            }
            Action::WriteBlock { block, data } => self.inflight.insert(block, data),
            Action::ReadBlock { peer, block } => {
                let Some(conn) = self.peers.get(&peer).map(|p| p.id) else {
                    return;
                };
                let storage = self.storage.clone();
                self.jobs.spawn(async move {
                    let data = storage.read_block(block).await;
                    JobDone::Read {
                        peer,
                        conn,
                        block,
                        data,
                    }
                });
            }
            Action::VerifyPiece { piece } => {
                let job = self.inflight.take(piece);
                let expected = self.hashes[piece.as_usize()];
                let memory_bytes = job.memory_bytes();
                self.jobs.spawn(async move {
                    let result = job.verify_and_store(expected).await;
                    JobDone::Verified {
                        piece,
                        memory_bytes,
                        result,
                    }
                });
            }
            Action::Announce {
                event,
                uploaded,
                downloaded,
                left,
            } => self.announce(event, uploaded, downloaded, left),
        }
    }

    fn send(&mut self, peer: PeerKey, message: Message) {
        let Some(conn) = self.peers.get(&peer) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = conn.outgoing.try_send(message) {
            let reason = DisconnectReason::ProtocolViolation("send queue full".into());
            self.disconnect(peer, &reason);
        }
    }

    /// Closes `peer`'s connection (dropping its queue ends its task after
    /// the queued messages are written) and tells the core.
    fn disconnect(&mut self, peer: PeerKey, reason: &DisconnectReason) {
        if let Some(conn) = self.peers.remove(&peer) {
            debug!(?peer, ?reason, "disconnecting");
            self.by_conn.remove(&conn.id);
            self.torrent.handle_peer_disconnected(Instant::now(), peer);
        }
    }

    fn announce(&mut self, event: AnnounceEvent, uploaded: u64, downloaded: u64, left: u64) {
        match self.tracker.clone() {
            Some(tracker) => {
                debug!(?event, "announcing");
                self.announces.spawn(async move {
                    tracker.announce(event, uploaded, downloaded, left).await
                });
            }
            None => {
                if event != AnnounceEvent::Stopped {
                    debug!("no tracker to announce to");
                    self.torrent.handle_announce_failed(Instant::now());
                }
            }
        }
    }

    fn publish(&self) {
        let stats = self.torrent.stats();
        let layout = self.torrent.layout();
        let progress = Progress {
            have_bytes: layout.total_length() - stats.left,
            total_bytes: layout.total_length(),
            pieces_have: stats.pieces_have,
            piece_count: layout.piece_count(),
            uploaded: stats.uploaded,
            downloaded: stats.downloaded,
            download_rate: stats.download_rate,
            upload_rate: stats.upload_rate,
            peers: stats.peers,
            complete: self.torrent.have().is_complete(),
        };
        self.progress.send_if_modified(|current| {
            let changed = *current != progress;
            *current = progress;
            changed
        });
    }
}

fn report(event: &Event) {
    match event {
        Event::PeerConnected { peer, addr } => debug!(?peer, %addr, "peer connected"),
        Event::PeerDisconnected { peer } => debug!(?peer, "peer disconnected"),
        Event::PieceCompleted { piece } => debug!(%piece, "piece verified"),
        Event::PieceFailed { piece } => warn!(%piece, "piece failed verification"),
        Event::DownloadCompleted => info!("download complete: every piece verified"),
        Event::PeerBanned { addr } => warn!(%addr, "peer banned for bad data"),
    }
}

/// The path a single-file torrent's content lands at, or the folder of a
/// multi-file one, under `output_dir`.
pub fn content_path(metainfo: &Metainfo, output_dir: &Path) -> PathBuf {
    output_dir.join(metainfo.info().name())
}
