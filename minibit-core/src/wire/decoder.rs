//! The incremental frame decoder with a frame-length cap.

use bytes::{Buf, BytesMut};

use super::message::id;
use super::{MAX_BLOCK_LEN, Message, PIECE_HEADER_LEN, WireError};

/// Turns a stream of peer wire bytes into [`Message`]s, one complete frame
/// at a time (BEP 3 "peer messages"; BEP 6 ids 13-17; BEP 10 id 20).
///
/// Same shape as `tokio_util::codec::Decoder`, so a driver can wrap it in a
/// `FramedRead`. The frame length is checked against [`Self::max_frame_len`]
/// and the id's legal size as soon as the 4-byte prefix (and the id byte) are
/// buffered, before anything is reserved or waited for, so a peer cannot
/// make the receiver buffer more than one legal frame.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// `ceil(pieces / 8)`: the only legal `bitfield` payload length, bytes;
    /// `None` while the piece count is unknown (any length up to
    /// [`Self::MAX_UNKNOWN_BITFIELD_LEN`]).
    bitfield_len: Option<u32>,
    /// Largest frame (id + payload) accepted, bytes.
    max_frame_len: u32,
}

impl Decoder {
    /// Default cap on a BEP 10 extended message payload (extended id + data), bytes: 1 MiB.
    pub const DEFAULT_MAX_EXTENDED_LEN: u32 = 1 << 20;

    /// A decoder for a torrent of `piece_count` pieces with the default cap
    /// on extended messages ([`Self::DEFAULT_MAX_EXTENDED_LEN`]).
    pub fn new(piece_count: u32) -> Self {
        Self::with_max_extended_len(piece_count, Self::DEFAULT_MAX_EXTENDED_LEN)
    }

    /// A decoder for a torrent of `piece_count` pieces accepting extended
    /// messages whose payload (extended id + data) is at most `max_extended_len` bytes.
    ///
    /// The frame cap is the largest legal frame: a `piece` message with a
    /// 16 KiB block (1 + 8 + 16384), the `bitfield` for the torrent
    /// (1 + ceil(pieces / 8)) or an extended message (1 + `max_extended_len`).
    pub fn with_max_extended_len(piece_count: u32, max_extended_len: u32) -> Self {
        Self::with_bitfield_len(Some(piece_count.div_ceil(8)), max_extended_len)
    }

    /// Longest `bitfield` payload accepted while the piece count is
    /// unknown, bytes: one bit per piece of the largest torrent whose info
    /// dictionary fits [`super::MAX_METADATA_SIZE`] (20 bytes of SHA-1 per
    /// piece), about 51 KiB.
    pub const MAX_UNKNOWN_BITFIELD_LEN: u32 = (super::MAX_METADATA_SIZE / 20).div_ceil(8) as u32;

    /// A decoder for a torrent whose piece count is unknown (started from a
    /// magnet link, BEP 9, metadata not fetched yet): a `bitfield` of any
    /// length up to [`Self::MAX_UNKNOWN_BITFIELD_LEN`] is passed on (the
    /// torrent checks it once the metadata is known), a longer one is
    /// [`WireError::BitfieldLength`]; the default cap on extended messages.
    pub fn for_unknown_piece_count() -> Self {
        Self::with_bitfield_len(None, Self::DEFAULT_MAX_EXTENDED_LEN)
    }

    fn with_bitfield_len(bitfield_len: Option<u32>, max_extended_len: u32) -> Self {
        let piece_frame = PIECE_HEADER_LEN as u32 - 4 + MAX_BLOCK_LEN;
        let max_frame_len = piece_frame
            .max(1 + bitfield_len.unwrap_or(Self::MAX_UNKNOWN_BITFIELD_LEN))
            .max(max_extended_len.saturating_add(1));
        Self {
            bitfield_len,
            max_frame_len,
        }
    }

    /// The largest frame (id + payload, without the 4-byte prefix) this
    /// decoder accepts, bytes.
    pub fn max_frame_len(&self) -> u32 {
        self.max_frame_len
    }

