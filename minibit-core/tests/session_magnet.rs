//! Magnet links in the [`Session`] (BEP 9): a torrent that starts with
//! only its info-hash fetches the info dictionary with `ut_metadata` from
//! its peers, keeps its connections, and then downloads; a session that
//! holds the metadata serves it. Hostile peers: a `metadata_size` of
//! 1 GiB, pieces out of range or of the wrong length, rejects, silence,
//! metadata that does not hash to the info-hash, and HAVEs (sent before
//! the metadata) of pieces the torrent does not have.

mod support;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use minibit_core::bitfield::Bitfield;
use minibit_core::id::{ConnectionId, TorrentId};
use minibit_core::magnet::{Magnet, MagnetPeer};
use minibit_core::metadata::FetchError;
use minibit_core::metainfo::{Content as Files, Draft, Extras, Metainfo};
use minibit_core::session::{Session, SessionAction, SessionConfig, SessionEvent};
use minibit_core::torrent::{
    Action, AnnounceEvent, DisconnectReason, Event, MetadataPhase, TorrentConfig, Violation,
};
use minibit_core::wire::{
    ExtendedHandshake, Handshake, MAX_METADATA_SIZE, METADATA_PIECE_LEN, Message, MetadataMessage,
};
use proptest::prelude::*;
use sha1::{Digest, Sha1};
use support::{Content, peer_id, secs, t0};

/// Session `n` listens on `10.2.0.n:6881`.
fn listen(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 2, 0, n], 6881))
}

fn torrent_config() -> TorrentConfig {
    TorrentConfig {
        rng_seed: Some(5),
        initial_spread: false,
        ..TorrentConfig::default()
    }
}

fn session(n: u8) -> Session {
    let config = SessionConfig {
        listen_addr: Some(listen(n)),
        ..SessionConfig::default()
    };
    Session::new(config, peer_id(n), t0())
}

/// The torrent of `content`, one file, with its real piece hashes.
fn metainfo_of(content: &Content) -> Metainfo {
    let layout = &content.layout;
    let pieces = layout
        .pieces()
        .map(|piece| {
            let start = layout.piece_offset(piece) as usize;
            let end = start + layout.piece_size(piece) as usize;
            Sha1::digest(&content.data[start..end]).into()
        })
        .collect();
    Draft {
        name: "content.bin".to_owned(),
        piece_length: layout.piece_length(),
        pieces,
        content: Files::Single {
            length: layout.total_length(),
        },
        private: false,
        extras: Extras::default(),
    }
    .finish()
    .unwrap()
}

/// A torrent of `pieces` 16 KiB pieces with made-up hashes: its info
/// dictionary is about 20 bytes per piece (several metadata pieces).
fn big_metainfo(pieces: u32) -> Metainfo {
    Draft {
        name: "big.bin".to_owned(),
        piece_length: 16 * 1024,
        pieces: (0..pieces)
            .map(|i| Sha1::digest(i.to_be_bytes()).into())
            .collect(),
        content: Files::Single {
            length: u64::from(pieces) * 16 * 1024,
        },
        private: false,
        extras: Extras::default(),
    }
    .finish()
    .unwrap()
}

fn magnet(metainfo: &Metainfo, peers: &[SocketAddr]) -> Magnet {
    let mut magnet = Magnet::new(metainfo.info_hash());
    magnet.peers = peers.iter().map(|&addr| MagnetPeer::Addr(addr)).collect();
    magnet
}

/// One session of the virtual network, with one torrent and its storage.
struct Node {
    session: Session,
    listen: SocketAddr,
    torrent: TorrentId,
    /// Known from the start (seeds) or from `MetadataReceived`.
    metainfo: Option<Metainfo>,
    storage: Vec<u8>,
    events: Vec<Event>,
    /// Call `metadata_ready` on `MetadataReceived`.
    open_storage: bool,
    /// ut_metadata data messages this node sent.
    metadata_sent: usize,
    /// Announces this node made, with their `left`.
    announces: Vec<(AnnounceEvent, u64)>,
    /// Connections that ever were bound, in order.
    bound: Vec<ConnectionId>,
}

/// Sessions joined over a lossless, instant virtual network: the driver
/// of the run-loop in the `session` module docs, without sockets.
struct Net {
    nodes: Vec<Node>,
    links: HashMap<(usize, ConnectionId), (usize, ConnectionId)>,
    inbox: VecDeque<(usize, ConnectionId, Message)>,
    now: Instant,
}

impl Net {
    fn new() -> Self {
        Self {
            nodes: Vec::new(),
            links: HashMap::new(),
            inbox: VecDeque::new(),
            now: t0(),
        }
    }

    fn add_seed(&mut self, n: u8, metainfo: &Metainfo, storage: Vec<u8>) -> usize {
        let mut session = session(n);
        let pieces = metainfo.layout().piece_count();
        let torrent = session
            .add_metainfo(self.now, torrent_config(), metainfo, Bitfield::full(pieces))
            .unwrap();
        self.push(n, session, torrent, Some(metainfo.clone()), storage)
    }

