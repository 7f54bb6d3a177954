//! A client started from a magnet link (BEP 9), on 127.0.0.1: a bare link
//! (no tracker, no `x.pe`) finds its swarm through a `mainline::Testnet`
//! alone; peers lying about the metadata (a wrong hash, a `metadata_size`
//! of 1 GiB) are dropped and the download completes from an honest one.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::content;
use common::scripted::Scripted;
use mainline::Testnet;
use minibit_core::magnet::{Magnet, MagnetPeer};
use minibit_core::metainfo::{Metainfo, MetainfoBuilder};
use minibit_core::wire::{
    ExtendedHandshake, Handshake, METADATA_PIECE_LEN, Message, MetadataMessage, PeerId,
};
use minibit_peer::dht::{DhtConfig, DhtNode};
use minibit_peer::{AddMagnet, AddTorrent, Client, ClientConfig, TorrentHandle};
use tokio::net::TcpListener;

/// Generous bound on every wait (the machine is shared).
const WAIT: Duration = Duration::from_secs(60);

/// A DHT node on 127.0.0.1 bootstrapped from the testnet (UDP port: the
/// client's TCP port number).
fn dht(bootstrap: &[String]) -> DhtConfig {
    DhtConfig {
        bind: Ipv4Addr::LOCALHOST,
        bootstrap: bootstrap.to_vec(),
        server_mode: true,
        ..DhtConfig::new(0)
    }
}

/// A torrent of one file `name` (`len` bytes written under `root`) with no
/// tracker.
fn trackerless(root: &Path, name: &str, len: usize) -> Metainfo {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join(name), content(len, 11)).unwrap();
    MetainfoBuilder::new(root.join(name))
        .piece_length(Some(32 * 1024))
        .build()
        .unwrap()
}

async fn seed(client: &Client, metainfo: &Metainfo, dir: &Path) -> TorrentHandle {
    let handle = client
        .add_torrent(AddTorrent::new(metainfo.clone(), dir))
        .await
        .unwrap();
    assert!(handle.wait_complete().await, "the seeder has every piece");
    handle
}

fn same_file(a: &Path, b: &Path) {
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(a == b, "the copy differs from the original");
}

