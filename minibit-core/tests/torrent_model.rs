//! Property test: random peer behaviour against a `Torrent`, checked after
//! every step against a simple reference model of what the torrent may do.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytes::Bytes;
use minibit_core::bitfield::Bitfield;
use minibit_core::piece::{BlockRef, PieceIndex};
use minibit_core::torrent::{Action, Direction, Event, PeerKey, TorrentConfig};
use minibit_core::wire::{ExtendedHandshake, Message};
use proptest::prelude::*;
use support::{Content, Harness, secs};

const PIECES: u32 = 6;

fn config(seed: u64) -> TorrentConfig {
    TorrentConfig {
        rng_seed: Some(seed),
        max_peers: 4,
        unchoke_slots: 2,
        min_pipeline: 2,
        max_pipeline: 6,
        max_queued_requests: 3,
        max_reads_in_flight: 2,
        max_strikes: 2,
        allowed_fast_count: 1,
        ..TorrentConfig::default()
    }
}

/// One step of the random scenario. `peer` and `which` pick among the
/// connected peers / pending items modulo their count.
#[derive(Clone, Debug)]
enum Op {
    Connect {
        n: u8,
        fast: bool,
        pieces: u8,
        reqq: Option<u8>,
    },
    Have {
        peer: usize,
        piece: u32,
    },
    Unchoke {
        peer: usize,
    },
    Choke {
        peer: usize,
    },
    Interested {
        peer: usize,
        yes: bool,
    },
    AllowedFast {
        peer: usize,
        piece: u32,
    },
    DeliverRequested {
        peer: usize,
        which: usize,
    },
    DeliverAny {
        peer: usize,
        piece: u32,
        block: u32,
    },
    Request {
        peer: usize,
        piece: u32,
        block: u32,
    },
    Cancel {
        peer: usize,
        piece: u32,
        block: u32,
    },
    Reject {
        peer: usize,
        which: usize,
    },
    Verify {
        which: usize,
        ok: bool,
    },
    ReadDone {
        which: usize,
    },
    Disconnect {
        peer: usize,
    },
    Advance {
        secs: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let peer = 0usize..4;
    prop_oneof![
        2 => (1u8..7, any::<bool>(), any::<u8>(), prop::option::of(1u8..5)).prop_map(|(n, fast, pieces, reqq)| Op::Connect { n, fast, pieces, reqq }),
        2 => (peer.clone(), 0u32..7).prop_map(|(peer, piece)| Op::Have { peer, piece }),
        3 => peer.clone().prop_map(|peer| Op::Unchoke { peer }),
        1 => peer.clone().prop_map(|peer| Op::Choke { peer }),
        2 => (peer.clone(), any::<bool>()).prop_map(|(peer, yes)| Op::Interested { peer, yes }),
        1 => (peer.clone(), 0u32..PIECES).prop_map(|(peer, piece)| Op::AllowedFast { peer, piece }),
        8 => (peer.clone(), any::<usize>()).prop_map(|(peer, which)| Op::DeliverRequested { peer, which }),
        1 => (peer.clone(), 0u32..PIECES, 0u32..2).prop_map(|(peer, piece, block)| Op::DeliverAny { peer, piece, block }),
        3 => (peer.clone(), 0u32..PIECES, 0u32..2).prop_map(|(peer, piece, block)| Op::Request { peer, piece, block }),
        1 => (peer.clone(), 0u32..PIECES, 0u32..2).prop_map(|(peer, piece, block)| Op::Cancel { peer, piece, block }),
        1 => (peer.clone(), any::<usize>()).prop_map(|(peer, which)| Op::Reject { peer, which }),
        3 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(which, ok)| Op::Verify { which, ok }),
        3 => any::<usize>().prop_map(|which| Op::ReadDone { which }),
        1 => peer.clone().prop_map(|peer| Op::Disconnect { peer }),
        2 => (1u64..40).prop_map(|secs| Op::Advance { secs }),
    ]
}

