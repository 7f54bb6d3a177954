//! The [`Session`]: many torrents behind one listen port, sans IO
//! (quinn-proto's `Endpoint`, for BitTorrent).
//!
//! A session owns [`Torrent`]s keyed by [`TorrentId`] with an info-hash
//! index, and what is global: the connection table (every connection,
//! from its accept or dial to its close, has a [`ConnectionId`]; it is
//! dialling, handshaking, or bound to one torrent's peer), the caps on
//! connections, handshakes and dials, bans by IP address, and the upload
//! and download rate limits. It routes an inbound connection by the
//! initiator's handshake (BEP 3 lets the receiving side wait for it when
//! it serves several torrents), translates each torrent's [`PeerKey`]s to
//! connection ids, and keeps the torrents' deadlines in an ordered index.
//! A [`Torrent`] knows nothing of the session and stays usable alone.
//!
//! # Run loop
//! ```text
//! loop {
//!     wait for: an accepted socket, a connected dial, a handshake or frame read,
//!               a closed socket, a finished disk/hash job, a tracker answer,
//!               or the instant session.poll_timeout() returns
//!     call the matching handle_*(now, ...)
//!     while let Some(action) = session.poll_action() { carry it out }
//!     while let Some(event) = session.poll_event() { report it }
//! }
//! ```
//!
//! A connection's life, as the driver sees it:
//! 1. Inbound: on accept call [`Session::handle_incoming`]; `Err` means
//!    close the socket at once. Then read the initiator's 68-byte
//!    handshake (BEP 3) and call [`Session::handle_handshake`]; `Ok`
//!    carries our handshake in [`Routed::reply`]: write it before any
//!    action for that connection; `Err` means close.
//! 2. Outbound: [`SessionAction::Torrent`] with [`Action::Connect`] comes
//!    with the new connection's id. Once TCP is up call
//!    [`Session::handle_connected`] and write the handshake it returns,
//!    then read the remote one and call [`Session::handle_handshake`].
//! 3. Bound: hand in each frame with [`Session::handle_message`]; carry
//!    out the torrent's actions on the connection they name.
//! 4. Whenever a socket closes, for any reason (a failed dial, an error,
//!    after an [`Action::Disconnect`] or a [`SessionAction::Close`]), call
//!    [`Session::handle_connection_closed`]; calling it for a connection
//!    the session already forgot is harmless.
//!
//! Answer the torrent-level actions as for a lone [`Torrent`] (see
//! [`crate::torrent`]), through the session's methods that take a
//! [`TorrentId`]: [`Session::handle_block_read`],
//! [`Session::handle_piece_verified`],
//! [`Session::handle_announce_response`],
//! [`Session::handle_announce_failed`]. Answers for a torrent removed
//! meanwhile are ignored. [`SessionAction::PauseReading`] and
//! [`SessionAction::ResumeReading`] switch reading from every socket off
//! and on (the download limit); the upload limit holds back
//! [`Action::ReadBlock`]s inside the session.
//!
//! # Magnet links (BEP 9)
//! [`Session::add_magnet`] adds a torrent that knows only its info-hash
//! (and dials the link's `x.pe` addresses; the driver announces to its
//! `tr` trackers and resolves `x.pe` host names). It connects, routes and
//! keeps its peers like any torrent while it fetches the info dictionary
//! with `ut_metadata` ([`Torrent::from_magnet`]). Once the dictionary
//! hashes to the info-hash, [`Event::MetadataReceived`] carries the parsed
//! [`Metainfo`]: the driver saves the `.torrent`, opens storage (checking
//! what is on disk), and calls [`Session::metadata_ready`] with the pieces
//! verified; only then are pieces requested, over the same connections.
//! [`Session::add_metainfo`] adds a torrent whose metadata we hold and
//! serves it to peers, so they can start from our magnet links.
//!
//! # Limits
//! - At most [`SessionConfig::max_connections`] connections in the table;
//!   at most [`SessionConfig::max_handshaking`] waiting for a handshake,
//!   each for at most [`SessionConfig::handshake_timeout`]; when a new
//!   inbound connection finds either cap full, the oldest handshaking
//!   connection is evicted ([`CloseReason::Evicted`]); only when every
//!   connection is bound is the new one refused.
//! - At most [`SessionConfig::max_dials`] dials in progress (and never
//!   past the connection cap); further dials wait in a FIFO queue.
//! - A banned IP address ([`Session::ban_ip`], or a torrent's
//!   [`Event::PeerBanned`]) is refused and never dialled, for every
//!   torrent, and its open connections are closed.
//! - Rate limits are token buckets fed by `now` (bytes per second, burst
//!   of a tenth of a second, 0 = unlimited): received block payload
//!   counts against the download limit, each [`Action::ReadBlock`]
//!   against the upload limit.
//! - Each torrent may have its own limits under the global ones
//!   ([`Session::set_torrent_rate_limits`]): its reads wait for its upload
//!   bucket and the global one (torrents take turns), its block requests
//!   wait for its download bucket (a held request the torrent gave up
//!   meanwhile is dropped).
//! - Optionally a global number of upload slots
//!   ([`SessionConfig::unchoke_slots`], libtorrent's `unchoke_slots_limit`)
//!   shared among the torrents ([`Torrent::set_unchoke_slots`]): the peers
//!   unchoked over all torrents never outnumber it.

