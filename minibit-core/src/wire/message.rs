//! Peer wire messages (BEP 3, BEP 6, the BEP 10 frame) and their encoding.
//!
//! A frame is a 4-byte big-endian length, then (unless the length is 0, a
//! keep-alive) a 1-byte id and the payload; integers are big-endian `u32`
//! except the `port` message's `u16`.

use bytes::{BufMut, Bytes, BytesMut};

/// Largest block a `piece` message may carry, bytes (BEP 3: 2^14; clients
/// close connections that ask for more).
pub const MAX_BLOCK_LEN: u32 = crate::piece::BLOCK_SIZE;

/// Length of a `piece` message before its block data, bytes: 4-byte length
/// prefix, id 7, piece index, offset.
pub const PIECE_HEADER_LEN: usize = 13;

/// Message ids as they travel.
pub(super) mod id {
    pub const CHOKE: u8 = 0;
    pub const UNCHOKE: u8 = 1;
    pub const INTERESTED: u8 = 2;
    pub const NOT_INTERESTED: u8 = 3;
    pub const HAVE: u8 = 4;
    pub const BITFIELD: u8 = 5;
    pub const REQUEST: u8 = 6;
    pub const PIECE: u8 = 7;
    pub const CANCEL: u8 = 8;
    pub const PORT: u8 = 9;
    pub const SUGGEST: u8 = 13;
    pub const HAVE_ALL: u8 = 14;
    pub const HAVE_NONE: u8 = 15;
    pub const REJECT: u8 = 16;
    pub const ALLOWED_FAST: u8 = 17;
    pub const EXTENDED: u8 = 20;
}

/// One peer wire message. Piece indices and block ranges are raw `u32`s as
/// they travel; [`crate::piece::Layout`] validates them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A zero-length frame.
    KeepAlive,
    /// id 0.
    Choke,
    /// id 1.
    Unchoke,
    /// id 2.
    Interested,
    /// id 3.
    NotInterested,
    /// id 4: the sender now has `piece`.
    Have {
        /// Piece index.
        piece: u32,
    },
    /// id 5: the raw bitfield payload (checked against the piece count by [`crate::bitfield::Bitfield::from_wire`]).
    Bitfield(Bytes),
    /// id 6: ask for `length` bytes at `offset` in `piece`.
    Request {
        /// Piece index.
        piece: u32,
        /// Offset inside the piece, bytes.
        offset: u32,
        /// Length, bytes.
        length: u32,
    },
    /// id 7: block data.
    Piece {
        /// Piece index.
        piece: u32,
        /// Offset inside the piece, bytes.
        offset: u32,
        /// The block, shared with the receive buffer (never copied).
        data: Bytes,
    },
    /// id 8: withdraw a request.
    Cancel {
        /// Piece index.
        piece: u32,
        /// Offset inside the piece, bytes.
        offset: u32,
        /// Length, bytes.
        length: u32,
    },
    /// id 9: the sender's DHT port (BEP 5).
    Port(u16),
    /// id 13 (BEP 6): the sender suggests downloading `piece`.
    Suggest {
        /// Piece index.
        piece: u32,
    },
    /// id 14 (BEP 6): the sender has every piece.
    HaveAll,
    /// id 15 (BEP 6): the sender has no piece.
    HaveNone,
    /// id 16 (BEP 6): a request the sender will not serve.
    Reject {
        /// Piece index.
        piece: u32,
        /// Offset inside the piece, bytes.
        offset: u32,
        /// Length, bytes.
        length: u32,
    },
    /// id 17 (BEP 6): `piece` may be requested even while choked.
    AllowedFast {
        /// Piece index.
        piece: u32,
    },
    /// id 20 (BEP 10): an extension message; `id` 0 is the extended handshake.
    Extended {
        /// Extended message id.
        id: u8,
        /// The bencoded (or extension-defined) payload.
        payload: Bytes,
    },
}

