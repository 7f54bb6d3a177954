//! tokio-util codecs over the core's wire encoding: [`HandshakeCodec`] for
//! the 68-byte BEP 3 handshake, then [`MessageCodec`] (the core's
//! incremental, length-capped [`wire::Decoder`] and [`Message::encode`]) for
//! the length-prefixed frames that follow. Switch from one to the other with
//! `FramedRead::map_decoder` so bytes read past the handshake are kept.

use std::io;

use bytes::BytesMut;
use minibit_core::wire::{self, Handshake, Message, WireError};
use thiserror::Error;

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
