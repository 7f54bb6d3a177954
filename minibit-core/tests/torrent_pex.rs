//! BEP 11 peer exchange and re-dialling of the `Torrent` state machine,
//! remote peers played by hand.

mod support;

use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4};

use bytes::Bytes;
use minibit_core::torrent::{
    Action, Direction, DisconnectReason, Event, PeerKey, TorrentConfig, Violation,
};
use minibit_core::wire::{ExtendedHandshake, Message, Pex, PexFlags};
use support::{Content, Harness, addr, disconnect_reason, handshake, peer_id, secs};

fn content() -> Content {
    Content::new(4 * 32_768, 32_768, 3)
}

fn own() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 99], 6881))
}

/// A torrent with no piece, listening on [`own`], with or without PEX.
fn leecher(peer_exchange: bool) -> Harness {
    Harness::new(
        content(),
        &[],
        TorrentConfig {
            listen_addr: Some(own()),
            peer_exchange,
            ..TorrentConfig::default()
        },
    )
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(v4) => v4,
        SocketAddr::V6(_) => panic!("an IPv4 test address"),
    }
}

/// A BEP 10 extended handshake with `ut_pex` under `ut_pex` and port `p`.
fn ext_handshake(ut_pex: Option<u8>, p: Option<u16>) -> Message {
    ExtendedHandshake {
        m: ut_pex
            .map(|id| ("ut_pex".to_owned(), id))
            .into_iter()
            .collect(),
        p,
        ..ExtendedHandshake::default()
    }
    .to_message()
}

/// Peer `n` with the extension-protocol bit, accepted in `direction`.
fn join(h: &mut Harness, n: u8, direction: Direction) -> PeerKey {
    let theirs = handshake(peer_id(n), true).with_extensions();
    h.torrent
        .handle_handshake(h.now, addr(n), direction, &theirs)
        .unwrap()
}

/// The `ut_pex` messages (extended id `id`) among `actions` sent to `peer`.
fn pex_to(actions: &[Action], peer: PeerKey, id: u8) -> Vec<Pex> {
    Harness::sent_to(actions, peer)
        .into_iter()
        .filter_map(|m| match m {
            Message::Extended { id: i, payload } if i == id => Some(Pex::decode(&payload).unwrap()),
            _ => None,
        })
        .collect()
}

fn connects(actions: &[Action]) -> Vec<SocketAddr> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Connect { addr } => Some(*addr),
            _ => None,
        })
        .collect()
}

fn pex_message(added: &[SocketAddr]) -> Message {
    let pex = Pex {
        added: added
            .iter()
            .map(|&a| (v4(a), PexFlags::default()))
            .collect(),
        ..Pex::default()
    };
    Message::Extended {
        id: 1,
        payload: pex.encode(),
    }
}

#[test]
fn ut_pex_is_advertised_unless_peer_exchange_is_off() {
    for (enabled, expected) in [(true, Some(1)), (false, None)] {
        let mut h = leecher(enabled);
        let peer = join(&mut h, 1, Direction::Inbound);
        let sent = Harness::sent_to(&h.actions(), peer);
        let ours = sent
            .iter()
            .find_map(|m| match m {
                Message::Extended { id: 0, payload } => ExtendedHandshake::decode(payload).ok(),
                _ => None,
            })
            .expect("an extended handshake");
        assert_eq!(ours.id_for("ut_pex"), expected);
        assert_eq!(ours.p, Some(6881), "our listen port");
    }
}

#[test]
fn the_first_message_lists_dialable_connected_peers_with_flags() {
    let mut h = leecher(true);
    // Inbound with `p`: advertised as its IP and that port.
    let inbound = join(&mut h, 1, Direction::Inbound);
    h.recv(inbound, ext_handshake(None, Some(7001)));
    // Dialled by us and a seed: reachable and seed.
    let dialled = join(&mut h, 2, Direction::Outbound);
    h.recv(dialled, Message::HaveAll);
    // Inbound without `p`: its source port is ephemeral, never advertised.
    let _anonymous = join(&mut h, 3, Direction::Inbound);
    h.actions();

    let asker = join(&mut h, 4, Direction::Inbound);
    h.actions();
    h.recv(asker, ext_handshake(Some(7), Some(7004)));
    let sent = pex_to(&h.actions(), asker, 7);
    let expected = Pex {
        added: vec![
            (v4(SocketAddr::from(([10, 0, 0, 1], 7001))), PexFlags(0)),
            (v4(addr(2)), PexFlags(PexFlags::SEED | PexFlags::REACHABLE)),
        ],
        ..Pex::default()
    };
    assert_eq!(sent, [expected], "sent at once, under the peer's id 7");
}

