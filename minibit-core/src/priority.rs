//! Selective download: a priority per file, and the piece priorities it
//! gives (libtorrent's file priorities, reduced to three levels).
//!
//! A piece may span several files (BEP 3: the content is the files
//! concatenated); it takes the highest priority of the files it touches,
//! so a piece shared by a skipped and a wanted file is downloaded (the
//! driver keeps the skipped file's bytes out of that file).

use crate::bitfield::Bitfield;
use crate::piece::{Layout, PieceIndex};

/// How much a file (or a piece) is wanted. Ordered: `Skip < Normal < High`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Not downloaded: pieces lying only in skipped files are never requested.
    Skip,
    /// Downloaded, rarest first (the default).
    #[default]
    Normal,
    /// Downloaded before every normal piece (rarest first among them).
    High,
}

impl Priority {
    /// Whether the file or piece is to be downloaded.
    pub fn is_wanted(self) -> bool {
        self != Self::Skip
    }
}

/// The priority of every piece of a torrent, derived from its files'.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PiecePriorities {
    /// Pieces to download (any priority but [`Priority::Skip`]).
    wanted: Bitfield,
    /// Pieces of priority [`Priority::High`].
    high: Bitfield,
}

impl PiecePriorities {
    /// Every piece of `layout` at [`Priority::Normal`].
    pub fn all_normal(layout: &Layout) -> Self {
        Self {
            wanted: Bitfield::full(layout.piece_count()),
            high: Bitfield::new(layout.piece_count()),
        }
    }

    /// Piece priorities from `files` (one per file of `layout`, in torrent
    /// order; missing entries count as [`Priority::Normal`], extra ones are
    /// ignored): each piece takes the highest priority among the files it
    /// touches. Empty files touch no piece. O(pieces + files).
    pub fn from_files(layout: &Layout, files: &[Priority]) -> Self {
        let count = layout.piece_count();
        let mut wanted = Bitfield::new(count);
        let mut high = Bitfield::new(count);
        for file in 0..layout.file_count() {
            let priority = files.get(file).copied().unwrap_or_default();
            let Some(pieces) = layout.file_pieces(file).filter(|_| priority.is_wanted()) else {
                continue;
            };
            for piece in pieces.map(PieceIndex::new_unchecked) {
                wanted.set(piece);
                if priority == Priority::High {
                    high.set(piece);
                }
            }
        }
        Self { wanted, high }
    }

    /// The priority of `piece` ([`Priority::Skip`] past the end).
    pub fn get(&self, piece: PieceIndex) -> Priority {
        if self.high.has(piece) {
            Priority::High
        } else if self.wanted.has(piece) {
            Priority::Normal
        } else {
            Priority::Skip
        }
    }

    /// The pieces to download.
    pub fn wanted(&self) -> &Bitfield {
        &self.wanted
    }

    /// Whether every piece is wanted at [`Priority::Normal`] (no selection).
    pub fn is_all_normal(&self) -> bool {
        self.wanted.is_complete() && self.high.is_none()
    }

    /// Piece count covered.
    pub fn len(&self) -> u32 {
        self.wanted.len()
    }

    /// Whether it covers no piece.
    pub fn is_empty(&self) -> bool {
        self.wanted.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn priority() -> impl Strategy<Value = Priority> {
        prop_oneof![
            Just(Priority::Skip),
            Just(Priority::Normal),
            Just(Priority::High)
        ]
    }

    #[test]
    fn a_piece_shared_with_a_skipped_file_is_wanted() {
        // 8-byte pieces over files of 10, 0, 7 and 15 bytes: piece 1 spans
        // a and b, piece 2 spans b and c.
        let layout = Layout::new(8, &[10, 0, 7, 15]).unwrap();
        let p = PiecePriorities::from_files(
            &layout,
            &[
                Priority::Skip,
                Priority::High,
                Priority::Normal,
                Priority::Skip,
            ],
        );
        let got: Vec<Priority> = layout.pieces().map(|i| p.get(i)).collect();
        assert_eq!(
            got,
            [
                Priority::Skip,
                Priority::Normal,
                Priority::Normal,
                Priority::Skip
            ]
        );
        assert!(!p.is_all_normal());
        assert!(PiecePriorities::from_files(&layout, &[]).is_all_normal());
    }

    proptest! {
        #[test]
        fn each_piece_takes_the_highest_priority_of_its_files(
            lengths in prop::collection::vec(0u64..100, 1..8),
            piece_length in 1u64..40,
            files in prop::collection::vec(priority(), 0..8),
        ) {
            prop_assume!(lengths.iter().sum::<u64>() > 0);
            let layout = Layout::new(piece_length, &lengths).unwrap();
            let p = PiecePriorities::from_files(&layout, &files);
            for piece in layout.pieces() {
                let expected = layout
                    .piece_spans(piece)
                    .map(|span| files.get(span.file).copied().unwrap_or_default())
                    .max()
                    .unwrap_or(Priority::Skip);
                prop_assert_eq!(p.get(piece), expected);
            }
        }
    }
}
