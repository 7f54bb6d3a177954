//! SHA-1 piece verification (BEP 3 "pieces": the 20-byte SHA-1 of each
//! piece). Callers run these on tokio's blocking pool, one piece per job, so
//! every core hashes and the event loop never stalls.

use std::io;

use minibit_core::piece::PieceIndex;
use sha1::{Digest, Sha1};

use crate::storage::Storage;

/// The SHA-1 of one piece, as listed in the metainfo.
pub type PieceHash = [u8; 20];

/// SHA-1 of the concatenation of `chunks` (no copy into one buffer).
pub fn digest<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> PieceHash {
    let mut hasher = Sha1::new();
    for chunk in chunks {
        hasher.update(chunk);
    }
    hasher.finalize().into()
}

/// Reads `piece` from `storage` and checks it against `expected`, on the
/// caller's thread (blocking; one piece of memory).
///
/// # Errors
/// I/O errors from the read.
pub fn verify_stored(
    storage: &Storage,
    piece: PieceIndex,
    expected: &PieceHash,
) -> io::Result<bool> {
    let data = storage.read_piece(piece)?;
    Ok(digest([data.as_slice()]) == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_the_known_sha1_and_ignores_chunking() {
        // SHA-1("abc") from FIPS 180-2, appendix A.
        let expected = hex::decode("a9993e364706816aba3e25717850c26c9cd0d89d").unwrap();
        assert_eq!(digest([b"abc".as_slice()]).as_slice(), expected);
        assert_eq!(digest([b"a".as_slice(), b"", b"bc"]).as_slice(), expected);
    }
}
