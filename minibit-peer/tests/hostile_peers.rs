//! Hostile peers against a running session: a scripted peer on a raw TCP
//! socket breaks the protocol in one way per test. Each time that peer is
//! disconnected with a logged reason (banned where it sent bad data), the
//! session goes on serving an honest peer, and downloads end with a
//! correct file.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::Metainfo;
use minibit_core::torrent::AnnounceEvent;
use minibit_core::wire::{Message, PeerId};
use minibit_peer::{Session, SessionHandle};
use tokio::net::TcpListener;

use common::scripted::{LogCapture, Scripted};
use common::{an_honest_seeder_dials, content, local_config, make_single, start_stub};

/// 100 000 bytes in 32 KiB pieces: 4 pieces, the last one 1 696 bytes.
const SMALL: usize = 100_000;

fn small_torrent(dir: &Path) -> Metainfo {
    // No tracker: the tests dial the session directly.
    make_single(dir, "data.bin", SMALL, "http://127.0.0.1:9/announce")
}

async fn seeder(dir: &Path) -> (Metainfo, SessionHandle) {
    let metainfo = small_torrent(dir);
    let session = Session::start(local_config(&metainfo, dir, 1))
        .await
        .unwrap();
    (metainfo, session)
}

/// A session holding nothing of `metainfo` yet.
async fn leecher(metainfo: &Metainfo, dir: &Path) -> SessionHandle {
    Session::start(local_config(metainfo, dir, 2))
        .await
        .unwrap()
}

fn peer_id(n: u8) -> PeerId {
    PeerId::generate([n; 12])
}

/// A scripted peer connected to `session` past the handshakes, with the
/// session's opening messages left unread.
async fn join(session: &SessionHandle, metainfo: &Metainfo, id: u8) -> Scripted {
    let pieces = metainfo.layout().piece_count();
    Scripted::handshaken(
        session.local_addr(),
        pieces,
        metainfo.info_hash(),
        peer_id(id),
    )
    .await
    .0
}

/// An honest peer still gets block (1, 0) from the seeder, byte for byte.
async fn still_serves(session: &SessionHandle, metainfo: &Metainfo) {
    let mut honest = join(session, metainfo, 200).await;
    honest.send(&Message::Interested).await;
    honest
        .recv_until(|m| (m == Message::Unchoke).then_some(()))
        .await;
    let request = Message::Request {
        piece: 1,
        offset: 0,
        length: 16_384,
    };
    honest.send(&request).await;
    let data = honest
        .recv_until(|m| match m {
            Message::Piece { data, .. } => Some(data),
            _ => None,
        })
        .await;
    let file = content(SMALL, 3);
    assert_eq!(data, &file[32 * 1024..32 * 1024 + 16_384]);
}

/// `send` is sent to a seeder by a handshaken peer: the seeder closes the
/// connection, logs `words` for it, and still serves an honest peer.
async fn seeder_drops(send: &[u8], words: &[&str]) {
    let log = LogCapture::install();
    let dir = tempfile::tempdir().unwrap();
    let (metainfo, session) = seeder(dir.path()).await;
    let mut peer = join(&session, &metainfo, 1).await;
    let addr = peer.local_addr();
    peer.raw(send).await;
    assert!(peer.closed_by_peer().await, "the connection stayed open");
    assert!(log.wait_line(addr, words).await, "no log line {words:?}");
    still_serves(&session, &metainfo).await;
    session.shutdown().await.unwrap();
}

fn encode(message: &Message) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    message.encode(&mut buf);
    buf.to_vec()
}

#[tokio::test]
async fn a_length_prefix_of_4_gib_closes_the_connection() {
    seeder_drops(&[0xff, 0xff, 0xff, 0xf0, 7], &["exceeds the cap"]).await;
}

#[tokio::test]
async fn a_request_over_16_kib_is_a_violation() {
    let request = Message::Request {
        piece: 0,
        offset: 0,
        length: 32 * 1024,
    };
    seeder_drops(&encode(&request), &["protocol violation", "length 32768"]).await;
}

