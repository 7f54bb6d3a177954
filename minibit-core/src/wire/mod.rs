//! The peer wire protocol (BEP 3 "peer protocol", BEP 6 fast extension,
//! BEP 10 extension protocol, BEP 11 peer exchange, BEP 9 `ut_metadata`,
//! BEP 20 peer ids).
//!
//! A connection starts with a 68-byte [`Handshake`] each way, then carries
//! length-prefixed [`Message`] frames: a 4-byte big-endian length, a 1-byte
//! message id, the payload. Everything here works on caller-owned
//! `bytes::BytesMut` buffers:
//!
//! - [`Handshake::decode`] and [`Decoder::decode`] consume complete items
//!   from the front of a receive buffer and return `Ok(None)` while more
//!   bytes are needed (the same shape as `tokio_util::codec::Decoder`);
//! - [`Handshake::encode`] and [`Message::encode`] append to a send buffer;
//!   [`Message::encode_piece_header`] writes only the 13-byte header of a
//!   `piece` message so a driver can send the block `Bytes` with vectored IO.
//!
//! Every decode error is fatal for the connection: the stream cannot be
//! re-synchronised after a bad frame, so the driver should disconnect.

mod bencode;
mod decoder;
mod error;
mod extension;
mod handshake;
mod message;
mod metadata;
mod peer_id;
mod pex;
#[cfg(test)]
mod proptests;

pub use decoder::Decoder;
pub use error::{ExtensionError, WireError};
pub use extension::ExtendedHandshake;
pub use handshake::Handshake;
pub use message::{MAX_BLOCK_LEN, Message, PIECE_HEADER_LEN};
pub use metadata::{
    MAX_METADATA_PIECES, MAX_METADATA_SIZE, METADATA_PIECE_LEN, MetadataError, MetadataMessage,
    metadata_piece_count,
};
pub use peer_id::PeerId;
pub use pex::{Pex, PexFlags};
