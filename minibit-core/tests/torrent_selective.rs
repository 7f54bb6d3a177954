//! Selective download (file priorities) on a `Torrent`: rule tests and a
//! property test with random priorities, changed at random moments, and
//! peers holding random pieces. Checked after every step: no request for a
//! piece that was skipped when it was not in progress, and the torrent is
//! finished (event, `completed` announce, not interested) exactly when
//! every wanted piece is verified.

mod support;

use std::collections::BTreeSet;

use minibit_core::bitfield::Bitfield;
use minibit_core::piece::{BlockRef, Layout, PieceIndex};
use minibit_core::priority::{PiecePriorities, Priority};
use minibit_core::torrent::{
    Action, AnnounceEvent, DisconnectReason, Event, PeerKey, TorrentConfig,
};
use minibit_core::wire::Message;
use proptest::prelude::*;
use support::{Content, Harness, bitfield_message, secs};

/// 4 files over 12 pieces of 32 KiB (two blocks each); file boundaries
/// fall inside pieces 2, 5 and 8 (shared pieces).
const FILES: [u64; 4] = [90_000, 100_000, 110_000, 93_216];
const PIECE: u64 = 32 * 1024;

fn content(seed: u64) -> Content {
    let total: u64 = FILES.iter().sum();
    let mut content = Content::new(total, PIECE, seed);
    // Same bytes and piece hashes, cut into four files.
    content.layout = Layout::new(PIECE, &FILES).unwrap();
    content
}

fn config(seed: u64, files: &[Priority]) -> TorrentConfig {
    TorrentConfig {
        rng_seed: Some(seed),
        file_priorities: files.to_vec(),
        allowed_fast_count: 0,
        ..TorrentConfig::default()
    }
}

fn wanted(layout: &Layout, files: &[Priority]) -> Bitfield {
    PiecePriorities::from_files(layout, files).wanted().clone()
}

/// Carries out actions until none is left: blocks are stored in `stored`,
/// every piece verifies, disconnects are acknowledged. Returns the actions
/// seen.
fn settle(h: &mut Harness) -> Vec<Action> {
    let mut seen = Vec::new();
    loop {
        let actions = h.actions();
        if actions.is_empty() {
            return seen;
        }
        for action in &actions {
            match action {
                Action::VerifyPiece { piece } => {
                    h.torrent.handle_piece_verified(h.now, *piece, true);
                }
                Action::Disconnect { peer, .. } => {
                    h.torrent.handle_peer_disconnected(h.now, *peer);
                }
                _ => {}
            }
        }
        seen.extend(actions);
    }
}

