//! `.torrent` metainfo (BEP 3 "metainfo files"): parse, validate, encode, build.
//!
//! - [`Metainfo::from_bytes`] parses and validates a `.torrent` file. The
//!   input is size-checked ([`MAX_TORRENT_SIZE`]) and walked by a
//!   non-recursive scanner that limits nesting ([`MAX_DEPTH`]) before
//!   serde_bencode sees it. The [`InfoHash`] is the SHA-1 of the exact bytes
//!   of the `info` value as they stand in the file, never of a re-encoding.
//!   Unknown keys are ignored (and, inside `info`, still hashed).
//! - Every `name` and `path` component is sanitised ([`PathError`]), so
//!   [`Metainfo::relative_path`] can never name a place outside the output
//!   folder.
//! - [`Draft`] turns known pieces and files into a [`Metainfo`] in memory;
//!   [`Metainfo::to_bytes`] writes canonical bencode (sorted keys).
//! - [`build`] makes a `.torrent` from a file or a folder on disk. It is the
//!   **only part of minibit-core that reads files** (and the only one with
//!   `io::Error`s); everything else here is pure.

pub mod build;
mod draft;
mod error;
mod hash;
mod parse;
pub mod path;
mod raw;
mod scan;

use std::path::PathBuf;

pub use build::{BuildError, MetainfoBuilder};
pub use draft::{Content, Draft};
pub use error::{MetainfoError, PathError};
pub use hash::PieceHasher;

use crate::piece::{Layout, PieceIndex};

/// Largest `.torrent` accepted, in bytes (16 MiB); larger input is refused
/// before any parsing.
pub const MAX_TORRENT_SIZE: usize = 16 * 1024 * 1024;

/// Deepest nesting of bencoded lists and dictionaries accepted, counting
/// the top-level dictionary as 1. A real torrent needs 5.
pub const MAX_DEPTH: usize = 64;

/// SHA-1 of the exact bencoded bytes of a torrent's `info` dictionary, as
/// they stand in the `.torrent` file (BEP 3); names the torrent everywhere.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// Lower-case hex, 40 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The info-hash written as 40 hex digits (either case); `None` for
    /// anything else.
    pub fn from_hex(digits: &str) -> Option<Self> {
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(digits, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl std::fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

impl std::fmt::Display for InfoHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// One file of a torrent, in torrent order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components inside the torrent, each sanitised (see [`path`]).
    /// A single-file torrent has one entry whose path is `[name]`.
    pub path: Vec<String>,
    /// Length of the file in bytes (may be zero).
    pub length: u64,
}

/// The top-level keys of a `.torrent` other than `info`. They are not
/// covered by the info-hash, so they may be changed freely.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    /// `announce`: the tracker URL (BEP 3).
    pub announce: Option<String>,
    /// `announce-list`: tiers of tracker URLs (BEP 12); empty when absent.
    pub announce_list: Vec<Vec<String>>,
    /// `comment`: free text.
    pub comment: Option<String>,
    /// `created by`: the program that made the file.
    pub created_by: Option<String>,
    /// `creation date`: seconds since the Unix epoch.
    pub creation_date: Option<i64>,
}

/// The validated `info` dictionary (BEP 3 "info dictionary").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    name: String,
    piece_length: u32,
    pieces: Vec<[u8; 20]>,
    files: Vec<FileEntry>,
    multi_file: bool,
    private: bool,
}

impl Info {
    /// `name`: the file name (single-file) or folder name (multi-file), sanitised.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `piece length` in bytes.
    pub const fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// The SHA-1 of each piece, in piece order (`pieces` cut into 20-byte hashes).
    pub fn pieces(&self) -> &[[u8; 20]] {
        &self.pieces
    }

    /// The files in torrent order; one entry (path `[name]`) for a single-file torrent.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// Whether `info` has `files` (multi-file mode) rather than `length`.
    pub const fn is_multi_file(&self) -> bool {
        self.multi_file
    }

    /// `private` = 1: peers come from the tracker only (BEP 27).
    pub const fn private(&self) -> bool {
        self.private
    }
}

/// A parsed and validated `.torrent` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metainfo {
    extras: Extras,
    info: Info,
    info_bytes: Vec<u8>,
    info_hash: InfoHash,
    layout: Layout,
}

impl Metainfo {
    /// Parses and validates a `.torrent` file (BEP 3).
    ///
    /// # Errors
    /// [`MetainfoError`]: too large, nested too deep, malformed bencode,
    /// missing or mistyped keys, bad geometry or piece hashes, unsafe paths.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetainfoError> {
        parse::metainfo(bytes)
    }

    /// Canonical bencode of this torrent: known top-level keys in sorted
    /// order, and the `info` value byte for byte as parsed (so the
    /// info-hash never changes). Unknown top-level keys are dropped.
    pub fn to_bytes(&self) -> Vec<u8> {
        draft::encode_outer(&self.extras, &self.info_bytes)
    }

    /// The top-level keys other than `info`.
    pub const fn extras(&self) -> &Extras {
        &self.extras
    }

    /// Mutable access to the top-level keys other than `info` (the
    /// info-hash does not cover them), e.g. to point `announce` elsewhere.
    pub const fn extras_mut(&mut self) -> &mut Extras {
        &mut self.extras
    }

    /// `announce`: the tracker URL.
    pub fn announce(&self) -> Option<&str> {
        self.extras.announce.as_deref()
    }

    /// `announce-list` tiers (BEP 12); empty when absent.
    pub fn announce_list(&self) -> &[Vec<String>] {
        &self.extras.announce_list
    }

    /// `comment`.
    pub fn comment(&self) -> Option<&str> {
        self.extras.comment.as_deref()
    }

    /// `created by`.
    pub fn created_by(&self) -> Option<&str> {
        self.extras.created_by.as_deref()
    }

    /// `creation date`, seconds since the Unix epoch.
    pub const fn creation_date(&self) -> Option<i64> {
        self.extras.creation_date
    }

    /// The validated `info` dictionary.
    pub const fn info(&self) -> &Info {
        &self.info
    }

    /// The exact bencoded bytes of `info` the info-hash was computed over.
    pub fn info_bytes(&self) -> &[u8] {
        &self.info_bytes
    }

    /// The info-hash: SHA-1 of [`Metainfo::info_bytes`].
    pub const fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// Piece and block geometry, and the mapping of pieces onto files.
    pub const fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The expected SHA-1 of `piece`.
    ///
    /// # Panics
    /// If `piece` was made by another torrent's [`Layout`] and is out of range here.
    pub fn piece_hash(&self, piece: PieceIndex) -> &[u8; 20] {
        &self.info.pieces[piece.as_usize()]
    }

    /// Whether the torrent is multi-file.
    pub const fn is_multi_file(&self) -> bool {
        self.info.multi_file
    }

    /// Total length of the content in bytes.
    pub const fn total_length(&self) -> u64 {
        self.layout.total_length()
    }

    /// Where file number `file` (an index into [`Info::files`], as in
    /// [`crate::piece::FileSpan::file`]) goes under an output folder:
    /// `name` for a single-file torrent, `name/comp/.../comp` for a
    /// multi-file one. Every component is a plain name, so the result is
    /// relative and never climbs out of the folder it is joined to.
    ///
    /// # Panics
    /// If `file` is not below the file count.
    pub fn relative_path(&self, file: usize) -> PathBuf {
        let entry = &self.info.files[file];
        let folder = self.info.multi_file.then_some(self.info.name.as_str());
        folder
            .into_iter()
            .chain(entry.path.iter().map(String::as_str))
            .collect()
    }
}