mod bucket;
mod config;
mod connections;
mod slots;
mod throttle;
mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::bitfield::Bitfield;
use crate::id::{ConnectionId, PeerKey, TorrentId};
use crate::magnet::{Magnet, MagnetPeer};
use crate::metainfo::{InfoHash, Metainfo};
use crate::piece::{BlockRef, Layout, PieceIndex};
use crate::torrent::{Action, Direction, Event, Torrent, TorrentConfig};
use crate::wire::{Handshake, Message, PeerId};

use bucket::TokenBucket;
pub use config::SessionConfig;
pub use connections::ConnectionState;
use connections::Connections;
use throttle::Throttle;
pub use types::{
    CloseReason, Refusal, Routed, SessionAction, SessionError, SessionEvent, SessionStats,
};

/// One torrent of the session.
#[derive(Debug)]
struct Entry {
    torrent: Torrent,
    info_hash: InfoHash,
    /// Kept to start the torrent again after a pause.
    config: TorrentConfig,
    paused: bool,
    /// The connection of each of the torrent's peers.
    peers: HashMap<PeerKey, ConnectionId>,
    /// The torrent's deadline as recorded in [`Session::deadlines`].
    deadline: Option<Instant>,
    /// Its own rate limits and what they hold back.
    throttle: Throttle,
}

/// Many torrents, one connection table, global limits. See the module docs.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    peer_id: PeerId,
    torrents: BTreeMap<TorrentId, Entry>,
    by_info_hash: HashMap<InfoHash, TorrentId>,
    next_torrent: u64,
    connections: Connections,
    /// Each torrent's deadline, earliest first.
    deadlines: BTreeSet<(Instant, TorrentId)>,
    banned: HashSet<IpAddr>,
    /// Dials waiting for a dial slot, oldest first.
    queued_dials: VecDeque<(TorrentId, SocketAddr)>,
    upload: TokenBucket,
    download: TokenBucket,
    reading_paused: bool,
    /// Next sharing of the global upload slots.
    next_slot_share: Instant,
    /// Where the next round-robin of slots starts.
    slot_rotation: usize,
    actions: VecDeque<SessionAction>,
    events: VecDeque<SessionEvent>,
    /// Latest instant seen: time never goes backwards inside.
    now: Instant,
}

impl Session {
    /// An empty session; `peer_id` is ours in every torrent's handshake.
    pub fn new(config: SessionConfig, peer_id: PeerId, now: Instant) -> Self {
        Self {
            upload: TokenBucket::new(config.upload_limit, now),
            download: TokenBucket::new(config.download_limit, now),
            config,
            peer_id,
            torrents: BTreeMap::new(),
            by_info_hash: HashMap::new(),
            next_torrent: 0,
            connections: Connections::default(),
            deadlines: BTreeSet::new(),
            banned: HashSet::new(),
            queued_dials: VecDeque::new(),
            reading_paused: false,
            next_slot_share: now,
            slot_rotation: 0,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            now,
        }
    }

    /// Adds a torrent (see [`Torrent::new`] for `layout` and `have`); it
    /// announces `started` at once. A config without
    /// [`TorrentConfig::listen_addr`] gets [`SessionConfig::listen_addr`],
    /// one without [`TorrentConfig::dht_port`] gets
    /// [`SessionConfig::dht_port`].
    ///
    /// # Errors
    /// [`SessionError::DuplicateInfoHash`] if the session has it already.
    pub fn add_torrent(
        &mut self,
        now: Instant,
        config: TorrentConfig,
        info_hash: InfoHash,
        layout: Layout,
        have: Bitfield,
    ) -> Result<TorrentId, SessionError> {
        self.insert_torrent(now, config, info_hash, |config, peer_id| {
            Torrent::new(config, info_hash, peer_id, layout, have, now)
        })
    }

    /// Adds the torrent of `metainfo` as [`Session::add_torrent`] does,
    /// and serves its metadata to peers (BEP 9 `ut_metadata`, see
    /// [`Torrent::set_info_bytes`]); a private torrent (BEP 27) gets
    /// [`TorrentConfig::private`].
    ///
    /// # Errors
    /// [`SessionError::DuplicateInfoHash`] if the session has it already.
    pub fn add_metainfo(
        &mut self,
        now: Instant,
        mut config: TorrentConfig,
        metainfo: &Metainfo,
        have: Bitfield,
    ) -> Result<TorrentId, SessionError> {
        config.private |= metainfo.info().private();
        let info = Bytes::copy_from_slice(metainfo.info_bytes());
        self.insert_torrent(now, config, metainfo.info_hash(), |config, peer_id| {
            let mut torrent = Torrent::new(
                config,
                metainfo.info_hash(),
                peer_id,
                metainfo.layout().clone(),
                have,
                now,
            );
            torrent
                .set_info_bytes(now, info)
                .expect("a metainfo's info bytes hash to its info-hash");
            torrent
        })
    }

