//! Incremental piece hashing: bytes in, one SHA-1 per piece out (BEP 3 `pieces`).

use sha1::{Digest, Sha1};

/// Cuts a byte stream fed in chunks of any size into pieces of
/// `piece_length` bytes and hashes each with SHA-1. Memory stays constant
/// whatever the stream length: no piece is ever buffered.
#[derive(Clone, Debug)]
pub struct PieceHasher {
    piece_length: u64,
    current: Sha1,
    in_piece: u64,
    total: u64,
    pieces: Vec<[u8; 20]>,
}

impl PieceHasher {
    /// A hasher for pieces of `piece_length` bytes.
    ///
    /// # Panics
    /// If `piece_length` is zero.
    pub fn new(piece_length: u32) -> Self {
        assert!(piece_length > 0, "piece length must not be zero");
        Self {
            piece_length: u64::from(piece_length),
            current: Sha1::new(),
            in_piece: 0,
            total: 0,
            pieces: Vec::new(),
        }
    }

    /// Feeds the next bytes of the stream.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        while !data.is_empty() {
            let room = self.piece_length - self.in_piece;
            let take = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            self.current.update(&data[..take]);
            self.in_piece += take as u64;
            data = &data[take..];
            if self.in_piece == self.piece_length {
                self.pieces.push(self.current.finalize_reset().into());
                self.in_piece = 0;
            }
        }
    }

    /// Bytes fed so far.
    pub const fn bytes_hashed(&self) -> u64 {
        self.total
    }

    /// The hashes of every piece, the last (shorter) piece included.
    pub fn finish(mut self) -> Vec<[u8; 20]> {
        if self.in_piece > 0 {
            self.pieces.push(self.current.finalize().into());
        }
        self.pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(data: &[u8], piece_length: usize) -> Vec<[u8; 20]> {
        data.chunks(piece_length)
            .map(|c| Sha1::digest(c).into())
            .collect()
    }

    #[test]
    fn known_vector() {
        let mut hasher = PieceHasher::new(3);
        hasher.update(b"abcab");
        assert_eq!(hasher.bytes_hashed(), 5);
        let pieces = hasher.finish();
        // SHA-1("abc") from FIPS 180-1.
        assert_eq!(
            hex::encode(pieces[0]),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(pieces[1], <[u8; 20]>::from(Sha1::digest(b"ab")));
        assert_eq!(PieceHasher::new(4).finish(), Vec::<[u8; 20]>::new());
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_in_memory_hashes(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            piece_length in 1u32..700,
            cuts in proptest::collection::vec(0usize..5000, 0..8),
        ) {
            let mut hasher = PieceHasher::new(piece_length);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut from = 0;
            for cut in cuts.into_iter().chain([data.len()]) {
                hasher.update(&data[from..cut]);
                from = cut;
            }
            prop_assert_eq!(hasher.finish(), reference(&data, piece_length as usize));
        }
    }
}
