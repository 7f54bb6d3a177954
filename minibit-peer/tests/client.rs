//! One [`Client`], one port, many torrents, seen from hand-written peers
//! on raw TCP sockets: handshakes are routed by info-hash and an unknown
//! one is refused without an answer; the global connection cap holds
//! under 500 incoming connections spread over several torrents; 300
//! connections that send five bytes of a handshake and hang do not lock a
//! real peer out (slowloris); torrents are removed, paused and resumed at
//! run time; a removed torrent keeps its resume data unless its data is
//! deleted with it.

mod common;

use std::path::Path;
use std::time::Duration;

use minibit_core::metainfo::{InfoHash, Metainfo};
use minibit_core::session::SessionConfig as Limits;
use minibit_core::wire::{Message, PeerId};
use minibit_peer::resume_data::{DEFAULT_STATE_DIR, ResumeData, resume_path};
use minibit_peer::{AddTorrent, Client, ClientConfig, TorrentHandle};
use tokio::io::AsyncReadExt;

use common::make_single;
use common::scripted::{Scripted, WAIT};

/// A client on 127.0.0.1 seeding `n` small torrents (`t0.bin`...) from `dir`.
async fn seeding_client(
    dir: &Path,
    n: usize,
    limits: Limits,
) -> (Client, Vec<(Metainfo, TorrentHandle)>) {
    let client = Client::start(ClientConfig {
        limits,
        ..ClientConfig::default()
    })
    .await
    .unwrap();
    let mut torrents = Vec::new();
    for i in 0..n {
        // No tracker: the tests dial the client directly.
        let metainfo = make_single(
            dir,
            &format!("t{i}.bin"),
            70_000 + i * 1000,
            "http://127.0.0.1:9/announce",
        );
        let mut add = AddTorrent::new(metainfo.clone(), dir);
        add.options.torrent.rng_seed = Some(1);
        let handle = client.add_torrent(add).await.unwrap();
        assert!(handle.wait_complete().await, "the seeder has its files");
        torrents.push((metainfo, handle));
    }
    (client, torrents)
}

fn peer_id(n: u32) -> PeerId {
    let mut id = [b'p'; 20];
    id[..4].copy_from_slice(&n.to_be_bytes());
    PeerId(id)
}

/// Everything the client sends before it closes the connection.
async fn bytes_until_closed(peer: &mut Scripted) -> Vec<u8> {
    let mut bytes = Vec::new();
    tokio::time::timeout(WAIT, peer.stream.read_to_end(&mut bytes))
        .await
        .expect("the connection stayed open")
        .ok();
    bytes
}

