//! The peer wire message decoder on arbitrary bytes delivered in arbitrary
//! reads. Input: piece count (2 bytes), extended-message cap (1 byte), then
//! the read split (see `Input::stream_in_reads`) and the byte stream.
//!
//! Checks: no panic; the messages and the error do not depend on how the
//! stream was split; the decoded messages re-encode to exactly the bytes the
//! decoder consumed; each message decodes back from its own encoding.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use minibit_core::wire::{Decoder, Message, WireError};
use minibit_fuzz::Input;

/// Decodes every complete message in `buf`, stopping at the first error.
fn drain(
    decoder: &mut Decoder,
    buf: &mut BytesMut,
    out: &mut Vec<Message>,
) -> Result<(), WireError> {
    while let Some(message) = decoder.decode(buf)? {
        out.push(message);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let piece_count = u32::from(input.u16());
    let max_extended_len = match input.byte() {
        0xff => Decoder::DEFAULT_MAX_EXTENDED_LEN,
        n => u32::from(n) << 4,
    };
    let decoder = Decoder::with_max_extended_len(piece_count, max_extended_len);
    let (stream, reads) = input.stream_in_reads();

    // Read by read, as a connection sees it.
    let mut split = decoder.clone();
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    let mut error = None;
    for read in reads {
        buf.extend_from_slice(read);
        if let Err(e) = drain(&mut split, &mut buf, &mut messages) {
            error = Some(e);
            break;
        }
    }

    // All at once.
    let mut whole = decoder.clone();
    let mut all = BytesMut::from(stream);
    let mut expected = Vec::new();
    let expected_error = drain(&mut whole, &mut all, &mut expected).err();
    assert_eq!(messages, expected, "messages depend on the read split");
    assert_eq!(error, expected_error, "error depends on the read split");

    let consumed = stream.len() - all.len();
    let mut reencoded = BytesMut::new();
    for message in &messages {
        let mut own = BytesMut::new();
        message.encode(&mut own);
        assert_eq!(own.len(), message.encoded_len());
        assert!(own.len() - 4 <= decoder.max_frame_len() as usize);
        reencoded.extend_from_slice(&own);
        let again = decoder.clone().decode(&mut own);
        assert_eq!(again.as_ref(), Ok(&Some(message.clone())));
        assert!(own.is_empty(), "decoding left bytes of its own encoding");
    }
    assert_eq!(
        &reencoded[..],
        &stream[..consumed],
        "re-encoding differs from the consumed bytes"
    );
});
