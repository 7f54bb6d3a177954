//! Hostile and dead trackers: a `failure reason` reaches the user's log,
//! garbage answers are survived, thousands of (dead) peers and peers that
//! are ourselves do not stop a download, and an unreachable tracker is
//! retried with back-off while the swarm goes on with the peers it knows.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minibit_core::metainfo::Metainfo;
use minibit_core::tracker::{AnnounceResponse, TrackerPeer};
use minibit_peer::{Session, SessionHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use common::scripted::{LogCapture, WAIT};
use common::{an_honest_seeder_dials, content, local_config, make_single, start_stub};

/// A tracker that answers every request with `answer(listen port of the
/// announcing peer)` (`None`: close without answering). Returns its announce
/// URL and the instants requests arrived.
async fn fixed_tracker(
    answer: impl Fn(u16) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Instant>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let log = Arc::clone(&seen);
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            log.lock().unwrap().push(Instant::now());
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let port = text
                    .split(['?', '&', ' '])
                    .find_map(|p| p.strip_prefix("port="))
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                let Some(body) = answer(port) else { return };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            });
        }
    });
    (url, seen)
}

fn compact(peers: Vec<SocketAddr>) -> Vec<u8> {
    AnnounceResponse {
        interval: 60,
        min_interval: None,
        complete: 0,
        incomplete: 0,
        peers: peers
            .into_iter()
            .map(|addr| TrackerPeer {
                addr,
                peer_id: None,
            })
            .collect(),
        warning: None,
    }
    .encode(true)
}

async fn session_with_tracker(metainfo: &Metainfo, dir: &Path, url: &str) -> SessionHandle {
    let mut config = local_config(metainfo, dir, 5);
    config.announce_url = Some(url.to_owned());
    config.options.torrent.min_announce_backoff = Duration::from_millis(100);
    Session::start(config).await.unwrap()
}

#[tokio::test]
async fn a_failure_reason_is_logged_for_the_user() {
    let log = LogCapture::install();
    let (url, _) =
        fixed_tracker(|_| Some(b"d14:failure reason17:go away, strangere".to_vec())).await;
    let dir = tempfile::tempdir().unwrap();
    let metainfo = make_single(dir.path(), "a.bin", 50_000, &url);
    let session = session_with_tracker(&metainfo, dir.path(), &url).await;
    let found = has_warning(&log, "go away, stranger").await;
    assert!(found, "the failure reason was not logged");
    session.shutdown().await.unwrap();
}

#[tokio::test]
async fn garbage_answers_are_retried_with_back_off() {
    let log = LogCapture::install();
    let (url, seen) = fixed_tracker(|_| Some(b"\xff\x00<html>not bencode".to_vec())).await;
    let dir = tempfile::tempdir().unwrap();
    let metainfo = make_single(dir.path(), "b.bin", 50_000, &url);
    let session = session_with_tracker(&metainfo, dir.path(), &url).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.lock().unwrap().len() < 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let times = seen.lock().unwrap().clone();
    assert!(times.len() >= 4, "only {} announces", times.len());
    // Back-off of 100 ms doubling: the 4th try comes no sooner than
    // 100 + 200 + 400 ms after the first (a timer never fires early).
    assert!(times[3] - times[0] >= Duration::from_millis(700));
    assert!(has_warning(&log, "announce").await);
    session.shutdown().await.unwrap();
}

/// Whether a WARN line containing `text` was logged (bounded wait).
async fn has_warning(log: &LogCapture, text: &str) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if log
            .lines()
            .iter()
            .any(|l| l.contains("WARN") && l.contains(text))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_dead_peers_and_ourselves_do_not_stop_a_download() {
    let seed_dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let len = 300_000;
    let metainfo = make_single(seed_dir.path(), "c.bin", len, "http://127.0.0.1:9/announce");
    let seeder = Session::start(local_config(&metainfo, seed_dir.path(), 1))
        .await
        .unwrap();
    let seeder_addr = seeder.local_addr();
    // 5 000 addresses nobody listens on (a port we just freed, on the
    // loopback network), with ourselves and the seeder among them.
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (url, _) = fixed_tracker(move |own_port| {
        let mut peers: Vec<SocketAddr> = (0..5_000u32)
            .map(|i| {
                let [_, b, c, d] = (i + 2).to_be_bytes();
                SocketAddr::from(([127, b, c, d], dead_port))
            })
            .collect();
        // Ourselves and the seeder come after 500 dead ones (a client keeps
        // only the first 1 000 of a compact list).
        peers.insert(500, SocketAddr::from(([127, 0, 0, 1], own_port)));
        peers.insert(501, seeder_addr);
        Some(compact(peers))
    })
    .await;
    let log = LogCapture::install();
    let leecher = session_with_tracker(&metainfo, out_dir.path(), &url).await;
    let done = tokio::time::timeout(Duration::from_secs(20), leecher.wait_complete()).await;
    assert_eq!(done, Ok(true), "the download did not finish");
    let copy = std::fs::read(out_dir.path().join("c.bin")).unwrap();
    assert!(copy == content(len, 3), "the downloaded file differs");
    assert!(
        !log.lines()
            .iter()
            .any(|l| l.contains("connection to ourselves")
                && l.contains(&format!(":{}", leecher.local_addr().port()))),
        "dialled itself"
    );
    leecher.shutdown().await.unwrap();
    seeder.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_tracker_does_not_stop_the_swarm() {
    let seed_dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let stub = start_stub().await;
    let len = 300_000;
    let metainfo = make_single(seed_dir.path(), "d.bin", len, &stub.announce_url());
    // The leecher's tracker accepts connections and hangs up on every one.
    let (dead, seen) = fixed_tracker(|_| None).await;
    let leecher = session_with_tracker(&metainfo, out_dir.path(), &dead).await;
    // The seeder learns the leecher from its own tracker and dials it.
    let seeder =
        an_honest_seeder_dials(&stub, &metainfo, seed_dir.path(), &leecher, out_dir.path()).await;
    assert!(!seen.lock().unwrap().is_empty(), "never tried the tracker");
    leecher.shutdown().await.unwrap();
    seeder.shutdown().await.unwrap();
}
