//! The BEP 9 `ut_metadata` messages: the info dictionary of a torrent
//! fetched from peers in 16 KiB pieces.
//!
//! Each message is a bencoded dictionary with `msg_type` (0 request,
//! 1 data, 2 reject) and `piece` (the 0-based piece index); a data message
//! adds `total_size` (the size of the whole info dictionary, bytes) and is
//! followed, after the dictionary, by the piece's bytes. The sender learns
//! the size first from `metadata_size` in the extended handshake
//! ([`super::ExtendedHandshake::metadata_size`]).

use bytes::Bytes;
use serde_bencode::value::Value;

use super::bencode::decode_dict_prefix;
use super::{ExtensionError, Message};

/// Size of every metadata piece but the last, bytes (BEP 9: 16 KiB).
pub const METADATA_PIECE_LEN: usize = 16 * 1024;

/// Largest info dictionary minibit accepts, bytes (8 MiB): a larger
/// `metadata_size` or `total_size` is refused before anything is allocated.
pub const MAX_METADATA_SIZE: usize = 8 * 1024 * 1024;

/// Most pieces of an accepted info dictionary (512).
pub const MAX_METADATA_PIECES: usize = MAX_METADATA_SIZE / METADATA_PIECE_LEN;

/// A `ut_metadata` message that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The dictionary itself is unusable (malformed, too deep, not a dictionary).
    #[error(transparent)]
    Extension(#[from] ExtensionError),
    /// `msg_type` is absent, not an integer, or not 0-2.
    #[error("ut_metadata msg_type is missing or unknown")]
    UnknownType,
    /// `piece` is absent, or not an index below [`MAX_METADATA_PIECES`].
    #[error("ut_metadata piece index is missing or out of range")]
    BadPiece,
    /// A data message whose `total_size` is absent, 0, or above [`MAX_METADATA_SIZE`].
    #[error("ut_metadata total_size is missing or not 1-{MAX_METADATA_SIZE} bytes")]
    BadTotalSize,
    /// A data message carrying more than [`METADATA_PIECE_LEN`] bytes.
    #[error("ut_metadata piece of {0} bytes, more than 16 KiB")]
    PieceTooLong(usize),
}

/// One `ut_metadata` message (BEP 9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataMessage {
    /// `msg_type` 0: send me this piece.
    Request {
        /// Piece index.
        piece: u32,
    },
    /// `msg_type` 1: a piece.
    Data {
        /// Piece index.
        piece: u32,
        /// Size of the whole info dictionary, bytes (1 to [`MAX_METADATA_SIZE`]).
        total_size: u32,
        /// The piece's bytes (at most [`METADATA_PIECE_LEN`]).
        data: Bytes,
    },
    /// `msg_type` 2: the peer will not send this piece.
    Reject {
        /// Piece index.
        piece: u32,
    },
}

impl MetadataMessage {
    /// The piece index.
    pub fn piece(&self) -> u32 {
        match self {
            Self::Request { piece } | Self::Data { piece, .. } | Self::Reject { piece } => *piece,
        }
    }

    /// Parses a `ut_metadata` payload (the bytes after the extended message
    /// id). Unknown keys are ignored; bytes after the dictionary of a
    /// request or reject are ignored.
    ///
    /// # Errors
    /// A [`MetadataError`]: bad bencode, unknown `msg_type`, `piece` not
    /// below [`MAX_METADATA_PIECES`], `total_size` not 1 to
    /// [`MAX_METADATA_SIZE`], more than 16 KiB of data.
    pub fn decode(payload: &Bytes) -> Result<Self, MetadataError> {
        let (dict, end) = decode_dict_prefix(payload)?;
        let int = |key: &str| match dict.get(key.as_bytes()) {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        };
        let piece = int("piece")
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| (p as usize) < MAX_METADATA_PIECES)
            .ok_or(MetadataError::BadPiece)?;
        match int("msg_type") {
            Some(0) => Ok(Self::Request { piece }),
            Some(1) => {
                let total_size = int("total_size")
                    .and_then(|t| u32::try_from(t).ok())
                    .filter(|&t| t > 0 && t as usize <= MAX_METADATA_SIZE)
                    .ok_or(MetadataError::BadTotalSize)?;
                let data = payload.slice(end..);
                if data.len() > METADATA_PIECE_LEN {
                    return Err(MetadataError::PieceTooLong(data.len()));
                }
                Ok(Self::Data {
                    piece,
                    total_size,
                    data,
                })
            }
            Some(2) => Ok(Self::Reject { piece }),
            _ => Err(MetadataError::UnknownType),
        }
    }

    /// The payload: the dictionary (keys sorted), then for data the bytes.
    pub fn encode(&self) -> Bytes {
        let mut out = match self {
            Self::Request { piece } => format!("d8:msg_typei0e5:piecei{piece}ee"),
            Self::Data {
                piece, total_size, ..
            } => format!("d8:msg_typei1e5:piecei{piece}e10:total_sizei{total_size}ee"),
            Self::Reject { piece } => format!("d8:msg_typei2e5:piecei{piece}ee"),
        }
        .into_bytes();
        if let Self::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
        Bytes::from(out)
    }

    /// The whole `extended` message (BEP 10 id 20) under the extended id
    /// `id` the receiver assigned to `ut_metadata` in its handshake.
    pub fn to_message(&self, id: u8) -> Message {
        Message::Extended {
            id,
            payload: self.encode(),
        }
    }
}

