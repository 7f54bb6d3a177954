//! Cross-checks against real BitTorrent tools (Debian packages
//! `transmission-cli` and `mktorrent`, installed by `scripts/test.sh`):
//!
//! - `.torrent`s made by `transmission-create` and `mktorrent` over the
//!   files in `testdata/media` parse, and our info-hash, piece count and
//!   sizes equal what `transmission-show` prints;
//! - our own `.torrent` of the same content is accepted by
//!   `transmission-show` and has the same info-hash as mktorrent's.
//!
//! A missing tool fails the test with a clear message: it is never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use minibit_core::metainfo::{Metainfo, MetainfoBuilder};
use test_support::tools;

const PIECE_LENGTHS: [u32; 3] = [16 * 1024, 32 * 1024, 256 * 1024];
/// mktorrent 1.1 takes piece lengths from 2^15 (32 KiB) up.
const MKTORRENT_PIECE_LENGTHS: [u32; 3] = [32 * 1024, 64 * 1024, 256 * 1024];
const ANNOUNCE: &str = "http://127.0.0.1:6969/announce";

fn media() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/media")
}

/// The single files and the folder (multi-file) the tools make torrents of.
fn targets() -> Vec<PathBuf> {
    ["sample.pdf", "sample.png", "photos"]
        .iter()
        .map(|t| media().join(t))
        .collect()
}

/// Runs a tool and returns its stdout; a tool that is not installed or
/// fails is a test failure naming the package to install.
fn run(program: &str, args: &[&std::ffi::OsStr]) -> String {
    let tool = [
        tools::MKTORRENT,
        tools::TRANSMISSION_CREATE,
        tools::TRANSMISSION_SHOW,
    ]
    .into_iter()
    .find(|t| t.program == program)
    .expect("a known tool");
    tools::require(&tool);
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "`{program} {args:?}` failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}

/// Byte counts as Transmission prints them (libtransmission's
/// `formatter_get_size_str`): the largest unit not above the value,
/// 2 decimals below 100 and 1 from there, units 1000 apart (`kB`, `MB`,
/// `GB`) for sizes and 1024 apart (`KiB`, `MiB`, `GiB`) for memory.
fn transmission_size(bytes: u64, kilo: u64, units: [&str; 4]) -> String {
    let scales = [kilo, kilo.pow(2), kilo.pow(3), kilo.pow(4)];
    let unit = (1..4).find(|&i| bytes < scales[i]).map_or(3, |i| i - 1);
    let value = bytes as f64 / scales[unit] as f64;
    let precision = if value < 100.0 { 2 } else { 1 };
    format!("{value:.precision$} {}", units[unit])
}

fn size(bytes: u64) -> String {
    transmission_size(bytes, 1000, ["kB", "MB", "GB", "TB"])
}

fn mem(bytes: u64) -> String {
    transmission_size(bytes, 1024, ["KiB", "MiB", "GiB", "TiB"])
}

/// What `transmission-show -u` prints about a torrent.
#[derive(Debug, PartialEq)]
struct Shown {
    name: String,
    hash: String,
    piece_count: String,
    piece_size: String,
    total_size: String,
    /// `path (size)` lines in torrent order.
    files: Vec<String>,
}

fn transmission_show(torrent: &Path) -> Shown {
    let out = run("transmission-show", &["-u".as_ref(), torrent.as_os_str()]);
    let field = |key: &str| {
        out.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(key)
                    .and_then(|rest| rest.strip_prefix(": "))
            })
            .unwrap_or_else(|| panic!("no `{key}` in transmission-show output:\n{out}"))
            .to_owned()
    };
    let files = out
        .lines()
        .skip_while(|l| l.trim() != "FILES")
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    Shown {
        name: field("Name"),
        hash: field("Hash"),
        piece_count: field("Piece Count"),
        piece_size: field("Piece Size"),
        total_size: field("Total Size"),
        files,
    }
}

/// The same fields, computed from our parse.
fn ours(m: &Metainfo) -> Shown {
    Shown {
        name: m.info().name().to_owned(),
        hash: m.info_hash().to_hex(),
        piece_count: m.layout().piece_count().to_string(),
        piece_size: mem(u64::from(m.info().piece_length())),
        total_size: size(m.total_length()),
        files: (0..m.info().files().len())
            .map(|i| {
                let path = m.relative_path(i);
                let parts: Vec<_> = path.iter().map(|c| c.to_str().unwrap()).collect();
                format!("{} ({})", parts.join("/"), size(m.info().files()[i].length))
            })
            .collect(),
    }
}