    /// Takes one message off the front of `buf`.
    ///
    /// Returns `Ok(None)` while the frame is incomplete, after reserving room
    /// for the rest of it. A `piece` block and `bitfield` / extended payloads
    /// are split off `buf` without copying.
    ///
    /// # Errors
    /// [`WireError::FrameTooLong`] after the 4-byte prefix when it exceeds
    /// [`Self::max_frame_len`]; after the id byte, [`WireError::UnknownId`],
    /// [`WireError::WrongLength`] for fixed-size messages,
    /// [`WireError::TooShort`], [`WireError::PieceTooLong`] for a block over
    /// 16 KiB and [`WireError::BitfieldLength`]. Errors consume nothing;
    /// the connection should be closed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, WireError> {
        let Some(prefix) = buf.first_chunk::<4>() else {
            buf.reserve(4 - buf.len());
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix);
        if len > self.max_frame_len {
            return Err(WireError::FrameTooLong {
                len,
                max: self.max_frame_len,
            });
        }
        if len == 0 {
            buf.advance(4);
            return Ok(Some(Message::KeepAlive));
        }
        let Some(&id) = buf.get(4) else {
            buf.reserve(1);
            return Ok(None);
        };
        self.check_len(id, len)?;
        let total = 4 + len as usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        let frame = buf.split_to(len as usize);
        parse(frame).map(Some)
    }

    /// Checks frame length `len` (id + payload, bytes) against what `id` allows.
    fn check_len(&self, id: u8, len: u32) -> Result<(), WireError> {
        let exact = |expected: u32| {
            if len == expected {
                Ok(())
            } else {
                Err(WireError::WrongLength {
                    id,
                    got: len,
                    expected,
                })
            }
        };
        let at_least = |min: u32| {
            if len >= min {
                Ok(())
            } else {
                Err(WireError::TooShort { id, got: len, min })
            }
        };
        match id {
            id::CHOKE
            | id::UNCHOKE
            | id::INTERESTED
            | id::NOT_INTERESTED
            | id::HAVE_ALL
            | id::HAVE_NONE => exact(1),
            id::PORT => exact(3),
            id::HAVE | id::SUGGEST | id::ALLOWED_FAST => exact(5),
            id::REQUEST | id::CANCEL | id::REJECT => exact(13),
            id::BITFIELD => match self.bitfield_len {
                Some(expected) if len - 1 != expected => Err(WireError::BitfieldLength {
                    got: len - 1,
                    expected,
                }),
                None if len - 1 > Self::MAX_UNKNOWN_BITFIELD_LEN => {
                    Err(WireError::BitfieldLength {
                        got: len - 1,
                        expected: Self::MAX_UNKNOWN_BITFIELD_LEN,
                    })
                }
                _ => Ok(()),
            },
            id::PIECE => {
                let header = PIECE_HEADER_LEN as u32 - 4;
                at_least(header)?;
                if len - header > MAX_BLOCK_LEN {
                    return Err(WireError::PieceTooLong { len: len - header });
                }
                Ok(())
            }
            id::EXTENDED => at_least(2),
            other => Err(WireError::UnknownId(other)),
        }
    }
}