    fn add_magnet(&mut self, n: u8, magnet: &Magnet) -> usize {
        let mut session = session(n);
        let torrent = session
            .add_magnet(self.now, torrent_config(), magnet)
            .unwrap();
        self.push(n, session, torrent, None, Vec::new())
    }

    fn push(
        &mut self,
        n: u8,
        session: Session,
        torrent: TorrentId,
        metainfo: Option<Metainfo>,
        storage: Vec<u8>,
    ) -> usize {
        self.nodes.push(Node {
            session,
            listen: listen(n),
            torrent,
            metainfo,
            storage,
            events: Vec::new(),
            open_storage: true,
            metadata_sent: 0,
            announces: Vec::new(),
            bound: Vec::new(),
        });
        self.nodes.len() - 1
    }

    /// Carries out every action and delivers every message until quiet.
    fn pump(&mut self) {
        loop {
            let mut busy = false;
            for i in 0..self.nodes.len() {
                while let Some(action) = self.nodes[i].session.poll_action() {
                    busy = true;
                    self.act(i, action);
                }
                while let Some(event) = self.nodes[i].session.poll_event() {
                    busy = true;
                    self.report(i, event);
                }
            }
            while let Some((i, conn, message)) = self.inbox.pop_front() {
                busy = true;
                self.nodes[i]
                    .session
                    .handle_message(self.now, conn, message);
            }
            if !busy {
                return;
            }
        }
    }

    fn act(&mut self, i: usize, action: SessionAction) {
        let now = self.now;
        match action {
            SessionAction::Torrent {
                torrent,
                conn,
                action,
            } => match action {
                Action::Connect { addr } => self.connect(i, conn.unwrap(), addr),
                Action::Send { message, .. } => {
                    let conn = conn.unwrap();
                    if let Message::Extended { id: 2, payload } = &message {
                        if matches!(
                            MetadataMessage::decode(payload),
                            Ok(MetadataMessage::Data { .. })
                        ) {
                            self.nodes[i].metadata_sent += 1;
                        }
                    }
                    if let Some(&(j, theirs)) = self.links.get(&(i, conn)) {
                        self.inbox.push_back((j, theirs, message));
                    }
                }
                Action::Disconnect { .. } => self.close(i, conn.unwrap()),
                Action::ReadBlock { block, .. } => {
                    let node = &mut self.nodes[i];
                    let layout = node.metainfo.as_ref().unwrap().layout();
                    let start =
                        (layout.piece_offset(block.piece) + u64::from(block.offset)) as usize;
                    let data =
                        Bytes::copy_from_slice(&node.storage[start..start + block.length as usize]);
                    node.session
                        .handle_block_read(now, torrent, conn.unwrap(), block, data);
                }
                Action::WriteBlock { block, data } => {
                    let node = &mut self.nodes[i];
                    let layout = node.metainfo.as_ref().unwrap().layout();
                    let start =
                        (layout.piece_offset(block.piece) + u64::from(block.offset)) as usize;
                    node.storage[start..start + data.len()].copy_from_slice(&data);
                }
                Action::VerifyPiece { piece } => {
                    let node = &mut self.nodes[i];
                    let metainfo = node.metainfo.as_ref().unwrap();
                    let layout = metainfo.layout();
                    let start = layout.piece_offset(piece) as usize;
                    let end = start + layout.piece_size(piece) as usize;
                    let ok = Sha1::digest(&node.storage[start..end]).as_slice()
                        == metainfo.piece_hash(piece);
                    node.session.handle_piece_verified(now, torrent, piece, ok);
                }
                Action::Announce { event, left, .. } => {
                    let node = &mut self.nodes[i];
                    node.announces.push((event, left));
                    node.session
                        .handle_announce_response(now, torrent, secs(1800), None, &[]);
                }
                other => panic!("unexpected action {other:?}"),
            },
            SessionAction::Close { conn, .. } => self.close(i, conn),
            SessionAction::PauseReading | SessionAction::ResumeReading => {}
            other => panic!("unexpected action {other:?}"),
        }
    }

    fn report(&mut self, i: usize, event: SessionEvent) {
        let SessionEvent::Torrent { torrent, event } = event else {
            panic!("unexpected event {event:?}");
        };
        let node = &mut self.nodes[i];
        if let Event::MetadataReceived { metainfo } = &event {
            if node.open_storage {
                node.storage = vec![0; metainfo.total_length() as usize];
                node.metainfo = Some((**metainfo).clone());
                let pieces = metainfo.layout().piece_count();
                node.session
                    .metadata_ready(self.now, torrent, Bitfield::new(pieces))
                    .unwrap();
            }
        }
        node.events.push(event);
    }