    /// Adds a torrent from a magnet link (BEP 9): its info-hash, and its
    /// `x.pe` peers given as addresses, dialled like tracker peers. It
    /// announces `started` at once; the driver announces to the link's
    /// `tr` trackers and resolves `x.pe` host names (then
    /// [`Session::handle_peers`]). It fetches the metadata from its
    /// peers (see [`Torrent::from_magnet`]) and reports
    /// [`Event::MetadataReceived`]; then the driver saves the `.torrent`,
    /// opens storage and calls [`Session::metadata_ready`].
    ///
    /// # Errors
    /// [`SessionError::DuplicateInfoHash`] if the session has it already.
    pub fn add_magnet(
        &mut self,
        now: Instant,
        config: TorrentConfig,
        magnet: &Magnet,
    ) -> Result<TorrentId, SessionError> {
        let info_hash = magnet.info_hash;
        let id = self.insert_torrent(now, config, info_hash, |config, peer_id| {
            Torrent::from_magnet(config, info_hash, peer_id, now)
        })?;
        let peers: Vec<SocketAddr> = magnet
            .peers
            .iter()
            .filter_map(|peer| match peer {
                MagnetPeer::Addr(addr) => Some(*addr),
                MagnetPeer::Host { .. } => None,
            })
            .collect();
        if !peers.is_empty() {
            self.handle_peers(now, id, &peers);
        }
        Ok(id)
    }

    /// Storage is open for torrent `id` after its
    /// [`Event::MetadataReceived`]; `have` holds the pieces already
    /// verified on disk. See [`Torrent::metadata_ready`]: the torrent
    /// keeps its connections and starts downloading.
    ///
    /// # Errors
    /// [`SessionError::UnknownTorrent`];
    /// [`SessionError::Metadata`] when the torrent is not waiting for
    /// storage.
    pub fn metadata_ready(
        &mut self,
        now: Instant,
        id: TorrentId,
        have: Bitfield,
    ) -> Result<(), SessionError> {
        let now = self.clock(now);
        let entry = self.entry_mut(id)?;
        entry
            .torrent
            .metadata_ready(now, have)
            .map_err(|error| SessionError::Metadata(id, error))?;
        self.drain(now, id);
        self.share_slots(now);
        self.after_input(now);
        Ok(())
    }

    /// Serves `info`, the bencoded info dictionary of torrent `id` (added
    /// with [`Session::add_torrent`]), to peers with BEP 9 `ut_metadata`;
    /// see [`Torrent::set_info_bytes`].
    ///
    /// # Errors
    /// [`SessionError::UnknownTorrent`]; [`SessionError::Metadata`] when
    /// `info` does not hash to the info-hash or the torrent fetches its
    /// metadata itself (a magnet link).
    pub fn set_info_bytes(
        &mut self,
        now: Instant,
        id: TorrentId,
        info: Bytes,
    ) -> Result<(), SessionError> {
        let now = self.clock(now);
        let entry = self.entry_mut(id)?;
        entry
            .torrent
            .set_info_bytes(now, info)
            .map_err(|error| SessionError::Metadata(id, error))?;
        self.drain(now, id);
        self.after_input(now);
        Ok(())
    }

    /// Torrent `id`'s entry.
    ///
    /// # Errors
    /// [`SessionError::UnknownTorrent`].
    fn entry_mut(&mut self, id: TorrentId) -> Result<&mut Entry, SessionError> {
        self.torrents
            .get_mut(&id)
            .ok_or(SessionError::UnknownTorrent(id))
    }

    /// Adds the torrent `make` builds from the final config and our peer id.
    fn insert_torrent(
        &mut self,
        now: Instant,
        mut config: TorrentConfig,
        info_hash: InfoHash,
        make: impl FnOnce(TorrentConfig, PeerId) -> Torrent,
    ) -> Result<TorrentId, SessionError> {
        let now = self.clock(now);
        if self.by_info_hash.contains_key(&info_hash) {
            return Err(SessionError::DuplicateInfoHash(info_hash));
        }
        if config.listen_addr.is_none() {
            config.listen_addr = self.config.listen_addr;
        }
        if config.dht_port.is_none() {
            config.dht_port = self.config.dht_port;
        }
        let id = TorrentId(self.next_torrent);
        self.next_torrent += 1;
        let torrent = make(config.clone(), self.peer_id);
        self.torrents.insert(
            id,
            Entry {
                torrent,
                info_hash,
                config,
                paused: false,
                peers: HashMap::new(),
                deadline: None,
                throttle: Throttle::new(now),
            },
        );
        self.by_info_hash.insert(info_hash, id);
        self.drain(now, id);
        self.share_slots(now);
        self.after_input(now);
        Ok(id)
    }

