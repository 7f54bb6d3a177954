use proptest::prelude::*;

use super::*;
use crate::wire::MetadataMessage;

/// Pseudo-metadata of `len` bytes and its info-hash.
fn metadata(len: usize) -> (Vec<u8>, InfoHash) {
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let hash = InfoHash(Sha1::digest(&bytes).into());
    (bytes, hash)
}

fn piece(bytes: &[u8], i: u32) -> &[u8] {
    let start = i as usize * METADATA_PIECE_LEN;
    &bytes[start..(start + METADATA_PIECE_LEN).min(bytes.len())]
}

#[test]
fn sizes_above_the_cap_are_refused_before_allocating() {
    let hash = InfoHash([0; 20]);
    assert_eq!(
        MetadataFetch::<u8>::new(hash, 1 << 30).unwrap_err(),
        FetchError::BadSize(1 << 30)
    );
    assert_eq!(
        MetadataFetch::<u8>::new(hash, 0).unwrap_err(),
        FetchError::BadSize(0)
    );
    assert_eq!(
        MetadataFetch::<u8>::new(hash, MAX_METADATA_SIZE as u64 + 1).unwrap_err(),
        FetchError::BadSize(MAX_METADATA_SIZE as u64 + 1)
    );
    let max = MetadataFetch::<u8>::new(hash, MAX_METADATA_SIZE as u64).unwrap();
    assert_eq!(max.piece_count(), 512);
}

#[test]
fn pieces_from_several_peers_assemble_and_verify() {
    let (bytes, hash) = metadata(40_000);
    let mut fetch = MetadataFetch::new(hash, 40_000).unwrap();
    assert_eq!(fetch.piece_count(), 3);
    assert_eq!(fetch.next_request('a'), Some(0));
    assert_eq!(fetch.next_request('b'), Some(1));
    assert_eq!(fetch.next_request('c'), Some(2));
    assert_eq!(fetch.next_request('d'), None);
    // `c` rejects piece 2: it goes to `d`.
    fetch.rejected('c', 2);
    assert_eq!(fetch.next_request('d'), Some(2));
    // `b` leaves before sending: piece 1 goes to `a`.
    fetch.peer_gone('b');
    assert_eq!(fetch.next_request('a'), Some(1));
    assert_eq!(
        fetch.received('a', 0, 40_000, piece(&bytes, 0)),
        Ok(Progress::Pending)
    );
    assert_eq!(
        fetch.received('d', 2, 40_000, piece(&bytes, 2)),
        Ok(Progress::Pending)
    );
    assert_eq!(
        fetch.received('a', 1, 40_000, piece(&bytes, 1)),
        Ok(Progress::Complete(bytes))
    );
}

#[test]
fn lies_are_refused_and_the_piece_is_asked_again() {
    let (bytes, hash) = metadata(20_000);
    let mut fetch = MetadataFetch::new(hash, 20_000).unwrap();
    assert_eq!(fetch.next_request(1), Some(0));
    assert_eq!(fetch.next_request(1), Some(1));
    assert_eq!(
        fetch.received(1, 1, 20_000, &bytes[..100]),
        Err(FetchError::WrongLength {
            piece: 1,
            expected: 20_000 - METADATA_PIECE_LEN,
            got: 100
        })
    );
    assert_eq!(
        fetch.received(1, 5, 20_000, piece(&bytes, 0)),
        Err(FetchError::OutOfRange { piece: 5, count: 2 })
    );
    assert_eq!(
        fetch.received(1, 0, 99, piece(&bytes, 0)),
        Err(FetchError::SizeMismatch {
            expected: 20_000,
            got: 99
        })
    );
    // Both pieces are free again for an honest peer.
    assert_eq!(fetch.next_request(2), Some(0));
    assert_eq!(fetch.next_request(2), Some(1));
    assert_eq!(
        fetch.received(2, 0, 20_000, piece(&bytes, 0)),
        Ok(Progress::Pending)
    );
    assert_eq!(
        fetch.received(2, 1, 20_000, piece(&bytes, 1)),
        Ok(Progress::Complete(bytes))
    );
}

