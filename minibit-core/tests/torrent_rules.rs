//! Protocol rules of the `Torrent` state machine, one peer played by hand.

mod support;

use std::time::Duration;

use bytes::Bytes;
use minibit_core::metainfo::InfoHash;
use minibit_core::piece::{BLOCK_SIZE, BlockRef};
use minibit_core::torrent::{
    Action, AnnounceEvent, Direction, DisconnectReason, Event, HandshakeRejection, PeerKey,
    TorrentConfig,
};
use minibit_core::wire::{ExtendedHandshake, Message};
use support::{
    Content, Harness, addr, bitfield_message, disconnect_reason, handshake, peer_id, request, secs,
};

/// 4 pieces of 2 blocks, the last one shorter (1 block of 20000 - 16384... no: 20000 bytes = 2 blocks).
fn content() -> Content {
    Content::new(3 * 32_768 + 20_000, 32_768, 7)
}

fn leecher() -> Harness {
    Harness::new(content(), &[], TorrentConfig::default())
}

/// A leecher with its picker's random tie-breaks seeded by `rng_seed`,
/// connected to a seed (peer 1, `HaveAll`, still choking us).
fn leecher_of_a_seed(rng_seed: u64) -> (Harness, minibit_core::torrent::PeerKey) {
    let config = TorrentConfig {
        rng_seed: Some(rng_seed),
        ..TorrentConfig::default()
    };
    let mut h = Harness::new(content(), &[], config);
    let peer = h.connect(1, true);
    h.recv(peer, Message::HaveAll);
    (h, peer)
}

fn seed() -> Harness {
    Harness::new(content(), &[0, 1, 2, 3], TorrentConfig::default())
}

fn violation(actions: &[Action], peer: minibit_core::torrent::PeerKey) -> bool {
    matches!(
        disconnect_reason(actions, peer),
        Some(DisconnectReason::ProtocolViolation(_))
    )
}

#[test]
fn handshakes_are_refused_for_each_reason() {
    let mut h = Harness::new(
        content(),
        &[],
        TorrentConfig {
            max_peers: 2,
            ..TorrentConfig::default()
        },
    );
    let mut wrong = handshake(peer_id(1), true);
    wrong.info_hash = InfoHash([1; 20]);
    assert_eq!(
        h.torrent
            .handle_handshake(h.now, addr(1), Direction::Inbound, &wrong),
        Err(HandshakeRejection::WrongInfoHash(InfoHash([1; 20])))
    );
    assert_eq!(
        h.torrent.handle_handshake(
            h.now,
            addr(1),
            Direction::Inbound,
            &handshake(peer_id(0), true)
        ),
        Err(HandshakeRejection::OwnPeerId)
    );
    h.connect(1, true);
    assert_eq!(
        h.try_connect(1, true),
        Err(HandshakeRejection::DuplicatePeer)
    );
    h.connect(2, false);
    assert_eq!(
        h.try_connect(3, true),
        Err(HandshakeRejection::TooManyPeers)
    );
    assert_eq!(h.torrent.stats().peers, 2);
}

#[test]
fn opening_message_depends_on_pieces_and_fast_extension() {
    let mut s = seed();
    let fast = s.connect(1, true);
    let plain = s.connect(2, false);
    let actions = s.actions();
    assert_eq!(Harness::sent_to(&actions, fast), [Message::HaveAll]);
    assert_eq!(
        Harness::sent_to(&actions, plain),
        [bitfield_message(&s.content.layout, &[0, 1, 2, 3])]
    );

    let mut l = leecher();
    let fast = l.connect(1, true);
    let plain = l.connect(2, false);
    let actions = l.actions();
    assert_eq!(Harness::sent_to(&actions, fast), [Message::HaveNone]);
    assert_eq!(Harness::sent_to(&actions, plain), []);

    let mut partial = Harness::new(content(), &[2], TorrentConfig::default());
    let peer = partial.connect(1, true);
    let actions = partial.actions();
    assert_eq!(
        Harness::sent_to(&actions, peer),
        [bitfield_message(&partial.content.layout, &[2])]
    );
    assert!(partial.torrent.handshake().supports_fast());
    assert!(partial.torrent.handshake().supports_extensions());
}

#[test]
fn extended_handshake_is_exchanged_and_reqq_caps_the_pipeline() {
    let mut h = Harness::new(
        Content::new(8 * u64::from(BLOCK_SIZE), u64::from(BLOCK_SIZE), 2),
        &[],
        TorrentConfig::default(),
    );
    let theirs = handshake(peer_id(1), true).with_extensions();
    let peer = h.connect_with(1, &theirs);
    let sent = Harness::sent_to(&h.actions(), peer);
    assert_eq!(sent[0], Message::HaveNone, "bitfield-class message first");
    let Message::Extended { id: 0, payload } = &sent[1] else {
        panic!("no extended handshake: {sent:?}");
    };
    let ours = ExtendedHandshake::decode(payload).unwrap();
    assert_eq!(ours.reqq, Some(256));
    assert!(ours.v.unwrap().starts_with("minibit"));

    let limits = ExtendedHandshake {
        reqq: Some(2),
        ..ExtendedHandshake::default()
    };
    h.recv(peer, limits.to_message());
    h.recv(peer, Message::HaveAll);
    h.recv(peer, Message::Unchoke);
    assert_eq!(
        h.take_requests(peer).len(),
        2,
        "reqq 2 caps the default pipeline of 4"
    );
    h.recv(
        peer,
        Message::Extended {
            id: 3,
            payload: Bytes::from_static(b"x"),
        },
    );
    assert_eq!(h.actions(), [], "unknown extension ids are ignored");
    h.recv(
        peer,
        Message::Extended {
            id: 0,
            payload: Bytes::from_static(b"i1e"),
        },
    );
    assert!(
        violation(&h.actions(), peer),
        "extended handshake must be a dictionary"
    );

    let plain = h.connect(2, true);
    assert_eq!(Harness::sent_to(&h.actions(), plain), [Message::HaveNone]);
    h.recv(plain, limits.to_message());
    assert!(violation(&h.actions(), plain), "BEP 10 not negotiated");
}

