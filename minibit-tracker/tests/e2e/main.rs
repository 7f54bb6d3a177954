//! End to end: the real `minibit-tracker` and `minibit-peer` binaries on
//! 127.0.0.1 move real files (a video made with ffmpeg, a file over 1 GiB,
//! the `photos/` folder of `testdata/`), a finished peer keeps the swarm
//! alive after the tracker restarts, a killed peer resumes, leechers
//! finish after the seeding tracker dies (peer exchange, [`dead_tracker`]),
//! peers that stay finish while others join and leave ([`churn`]), and a
//! peer whose tracker is unreachable finds the tracker's seeder through
//! the tracker's DHT node ([`dht_bootstrap`]).
//!
//! Process handling (output capture, bounded waits, kill by pid) comes
//! from `test_support`; the tracker/peer launchers are shared with the
//! interop tests.

#[allow(dead_code)]
#[path = "../interop/minibit.rs"]
mod minibit;

mod churn;
mod dead_tracker;
mod dht_bootstrap;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use minibit::{Tracker, info_hash, peer_binary};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use tempfile::TempDir;
use test_support::content;
use test_support::process::{Proc, free_port, run};
use test_support::tools;

/// The longest a transfer may take on a busy machine.
const TRANSFER: Duration = Duration::from_secs(300);

const MIB: u64 = 1024 * 1024;

fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("minibit-e2e-")
        .tempdir()
        .unwrap()
}

