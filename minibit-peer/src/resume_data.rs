//! Fast resume: what a torrent's resume data records and what a restart
//! may trust from it.
//!
//! The resume data of a torrent (`STATE/INFOHASH.resume`, JSON) holds the
//! verified pieces, each file's size and modification time as they were
//! right after those pieces' bytes were written, and the file priorities.
//! On restart a piece is taken as verified without reading it only if the
//! resume data lists it and every file it touches still has the recorded
//! size and mtime; every piece of a file whose size or mtime changed is
//! hashed again (the whole file), and a piece the resume data does not list
//! counts as missing. Resume data is written atomically (a temporary file,
//! `fsync`, `rename`, `fsync` of the folder), so after a crash at any
//! moment it is either the previous complete version or the new one; it
//! lists only pieces whose bytes were written before it (see
//! `resume_writer` for the order and for power loss).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::InfoHash;
use minibit_core::piece::Layout;
use minibit_core::priority::Priority;
use serde::{Deserialize, Serialize};

use crate::storage::FileStamp;

/// Format version written in the file; other versions are ignored.
pub const RESUME_VERSION: u32 = 1;

/// Name of the default state folder, inside the output folder (hidden).
pub const DEFAULT_STATE_DIR: &str = ".minibit";

/// The resume data file of `info_hash` in `state_dir`.
pub fn resume_path(state_dir: &Path, info_hash: &InfoHash) -> PathBuf {
    state_dir.join(format!("{info_hash}.resume"))
}

/// The `.torrent` saved for `info_hash` in `state_dir` (a torrent started
/// from a magnet link, once its metadata arrived).
pub fn torrent_path(state_dir: &Path, info_hash: &InfoHash) -> PathBuf {
    state_dir.join(format!("{info_hash}.torrent"))
}

/// The folder of the part files of `info_hash`'s skipped files
/// ([`crate::skipped`]) in `state_dir`.
pub fn parts_dir(state_dir: &Path, info_hash: &InfoHash) -> PathBuf {
    state_dir.join(format!("{info_hash}.parts"))
}

/// One torrent's resume data, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeData {
    /// [`RESUME_VERSION`].
    pub version: u32,
    /// The torrent's info-hash, hex.
    pub info_hash: String,
    /// Piece count.
    pub pieces: u32,
    /// Verified pieces: the wire bitfield (BEP 3), hex.
    pub have: String,
    /// Each file's size and mtime after the listed pieces were written.
    pub files: Vec<FileStamp>,
    /// File priorities: 0 skip, 1 normal, 2 high (empty: all normal).
    pub priorities: Vec<u8>,
}

impl ResumeData {
    /// Resume data for `have` with the files at `files` and `priorities`.
    pub fn new(
        info_hash: &InfoHash,
        have: &Bitfield,
        files: Vec<FileStamp>,
        priorities: &[Priority],
    ) -> Self {
        Self {
            version: RESUME_VERSION,
            info_hash: info_hash.to_string(),
            pieces: have.len(),
            have: hex::encode(have.to_wire()),
            files,
            priorities: priorities
                .iter()
                .map(|p| match p {
                    Priority::Skip => 0,
                    Priority::Normal => 1,
                    Priority::High => 2,
                })
                .collect(),
        }
    }

    /// Reads the resume data at `path` for a torrent with `info_hash`,
    /// `layout`'s piece count and file count. `Ok(None)` when there is none,
    /// or it is unreadable, of another version or of another torrent (it is
    /// then ignored: the files are verified as without resume data).
    ///
    /// # Errors
    /// I/O errors other than "not found".
    pub fn load(path: &Path, info_hash: &InfoHash, layout: &Layout) -> io::Result<Option<Self>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Ok(data) = serde_json::from_slice::<Self>(&bytes) else {
            return Ok(None);
        };
        let fits = data.version == RESUME_VERSION
            && data.info_hash == info_hash.to_string()
            && data.pieces == layout.piece_count()
            && data.files.len() == layout.file_count()
            && data.have_bits().is_some();
        Ok(fits.then_some(data))
    }

    /// The verified pieces (`None` if malformed).
    pub fn have_bits(&self) -> Option<Bitfield> {
        let bytes = hex::decode(&self.have).ok()?;
        Bitfield::from_wire(&bytes, self.pieces).ok()
    }

    /// The file priorities recorded.
    pub fn file_priorities(&self) -> Vec<Priority> {
        self.priorities
            .iter()
            .map(|&p| match p {
                0 => Priority::Skip,
                2 => Priority::High,
                _ => Priority::Normal,
            })
            .collect()
    }

    /// Writes `self` to `path` atomically: a temporary file in the same
    /// folder (created if needed), `fsync`, `rename` over `path`, `fsync`
    /// of the folder.
    ///
    /// # Errors
    /// I/O errors (the previous resume data, if any, is then intact).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        write_atomic(path, &serde_json::to_vec(self).map_err(io::Error::other)?)
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// folder (created if needed), `fsync`, `rename` over `path`, `fsync` of
/// the folder.
///
/// # Errors
/// I/O errors (the previous file at `path`, if any, is then intact).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// What a restart does with each piece.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumePlan {
    /// Taken as verified without reading.
    pub trusted: Bitfield,
    /// Read back and hashed.
    pub verify: Bitfield,
}

