//! Test utilities for driving [`Torrent`]s without I/O: known content with
//! real SHA-1 piece hashes, a single-torrent harness that plays the remote
//! peers by hand, and an in-memory swarm that wires torrents to each other
//! on a virtual clock.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::InfoHash;
use minibit_core::piece::{BlockRef, Layout, PieceIndex};
use minibit_core::torrent::{
    Action, Direction, Event, HandshakeRejection, PeerKey, Torrent, TorrentConfig,
};
use minibit_core::wire::{Handshake, Message, PeerId};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha1::{Digest, Sha1};

/// A base instant for virtual time (the only clock read in the tests).
#[allow(clippy::disallowed_methods)]
pub fn t0() -> Instant {
    Instant::now()
}

/// `n` seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The info-hash every test torrent uses.
pub const INFO_HASH: InfoHash = InfoHash([0xAB; 20]);

/// A peer id `-XX0001-` padded with `n`.
pub fn peer_id(n: u8) -> PeerId {
    let mut id = [n; 20];
    id[..8].copy_from_slice(b"-TT0001-");
    PeerId(id)
}

/// Address `10.0.0.n:6881`.
pub fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 6881))
}

/// A handshake from `id` for the test torrent, with or without the BEP 6 bit.
pub fn handshake(id: PeerId, fast: bool) -> Handshake {
    let mut reserved = [0u8; 8];
    if fast {
        reserved[7] |= 0x04;
    }
    Handshake {
        reserved,
        info_hash: INFO_HASH,
        peer_id: id,
    }
}

/// Pseudo-random content of known length with its per-piece SHA-1 hashes.
#[derive(Clone, Debug)]
pub struct Content {
    /// The bytes.
    pub data: Vec<u8>,
    /// Their geometry.
    pub layout: Layout,
    hashes: Vec<[u8; 20]>,
}

impl Content {
    /// `length` bytes cut in pieces of `piece_length`, generated from `seed`.
    pub fn new(length: u64, piece_length: u64, seed: u64) -> Self {
        let mut data = vec![0u8; length as usize];
        ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut data);
        let layout = Layout::new(piece_length, &[length]).unwrap();
        let hashes = layout
            .pieces()
            .map(|piece| Sha1::digest(Self::range(&layout, &data, piece)).into())
            .collect();
        Self {
            data,
            layout,
            hashes,
        }
    }

    fn range<'a>(layout: &Layout, data: &'a [u8], piece: PieceIndex) -> &'a [u8] {
        let start = layout.piece_offset(piece) as usize;
        &data[start..start + layout.piece_size(piece) as usize]
    }

    /// Whether `storage` holds `piece` intact (SHA-1 against the known hash).
    pub fn verify(&self, storage: &[u8], piece: PieceIndex) -> bool {
        let digest: [u8; 20] = Sha1::digest(Self::range(&self.layout, storage, piece)).into();
        digest == self.hashes[piece.as_usize()]
    }

    /// The bytes of `block`.
    pub fn block(&self, block: BlockRef) -> Bytes {
        let start = (self.layout.piece_offset(block.piece) + u64::from(block.offset)) as usize;
        Bytes::copy_from_slice(&self.data[start..start + block.length as usize])
    }

    /// A block of piece `piece` by index.
    pub fn block_ref(&self, piece: u32, index: u32) -> BlockRef {
        let piece = self.layout.piece_index(piece).unwrap();
        self.layout.block(piece, index).unwrap()
    }
}

/// A bitfield of `pieces` with the listed pieces set.
pub fn bitfield(layout: &Layout, set: &[u32]) -> Bitfield {
    let mut field = Bitfield::new(layout.piece_count());
    for &i in set {
        field.set(layout.piece_index(i).unwrap());
    }
    field
}

/// The wire bitfield message for `set`.
pub fn bitfield_message(layout: &Layout, set: &[u32]) -> Message {
    Message::Bitfield(Bytes::from(bitfield(layout, set).to_wire()))
}

/// The request message for `block`.
pub fn request(block: BlockRef) -> Message {
    Message::Request {
        piece: block.piece.get(),
        offset: block.offset,
        length: block.length,
    }
}

