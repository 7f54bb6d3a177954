//! Typed errors for parsing and validating `.torrent` metainfo.

use thiserror::Error;

use super::{MAX_DEPTH, MAX_TORRENT_SIZE};
use crate::piece::{LayoutError, MAX_PIECE_LENGTH};

/// Why a `.torrent` file was refused (BEP 3 "metainfo files").
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MetainfoError {
    /// The input is larger than [`MAX_TORRENT_SIZE`]; refused before parsing.
    #[error("torrent file of {size} bytes is larger than the {MAX_TORRENT_SIZE}-byte limit")]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
    },
    /// Lists and dictionaries nest deeper than [`MAX_DEPTH`] levels.
    #[error("bencode nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The bytes are not well-formed bencode.
    #[error("malformed bencode at byte {offset}: {reason}")]
    Malformed {
        /// Offset of the offending byte in the input.
        offset: usize,
        /// What was wrong there.
        reason: &'static str,
    },
    /// The top-level value is not a dictionary.
    #[error("a torrent file must be a bencoded dictionary")]
    NotADictionary,
    /// Bytes follow the top-level dictionary.
    #[error("{0} bytes after the end of the top-level dictionary")]
    TrailingData(usize),
    /// The top-level dictionary has no `info` key.
    #[error("no `info` dictionary")]
    MissingInfo,
    /// A key is missing or holds a value of the wrong type (serde_bencode's message).
    #[error("bad metainfo field: {0}")]
    Decode(String),
    /// `piece length` is zero, negative or above [`MAX_PIECE_LENGTH`].
    #[error("piece length {0} bytes is outside 1..={MAX_PIECE_LENGTH}")]
    BadPieceLength(i64),
    /// A `length` is negative.
    #[error("negative file length {0}")]
    NegativeLength(i64),
    /// `pieces` is empty.
    #[error("`pieces` is empty")]
    NoPieces,
    /// `pieces` is not a whole number of 20-byte SHA-1 hashes.
    #[error("`pieces` is {0} bytes, not a multiple of 20")]
    PiecesNotMultipleOf20(usize),
    /// The number of piece hashes does not match the total length.
    #[error("`pieces` holds {actual} hashes but the content needs {expected}")]
    PieceCountMismatch {
        /// Pieces needed for the total length at this piece length.
        expected: u32,
        /// Hashes present in `pieces`.
        actual: usize,
    },
    /// `info` has both `length` (single-file) and `files` (multi-file).
    #[error("`info` has both `length` and `files`")]
    BothLengthAndFiles,
    /// `info` has neither `length` nor `files`.
    #[error("`info` has neither `length` nor `files`")]
    NoLengthOrFiles,
    /// `files` is an empty list.
    #[error("`files` is empty")]
    EmptyFileList,
    /// The geometry does not fit (zero total, overflow, too many pieces).
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// `name` or a file `path` could escape the output folder or is unusable.
    #[error(transparent)]
    UnsafePath(#[from] PathError),
}

/// Why a `name` or `path` from a torrent was refused: each could make a
/// file land outside the output folder, or is not a usable file name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PathError {
    /// A file's `path` list has no component.
    #[error("file path has no component")]
    NoComponents,
    /// A component (or `name`) is the empty string.
    #[error("empty path component")]
    EmptyComponent,
    /// A component is `.`.
    #[error("path component `.`")]
    CurrentDir,
    /// A component is `..`.
    #[error("path component `..`")]
    ParentDir,
    /// A component starts with `/` or `\`: an absolute path.
    #[error("absolute path component {0:?}")]
    Absolute(String),
    /// A component holds `/` or `\` inside it.
    #[error("path separator inside component {0:?}")]
    Separator(String),
    /// A component holds a NUL byte.
    #[error("NUL byte inside path component {0:?}")]
    Nul(String),
    /// A component starts with a Windows drive prefix such as `C:`.
    #[error("Windows drive prefix in path component {0:?}")]
    DrivePrefix(String),
    /// A component is not valid UTF-8.
    #[error("path component is not UTF-8")]
    NotUtf8,
    /// The host platform would not read the component as one plain name.
    #[error("path component {0:?} is not a plain file name on this platform")]
    NotPlain(String),
    /// Two files have the same path, or one file's path is a folder of another.
    #[error("file path {0:?} clashes with another file of the torrent")]
    Clash(String),
}
