//! tokio-util codecs over the core's wire encoding: [`HandshakeCodec`] for
//! the 68-byte BEP 3 handshake, then [`MessageCodec`] (the core's
//! incremental, length-capped [`wire::Decoder`] and [`Message::encode`]) for
//! the length-prefixed frames that follow. Switch from one to the other with
//! `FramedRead::map_decoder` so bytes read past the handshake are kept.
//! Outgoing frames go through a [`FrameBatch`]: vectored writes that send
//! block payloads straight from their `Bytes`, never copied.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes, BytesMut};
use minibit_core::wire::{self, Handshake, Message, WireError};
use thiserror::Error;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Why a connection's byte stream was refused.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The peer sent malformed bytes (fatal for the connection).
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Decodes the peer's handshake.
#[derive(Copy, Clone, Debug, Default)]
pub struct HandshakeCodec;

impl tokio_util::codec::Decoder for HandshakeCodec {
    type Item = Handshake;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Handshake>, CodecError> {
        Ok(Handshake::decode(src)?)
    }
}

/// Decodes and encodes peer wire messages.
#[derive(Clone, Debug)]
pub struct MessageCodec {
    decoder: wire::Decoder,
}

impl MessageCodec {
    /// A codec for a torrent of `piece_count` pieces (bounds the bitfield
    /// and so the largest frame accepted).
    pub fn new(piece_count: u32) -> Self {
        Self {
            decoder: wire::Decoder::new(piece_count),
        }
    }

    /// A codec for a torrent whose piece count is not known yet (a magnet
    /// link fetching its metadata, BEP 9): see
    /// [`wire::Decoder::for_unknown_piece_count`].
    pub fn for_unknown_piece_count() -> Self {
        Self {
            decoder: wire::Decoder::for_unknown_piece_count(),
        }
    }
}

impl tokio_util::codec::Decoder for MessageCodec {
    type Item = Message;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        Ok(self.decoder.decode(src)?)
    }
}

impl tokio_util::codec::Encoder<Message> for MessageCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.encode(dst);
        Ok(())
    }
}

/// Most buffers handed to one `writev` (Linux's `IOV_MAX` is 1024).
const MAX_IOVECS: usize = 1024;

/// Encoded messages waiting to be written, as a list of buffers: a piece's
/// payload stays the `Bytes` it was read into (no copy); its 13-byte header
/// and the other messages are encoded into a scratch buffer between them.
#[derive(Debug, Default)]
pub struct FrameBatch {
    segments: VecDeque<Bytes>,
    scratch: BytesMut,
}

impl FrameBatch {
    /// Appends `message` (BEP 3 framing).
    pub fn push(&mut self, message: Message) {
        match message {
            Message::Piece {
                piece,
                offset,
                data,
            } => {
                // A payload is at most a block (16 KiB), far below u32::MAX.
                #[allow(clippy::cast_possible_truncation)]
                Message::encode_piece_header(piece, offset, data.len() as u32, &mut self.scratch);
                self.segments.push_back(self.scratch.split().freeze());
                if !data.is_empty() {
                    self.segments.push_back(data);
                }
            }
            other => other.encode(&mut self.scratch),
        }
    }

