//! The `Torrent` state machine driven by an arbitrary sequence of peer
//! handshakes, peer messages (well-formed, odd and raw-decoded), disconnects,
//! finished disk reads, piece verifications, tracker answers and clock moves,
//! including time going backwards. The harness plays a faithful driver: it
//! carries out every action (a `Disconnect` is answered with
//! `handle_peer_disconnected`) and serves reads and verifications when the
//! input says so.
//!
//! Checks: no panic, and after every step
//! - actions name live peers; every sent message survives encode + decode by
//!   the torrent's own `Decoder`; `Have` only for pieces we have, `Request`
//!   only for valid blocks of pieces we lack;
//! - reads are for valid blocks of pieces we have, writes for valid blocks of
//!   pieces we lack with data of the block's length, verifications for pieces
//!   we lack; announces report the true `left`;
//! - `PieceCompleted` only right after a passed verification of that piece,
//!   `DownloadCompleted` only when every piece is there;
//! - our bitfield never loses a piece and only gains verified ones; the stats
//!   agree with the bitfield and the live peer count.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::InfoHash;
use minibit_core::piece::{BLOCK_SIZE, BlockRef, Layout, PieceIndex};
use minibit_core::torrent::{Action, Direction, Event, PeerKey, Torrent, TorrentConfig};
use minibit_core::wire::{Decoder, Handshake, Message, PeerId};

const INFO_HASH: InfoHash = InfoHash([0xab; 20]);
const OUR_ID: PeerId = PeerId(*b"-MB0001-fuzzfuzzfuzz");
/// Remote peers the scenario can play.
const PEERS: u8 = 8;
static ZEROS: [u8; BLOCK_SIZE as usize] = [0; BLOCK_SIZE as usize];

#[derive(Arbitrary, Debug)]
struct Scenario {
    seed: u64,
    piece_length: u8,
    length: u32,
    have: u64,
    super_seed: bool,
    connect_to_peers: bool,
    max_peers: u8,
    unchoke_slots: u8,
    ops: Vec<Op>,
}

/// A piece or block number: small values are mapped into the torrent (plus
/// one past the end), values from `0xf000_0000` are used raw.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Num(u32);

#[derive(Arbitrary, Debug)]
enum Len {
    /// The real length of the block.
    Block,
    Raw(u32),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Handshake(Hello),
    Message {
        peer: u8,
        message: Msg,
    },
    /// Bytes run through the torrent's wire decoder; a decoded message is delivered.
    Raw {
        peer: u8,
        bytes: Vec<u8>,
    },
    /// Sends a block the torrent asked this peer for.
    Deliver {
        peer: u8,
        which: u8,
    },
    Disconnect {
        peer: u8,
    },
    DialFailed {
        which: u8,
    },
    ReadDone {
        which: u8,
    },
    Verified {
        which: u8,
        ok: bool,
    },
    Announced {
        interval: u16,
        peers: Vec<u8>,
    },
    AnnounceFailed,
    /// The clock moves forward by this many milliseconds, then the timeout fires.
    Advance {
        millis: u32,
    },
    /// A timeout call with an instant earlier than the last one.
    Backwards {
        millis: u32,
    },
    Stop,
}

/// A remote peer finishing its handshake.
#[derive(Arbitrary, Debug)]
struct Hello {
    peer: u8,
    /// On a connection the torrent asked for (when one is pending).
    outbound: bool,
    fast: bool,
    identity: Identity,
}

/// Who the handshake claims to be.
#[derive(Arbitrary, Debug, PartialEq, Eq)]
enum Identity {
    /// The remote's own peer id, for our torrent.
    Peer,
    /// Another torrent's info-hash.
    WrongTorrent,
    /// Our own peer id: a connection to ourselves.
    Ourselves,
}

