//! `minibit-tracker --dht`: the seeder's DHT node beside the tracker is a
//! bootstrap node for its peers. A `minibit-peer` whose `.torrent` names a
//! dead tracker (a closed port) and whose only DHT bootstrap node is the
//! tracker's finds the tracker's seeder on the DHT and downloads from it.
//! The tracker's node joins a `mainline::Testnet` on 127.0.0.1 (the
//! community's other nodes); nothing leaves loopback.

use std::time::Duration;

use mainline::Testnet;

use super::dead_tracker::with_announce;
use super::minibit::Tracker;
use super::{exits_ok, path_str, peer, same_file, tempdir};
use test_support::content;
use test_support::process::free_port;

/// Longest wait for the tracker's DHT node to start.
const DHT_START: Duration = Duration::from_secs(60);

#[test]
fn a_peer_with_a_dead_tracker_finds_the_seeder_through_the_tracker_dht_node() {
    let testnet = Testnet::builder(10).build().expect("testnet");
    let tmp = tempdir();
    let source = tmp.path().join("seed").join("dht.bin");
    content::random_file(&source, 2_000_000);
    let peer_port = free_port().to_string();
    let (tracker, seeded) = Tracker::start_with(
        &[
            "--bind",
            "127.0.0.1:0",
            "--piece-length",
            "65536",
            "--peer-port",
            &peer_port,
            "--dht",
            "--dht-bootstrap",
            &testnet.bootstrap[0],
        ],
        &[&source],
    );
    let dht_addr = tracker.proc().wait_line(DHT_START, |l| {
        l.strip_prefix("dht node listening on ").map(str::to_owned)
    });
    assert_eq!(
        dht_addr,
        format!("127.0.0.1:{peer_port}"),
        "UDP at the peer port's number, on the tracker's IP"
    );

    // The same torrent, announcing to a port nobody listens on.
    let torrent = tmp.path().join("dht.torrent");
    tracker.fetch(&seeded[0].torrent_url, &torrent);
    let dead = format!("http://127.0.0.1:{}/announce", free_port());
    let dead_torrent = tmp.path().join("dead.torrent");
    with_announce(&torrent, &dead, &dead_torrent);

    let dir = tmp.path().join("leecher");
    let mut leecher = peer(
        "leecher",
        &[
            "-q",
            "--exit-on-complete",
            "--no-lsd",
            "--dht-bootstrap",
            &dht_addr,
            "-o",
            path_str(&dir),
            path_str(&dead_torrent),
        ],
        None,
    );
    exits_ok(&mut leecher);
    assert!(same_file(&source, &dir.join("dht.bin")), "the copy differs");
}