#[tokio::test]
async fn a_request_past_the_end_of_a_piece_is_a_violation() {
    // The last piece is 1 696 bytes long.
    let request = Message::Request {
        piece: 3,
        offset: 1024,
        length: 1024,
    };
    seeder_drops(&encode(&request), &["protocol violation", "piece 3"]).await;
}

#[tokio::test]
async fn a_have_out_of_range_is_a_violation() {
    let have = Message::Have { piece: 4 };
    seeder_drops(&encode(&have), &["protocol violation", "out of range"]).await;
}

#[tokio::test]
async fn a_bitfield_of_the_wrong_length_closes_the_connection() {
    // 4 pieces take one byte; two are sent.
    let bitfield = Message::Bitfield(Bytes::from_static(&[0b1000_0000, 0]));
    seeder_drops(&encode(&bitfield), &["bitfield payload is 2 bytes"]).await;
}

#[tokio::test]
async fn a_bitfield_with_spare_bits_set_is_a_violation() {
    // Pieces 0..4 are bits 7..4; bit 0 is a spare bit.
    let bitfield = Message::Bitfield(Bytes::from_static(&[0b1000_0001]));
    seeder_drops(&encode(&bitfield), &["protocol violation", "spare bits"]).await;
}

#[tokio::test]
async fn a_message_before_the_handshake_closes_the_connection() {
    let log = LogCapture::install();
    let dir = tempfile::tempdir().unwrap();
    let (metainfo, session) = seeder(dir.path()).await;
    let mut peer = Scripted::connect(session.local_addr(), 4).await;
    let addr = peer.local_addr();
    peer.raw(&encode(&Message::Interested)).await;
    assert!(peer.closed_by_peer().await);
    let words = ["closed before the handshake", "protocol string"];
    assert!(log.wait_line(addr, &words).await);
    still_serves(&session, &metainfo).await;
    session.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_request_for_a_piece_we_lack_is_a_violation() {
    let log = LogCapture::install();
    let seed_dir = tempfile::tempdir().unwrap();
    let metainfo = small_torrent(seed_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let session = leecher(&metainfo, dir.path()).await;
    let mut peer = join(&session, &metainfo, 1).await;
    let addr = peer.local_addr();
    let request = Message::Request {
        piece: 0,
        offset: 0,
        length: 16_384,
    };
    peer.send(&request).await;
    assert!(peer.closed_by_peer().await);
    let words = ["disconnecting peer", "which we do not have"];
    assert!(log.wait_line(addr, &words).await);
    session.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_request_while_choked_is_dropped_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let (metainfo, session) = seeder(dir.path()).await;
    let mut peer = join(&session, &metainfo, 1).await;
    // Choked (nothing said yet): this request must never be answered.
    let early = Message::Request {
        piece: 0,
        offset: 0,
        length: 16_384,
    };
    peer.send(&early).await;
    peer.send(&Message::Interested).await;
    peer.recv_until(|m| (m == Message::Unchoke).then_some(()))
        .await;
    let late = Message::Request {
        piece: 2,
        offset: 16_384,
        length: 16_384,
    };
    peer.send(&late).await;
    let first = peer
        .recv_until(|m| match m {
            Message::Piece { piece, offset, .. } => Some((piece, offset)),
            _ => None,
        })
        .await;
    assert_eq!(
        first,
        (2, 16_384),
        "the request sent while choked was served"
    );
    session.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_connection_to_ourselves_is_refused() {
    let log = LogCapture::install();
    let dir = tempfile::tempdir().unwrap();
    let (metainfo, session) = seeder(dir.path()).await;
    // The session's peer id, from its answer to a first handshake.
    let (_first, theirs) =
        Scripted::handshaken(session.local_addr(), 4, metainfo.info_hash(), peer_id(5)).await;
    let mut peer = Scripted::connect(session.local_addr(), 4).await;
    let addr = peer.local_addr();
    // A handshake with the session's own peer id.
    peer.send_handshake(metainfo.info_hash(), theirs.peer_id)
        .await;
    assert!(peer.closed_by_peer().await);
    let words = ["handshake refused", "connection to ourselves"];
    assert!(log.wait_line(addr, &words).await);
    still_serves(&session, &metainfo).await;
    session.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_same_peer_id_twice_is_refused_and_the_first_stays() {
    let log = LogCapture::install();
    let dir = tempfile::tempdir().unwrap();
    let (metainfo, session) = seeder(dir.path()).await;
    let mut first = join(&session, &metainfo, 9).await;
    // Refused before the session answers with its own handshake.
    let mut second = Scripted::connect(session.local_addr(), 4).await;
    second
        .send_handshake(metainfo.info_hash(), peer_id(9))
        .await;
    let addr = second.local_addr();
    assert!(second.closed_by_peer().await);
    let words = ["handshake refused", "already connected"];
    assert!(log.wait_line(addr, &words).await);
    // The first connection still works.
    first.send(&Message::Interested).await;
    first
        .recv_until(|m| (m == Message::Unchoke).then_some(()))
        .await;
    session.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_handshake_never_finished_times_out() {
    let log = LogCapture::install();
    let dir = tempfile::tempdir().unwrap();
    let metainfo = small_torrent(dir.path());
    let mut config = local_config(&metainfo, dir.path(), 1);
    config.handshake_timeout = Duration::from_millis(500);
    let session = Session::start(config).await.unwrap();
    let mut peer = Scripted::connect(session.local_addr(), 4).await;
    let addr = peer.local_addr();
    // Half a handshake, then silence.
    peer.raw(&[19, b'B', b'i', b't']).await;
    assert!(peer.closed_by_peer().await);
    let words = ["closed before the handshake", "no handshake in time"];
    assert!(log.wait_line(addr, &words).await);
    still_serves(&session, &metainfo).await;
    session.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_request_flood_from_a_peer_that_does_not_read_is_cut_off() {
    let log = LogCapture::install();
    let dir = tempfile::tempdir().unwrap();
    let metainfo = small_torrent(dir.path());
    let mut config = local_config(&metainfo, dir.path(), 1);
    config.max_queued_bytes = 256 * 1024;
    let session = Session::start(config).await.unwrap();
    let mut peer = join(&session, &metainfo, 1).await;
    let addr = peer.local_addr();
    peer.send(&Message::Interested).await;
    peer.recv_until(|m| (m == Message::Unchoke).then_some(()))
        .await;
    // 50 000 requests (800 MB of blocks) over the torrent's blocks, and
    // never a byte read: the session must not buffer them all.
    let blocks = [(0, 0), (0, 16_384), (1, 0), (1, 16_384), (2, 0)];
    let mut flood = Vec::new();
    for i in 0..50_000 {
        let (piece, offset) = blocks[i % blocks.len()];
        flood.extend_from_slice(&encode(&Message::Request {
            piece,
            offset,
            length: 16_384,
        }));
    }
    // The session may hang up before taking it all.
    let _ = tokio::io::AsyncWriteExt::write_all(&mut peer.stream, &flood).await;
    let words = ["disconnecting peer", "peer is not reading"];
    assert!(log.wait_line(addr, &words).await, "no log line {words:?}");
    assert!(peer.closed_by_peer().await);
    still_serves(&session, &metainfo).await;
    session.shutdown().await.unwrap();
}

/// How a scripted seeder answers requests.
#[derive(Clone, Copy)]
enum Answer {
    /// With blocks of garbage.
    Corrupt,
    /// Never.
    Silent,
}

/// The scripted seeder's own loopback address: bans are per IP, so it must
/// not share 127.0.0.1 with the honest sessions.
const SCRIPTED_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A scripted seeder listening on [`SCRIPTED_IP`]: it accepts every connection,
/// claims every piece, unchokes, and answers requests as `answer` says.
/// Returns its address, the number of connections and of requests seen.
async fn scripted_seeder(
    metainfo: &Metainfo,
    answer: Answer,
) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((SCRIPTED_IP, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (count, asked) = (Arc::clone(&connections), Arc::clone(&requests));
    let pieces = metainfo.layout().piece_count();
    let info_hash = metainfo.info_hash();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let asked = Arc::clone(&asked);
            tokio::spawn(async move {
                let mut peer = Scripted::new(stream, pieces);
                peer.open_as_seeder(info_hash, peer_id(66), pieces).await;
                while let Some((piece, offset, length)) = peer.next_request().await {
                    asked.fetch_add(1, Ordering::SeqCst);
                    if let Answer::Corrupt = answer {
                        let block = Message::Piece {
                            piece,
                            offset,
                            data: Bytes::from(vec![0xAA; length as usize]),
                        };
                        if peer.try_send(&block).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, connections, requests)
}

/// A finished download next to a scripted seeder: the sessions still run.
struct NextTo {
    honest: SocketAddr,
    bad: SocketAddr,
    /// Requests the scripted seeder received.
    requests: usize,
    metainfo: Metainfo,
    leecher: SessionHandle,
    seeder: SessionHandle,
    _dirs: [tempfile::TempDir; 2],
}

impl NextTo {
    async fn shutdown(self) {
        self.leecher.shutdown().await.unwrap();
        self.seeder.shutdown().await.unwrap();
    }
}

/// A swarm of an honest seeder session and a scripted seeder behind a
/// tracker stub; a leecher session downloads 2 MiB (64 pieces) from both.
/// Checks the leecher's file once it finished.
async fn download_next_to(answer: Answer, request_timeout: Duration) -> NextTo {
    let log = LogCapture::install();
    let seed_dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let stub = start_stub().await;
    let len = 2 * 1024 * 1024;
    let metainfo = make_single(seed_dir.path(), "big.bin", len, &stub.announce_url());
    let seeder = Session::start(local_config(&metainfo, seed_dir.path(), 1))
        .await
        .unwrap();
    let (bad, _connections, requests) = scripted_seeder(&metainfo, answer).await;
    // The stub hands the scripted seeder's address out like any announcer's.
    stub.log.lock().unwrap().push((bad, AnnounceEvent::Started));
    let mut config = local_config(&metainfo, out_dir.path(), 7);
    config.options.torrent.request_timeout = request_timeout;
    let leecher = Session::start(config).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(60), leecher.wait_complete()).await;
    if done != Ok(true) {
        // What the leecher did, for the failure report.
        for line in log.lines() {
            eprintln!("{line}");
        }
    }
    assert_eq!(done, Ok(true), "the download did not finish");
    let copy = std::fs::read(out_dir.path().join("big.bin")).unwrap();
    assert!(copy == content(len, 3), "the downloaded file differs");
    NextTo {
        honest: seeder.local_addr(),
        bad,
        requests: requests.load(Ordering::SeqCst),
        metainfo,
        leecher,
        seeder,
        _dirs: [seed_dir, out_dir],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_corrupt_blocks_is_banned_and_its_pieces_fetched_again() {
    let log = LogCapture::install();
    let run = download_next_to(Answer::Corrupt, Duration::from_secs(30)).await;
    assert!(run.requests > 0, "the corrupt peer was never asked");
    assert!(
        !log.has_line(run.honest, &["banned"]),
        "the honest seeder was banned"
    );
    let bad = run.bad;
    assert!(
        log.lines()
            .iter()
            .any(|line| line.contains(&format!("ip={}", bad.ip()))
                && line.contains("peer banned for bad data"))
    );
    assert!(log.has_line(bad, &["disconnecting peer", "banned for bad data"]));
    // The ban covers the host, not one port: the same IP calling in from a
    // new port is refused (as soon as it is accepted).
    let pieces = run.metainfo.layout().piece_count();
    let mut again = Scripted::connect_from(bad.ip(), run.leecher.local_addr(), pieces).await;
    again
        .send_handshake(run.metainfo.info_hash(), peer_id(67))
        .await;
    assert!(
        again.closed_by_peer().await,
        "a banned host was let back in"
    );
    let from = again.local_addr();
    assert!(log.wait_line(from, &["connection refused", "banned"]).await);
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_answering_loses_its_requests_to_others() {
    let run = download_next_to(Answer::Silent, Duration::from_secs(2)).await;
    assert!(run.requests > 0, "the silent peer was never asked");
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_blocks_never_requested_is_dropped_and_nothing_is_used() {
    let log = LogCapture::install();
    let seed_dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let stub = start_stub().await;
    let len = 1024 * 1024;
    let metainfo = make_single(seed_dir.path(), "e.bin", len, &stub.announce_url());
    let pieces = metainfo.layout().piece_count();
    let leecher = Session::start(local_config(&metainfo, out_dir.path(), 3))
        .await
        .unwrap();
    // Before any honest peer is known, a peer that claims nothing sends a
    // garbage block for every block of the torrent.
    let mut peer = join(&leecher, &metainfo, 1).await;
    let garbage_from = peer.local_addr();
    peer.send(&Message::Bitfield(Bitfield::new(pieces).to_wire().into()))
        .await;
    for piece in 0..pieces {
        for offset in [0, 16_384] {
            let block = Message::Piece {
                piece,
                offset,
                data: Bytes::from(vec![0x55; 16_384]),
            };
            if peer.try_send(&block).await.is_err() {
                break;
            }
        }
    }
    assert!(peer.closed_by_peer().await, "the connection stayed open");
    assert!(
        log.wait_line(garbage_from, &["disconnecting peer", "never requested"])
            .await
    );
    // Then an honest seeder joins the swarm and dials the leecher.
    let seeder =
        an_honest_seeder_dials(&stub, &metainfo, seed_dir.path(), &leecher, out_dir.path()).await;
    // Only what was verified counts as downloaded: no garbage slipped in.
    assert_eq!(leecher.progress().borrow().downloaded, len as u64);
    leecher.shutdown().await.unwrap();
    seeder.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_peers_are_answered_and_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let metainfo = small_torrent(dir.path());
    let mut config = local_config(&metainfo, dir.path(), 1);
    config.max_connections = 600;
    config.options.torrent.max_peers = 600;
    let session = Session::start(config).await.unwrap();
    let addr = session.local_addr();
    let pieces = metainfo.layout().piece_count();
    let info_hash = metainfo.info_hash();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..500u32 {
        tasks.spawn(async move {
            let mut id = [b'x'; 20];
            id[..4].copy_from_slice(&n.to_be_bytes());
            let (mut peer, theirs) =
                Scripted::handshaken(addr, pieces, info_hash, PeerId(id)).await;
            assert_eq!(theirs.info_hash, info_hash);
            let first = peer.recv().await;
            assert!(matches!(first, Some(Message::Bitfield(_))), "{first:?}");
            peer
        });
    }
    let mut peers = Vec::new();
    while let Some(peer) = tasks.join_next().await {
        peers.push(peer.unwrap());
    }
    assert_eq!(peers.len(), 500);
    let mut progress = session.progress();
    let all = tokio::time::timeout(
        Duration::from_secs(30),
        progress.wait_for(|p| p.peers == 500),
    )
    .await
    .is_ok_and(|seen| seen.is_ok());
    assert!(all, "not every peer was connected at once");
    drop(peers);
    let gone = tokio::time::timeout(Duration::from_secs(30), progress.wait_for(|p| p.peers == 0))
        .await
        .is_ok_and(|seen| seen.is_ok());
    assert!(gone, "closed peers were not forgotten");
    still_serves(&session, &metainfo).await;
    session.shutdown().await.unwrap();
}