#[derive(Arbitrary, Debug)]
enum Msg {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(Num),
    Bitfield(Vec<u8>),
    Request(Num, Num, Len),
    Piece(Num, Num, Len),
    Cancel(Num, Num, Len),
    Port(u16),
    Suggest(Num),
    HaveAll,
    HaveNone,
    Reject(Num, Num, Len),
    AllowedFast(Num),
    Extended(u8, Vec<u8>),
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    // A day after the first call, so instants before "now" exist.
    *BASE.get_or_init(|| Instant::now() + Duration::from_hours(24))
}

fn remote(peer: u8) -> (SocketAddr, PeerId) {
    let n = peer % PEERS;
    let mut id = [n; 20];
    id[..8].copy_from_slice(b"-FZ0001-");
    (SocketAddr::from(([10, 0, 0, n + 1], 6881)), PeerId(id))
}

/// Picks `items[which % len]`, if any.
fn pick<T>(items: &mut Vec<T>, which: u8) -> Option<T> {
    (!items.is_empty()).then(|| items.swap_remove(usize::from(which) % items.len()))
}

struct Harness {
    torrent: Torrent,
    layout: Layout,
    decoder: Decoder,
    now: Instant,
    /// Remote peer slot -> the torrent's key for it, while connected.
    slots: BTreeMap<u8, PeerKey>,
    /// Connections replaced by a second one from the same peer id.
    replaced: Vec<PeerKey>,
    live: BTreeSet<PeerKey>,
    requested: BTreeMap<PeerKey, Vec<BlockRef>>,
    dials: Vec<SocketAddr>,
    reads: Vec<(PeerKey, BlockRef)>,
    verifies: Vec<PieceIndex>,
    passed: Option<PieceIndex>,
    have: Bitfield,
}

impl Harness {
    fn new(s: &Scenario) -> Option<Self> {
        let piece_length = match s.piece_length % 6 {
            0 => 1000,
            1 => u64::from(BLOCK_SIZE),
            2 => u64::from(BLOCK_SIZE) + 1,
            3 => 2 * u64::from(BLOCK_SIZE),
            4 => 3 * u64::from(BLOCK_SIZE),
            _ => 4 * u64::from(BLOCK_SIZE),
        };
        let length = 1 + u64::from(s.length) % (24 * piece_length);
        let layout = Layout::new(piece_length, &[length]).ok()?;
        let mut have = Bitfield::new(layout.piece_count());
        for piece in layout.pieces() {
            if s.have >> (piece.get() % 64) & 1 == 1 {
                have.set(piece);
            }
        }
        let config = TorrentConfig {
            rng_seed: Some(s.seed),
            super_seed: s.super_seed,
            connect_to_peers: s.connect_to_peers,
            max_peers: usize::from(s.max_peers % 8) + 1,
            unchoke_slots: usize::from(s.unchoke_slots % 5),
            ..TorrentConfig::default()
        };
        let now = base();
        let torrent = Torrent::new(config, INFO_HASH, OUR_ID, layout.clone(), have.clone(), now);
        assert_eq!(torrent.have(), &have);
        let mut harness = Self {
            torrent,
            decoder: Decoder::new(layout.piece_count()),
            layout,
            now,
            slots: BTreeMap::new(),
            replaced: Vec::new(),
            live: BTreeSet::new(),
            requested: BTreeMap::new(),
            dials: Vec::new(),
            reads: Vec::new(),
            verifies: Vec::new(),
            passed: None,
            have,
        };
        harness.drain();
        Some(harness)
    }

    fn piece(&self, n: Num) -> u32 {
        if n.0 >= 0xf000_0000 {
            n.0
        } else {
            n.0 % (self.layout.piece_count() + 1)
        }
    }

    fn offset(&self, n: Num) -> u32 {
        if n.0 >= 0xf000_0000 {
            n.0
        } else {
            let blocks = self.layout.piece_length().div_ceil(BLOCK_SIZE);
            n.0 % (blocks + 1) * BLOCK_SIZE
        }
    }