/// The plan for `layout` given the resume data's verified pieces and file
/// stamps and the stamps `found` on disk (`None`: the file was missing):
/// see the module docs.
pub fn plan(
    layout: &Layout,
    have: &Bitfield,
    recorded: &[FileStamp],
    found: &[Option<FileStamp>],
) -> ResumePlan {
    let count = layout.piece_count();
    let changed: Vec<bool> = (0..layout.file_count())
        .map(|i| found.get(i).copied().flatten() != recorded.get(i).copied())
        .collect();
    let mut trusted = Bitfield::new(count);
    let mut verify = Bitfield::new(count);
    for (file, _) in changed.iter().enumerate().filter(|&(_, &c)| c) {
        if let Some(pieces) = layout.file_pieces(file) {
            for piece in pieces {
                verify.set(layout.piece_index(piece).expect("piece of the layout"));
            }
        }
    }
    for piece in have.iter_set().filter(|&p| !verify.has(p)) {
        trusted.set(piece);
    }
    ResumePlan { trusted, verify }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(size: u64, mtime_s: i64) -> FileStamp {
        FileStamp {
            size,
            mtime_s,
            mtime_ns: 0,
        }
    }

    #[test]
    fn only_listed_pieces_of_unchanged_files_are_trusted() {
        // 8-byte pieces: piece 1 spans a and b, piece 2 spans b and c.
        let layout = Layout::new(8, &[10, 7, 15]).unwrap();
        let mut have = Bitfield::new(4);
        for i in [0, 1, 3] {
            have.set(layout.piece_index(i).unwrap());
        }
        let recorded = [stamp(10, 1), stamp(7, 1), stamp(15, 1)];
        let same = recorded.map(Some);
        let p = plan(&layout, &have, &recorded, &same);
        assert_eq!(p.trusted, have);
        assert!(p.verify.is_none());
        // b touched: pieces 1 and 2 (all of b's) are verified, 0 and 3 trusted.
        let touched = [Some(stamp(10, 1)), Some(stamp(7, 2)), Some(stamp(15, 1))];
        let p = plan(&layout, &have, &recorded, &touched);
        let pieces = |b: &Bitfield| {
            b.iter_set()
                .map(minibit_core::piece::PieceIndex::get)
                .collect::<Vec<_>>()
        };
        assert_eq!(pieces(&p.trusted), [0, 3]);
        assert_eq!(pieces(&p.verify), [1, 2]);
        // c missing: its pieces are verified (and will fail).
        let missing = [Some(stamp(10, 1)), Some(stamp(7, 1)), None];
        let p = plan(&layout, &have, &recorded, &missing);
        assert_eq!(pieces(&p.trusted), [0, 1]);
        assert_eq!(pieces(&p.verify), [2, 3]);
    }

    #[test]
    fn save_then_load_round_trips_and_foreign_data_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(8, &[10, 7, 15]).unwrap();
        let info_hash = InfoHash([7; 20]);
        let mut have = Bitfield::new(4);
        have.set(layout.piece_index(2).unwrap());
        let data = ResumeData::new(
            &info_hash,
            &have,
            vec![stamp(10, 1), stamp(7, 2), stamp(15, 3)],
            &[Priority::Skip, Priority::Normal, Priority::High],
        );
        let path = resume_path(&dir.path().join("state"), &info_hash);
        data.save(&path).unwrap();
        let loaded = ResumeData::load(&path, &info_hash, &layout)
            .unwrap()
            .unwrap();
        assert_eq!(loaded, data);
        assert_eq!(loaded.have_bits().unwrap(), have);
        assert_eq!(
            loaded.file_priorities(),
            [Priority::Skip, Priority::Normal, Priority::High]
        );
        // Another torrent, another geometry, garbage: ignored.
        assert!(
            ResumeData::load(&path, &InfoHash([8; 20]), &layout)
                .unwrap()
                .is_none()
        );
        let other = Layout::new(8, &[10, 22]).unwrap();
        assert!(
            ResumeData::load(&path, &info_hash, &other)
                .unwrap()
                .is_none()
        );
        std::fs::write(&path, b"{not json").unwrap();
        assert!(
            ResumeData::load(&path, &info_hash, &layout)
                .unwrap()
                .is_none()
        );
        let absent = dir.path().join("none.resume");
        assert!(
            ResumeData::load(&absent, &info_hash, &layout)
                .unwrap()
                .is_none()
        );
    }
}
