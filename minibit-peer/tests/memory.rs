//! Memory stays bounded whatever the torrent's size: moving a 256 MiB file
//! between two in-process sessions must not grow the process anywhere near
//! the file size (blocks are buffered per piece in flight, never per file).
//! Reads the peak resident size from `/proc/self/status` (Linux).

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use minibit_core::metainfo::MetainfoBuilder;
use minibit_peer::Session;

use common::{content, local_config, start_stub};

const MIB: u64 = 1024 * 1024;
const FILE_MIB: u32 = 256;

/// Peak resident set size of this process, bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Writes `FILE_MIB` MiB of distinct chunks without holding the file in memory.
fn write_big_file(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let mut chunk = content(MIB as usize, 5);
    for i in 0..FILE_MIB {
        chunk[..4].copy_from_slice(&i.to_be_bytes());
        file.write_all(&chunk).unwrap();
    }
}

/// Compares two files chunk by chunk.
fn same_content(left: &Path, right: &Path) -> bool {
    let mut left = std::fs::File::open(left).unwrap();
    let mut right = std::fs::File::open(right).unwrap();
    let mut ours = vec![0; MIB as usize];
    let mut theirs = vec![0; MIB as usize];
    loop {
        let n = left.read(&mut ours).unwrap();
        if n == 0 {
            return right.read(&mut theirs).unwrap() == 0;
        }
        if right.read_exact(&mut theirs[..n]).is_err() || ours[..n] != theirs[..n] {
            return false;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_transfer_does_not_grow_the_process_with_the_file() {
    let seed_dir = tempfile::tempdir().unwrap();
    let leech_dir = tempfile::tempdir().unwrap();
    let stub = start_stub().await;
    let source = seed_dir.path().join("big.bin");
    write_big_file(&source);
    let metainfo = MetainfoBuilder::new(&source)
        .piece_length(Some(256 * 1024))
        .announce(stub.announce_url())
        .build()
        .unwrap();
    let before = peak_rss();

    let seeder = Session::start(local_config(&metainfo, seed_dir.path(), 1))
        .await
        .unwrap();
    stub.first_announce().await;
    let leecher = Session::start(local_config(&metainfo, leech_dir.path(), 2))
        .await
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(300), leecher.wait_complete()).await;
    assert_eq!(done, Ok(true), "the download completed");
    let growth = peak_rss().saturating_sub(before);
    leecher.shutdown().await.unwrap();
    seeder.shutdown().await.unwrap();

    assert!(same_content(&source, &leech_dir.path().join("big.bin")));
    // Default block buffer (64 MiB) plus queues, far below the 256 MiB file.
    assert!(
        growth < 96 * MIB,
        "peak RSS grew by {} MiB moving a {FILE_MIB} MiB file",
        growth / MIB
    );
}