/// One torrent whose remote peers the test plays by hand.
pub struct Harness {
    /// The torrent under test.
    pub torrent: Torrent,
    /// The virtual clock.
    pub now: Instant,
    /// Its content.
    pub content: Content,
}

impl Harness {
    /// A torrent over `content` with `have` pieces and `config`; the
    /// startup announce is drained.
    pub fn new(content: Content, have: &[u32], config: TorrentConfig) -> Self {
        let now = t0();
        let have = bitfield(&content.layout, have);
        let mut torrent = Torrent::new(
            config,
            INFO_HASH,
            peer_id(0),
            content.layout.clone(),
            have,
            now,
        );
        assert!(matches!(
            torrent.poll_action(),
            Some(Action::Announce { .. })
        ));
        Self {
            torrent,
            now,
            content,
        }
    }

    /// Accepts peer `n` (inbound, address [`addr`]`(n)`); drains nothing.
    pub fn connect(&mut self, n: u8, fast: bool) -> PeerKey {
        self.try_connect(n, fast).unwrap()
    }

    /// The handshake outcome of peer `n`.
    pub fn try_connect(&mut self, n: u8, fast: bool) -> Result<PeerKey, HandshakeRejection> {
        self.torrent.handle_handshake(
            self.now,
            addr(n),
            Direction::Inbound,
            &handshake(peer_id(n), fast),
        )
    }

    /// Accepts peer `n` sending `theirs` as its handshake.
    pub fn connect_with(&mut self, n: u8, theirs: &Handshake) -> PeerKey {
        self.torrent
            .handle_handshake(self.now, addr(n), Direction::Inbound, theirs)
            .unwrap()
    }

    /// Delivers `message` from `peer`.
    pub fn recv(&mut self, peer: PeerKey, message: Message) {
        self.torrent.handle_message(self.now, peer, message);
    }

    /// Advances the clock by `by` and fires the timers.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.torrent.handle_timeout(self.now);
    }

    /// Every pending action.
    pub fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.torrent.poll_action()).collect()
    }

    /// Every pending event.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.torrent.poll_event()).collect()
    }

    /// The messages among `actions` sent to `peer`.
    pub fn sent_to(actions: &[Action], peer: PeerKey) -> Vec<Message> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { peer: p, message } if *p == peer => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// The requests among `actions` sent to `peer`, as blocks.
    pub fn requests_to(&self, actions: &[Action], peer: PeerKey) -> Vec<BlockRef> {
        Self::sent_to(actions, peer)
            .into_iter()
            .filter_map(|m| match m {
                Message::Request {
                    piece,
                    offset,
                    length,
                } => Some(
                    self.content
                        .layout
                        .block_ref(piece, offset, length)
                        .unwrap(),
                ),
                _ => None,
            })
            .collect()
    }

    /// Drains every pending action and returns the requests sent to `peer`.
    pub fn take_requests(&mut self, peer: PeerKey) -> Vec<BlockRef> {
        let actions = self.actions();
        self.requests_to(&actions, peer)
    }

    /// Answers `block` from `peer` with the right bytes.
    pub fn deliver(&mut self, peer: PeerKey, block: BlockRef) {
        let data = self.content.block(block);
        self.recv(
            peer,
            Message::Piece {
                piece: block.piece.get(),
                offset: block.offset,
                data,
            },
        );
    }
}

/// Whether `actions` disconnect `peer`, and the reason.
pub fn disconnect_reason(
    actions: &[Action],
    peer: PeerKey,
) -> Option<minibit_core::torrent::DisconnectReason> {
    actions.iter().find_map(|a| match a {
        Action::Disconnect { peer: p, reason } if *p == peer => Some(reason.clone()),
        _ => None,
    })
}

