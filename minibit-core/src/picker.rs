//! Rarest-first piece selection (BEP 3 "piece downloading strategy"), with
//! partial pieces first, a random start, random tie-breaks and endgame.
//!
//! [`PiecePicker`] is pure bookkeeping called by the torrent: it counts how
//! many connected peers have each piece (availability), remembers which
//! blocks of the pieces in progress are requested and received, and answers
//! "which blocks should I request from this peer?".

use crate::bitfield::Bitfield;
use crate::piece::{BlockRef, Layout, PieceIndex};
use crate::torrent::PeerKey;

/// Which piece-selection strategy to use (rarest first is the default; the
/// others exist so the simulator can show what rarest-first buys).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum PickerStrategy {
    /// Rarest first with random tie-break (BEP 3 recommendation).
    #[default]
    RarestFirst,
    /// Uniformly random among the pieces the peer has and we lack.
    Random,
    /// Lowest index first.
    Sequential,
}

/// Number of verified pieces below which [`PickerStrategy::RarestFirst`]
/// picks new pieces at random instead (so a newcomer quickly holds
/// something to trade; BEP 3 "random first piece").
pub const RANDOM_FIRST_PIECES: u32 = 4;

/// What a peer has, as the picker needs to know it for a pick.
#[derive(Copy, Clone, Debug)]
pub enum PeerHas<'a> {
    /// A seeder (BEP 6 have-all, or a complete bitfield): every piece.
    All,
    /// The peer's current bitfield (initial bitfield plus every HAVE).
    Pieces(&'a Bitfield),
}

/// What [`PiecePicker::block_received`] found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BlockReceived {
    /// The block is useful and now counts as received.
    New {
        /// Another peer that also has this block requested (endgame
        /// duplicate): send it a `cancel`.
        cancel: Option<PeerKey>,
        /// Every block of the piece is now received: write, then verify it.
        piece_complete: bool,
    },
    /// We already have this block (or its whole piece): drop the data.
    Duplicate,
}

/// Rarest-first piece picker for one torrent.
///
/// # Availability
/// Per-piece counts of connected peers that have the piece. Seeders
/// (BEP 6 have-all, a complete bitfield, or a peer whose HAVEs complete its
/// bitfield) are counted once in a separate `seeds` counter, so they cost
/// O(1); [`PiecePicker::availability`] adds them back.
///
/// # Cost
/// A HAVE is O(1); a bitfield is O(pieces it has); a pick does not scan
/// every piece: the pieces we lack are kept in a vector sorted by
/// availability with bucket boundaries (libtorrent's "writing a fast piece
/// picker"), and a pick walks from the rarest bucket until it found a piece
/// the peer has.
///
/// # Block state and endgame
/// A piece is *fresh* (nothing requested or received), *in progress* (some
/// block requested or received), or *had* (verified; out of the picker).
/// Each block of a piece in progress is free, requested by one or two peers,
/// or received. Endgame ([`PiecePicker::is_endgame`]) starts when every
/// block of every missing piece is requested or received: a pick then
/// returns blocks that exactly one *other* peer has requested, so a block is
/// requested at most twice; [`BlockReceived::New::cancel`] names the peer
/// whose duplicate request to cancel.
#[derive(Clone, Debug)]
pub struct PiecePicker {
    _todo: (),
}

impl PiecePicker {
    /// A picker for `layout`, where `have` holds the pieces already verified
    /// (resume) — those are never picked. `rng_seed` drives every random
    /// choice (tie-breaks, random first pieces).
    pub fn new(layout: &Layout, have: &Bitfield, strategy: PickerStrategy, rng_seed: u64) -> Self {
        let _ = (layout, have, strategy, rng_seed);
        todo!()
    }

    /// The strategy in use.
    pub fn strategy(&self) -> PickerStrategy {
        todo!()
    }

    /// Pieces we have (verified).
    pub fn have(&self) -> &Bitfield {
        todo!()
    }

