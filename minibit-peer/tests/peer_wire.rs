//! A seeding session seen from a hand-written peer on a raw TCP socket:
//! it answers a correct handshake with its own and its pieces, serves a
//! requested block, and closes connections that send a wrong info-hash or
//! a malformed frame.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use minibit_core::metainfo::{InfoHash, Metainfo};
use minibit_core::wire::{Decoder, Handshake, Message, PeerId};
use minibit_peer::{Session, SessionHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{content, init_logging, local_config, make_single};

/// A generous bound so a stuck exchange fails instead of hanging.
const WAIT: Duration = Duration::from_secs(30);

async fn seeder(dir: &std::path::Path) -> (Metainfo, SessionHandle) {
    init_logging();
    // No tracker: the test dials the seeder directly.
    let metainfo = make_single(dir, "data.bin", 100_000, "http://127.0.0.1:9/announce");
    let session = Session::start(local_config(&metainfo, dir, 1))
        .await
        .unwrap();
    (metainfo, session)
}

async fn send(stream: &mut TcpStream, write: impl FnOnce(&mut BytesMut)) {
    let mut buf = BytesMut::new();
    write(&mut buf);
    stream.write_all(&buf).await.unwrap();
}

/// Reads until `decode` yields an item.
async fn read_one<T>(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    mut decode: impl FnMut(&mut BytesMut) -> Option<T>,
) -> T {
    loop {
        if let Some(item) = decode(buf) {
            return item;
        }
        let n = tokio::time::timeout(WAIT, stream.read_buf(buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed early");
    }
}

/// Whether the other side closes the connection (reads until EOF or reset).
async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut sink)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

fn handshake(info_hash: InfoHash) -> Handshake {
    Handshake::new(info_hash, PeerId::generate([7; 12]))
}

#[tokio::test]
async fn a_handshaken_peer_gets_the_bitfield_and_a_requested_block() {
    let dir = tempfile::tempdir().unwrap();
    let (metainfo, session) = seeder(dir.path()).await;
    let mut stream = TcpStream::connect(session.local_addr()).await.unwrap();
    send(&mut stream, |b| handshake(metainfo.info_hash()).encode(b)).await;
    let mut buf = BytesMut::new();
    let theirs = read_one(&mut stream, &mut buf, |b| Handshake::decode(b).unwrap()).await;
    assert_eq!(theirs.info_hash, metainfo.info_hash());

    let pieces = metainfo.layout().piece_count();
    let mut decoder = Decoder::new(pieces);
    let first = read_one(&mut stream, &mut buf, |b| decoder.decode(b).unwrap()).await;
    // Without BEP 6 on our side the seeder announces its pieces with a bitfield.
    let Message::Bitfield(bits) = first else {
        panic!("expected a bitfield, got {first:?}")
    };
    let full = minibit_core::bitfield::Bitfield::full(pieces).to_wire();
    assert_eq!(bits, Bytes::from(full));

    send(&mut stream, |b| Message::Interested.encode(b)).await;
    let request = Message::Request {
        piece: 1,
        offset: 16_384,
        length: 16_384,
    };
    // Ask once unchoked (the seeder decides when); other messages are skipped.
    loop {
        let message = read_one(&mut stream, &mut buf, |b| decoder.decode(b).unwrap()).await;
        if message == Message::Unchoke {
            break;
        }
    }
    send(&mut stream, |b| request.encode(b)).await;
    let block = loop {
        let message = read_one(&mut stream, &mut buf, |b| decoder.decode(b).unwrap()).await;
        if let Message::Piece {
            piece,
            offset,
            data,
        } = message
        {
            assert_eq!((piece, offset), (1, 16_384));
            break data;
        }
    };
    let file = content(100_000, 3);
    let start = 32 * 1024 + 16_384;
    assert_eq!(block, &file[start..start + 16_384]);
    session.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_wrong_info_hash_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, session) = seeder(dir.path()).await;
    let mut stream = TcpStream::connect(session.local_addr()).await.unwrap();
    send(&mut stream, |b| handshake(InfoHash([0xee; 20])).encode(b)).await;
    assert!(closed_by_peer(&mut stream).await);
    session.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_malformed_frame_closes_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (metainfo, session) = seeder(dir.path()).await;
    let mut stream = TcpStream::connect(session.local_addr()).await.unwrap();
    send(&mut stream, |b| handshake(metainfo.info_hash()).encode(b)).await;
    let mut buf = BytesMut::new();
    read_one(&mut stream, &mut buf, |b| Handshake::decode(b).unwrap()).await;
    // Message id 99 does not exist.
    stream.write_all(&[0, 0, 0, 1, 99]).await.unwrap();
    assert!(closed_by_peer(&mut stream).await);
    // The session forgot the peer (the snapshot follows within a tick).
    let mut progress = session.progress();
    // (`is_ok_and` drops the watch guard: holding it would block the session.)
    let gone = tokio::time::timeout(WAIT, progress.wait_for(|p| p.peers == 0))
        .await
        .is_ok_and(|seen| seen.is_ok());
    assert!(gone, "the peer count dropped to 0");
    session.shutdown().await.unwrap();
}