    fn block(&self, piece: Num, offset: Num, len: &Len) -> (u32, u32, u32) {
        let (piece, offset) = (self.piece(piece), self.offset(offset));
        let length = match len {
            Len::Raw(n) => *n,
            Len::Block => self.layout.piece_index(piece).ok().map_or(BLOCK_SIZE, |p| {
                self.layout
                    .piece_size(p)
                    .saturating_sub(offset)
                    .min(BLOCK_SIZE)
            }),
        };
        (piece, offset, length)
    }

    fn message(&self, msg: Msg) -> Message {
        match msg {
            Msg::KeepAlive => Message::KeepAlive,
            Msg::Choke => Message::Choke,
            Msg::Unchoke => Message::Unchoke,
            Msg::Interested => Message::Interested,
            Msg::NotInterested => Message::NotInterested,
            Msg::Have(p) => Message::Have {
                piece: self.piece(p),
            },
            Msg::Bitfield(mut bytes) => {
                bytes.resize(self.layout.piece_count().div_ceil(8) as usize, 0);
                Message::Bitfield(Bytes::from(bytes))
            }
            Msg::Request(p, o, l) => {
                let (piece, offset, length) = self.block(p, o, &l);
                Message::Request {
                    piece,
                    offset,
                    length,
                }
            }
            Msg::Piece(p, o, l) => {
                let (piece, offset, length) = self.block(p, o, &l);
                let length = (length % (BLOCK_SIZE + 1)) as usize;
                let data = Bytes::from_static(&ZEROS[..length]);
                Message::Piece {
                    piece,
                    offset,
                    data,
                }
            }
            Msg::Cancel(p, o, l) => {
                let (piece, offset, length) = self.block(p, o, &l);
                Message::Cancel {
                    piece,
                    offset,
                    length,
                }
            }
            Msg::Port(port) => Message::Port(port),
            Msg::Suggest(p) => Message::Suggest {
                piece: self.piece(p),
            },
            Msg::HaveAll => Message::HaveAll,
            Msg::HaveNone => Message::HaveNone,
            Msg::Reject(p, o, l) => {
                let (piece, offset, length) = self.block(p, o, &l);
                Message::Reject {
                    piece,
                    offset,
                    length,
                }
            }
            Msg::AllowedFast(p) => Message::AllowedFast {
                piece: self.piece(p),
            },
            Msg::Extended(id, payload) => Message::Extended {
                id,
                payload: Bytes::from(payload),
            },
        }
    }

    fn deliver(&mut self, peer: u8, message: Message) {
        if let Some(&key) = self.slots.get(&(peer % PEERS)) {
            self.torrent.handle_message(self.now, key, message);
        }
    }

