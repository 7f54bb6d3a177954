//! Output files with real `minibit-peer` processes: a file being
//! downloaded is `NAME.part` (nothing named NAME at 0 %), and it belongs to
//! one torrent at a time: a second process writing a different torrent
//! with a clashing file name, or the same torrent, into the same folder
//! is refused with one `error:` line and a failure code, and writes nothing.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use minibit_core::metainfo::{Metainfo, MetainfoBuilder};
use tokio::process::{Child, Command};

use common::content;

/// A `.torrent` at `dir/torrent_name` for `len` bytes named `same.bin`,
/// whose tracker is dead (nothing listens on port 9).
fn torrent(
    dir: &Path,
    torrent_name: &str,
    len: usize,
    seed: u64,
) -> (Metainfo, std::path::PathBuf) {
    let source = dir.join(format!("src-{seed}"));
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("same.bin"), content(len, seed)).unwrap();
    let metainfo = MetainfoBuilder::new(source.join("same.bin"))
        .piece_length(Some(16 * 1024))
        .announce("http://127.0.0.1:9/announce")
        .build()
        .unwrap();
    let path = dir.join(torrent_name);
    std::fs::write(&path, metainfo.to_bytes()).unwrap();
    (metainfo, path)
}

fn peer(out: &Path, torrent: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_minibit-peer"));
    command
        .args(["--exit-on-complete", "--bind", "127.0.0.1", "-o"])
        .arg(out)
        .arg(torrent)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn refused(out: &Path, torrent: &Path) -> Output {
    let run = peer(out, torrent).output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the second minibit-peer did not exit")
        .unwrap()
}

/// Every entry of `dir` with its length, sorted.
fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut entries: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    entries.sort();
    entries
}

#[tokio::test]
async fn a_second_process_on_a_file_in_use_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (_, first_torrent) = torrent(dir.path(), "first.torrent", 100_000, 1);
    let (_, other_torrent) = torrent(dir.path(), "other.torrent", 150_000, 2);

    // The first download waits at 0 % (no tracker answers, no peer).
    let mut first: Child = peer(&out, &first_torrent)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let part = out.join("same.bin.part");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&part).map(|m| m.len()).ok() != Some(100_000) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first minibit-peer never preallocated {}",
            part.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = listing(&out);
    assert_eq!(
        before,
        [("same.bin.part".to_owned(), 100_000)],
        "nothing named same.bin at 0 %"
    );

    for (what, torrent) in [
        ("a different torrent", &other_torrent),
        ("the same torrent", &first_torrent),
    ] {
        let output = refused(&out, torrent).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{what}: {stderr}");
        assert!(stderr.starts_with("error: "), "{what}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr}");
        assert!(
            stderr.contains("same.bin") && stderr.contains("in use"),
            "{what}: {stderr}"
        );
        assert_eq!(listing(&out), before, "{what}: something was written");
    }
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first minibit-peer is still running"
    );
    first.kill().await.unwrap();
}
