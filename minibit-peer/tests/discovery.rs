//! The DHT and LSD wired into the client: torrents without any tracker
//! whose peers find each other through a `mainline::Testnet` on 127.0.0.1
//! alone, or through local service discovery alone (two clients on the
//! loopback of a network namespace); a private torrent is never announced
//! on the DHT.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use common::content;
use mainline::Testnet;
use minibit_core::metainfo::{InfoHash, Metainfo, MetainfoBuilder};
use minibit_peer::dht::{DhtConfig, DhtNode};
use minibit_peer::lsd::LsdConfig;
use minibit_peer::{AddTorrent, Client, ClientConfig, TorrentHandle};
use test_support::netns::{FAST, Net, one_at_a_time};
use test_support::process::{Killed, free_port};
use test_support::root::require_root;

/// Generous bound on every wait (the machine is shared).
const WAIT: Duration = Duration::from_secs(60);

async fn testnet(nodes: usize) -> Testnet {
    tokio::task::spawn_blocking(move || Testnet::builder(nodes).build().expect("testnet"))
        .await
        .unwrap()
}

/// A DHT node on 127.0.0.1 bootstrapped from the testnet (port 0: the
/// client's TCP port number, or a free port for a bare node).
fn dht(bootstrap: &[String]) -> DhtConfig {
    DhtConfig {
        bind: Ipv4Addr::LOCALHOST,
        bootstrap: bootstrap.to_vec(),
        server_mode: true,
        ..DhtConfig::new(0)
    }
}

/// A torrent of one file `name` (`len` bytes written under `root`) with no
/// tracker at all.
fn trackerless(root: &Path, name: &str, len: usize, private: bool, seed: u64) -> Metainfo {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join(name), content(len, seed)).unwrap();
    MetainfoBuilder::new(root.join(name))
        .piece_length(Some(32 * 1024))
        .private(private)
        .build()
        .unwrap()
}

async fn add(client: &Client, metainfo: &Metainfo, dir: &Path) -> TorrentHandle {
    client
        .add_torrent(AddTorrent::new(metainfo.clone(), dir))
        .await
        .expect("torrent added")
}

