//! Making a `.torrent` from a file or a folder on disk.
//!
//! This is the **only module of minibit-core that reads files**, and the
//! only one whose errors carry `io::Error`s. Files are hashed through a
//! fixed 64 KiB buffer ([`hash_reader`], [`PieceHasher`]), so files of many
//! GB never sit in memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::error::{MetainfoError, PathError};
use super::path::check_component;
use super::{Content, Draft, Extras, FileEntry, Metainfo, PieceHasher};

/// Smallest piece length [`MetainfoBuilder`] uses or accepts, in bytes (16 KiB).
pub const MIN_BUILD_PIECE_LENGTH: u32 = 16 * 1024;

/// Largest piece length [`MetainfoBuilder`] uses or accepts, in bytes (16 MiB).
pub const MAX_BUILD_PIECE_LENGTH: u32 = 16 * 1024 * 1024;

/// Piece count the automatic piece length aims at (at most this many
/// pieces, and more than half as many, unless the length hits a bound).
pub const TARGET_PIECE_COUNT: u64 = 2048;

/// Content up to this size, bytes (16 MiB), is tiny: only it gets 16 KiB
/// pieces from [`auto_piece_length`]; larger content gets at least 32 KiB.
pub const TINY_CONTENT: u64 = 16 * 1024 * 1024;

/// Content above this size, bytes (100 MiB), gets pieces of at least
/// [`LARGE_MIN_PIECE_LENGTH`] from [`auto_piece_length`].
pub const LARGE_CONTENT: u64 = 100 * 1024 * 1024;

/// Smallest automatic piece length for content above [`LARGE_CONTENT`], bytes (256 KiB).
pub const LARGE_MIN_PIECE_LENGTH: u32 = 256 * 1024;

const BUFFER_SIZE: usize = 64 * 1024;

/// Why a `.torrent` could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Reading the file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file or folder name cannot go into a torrent (not UTF-8, or unsafe).
    #[error("{path}: {source}")]
    BadName {
        /// The offending file or folder.
        path: PathBuf,
        /// What is wrong with its name.
        #[source]
        source: PathError,
    },
    /// The input path is neither a regular file nor a folder.
    #[error("{0}: not a regular file or a folder")]
    NotFileOrFolder(PathBuf),
    /// A file changed length while it was being hashed.
    #[error("{0}: file changed while it was being hashed")]
    FileChanged(PathBuf),
    /// The file or folder holds no byte of content.
    #[error("{0}: no content to share (zero bytes)")]
    Empty(PathBuf),
    /// The requested piece length is not a power of two in
    /// [`MIN_BUILD_PIECE_LENGTH`]..=[`MAX_BUILD_PIECE_LENGTH`].
    #[error("piece length {0} is not a power of two from 16 KiB to 16 MiB")]
    BadPieceLength(u32),
    /// The result is not a valid torrent (e.g. larger than [`super::MAX_TORRENT_SIZE`]).
    #[error(transparent)]
    Metainfo(#[from] MetainfoError),
}

/// The automatic piece length for `total` bytes of content (the common
/// rule of Transmission and libtorrent: about 1000-2000 pieces): the
/// smallest power of two giving at most [`TARGET_PIECE_COUNT`] pieces, but
/// 16 KiB only for tiny content (up to [`TINY_CONTENT`], else at least
/// 32 KiB), at least [`LARGE_MIN_PIECE_LENGTH`] above [`LARGE_CONTENT`],
/// and at most [`MAX_BUILD_PIECE_LENGTH`] (16 MiB). Used by
/// [`MetainfoBuilder`] when no piece length is given.
pub fn auto_piece_length(total: u64) -> u32 {
    let mut length = if total > LARGE_CONTENT {
        LARGE_MIN_PIECE_LENGTH
    } else if total > TINY_CONTENT {
        2 * MIN_BUILD_PIECE_LENGTH
    } else {
        MIN_BUILD_PIECE_LENGTH
    };
    while length < MAX_BUILD_PIECE_LENGTH && total.div_ceil(u64::from(length)) > TARGET_PIECE_COUNT
    {
        length *= 2;
    }
    length
}

