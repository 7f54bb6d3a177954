//! BEP 5 `port` messages of the `Torrent` state machine: the DHT bit in
//! our handshake, `port` sent to peers that set it, a received `port`
//! reported as [`Event::DhtNodeLearned`]; nothing of it for a private
//! torrent (BEP 27) or without a DHT node.

mod support;

use std::net::SocketAddr;

use minibit_core::torrent::{Event, TorrentConfig};
use minibit_core::wire::Message;
use support::{Content, Harness, handshake, peer_id};

const DHT_PORT: u16 = 6882;

fn torrent(dht_port: Option<u16>, private: bool) -> Harness {
    Harness::new(
        Content::new(4 * 32_768, 32_768, 5),
        &[0],
        TorrentConfig {
            dht_port,
            private,
            ..TorrentConfig::default()
        },
    )
}

fn ports_sent(h: &mut Harness, peer: minibit_core::torrent::PeerKey) -> Vec<u16> {
    Harness::sent_to(&h.actions(), peer)
        .into_iter()
        .filter_map(|m| match m {
            Message::Port(port) => Some(port),
            _ => None,
        })
        .collect()
}

fn learned(h: &mut Harness) -> Vec<SocketAddr> {
    h.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::DhtNodeLearned { addr, .. } => Some(addr),
            _ => None,
        })
        .collect()
}

#[test]
fn the_dht_bit_is_set_only_with_a_dht_port_on_a_public_torrent() {
    assert!(
        torrent(Some(DHT_PORT), false)
            .torrent
            .handshake()
            .supports_dht()
    );
    assert!(!torrent(None, false).torrent.handshake().supports_dht());
    assert!(
        !torrent(Some(DHT_PORT), true)
            .torrent
            .handshake()
            .supports_dht(),
        "private torrent"
    );
    // The other bits stay.
    let ours = torrent(Some(DHT_PORT), false).torrent.handshake();
    assert!(ours.supports_fast() && ours.supports_extensions());
}

#[test]
fn port_goes_to_peers_that_set_the_dht_bit_once_after_the_bitfield() {
    let mut h = torrent(Some(DHT_PORT), false);
    let with_dht = h.connect_with(1, &handshake(peer_id(1), false).with_dht());
    let sent = Harness::sent_to(&h.actions(), with_dht);
    assert!(
        matches!(sent.first(), Some(Message::Bitfield(_))),
        "bitfield first: {sent:?}"
    );
    assert_eq!(sent.last(), Some(&Message::Port(DHT_PORT)));
    assert_eq!(
        sent.iter()
            .filter(|m| matches!(m, Message::Port(_)))
            .count(),
        1
    );

    let without = h.connect_with(2, &handshake(peer_id(2), false));
    assert!(ports_sent(&mut h, without).is_empty());
}

#[test]
fn no_port_without_a_dht_or_on_a_private_torrent() {
    for (dht_port, private) in [(None, false), (Some(DHT_PORT), true)] {
        let mut h = torrent(dht_port, private);
        let peer = h.connect_with(1, &handshake(peer_id(1), true).with_dht());
        assert!(
            ports_sent(&mut h, peer).is_empty(),
            "{dht_port:?} {private}"
        );
        h.recv(peer, Message::Port(7000));
        assert!(learned(&mut h).is_empty(), "{dht_port:?} {private}");
    }
}

#[test]
fn a_received_port_is_reported_once_with_the_peer_ip() {
    let mut h = torrent(Some(DHT_PORT), false);
    let peer = h.connect_with(3, &handshake(peer_id(3), true).with_dht());
    h.actions();
    h.recv(peer, Message::Port(7000));
    let expected = SocketAddr::from(([10, 0, 0, 3], 7000));
    assert_eq!(
        h.events()
            .into_iter()
            .filter(|e| matches!(e, Event::DhtNodeLearned { .. }))
            .collect::<Vec<_>>(),
        [Event::DhtNodeLearned {
            peer,
            addr: expected
        }]
    );
    // The same port again (a chatty peer) is not news; a new one is.
    for _ in 0..100 {
        h.recv(peer, Message::Port(7000));
    }
    assert!(learned(&mut h).is_empty());
    h.recv(peer, Message::Port(7001));
    assert_eq!(learned(&mut h), [SocketAddr::from(([10, 0, 0, 3], 7001))]);
    // Port 0 is no node; the connection stays.
    h.recv(peer, Message::Port(0));
    assert!(learned(&mut h).is_empty());
    assert!(
        !h.actions()
            .iter()
            .any(|a| matches!(a, minibit_core::torrent::Action::Disconnect { .. }))
    );
}

#[test]
fn a_port_before_the_bitfield_is_no_violation() {
    // BEP 5 peers may send `port` first; the bitfield after it still counts.
    let mut h = torrent(Some(DHT_PORT), false);
    let peer = h.connect_with(4, &handshake(peer_id(4), false).with_dht());
    h.actions();
    h.recv(peer, Message::Port(7004));
    h.recv(
        peer,
        support::bitfield_message(&h.content.layout.clone(), &[1]),
    );
    let actions = h.actions();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, minibit_core::torrent::Action::Disconnect { .. })),
        "{actions:?}"
    );
    assert!(Harness::sent_to(&actions, peer).contains(&Message::Interested));
    assert_eq!(learned(&mut h), [SocketAddr::from(([10, 0, 0, 4], 7004))]);
}
