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

/// libtorrent's KRPC transaction ids are 2 bytes (BEP 5: "typically 2
/// characters"); `mainline` 8.0.1 dropped every message whose id was not
/// 4 bytes, so our node never answered libtorrent. The workspace's patched
/// `mainline` (`vendor/mainline/MINIBIT.md`) answers, echoing the id.
#[tokio::test(flavor = "multi_thread")]
async fn a_query_with_a_two_byte_transaction_id_is_answered_with_that_id() {
    let node = DhtNode::start(DhtConfig {
        bootstrap: Vec::new(),
        ..config(&[])
    })
    .await
    .unwrap();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A ping as libtorrent 2.0 sends it (its `v` is "LT" 2.0.8).
    let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:\xaa\x011:v4:LT\x02\x081:y1:qe";
    socket.send_to(ping, node.local_addr()).await.unwrap();
    let mut answer = [0; 1500];
    let (len, from) = tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut answer))
        .await
        .expect("the node answers a 2-byte transaction id")
        .unwrap();
    assert_eq!(from, node.local_addr());
    let answer = &answer[..len];
    let holds = |part: &[u8]| answer.windows(part.len()).any(|w| w == part);
    assert!(
        holds(b"1:t2:\xaa\x01") && holds(b"1:y1:r"),
        "not a response echoing the id: {}",
        String::from_utf8_lossy(answer)
    );
}
