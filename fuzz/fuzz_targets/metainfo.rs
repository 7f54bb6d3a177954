//! `.torrent` parsing on arbitrary bytes.
//!
//! Checks: no panic; the info-hash is the SHA-1 of the info bytes; the file
//! re-encodes and parses to the same torrent; the layout matches the file
//! list; and every file path is a plain relative path that stays inside the
//! output folder, distinct from the others and not inside another file.
#![no_main]

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use minibit_core::metainfo::Metainfo;
use sha1::{Digest, Sha1};

fuzz_target!(|data: &[u8]| {
    let Ok(meta) = Metainfo::from_bytes(data) else {
        return;
    };
    assert_eq!(
        <[u8; 20]>::from(Sha1::digest(meta.info_bytes())),
        meta.info_hash().0
    );
    assert_eq!(Metainfo::from_bytes(&meta.to_bytes()).as_ref(), Ok(&meta));

    let info = meta.info();
    let layout = meta.layout();
    assert_eq!(layout.piece_count() as usize, info.pieces().len());
    assert_eq!(layout.file_count(), info.files().len());
    assert_eq!(layout.piece_length(), info.piece_length());
    assert_eq!(
        layout.total_length(),
        info.files().iter().map(|f| f.length).sum::<u64>()
    );

    let out = Path::new("/srv/downloads");
    let mut seen: HashSet<PathBuf> = HashSet::new();
    for (i, file) in info.files().iter().enumerate() {
        let relative = meta.relative_path(i);
        let expected_parts = file.path.len() + usize::from(info.is_multi_file());
        assert!(expected_parts > 0);
        assert_eq!(
            relative.components().count(),
            expected_parts,
            "{}",
            relative.display()
        );
        assert!(
            relative
                .components()
                .all(|c| matches!(c, Component::Normal(_))),
            "{} is not a plain relative path",
            relative.display()
        );
        assert!(out.join(&relative).starts_with(out));
        assert!(seen.insert(relative), "two files share a path");
    }
    for path in &seen {
        for folder in path.ancestors().skip(1) {
            assert!(
                !seen.contains(folder),
                "{} is inside the file {}",
                path.display(),
                folder.display()
            );
        }
    }
});
