//! Which pieces a peer has (BEP 3 "bitfield").
//!
//! On the wire a bitfield is one bit per piece, the high bit of the first
//! byte being piece 0; spare bits at the end of the last byte must be zero.

use bitvec::prelude::{BitVec, Msb0};
use thiserror::Error;

use crate::piece::PieceIndex;

/// Why a wire bitfield was refused (BEP 3: "Clients should drop the
/// connection if they receive bitfields that are not of the correct size, or
/// if the bitfield has any of the spare bits set.").
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BitfieldError {
    /// The payload is not `ceil(pieces / 8)` bytes long.
    #[error("bitfield is {got} bytes, expected {expected} for {pieces} pieces")]
    WrongLength {
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        expected: usize,
        /// The torrent's piece count.
        pieces: u32,
    },
    /// A bit past the last piece is set.
    #[error("bitfield has spare bits set past piece {pieces}")]
    SpareBitsSet {
        /// The torrent's piece count.
        pieces: u32,
    },
}

/// One bit per piece: set when the piece is held.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bitfield {
    bits: BitVec<u8, Msb0>,
    /// Number of set bits, kept so [`Bitfield::count`] and
    /// [`Bitfield::is_complete`] are O(1) (asked on every HAVE).
    ones: u32,
}

impl Bitfield {
    /// A bitfield of `pieces` bits, all clear (BEP 6 "have none").
    pub fn new(pieces: u32) -> Self {
        Self {
            bits: BitVec::repeat(false, pieces as usize),
            ones: 0,
        }
    }

    /// A bitfield of `pieces` bits, all set (a seeder; BEP 6 "have all").
    pub fn full(pieces: u32) -> Self {
        Self {
            bits: BitVec::repeat(true, pieces as usize),
            ones: pieces,
        }
    }

