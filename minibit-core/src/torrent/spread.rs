//! Initial spreading: until every piece of an initial seed has been
//! reported (HAVE or bitfield) by some peer, the seed serves each piece to
//! one peer only (the first one it sent a block of that piece to) and
//! rejects (BEP 6) other peers' requests for it. Leechers cannot see which
//! pieces other leechers are fetching from the seed, so with plain
//! rarest-first several of them pick the same piece; this way the seed's
//! first copy is a whole copy, each piece going out once, and the leechers
//! trade the rest among themselves. With each reject goes a BEP 6 suggest
//! of a piece nobody has taken yet, so the peer's next request is useful.
//! A peer that is choked or leaves gives up
//! the pieces it had not reported, so another peer can take them over (the
//! blocks it already got of such a piece go out twice).

use crate::bitfield::Bitfield;
use crate::piece::{BlockRef, Layout, PieceIndex};

use super::types::PeerKey;

/// Which peer each piece went to, and which pieces the swarm reported,
/// while the seed's first copy is not out.
#[derive(Debug)]
pub(super) struct InitialSpread {
    /// The peer a piece is being (or was) uploaded to.
    owner: Vec<Option<PeerKey>>,
    /// Pieces some peer reported having.
    seen: Bitfield,
    /// Where the search for the next suggestion starts (rotates, so
    /// peers rejected at the same time get different suggestions).
    cursor: usize,
    /// Pieces with no owner: once every piece is taken, a suggestion is
    /// answered without scanning them all (rejects come in thousands).
    unowned: usize,
}

impl InitialSpread {
    /// Nothing uploaded or seen yet.
    pub(super) fn new(layout: &Layout) -> Self {
        Self {
            owner: vec![None; layout.piece_count() as usize],
            seen: Bitfield::new(layout.piece_count()),
            cursor: 0,
            unowned: layout.piece_count() as usize,
        }
    }

    /// Whether every piece was reported by some peer (spreading is over).
    pub(super) fn is_done(&self) -> bool {
        self.seen.is_complete()
    }

    /// Whether a request of `block` by `peer` must be refused: its piece
    /// belongs to another peer.
    pub(super) fn refuses(&self, peer: PeerKey, block: BlockRef) -> bool {
        self.owner[block.piece.as_usize()].is_some_and(|owner| owner != peer)
    }

    /// A piece nobody has taken yet that `lacks` says the peer lacks, the
    /// next one from a rotating start; `None` if there is none.
    pub(super) fn suggestion(&mut self, lacks: impl Fn(PieceIndex) -> bool) -> Option<PieceIndex> {
        if self.unowned == 0 {
            return None;
        }
        let count = self.owner.len();
        let found = (0..count)
            .map(|step| (self.cursor + step) % count)
            .find(|&piece| {
                self.owner[piece].is_none() && lacks(PieceIndex::new_unchecked(piece as u32))
            })?;
        self.cursor = (found + 1) % count;
        Some(PieceIndex::new_unchecked(found as u32))
    }

    /// A block of `piece` was uploaded to `peer`.
    pub(super) fn uploaded(&mut self, peer: PeerKey, piece: PieceIndex) {
        let owner = &mut self.owner[piece.as_usize()];
        if owner.is_none() {
            *owner = Some(peer);
            self.unowned -= 1;
        }
    }

    /// A peer reported `piece` (HAVE or bitfield).
    pub(super) fn seen(&mut self, piece: PieceIndex) {
        self.seen.set(piece);
    }

    /// `peer` was choked or left: the pieces it got from us but never
    /// reported are free for others.
    pub(super) fn release(&mut self, peer: PeerKey) {
        for (piece, owner) in self.owner.iter_mut().enumerate() {
            if *owner == Some(peer) && !self.seen.has(PieceIndex::new_unchecked(piece as u32)) {
                *owner = None;
                self.unowned += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_follow_ownership_and_release() {
        let layout = Layout::new(16_384, &[3 * 16_384]).unwrap();
        let piece = |i| layout.piece_index(i).unwrap();
        let (a, b) = (PeerKey(0), PeerKey(1));
        let mut spread = InitialSpread::new(&layout);
        assert_eq!(spread.suggestion(|p| p != piece(0)), Some(piece(1)));
        for i in 0..3 {
            spread.uploaded(a, piece(i));
        }
        spread.uploaded(b, piece(1));
        assert!(spread.refuses(b, layout.block(piece(1), 0).unwrap()));
        assert_eq!(spread.suggestion(|_| true), None, "every piece is taken");
        spread.seen(piece(2));
        spread.release(a);
        // Pieces 0 and 1 are free again; piece 2 was reported and stays a's.
        let mut free = vec![
            spread.suggestion(|_| true).unwrap(),
            spread.suggestion(|_| true).unwrap(),
        ];
        free.sort_unstable();
        assert_eq!(free, [piece(0), piece(1)]);
        assert!(spread.refuses(b, layout.block(piece(2), 0).unwrap()));
        spread.uploaded(b, piece(0));
        assert_eq!(spread.suggestion(|_| true), Some(piece(1)));
        spread.uploaded(b, piece(1));
        assert_eq!(spread.suggestion(|_| true), None);
    }
}
