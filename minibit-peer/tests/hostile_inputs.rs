//! Hostile `.torrent` files given to the real `minibit-peer` binary: paths
//! that climb out of the output folder, empty path components, absurd
//! piece lengths, `pieces` that do not match the length, bencode nested
//! thousands deep, files far too large to be a torrent. Each time: one
//! `error:` line, a failure exit code, and nothing written anywhere.

mod common;

use std::path::Path;
use std::process::Output;

use common::run_peer;

/// A bencode value, written by hand so the tests can say what a real
/// builder never would.
enum B {
    Int(i64),
    Str(Vec<u8>),
    List(Vec<B>),
    /// Keys in the order given (the tests give them sorted).
    Dict(Vec<(&'static str, B)>),
}

fn s(text: &str) -> B {
    B::Str(text.as_bytes().to_vec())
}

impl B {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            B::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            B::Str(bytes) => {
                out.extend_from_slice(format!("{}:", bytes.len()).as_bytes());
                out.extend_from_slice(bytes);
            }
            B::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode(out);
                }
                out.push(b'e');
            }
            B::Dict(entries) => {
                out.push(b'd');
                for (key, value) in entries {
                    s(key).encode(out);
                    value.encode(out);
                }
                out.push(b'e');
            }
        }
    }
}

/// A torrent whose info dictionary is `info`.
fn torrent(info: B) -> Vec<u8> {
    let mut out = Vec::new();
    B::Dict(vec![
        ("announce", s("http://127.0.0.1:9/announce")),
        ("info", info),
    ])
    .encode(&mut out);
    out
}

/// A single-file info dictionary: `name`, `length` bytes, `piece_length`,
/// and `pieces` of `hashes` bytes.
fn single(name: &str, length: i64, piece_length: i64, hashes: usize) -> Vec<u8> {
    torrent(B::Dict(vec![
        ("length", B::Int(length)),
        ("name", s(name)),
        ("piece length", B::Int(piece_length)),
        ("pieces", B::Str(vec![7; hashes])),
    ]))
}

/// A multi-file info dictionary with one 10-byte file at `path`.
fn multi(path: &[&str]) -> Vec<u8> {
    let file = B::Dict(vec![
        ("length", B::Int(10)),
        ("path", B::List(path.iter().map(|c| s(c)).collect())),
    ]);
    torrent(B::Dict(vec![
        ("files", B::List(vec![file])),
        ("name", s("album")),
        ("piece length", B::Int(16_384)),
        ("pieces", B::Str(vec![7; 20])),
    ]))
}

/// Runs `minibit-peer -q -o OUT TORRENT` where OUT is an empty folder in an
/// otherwise empty parent; checks the run failed with one `error:` line and
/// wrote nothing under the parent. Returns that line.
async fn refused(write_torrent: impl FnOnce(&Path)) -> String {
    let input = tempfile::tempdir().unwrap();
    let torrent = input.path().join("bad.torrent");
    write_torrent(&torrent);
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let output = run(&["-q", "-o", out.to_str().unwrap(), torrent.to_str().unwrap()]).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "accepted; stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "wrote into OUT"
    );
    let beside: Vec<_> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["out"], "wrote next to OUT");
    let inputs = std::fs::read_dir(input.path()).unwrap().count();
    assert_eq!(inputs, 1, "wrote next to the torrent");
    stderr.trim_end().to_owned()
}

async fn run(args: &[&str]) -> Output {
    run_peer(args, &[]).await
}

async fn refuses(bytes: Vec<u8>, expected: &str) {
    let line = refused(|path| std::fs::write(path, &bytes).unwrap()).await;
    assert!(line.contains(expected), "{line:?} lacks {expected:?}");
}

#[tokio::test]
async fn a_name_climbing_out_of_the_output_folder_is_refused() {
    refuses(single("../evil", 10, 16_384, 20), "..").await;
}

#[tokio::test]
async fn an_absolute_name_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("evil");
    refuses(single(target.to_str().unwrap(), 10, 16_384, 20), "absolute").await;
    assert!(!target.exists());
}

#[tokio::test]
async fn a_parent_component_inside_a_multi_file_path_is_refused() {
    refuses(multi(&["..", "x"]), "..").await;
    refuses(multi(&["disc", "..", "..", "x"]), "..").await;
    refuses(multi(&["disc", "../x"]), "separator").await;
}

#[tokio::test]
async fn an_empty_path_component_is_refused() {
    refuses(multi(&["a", "", "b"]), "empty").await;
}

#[tokio::test]
async fn absurd_piece_lengths_are_refused() {
    refuses(single("f", 10, 0, 20), "piece length").await;
    refuses(single("f", 10, -16_384, 20), "piece length").await;
    refuses(single("f", 10, 1 << 40, 20), "piece length").await;
}

#[tokio::test]
async fn pieces_that_do_not_match_the_length_are_refused() {
    // Not a whole number of SHA-1 hashes.
    refuses(single("f", 10, 16_384, 19), "pieces").await;
    // Two hashes for a one-piece file.
    refuses(single("f", 10, 16_384, 40), "pieces").await;
    // One hash for a three-piece file.
    refuses(single("f", 40_000, 16_384, 20), "pieces").await;
}

#[tokio::test]
async fn bencode_nested_thousands_deep_is_refused() {
    let depth = 100_000;
    let mut bytes = b"d4:info".to_vec();
    bytes.extend(std::iter::repeat_n(b'l', depth));
    bytes.extend(std::iter::repeat_n(b'e', depth));
    bytes.push(b'e');
    refuses(bytes, "nest").await;
}

#[tokio::test]
async fn a_100_mb_file_is_refused_without_reading_it_whole() {
    // Sparse files: 100 MB, and 1 TiB, which no process could read into memory.
    for size in [100 * 1024 * 1024, 1 << 40] {
        let line = refused(|path| {
            std::fs::File::create(path).unwrap().set_len(size).unwrap();
        })
        .await;
        assert!(line.contains("limit"), "{line}");
    }
}
