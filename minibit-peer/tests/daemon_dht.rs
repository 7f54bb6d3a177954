//! `GET /api/dht` of `minibit-peer daemon`: a daemon bootstrapped from a
//! `mainline::Testnet` on 127.0.0.1 downloads a torrent without any
//! tracker from a seeder found on the DHT, and its API shows the node,
//! the routing table and the peers found for that torrent; a `--no-dht`
//! daemon says the DHT is off.

mod common;

use std::net::Ipv4Addr;

use common::content;
use common::daemon::{TOKEN, call, eventually, start_daemon, start_daemon_with};
use mainline::Testnet;
use minibit_core::metainfo::MetainfoBuilder;
use minibit_peer::dht::DhtConfig;
use minibit_peer::{AddTorrent, Client, ClientConfig};
use serde_json::Value;

async fn dht(api: &str) -> Value {
    let (status, body) = call(reqwest::Client::new().get(format!("{api}/api/dht"))).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_shows_the_dht_node_and_the_peers_it_found() {
    let net = tokio::task::spawn_blocking(|| Testnet::builder(10).build().expect("testnet"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("dht.bin"), content(400_000, 21)).unwrap();
    let metainfo = MetainfoBuilder::new(seed_dir.join("dht.bin"))
        .piece_length(Some(32 * 1024))
        .build()
        .unwrap();
    let seeder = Client::start(ClientConfig {
        dht: Some(DhtConfig {
            bind: Ipv4Addr::LOCALHOST,
            bootstrap: net.bootstrap.clone(),
            server_mode: true,
            ..DhtConfig::new(0)
        }),
        ..ClientConfig::default()
    })
    .await
    .unwrap();
    let seeding = seeder
        .add_torrent(AddTorrent::new(metainfo.clone(), &seed_dir))
        .await
        .unwrap();
    assert!(seeding.wait_complete().await);

    let daemon = start_daemon_with(
        &dir.path().join("state"),
        &["--dht-bootstrap", &net.bootstrap[0]],
    );
    let (status, added) = call(
        reqwest::Client::new()
            .post(format!("{}/api/torrents", daemon.api))
            .bearer_auth(TOKEN)
            .header("content-type", "application/x-bittorrent")
            .body(metainfo.to_bytes()),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    let info_hash = metainfo.info_hash().to_hex();
    eventually("the download through the DHT", || async {
        let (_, d) =
            call(reqwest::Client::new().get(format!("{}/api/torrents/{info_hash}", daemon.api)))
                .await;
        (d["progress"] == 1.0).then_some(())
    })
    .await;
    assert_eq!(
        std::fs::read(dir.path().join("state/downloads/dht.bin")).unwrap(),
        std::fs::read(seed_dir.join("dht.bin")).unwrap()
    );

    let state = dht(&daemon.api).await;
    assert_eq!(state["enabled"], true, "{state}");
    let node = state["node"].as_str().expect("the node's address");
    assert!(node.starts_with("127.0.0.1:"), "{state}");
    assert!(
        state["routing_table_nodes"].as_u64().unwrap() > 0,
        "{state}"
    );
    let torrents = state["torrents"].as_array().unwrap();
    assert_eq!(torrents.len(), 1, "{state}");
    assert_eq!(torrents[0]["info_hash"], info_hash.as_str());
    assert!(torrents[0]["lookups"].as_u64().unwrap() >= 1, "{state}");
    assert!(
        torrents[0]["peers_found"].as_u64().unwrap() >= 1,
        "the seeder was found: {state}"
    );
    seeder.shutdown().await.unwrap();

    let off = start_daemon(&dir.path().join("state-off"));
    assert_eq!(
        dht(&off.api).await,
        serde_json::json!({
            "enabled": false,
            "routing_table_nodes": 0,
            "size_estimate": 0,
            "learned_nodes": 0,
            "lookups_in_flight": 0,
            "torrents": [],
        })
    );
}
