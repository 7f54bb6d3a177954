//! The download limit on 127.0.0.1, from a leecher's first block: even a
//! download of a few blocks, all queued at once by a seeder on loopback,
//! takes as long as the limit says (the session's token bucket: a burst
//! of one 16 KiB block, then `limit` bytes per second). The driver must
//! carry out the core's actions (`PauseReading`) before it takes the next
//! frame: a driver that took 32 queued frames per loop turn and only then
//! carried them out received this whole file in about 6 ms.

mod common;

use std::time::{Duration, Instant};

use minibit_peer::Session;

use common::{init_logging, local_config, make_single, start_stub};

/// Ten 16 KiB blocks (five 32 KiB pieces).
const LEN: usize = 160 * 1024;

/// Bytes per second: [`LEN`] takes about 4 s.
const LIMIT: u64 = 40_000;

/// The burst of the download bucket (16 KiB: the limit's tenth, but never
/// under a block) plus the one block it may overdraw.
const BURST_AND_BLOCK: usize = 2 * 16 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_download_keeps_to_the_limit_from_its_first_block() {
    init_logging();
    let seed_dir = tempfile::tempdir().unwrap();
    let leech_dir = tempfile::tempdir().unwrap();
    let stub = start_stub().await;
    let metainfo = make_single(seed_dir.path(), "small.bin", LEN, &stub.announce_url());
    let seeder = Session::start(local_config(&metainfo, seed_dir.path(), 1))
        .await
        .unwrap();
    stub.first_announce().await;

    let started = Instant::now();
    let mut config = local_config(&metainfo, leech_dir.path(), 2);
    config.download_limit = LIMIT;
    let leecher = Session::start(config).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(60), leecher.wait_complete()).await;
    let elapsed = started.elapsed();
    assert_eq!(done, Ok(true), "the leecher completed");

    // Every payload byte but a burst and a block waited for the bucket.
    let least = Duration::from_secs_f64((LEN - BURST_AND_BLOCK) as f64 / LIMIT as f64);
    assert!(
        elapsed >= least,
        "{LEN} bytes at {LIMIT} bytes/s took {elapsed:?}, under {least:?}"
    );
    let copy = std::fs::read(leech_dir.path().join("small.bin")).unwrap();
    assert!(
        copy == std::fs::read(seed_dir.path().join("small.bin")).unwrap(),
        "the copy differs"
    );
    leecher.shutdown().await.unwrap();
    seeder.shutdown().await.unwrap();
}