#[test]
fn malformed_or_misplaced_bitfields_and_haves_disconnect() {
    let cases: Vec<(bool, Vec<Message>)> = vec![
        (
            false,
            vec![Message::Bitfield(Bytes::from_static(&[0xF0, 0]))],
        ),
        (false, vec![Message::Bitfield(Bytes::from_static(&[0xF8]))]),
        (
            false,
            vec![
                Message::Have { piece: 1 },
                Message::Bitfield(Bytes::from_static(&[0x80, 0])),
            ],
        ),
        (
            false,
            vec![
                Message::Bitfield(Bytes::from_static(&[0x80])),
                Message::Bitfield(Bytes::from_static(&[0x88])),
            ],
        ),
        (false, vec![Message::Have { piece: 4 }]),
        (false, vec![Message::HaveAll]),
        (false, vec![Message::AllowedFast { piece: 0 }]),
        (
            false,
            vec![Message::Reject {
                piece: 0,
                offset: 0,
                length: BLOCK_SIZE,
            }],
        ),
        (true, vec![Message::Suggest { piece: 9 }]),
    ];
    for (fast, messages) in cases {
        let mut h = leecher();
        let peer = h.connect(1, fast);
        h.actions();
        for message in messages.clone() {
            h.recv(peer, message);
        }
        let actions = h.actions();
        assert!(violation(&actions, peer), "{messages:?} (fast {fast})");
        // Nothing more is done for a peer being disconnected.
        h.recv(peer, Message::Have { piece: 0 });
        assert_eq!(h.actions(), []);
    }
}

#[test]
fn a_later_bitfield_replaces_the_peers_pieces() {
    // aria2 1.36 sends have-none, then a bitfield seconds later.
    let mut h = leecher();
    let layout = h.content.layout.clone();
    let peer = h.connect(1, true);
    h.actions();
    h.recv(peer, Message::HaveNone);
    h.recv(peer, Message::Have { piece: 0 });
    assert_eq!(Harness::sent_to(&h.actions(), peer), [Message::Interested]);
    h.recv(peer, bitfield_message(&layout, &[]));
    let actions = h.actions();
    assert!(!violation(&actions, peer), "{actions:?}");
    assert_eq!(
        Harness::sent_to(&actions, peer),
        [Message::NotInterested],
        "piece 0 is no longer available"
    );
    h.recv(peer, bitfield_message(&layout, &[3]));
    assert_eq!(Harness::sent_to(&h.actions(), peer), [Message::Interested]);
    h.recv(peer, Message::Unchoke);
    let requested = h.take_requests(peer);
    assert!(!requested.is_empty());
    assert!(
        requested.iter().all(|b| b.piece.get() == 3),
        "only piece 3 is requested: {requested:?}"
    );
    h.recv(peer, Message::HaveAll);
    h.recv(peer, Message::HaveNone);
    let actions = h.actions();
    assert!(!violation(&actions, peer), "{actions:?}");
    // A replacing bitfield of the wrong size still disconnects.
    h.recv(peer, Message::Bitfield(Bytes::from_static(&[0x10, 0])));
    assert!(violation(&h.actions(), peer));
}

#[test]
fn interest_follows_the_bitfields() {
    let mut h = Harness::new(content(), &[0], TorrentConfig::default());
    let a = h.connect(1, true);
    let b = h.connect(2, true);
    h.actions();
    h.recv(a, bitfield_message(&h.content.layout.clone(), &[0]));
    assert_eq!(
        Harness::sent_to(&h.actions(), a),
        [],
        "a has nothing we lack"
    );
    h.recv(a, Message::Have { piece: 0 });
    assert_eq!(h.actions(), [], "a repeated have changes nothing");
    h.recv(a, Message::Have { piece: 1 });
    assert_eq!(Harness::sent_to(&h.actions(), a), [Message::Interested]);
    h.recv(b, bitfield_message(&h.content.layout.clone(), &[1, 2]));
    assert_eq!(Harness::sent_to(&h.actions(), b), [Message::Interested]);

    // Piece 1 arrives from a: a has nothing else we lack, b still has piece 2.
    h.recv(a, Message::Unchoke);
    let requested = h.take_requests(a);
    assert_eq!(requested.len(), 2, "both blocks of piece 1");
    for block in requested {
        h.deliver(a, block);
    }
    let actions = h.actions();
    let piece = h.content.layout.piece_index(1).unwrap();
    assert!(actions.contains(&Action::VerifyPiece { piece }));
    h.torrent.handle_piece_verified(h.now, piece, true);
    let actions = h.actions();
    assert!(Harness::sent_to(&actions, a).contains(&Message::NotInterested));
    assert!(Harness::sent_to(&actions, a).contains(&Message::Have { piece: 1 }));
    assert_eq!(
        Harness::sent_to(&actions, b),
        [Message::Have { piece: 1 }],
        "b still has piece 2 for us: still interested"
    );
    assert_eq!(h.events().last(), Some(&Event::PieceCompleted { piece }));
}