    fn handshake(&mut self, hello: &Hello) {
        let (addr, id) = remote(hello.peer);
        let dialled = if hello.outbound {
            pick(&mut self.dials, hello.peer)
        } else {
            None
        };
        let (addr, direction) = match dialled {
            Some(dialled) => (dialled, Direction::Outbound),
            None => (addr, Direction::Inbound),
        };
        let mut theirs = Handshake::new(
            INFO_HASH,
            if hello.identity == Identity::Ourselves {
                OUR_ID
            } else {
                id
            },
        );
        if hello.fast {
            theirs = theirs.with_fast();
        }
        if hello.identity == Identity::WrongTorrent {
            theirs.info_hash.0[0] ^= 1;
        }
        if let Ok(key) = self
            .torrent
            .handle_handshake(self.now, addr, direction, &theirs)
        {
            assert_eq!(hello.identity, Identity::Peer, "accepted a bad handshake");
            assert!(self.live.insert(key), "key {key:?} given to two live peers");
            if let Some(old) = self.slots.insert(hello.peer % PEERS, key) {
                // Both sides dialled at once: the torrent keeps one of the
                // two connections and must close the other at once.
                self.replaced.push(old);
            }
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Handshake(hello) => self.handshake(&hello),
            Op::Message { peer, message } => {
                let message = self.message(message);
                self.deliver(peer, message);
            }
            Op::Raw { peer, bytes } => {
                if let Ok(Some(message)) =
                    self.decoder.clone().decode(&mut BytesMut::from(&bytes[..]))
                {
                    self.deliver(peer, message);
                }
            }
            Op::Deliver { peer, which } => {
                let Some(&key) = self.slots.get(&(peer % PEERS)) else {
                    return;
                };
                let Some(block) = self.requested.get_mut(&key).and_then(|r| pick(r, which)) else {
                    return;
                };
                let data = Bytes::from_static(&ZEROS[..block.length as usize]);
                let message = Message::Piece {
                    piece: block.piece.get(),
                    offset: block.offset,
                    data,
                };
                self.torrent.handle_message(self.now, key, message);
            }
            Op::Disconnect { peer } => {
                if let Some(key) = self.slots.remove(&(peer % PEERS)) {
                    self.disconnected(key);
                }
            }
            Op::DialFailed { which } => {
                if let Some(addr) = pick(&mut self.dials, which) {
                    self.torrent.handle_connect_failed(self.now, addr);
                }
            }
            Op::ReadDone { which } => {
                if let Some((peer, block)) = pick(&mut self.reads, which) {
                    let data = Bytes::from_static(&ZEROS[..block.length as usize]);
                    self.torrent.handle_block_read(self.now, peer, block, data);
                }
            }
            Op::Verified { which, ok } => {
                if let Some(piece) = pick(&mut self.verifies, which) {
                    self.passed = ok.then_some(piece);
                    self.torrent.handle_piece_verified(self.now, piece, ok);
                }
            }
            Op::Announced { interval, peers } => {
                let addrs: Vec<SocketAddr> = peers.iter().map(|&p| remote(p).0).collect();
                let interval = Duration::from_secs(interval.into());
                self.torrent
                    .handle_announce_response(self.now, interval, &addrs);
            }
            Op::AnnounceFailed => self.torrent.handle_announce_failed(self.now),
            Op::Advance { millis } => {
                self.now += Duration::from_millis(u64::from(millis % 600_000));
                self.torrent.handle_timeout(self.now);
            }
            Op::Backwards { millis } => {
                let back = Duration::from_millis(u64::from(millis % 3_600_000));
                let earlier = self
                    .now
                    .checked_sub(back)
                    .expect("the base leaves a day of room");
                self.torrent.handle_timeout(earlier);
            }
            Op::Stop => self.torrent.stop(self.now),
        }
        self.drain();
        self.passed = None;
    }

    /// The driver closed the connection: tell the torrent.
    fn disconnected(&mut self, key: PeerKey) {
        if self.live.remove(&key) {
            self.slots.retain(|_, k| *k != key);
            self.requested.remove(&key);
            self.reads.retain(|(p, _)| *p != key);
            self.torrent.handle_peer_disconnected(self.now, key);
        }
    }

    /// Carries out every action and checks every event, until both queues are empty.
    fn drain(&mut self) {
        loop {
            let mut closed = Vec::new();
            while let Some(action) = self.torrent.poll_action() {
                if let Some(key) = self.check_action(action) {
                    closed.push(key);
                }
            }
            while let Some(event) = self.torrent.poll_event() {
                self.check_event(&event);
            }
            if closed.is_empty() {
                break;
            }
            for key in closed {
                self.disconnected(key);
            }
        }
        for old in self.replaced.drain(..) {
            assert!(
                !self.live.contains(&old),
                "a second connection with a connected peer id was accepted and the first kept"
            );
        }
        self.check_state();
    }

    fn valid_block(&self, block: BlockRef) -> bool {
        self.layout
            .block_ref(block.piece.get(), block.offset, block.length)
            == Ok(block)
    }

