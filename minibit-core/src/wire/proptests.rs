//! Property tests for the whole wire module: codec round trips, streams fed
//! in arbitrary splits, and decoders fed arbitrary bytes.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddrV4, SocketAddrV6};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::metainfo::InfoHash;

fn bytes_up_to(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

/// Every [`Message`] variant; a bitfield is `bitfield_len` bytes and a block
/// up to 16 KiB.
fn arb_message(bitfield_len: usize) -> impl Strategy<Value = Message> {
    let triple = (any::<u32>(), any::<u32>(), any::<u32>());
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        any::<u32>().prop_map(|piece| Message::Have { piece }),
        prop::collection::vec(any::<u8>(), bitfield_len)
            .prop_map(|b| Message::Bitfield(Bytes::from(b))),
        triple.prop_map(|(piece, offset, length)| Message::Request {
            piece,
            offset,
            length
        }),
        (
            any::<u32>(),
            any::<u32>(),
            bytes_up_to(MAX_BLOCK_LEN as usize)
        )
            .prop_map(|(piece, offset, data)| Message::Piece {
                piece,
                offset,
                data
            }),
        triple.prop_map(|(piece, offset, length)| Message::Cancel {
            piece,
            offset,
            length
        }),
        any::<u16>().prop_map(Message::Port),
        any::<u32>().prop_map(|piece| Message::Suggest { piece }),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        triple.prop_map(|(piece, offset, length)| Message::Reject {
            piece,
            offset,
            length
        }),
        any::<u32>().prop_map(|piece| Message::AllowedFast { piece }),
        (any::<u8>(), bytes_up_to(2048))
            .prop_map(|(id, payload)| Message::Extended { id, payload }),
    ]
}

/// A piece count and a message valid for it.
fn arb_counted_message() -> impl Strategy<Value = (u32, Message)> {
    (1u32..200_000).prop_flat_map(|pieces| (Just(pieces), arb_message(pieces.div_ceil(8) as usize)))
}

fn arb_handshake() -> impl Strategy<Value = Handshake> {
    (any::<[u8; 8]>(), any::<[u8; 20]>(), any::<[u8; 20]>()).prop_map(|(reserved, hash, id)| {
        Handshake {
            reserved,
            info_hash: InfoHash(hash),
            peer_id: PeerId(id),
        }
    })
}

/// Feeds `wire` to a fresh decoder in chunks of the given sizes (cycled)
/// and collects every message.
fn decode_in_chunks(pieces: u32, wire: &[u8], chunks: &[usize]) -> Vec<Message> {
    let mut decoder = Decoder::new(pieces);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = wire;
    for &size in chunks.iter().cycle() {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        buf.extend_from_slice(chunk);
        rest = tail;
        while let Some(msg) = decoder.decode(&mut buf).expect("valid stream") {
            out.push(msg);
        }
        if rest.is_empty() {
            break;
        }
    }
    assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
    out
}

const STREAM_PIECES: u32 = 1234;

fn arb_stream() -> impl Strategy<Value = Vec<Message>> {
    prop::collection::vec(arb_message(STREAM_PIECES.div_ceil(8) as usize), 1..40)
}

fn encode_all(msgs: &[Message]) -> BytesMut {
    let mut wire = BytesMut::new();
    for msg in msgs {
        msg.encode(&mut wire);
    }
    wire
}

fn arb_extended_handshake() -> impl Strategy<Value = ExtendedHandshake> {
    let ip = prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ];
    (
        prop::collection::btree_map("[a-zA-Z_]{1,16}", any::<u8>(), 0..8),
        any::<Option<u16>>(),
        prop::option::of(".{0,24}"),
        any::<Option<u32>>(),
        prop::option::of(ip),
        any::<Option<u32>>(),
    )
        .prop_map(|(m, p, v, reqq, yourip, metadata_size)| ExtendedHandshake {
            m,
            p,
            v,
            reqq,
            yourip,
            metadata_size,
        })
}

fn arb_pex() -> impl Strategy<Value = Pex> {
    let v4 =
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddrV4::new(ip.into(), port));
    let v6 = (any::<[u8; 16]>(), any::<u16>())
        .prop_map(|(ip, port)| SocketAddrV6::new(ip.into(), port, 0, 0));
    let flags = any::<u8>().prop_map(PexFlags);
    (
        prop::collection::vec((v4.clone(), flags.clone()), 0..30),
        prop::collection::vec((v6.clone(), flags), 0..10),
        prop::collection::vec(v4, 0..30),
        prop::collection::vec(v6, 0..10),
    )
        .prop_map(|(added, added6, dropped, dropped6)| Pex {
            added,
            added6,
            dropped,
            dropped6,
        })
}