impl Message {
    /// The message id, `None` for a keep-alive.
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => id::CHOKE,
            Message::Unchoke => id::UNCHOKE,
            Message::Interested => id::INTERESTED,
            Message::NotInterested => id::NOT_INTERESTED,
            Message::Have { .. } => id::HAVE,
            Message::Bitfield(_) => id::BITFIELD,
            Message::Request { .. } => id::REQUEST,
            Message::Piece { .. } => id::PIECE,
            Message::Cancel { .. } => id::CANCEL,
            Message::Port(_) => id::PORT,
            Message::Suggest { .. } => id::SUGGEST,
            Message::HaveAll => id::HAVE_ALL,
            Message::HaveNone => id::HAVE_NONE,
            Message::Reject { .. } => id::REJECT,
            Message::AllowedFast { .. } => id::ALLOWED_FAST,
            Message::Extended { .. } => id::EXTENDED,
        })
    }

    /// The frame length the 4-byte prefix announces: id + payload, bytes
    /// (0 for a keep-alive).
    fn frame_len(&self) -> usize {
        match self {
            Message::KeepAlive => 0,
            Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 1,
            Message::Port(_) => 3,
            Message::Have { .. } | Message::Suggest { .. } | Message::AllowedFast { .. } => 5,
            Message::Request { .. } | Message::Cancel { .. } | Message::Reject { .. } => 13,
            Message::Bitfield(bits) => 1 + bits.len(),
            Message::Piece { data, .. } => PIECE_HEADER_LEN - 4 + data.len(),
            Message::Extended { payload, .. } => 2 + payload.len(),
        }
    }

    /// Length of the whole encoded message, length prefix included, bytes.
    pub fn encoded_len(&self) -> usize {
        4 + self.frame_len()
    }

    /// Appends the wire form ([`Self::encoded_len`] bytes) to `dst`.
    ///
    /// A `piece` block is copied into `dst`; to send it without the copy use
    /// [`Self::encode_piece_header`] and write the `Bytes` after the header.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        if let Message::Piece {
            piece,
            offset,
            data,
        } = self
        {
            Self::encode_piece_header(*piece, *offset, data.len() as u32, dst);
            dst.put_slice(data);
            return;
        }
        dst.put_u32(self.frame_len() as u32);
        let Some(id) = self.id() else { return };
        dst.put_u8(id);
        match self {
            Message::Have { piece }
            | Message::Suggest { piece }
            | Message::AllowedFast { piece } => {
                dst.put_u32(*piece);
            }
            Message::Request {
                piece,
                offset,
                length,
            }
            | Message::Cancel {
                piece,
                offset,
                length,
            }
            | Message::Reject {
                piece,
                offset,
                length,
            } => {
                dst.put_u32(*piece);
                dst.put_u32(*offset);
                dst.put_u32(*length);
            }
            Message::Bitfield(bits) => dst.put_slice(bits),
            Message::Port(port) => dst.put_u16(*port),
            Message::Extended { id, payload } => {
                dst.put_u8(*id);
                dst.put_slice(payload);
            }
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone
            | Message::Piece { .. } => {}
        }
    }

    /// Appends only the [`PIECE_HEADER_LEN`]-byte header of a `piece`
    /// message whose block is `data_len` bytes at `offset` in `piece`; the
    /// caller sends the block itself right after (e.g. with vectored IO).
    pub fn encode_piece_header(piece: u32, offset: u32, data_len: u32, dst: &mut BytesMut) {
        dst.reserve(PIECE_HEADER_LEN);
        dst.put_u32(PIECE_HEADER_LEN as u32 - 4 + data_len);
        dst.put_u8(id::PIECE);
        dst.put_u32(piece);
        dst.put_u32(offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(msg: &Message) -> Vec<u8> {
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        assert_eq!(buf.len(), msg.encoded_len());
        buf.to_vec()
    }

    #[test]
    fn known_wire_forms() {
        assert_eq!(encoded(&Message::KeepAlive), [0, 0, 0, 0]);
        assert_eq!(encoded(&Message::Interested), [0, 0, 0, 1, 2]);
        assert_eq!(encoded(&Message::HaveNone), [0, 0, 0, 1, 15]);
        assert_eq!(
            encoded(&Message::Have { piece: 0x0102_0304 }),
            [0, 0, 0, 5, 4, 1, 2, 3, 4]
        );
        assert_eq!(encoded(&Message::Port(6881)), [0, 0, 0, 3, 9, 0x1a, 0xe1]);
        assert_eq!(
            encoded(&Message::Request {
                piece: 1,
                offset: 16384,
                length: 16384
            }),
            [0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0]
        );
        assert_eq!(
            encoded(&Message::Extended {
                id: 0,
                payload: Bytes::from_static(b"de")
            }),
            [0, 0, 0, 4, 20, 0, b'd', b'e']
        );
        assert_eq!(
            encoded(&Message::Bitfield(Bytes::from_static(&[0xf0]))),
            [0, 0, 0, 2, 5, 0xf0]
        );
    }

    #[test]
    fn piece_header_then_data_equals_full_encoding() {
        let data = Bytes::from(vec![7u8; 1000]);
        let msg = Message::Piece {
            piece: 3,
            offset: 32768,
            data: data.clone(),
        };
        let mut split = BytesMut::new();
        Message::encode_piece_header(3, 32768, 1000, &mut split);
        assert_eq!(split.len(), PIECE_HEADER_LEN);
        split.put_slice(&data);
        assert_eq!(split.to_vec(), encoded(&msg));
    }
}