/// The `.torrent` a magnet download saved in its state folder names the
/// same torrent.
fn saved_torrent_matches(dir: &Path, metainfo: &Metainfo) {
    let path = dir
        .join(".minibit")
        .join(format!("{}.torrent", metainfo.info_hash()));
    let saved = Metainfo::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved.info_hash(), metainfo.info_hash());
    assert_eq!(saved.info_bytes(), metainfo.info_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn three_leechers_from_a_bare_magnet_link_finish_through_the_dht_alone() {
    let net = tokio::task::spawn_blocking(|| Testnet::builder(20).build().expect("testnet"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let metainfo = trackerless(&dir.path().join("seed"), "bare.bin", 400_000);
    let seeder = Client::start(ClientConfig {
        dht: Some(dht(&net.bootstrap)),
        ..ClientConfig::default()
    })
    .await
    .unwrap();
    let _seeding = seed(&seeder, &metainfo, &dir.path().join("seed")).await;

    // Nothing but the info-hash: no tracker, no peer address.
    let magnet = Magnet::new(metainfo.info_hash());
    assert!(magnet.trackers.is_empty() && magnet.peers.is_empty());
    let mut leechers = Vec::new();
    for i in 0..3 {
        let client = Client::start(ClientConfig {
            dht: Some(dht(&net.bootstrap)),
            ..ClientConfig::default()
        })
        .await
        .unwrap();
        let out = dir.path().join(format!("leech{i}"));
        let handle = client
            .add_magnet(AddMagnet::new(magnet.clone(), &out))
            .await
            .unwrap();
        assert!(
            handle.progress().borrow().fetching_metadata || handle.progress().borrow().complete
        );
        leechers.push((client, handle, out));
    }
    for (i, (_, handle, out)) in leechers.iter().enumerate() {
        let complete = tokio::time::timeout(WAIT, handle.wait_complete()).await;
        assert_eq!(complete, Ok(true), "leecher {i} finished through the DHT");
        let progress = handle.progress().borrow().clone();
        assert!(!progress.fetching_metadata);
        assert_eq!(progress.total_bytes, 400_000);
        same_file(&dir.path().join("seed/bare.bin"), &out.join("bare.bin"));
        saved_torrent_matches(out, &metainfo);
    }
    for (client, _, _) in leechers {
        client.shutdown().await.unwrap();
    }
    seeder.shutdown().await.unwrap();
}

/// What a lying metadata peer saw before the client hung up.
#[derive(Debug)]
struct Lied {
    /// `ut_metadata` requests it received.
    requests: usize,
    /// The client closed the connection (rather than the wait running out).
    dropped: bool,
}

/// A peer on `ip` (its peer id made of the address's last byte, so two
/// liars are not one duplicate peer) that accepts one connection for `metainfo`'s torrent,
/// says it holds metadata of `metadata_size` bytes (BEP 9), and answers
/// every metadata request with the real info dictionary with one byte
/// flipped (so it never hashes to the info-hash).
async fn metadata_liar(
    ip: Ipv4Addr,
    metainfo: &Metainfo,
    metadata_size: u32,
) -> (SocketAddr, tokio::task::JoinHandle<Lied>) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let info_hash = metainfo.info_hash();
    let mut forged = metainfo.info_bytes().to_vec();
    let middle = forged.len() / 2;
    forged[middle] ^= 1;
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut peer = Scripted::new(stream, 1);
        peer.handshake().await;
        let ours = Handshake::new(info_hash, PeerId([ip.octets()[3]; 20])).with_extensions();
        let mut buf = bytes::BytesMut::new();
        ours.encode(&mut buf);
        peer.raw(&buf).await;
        let advert = ExtendedHandshake {
            m: [("ut_metadata".to_owned(), 3)].into(),
            metadata_size: Some(metadata_size),
            ..ExtendedHandshake::default()
        };
        peer.send(&advert.to_message()).await;
        let mut theirs = None;
        let mut requests = 0;
        let dropped = loop {
            let message = match tokio::time::timeout(WAIT, peer.recv()).await {
                Ok(Some(message)) => message,
                Ok(None) => break true,
                Err(_) => break false,
            };
            let Message::Extended { id, payload } = message else {
                continue;
            };
            if id == 0 {
                theirs = ExtendedHandshake::decode(&payload)
                    .ok()
                    .and_then(|h| h.id_for("ut_metadata"));
                continue;
            }
            let (Ok(MetadataMessage::Request { piece }), Some(their_id)) =
                (MetadataMessage::decode(&payload), theirs)
            else {
                continue;
            };
            requests += 1;
            let start = piece as usize * METADATA_PIECE_LEN;
            let end = forged.len().min(start + METADATA_PIECE_LEN);
            let data = Bytes::copy_from_slice(forged.get(start..end).unwrap_or_default());
            let reply = MetadataMessage::Data {
                piece,
                total_size: metadata_size,
                data,
            };
            if peer.try_send(&reply.to_message(their_id)).await.is_err() {
                break true;
            }
        };
        Lied { requests, dropped }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn peers_lying_about_the_metadata_are_dropped_and_an_honest_one_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let metainfo = trackerless(&dir.path().join("seed"), "honest.bin", 300_000);
    let honest = Client::start(ClientConfig::default()).await.unwrap();
    let _seeding = seed(&honest, &metainfo, &dir.path().join("seed")).await;
    let size = u32::try_from(metainfo.info_bytes().len()).unwrap();
    let (wrong_hash, wrong_hash_saw) =
        metadata_liar(Ipv4Addr::new(127, 0, 0, 2), &metainfo, size).await;
    let (huge, huge_saw) = metadata_liar(Ipv4Addr::new(127, 0, 0, 3), &metainfo, 1 << 30).await;

    // The link names only the liars: the metadata can come from nowhere else.
    let mut magnet = Magnet::new(metainfo.info_hash());
    magnet.peers = vec![MagnetPeer::Addr(wrong_hash), MagnetPeer::Addr(huge)];
    let leecher = Client::start(ClientConfig::default()).await.unwrap();
    let out = dir.path().join("leech");
    let handle = leecher
        .add_magnet(AddMagnet::new(magnet, &out))
        .await
        .unwrap();

    let lied = tokio::time::timeout(WAIT, wrong_hash_saw)
        .await
        .unwrap()
        .unwrap();
    assert!(
        lied.requests >= 1 && lied.dropped,
        "the peer sending metadata of another hash was asked, then dropped: {lied:?}"
    );
    let lied = tokio::time::timeout(WAIT, huge_saw).await.unwrap().unwrap();
    assert!(
        lied.requests == 0 && lied.dropped,
        "the peer saying 1 GiB of metadata was dropped before anything was asked: {lied:?}"
    );
    let progress = handle.progress().borrow().clone();
    assert!(
        progress.fetching_metadata && !progress.complete,
        "{progress:?}"
    );
    assert!(
        !out.join(".minibit")
            .join(format!("{}.torrent", metainfo.info_hash()))
            .exists(),
        "nothing is saved from lying peers"
    );

    // The process is still up: an honest peer completes the download.
    handle.add_peers(vec![honest.local_addr()]);
    let complete = tokio::time::timeout(WAIT, handle.wait_complete()).await;
    assert_eq!(complete, Ok(true), "the honest peer completed the download");
    same_file(&dir.path().join("seed/honest.bin"), &out.join("honest.bin"));
    saved_torrent_matches(&out, &metainfo);
    leecher.shutdown().await.unwrap();
    honest.shutdown().await.unwrap();
}

/// BEP 27: a magnet link whose metadata says `private=1` is looked up on
/// the DHT while the metadata is missing, but never announced there: once
/// the metadata arrives the torrent leaves the DHT (and LSD), so a fresh
/// lookup finds nobody, though the download completes from the `x.pe`
/// seeder.
#[tokio::test(flavor = "multi_thread")]
async fn a_private_torrent_from_a_magnet_link_is_never_announced_on_the_dht() {
    let net = tokio::task::spawn_blocking(|| Testnet::builder(10).build().expect("testnet"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("seed");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("private.bin"), content(200_000, 5)).unwrap();
    let metainfo = MetainfoBuilder::new(root.join("private.bin"))
        .piece_length(Some(32 * 1024))
        .private(true)
        .build()
        .unwrap();
    let seeder = Client::start(ClientConfig {
        dht: Some(dht(&net.bootstrap)),
        ..ClientConfig::default()
    })
    .await
    .unwrap();
    let _seeding = seed(&seeder, &metainfo, &root).await;
    let leecher = Client::start(ClientConfig {
        dht: Some(dht(&net.bootstrap)),
        ..ClientConfig::default()
    })
    .await
    .unwrap();
    let mut magnet = Magnet::new(metainfo.info_hash());
    let seeder_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, seeder.local_addr().port()));
    magnet.peers.push(MagnetPeer::Addr(seeder_addr));
    let out = dir.path().join("leech");
    let handle = leecher
        .add_magnet(AddMagnet::new(magnet, &out))
        .await
        .unwrap();
    let complete = tokio::time::timeout(WAIT, handle.wait_complete()).await;
    assert_eq!(
        complete,
        Ok(true),
        "the leecher finished from the x.pe seeder"
    );
    assert!(handle.progress().borrow().private);
    same_file(&root.join("private.bin"), &out.join("private.bin"));
    // Time for an announce to land, had one been made (one takes well
    // under a second on this testnet).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = leecher.dht_status().await.expect("the leecher runs a DHT");
    assert!(
        status.torrents.iter().all(|t| !t.announced),
        "announced on the DHT: {status:?}"
    );
    let probe = DhtNode::start(dht(&net.bootstrap)).await.unwrap();
    let found = probe
        .get_peers(&metainfo.info_hash(), 50, probe.local_addr())
        .await;
    assert!(
        found.is_empty(),
        "the DHT lists {found:?} for a private torrent"
    );
    leecher.shutdown().await.unwrap();
    seeder.shutdown().await.unwrap();
}