    /// Node `i` dialled `addr` on `conn`: both handshakes, or a close.
    fn connect(&mut self, i: usize, conn: ConnectionId, addr: SocketAddr) {
        let now = self.now;
        let Some(j) = self.nodes.iter().position(|n| n.listen == addr) else {
            self.nodes[i].session.handle_connection_closed(now, conn);
            return;
        };
        let ours = self.nodes[i].session.handle_connected(now, conn).unwrap();
        let from = self.nodes[i].listen;
        let Ok(theirs) = self.nodes[j].session.handle_incoming(now, from) else {
            self.nodes[i].session.handle_connection_closed(now, conn);
            return;
        };
        let Ok(routed) = self.nodes[j].session.handle_handshake(now, theirs, &ours) else {
            self.nodes[i].session.handle_connection_closed(now, conn);
            return;
        };
        let reply = routed.reply.unwrap();
        if self.nodes[i]
            .session
            .handle_handshake(now, conn, &reply)
            .is_err()
        {
            self.nodes[j].session.handle_connection_closed(now, theirs);
            return;
        }
        self.links.insert((i, conn), (j, theirs));
        self.links.insert((j, theirs), (i, conn));
        self.nodes[i].bound.push(conn);
        self.nodes[j].bound.push(theirs);
    }

    fn close(&mut self, i: usize, conn: ConnectionId) {
        let now = self.now;
        if let Some((j, theirs)) = self.links.remove(&(i, conn)) {
            self.links.remove(&(j, theirs));
            self.nodes[j].session.handle_connection_closed(now, theirs);
        }
        self.nodes[i].session.handle_connection_closed(now, conn);
    }

    /// Pumps, advancing the clock to each next timeout, until `done` or
    /// `limit` of virtual time.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.pump();
            if done(self) {
                return true;
            }
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.session.poll_timeout())
                .min()
                .unwrap_or(end)
                .max(self.now + Duration::from_millis(1));
            if next > end {
                return false;
            }
            self.now = next;
            for node in &mut self.nodes {
                node.session.handle_timeout(next);
            }
        }
    }

    fn phase(&self, i: usize) -> MetadataPhase {
        let node = &self.nodes[i];
        node.session.torrent(node.torrent).unwrap().metadata_phase()
    }

    fn finished(&self, i: usize) -> bool {
        let node = &self.nodes[i];
        let torrent = node.session.torrent(node.torrent).unwrap();
        torrent.metadata_phase() == MetadataPhase::Ready && torrent.is_finished()
    }
}

fn disconnects(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::PeerDisconnected { .. }))
        .count()
}

#[test]
fn a_magnet_session_fetches_the_metadata_then_the_content_over_the_same_connection() {
    let content = Content::new(1024 * 1024 + 777, 32 * 1024, 9);
    let metainfo = metainfo_of(&content);
    let mut net = Net::new();
    let seed = net.add_seed(1, &metainfo, content.data.clone());
    let leech = net.add_magnet(2, &magnet(&metainfo, &[listen(1)]));
    assert_eq!(net.phase(leech), MetadataPhase::Fetching);

    assert!(net.run_until(secs(120), |net| net.finished(leech)));

    let node = &net.nodes[leech];
    assert_eq!(node.storage, content.data, "the content arrived intact");
    let received: Vec<&Metainfo> = node
        .events
        .iter()
        .filter_map(|e| match e {
            Event::MetadataReceived { metainfo } => Some(&**metainfo),
            _ => None,
        })
        .collect();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].info_bytes(), metainfo.info_bytes());
    assert_eq!(received[0].info_hash(), metainfo.info_hash());
    // While fetching it announced 16 KiB left (never 0: not a seed).
    assert_eq!(node.announces[0], (AnnounceEvent::Started, 16 * 1024));
    // One connection carried the metadata and the content: it was never
    // dropped and re-made (both seeding, it closes after the download).
    assert_eq!(node.bound.len(), 1);
    let completed = node
        .events
        .iter()
        .position(|e| *e == Event::DownloadCompleted)
        .unwrap();
    assert_eq!(disconnects(&node.events[..completed]), 0);
    assert!(net.nodes[seed].metadata_sent >= 1);
    // The leecher now serves the metadata itself.
    let torrent = node.session.torrent(node.torrent).unwrap();
    assert_eq!(
        torrent.info_bytes().map(|b| &b[..]),
        Some(metainfo.info_bytes())
    );
}