fn requests(h: &Harness, actions: &[Action]) -> Vec<(PeerKey, BlockRef)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                peer,
                message:
                    Message::Request {
                        piece,
                        offset,
                        length,
                    },
            } => Some((
                *peer,
                h.content
                    .layout
                    .block_ref(*piece, *offset, *length)
                    .unwrap(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn only_wanted_pieces_are_requested_and_finishing_them_completes_the_download() {
    use Priority::{High, Normal, Skip};
    let files = [Skip, Normal, Skip, High];
    let mut h = Harness::new(content(1), &[], config(1, &files));
    let wanted = wanted(&h.content.layout, &files);
    // File 1 (90_000..190_000) is pieces 2..=5, file 3 (300_000..) is 9..=11.
    let expected: Vec<u32> = wanted.iter_set().map(PieceIndex::get).collect();
    assert_eq!(expected, [2, 3, 4, 5, 9, 10, 11]);
    assert_eq!(h.torrent.stats().wanted, 7 * PIECE - (12 * PIECE - 393_216));
    let seed = h.connect(1, true);
    h.recv(seed, Message::HaveAll);
    h.recv(seed, Message::Unchoke);
    let mut asked = BTreeSet::new();
    let mut events = Vec::new();
    let mut all = Vec::new();
    for _ in 0..20 {
        let actions = settle(&mut h);
        let reqs = requests(&h, &actions);
        all.extend(actions);
        events.extend(h.events());
        if reqs.is_empty() {
            break;
        }
        for (peer, block) in reqs {
            // High pieces (9..=11) come before normal ones.
            if asked.len() < 3 {
                assert!(block.piece.get() >= 9, "normal piece before a high one");
            }
            asked.insert(block.piece.get());
            h.deliver(peer, block);
        }
    }
    assert_eq!(asked.into_iter().collect::<Vec<_>>(), expected);
    assert!(h.torrent.is_finished());
    assert_eq!(h.torrent.stats().left, 0);
    assert_eq!(h.torrent.have().count(), 7);
    assert!(events.contains(&Event::DownloadCompleted));
    assert!(all.iter().any(|a| matches!(
        a,
        Action::Announce {
            event: AnnounceEvent::Completed,
            left: 0,
            ..
        }
    )));
    // Nothing more from the seed: we disconnect it (both done).
    assert!(all.iter().any(|a| matches!(
        a,
        Action::Disconnect {
            reason: DisconnectReason::BothSeeding,
            ..
        }
    )));
}

#[test]
fn a_peer_with_only_skipped_pieces_is_not_interesting() {
    use Priority::{Normal, Skip};
    let files = [Normal, Skip, Skip, Skip];
    let mut h = Harness::new(content(2), &[], config(2, &files));
    let peer = h.connect(1, false);
    // Pieces 6..=11 lie only in skipped files (file 1 starts in piece 2).
    h.recv(
        peer,
        bitfield_message(&h.content.layout, &[6, 7, 8, 9, 10, 11]),
    );
    let actions = h.actions();
    assert!(!Harness::sent_to(&actions, peer).contains(&Message::Interested));
    // Wanting file 3 at run time makes it interesting and requested.
    h.torrent
        .set_file_priorities(h.now, &[Normal, Skip, Skip, Normal]);
    let actions = h.actions();
    assert!(Harness::sent_to(&actions, peer).contains(&Message::Interested));
    h.recv(peer, Message::Unchoke);
    let reqs = h.take_requests(peer);
    assert!(!reqs.is_empty());
    assert!(reqs.iter().all(|b| (9..=11).contains(&b.piece.get())));
}

#[test]
fn skipping_every_missing_piece_finishes_at_once() {
    use Priority::{Normal, Skip};
    let mut h = Harness::new(content(3), &[0, 1], config(3, &[]));
    assert!(!h.torrent.is_finished());
    h.torrent
        .set_file_priorities(h.now, &[Normal, Skip, Skip, Skip]);
    // File 0 is pieces 0..=2: piece 2 is still missing.
    assert!(!h.torrent.is_finished());
    h.torrent
        .set_file_priorities(h.now, &[Skip, Skip, Skip, Skip]);
    assert!(h.torrent.is_finished());
    assert!(h.events().contains(&Event::DownloadCompleted));
    h.advance(secs(1));
    assert!(h.actions().iter().any(|a| matches!(
        a,
        Action::Announce {
            event: AnnounceEvent::Completed,
            ..
        }
    )));
}

#[derive(Clone, Debug)]
enum Op {
    /// A peer with the pieces of the mask (all of them: a seed) unchokes us.
    Connect(u16),
    /// Delivers the `n`-th outstanding request.
    Deliver(usize),
    /// New file priorities.
    Priorities(Vec<Priority>),
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::Skip),
        Just(Priority::Normal),
        Just(Priority::High)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => any::<u16>().prop_map(Op::Connect),
        8 => any::<usize>().prop_map(Op::Deliver),
        1 => prop::collection::vec(priority(), 4).prop_map(Op::Priorities),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn never_requests_a_skipped_piece_and_finishes_iff_wanted_pieces_are_verified(
        start in prop::collection::vec(priority(), 4),
        have in any::<u16>(),
        ops in prop::collection::vec(op(), 1..80),
        seed in any::<u64>(),
    ) {
        let have: Vec<u32> = (0..12).filter(|i| have & (1 << i) != 0).collect();
        let mut h = Harness::new(content(seed), &have, config(seed, &start));
        let layout = h.content.layout.clone();
        let mut files = start.clone();
        let mut outstanding: Vec<(PeerKey, BlockRef)> = Vec::new();
        // Pieces some block of which was requested and that are not verified.
        let mut in_progress: BTreeSet<u32> = BTreeSet::new();
        // Skipped pieces that were in progress when they were skipped.
        let mut grandfathered: BTreeSet<u32> = BTreeSet::new();
        let mut peers = 0u8;
        let mut finished = h.torrent.is_finished();
        for op in ops {
            match op {
                Op::Connect(mask) if peers < 10 => {
                    peers += 1;
                    let key = h.connect(peers, true);
                    let pieces: Vec<u32> = (0..12).filter(|i| mask & (1 << i) != 0).collect();
                    h.recv(key, bitfield_message(&layout, &pieces));
                    h.recv(key, Message::Unchoke);
                }
                Op::Deliver(n) if !outstanding.is_empty() => {
                    let (peer, block) = outstanding.swap_remove(n % outstanding.len());
                    h.deliver(peer, block);
                }
                Op::Connect(_) | Op::Deliver(_) => {}
                Op::Priorities(new) => {
                    let now_wanted = wanted(&layout, &new);
                    for &piece in &in_progress {
                        if !now_wanted.has(layout.piece_index(piece).unwrap()) {
                            grandfathered.insert(piece);
                        }
                    }
                    h.torrent.set_file_priorities(h.now, &new);
                    files = new;
                }
            }
            let actions = settle(&mut h);
            let wanted_now = wanted(&layout, &files);
            for (peer, block) in requests(&h, &actions) {
                let piece = block.piece.get();
                prop_assert!(
                    wanted_now.has(block.piece) || grandfathered.contains(&piece),
                    "requested piece {} of a skipped file ({:?})", piece, files
                );
                in_progress.insert(piece);
                outstanding.push((peer, block));
            }
            for action in &actions {
                if let Action::Disconnect { peer, .. } = action {
                    outstanding.retain(|(p, _)| p != peer);
                }
            }
            for piece in h.torrent.have().iter_set() {
                in_progress.remove(&piece.get());
                grandfathered.remove(&piece.get());
            }
            let done = wanted_now.iter_set().all(|p| h.torrent.have().has(p));
            prop_assert_eq!(h.torrent.is_finished(), done);
            let completed = h.events().contains(&Event::DownloadCompleted);
            prop_assert_eq!(completed, done && !finished, "DownloadCompleted on finishing only");
            if done {
                prop_assert_eq!(h.torrent.stats().left, 0);
                let interested_sent = actions.iter().any(|a| matches!(
                    a,
                    Action::Send { message: Message::Interested, .. }
                ));
                prop_assert!(!interested_sent, "interested while finished");
            }
            finished = done;
        }
    }
}