    /// Removes a torrent: it announces `stopped` and its peers get
    /// [`Action::Disconnect`]s (both still tagged with `id`); its other
    /// connections get [`SessionAction::Close`]. Every connection of the
    /// torrent leaves the table at once.
    ///
    /// # Errors
    /// [`SessionError::UnknownTorrent`].
    pub fn remove_torrent(&mut self, now: Instant, id: TorrentId) -> Result<(), SessionError> {
        let now = self.clock(now);
        self.stop_torrent(now, id)?;
        let entry = self.torrents.remove(&id).expect("stopped above");
        for conn in entry.peers.values() {
            self.connections.remove(*conn);
        }
        if let Some(deadline) = entry.deadline {
            self.deadlines.remove(&(deadline, id));
        }
        self.by_info_hash.remove(&entry.info_hash);
        self.share_slots(now);
        self.after_input(now);
        Ok(())
    }

    /// Pauses a torrent: as [`Session::remove_torrent`], but it stays in
    /// the session (inbound connections for it are refused with
    /// [`Refusal::Paused`]; piece verifications still in flight count).
    /// Pausing a paused torrent does nothing.
    ///
    /// # Errors
    /// [`SessionError::UnknownTorrent`].
    pub fn pause_torrent(&mut self, now: Instant, id: TorrentId) -> Result<(), SessionError> {
        let now = self.clock(now);
        self.stop_torrent(now, id)?;
        self.share_slots(now);
        self.after_input(now);
        Ok(())
    }

    /// Resumes a paused torrent: a fresh [`Torrent`] with the pieces
    /// verified so far (and its metadata, or a fresh fetch of it for a
    /// magnet link still fetching) announces `started` again. Connections of the paused
    /// torrent still closing are forgotten. Resuming a running torrent does
    /// nothing.
    ///
    /// # Errors
    /// [`SessionError::UnknownTorrent`].
    pub fn resume_torrent(&mut self, now: Instant, id: TorrentId) -> Result<(), SessionError> {
        let now = self.clock(now);
        let entry = self
            .torrents
            .get_mut(&id)
            .ok_or(SessionError::UnknownTorrent(id))?;
        if !entry.paused {
            return Ok(());
        }
        entry.paused = false;
        entry.torrent = entry.torrent.restarted(entry.config.clone(), now);
        for (_, conn) in entry.peers.drain() {
            self.connections.remove(conn);
        }
        self.drain(now, id);
        self.share_slots(now);
        self.after_input(now);
        Ok(())
    }

