//! The session task's event loop: it owns the core [`Torrent`], selects
//! over inbound frames and connection events, finished disk and hash jobs,
//! tracker answers, peers added by the handle, the listener, a stop request, a progress tick and
//! `sleep_until(poll_timeout())`, and after each wake-up drains
//! `poll_action` then `poll_event` (the core's run loop).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use minibit_core::piece::{BlockRef, PieceIndex};
use minibit_core::torrent::{
    Action, AnnounceEvent, DisconnectReason, Event, PeerKey, Torrent, Violation,
};
use minibit_core::tracker::AnnounceResponse;
use minibit_core::wire::{Message, PeerId};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::connection::{self, ConnConfig, ConnEvent, ConnId, Outgoing};
use crate::hasher::PieceHash;
use crate::inflight::InFlight;
use crate::read_cache::ReadCache;
use crate::resume_writer::ResumeWriter;
use crate::session::{Progress, SessionError};
use crate::storage::Storage;
use crate::tracker_client::{AnnounceError, TrackerClient};
use crate::tracker_status::TrackerStatus;

/// What the session task is made of.
pub(crate) struct Parts {
    pub torrent: Torrent,
    pub storage: Storage,
    pub hashes: Arc<[PieceHash]>,
    pub tracker: Option<TrackerClient>,
    pub tracker_status: TrackerStatus,
    pub listener: TcpListener,
    pub conn_config: ConnConfig,
    pub max_buffered_bytes: usize,
    pub max_connections: usize,
    pub progress: watch::Sender<Progress>,
    /// Peer addresses learned outside the announce ([`crate::SessionHandle::add_peers`]).
    pub added_peers: mpsc::Receiver<Vec<(SocketAddr, Option<PeerId>)>>,
    /// Saves the resume data (none in seed mode).
    pub resume: Option<ResumeWriter>,
}

/// Interval between two progress snapshots (computing one walks the
/// missing pieces, so it is not done on every message).
const PUBLISH_INTERVAL: Duration = Duration::from_millis(250);

/// Most verification jobs at once before frames wait (about two per core,
/// each holding at most one piece).
const MAX_VERIFYING: usize = 8;

/// Bytes of recently read extents kept to serve blocks (16 x 512 KiB).
const READ_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// Capacity of the channel from every connection task to the session, in events.
const EVENT_QUEUE: usize = 1024;

/// Most time spent on announces while shutting down, in all (pending
/// announces, then `stopped`): a hung tracker must not hold up Ctrl-C.
const SHUTDOWN_ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(2);

/// Most distinct peer ids remembered for [`Progress::peers_seen`] (the
/// count stops growing there, memory stays bounded).
const MAX_PEERS_SEEN: usize = 10_000;

struct PeerConn {
    id: ConnId,
    addr: SocketAddr,
    outgoing: Outgoing,
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

/// The state of the session task.
pub(crate) struct Driver {
    torrent: Torrent,
    /// The files (renamed from `NAME.part` as their pieces are verified).
    storage: Storage,
    inflight: InFlight,
    /// Extents read to serve blocks.
    reads: ReadCache,
    /// Verification jobs running (each may read a spilled piece back).
    verifying: usize,
    hashes: Arc<[PieceHash]>,
    tracker: Option<TrackerClient>,
    /// Whether any tracker answered (the user is told when none did).
    tracker_status: TrackerStatus,
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
    /// Connections we disconnected whose task has not reported the close yet.
    closing: HashSet<ConnId>,
    conn_tasks: JoinSet<()>,
    /// Most connection tasks before incoming connections are refused.
    max_connections: usize,
    jobs: JoinSet<JobDone>,
    announces: JoinSet<Result<AnnounceResponse, AnnounceError>>,
    progress: watch::Sender<Progress>,
    added_peers: mpsc::Receiver<Vec<(SocketAddr, Option<PeerId>)>>,
    /// Distinct peer ids that completed a handshake (at most [`MAX_PEERS_SEEN`]).
    peers_seen: HashSet<PeerId>,
    resume: Option<ResumeWriter>,
}

impl Driver {
    pub(crate) fn new(parts: Parts) -> Self {
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        Self {
            inflight: InFlight::new(parts.storage.clone(), parts.max_buffered_bytes),
            reads: ReadCache::new(parts.storage.clone(), READ_CACHE_BYTES),
            verifying: 0,
            storage: parts.storage,
            torrent: parts.torrent,
            hashes: parts.hashes,
            tracker: parts.tracker,
            tracker_status: parts.tracker_status,
            listener: parts.listener,
            conn_config: parts.conn_config,
            next_conn: 0,
            events_tx,
            events_rx,
            peers: HashMap::new(),
            by_conn: HashMap::new(),
            dialing: HashMap::new(),
            closing: HashSet::new(),
            conn_tasks: JoinSet::new(),
            max_connections: parts.max_connections,
            jobs: JoinSet::new(),
            announces: JoinSet::new(),
            progress: parts.progress,
            added_peers: parts.added_peers,
            peers_seen: HashSet::new(),
            resume: parts.resume,
        }
    }

