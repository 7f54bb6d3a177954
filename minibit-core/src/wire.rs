//! The peer wire protocol (BEP 3 "peer protocol", BEP 6 fast extension,
//! BEP 10 extension protocol frame).
//!
//! SKELETON: the types below are the agreed interface; the codec is filled in
//! by the wire work (see the foundation issue).

use bytes::Bytes;

use crate::metainfo::InfoHash;

/// A 20-byte peer id (BEP 3; minibit's form follows BEP 20: `-MB0001-` + 12 random bytes).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 20]);

impl std::fmt::Debug for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PeerId({})",
            String::from_utf8_lossy(&self.0).escape_debug()
        )
    }
}

/// The handshake that opens every peer connection (BEP 3): `19`,
/// `"BitTorrent protocol"`, 8 reserved bytes, the info-hash, the peer id.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// Extension bits (BEP 6: byte 7 bit 0x04 = fast extension; BEP 10: byte 5 bit 0x10 = extension protocol).
    pub reserved: [u8; 8],
    /// The torrent the connection is for.
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: PeerId,
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
