//! A torrent nobody answers for: the user is told on stderr ("no tracker
//! answered; 0 peers" with each tracker's last error), and a leecher whose
//! first announce lists no peer re-announces within seconds, so a seeder
//! that joins a moment later is found long before the tracker's interval.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minibit_core::metainfo::MetainfoBuilder;
use minibit_core::tracker::{AnnounceResponse, TrackerPeer};
use minibit_peer::Session;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;

use common::{content, local_config};

/// A `http://127.0.0.1:PORT/announce` URL where nothing listens.
async fn dead_tracker_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[tokio::test]
async fn the_binary_says_when_no_tracker_answered_with_each_trackers_error() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dead_tracker_url().await;
    // A UDP port where nothing listens (refused at once) and a scheme
    // minibit does not speak.
    let udp = "udp://127.0.0.1:9/announce";
    let wss = "wss://127.0.0.1:9/announce";
    std::fs::write(dir.path().join("src.bin"), content(100_000, 4)).unwrap();
    let metainfo = MetainfoBuilder::new(dir.path().join("src.bin"))
        .announce(udp)
        .announce_list(vec![
            vec![udp.to_owned()],
            vec![dead.clone()],
            vec![wss.to_owned()],
        ])
        .build()
        .unwrap();
    let torrent = dir.path().join("src.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_minibit-peer"))
        .args(["--bind", "127.0.0.1", "-o"])
        .arg(&out)
        .arg(&torrent)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("no tracker answered; 0 peers") {
                return Some(line);
            }
        }
        None
    })
    .await
    .expect("no 'no tracker answered' line within 60 s")
    .expect("minibit-peer exited without saying no tracker answered");
    child.kill().await.unwrap();
    assert!(
        found.contains(&format!("{wss} (unsupported scheme)")),
        "{found}"
    );
    for tried in [udp, dead.as_str()] {
        let after = &found[found.find(tried).expect(tried) + tried.len()..];
        assert!(
            !after.starts_with(" (no answer yet)") && after.starts_with(" ("),
            "{tried}'s error is named: {found}"
        );
    }
}

/// A tracker answering with `interval` 1800 s and no `min interval`; it
/// lists no peer until `listed` holds an address.
async fn late_tracker(listed: Arc<Mutex<Option<SocketAddr>>>) -> (String, Arc<Mutex<u32>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let announces: Arc<Mutex<u32>> = Arc::default();
    let count = Arc::clone(&announces);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let listed = Arc::clone(&listed);
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                *count.lock().unwrap() += 1;
                let peers = listed
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|&addr| TrackerPeer {
                        addr,
                        peer_id: None,
                    })
                    .collect();
                let body = AnnounceResponse {
                    interval: 1800,
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
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            });
        }
    });
    (url, announces)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leecher_alone_finds_a_seeder_that_joins_after_its_first_announce_within_seconds() {
    let listed: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
    let (url, announces) = late_tracker(Arc::clone(&listed)).await;
    let seed_dir = tempfile::tempdir().unwrap();
    let leech_dir = tempfile::tempdir().unwrap();
    std::fs::write(seed_dir.path().join("late.bin"), content(300_000, 5)).unwrap();
    let metainfo = MetainfoBuilder::new(seed_dir.path().join("late.bin"))
        .piece_length(Some(32 * 1024))
        .announce(&url)
        .build()
        .unwrap();

    let leecher = Session::start(local_config(&metainfo, leech_dir.path(), 1))
        .await
        .unwrap();
    // Its `started` announce is answered with no peer.
    while *announces.lock().unwrap() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The seeder joins without announcing (so it never dials the leecher):
    // only the leecher's next announce can bring them together.
    let mut seed_config = local_config(&metainfo, seed_dir.path(), 2);
    seed_config.announce_url = Some(dead_tracker_url().await);
    let seeder = Session::start(seed_config).await.unwrap();
    *listed.lock().unwrap() = Some(seeder.local_addr());
    let joined = tokio::time::Instant::now();

    // Without the alone back-off the next announce comes after 30 s at the
    // earliest (the tracker says 1800 s); with it, after about 2 s.
    let complete = tokio::time::timeout(Duration::from_secs(20), leecher.wait_complete()).await;
    let waited = joined.elapsed();
    assert!(
        matches!(complete, Ok(true)),
        "the leecher did not find the seeder within 20 s ({} announces)",
        announces.lock().unwrap()
    );
    println!("found the late seeder and completed {waited:.1?} after it joined");
    assert_eq!(
        std::fs::read(leech_dir.path().join("late.bin")).unwrap(),
        std::fs::read(seed_dir.path().join("late.bin")).unwrap()
    );
    leecher.shutdown().await.unwrap();
    seeder.shutdown().await.unwrap();
}