#[test]
fn requests_are_served_only_when_unchoked_and_valid() {
    let mut h = seed();
    let fast = h.connect(1, true);
    let plain = h.connect(2, false);
    h.actions();
    let block = h.content.block_ref(0, 0);
    // Choked: BEP 6 peers get a reject, others are ignored.
    h.recv(fast, request(block));
    h.recv(plain, request(block));
    let actions = h.actions();
    assert_eq!(
        Harness::sent_to(&actions, fast),
        [Message::Reject {
            piece: 0,
            offset: 0,
            length: BLOCK_SIZE
        }]
    );
    assert_eq!(Harness::sent_to(&actions, plain), []);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::ReadBlock { .. }))
    );

    // Interested peers are unchoked (free slots), then served. (Before
    // the unchoke, the spreading seed suggests the pieces it keeps for
    // the peer; piece 0 is not one of them but nobody else's either.)
    h.recv(fast, Message::Interested);
    let sent = Harness::sent_to(&h.actions(), fast);
    assert_eq!(sent.last(), Some(&Message::Unchoke), "{sent:?}");
    h.recv(fast, request(block));
    assert_eq!(h.actions(), [Action::ReadBlock { peer: fast, block }]);
    h.torrent
        .handle_block_read(h.now, fast, block, h.content.block(block));
    assert_eq!(
        Harness::sent_to(&h.actions(), fast),
        [Message::Piece {
            piece: 0,
            offset: 0,
            data: h.content.block(block)
        }]
    );
    assert_eq!(h.torrent.stats().uploaded, u64::from(BLOCK_SIZE));

    // Cancel before the read completes: nothing is sent but the reject (BEP 6).
    h.recv(fast, request(block));
    h.actions();
    h.recv(
        fast,
        Message::Cancel {
            piece: 0,
            offset: 0,
            length: BLOCK_SIZE,
        },
    );
    h.torrent
        .handle_block_read(h.now, fast, block, h.content.block(block));
    assert_eq!(
        Harness::sent_to(&h.actions(), fast),
        [Message::Reject {
            piece: 0,
            offset: 0,
            length: BLOCK_SIZE
        }]
    );
    assert_eq!(h.torrent.stats().uploaded, u64::from(BLOCK_SIZE));

    for bad in [
        Message::Request {
            piece: 0,
            offset: 0,
            length: BLOCK_SIZE + 1,
        },
        Message::Request {
            piece: 3,
            offset: 16_384,
            length: 4000,
        },
        Message::Request {
            piece: 4,
            offset: 0,
            length: 1,
        },
    ] {
        let mut h = seed();
        let peer = h.connect(1, true);
        h.recv(peer, Message::Interested);
        h.actions();
        h.recv(peer, bad.clone());
        assert!(violation(&h.actions(), peer), "{bad:?}");
    }
    let mut partial = Harness::new(content(), &[1], TorrentConfig::default());
    let peer = partial.connect(1, true);
    partial.recv(peer, Message::Interested);
    partial.actions();
    partial.recv(peer, request(partial.content.block_ref(0, 0)));
    assert!(violation(&partial.actions(), peer), "piece we lack");
}

#[test]
fn queue_cap_rejects_and_choke_drops_the_queue() {
    let mut h = Harness::new(
        content(),
        &[0, 1, 2, 3],
        TorrentConfig {
            max_queued_requests: 3,
            max_reads_in_flight: 1,
            unchoke_slots: 1,
            ..TorrentConfig::default()
        },
    );
    let peer = h.connect(1, true);
    h.recv(peer, Message::Interested);
    h.actions();
    let blocks: Vec<_> = (0..4).map(|p| h.content.block_ref(p, 0)).collect();
    for &block in &blocks {
        h.recv(peer, request(block));
    }
    let actions = h.actions();
    assert_eq!(
        actions
            .iter()
            .filter(|a| matches!(a, Action::ReadBlock { .. }))
            .count(),
        1,
        "one read in flight"
    );
    assert_eq!(
        Harness::sent_to(&actions, peer),
        [Message::Reject {
            piece: 3,
            offset: 0,
            length: blocks[3].length
        }],
        "the fourth request is past the cap"
    );
    // A second interested peer takes the only slot from the first when the
    // first stops being interested.
    let other = h.connect(2, true);
    h.recv(other, Message::Interested);
    h.recv(peer, Message::NotInterested);
    h.advance(secs(10));
    let actions = h.actions();
    let to_peer = Harness::sent_to(&actions, peer);
    assert_eq!(to_peer[0], Message::Choke);
    assert_eq!(to_peer.len(), 4, "choke, then a reject per pending request");
    assert!(Harness::sent_to(&actions, other).contains(&Message::Unchoke));
    h.torrent
        .handle_block_read(h.now, peer, blocks[0], h.content.block(blocks[0]));
    assert_eq!(h.actions(), [], "a dropped request is not served");
}

#[test]
fn unrequested_blocks_and_bad_ranges_disconnect_but_late_answers_are_kept() {
    let mut h = leecher();
    // A peer without BEP 6: a choke silently drops our requests, yet their
    // blocks may still be on the wire.
    let peer = h.connect(1, false);
    h.recv(
        peer,
        bitfield_message(&h.content.layout.clone(), &[0, 1, 2, 3]),
    );
    h.recv(peer, Message::Unchoke);
    let requested = h.take_requests(peer);
    assert!(!requested.is_empty());
    h.recv(peer, Message::Choke);
    h.actions();
    h.deliver(peer, requested[0]);
    assert!(
        h.actions()
            .iter()
            .any(|a| matches!(a, Action::WriteBlock { block, .. } if *block == requested[0])),
        "a late answer to a request dropped by the choke is kept"
    );
    assert_eq!(h.torrent.wasted(), 0);
    // A block we never asked for: the peer is dropped, nothing is written.
    let never = (0..4)
        .flat_map(|piece| (0..2).map(move |block| (piece, block)))
        .map(|(piece, block)| h.content.block_ref(piece, block))
        .find(|block| !requested.contains(block))
        .unwrap();
    h.deliver(peer, never);
    let actions = h.actions();
    assert!(violation(&actions, peer));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::WriteBlock { .. }))
    );
    assert_eq!(h.torrent.wasted(), u64::from(never.length));
    // A block outside its piece is a violation too.
    let other = h.connect(2, true);
    h.recv(other, Message::HaveAll);
    h.recv(
        other,
        Message::Piece {
            piece: 3,
            offset: 16_384,
            data: Bytes::from(vec![0; 16_384]),
        },
    );
    assert!(violation(&h.actions(), other));
}