/// Bytes drawn mostly from bencode's alphabet, to reach deep into the parsers.
fn bencodeish() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(b"dlie0123456789:-".to_vec()),
            any::<u8>(),
        ],
        0..300,
    )
}

proptest! {
    #[test]
    fn every_message_round_trips((pieces, msg) in arb_counted_message()) {
        let mut wire = BytesMut::new();
        msg.encode(&mut wire);
        prop_assert_eq!(wire.len(), msg.encoded_len());
        let decoded = Decoder::new(pieces).decode(&mut wire);
        prop_assert_eq!(decoded, Ok(Some(msg)));
        prop_assert!(wire.is_empty());
    }

    #[test]
    fn handshake_round_trips(hs in arb_handshake(), tail in bytes_up_to(10)) {
        let mut wire = BytesMut::new();
        hs.encode(&mut wire);
        prop_assert_eq!(wire.len(), Handshake::LEN);
        wire.extend_from_slice(&tail);
        prop_assert_eq!(Handshake::decode(&mut wire), Ok(Some(hs)));
        prop_assert_eq!(&wire[..], &tail[..]);
    }

    #[test]
    fn stream_decodes_in_random_splits(
        msgs in arb_stream(),
        chunks in prop::collection::vec(
            prop_oneof![1usize..8, 1usize..100, 1usize..40_000], 1..20),
    ) {
        let wire = encode_all(&msgs);
        prop_assert_eq!(decode_in_chunks(STREAM_PIECES, &wire, &chunks), msgs);
    }

    #[test]
    fn decoder_never_panics(pieces in 0u32..100_000, bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut decoder = Decoder::with_max_extended_len(pieces, 512);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = decoder.decode(&mut buf) {}
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = Handshake::decode(&mut buf);
    }

    #[test]
    fn decoder_never_panics_on_mangled_streams(
        msgs in prop::collection::vec(arb_message(3), 1..10),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut wire = encode_all(&msgs);
        for (at, byte) in flips {
            let i = at.index(wire.len());
            wire[i] = byte;
        }
        let mut decoder = Decoder::new(20);
        while let Ok(Some(_)) = decoder.decode(&mut wire) {}
    }

    #[test]
    fn extension_decoders_never_panic(bytes in bencodeish()) {
        let _ = ExtendedHandshake::decode(&bytes);
        let _ = Pex::decode(&bytes);
    }

    #[test]
    fn extended_handshake_round_trips(hs in arb_extended_handshake()) {
        prop_assert_eq!(ExtendedHandshake::decode(&hs.encode()), Ok(hs));
    }

    #[test]
    fn pex_round_trips(pex in arb_pex()) {
        prop_assert_eq!(Pex::decode(&pex.encode()), Ok(pex));
    }
}

#[test]
fn stream_decodes_one_byte_at_a_time() {
    let msgs = vec![
        Message::Bitfield(Bytes::from(vec![0xaa; STREAM_PIECES.div_ceil(8) as usize])),
        Message::KeepAlive,
        Message::Piece {
            piece: 4,
            offset: 16384,
            data: Bytes::from((0..16384u32).map(|i| i as u8).collect::<Vec<_>>()),
        },
        Message::HaveAll,
        Message::Extended {
            id: 0,
            payload: ExtendedHandshake::default().encode(),
        },
        Message::Port(6881),
        Message::Reject {
            piece: 1,
            offset: 2,
            length: 3,
        },
        Message::KeepAlive,
    ];
    let wire = encode_all(&msgs);
    assert_eq!(decode_in_chunks(STREAM_PIECES, &wire, &[1]), msgs);
}

#[test]
fn extended_handshake_with_empty_m_round_trips() {
    let hs = ExtendedHandshake {
        m: BTreeMap::new(),
        ..ExtendedHandshake::default()
    };
    assert_eq!(&hs.encode()[..], b"d1:mdee");
    assert_eq!(ExtendedHandshake::decode(&hs.encode()), Ok(hs));
}