    /// Runs until `stop` fires (or its sender is dropped) or a disk error,
    /// then shuts down (announces `stopped`, closes every connection).
    pub(crate) async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), SessionError> {
        let result = self.event_loop(&mut stop).await;
        self.shutdown().await;
        result
    }

    async fn event_loop(&mut self, stop: &mut oneshot::Receiver<()>) -> Result<(), SessionError> {
        self.drain();
        let mut publish = tokio::time::interval(PUBLISH_INTERVAL);
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                Some(event) = self.events_rx.recv(), if self.accepting_frames() => self.on_conn_event(event),
                () = self.inflight.spill_written(), if !self.accepting_frames() => {}
                Some(done) = self.jobs.join_next() => self.on_job(done?)?,
                Some(answer) = self.announces.join_next() => self.on_announce(answer?),
                Some(peers) = self.added_peers.recv() => self.add_peers(&peers),
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, addr)) => self.accept(stream, addr),
                    Err(e) => warn!("accept failed: {e}"),
                },
                Some(_) = self.conn_tasks.join_next() => {}
                _ = publish.tick() => {
                    self.publish();
                    self.check_trackers();
                    if let Some(resume) = &mut self.resume {
                        resume.tick(Instant::now(), self.torrent.have(), self.torrent.file_priorities());
                    }
                }
                () = sleep => self.torrent.handle_timeout(Instant::now()),
            }
            self.drain();
        }
    }

    /// Announces already under way finish (bounded), then `stopped` is
    /// announced and every connection closed.
    async fn shutdown(&mut self) {
        // The last snapshot, with the final counters, before peers go.
        self.publish();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_ANNOUNCE_TIMEOUT;
        let announces = async { while self.announces.join_next().await.is_some() {} };
        let _ = tokio::time::timeout_at(deadline, announces).await;
        self.torrent.stop(Instant::now());
        self.drain();
        let announces = async { while self.announces.join_next().await.is_some() {} };
        let _ = tokio::time::timeout_at(deadline, announces).await;
        self.peers.clear();
        self.conn_tasks.shutdown().await;
        self.jobs.shutdown().await;
        if let Some(resume) = &mut self.resume {
            resume
                .flush(self.torrent.have(), self.torrent.file_priorities())
                .await;
        }
        let stats = self.torrent.stats();
        info!(
            downloaded = stats.downloaded,
            uploaded = stats.uploaded,
            pieces = stats.pieces_have,
            "session stopped"
        );
    }

    /// Starts the task of an incoming connection, unless there are already
    /// `max_connections` connection tasks (connected or handshaking).
    fn accept(&mut self, stream: TcpStream, addr: SocketAddr) {
        if self.conn_tasks.len() >= self.max_connections {
            debug!(%addr, "too many connections: incoming connection dropped");
            return;
        }
        let id = self.conn_id();
        let config = self.conn_config.clone();
        let events = self.events_tx.clone();
        self.conn_tasks
            .spawn(connection::run_inbound(config, id, stream, addr, events));
    }

    fn conn_id(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId(self.next_conn)
    }

    /// Whether frames from the connections are taken now. While disk writes
    /// or verifications lag behind, they wait in the bounded event channel
    /// and then in the sockets (TCP flow control), so memory stays bounded
    /// whatever the file size.
    fn accepting_frames(&self) -> bool {
        self.inflight.accepts_blocks() && self.verifying < MAX_VERIFYING
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
                        if self.peers_seen.len() < MAX_PEERS_SEEN {
                            self.peers_seen.insert(handshake.peer_id);
                        }
                        self.by_conn.insert(id, peer);
                        self.peers.insert(peer, PeerConn { id, addr, outgoing });
                    }
                    // Dropping `outgoing` closes the connection.
                    Err(rejection) => info!(%addr, reason = %rejection, "handshake refused"),
                }
            }
            ConnEvent::Message { id, message } => {
                if let Some(&peer) = self.by_conn.get(&id) {
                    self.torrent.handle_message(now, peer, message);
                }
            }
            ConnEvent::Closed { id, addr, reason } => {
                if self.dialing.remove(&id).is_some() {
                    debug!(%addr, %reason, "connection closed before the handshake");
                    self.torrent.handle_connect_failed(now, addr);
                } else if let Some(peer) = self.by_conn.remove(&id) {
                    // Peers leave all the time (EOF, reset, broken pipe).
                    debug!(%addr, %reason, "peer connection closed");
                    self.peers.remove(&peer);
                    self.torrent.handle_peer_disconnected(now, peer);
                } else if self.closing.remove(&id) {
                    debug!(%addr, %reason, "connection closed");
                } else {
                    // An incoming connection that never completed its handshake.
                    debug!(%addr, %reason, "connection closed before the handshake");
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
                self.verifying -= 1;
                let ok = result.map_err(SessionError::Disk)?;
                if ok {
                    // Extents read before the piece was written hold old bytes.
                    let layout = self.torrent.layout();
                    let (offset, length) =
                        (layout.piece_offset(piece), layout.piece_size(piece).into());
                    self.reads.forget(offset, length);
                    // Renamed before the completion is published.
                    if let Err(e) = self.storage.piece_verified(piece) {
                        warn!("cannot rename a completed file: {e}");
                    }
                }
                self.torrent.handle_piece_verified(now, piece, ok);
                if let Some(resume) = self.resume.as_mut().filter(|_| ok) {
                    resume.changed();
                    resume.tick(now, self.torrent.have(), self.torrent.file_priorities());
                }
            }
        }
        Ok(())
    }

    /// Peers from [`crate::PeerSink`]: those not already connected (by id) are
    /// candidates for a connection.
    fn add_peers(&mut self, peers: &[(SocketAddr, Option<PeerId>)]) {
        let addrs: Vec<SocketAddr> = peers
            .iter()
            .filter(|(_, id)| id.is_none_or(|id| !self.torrent.is_connected(&id)))
            .map(|&(addr, _)| addr)
            .collect();
        self.torrent.handle_peers(Instant::now(), &addrs);
    }

    fn on_announce(&mut self, answer: Result<AnnounceResponse, AnnounceError>) {
        let now = Instant::now();
        match answer {
            Ok(response) => {
                self.tracker_status.answered();
                if let Some(warning) = &response.warning {
                    warn!("tracker warning: {warning}");
                }
                let peers: Vec<SocketAddr> = response.addrs().collect();
                debug!(
                    peers = peers.len(),
                    interval = response.interval,
                    "announce answered"
                );
                let secs = |s: u32| Duration::from_secs(u64::from(s));
                self.torrent.handle_announce_response(
                    now,
                    secs(response.interval),
                    response.min_interval.map(secs),
                    &peers,
                );
            }
            Err(e) => {
                warn!("{}", chain(&e));
                self.tracker_status.failed(&e);
                self.torrent.handle_announce_failed(now);
            }
        }
    }

    /// Tells the user (once) when no tracker answered and there is no peer.
    fn check_trackers(&mut self) {
        let peers = self.torrent.stats().peers;
        if let Some(line) = self.tracker_status.check(Instant::now(), peers) {
            warn!("{line}");
        }
    }

    /// Carries out every pending action, then reports every pending event.
    fn drain(&mut self) {
        while let Some(action) = self.torrent.poll_action() {
            self.act(action);
        }
        while let Some(event) = self.torrent.poll_event() {
            report(&event);
            if event == Event::DownloadCompleted {
                self.publish();
            }
        }
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
                let Some((conn, outgoing)) =
                    self.peers.get(&peer).map(|p| (p.id, p.outgoing.clone()))
                else {
                    return;
                };
                let read = self.reads.read(block);
                self.jobs.spawn(async move {
                    // Backpressure: a peer that reads slowly gets its blocks
                    // read from disk only as its queue drains.
                    outgoing.room_for_blocks().await;
                    let data = read.await;
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
                self.verifying += 1;
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
            other => warn!(?other, "action not supported by this driver"),
        }
    }

    fn send(&mut self, peer: PeerKey, message: Message) {
        let Some(conn) = self.peers.get(&peer) else {
            return;
        };
        if let Err(full) = conn.outgoing.send(message) {
            let reason = DisconnectReason::ProtocolViolation(Violation::NotReading {
                queued: full.queued,
                limit: full.limit,
            });
            self.disconnect(peer, &reason);
        }
    }

    /// Closes `peer`'s connection (dropping its queue ends its task after
    /// the queued messages are written) and tells the core.
    fn disconnect(&mut self, peer: PeerKey, reason: &DisconnectReason) {
        if let Some(conn) = self.peers.remove(&peer) {
            if expected(reason) {
                debug!(addr = %conn.addr, %reason, "disconnecting peer");
            } else {
                info!(addr = %conn.addr, %reason, "disconnecting peer");
            }
            self.by_conn.remove(&conn.id);
            self.closing.insert(conn.id);
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

    /// Publishes a progress snapshot.
    pub(crate) fn publish(&self) {
        let stats = self.torrent.stats();
        let layout = self.torrent.layout();
        let progress = Progress {
            have_bytes: stats.wanted - stats.left,
            total_bytes: stats.wanted,
            pieces_have: stats.pieces_have,
            piece_count: layout.piece_count(),
            uploaded: stats.uploaded,
            downloaded: stats.downloaded,
            download_rate: stats.download_rate,
            upload_rate: stats.upload_rate,
            peers: stats.peers,
            peers_seen: self.peers_seen.len(),
            complete: self.torrent.is_finished(),
        };
        self.progress.send_if_modified(|current| {
            let changed = *current != progress;
            *current = progress;
            changed
        });
    }
}

/// Whether closing a connection for `reason` is routine (both seeding, a
/// duplicate, shutting down), not worth more than a debug line.
fn expected(reason: &DisconnectReason) -> bool {
    matches!(
        reason,
        DisconnectReason::BothSeeding | DisconnectReason::Duplicate | DisconnectReason::Shutdown
    )
}

/// `error: cause: cause...`, for the log.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn report(event: &Event) {
    match event {
        Event::PeerConnected { peer, addr } => debug!(?peer, %addr, "peer connected"),
        Event::PeerDisconnected { peer } => debug!(?peer, "peer disconnected"),
        Event::PieceCompleted { piece } => debug!(%piece, "piece verified"),
        Event::PieceFailed { piece } => warn!(%piece, "piece failed verification"),
        Event::DownloadCompleted => info!("download complete: every piece verified"),
        Event::PeerBanned { ip } => warn!(%ip, "peer banned for bad data"),
        Event::PexPeersLearned { peer, count } => debug!(?peer, "learned {count} peers via pex"),
        other => debug!(?other, "torrent event"),
    }
}
