//! Part files of skipped files (selective download, libtorrent's approach).
//!
//! A piece shared by a wanted and a skipped file is downloaded and
//! verified whole; the bytes that belong to the skipped file go to that
//! file's part file in the state folder (`STATE/INFOHASH.parts/INDEX.part`,
//! a sparse file of the skipped file's length), never under the output
//! folder. When the file is wanted again, its part file becomes
//! `NAME.part` (a rename, or a copy across file systems), so the bytes
//! already verified are kept and only the missing pieces are fetched.

use std::io;
use std::path::{Path, PathBuf};

use crate::partial::part_path;

/// The part file of file `index` (torrent order) in `parts_dir`.
pub fn part_file(parts_dir: &Path, index: usize) -> PathBuf {
    parts_dir.join(format!("{index}.part"))
}

/// File `index`, whose final path is `path`, is wanted: if it has no data
/// under the output folder (neither NAME nor `NAME.part` exists) and its
/// part file `parts` exists, the part file is moved to `NAME.part`. A
/// part file next to existing data is left alone (the data wins); an
/// empty file's part file is removed.
///
/// # Errors
/// Creating the parent folders, or moving the part file.
pub fn unskip(parts: &Path, path: &Path, length: u64) -> io::Result<()> {
    if !parts.exists() || path.exists() || part_path(path).exists() {
        return Ok(());
    }
    if length == 0 {
        return std::fs::remove_file(parts);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let to = part_path(path);
    match std::fs::rename(parts, &to) {
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            // Another file system: copy (sparse holes become zeros), then
            // drop the part file.
            std::fs::copy(parts, &to)?;
            std::fs::remove_file(parts)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_file_becomes_name_part_unless_data_exists() {
        let dir = tempfile::tempdir().unwrap();
        let parts = dir.path().join("state/x.parts");
        std::fs::create_dir_all(&parts).unwrap();
        let part = part_file(&parts, 3);
        std::fs::write(&part, b"kept bytes").unwrap();
        let target = dir.path().join("out/sub/photo.jpg");
        unskip(&part, &target, 10).unwrap();
        assert!(!part.exists());
        assert_eq!(std::fs::read(part_path(&target)).unwrap(), b"kept bytes");

        // Data already there: the part file stays, the data is untouched.
        std::fs::write(&part, b"other").unwrap();
        unskip(&part, &target, 10).unwrap();
        assert!(part.exists());
        assert_eq!(std::fs::read(part_path(&target)).unwrap(), b"kept bytes");

        // No part file: nothing happens.
        let absent = part_file(&parts, 4);
        unskip(&absent, &dir.path().join("out/none"), 10).unwrap();
        assert!(!dir.path().join("out/none.part").exists());
    }
}