#[test]
fn hash_failures_strike_and_ban_the_sender() {
    let mut h = Harness::new(
        content(),
        &[],
        TorrentConfig {
            max_strikes: 2,
            ..TorrentConfig::default()
        },
    );
    let peer = h.connect(1, true);
    h.recv(peer, bitfield_message(&h.content.layout.clone(), &[0]));
    h.recv(peer, Message::Unchoke);
    let piece = h.content.layout.piece_index(0).unwrap();
    for round in 0..2 {
        let requested = h.take_requests(peer);
        assert_eq!(requested.len(), 2, "round {round}: piece 0 (re)requested");
        for block in requested {
            h.deliver(peer, block);
        }
        assert!(h.actions().contains(&Action::VerifyPiece { piece }));
        h.torrent.handle_piece_verified(h.now, piece, false);
        assert!(!h.torrent.have().has(piece));
        assert_eq!(h.torrent.stats().downloaded, 0);
    }
    let events = h.events();
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == Event::PieceFailed { piece })
            .count(),
        2
    );
    assert!(events.contains(&Event::PeerBanned { ip: addr(1).ip() }));
    assert_eq!(
        disconnect_reason(&h.actions(), peer),
        Some(DisconnectReason::Banned)
    );
    h.torrent.handle_peer_disconnected(h.now, peer);
    assert_eq!(h.try_connect(1, true), Err(HandshakeRejection::Banned));
    h.torrent
        .handle_announce_response(h.now, secs(60), None, &[addr(1), addr(2)]);
    assert_eq!(h.actions(), [Action::Connect { addr: addr(2) }]);
}

/// The requests sent since the last look, with the peer each went to.
fn requests_to_each(h: &mut Harness, peers: [PeerKey; 2]) -> Vec<(PeerKey, BlockRef)> {
    let actions = h.actions();
    peers
        .iter()
        .flat_map(|&peer| {
            h.requests_to(&actions, peer)
                .into_iter()
                .map(move |b| (peer, b))
        })
        .collect()
}

#[test]
fn a_piece_failing_with_two_senders_bans_nobody_and_paroles_both() {
    // One strike would ban: a mixed failure must not strike anyone.
    let mut h = Harness::new(
        content(),
        &[],
        TorrentConfig {
            max_strikes: 1,
            min_pipeline: 1,
            max_pipeline: 1,
            ..TorrentConfig::default()
        },
    );
    let layout = h.content.layout.clone();
    let piece = layout.piece_index(0).unwrap();
    let peers = [h.connect(1, true), h.connect(2, true)];
    for peer in peers {
        h.recv(peer, bitfield_message(&layout, &[0]));
        h.recv(peer, Message::Unchoke);
    }
    // One block each (pipeline of one): piece 0 comes from both.
    let first = requests_to_each(&mut h, peers);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().all(|(_, b)| b.piece == piece));
    for (peer, block) in first {
        h.deliver(peer, block);
    }
    h.torrent.handle_piece_verified(h.now, piece, false);
    assert!(
        !h.events()
            .iter()
            .any(|e| matches!(e, Event::PeerBanned { .. })),
        "a mixed failure banned a sender"
    );
    // On parole, piece 0 goes to one of them alone, block after block.
    let again = requests_to_each(&mut h, peers);
    assert_eq!(again.len(), 1, "{again:?}");
    let (alone, block) = again[0];
    let other = peers.into_iter().find(|&p| p != alone).unwrap();
    h.deliver(alone, block);
    let actions = h.actions();
    let next = h.requests_to(&actions, alone);
    assert_eq!(next.len(), 1, "the second block goes to the same peer");
    assert!(
        h.requests_to(&actions, other).is_empty(),
        "the other peer shared it"
    );
    h.deliver(alone, next[0]);
    // Its sender is now known: one strike, banned; the other stays.
    h.torrent.handle_piece_verified(h.now, piece, false);
    let alone_ip = if alone == peers[0] { addr(1) } else { addr(2) }.ip();
    let events = h.events();
    assert!(events.contains(&Event::PeerBanned { ip: alone_ip }));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::PeerBanned { .. }))
            .count(),
        1
    );
    let actions = h.actions();
    assert_eq!(
        disconnect_reason(&actions, alone),
        Some(DisconnectReason::Banned)
    );
    assert_eq!(disconnect_reason(&actions, other), None);
}

#[test]
fn request_timeout_moves_the_block_to_another_peer() {
    // One block; endgame allows two requesters per block.
    let mut h = Harness::new(
        Content::new(u64::from(BLOCK_SIZE), u64::from(BLOCK_SIZE), 3),
        &[],
        TorrentConfig::default(),
    );
    let block = h.content.block_ref(0, 0);
    let join = |h: &mut Harness, n: u8| {
        let peer = h.connect(n, true);
        h.recv(peer, Message::HaveAll);
        h.recv(peer, Message::Unchoke);
        (peer, h.take_requests(peer))
    };
    let (slow, asked) = join(&mut h, 1);
    assert_eq!(asked, [block]);
    h.advance(secs(10));
    let (second, asked) = join(&mut h, 2);
    assert_eq!(asked, [block], "endgame duplicate");
    h.advance(secs(10));
    let (third, asked) = join(&mut h, 3);
    assert_eq!(asked, [], "already requested twice");
    h.advance(secs(11));
    let actions = h.actions();
    assert_eq!(
        h.requests_to(&actions, third),
        [block],
        "the timed-out request moved"
    );
    assert_eq!(h.requests_to(&actions, slow), []);
    assert_eq!(h.requests_to(&actions, second), []);
    // The slow peer's late answer is still accepted once.
    h.deliver(slow, block);
    let actions = h.actions();
    assert!(actions.contains(&Action::VerifyPiece { piece: block.piece }));
    for peer in [second, third] {
        assert_eq!(
            Harness::sent_to(&actions, peer),
            [Message::Cancel {
                piece: 0,
                offset: 0,
                length: BLOCK_SIZE
            }]
        );
    }
}