    /// Writes every message pushed so far to `writer` with vectored writes,
    /// then is empty again.
    ///
    /// # Errors
    /// The writer's I/O errors; `WriteZero` if it stops taking bytes.
    pub async fn write_to<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) -> io::Result<()> {
        if !self.scratch.is_empty() {
            self.segments.push_back(self.scratch.split().freeze());
        }
        while !self.segments.is_empty() {
            let slices: Vec<IoSlice<'_>> = self
                .segments
                .iter()
                .take(MAX_IOVECS)
                .map(|segment| IoSlice::new(segment))
                .collect();
            let written = writer.write_vectored(&slices).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.advance(written);
        }
        Ok(())
    }

    /// Drops the first `count` bytes (written).
    fn advance(&mut self, mut count: usize) {
        while count > 0 {
            let Some(front) = self.segments.front_mut() else {
                return;
            };
            if front.len() <= count {
                count -= front.len();
                self.segments.pop_front();
            } else {
                front.advance(count);
                count = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::StreamExt;
    use minibit_core::metainfo::InfoHash;
    use minibit_core::wire::PeerId;
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::{Encoder, FramedRead};

    #[tokio::test]
    async fn handshake_then_frames_split_across_reads_decode_in_order() {
        let handshake = Handshake::new(InfoHash([7; 20]), PeerId(*b"-MB0001-000000000000"));
        let messages = vec![
            Message::Bitfield(Bytes::from_static(&[0b1010_0000])),
            Message::Interested,
            Message::Piece {
                piece: 2,
                offset: 16_384,
                data: Bytes::from(vec![9u8; 16_384]),
            },
            Message::KeepAlive,
            Message::Have { piece: 1 },
        ];
        let mut bytes = BytesMut::new();
        handshake.encode(&mut bytes);
        let mut codec = MessageCodec::new(3);
        for m in &messages {
            codec.encode(m.clone(), &mut bytes).unwrap();
        }
        let (mut tx, rx) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            // Dribble the stream out in uneven pieces so every frame and the
            // handshake arrive split over several reads.
            for chunk in bytes.chunks(7) {
                tx.write_all(chunk).await.unwrap();
            }
        });
        let mut framed = FramedRead::new(rx, HandshakeCodec);
        assert_eq!(framed.next().await.unwrap().unwrap(), handshake);
        let mut framed = framed.map_decoder(|_| MessageCodec::new(3));
        for expected in messages {
            assert_eq!(framed.next().await.unwrap().unwrap(), expected);
        }
        writer.await.unwrap();
        assert!(framed.next().await.is_none());
    }

    #[tokio::test]
    async fn a_batch_writes_the_same_bytes_as_encode_even_in_small_writes() {
        let messages = vec![
            Message::Interested,
            Message::Piece {
                piece: 2,
                offset: 16_384,
                data: Bytes::from((0..16_384u32).map(|i| i as u8).collect::<Vec<u8>>()),
            },
            Message::Have { piece: 1 },
            Message::Piece {
                piece: 3,
                offset: 0,
                data: Bytes::new(),
            },
            Message::Piece {
                piece: 0,
                offset: 5,
                data: Bytes::from_static(b"abc"),
            },
            Message::KeepAlive,
        ];
        let mut expected = BytesMut::new();
        let mut batch = FrameBatch::default();
        for m in messages {
            m.encode(&mut expected);
            batch.push(m);
        }
        // A pipe of 7 bytes: every write is partial, some end mid-header.
        let (mut tx, mut rx) = tokio::io::duplex(7);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut rx, &mut got)
                .await
                .unwrap();
            got
        });
        batch.write_to(&mut tx).await.unwrap();
        // Empty again: a second write sends nothing more.
        batch.write_to(&mut tx).await.unwrap();
        drop(tx);
        assert_eq!(reader.await.unwrap(), expected);
    }

    #[tokio::test]
    async fn malformed_frames_are_errors() {
        // A bitfield of the wrong length for a 3-piece torrent.
        let (mut tx, rx) = tokio::io::duplex(64);
        tx.write_all(&[0, 0, 0, 3, 5, 0, 0]).await.unwrap();
        let mut framed = FramedRead::new(rx, MessageCodec::new(3));
        assert!(matches!(
            framed.next().await,
            Some(Err(CodecError::Wire(_)))
        ));
        // A bad protocol string in the handshake.
        let (mut tx, rx) = tokio::io::duplex(64);
        tx.write_all(&[19, b'X']).await.unwrap();
        let mut framed = FramedRead::new(rx, HandshakeCodec);
        assert!(matches!(
            framed.next().await,
            Some(Err(CodecError::Wire(_)))
        ));
    }
}