#[test]
fn a_hash_mismatch_drops_everything_and_names_the_contributors() {
    let (bytes, hash) = metadata(20_000);
    let mut fetch = MetadataFetch::new(hash, 20_000).unwrap();
    fetch.next_request(7);
    fetch.next_request(8);
    let mut forged = piece(&bytes, 1).to_vec();
    forged[0] ^= 1;
    assert_eq!(
        fetch.received(7, 0, 20_000, piece(&bytes, 0)),
        Ok(Progress::Pending)
    );
    assert_eq!(
        fetch.received(8, 1, 20_000, &forged),
        Ok(Progress::HashMismatch(BTreeSet::from([7, 8])))
    );
    // Start over: every piece is missing again.
    assert_eq!(fetch.next_request(9), Some(0));
    assert_eq!(fetch.next_request(9), Some(1));
    fetch.received(9, 0, 20_000, piece(&bytes, 0)).unwrap();
    assert_eq!(
        fetch.received(9, 1, 20_000, piece(&bytes, 1)),
        Ok(Progress::Complete(bytes))
    );
}

#[test]
fn a_piece_held_already_is_ignored() {
    let (bytes, hash) = metadata(20_000);
    let mut fetch = MetadataFetch::new(hash, 20_000).unwrap();
    fetch.received(1, 0, 20_000, piece(&bytes, 0)).unwrap();
    let mut other = piece(&bytes, 0).to_vec();
    other[5] ^= 0xff;
    assert_eq!(fetch.received(2, 0, 20_000, &other), Ok(Progress::Pending));
    assert_eq!(fetch.next_request(3), Some(1));
    assert_eq!(
        fetch.received(3, 1, 20_000, piece(&bytes, 1)),
        Ok(Progress::Complete(bytes))
    );
}

proptest! {
    /// Whatever order honest pieces arrive in, from whichever peers, and
    /// whatever garbage messages are mixed in, the fetch completes with the
    /// exact metadata once each piece came in once.
    #[test]
    fn any_arrival_order_completes(
        len in 1usize..100_000,
        order in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        noise in proptest::collection::vec((0u32..10, 0u32..200_000, 0usize..20_000), 0..10),
    ) {
        let (bytes, hash) = metadata(len);
        let mut fetch = MetadataFetch::new(hash, len as u64).unwrap();
        for (piece_index, total, data_len) in noise {
            let data = vec![0; data_len];
            let result = fetch.received(99, piece_index, total, &data);
            let honest_len = piece_index < fetch.piece_count()
                && data_len == fetch.piece_len(piece_index as usize);
            prop_assert_eq!(result.is_ok(), total as usize == len && honest_len);
            if result.is_ok() {
                // Zeros of the right shape were taken as a piece: start a
                // clean fetch for the honest run below.
                fetch = MetadataFetch::new(hash, len as u64).unwrap();
            }
        }
        let mut pieces: Vec<u32> = (0..fetch.piece_count()).collect();
        let count = pieces.len();
        for (i, idx) in order.iter().enumerate() {
            pieces.swap(i % count, idx.index(count));
        }
        let last = pieces.len() - 1;
        for (n, &p) in pieces.iter().enumerate() {
            let message = MetadataMessage::Data {
                piece: p,
                total_size: len as u32,
                data: bytes::Bytes::copy_from_slice(piece(&bytes, p)),
            };
            let MetadataMessage::Data { piece, total_size, data } =
                MetadataMessage::decode(&message.encode()).unwrap() else { unreachable!() };
            let progress = fetch.received(n as u8, piece, total_size, &data).unwrap();
            if n == last {
                prop_assert_eq!(progress, Progress::Complete(bytes.clone()));
            } else {
                prop_assert_eq!(progress, Progress::Pending);
            }
        }
    }
}
