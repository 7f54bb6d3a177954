//! Piece and block geometry of a torrent (BEP 3, "pieces" and "request").
//!
//! A torrent's content is the concatenation of its files, cut into pieces of
//! `piece length` bytes (the last one may be shorter). Peers exchange pieces
//! in blocks of [`BLOCK_SIZE`] bytes (the last block of a piece may be
//! shorter). [`Layout`] holds that geometry and maps byte ranges of the
//! torrent onto the files that store them.
//!
//! Indices that come from the network are raw `u32`s; [`Layout::piece_index`]
//! and [`Layout::block_ref`] validate them into [`PieceIndex`] and
//! [`BlockRef`], so code past the boundary never sees an out-of-range index.

use thiserror::Error;

/// Size of a block in bytes: 16 KiB, the request size every client uses
/// (BEP 3 "request"; larger requests are dropped by most peers).
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// Largest piece length minibit accepts, in bytes (64 MiB). Real torrents use
/// 16 KiB to 16 MiB; anything larger is treated as hostile.
pub const MAX_PIECE_LENGTH: u32 = 64 * 1024 * 1024;

/// Index of a piece, known to be in range for the [`Layout`] that made it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PieceIndex(u32);

impl PieceIndex {
    /// An index the caller knows to be in range (a bit of a bitfield, a slot
    /// of a per-piece table); indices from outside go through
    /// [`Layout::piece_index`].
    pub(crate) const fn new_unchecked(index: u32) -> Self {
        Self(index)
    }

    /// The index as a `u32`, as it travels on the wire.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The index as a `usize`, for indexing per-piece tables.
    pub const fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Display for PieceIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One block of a piece: `length` bytes at byte `offset` inside `piece`.
///
/// Made by [`Layout`], so the range always lies inside the piece, `offset`
/// is a multiple of [`BLOCK_SIZE`] for blocks minibit requests, and `length`
/// is at most [`BLOCK_SIZE`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRef {
    /// The piece the block belongs to.
    pub piece: PieceIndex,
    /// Offset of the block inside the piece, in bytes.
    pub offset: u32,
    /// Length of the block in bytes (1..=[`BLOCK_SIZE`]).
    pub length: u32,
}

impl BlockRef {
    /// Index of this block inside its piece (`offset / BLOCK_SIZE`).
    pub const fn index_in_piece(&self) -> u32 {
        self.offset / BLOCK_SIZE
    }
}

/// A contiguous run of bytes inside one file of the torrent.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FileSpan {
    /// Index of the file in the torrent's file list.
    pub file: usize,
    /// Offset inside that file, in bytes.
    pub offset: u64,
    /// Length of the run in bytes (never zero).
    pub length: u64,
}

/// Why a geometry or an index from a peer was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The piece length is zero or above [`MAX_PIECE_LENGTH`].
    #[error("piece length {0} bytes is outside 1..={MAX_PIECE_LENGTH}")]
    BadPieceLength(u64),
    /// The torrent holds no byte at all.
    #[error("torrent has a total length of zero bytes")]
    Empty,
    /// The torrent needs more pieces than fit in a `u32` index.
    #[error("torrent of {total} bytes needs more than 2^32 pieces of {piece_length} bytes")]
    TooManyPieces {
        /// Total length in bytes.
        total: u64,
        /// Piece length in bytes.
        piece_length: u32,
    },
    /// The file lengths do not add up without overflow.
    #[error("file lengths overflow a 64-bit total")]
    LengthOverflow,
    /// A piece index at or past the piece count.
    #[error("piece index {index} out of range (torrent has {count} pieces)")]
    PieceOutOfRange {
        /// The index received.
        index: u32,
        /// The torrent's piece count.
        count: u32,
    },
    /// A block that is empty, longer than [`BLOCK_SIZE`], or runs past the end of its piece.
    #[error(
        "block at offset {offset} with length {length} does not fit in piece {piece} of {piece_size} bytes"
    )]
    BadBlock {
        /// The piece index.
        piece: u32,
        /// Offset inside the piece, in bytes.
        offset: u32,
        /// Requested length, in bytes.
        length: u32,
        /// Size of that piece, in bytes.
        piece_size: u32,
    },
}