/// One torrent of a [`Swarm`] with its in-memory storage.
pub struct Node {
    /// The state machine.
    pub torrent: Torrent,
    /// Its storage: the content's bytes as written so far.
    pub storage: Vec<u8>,
    /// Its address.
    pub addr: SocketAddr,
    /// Its connections: our key -> the link.
    links: BTreeMap<PeerKey, Link>,
    /// Every event it reported.
    pub events: Vec<Event>,
    /// Serve corrupted blocks (a bad peer).
    pub corrupt: bool,
    /// Announces it made.
    pub announces: usize,
    /// Upload capacity in bytes/s (`None`: unlimited); block data queues behind it.
    pub upload_rate: Option<u64>,
    /// When its uplink is free again.
    busy_until: Instant,
}

/// One end of a connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Link {
    /// The remote node.
    to: usize,
    /// Our key at the remote node.
    key_there: PeerKey,
    /// Unique per connection (keys are reused after a disconnect).
    id: u64,
}

/// A message on its way.
struct Flight {
    from: usize,
    link: Link,
    message: Message,
}

/// Torrents wired to each other in memory on a virtual clock: sends are
/// delivered in order per connection after `latency` (block data also
/// waits for the sender's `upload_rate`), storage is a `Vec`, verification
/// is real SHA-1.
pub struct Swarm {
    /// The torrents.
    pub nodes: Vec<Node>,
    /// The virtual clock.
    pub now: Instant,
    /// The shared content.
    pub content: Content,
    /// One-way delay of every message (default zero).
    pub latency: Duration,
    /// Messages in flight by (delivery instant, sequence number).
    inflight: BTreeMap<(Instant, u64), Flight>,
    /// Latest delivery instant per connection and direction (keeps order).
    link_clock: BTreeMap<(u64, usize), Instant>,
    sequence: u64,
}

impl Swarm {
    /// An empty swarm over `content`.
    pub fn new(content: Content) -> Self {
        Self {
            nodes: Vec::new(),
            now: t0(),
            content,
            latency: Duration::ZERO,
            inflight: BTreeMap::new(),
            link_clock: BTreeMap::new(),
            sequence: 0,
        }
    }

    /// Adds a torrent that is a seed (`seed`) or starts empty; returns its index.
    pub fn add(&mut self, config: TorrentConfig, seed: bool) -> usize {
        let index = self.nodes.len();
        let pieces = self.content.layout.piece_count();
        let (have, storage) = if seed {
            (Bitfield::full(pieces), self.content.data.clone())
        } else {
            (Bitfield::new(pieces), vec![0; self.content.data.len()])
        };
        let torrent = Torrent::new(
            config,
            INFO_HASH,
            peer_id(index as u8 + 1),
            self.content.layout.clone(),
            have,
            self.now,
        );
        self.nodes.push(Node {
            torrent,
            storage,
            addr: addr(index as u8 + 1),
            links: BTreeMap::new(),
            events: Vec::new(),
            corrupt: false,
            announces: 0,
            upload_rate: None,
            busy_until: self.now,
        });
        index
    }

    /// Node `from` dials node `to`; both handshakes are handled.
    pub fn connect(&mut self, from: usize, to: usize) -> Result<(), HandshakeRejection> {
        let theirs = self.nodes[to].torrent.handshake();
        let ours = self.nodes[from].torrent.handshake();
        let (from_addr, to_addr) = (self.nodes[from].addr, self.nodes[to].addr);
        let key_at_from = self.nodes[from].torrent.handle_handshake(
            self.now,
            to_addr,
            Direction::Outbound,
            &theirs,
        )?;
        match self.nodes[to].torrent.handle_handshake(
            self.now,
            from_addr,
            Direction::Inbound,
            &ours,
        ) {
            Ok(key_at_to) => {
                self.sequence += 1;
                let id = self.sequence;
                let there = Link {
                    to,
                    key_there: key_at_to,
                    id,
                };
                let back = Link {
                    to: from,
                    key_there: key_at_from,
                    id,
                };
                self.nodes[from].links.insert(key_at_from, there);
                self.nodes[to].links.insert(key_at_to, back);
                Ok(())
            }
            Err(rejection) => {
                self.nodes[from]
                    .torrent
                    .handle_peer_disconnected(self.now, key_at_from);
                Err(rejection)
            }
        }
    }

