//! `minibit-tracker FILE` end to end: the binary hashes and seeds a file,
//! catalogues its `.torrent`, and a `minibit-peer` session that knows only
//! the catalogue URL downloads an identical copy.

use std::io::{BufRead, BufReader, Lines};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use minibit_core::magnet::Magnet;
use minibit_core::metainfo::Metainfo;
use minibit_peer::{Session, SessionConfig};
use minibit_tracker::RegistryConfig;
use minibit_tracker::seed::{SeedOptions, Seeder};
use minibit_tracker::{TrackerState, serve};
use test_support::content::pseudo_random;
use test_support::process::signal;

fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    lines.next().expect("stdout closed").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_downloads_what_the_tracker_seeds() {
    let seed_dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(1_500_000, 0);
    let file = seed_dir.path().join("Holiday Movie.bin");
    std::fs::write(&file, &data).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_minibit-tracker"))
        .args(["--bind", "127.0.0.1:0", "-q", "--piece-length", "65536"])
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = next_line(&mut lines);
    let base = listening
        .strip_prefix("tracker listening on ")
        .unwrap()
        .to_owned();
    let seeding = next_line(&mut lines);
    let rest = seeding
        .strip_prefix("seeding Holiday Movie.bin info_hash=")
        .unwrap_or_else(|| panic!("unexpected line {seeding:?}"));
    let (hex, url) = rest.split_once(" torrent=").unwrap();
    assert_eq!(url, format!("{base}/torrents/Holiday%20Movie.bin.torrent"));

    let listing: serde_json::Value = serde_json::from_slice(
        &reqwest::get(format!("{base}/torrents?q=movie"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(listing[0]["name"], "Holiday Movie.bin");
    assert_eq!(listing[0]["info_hash"], hex);
    assert_eq!(listing[0]["size"], 1_500_000);
    assert_eq!(listing[0]["piece_length"], 65536);
    let magnet = Magnet::parse(listing[0]["magnet"].as_str().unwrap()).unwrap();
    assert_eq!(magnet.info_hash.to_hex(), hex);
    assert_eq!(magnet.name.as_deref(), Some("Holiday Movie.bin"));
    assert_eq!(magnet.trackers, [format!("{base}/announce")]);

    let torrent = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    let metainfo = Metainfo::from_bytes(&torrent).unwrap();
    assert_eq!(metainfo.info_hash().to_hex(), hex);
    assert_eq!(
        metainfo.announce(),
        Some(format!("{base}/announce").as_str())
    );

    let leech_dir = tempfile::tempdir().unwrap();
    let mut config = SessionConfig::new(metainfo, leech_dir.path());
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let leecher = Session::start(config).await.unwrap();
    // A generous bound so a broken swarm fails instead of hanging.
    let done = tokio::time::timeout(Duration::from_secs(120), leecher.wait_complete()).await;
    assert_eq!(done, Ok(true), "the leecher completed");
    leecher.shutdown().await.unwrap();
    let copy = std::fs::read(leech_dir.path().join("Holiday Movie.bin")).unwrap();
    assert!(copy == data, "the copy differs");

    signal(child.id(), "INT");
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGINT: {status}");
}

/// Arguments are checked before anything is bound or hashed: a missing
/// FILE after a real one gives one `error:` line naming it, and nothing
/// was listened on or seeded.
#[test]
fn a_missing_file_is_one_error_line_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.bin");
    std::fs::write(&real, pseudo_random(100_000, 0)).unwrap();
    for args in [vec!["-q"], vec![], vec!["-v"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_minibit-tracker"))
            .args(["--bind", "127.0.0.1:0"])
            .args(&args)
            .arg(&real)
            .arg(dir.path().join("nope.bin"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.is_empty(), "nothing bound or seeded: {stdout}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: "), "{stderr}");
        assert!(first.contains("nope.bin"), "{stderr}");
        assert!(first.contains("no such file or folder"), "{stderr}");
        if args.is_empty() || args == ["-q"] {
            assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        } else {
            assert!(
                stderr.contains("caused by:"),
                "-v shows the chain: {stderr}"
            );
        }
    }
    // A bad piece length too, and usage errors are clap's (exit 2).
    let out = Command::new(env!("CARGO_BIN_EXE_minibit-tracker"))
        .args(["--bind", "127.0.0.1:0", "--piece-length", "1000"])
        .arg(&real)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: --piece-length"));
    for bad in [
        ["--bind", "127.0.0.1:99999"],
        ["--bind", "localhost"],
        ["--interval", "0"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_minibit-tracker"))
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

/// `-v` is info and the default is warnings, as in `minibit-peer`.
#[test]
fn verbosity_is_the_same_convention_as_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.bin");
    std::fs::write(&file, pseudo_random(100_000, 0)).unwrap();
    let run = |flag: Option<&str>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_minibit-tracker"))
            .args(["--bind", "127.0.0.1:0"])
            .args(flag)
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        next_line(&mut lines);
        next_line(&mut lines); // seeding: the seeder's start is logged by now
        signal(child.id(), "INT");
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let info = run(Some("-v"));
    assert!(info.contains(" INFO "), "-v logs at info: {info}");
    assert!(!info.contains("DEBUG"), "{info}");
    let default = run(None);
    assert!(
        !default.contains(" INFO "),
        "the default is warnings: {default}"
    );
    let debug = run(Some("-vv"));
    assert!(debug.contains("DEBUG"), "-vv logs at debug: {debug}");
}

/// A leecher that never dials (like Transmission with loopback peers from a
/// tracker) is dialled by the embedded seeder as soon as it announces: the
/// seeder's own announce (at start, before the leecher existed) told it
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeder_dials_leechers_that_announce_later() {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(TrackerState::new(RegistryConfig::default()));
    tokio::spawn(serve(listener, Arc::clone(&state), std::future::pending()));
    let seed_dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(300_000, 0);
    let file = seed_dir.path().join("clip.bin");
    std::fs::write(&file, &data).unwrap();
    let options = SeedOptions {
        tracker_url: base,
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        piece_length: Some(32_768),
        dht: None,
    };
    let seeder = Seeder::start(options).await.unwrap();
    let seeding_url = seeder
        .add(&file, &state, |_, _| {})
        .await
        .unwrap()
        .torrent_url;

    let torrent = reqwest::get(&seeding_url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let leech_dir = tempfile::tempdir().unwrap();
    let mut config = SessionConfig::new(Metainfo::from_bytes(&torrent).unwrap(), leech_dir.path());
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    config.options.torrent.connect_to_peers = false;
    let leecher = Session::start(config).await.unwrap();
    // A generous bound so a broken swarm fails instead of hanging (the
    // seeder's next announce is 300 s away).
    let done = tokio::time::timeout(Duration::from_secs(60), leecher.wait_complete()).await;
    assert_eq!(done, Ok(true), "the seeder dialled the leecher");
    leecher.shutdown().await.unwrap();
    seeder.shutdown().await.unwrap();
    let copy = std::fs::read(leech_dir.path().join("clip.bin")).unwrap();
    assert!(copy == data, "the copy differs");
}