/// Pieces of an info dictionary of `size` bytes: `ceil(size / 16 KiB)`.
pub const fn metadata_piece_count(size: usize) -> usize {
    size.div_ceil(METADATA_PIECE_LEN)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decode(payload: &[u8]) -> Result<MetadataMessage, MetadataError> {
        MetadataMessage::decode(&Bytes::copy_from_slice(payload))
    }

    #[test]
    fn bep9_examples() {
        assert_eq!(
            decode(b"d8:msg_typei0e5:piecei0ee"),
            Ok(MetadataMessage::Request { piece: 0 })
        );
        assert_eq!(
            decode(b"d8:msg_typei2e5:piecei0ee"),
            Ok(MetadataMessage::Reject { piece: 0 })
        );
        let data = decode(b"d8:msg_typei1e5:piecei0e10:total_sizei34256eexxxxxxxx").unwrap();
        assert_eq!(
            data,
            MetadataMessage::Data {
                piece: 0,
                total_size: 34256,
                data: Bytes::from_static(b"xxxxxxxx")
            }
        );
        assert_eq!(
            &data.encode()[..],
            b"d8:msg_typei1e5:piecei0e10:total_sizei34256eexxxxxxxx"
        );
        assert_eq!(
            MetadataMessage::Request { piece: 3 }.to_message(2),
            Message::Extended {
                id: 2,
                payload: Bytes::from_static(b"d8:msg_typei0e5:piecei3ee")
            }
        );
    }

    #[test]
    fn hostile_messages_are_refused() {
        assert_eq!(
            decode(b"d8:msg_typei3e5:piecei0ee"),
            Err(MetadataError::UnknownType)
        );
        assert_eq!(decode(b"d5:piecei0ee"), Err(MetadataError::UnknownType));
        assert_eq!(decode(b"d8:msg_typei0ee"), Err(MetadataError::BadPiece));
        assert_eq!(
            decode(b"d8:msg_typei0e5:piecei-1ee"),
            Err(MetadataError::BadPiece)
        );
        assert_eq!(
            decode(b"d8:msg_typei0e5:piecei512ee"),
            Err(MetadataError::BadPiece)
        );
        assert_eq!(
            decode(b"d8:msg_typei1e5:piecei0e10:total_sizei1073741824ee"),
            Err(MetadataError::BadTotalSize)
        );
        assert_eq!(
            decode(b"d8:msg_typei1e5:piecei0e10:total_sizei0ee"),
            Err(MetadataError::BadTotalSize)
        );
        assert_eq!(
            decode(b"d8:msg_typei1e5:piecei0ee"),
            Err(MetadataError::BadTotalSize)
        );
        let mut long = b"d8:msg_typei1e5:piecei0e10:total_sizei99999ee".to_vec();
        long.resize(long.len() + METADATA_PIECE_LEN + 1, 0);
        assert_eq!(
            decode(&long),
            Err(MetadataError::PieceTooLong(METADATA_PIECE_LEN + 1))
        );
        assert!(matches!(
            decode(&vec![b'l'; 100_000]),
            Err(MetadataError::Extension(ExtensionError::TooDeep { .. }))
        ));
        assert_eq!(
            decode(b"i1e"),
            Err(MetadataError::Extension(ExtensionError::NotADict))
        );
    }

    #[test]
    fn piece_count_rounds_up() {
        assert_eq!(metadata_piece_count(1), 1);
        assert_eq!(metadata_piece_count(METADATA_PIECE_LEN), 1);
        assert_eq!(metadata_piece_count(METADATA_PIECE_LEN + 1), 2);
        assert_eq!(metadata_piece_count(MAX_METADATA_SIZE), MAX_METADATA_PIECES);
    }

    fn arb_message() -> impl Strategy<Value = MetadataMessage> {
        let piece = 0..MAX_METADATA_PIECES as u32;
        prop_oneof![
            piece
                .clone()
                .prop_map(|piece| MetadataMessage::Request { piece }),
            piece
                .clone()
                .prop_map(|piece| MetadataMessage::Reject { piece }),
            (
                piece,
                1..=MAX_METADATA_SIZE as u32,
                proptest::collection::vec(any::<u8>(), 0..=METADATA_PIECE_LEN)
            )
                .prop_map(|(piece, total_size, data)| MetadataMessage::Data {
                    piece,
                    total_size,
                    data: Bytes::from(data)
                }),
        ]
    }

    proptest! {
        #[test]
        fn messages_round_trip(message in arb_message()) {
            prop_assert_eq!(MetadataMessage::decode(&message.encode()), Ok(message));
        }

        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(message) = decode(&bytes) {
                prop_assert!((message.piece() as usize) < MAX_METADATA_PIECES);
                prop_assert_eq!(MetadataMessage::decode(&message.encode()), Ok(message));
            }
        }
    }
}