#[test]
fn endgame_cancels_the_duplicate_on_arrival() {
    let mut h = Harness::new(
        Content::new(u64::from(BLOCK_SIZE), u64::from(BLOCK_SIZE), 3),
        &[],
        TorrentConfig::default(),
    );
    let a = h.connect(1, true);
    let b = h.connect(2, true);
    for peer in [a, b] {
        h.recv(peer, Message::HaveAll);
        h.recv(peer, Message::Unchoke);
    }
    let actions = h.actions();
    let block = h.content.block_ref(0, 0);
    assert_eq!(h.requests_to(&actions, a), [block]);
    assert_eq!(h.requests_to(&actions, b), [block], "endgame duplicate");
    h.deliver(b, block);
    let actions = h.actions();
    assert_eq!(
        Harness::sent_to(&actions, a),
        [Message::Cancel {
            piece: 0,
            offset: 0,
            length: BLOCK_SIZE
        }]
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| matches!(a, Action::WriteBlock { .. }))
            .count(),
        1
    );
    // The cancelled copy still arrives: not written again.
    h.deliver(a, block);
    assert!(
        !h.actions()
            .iter()
            .any(|a| matches!(a, Action::WriteBlock { .. }))
    );
    let piece = block.piece;
    h.torrent.handle_piece_verified(h.now, piece, true);
    let events = h.events();
    assert!(events.contains(&Event::DownloadCompleted));
    let actions = h.actions();
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Announce {
            event: AnnounceEvent::Completed,
            left: 0,
            ..
        }
    )));
    assert_eq!(
        disconnect_reason(&actions, a),
        Some(DisconnectReason::BothSeeding)
    );
}

#[test]
fn failed_announces_back_off_exponentially() {
    let mut h = leecher();
    let mut delays = Vec::new();
    for _ in 0..9 {
        h.torrent.handle_announce_failed(h.now);
        let next = h.torrent.poll_timeout().unwrap();
        // Step through the timers until the announce fires.
        let start = h.now;
        loop {
            let next = h.torrent.poll_timeout().unwrap();
            h.now = next;
            h.torrent.handle_timeout(next);
            if h.actions().iter().any(|a| {
                matches!(
                    a,
                    Action::Announce {
                        event: AnnounceEvent::Started,
                        ..
                    }
                )
            }) {
                break;
            }
        }
        assert!(next <= h.now);
        delays.push((h.now - start).as_secs());
    }
    assert_eq!(delays, [15, 30, 60, 120, 240, 480, 960, 1800, 1800]);
    h.torrent
        .handle_announce_response(h.now, secs(100), None, &[]);
    h.advance(secs(100));
    assert!(h.actions().iter().any(|a| matches!(
        a,
        Action::Announce {
            event: AnnounceEvent::None,
            ..
        }
    )));
}

/// Steps `h` through its timers until an announce is emitted (at most
/// `limit` later) and returns how long that took.
fn time_to_next_announce(h: &mut Harness, limit: Duration) -> Option<Duration> {
    let start = h.now;
    while let Some(next) = h.torrent.poll_timeout() {
        if next > start + limit {
            return None;
        }
        h.now = h.now.max(next);
        h.torrent.handle_timeout(h.now);
        if h.actions()
            .iter()
            .any(|a| matches!(a, Action::Announce { .. }))
        {
            return Some(h.now - start);
        }
    }
    None
}

#[test]
fn an_incomplete_torrent_with_no_peer_reannounces_on_a_short_back_off() {
    let mut h = leecher();
    h.actions();
    let mut delays = Vec::new();
    for _ in 0..7 {
        h.torrent
            .handle_announce_response(h.now, secs(60), None, &[]);
        let delay =
            time_to_next_announce(&mut h, secs(60)).expect("an announce within the interval");
        delays.push(delay.as_secs());
    }
    assert_eq!(
        delays,
        [2, 4, 8, 16, 32, 60, 60],
        "doubling up to the interval"
    );

    // The tracker's min interval is a floor.
    let mut h = leecher();
    h.actions();
    h.torrent
        .handle_announce_response(h.now, secs(60), Some(secs(10)), &[]);
    assert_eq!(time_to_next_announce(&mut h, secs(60)), Some(secs(10)));

    // A listed peer that never answers leaves us alone: the early announce.
    let mut h = leecher();
    h.actions();
    h.torrent
        .handle_announce_response(h.now, secs(60), None, &[addr(1)]);
    assert_eq!(h.actions(), [Action::Connect { addr: addr(1) }]);
    assert_eq!(time_to_next_announce(&mut h, secs(60)), Some(secs(2)));
    // A peer connected by then: the regular interval.
    let mut h = leecher();
    h.actions();
    h.torrent
        .handle_announce_response(h.now, secs(60), None, &[addr(1)]);
    h.connect(2, true);
    h.actions();
    assert_eq!(time_to_next_announce(&mut h, secs(60)), Some(secs(60)));

    // A seed waits for leechers to find it: the regular interval.
    let mut s = seed();
    s.actions();
    s.torrent
        .handle_announce_response(s.now, secs(60), None, &[]);
    assert_eq!(time_to_next_announce(&mut s, secs(60)), Some(secs(60)));
}

#[test]
fn tracker_peers_are_dialled_up_to_the_limit_never_ourselves() {
    let own = addr(9);
    let mut h = Harness::new(
        content(),
        &[],
        TorrentConfig {
            max_peers: 3,
            listen_addr: Some(own),
            ..TorrentConfig::default()
        },
    );
    let connected = h.connect(1, true);
    h.actions();
    let listed = [own, addr(1), addr(2), addr(2), addr(3), addr(4)];
    h.torrent
        .handle_announce_response(h.now, secs(60), None, &listed);
    assert_eq!(
        h.actions(),
        [
            Action::Connect { addr: addr(2) },
            Action::Connect { addr: addr(3) }
        ],
        "not ourselves, not the connected peer, no duplicates, up to max_peers"
    );
    h.torrent.handle_connect_failed(h.now, addr(2));
    assert_eq!(h.actions(), [Action::Connect { addr: addr(4) }]);
    h.torrent
        .handle_announce_response(h.now, secs(60), None, &listed);
    assert_eq!(
        h.actions(),
        [],
        "no room: one peer and two dials in progress"
    );
    // The failed address waits for its re-dial back-off (15 s), even
    // though the announce listed it again and a slot is free.
    h.torrent.handle_peer_disconnected(h.now, connected);
    assert_eq!(h.actions(), []);
    h.advance(secs(14));
    assert!(
        matches!(h.actions()[..], [Action::Announce { .. }]),
        "only the early announce of a leecher left with no peer"
    );
    h.advance(secs(1));
    assert_eq!(h.actions(), [Action::Connect { addr: addr(2) }]);
}

