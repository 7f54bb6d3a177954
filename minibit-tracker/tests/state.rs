//! `minibit-tracker --state DIR` and `minibit-tracker publish` as
//! processes on 127.0.0.1: files published through the CLI survive a
//! restart, are seeded again without re-hashing unchanged data (and after
//! verifying changed data), keep their completed counts, and the token
//! stays the same.

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use minibit_core::metainfo::{InfoHash, MetainfoBuilder};
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::AnnounceRequest;
use minibit_core::wire::PeerId;
use serde_json::Value;
use test_support::content::pseudo_random;
use test_support::process::signal;

const BIN: &str = env!("CARGO_BIN_EXE_minibit-tracker");

struct Tracker {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    base: String,
}

impl Tracker {
    fn start(state: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["--bind", "127.0.0.1:0", "-q", "--state"])
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("stdout closed").unwrap();
        let base = first
            .strip_prefix("tracker listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        Self { child, lines, base }
    }

    fn next_line(&mut self) -> String {
        self.lines.next().expect("stdout closed").unwrap()
    }

    /// Ctrl-C, then the exit status and what it wrote on stderr.
    fn stop(self) -> String {
        signal(self.child.id(), "INT");
        drop(self.lines);
        let out = self.child.wait_with_output().unwrap();
        assert!(out.status.success(), "clean exit on SIGINT: {}", out.status);
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    async fn listing(&self) -> Vec<Value> {
        let body = reqwest::get(format!("{}/torrents", self.base))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    }
}

fn publish(base: &str, token: &str, file: &Path) -> Output {
    Command::new(BIN)
        .args(["publish", "--tracker", base, "--token", token])
        .arg(file)
        .output()
        .unwrap()
}

/// Announces `event` for `info_hash` as a fake peer `n`.
async fn announce(base: &str, info_hash: InfoHash, n: u8, left: u64, event: AnnounceEvent) {
    let req = AnnounceRequest {
        info_hash,
        peer_id: PeerId([n; 20]),
        port: 40_000 + u16::from(n),
        uploaded: 0,
        downloaded: 0,
        left,
        event,
        compact: true,
        numwant: None,
        ip: None,
        key: None,
    };
    let status = reqwest::get(format!("{base}/announce?{}", req.to_query()))
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
}

fn info_hash(hex_digits: &str) -> InfoHash {
    let mut bytes = [0; 20];
    hex::decode_to_slice(hex_digits, &mut bytes).unwrap();
    InfoHash(bytes)
}

/// Publishes `a.bin`, `b.bin` and `t.bin.torrent` of `files` through the
/// CLI and returns their info-hashes (hex).
fn publish_all(base: &str, token: &str, files: &Path) -> Vec<String> {
    let mut hashes = Vec::new();
    for name in ["a.bin", "b.bin", "t.bin.torrent"] {
        let out = publish(base, token, &files.join(name));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hex = stdout
            .split("info_hash=")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("unexpected output {stdout:?}"))
            .to_owned();
        hashes.push(hex);
    }
    hashes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_comes_back_after_a_restart_and_unchanged_data_is_not_re_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("a.bin"), pseudo_random(200_000, 1)).unwrap();
    std::fs::write(files.join("b.bin"), pseudo_random(150_000, 2)).unwrap();
    std::fs::write(files.join("t.bin"), pseudo_random(10_000, 3)).unwrap();

    let tracker = Tracker::start(&state);
    let token = std::fs::read_to_string(state.join("token")).unwrap();
    let token = token.trim();
    let torrent = MetainfoBuilder::new(files.join("t.bin"))
        .announce(format!("{}/announce", tracker.base))
        .build()
        .unwrap();
    std::fs::write(files.join("t.bin.torrent"), torrent.to_bytes()).unwrap();

    let hashes = publish_all(&tracker.base, token, &files);
    let out = publish(&tracker.base, token, &files.join("a.bin"));
    assert_eq!(out.status.code(), Some(1), "a second a.bin is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("409"));
    let out = publish(
        &tracker.base,
        "wrong-token-0123456789",
        &files.join("b.bin"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));

    // A leecher of a.bin completes: counted, and kept.
    let a = info_hash(&hashes[0]);
    announce(&tracker.base, a, 7, 1000, AnnounceEvent::Started).await;
    announce(&tracker.base, a, 7, 0, AnnounceEvent::Completed).await;
    announce(&tracker.base, a, 7, 0, AnnounceEvent::Stopped).await;
    let before = tracker.listing().await;
    assert_eq!(before.len(), 3);
    assert_eq!(before[0]["completed"], 1);
    let stderr = tracker.stop();
    assert!(stderr.contains("api login: http://"), "{stderr}");
    assert!(stderr.contains(&format!("/#token={token}")), "{stderr}");

    // b.bin changes (same bytes, a new mtime); a.bin does not.
    std::fs::File::options()
        .write(true)
        .open(state.join("data/b.bin"))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();

    let mut tracker = Tracker::start(&state);
    let restored: Vec<String> = (0..3).map(|_| tracker.next_line()).collect();
    let suffixes = [
        "(restored, data unchanged: not re-hashed)",
        "(restored, data changed: every piece verified)",
        "(restored, tracked only)",
    ];
    for ((line, name), (hex, suffix)) in restored
        .iter()
        .zip(["a.bin", "b.bin", "t.bin"])
        .zip(hashes.iter().zip(suffixes))
    {
        assert!(
            line.starts_with(&format!(
                "seeding {name} info_hash={hex} torrent={}/torrents/{name}.torrent",
                tracker.base
            )),
            "{line}"
        );
        assert!(line.ends_with(suffix), "{line}");
    }
    let after = tracker.listing().await;
    let names: Vec<_> = after.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a.bin", "b.bin", "t.bin"]);
    assert_eq!(after[0]["completed"], 1, "the completed count survived");
    assert_eq!(after[0]["seeders"], 1, "a.bin is seeded again: {after:?}");
    // b.bin's seeder may announce before its check ends (as a leecher).
    let b_peers = after[1]["seeders"].as_u64().unwrap() + after[1]["leechers"].as_u64().unwrap();
    assert_eq!(b_peers, 1, "b.bin is seeded again: {after:?}");
    assert_eq!(after[2]["seeders"], 0, "t.bin is only tracked");
    assert_eq!(
        std::fs::read_to_string(state.join("token")).unwrap().trim(),
        token,
        "the token is kept"
    );
    // An open event stream (a browser tab) does not hold the shutdown.
    let events = reqwest::get(format!("{}/api/catalogue/events", tracker.base))
        .await
        .unwrap();
    assert!(events.status().is_success());
    let stopping = tokio::task::spawn_blocking(move || tracker.stop());
    let stderr = tokio::time::timeout(Duration::from_secs(30), stopping)
        .await
        .expect("the tracker exits within 30 s with an event stream open")
        .unwrap();
    drop(events);
    assert!(stderr.contains("api token in"), "{stderr}");
    assert!(
        !stderr.contains(token),
        "the token is printed only once: {stderr}"
    );
}
