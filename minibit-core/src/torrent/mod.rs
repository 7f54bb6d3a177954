//! The [`Torrent`] state machine: one info-hash, our pieces, every connected
//! peer, requests, choking and timers (BEP 3 peer protocol, BEP 6, BEP 10).
//!
//! Inputs are the `handle_*` methods, outputs are drained with
//! [`Torrent::poll_action`] and [`Torrent::poll_event`], and
//! [`Torrent::poll_timeout`] says when [`Torrent::handle_timeout`] is due.
//! Time enters only as `now`; randomness comes from
//! [`TorrentConfig::rng_seed`], so equal inputs give equal outputs.
//!
//! # Run loop
//! ```text
//! loop {
//!     wait for: a frame from a peer, a finished disk/hash job, a tracker answer,
//!               or the instant torrent.poll_timeout() returns
//!     call the matching handle_*(now, ...)
//!     while let Some(action) = torrent.poll_action() { carry it out }
//!     while let Some(event) = torrent.poll_event() { report it }
//! }
//! ```
//!
//! Driver duties:
//! - Carry out actions in order: every [`Action::WriteBlock`] of a piece
//!   comes before its [`Action::VerifyPiece`] and must be visible to it.
//! - After an [`Action::Disconnect`] (or when the socket closes on its own)
//!   call [`Torrent::handle_peer_disconnected`]; messages that still arrive
//!   from a peer being disconnected are ignored.
//! - Answer every [`Action::Announce`] with
//!   [`Torrent::handle_announce_response`] or
//!   [`Torrent::handle_announce_failed`]; the next announce is scheduled
//!   from that answer.
//! - Answer every [`Action::Connect`] with [`Torrent::handle_handshake`]
//!   (direction [`Direction::Outbound`]) or [`Torrent::handle_connect_failed`].
//!
//! # Behaviour
//! - After a handshake the peer gets our bitfield, or BEP 6 have-all /
//!   have-none, then our BEP 10 extended handshake when both sides set the bit.
//! - We are interested in a peer exactly while it has a piece we lack and
//!   want. Selective download ([`TorrentConfig::file_priorities`],
//!   [`Torrent::set_file_priorities`]): pieces lying only in skipped files
//!   are never requested, high-priority pieces before normal ones; the
//!   torrent is finished ([`Torrent::is_finished`], `DownloadCompleted`,
//!   a `completed` announce with `left` 0) once every wanted piece is
//!   verified, and keeps serving the pieces it has.
//! - Requests: the [`crate::picker::PiecePicker`] chooses blocks (rarest
//!   first, endgame); each peer gets a pipeline of
//!   `min_pipeline + rate x max(pipeline_target, 4 x round trip) / 16 KiB`
//!   requests, where the rate is the peer's download rate over the last
//!   2 s (so a new unchoke fills the link within a few round trips) and
//!   the round trip the shortest request-to-block time seen,
//!   capped by `max_pipeline` and the peer's BEP 10 `reqq` (one while
//!   snubbed). Requests unanswered after `request_timeout` go back to
//!   the picker; endgame duplicates are cancelled when the block arrives.
//! - A piece counts (have bit, HAVE to peers that lack it, stats) only
//!   after [`Torrent::handle_piece_verified`] says its SHA-1 matched; a
//!   failed piece with one sender gives it a strike (`max_strikes` bans the
//!   address); several senders go on parole (whole pieces alone).
//! - Choking: every `rechoke_interval` (and at once when a slot is free:
//!   a peer became interested, or an unchoked one lost interest or left)
//!   the [`crate::choker::Choker`] picks who is unchoked. Only unchoked
//!   peers are served (and, BEP 6, a starting peer's allowed-fast
//!   pieces); requests must be for pieces we have and inside the piece; at
//!   most `max_queued_requests` wait per peer.
//! - Initial spreading ([`TorrentConfig::initial_spread`]): a torrent that
//!   starts complete serves each piece to one peer until some peer reported
//!   every piece; each unchoked BEP 6 peer is suggested a few pieces
//!   nobody took, kept for it, and others asking for a taken piece get a
//!   reject, so the seed's first copy is a whole copy. A leecher asks a
//!   seed that suggested pieces for those only.
//! - Connections: at most `max_peers`, of which at most `max_dials` dials
//!   in progress; when two peers dial each other at once both keep the
//!   connection dialled by the smaller peer id.
//! - Peer exchange (BEP 11, [`TorrentConfig::peer_exchange`]): each peer
//!   that advertises `ut_pex` gets the listen addresses of our other
//!   connections at once, then what changed at most every `pex_interval`;
//!   addresses it sends are dialled like tracker peers. Off for a private
//!   torrent ([`TorrentConfig::private`], BEP 27): peers come from its
//!   trackers only.
//! - Re-dial: the listen address of a peer whose connection ended (unless
//!   we closed it for a violation, a ban, both seeding or a duplicate) or
//!   whose dial failed is dialled again after `redial_backoff`, doubling,
//!   six times at most; a peer that lost every connection does not wait
//!   for its next announce.
//! - Metadata (BEP 9, `ut_metadata`): a torrent holding its info
//!   dictionary ([`Torrent::set_info_bytes`]) advertises `ut_metadata` and
//!   `metadata_size` and answers requests with 16 KiB pieces (two whole
//!   copies per connection at most, then rejects); one started from a
//!   magnet link ([`Torrent::from_magnet`]) fetches it from its peers,
//!   keeps their bitfields and HAVEs aside until the piece count is known,
//!   reports [`Event::MetadataReceived`] and downloads after
//!   [`Torrent::metadata_ready`].
//! - Keep-alives after `keep_alive_interval` of silence towards a peer;
//!   peers silent for `peer_timeout` are dropped; two seeds disconnect.

