//! The `minibit-peer` binary end to end: `info`, `search`, a download from
//! a tracker's catalogue with `--exit-on-complete`, and error reporting.

mod common;

use std::process::Output;
use std::time::Duration;

use minibit_core::torrent::AnnounceEvent;
use minibit_peer::Session;
use tokio::process::Command;

use common::{local_config, make_single, start_stub};

async fn run(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_minibit-peer"))
        .args(args)
        .kill_on_drop(true)
        .output();
    // A generous bound so a hung binary fails the test instead of CI.
    tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .expect("minibit-peer did not exit")
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn info_shows_the_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let metainfo = make_single(dir.path(), "clip.bin", 100_000, "http://t/announce");
    let path = dir.path().join("clip.torrent");
    std::fs::write(&path, metainfo.to_bytes()).unwrap();
    let output = run(&["info", path.to_str().unwrap()]).await;
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.contains("clip.bin"));
    assert!(text.contains(&metainfo.info_hash().to_hex()));
    assert!(text.contains("pieces:       4"), "{text}");
    assert!(text.contains("100000 bytes"));
}

#[tokio::test]
async fn errors_are_one_line_and_a_failure_code() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.torrent");
    let output = run(&["-q", missing.to_str().unwrap()]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_by_name_from_a_tracker_catalogue_and_exits_when_complete() {
    let seed_dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let stub = start_stub().await;
    let metainfo = make_single(
        seed_dir.path(),
        "movie one.bin",
        700_000,
        &stub.announce_url(),
    );
    stub.publish(metainfo.clone());
    let seeder = Session::start(local_config(&metainfo, seed_dir.path(), 1))
        .await
        .unwrap();
    while stub.log.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let search = run(&["search", &stub.base, "movie"]).await;
    assert!(search.status.success());
    let listing = stdout(&search);
    assert!(listing.contains("movie one.bin"), "{listing}");
    assert!(listing.contains("seeders 1"), "{listing}");

    let output = run(&[
        "-q",
        "--exit-on-complete",
        "-o",
        out_dir.path().to_str().unwrap(),
        &stub.base,
        "movie one.bin",
    ])
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let original = std::fs::read(seed_dir.path().join("movie one.bin")).unwrap();
    let copy = std::fs::read(out_dir.path().join("movie one.bin")).unwrap();
    assert!(original == copy, "the copy differs");
    let summary = stdout(&output);
    assert!(summary.contains("movie one.bin"), "{summary}");
    let seeder_port = seeder.local_addr().port();
    seeder.shutdown().await.unwrap();
    // The downloader announced started, completed and stopped, in order.
    let events: Vec<AnnounceEvent> = stub
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|&&(addr, _)| addr.port() != seeder_port)
        .map(|&(_, event)| event)
        .collect();
    assert_eq!(
        events,
        [
            AnnounceEvent::Started,
            AnnounceEvent::Completed,
            AnnounceEvent::Stopped
        ]
    );
}