/// `minibit-peer ARGS...` with `RUST_LOG` set to `log` (or unset).
fn peer(name: &str, args: &[&str], log: Option<&str>) -> Proc {
    let mut command = Command::new(peer_binary());
    command.args(args);
    match log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    Proc::spawn(name, command)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// The hex SHA-256 of `path` (`sha256sum`).
fn sha256(path: &Path) -> String {
    let mut command = Command::new("sha256sum");
    command.arg(path);
    let out = run(command);
    out.split_whitespace().next().unwrap().to_owned()
}

/// Whether two files hold the same bytes (`cmp`, which stops at the first difference).
fn same_file(a: &Path, b: &Path) -> bool {
    Command::new("cmp")
        .arg("-s")
        .args([a, b])
        .status()
        .unwrap()
        .success()
}

/// Waits for a peer's exit and checks it succeeded.
fn exits_ok(proc: &mut Proc) {
    let status = proc.wait_exit(TRANSFER);
    if !status.success() {
        proc.fail(&format!("exited with {status}"));
    }
}

/// Waits for the summary line a peer prints on completion.
fn wait_complete(proc: &Proc) -> String {
    proc.wait_line(TRANSFER, |l| {
        l.contains(" complete in ").then(|| l.to_owned())
    })
}

/// `key=NUMBER` from a log line.
fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

/// How often the logs are polled while racing a transfer.
const POLL: Duration = Duration::from_millis(5);

/// Debug lines of the peer driver: verified pieces, connections, PEX.
const DRIVER_LOG: &str = "minibit_peer::client::driver=debug";

/// Pieces a peer run with [`DRIVER_LOG`] logged as verified.
fn verified(proc: &Proc) -> std::collections::BTreeSet<u32> {
    proc.lines()
        .iter()
        .filter(|l| l.contains("piece verified"))
        .filter_map(|l| field(l, "piece"))
        .map(|p| u32::try_from(p).unwrap())
        .collect()
}

/// Whether a peer run with [`DRIVER_LOG`] logged its completion.
fn completed(proc: &Proc) -> bool {
    proc.lines().iter().any(|l| l.contains("download complete"))
}

/// Sends `signal` (`STOP`, `CONT`) to the process `proc`, by its pid.
fn signal(proc: &Proc, name: &str) {
    test_support::process::signal(proc.id(), name);
}

/// Polls `check` every [`POLL`] until it holds; panics after [`TRANSFER`].
fn race_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + TRANSFER;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// Writes `len` bytes from a seeded RNG to `path`, 8 MiB at a time.
fn random_big_file(path: &Path, len: u64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = BufWriter::new(File::create(path).unwrap());
    let mut chunk = vec![0u8; 8 * MIB as usize];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        rng.fill_bytes(&mut chunk[..n]);
        out.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    out.flush().unwrap();
}

/// A peer's peak resident set size, bytes (`VmHWM` of `/proc/PID/status`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Duration of a media file in seconds, as `ffprobe` reads it.
fn media_duration(path: &Path) -> f64 {
    tools::require(&tools::FFPROBE);
    let mut command = Command::new("ffprobe");
    command
        .args(["-v", "error", "-show_entries", "format=duration"])
        .args(["-of", "default=noprint_wrappers=1:nokey=1"])
        .arg(path);
    run(command).trim().parse().unwrap()
}

#[test]
fn four_peers_download_a_video_at_once() {
    let tmp = tempdir();
    let video = tmp.path().join("seed").join("Test Card.mp4");
    std::fs::create_dir_all(video.parent().unwrap()).unwrap();
    tools::require(&tools::FFMPEG);
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg
        .args(["-v", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=20:size=640x360:rate=30",
        ])
        .args(["-f", "lavfi", "-i", "sine=duration=20"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"])
        .arg(&video);
    run(ffmpeg);
    let source_duration = media_duration(&video);
    assert!(
        (19.0..=21.0).contains(&source_duration),
        "{source_duration}"
    );

    let (_tracker, seeded) = Tracker::start(&[&video]);
    let url = &seeded[0].torrent_url;
    let started = Instant::now();
    let mut peers: Vec<(Proc, PathBuf)> = (1..=4)
        .map(|i| {
            let dir = tmp.path().join(format!("peer{i}"));
            let args = ["-q", "--exit-on-complete", "-o", path_str(&dir), url];
            (peer(&format!("peer {i}"), &args, None), dir)
        })
        .collect();
    let want = sha256(&video);
    for (proc, dir) in &mut peers {
        exits_ok(proc);
        let copy = dir.join("Test Card.mp4");
        assert_eq!(sha256(&copy), want, "{}", copy.display());
        assert!(
            (media_duration(&copy) - source_duration).abs() < 1e-6,
            "ffprobe reads the copy's duration"
        );
    }
    eprintln!(
        "4 peers downloaded {} bytes each in {:?}",
        video.metadata().unwrap().len(),
        started.elapsed()
    );
}

#[test]
fn a_file_over_one_gib_goes_through_one_peer_in_bounded_memory() {
    const LEN: u64 = 1126 * MIB; // 1.1 GiB
    let tmp = tempdir();
    let source = tmp.path().join("seed").join("big.bin");
    std::fs::create_dir_all(source.parent().unwrap()).unwrap();
    random_big_file(&source, LEN, 11);
    let (_tracker, seeded) = Tracker::start(&[&source]);

    let dir = tmp.path().join("download");
    let started = Instant::now();
    // Without --exit-on-complete, so the peer's /proc entry is still there
    // to read its peak once it completed.
    let leecher = peer(
        "leecher",
        &["-q", "-o", path_str(&dir), &seeded[0].torrent_url],
        None,
    );
    let summary = wait_complete(&leecher);
    let wall = started.elapsed();
    let peak = peak_rss(leecher.id());
    drop(leecher);
    eprintln!(
        "1.1 GiB ({LEN} bytes) through one minibit-peer: {wall:.2?} wall, peak RSS {} MiB ({peak} bytes)\n  {summary}",
        peak / MIB
    );
    assert!(same_file(&source, &dir.join("big.bin")), "the copy differs");
    assert!(
        peak < 200 * MIB,
        "peak RSS {} MiB for a {} MiB file",
        peak / MIB,
        LEN / MIB
    );
}

#[test]
fn search_finds_the_photos_folder_and_a_peer_downloads_it_by_name() {
    let media = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/media");
    let photos = media.join("photos");
    let (tracker, _) = Tracker::start(&[&photos, &media.join("sample.pdf")]);

    let mut search = Command::new(peer_binary());
    search.args(["search", tracker.base(), "PHOT"]);
    let listing = run(search);
    let found: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert_eq!(found, ["photos"], "{listing}");

    let tmp = tempdir();
    let mut leecher = peer(
        "leecher",
        &[
            "-q",
            "--exit-on-complete",
            "-o",
            path_str(tmp.path()),
            tracker.base(),
            "photos",
        ],
        None,
    );
    exits_ok(&mut leecher);
    assert!(content::same_content(&photos, &tmp.path().join("photos")));
}

#[test]
fn a_finished_peer_keeps_seeding_after_the_tracker_restarts() {
    let tmp = tempdir();
    let source = tmp.path().join("seed").join("notes.bin");
    content::random_file(&source, 6_000_000);
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    // The shortest interval: peers then re-announce every 15 s (their floor).
    let tracker_args = ["--bind", bind.as_str(), "--interval", "1"];
    let (tracker, seeded) = Tracker::start_with(&tracker_args, &[&source]);
    let torrent = tmp.path().join("notes.torrent");
    tracker.fetch(&seeded[0].torrent_url, &torrent);

    let dir_a = tmp.path().join("a");
    let peer_a = peer(
        "peer A",
        &["-q", "-o", path_str(&dir_a), path_str(&torrent)],
        None,
    );
    wait_complete(&peer_a);
    // The tracker and its seeder go; a pure tracker comes back on the same port.
    drop(tracker);
    let (tracker, _) = Tracker::start_with(&tracker_args, &[]);
    // A learns nothing of the restart: it is listed again at its next announce.
    tracker.wait_for_a_seeder(info_hash(&torrent), Duration::from_secs(90));

    let dir_b = tmp.path().join("b");
    let mut peer_b = peer(
        "peer B",
        &[
            "-q",
            "--exit-on-complete",
            "-o",
            path_str(&dir_b),
            path_str(&torrent),
        ],
        None,
    );
    exits_ok(&mut peer_b);
    assert!(same_file(&source, &dir_b.join("notes.bin")));
    assert!(
        peer_a.lines().iter().all(|l| !l.starts_with("error")),
        "{:?}",
        peer_a.lines()
    );
}

#[test]
fn a_peer_killed_halfway_resumes_without_fetching_verified_pieces_again() {
    const LEN: u64 = 256 * MIB;
    const PIECE: u64 = 256 * 1024;
    let pieces = LEN / PIECE;
    let tmp = tempdir();
    let source = tmp.path().join("seed").join("resume.bin");
    std::fs::create_dir_all(source.parent().unwrap()).unwrap();
    random_big_file(&source, LEN, 7);
    let (_tracker, seeded) = Tracker::start_with(
        &["--bind", "127.0.0.1:0", "--piece-length", "262144"],
        &[&source],
    );
    let dir = tmp.path().join("download");
    let args = [
        "--exit-on-complete",
        "-o",
        path_str(&dir),
        &seeded[0].torrent_url,
    ];

    // Every verified piece is logged; SIGKILL once 30 % are.
    let first = peer(
        "first run",
        &args,
        Some("minibit_peer::client::driver=debug"),
    );
    let verified = |proc: &Proc| {
        proc.lines()
            .iter()
            .filter(|l| l.contains("piece verified"))
            .count() as u64
    };
    let deadline = Instant::now() + TRANSFER;
    while verified(&first) * 100 < pieces * 30 {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    let at_kill = verified(&first);
    drop(first); // SIGKILL

    let mut second = peer("second run", &args, Some("minibit_peer=info"));
    exits_ok(&mut second);
    let lines = second.lines();
    let resumed = lines
        .iter()
        .find(|l| l.contains("resume: verified pieces on disk"))
        .and_then(|l| field(l, "pieces"))
        .unwrap_or_else(|| second.fail("no resume line"));
    let downloaded = lines
        .iter()
        .find(|l| l.contains("torrent stopped"))
        .and_then(|l| field(l, "downloaded"))
        .unwrap_or_else(|| second.fail("no final counters"));
    eprintln!(
        "killed after {at_kill} of {pieces} pieces; the second run found {resumed} on disk and downloaded {downloaded} bytes"
    );
    assert!(resumed > 0 && resumed < pieces, "resumed {resumed}");
    // The counter holds verified pieces: exactly the ones missing at the start.
    assert_eq!(
        downloaded,
        LEN - resumed * PIECE,
        "{resumed} pieces were already on disk"
    );
    assert!(
        same_file(&source, &dir.join("resume.bin")),
        "the copy differs"
    );
}
