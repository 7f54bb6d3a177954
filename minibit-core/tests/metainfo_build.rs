//! `MetainfoBuilder`: building `.torrent`s from files and folders on disk.

use std::fs;
use std::path::Path;

use minibit_core::metainfo::build::{
    LARGE_CONTENT, LARGE_MIN_PIECE_LENGTH, MAX_BUILD_PIECE_LENGTH, MIN_BUILD_PIECE_LENGTH,
    TARGET_PIECE_COUNT, TINY_CONTENT, auto_piece_length,
};
use minibit_core::metainfo::{BuildError, Metainfo, MetainfoBuilder, PathError};
use proptest::prelude::*;
use sha1::{Digest, Sha1};

fn in_memory_hashes(data: &[u8], piece_length: u32) -> Vec<[u8; 20]> {
    data.chunks(piece_length as usize)
        .map(|c| Sha1::digest(c).into())
        .collect()
}

fn write(root: &Path, relative: &str, data: &[u8]) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// `n` bytes that differ from file to file.
fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn folder_becomes_a_multi_file_torrent_in_path_byte_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("album");
    // Created out of order; `a-b/x` sorts before `a/x` by bytes ('-' < '/').
    let files = [
        ("a/x", 40_000, 1),
        ("B", 5, 2),
        ("a-b/x", 20_000, 3),
        ("a/sub/deep.bin", 70_000, 4),
        ("a.txt", 0, 5),
        ("Z/y", 16_384, 6),
    ];
    for (name, len, seed) in files {
        write(&root, name, &bytes(len, seed));
    }
    let mut calls = Vec::new();
    let m = MetainfoBuilder::new(&root)
        .piece_length(Some(16 * 1024))
        .announce("http://127.0.0.1:6969/announce")
        .comment("holiday")
        .created_by("minibit test")
        .creation_date(1_700_000_000)
        .build_with_progress(|done, total| calls.push((done, total)))
        .unwrap();

    let order = ["B", "Z/y", "a-b/x", "a.txt", "a/sub/deep.bin", "a/x"];
    let got: Vec<String> = m.info().files().iter().map(|f| f.path.join("/")).collect();
    assert_eq!(got, order);
    let mut content = Vec::new();
    for name in order {
        let (_, len, seed) = files.iter().find(|f| f.0 == name).unwrap();
        assert_eq!(
            m.info()
                .files()
                .iter()
                .find(|f| f.path.join("/") == name)
                .unwrap()
                .length,
            *len as u64
        );
        content.extend(bytes(*len, *seed));
    }
    assert!(m.is_multi_file());
    assert_eq!(m.info().name(), "album");
    assert_eq!(m.total_length(), content.len() as u64);
    assert_eq!(
        m.info().pieces(),
        in_memory_hashes(&content, 16 * 1024).as_slice()
    );
    assert_eq!(
        m.relative_path(4),
        Path::new("album").join("a").join("sub").join("deep.bin")
    );
    assert_eq!(m.announce(), Some("http://127.0.0.1:6969/announce"));
    assert_eq!(m.comment(), Some("holiday"));
    assert_eq!(m.created_by(), Some("minibit test"));
    assert_eq!(m.creation_date(), Some(1_700_000_000));
    assert!(!m.info().private());

    // Progress climbs to the total and never goes back.
    let total = content.len() as u64;
    assert!(calls.iter().all(|&(_, t)| t == total));
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(calls.last().map(|c| c.0), Some(total));

    // The bytes parse back to the same torrent.
    assert_eq!(Metainfo::from_bytes(&m.to_bytes()).unwrap(), m);
}

#[test]
fn single_file_torrent_with_auto_piece_length_and_private_flag() {
    let dir = tempfile::tempdir().unwrap();
    let data = bytes(300_000, 9);
    write(dir.path(), "movie.bin", &data);
    // `sub/..` is resolved before the name is taken.
    fs::create_dir(dir.path().join("sub")).unwrap();
    let m = MetainfoBuilder::new(dir.path().join("sub/../movie.bin"))
        .private(true)
        .build()
        .unwrap();
    assert!(!m.is_multi_file());
    assert!(m.info().private());
    assert_eq!(m.info().name(), "movie.bin");
    assert_eq!(m.relative_path(0), Path::new("movie.bin"));
    assert_eq!(m.info().piece_length(), MIN_BUILD_PIECE_LENGTH);
    assert_eq!(
        m.info().pieces(),
        in_memory_hashes(&data, MIN_BUILD_PIECE_LENGTH).as_slice()
    );
}