mod allowed_fast;
mod announce;
mod config;
mod messages;
mod metadata_fetch;
mod offer_pacing;
mod outbox;
mod peer;
mod pending;
mod pex;
mod requests;
mod serve;
mod snapshot;
mod sources;
mod spread;
mod super_seeding;
mod swarm;
mod timers;
mod types;
mod ut_metadata;
mod verify;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use slab::Slab;

use crate::bitfield::Bitfield;
use crate::choker::{Choker, ChokerConfig};
use crate::metainfo::InfoHash;
use crate::picker::PiecePicker;
use crate::piece::{BlockRef, Layout, PieceIndex};
use crate::priority::{PiecePriorities, Priority};
use crate::rate::{DEFAULT_WINDOW, RateEstimator};
use crate::superseed::SuperSeeder;
use crate::wire::{ExtendedHandshake, Handshake, Message, PeerId};

use announce::AnnounceSchedule;
pub use config::{PickerStrategy, TorrentConfig};
use outbox::Outbox;
use peer::Peer;
pub use snapshot::{MAX_CLIENT_NAME, PeerInfo, distributed_copies};
use sources::PieceSources;
use spread::InitialSpread;
use swarm::AddressBook;
pub use types::{
    Action, AnnounceEvent, Direction, DisconnectReason, Event, HandshakeRejection, MetadataMisuse,
    MetadataPhase, PeerKey, TorrentStats, Violation,
};
use ut_metadata::{MetadataState, UT_METADATA_ID};

/// Client name and version sent in the BEP 10 extended handshake (`v`).
const CLIENT_VERSION: &str = concat!("minibit ", env!("CARGO_PKG_VERSION"));

