//! End-to-end on 127.0.0.1: a seeding session and a leeching session find
//! each other through a small HTTP tracker stub and move a generated
//! multi-file torrent; the copy must be byte-identical.

mod common;

use std::time::Duration;

use minibit_core::torrent::AnnounceEvent;
use minibit_peer::Session;

use common::{ALBUM_FILES, init_logging, local_config, make_album, start_stub};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leecher_downloads_a_multi_file_torrent_from_a_seeder() {
    init_logging();
    let seed_dir = tempfile::tempdir().unwrap();
    let leech_dir = tempfile::tempdir().unwrap();
    let stub = start_stub().await;
    let metainfo = make_album(seed_dir.path(), &stub.announce_url());

    let seeder = Session::start(local_config(&metainfo, seed_dir.path(), 1))
        .await
        .unwrap();
    assert!(
        seeder.progress().borrow().complete,
        "the seeder resumed every piece"
    );
    // Let the seeder's `started` announce reach the stub first.
    stub.first_announce().await;

    let leecher = Session::start(local_config(&metainfo, leech_dir.path(), 2))
        .await
        .unwrap();
    assert_eq!(leecher.progress().borrow().pieces_have, 0);
    // A generous bound so a broken swarm fails instead of hanging.
    let done = tokio::time::timeout(Duration::from_secs(120), leecher.wait_complete()).await;
    assert_eq!(done, Ok(true), "the leecher completed");
    let progress = leecher.progress().borrow().clone();
    assert_eq!(progress.have_bytes, metainfo.total_length());
    assert_eq!(progress.downloaded, metainfo.total_length());
    let leech_port = leecher.local_addr().port();
    leecher.shutdown().await.unwrap();
    seeder.shutdown().await.unwrap();

    for file in ALBUM_FILES {
        let original = std::fs::read(seed_dir.path().join("album").join(file)).unwrap();
        let copy = std::fs::read(leech_dir.path().join("album").join(file)).unwrap();
        assert!(original == copy, "{file} differs");
    }
    let events = stub.events_of(leech_port);
    assert_eq!(events.first(), Some(&AnnounceEvent::Started));
    assert!(events.contains(&AnnounceEvent::Completed));
    assert_eq!(events.last(), Some(&AnnounceEvent::Stopped));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leechers_share_pieces_and_a_tiny_block_buffer_spills_to_disk() {
    init_logging();
    let seed_dir = tempfile::tempdir().unwrap();
    let stub = start_stub().await;
    let metainfo = make_album(seed_dir.path(), &stub.announce_url());
    let seeder = Session::start(local_config(&metainfo, seed_dir.path(), 10))
        .await
        .unwrap();
    stub.first_announce().await;
    let mut leechers = Vec::new();
    for seed in 11..14 {
        let dir = tempfile::tempdir().unwrap();
        let mut config = local_config(&metainfo, dir.path(), seed);
        // Less than two blocks in memory: most blocks go to disk unverified
        // and are read back for verification.
        config.max_buffered_bytes = 20_000;
        let session = Session::start(config).await.unwrap();
        leechers.push((dir, session));
    }
    for (_, session) in &leechers {
        let done = tokio::time::timeout(Duration::from_secs(120), session.wait_complete()).await;
        assert_eq!(done, Ok(true), "every leecher completed");
    }
    let mut uploaded = 0;
    for (dir, session) in leechers {
        let progress = session.progress();
        session.shutdown().await.unwrap();
        uploaded += progress.borrow().uploaded;
        for file in ALBUM_FILES {
            let original = std::fs::read(seed_dir.path().join("album").join(file)).unwrap();
            let copy = std::fs::read(dir.path().join("album").join(file)).unwrap();
            assert!(original == copy, "{file} differs");
        }
    }
    let progress = seeder.progress();
    seeder.shutdown().await.unwrap();
    uploaded += progress.borrow().uploaded;
    // Three copies left the swarm's uploaders in total (final counters).
    assert!(
        uploaded >= 3 * metainfo.total_length(),
        "{uploaded} bytes uploaded"
    );
}

#[tokio::test]
async fn a_restarted_leecher_keeps_only_verified_pieces() {
    let seed_dir = tempfile::tempdir().unwrap();
    let metainfo = make_album(seed_dir.path(), "http://127.0.0.1:9/announce");
    let dir = tempfile::tempdir().unwrap();
    // A partial, partly corrupt copy: the first MiB of a.bin is right but
    // for one flipped byte in the third piece.
    let original = std::fs::read(seed_dir.path().join("album/a.bin")).unwrap();
    let mut partial = original[..1024 * 1024].to_vec();
    partial[2 * 64 * 1024 + 5] ^= 0xff;
    std::fs::create_dir_all(dir.path().join("album")).unwrap();
    std::fs::write(dir.path().join("album/a.bin"), &partial).unwrap();
    let session = Session::start(local_config(&metainfo, dir.path(), 3))
        .await
        .unwrap();
    let progress = session.progress().borrow().clone();
    assert_eq!(progress.pieces_have, 15, "16 pieces on disk, one corrupt");
    assert_eq!(progress.have_bytes, 15 * 64 * 1024);
    assert!(!progress.complete);
    // The files were preallocated to their full length.
    let len = std::fs::metadata(dir.path().join("album/a.bin"))
        .unwrap()
        .len();
    assert_eq!(len, original.len() as u64);
    session.shutdown().await.unwrap();
}