/// What the model knows of one connected peer.
#[derive(Debug, Default)]
struct PeerModel {
    fast: bool,
    /// Its BEP 10 `reqq` (`usize::MAX` when it gave none).
    reqq: usize,
    has: BTreeSet<u32>,
    chokes_us: bool,
    allowed_fast: BTreeSet<u32>,
    /// Our requests to it, with the instant sent.
    outstanding: Vec<(BlockRef, Instant)>,
    /// Every block we ever asked it for.
    ever_requested: BTreeSet<BlockRef>,
    /// We unchoke it.
    unchoked: bool,
    /// Pieces we allowed it while choked (BEP 6 allowed fast).
    allowed_out: BTreeSet<u32>,
    /// Its requests that we may still answer with a block.
    its_requests: BTreeSet<BlockRef>,
}

struct Model {
    h: Harness,
    peers: BTreeMap<PeerKey, PeerModel>,
    reads: Vec<(PeerKey, BlockRef)>,
    verifies: Vec<PieceIndex>,
    written: BTreeSet<BlockRef>,
    verified: BTreeSet<PieceIndex>,
    /// The block delivered in the current step, by whom.
    delivery: Option<(PeerKey, BlockRef)>,
    /// The piece verified ok in the current step.
    passed: Option<PieceIndex>,
    have_before: Bitfield,
    /// Peers whose last Interested / NotInterested from us was Interested.
    interested_in: BTreeSet<PeerKey>,
}

impl Model {
    fn new(have: u8, seed: u64) -> Self {
        let content = Content::new(5 * 32_768 + 10_000, 32_768, seed);
        let set: Vec<u32> = (0..PIECES).filter(|i| have & (1 << i) != 0).collect();
        let h = Harness::new(content, &set, config(seed));
        let verified = set
            .iter()
            .map(|&i| h.content.layout.piece_index(i).unwrap())
            .collect();
        let have_before = h.torrent.have().clone();
        Self {
            h,
            peers: BTreeMap::new(),
            reads: Vec::new(),
            verifies: Vec::new(),
            written: BTreeSet::new(),
            verified,
            delivery: None,
            passed: None,
            have_before,
            interested_in: BTreeSet::new(),
        }
    }

    fn peer_key(&self, index: usize) -> Option<PeerKey> {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        (!keys.is_empty()).then(|| keys[index % keys.len()])
    }

    fn block(&self, piece: u32, index: u32) -> Option<BlockRef> {
        let piece = self.h.content.layout.piece_index(piece).ok()?;
        self.h.content.layout.block(piece, index)
    }

    fn send(&mut self, key: PeerKey, message: Message) {
        self.h.recv(key, message);
    }

    fn apply(&mut self, op: &Op) {
        self.delivery = None;
        self.passed = None;
        match *op {
            Op::Connect {
                n,
                fast,
                pieces,
                reqq,
            } => self.connect(n, fast, pieces, reqq),
            Op::Verify { which, ok } => self.verify(which, ok),
            Op::ReadDone { which } => {
                if self.reads.is_empty() {
                    return;
                }
                let (key, block) = self.reads.remove(which % self.reads.len());
                let data = self.h.content.block(block);
                self.h
                    .torrent
                    .handle_block_read(self.h.now, key, block, data);
            }
            Op::Disconnect { peer } => {
                let Some(key) = self.peer_key(peer) else {
                    return;
                };
                self.forget(key);
            }
            Op::Advance { secs: by } => {
                self.h.now += secs(by);
                let now = self.h.now;
                let timeout = config(0).request_timeout;
                for model in self.peers.values_mut() {
                    model.outstanding.retain(|&(_, sent)| sent + timeout > now);
                }
                self.h.torrent.handle_timeout(now);
            }
            _ => self.apply_peer_message(op),
        }
    }