    /// Checks an action and carries it out; returns a peer to disconnect.
    fn check_action(&mut self, action: Action) -> Option<PeerKey> {
        match action {
            Action::Send { peer, message } => {
                assert!(self.live.contains(&peer), "send to dead peer {peer:?}");
                self.check_send(peer, &message);
            }
            Action::Connect { addr } => self.dials.push(addr),
            Action::Disconnect { peer, .. } => {
                assert!(
                    self.live.contains(&peer),
                    "disconnect of dead peer {peer:?}"
                );
                return Some(peer);
            }
            Action::WriteBlock { block, data } => {
                assert!(self.valid_block(block), "write of bad block {block:?}");
                assert_eq!(data.len(), block.length as usize);
                assert!(
                    !self.torrent.have().has(block.piece),
                    "write into a piece we have"
                );
            }
            Action::ReadBlock { peer, block } => {
                assert!(self.live.contains(&peer), "read for dead peer {peer:?}");
                assert!(self.valid_block(block), "read of bad block {block:?}");
                assert!(
                    self.torrent.have().has(block.piece),
                    "read of a piece we lack"
                );
                self.reads.push((peer, block));
            }
            Action::VerifyPiece { piece } => {
                assert!(piece.get() < self.layout.piece_count());
                assert!(!self.torrent.have().has(piece), "verify of a piece we have");
                self.verifies.push(piece);
            }
            Action::Announce { left, .. } => assert_eq!(left, self.left()),
            other => panic!("the fuzz harness does not know {other:?}"),
        }
        None
    }

    fn check_send(&mut self, peer: PeerKey, message: &Message) {
        let mut wire = BytesMut::new();
        message.encode(&mut wire);
        let decoded = self.decoder.clone().decode(&mut wire);
        assert_eq!(
            decoded.as_ref(),
            Ok(&Some(message.clone())),
            "sent an undecodable message"
        );
        match *message {
            Message::Have { piece } => {
                let piece = self.layout.piece_index(piece).expect("have of a bad piece");
                assert!(self.torrent.have().has(piece), "have for a piece we lack");
            }
            Message::Request {
                piece,
                offset,
                length,
            } => {
                let block = self
                    .layout
                    .block_ref(piece, offset, length)
                    .expect("bad request");
                assert!(
                    !self.torrent.have().has(block.piece),
                    "request for a piece we have"
                );
                self.requested.entry(peer).or_default().push(block);
            }
            Message::Cancel {
                piece,
                offset,
                length,
            } => {
                let block = self
                    .layout
                    .block_ref(piece, offset, length)
                    .expect("bad cancel");
                if let Some(requested) = self.requested.get_mut(&peer) {
                    requested.retain(|b| *b != block);
                }
            }
            Message::Piece {
                piece,
                offset,
                ref data,
            } => {
                let length = u32::try_from(data.len()).expect("a block fits in u32");
                let block = self
                    .layout
                    .block_ref(piece, offset, length)
                    .expect("bad piece");
                assert!(
                    self.torrent.have().has(block.piece),
                    "served a piece we lack"
                );
            }
            _ => {}
        }
    }

    fn check_event(&mut self, event: &Event) {
        match *event {
            Event::PieceCompleted { piece } => {
                assert_eq!(
                    Some(piece),
                    self.passed,
                    "completed without passing verification"
                );
                assert!(self.torrent.have().has(piece));
                assert!(self.have.set(piece), "piece completed twice");
            }
            Event::DownloadCompleted => {
                assert!(
                    self.torrent.have().is_complete(),
                    "download completed early"
                );
            }
            _ => {}
        }
    }

    fn left(&self) -> u64 {
        let missing = self
            .layout
            .pieces()
            .filter(|p| !self.torrent.have().has(*p));
        missing.map(|p| u64::from(self.layout.piece_size(p))).sum()
    }

    fn check_state(&self) {
        assert_eq!(
            self.torrent.have(),
            &self.have,
            "bitfield changed without a completed piece"
        );
        let stats = self.torrent.stats();
        assert_eq!(stats.pieces_have, self.have.count());
        assert_eq!(stats.left, self.left());
        assert_eq!(stats.peers, self.live.len());
    }
}

fuzz_target!(|scenario: Scenario| {
    let Some(mut harness) = Harness::new(&scenario) else {
        return;
    };
    for op in scenario.ops {
        harness.apply(op);
    }
});