#[test]
fn auto_piece_length_aims_at_the_target_count() {
    const MIB: u64 = 1 << 20;
    assert_eq!(auto_piece_length(1), MIN_BUILD_PIECE_LENGTH);
    assert_eq!(auto_piece_length(16 * MIB), 16 * 1024);
    // 31 MiB got 16 KiB pieces (1984 of them): 16 KiB is for tiny files only.
    assert_eq!(auto_piece_length(31 * MIB), 32 * 1024);
    assert_eq!(auto_piece_length(100 * MIB), 64 * 1024);
    assert_eq!(auto_piece_length(101 * MIB), 256 * 1024);
    assert_eq!(auto_piece_length(1 << 30), 512 * 1024);
    assert_eq!(auto_piece_length(50 << 30), MAX_BUILD_PIECE_LENGTH);
    assert_eq!(auto_piece_length(u64::MAX / 2), MAX_BUILD_PIECE_LENGTH);
    for total in [600 * MIB, 7 << 30, 30 << 30] {
        let length = auto_piece_length(total);
        assert!(length.is_power_of_two());
        let count = total.div_ceil(u64::from(length));
        assert!(
            count <= TARGET_PIECE_COUNT && count > TARGET_PIECE_COUNT / 2,
            "{total}: {count} pieces"
        );
    }
}

proptest! {
    #[test]
    fn auto_piece_length_follows_the_rule(total in 1u64..(1 << 45)) {
        let length = auto_piece_length(total);
        prop_assert!(length.is_power_of_two());
        prop_assert!((MIN_BUILD_PIECE_LENGTH..=MAX_BUILD_PIECE_LENGTH).contains(&length));
        if length == MIN_BUILD_PIECE_LENGTH {
            prop_assert!(total <= TINY_CONTENT);
        }
        if total > LARGE_CONTENT {
            prop_assert!(length >= LARGE_MIN_PIECE_LENGTH);
        }
        if length < MAX_BUILD_PIECE_LENGTH {
            prop_assert!(total.div_ceil(u64::from(length)) <= TARGET_PIECE_COUNT);
        }
        // Never more than twice the length the count alone would need.
        if length > LARGE_MIN_PIECE_LENGTH {
            prop_assert!(total.div_ceil(u64::from(length / 2)) > TARGET_PIECE_COUNT);
        }
    }
}

#[test]
fn bad_inputs_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "f", b"x");
    let f = dir.path().join("f");
    for bad in [0, 1000, 8192, 3 << 14, 32 << 20] {
        assert!(matches!(
            MetainfoBuilder::new(&f).piece_length(Some(bad)).build(),
            Err(BuildError::BadPieceLength(b)) if b == bad
        ));
    }
    assert!(matches!(
        MetainfoBuilder::new(dir.path().join("missing")).build(),
        Err(BuildError::Io { .. })
    ));
    fs::create_dir(dir.path().join("empty")).unwrap();
    fs::create_dir(dir.path().join("empty/sub")).unwrap();
    write(dir.path(), "empty/sub/zero", b"");
    assert!(matches!(
        MetainfoBuilder::new(dir.path().join("empty")).build(),
        Err(BuildError::Empty(_))
    ));
    write(dir.path(), "odd/a\\b", b"x");
    assert!(matches!(
        MetainfoBuilder::new(dir.path().join("odd")).build(),
        Err(BuildError::BadName {
            source: PathError::Separator(_),
            ..
        })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Build from files on disk, encode, parse: the same torrent, with the
    /// pieces of the files concatenated in sorted order.
    #[test]
    fn build_then_parse_round_trip(
        files in proptest::collection::btree_map("[a-c]{1,2}(/[a-c]{1,2}){0,2}", 0usize..40_000, 1..6),
        shift in 14u32..17,
    ) {
        let paths: Vec<&String> = files.keys().collect();
        // A file cannot also be a folder.
        prop_assume!(!paths.iter().any(|a| paths.iter().any(|b| b.starts_with(&format!("{a}/")))));
        prop_assume!(files.values().sum::<usize>() > 0);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        for (i, (path, len)) in files.iter().enumerate() {
            write(&root, path, &bytes(*len, i as u8));
        }
        let piece_length = 1u32 << shift;
        let m = MetainfoBuilder::new(&root).piece_length(Some(piece_length)).build().unwrap();
        // BTreeMap order is byte order of the whole path string.
        let content: Vec<u8> = files.iter().enumerate().flat_map(|(i, (_, len))| bytes(*len, i as u8)).collect();
        let names: Vec<String> = m.info().files().iter().map(|f| f.path.join("/")).collect();
        prop_assert_eq!(names, files.keys().cloned().collect::<Vec<_>>());
        let expected = in_memory_hashes(&content, piece_length);
        prop_assert_eq!(m.info().pieces(), expected.as_slice());
        let parsed = Metainfo::from_bytes(&m.to_bytes()).unwrap();
        prop_assert_eq!(&parsed, &m);
    }
}