#[test]
fn the_metadata_comes_from_several_peers_and_a_second_magnet_fetches_it_from_the_first() {
    let metainfo = big_metainfo(3000);
    let pieces = metainfo.info_bytes().len().div_ceil(METADATA_PIECE_LEN);
    assert!(pieces >= 4, "the info dictionary spans {pieces} pieces");
    let mut net = Net::new();
    let seeds: Vec<usize> = (1..=3)
        .map(|n| net.add_seed(n, &metainfo, Vec::new()))
        .collect();
    let first = net.add_magnet(10, &magnet(&metainfo, &[listen(1), listen(2), listen(3)]));
    net.nodes[first].open_storage = false;
    assert!(net.run_until(secs(60), |net| {
        net.phase(first) == MetadataPhase::AwaitingStorage
    }));
    let serving = seeds
        .iter()
        .filter(|&&s| net.nodes[s].metadata_sent > 0)
        .count();
    assert!(
        serving >= 2,
        "only {serving} of 3 seeds sent metadata pieces"
    );
    let sent: usize = seeds.iter().map(|&s| net.nodes[s].metadata_sent).sum();
    assert_eq!(sent, pieces, "each piece was fetched once");

    // A second magnet knows only the first, which has no storage yet.
    let second = net.add_magnet(11, &magnet(&metainfo, &[listen(10)]));
    net.nodes[second].open_storage = false;
    assert!(net.run_until(secs(60), |net| {
        net.phase(second) == MetadataPhase::AwaitingStorage
    }));
    // It served from memory (PEX may have named the seeds too).
    assert!(net.nodes[first].metadata_sent > 0);
    let node = &net.nodes[second];
    let torrent = node.session.torrent(node.torrent).unwrap();
    assert_eq!(
        torrent.info_bytes().map(|b| &b[..]),
        Some(metainfo.info_bytes())
    );
}

/// A magnet session and scripted peers that speak to it by hand.
struct Scripted {
    session: Session,
    torrent: TorrentId,
    now: Instant,
    metainfo: Metainfo,
    /// The scripted peers' connections.
    joined: Vec<ConnectionId>,
}

/// What the magnet session sent on one connection, and its closes.
#[derive(Debug, Default)]
struct Sent {
    messages: BTreeMap<ConnectionId, Vec<Message>>,
    disconnected: BTreeMap<ConnectionId, DisconnectReason>,
    events: Vec<Event>,
}