#[test]
fn peers_learned_elsewhere_are_dialled_without_touching_the_announce_schedule() {
    let mut s = seed();
    let announces = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| matches!(a, Action::Announce { .. }))
            .count()
    };
    s.actions();
    s.torrent
        .handle_announce_response(s.now, secs(60), None, &[]);
    s.advance(secs(30));
    s.torrent.handle_peers(s.now, &[addr(1), addr(2), addr(1)]);
    let actions = s.actions();
    assert_eq!(
        actions,
        [
            Action::Connect { addr: addr(1) },
            Action::Connect { addr: addr(2) }
        ]
    );
    s.advance(secs(29));
    assert_eq!(announces(&s.actions()), 0, "the interval still runs");
    s.advance(secs(1));
    assert_eq!(announces(&s.actions()), 1, "due 60 s after the response");
    s.torrent.stop(s.now);
    s.actions();
    s.torrent.handle_peers(s.now, &[addr(3)]);
    assert_eq!(s.actions(), [], "nothing is dialled after stop");
}

/// Asserts that `peer`, heard from last now and silent from here on, is
/// still connected 170 s later and dropped for a timeout at 180 s.
fn silent_for_three_minutes_is_dropped(h: &mut Harness, peer: PeerKey) {
    h.advance(secs(170));
    assert_eq!(disconnect_reason(&h.actions(), peer), None);
    h.advance(secs(10));
    assert_eq!(
        disconnect_reason(&h.actions(), peer),
        Some(DisconnectReason::Timeout)
    );
}

#[test]
fn keep_alives_and_silent_peers() {
    let mut h = leecher();
    let peer = h.connect(1, true);
    h.actions();
    h.advance(secs(90));
    assert!(Harness::sent_to(&h.actions(), peer).contains(&Message::KeepAlive));
    h.recv(peer, Message::KeepAlive);
    silent_for_three_minutes_is_dropped(&mut h, peer);
}

#[test]
fn stop_announces_and_disconnects_everyone() {
    let mut h = leecher();
    let a = h.connect(1, true);
    let b = h.connect(2, false);
    h.actions();
    h.torrent.stop(h.now);
    let actions = h.actions();
    assert!(matches!(
        actions[0],
        Action::Announce {
            event: AnnounceEvent::Stopped,
            ..
        }
    ));
    assert_eq!(
        disconnect_reason(&actions, a),
        Some(DisconnectReason::Shutdown)
    );
    assert_eq!(
        disconnect_reason(&actions, b),
        Some(DisconnectReason::Shutdown)
    );
    assert_eq!(h.torrent.poll_timeout(), None);
}

#[test]
fn stats_count_verified_pieces_only() {
    let mut h = leecher();
    let total = h.content.layout.total_length();
    assert_eq!(h.torrent.stats().left, total);
    let peer = h.connect(1, true);
    h.recv(peer, bitfield_message(&h.content.layout.clone(), &[3]));
    h.recv(peer, Message::Unchoke);
    for block in h.take_requests(peer) {
        h.deliver(peer, block);
    }
    let piece = h.content.layout.piece_index(3).unwrap();
    assert_eq!(h.torrent.stats().downloaded, 0, "not verified yet");
    assert_eq!(h.torrent.stats().pieces_have, 0);
    h.torrent.handle_piece_verified(h.now, piece, true);
    let stats = h.torrent.stats();
    assert_eq!(stats.downloaded, 20_000);
    assert_eq!(stats.left, total - 20_000);
    assert_eq!(stats.pieces_have, 1);
    assert!(stats.download_rate > 0.0);
}

#[test]
fn time_going_backwards_is_ignored() {
    let mut h = leecher();
    let peer = h.connect(1, true);
    h.actions();
    h.advance(secs(60));
    let deadline = h.torrent.poll_timeout();
    let earlier = h.now.checked_sub(secs(50)).unwrap();
    h.torrent.handle_timeout(earlier);
    h.torrent.handle_message(earlier, peer, Message::KeepAlive);
    assert_eq!(h.actions(), []);
    assert_eq!(h.torrent.poll_timeout(), deadline);
    // The keep-alive from the peer counts at the latest instant seen.
    silent_for_three_minutes_is_dropped(&mut h, peer);
}

#[test]
fn suggestions_are_preferred_and_allowed_fast_pieces_requested_while_choked() {
    // Over several seeds, so a random pick cannot pass by luck.
    for rng_seed in 0..8 {
        let (mut h, peer) = leecher_of_a_seed(rng_seed);
        h.recv(peer, Message::AllowedFast { piece: 2 });
        let asked = h.take_requests(peer);
        assert!(!asked.is_empty(), "allowed fast while choked");
        assert!(asked.iter().all(|b| b.piece.get() == 2), "{asked:?}");
        h.recv(peer, Message::Suggest { piece: 3 });
        h.recv(peer, Message::Unchoke);
        let asked = h.take_requests(peer);
        assert_eq!(asked.first().map(|b| b.piece.get()), Some(3), "{asked:?}");
    }
}

#[test]
fn an_allowed_fast_piece_rejected_while_choked_is_not_asked_again() {
    let mut h = leecher();
    let peer = h.connect(1, true);
    h.recv(peer, Message::HaveAll);
    h.recv(peer, Message::AllowedFast { piece: 2 });
    let asked = h.take_requests(peer);
    assert!(!asked.is_empty());
    // The peer rejects every block of it: no request/reject ping-pong.
    for block in asked {
        h.recv(
            peer,
            Message::Reject {
                piece: block.piece.get(),
                offset: block.offset,
                length: block.length,
            },
        );
    }
    assert_eq!(h.take_requests(peer), [], "a rejected piece asked again");
    // Unchoked, the peer may still be asked for it like any other piece.
    h.recv(peer, Message::Unchoke);
    assert!(!h.take_requests(peer).is_empty());
}

