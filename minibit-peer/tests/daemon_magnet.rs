//! `minibit-peer daemon` started from a magnet link (BEP 9), with real
//! processes on 127.0.0.1: `minibit-peer add --api URL 'magnet:?...'`
//! adds it while no peer has it (state `fetching_metadata`, the link kept
//! in the store); the daemon restarts mid-fetch, finds the seeder through
//! the link's tracker, fetches the metadata and downloads byte for byte;
//! after one more restart the torrent comes back from the saved `.torrent`.

mod common;

use std::process::Command;

use common::daemon::{BIN, TOKEN, call, eventually, start_daemon, start_seeder};
use common::{make_single, start_stub};
use minibit_core::magnet::Magnet;
use serde_json::{Value, json};

const SIZE: usize = 700_000;

async fn list(api: &str) -> Value {
    let (status, list) = call(reqwest::Client::new().get(format!("{api}/api/torrents"))).await;
    assert_eq!(status, 200, "{list}");
    list
}

#[tokio::test(flavor = "multi_thread")]
async fn a_magnet_link_added_to_the_daemon_survives_a_restart_mid_fetch_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let (seed_dir, state) = (dir.path().join("seed"), dir.path().join("state"));
    std::fs::create_dir_all(&seed_dir).unwrap();
    let stub = start_stub().await;
    let metainfo = make_single(&seed_dir, "clip.bin", SIZE, &stub.announce_url());
    let mut magnet = Magnet::new(metainfo.info_hash());
    magnet.name = Some("clip from a link".into());
    magnet.trackers.push(stub.announce_url());
    let info_hash = metainfo.info_hash().to_hex();

    // Added while nobody has it: the metadata cannot arrive yet.
    let daemon = start_daemon(&state);
    let added = Command::new(BIN)
        .args(["add", "--save-dir", "clips", "--api", &daemon.api])
        .arg(magnet.to_string())
        .env("MINIBIT_DAEMON_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert_eq!(String::from_utf8(added.stdout).unwrap().trim(), info_hash);
    let listed = list(&daemon.api).await;
    assert_eq!(listed[0]["state"], "fetching_metadata", "{listed}");
    assert_eq!(listed[0]["name"], "clip from a link");
    let (status, refused) =
        call(reqwest::Client::new().get(format!("{}/api/torrents/{info_hash}", daemon.api))).await;
    assert_eq!(status, 409, "no files before the metadata: {refused}");
    // A file selection needs the file list: refused for a magnet link.
    let (status, refused) = call(
        reqwest::Client::new()
            .post(format!("{}/api/torrents", daemon.api))
            .bearer_auth(TOKEN)
            .json(&json!({ "uri": magnet.to_string(), "only": ["*.bin"] })),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let (status, refused) = call(
        reqwest::Client::new()
            .post(format!("{}/api/torrents", daemon.api))
            .bearer_auth(TOKEN)
            .json(&json!({ "uri": "magnet:?xt=urn:btih:123" })),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    // Each cause once: "bad magnet link: info-hash \"123\" is neither ...".
    let said = refused["error"].as_str().unwrap();
    assert!(said.starts_with("bad magnet link: "), "{refused}");
    assert_eq!(said.matches("\"123\"").count(), 1, "{refused}");

    // Restarted mid-fetch; the seeder is up by then.
    assert!(daemon.proc.terminate().success());
    let torrent = dir.path().join("clip.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();
    // Whichever announces second learns the other's address from the stub.
    let _seeder = start_seeder(&torrent, &seed_dir);
    let daemon = start_daemon(&state);
    let listed = list(&daemon.api).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let done = eventually("100 %", || async {
        let listed = list(&daemon.api).await;
        (listed[0]["progress"] == 1.0).then_some(listed)
    })
    .await;
    assert_eq!(done[0]["state"], "seeding", "{done}");
    assert_eq!(done[0]["name"], "clip.bin");
    assert_eq!(done[0]["size"], SIZE as u64);
    assert_eq!(
        std::fs::read(state.join("downloads/clips/clip.bin")).unwrap(),
        std::fs::read(seed_dir.join("clip.bin")).unwrap()
    );

    // Once more: back from the stored `.torrent`, complete at once.
    assert!(daemon.proc.terminate().success());
    let daemon = start_daemon(&state);
    let listed = list(&daemon.api).await;
    assert_eq!(listed[0]["name"], "clip.bin", "{listed}");
    assert_eq!(listed[0]["progress"], 1.0, "{listed}");
    let (status, detail) =
        call(reqwest::Client::new().get(format!("{}/api/torrents/{info_hash}", daemon.api))).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["files"][0]["have"], SIZE as u64);
}