    /// Peer `n` connects; with `reqq` it speaks BEP 10 and sends that limit first.
    fn connect(&mut self, n: u8, fast: bool, pieces: u8, reqq: Option<u8>) {
        let mut theirs = support::handshake(support::peer_id(n), fast);
        if reqq.is_some() {
            theirs = theirs.with_extensions();
        }
        let Ok(key) = self.h.torrent.handle_handshake(
            self.h.now,
            support::addr(n),
            Direction::Inbound,
            &theirs,
        ) else {
            return;
        };
        let has: BTreeSet<u32> = (0..PIECES).filter(|i| pieces & (1 << i) != 0).collect();
        self.peers.insert(
            key,
            PeerModel {
                fast,
                has: has.clone(),
                chokes_us: true,
                reqq: reqq.map_or(usize::MAX, usize::from),
                ..PeerModel::default()
            },
        );
        if let Some(reqq) = reqq {
            let limits = ExtendedHandshake {
                reqq: Some(u32::from(reqq)),
                ..ExtendedHandshake::default()
            };
            self.send(key, limits.to_message());
        }
        let opening = match (fast, has.len()) {
            (true, 0) => Message::HaveNone,
            (true, n) if n == PIECES as usize => Message::HaveAll,
            _ => {
                let set: Vec<u32> = has.into_iter().collect();
                support::bitfield_message(&self.h.content.layout, &set)
            }
        };
        self.send(key, opening);
    }

    /// Ops that make a connected peer send a message.
    #[allow(clippy::too_many_lines)] // one arm per message: a flat table reads best
    fn apply_peer_message(&mut self, op: &Op) {
        match *op {
            Op::Have { peer, piece } => {
                let Some(key) = self.peer_key(peer) else {
                    return;
                };
                self.peers.get_mut(&key).unwrap().has.insert(piece);
                self.send(key, Message::Have { piece });
            }
            Op::Unchoke { peer } => {
                let Some(key) = self.peer_key(peer) else {
                    return;
                };
                self.peers.get_mut(&key).unwrap().chokes_us = false;
                self.send(key, Message::Unchoke);
            }
            Op::Choke { peer } => {
                let Some(key) = self.peer_key(peer) else {
                    return;
                };
                let model = self.peers.get_mut(&key).unwrap();
                model.chokes_us = true;
                if !model.fast {
                    model.outstanding.clear();
                }
                self.send(key, Message::Choke);
            }
            Op::Interested { peer, yes } => {
                let Some(key) = self.peer_key(peer) else {
                    return;
                };
                let message = if yes {
                    Message::Interested
                } else {
                    Message::NotInterested
                };
                self.send(key, message);
            }
            Op::AllowedFast { peer, piece } => {
                let Some(key) = self.peer_key(peer) else {
                    return;
                };
                let model = self.peers.get_mut(&key).unwrap();
                if !model.fast {
                    return;
                }
                model.allowed_fast.insert(piece);
                self.send(key, Message::AllowedFast { piece });
            }
            Op::DeliverRequested { peer, which } => {
                let Some(key) = self.peer_key(peer) else {
                    return;
                };
                let model = self.peers.get_mut(&key).unwrap();
                if model.outstanding.is_empty() {
                    return;
                }
                let (block, _) = model.outstanding.remove(which % model.outstanding.len());
                self.deliver(key, block);
            }
            Op::DeliverAny { peer, piece, block } => {
                let (Some(key), Some(block)) = (self.peer_key(peer), self.block(piece, block))
                else {
                    return;
                };
                let model = self.peers.get_mut(&key).unwrap();
                model.outstanding.retain(|(b, _)| *b != block);
                self.deliver(key, block);
            }
            Op::Request { peer, piece, block } => {
                let (Some(key), Some(block)) = (self.peer_key(peer), self.block(piece, block))
                else {
                    return;
                };
                let ours = self.h.torrent.have().has(block.piece);
                let model = self.peers.get_mut(&key).unwrap();
                let allowed = model.allowed_out.contains(&block.piece.get());
                if (model.unchoked || allowed) && ours {
                    model.its_requests.insert(block);
                }
                self.send(key, support::request(block));
            }
            Op::Cancel { peer, piece, block } => {
                let (Some(key), Some(block)) = (self.peer_key(peer), self.block(piece, block))
                else {
                    return;
                };
                self.peers
                    .get_mut(&key)
                    .unwrap()
                    .its_requests
                    .remove(&block);
                self.send(
                    key,
                    Message::Cancel {
                        piece: block.piece.get(),
                        offset: block.offset,
                        length: block.length,
                    },
                );
            }
            Op::Reject { peer, which } => {
                let Some(key) = self.peer_key(peer) else {
                    return;
                };
                let model = self.peers.get_mut(&key).unwrap();
                if !model.fast || model.outstanding.is_empty() {
                    return;
                }
                let (block, _) = model.outstanding.remove(which % model.outstanding.len());
                self.send(
                    key,
                    Message::Reject {
                        piece: block.piece.get(),
                        offset: block.offset,
                        length: block.length,
                    },
                );
            }
            _ => {}
        }
    }