#[test]
fn two_seeds_disconnect() {
    let mut s = seed();
    let peer = s.connect(1, true);
    s.recv(peer, Message::HaveAll);
    assert_eq!(
        disconnect_reason(&s.actions(), peer),
        Some(DisconnectReason::BothSeeding)
    );
    let plain = s.connect(2, false);
    s.recv(
        plain,
        bitfield_message(&s.content.layout.clone(), &[0, 1, 2]),
    );
    assert_eq!(disconnect_reason(&s.actions(), plain), None);
    s.recv(plain, Message::Have { piece: 3 });
    assert_eq!(
        disconnect_reason(&s.actions(), plain),
        Some(DisconnectReason::BothSeeding)
    );
}

#[test]
fn a_plain_choke_drops_our_requests_back_to_the_picker() {
    let mut h = Harness::new(
        Content::new(2 * u64::from(BLOCK_SIZE), u64::from(BLOCK_SIZE), 3),
        &[],
        TorrentConfig::default(),
    );
    let first = h.connect(1, false);
    let second = h.connect(2, false);
    for peer in [first, second] {
        h.recv(peer, bitfield_message(&h.content.layout.clone(), &[0, 1]));
    }
    h.recv(first, Message::Unchoke);
    let asked = h.take_requests(first);
    assert_eq!(asked.len(), 2);
    h.recv(second, Message::Unchoke);
    assert_eq!(h.take_requests(second).len(), 2, "endgame duplicates");
    // Without BEP 6 a choke drops the requests: `second` keeps its own,
    // and nothing is re-requested from `first` while it chokes us.
    h.recv(first, Message::Choke);
    let actions = h.actions();
    assert_eq!(h.requests_to(&actions, first), []);
    // When `first` unchokes again, the blocks are pickable for it again.
    h.recv(first, Message::Unchoke);
    let mut again = h.take_requests(first);
    again.sort();
    let mut expected = asked;
    expected.sort();
    assert_eq!(again, expected);
}

/// A torrent of 40 single-block pieces that has pieces `0..have`.
fn forty_single_blocks(have: u32, config: TorrentConfig) -> Harness {
    let content = Content::new(40 * u64::from(BLOCK_SIZE), u64::from(BLOCK_SIZE), 5);
    let pieces: Vec<u32> = (0..have).collect();
    Harness::new(content, &pieces, config)
}

/// The pieces of the allowed-fast messages (BEP 6) among `actions` to `peer`.
fn allowed_fast_sent(actions: &[Action], peer: PeerKey) -> Vec<u32> {
    Harness::sent_to(actions, peer)
        .into_iter()
        .filter_map(|m| match m {
            Message::AllowedFast { piece } => Some(piece),
            _ => None,
        })
        .collect()
}

#[test]
fn starting_peers_get_their_allowed_fast_pieces_while_choked() {
    // 40 single-block pieces: k = 10 is offered (the torrent has >= 4k
    // pieces) by a peer that still downloads (it lacks piece 39, which is
    // not in this peer's set).
    let mut h = forty_single_blocks(39, TorrentConfig::default());
    let peer = h.connect(1, true);
    let allowed = allowed_fast_sent(&h.actions(), peer);
    assert_eq!(allowed.len(), 10);
    h.recv(peer, Message::HaveNone);
    let inside = h.content.block_ref(allowed[0], 0);
    assert!(!allowed.contains(&39));
    let outside = (0..39).find(|p| !allowed.contains(p)).unwrap();
    let outside = h.content.block_ref(outside, 0);
    h.recv(peer, request(inside));
    h.recv(peer, request(outside));
    let actions = h.actions();
    assert_eq!(
        actions
            .iter()
            .filter(|a| matches!(a, Action::ReadBlock { .. }))
            .collect::<Vec<_>>(),
        [&Action::ReadBlock {
            peer,
            block: inside
        }],
        "served while choked: the allowed-fast piece only"
    );
    assert!(Harness::sent_to(&actions, peer).contains(&Message::Reject {
        piece: outside.piece.get(),
        offset: 0,
        length: BLOCK_SIZE
    }));
    // Once the peer holds k pieces it is no longer starting.
    for piece in &allowed {
        h.recv(peer, Message::Have { piece: *piece });
    }
    h.actions();
    let again = h.content.block_ref(allowed[1], 0);
    h.recv(peer, request(again));
    assert!(
        !h.actions()
            .iter()
            .any(|a| matches!(a, Action::ReadBlock { .. }))
    );

    // Plain BEP 3 peers and small torrents get no set.
    let plain = h.connect(2, false);
    assert!(
        !Harness::sent_to(&h.actions(), plain)
            .iter()
            .any(|m| matches!(m, Message::AllowedFast { .. }))
    );
    let mut small = seed();
    let peer = small.connect(1, true);
    assert_eq!(Harness::sent_to(&small.actions(), peer), [Message::HaveAll]);
    // Nor does a seed: its upload goes where its choker sends it.
    let mut seeding = forty_single_blocks(40, TorrentConfig::default());
    let peer = seeding.connect(1, true);
    assert_eq!(
        Harness::sent_to(&seeding.actions(), peer),
        [Message::HaveAll]
    );
}

#[test]
fn a_choke_keeps_a_starting_peers_allowed_fast_requests() {
    // A downloading peer (it lacks piece 39) offers the set.
    let mut h = forty_single_blocks(
        39,
        TorrentConfig {
            max_reads_in_flight: 1,
            ..TorrentConfig::default()
        },
    );
    let peer = h.connect(1, true);
    let allowed = allowed_fast_sent(&h.actions(), peer);
    h.recv(peer, Message::HaveNone);
    h.recv(peer, Message::Interested);
    assert!(Harness::sent_to(&h.actions(), peer).contains(&Message::Unchoke));
    let outside = (0..39).find(|p| !allowed.contains(p)).unwrap();
    let kept = h.content.block_ref(allowed[0], 0);
    let rejected = h.content.block_ref(outside, 0);
    h.recv(peer, request(rejected));
    h.recv(peer, request(kept));
    h.actions();
    // Another peer takes the only slots: `peer` is choked.
    h.recv(peer, Message::NotInterested);
    h.advance(secs(10));
    let actions = h.actions();
    assert_eq!(
        Harness::sent_to(&actions, peer),
        [
            Message::Choke,
            Message::Reject {
                piece: outside,
                offset: 0,
                length: BLOCK_SIZE
            }
        ]
    );
    assert!(actions.contains(&Action::ReadBlock { peer, block: kept }));
    h.torrent
        .handle_block_read(h.now, peer, rejected, h.content.block(rejected));
    assert_eq!(h.actions(), [], "the rejected request is not served");
    h.torrent
        .handle_block_read(h.now, peer, kept, h.content.block(kept));
    assert!(matches!(
        Harness::sent_to(&h.actions(), peer)[..],
        [Message::Piece { .. }]
    ));
}

