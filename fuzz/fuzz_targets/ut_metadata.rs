//! `wire::MetadataMessage::decode` (BEP 9 `ut_metadata`) on arbitrary
//! payloads, each decoded message then fed to a `metadata::MetadataFetch`.
//!
//! Checks: no panic; a decoded message has a piece index below 512, a data
//! message at most 16 KiB and a `total_size` of 1 B-8 MiB; it re-encodes
//! to a payload that decodes back to the same message; the fetch (sized by
//! the first input byte) accepts a data message exactly when its size and
//! index fit, and never completes with bytes that do not hash to its
//! info-hash.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use minibit_core::metadata::{MetadataFetch, Progress};
use minibit_core::metainfo::InfoHash;
use minibit_core::wire::{MAX_METADATA_PIECES, MAX_METADATA_SIZE, METADATA_PIECE_LEN, MetadataMessage};
use sha1::{Digest, Sha1};

fuzz_target!(|data: &[u8]| {
    let Some((&size, payload)) = data.split_first() else {
        return;
    };
    let payload = Bytes::copy_from_slice(payload);
    let Ok(message) = MetadataMessage::decode(&payload) else {
        return;
    };
    assert!((message.piece() as usize) < MAX_METADATA_PIECES);
    assert_eq!(MetadataMessage::decode(&message.encode()).as_ref(), Ok(&message));
    let MetadataMessage::Data { piece, total_size, data } = message else {
        return;
    };
    assert!(data.len() <= METADATA_PIECE_LEN);
    assert!(total_size >= 1 && total_size as usize <= MAX_METADATA_SIZE);
    // A one-piece fetch of `size + 1` bytes whose hash is that of zeros.
    let len = u32::from(size) + 1;
    let hash = InfoHash(Sha1::digest(vec![0u8; len as usize]).into());
    let mut fetch = MetadataFetch::new(hash, u64::from(len)).unwrap();
    let fits = total_size == len && piece == 0 && data.len() == len as usize;
    match fetch.received(1u8, piece, total_size, &data) {
        Ok(Progress::Complete(bytes)) => {
            assert!(fits);
            assert_eq!(InfoHash(Sha1::digest(&bytes).into()), hash);
        }
        Ok(Progress::HashMismatch(peers)) => {
            assert!(fits);
            assert!(peers.contains(&1));
        }
        Ok(Progress::Pending) => panic!("a one-piece fetch is done after one piece"),
        Err(_) => assert!(!fits),
    }
});