    fn verify(&mut self, which: usize, ok: bool) {
        if self.verifies.is_empty() {
            return;
        }
        let piece = self.verifies.remove(which % self.verifies.len());
        if ok {
            self.verified.insert(piece);
            self.passed = Some(piece);
        } else {
            self.written.retain(|b| b.piece != piece);
        }
        self.h.torrent.handle_piece_verified(self.h.now, piece, ok);
    }

    fn deliver(&mut self, key: PeerKey, block: BlockRef) {
        self.delivery = Some((key, block));
        let data = self.h.content.block(block);
        self.send(
            key,
            Message::Piece {
                piece: block.piece.get(),
                offset: block.offset,
                data,
            },
        );
    }

    /// The driver closed `key`: tell the torrent, drop its pending reads.
    fn forget(&mut self, key: PeerKey) {
        self.peers.remove(&key);
        self.interested_in.remove(&key);
        self.reads.retain(|(k, _)| *k != key);
        self.h.torrent.handle_peer_disconnected(self.h.now, key);
    }

    /// Drains the torrent's outputs, checking each against the model.
    fn check_outputs(&mut self) -> Result<(), TestCaseError> {
        loop {
            let actions = self.h.actions();
            if actions.is_empty() {
                break;
            }
            for action in actions {
                self.check_action(action)?;
            }
        }
        for event in self.h.events() {
            match event {
                Event::PieceCompleted { piece } => {
                    prop_assert_eq!(Some(piece), self.passed, "completed before verifying ok");
                }
                Event::DownloadCompleted => {
                    prop_assert_eq!(self.verified.len(), PIECES as usize);
                }
                _ => {}
            }
        }
        let have = self.h.torrent.have().clone();
        for piece in self.have_before.iter_set() {
            prop_assert!(have.has(piece), "have shrank");
        }
        let have_set: BTreeSet<PieceIndex> = have.iter_set().collect();
        prop_assert_eq!(&have_set, &self.verified, "have = verified pieces");
        let layout = &self.h.content.layout;
        for (key, model) in &self.peers {
            let lacked = model
                .has
                .iter()
                .any(|&p| !have.has(layout.piece_index(p).unwrap()));
            prop_assert_eq!(
                self.interested_in.contains(key),
                lacked,
                "interested in {:?} exactly while it has a piece we lack",
                key
            );
        }
        let stats = self.h.torrent.stats();
        prop_assert_eq!(stats.pieces_have as usize, self.verified.len());
        prop_assert_eq!(stats.peers, self.peers.len());
        self.have_before = have;
        Ok(())
    }