/// Looks `info_hash` up from `node` until `want` shows up, or [`WAIT`].
async fn found(node: &DhtNode, info_hash: InfoHash, want: SocketAddr) -> bool {
    let own: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if node.get_peers(&info_hash, 200, own).await.contains(&want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

fn same_file(a: &Path, b: &Path) {
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(a == b, "the copy differs from the original");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leecher_finds_the_seeder_through_the_dht_alone_and_a_private_torrent_is_never_announced()
{
    let net = testnet(20).await;
    let dir = tempfile::tempdir().unwrap();
    let public = trackerless(&dir.path().join("seed"), "public.bin", 300_000, false, 5);
    let private = trackerless(&dir.path().join("seed"), "private.bin", 100_000, true, 6);
    let seeder = Client::start(ClientConfig {
        dht: Some(dht(&net.bootstrap)),
        ..ClientConfig::default()
    })
    .await
    .unwrap();
    let seeder_addr = seeder.local_addr();
    let seeding = add(&seeder, &public, &dir.path().join("seed")).await;
    let seeding_private = add(&seeder, &private, &dir.path().join("seed")).await;
    assert!(seeding.wait_complete().await && seeding_private.wait_complete().await);

    // A third node sees the seeder's announce of the public torrent (on
    // its TCP port), and never one of the private torrent, which the
    // seeder would have announced at the same time.
    let watcher = DhtNode::start(dht(&net.bootstrap)).await.unwrap();
    assert!(
        found(&watcher, public.info_hash(), seeder_addr).await,
        "the public torrent is announced on the DHT"
    );
    let own: SocketAddr = "127.0.0.1:1".parse().unwrap();
    assert!(
        watcher
            .get_peers(&private.info_hash(), 200, own)
            .await
            .is_empty(),
        "a private torrent is never announced on the DHT (BEP 27)"
    );

    // A leecher with the same .torrent, no tracker, DHT only.
    let leecher = Client::start(ClientConfig {
        dht: Some(dht(&net.bootstrap)),
        ..ClientConfig::default()
    })
    .await
    .unwrap();
    let leeching = add(&leecher, &public, &dir.path().join("leech")).await;
    let complete = tokio::time::timeout(WAIT, leeching.wait_complete()).await;
    assert_eq!(complete, Ok(true), "the leecher finished through the DHT");
    same_file(
        &dir.path().join("seed/public.bin"),
        &dir.path().join("leech/public.bin"),
    );
    leecher.shutdown().await.unwrap();
    seeder.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_routing_table_is_saved_at_shutdown() {
    let net = testnet(10).await;
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("state/dht.nodes");
    let client = Client::start(ClientConfig {
        dht: Some(DhtConfig {
            routing_table: Some(table.clone()),
            ..dht(&net.bootstrap)
        }),
        ..ClientConfig::default()
    })
    .await
    .unwrap();
    let metainfo = trackerless(&dir.path().join("seed"), "a.bin", 50_000, false, 7);
    let torrent = add(&client, &metainfo, &dir.path().join("seed")).await;
    // Once announced, the node knows the testnet.
    let watcher = DhtNode::start(dht(&net.bootstrap)).await.unwrap();
    assert!(found(&watcher, metainfo.info_hash(), client.local_addr()).await);
    drop(torrent);
    client.shutdown().await.unwrap();
    let saved = std::fs::read_to_string(&table).expect("routing table saved");
    let nodes: Vec<SocketAddr> = saved.lines().map(|l| l.parse().unwrap()).collect();
    assert!(!nodes.is_empty(), "{saved:?}");
    assert!(
        nodes.iter().all(|n| n.ip().is_loopback()),
        "testnet nodes only: {nodes:?}"
    );
}

/// BEP 5 `port` message: the seeder's node is named to the leecher in
/// the peer connection (no bootstrap anywhere, so nothing else could tell
/// the leecher of it), pinged and in the leecher's routing table once it
/// answers, kept, saved with the routing table at shutdown, and the
/// leecher's next start bootstraps from it.
#[tokio::test(flavor = "multi_thread")]
async fn a_port_message_names_the_peer_dht_node_and_the_next_start_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("state/dht.nodes");
    let seeder = Client::start(ClientConfig {
        dht: Some(dht(&[])),
        ..ClientConfig::default()
    })
    .await
    .unwrap();
    let metainfo = trackerless(&dir.path().join("seed"), "p.bin", 100_000, false, 8);
    let seeding = add(&seeder, &metainfo, &dir.path().join("seed")).await;
    assert!(seeding.wait_complete().await);
    let leecher = Client::start(ClientConfig {
        dht: Some(DhtConfig {
            routing_table: Some(table.clone()),
            ..dht(&[])
        }),
        ..ClientConfig::default()
    })
    .await
    .unwrap();
    let leeching = add(&leecher, &metainfo, &dir.path().join("leech")).await;
    leeching.add_peers(vec![seeder.local_addr()]);
    let complete = tokio::time::timeout(WAIT, leeching.wait_complete()).await;
    assert_eq!(complete, Ok(true));
    // The seeder's DHT node listens on its TCP port's number.
    let seeder_node = seeder.local_addr();
    let deadline = tokio::time::Instant::now() + WAIT;
    let saved = loop {
        let status = leecher.dht_status().await.expect("dht on");
        if status.learned_nodes.contains(&seeder_node) {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no port message from the seeder: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(saved.learned_nodes, [seeder_node], "the seeder's node only");
    // The ping the port message caused put the node in the routing table.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = leecher.dht_status().await.expect("dht on");
        if status
            .node
            .as_ref()
            .is_some_and(|n| n.routing_table_nodes == 1)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pinged node never joined the routing table: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(leeching);
    leecher.shutdown().await.unwrap();
    let text = std::fs::read_to_string(&table).expect("routing table saved");
    let nodes: Vec<SocketAddr> = text.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(nodes, [seeder_node], "{text:?}");

    // Restarted from the saved table alone, the node reaches the seeder's.
    let again = DhtNode::start(DhtConfig {
        routing_table: Some(table.clone()),
        ..dht(&[])
    })
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while again.stats().await.routing_table_nodes == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the saved node never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seeder.shutdown().await.unwrap();
}

/// Runs `f` on a current-thread runtime on a thread inside namespace
/// `i` of `net` (so every socket the clients make is in the namespace).
fn in_namespace<T: Send>(net: &Net, i: usize, f: impl std::future::Future<Output = T> + Send) -> T {
    net.run_in(i, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
}

/// LSD on the namespace's loopback, announcing every second or two.
fn lsd() -> LsdConfig {
    let mut config = LsdConfig::new(Ipv4Addr::LOCALHOST, 0);
    config.schedule.interval = Duration::from_secs(2);
    config.schedule.min_gap = Duration::from_secs(1);
    config
}

#[test]
fn two_clients_find_each_other_through_lsd_alone() {
    require_root("a network namespace");
    let _serial = one_at_a_time();
    let net = Net::create(&[FAST], 50).expect("a namespace");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    in_namespace(&net, 0, async {
        let metainfo = trackerless(&root.join("seed"), "lan.bin", 300_000, false, 8);
        let start = || {
            Client::start(ClientConfig {
                lsd: Some(lsd()),
                ..ClientConfig::default()
            })
        };
        let seeder = start().await.unwrap();
        let leecher = start().await.unwrap();
        let seeding = add(&seeder, &metainfo, &root.join("seed")).await;
        assert!(seeding.wait_complete().await);
        let leeching = add(&leecher, &metainfo, &root.join("leech")).await;
        let complete = tokio::time::timeout(WAIT, leeching.wait_complete()).await;
        assert_eq!(complete, Ok(true), "the leecher finished through LSD");
        leecher.shutdown().await.unwrap();
        seeder.shutdown().await.unwrap();
    });
    same_file(&root.join("seed/lan.bin"), &root.join("leech/lan.bin"));
}

/// The program's flags: `download --dht-bootstrap` joins the given DHT
/// (UDP at its TCP port number) and announces the torrent there;
/// `--no-dht` runs no node.
#[tokio::test(flavor = "multi_thread")]
async fn the_program_announces_on_the_dht_it_is_told_to_bootstrap_from() {
    let net = testnet(10).await;
    let dir = tempfile::tempdir().unwrap();
    let metainfo = trackerless(dir.path(), "cli.bin", 60_000, false, 9);
    let torrent = dir.path().join("cli.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();
    let run = |port: u16, dht: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_minibit-peer"));
        command
            .args([
                "download",
                "-q",
                "--no-lsd",
                "--bind",
                "127.0.0.1",
                "--port",
            ])
            .arg(port.to_string())
            .args(dht)
            .arg("-o")
            .arg(dir.path())
            .arg(&torrent)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        Killed(command.spawn().expect("minibit-peer runs"))
    };
    let port = free_port();
    let bootstrap = net.bootstrap[0].clone();
    let with = run(port, &["--dht-bootstrap", &bootstrap]);
    let watcher = DhtNode::start(dht(&net.bootstrap)).await.unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    assert!(found(&watcher, metainfo.info_hash(), addr).await);
    assert!(
        std::net::UdpSocket::bind(addr).is_err(),
        "its DHT node holds UDP port {port}"
    );
    drop(with); // the files are locked by one process at a time
    // With --no-dht, nothing listens on UDP at its port once it runs.
    let port = free_port();
    let _without = run(port, &["--no-dht"]);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "it never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(std::net::UdpSocket::bind(addr).is_ok(), "no DHT node");
}