    /// Carries out every pending action and delivers every message until
    /// nothing moves; returns how many actions and messages were handled.
    pub fn pump(&mut self) -> usize {
        let mut handled = 0;
        loop {
            let mut moved = false;
            for index in 0..self.nodes.len() {
                while let Some(action) = self.nodes[index].torrent.poll_action() {
                    moved = true;
                    handled += 1;
                    self.apply(index, action);
                }
                while let Some(event) = self.nodes[index].torrent.poll_event() {
                    self.nodes[index].events.push(event);
                }
            }
            while let Some(entry) = self.inflight.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let Flight {
                    from,
                    link,
                    message,
                } = entry.remove();
                moved = true;
                handled += 1;
                let target = &mut self.nodes[link.to];
                let open = target
                    .links
                    .get(&link.key_there)
                    .is_some_and(|l| l.id == link.id && l.to == from);
                if open {
                    target
                        .torrent
                        .handle_message(self.now, link.key_there, message);
                }
            }
            if !moved {
                return handled;
            }
        }
    }

    fn apply(&mut self, index: usize, action: Action) {
        let now = self.now;
        let node = &mut self.nodes[index];
        match action {
            Action::Send { peer, message } => {
                if let Some(&link) = node.links.get(&peer) {
                    self.send(index, link, message);
                }
            }
            Action::Disconnect { peer, .. } => {
                if let Some(link) = node.links.remove(&peer) {
                    node.torrent.handle_peer_disconnected(now, peer);
                    self.nodes[link.to].links.remove(&link.key_there);
                    self.nodes[link.to]
                        .torrent
                        .handle_peer_disconnected(now, link.key_there);
                }
            }
            Action::WriteBlock { block, data } => {
                let start = (self.content.layout.piece_offset(block.piece)
                    + u64::from(block.offset)) as usize;
                node.storage[start..start + data.len()].copy_from_slice(&data);
            }
            Action::ReadBlock { peer, block } => {
                let start = (self.content.layout.piece_offset(block.piece)
                    + u64::from(block.offset)) as usize;
                let mut data = node.storage[start..start + block.length as usize].to_vec();
                if node.corrupt {
                    data[0] ^= 0xFF;
                }
                node.torrent
                    .handle_block_read(now, peer, block, Bytes::from(data));
            }
            Action::VerifyPiece { piece } => {
                let ok = self.content.verify(&node.storage, piece);
                node.torrent.handle_piece_verified(now, piece, ok);
            }
            Action::Announce { .. } => {
                node.announces += 1;
                node.torrent.handle_announce_response(now, secs(1800), &[]);
            }
            Action::Connect { .. } => {}
            other => panic!("the test network does not know {other:?}"),
        }
    }

    /// Puts `message` in flight from node `from`: block data waits for the
    /// sender's uplink, everything takes `latency`, and nothing overtakes
    /// an earlier message of the same connection.
    fn send(&mut self, from: usize, link: Link, message: Message) {
        let node = &mut self.nodes[from];
        let mut departs = self.now;
        if let (Message::Piece { data, .. }, Some(rate)) = (&message, node.upload_rate) {
            let start = node.busy_until.max(self.now);
            node.busy_until = start + Duration::from_secs_f64(data.len() as f64 / rate as f64);
            departs = node.busy_until;
        }
        let clock = self.link_clock.entry((link.id, from)).or_insert(self.now);
        let arrives = (departs + self.latency).max(*clock);
        *clock = arrives;
        self.sequence += 1;
        self.inflight.insert(
            (arrives, self.sequence),
            Flight {
                from,
                link,
                message,
            },
        );
    }

    /// Pumps, then advances the clock to the earliest timer or delivery and fires the
    /// due ones, until `done` holds or the clock passes `limit`. Returns
    /// whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.pump();
            if done(self) {
                return true;
            }
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.torrent.poll_timeout())
                .chain(self.inflight.keys().next().map(|&(at, _)| at))
                .min();
            let Some(next) = next.filter(|&t| t <= end) else {
                return false;
            };
            self.now = self.now.max(next);
            for node in &mut self.nodes {
                if node.torrent.poll_timeout().is_some_and(|t| t <= self.now) {
                    node.torrent.handle_timeout(self.now);
                }
            }
        }
    }
}