    fn check_action(&mut self, action: Action) -> Result<(), TestCaseError> {
        match action {
            Action::Send { peer, message } => self.check_send(peer, message)?,
            Action::ReadBlock { peer, block } => {
                let model = &self.peers[&peer];
                prop_assert!(
                    model.unchoked || model.allowed_out.contains(&block.piece.get()),
                    "read for a choked peer"
                );
                prop_assert!(
                    model.its_requests.contains(&block),
                    "read for an unrequested block"
                );
                self.reads.push((peer, block));
            }
            Action::WriteBlock { block, data } => self.check_write(block, data)?,
            Action::VerifyPiece { piece } => {
                let layout = &self.h.content.layout;
                prop_assert!(
                    layout.blocks(piece).all(|b| self.written.contains(&b)),
                    "verify before every block was written"
                );
                self.verifies.push(piece);
            }
            Action::Disconnect { peer, .. } => {
                if self.peers.contains_key(&peer) {
                    self.forget(peer);
                }
            }
            Action::Connect { .. } | Action::Announce { .. } => {}
            other => return Err(TestCaseError::fail(format!("unmodelled action {other:?}"))),
        }
        Ok(())
    }

    /// Checks one message we send against the model and updates it.
    #[allow(clippy::too_many_lines)] // one arm per message: a flat table reads best
    fn check_send(&mut self, peer: PeerKey, message: Message) -> Result<(), TestCaseError> {
        let max_pipeline = config(0).max_pipeline;
        let Some(model) = self.peers.get_mut(&peer) else {
            return Err(TestCaseError::fail("send to an unknown peer"));
        };
        match message {
            Message::Request {
                piece,
                offset,
                length,
            } => {
                let block = self
                    .h
                    .content
                    .layout
                    .block_ref(piece, offset, length)
                    .unwrap();
                prop_assert!(
                    model.has.contains(&piece),
                    "requested a piece the peer lacks"
                );
                prop_assert!(
                    !model.chokes_us || model.allowed_fast.contains(&piece),
                    "requested from a peer that chokes us"
                );
                prop_assert!(
                    !model.outstanding.iter().any(|(b, _)| *b == block),
                    "same block requested twice from one peer"
                );
                prop_assert!(
                    !self.h.torrent.have().has(block.piece),
                    "requested a piece we have"
                );
                model.outstanding.push((block, self.h.now));
                model.ever_requested.insert(block);
                prop_assert!(
                    model.outstanding.len() <= max_pipeline.min(model.reqq),
                    "pipeline over the cap (or the peer's reqq)"
                );
            }
            Message::Cancel {
                piece,
                offset,
                length,
            } => {
                let block = self
                    .h
                    .content
                    .layout
                    .block_ref(piece, offset, length)
                    .unwrap();
                model.outstanding.retain(|(b, _)| *b != block);
            }
            Message::Choke => {
                // Requests for allowed-fast pieces may survive a choke (BEP 6).
                model.unchoked = false;
                let allowed = &model.allowed_out;
                model
                    .its_requests
                    .retain(|b| allowed.contains(&b.piece.get()));
            }
            Message::Unchoke => model.unchoked = true,
            Message::Interested => {
                prop_assert!(self.interested_in.insert(peer), "Interested sent twice");
            }
            Message::NotInterested => {
                prop_assert!(
                    self.interested_in.remove(&peer),
                    "NotInterested while not interested"
                );
            }
            Message::Piece {
                piece,
                offset,
                data,
            } => {
                let length = data.len() as u32;
                let block = self
                    .h
                    .content
                    .layout
                    .block_ref(piece, offset, length)
                    .unwrap();
                prop_assert!(
                    model.unchoked || model.allowed_out.contains(&piece),
                    "served a choked peer"
                );
                prop_assert!(
                    model.its_requests.remove(&block),
                    "served an unrequested block"
                );
                prop_assert_eq!(data, self.h.content.block(block));
            }
            Message::Reject {
                piece,
                offset,
                length,
            } => {
                prop_assert!(model.fast, "reject without BEP 6");
                let block = self
                    .h
                    .content
                    .layout
                    .block_ref(piece, offset, length)
                    .unwrap();
                model.its_requests.remove(&block);
            }
            Message::Have { piece } => {
                let piece = self.h.content.layout.piece_index(piece).unwrap();
                prop_assert!(
                    self.verified.contains(&piece),
                    "have for an unverified piece"
                );
            }
            Message::AllowedFast { piece } => {
                prop_assert!(model.fast, "allowed fast without BEP 6");
                model.allowed_out.insert(piece);
            }
            _ => {}
        }
        Ok(())
    }

