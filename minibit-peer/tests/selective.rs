//! Selective download end to end: nine "photos" of random bytes (made at
//! test time) seeded by a library session on 127.0.0.1; the real
//! `minibit-peer` binary downloads two of them with `--only`, then a third
//! one in a second run. Checks: only the selected files exist under the
//! output folder (plus the hidden state folder), each identical to the
//! source; the seeder uploads exactly the pieces each run lacked; the
//! `files` command lists the nine files.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use minibit_core::metainfo::Metainfo;
use minibit_core::piece::PieceIndex;
use minibit_core::priority::{PiecePriorities, Priority};
use minibit_peer::Session;

use common::{local_config, make_photos, run_peer, settled_upload, start_stub};

async fn peer(args: &[&str]) -> Output {
    run_peer(args, &[]).await
}

async fn download(out: &Path, torrent: &Path, only: &[&str]) -> Output {
    let mut args = vec!["--exit-on-complete", "--bind", "127.0.0.1", "-o"];
    args.push(out.to_str().unwrap());
    for glob in only {
        args.extend(["--only", glob]);
    }
    args.push(torrent.to_str().unwrap());
    let output = peer(&args).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every file below `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Bytes of the pieces wanted with `files` that are not in `held`.
fn missing_bytes(metainfo: &Metainfo, files: &[Priority], held: &BTreeSet<u32>) -> u64 {
    let layout = metainfo.layout();
    PiecePriorities::from_files(layout, files)
        .wanted()
        .iter_set()
        .filter(|p| !held.contains(&p.get()))
        .map(|p| u64::from(layout.piece_size(p)))
        .sum()
}

fn wanted_pieces(metainfo: &Metainfo, files: &[Priority]) -> BTreeSet<u32> {
    PiecePriorities::from_files(metainfo.layout(), files)
        .wanted()
        .iter_set()
        .map(PieceIndex::get)
        .collect()
}

/// Priorities selecting the photos numbered `which` (1-based).
fn selecting(which: &[usize]) -> Vec<Priority> {
    (1..=9)
        .map(|i| {
            if which.contains(&i) {
                Priority::Normal
            } else {
                Priority::Skip
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_nine_photos_then_a_third_fetches_only_what_is_missing() {
    common::init_logging();
    let source = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let stub = start_stub().await;
    let metainfo = make_photos(source.path(), &stub.announce_url());
    let torrent = source.path().join("photos.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();
    let mut config = local_config(&metainfo, source.path(), 1);
    config.seed_mode = true;
    let seeder = Session::start(config).await.unwrap();
    stub.first_announce().await;

    // `files` lists index, size and path inside the torrent.
    let files = peer(&["files", torrent.to_str().unwrap()]).await;
    assert!(files.status.success());
    let listed = String::from_utf8_lossy(&files.stdout).into_owned();
    assert_eq!(listed.lines().count(), 9, "{listed}");
    assert!(
        listed.lines().nth(2).unwrap().contains("photo-3.jpg"),
        "{listed}"
    );
    assert!(
        listed.lines().nth(2).unwrap().trim_start().starts_with('2'),
        "{listed}"
    );

    // Run 1: photos 3 and 7.
    download(out.path(), &torrent, &["photo-3.jpg", "photo-7.*"]).await;
    let first = selecting(&[3, 7]);
    let sent = settled_upload(&seeder).await;
    assert_eq!(sent, missing_bytes(&metainfo, &first, &BTreeSet::new()));
    check_copies(source.path(), out.path(), &[3, 7]);
    // The neighbours' bytes of the shared pieces went to part files.
    let parts: Vec<PathBuf> = listing(out.path())
        .into_iter()
        .filter(|p| {
            p.parent()
                .is_some_and(|d| d.extension().is_some_and(|e| e == "parts"))
        })
        .collect();
    assert!(!parts.is_empty(), "no part file: {:?}", listing(out.path()));
    eprintln!("run 1 fetched {sent} bytes; part files {parts:?}");

    // Run 2: photo 4 too. Photo 3's last piece holds photo 4's first
    // bytes: they were stored in a part file, so that piece is not fetched again.
    let held = wanted_pieces(&metainfo, &first);
    download(out.path(), &torrent, &["photo-[347].jpg"]).await;
    let second = selecting(&[3, 4, 7]);
    let sent_again = settled_upload(&seeder).await - sent;
    let expected = missing_bytes(&metainfo, &second, &held);
    assert_eq!(
        sent_again, expected,
        "the second run fetched more than it lacked"
    );
    let shared = wanted_pieces(&metainfo, &selecting(&[4]));
    assert!(
        shared.intersection(&held).count() > 0,
        "photo 4 shares no piece with the first run: the test proves nothing"
    );
    check_copies(source.path(), out.path(), &[3, 4, 7]);
    eprintln!("run 2 fetched {sent_again} bytes");
    seeder.shutdown().await.unwrap();
}

/// Under `out`: exactly the photos `which` (identical to the source), and
/// otherwise only files inside the hidden state folder `.minibit`.
fn check_copies(source: &Path, out: &Path, which: &[usize]) {
    let files = listing(out);
    let visible: Vec<&PathBuf> = files
        .iter()
        .filter(|p| !p.starts_with(".minibit"))
        .collect();
    let expected: Vec<PathBuf> = which
        .iter()
        .map(|i| PathBuf::from(format!("photos/photo-{i}.jpg")))
        .collect();
    assert_eq!(visible, expected.iter().collect::<Vec<_>>(), "{files:?}");
    for path in &expected {
        let original = std::fs::read(source.join(path)).unwrap();
        let copy = std::fs::read(out.join(path)).unwrap();
        assert!(
            original == copy,
            "{} differs from the source",
            path.display()
        );
    }
    assert!(
        files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "resume")),
        "no resume data: {files:?}"
    );
}

#[tokio::test]
async fn a_glob_that_matches_no_file_is_a_usage_error_and_writes_nothing() {
    let source = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let metainfo = make_photos(source.path(), "http://127.0.0.1:9/announce");
    let torrent = source.path().join("photos.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();
    let output = peer(&[
        "--exit-on-complete",
        "--bind",
        "127.0.0.1",
        "-o",
        out.path().to_str().unwrap(),
        "--only",
        "photo-1.jpg",
        "--only",
        "*.gif",
        torrent.to_str().unwrap(),
    ])
    .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("*.gif") && stderr.contains("matches no file"),
        "{stderr}"
    );
    assert!(listing(out.path()).is_empty(), "{:?}", listing(out.path()));
}
