//! The fingerprint of a torrent's data on disk: each file's size and
//! modification time. Stored at publication; when it is unchanged at a
//! restart the data is seeded without being read and hashed again (a
//! piece that changed anyway still fails each leecher's SHA-1 check,
//! BEP 3); when it differs, every piece is verified first.

use std::path::Path;
use std::time::UNIX_EPOCH;

use minibit_core::metainfo::Metainfo;

/// `size:mtime_ns` of every file of `metainfo` under `folder`, joined by
/// `;` in torrent order.
///
/// # Errors
/// A file is missing or its metadata cannot be read.
pub fn of(metainfo: &Metainfo, folder: &Path) -> std::io::Result<String> {
    let mut parts = Vec::with_capacity(metainfo.info().files().len());
    for file in 0..metainfo.info().files().len() {
        let meta = std::fs::metadata(folder.join(metainfo.relative_path(file)))?;
        let mtime = meta
            .modified()?
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        parts.push(format!("{}:{mtime}", meta.len()));
    }
    Ok(parts.join(";"))
}

/// Whether every file of `metainfo` is under `folder` with its exact length.
pub fn sizes_match(metainfo: &Metainfo, folder: &Path) -> bool {
    metainfo.info().files().iter().enumerate().all(|(i, file)| {
        std::fs::metadata(folder.join(metainfo.relative_path(i)))
            .is_ok_and(|m| m.is_file() && m.len() == file.length)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use minibit_core::metainfo::MetainfoBuilder;

    #[test]
    fn the_fingerprint_changes_with_the_size_or_the_mtime_and_not_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, vec![7u8; 40_000]).unwrap();
        let metainfo = MetainfoBuilder::new(&path).build().unwrap();
        let first = of(&metainfo, dir.path()).unwrap();
        assert_eq!(of(&metainfo, dir.path()).unwrap(), first);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_modified(UNIX_EPOCH + std::time::Duration::from_secs(1))
            .unwrap();
        assert_ne!(of(&metainfo, dir.path()).unwrap(), first);
        assert!(sizes_match(&metainfo, dir.path()));
        std::fs::write(&path, vec![7u8; 39_999]).unwrap();
        assert!(!sizes_match(&metainfo, dir.path()));
        std::fs::remove_file(&path).unwrap();
        assert!(of(&metainfo, dir.path()).is_err());
    }
}
