//! A seeding session seen from a hand-written peer on a raw TCP socket
//! ([`common::scripted::Scripted`]): it answers a correct handshake with
//! its own and its pieces, serves a requested block, and closes
//! connections that send a wrong info-hash or a malformed frame. The
//! hostile cases are in `hostile_peers.rs`.

mod common;

use bytes::Bytes;
use minibit_core::metainfo::{InfoHash, Metainfo};
use minibit_core::wire::{Message, PeerId};
use minibit_peer::{Session, SessionHandle};

use common::scripted::{Scripted, WAIT};
use common::{content, init_logging, local_config, make_single};

async fn seeder(dir: &std::path::Path) -> (Metainfo, SessionHandle) {
    init_logging();
    // No tracker: the test dials the seeder directly.
    let metainfo = make_single(dir, "data.bin", 100_000, "http://127.0.0.1:9/announce");
    let session = Session::start(local_config(&metainfo, dir, 1))
        .await
        .unwrap();
    (metainfo, session)
}

async fn connect(session: &SessionHandle, metainfo: &Metainfo, info_hash: InfoHash) -> Scripted {
    let pieces = metainfo.layout().piece_count();
    let mut peer = Scripted::connect(session.local_addr(), pieces).await;
    peer.send_handshake(info_hash, PeerId::generate([7; 12]))
        .await;
    peer
}

#[tokio::test]
async fn a_handshaken_peer_gets_the_bitfield_and_a_requested_block() {
    let dir = tempfile::tempdir().unwrap();
    let (metainfo, session) = seeder(dir.path()).await;
    let mut peer = connect(&session, &metainfo, metainfo.info_hash()).await;
    let theirs = peer.handshake().await;
    assert_eq!(theirs.info_hash, metainfo.info_hash());

    let pieces = metainfo.layout().piece_count();
    let first = peer.recv().await;
    // Without BEP 6 on our side the seeder announces its pieces with a bitfield.
    let Some(Message::Bitfield(bits)) = first else {
        panic!("expected a bitfield, got {first:?}")
    };
    let full = minibit_core::bitfield::Bitfield::full(pieces).to_wire();
    assert_eq!(bits, Bytes::from(full));

    peer.send(&Message::Interested).await;
    // Ask once unchoked (the seeder decides when); other messages are skipped.
    peer.recv_until(|m| (m == Message::Unchoke).then_some(()))
        .await;
    let request = Message::Request {
        piece: 1,
        offset: 16_384,
        length: 16_384,
    };
    peer.send(&request).await;
    let (at, block) = peer
        .recv_until(|m| match m {
            Message::Piece {
                piece,
                offset,
                data,
            } => Some(((piece, offset), data)),
            _ => None,
        })
        .await;
    assert_eq!(at, (1, 16_384));
    let file = content(100_000, 3);
    let start = 32 * 1024 + 16_384;
    assert_eq!(block, &file[start..start + 16_384]);
    session.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_wrong_info_hash_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (metainfo, session) = seeder(dir.path()).await;
    let mut peer = connect(&session, &metainfo, InfoHash([0xee; 20])).await;
    assert!(peer.closed_by_peer().await);
    session.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_malformed_frame_closes_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (metainfo, session) = seeder(dir.path()).await;
    let mut peer = connect(&session, &metainfo, metainfo.info_hash()).await;
    peer.handshake().await;
    // Message id 99 does not exist.
    peer.raw(&[0, 0, 0, 1, 99]).await;
    assert!(peer.closed_by_peer().await);
    // The session forgot the peer (the snapshot follows within a tick).
    let mut progress = session.progress();
    // (`is_ok_and` drops the watch guard: holding it would block the session.)
    let gone = tokio::time::timeout(WAIT, progress.wait_for(|p| p.peers == 0))
        .await
        .is_ok_and(|seen| seen.is_ok());
    assert!(gone, "the peer count dropped to 0");
    session.shutdown().await.unwrap();
}