#[test]
fn later_messages_are_differences_at_most_once_per_interval() {
    let mut h = leecher(true);
    let first = join(&mut h, 1, Direction::Outbound);
    let asker = join(&mut h, 4, Direction::Inbound);
    h.recv(asker, ext_handshake(Some(1), None));
    assert_eq!(pex_to(&h.actions(), asker, 1).len(), 1, "first message");

    h.advance(secs(10));
    let _second = join(&mut h, 2, Direction::Outbound);
    // A peer that comes and goes between two messages is never mentioned.
    let transient = join(&mut h, 3, Direction::Outbound);
    h.torrent.handle_peer_disconnected(h.now, transient);
    h.torrent.handle_peer_disconnected(h.now, first);
    h.recv(asker, Message::KeepAlive);
    h.advance(secs(49));
    assert_eq!(pex_to(&h.actions(), asker, 1), [], "not before 60 s");
    h.recv(asker, Message::KeepAlive);
    h.advance(secs(1));
    let expected = Pex {
        added: vec![(v4(addr(2)), PexFlags(PexFlags::REACHABLE))],
        dropped: vec![v4(addr(1))],
        ..Pex::default()
    };
    assert_eq!(pex_to(&h.actions(), asker, 1), [expected]);
    h.recv(asker, Message::KeepAlive);
    h.advance(secs(60));
    assert_eq!(pex_to(&h.actions(), asker, 1), [], "nothing changed");

    // A later extended handshake that disables ut_pex stops the exchange.
    h.recv(asker, ext_handshake(Some(0), None));
    let _third = join(&mut h, 5, Direction::Outbound);
    h.recv(asker, Message::KeepAlive);
    h.advance(secs(60));
    assert_eq!(pex_to(&h.actions(), asker, 1), []);
}

#[test]
fn a_message_adds_at_most_fifty_contacts() {
    let mut h = leecher(true);
    let asker = join(&mut h, 200, Direction::Inbound);
    for n in 1..=60 {
        join(&mut h, n, Direction::Outbound);
    }
    h.actions();
    h.recv(asker, ext_handshake(Some(1), None));
    let sent = pex_to(&h.actions(), asker, 1);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].added.len(), 50);
    h.recv(asker, Message::KeepAlive);
    h.advance(secs(60));
    let sent = pex_to(&h.actions(), asker, 1);
    assert_eq!(sent[0].added.len(), 10, "the rest in the next message");
}

#[test]
fn learned_contacts_are_dialled_except_ourselves_port_zero_and_over_the_cap() {
    let mut h = leecher(true);
    let sender = join(&mut h, 1, Direction::Inbound);
    h.recv(sender, ext_handshake(Some(1), None));
    h.actions();
    let fresh: Vec<SocketAddr> = (1..=60)
        .map(|n| SocketAddr::from(([10, 1, 0, n], 6881)))
        .collect();
    let mut added = vec![own(), SocketAddr::from(([10, 2, 0, 1], 0))];
    added.extend(&fresh);
    h.recv(sender, pex_message(&added));
    // Port 0 is skipped, then 50 taken: ourselves and 49 fresh ones.
    assert_eq!(
        h.events()
            .into_iter()
            .filter(|e| matches!(e, Event::PexPeersLearned { .. }))
            .collect::<Vec<_>>(),
        [Event::PexPeersLearned {
            peer: sender,
            count: 49
        }]
    );
    let dialled = connects(&h.actions());
    assert_eq!(dialled, fresh[..25], "up to max_dials, in message order");
    h.recv(sender, pex_message(&fresh[..49]));
    assert_eq!(h.events(), [], "already known: nothing new");
    // Only the first 50 contacts of a message count: one of them is new.
    h.recv(sender, pex_message(&fresh));
    assert_eq!(
        h.events(),
        [Event::PexPeersLearned {
            peer: sender,
            count: 1
        }]
    );
}

#[test]
fn pex_before_the_extended_handshake_or_malformed_disconnects_when_enabled() {
    let mut h = leecher(true);
    let early = join(&mut h, 1, Direction::Inbound);
    h.actions();
    h.recv(early, pex_message(&[addr(9)]));
    let reason = disconnect_reason(&h.actions(), early);
    assert_eq!(
        reason,
        Some(DisconnectReason::ProtocolViolation(
            Violation::PexBeforeHandshake
        )),
        "the reason is a typed value"
    );
    let reason = reason.map(|r| r.to_string());
    assert_eq!(
        reason.as_deref(),
        Some("protocol violation: ut_pex message before the extended handshake")
    );

    let bad = join(&mut h, 2, Direction::Inbound);
    h.recv(bad, ext_handshake(Some(1), None));
    h.actions();
    h.recv(
        bad,
        Message::Extended {
            id: 1,
            payload: Bytes::from_static(b"d5:added5:abcdee"),
        },
    );
    let reason = disconnect_reason(&h.actions(), bad).map(|r| r.to_string());
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.starts_with("protocol violation: bad ut_pex message")),
        "{reason:?}"
    );

    // With peer exchange off, id 1 is no extension of ours: ignored.
    let mut off = leecher(false);
    let peer = join(&mut off, 1, Direction::Inbound);
    off.recv(peer, ext_handshake(Some(1), None));
    off.actions();
    off.recv(peer, pex_message(&[addr(9)]));
    assert_eq!(off.actions(), [], "no dial, no disconnect");
    let sent = pex_to(&off.actions(), peer, 1);
    assert!(sent.is_empty(), "and nothing sent");
}