    /// Stops torrent `id` (announce `stopped`, disconnect its peers),
    /// closes its half-open connections and drops its queued dials and
    /// reads; marks it paused.
    fn stop_torrent(&mut self, now: Instant, id: TorrentId) -> Result<(), SessionError> {
        let entry = self.entry_mut(id)?;
        if entry.paused {
            return Ok(());
        }
        entry.paused = true;
        entry.torrent.stop(now);
        entry.throttle.clear();
        let half_open: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|c| {
                c.state.torrent() == Some(id) && !matches!(c.state, ConnectionState::Bound { .. })
            })
            .map(|c| c.id)
            .collect();
        for conn in half_open {
            self.close(now, conn, CloseReason::TorrentStopped);
        }
        self.queued_dials.retain(|&(t, _)| t != id);
        self.drain(now, id);
        Ok(())
    }

    /// The torrent `id`, to read its state (stats, pieces, layout).
    pub fn torrent(&self, id: TorrentId) -> Option<&Torrent> {
        self.torrents.get(&id).map(|entry| &entry.torrent)
    }

    /// The torrent with this info-hash.
    pub fn torrent_id(&self, info_hash: &InfoHash) -> Option<TorrentId> {
        self.by_info_hash.get(info_hash).copied()
    }

    /// Every torrent's id, in the order they were added.
    pub fn torrent_ids(&self) -> impl Iterator<Item = TorrentId> + '_ {
        self.torrents.keys().copied()
    }

    /// Whether torrent `id` is paused (`None` if unknown).
    pub fn is_paused(&self, id: TorrentId) -> Option<bool> {
        self.torrents.get(&id).map(|entry| entry.paused)
    }

    /// Where connection `conn` stands, `None` once it left the table.
    pub fn connection(&self, conn: ConnectionId) -> Option<ConnectionState> {
        self.connections.get(conn).map(|c| c.state)
    }

    /// The remote address of connection `conn`.
    pub fn connection_addr(&self, conn: ConnectionId) -> Option<SocketAddr> {
        self.connections.get(conn).map(|c| c.addr)
    }

    /// The connections of torrent `id`'s peers (past the handshake).
    pub fn peer_connections(&self, id: TorrentId) -> impl Iterator<Item = ConnectionId> + '_ {
        self.torrents
            .get(&id)
            .into_iter()
            .flat_map(|entry| entry.peers.values().copied())
    }

    /// Counts over the session.
    pub fn stats(&self) -> SessionStats {
        SessionStats {
            torrents: self.torrents.len(),
            connections: self.connections.len(),
            handshaking: self.connections.handshaking(),
            dialing: self.connections.dialing(),
            queued_dials: self.queued_dials.len(),
        }
    }

    /// Bans `ip` in every torrent: inbound connections from it are refused,
    /// it is never dialled, and its open connections are closed
    /// ([`CloseReason::Banned`]).
    pub fn ban_ip(&mut self, now: Instant, ip: IpAddr) {
        let now = self.clock(now);
        self.ban(now, ip);
        self.after_input(now);
    }

    /// Lifts a ban of [`Session::ban_ip`] (a torrent's own ban for bad
    /// data stays with that torrent).
    pub fn unban_ip(&mut self, ip: IpAddr) {
        self.banned.remove(&ip);
    }

    /// Whether `ip` is banned session-wide.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.banned.contains(&ip)
    }

    /// Sets the rate limits, payload bytes per second (0 = unlimited).
    pub fn set_rate_limits(&mut self, now: Instant, upload: u64, download: u64) {
        let now = self.clock(now);
        self.config.upload_limit = upload;
        self.config.download_limit = download;
        self.upload = TokenBucket::new(upload, now);
        self.download = TokenBucket::new(download, now);
        self.after_input(now);
    }

    /// Sets torrent `id`'s own rate limits, payload bytes per second (0 =
    /// unlimited), applied under the global ones: its block reads wait for
    /// both upload buckets, its block requests for its download bucket
    /// (the received payload still counts against the global download
    /// limit). Kept across a pause.
    ///
    /// # Errors
    /// [`SessionError::UnknownTorrent`].
    pub fn set_torrent_rate_limits(
        &mut self,
        now: Instant,
        id: TorrentId,
        upload: u64,
        download: u64,
    ) -> Result<(), SessionError> {
        let now = self.clock(now);
        let entry = self.entry_mut(id)?;
        entry.throttle.set_limits(now, upload, download);
        self.after_input(now);
        Ok(())
    }

    /// Torrent `id`'s own rate limits, bytes per second (0 = unlimited):
    /// `(upload, download)`; `None` if unknown.
    pub fn torrent_rate_limits(&self, id: TorrentId) -> Option<(u64, u64)> {
        self.torrents.get(&id).map(|entry| entry.throttle.limits())
    }

    /// A socket was accepted from `addr`. `Ok` gives its handle: read the
    /// initiator's handshake next and call [`Session::handle_handshake`].
    /// May evict the oldest handshaking connection to make room (see the
    /// module docs).
    ///
    /// # Errors
    /// [`Refusal::Banned`] or [`Refusal::ConnectionLimit`]: close the socket.
    pub fn handle_incoming(
        &mut self,
        now: Instant,
        addr: SocketAddr,
    ) -> Result<ConnectionId, Refusal> {
        let now = self.clock(now);
        let result = self.admit(now, addr);
        self.after_input(now);
        result
    }

    fn admit(&mut self, now: Instant, addr: SocketAddr) -> Result<ConnectionId, Refusal> {
        if self.banned.contains(&addr.ip()) {
            return Err(Refusal::Banned);
        }
        while self.connections.handshaking() >= self.config.max_handshaking
            || self.connections.len() >= self.config.max_connections
        {
            let Some((_, oldest)) = self.connections.oldest_handshaking() else {
                return Err(Refusal::ConnectionLimit);
            };
            self.close(now, oldest, CloseReason::Evicted);
        }
        let state = ConnectionState::Handshaking {
            torrent: None,
            direction: Direction::Inbound,
            deadline: now + self.config.handshake_timeout,
        };
        Ok(self.connections.insert(addr, state))
    }

    /// The dial `conn` connected: write the returned handshake, then read
    /// the remote one. `None` if `conn` is not a dial in progress (closed
    /// meanwhile: drop the socket).
    pub fn handle_connected(&mut self, now: Instant, conn: ConnectionId) -> Option<Handshake> {
        let now = self.clock(now);
        let ConnectionState::Dialing { torrent } = self.connections.get(conn)?.state else {
            return None;
        };
        while self.connections.handshaking() >= self.config.max_handshaking {
            let Some((_, oldest)) = self.connections.oldest_handshaking() else {
                break;
            };
            self.close(now, oldest, CloseReason::Evicted);
        }
        let Some(entry) = self.torrents.get(&torrent) else {
            self.connections.remove(conn);
            return None;
        };
        let handshake = entry.torrent.handshake();
        self.connections.set_state(
            conn,
            ConnectionState::Handshaking {
                torrent: Some(torrent),
                direction: Direction::Outbound,
                deadline: now + self.config.handshake_timeout,
            },
        );
        self.after_input(now);
        Some(handshake)
    }

    /// The remote handshake of `conn` arrived. Inbound, it is routed by its
    /// info-hash; outbound, it goes to the torrent that dialled. `Ok`: the
    /// connection is bound to the torrent's new peer.
    ///
    /// # Errors
    /// A [`Refusal`]: close the socket (the session forgot it).
    pub fn handle_handshake(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        theirs: &Handshake,
    ) -> Result<Routed, Refusal> {
        let now = self.clock(now);
        let result = self.route(now, conn, theirs);
        if matches!(&result, Err(refusal) if !matches!(refusal, Refusal::UnknownConnection | Refusal::NotHandshaking))
        {
            self.connections.remove(conn);
        }
        self.after_input(now);
        result
    }

    fn route(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        theirs: &Handshake,
    ) -> Result<Routed, Refusal> {
        let connection = self
            .connections
            .get(conn)
            .ok_or(Refusal::UnknownConnection)?;
        let addr = connection.addr;
        let ConnectionState::Handshaking {
            torrent, direction, ..
        } = connection.state
        else {
            return Err(Refusal::NotHandshaking);
        };
        let id = match torrent {
            Some(id) => id,
            None => self
                .torrent_id(&theirs.info_hash)
                .ok_or(Refusal::UnknownInfoHash(theirs.info_hash))?,
        };
        let entry = self
            .torrents
            .get_mut(&id)
            .ok_or(Refusal::UnknownInfoHash(theirs.info_hash))?;
        if entry.paused {
            return Err(Refusal::Paused(id));
        }
        let accepted = entry.torrent.handle_handshake(now, addr, direction, theirs);
        if let Ok(peer) = accepted {
            entry.peers.insert(peer, conn);
            self.connections
                .set_state(conn, ConnectionState::Bound { torrent: id, peer });
        }
        let reply = (direction == Direction::Inbound).then(|| entry.torrent.handshake());
        self.drain(now, id);
        accepted?;
        Ok(Routed { torrent: id, reply })
    }

    /// A frame from `conn`; ignored unless `conn` is bound. Block payload
    /// counts against the download limit.
    pub fn handle_message(&mut self, now: Instant, conn: ConnectionId, message: Message) {
        let now = self.clock(now);
        let Some(ConnectionState::Bound { torrent, peer }) = self.connection(conn) else {
            return;
        };
        if let Message::Piece { data, .. } = &message {
            self.download.refill(now);
            self.download.take(data.len() as u64);
        }
        if let Some(entry) = self.torrents.get_mut(&torrent) {
            entry.torrent.handle_message(now, peer, message);
            self.drain(now, torrent);
        }
        self.after_input(now);
    }

    /// Socket `conn` closed, whatever the reason. A dial or outbound
    /// handshake counts as a failed connect for its torrent; a bound peer
    /// leaves its torrent, and its slot is free.
    pub fn handle_connection_closed(&mut self, now: Instant, conn: ConnectionId) {
        let now = self.clock(now);
        match self.connection(conn) {
            Some(ConnectionState::Bound { torrent, peer }) => {
                if let Some(entry) = self.torrents.get_mut(&torrent) {
                    entry.torrent.handle_peer_disconnected(now, peer);
                    self.drain(now, torrent);
                }
                // Normally gone with the torrent's `PeerDisconnected`.
                self.forget_peer(torrent, peer, conn);
            }
            Some(_) => self.drop_half_open(now, conn),
            None => {}
        }
        self.after_input(now);
    }

    /// The data of a [`Action::ReadBlock`] for the peer on `conn`.
    pub fn handle_block_read(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        conn: ConnectionId,
        block: BlockRef,
        data: Bytes,
    ) {
        let now = self.clock(now);
        if let Some(ConnectionState::Bound { torrent: t, peer }) = self.connection(conn) {
            if t == torrent {
                self.with_torrent(now, torrent, |t| {
                    t.handle_block_read(now, peer, block, data);
                });
            }
        }
        self.after_input(now);
    }

    /// The outcome of an [`Action::VerifyPiece`] of `torrent`.
    pub fn handle_piece_verified(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        piece: PieceIndex,
        ok: bool,
    ) {
        let now = self.clock(now);
        self.with_torrent(now, torrent, |t| t.handle_piece_verified(now, piece, ok));
        self.after_input(now);
    }

    /// A tracker answered an [`Action::Announce`] of `torrent` with its
    /// `interval`, `min_interval` and `peers` (see
    /// [`Torrent::handle_announce_response`](crate::torrent::Torrent::handle_announce_response)).
    pub fn handle_announce_response(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        interval: Duration,
        min_interval: Option<Duration>,
        peers: &[SocketAddr],
    ) {
        let now = self.clock(now);
        self.with_torrent(now, torrent, |t| {
            t.handle_announce_response(now, interval, min_interval, peers);
        });
        self.after_input(now);
    }

    /// An [`Action::Announce`] of `torrent` failed.
    pub fn handle_announce_failed(&mut self, now: Instant, torrent: TorrentId) {
        let now = self.clock(now);
        self.with_torrent(now, torrent, |t| t.handle_announce_failed(now));
        self.after_input(now);
    }

    /// Peer addresses for `torrent` learned outside its announces (see
    /// [`Torrent::handle_peers`]).
    pub fn handle_peers(&mut self, now: Instant, torrent: TorrentId, peers: &[SocketAddr]) {
        let now = self.clock(now);
        self.with_torrent(now, torrent, |t| t.handle_peers(now, peers));
        self.after_input(now);
    }

    /// The instant from [`Session::poll_timeout`] has passed (early or late
    /// is harmless): expires handshakes, runs the torrents that are due,
    /// and lets held-back reads and reading go on as the rate limits allow.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        while let Some((deadline, oldest)) = self.connections.oldest_handshaking() {
            if deadline > now {
                break;
            }
            self.close(now, oldest, CloseReason::HandshakeTimeout);
        }
        let due: Vec<TorrentId> = self
            .deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .map(|&(_, id)| id)
            .collect();
        for id in due {
            self.with_torrent(now, id, |t| t.handle_timeout(now));
        }
        if self.config.unchoke_slots.is_some() && self.next_slot_share <= now {
            self.share_slots(now);
        }
        self.after_input(now);
    }

    /// The next thing to do, or `None`.
    pub fn poll_action(&mut self) -> Option<SessionAction> {
        self.actions.pop_front()
    }

    /// The next thing to report, or `None`.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] must next be called: the earliest
    /// of every torrent's deadline (an ordered index, no scan), the oldest
    /// handshake's deadline, the instant a rate limit lets traffic on, and
    /// the next sharing of global upload slots.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let torrents = self.deadlines.first().map(|&(deadline, _)| deadline);
        let handshake = self
            .connections
            .oldest_handshaking()
            .map(|(deadline, _)| deadline);
        let global_upload = self.upload.opens_at();
        let throttles = self
            .torrents
            .values()
            .filter_map(|entry| entry.throttle.wakes_at(global_upload))
            .min();
        let reading = if self.reading_paused {
            self.download.opens_at()
        } else {
            None
        };
        let slots = (self.config.unchoke_slots.is_some() && !self.torrents.is_empty())
            .then_some(self.next_slot_share);
        [torrents, handshake, throttles, reading, slots]
            .into_iter()
            .flatten()
            .min()
    }

    /// Shares [`SessionConfig::unchoke_slots`] among the running torrents
    /// (see there); fewer slots first, so no torrent rechokes into a slot
    /// another still holds.
    fn share_slots(&mut self, now: Instant) {
        let Some(total) = self.config.unchoke_slots else {
            return;
        };
        self.next_slot_share = now + slots::SHARE_INTERVAL;
        let (ids, demand): (Vec<TorrentId>, Vec<usize>) = self
            .torrents
            .iter()
            .filter(|(_, entry)| !entry.paused)
            .map(|(&id, entry)| (id, entry.torrent.interested_peers()))
            .unzip();
        let shares = slots::share(total, &demand, self.slot_rotation);
        self.slot_rotation = self.slot_rotation.wrapping_add(1);
        let mut changes: Vec<(bool, TorrentId, usize)> = ids
            .into_iter()
            .zip(shares)
            .map(|(id, slots)| {
                (
                    slots >= self.torrents[&id].torrent.unchoked_peers(),
                    id,
                    slots,
                )
            })
            .collect();
        changes.sort_unstable();
        for (_, id, slots) in changes {
            self.with_torrent(now, id, |t| t.set_unchoke_slots(now, slots));
        }
    }

    /// Calls `f` on torrent `id` (if it exists) and drains its outputs.
    fn with_torrent(&mut self, now: Instant, id: TorrentId, f: impl FnOnce(&mut Torrent)) {
        if let Some(entry) = self.torrents.get_mut(&id) {
            f(&mut entry.torrent);
            self.drain(now, id);
        }
    }

    /// Moves torrent `id`'s actions and events into the session's queues,
    /// translating peers to connections, then re-files its deadline.
    fn drain(&mut self, now: Instant, id: TorrentId) {
        loop {
            let Some(entry) = self.torrents.get_mut(&id) else {
                return;
            };
            if let Some(action) = entry.torrent.poll_action() {
                self.route_action(now, id, action);
            } else if let Some(event) = entry.torrent.poll_event() {
                self.route_event(now, id, event);
            } else {
                break;
            }
        }
        let Some(entry) = self.torrents.get_mut(&id) else {
            return;
        };
        let deadline = entry.torrent.poll_timeout();
        if deadline != entry.deadline {
            if let Some(old) = entry.deadline {
                self.deadlines.remove(&(old, id));
            }
            if let Some(new) = deadline {
                self.deadlines.insert((new, id));
            }
            entry.deadline = deadline;
        }
    }

    fn route_action(&mut self, now: Instant, id: TorrentId, action: Action) {
        let global_upload = self.upload.is_limited();
        let Some(entry) = self.torrents.get_mut(&id) else {
            return;
        };
        let conn = match &action {
            Action::Send { peer, .. }
            | Action::Disconnect { peer, .. }
            | Action::ReadBlock { peer, .. } => entry.peers.get(peer).copied(),
            _ => None,
        };
        if let Action::Connect { addr } = action {
            self.dial(now, id, addr);
        } else if let Some(action) = entry.throttle.hold(global_upload, conn, action) {
            self.actions.push_back(SessionAction::Torrent {
                torrent: id,
                conn,
                action,
            });
        }
    }

    /// Lets held-back reads go while both upload buckets allow (one per
    /// torrent in turn), and held-back requests while their torrent's
    /// download bucket allows.
    fn release_held(&mut self, now: Instant) {
        self.upload.refill(now);
        let mut moved = true;
        while moved && self.upload.is_open() {
            moved = false;
            for (&id, entry) in &mut self.torrents {
                if !self.upload.is_open() {
                    break;
                }
                while let Some((conn, action)) = entry.throttle.next_read(now) {
                    if conn.is_some_and(|conn| self.connections.get(conn).is_none()) {
                        continue; // its peer left meanwhile
                    }
                    if let Action::ReadBlock { block, .. } = &action {
                        self.upload.take(u64::from(block.length));
                    }
                    self.actions.push_back(SessionAction::Torrent {
                        torrent: id,
                        conn,
                        action,
                    });
                    moved = true;
                    break;
                }
            }
        }
        for (&id, entry) in &mut self.torrents {
            let torrent = &entry.torrent;
            let released = entry.throttle.release_requests(now, |(_, action)| {
                matches!(action, Action::Send {
                    peer,
                    message: Message::Request { piece, offset, length },
                } if torrent.is_requested(*peer, *piece, *offset, *length))
            });
            for (conn, action) in released {
                self.actions.push_back(SessionAction::Torrent {
                    torrent: id,
                    conn,
                    action,
                });
            }
        }
    }

    fn route_event(&mut self, now: Instant, id: TorrentId, event: Event) {
        match event {
            Event::PeerDisconnected { peer } => {
                if let Some(&conn) = self.torrents[&id].peers.get(&peer) {
                    self.forget_peer(id, peer, conn);
                }
            }
            Event::PeerBanned { ip } => self.ban(now, ip),
            _ => {}
        }
        self.events
            .push_back(SessionEvent::Torrent { torrent: id, event });
    }

    /// A dial for torrent `id`: refused at once for a banned address,
    /// started if a dial slot is free, else queued.
    fn dial(&mut self, now: Instant, id: TorrentId, addr: SocketAddr) {
        if self.banned.contains(&addr.ip()) {
            if let Some(entry) = self.torrents.get_mut(&id) {
                entry.torrent.handle_connect_failed(now, addr);
            }
        } else if self.may_dial() {
            self.start_dial(id, addr);
        } else {
            self.queued_dials.push_back((id, addr));
        }
    }

    fn may_dial(&self) -> bool {
        self.connections.dialing() < self.config.max_dials
            && self.connections.len() < self.config.max_connections
    }

    fn start_dial(&mut self, id: TorrentId, addr: SocketAddr) {
        let conn = self
            .connections
            .insert(addr, ConnectionState::Dialing { torrent: id });
        self.actions.push_back(SessionAction::Torrent {
            torrent: id,
            conn: Some(conn),
            action: Action::Connect { addr },
        });
    }

    /// Bans `ip` and closes its connections.
    fn ban(&mut self, now: Instant, ip: IpAddr) {
        if !self.banned.insert(ip) {
            return;
        }
        let hit: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|c| c.addr.ip() == ip)
            .map(|c| c.id)
            .collect();
        for conn in hit {
            self.close(now, conn, CloseReason::Banned);
        }
    }

    /// Asks the driver to close `conn`. A half-open connection leaves the
    /// table at once (a dial counts as failed for its torrent); a bound one
    /// stays until [`Session::handle_connection_closed`].
    fn close(&mut self, now: Instant, conn: ConnectionId, reason: CloseReason) {
        let Some(state) = self.connection(conn) else {
            return;
        };
        if !matches!(state, ConnectionState::Bound { .. }) {
            self.drop_half_open(now, conn);
        }
        self.actions
            .push_back(SessionAction::Close { conn, reason });
    }

    /// Removes half-open `conn`; an outbound one is a failed connect for
    /// its torrent.
    fn drop_half_open(&mut self, now: Instant, conn: ConnectionId) {
        let Some(connection) = self.connections.remove(conn) else {
            return;
        };
        if connection.state.is_outbound_half_open() {
            if let Some(id) = connection.state.torrent() {
                self.with_torrent(now, id, |t| t.handle_connect_failed(now, connection.addr));
            }
        }
    }

    /// `peer` of torrent `id` left: its connection leaves the table.
    fn forget_peer(&mut self, id: TorrentId, peer: PeerKey, conn: ConnectionId) {
        if let Some(entry) = self.torrents.get_mut(&id) {
            if entry.peers.get(&peer) == Some(&conn) {
                entry.peers.remove(&peer);
            }
        }
        if self.connection(conn) == Some(ConnectionState::Bound { torrent: id, peer }) {
            self.connections.remove(conn);
        }
    }

    /// After every input: start queued dials while slots are free, and let
    /// the rate limits move (held-back reads, pause/resume reading).
    fn after_input(&mut self, now: Instant) {
        while self.may_dial() {
            let Some((id, addr)) = self.queued_dials.pop_front() else {
                break;
            };
            if self.torrents.get(&id).is_some_and(|entry| !entry.paused) {
                self.start_dial(id, addr);
            }
        }
        self.release_held(now);
        self.download.refill(now);
        let open = self.download.is_open();
        if self.reading_paused && open {
            self.reading_paused = false;
            self.actions.push_back(SessionAction::ResumeReading);
        } else if !self.reading_paused && !open {
            self.reading_paused = true;
            self.actions.push_back(SessionAction::PauseReading);
        }
    }

    /// Clamps `now` so time never goes backwards.
    fn clock(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }
}
