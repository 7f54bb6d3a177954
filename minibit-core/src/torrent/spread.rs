//! Initial spreading: until every piece of an initial seed has been
//! reported (HAVE or bitfield) by some peer, the seed serves each piece to
//! one peer only (the one it reserved the piece for, else the first one it
//! sent a block of that piece to) and rejects (BEP 6) other peers' requests
//! for it. Leechers cannot see which pieces other leechers are fetching
//! from the seed, so with plain rarest-first several of them pick the same
//! piece; this way the seed's first copy is a whole copy, each piece going
//! out once, and the leechers trade the rest among themselves.
//!
//! So that leechers rarely ask for a piece kept for another, the seed keeps
//! for each unchoked BEP 6 peer a window of pieces nobody has taken,
//! reserved for it and suggested to it (BEP 6 suggest), topped up as
//! pieces leave it (wholly uploaded to the peer, or reported): a minibit
//! leecher asks a seed with suggestions for those only. The full bitfield
//! stays advertised, so clients that ignore suggestions still get served
//! (or rejected with one more suggestion). A peer that is choked or leaves
//! gives up its window and the pieces it had not reported, so another peer
//! can take them over (the blocks it already got of such a piece go out
//! twice).

use std::collections::BTreeMap;

use crate::bitfield::Bitfield;
use crate::piece::{BlockRef, Layout, PieceIndex};

use super::types::PeerKey;

/// The answer of [`InitialSpread::claim`] to a request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Claim {
    /// The piece is the peer's, or nobody's yet.
    Granted,
    /// The piece was reserved for this other peer (now one piece short).
    TakenFrom(PeerKey),
    /// The piece is another peer's: reject the request.
    Refused,
}

/// Which peer each piece went to, and which pieces the swarm reported,
/// while the seed's first copy is not out.
#[derive(Debug)]
pub(super) struct InitialSpread {
    /// The peer a piece is reserved for, being or was uploaded to.
    owner: Vec<Option<PeerKey>>,
    /// Bytes of each piece still to upload to its owner (the piece's size
    /// while it has none).
    remaining: Vec<u32>,
    /// Pieces some peer reported having.
    seen: Bitfield,
    /// Where the search for the next reservation starts (rotates, so
    /// peers get different pieces).
    cursor: usize,
    /// Pieces with no owner: once every piece is taken, a suggestion is
    /// answered without scanning them all (rejects come in thousands).
    unowned: usize,
    /// Per peer, its window: the pieces reserved for it and suggested
    /// that are neither wholly uploaded to it nor reported.
    windows: BTreeMap<PeerKey, Vec<PieceIndex>>,
    /// The torrent's geometry (piece sizes).
    layout: Layout,
}

impl InitialSpread {
    /// Nothing uploaded or seen yet.
    pub(super) fn new(layout: &Layout) -> Self {
        let count = layout.piece_count();
        Self {
            owner: vec![None; count as usize],
            remaining: layout.pieces().map(|p| layout.piece_size(p)).collect(),
            seen: Bitfield::new(count),
            cursor: 0,
            unowned: layout.piece_count() as usize,
            windows: BTreeMap::new(),
            layout: layout.clone(),
        }
    }

    /// Whether every piece was reported by some peer (spreading is over).
    pub(super) fn is_done(&self) -> bool {
        self.seen.is_complete()
    }

    /// Whether a request of `block` by `peer` may be served. A piece that
    /// belongs to another peer is refused, except one only reserved for
    /// it, none of it uploaded yet: that one is taken over (a client that
    /// ignores suggestions must not hold pieces back from the swarm).
    pub(super) fn claim(&mut self, peer: PeerKey, block: BlockRef) -> Claim {
        let index = block.piece.as_usize();
        let Some(owner) = self.owner[index].filter(|&owner| owner != peer) else {
            return Claim::Granted;
        };
        let untouched = self.remaining[index] == self.layout.piece_size(block.piece);
        if !untouched || !self.leave_window(owner, block.piece) {
            return Claim::Refused;
        }
        self.owner[index] = Some(peer);
        Claim::TakenFrom(owner)
    }

    /// How many pieces `peer`'s window holds.
    pub(super) fn window(&self, peer: PeerKey) -> usize {
        self.windows.get(&peer).map_or(0, Vec::len)
    }

    /// Reserves for `peer` a piece nobody has taken yet that `lacks` says
    /// it lacks, the next one from a rotating start, and adds it to the
    /// peer's window; `None` if there is none.
    pub(super) fn reserve(
        &mut self,
        peer: PeerKey,
        lacks: impl Fn(PieceIndex) -> bool,
    ) -> Option<PieceIndex> {
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
        self.owner[found] = Some(peer);
        self.unowned -= 1;
        let piece = PieceIndex::new_unchecked(found as u32);
        self.windows.entry(peer).or_default().push(piece);
        Some(piece)
    }