#[test]
fn a_peer_left_alone_redials_known_addresses_with_backoff() {
    let mut h = leecher(true);
    h.torrent
        .handle_announce_response(h.now, secs(1800), None, &[addr(2)]);
    assert_eq!(connects(&h.actions()), [addr(2)]);
    let dialled = join(&mut h, 2, Direction::Outbound);
    // An inbound peer that told us its listen port.
    let inbound = join(&mut h, 3, Direction::Inbound);
    h.recv(inbound, ext_handshake(None, Some(7003)));
    h.actions();

    // Both connections drop (the remote side closed them).
    h.torrent.handle_peer_disconnected(h.now, dialled);
    h.torrent.handle_peer_disconnected(h.now, inbound);
    assert_eq!(connects(&h.actions()), [], "not at once");
    h.advance(secs(15));
    let mut again = connects(&h.actions());
    again.sort();
    assert_eq!(
        again,
        [addr(2), SocketAddr::from(([10, 0, 0, 3], 7003))],
        "no announce needed"
    );
    // The re-dial fails: the next try waits twice as long.
    h.torrent.handle_connect_failed(h.now, addr(2));
    h.advance(secs(29));
    assert!(!connects(&h.actions()).contains(&addr(2)));
    h.advance(secs(1));
    assert!(connects(&h.actions()).contains(&addr(2)));
}

#[test]
fn peers_dropped_for_a_violation_are_not_redialled() {
    let mut h = leecher(true);
    let peer = join(&mut h, 2, Direction::Outbound);
    h.recv(
        peer,
        Message::Have {
            piece: 1_000, // outside the torrent
        },
    );
    let actions = h.actions();
    assert!(disconnect_reason(&actions, peer).is_some());
    h.torrent.handle_peer_disconnected(h.now, peer);
    h.advance(secs(3600));
    assert_eq!(connects(&h.actions()), []);
    // Until someone lists it again.
    let sender = join(&mut h, 1, Direction::Inbound);
    h.recv(sender, ext_handshake(Some(1), None));
    h.recv(sender, pex_message(&[addr(2)]));
    assert_eq!(connects(&h.actions()), [addr(2)]);
}

#[test]
fn contacts_are_sent_in_address_order_whatever_the_connection_order() {
    let order = |ns: &[u8]| {
        let mut h = leecher(true);
        for &n in ns {
            join(&mut h, n, Direction::Outbound);
        }
        let asker = join(&mut h, 100, Direction::Inbound);
        h.recv(asker, ext_handshake(Some(1), None));
        let sent = pex_to(&h.actions(), asker, 1);
        sent[0]
            .added
            .iter()
            .map(|(a, f)| (*a, *f))
            .collect::<BTreeMap<_, _>>()
            .into_keys()
            .collect::<Vec<_>>()
            == sent[0].added.iter().map(|(a, _)| *a).collect::<Vec<_>>()
    };
    assert!(order(&[5, 1, 3]));
    assert!(order(&[1, 3, 5]));
}

#[test]
fn a_private_torrent_neither_advertises_nor_sends_nor_accepts_pex() {
    // BEP 27: peer exchange asked for, but the torrent is private.
    let mut h = Harness::new(
        content(),
        &[],
        TorrentConfig {
            listen_addr: Some(own()),
            peer_exchange: true,
            private: true,
            ..TorrentConfig::default()
        },
    );
    let other = join(&mut h, 1, Direction::Outbound);
    h.recv(other, ext_handshake(Some(1), Some(7001)));
    let asker = join(&mut h, 2, Direction::Inbound);
    let actions = h.actions();
    let ours = Harness::sent_to(&actions, asker)
        .into_iter()
        .find_map(|m| match m {
            Message::Extended { id: 0, payload } => ExtendedHandshake::decode(&payload).ok(),
            _ => None,
        })
        .expect("an extended handshake all the same");
    assert_eq!(ours.id_for("ut_pex"), None, "ut_pex is not advertised");
    assert!(ours.m.is_empty(), "no extension at all: {:?}", ours.m);

    // The peer advertises ut_pex under 7 and sends contacts under our usual id.
    h.recv(asker, ext_handshake(Some(7), Some(7002)));
    h.recv(asker, pex_message(&[addr(9), addr(10)]));
    h.advance(secs(120));
    let actions = h.actions();
    assert!(pex_to(&actions, asker, 7).is_empty(), "no ut_pex sent");
    assert!(pex_to(&actions, other, 1).is_empty(), "no ut_pex sent");
    assert_eq!(
        connects(&actions),
        [],
        "contacts from ut_pex are not dialled"
    );
    assert_eq!(
        disconnect_reason(&actions, asker),
        None,
        "nor is the peer dropped"
    );
    assert!(
        !h.events()
            .iter()
            .any(|e| matches!(e, Event::PexPeersLearned { .. })),
        "nothing learned"
    );

    // Peers from the tracker are dialled as usual.
    let now = h.now;
    h.torrent
        .handle_announce_response(now, secs(1800), None, &[addr(11)]);
    assert_eq!(connects(&h.actions()), [addr(11)]);
}
