//! From bytes to a validated [`Metainfo`].

use serde_bytes::ByteBuf;
use sha1::{Digest, Sha1};

use super::error::{MetainfoError, PathError};
use super::path::{check_no_clashes, component_from_bytes};
use super::raw::{RawFile, RawInfo, RawOuter};
use super::{Extras, FileEntry, Info, InfoHash, MAX_TORRENT_SIZE, Metainfo, scan};
use crate::piece::{Layout, MAX_PIECE_LENGTH};

fn decode_error(error: &serde_bencode::Error) -> MetainfoError {
    MetainfoError::Decode(error.to_string())
}

/// See [`Metainfo::from_bytes`].
pub fn metainfo(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
    if bytes.len() > MAX_TORRENT_SIZE {
        return Err(MetainfoError::TooLarge { size: bytes.len() });
    }
    let span = scan::info_span(bytes)?;
    let info_bytes = bytes[span].to_vec();
    let raw_info: RawInfo = serde_bencode::from_bytes(&info_bytes).map_err(|e| decode_error(&e))?;
    let info = info(raw_info)?;
    let outer: RawOuter = serde_bencode::from_bytes(bytes).map_err(|e| decode_error(&e))?;
    let lengths: Vec<u64> = info.files.iter().map(|f| f.length).collect();
    let layout = Layout::new(u64::from(info.piece_length), &lengths)?;
    if info.pieces.len() != layout.piece_count() as usize {
        return Err(MetainfoError::PieceCountMismatch {
            expected: layout.piece_count(),
            actual: info.pieces.len(),
        });
    }
    Ok(Metainfo {
        extras: extras(outer),
        info,
        info_hash: InfoHash(Sha1::digest(&info_bytes).into()),
        info_bytes,
        layout,
    })
}

fn text(bytes: ByteBuf) -> String {
    String::from_utf8(bytes.into_vec())
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Informational keys: non-UTF-8 text is kept lossily rather than refused.
fn extras(raw: RawOuter) -> Extras {
    Extras {
        announce: raw.announce.map(text),
        announce_list: raw
            .announce_list
            .unwrap_or_default()
            .into_iter()
            .map(|tier| tier.into_iter().map(text).collect())
            .collect(),
        comment: raw.comment.map(text),
        created_by: raw.created_by.map(text),
        creation_date: raw.creation_date,
    }
}

fn length(raw: i64) -> Result<u64, MetainfoError> {
    u64::try_from(raw).map_err(|_| MetainfoError::NegativeLength(raw))
}

fn file(raw: RawFile) -> Result<FileEntry, MetainfoError> {
    if raw.path.is_empty() {
        return Err(PathError::NoComponents.into());
    }
    let path = raw
        .path
        .iter()
        .map(|c| component_from_bytes(c))
        .collect::<Result<_, _>>()?;
    Ok(FileEntry {
        path,
        length: length(raw.length)?,
    })
}

fn info(raw: RawInfo) -> Result<Info, MetainfoError> {
    let piece_length = u32::try_from(raw.piece_length)
        .ok()
        .filter(|&p| p > 0 && p <= MAX_PIECE_LENGTH)
        .ok_or(MetainfoError::BadPieceLength(raw.piece_length))?;
    if raw.pieces.is_empty() {
        return Err(MetainfoError::NoPieces);
    }
    if raw.pieces.len() % 20 != 0 {
        return Err(MetainfoError::PiecesNotMultipleOf20(raw.pieces.len()));
    }
    let pieces = raw
        .pieces
        .chunks_exact(20)
        .map(|c| c.try_into().expect("chunks of 20 bytes"))
        .collect();
    let name = component_from_bytes(&raw.name)?;
    let (files, multi_file) = match (raw.length, raw.files) {
        (Some(_), Some(_)) => return Err(MetainfoError::BothLengthAndFiles),
        (None, None) => return Err(MetainfoError::NoLengthOrFiles),
        (Some(len), None) => {
            let single = FileEntry {
                path: vec![name.clone()],
                length: length(len)?,
            };
            (vec![single], false)
        }
        (None, Some(raw_files)) => {
            if raw_files.is_empty() {
                return Err(MetainfoError::EmptyFileList);
            }
            let files: Vec<FileEntry> =
                raw_files.into_iter().map(file).collect::<Result<_, _>>()?;
            check_no_clashes(files.iter().map(|f| f.path.as_slice()))?;
            (files, true)
        }
    };
    Ok(Info {
        name,
        piece_length,
        pieces,
        files,
        multi_file,
        private: raw.private == Some(1),
    })
}
