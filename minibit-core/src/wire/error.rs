//! Typed errors for malformed peer wire bytes.

use thiserror::Error;

/// Why bytes from a peer were refused by [`super::Handshake::decode`] or
/// [`super::Decoder::decode`]. Every variant is fatal for the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// The handshake's first byte (protocol string length) is not 19 (BEP 3).
    #[error("handshake protocol string length is {0}, expected 19")]
    HandshakePstrLen(u8),
    /// The handshake's protocol string is not `"BitTorrent protocol"` (BEP 3).
    #[error("handshake protocol string is not \"BitTorrent protocol\"")]
    HandshakePstr,
    /// The 4-byte length prefix announces a frame longer than the decoder's
    /// cap ([`super::Decoder::max_frame_len`]); refused before any allocation.
    #[error("frame of {len} bytes exceeds the cap of {max} bytes")]
    FrameTooLong {
        /// Announced frame length (id + payload), bytes.
        len: u32,
        /// The decoder's cap, bytes.
        max: u32,
    },
    /// A message id this decoder does not know (BEP 3 ids 0-9, BEP 6 ids 13-17, BEP 10 id 20).
    #[error("unknown message id {0}")]
    UnknownId(u8),
    /// A fixed-size message (choke, have, request, port, ...) whose frame
    /// length is not the one its id requires.
    #[error("message id {id} has a frame of {got} bytes, expected {expected}")]
    WrongLength {
        /// Message id.
        id: u8,
        /// Frame length received (id + payload), bytes.
        got: u32,
        /// Frame length the id requires, bytes.
        expected: u32,
    },
    /// A variable-size message (piece, extended) shorter than its fixed header.
    #[error("message id {id} has a frame of {got} bytes, at least {min} required")]
    TooShort {
        /// Message id.
        id: u8,
        /// Frame length received (id + payload), bytes.
        got: u32,
        /// Smallest legal frame length for the id, bytes.
        min: u32,
    },
    /// A `piece` message carrying more than [`super::MAX_BLOCK_LEN`] bytes of block data (BEP 3).
    #[error("piece message carries {len} bytes of block data, more than 16384")]
    PieceTooLong {
        /// Block data length, bytes.
        len: u32,
    },
    /// A `bitfield` payload that is not `ceil(pieces / 8)` bytes for this torrent (BEP 3).
    #[error("bitfield payload is {got} bytes, expected {expected}")]
    BitfieldLength {
        /// Payload length received, bytes.
        got: u32,
        /// `ceil(pieces / 8)`, bytes.
        expected: u32,
    },
}

/// Why a BEP 10 extended handshake or a BEP 11 `ut_pex` payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ExtensionError {
    /// The payload is not valid bencode.
    #[error("invalid bencode: {0}")]
    Bencode(String),
    /// Lists and dictionaries nest deeper than the decoder allows.
    #[error("bencode nests deeper than {max} levels")]
    TooDeep {
        /// The nesting limit.
        max: usize,
    },
    /// The payload's top-level value is not a dictionary.
    #[error("payload is not a bencoded dictionary")]
    NotADict,
    /// A `ut_pex` field has the wrong bencode type (every field is a byte string).
    #[error("pex field `{field}` is not a byte string")]
    PexFieldType {
        /// Field name.
        field: &'static str,
    },
    /// A `ut_pex` field whose length is not a multiple of its entry size
    /// (6 bytes per IPv4 contact, 18 per IPv6 contact) or, for a flags
    /// field, not one byte per added contact.
    #[error("pex field `{field}` is {len} bytes, expected {expected}")]
    PexFieldLength {
        /// Field name.
        field: &'static str,
        /// Length received, bytes.
        len: usize,
        /// What the length should have been (a description).
        expected: &'static str,
    },
}
