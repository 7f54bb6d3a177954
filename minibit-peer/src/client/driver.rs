//! The client task's event loop: it owns the core [`Session`] (every
//! torrent, the connection table, the global limits) and selects over
//! inbound frames and connection events, finished disk and hash jobs,
//! tracker answers, commands from the API, the listener, a stop request,
//! a progress tick and `sleep_until(poll_timeout())`; after each wake-up
//! it drains `poll_action` then `poll_event` (the core's run loop, see
//! [`minibit_core::session`]).
//!
//! One table, keyed by the core's [`ConnectionId`] (never reused), holds
//! each connection's task and, once the handshake is routed, its outgoing
//! queue; which torrent and peer a connection belongs to is the core's.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use minibit_core::id::{ConnectionId, TorrentId};
use minibit_core::metainfo::Metainfo;
use minibit_core::piece::{BlockRef, PieceIndex};
use minibit_core::session::{Session, SessionAction, SessionEvent};
use minibit_core::torrent::{Action, AnnounceEvent, DisconnectReason, Event, Torrent, Violation};
use minibit_core::wire::{Handshake, Message};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};
use tracing::{debug, info, warn};

use super::command::{Command, Removed};
use super::magnet::{self, PreparedMagnet};
use super::open::{OpenedFiles, Prepared};
use super::torrent::{Files, TorrentState};
use super::types::{ClientError, TorrentDetail, TorrentStatus};
use crate::connection::{self, ConnConfig, ConnEvent, Control, Outgoing, Socket};
use crate::error_chain::one_line;
use crate::inflight::MemoryBudget;
use crate::tracker_client::{AnnounceError, Answered};

/// Interval between two progress snapshots (computing one walks the
/// missing pieces, so it is not done on every message).
const PUBLISH_INTERVAL: Duration = Duration::from_millis(250);

/// Most verification jobs at once before frames wait (about two per core,
/// each holding at most one piece).
const MAX_VERIFYING: usize = 8;

/// Bytes of block data (in memory) held by verification jobs at which
/// frames wait (4 MiB): with large pieces (2 MiB for a 4 GiB file) this,
/// not [`MAX_VERIFYING`], bounds what waits to be hashed and written.
/// At least one job always runs.
const MAX_VERIFYING_BYTES: usize = 4 * 1024 * 1024;

/// Capacity of the channel from every connection task to the driver, in events.
const EVENT_QUEUE: usize = 1024;

/// Most time spent on announces while shutting down, in all (pending
/// announces, then `stopped`): a hung tracker must not hold up Ctrl-C.
const SHUTDOWN_ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the client task is made of.
pub(crate) struct Parts {
    pub session: Session,
    pub listener: TcpListener,
    pub conn_config: ConnConfig,
    pub budget: Arc<MemoryBudget>,
    pub commands: mpsc::Receiver<Command>,
    /// See [`Discovery::learned_nodes`](super::discovery::Discovery::learned_nodes).
    pub dht_nodes: Option<mpsc::Sender<SocketAddr>>,
}

/// One connection: its task, and its outgoing queue once bound.
struct Conn {
    addr: SocketAddr,
    task: AbortHandle,
    control: mpsc::UnboundedSender<Control>,
    outgoing: Option<Outgoing>,
}

/// A finished disk or hash job.
enum JobDone {
    Read {
        torrent: TorrentId,
        conn: ConnectionId,
        block: BlockRef,
        data: io::Result<Bytes>,
    },
    Verified {
        torrent: TorrentId,
        piece: PieceIndex,
        memory_bytes: usize,
        result: io::Result<bool>,
    },
    /// The files of a torrent started from a magnet link are open.
    Opened {
        torrent: TorrentId,
        result: Box<Result<(Metainfo, OpenedFiles), ClientError>>,
    },
}

type AnnounceDone = (TorrentId, Result<Answered, AnnounceError>);

/// The state of the client task.
pub(crate) struct Driver {
    session: Session,
    torrents: HashMap<TorrentId, TorrentState>,
    conns: HashMap<ConnectionId, Conn>,
    listener: TcpListener,
    conn_config: ConnConfig,
    events_tx: mpsc::Sender<ConnEvent>,
    events_rx: mpsc::Receiver<ConnEvent>,
    conn_tasks: JoinSet<()>,
    /// Block data in memory, shared by every torrent.
    budget: Arc<MemoryBudget>,
    /// Verification jobs running (each may read a spilled piece back).
    verifying: usize,
    /// Bytes of block data in memory held by those jobs.
    verifying_bytes: usize,
    /// The download limit is spent (the session said `PauseReading`).
    reading_paused: bool,
    jobs: JoinSet<JobDone>,
    announces: JoinSet<AnnounceDone>,
    commands: mpsc::Receiver<Command>,
    /// The DHT node's queue for nodes peers name in BEP 5 `port` messages.
    dht_nodes: Option<mpsc::Sender<SocketAddr>>,
}