    fn check_write(&mut self, block: BlockRef, data: Bytes) -> Result<(), TestCaseError> {
        let Some((from, delivered)) = self.delivery else {
            return Err(TestCaseError::fail("write without a delivery"));
        };
        prop_assert_eq!(block, delivered);
        prop_assert!(
            self.peers[&from].ever_requested.contains(&block),
            "wrote a block never requested from its sender"
        );
        prop_assert!(self.written.insert(block), "block written twice");
        prop_assert_eq!(data, self.h.content.block(block));
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn torrent_respects_the_model(
        seed in any::<u64>(),
        have in any::<u8>(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut model = Model::new(have & 0b11_1111, seed);
        model.check_outputs()?;
        for op in &ops {
            model.apply(op);
            model.check_outputs()?;
        }
    }
}

/// Any message at all, with arbitrary numbers and payloads.
fn any_message() -> impl Strategy<Value = Message> {
    let index = prop_oneof![0u32..8, any::<u32>()];
    let length = prop_oneof![Just(16_384u32), 0u32..20_000, any::<u32>()];
    let bytes = prop::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from);
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        index.clone().prop_map(|piece| Message::Have { piece }),
        index.clone().prop_map(|piece| Message::Suggest { piece }),
        index
            .clone()
            .prop_map(|piece| Message::AllowedFast { piece }),
        bytes.clone().prop_map(Message::Bitfield),
        any::<u16>().prop_map(Message::Port),
        (any::<u8>(), bytes.clone()).prop_map(|(id, payload)| Message::Extended { id, payload }),
        (index.clone(), length.clone(), length.clone()).prop_map(|(piece, offset, length)| {
            Message::Request {
                piece,
                offset,
                length,
            }
        }),
        (index.clone(), length.clone(), length.clone()).prop_map(|(piece, offset, length)| {
            Message::Cancel {
                piece,
                offset,
                length,
            }
        }),
        (index.clone(), length.clone(), length.clone()).prop_map(|(piece, offset, length)| {
            Message::Reject {
                piece,
                offset,
                length,
            }
        }),
        (index, length, 0usize..20_000).prop_map(|(piece, offset, len)| Message::Piece {
            piece,
            offset,
            data: Bytes::from(vec![7u8; len]),
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever peers send, the torrent never panics, and every action it
    /// takes refers to a peer it accepted.
    #[test]
    fn arbitrary_peer_input_never_panics(
        seed in any::<u64>(),
        have in any::<u8>(),
        steps in prop::collection::vec(
            (0u8..4, any::<bool>(), any_message(), 0u64..30),
            1..80,
        ),
    ) {
        let mut model = Model::new(have & 0b11_1111, seed);
        let mut keys: BTreeMap<u8, PeerKey> = BTreeMap::new();
        for (n, fast, message, wait) in steps {
            let key = match keys.get(&n) {
                Some(&key) => key,
                None => match model.h.try_connect(n + 1, fast) {
                    Ok(key) => {
                        keys.insert(n, key);
                        key
                    }
                    Err(_) => continue,
                },
            };
            model.h.recv(key, message);
            if wait > 20 {
                model.h.advance(secs(wait));
            }
            for action in model.h.actions() {
                let peer = match action {
                    Action::Send { peer, .. }
                    | Action::ReadBlock { peer, .. }
                    | Action::Disconnect { peer, .. } => peer,
                    Action::VerifyPiece { piece } => {
                        model.h.torrent.handle_piece_verified(model.h.now, piece, seed % 2 == 0);
                        continue;
                    }
                    _ => continue,
                };
                prop_assert!(keys.values().any(|&k| k == peer));
                if matches!(action, Action::Disconnect { .. }) {
                    model.h.torrent.handle_peer_disconnected(model.h.now, peer);
                    keys.retain(|_, &mut k| k != peer);
                }
            }
        }
    }
}
