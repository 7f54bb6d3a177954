//! From known files and piece hashes to a [`Metainfo`], and canonical encoding.

use serde_bytes::ByteBuf;

use super::error::MetainfoError;
use super::raw::{RawFile, RawInfo, RawOuter};
use super::{Extras, FileEntry, Metainfo};

/// What a torrent holds: one file (`length` mode) or a folder of files
/// (`files` mode, BEP 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// A single file named by [`Draft::name`], `length` bytes long.
    Single {
        /// Length in bytes.
        length: u64,
    },
    /// A folder named by [`Draft::name`] holding these files, in torrent order.
    Multi {
        /// The files; paths are relative to the folder.
        files: Vec<FileEntry>,
    },
}

/// A torrent not yet encoded: the pieces are hashed, the files known.
/// [`Draft::finish`] encodes it canonically and validates it exactly as a
/// parsed `.torrent` would be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// `name`: file or folder name.
    pub name: String,
    /// `piece length` in bytes.
    pub piece_length: u32,
    /// SHA-1 of each piece in order.
    pub pieces: Vec<[u8; 20]>,
    /// The file or files.
    pub content: Content,
    /// `private` flag (BEP 27); written only when set.
    pub private: bool,
    /// Top-level keys outside `info`.
    pub extras: Extras,
}

impl Draft {
    /// Encodes the torrent as canonical bencode (sorted keys) and parses it back.
    ///
    /// # Errors
    /// Any [`MetainfoError`] the result fails validation with: unsafe
    /// names, a piece count that does not match the content, a bad piece length...
    pub fn finish(self) -> Result<Metainfo, MetainfoError> {
        let (length, files) = match self.content {
            Content::Single { length } => (Some(encode_length(length)?), None),
            Content::Multi { files } => {
                let files = files
                    .into_iter()
                    .map(|f| {
                        Ok(RawFile {
                            length: encode_length(f.length)?,
                            path: f
                                .path
                                .into_iter()
                                .map(|c| ByteBuf::from(c.into_bytes()))
                                .collect(),
                        })
                    })
                    .collect::<Result<_, MetainfoError>>()?;
                (None, Some(files))
            }
        };
        let info = RawInfo {
            length,
            files,
            name: ByteBuf::from(self.name.into_bytes()),
            piece_length: i64::from(self.piece_length),
            pieces: ByteBuf::from(self.pieces.concat()),
            private: self.private.then_some(1),
        };
        let info_bytes =
            serde_bencode::to_bytes(&info).map_err(|e| MetainfoError::Decode(e.to_string()))?;
        Metainfo::from_bytes(&encode_outer(&self.extras, &info_bytes))
    }
}

/// Lengths are bencoded as signed 64-bit integers.
fn encode_length(length: u64) -> Result<i64, MetainfoError> {
    i64::try_from(length).map_err(|_| crate::piece::LayoutError::LengthOverflow.into())
}

/// The top-level dictionary: `extras` in sorted key order, then `info`.
pub(super) fn encode_outer(extras: &Extras, info_bytes: &[u8]) -> Vec<u8> {
    let raw = RawOuter {
        announce: extras
            .announce
            .as_ref()
            .map(|s| ByteBuf::from(s.as_bytes())),
        announce_list: (!extras.announce_list.is_empty()).then(|| {
            extras
                .announce_list
                .iter()
                .map(|tier| tier.iter().map(|s| ByteBuf::from(s.as_bytes())).collect())
                .collect()
        }),
        comment: extras.comment.as_ref().map(|s| ByteBuf::from(s.as_bytes())),
        created_by: extras
            .created_by
            .as_ref()
            .map(|s| ByteBuf::from(s.as_bytes())),
        creation_date: extras.creation_date,
    };
    let mut out = serde_bencode::to_bytes(&raw).expect("strings, integers and lists always encode");
    // `info` sorts after every key of `RawOuter` ("announce", "announce-list",
    // "comment", "created by", "creation date"), so it goes last, just
    // before the closing `e`, and keeps the keys sorted.
    let end = out.pop();
    debug_assert_eq!(end, Some(b'e'));
    out.extend_from_slice(b"4:info");
    out.extend_from_slice(info_bytes);
    out.push(b'e');
    out
}