/// Our parse agrees with the files on disk, byte for byte.
fn check_against_disk(m: &Metainfo, target: &Path) {
    let base = target.parent().unwrap();
    let mut total = 0;
    for (i, file) in m.info().files().iter().enumerate() {
        let on_disk = std::fs::metadata(base.join(m.relative_path(i)))
            .unwrap()
            .len();
        assert_eq!(file.length, on_disk, "{}", m.relative_path(i).display());
        total += on_disk;
    }
    assert_eq!(m.total_length(), total);
    let pieces = total.div_ceil(u64::from(m.info().piece_length()));
    assert_eq!(u64::from(m.layout().piece_count()), pieces);
}

/// A fresh output file per tool, target and piece length (mktorrent
/// refuses to overwrite).
fn torrent_path(dir: &Path, tool: &str, name: &str, piece_length: u32) -> PathBuf {
    dir.join(format!("{tool}-{name}-{piece_length}.torrent"))
}

fn read_torrent(path: &Path) -> Metainfo {
    Metainfo::from_bytes(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn transmission_create_torrents_agree_with_transmission_show() {
    let dir = tempfile::tempdir().unwrap();
    for target in targets() {
        let name = target.file_name().unwrap().to_str().unwrap();
        for piece_length in PIECE_LENGTHS {
            let file = torrent_path(dir.path(), "tr", name, piece_length);
            let kib = (piece_length / 1024).to_string();
            run(
                "transmission-create",
                &[
                    "-s".as_ref(),
                    kib.as_ref(),
                    "-t".as_ref(),
                    ANNOUNCE.as_ref(),
                    "-o".as_ref(),
                    file.as_os_str(),
                    target.as_os_str(),
                ],
            );
            let m = read_torrent(&file);
            assert_eq!(m.info().piece_length(), piece_length);
            assert_eq!(m.announce(), Some(ANNOUNCE));
            assert!(
                m.created_by()
                    .is_some_and(|c| c.starts_with("Transmission"))
            );
            assert_eq!(m.is_multi_file(), target.is_dir());
            check_against_disk(&m, &target);
            let shown = transmission_show(&file);
            assert_eq!(ours(&m), shown, "{name} at {piece_length}");
            println!(
                "transmission-create {name} piece length {piece_length}: info-hash {} matches transmission-show",
                shown.hash
            );
        }
    }
}

#[test]
fn mktorrent_torrents_agree_with_transmission_show_and_our_builder() {
    let dir = tempfile::tempdir().unwrap();
    for target in targets() {
        let name = target.file_name().unwrap().to_str().unwrap();
        for piece_length in MKTORRENT_PIECE_LENGTHS {
            let file = torrent_path(dir.path(), "mk", name, piece_length);
            let log2 = piece_length.trailing_zeros().to_string();
            run(
                "mktorrent",
                &[
                    "-l".as_ref(),
                    log2.as_ref(),
                    "-a".as_ref(),
                    ANNOUNCE.as_ref(),
                    "-o".as_ref(),
                    file.as_os_str(),
                    target.as_os_str(),
                ],
            );
            let bytes = std::fs::read(&file).unwrap();
            let theirs = read_torrent(&file);
            assert_eq!(theirs.info().piece_length(), piece_length);
            check_against_disk(&theirs, &target);
            // mktorrent writes canonical bencode with keys we all know, so
            // our encoder reproduces its file byte for byte.
            assert!(
                theirs.to_bytes() == bytes,
                "re-encoding {} changed it",
                file.display()
            );
            let shown = transmission_show(&file);
            assert_eq!(ours(&theirs), shown, "{name} at {piece_length}");

            let built = MetainfoBuilder::new(&target)
                .piece_length(Some(piece_length))
                .announce(ANNOUNCE)
                .build()
                .unwrap();
            assert_eq!(
                built.info_hash(),
                theirs.info_hash(),
                "{name} at {piece_length}"
            );
            assert_eq!(built.info().files(), theirs.info().files());
            println!(
                "mktorrent {name} piece length {piece_length}: info-hash {} = ours = transmission-show",
                shown.hash
            );
        }
    }
}

#[test]
fn transmission_show_accepts_our_torrents() {
    let dir = tempfile::tempdir().unwrap();
    for target in targets() {
        let name = target.file_name().unwrap().to_str().unwrap();
        for piece_length in PIECE_LENGTHS.into_iter().map(Some).chain([None]) {
            let built = MetainfoBuilder::new(&target)
                .piece_length(piece_length)
                .announce(ANNOUNCE)
                .comment("made by minibit")
                .created_by("minibit test")
                .build()
                .unwrap();
            check_against_disk(&built, &target);
            let file = dir.path().join("ours.torrent");
            std::fs::write(&file, built.to_bytes()).unwrap();
            let shown = transmission_show(&file);
            assert_eq!(ours(&built), shown, "{name} at {piece_length:?}");
            println!(
                "ours {name} piece length {piece_length:?}: transmission-show reads info-hash {}",
                shown.hash
            );
        }
    }
}