/// Piece and block geometry of one torrent, and where its bytes live in its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    total_length: u64,
    piece_length: u32,
    piece_count: u32,
    /// Start offset of each file in the torrent's byte stream, plus the total at the end.
    file_starts: Vec<u64>,
}

impl Layout {
    /// Geometry for files of the given lengths (bytes, in torrent order) cut
    /// into pieces of `piece_length` bytes.
    ///
    /// Zero-length files are allowed (they own no bytes).
    ///
    /// # Errors
    /// [`LayoutError::BadPieceLength`] for a zero or oversized piece length,
    /// [`LayoutError::Empty`] when the files hold no byte,
    /// [`LayoutError::LengthOverflow`] / [`LayoutError::TooManyPieces`] for
    /// totals that do not fit.
    pub fn new(piece_length: u64, file_lengths: &[u64]) -> Result<Self, LayoutError> {
        let piece_length = u32::try_from(piece_length)
            .ok()
            .filter(|&p| p > 0 && p <= MAX_PIECE_LENGTH)
            .ok_or(LayoutError::BadPieceLength(piece_length))?;
        let mut file_starts = Vec::with_capacity(file_lengths.len() + 1);
        let mut total: u64 = 0;
        for &len in file_lengths {
            file_starts.push(total);
            total = total.checked_add(len).ok_or(LayoutError::LengthOverflow)?;
        }
        file_starts.push(total);
        if total == 0 {
            return Err(LayoutError::Empty);
        }
        let piece_count = u32::try_from(total.div_ceil(u64::from(piece_length))).map_err(|_| {
            LayoutError::TooManyPieces {
                total,
                piece_length,
            }
        })?;
        Ok(Self {
            total_length: total,
            piece_length,
            piece_count,
            file_starts,
        })
    }

    /// Total length of the torrent's content in bytes.
    pub const fn total_length(&self) -> u64 {
        self.total_length
    }

    /// The nominal piece length in bytes (every piece but possibly the last).
    pub const fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// Number of pieces.
    pub const fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Number of files (including zero-length ones).
    pub fn file_count(&self) -> usize {
        self.file_starts.len() - 1
    }

    /// The byte range of file `file` in the torrent's content (empty for a
    /// zero-length file; `None` past the last file).
    pub fn file_range(&self, file: usize) -> Option<std::ops::Range<u64>> {
        Some(*self.file_starts.get(file)?..*self.file_starts.get(file + 1)?)
    }

    /// The pieces holding bytes of file `file`, first and last inclusive
    /// (`None` for a zero-length file or past the last file).
    pub fn file_pieces(&self, file: usize) -> Option<std::ops::RangeInclusive<u32>> {
        let range = self.file_range(file).filter(|r| !r.is_empty())?;
        let piece_length = u64::from(self.piece_length);
        Some((range.start / piece_length) as u32..=((range.end - 1) / piece_length) as u32)
    }

    /// Validates a piece index received from a peer or a caller.
    ///
    /// # Errors
    /// [`LayoutError::PieceOutOfRange`] when `index >= piece_count`.
    pub const fn piece_index(&self, index: u32) -> Result<PieceIndex, LayoutError> {
        if index < self.piece_count {
            Ok(PieceIndex(index))
        } else {
            Err(LayoutError::PieceOutOfRange {
                index,
                count: self.piece_count,
            })
        }
    }

    /// Every piece index in order.
    pub fn pieces(&self) -> impl ExactSizeIterator<Item = PieceIndex> + use<> {
        (0..self.piece_count).map(PieceIndex)
    }

    /// Size of `piece` in bytes: the piece length, or less for the last piece.
    pub fn piece_size(&self, piece: PieceIndex) -> u32 {
        let start = self.piece_offset(piece);
        (self.total_length - start).min(u64::from(self.piece_length)) as u32
    }

    /// Offset of the first byte of `piece` in the torrent, in bytes.
    pub fn piece_offset(&self, piece: PieceIndex) -> u64 {
        u64::from(piece.0) * u64::from(self.piece_length)
    }

    /// Number of blocks in `piece`.
    pub fn block_count(&self, piece: PieceIndex) -> u32 {
        self.piece_size(piece).div_ceil(BLOCK_SIZE)
    }