/// The RNG seed of a torrent whose config gives none: the first 8 bytes of
/// SHA-1(peer id ‖ info-hash), so equal inputs draw equal streams and two
/// peers (or two torrents of one peer) draw different ones.
fn derived_seed(peer_id: &PeerId, info_hash: &InfoHash) -> u64 {
    use sha1::{Digest, Sha1};
    let digest = Sha1::new()
        .chain_update(peer_id.0)
        .chain_update(info_hash.0)
        .finalize();
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// The state machine of one torrent.
#[derive(Debug)]
pub struct Torrent {
    config: TorrentConfig,
    info_hash: InfoHash,
    peer_id: PeerId,
    layout: Layout,
    /// Pieces verified.
    have: Bitfield,
    /// Pieces we need no more: verified, or skipped (selective download).
    /// Equal to `have` without a selection; finished when complete.
    settled: Bitfield,
    peers: Slab<Peer>,
    out: Outbox,
    picker: PiecePicker,
    choker: Choker,
    /// Present in super-seed mode (an initial seed with `config.super_seed`).
    super_seeder: Option<SuperSeeder>,
    /// Sizes the windows of offers in super-seed mode.
    super_seed_pacing: offer_pacing::OfferPacing,
    /// Present while an initial seed spreads its first copy (see [`spread`]).
    spread: Option<InitialSpread>,
    /// Who sent the blocks of the pieces in progress.
    sources: PieceSources,
    addresses: AddressBook,
    announce: AnnounceSchedule,
    /// Payload bytes sent.
    uploaded: u64,
    /// Bytes of pieces that verified.
    downloaded: u64,
    /// Payload bytes received that were not asked for or already had (protocol waste).
    wasted: u64,
    /// Torrent-wide payload rates.
    download_rate: RateEstimator,
    upload_rate: RateEstimator,
    /// Latest instant seen: time never goes backwards inside.
    now: Instant,
    /// Next rechoke (BEP 3: every 10 s).
    next_rechoke: Instant,
    /// No per-peer timer is due before this (see `timers.rs`).
    peer_timer_floor: Instant,
    /// Whether [`Torrent::stop`] was called.
    stopped: bool,
    /// The info dictionary (BEP 9): held and served, or being fetched.
    metadata: MetadataState,
    /// The picker's RNG seed (a new picker is made when the metadata of
    /// a magnet link arrives).
    picker_seed: u64,
    /// The serial of the next peer (see `ut_metadata::PeerMetadata`).
    next_peer_serial: u64,
}

impl Torrent {
    /// A torrent with the given geometry; `have` holds the pieces already
    /// verified on disk (resume), all clear for a fresh download, all set
    /// for a seed (its length must be the layout's piece count; a wrong
    /// length is treated as all clear). Emits `Announce { event: Started }` first.
    pub fn new(
        config: TorrentConfig,
        info_hash: InfoHash,
        peer_id: PeerId,
        layout: Layout,
        have: Bitfield,
        now: Instant,
    ) -> Self {
        let pieces = layout.piece_count();
        let have = if have.len() == pieces {
            have
        } else {
            Bitfield::new(pieces)
        };
        // Independent streams for the parts that draw random numbers.
        let seed = config
            .rng_seed
            .unwrap_or_else(|| derived_seed(&peer_id, &info_hash));
        let mut seeds = ChaCha8Rng::seed_from_u64(seed);
        let (picker_seed, choker_seed, super_seed) =
            (seeds.next_u64(), seeds.next_u64(), seeds.next_u64());
        let choker_config = ChokerConfig {
            slots: config.unchoke_slots,
            snub_timeout: config.snub_timeout,
            ..ChokerConfig::default()
        };
        let super_seeder =
            (config.super_seed && have.is_complete()).then(|| SuperSeeder::new(pieces, super_seed));
        let spread = (config.initial_spread && !config.super_seed && have.is_complete())
            .then(|| InitialSpread::new(&layout));
        let priorities = PiecePriorities::from_files(&layout, &config.file_priorities);
        let mut picker = PiecePicker::new(&layout, &have, config.picker, picker_seed);
        let settled = apply_priorities(&mut picker, &priorities, &have);
        let mut torrent = Self {
            spread,
            settled,
            picker,
            choker: Choker::new(choker_config, choker_seed),
            super_seeder,
            super_seed_pacing: offer_pacing::OfferPacing::default(),
            sources: PieceSources::default(),
            announce: AnnounceSchedule::new(
                now,
                config.min_announce_backoff,
                config.max_announce_backoff,
                config.alone_announce_backoff,
            ),
            next_rechoke: now + config.rechoke_interval,
            peer_timer_floor: now + config.shortest_peer_timer(),
            config,
            info_hash,
            peer_id,
            layout,
            have,
            peers: Slab::new(),
            out: Outbox::default(),
            addresses: AddressBook::default(),
            uploaded: 0,
            downloaded: 0,
            wasted: 0,
            download_rate: RateEstimator::new(DEFAULT_WINDOW, now),
            upload_rate: RateEstimator::new(DEFAULT_WINDOW, now),
            now,
            stopped: false,
            metadata: MetadataState::Ready(None),
            picker_seed,
            next_peer_serial: 0,
        };
        torrent.announce_if_due(now);
        torrent
    }

    /// Our handshake: this torrent's info-hash, our peer id, the BEP 6
    /// fast-extension bit (`reserved[7] & 0x04`), the BEP 10
    /// extension-protocol bit (`reserved[5] & 0x10`: the extended
    /// handshake for `reqq` and `p`, and BEP 11 `ut_pex`) and, with a
    /// [`TorrentConfig::dht_port`] on a non-private torrent, the BEP 5 DHT
    /// bit (`reserved[7] & 0x01`).
    pub fn handshake(&self) -> Handshake {
        let handshake = Handshake::new(self.info_hash, self.peer_id)
            .with_fast()
            .with_extensions();
        if self.config.active_dht_port().is_some() {
            handshake.with_dht()
        } else {
            handshake
        }
    }

    /// Our BEP 10 extended handshake: `ut_pex` (BEP 11) unless peer
    /// exchange is off or the torrent is private (BEP 27); `ut_metadata`
    /// (BEP 9) when we hold the metadata (with `metadata_size`) or fetch
    /// it; our client name, how many requests we queue per peer, and our
    /// listen port.
    fn extended_handshake(&self) -> Message {
        let mut m = std::collections::BTreeMap::new();
        if self.config.pex_enabled() {
            m.insert("ut_pex".to_owned(), pex::UT_PEX_ID);
        }
        let (metadata, metadata_size) = self.metadata_advert();
        if metadata {
            m.insert("ut_metadata".to_owned(), UT_METADATA_ID);
        }
        ExtendedHandshake {
            m,
            v: Some(CLIENT_VERSION.to_owned()),
            reqq: u32::try_from(self.config.max_queued_requests).ok(),
            p: self.config.listen_addr.map(|addr| addr.port()),
            metadata_size,
            ..ExtendedHandshake::default()
        }
        .to_message()
    }

    /// Accepts or refuses a peer once its handshake arrived. On success the
    /// peer gets our bitfield (BEP 3), or have-all / have-none when both
    /// sides speak BEP 6, or nothing when we have no piece and no BEP 6;
    /// then our extended handshake when both sides speak BEP 10; then a
    /// BEP 5 `port` message with [`TorrentConfig::dht_port`] when both
    /// sides set the DHT bit.
    ///
    /// # Errors
    /// A [`HandshakeRejection`] says why the connection must be closed.
    pub fn handle_handshake(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        direction: Direction,
        theirs: &Handshake,
    ) -> Result<PeerKey, HandshakeRejection> {
        let now = self.clock(now);
        if direction == Direction::Outbound {
            self.addresses.dial_ended(addr);
        }
        let verdict = self.check_handshake(addr, direction, theirs);
        match verdict {
            Ok(replaced) => {
                if let Some(old) = replaced {
                    self.disconnect(old, DisconnectReason::Duplicate);
                }
                let key = self.accept_peer(now, addr, theirs);
                self.peers[key.0].outbound = direction == Direction::Outbound;
                Ok(key)
            }
            Err(rejection) => {
                self.dial_more();
                Err(rejection)
            }
        }
    }

    /// `Ok` with the connection the new one replaces, if any: when both
    /// sides dial each other at once, each would refuse the second
    /// connection and both would close; instead both keep the one dialled
    /// by the smaller peer id (as libtorrent does).
    fn check_handshake(
        &self,
        addr: SocketAddr,
        direction: Direction,
        theirs: &Handshake,
    ) -> Result<Option<PeerKey>, HandshakeRejection> {
        if theirs.info_hash != self.info_hash {
            return Err(HandshakeRejection::WrongInfoHash(theirs.info_hash));
        }
        if theirs.peer_id == self.peer_id {
            return Err(HandshakeRejection::OwnPeerId);
        }
        if self.addresses.is_banned(addr) {
            return Err(HandshakeRejection::Banned);
        }
        let outbound = direction == Direction::Outbound;
        let existing = self
            .peers
            .iter()
            .find(|(_, p)| p.id == theirs.peer_id && !p.closing)
            .map(|(_, p)| (p.key, p.outbound));
        if let Some((old, old_outbound)) = existing {
            let dialled_by_smaller = if outbound {
                self.peer_id.0 < theirs.peer_id.0
            } else {
                theirs.peer_id.0 < self.peer_id.0
            };
            if old_outbound == outbound || !dialled_by_smaller || self.stopped {
                return Err(HandshakeRejection::DuplicatePeer);
            }
            return Ok(Some(old));
        }
        // Our own dials hold a slot since they started: an inbound
        // connection may not take it, and an outbound one always has one.
        let taken = self.peers.len() + self.addresses.connecting();
        if self.stopped || (!outbound && taken >= self.config.max_peers) {
            return Err(HandshakeRejection::TooManyPeers);
        }
        Ok(None)
    }

    fn accept_peer(&mut self, now: Instant, addr: SocketAddr, theirs: &Handshake) -> PeerKey {
        let fast = theirs.supports_fast();
        let extended = theirs
            .supports_extensions()
            .then(|| self.extended_handshake());
        let entry = self.peers.vacant_entry();
        let key = PeerKey(entry.key());
        let pieces = self.layout.piece_count();
        let peer = entry.insert(Peer::new(key, addr, theirs.peer_id, fast, pieces, now));
        peer.extensions = extended.is_some();
        peer.metadata.serial = self.next_peer_serial;
        self.next_peer_serial += 1;
        self.picker
            .set_parole(key, self.addresses.on_parole(addr.ip()));
        self.out.report(Event::PeerConnected { peer: key, addr });
        let first = if self.super_seeder.is_some() {
            fast.then_some(Message::HaveNone)
        } else if fast && self.have.is_complete() {
            Some(Message::HaveAll)
        } else if fast && self.have.is_none() {
            Some(Message::HaveNone)
        } else if self.have.is_none() {
            None
        } else {
            Some(Message::Bitfield(Bytes::from(self.have.to_wire())))
        };
        let port = self
            .config
            .active_dht_port()
            .filter(|_| theirs.supports_dht())
            .map(Message::Port);
        for message in first.into_iter().chain(extended).chain(port) {
            peer.send(&mut self.out, now, message);
        }
        self.offer_allowed_fast(now, key);
        self.super_seed_connected(now, key);
        key
    }

    /// BEP 6: gives a fast-extension peer with an IPv4 address its
    /// allowed-fast set, when the torrent has at least four times as many
    /// pieces as the set (so the set stays a small part) and we are not a
    /// seed. A seed's whole upload goes where its choker sends it: served
    /// outside the upload slots, the starting peers' sets would share its
    /// uplink among every connected leecher and spend it on pieces chosen
    /// by address hash, not by rarity, so one piece goes out many times.
    fn offer_allowed_fast(&mut self, now: Instant, key: PeerKey) {
        let k = self.config.allowed_fast_count;
        let pieces = self.layout.piece_count();
        let peer = &mut self.peers[key.0];
        let SocketAddr::V4(v4) = peer.addr else {
            return;
        };
        if !peer.fast || k == 0 || (pieces as usize) < 4 * k || self.have.is_complete() {
            return;
        }
        for index in allowed_fast::allowed_fast_set(*v4.ip(), &self.info_hash, pieces, k) {
            peer.allowed_fast_out
                .insert(PieceIndex::new_unchecked(index));
            peer.send(&mut self.out, now, Message::AllowedFast { piece: index });
        }
    }

    /// A message from `peer`. Protocol violations become [`Action::Disconnect`].
    /// Messages from an unknown or disconnecting peer are ignored.
    pub fn handle_message(&mut self, now: Instant, peer: PeerKey, message: Message) {
        let now = self.clock(now);
        let Some(state) = self.peers.get_mut(peer.0) else {
            return;
        };
        if state.closing {
            return;
        }
        state.last_received = now;
        if let Err(violation) = self.on_message(now, peer, message) {
            self.disconnect(peer, DisconnectReason::ProtocolViolation(violation));
        }
    }

    /// `peer`'s connection closed (for any reason); `peer` is invalid afterwards.
    /// Its outstanding requests go back to other peers. Its listen address
    /// (the one we dialled, or its IP with the BEP 10 `p` it sent) is
    /// dialled again after [`TorrentConfig::redial_backoff`] (doubling per
    /// re-dial), unless we closed the connection for a protocol violation,
    /// a ban, both seeding or a duplicate; else a later announce or PEX
    /// message may bring it back.
    pub fn handle_peer_disconnected(&mut self, now: Instant, peer: PeerKey) {
        let now = self.clock(now);
        if !self.peers.contains(peer.0) {
            return;
        }
        self.drop_all_requests(peer);
        let state = self.peers.remove(peer.0);
        self.picker.peer_removed(&state.bitfield);
        self.picker.set_parole(peer, false);
        self.choker.remove_peer(peer);
        self.release_spread(peer);
        let listen = state.listen_addr();
        if listen != Some(state.addr) {
            self.addresses.forget(state.addr);
        }
        if let Some(listen) = listen {
            if state.redial && !self.stopped {
                self.addresses.remember(listen, self.config.listen_addr);
                self.addresses
                    .retry_later(listen, now, self.config.redial_backoff);
            } else {
                self.addresses.forget(listen);
            }
        }
        self.out.report(Event::PeerDisconnected { peer });
        self.metadata_peer_gone(now, state.metadata.serial);
        self.super_seed_left(now, peer);
        if !state.am_choking && state.interested_in_us {
            self.rechoke_if_slot_free(now);
        }
        self.dial_more();
        self.request_from_all(now);
    }

    /// An [`Action::Connect`] to `addr` failed or timed out. The address is
    /// dialled again after [`TorrentConfig::redial_backoff`], doubling per
    /// failure, and forgotten after six (a later announce or PEX message
    /// may bring it back).
    pub fn handle_connect_failed(&mut self, now: Instant, addr: SocketAddr) {
        let now = self.clock(now);
        self.addresses.dial_ended(addr);
        self.addresses
            .retry_later(addr, now, self.config.redial_backoff);
        self.dial_more();
    }

    /// The data of an [`Action::ReadBlock`]; sent to the peer if still wanted.
    pub fn handle_block_read(&mut self, now: Instant, peer: PeerKey, block: BlockRef, data: Bytes) {
        let now = self.clock(now);
        self.serve_block(now, peer, block, data);
    }

    /// The outcome of an [`Action::VerifyPiece`].
    pub fn handle_piece_verified(&mut self, now: Instant, piece: PieceIndex, ok: bool) {
        let now = self.clock(now);
        if ok {
            self.piece_passed(now, piece);
        } else {
            self.piece_failed(now, piece);
        }
    }

    /// A tracker answered an [`Action::Announce`] with its `interval`, its
    /// `min_interval` (BEP 3 `min interval`, if it sent one) and `peers`:
    /// consider `peers` for connection (never our own listen address, a
    /// banned one, or one already known) and re-announce after `interval`
    /// (clamped to 15 s ..= 24 h). An incomplete torrent that still has no
    /// peer connected a moment later re-announces then: after
    /// [`TorrentConfig::alone_announce_backoff`], doubling with each such
    /// early announce up to `interval`, never below `min_interval`.
    pub fn handle_announce_response(
        &mut self,
        now: Instant,
        interval: Duration,
        min_interval: Option<Duration>,
        peers: &[SocketAddr],
    ) {
        let now = self.clock(now);
        if self.stopped {
            return;
        }
        self.announce.succeeded(now, interval, min_interval);
        self.learn_peers(peers);
    }

    /// Whether a peer with this id is connected (past its handshake).
    pub fn is_connected(&self, peer_id: &PeerId) -> bool {
        self.peers.iter().any(|(_, p)| p.id == *peer_id)
    }

    /// Peer addresses learned outside the tracker announce (the embedded
    /// tracker's registry): considered for connection like the peers of
    /// an announce response (never our own listen address, a banned one, or
    /// one already known), without touching the announce schedule.
    pub fn handle_peers(&mut self, now: Instant, peers: &[SocketAddr]) {
        self.clock(now);
        if !self.stopped {
            self.learn_peers(peers);
        }
    }

    /// Records `peers` as candidates and dials while connection slots are
    /// free (only with [`TorrentConfig::connect_to_peers`]); returns how
    /// many were new.
    fn learn_peers(&mut self, peers: &[SocketAddr]) -> usize {
        if !self.config.connect_to_peers {
            return 0;
        }
        let own = self.config.listen_addr;
        let learned = peers
            .iter()
            .filter(|&&addr| self.addresses.learn(addr, own))
            .count();
        self.dial_more();
        learned
    }

    /// An [`Action::Announce`] failed; retried after an exponential back-off
    /// ([`TorrentConfig::min_announce_backoff`] doubling up to
    /// [`TorrentConfig::max_announce_backoff`]).
    pub fn handle_announce_failed(&mut self, now: Instant) {
        let now = self.clock(now);
        if !self.stopped {
            self.announce.failed(now);
        }
    }

    /// The instant from [`Torrent::poll_timeout`] has passed (calling it
    /// early or late is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        if !self.stopped {
            self.on_timeout(now);
        }
    }

    /// Shut down: announce `stopped` and disconnect every peer with
    /// [`DisconnectReason::Shutdown`]. No timer fires afterwards.
    pub fn stop(&mut self, now: Instant) {
        self.clock(now);
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.announce.stop();
        self.out.act(self.announce_action(AnnounceEvent::Stopped));
        let keys: Vec<PeerKey> = self.peers.iter().map(|(_, p)| p.key).collect();
        for key in keys {
            self.disconnect(key, DisconnectReason::Shutdown);
        }
    }

    /// The next thing to do, or `None` when there is nothing left.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.actions.pop_front()
    }

    /// The next thing to report, or `None`.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// When [`Torrent::handle_timeout`] must next be called; `None` after
    /// [`Torrent::stop`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            None
        } else {
            self.next_deadline()
        }
    }

    /// Sets the number of upload slots, optimistic unchoke included
    /// (initially [`TorrentConfig::unchoke_slots`]); a session sharing a
    /// global number of slots among its torrents calls this. From then on
    /// the slots are a hard cap: a slot a peer wanting little leaves
    /// partly idle is no longer shared with more peers
    /// ([`crate::choker::ChokerConfig::lend_idle_slots`]). Fewer slots
    /// rechoke at once, so never more peers than `slots` stay unchoked;
    /// more slots rechoke at once only if an interested peer waits.
    pub fn set_unchoke_slots(&mut self, now: Instant, slots: usize) {
        let now = self.clock(now);
        let was_lending = self.choker.config().lend_idle_slots;
        self.choker.set_lend_idle_slots(false);
        let current = self.config.unchoke_slots;
        if slots == current && !was_lending {
            return;
        }
        self.config.unchoke_slots = slots;
        self.choker.set_slots(slots);
        if self.stopped {
            return;
        }
        if slots < current || was_lending {
            self.rechoke(now);
        } else {
            self.rechoke_if_slot_free(now);
        }
    }

    /// Whether our request for this block (BEP 3 `request` fields) to
    /// `peer` is still outstanding: not answered, cancelled, timed out, or
    /// dropped by a choke or a disconnect.
    pub fn is_requested(&self, peer: PeerKey, piece: u32, offset: u32, length: u32) -> bool {
        self.peers.get(peer.0).is_some_and(|p| {
            !p.closing
                && p.outstanding.iter().any(|o| {
                    o.block.piece.get() == piece
                        && o.block.offset == offset
                        && o.block.length == length
                })
        })
    }

    /// Connected peers interested in us (BEP 3 "interested"), not being
    /// disconnected: the demand for upload slots.
    pub fn interested_peers(&self) -> usize {
        self.peers
            .iter()
            .filter(|(_, p)| !p.closing && p.interested_in_us)
            .count()
    }

    /// Connected peers we unchoke, not being disconnected.
    pub fn unchoked_peers(&self) -> usize {
        self.peers
            .iter()
            .filter(|(_, p)| !p.closing && !p.am_choking)
            .count()
    }

    /// Pieces verified so far.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// The torrent's geometry.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Payload bytes received that were never requested from their sender
    /// or duplicated a block we already had (protocol waste, not written).
    pub fn wasted(&self) -> u64 {
        self.wasted
    }

    /// Transfer counters and rates (rates as of the latest `now` seen).
    pub fn stats(&self) -> TorrentStats {
        TorrentStats {
            uploaded: self.uploaded,
            downloaded: self.downloaded,
            left: self.left(),
            wanted: self.wanted_bytes(),
            pieces_have: self.have.count(),
            peers: self.peers.len(),
            download_rate: self.download_rate.rate(self.now),
            upload_rate: self.upload_rate.rate(self.now),
        }
    }

    /// Bytes of the wanted pieces we do not have.
    fn left(&self) -> u64 {
        self.settled
            .iter_unset()
            .map(|piece| u64::from(self.layout.piece_size(piece)))
            .sum()
    }

    /// Bytes of the wanted pieces.
    fn wanted_bytes(&self) -> u64 {
        let wanted = self.picker.wanted();
        if wanted.is_complete() {
            return self.layout.total_length();
        }
        wanted
            .iter_set()
            .map(|piece| u64::from(self.layout.piece_size(piece)))
            .sum()
    }

    /// Whether every wanted piece is verified (every piece, without a
    /// selection): we are not interested in anyone, and announce as done.
    pub fn is_finished(&self) -> bool {
        self.settled.is_complete()
    }

    /// Changes the file priorities (one per file, torrent order; see
    /// [`TorrentConfig::file_priorities`]). Interest in each peer is
    /// recomputed and requests go out for newly wanted pieces; a piece in
    /// progress that becomes skipped is finished. Skipping the last missing
    /// pieces finishes the download ([`Event::DownloadCompleted`], a
    /// `completed` announce). Before the metadata of a magnet link is
    /// ready they are only kept, and applied by [`Torrent::metadata_ready`].
    pub fn set_file_priorities(&mut self, now: Instant, files: &[Priority]) {
        let now = self.clock(now);
        let was_finished = self.is_finished();
        self.config.file_priorities = files.to_vec();
        if !self.metadata.layout_known() {
            return; // applied by `metadata_ready`, once the files are known
        }
        let priorities = PiecePriorities::from_files(&self.layout, files);
        self.settled = apply_priorities(&mut self.picker, &priorities, &self.have);
        let keys: Vec<PeerKey> = self.peers.iter().map(|(_, p)| p.key).collect();
        for key in keys {
            let peer = &mut self.peers[key.0];
            peer.wanted = self.settled.lacking_count(&peer.bitfield);
            if !peer.closing {
                self.update_interest(now, key);
            }
        }
        if !was_finished && self.is_finished() {
            self.finished(now);
        }
        self.request_from_all(now);
    }

    /// The priority of each file (as last set; empty: all normal).
    pub fn file_priorities(&self) -> &[Priority] {
        &self.config.file_priorities
    }

    /// Every wanted piece is now verified: report, announce `completed`,
    /// and drop the seeds we no longer need.
    fn finished(&mut self, now: Instant) {
        self.out.report(Event::DownloadCompleted);
        self.announce.completed(now);
        self.announce_if_due(now);
        let keys: Vec<PeerKey> = self.peers.iter().map(|(_, p)| p.key).collect();
        for key in keys {
            self.disconnect_if_both_seeding(key);
        }
    }

    /// `peer` was choked or left: initial spreading frees the pieces it had
    /// not reported.
    fn release_spread(&mut self, peer: PeerKey) {
        if let Some(spread) = &mut self.spread {
            spread.release(peer);
        }
    }

    /// A peer reported `pieces`: initial spreading tops up the windows
    /// they left, and ends once every piece was seen.
    fn spread_seen(&mut self, now: Instant, pieces: impl IntoIterator<Item = PieceIndex>) {
        let Some(spread) = &mut self.spread else {
            return;
        };
        let mut owners: Vec<PeerKey> = pieces
            .into_iter()
            .filter_map(|piece| spread.seen(piece))
            .collect();
        if spread.is_done() {
            self.spread = None;
            return;
        }
        owners.dedup();
        for owner in owners {
            self.offer_spread(now, owner, 0);
        }
    }

    /// Clamps `now` so time never goes backwards.
    fn clock(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    /// Asks the driver to close `peer`; its later messages are ignored.
    /// Only a peer dropped for silence is dialled again later.
    fn disconnect(&mut self, peer: PeerKey, reason: DisconnectReason) {
        if let Some(state) = self.peers.get_mut(peer.0) {
            if !state.closing {
                state.closing = true;
                state.redial = reason == DisconnectReason::Timeout;
                self.out.act(Action::Disconnect { peer, reason });
            }
        }
    }

    /// Dials known addresses (tracker, PEX, re-dials) while connections plus dials stay
    /// under `max_peers` and dials under `max_dials` (the other slots stay
    /// open to inbound connections: in a flash crowd every peer dials at
    /// once, and peers whose slots all went to dials would refuse each other).
    fn dial_more(&mut self) {
        if self.stopped || !self.config.connect_to_peers {
            return;
        }
        while self.peers.len() + self.addresses.connecting() < self.config.max_peers
            && self.addresses.connecting() < self.config.max_dials
        {
            let peers = &self.peers;
            let connected = |addr| {
                peers
                    .iter()
                    .any(|(_, p)| p.addr == addr || p.listen_addr() == Some(addr))
            };
            let Some(addr) = self.addresses.next_dial(connected) else {
                break;
            };
            self.out.act(Action::Connect { addr });
        }
    }

    /// An announce carrying `event` and the current counters.
    fn announce_action(&self, event: AnnounceEvent) -> Action {
        Action::Announce {
            event,
            uploaded: self.uploaded,
            downloaded: self.downloaded,
            left: self.left(),
        }
    }

    /// Emits the announce if one is due at `now`.
    fn announce_if_due(&mut self, now: Instant) {
        let alone = !self.is_finished() && self.peers.is_empty();
        if let Some(event) = self.announce.take_due(now, alone) {
            self.out.act(self.announce_action(event));
        }
    }
}

/// Gives every piece its priority in `picker`; returns the settled
/// pieces (verified or skipped).
fn apply_priorities(
    picker: &mut PiecePicker,
    priorities: &PiecePriorities,
    have: &Bitfield,
) -> Bitfield {
    let mut settled = have.clone();
    for piece in (0..priorities.len()).map(PieceIndex::new_unchecked) {
        let priority = priorities.get(piece);
        if priority != picker.priority(piece) {
            picker.set_priority(piece, priority);
        }
        if !priority.is_wanted() {
            settled.set(piece);
        }
    }
    settled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_seed_is_deterministic_and_distinct_per_peer_and_torrent() {
        let (a, b) = (PeerId([1; 20]), PeerId([2; 20]));
        let (x, y) = (InfoHash([7; 20]), InfoHash([8; 20]));
        assert_eq!(derived_seed(&a, &x), derived_seed(&a, &x));
        assert_ne!(derived_seed(&a, &x), derived_seed(&b, &x));
        assert_ne!(derived_seed(&a, &x), derived_seed(&a, &y));
    }
}