impl Driver {
    pub(crate) fn new(parts: Parts) -> Self {
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        Self {
            session: parts.session,
            torrents: HashMap::new(),
            conns: HashMap::new(),
            listener: parts.listener,
            conn_config: parts.conn_config,
            events_tx,
            events_rx,
            conn_tasks: JoinSet::new(),
            budget: parts.budget,
            verifying: 0,
            verifying_bytes: 0,
            reading_paused: false,
            jobs: JoinSet::new(),
            announces: JoinSet::new(),
            commands: parts.commands,
            dht_nodes: parts.dht_nodes,
        }
    }

    /// Runs until `stop` fires (or its sender is dropped), then shuts down
    /// (announces `stopped` for every torrent, closes every connection).
    pub(crate) async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), ClientError> {
        let result = self.event_loop(&mut stop).await;
        self.shutdown().await;
        result
    }

    async fn event_loop(&mut self, stop: &mut oneshot::Receiver<()>) -> Result<(), ClientError> {
        self.drain();
        let mut publish = tokio::time::interval(PUBLISH_INTERVAL);
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.session.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut *stop => return Ok(()),
                Some(command) = self.commands.recv() => self.on_command(command),
                Some(event) = self.events_rx.recv(), if self.accepting_frames() => self.on_conn_event(event),
                () = self.budget.spill_written(), if !self.budget.accepts_blocks() => {}
                Some(done) = self.jobs.join_next() => self.on_job(done?),
                Some(answer) = self.announces.join_next() => {
                    let (torrent, answer) = answer?;
                    self.on_announce(torrent, answer);
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, addr)) => self.accept(stream, addr),
                    Err(e) => warn!("accept failed: {e}"),
                },
                Some(_) = self.conn_tasks.join_next() => {}
                _ = publish.tick() => {
                    self.publish_all();
                    self.check_trackers();
                    self.save_resume_all();
                }
                () = sleep => self.session.handle_timeout(Instant::now()),
            }
            self.drain();
        }
    }

    /// Announces already under way finish (bounded), then every torrent
    /// announces `stopped` and every connection closes.
    async fn shutdown(&mut self) {
        // The last snapshots, with the final counters, before peers go.
        self.publish_all();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_ANNOUNCE_TIMEOUT;
        let announces = async { while self.announces.join_next().await.is_some() {} };
        let _ = tokio::time::timeout_at(deadline, announces).await;
        let ids: Vec<TorrentId> = self.torrents.keys().copied().collect();
        for id in ids {
            let _ = self.session.pause_torrent(Instant::now(), id);
        }
        self.drain();
        let announces = async { while self.announces.join_next().await.is_some() {} };
        let _ = tokio::time::timeout_at(deadline, announces).await;
        self.conns.clear();
        self.conn_tasks.shutdown().await;
        self.jobs.shutdown().await;
        for (&id, state) in &mut self.torrents {
            if let Some(torrent) = self.session.torrent(id) {
                state.flush_resume(torrent).await;
            }
        }
        for (&id, state) in &self.torrents {
            if let Some(stats) = self.session.torrent(id).map(Torrent::stats) {
                info!(
                    name = %state.name,
                    downloaded = stats.downloaded,
                    uploaded = stats.uploaded,
                    pieces = stats.pieces_have,
                    "torrent stopped"
                );
            }
        }
    }

    /// Whether frames from the connections are taken now. While the
    /// download limit is spent, or disk writes or verifications lag behind,
    /// they wait in the bounded event channel and then in the sockets (TCP
    /// flow control), so memory stays bounded whatever the file size.
    fn accepting_frames(&self) -> bool {
        !self.reading_paused
            && self.budget.accepts_blocks()
            && self.verifying < MAX_VERIFYING
            && self.verifying_bytes < MAX_VERIFYING_BYTES
    }

    /// An incoming connection: the session admits it (maybe evicting the
    /// oldest handshaking one) or refuses it.
    fn accept(&mut self, stream: TcpStream, addr: SocketAddr) {
        match self.session.handle_incoming(Instant::now(), addr) {
            Ok(id) => self.spawn_conn(id, addr, Socket::Accepted(stream)),
            Err(refusal) => info!(%addr, reason = %refusal, "incoming connection refused"),
        }
    }

    fn spawn_conn(&mut self, id: ConnectionId, addr: SocketAddr, socket: Socket) {
        let (control, control_rx) = mpsc::unbounded_channel();
        let task = self.conn_tasks.spawn(connection::run(
            self.conn_config,
            id,
            socket,
            self.events_tx.clone(),
            control_rx,
        ));
        self.conns.insert(
            id,
            Conn {
                addr,
                task,
                control,
                outgoing: None,
            },
        );
    }

    /// Closes `conn`: a bound one after its queued messages are written
    /// (unless `at_once`), one still handshaking at once.
    fn close_conn(&mut self, conn: ConnectionId, at_once: bool) {
        if let Some(c) = self.conns.remove(&conn) {
            if at_once || c.outgoing.is_none() {
                c.task.abort();
            }
        }
    }

    /// The remote address of `conn`, for the log.
    fn addr(&self, conn: ConnectionId) -> Option<SocketAddr> {
        self.conns.get(&conn).map(|c| c.addr)
    }

    fn on_conn_event(&mut self, event: ConnEvent) {
        let now = Instant::now();
        match event {
            ConnEvent::Connected { id } => match self.session.handle_connected(now, id) {
                Some(ours) => self.control(id, Control::Handshake(ours)),
                None => self.close_conn(id, true),
            },
            ConnEvent::Handshake { id, handshake } => self.on_handshake(now, id, &handshake),
            ConnEvent::Message { id, message } => self.session.handle_message(now, id, message),
            ConnEvent::Closed { id, reason } => {
                match self.conns.remove(&id) {
                    // Peers leave all the time (EOF, reset, broken pipe).
                    Some(Conn {
                        addr,
                        outgoing: Some(_),
                        ..
                    }) => debug!(%addr, %reason, "peer connection closed"),
                    Some(Conn { addr, .. }) => {
                        debug!(%addr, %reason, "connection closed before the handshake");
                    }
                    None => debug!(conn = %id, %reason, "connection closed"),
                }
                self.session.handle_connection_closed(now, id);
            }
        }
    }

    fn control(&mut self, id: ConnectionId, control: Control) {
        if let Some(conn) = self.conns.get(&id) {
            let _ = conn.control.send(control);
        }
    }

    /// The remote handshake of `id`: routed by the session, then the
    /// connection task gets its queue (and, inbound, our handshake).
    fn on_handshake(&mut self, now: Instant, id: ConnectionId, theirs: &Handshake) {
        let Some(addr) = self.addr(id) else {
            return;
        };
        match self.session.handle_handshake(now, id, theirs) {
            Ok(routed) => {
                let Some(state) = self.torrents.get_mut(&routed.torrent) else {
                    return;
                };
                state.seen(theirs.peer_id);
                let piece_count = state.piece_count();
                let (outgoing, queue) = Outgoing::new(self.conn_config.max_queued_bytes);
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.outgoing = Some(outgoing);
                }
                self.control(
                    id,
                    Control::Bound {
                        reply: routed.reply,
                        piece_count,
                        queue,
                    },
                );
            }
            Err(refusal) => {
                info!(%addr, reason = %refusal, "handshake refused");
                self.close_conn(id, true);
            }
        }
    }

    fn on_job(&mut self, done: JobDone) {
        let now = Instant::now();
        match done {
            JobDone::Read {
                torrent,
                conn,
                block,
                data,
            } => match data {
                Ok(data) => self
                    .session
                    .handle_block_read(now, torrent, conn, block, data),
                Err(e) => self.fail(torrent, ClientError::Disk(e)),
            },
            JobDone::Verified {
                torrent,
                piece,
                memory_bytes,
                result,
            } => {
                self.budget.release(memory_bytes);
                self.verifying -= 1;
                self.verifying_bytes -= memory_bytes;
                let Some(state) = self.torrents.get_mut(&torrent) else {
                    return;
                };
                let ok = match result {
                    Ok(ok) => ok,
                    Err(e) => return self.fail(torrent, ClientError::Disk(e)),
                };
                if let (true, Some(files)) = (ok, &mut state.files) {
                    // Extents read before the piece was written hold old bytes.
                    let layout = files.storage.layout();
                    let (offset, length) =
                        (layout.piece_offset(piece), layout.piece_size(piece).into());
                    files.reads.forget(offset, length);
                    // Renamed before the completion is published.
                    if let Err(e) = files.storage.piece_verified(piece) {
                        warn!(name = %state.name, "cannot rename a completed file: {e}");
                    }
                }
                self.session.handle_piece_verified(now, torrent, piece, ok);
                if let (true, Some(state), Some(core)) = (
                    ok,
                    self.torrents.get_mut(&torrent),
                    self.session.torrent(torrent),
                ) {
                    state.changed(now, core);
                }
            }
            JobDone::Opened { torrent, result } => match *result {
                Ok((metainfo, files)) => self.metadata_ready(now, torrent, &metainfo, files),
                Err(e) => self.fail(torrent, e),
            },
        }
    }

    /// BEP 9: the metadata of magnet link `id` arrived: its files are
    /// opened off the event loop (see [`super::magnet::open`]).
    fn open_magnet(&mut self, id: TorrentId, metainfo: Metainfo) {
        let Some(add) = self.torrents.get_mut(&id).and_then(|s| s.magnet.take()) else {
            return;
        };
        self.jobs.spawn(async move {
            JobDone::Opened {
                torrent: id,
                result: Box::new(magnet::open(add, metainfo).await),
            }
        });
    }

    /// The files of magnet link `id` are open: the torrent downloads.
    fn metadata_ready(
        &mut self,
        now: Instant,
        id: TorrentId,
        metainfo: &Metainfo,
        files: OpenedFiles,
    ) {
        let Some(state) = self.torrents.get_mut(&id) else {
            return;
        };
        let have = files.have.clone();
        state.open(metainfo, Files::new(files, Arc::clone(&self.budget)));
        info!(name = %state.name, pieces = have.count(), of = have.len(), "metadata ready: downloading");
        if let Err(e) = self.session.metadata_ready(now, id, have) {
            warn!(name = %state.name, "{e}");
        }
        self.publish(id);
    }

    /// A disk error stops torrent `id` (it announces `stopped`); its handle
    /// gets the error.
    fn fail(&mut self, id: TorrentId, error: ClientError) {
        let Some(state) = self.torrents.get(&id) else {
            return;
        };
        warn!(name = %state.name, "torrent stopped: {}", one_line(&error));
        state.set_error(error);
        if let Some(resume) = self.remove(id).and_then(|removed| removed.resume) {
            tokio::spawn(resume.save());
        }
    }

    /// Removes torrent `id` from the session and the driver; its files and
    /// its last resume data save.
    fn remove(&mut self, id: TorrentId) -> Option<Removed> {
        let state = self.torrents.get(&id)?;
        let last = self.session.torrent(id).map(|torrent| {
            state.publish(torrent);
            (torrent.have().clone(), torrent.file_priorities().to_vec())
        });
        let _ = self.session.remove_torrent(Instant::now(), id);
        // `stopped` announce and disconnects, while the state is there.
        self.drain();
        self.torrents
            .remove(&id)
            .map(|state| state.into_removed(last))
    }

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Add { torrent, reply } => {
                let _ = reply.send(self.add(now, *torrent));
            }
            Command::AddMagnet { torrent, reply } => {
                let _ = reply.send(self.add_magnet(now, *torrent));
            }
            Command::Remove { id, reply } => {
                let result = self.remove(id).ok_or_else(|| unknown(id));
                let _ = reply.send(result);
            }
            Command::Pause { id, reply } => {
                let result = self
                    .session
                    .pause_torrent(now, id)
                    .map_err(ClientError::from);
                self.drain();
                if let Some(state) = self.torrents.get_mut(&id) {
                    state.forget_inflight();
                }
                self.publish(id);
                let _ = reply.send(result);
            }
            Command::Resume { id, reply } => {
                let result = self
                    .session
                    .resume_torrent(now, id)
                    .map_err(ClientError::from);
                self.publish(id);
                let _ = reply.send(result);
            }
            Command::List { reply } => {
                let list = self
                    .session
                    .torrent_ids()
                    .filter_map(|id| {
                        let state = self.torrents.get(&id)?;
                        Some(TorrentStatus {
                            id,
                            name: state.name.clone(),
                            info_hash: state.info_hash,
                            paused: self.session.is_paused(id) == Some(true),
                            progress: state.snapshot(self.session.torrent(id)?),
                        })
                    })
                    .collect();
                let _ = reply.send(list);
            }
            Command::Detail { id, reply } => {
                let _ = reply.send(self.detail(now, id));
            }
            Command::SetTorrentRateLimits {
                id,
                upload,
                download,
                reply,
            } => {
                let result = self
                    .session
                    .set_torrent_rate_limits(now, id, upload, download)
                    .map_err(ClientError::from);
                let _ = reply.send(result);
            }
            Command::AddPeers { id, peers } => {
                let Some(torrent) = self.session.torrent(id) else {
                    return;
                };
                // Peers already connected (by id) are not dialled again.
                let addrs: Vec<SocketAddr> = peers
                    .iter()
                    .filter(|(_, peer_id)| peer_id.is_none_or(|p| !torrent.is_connected(&p)))
                    .map(|&(addr, _)| addr)
                    .collect();
                self.session.handle_peers(now, id, &addrs);
            }
            Command::SetRateLimits { upload, download } => {
                self.session.set_rate_limits(now, upload, download);
            }
        }
    }

    /// Adds a torrent whose files are open.
    fn add(&mut self, now: Instant, prepared: Prepared) -> Result<TorrentId, ClientError> {
        let id = self.session.add_torrent(
            now,
            prepared.config.clone(),
            prepared.info_hash,
            prepared.layout.clone(),
            prepared.files.have.clone(),
        )?;
        // BEP 9: peers that start from a magnet link fetch the metadata
        // from us (the bytes hash to the info-hash: they are the
        // metainfo's own).
        if let Err(e) = self
            .session
            .set_info_bytes(now, id, prepared.info_bytes.clone())
        {
            warn!(name = %prepared.name, "cannot serve the metadata: {e}");
        }
        info!(name = %prepared.name, info_hash = %prepared.info_hash, "torrent added");
        let state = TorrentState::new(prepared, Arc::clone(&self.budget));
        self.insert(id, state);
        Ok(id)
    }

    /// Adds a torrent from a magnet link: no files until its metadata
    /// arrives.
    fn add_magnet(
        &mut self,
        now: Instant,
        prepared: PreparedMagnet,
    ) -> Result<TorrentId, ClientError> {
        let id = self
            .session
            .add_magnet(now, prepared.config.clone(), &prepared.add.magnet)?;
        info!(name = %prepared.name, info_hash = %prepared.add.magnet.info_hash, "magnet link added: fetching metadata");
        self.insert(id, TorrentState::fetching(prepared));
        Ok(id)
    }

    /// Keeps `state` for torrent `id` and publishes its first snapshot.
    fn insert(&mut self, id: TorrentId, state: TorrentState) {
        if let Some(torrent) = self.session.torrent(id) {
            state.publish(torrent);
        }
        self.torrents.insert(id, state);
    }

    fn detail(&self, now: Instant, id: TorrentId) -> Result<TorrentDetail, ClientError> {
        match (
            self.torrents.get(&id),
            self.session.torrent(id),
            self.session.torrent_rate_limits(id),
        ) {
            (Some(state), Some(torrent), Some(limits)) => Ok(state.detail(now, torrent, limits)),
            _ => Err(unknown(id)),
        }
    }

    fn on_announce(&mut self, id: TorrentId, answer: Result<Answered, AnnounceError>) {
        let now = Instant::now();
        let Some(state) = self.torrents.get_mut(&id) else {
            return;
        };
        let wall = SystemTime::now();
        match answer {
            Ok(Answered {
                url,
                response,
                failures,
            }) => {
                for failure in &failures {
                    state.tracker_status.failed(failure, wall);
                }
                state.tracker_status.answered(&url, &response, wall);
                if let Some(warning) = &response.warning {
                    warn!(name = %state.name, "tracker warning: {warning}");
                }
                let peers: Vec<SocketAddr> = response.addrs().collect();
                debug!(
                    name = %state.name,
                    peers = peers.len(),
                    interval = response.interval,
                    "announce answered"
                );
                let secs = |s: u32| Duration::from_secs(u64::from(s));
                self.session.handle_announce_response(
                    now,
                    id,
                    secs(response.interval),
                    response.min_interval.map(secs),
                    &peers,
                );
            }
            Err(e) => {
                warn!("{}", one_line(&e));
                state.tracker_status.failed(&e, wall);
                self.session.handle_announce_failed(now, id);
            }
        }
    }

    /// Tells the user (once per torrent) when no tracker answered and
    /// there is no peer.
    fn check_trackers(&mut self) {
        let now = Instant::now();
        for (&id, state) in &mut self.torrents {
            let Some(peers) = self.session.torrent(id).map(|t| t.stats().peers) else {
                continue;
            };
            if let Some(line) = state.tracker_status.check(now, peers) {
                warn!("{line}");
            }
        }
    }

    fn publish(&self, id: TorrentId) {
        if let (Some(state), Some(torrent)) = (self.torrents.get(&id), self.session.torrent(id)) {
            state.publish(torrent);
        }
    }

    /// Saves, in the background, the resume data of every torrent that
    /// changed since its last save (at most once per resume interval).
    fn save_resume_all(&mut self) {
        let now = Instant::now();
        for (&id, state) in &mut self.torrents {
            if let Some(torrent) = self.session.torrent(id) {
                state.save_resume(now, torrent);
            }
        }
    }

    fn publish_all(&self) {
        for id in self.torrents.keys() {
            self.publish(*id);
        }
    }

    /// Carries out every pending action and reports every pending event
    /// (carrying out an action may queue more).
    fn drain(&mut self) {
        loop {
            if let Some(action) = self.session.poll_action() {
                self.act(action);
            } else if let Some(event) = self.session.poll_event() {
                self.report(event);
            } else {
                break;
            }
        }
    }

    fn report(&mut self, event: SessionEvent) {
        let SessionEvent::Torrent { torrent, event } = event else {
            return;
        };
        let name = self.torrents.get(&torrent).map_or("?", |s| s.name.as_str());
        report(name, &event);
        if let (Event::DhtNodeLearned { addr, .. }, Some(nodes)) = (&event, &self.dht_nodes) {
            // A full queue drops it: `port` floods cost nothing.
            let _ = nodes.try_send(*addr);
        }
        match event {
            Event::PieceFailed { .. } => {
                if let Some(state) = self.torrents.get_mut(&torrent) {
                    state.piece_failed();
                }
            }
            Event::DownloadCompleted => self.publish(torrent),
            Event::MetadataReceived { metainfo } => self.open_magnet(torrent, *metainfo),
            Event::MetadataUnusable { error } => {
                self.fail(torrent, ClientError::UnusableMetadata(error));
            }
            _ => {}
        }
    }

    fn act(&mut self, action: SessionAction) {
        match action {
            SessionAction::Torrent {
                torrent,
                conn,
                action,
            } => self.torrent_action(torrent, conn, action),
            SessionAction::Close { conn, reason } => {
                match self.conns.get(&conn) {
                    Some(c) if c.outgoing.is_some() => {
                        info!(addr = %c.addr, %reason, "closing peer connection");
                    }
                    Some(c) => {
                        debug!(addr = %c.addr, %reason, "connection closed before the handshake");
                    }
                    None => {}
                }
                self.close_conn(conn, true);
                self.session.handle_connection_closed(Instant::now(), conn);
            }
            SessionAction::PauseReading => self.reading_paused = true,
            SessionAction::ResumeReading => self.reading_paused = false,
            other => warn!(?other, "action not supported by this driver"),
        }
    }

    fn torrent_action(&mut self, id: TorrentId, conn: Option<ConnectionId>, action: Action) {
        match action {
            Action::Connect { addr } => {
                if let Some(conn) = conn {
                    self.spawn_conn(conn, addr, Socket::Dial(addr));
                }
            }
            Action::Send { message, .. } => {
                if let Some(conn) = conn {
                    self.send(conn, message);
                }
            }
            Action::Disconnect { reason, .. } => {
                if let Some(conn) = conn {
                    self.disconnect(conn, &reason);
                }
            }
            Action::ReadBlock { block, .. } => {
                let (Some(conn), Some(files)) = (
                    conn,
                    self.torrents.get_mut(&id).and_then(|s| s.files.as_mut()),
                ) else {
                    return;
                };
                let Some(outgoing) = self.conns.get(&conn).and_then(|c| c.outgoing.clone()) else {
                    return;
                };
                // Most blocks lie in an extent already read: served at once,
                // without a task and a wake-up of this loop per block.
                if outgoing.has_room_for_blocks()
                    && let Some(data) = files.reads.cached(block)
                {
                    self.session
                        .handle_block_read(Instant::now(), id, conn, block, data);
                    return;
                }
                let read = files.reads.read(block);
                self.jobs.spawn(async move {
                    // Backpressure: a peer that reads slowly gets its blocks
                    // read from disk only as its queue drains.
                    outgoing.room_for_blocks().await;
                    let data = read.await;
                    JobDone::Read {
                        torrent: id,
                        conn,
                        block,
                        data,
                    }
                });
            }
            other => self.torrent_job(id, other),
        }
    }

    /// The actions of a torrent that touch its own state.
    fn torrent_job(&mut self, id: TorrentId, action: Action) {
        let Some(state) = self.torrents.get_mut(&id) else {
            return;
        };
        match action {
            Action::WriteBlock { block, data } => {
                if let Some(files) = &mut state.files {
                    files.inflight.insert(block, data);
                }
            }
            Action::VerifyPiece { piece } => {
                let Some(files) = &mut state.files else {
                    return;
                };
                let job = files.inflight.take(piece);
                self.verifying += 1;
                let expected = files.hashes[piece.as_usize()];
                let memory_bytes = job.memory_bytes();
                self.verifying_bytes += memory_bytes;
                self.jobs.spawn(async move {
                    let result = job.verify_and_store(expected).await;
                    JobDone::Verified {
                        torrent: id,
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
            } => match state.tracker.clone() {
                Some(tracker) => {
                    debug!(name = %state.name, ?event, "announcing");
                    self.announces.spawn(async move {
                        (
                            id,
                            tracker
                                .announce_to_first(event, uploaded, downloaded, left)
                                .await,
                        )
                    });
                }
                None => {
                    if event != AnnounceEvent::Stopped {
                        debug!(name = %state.name, "no tracker to announce to");
                        self.session.handle_announce_failed(Instant::now(), id);
                    }
                }
            },
            other => warn!(?other, "action not supported by this driver"),
        }
    }

    fn send(&mut self, conn: ConnectionId, message: Message) {
        let Some(outgoing) = self.conns.get(&conn).and_then(|c| c.outgoing.as_ref()) else {
            return;
        };
        if let Err(full) = outgoing.send(message) {
            let reason = DisconnectReason::ProtocolViolation(Violation::NotReading {
                queued: full.queued,
                limit: full.limit,
            });
            self.disconnect(conn, &reason);
        }
    }

    /// Closes a peer's connection (after its queued messages are written,
    /// unless it stopped reading) and tells the session at once.
    fn disconnect(&mut self, conn: ConnectionId, reason: &DisconnectReason) {
        if let Some(addr) = self.addr(conn) {
            if expected(reason) {
                debug!(%addr, %reason, "disconnecting peer");
            } else {
                info!(%addr, %reason, "disconnecting peer");
            }
        }
        let stuck = matches!(
            reason,
            DisconnectReason::ProtocolViolation(Violation::NotReading { .. })
        );
        self.close_conn(conn, stuck);
        self.session.handle_connection_closed(Instant::now(), conn);
    }
}

fn unknown(id: TorrentId) -> ClientError {
    ClientError::Torrent(minibit_core::session::SessionError::UnknownTorrent(id))
}

/// Whether closing a connection for `reason` is routine (both seeding, a
/// duplicate, shutting down), not worth more than a debug line.
fn expected(reason: &DisconnectReason) -> bool {
    matches!(
        reason,
        DisconnectReason::BothSeeding | DisconnectReason::Duplicate | DisconnectReason::Shutdown
    )
}

fn report(name: &str, event: &Event) {
    match event {
        Event::PeerConnected { peer, addr } => debug!(name, ?peer, %addr, "peer connected"),
        Event::PeerDisconnected { peer } => debug!(name, ?peer, "peer disconnected"),
        Event::PieceCompleted { piece } => debug!(name, %piece, "piece verified"),
        Event::PieceFailed { piece } => warn!(name, %piece, "piece failed verification"),
        Event::DownloadCompleted => info!(name, "download complete: every piece verified"),
        Event::PeerBanned { ip } => warn!(name, %ip, "peer banned for bad data"),
        Event::PexPeersLearned { peer, count } => {
            debug!(name, ?peer, "learned {count} peers via pex");
        }
        other => debug!(name, ?other, "torrent event"),
    }
}