/// Builds the message from one complete frame (id + payload) whose length
/// [`Decoder::check_len`] has accepted.
fn parse(mut frame: BytesMut) -> Result<Message, WireError> {
    let id = frame.get_u8();
    Ok(match id {
        id::CHOKE => Message::Choke,
        id::UNCHOKE => Message::Unchoke,
        id::INTERESTED => Message::Interested,
        id::NOT_INTERESTED => Message::NotInterested,
        id::HAVE => Message::Have {
            piece: frame.get_u32(),
        },
        id::BITFIELD => Message::Bitfield(frame.freeze()),
        id::REQUEST => Message::Request {
            piece: frame.get_u32(),
            offset: frame.get_u32(),
            length: frame.get_u32(),
        },
        id::PIECE => Message::Piece {
            piece: frame.get_u32(),
            offset: frame.get_u32(),
            data: frame.freeze(),
        },
        id::CANCEL => Message::Cancel {
            piece: frame.get_u32(),
            offset: frame.get_u32(),
            length: frame.get_u32(),
        },
        id::PORT => Message::Port(frame.get_u16()),
        id::SUGGEST => Message::Suggest {
            piece: frame.get_u32(),
        },
        id::HAVE_ALL => Message::HaveAll,
        id::HAVE_NONE => Message::HaveNone,
        id::REJECT => Message::Reject {
            piece: frame.get_u32(),
            offset: frame.get_u32(),
            length: frame.get_u32(),
        },
        id::ALLOWED_FAST => Message::AllowedFast {
            piece: frame.get_u32(),
        },
        id::EXTENDED => Message::Extended {
            id: frame.get_u8(),
            payload: frame.freeze(),
        },
        other => return Err(WireError::UnknownId(other)),
    })
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, Bytes};

    use super::*;

    fn decode_all(decoder: &mut Decoder, bytes: &[u8]) -> Result<Option<Message>, WireError> {
        decoder.decode(&mut BytesMut::from(bytes))
    }

    #[test]
    fn cap_is_the_largest_legal_frame() {
        assert_eq!(
            Decoder::with_max_extended_len(80, 100).max_frame_len(),
            9 + 16384
        );
        assert_eq!(
            Decoder::with_max_extended_len(800_000, 100).max_frame_len(),
            100_001
        );
        assert_eq!(Decoder::new(80).max_frame_len(), (1 << 20) + 1);
        assert_eq!(
            Decoder::with_max_extended_len(1, u32::MAX).max_frame_len(),
            u32::MAX
        );
    }

    #[test]
    fn unknown_piece_count_takes_any_bitfield_up_to_the_metadata_bound() {
        let mut decoder = Decoder::for_unknown_piece_count();
        for len in [1_u32, 2, 37, Decoder::MAX_UNKNOWN_BITFIELD_LEN] {
            let mut frame = BytesMut::new();
            frame.put_u32(len + 1);
            frame.put_u8(5);
            frame.put_bytes(0xff, len as usize);
            assert_eq!(
                decoder.decode(&mut frame),
                Ok(Some(Message::Bitfield(Bytes::from(vec![
                    0xff;
                    len as usize
                ]))))
            );
        }
        // One byte more than any torrent can need: refused after the id
        // byte, before the payload is waited for.
        let mut frame = BytesMut::new();
        frame.put_u32(Decoder::MAX_UNKNOWN_BITFIELD_LEN + 2);
        frame.put_u8(5);
        assert_eq!(
            decoder.decode(&mut frame),
            Err(WireError::BitfieldLength {
                got: Decoder::MAX_UNKNOWN_BITFIELD_LEN + 1,
                expected: Decoder::MAX_UNKNOWN_BITFIELD_LEN,
            })
        );
    }

    #[test]
    fn huge_length_prefix_fails_after_four_bytes_without_reserving() {
        let mut decoder = Decoder::new(100);
        let mut buf = BytesMut::with_capacity(8);
        buf.put_slice(&[0xff, 0xff, 0xff]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.put_u8(0xf0);
        let capacity = buf.capacity();
        assert_eq!(
            decoder.decode(&mut buf),
            Err(WireError::FrameTooLong {
                len: 0xffff_fff0,
                max: decoder.max_frame_len()
            })
        );
        assert_eq!(buf.capacity(), capacity);
        assert_eq!(buf.len(), 4);
    }

    #[test]
    fn incomplete_frame_reserves_the_rest() {
        let mut decoder = Decoder::new(100);
        let mut buf = BytesMut::new();
        buf.put_u32(9 + 16384);
        buf.put_u8(7);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.capacity() >= 4 + 9 + 16384);
    }

    #[test]
    fn unknown_id() {
        let mut decoder = Decoder::new(100);
        assert_eq!(
            decode_all(&mut decoder, &[0, 0, 0, 1, 10]),
            Err(WireError::UnknownId(10))
        );
        assert_eq!(
            decode_all(&mut decoder, &[0, 0, 0, 3, 255, 1, 2]),
            Err(WireError::UnknownId(255))
        );
    }

    #[test]
    fn wrong_sizes_for_fixed_messages_fail_on_the_id_byte() {
        let mut decoder = Decoder::new(100);
        let cases: &[(u8, u32, u32)] = &[
            (0, 2, 1),
            (1, 5, 1),
            (4, 4, 5),
            (4, 6, 5),
            (6, 12, 13),
            (8, 17, 13),
            (9, 5, 3),
            (13, 1, 5),
            (14, 2, 1),
            (16, 14, 13),
            (17, 9, 5),
        ];
        for &(id, got, expected) in cases {
            let mut frame = BytesMut::new();
            frame.put_u32(got);
            frame.put_u8(id);
            assert_eq!(
                decoder.decode(&mut frame),
                Err(WireError::WrongLength { id, got, expected }),
                "id {id}"
            );
        }
    }

    #[test]
    fn piece_and_extended_bounds() {
        let mut decoder = Decoder::new(100);
        assert_eq!(
            decode_all(&mut decoder, &[0, 0, 0, 8, 7]),
            Err(WireError::TooShort {
                id: 7,
                got: 8,
                min: 9
            })
        );
        assert_eq!(
            decode_all(&mut decoder, &[0, 0, 0x40, 0x0a, 7]),
            Err(WireError::PieceTooLong { len: 16385 })
        );
        assert_eq!(
            decode_all(&mut decoder, &[0, 0, 0, 1, 20]),
            Err(WireError::TooShort {
                id: 20,
                got: 1,
                min: 2
            })
        );
        let block = decode_all(&mut decoder, &[0, 0, 0, 9, 7, 0, 0, 0, 2, 0, 0, 0, 0]);
        assert_eq!(
            block,
            Ok(Some(Message::Piece {
                piece: 2,
                offset: 0,
                data: Bytes::new()
            }))
        );
    }

    #[test]
    fn bitfield_must_match_the_torrent() {
        let mut decoder = Decoder::new(20);
        assert_eq!(
            decode_all(&mut decoder, &[0, 0, 0, 5, 5, 0, 0, 0, 0]),
            Err(WireError::BitfieldLength {
                got: 4,
                expected: 3
            })
        );
        assert_eq!(
            decode_all(&mut decoder, &[0, 0, 0, 3, 5, 0, 0]),
            Err(WireError::BitfieldLength {
                got: 2,
                expected: 3
            })
        );
        assert_eq!(
            decode_all(&mut decoder, &[0, 0, 0, 4, 5, 0xff, 0xff, 0xf0]),
            Ok(Some(Message::Bitfield(Bytes::from_static(&[
                0xff, 0xff, 0xf0
            ]))))
        );
        // A bitfield longer than the frame cap fails on the prefix alone.
        let mut decoder = Decoder::with_max_extended_len(20, 10);
        assert_eq!(
            decode_all(&mut decoder, &[0, 1, 0, 0]),
            Err(WireError::FrameTooLong {
                len: 65536,
                max: 9 + 16384
            })
        );
    }

    #[test]
    fn piece_block_shares_the_receive_buffer() {
        let mut wire = BytesMut::new();
        Message::Piece {
            piece: 1,
            offset: 0,
            data: Bytes::from(vec![9u8; 16384]),
        }
        .encode(&mut wire);
        let start = wire.as_ptr() as usize;
        let Ok(Some(Message::Piece { data, .. })) = Decoder::new(4).decode(&mut wire) else {
            panic!("expected a piece");
        };
        assert_eq!(data.as_ptr() as usize, start + PIECE_HEADER_LEN);
        assert!(wire.is_empty());
    }
}
