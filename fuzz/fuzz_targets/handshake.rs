//! The BEP 3 handshake decoder on arbitrary bytes delivered in arbitrary
//! reads. Input: the read split (see `Input::stream_in_reads`), then the
//! byte stream.
//!
//! Checks: no panic; the outcome does not depend on the split; a decoded
//! handshake re-encodes to exactly the first 68 bytes and leaves the rest of
//! the stream in the buffer; "need more bytes" only for a valid prefix.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use minibit_core::wire::{Handshake, WireError};
use minibit_fuzz::Input;

/// Feeds `reads` one by one until the handshake decodes or fails.
fn decode<'a>(
    reads: impl IntoIterator<Item = &'a [u8]>,
) -> (Result<Option<Handshake>, WireError>, BytesMut) {
    let mut buf = BytesMut::new();
    let mut reads = reads.into_iter();
    let outcome = loop {
        let Some(read) = reads.next() else {
            break Ok(None);
        };
        buf.extend_from_slice(read);
        match Handshake::decode(&mut buf) {
            Ok(None) => {}
            done => break done,
        }
    };
    // Whatever arrives after the handshake stays for the message decoder.
    for read in reads {
        buf.extend_from_slice(read);
    }
    (outcome, buf)
}

fuzz_target!(|data: &[u8]| {
    let (stream, reads) = Input::new(data).stream_in_reads();
    let (outcome, rest) = decode(reads);
    let (expected, expected_rest) = decode([stream]);
    assert_eq!(outcome, expected, "outcome depends on the read split");
    match outcome {
        Ok(Some(handshake)) => {
            let mut encoded = BytesMut::new();
            handshake.encode(&mut encoded);
            assert_eq!(&encoded[..], &stream[..Handshake::LEN]);
            assert_eq!(&rest[..], &stream[Handshake::LEN..]);
            assert_eq!(rest, expected_rest);
        }
        Ok(None) => {
            let mut valid = BytesMut::new();
            Handshake::new(
                minibit_core::metainfo::InfoHash([0; 20]),
                minibit_core::wire::PeerId([0; 20]),
            )
            .encode(&mut valid);
            assert!(stream.len() < Handshake::LEN);
            assert_eq!(
                stream.get(..20.min(stream.len())),
                valid.get(..20.min(stream.len()))
            );
            assert_eq!(&rest[..], stream);
        }
        Err(_) => {}
    }
});