#[test]
fn crossing_dials_keep_the_connection_dialled_by_the_smaller_peer_id() {
    // We are peer id 0, the smallest: our dial replaces peer 1's.
    let mut h = leecher();
    let inbound = h.connect(1, true);
    h.actions();
    let outbound = h
        .torrent
        .handle_handshake(
            h.now,
            addr(1),
            Direction::Outbound,
            &handshake(peer_id(1), true),
        )
        .unwrap();
    assert_ne!(outbound, inbound);
    assert_eq!(
        disconnect_reason(&h.actions(), inbound),
        Some(DisconnectReason::Duplicate)
    );
    // Peer 2's dial crossing ours loses: it is refused.
    h.torrent
        .handle_handshake(
            h.now,
            addr(2),
            Direction::Outbound,
            &handshake(peer_id(2), true),
        )
        .unwrap();
    h.actions();
    assert_eq!(
        h.try_connect(2, true),
        Err(HandshakeRejection::DuplicatePeer)
    );
    assert_eq!(h.torrent.stats().peers, 3, "two live peers, one closing");
}

#[test]
fn an_initial_seed_keeps_pieces_for_each_unchoked_peer_until_the_swarm_has_them() {
    let mut h = seed();
    let a = h.connect(1, true);
    let b = h.connect(2, true);
    h.actions();
    // Unchoked, each peer is first told the two pieces kept for it (BEP 6
    // suggest), nobody else's.
    let mut kept = Vec::new();
    for peer in [a, b] {
        h.recv(peer, Message::HaveNone);
        h.recv(peer, Message::Interested);
        let sent = Harness::sent_to(&h.actions(), peer);
        let suggested: Vec<u32> = sent
            .iter()
            .filter_map(|m| match m {
                Message::Suggest { piece } => Some(*piece),
                _ => None,
            })
            .collect();
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert_eq!(sent.last(), Some(&Message::Unchoke), "{sent:?}");
        kept.push(suggested);
    }
    let mut all: Vec<u32> = kept.concat();
    all.sort_unstable();
    assert_eq!(all, [0, 1, 2, 3], "{kept:?}");
    // Once a block of it went to `a`, a request for a piece kept for `a`
    // is rejected.
    let piece = kept[0][0];
    let (first, second) = (h.content.block_ref(piece, 0), h.content.block_ref(piece, 1));
    h.recv(a, request(first));
    assert!(h.actions().contains(&Action::ReadBlock {
        peer: a,
        block: first
    }));
    h.torrent
        .handle_block_read(h.now, a, first, h.content.block(first));
    h.actions();
    h.recv(b, request(second));
    assert_eq!(
        Harness::sent_to(&h.actions(), b),
        [Message::Reject {
            piece,
            offset: second.offset,
            length: second.length
        }]
    );
    // `b` leaves: its pieces are free, and once `a` got all of its piece
    // its window is topped up with one of them.
    h.torrent.handle_peer_disconnected(h.now, b);
    h.recv(a, request(second));
    assert!(h.actions().contains(&Action::ReadBlock {
        peer: a,
        block: second
    }));
    h.torrent
        .handle_block_read(h.now, a, second, h.content.block(second));
    let sent = Harness::sent_to(&h.actions(), a);
    let Some(Message::Suggest { piece: next }) = sent.last() else {
        panic!("no suggestion: {sent:?}");
    };
    assert!(kept[1].contains(next), "{sent:?}");
    // Once the swarm reported every piece, anything is served.
    let c = h.connect(3, true);
    h.recv(c, Message::HaveNone);
    h.recv(c, Message::Interested);
    for piece in 0..4 {
        h.recv(a, Message::Have { piece });
    }
    h.actions();
    h.recv(c, request(second));
    assert!(h.actions().contains(&Action::ReadBlock {
        peer: c,
        block: second
    }));
}

#[test]
fn a_seed_that_suggests_is_asked_for_its_suggestions_only() {
    // Over several seeds, so a random pick cannot pass by luck.
    let mut others_after_choke = false;
    for rng_seed in 0..8 {
        let (mut h, peer) = leecher_of_a_seed(rng_seed);
        h.recv(peer, Message::Suggest { piece: 1 });
        h.recv(peer, Message::Unchoke);
        // The pipeline has room for 4 blocks, piece 1 has 2.
        let mut asked = h.take_requests(peer);
        assert_eq!(asked.len(), 2, "both blocks of piece 1: {asked:?}");
        assert!(asked.iter().all(|b| b.piece.get() == 1), "{asked:?}");
        // A new suggestion is asked for at once.
        h.recv(peer, Message::Suggest { piece: 3 });
        let more = h.take_requests(peer);
        assert_eq!(more.len(), 2, "both blocks of piece 3: {more:?}");
        assert!(more.iter().all(|b| b.piece.get() == 3), "{more:?}");
        asked.extend(more);
        // A choke (its requests rejected) forgets the suggestions.
        h.recv(peer, Message::Choke);
        for block in asked {
            h.recv(
                peer,
                Message::Reject {
                    piece: block.piece.get(),
                    offset: block.offset,
                    length: block.length,
                },
            );
        }
        h.recv(peer, Message::Unchoke);
        let asked = h.take_requests(peer);
        assert_eq!(asked.len(), 4, "{asked:?}");
        others_after_choke |= asked.iter().any(|b| ![1, 3].contains(&b.piece.get()));
    }
    assert!(others_after_choke, "suggestions outlived the choke");
}
