//! The read-only views of a `Torrent` a user interface shows: each peer
//! (client name from BEP 10 `v`, flags, pieces, rates), per-piece
//! availability, the pieces being downloaded and the distributed copies.

mod support;

use minibit_core::torrent::{MAX_CLIENT_NAME, TorrentConfig};
use minibit_core::wire::{ExtendedHandshake, Message};
use support::{Content, Harness, addr, bitfield_message, handshake, peer_id, secs};

fn content() -> Content {
    Content::new(4 * 32_768, 32_768, 5)
}

fn named(v: &str) -> Message {
    ExtendedHandshake {
        v: Some(v.to_owned()),
        ..ExtendedHandshake::default()
    }
    .to_message()
}

#[test]
fn each_peer_shows_its_client_name_flags_pieces_and_rates() {
    let mut h = Harness::new(content(), &[], TorrentConfig::default());
    let seeder = h.connect_with(1, &handshake(peer_id(1), true).with_extensions());
    h.recv(seeder, named("Transmission 4.0\u{7}\r\n"));
    h.recv(seeder, Message::HaveAll);
    let half = h.connect_with(2, &handshake(peer_id(2), true).with_extensions());
    h.recv(half, named(&"z".repeat(500)));
    h.recv(half, bitfield_message(&h.content.layout.clone(), &[0, 1]));
    h.recv(half, Message::Interested);
    h.recv(seeder, Message::Unchoke);
    let requests = h.take_requests(seeder);
    assert!(!requests.is_empty(), "the seeder unchoked us: we request");
    h.advance(secs(1));
    h.deliver(seeder, requests[0]);

    let peers = h.torrent.peer_infos();
    assert_eq!(peers.len(), 2);
    let s = peers.iter().find(|p| p.addr == addr(1)).unwrap();
    assert_eq!(s.client.as_deref(), Some("Transmission 4.0"));
    assert_eq!(s.peer_id, peer_id(1));
    assert!(s.seed && s.pieces == 4);
    assert!(!s.outbound, "it connected to us");
    assert!(
        s.am_interested && !s.peer_choking,
        "we want its pieces, it unchoked us"
    );
    assert!(!s.peer_interested && s.am_choking);
    assert!(s.download_rate > 0.0, "a block arrived from it");
    assert!(!s.snubbed && !s.optimistic);

    let l = peers.iter().find(|p| p.addr == addr(2)).unwrap();
    assert_eq!(l.client.as_deref().map(str::len), Some(MAX_CLIENT_NAME));
    assert!(!l.seed && l.pieces == 2);
    assert!(l.peer_interested && l.peer_choking);
    assert!((l.upload_rate - 0.0).abs() < f64::EPSILON);
}

#[test]
fn availability_downloading_and_distributed_copies_follow_the_peers() {
    let mut h = Harness::new(content(), &[3], TorrentConfig::default());
    assert_eq!(h.torrent.availability(), vec![0, 0, 0, 0]);
    assert!(
        (h.torrent.distributed_copies() - 0.25).abs() < 1e-9,
        "only our piece 3"
    );
    assert_eq!(h.torrent.downloading().count(), 0);

    let a = h.connect(1, true);
    let layout = h.content.layout.clone();
    h.recv(a, bitfield_message(&layout, &[0, 1]));
    let b = h.connect(2, true);
    h.recv(b, Message::HaveAll);
    assert_eq!(h.torrent.availability(), vec![2, 2, 1, 1]);
    // Copies with ours: 2, 2, 1, 2: the rarest has 1, three of four more.
    assert!((h.torrent.distributed_copies() - 1.75).abs() < 1e-9);

    h.recv(b, Message::Unchoke);
    let requested = h.take_requests(b);
    let downloading: Vec<u32> = h
        .torrent
        .downloading()
        .iter_set()
        .map(minibit_core::piece::PieceIndex::get)
        .collect();
    let mut asked: Vec<u32> = requested.iter().map(|b| b.piece.get()).collect();
    asked.sort_unstable();
    asked.dedup();
    assert_eq!(downloading, asked, "the pieces with requests in flight");
    assert!(!downloading.contains(&3), "never a piece we have");

    h.torrent.handle_peer_disconnected(h.now, b);
    assert_eq!(h.torrent.availability(), vec![1, 1, 0, 0]);
}