    /// Copies of `piece` among connected peers (per-piece count plus seeds).
    pub fn availability(&self, piece: PieceIndex) -> u32 {
        let _ = piece;
        todo!()
    }

    /// Connected seeders counted apart (see the type docs).
    pub fn seeds(&self) -> u32 {
        todo!()
    }

    /// A peer's first `bitfield` message (BEP 3). A complete bitfield counts
    /// the peer as a seeder. O(pieces). Call at most once per peer, before
    /// any [`PiecePicker::peer_have`] for it; a peer that sends neither a
    /// bitfield nor have-all (or sends BEP 6 have-none) needs no call.
    pub fn peer_bitfield(&mut self, bitfield: &Bitfield) {
        let _ = bitfield;
        todo!()
    }

    /// A peer's BEP 6 `have all`: counts it as a seeder. O(1).
    pub fn peer_have_all(&mut self) {
        todo!()
    }

    /// A peer's `have` for `piece` it did not have before (the caller
    /// ignores repeated HAVEs). `now_complete` is `true` when this HAVE
    /// completes the peer's bitfield: the peer is then moved to the seeds
    /// counter (O(pieces), once per peer); otherwise O(1).
    pub fn peer_have(&mut self, piece: PieceIndex, now_complete: bool) {
        let _ = (piece, now_complete);
        todo!()
    }

    /// A peer disconnected; `bitfield` is what it had at that moment (a
    /// peer that sent have-all passes a complete bitfield). A complete
    /// bitfield leaves the seeds counter (O(1)), any other is subtracted
    /// piece by piece (O(pieces)). Its requests are *not* released here:
    /// call [`PiecePicker::request_dropped`] for each.
    pub fn peer_removed(&mut self, bitfield: &Bitfield) {
        let _ = bitfield;
        todo!()
    }

    /// Picks up to `max_blocks` blocks to request from `peer`, appends them
    /// to `out` and marks them requested by `peer`. Never a block `peer`
    /// already has requested, of a piece we have, or of a piece `peer`
    /// lacks.
    ///
    /// Order: pieces in `prefer` (BEP 6 suggest / allowed fast) the peer
    /// has; then pieces in progress with free blocks (finish before opening
    /// new ones); then new pieces by the strategy (rarest first: fewest
    /// copies, ties broken at random; random while we have fewer than
    /// [`RANDOM_FIRST_PIECES`]). In endgame, blocks already requested from
    /// exactly one other peer.
    pub fn pick(
        &mut self,
        peer: PeerKey,
        has: PeerHas<'_>,
        max_blocks: usize,
        prefer: &[PieceIndex],
        out: &mut Vec<BlockRef>,
    ) {
        let _ = (peer, has, max_blocks, prefer, out);
        todo!()
    }

    /// Whether endgame is on: every block of every missing piece is
    /// requested or received (and some piece is still missing).
    pub fn is_endgame(&self) -> bool {
        todo!()
    }

    /// `block` arrived from `peer`. A block not requested (a late answer to
    /// a dropped request) is still accepted if we lack it.
    pub fn block_received(&mut self, peer: PeerKey, block: BlockRef) -> BlockReceived {
        let _ = (peer, block);
        todo!()
    }

    /// The request of `block` to `peer` is gone without data (timeout,
    /// choke, reject, cancel, disconnect): the block becomes pickable again
    /// unless another peer still has it requested. Unknown requests are ignored.
    pub fn request_dropped(&mut self, peer: PeerKey, block: BlockRef) {
        let _ = (peer, block);
        todo!()
    }

    /// `piece` passed its SHA-1 check: it leaves the picker for good.
    pub fn piece_verified(&mut self, piece: PieceIndex) {
        let _ = piece;
        todo!()
    }

    /// `piece` failed its SHA-1 check: every block of it is pickable again.
    pub fn piece_failed(&mut self, piece: PieceIndex) {
        let _ = piece;
        todo!()
    }
}