#[tokio::test]
async fn one_port_routes_handshakes_by_info_hash_and_refuses_unknown_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (client, torrents) = seeding_client(dir.path(), 3, Limits::default()).await;
    for (i, (metainfo, _)) in torrents.iter().enumerate() {
        let pieces = metainfo.layout().piece_count();
        let (mut peer, theirs) = Scripted::handshaken(
            client.local_addr(),
            pieces,
            metainfo.info_hash(),
            peer_id(i as u32),
        )
        .await;
        assert_eq!(theirs.info_hash, metainfo.info_hash(), "torrent {i}");
        let first = peer.recv().await;
        assert!(matches!(first, Some(Message::Bitfield(_))), "{first:?}");
    }
    let mut stranger = Scripted::connect(client.local_addr(), 4).await;
    stranger
        .send_handshake(InfoHash([0xee; 20]), peer_id(99))
        .await;
    assert_eq!(
        bytes_until_closed(&mut stranger).await,
        Vec::<u8>::new(),
        "no answer, closed"
    );

    // Removed at run time: its handshakes are refused from then on.
    let (gone, handle) = &torrents[1];
    client.remove(handle.id(), false).await.unwrap();
    let ended = tokio::time::timeout(WAIT, handle.wait_ended()).await;
    assert!(ended.is_ok(), "the removed torrent's handle saw it end");
    let mut late = Scripted::connect(client.local_addr(), 4).await;
    late.send_handshake(gone.info_hash(), peer_id(100)).await;
    assert_eq!(bytes_until_closed(&mut late).await, Vec::<u8>::new());
    let names: Vec<String> = client
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["t0.bin", "t2.bin"]);
    assert!(
        dir.path().join("t1.bin").exists(),
        "removed without its data"
    );

    // Paused: refused; resumed: answered again.
    let (paused, handle) = &torrents[2];
    client.pause(handle.id()).await.unwrap();
    let mut refused = Scripted::connect(client.local_addr(), 4).await;
    refused
        .send_handshake(paused.info_hash(), peer_id(101))
        .await;
    assert_eq!(bytes_until_closed(&mut refused).await, Vec::<u8>::new());
    client.resume(handle.id()).await.unwrap();
    let pieces = paused.layout().piece_count();
    let (_peer, theirs) = Scripted::handshaken(
        client.local_addr(),
        pieces,
        paused.info_hash(),
        peer_id(102),
    )
    .await;
    assert_eq!(theirs.info_hash, paused.info_hash());
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_under_500_incoming_connections() {
    const CAP: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_connections: CAP,
        ..Limits::default()
    };
    let (client, torrents) = seeding_client(dir.path(), 4, limits).await;
    let addr = client.local_addr();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..500u32 {
        let (metainfo, _) = &torrents[n as usize % torrents.len()];
        let (info_hash, pieces) = (metainfo.info_hash(), metainfo.layout().piece_count());
        tasks.spawn(async move {
            let mut peer = Scripted::connect(addr, pieces).await;
            peer.send_handshake(info_hash, peer_id(n)).await;
            // Answered (and kept), or closed without an answer.
            let mut first = [0u8; 68];
            let answered = tokio::time::timeout(WAIT, peer.stream.read_exact(&mut first))
                .await
                .expect("neither answered nor closed")
                .is_ok();
            (answered, peer)
        });
    }
    let mut answered = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (ok, peer) = result.unwrap();
        if ok {
            answered.push(peer);
        }
    }
    let peers: usize = client
        .list()
        .await
        .unwrap()
        .iter()
        .map(|t| t.progress.peers)
        .sum();
    eprintln!(
        "{} of 500 answered; {peers} peers in the client",
        answered.len()
    );
    assert!(!answered.is_empty());
    assert!(
        answered.len() <= CAP,
        "{} answered, cap {CAP}",
        answered.len()
    );
    assert!(peers <= CAP, "{peers} peers, cap {CAP}");
    // Still responsive: once they leave, a real peer is served.
    drop(answered);
    let (metainfo, _) = &torrents[0];
    let pieces = metainfo.layout().piece_count();
    let served = tokio::time::timeout(WAIT, async {
        loop {
            // Refused (closed) while the flood's slots are still being freed:
            // try again.
            let mut peer = Scripted::connect(addr, pieces).await;
            peer.send_handshake(metainfo.info_hash(), peer_id(1000))
                .await;
            if peer.try_handshake().await.is_some()
                && matches!(peer.recv().await, Some(Message::Bitfield(_)))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(served.is_ok(), "a real peer was not served after the flood");
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_do_not_lock_out_a_real_peer() {
    let dir = tempfile::tempdir().unwrap();
    // The default limits: 200 connections, 50 handshaking for 5 s at most.
    let (client, torrents) = seeding_client(dir.path(), 1, Limits::default()).await;
    let addr = client.local_addr();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut peer = Scripted::connect(addr, 4).await;
        peer.raw(&[19, b'B', b'i', b't', b'T']).await;
        slow.push(peer);
    }
    let (metainfo, _) = &torrents[0];
    let pieces = metainfo.layout().piece_count();
    // Old code: the 301st connection was reset at once (the cap counted the
    // unfinished handshakes for the whole 10 s handshake timeout).
    let answered = tokio::time::timeout(
        Duration::from_secs(3),
        Scripted::handshaken(addr, pieces, metainfo.info_hash(), peer_id(1)),
    )
    .await;
    let (_, theirs) = answered.expect("the real peer's handshake was not answered within 3 s");
    assert_eq!(theirs.info_hash, metainfo.info_hash());
    drop(slow);
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_removed_torrent_keeps_its_resume_data_unless_its_data_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (client, torrents) = seeding_client(dir.path(), 1, Limits::default()).await;
    let (metainfo, handle) = &torrents[0];
    let info_hash = metainfo.info_hash();
    let resume = resume_path(&dir.path().join(DEFAULT_STATE_DIR), &info_hash);
    let recorded = || {
        ResumeData::load(&resume, &info_hash, metainfo.layout())
            .unwrap()
            .and_then(|data| data.have_bits())
            .map(|have| have.count())
    };

    client.remove(handle.id(), false).await.unwrap();
    assert_eq!(
        recorded(),
        Some(metainfo.layout().piece_count()),
        "removal saves resume data listing every verified piece"
    );
    assert!(dir.path().join("t0.bin").exists());

    let again = client
        .add_torrent(AddTorrent::new(metainfo.clone(), dir.path()))
        .await
        .unwrap();
    assert!(again.wait_complete().await, "re-added from its resume data");
    client.remove(again.id(), true).await.unwrap();
    assert!(
        !resume.exists(),
        "deleting the data deletes its resume data"
    );
    assert!(!dir.path().join("t0.bin").exists());
    client.shutdown().await.unwrap();
}