/// Checks a piece length given for a build: a power of two from
/// [`MIN_BUILD_PIECE_LENGTH`] to [`MAX_BUILD_PIECE_LENGTH`] bytes.
///
/// # Errors
/// [`BuildError::BadPieceLength`].
pub fn check_piece_length(length: u32) -> Result<(), BuildError> {
    let ok = length.is_power_of_two()
        && (MIN_BUILD_PIECE_LENGTH..=MAX_BUILD_PIECE_LENGTH).contains(&length);
    if ok {
        Ok(())
    } else {
        Err(BuildError::BadPieceLength(length))
    }
}

/// Hashes everything `reader` yields into pieces of `piece_length` bytes
/// (BEP 3 `pieces`), through a fixed 64 KiB buffer.
///
/// # Errors
/// The first read error other than `Interrupted`.
///
/// # Panics
/// If `piece_length` is zero.
pub fn hash_reader<R: Read>(mut reader: R, piece_length: u32) -> io::Result<Vec<[u8; 20]>> {
    let mut hasher = PieceHasher::new(piece_length);
    feed(
        &mut reader,
        &mut hasher,
        &mut vec![0; BUFFER_SIZE],
        &mut |_| {},
    )?;
    Ok(hasher.finish())
}

/// Feeds all of `reader` to `hasher`; calls `progress` with the bytes hashed so far.
fn feed(
    reader: &mut impl Read,
    hasher: &mut PieceHasher,
    buffer: &mut [u8],
    progress: &mut dyn FnMut(u64),
) -> io::Result<()> {
    loop {
        match reader.read(buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                hasher.update(&buffer[..n]);
                progress(hasher.bytes_hashed());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A file found on disk: its path in the torrent, where it is, its length.
struct SourceFile {
    path: Vec<String>,
    disk: PathBuf,
    length: u64,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The sanitised final component of `path`.
fn name_of(path: &Path) -> Result<String, BuildError> {
    let bad = |source| BuildError::BadName {
        path: path.to_owned(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| bad(PathError::EmptyComponent))?;
    let name = name.to_str().ok_or_else(|| bad(PathError::NotUtf8))?;
    check_component(name).map_err(bad)?;
    Ok(name.to_owned())
}

/// Every regular file under `dir` (following symlinks to files, not to
/// folders, so a link loop cannot trap the walk).
fn walk(dir: &Path, prefix: &[String], out: &mut Vec<SourceFile>) -> Result<(), BuildError> {
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let disk = entry.path();
        let kind = entry.file_type().map_err(io_error(&disk))?;
        let mut path = prefix.to_vec();
        path.push(name_of(&disk)?);
        if kind.is_dir() {
            walk(&disk, &path, out)?;
        } else {
            let meta = std::fs::metadata(&disk).map_err(io_error(&disk))?;
            if meta.is_file() {
                out.push(SourceFile {
                    path,
                    disk,
                    length: meta.len(),
                });
            }
        }
    }
    Ok(())
}

/// Builds a `.torrent` for a file or a folder.
///
/// A folder becomes a multi-file torrent holding every regular file below
/// it (recursively), ordered by their `/`-joined paths compared as bytes
/// (the order mktorrent uses). Output is canonical bencode.
///
/// ```no_run
/// use minibit_core::metainfo::MetainfoBuilder;
/// let torrent = MetainfoBuilder::new("photos")
///     .announce("http://tracker.example:8080/announce")
///     .build_with_progress(|done, total| eprintln!("{done}/{total} bytes"))?;
/// std::fs::write("photos.torrent", torrent.to_bytes())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct MetainfoBuilder {
    root: PathBuf,
    piece_length: Option<u32>,
    private: bool,
    extras: Extras,
}

impl MetainfoBuilder {
    /// A builder for the file or folder at `path`; the last component of
    /// its canonical form becomes `name`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            root: path.into(),
            piece_length: None,
            private: false,
            extras: Extras::default(),
        }
    }

    /// Piece length in bytes (a power of two, 16 KiB to 16 MiB), or `None`
    /// for [`auto_piece_length`].
    #[must_use]
    pub const fn piece_length(mut self, piece_length: Option<u32>) -> Self {
        self.piece_length = piece_length;
        self
    }

    /// Sets `announce`, the tracker URL.
    #[must_use]
    pub fn announce(mut self, url: impl Into<String>) -> Self {
        self.extras.announce = Some(url.into());
        self
    }

    /// Sets `announce-list` tiers (BEP 12).
    #[must_use]
    pub fn announce_list(mut self, tiers: Vec<Vec<String>>) -> Self {
        self.extras.announce_list = tiers;
        self
    }

    /// Sets `comment`.
    #[must_use]
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.extras.comment = Some(comment.into());
        self
    }

    /// Sets `created by`.
    #[must_use]
    pub fn created_by(mut self, program: impl Into<String>) -> Self {
        self.extras.created_by = Some(program.into());
        self
    }

    /// Sets `creation date`, seconds since the Unix epoch (the core reads no clock).
    #[must_use]
    pub const fn creation_date(mut self, seconds: i64) -> Self {
        self.extras.creation_date = Some(seconds);
        self
    }

    /// Sets the `private` flag (BEP 27).
    #[must_use]
    pub const fn private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    /// Hashes the content and returns the torrent.
    ///
    /// # Errors
    /// See [`MetainfoBuilder::build_with_progress`].
    pub fn build(self) -> Result<Metainfo, BuildError> {
        self.build_with_progress(|_, _| {})
    }

    /// Hashes the content, calling `progress(bytes_hashed, total_bytes)`
    /// after every 64 KiB read, and returns the torrent.
    ///
    /// # Errors
    /// [`BuildError`]: unreadable files, unusable names, a bad piece length,
    /// a file changing while hashed, or empty content.
    pub fn build_with_progress(
        self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Metainfo, BuildError> {
        if let Some(length) = self.piece_length {
            check_piece_length(length)?;
        }
        // Canonical, so that `.` or `dir/..` still yield a real name.
        let canonical = std::fs::canonicalize(&self.root).map_err(io_error(&self.root))?;
        let name = name_of(&canonical)?;
        let meta = std::fs::metadata(&canonical).map_err(io_error(&self.root))?;
        let (files, multi) = if meta.is_dir() {
            let mut files = Vec::new();
            walk(&self.root, &[], &mut files)?;
            files.sort_by_cached_key(|f| f.path.join("/").into_bytes());
            (files, true)
        } else if meta.is_file() {
            let single = SourceFile {
                path: vec![name.clone()],
                disk: self.root.clone(),
                length: meta.len(),
            };
            (vec![single], false)
        } else {
            return Err(BuildError::NotFileOrFolder(self.root));
        };
        let total = files.iter().map(|f| f.length).sum();
        if total == 0 {
            return Err(BuildError::Empty(self.root));
        }
        let piece_length = self
            .piece_length
            .unwrap_or_else(|| auto_piece_length(total));

        let mut hasher = PieceHasher::new(piece_length);
        let mut buffer = vec![0; BUFFER_SIZE];
        for file in &files {
            let start = hasher.bytes_hashed();
            let handle = File::open(&file.disk).map_err(io_error(&file.disk))?;
            feed(
                &mut handle.take(file.length),
                &mut hasher,
                &mut buffer,
                &mut |done| {
                    progress(done, total);
                },
            )
            .map_err(io_error(&file.disk))?;
            if hasher.bytes_hashed() - start != file.length {
                return Err(BuildError::FileChanged(file.disk.clone()));
            }
        }

        let content = if multi {
            Content::Multi {
                files: files
                    .into_iter()
                    .map(|f| FileEntry {
                        path: f.path,
                        length: f.length,
                    })
                    .collect(),
            }
        } else {
            Content::Single { length: total }
        };
        let draft = Draft {
            name,
            piece_length,
            pieces: hasher.finish(),
            content,
            private: self.private,
            extras: self.extras,
        };
        Ok(draft.finish()?)
    }
}
