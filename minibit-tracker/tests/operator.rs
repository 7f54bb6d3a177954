//! `minibit-tracker` as its operator sees it (the real binaries on
//! 127.0.0.1): `/` answers with an HTML page of the catalogue and of the
//! swarms it only tracks (also at `/swarms`), SIGHUP does not stop it, and
//! its INFO log has a line per new swarm and a periodic summary, without
//! the embedded seeder's routine disconnects.

#[allow(dead_code)]
#[path = "interop/minibit.rs"]
mod minibit;

use std::process::Command;
use std::time::Duration;

use minibit_core::metainfo::InfoHash;
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::AnnounceRequest;
use minibit_core::wire::PeerId;
use test_support::content;
use test_support::process::{Proc, free_port, signal};

/// A generous bound for each step on a busy machine.
const STEP: Duration = Duration::from_secs(60);

/// `GET url`: the status and the body as text.
fn get(url: &str) -> (u16, String) {
    let (status, body) = minibit::get(url);
    (status, String::from_utf8(body).expect("a UTF-8 body"))
}

#[test]
fn the_page_the_swarms_a_hangup_and_the_info_log() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.bin");
    content::random_file(&file, 3 * 1024 * 1024);
    let mut command = Command::new(env!("CARGO_BIN_EXE_minibit-tracker"));
    command
        .args(["-v", "--bind", "127.0.0.1:0", "--summary-interval", "1"])
        .arg(&file)
        .env_remove("RUST_LOG");
    let tracker = Proc::spawn("minibit-tracker", command);
    let base = tracker.wait_line(STEP, |l| {
        l.strip_prefix("tracker listening on ").map(str::to_owned)
    });
    tracker.wait_line(STEP, |l| l.starts_with("seeding notes.bin").then_some(()));

    // SIGHUP (a closed terminal) is logged and ignored.
    signal(tracker.id(), "HUP");
    tracker.wait_line(STEP, |l| l.contains("SIGHUP received").then_some(()));
    let (status, page) = get(&format!("{base}/"));
    assert_eq!(status, 200, "the tracker still answers after SIGHUP");
    assert!(
        page.contains("<a href=\"/torrents/notes.bin.torrent\">notes.bin</a>"),
        "{page}"
    );

    // A peer downloads the file and leaves.
    let out = tempfile::tempdir().unwrap();
    let mut peer = minibit::peer(
        "minibit-peer",
        &format!("{base}/torrents/notes.bin.torrent"),
        out.path(),
        free_port(),
        true,
    );
    assert!(peer.wait_exit(STEP).success(), "{:#?}", peer.lines());
    assert_eq!(
        std::fs::read(out.path().join("notes.bin")).unwrap(),
        std::fs::read(&file).unwrap()
    );

    // A swarm this tracker has no .torrent for.
    let other = InfoHash([7; 20]);
    announce_a_swarm_without_torrent(&base, other);

    // The log at INFO: the new swarm, then a summary that counts it.
    tracker.wait_line(STEP, |l| {
        (l.contains(" INFO ") && l.contains("announces;") && l.contains("2 swarms")).then_some(())
    });
    let lines = tracker.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("torrent added") && l.contains(&other.to_hex())),
        "{lines:#?}"
    );
    for routine in [
        "both seeding",
        "before the handshake",
        "roken pipe",
        "disconnecting peer",
        "peer connection closed",
    ] {
        assert!(
            !lines.iter().any(|l| l.contains(routine)),
            "{routine:?} logged at INFO: {lines:#?}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.contains(" WARN ")),
        "no warning in a run where nothing went wrong: {lines:#?}"
    );
}

/// Announces `other` (a seeder on port 1) and checks that `/swarms` and `/`
/// list it next to the catalogued `notes.bin`, without a `.torrent`.
fn announce_a_swarm_without_torrent(base: &str, other: InfoHash) {
    let announce = AnnounceRequest {
        info_hash: other,
        peer_id: PeerId(*b"-XX0000-operator-tst"),
        port: 1,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: AnnounceEvent::Started,
        compact: true,
        numwant: None,
        ip: None,
        key: None,
    };
    assert_eq!(
        get(&format!("{base}/announce?{}", announce.to_query())).0,
        200
    );
    let (_, swarms) = get(&format!("{base}/swarms"));
    let swarms: Vec<serde_json::Value> = serde_json::from_str(&swarms).unwrap();
    let entry = |hash: &str| {
        swarms
            .iter()
            .find(|s| s["info_hash"] == hash)
            .unwrap_or_else(|| panic!("{hash} not in {swarms:#?}"))
            .clone()
    };
    let listed = entry(&other.to_hex());
    assert_eq!(listed["torrent"], serde_json::Value::Null);
    assert_eq!(listed["seeders"], 1);
    let seeded = swarms
        .iter()
        .find(|s| s["name"] == "notes.bin")
        .unwrap_or_else(|| panic!("notes.bin not in {swarms:#?}"));
    assert_eq!(seeded["torrent"], "/torrents/notes.bin.torrent");
    assert_eq!(seeded["completed"], 1, "the peer's `completed` was counted");
    let (_, page) = get(&format!("{base}/"));
    assert!(page.contains(&other.to_hex()), "{page}");
    assert!(page.contains("no .torrent to serve"), "{page}");
}