impl Sent {
    fn metadata_requests(&self, conn: ConnectionId) -> Vec<u32> {
        self.messages
            .get(&conn)
            .into_iter()
            .flatten()
            .filter_map(|m| match m {
                Message::Extended { id: 3, payload } => match MetadataMessage::decode(payload) {
                    Ok(MetadataMessage::Request { piece }) => Some(piece),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    fn violation(&self, conn: ConnectionId) -> Option<&Violation> {
        match self.disconnected.get(&conn) {
            Some(DisconnectReason::ProtocolViolation(v)) => Some(v),
            _ => None,
        }
    }
}

impl Scripted {
    /// A magnet session of [`big_metainfo`]`(pieces)`, with the info
    /// dictionary's bytes and their size (the `metadata_size` peers send).
    fn of_pieces(pieces: u32) -> (Self, Vec<u8>, u32) {
        let metainfo = big_metainfo(pieces);
        let info = metainfo.info_bytes().to_vec();
        let size = info.len() as u32;
        (Self::new(metainfo), info, size)
    }

    fn new(metainfo: Metainfo) -> Self {
        let mut session = session(100);
        let torrent = session
            .add_magnet(t0(), torrent_config(), &Magnet::new(metainfo.info_hash()))
            .unwrap();
        let mut scripted = Self {
            session,
            torrent,
            now: t0(),
            metainfo,
            joined: Vec::new(),
        };
        scripted.drain();
        scripted
    }

    /// Peer `n` connects (fast and extension bits) and sends its extended
    /// handshake with `ut_metadata` 3 (the session's messages to it carry
    /// id 3; it sends under the session's id, 2) and `metadata_size`.
    fn join(&mut self, n: u8, metadata_size: Option<u32>) -> ConnectionId {
        let addr = SocketAddr::from(([10, 3, 0, n], 7000));
        let conn = self.session.handle_incoming(self.now, addr).unwrap();
        let hs = Handshake::new(self.metainfo.info_hash(), peer_id(n))
            .with_fast()
            .with_extensions();
        self.session.handle_handshake(self.now, conn, &hs).unwrap();
        let ext = ExtendedHandshake {
            m: [("ut_metadata".to_owned(), 3)].into(),
            metadata_size,
            ..ExtendedHandshake::default()
        };
        self.session
            .handle_message(self.now, conn, ext.to_message());
        self.joined.push(conn);
        conn
    }

    fn send(&mut self, conn: ConnectionId, message: &MetadataMessage) {
        self.session
            .handle_message(self.now, conn, message.to_message(2));
    }

    /// Piece `piece` of `info`, as a data message.
    fn data(info: &[u8], piece: u32) -> MetadataMessage {
        let start = piece as usize * METADATA_PIECE_LEN;
        let end = (start + METADATA_PIECE_LEN).min(info.len());
        MetadataMessage::Data {
            piece,
            total_size: info.len() as u32,
            data: Bytes::copy_from_slice(&info[start..end]),
        }
    }

    /// Time passes; every scripted peer sends a keep-alive first (as real
    /// peers do every two minutes at most: nobody is dropped for silence).
    fn advance(&mut self, by: Duration) {
        self.now += by;
        for &conn in &self.joined {
            self.session
                .handle_message(self.now, conn, Message::KeepAlive);
        }
        self.session.handle_timeout(self.now);
    }

    /// Drains the session's outputs; disconnected peers' sockets close
    /// (and what that leads to is drained too).
    fn drain(&mut self) -> Sent {
        let mut sent = Sent::default();
        loop {
            let mut closing = Vec::new();
            while let Some(action) = self.session.poll_action() {
                match action {
                    SessionAction::Torrent {
                        conn: Some(conn),
                        action: Action::Send { message, .. },
                        ..
                    } => sent.messages.entry(conn).or_default().push(message),
                    SessionAction::Torrent {
                        conn: Some(conn),
                        action: Action::Disconnect { reason, .. },
                        ..
                    } => {
                        sent.disconnected.insert(conn, reason);
                        closing.push(conn);
                    }
                    _ => {}
                }
            }
            while let Some(SessionEvent::Torrent { event, .. }) = self.session.poll_event() {
                sent.events.push(event);
            }
            if closing.is_empty() {
                return sent;
            }
            for conn in closing {
                self.session.handle_connection_closed(self.now, conn);
            }
        }
    }

    fn phase(&self) -> MetadataPhase {
        self.session.torrent(self.torrent).unwrap().metadata_phase()
    }
}

#[test]
fn a_metadata_size_of_one_gib_is_refused_before_anything_is_asked() {
    let metainfo = big_metainfo(10);
    let mut s = Scripted::new(metainfo);
    let liar = s.join(1, Some(1 << 30));
    let sent = s.drain();
    assert_eq!(
        sent.violation(liar),
        Some(&Violation::Metadata(FetchError::BadSize(1 << 30)))
    );
    assert!(sent.metadata_requests(liar).is_empty());
    const { assert!(MAX_METADATA_SIZE < 1 << 30) };
    // An honest peer afterwards is asked as usual.
    let size = s.metainfo.info_bytes().len() as u32;
    let honest = s.join(2, Some(size));
    assert_eq!(s.drain().metadata_requests(honest), vec![0]);
}

#[test]
fn metadata_that_does_not_hash_drops_its_sender_and_is_fetched_again_from_another() {
    let (mut s, info, size) = Scripted::of_pieces(1500);
    assert_eq!(info.len().div_ceil(METADATA_PIECE_LEN), 2);
    let metainfo = s.metainfo.clone();
    let liar = s.join(1, Some(size));
    assert_eq!(s.drain().metadata_requests(liar), vec![0, 1]);
    let honest = s.join(2, Some(size));
    assert!(
        s.drain().metadata_requests(honest).is_empty(),
        "every piece is asked of the first peer"
    );
    let mut forged = info.clone();
    forged[100] ^= 1;
    s.send(liar, &Scripted::data(&forged, 0));
    s.send(liar, &Scripted::data(&forged, 1));
    let sent = s.drain();
    assert_eq!(sent.violation(liar), Some(&Violation::MetadataHash));
    assert_eq!(sent.metadata_requests(honest), vec![0, 1]);
    assert_eq!(s.phase(), MetadataPhase::Fetching);
    s.send(honest, &Scripted::data(&info, 1));
    s.send(honest, &Scripted::data(&info, 0));
    let sent = s.drain();
    assert!(sent.disconnected.is_empty());
    assert_eq!(s.phase(), MetadataPhase::AwaitingStorage);
    assert!(sent.events.contains(&Event::MetadataReceived {
        metainfo: Box::new(metainfo)
    }));
}

#[test]
fn pieces_out_of_range_or_of_the_wrong_length_drop_the_peer_and_its_pieces_go_to_others() {
    let (mut s, info, size) = Scripted::of_pieces(1500);
    let a = s.join(1, Some(size));
    assert_eq!(s.drain().metadata_requests(a), vec![0, 1]);
    let b = s.join(2, Some(size));
    let c = s.join(3, Some(size));
    s.drain();

    // a: piece 5 of a 2-piece dictionary.
    s.send(
        a,
        &MetadataMessage::Data {
            piece: 5,
            total_size: size,
            data: Bytes::from_static(b"x"),
        },
    );
    let sent = s.drain();
    assert!(matches!(
        sent.violation(a),
        Some(Violation::Metadata(FetchError::OutOfRange {
            piece: 5,
            count: 2
        }))
    ));
    // Its two pieces went to the next peer.
    assert_eq!(sent.metadata_requests(b), vec![0, 1]);

    // b: a short piece 0.
    s.send(
        b,
        &MetadataMessage::Data {
            piece: 0,
            total_size: size,
            data: Bytes::copy_from_slice(&info[..100]),
        },
    );
    let sent = s.drain();
    assert!(matches!(
        sent.violation(b),
        Some(Violation::Metadata(FetchError::WrongLength {
            piece: 0,
            ..
        }))
    ));
    assert_eq!(sent.metadata_requests(c), vec![0, 1]);
    s.send(c, &Scripted::data(&info, 0));
    s.send(c, &Scripted::data(&info, 1));
    s.drain();
    assert_eq!(s.phase(), MetadataPhase::AwaitingStorage);
}

#[test]
fn a_reject_or_silence_sends_the_piece_to_another_peer_and_rests_the_first() {
    let (mut s, _, size) = Scripted::of_pieces(1500);
    let shy = s.join(1, Some(size));
    assert_eq!(s.drain().metadata_requests(shy), vec![0, 1]);
    let other = s.join(2, Some(size));
    s.drain();
    s.send(shy, &MetadataMessage::Reject { piece: 1 });
    let sent = s.drain();
    assert!(sent.disconnected.is_empty(), "a reject is no lie");
    assert_eq!(sent.metadata_requests(other), vec![1]);
    // The other one stays silent past the request timeout (30 s); so does
    // `shy` about piece 0. Both pieces are asked again once a peer is rested.
    s.advance(secs(31));
    let sent = s.drain();
    assert!(sent.metadata_requests(other).is_empty(), "resting");
    assert!(sent.metadata_requests(shy).is_empty(), "resting");
    s.advance(secs(31));
    let sent = s.drain();
    let again: Vec<u32> = [shy, other]
        .iter()
        .flat_map(|&c| sent.metadata_requests(c))
        .collect();
    let mut again = again;
    again.sort_unstable();
    assert_eq!(again, vec![0, 1]);
}

#[test]
fn haves_sent_before_the_metadata_are_kept_and_a_have_beyond_the_torrent_drops_its_sender() {
    let (mut s, info, size) = Scripted::of_pieces(40);
    let seed = s.join(1, Some(size));
    s.session.handle_message(s.now, seed, Message::HaveAll);
    let partial = s.join(2, None);
    let mut bitfield = vec![0u8; 5];
    bitfield[0] = 0b0100_0000; // piece 1
    s.session
        .handle_message(s.now, partial, Message::Bitfield(Bytes::from(bitfield)));
    s.session
        .handle_message(s.now, partial, Message::Have { piece: 7 });
    let liar = s.join(3, None);
    s.session
        .handle_message(s.now, liar, Message::Have { piece: 40 });
    let sent = s.drain();
    assert!(sent.disconnected.is_empty(), "40 pieces might exist yet");
    s.send(seed, &Scripted::data(&info, 0));
    let sent = s.drain();
    assert_eq!(s.phase(), MetadataPhase::AwaitingStorage);
    assert!(
        !sent
            .messages
            .values()
            .flatten()
            .any(|m| matches!(m, Message::Interested | Message::Request { .. })),
        "nothing is asked before storage is open"
    );

    s.session
        .metadata_ready(s.now, s.torrent, Bitfield::new(40))
        .unwrap();
    let sent = s.drain();
    assert_eq!(
        sent.violation(liar),
        Some(&Violation::PieceBeyondMetadata(40))
    );
    for conn in [seed, partial] {
        assert!(
            sent.messages[&conn].contains(&Message::Interested),
            "interested in {conn:?}"
        );
    }
    // The partial peer has pieces 1 and 7 only, and chokes us; the seed
    // unchokes us and gets requests.
    s.session.handle_message(s.now, seed, Message::Unchoke);
    s.session.handle_message(s.now, partial, Message::Unchoke);
    let sent = s.drain();
    let pieces_asked = |conn| -> Vec<u32> {
        sent.messages
            .get(&conn)
            .into_iter()
            .flatten()
            .filter_map(|m| match m {
                Message::Request { piece, .. } => Some(*piece),
                _ => None,
            })
            .collect()
    };
    assert!(!pieces_asked(seed).is_empty());
    let from_partial = pieces_asked(partial);
    assert!(!from_partial.is_empty());
    assert!(
        from_partial.iter().all(|p| [1, 7].contains(p)),
        "{from_partial:?}"
    );
    assert_eq!(
        s.session
            .metadata_ready(s.now, s.torrent, Bitfield::new(40)),
        Err(minibit_core::session::SessionError::Metadata(
            s.torrent,
            minibit_core::torrent::MetadataMisuse::NotAwaitingStorage
        ))
    );
}

#[test]
fn a_seeding_session_serves_exact_metadata_pieces_and_rejects_what_it_cannot_send() {
    let metainfo = big_metainfo(1500);
    let info = metainfo.info_bytes().to_vec();
    let mut session = session(1);
    let now = t0();
    let torrent = session
        .add_metainfo(now, torrent_config(), &metainfo, Bitfield::full(1500))
        .unwrap();
    let conn = session
        .handle_incoming(now, SocketAddr::from(([10, 3, 0, 9], 7000)))
        .unwrap();
    let hs = Handshake::new(metainfo.info_hash(), peer_id(9)).with_extensions();
    session.handle_handshake(now, conn, &hs).unwrap();
    let ext = ExtendedHandshake {
        m: [("ut_metadata".to_owned(), 7)].into(),
        ..ExtendedHandshake::default()
    };
    session.handle_message(now, conn, ext.to_message());
    let sent = |session: &mut Session| -> Vec<Message> {
        std::iter::from_fn(|| session.poll_action())
            .filter_map(|a| match a {
                SessionAction::Torrent {
                    conn: Some(c),
                    action: Action::Send { message, .. },
                    ..
                } if c == conn => Some(message),
                _ => None,
            })
            .collect()
    };
    let handshake = sent(&mut session)
        .into_iter()
        .find_map(|m| match m {
            Message::Extended { id: 0, payload } => ExtendedHandshake::decode(&payload).ok(),
            _ => None,
        })
        .unwrap();
    assert_eq!(handshake.id_for("ut_metadata"), Some(2));
    assert_eq!(handshake.metadata_size, Some(info.len() as u32));

    let ask = |session: &mut Session, piece| {
        session.handle_message(now, conn, MetadataMessage::Request { piece }.to_message(2));
        let replies = sent(session);
        assert_eq!(replies.len(), 1);
        let Message::Extended { id: 7, payload } = &replies[0] else {
            panic!("{replies:?}");
        };
        MetadataMessage::decode(payload).unwrap()
    };
    assert_eq!(ask(&mut session, 1), Scripted::data(&info, 1));
    assert_eq!(ask(&mut session, 0), Scripted::data(&info, 0));
    assert_eq!(ask(&mut session, 2), MetadataMessage::Reject { piece: 2 });
    // Two whole copies per connection, then rejects.
    assert_eq!(ask(&mut session, 0), Scripted::data(&info, 0));
    assert_eq!(ask(&mut session, 1), Scripted::data(&info, 1));
    assert_eq!(ask(&mut session, 1), MetadataMessage::Reject { piece: 1 });
    assert!(session.torrent(torrent).unwrap().info_bytes().is_some());
}

/// How a scripted peer answers metadata requests.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Answer {
    Honest,
    Forge,
    Reject,
    Silent,
    OutOfRange,
    WrongLength,
    /// Says the metadata is 7 bytes longer, and sends pieces of that.
    OtherSize,
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        Just(Answer::Forge),
        Just(Answer::Reject),
        Just(Answer::Silent),
        Just(Answer::OutOfRange),
        Just(Answer::WrongLength),
        Just(Answer::OtherSize),
        Just(Answer::Honest),
    ]
}

fn reply(answer: Answer, info: &[u8], piece: u32) -> Option<MetadataMessage> {
    let size = info.len() as u32;
    match answer {
        Answer::Honest => Some(Scripted::data(info, piece)),
        Answer::Forge => {
            let mut forged = info.to_vec();
            forged[piece as usize * METADATA_PIECE_LEN] ^= 0x55;
            Some(Scripted::data(&forged, piece))
        }
        Answer::Reject => Some(MetadataMessage::Reject { piece }),
        Answer::Silent => None,
        Answer::OutOfRange => Some(MetadataMessage::Data {
            piece: 200,
            total_size: size,
            data: Bytes::from_static(b"x"),
        }),
        Answer::WrongLength => Some(MetadataMessage::Data {
            piece,
            total_size: size,
            data: Bytes::from_static(b"short"),
        }),
        Answer::OtherSize => {
            let mut longer = info.to_vec();
            longer.extend_from_slice(&[0; 7]);
            Some(Scripted::data(&longer, piece))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the other peers do (forge pieces, reject, stay silent,
    /// send pieces out of range or of the wrong length, say another
    /// size), one honest peer
    /// is enough: the fetch ends with the exact info dictionary and the
    /// honest peer is never disconnected, even when forged and honest
    /// pieces were mixed (then nobody can be blamed, and the fetch goes
    /// on one peer at a time).
    #[test]
    fn one_honest_peer_is_enough_whatever_the_others_do(
        others in proptest::collection::vec(answer(), 0..5),
        honest_at in 0usize..5,
    ) {
        let metainfo = big_metainfo(2500);
        let info = metainfo.info_bytes().to_vec();
        let mut answers = others;
        answers.insert(honest_at.min(answers.len()), Answer::Honest);
        let mut s = Scripted::new(metainfo.clone());
        let conns: Vec<(ConnectionId, Answer)> = answers
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let size = info.len() as u32 + if a == Answer::OtherSize { 7 } else { 0 };
                (s.join(i as u8 + 1, Some(size)), a)
            })
            .collect();
        let honest = conns.iter().find(|(_, a)| *a == Answer::Honest).unwrap().0;
        let mut events = Vec::new();
        for _ in 0..200 {
            let sent = s.drain();
            prop_assert!(!sent.disconnected.contains_key(&honest), "{:?}", sent.disconnected);
            events.extend(sent.events.clone());
            if s.phase() == MetadataPhase::AwaitingStorage {
                break;
            }
            let mut answered = false;
            for &(conn, a) in &conns {
                for piece in sent.metadata_requests(conn) {
                    if let Some(message) = reply(a, &info, piece) {
                        s.send(conn, &message);
                        answered = true;
                    }
                }
            }
            if !answered {
                s.advance(secs(31));
            }
        }
        prop_assert_eq!(s.phase(), MetadataPhase::AwaitingStorage);
        let received = Event::MetadataReceived { metainfo: Box::new(metainfo) };
        prop_assert!(events.contains(&received));
    }
}

#[test]
fn a_paused_magnet_keeps_fetched_metadata_and_fetches_again_if_it_had_none() {
    let (mut s, info, size) = Scripted::of_pieces(40);
    let (now, id) = (s.now, s.torrent);
    s.session.pause_torrent(now, id).unwrap();
    s.session.resume_torrent(now, id).unwrap();
    s.drain();
    assert_eq!(s.phase(), MetadataPhase::Fetching);
    let peer = s.join(1, Some(size));
    assert_eq!(s.drain().metadata_requests(peer), vec![0]);
    s.send(peer, &Scripted::data(&info, 0));
    s.drain();
    assert_eq!(s.phase(), MetadataPhase::AwaitingStorage);

    s.session.pause_torrent(now, id).unwrap();
    s.session.resume_torrent(now, id).unwrap();
    s.drain();
    assert_eq!(s.phase(), MetadataPhase::AwaitingStorage);
    s.session
        .metadata_ready(now, id, Bitfield::new(40))
        .unwrap();
    let torrent = s.session.torrent(id).unwrap();
    assert_eq!(torrent.metadata_phase(), MetadataPhase::Ready);
    assert_eq!(torrent.layout().piece_count(), 40);
    assert_eq!(torrent.info_bytes().map(|b| &b[..]), Some(&info[..]));
    assert_eq!(torrent.stats().left, 40 * 16 * 1024);
}

#[test]
fn file_priorities_set_while_fetching_wait_for_the_metadata() {
    use minibit_core::priority::Priority;
    use minibit_core::torrent::Torrent;
    let metainfo = big_metainfo(40);
    let now = t0();
    let mut torrent = Torrent::from_magnet(torrent_config(), metainfo.info_hash(), peer_id(1), now);
    torrent.set_file_priorities(now, &[Priority::Skip]);
    let events: Vec<Event> = std::iter::from_fn(|| torrent.poll_event()).collect();
    assert!(!events.contains(&Event::DownloadCompleted), "{events:?}");
    assert!(!torrent.is_finished());
    assert_eq!(torrent.stats().left, 16 * 1024);
    assert_eq!(torrent.file_priorities(), &[Priority::Skip]);
}

#[test]
fn info_bytes_given_after_adding_are_checked_and_advertised_to_connected_peers() {
    let metainfo = big_metainfo(40);
    let now = t0();
    let mut session = session(1);
    let layout = metainfo.layout().clone();
    let id = session
        .add_torrent(
            now,
            torrent_config(),
            metainfo.info_hash(),
            layout,
            Bitfield::full(40),
        )
        .unwrap();
    let conn = session
        .handle_incoming(now, SocketAddr::from(([10, 3, 0, 9], 7000)))
        .unwrap();
    let hs = Handshake::new(metainfo.info_hash(), peer_id(9)).with_extensions();
    session.handle_handshake(now, conn, &hs).unwrap();
    let handshakes = |session: &mut Session| -> Vec<ExtendedHandshake> {
        std::iter::from_fn(|| session.poll_action())
            .filter_map(|a| match a {
                SessionAction::Torrent {
                    action:
                        Action::Send {
                            message: Message::Extended { id: 0, payload },
                            ..
                        },
                    ..
                } => ExtendedHandshake::decode(&payload).ok(),
                _ => None,
            })
            .collect()
    };
    let first = handshakes(&mut session);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id_for("ut_metadata"), None, "nothing to serve yet");

    let mut wrong = metainfo.info_bytes().to_vec();
    wrong[5] ^= 1;
    assert!(matches!(
        session.set_info_bytes(now, id, Bytes::from(wrong)),
        Err(minibit_core::session::SessionError::Metadata(
            _,
            minibit_core::torrent::MetadataMisuse::WrongInfoHash
        ))
    ));
    session
        .set_info_bytes(now, id, Bytes::copy_from_slice(metainfo.info_bytes()))
        .unwrap();
    let again = handshakes(&mut session);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id_for("ut_metadata"), Some(2));
    assert_eq!(
        again[0].metadata_size,
        Some(metainfo.info_bytes().len() as u32)
    );
}

#[test]
fn a_fetch_sized_by_a_peer_that_stops_answering_starts_over_with_the_size_others_say() {
    let (mut s, info, size) = Scripted::of_pieces(1500);
    let liar = s.join(1, Some(size + 7));
    assert_eq!(s.drain().metadata_requests(liar), vec![0, 1]);
    let honest = s.join(2, Some(size));
    assert!(
        s.drain().metadata_requests(honest).is_empty(),
        "another size than the fetch's"
    );
    s.send(liar, &MetadataMessage::Reject { piece: 0 });
    s.send(liar, &MetadataMessage::Reject { piece: 1 });
    let sent = s.drain();
    assert_eq!(sent.metadata_requests(honest), vec![0, 1]);
    s.send(honest, &Scripted::data(&info, 0));
    s.send(honest, &Scripted::data(&info, 1));
    s.drain();
    assert_eq!(s.phase(), MetadataPhase::AwaitingStorage);
}
