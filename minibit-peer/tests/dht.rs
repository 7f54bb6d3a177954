//! The DHT node against an in-process `mainline::Testnet` of 20 nodes on
//! 127.0.0.1 (no internet): announce, look up, save and reuse the routing
//! table.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use mainline::Testnet;
use minibit_core::metainfo::InfoHash;
use minibit_peer::dht::{DhtConfig, DhtNode};

async fn testnet(nodes: usize) -> Testnet {
    tokio::task::spawn_blocking(move || Testnet::builder(nodes).build().expect("testnet"))
        .await
        .unwrap()
}

fn config(bootstrap: &[String]) -> DhtConfig {
    DhtConfig {
        bind: Ipv4Addr::LOCALHOST,
        bootstrap: bootstrap.to_vec(),
        server_mode: true,
        ..DhtConfig::new(0)
    }
}

/// Looks `info_hash` up until `want` shows up (a fresh node's first lookup
/// can finish before its routing table fills), at most 30 s.
async fn find(node: &DhtNode, info_hash: &InfoHash, want: SocketAddr) -> Vec<SocketAddr> {
    let own: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let peers = node.get_peers(info_hash, 200, own).await;
        if peers.contains(&want) || tokio::time::Instant::now() > deadline {
            return peers;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_announced_by_one_node_is_found_by_another() {
    let net = testnet(20).await;
    let seeder = DhtNode::start(config(&net.bootstrap)).await.unwrap();
    let leecher = DhtNode::start(config(&net.bootstrap)).await.unwrap();
    assert_eq!(
        seeder.local_addr().ip(),
        std::net::IpAddr::V4(Ipv4Addr::LOCALHOST)
    );
    assert_ne!(seeder.local_addr().port(), 0, "a real UDP port");
    let info_hash = InfoHash([0x42; 20]);
    seeder.announce(&info_hash, 7001).await.expect("stored");
    let want: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    let peers = find(&leecher, &info_hash, want).await;
    assert!(peers.contains(&want), "{peers:?}");
    // Another info-hash has nobody.
    let own: SocketAddr = "127.0.0.1:1".parse().unwrap();
    assert!(
        leecher
            .get_peers(&InfoHash([0x43; 20]), 200, own)
            .await
            .is_empty()
    );
    // Our own listen address is never handed back.
    let peers = leecher.get_peers(&info_hash, 200, want).await;
    assert!(!peers.contains(&want), "{peers:?}");
    let stats = leecher.stats().await;
    assert!(stats.routing_table_nodes >= 10, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_saved_routing_table_bootstraps_the_next_start() {
    let net = testnet(20).await;
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("dht.nodes");
    let first = DhtNode::start(DhtConfig {
        routing_table: Some(table.clone()),
        ..config(&net.bootstrap)
    })
    .await
    .unwrap();
    // Bootstrapping fills the table in the background.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while first.stats().await.routing_table_nodes < 10 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.save_routing_table().await.unwrap();
    let saved = std::fs::read_to_string(&table).unwrap();
    assert!(saved.lines().count() >= 10, "{saved}");
    drop(first);

    let announcer = DhtNode::start(config(&net.bootstrap)).await.unwrap();
    let info_hash = InfoHash([0x17; 20]);
    announcer.announce(&info_hash, 7002).await.expect("stored");

    // No bootstrap node given: only the saved table knows the network.
    let second = DhtNode::start(DhtConfig {
        routing_table: Some(table),
        ..config(&[])
    })
    .await
    .unwrap();
    let want: SocketAddr = "127.0.0.1:7002".parse().unwrap();
    let peers = find(&second, &info_hash, want).await;
    assert!(peers.contains(&want), "{peers:?}");
}