    /// The `index`-th block of `piece`, or `None` past the last block.
    pub fn block(&self, piece: PieceIndex, index: u32) -> Option<BlockRef> {
        let size = self.piece_size(piece);
        let offset = index.checked_mul(BLOCK_SIZE).filter(|&o| o < size)?;
        Some(BlockRef {
            piece,
            offset,
            length: (size - offset).min(BLOCK_SIZE),
        })
    }

    /// The blocks of `piece` in order.
    pub fn blocks(&self, piece: PieceIndex) -> impl Iterator<Item = BlockRef> + '_ {
        (0..self.block_count(piece)).filter_map(move |i| self.block(piece, i))
    }

    /// Validates a block range received from a peer (`request`, `piece`,
    /// `cancel`, `reject`): the piece must exist, the length must be
    /// 1..=[`BLOCK_SIZE`] and the range must lie inside the piece.
    ///
    /// # Errors
    /// [`LayoutError::PieceOutOfRange`] or [`LayoutError::BadBlock`].
    pub fn block_ref(&self, piece: u32, offset: u32, length: u32) -> Result<BlockRef, LayoutError> {
        let index = self.piece_index(piece)?;
        let piece_size = self.piece_size(index);
        let fits = length > 0
            && length <= BLOCK_SIZE
            && offset
                .checked_add(length)
                .is_some_and(|end| end <= piece_size);
        if fits {
            Ok(BlockRef {
                piece: index,
                offset,
                length,
            })
        } else {
            Err(LayoutError::BadBlock {
                piece,
                offset,
                length,
                piece_size,
            })
        }
    }

    /// Maps `length` bytes starting at torrent byte `offset` onto the files
    /// that hold them, in order. Zero-length files are skipped. The range is
    /// clamped to the end of the torrent.
    pub fn spans(&self, offset: u64, length: u64) -> impl Iterator<Item = FileSpan> + '_ {
        let end = offset.saturating_add(length).min(self.total_length);
        // The first file whose range contains `offset`: the last start <= offset
        // among non-empty files.
        let first = self.file_starts[1..].partition_point(|&file_end| file_end <= offset);
        (first..self.file_count())
            .map_while(move |file| {
                let start = self.file_starts[file];
                let file_end = self.file_starts[file + 1];
                if start >= end {
                    return None;
                }
                let from = offset.max(start);
                let to = end.min(file_end);
                Some((file, from, to, start))
            })
            .filter(|&(_, from, to, _)| to > from)
            .map(|(file, from, to, start)| FileSpan {
                file,
                offset: from - start,
                length: to - from,
            })
    }

    /// The file spans holding `piece`.
    pub fn piece_spans(&self, piece: PieceIndex) -> impl Iterator<Item = FileSpan> + '_ {
        self.spans(self.piece_offset(piece), u64::from(self.piece_size(piece)))
    }

    /// The file spans holding `block`.
    pub fn block_spans(&self, block: BlockRef) -> impl Iterator<Item = FileSpan> + '_ {
        self.spans(
            self.piece_offset(block.piece) + u64::from(block.offset),
            u64::from(block.length),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn last_piece_and_last_block_are_shorter() {
        let layout = Layout::new(32 * 1024, &[100_000]).unwrap();
        assert_eq!(layout.piece_count(), 4);
        let last = layout.piece_index(3).unwrap();
        assert_eq!(layout.piece_size(last), 100_000 - 3 * 32 * 1024);
        assert_eq!(layout.block_count(last), 1);
        let block = layout.block(last, 0).unwrap();
        assert_eq!(block.length, 100_000 - 3 * 32 * 1024);
        assert!(layout.block(last, 1).is_none());
        assert_eq!(layout.blocks(layout.piece_index(0).unwrap()).count(), 2);
    }

    #[test]
    fn piece_index_is_checked() {
        let layout = Layout::new(16_384, &[16_385]).unwrap();
        assert!(layout.piece_index(1).is_ok());
        assert_eq!(
            layout.piece_index(2),
            Err(LayoutError::PieceOutOfRange { index: 2, count: 2 })
        );
    }

    #[test]
    fn block_ref_rejects_bad_ranges() {
        let layout = Layout::new(65_536, &[65_536 + 1000]).unwrap();
        assert!(layout.block_ref(0, 0, BLOCK_SIZE).is_ok());
        assert!(layout.block_ref(0, 0, BLOCK_SIZE + 1).is_err());
        assert!(layout.block_ref(0, 0, 0).is_err());
        assert!(layout.block_ref(1, 0, 1001).is_err());
        assert!(layout.block_ref(1, 999, 1).is_ok());
        assert!(layout.block_ref(0, u32::MAX, 2).is_err());
        assert!(layout.block_ref(2, 0, 1).is_err());
    }

    #[test]
    fn bad_geometry_is_refused() {
        assert_eq!(Layout::new(0, &[1]), Err(LayoutError::BadPieceLength(0)));
        assert!(Layout::new(u64::from(MAX_PIECE_LENGTH) + 1, &[1]).is_err());
        assert_eq!(Layout::new(16_384, &[0, 0]), Err(LayoutError::Empty));
        assert_eq!(
            Layout::new(16_384, &[u64::MAX, 1]),
            Err(LayoutError::LengthOverflow)
        );
        assert!(matches!(
            Layout::new(1, &[u64::from(u32::MAX) + 1]),
            Err(LayoutError::TooManyPieces { .. })
        ));
    }

    #[test]
    fn spans_cross_file_boundaries_and_skip_empty_files() {
        let layout = Layout::new(16, &[10, 0, 4, 20]).unwrap();
        let spans: Vec<_> = layout.spans(8, 10).collect();
        assert_eq!(
            spans,
            vec![
                FileSpan {
                    file: 0,
                    offset: 8,
                    length: 2
                },
                FileSpan {
                    file: 2,
                    offset: 0,
                    length: 4
                },
                FileSpan {
                    file: 3,
                    offset: 0,
                    length: 4
                },
            ]
        );
        let last = layout.piece_index(2).unwrap();
        assert_eq!(layout.piece_size(last), 2);
        assert_eq!(
            layout.piece_spans(last).collect::<Vec<_>>(),
            vec![FileSpan {
                file: 3,
                offset: 18,
                length: 2
            }]
        );
    }

    proptest! {
        #[test]
        fn pieces_and_blocks_tile_the_torrent(
            files in proptest::collection::vec(0u64..200_000, 1..6),
            shift in 14u32..18,
        ) {
            prop_assume!(files.iter().sum::<u64>() > 0);
            let layout = Layout::new(1u64 << shift, &files).unwrap();
            let mut next = 0u64;
            for piece in layout.pieces() {
                prop_assert_eq!(layout.piece_offset(piece), next);
                let mut in_piece = 0u32;
                for block in layout.blocks(piece) {
                    prop_assert_eq!(block.offset, in_piece);
                    prop_assert!(block.length > 0 && block.length <= BLOCK_SIZE);
                    prop_assert_eq!(layout.block_ref(piece.get(), block.offset, block.length), Ok(block));
                    in_piece += block.length;
                }
                prop_assert_eq!(in_piece, layout.piece_size(piece));
                let span_total: u64 = layout.piece_spans(piece).map(|s| s.length).sum();
                prop_assert_eq!(span_total, u64::from(in_piece));
                next += u64::from(in_piece);
            }
            prop_assert_eq!(next, layout.total_length());
        }

        #[test]
        fn spans_stay_inside_their_files(
            files in proptest::collection::vec(0u64..5_000, 1..8),
            offset in 0u64..40_000,
            length in 0u64..40_000,
        ) {
            prop_assume!(files.iter().sum::<u64>() > 0);
            let layout = Layout::new(1024, &files).unwrap();
            let mut expected = offset.min(layout.total_length());
            for span in layout.spans(offset, length) {
                prop_assert!(span.length > 0);
                prop_assert!(span.offset + span.length <= files[span.file]);
                let start: u64 = files[..span.file].iter().sum::<u64>() + span.offset;
                prop_assert_eq!(start, expected);
                expected += span.length;
            }
            prop_assert_eq!(expected, offset.saturating_add(length).min(layout.total_length()).max(offset.min(layout.total_length())));
        }
    }
}
