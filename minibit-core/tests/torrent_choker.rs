//! The leecher's choker as the torrent feeds it: a peer that uploads to
//! us but lacks few of our pieces takes only part of an upload slot, so
//! more peers share our uplink, unless a session caps the slots.

mod support;

use minibit_core::piece::BLOCK_SIZE;
use minibit_core::torrent::{PeerKey, TorrentConfig};
use minibit_core::wire::Message;
use support::{Content, Harness, bitfield_message, secs};

/// 64 pieces of one block; we hold 0..40. Eight peers hold 0..38 (they
/// lack two of ours) and one piece we lack each (40 + i); each is
/// interested in us, unchokes us and sends us its piece, so it uploads
/// to us and wants little of ours.
fn leecher_with_partners_wanting_little() -> (Harness, Vec<PeerKey>) {
    let content = Content::new(64 * u64::from(BLOCK_SIZE), u64::from(BLOCK_SIZE), 5);
    let have: Vec<u32> = (0..40).collect();
    let mut h = Harness::new(content, &have, TorrentConfig::default());
    let mut peers = Vec::new();
    for i in 0..8u8 {
        let peer = h.connect(i + 1, true);
        let mut holds: Vec<u32> = (0..38).collect();
        holds.push(40 + u32::from(i));
        h.recv(peer, bitfield_message(&h.content.layout, &holds));
        h.recv(peer, Message::Interested);
        h.recv(peer, Message::Unchoke);
        for block in h.take_requests(peer) {
            h.deliver(peer, block);
        }
        peers.push(peer);
    }
    h.actions();
    (h, peers)
}

#[test]
fn partners_wanting_little_share_the_slots_they_leave_idle() {
    let (mut h, _) = leecher_with_partners_wanting_little();
    h.advance(secs(10));
    // Each lacks 2 of our pieces: a sixteenth of a slot. The four slots
    // (no optimistic holder yet: the period that began at the first
    // unchoke found nobody choked, and its slot is regular until it ends)
    // go to twice as many peers: all eight.
    assert_eq!(h.torrent.unchoked_peers(), 8);
}

#[test]
fn a_session_cap_on_the_slots_is_never_exceeded() {
    let (mut h, _) = leecher_with_partners_wanting_little();
    h.advance(secs(10));
    assert!(h.torrent.unchoked_peers() > 4);
    // A session sharing a global number of slots gives this torrent four.
    h.torrent.set_unchoke_slots(h.now, 4);
    assert_eq!(h.torrent.unchoked_peers(), 4);
    h.advance(secs(10));
    assert_eq!(h.torrent.unchoked_peers(), 4);
}

#[test]
fn a_peer_that_gave_gets_a_giver_slot_as_soon_as_it_is_interested() {
    let content = Content::new(64 * u64::from(BLOCK_SIZE), u64::from(BLOCK_SIZE), 7);
    let have: Vec<u32> = (0..40).collect();
    let mut h = Harness::new(content, &have, TorrentConfig::default());
    // Ten peers, each holding one piece we lack and none of ours, unchoke
    // us and send us their piece; then, one by one, they become
    // interested in us.
    let mut givers = Vec::new();
    for i in 0..10u8 {
        let peer = h.connect(i + 1, true);
        h.recv(
            peer,
            bitfield_message(&h.content.layout, &[40 + u32::from(i)]),
        );
        h.recv(peer, Message::Unchoke);
        for block in h.take_requests(peer) {
            h.deliver(peer, block);
        }
        givers.push(peer);
    }
    for (n, &peer) in givers.iter().enumerate() {
        h.recv(peer, Message::Interested);
        // No 10 s round passes: the four slots, then the giver slots,
        // take each at once.
        assert_eq!(h.torrent.unchoked_peers(), n + 1);
    }
    // A peer that never sent us a block waits for the round (it may get
    // the optimistic unchoke then).
    let newcomer = h.connect(20, true);
    h.recv(newcomer, bitfield_message(&h.content.layout, &[50]));
    h.recv(newcomer, Message::Interested);
    assert_eq!(h.torrent.unchoked_peers(), 10);
}