    /// Parses the payload of a `bitfield` message for a torrent of `pieces` pieces.
    ///
    /// # Errors
    /// [`BitfieldError::WrongLength`] when the payload is not
    /// `ceil(pieces / 8)` bytes; [`BitfieldError::SpareBitsSet`] when a bit
    /// past the last piece is set.
    pub fn from_wire(bytes: &[u8], pieces: u32) -> Result<Self, BitfieldError> {
        let expected = (pieces as usize).div_ceil(8);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                got: bytes.len(),
                expected,
                pieces,
            });
        }
        let mut bits = BitVec::<u8, Msb0>::from_slice(bytes);
        if bits[pieces as usize..].any() {
            return Err(BitfieldError::SpareBitsSet { pieces });
        }
        bits.truncate(pieces as usize);
        let ones = bits.count_ones() as u32;
        Ok(Self { bits, ones })
    }

    /// The wire form: `ceil(len / 8)` bytes, spare bits zero.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut bits = self.bits.clone();
        bits.set_uninitialized(false);
        bits.into_vec()
    }

    /// Number of pieces the bitfield covers.
    pub fn len(&self) -> u32 {
        self.bits.len() as u32
    }

    /// `true` for a torrent of zero pieces (never a valid torrent).
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    /// Whether `piece` is held.
    pub fn has(&self, piece: PieceIndex) -> bool {
        // Straight from the bytes (most significant bit first, as on the
        // wire): the picker's hot path asks this for every candidate piece.
        let i = piece.as_usize();
        i < self.bits.len() && self.bits.as_raw_slice()[i / 8] & (0x80 >> (i % 8)) != 0
    }

    /// Marks `piece` as held; returns `true` when it was not held before.
    ///
    /// # Panics
    /// When `piece` is past the bitfield's length.
    pub fn set(&mut self, piece: PieceIndex) -> bool {
        let (byte, mask) = self.locate(piece);
        let added = *byte & mask == 0;
        *byte |= mask;
        self.ones += u32::from(added);
        added
    }

    /// Marks `piece` as missing; returns `true` when it was held before.
    ///
    /// # Panics
    /// When `piece` is past the bitfield's length.
    pub fn clear(&mut self, piece: PieceIndex) -> bool {
        let (byte, mask) = self.locate(piece);
        let removed = *byte & mask != 0;
        *byte &= !mask;
        self.ones -= u32::from(removed);
        removed
    }

    /// The byte holding `piece` and its bit in it (most significant bit
    /// first, as on the wire): one write on the HAVE path.
    fn locate(&mut self, piece: PieceIndex) -> (&mut u8, u8) {
        let i = piece.as_usize();
        assert!(
            i < self.bits.len(),
            "piece {i} past a bitfield of {}",
            self.bits.len()
        );
        (&mut self.bits.as_raw_mut_slice()[i / 8], 0x80 >> (i % 8))
    }

    /// Number of pieces held.
    pub fn count(&self) -> u32 {
        self.ones
    }

    /// Whether every piece is held.
    pub fn is_complete(&self) -> bool {
        self.ones == self.len()
    }

    /// Whether no piece is held.
    pub fn is_none(&self) -> bool {
        self.ones == 0
    }

    /// The pieces held, in increasing order.
    pub fn iter_set(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        self.bits
            .iter_ones()
            .map(|i| PieceIndex::new_unchecked(i as u32))
    }

    /// The pieces missing, in increasing order.
    pub fn iter_unset(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        self.bits
            .iter_zeros()
            .map(|i| PieceIndex::new_unchecked(i as u32))
    }

    /// How many pieces `other` holds that `self` lacks (we are interested
    /// in a peer exactly when this is non-zero, BEP 3).
    ///
    /// Both bitfields must cover the same piece count; bits past it are
    /// ignored.
    pub fn lacking_count(&self, other: &Self) -> u32 {
        let len = self.bits.len();
        self.bits
            .as_raw_slice()
            .iter()
            .zip(other.bits.as_raw_slice())
            .enumerate()
            .map(|(i, (&mine, &theirs))| {
                let real = 0xFFu8 << ((8 - (len - i * 8).min(8)) % 8);
                (theirs & !mine & real).count_ones()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn idx(i: u32) -> PieceIndex {
        PieceIndex::new_unchecked(i)
    }

    #[test]
    fn wire_is_msb_first() {
        let mut field = Bitfield::new(10);
        field.set(idx(0));
        field.set(idx(9));
        assert_eq!(field.to_wire(), vec![0b1000_0000, 0b0100_0000]);
        assert_eq!(
            Bitfield::from_wire(&[0b1000_0000, 0b0100_0000], 10),
            Ok(field)
        );
    }

    #[test]
    fn wrong_length_and_spare_bits_are_refused() {
        assert_eq!(
            Bitfield::from_wire(&[0xFF], 10),
            Err(BitfieldError::WrongLength {
                got: 1,
                expected: 2,
                pieces: 10
            })
        );
        assert_eq!(
            Bitfield::from_wire(&[0xFF, 0b0010_0000], 10),
            Err(BitfieldError::SpareBitsSet { pieces: 10 })
        );
        assert!(
            Bitfield::from_wire(&[0xFF, 0b1100_0000], 10)
                .unwrap()
                .is_complete()
        );
    }

    #[test]
    fn set_clear_count_complete() {
        let mut field = Bitfield::new(3);
        assert!(field.is_none());
        assert!(field.set(idx(1)));
        assert!(!field.set(idx(1)));
        assert_eq!(field.count(), 1);
        assert_eq!(field.iter_set().collect::<Vec<_>>(), vec![idx(1)]);
        assert_eq!(field.iter_unset().collect::<Vec<_>>(), vec![idx(0), idx(2)]);
        field.set(idx(0));
        field.set(idx(2));
        assert!(field.is_complete());
        assert!(field.clear(idx(2)));
        assert!(!field.has(idx(2)));
        assert_eq!(Bitfield::full(3).count(), 3);
    }

    #[test]
    fn lacking_count_sees_only_real_pieces() {
        let mut mine = Bitfield::new(9);
        let mut theirs = Bitfield::new(9);
        assert_eq!(mine.lacking_count(&theirs), 0);
        theirs.set(idx(8));
        assert_eq!(mine.lacking_count(&theirs), 1);
        mine.set(idx(8));
        assert_eq!(mine.lacking_count(&theirs), 0);
        assert_eq!(Bitfield::full(9).lacking_count(&Bitfield::full(9)), 0);
        assert_eq!(Bitfield::new(9).lacking_count(&Bitfield::full(9)), 9);
    }

    proptest! {
        #[test]
        fn kept_count_matches_the_bits(
            pieces in 1u32..200,
            ops in proptest::collection::vec((any::<bool>(), any::<u32>()), 0..400),
        ) {
            let mut field = Bitfield::new(pieces);
            let mut naive = vec![false; pieces as usize];
            for (set, at) in ops {
                let i = at % pieces;
                let changed = if set { field.set(idx(i)) } else { field.clear(idx(i)) };
                prop_assert_eq!(changed, naive[i as usize] != set);
                naive[i as usize] = set;
                let ones = naive.iter().filter(|&&b| b).count() as u32;
                prop_assert_eq!(field.count(), ones);
                prop_assert_eq!(field.is_complete(), ones == pieces);
                prop_assert_eq!(field.is_none(), ones == 0);
            }
        }

        #[test]
        fn wire_round_trip(bits in proptest::collection::vec(any::<bool>(), 1..300)) {
            let mut field = Bitfield::new(bits.len() as u32);
            for (i, &b) in bits.iter().enumerate() {
                if b { field.set(idx(i as u32)); }
            }
            let wire = field.to_wire();
            prop_assert_eq!(wire.len(), bits.len().div_ceil(8));
            let back = Bitfield::from_wire(&wire, bits.len() as u32).unwrap();
            prop_assert_eq!(back.count() as usize, bits.iter().filter(|&&b| b).count());
            prop_assert_eq!(&back, &field);
        }

        #[test]
        fn lacking_count_matches_naive(
            pairs in proptest::collection::vec(any::<(bool, bool)>(), 1..100)
        ) {
            let n = pairs.len() as u32;
            let mut mine = Bitfield::new(n);
            let mut theirs = Bitfield::new(n);
            for (i, &(m, t)) in pairs.iter().enumerate() {
                if m { mine.set(idx(i as u32)); }
                if t { theirs.set(idx(i as u32)); }
            }
            let naive = pairs.iter().filter(|&&(m, t)| t && !m).count() as u32;
            prop_assert_eq!(mine.lacking_count(&theirs), naive);
        }
    }
}