    /// `block` was uploaded to `peer`: its piece is the peer's if nobody
    /// had it. `true` when that completed the piece's upload to a peer
    /// whose window held it (the window shrank).
    pub(super) fn uploaded(&mut self, peer: PeerKey, block: BlockRef) -> bool {
        let index = block.piece.as_usize();
        match self.owner[index] {
            None => {
                self.owner[index] = Some(peer);
                self.unowned -= 1;
            }
            // A plain BEP 3 peer cannot be refused: its copy is an extra.
            Some(owner) if owner != peer => return false,
            Some(_) => {}
        }
        let remaining = &mut self.remaining[index];
        *remaining = remaining.saturating_sub(block.length);
        *remaining == 0 && self.leave_window(peer, block.piece)
    }

    /// A peer reported `piece` (HAVE or bitfield); the owner whose window
    /// it left, if it was in one.
    pub(super) fn seen(&mut self, piece: PieceIndex) -> Option<PeerKey> {
        self.seen.set(piece);
        let owner = self.owner[piece.as_usize()]?;
        self.leave_window(owner, piece).then_some(owner)
    }

    /// `peer` was choked or left: the pieces reserved for it or that it
    /// got from us but never reported are free for others.
    pub(super) fn release(&mut self, peer: PeerKey) {
        self.windows.remove(&peer);
        for (index, owner) in self.owner.iter_mut().enumerate() {
            let piece = PieceIndex::new_unchecked(index as u32);
            if *owner == Some(peer) && !self.seen.has(piece) {
                *owner = None;
                self.remaining[index] = self.layout.piece_size(piece);
                self.unowned += 1;
            }
        }
    }

    /// Takes `piece` out of `peer`'s window; `true` if it was there.
    fn leave_window(&mut self, peer: PeerKey, piece: PieceIndex) -> bool {
        let Some(window) = self.windows.get_mut(&peer) else {
            return false;
        };
        let before = window.len();
        window.retain(|&p| p != piece);
        before != window.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_reservations_uploads_reports_and_release() {
        let layout = Layout::new(16_384, &[3 * 16_384]).unwrap();
        let piece = |i| layout.piece_index(i).unwrap();
        let block = |i| layout.block(piece(i), 0).unwrap();
        let (a, b, c) = (PeerKey(0), PeerKey(1), PeerKey(2));
        let mut spread = InitialSpread::new(&layout);
        assert_eq!(spread.reserve(a, |p| p != piece(1)), Some(piece(0)));
        assert_eq!(spread.reserve(b, |p| p != piece(1)), Some(piece(2)));
        assert_eq!((spread.window(a), spread.window(b)), (1, 1));
        // Piece 1 is b's once uploaded to it, outside its window.
        assert_eq!(spread.claim(b, block(1)), Claim::Granted);
        assert!(!spread.uploaded(b, block(1)));
        assert_eq!(spread.claim(a, block(1)), Claim::Refused);
        assert_eq!(spread.reserve(c, |_| true), None, "every piece is taken");
        // Wholly uploaded, piece 0 leaves a's window.
        assert_eq!(spread.claim(a, block(0)), Claim::Granted);
        assert!(spread.uploaded(a, block(0)));
        assert_eq!(spread.window(a), 0);
        assert_eq!(spread.claim(b, block(0)), Claim::Refused);
        // Reported, piece 2 leaves b's window.
        assert_eq!(spread.seen(piece(2)), Some(b));
        assert_eq!(spread.window(b), 0);
        assert_eq!(spread.seen(piece(1)), None, "not in a window");
        // Released, a's unreported piece 0 is free again; b's pieces were
        // reported and stay b's.
        spread.release(a);
        spread.release(b);
        assert_eq!(spread.reserve(c, |_| true), Some(piece(0)));
        assert_eq!(spread.claim(c, block(2)), Claim::Refused);
        assert!(!spread.is_done());
        spread.seen(piece(0));
        assert!(spread.is_done());
    }

    #[test]
    fn a_reserved_piece_is_taken_over_until_a_block_of_it_went_out() {
        let layout = Layout::new(2 * 16_384, &[2 * 16_384]).unwrap();
        let piece = layout.piece_index(0).unwrap();
        let (first, second) = (
            layout.block(piece, 0).unwrap(),
            layout.block(piece, 1).unwrap(),
        );
        let (a, b, plain) = (PeerKey(0), PeerKey(1), PeerKey(2));
        let mut spread = InitialSpread::new(&layout);
        assert_eq!(spread.reserve(a, |_| true), Some(piece));
        // A plain BEP 3 peer served the piece anyway does not count.
        assert!(!spread.uploaded(plain, first));
        assert_eq!(spread.claim(b, first), Claim::TakenFrom(a));
        assert_eq!(spread.window(a), 0);
        assert_eq!(spread.claim(a, second), Claim::Refused);
        assert!(!spread.uploaded(b, first), "not in b's window");
        // Reserved anew, the piece counts from scratch; once a block of it
        // went out it stays.
        spread.release(b);
        assert_eq!(spread.reserve(a, |_| true), Some(piece));
        assert!(!spread.uploaded(a, second));
        assert_eq!(spread.claim(b, first), Claim::Refused);
        assert!(spread.uploaded(a, first));
        assert_eq!(spread.window(a), 0);
    }
}
