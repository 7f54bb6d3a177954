//! [`PendingAvailability`]: what a peer said it has (bitfield, have-all,
//! have-none, HAVEs) while our torrent has no metadata yet (a magnet
//! link, BEP 9), so the piece count is unknown. Peers send their bitfield
//! right after the handshake; it is kept here and applied once the info
//! dictionary is known.

use bytes::Bytes;

use crate::bitfield::Bitfield;
use crate::piece::PieceIndex;
use crate::wire::MAX_METADATA_SIZE;

use super::types::Violation;

/// Most pieces a torrent whose info dictionary fits [`MAX_METADATA_SIZE`]
/// can have: each piece takes a 20-byte SHA-1 in `pieces`. A HAVE or a
/// bitfield beyond it cannot be true, whatever the metadata says.
pub(super) const MAX_PIECES: u32 = (MAX_METADATA_SIZE / 20) as u32;

/// The opening message kept for later.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Opening {
    /// Nothing yet, or BEP 6 have-none.
    #[default]
    Nothing,
    /// BEP 6 have-all.
    All,
    /// A BEP 3 bitfield, its wire bytes.
    Wire(Bytes),
}

/// A peer's availability while the piece count is unknown: its latest
/// opening message plus the HAVEs after it, at most `MAX_PIECES` bits
/// (about 51 KiB per peer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct PendingAvailability {
    opening: Opening,
    /// HAVEs, one bit per piece, most significant bit first.
    haves: Vec<u8>,
}

impl PendingAvailability {
    /// BEP 6 have-all (replaces what was kept).
    pub(super) fn have_all(&mut self) {
        *self = Self {
            opening: Opening::All,
            haves: Vec::new(),
        };
    }

    /// BEP 6 have-none (replaces what was kept).
    pub(super) fn have_none(&mut self) {
        *self = Self::default();
    }

    /// A BEP 3 bitfield (replaces what was kept).
    ///
    /// # Errors
    /// [`Violation::PieceBeyondMetadata`] when it is longer than any
    /// torrent can be.
    pub(super) fn bitfield(&mut self, bytes: Bytes) -> Result<(), Violation> {
        if bytes.len() > (MAX_PIECES as usize).div_ceil(8) {
            return Err(Violation::PieceBeyondMetadata(
                u32::try_from(bytes.len() * 8).unwrap_or(u32::MAX),
            ));
        }
        *self = Self {
            opening: Opening::Wire(bytes),
            haves: Vec::new(),
        };
        Ok(())
    }

    /// A HAVE of `piece`.
    ///
    /// # Errors
    /// [`Violation::PieceBeyondMetadata`] for an index no torrent has.
    pub(super) fn have(&mut self, piece: u32) -> Result<(), Violation> {
        if piece >= MAX_PIECES {
            return Err(Violation::PieceBeyondMetadata(piece));
        }
        let byte = piece as usize / 8;
        if self.haves.len() <= byte {
            self.haves.resize(byte + 1, 0);
        }
        self.haves[byte] |= 0x80 >> (piece % 8);
        Ok(())
    }

    /// The peer's bitfield for a torrent of `pieces` pieces.
    ///
    /// # Errors
    /// [`Violation::Bitfield`] for a bitfield of the wrong length or with
    /// spare bits set, [`Violation::PieceBeyondMetadata`] for a HAVE at or
    /// past `pieces`.
    pub(super) fn resolve(&self, pieces: u32) -> Result<Bitfield, Violation> {
        let mut bitfield = match &self.opening {
            Opening::Nothing => Bitfield::new(pieces),
            Opening::All => Bitfield::full(pieces),
            Opening::Wire(bytes) => Bitfield::from_wire(bytes, pieces)?,
        };
        for (i, &byte) in self.haves.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) == 0 {
                    continue;
                }
                let piece = (i * 8 + bit) as u32;
                if piece >= pieces {
                    return Err(Violation::PieceBeyondMetadata(piece));
                }
                bitfield.set(PieceIndex::new_unchecked(piece));
            }
        }
        Ok(bitfield)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_latest_opening_message_wins_and_haves_add_to_it() {
        let mut pending = PendingAvailability::default();
        pending.have(9).unwrap();
        pending
            .bitfield(Bytes::from_static(&[0b1010_0000, 0]))
            .unwrap();
        pending.have(3).unwrap();
        let got: Vec<u32> = pending
            .resolve(10)
            .unwrap()
            .iter_set()
            .map(PieceIndex::get)
            .collect();
        assert_eq!(
            got,
            vec![0, 2, 3],
            "the HAVE before the bitfield is replaced"
        );
        pending.have_all();
        assert!(pending.resolve(10).unwrap().is_complete());
        pending.have_none();
        assert!(pending.resolve(10).unwrap().is_none());
    }

    #[test]
    fn lies_show_once_the_piece_count_is_known() {
        let mut pending = PendingAvailability::default();
        pending.have(12).unwrap();
        assert_eq!(pending.resolve(12), Err(Violation::PieceBeyondMetadata(12)));
        let mut pending = PendingAvailability::default();
        pending.bitfield(Bytes::from_static(&[0xff, 0xff])).unwrap();
        assert!(matches!(pending.resolve(12), Err(Violation::Bitfield(_))));
        assert!(matches!(pending.resolve(20), Err(Violation::Bitfield(_))));
        assert!(pending.resolve(16).unwrap().is_complete());
    }

    #[test]
    fn indices_no_torrent_can_have_are_refused_at_once() {
        let mut pending = PendingAvailability::default();
        assert_eq!(
            pending.have(MAX_PIECES),
            Err(Violation::PieceBeyondMetadata(MAX_PIECES))
        );
        let long = Bytes::from(vec![0; (MAX_PIECES as usize).div_ceil(8) + 1]);
        assert!(pending.bitfield(long).is_err());
        pending.have(MAX_PIECES - 1).unwrap();
        assert_eq!(pending.haves.len(), (MAX_PIECES as usize).div_ceil(8));
    }

    proptest! {
        /// HAVEs alone resolve to exactly the set of pieces named, for any
        /// piece count above the largest index.
        #[test]
        fn haves_resolve_to_the_pieces_named(
            haves in proptest::collection::btree_set(0u32..2000, 0..64),
            extra in 1u32..100,
        ) {
            let mut pending = PendingAvailability::default();
            for &piece in &haves {
                pending.have(piece).unwrap();
            }
            let pieces = haves.iter().max().map_or(0, |m| m + 1) + extra;
            let got: std::collections::BTreeSet<u32> =
                pending.resolve(pieces).unwrap().iter_set().map(PieceIndex::get).collect();
            prop_assert_eq!(got, haves);
        }
    }
}
