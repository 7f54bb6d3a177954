//! End-to-end on 127.0.0.1: a seeding session and a leeching session find
//! each other through a small HTTP tracker stub and move a generated
//! multi-file torrent; the copy must be byte-identical.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minibit_core::metainfo::{Metainfo, MetainfoBuilder};
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::{AnnounceRequest, AnnounceResponse, TrackerPeer};
use minibit_peer::{Session, SessionConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Every announce the stub received: (listen port, event).
type Log = Arc<Mutex<Vec<(u16, AnnounceEvent)>>>;

/// A minimal HTTP tracker: remembers every announcing peer (as
/// 127.0.0.1:port) and answers each announce with the others, compact form.
async fn tracker_stub() -> (String, Log) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let seen = Arc::clone(&log);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "request cut short");
                request.extend_from_slice(&buf[..n]);
            }
            let line = String::from_utf8_lossy(&request)
                .lines()
                .next()
                .unwrap()
                .to_owned();
            let target = line.split(' ').nth(1).unwrap();
            let query = target.split_once('?').unwrap().1;
            let announce = AnnounceRequest::parse_query(query).unwrap();
            let peers = {
                let mut seen = seen.lock().unwrap();
                seen.push((announce.port, announce.event));
                let mut ports: Vec<u16> = seen.iter().map(|&(p, _)| p).collect();
                ports.sort_unstable();
                ports.dedup();
                ports
                    .into_iter()
                    .filter(|&p| p != announce.port)
                    .map(|p| TrackerPeer {
                        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, p)),
                        peer_id: None,
                    })
                    .collect()
            };
            let body = AnnounceResponse {
                interval: 60,
                min_interval: None,
                complete: 0,
                incomplete: 0,
                peers,
                warning: None,
            }
            .encode(true);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(&body).await.unwrap();
        }
    });
    (url, log)
}

/// Deterministic pseudo-random bytes (xorshift), so pieces differ.
fn content(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn make_torrent(root: &Path, announce: &str) -> Metainfo {
    let folder = root.join("album");
    std::fs::create_dir_all(folder.join("disc2")).unwrap();
    std::fs::write(folder.join("a.bin"), content(3 * 1024 * 1024 + 12_345, 1)).unwrap();
    std::fs::write(folder.join("disc2/b.bin"), content(1024 * 1024 + 777, 2)).unwrap();
    std::fs::write(folder.join("empty.txt"), b"").unwrap();
    MetainfoBuilder::new(&folder)
        .piece_length(Some(64 * 1024))
        .announce(announce)
        .build()
        .unwrap()
}

fn local_config(metainfo: &Metainfo, dir: &Path, seed: u64) -> SessionConfig {
    let mut config = SessionConfig::new(metainfo.clone(), dir);
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    config.torrent.rng_seed = seed;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leecher_downloads_a_multi_file_torrent_from_a_seeder() {
    let seed_dir = tempfile::tempdir().unwrap();
    let leech_dir = tempfile::tempdir().unwrap();
    let (announce, log) = tracker_stub().await;
    let metainfo = make_torrent(seed_dir.path(), &announce);

    let seeder = Session::start(local_config(&metainfo, seed_dir.path(), 1))
        .await
        .unwrap();
    assert!(
        seeder.progress().borrow().complete,
        "the seeder resumed every piece"
    );
    // Let the seeder's `started` announce reach the stub first.
    while log.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let leecher = Session::start(local_config(&metainfo, leech_dir.path(), 2))
        .await
        .unwrap();
    assert_eq!(leecher.progress().borrow().pieces_have, 0);
    // A generous bound so a broken swarm fails instead of hanging.
    let done = tokio::time::timeout(Duration::from_secs(120), leecher.wait_complete()).await;
    assert_eq!(done, Ok(true), "the leecher completed");
    let leech_port = leecher.local_addr().port();
    leecher.shutdown().await.unwrap();
    seeder.shutdown().await.unwrap();

    for file in ["a.bin", "disc2/b.bin", "empty.txt"] {
        let original = std::fs::read(seed_dir.path().join("album").join(file)).unwrap();
        let copy = std::fs::read(leech_dir.path().join("album").join(file)).unwrap();
        assert!(original == copy, "{file} differs");
    }
    let events: Vec<AnnounceEvent> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|&&(port, _)| port == leech_port)
        .map(|&(_, event)| event)
        .collect();
    assert_eq!(events.first(), Some(&AnnounceEvent::Started));
    assert!(events.contains(&AnnounceEvent::Completed));
    assert_eq!(events.last(), Some(&AnnounceEvent::Stopped));
}

#[tokio::test]
async fn a_restarted_leecher_keeps_only_verified_pieces() {
    let seed_dir = tempfile::tempdir().unwrap();
    let metainfo = make_torrent(seed_dir.path(), "http://127.0.0.1:9/announce");
    let dir = tempfile::tempdir().unwrap();
    // A partial, partly corrupt copy: the first MiB of a.bin is right, then
    // one flipped byte in the third piece.
    let original = std::fs::read(seed_dir.path().join("album/a.bin")).unwrap();
    let mut partial = original[..1024 * 1024].to_vec();
    partial[2 * 64 * 1024 + 5] ^= 0xff;
    std::fs::create_dir_all(dir.path().join("album")).unwrap();
    std::fs::write(dir.path().join("album/a.bin"), &partial).unwrap();
    let session = Session::start(local_config(&metainfo, dir.path(), 3))
        .await
        .unwrap();
    let progress = session.progress().borrow().clone();
    assert_eq!(progress.pieces_have, 15, "16 pieces on disk, one corrupt");
    assert_eq!(progress.have_bytes, 15 * 64 * 1024);
    assert!(!progress.complete);
    // The files were preallocated to their full length.
    let len = std::fs::metadata(dir.path().join("album/a.bin"))
        .unwrap()
        .len();
    assert_eq!(len, original.len() as u64);
    session.shutdown().await.unwrap();
}
