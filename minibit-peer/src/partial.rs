//! Incomplete files are named `NAME.part` (like Transmission's
//! "incomplete" suffix) and renamed to NAME once every piece holding their
//! bytes is verified, so nothing named NAME exists before its content is
//! whole. A piece may span files (BEP 3: the content is the files
//! concatenated), so each file counts the pieces it still misses.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use minibit_core::bitfield::Bitfield;
use minibit_core::piece::{Layout, PieceIndex};

/// Appended to the name of a file whose pieces are not all verified.
pub const PART_SUFFIX: &str = ".part";

/// Where the incomplete `path` lives: `NAME.part` next to it.
pub fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map_or_else(OsString::new, OsString::from);
    name.push(PART_SUFFIX);
    path.with_file_name(name)
}

/// Which files of a torrent are still `NAME.part`, and how many pieces
/// holding their bytes are not verified yet.
#[derive(Debug)]
pub(crate) struct PartFiles {
    /// Final paths, in torrent order.
    finals: Vec<PathBuf>,
    /// Whether each file is still named `NAME.part`.
    partial: Vec<bool>,
    /// Unverified pieces holding bytes of each file.
    missing: Vec<u32>,
}

impl PartFiles {
    /// Files at `finals`, each still named `NAME.part` where `partial`
    /// says so; every piece counts as missing until [`PartFiles::reset`].
    pub(crate) fn new(layout: &Layout, finals: Vec<PathBuf>, partial: Vec<bool>) -> Self {
        let mut files = Self {
            missing: vec![0; finals.len()],
            finals,
            partial,
        };
        for piece in layout.pieces() {
            files.count(layout, piece, 1);
        }
        files
    }

    /// Counts the pieces missing from `have` again and renames every
    /// partial file none of whose pieces is missing.
    ///
    /// # Errors
    /// A failed rename (the file stays `NAME.part`; a later call retries).
    pub(crate) fn reset(&mut self, layout: &Layout, have: &Bitfield) -> io::Result<()> {
        self.missing.fill(0);
        for piece in have.iter_unset() {
            self.count(layout, piece, 1);
        }
        (0..self.finals.len()).try_for_each(|file| self.finish(file))
    }

    /// `piece` was verified: renames the partial files it completes.
    ///
    /// # Errors
    /// A failed rename (the file stays `NAME.part`).
    pub(crate) fn piece_verified(&mut self, layout: &Layout, piece: PieceIndex) -> io::Result<()> {
        self.count(layout, piece, -1);
        layout
            .piece_spans(piece)
            .try_for_each(|span| self.finish(span.file))
    }

    #[cfg(test)]
    /// Whether file `index` is still named `NAME.part`.
    pub(crate) fn is_partial(&self, index: usize) -> bool {
        self.partial[index]
    }

    fn count(&mut self, layout: &Layout, piece: PieceIndex, delta: i32) {
        for span in layout.piece_spans(piece) {
            let missing = &mut self.missing[span.file];
            *missing = missing.saturating_add_signed(delta);
        }
    }

    fn finish(&mut self, file: usize) -> io::Result<()> {
        if self.partial[file] && self.missing[file] == 0 {
            let to = &self.finals[file];
            std::fs::rename(part_path(to), to)?;
            self.partial[file] = false;
        }
        Ok(())
    }
}
