//! Fast resume end to end with the real `minibit-peer` binary on
//! 127.0.0.1: a restart on complete, unchanged data trusts the resume data
//! and reads nothing (1 GiB, sparse); a file whose mtime changed is
//! re-verified in full, and a changed byte in one is found and fetched
//! again.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, SystemTime};

use minibit_core::metainfo::MetainfoBuilder;
use minibit_peer::Session;
use tokio::process::Command;

use common::{local_config, make_photos, settled_upload, start_stub};

async fn peer(out: &Path, torrent: &Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_minibit-peer"))
        .args(["-v", "--exit-on-complete", "--bind", "127.0.0.1", "-o"])
        .arg(out)
        .arg(torrent)
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .expect("minibit-peer did not exit")
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `(trusted, re-verified)` from the "resumed from resume data" log line,
/// `None` when the run had no resume data.
fn resumed(output: &Output) -> Option<(u32, u32)> {
    let log = String::from_utf8_lossy(&output.stderr);
    let line = log
        .lines()
        .find(|l| l.contains("resumed from resume data"))?;
    let tail = line.split("resumed from resume data: ").nth(1)?;
    let mut numbers = tail
        .split_whitespace()
        .filter_map(|w| w.trim_end_matches(',').parse::<u32>().ok());
    Some((numbers.next()?, numbers.next()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_a_complete_gib_trusts_the_resume_data_and_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let stub = start_stub().await;
    // 1 GiB, sparse: its pieces hash quickly, and a restart that re-read
    // them would say so in its log.
    let path = dir.path().join("big.bin");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let metainfo = MetainfoBuilder::new(&path)
        .announce(stub.announce_url())
        .build()
        .unwrap();
    let pieces = metainfo.layout().piece_count();
    let torrent = dir.path().join("big.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();

    // First run: no resume data, every piece is hashed, then saved at exit.
    let first = peer(dir.path(), &torrent).await;
    assert_eq!(resumed(&first), None);
    let state = dir.path().join(".minibit");
    assert!(
        state
            .join(format!("{}.resume", metainfo.info_hash()))
            .exists(),
        "no resume data in {}",
        state.display()
    );
    // Second run: everything trusted, nothing re-verified, still complete.
    let second = peer(dir.path(), &torrent).await;
    assert_eq!(resumed(&second), Some((pieces, 0)));
    let summary = String::from_utf8_lossy(&second.stdout);
    assert!(summary.contains("complete"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touched_file_is_re_verified_and_a_changed_byte_is_fetched_again() {
    let source = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let stub = start_stub().await;
    let metainfo = make_photos(source.path(), &stub.announce_url());
    let layout = metainfo.layout().clone();
    let torrent = source.path().join("photos.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();
    let mut config = local_config(&metainfo, source.path(), 1);
    config.seed_mode = true;
    let seeder = Session::start(config).await.unwrap();
    stub.first_announce().await;
    let pieces_of = |file: usize| {
        let range = layout.file_pieces(file).unwrap();
        range.end() - range.start() + 1
    };

    let first = peer(out.path(), &torrent).await;
    assert_eq!(resumed(&first), None);

    // Unchanged: all trusted.
    let again = peer(out.path(), &torrent).await;
    assert_eq!(resumed(&again), Some((layout.piece_count(), 0)));

    // `touch` photo 5 (file 4): its pieces are hashed again (and pass).
    let photo5 = out.path().join("photos/photo-5.jpg");
    let later = SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&photo5)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let touched = peer(out.path(), &torrent).await;
    let (trusted, rehashed) = resumed(&touched).unwrap();
    assert_eq!(rehashed, pieces_of(4));
    assert_eq!(trusted, layout.piece_count() - pieces_of(4));

    // A changed byte in photo 6 (its size and mtime change with it): its
    // pieces are hashed, the bad one fails and is downloaded again.
    let photo6 = out.path().join("photos/photo-6.jpg");
    let mut bytes = std::fs::read(&photo6).unwrap();
    bytes[50_000] ^= 0xff;
    std::fs::write(&photo6, &bytes).unwrap();
    let uploaded_before = settled_upload(&seeder).await;
    let repaired = peer(out.path(), &torrent).await;
    let (_, rehashed) = resumed(&repaired).unwrap();
    assert_eq!(rehashed, pieces_of(5));
    for i in 1..=9 {
        let name = format!("photos/photo-{i}.jpg");
        let original = std::fs::read(source.path().join(&name)).unwrap();
        let copy = std::fs::read(out.path().join(&name)).unwrap();
        assert!(original == copy, "{name} differs from the source");
    }
    // Exactly one piece went out again.
    let resent = settled_upload(&seeder).await - uploaded_before;
    assert_eq!(resent, 32 * 1024);
    seeder.shutdown().await.unwrap();
}
