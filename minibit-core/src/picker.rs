//! Rarest-first piece selection (BEP 3 "piece downloading strategy"), with
//! partial pieces first, a random start, random tie-breaks and endgame.
//!
//! [`PiecePicker`] is pure bookkeeping called by the torrent: it counts how
//! many connected peers have each piece (availability), remembers which
//! blocks of the pieces in progress are requested and received, and answers
//! "which blocks should I request from this peer?".

use std::collections::BTreeSet;
use std::num::NonZeroU32;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bitfield::Bitfield;
use crate::id::PeerKey;
use crate::piece::{BLOCK_SIZE, BlockRef, Layout, PieceIndex};
use crate::priority::Priority;

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
/// something to trade; BEP 3 "random first piece"), except from a seeder:
/// a seeder is where the rarest pieces come from, and a random piece from
/// it is likely one the swarm already has (in a flash crowd the seed would
/// upload the same pieces again and again).
pub const RANDOM_FIRST_PIECES: u32 = 4;

/// What a peer has, as the picker needs to know it for a pick.
#[derive(Copy, Clone, Debug)]
pub enum PeerHas<'a> {
    /// A seeder (BEP 6 have-all, or a complete bitfield): every piece.
    All,
    /// The peer's current bitfield (initial bitfield plus every HAVE).
    Pieces(&'a Bitfield),
    /// Only these pieces may be asked for (a peer that chokes us but
    /// allows these pieces fast, BEP 6): a short list, checked by a scan.
    Listed(&'a [PieceIndex]),
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
/// every piece. The pieces we lack are kept in one vector sorted into
/// buckets with boundaries (libtorrent's "writing a fast piece picker"):
/// two buckets per availability level, the pieces in progress then the
/// fresh ones. A HAVE moves a piece up one level: the last element of its
/// bucket takes its place and the boundary moves by one, twice (the piece
/// itself is written once, at its new place). A pick for a new piece walks
/// only the fresh buckets, from the rarest non-empty one (a hint skips the
/// empty low levels), and stops at the first piece the peer has, probing
/// the peer's bitfield eight candidates at a time so the cache misses
/// overlap; for a seeder that is the first probe. Verifying a piece
/// removes it from the vector in O(number of buckets), once per piece.
///
/// # Random tie-break
/// The vector is shuffled at construction, and each pick starts at a random
/// position inside the bucket and walks it cyclically, so among equally
/// rare pieces the one picked is random (uniform when every piece of the
/// bucket is eligible) without scanning the bucket. With the random-first
/// rule and [`PickerStrategy::Random`] the walk covers the whole vector
/// from a random start, which for a peer with few pieces may visit many.
///
/// # Priorities (selective download)
/// Every piece starts at [`Priority::Normal`]; [`PiecePicker::set_priority`]
/// changes one. A skipped piece we lack leaves `order` (as a verified one
/// does, in O(number of buckets)) and is never picked; wanting it again puts
/// it back. A piece already in progress when it is skipped is finished
/// (its received blocks are not thrown away); if its last request is
/// dropped before any block arrived it leaves `order` instead of becoming
/// fresh. High pieces are also listed apart: a pick for a new piece first
/// takes the rarest fresh high piece the peer has (a scan of that list,
/// random start, so ties are random), and only then walks the buckets.
/// With no high piece the pick costs what it did.
///
/// # Block state and endgame
/// A piece is *fresh* (nothing requested or received), *in progress* (some
/// block requested or received), or *had* (verified; out of the picker).
/// Each block of a piece in progress is free, requested by one or two peers,
/// or received. A piece in progress whose last request is dropped before
/// any block arrived is fresh again. Endgame ([`PiecePicker::is_endgame`])
/// starts when every block of every missing piece is requested or received:
/// a pick then returns blocks that exactly one *other* peer has requested,
/// so a block is requested at most twice; [`BlockReceived::New::cancel`]
/// names the peer whose duplicate request to cancel.
#[derive(Clone, Debug)]
pub struct PiecePicker {
    layout: Layout,
    strategy: PickerStrategy,
    rng: ChaCha8Rng,
    have: Bitfield,
    have_count: u32,
    /// Per piece: availability, position in `order`, slot in `partials`.
    pieces: Vec<PieceEntry>,
    /// Pieces we lack, sorted by bucket key (see [`PiecePicker::key`]).
    order: Vec<u32>,
    /// Bucket `k` is `order[bounds[k]..bounds[k + 1]]`; the last entry is
    /// `order.len()`.
    bounds: Vec<u32>,
    /// No fresh bucket below this (odd) bucket holds a piece: picks start
    /// here instead of walking the empty low levels. Lowered when a piece
    /// enters a lower fresh bucket, raised lazily by picks.
    first_fresh: usize,
    seeds: u32,
    /// Pieces in progress.
    partials: Vec<Partial>,
    /// Pieces in progress that have a free block.
    open: Vec<u32>,
    /// Lacked pieces that are not in progress.
    fresh: u32,
    /// Block-state vectors of finished pieces, reused for new pieces in
    /// progress (at most [`SPARE_BLOCK_VECTORS`]), so a pick rarely allocates.
    spare_blocks: Vec<Vec<BlockState>>,
    /// Every piece below this index is out of `order` (sequential strategy).
    sequential_cursor: u32,
    /// Pieces wanted (priority above [`Priority::Skip`]).
    wanted: Bitfield,
    /// Pieces of priority [`Priority::High`].
    high: Bitfield,
    /// High pieces we may still lack; entries that were verified or lost
    /// their priority are dropped lazily by the next pick.
    high_list: Vec<u32>,
    /// Peers on parole (see [`PiecePicker::set_parole`]).
    parole: BTreeSet<PeerKey>,
}

const NONE: u32 = u32::MAX;

/// Most block-state vectors kept for reuse.
const SPARE_BLOCK_VECTORS: usize = 256;

/// Pieces of a bucket whose presence in the peer's bitfield is probed at once.
const SCAN_BATCH: usize = 8;

#[derive(Copy, Clone, Debug)]
struct PieceEntry {
    avail: u32,
    /// Position in `order`, `NONE` once had.
    pos: u32,
    /// Slot in `partials`, `NONE` unless in progress.
    partial: u32,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum BlockState {
    Free,
    /// Requested from one peer, or (endgame) from two.
    Requested(Requester, Option<Requester>),
    Received,
}

/// A peer a block is requested from, stored in 4 bytes (a piece's block
/// states are written on every pick; the slab keys of connected peers fit).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Requester(NonZeroU32);

impl Requester {
    fn of(peer: PeerKey) -> Self {
        Self(NonZeroU32::MIN.saturating_add(peer.0 as u32))
    }

    fn key(self) -> PeerKey {
        PeerKey(self.0.get() as usize - 1)
    }
}

#[derive(Clone, Debug)]
struct Partial {
    piece: u32,
    blocks: Vec<BlockState>,
    free: u32,
    requested: u32,
    received: u32,
    /// Position in `open`, `NONE` when no block is free.
    open_pos: u32,
    /// The peer on parole that started this piece: while it stays on
    /// parole, no other peer is given a block of it, and it is given no
    /// block of another peer's piece.
    owner: Option<PeerKey>,
}

impl PeerHas<'_> {
    fn has(self, piece: u32) -> bool {
        match self {
            PeerHas::All => true,
            PeerHas::Pieces(bitfield) => bitfield.has(PieceIndex::new_unchecked(piece)),
            PeerHas::Listed(pieces) => pieces.contains(&PieceIndex::new_unchecked(piece)),
        }
    }
}

impl PiecePicker {
    /// A picker for `layout`, where `have` holds the pieces already verified
    /// (resume) — those are never picked. `rng_seed` drives every random
    /// choice (tie-breaks, random first pieces).
    pub fn new(layout: &Layout, have: &Bitfield, strategy: PickerStrategy, rng_seed: u64) -> Self {
        let count = layout.piece_count();
        let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
        let mut have_bits = Bitfield::new(count);
        for piece in have.iter_set().filter(|p| p.get() < count) {
            have_bits.set(piece);
        }
        let mut order: Vec<u32> = have_bits.iter_unset().map(PieceIndex::get).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let mut pieces = vec![
            PieceEntry {
                avail: 0,
                pos: NONE,
                partial: NONE,
            };
            count as usize
        ];
        for (pos, &piece) in order.iter().enumerate() {
            pieces[piece as usize].pos = pos as u32;
        }
        let fresh = order.len() as u32;
        Self {
            layout: layout.clone(),
            strategy,
            rng,
            have_count: have_bits.count(),
            have: have_bits,
            pieces,
            bounds: vec![0, 0, fresh],
            first_fresh: 1,
            order,
            seeds: 0,
            partials: Vec::new(),
            open: Vec::new(),
            fresh,
            spare_blocks: Vec::new(),
            sequential_cursor: 0,
            wanted: Bitfield::full(count),
            high: Bitfield::new(count),
            high_list: Vec::new(),
            parole: BTreeSet::new(),
        }
    }

    /// Puts `peer` on parole (`on`) or takes it off (also when it
    /// disconnects): a peer on parole downloads whole pieces alone, so a
    /// piece that then fails its hash check has exactly one sender to
    /// blame (libtorrent's parole mode). Pieces it already shares keep
    /// their blocks.
    pub fn set_parole(&mut self, peer: PeerKey, on: bool) {
        if on {
            self.parole.insert(peer);
        } else {
            self.parole.remove(&peer);
        }
    }

    /// Whether `peer` may be given blocks of the piece in progress in
    /// `slot`: a piece owned by a peer on parole is that peer's alone, and
    /// a peer on parole gets only its own pieces or ones nobody has
    /// requests in (blocks received from peers that left may stay: the
    /// piece must still be finishable when only paroled peers remain).
    fn may_share(&self, slot: usize, peer: PeerKey) -> bool {
        let partial = &self.partials[slot];
        let owner = partial.owner.filter(|o| self.parole.contains(o));
        if self.parole.contains(&peer) {
            owner == Some(peer) || (owner.is_none() && partial.requested == 0)
        } else {
            owner.is_none_or(|o| o == peer)
        }
    }

    /// Whether `peer` may be given blocks of `piece` (one not in progress
    /// always).
    fn may_take(&self, piece: u32, peer: PeerKey) -> bool {
        match self.pieces[piece as usize].partial {
            NONE => true,
            slot => self.may_share(slot as usize, peer),
        }
    }

    /// Sets the priority of `piece` (initially [`Priority::Normal`]); see
    /// the type docs. O(number of buckets) when the piece enters or leaves
    /// the picker, else O(1). An out-of-range piece is ignored.
    pub fn set_priority(&mut self, piece: PieceIndex, priority: Priority) {
        let Some(&entry) = self.pieces.get(piece.as_usize()) else {
            return;
        };
        if priority == Priority::High {
            if self.high.set(piece) && !self.have.has(piece) {
                self.high_list.push(piece.get());
            }
        } else {
            self.high.clear(piece);
        }
        let wanted = priority.is_wanted();
        if wanted == self.wanted.has(piece) {
            return;
        }
        if wanted {
            self.wanted.set(piece);
            if entry.pos == NONE && !self.have.has(piece) {
                self.insert_into_order(piece.get());
                self.fresh += 1;
            }
        } else {
            self.wanted.clear(piece);
            if entry.pos != NONE && entry.partial == NONE {
                self.remove_from_order(piece.get());
                self.fresh -= 1;
            }
        }
    }

    /// The priority of `piece` ([`Priority::Skip`] past the end).
    pub fn priority(&self, piece: PieceIndex) -> Priority {
        if piece.get() >= self.layout.piece_count() {
            Priority::Skip
        } else if self.high.has(piece) {
            Priority::High
        } else if self.wanted.has(piece) {
            Priority::Normal
        } else {
            Priority::Skip
        }
    }

    /// The wanted pieces (any priority but [`Priority::Skip`]), had or not.
    pub fn wanted(&self) -> &Bitfield {
        &self.wanted
    }

    /// The strategy in use.
    pub fn strategy(&self) -> PickerStrategy {
        self.strategy
    }

    /// Pieces we have (verified).
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Copies of `piece` among connected peers (per-piece count plus seeds).
    pub fn availability(&self, piece: PieceIndex) -> u32 {
        self.pieces
            .get(piece.as_usize())
            .map_or(0, |entry| entry.avail + self.seeds)
    }

    /// The pieces in progress (some block requested or received, not
    /// verified), in no particular order.
    pub fn in_progress(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        self.partials
            .iter()
            .map(|partial| PieceIndex::new_unchecked(partial.piece))
    }

    /// Connected seeders counted apart (see the type docs).
    pub fn seeds(&self) -> u32 {
        self.seeds
    }

    /// A peer's first `bitfield` message (BEP 3). A complete bitfield counts
    /// the peer as a seeder. O(pieces). Call at most once per peer, before
    /// any [`PiecePicker::peer_have`] for it; a peer that sends neither a
    /// bitfield nor have-all (or sends BEP 6 have-none) needs no call.
    pub fn peer_bitfield(&mut self, bitfield: &Bitfield) {
        if bitfield.len() != self.layout.piece_count() {
            return;
        }
        if bitfield.is_complete() {
            self.seeds += 1;
        } else {
            for piece in bitfield.iter_set() {
                self.increment(piece.get());
            }
        }
    }

    /// A peer's BEP 6 `have all`: counts it as a seeder. O(1).
    pub fn peer_have_all(&mut self) {
        self.seeds += 1;
    }

    /// A peer's `have` for `piece` it did not have before (the caller
    /// ignores repeated HAVEs). `now_complete` is `true` when this HAVE
    /// completes the peer's bitfield: the peer is then moved to the seeds
    /// counter (O(pieces), once per peer); otherwise O(1).
    pub fn peer_have(&mut self, piece: PieceIndex, now_complete: bool) {
        if piece.get() >= self.layout.piece_count() {
            return;
        }
        if now_complete {
            // Every piece but this one is counted for the peer: uncount them.
            for other in 0..self.layout.piece_count() {
                if other != piece.get() {
                    self.decrement(other);
                }
            }
            self.seeds += 1;
        } else {
            self.increment(piece.get());
        }
    }

    /// A peer disconnected; `bitfield` is what it had at that moment (a
    /// peer that sent have-all passes a complete bitfield). A complete
    /// bitfield leaves the seeds counter (O(1)), any other is subtracted
    /// piece by piece (O(pieces)). Its requests are *not* released here:
    /// call [`PiecePicker::request_dropped`] for each.
    pub fn peer_removed(&mut self, bitfield: &Bitfield) {
        if bitfield.len() != self.layout.piece_count() {
            return;
        }
        if bitfield.is_complete() {
            self.seeds = self.seeds.saturating_sub(1);
        } else {
            for piece in bitfield.iter_set() {
                self.decrement(piece.get());
            }
        }
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
    /// [`RANDOM_FIRST_PIECES`], except from a seeder). In endgame, blocks already requested from
    /// exactly one other peer. With [`PeerHas::Listed`] the listed pieces
    /// are taken in the order given (after `prefer`), without a walk over
    /// the other pieces.
    pub fn pick(
        &mut self,
        peer: PeerKey,
        has: PeerHas<'_>,
        max_blocks: usize,
        prefer: &[PieceIndex],
        out: &mut Vec<BlockRef>,
    ) {
        let goal = out.len() + max_blocks;
        let count = self.layout.piece_count();
        let listed = match has {
            PeerHas::Listed(pieces) => pieces,
            _ => &[],
        };
        for piece in prefer.iter().chain(listed) {
            if out.len() >= goal {
                return;
            }
            let piece = piece.get();
            if piece < count
                && self.pieces[piece as usize].pos != NONE
                && has.has(piece)
                && self.may_take(piece, peer)
            {
                self.take_free_blocks(piece, peer, goal, out);
            }
        }
        if matches!(has, PeerHas::Listed(_)) {
            if out.len() < goal && self.is_endgame() {
                self.take_endgame_blocks(peer, has, goal, out);
            }
            return;
        }
        let mut i = 0;
        while i < self.open.len() && out.len() < goal {
            let piece = self.open[i];
            if has.has(piece) && self.may_take(piece, peer) {
                self.take_free_blocks(piece, peer, goal, out);
            }
            if self.open.get(i) == Some(&piece) {
                i += 1;
            }
        }
        while out.len() < goal {
            let Some(piece) = self.pick_new_piece(has) else {
                break;
            };
            self.take_free_blocks(piece, peer, goal, out);
        }
        if out.len() < goal && self.is_endgame() {
            self.take_endgame_blocks(peer, has, goal, out);
        }
    }

    /// Whether endgame is on: every block of every missing piece is
    /// requested or received (and some piece is still missing).
    pub fn is_endgame(&self) -> bool {
        self.fresh == 0 && self.open.is_empty() && !self.partials.is_empty()
    }

    /// `block` arrived from `peer`. A block not requested (a late answer to
    /// a dropped request) is still accepted if we lack it.
    pub fn block_received(&mut self, peer: PeerKey, block: BlockRef) -> BlockReceived {
        let piece = block.piece.get();
        let index = block.index_in_piece() as usize;
        if piece >= self.layout.piece_count()
            || self.pieces[piece as usize].pos == NONE
            || index >= self.layout.block_count(block.piece) as usize
        {
            return BlockReceived::Duplicate;
        }
        let slot = self.partial_slot(piece);
        let partial = &mut self.partials[slot];
        let cancel = match partial.blocks[index] {
            BlockState::Received => return BlockReceived::Duplicate,
            BlockState::Free => {
                partial.free -= 1;
                None
            }
            BlockState::Requested(first, second) => {
                partial.requested -= 1;
                if first == Requester::of(peer) {
                    second.map(Requester::key)
                } else {
                    Some(first.key())
                }
            }
        };
        partial.blocks[index] = BlockState::Received;
        partial.received += 1;
        let piece_complete = partial.received as usize == partial.blocks.len();
        if partial.free == 0 {
            self.close(slot);
        }
        BlockReceived::New {
            cancel,
            piece_complete,
        }
    }

    /// The request of `block` to `peer` is gone without data (timeout,
    /// choke, reject, cancel, disconnect): the block becomes pickable again
    /// unless another peer still has it requested. Unknown requests are ignored.
    pub fn request_dropped(&mut self, peer: PeerKey, block: BlockRef) {
        let Some(entry) = self.pieces.get(block.piece.as_usize()) else {
            return;
        };
        if entry.partial == NONE {
            return;
        }
        let slot = entry.partial as usize;
        let partial = &mut self.partials[slot];
        let Some(state) = partial.blocks.get_mut(block.index_in_piece() as usize) else {
            return;
        };
        let peer = Requester::of(peer);
        match *state {
            BlockState::Requested(first, Some(second)) if first == peer => {
                *state = BlockState::Requested(second, None);
            }
            BlockState::Requested(first, Some(second)) if second == peer => {
                *state = BlockState::Requested(first, None);
            }
            BlockState::Requested(first, None) if first == peer => {
                *state = BlockState::Free;
                partial.requested -= 1;
                partial.free += 1;
                if partial.requested == 0 && partial.received == 0 {
                    self.abandon_partial(slot);
                } else if partial.open_pos == NONE {
                    self.reopen(slot);
                }
            }
            _ => {}
        }
    }

    /// `piece` passed its SHA-1 check: it leaves the picker for good.
    pub fn piece_verified(&mut self, piece: PieceIndex) {
        let Some(entry) = self.pieces.get(piece.as_usize()) else {
            return;
        };
        if self.have.has(piece) {
            return;
        }
        if entry.partial != NONE {
            self.remove_partial(entry.partial as usize);
        } else if entry.pos != NONE {
            self.fresh -= 1;
        }
        self.have.set(piece);
        self.have_count += 1;
        self.remove_from_order(piece.get());
    }

    /// `piece` failed its SHA-1 check: every block of it is pickable again.
    pub fn piece_failed(&mut self, piece: PieceIndex) {
        let Some(entry) = self.pieces.get(piece.as_usize()) else {
            return;
        };
        if entry.partial != NONE {
            self.abandon_partial(entry.partial as usize);
        }
    }

    /// A piece in progress goes back to fresh, or, skipped meanwhile,
    /// leaves `order`.
    fn abandon_partial(&mut self, slot: usize) {
        let piece = self.partials[slot].piece;
        self.remove_partial(slot);
        if self.wanted.has(PieceIndex::new_unchecked(piece)) {
            self.fresh += 1;
        } else {
            self.remove_from_order(piece);
        }
    }

    /// The bucket of a piece in `order`: `2 * availability` while it is in
    /// progress, `2 * availability + 1` while fresh. So each availability
    /// level holds its pieces in progress first, then its fresh pieces, and
    /// a pick for a new piece looks only at the fresh half of each level.
    fn key(&self, piece: u32) -> usize {
        let entry = self.pieces[piece as usize];
        2 * entry.avail as usize + usize::from(entry.partial == NONE)
    }

    /// Moves `piece` (in `order`) from bucket `from` to bucket `to`, one
    /// boundary at a time: going up, it swaps with the last element of its
    /// bucket and that bucket ends one position earlier; going down, with
    /// the first element, and the bucket starts one position later. O(|to - from|).
    fn move_bucket(&mut self, piece: u32, from: usize, to: usize) {
        let mut pos = self.pieces[piece as usize].pos;
        if pos == NONE {
            return;
        }
        while self.bounds.len() < to + 2 {
            self.bounds.push(self.order.len() as u32);
        }
        if to % 2 == 1 {
            self.first_fresh = self.first_fresh.min(to);
        }
        // `piece` is written once at its final position: each step only
        // moves the boundary element into the hole, so the piece's old slot
        // is never read (one cache miss fewer per HAVE on large torrents).
        for bucket in from..to {
            let last = self.bounds[bucket + 1] - 1;
            self.fill(pos, last);
            self.bounds[bucket + 1] = last;
            pos = last;
        }
        for bucket in (to + 1..=from).rev() {
            let first = self.bounds[bucket];
            self.fill(pos, first);
            self.bounds[bucket] = first + 1;
            pos = first;
        }
        self.order[pos as usize] = piece;
        self.pieces[piece as usize].pos = pos;
    }

    /// Moves the piece at `order[from]` into the hole at `order[hole]`.
    fn fill(&mut self, hole: u32, from: u32) {
        if hole != from {
            let moved = self.order[from as usize];
            self.order[hole as usize] = moved;
            self.pieces[moved as usize].pos = hole;
        }
    }

    /// One more copy of `piece`. O(1).
    fn increment(&mut self, piece: u32) {
        let from = self.key(piece);
        self.pieces[piece as usize].avail += 1;
        self.move_bucket(piece, from, from + 2);
    }

    /// One copy fewer of `piece`. O(1).
    fn decrement(&mut self, piece: u32) {
        if self.pieces[piece as usize].avail == 0 {
            return;
        }
        let from = self.key(piece);
        self.pieces[piece as usize].avail -= 1;
        self.move_bucket(piece, from, from - 2);
    }

    /// Removes `piece` from `order` by walking it up through every higher
    /// bucket to the end. O(number of buckets), once per piece.
    fn remove_from_order(&mut self, piece: u32) {
        if self.pieces[piece as usize].pos == NONE {
            return;
        }
        // A bucket past the last one: the piece ends as its only element, at the end.
        let past = self.bounds.len() - 1;
        self.move_bucket(piece, self.key(piece), past);
        self.bounds.pop();
        self.order.pop();
        self.pieces[piece as usize].pos = NONE;
    }

    /// Puts `piece` (not in `order`, not in progress) back into `order`:
    /// appended to the last bucket, then moved down to its own.
    /// O(number of buckets).
    fn insert_into_order(&mut self, piece: u32) {
        let last = self.bounds.len() - 1;
        self.pieces[piece as usize].pos = self.order.len() as u32;
        self.order.push(piece);
        self.bounds[last] += 1;
        let to = self.key(piece);
        self.move_bucket(piece, last - 1, to);
        self.sequential_cursor = self.sequential_cursor.min(piece);
    }

    fn is_fresh(&self, piece: u32) -> bool {
        self.pieces[piece as usize].partial == NONE
    }

    /// A fresh piece `has` lists, by the strategy; `None` when there is none.
    fn pick_new_piece(&mut self, has: PeerHas<'_>) -> Option<u32> {
        if self.fresh == 0 {
            return None;
        }
        if !self.high_list.is_empty()
            && let Some(piece) = self.pick_high(has)
        {
            return Some(piece);
        }
        match self.strategy {
            PickerStrategy::Sequential => self.pick_sequential(has),
            PickerStrategy::Random => self.pick_random(has),
            PickerStrategy::RarestFirst
                if self.have_count < RANDOM_FIRST_PIECES && !matches!(has, PeerHas::All) =>
            {
                self.pick_random(has)
            }
            PickerStrategy::RarestFirst => self.pick_rarest(has),
        }
    }

    /// The rarest fresh high piece `has` lists (ties: the first from a
    /// random start); drops entries that are had or no longer high.
    fn pick_high(&mut self, has: PeerHas<'_>) -> Option<u32> {
        let mut i = 0;
        while i < self.high_list.len() {
            let piece = PieceIndex::new_unchecked(self.high_list[i]);
            if self.have.has(piece) || !self.high.has(piece) {
                self.high_list.swap_remove(i);
            } else {
                i += 1;
            }
        }
        let len = self.high_list.len();
        if len == 0 {
            return None;
        }
        let start = self.rng.random_range(0..len);
        let mut best: Option<(u32, u32)> = None;
        for k in 0..len {
            let piece = self.high_list[(start + k) % len];
            let avail = self.pieces[piece as usize].avail;
            if self.is_fresh(piece)
                && self.pieces[piece as usize].pos != NONE
                && best.is_none_or(|(_, a)| avail < a)
                && has.has(piece)
            {
                best = Some((piece, avail));
            }
        }
        best.map(|(piece, _)| piece)
    }

    fn pick_sequential(&mut self, has: PeerHas<'_>) -> Option<u32> {
        let count = self.layout.piece_count();
        while self.sequential_cursor < count
            && self.pieces[self.sequential_cursor as usize].pos == NONE
        {
            self.sequential_cursor += 1;
        }
        (self.sequential_cursor..count).find(|&piece| {
            self.pieces[piece as usize].pos != NONE && self.is_fresh(piece) && has.has(piece)
        })
    }

    fn pick_random(&mut self, has: PeerHas<'_>) -> Option<u32> {
        self.scan_from_random(0, self.order.len() as u32, has)
    }

    /// Walks the fresh buckets from the rarest; inside a bucket, from a
    /// random position cyclically. For a peer counted per piece, every piece
    /// it has has a per-piece count of at least one, so level 0 (pieces only
    /// seeders have) is skipped after one probe.
    ///
    /// The candidates are gathered in walk order, [`SCAN_BATCH`] at a time
    /// and across bucket boundaries, and the peer's bitfield is probed for
    /// the whole batch without branching on each answer: on a large torrent
    /// the cache misses into `order` and into the bitfield then overlap
    /// instead of queueing one after the other. The first hit of a batch is
    /// the first hit of the walk, so the result is the same as probing one
    /// candidate at a time.
    fn pick_rarest(&mut self, has: PeerHas<'_>) -> Option<u32> {
        while self.first_fresh + 1 < self.bounds.len()
            && self.bounds[self.first_fresh] == self.bounds[self.first_fresh + 1]
        {
            self.first_fresh += 2;
        }
        let last_bucket = self.bounds.len() - 1;
        let PeerHas::Pieces(bitfield) = has else {
            // A seeder has every piece: the random start of the rarest
            // non-empty fresh bucket.
            let bucket = (self.first_fresh..last_bucket)
                .step_by(2)
                .find(|&b| self.bounds[b] < self.bounds[b + 1])?;
            let pos = self
                .rng
                .random_range(self.bounds[bucket]..self.bounds[bucket + 1]);
            return Some(self.order[pos as usize]);
        };
        // The walk: the current bucket `order[start..end]`, the next
        // position in it and how many of its pieces are still to visit.
        let (mut bucket, mut start, mut end, mut pos, mut left) = (self.first_fresh, 0, 0, 0, 0);
        let mut batch = [0u32; SCAN_BATCH];
        loop {
            let mut filled = 0;
            while filled < SCAN_BATCH {
                if left == 0 {
                    if bucket >= last_bucket {
                        break;
                    }
                    (start, end) = (self.bounds[bucket], self.bounds[bucket + 1]);
                    let level_zero = bucket == 1;
                    bucket += 2;
                    if start == end
                        || (level_zero
                            && !bitfield.has(PieceIndex::new_unchecked(self.order[start as usize])))
                    {
                        continue;
                    }
                    left = end - start;
                    // The rarest levels of a large torrent hold one piece
                    // or a few: no draw for a single one.
                    pos = if left == 1 {
                        start
                    } else {
                        self.rng.random_range(start..end)
                    };
                }
                batch[filled] = self.order[pos as usize];
                filled += 1;
                left -= 1;
                pos = if pos + 1 == end { start } else { pos + 1 };
            }
            if filled == 0 {
                return None;
            }
            let mut hits = 0u32;
            for (k, &piece) in batch[..filled].iter().enumerate() {
                hits |= u32::from(bitfield.has(PieceIndex::new_unchecked(piece))) << k;
            }
            if hits != 0 {
                return Some(batch[hits.trailing_zeros() as usize]);
            }
        }
    }

    /// The first fresh piece `has` lists in `order[start..end]`, walking
    /// cyclically from a random position.
    fn scan_from_random(&mut self, start: u32, end: u32, has: PeerHas<'_>) -> Option<u32> {
        if start >= end {
            return None;
        }
        let first = self.rng.random_range(start..end);
        (first..end)
            .chain(start..first)
            .map(|pos| self.order[pos as usize])
            .find(|&piece| self.is_fresh(piece) && has.has(piece))
    }

    /// The slot of `piece` in `partials`, creating it (fresh -> in progress).
    fn partial_slot(&mut self, piece: u32) -> usize {
        let entry = self.pieces[piece as usize];
        if entry.partial != NONE {
            return entry.partial as usize;
        }
        self.start_piece(piece, None)
    }

    /// Puts the fresh `piece` in progress with every block free, or with
    /// every block requested by `requested_by`; returns its slot.
    fn start_piece(&mut self, piece: u32, requested_by: Option<PeerKey>) -> usize {
        let blocks = self.layout.block_count(PieceIndex::new_unchecked(piece));
        let (state, free, requested) = match requested_by {
            None => (BlockState::Free, blocks, 0),
            Some(peer) => (BlockState::Requested(Requester::of(peer), None), 0, blocks),
        };
        let mut states = self.spare_blocks.pop().unwrap_or_default();
        states.clear();
        states.resize(blocks as usize, state);
        let slot = self.partials.len();
        self.partials.push(Partial {
            piece,
            blocks: states,
            free,
            requested,
            received: 0,
            open_pos: NONE,
            owner: requested_by.filter(|p| self.parole.contains(p)),
        });
        let from = self.key(piece);
        self.pieces[piece as usize].partial = slot as u32;
        self.move_bucket(piece, from, from - 1);
        self.fresh -= 1;
        if free > 0 {
            self.reopen(slot);
        }
        slot
    }

    /// Requests free blocks of `piece` for `peer` until `out` holds `goal` blocks.
    fn take_free_blocks(
        &mut self,
        piece: u32,
        peer: PeerKey,
        goal: usize,
        out: &mut Vec<BlockRef>,
    ) {
        let index = PieceIndex::new_unchecked(piece);
        let size = self.layout.piece_size(index);
        if self.is_fresh(piece) && goal - out.len() >= self.layout.block_count(index) as usize {
            // The whole piece goes to this peer: no block-by-block walk.
            self.start_piece(piece, Some(peer));
            out.extend(
                (0..size)
                    .step_by(BLOCK_SIZE as usize)
                    .map(|offset| BlockRef {
                        piece: index,
                        offset,
                        length: (size - offset).min(BLOCK_SIZE),
                    }),
            );
            return;
        }
        let slot = self.partial_slot(piece);
        if self.parole.contains(&peer) {
            self.partials[slot].owner = Some(peer);
        }
        let partial = &mut self.partials[slot];
        for (offset, state) in (0..size)
            .step_by(BLOCK_SIZE as usize)
            .zip(&mut partial.blocks)
        {
            if out.len() >= goal || partial.free == 0 {
                break;
            }
            if *state == BlockState::Free {
                *state = BlockState::Requested(Requester::of(peer), None);
                partial.free -= 1;
                partial.requested += 1;
                out.push(BlockRef {
                    piece: index,
                    offset,
                    length: (size - offset).min(BLOCK_SIZE),
                });
            }
        }
        if partial.free == 0 {
            self.close(slot);
        }
    }

    /// Endgame: blocks requested from exactly one other peer, of pieces `has` lists.
    fn take_endgame_blocks(
        &mut self,
        peer: PeerKey,
        has: PeerHas<'_>,
        goal: usize,
        out: &mut Vec<BlockRef>,
    ) {
        let key = peer;
        let peer = Requester::of(peer);
        for slot in 0..self.partials.len() {
            if !self.may_share(slot, key) {
                continue;
            }
            let partial = &mut self.partials[slot];
            if !has.has(partial.piece) {
                continue;
            }
            for (index, state) in partial.blocks.iter_mut().enumerate() {
                if out.len() >= goal {
                    return;
                }
                if let BlockState::Requested(first, None) = *state
                    && first != peer
                {
                    *state = BlockState::Requested(first, Some(peer));
                    if let Some(block) = self
                        .layout
                        .block(PieceIndex::new_unchecked(partial.piece), index as u32)
                    {
                        out.push(block);
                    }
                }
            }
        }
    }

    /// Adds a piece in progress to the open list (it has a free block).
    fn reopen(&mut self, slot: usize) {
        self.partials[slot].open_pos = self.open.len() as u32;
        self.open.push(self.partials[slot].piece);
    }

    /// Takes a piece in progress off the open list (no free block left).
    fn close(&mut self, slot: usize) {
        let pos = self.partials[slot].open_pos;
        if pos == NONE {
            return;
        }
        self.partials[slot].open_pos = NONE;
        self.open.swap_remove(pos as usize);
        if let Some(&moved) = self.open.get(pos as usize) {
            let moved_slot = self.pieces[moved as usize].partial as usize;
            self.partials[moved_slot].open_pos = pos;
        }
    }

    /// Forgets the download state of a piece in progress.
    fn remove_partial(&mut self, slot: usize) {
        self.close(slot);
        let removed = self.partials.swap_remove(slot);
        let from = self.key(removed.piece);
        self.pieces[removed.piece as usize].partial = NONE;
        self.move_bucket(removed.piece, from, from + 1);
        if self.spare_blocks.len() < SPARE_BLOCK_VECTORS {
            self.spare_blocks.push(removed.blocks);
        }
        if let Some(moved) = self.partials.get(slot) {
            self.pieces[moved.piece as usize].partial = slot as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;

    use super::*;

    const B: u64 = BLOCK_SIZE as u64;

    fn idx(i: u32) -> PieceIndex {
        PieceIndex::new_unchecked(i)
    }

    fn bits(count: u32, set: &[u32]) -> Bitfield {
        let mut field = Bitfield::new(count);
        for &i in set {
            field.set(idx(i));
        }
        field
    }

    impl PiecePicker {
        /// The internal structure agrees with itself.
        fn check_invariants(&self) {
            let count = self.layout.piece_count() as usize;
            let skipped = (0..count)
                .filter(|&p| self.pieces[p].pos == NONE && !self.have.has(idx(p as u32)))
                .inspect(|&p| assert!(!self.wanted.has(idx(p as u32)), "wanted piece {p} lost"))
                .count();
            assert_eq!(self.order.len() + self.have_count as usize + skipped, count);
            for &piece in &self.order {
                let entry = self.pieces[piece as usize];
                assert!(self.wanted.has(idx(piece)) || entry.partial != NONE);
            }
            assert_eq!(*self.bounds.last().unwrap() as usize, self.order.len());
            assert_eq!(self.first_fresh % 2, 1);
            for bucket in (1..self.first_fresh.min(self.bounds.len() - 1)).step_by(2) {
                assert_eq!(
                    self.bounds[bucket],
                    self.bounds[bucket + 1],
                    "fresh bucket {bucket} below the hint"
                );
            }
            assert_eq!(self.bounds[0], 0);
            for bucket in 0..self.bounds.len() - 1 {
                let (start, end) = (self.bounds[bucket], self.bounds[bucket + 1]);
                assert!(start <= end);
                for pos in start..end {
                    let piece = self.order[pos as usize];
                    assert_eq!(self.key(piece), bucket);
                    assert_eq!(self.pieces[piece as usize].pos, pos);
                }
            }
            let fresh = self
                .order
                .iter()
                .filter(|&&p| self.pieces[p as usize].partial == NONE)
                .count();
            assert_eq!(fresh, self.fresh as usize);
            for (slot, partial) in self.partials.iter().enumerate() {
                assert_eq!(self.pieces[partial.piece as usize].partial as usize, slot);
                let free = partial
                    .blocks
                    .iter()
                    .filter(|b| **b == BlockState::Free)
                    .count();
                let received = partial
                    .blocks
                    .iter()
                    .filter(|b| **b == BlockState::Received)
                    .count();
                assert_eq!(partial.free as usize, free);
                assert_eq!(partial.received as usize, received);
                assert_eq!(
                    partial.requested as usize,
                    partial.blocks.len() - free - received
                );
                assert_eq!(partial.open_pos != NONE, free > 0);
                if partial.open_pos != NONE {
                    assert_eq!(self.open[partial.open_pos as usize], partial.piece);
                }
            }
            assert_eq!(
                self.open.len(),
                self.partials.iter().filter(|p| p.free > 0).count()
            );
        }
    }

    /// Three peers over 8 single-block pieces; we have pieces 4..8.
    fn small_swarm() -> (PiecePicker, Vec<Bitfield>) {
        let layout = Layout::new(B, &[8 * B]).unwrap();
        let have = bits(8, &[4, 5, 6, 7]);
        let mut picker = PiecePicker::new(&layout, &have, PickerStrategy::RarestFirst, 7);
        let peers = vec![
            bits(8, &[0, 1, 2, 4]),
            bits(8, &[0, 1, 3, 5]),
            bits(8, &[0, 1, 2, 3]),
        ];
        for peer in &peers {
            picker.peer_bitfield(peer);
        }
        picker.check_invariants();
        (picker, peers)
    }

    #[test]
    fn a_peer_on_parole_downloads_pieces_alone_and_can_finish_a_left_one() {
        // One piece of two blocks; every peer has it.
        let layout = Layout::new(2 * B, &[2 * B]).unwrap();
        let mut picker = PiecePicker::new(&layout, &bits(1, &[]), PickerStrategy::RarestFirst, 1);
        let (free, paroled, other) = (PeerKey(0), PeerKey(1), PeerKey(2));
        picker.set_parole(paroled, true);
        picker.set_parole(other, true);
        let mut out = Vec::new();
        // The paroled peer starts the piece: it is its alone.
        picker.pick(paroled, PeerHas::All, 1, &[], &mut out);
        assert_eq!(out.len(), 1);
        let mut theirs = Vec::new();
        picker.pick(free, PeerHas::All, 2, &[], &mut theirs);
        picker.pick(other, PeerHas::All, 2, &[], &mut theirs);
        assert!(
            theirs.is_empty(),
            "a paroled peer's piece was shared: {theirs:?} {out:?}"
        );
        // It leaves after one block: the rest is anyone's, a paroled
        // peer's too (nobody has requests in it).
        picker.block_received(paroled, out[0]);
        picker.set_parole(paroled, false);
        picker.pick(other, PeerHas::All, 2, &[], &mut theirs);
        assert_eq!(theirs.len(), 1, "the left piece cannot be finished");
        picker.check_invariants();
    }

    #[test]
    fn picks_the_rarest_piece_the_peer_has() {
        let (mut picker, peers) = small_swarm();
        assert_eq!(picker.availability(idx(0)), 3);
        assert_eq!(picker.availability(idx(2)), 2);
        let mut out = Vec::new();
        // Peer 0 has 0, 1, 2 (4 we have): 2 is the rarest (2 copies).
        picker.pick(PeerKey(0), PeerHas::Pieces(&peers[0]), 1, &[], &mut out);
        assert_eq!(out.iter().map(|b| b.piece.get()).collect::<Vec<_>>(), [2]);
        // Peer 1 has 0, 1, 3: 3 has 2 copies, 0 and 1 three.
        out.clear();
        picker.pick(PeerKey(1), PeerHas::Pieces(&peers[1]), 1, &[], &mut out);
        assert_eq!(out[0].piece.get(), 3);
        picker.check_invariants();
    }

    #[test]
    fn have_moves_a_piece_out_of_the_rarest_bucket() {
        let (mut picker, peers) = small_swarm();
        // Two more copies of 2: now 3 (2 copies) is rarer for peer 2.
        picker.peer_have(idx(2), false);
        picker.peer_have(idx(2), false);
        picker.check_invariants();
        let mut out = Vec::new();
        picker.pick(PeerKey(2), PeerHas::Pieces(&peers[2]), 1, &[], &mut out);
        assert_eq!(out[0].piece.get(), 3);
    }

    #[test]
    fn ties_are_broken_at_random() {
        let layout = Layout::new(B, &[64 * B]).unwrap();
        let have = bits(64, &[60, 61, 62, 63]);
        let mut firsts = HashSet::new();
        for seed in 0..20 {
            let mut picker = PiecePicker::new(&layout, &have, PickerStrategy::RarestFirst, seed);
            picker.peer_have_all();
            let mut out = Vec::new();
            picker.pick(PeerKey(0), PeerHas::All, 1, &[], &mut out);
            firsts.insert(out[0].piece.get());
        }
        assert!(firsts.len() > 5, "first picks {firsts:?}");
    }

    #[test]
    fn random_first_pieces_then_rarest() {
        let layout = Layout::new(B, &[32 * B]).unwrap();
        let mut picker =
            PiecePicker::new(&layout, &Bitfield::new(32), PickerStrategy::RarestFirst, 3);
        // Piece 0 is the only rare one: 1 copy; the rest have 2. The peer
        // asked is no seeder (from a seeder even the first pieces are rarest).
        let mut one = Bitfield::full(32);
        one.clear(idx(31));
        picker.peer_bitfield(&one);
        let mut other = Bitfield::full(32);
        other.clear(idx(0));
        picker.peer_bitfield(&other);
        let mut picked = Vec::new();
        for round in 0..8 {
            let mut out = Vec::new();
            picker.pick(PeerKey(0), PeerHas::Pieces(&one), 1, &[], &mut out);
            let block = out[0];
            assert!(matches!(
                picker.block_received(PeerKey(0), block),
                BlockReceived::New {
                    piece_complete: true,
                    ..
                }
            ));
            picker.piece_verified(block.piece);
            picked.push(block.piece.get());
            if round >= 4 {
                // Rarest first from now on: piece 0 first if still missing
                // (piece 31 is as rare, but this peer lacks it).
                assert!(picked.contains(&0), "{picked:?}");
            }
        }
        picker.check_invariants();

        // From a seeder the very first pick is already the rarest piece.
        for seed in 0..8 {
            let mut picker = PiecePicker::new(
                &layout,
                &Bitfield::new(32),
                PickerStrategy::RarestFirst,
                seed,
            );
            picker.peer_have_all();
            picker.peer_bitfield(&other);
            let mut out = Vec::new();
            picker.pick(PeerKey(0), PeerHas::All, 1, &[], &mut out);
            assert_eq!(out[0].piece, idx(0));
        }
    }

    #[test]
    fn partial_pieces_are_finished_before_new_ones() {
        let layout = Layout::new(4 * B, &[16 * 4 * B]).unwrap();
        let have = bits(16, &[12, 13, 14, 15]);
        let mut picker = PiecePicker::new(&layout, &have, PickerStrategy::RarestFirst, 1);
        let a = bits(16, &[0, 5]);
        let b = bits(16, &[0, 1, 2, 3, 4, 5, 6]);
        picker.peer_bitfield(&a);
        picker.peer_bitfield(&b);
        let mut out = Vec::new();
        picker.pick(PeerKey(0), PeerHas::Pieces(&a), 1, &[], &mut out);
        let started = out[0].piece;
        // Peer b has rarer pieces (1, 2, 3, 4, 6: one copy) but finishes `started` first.
        out.clear();
        picker.pick(PeerKey(1), PeerHas::Pieces(&b), 3, &[], &mut out);
        assert!(out.iter().all(|blk| blk.piece == started));
        assert_eq!(out.len(), 3);
        // Then opens a rarest one.
        out.clear();
        picker.pick(PeerKey(1), PeerHas::Pieces(&b), 1, &[], &mut out);
        assert_eq!(picker.availability(out[0].piece), 1);
        picker.check_invariants();
    }

    #[test]
    fn a_listed_peer_gets_only_listed_pieces() {
        let (mut picker, _) = small_swarm();
        // Piece 3 is rarer than 0, but only 0, 1 and 5 (ours) are listed.
        let listed = [idx(5), idx(0), idx(1)];
        let mut out = Vec::new();
        picker.pick(PeerKey(0), PeerHas::Listed(&listed), 8, &[], &mut out);
        let pieces: Vec<u32> = out.iter().map(|b| b.piece.get()).collect();
        assert_eq!(pieces, [0, 1]);
        // Nothing listed is left to pick.
        picker.pick(PeerKey(0), PeerHas::Listed(&listed), 8, &[], &mut out);
        assert_eq!(out.len(), 2);
        picker.check_invariants();
    }

    #[test]
    fn preferred_pieces_come_first() {
        let (mut picker, peers) = small_swarm();
        let mut out = Vec::new();
        picker.pick(
            PeerKey(2),
            PeerHas::Pieces(&peers[2]),
            2,
            &[idx(5), idx(1)],
            &mut out,
        );
        // 5 is ours, so only 1 is preferred; then the rarest.
        assert_eq!(out[0].piece.get(), 1);
        assert_ne!(out[1].piece.get(), 1);
    }

    #[test]
    fn endgame_duplicates_and_cancels() {
        let layout = Layout::new(2 * B, &[2 * B]).unwrap();
        let mut picker =
            PiecePicker::new(&layout, &Bitfield::new(1), PickerStrategy::RarestFirst, 1);
        picker.peer_have_all();
        picker.peer_have_all();
        let mut out = Vec::new();
        picker.pick(PeerKey(0), PeerHas::All, 1, &[], &mut out);
        assert!(!picker.is_endgame());
        picker.pick(PeerKey(0), PeerHas::All, 1, &[], &mut out);
        assert!(picker.is_endgame());
        // Peer 0 gets nothing more; peer 1 gets both blocks as duplicates.
        let mut again = Vec::new();
        picker.pick(PeerKey(0), PeerHas::All, 4, &[], &mut again);
        assert!(again.is_empty());
        picker.pick(PeerKey(1), PeerHas::All, 4, &[], &mut again);
        assert_eq!(again, out);
        assert_eq!(
            picker.block_received(PeerKey(1), out[0]),
            BlockReceived::New {
                cancel: Some(PeerKey(0)),
                piece_complete: false
            }
        );
        assert_eq!(
            picker.block_received(PeerKey(0), out[0]),
            BlockReceived::Duplicate
        );
        picker.request_dropped(PeerKey(1), out[1]);
        assert_eq!(
            picker.block_received(PeerKey(0), out[1]),
            BlockReceived::New {
                cancel: None,
                piece_complete: true
            }
        );
        picker.piece_failed(out[0].piece);
        assert!(!picker.is_endgame());
        picker.check_invariants();
    }

    #[test]
    fn dropped_requests_return_blocks() {
        let (mut picker, peers) = small_swarm();
        let mut out = Vec::new();
        picker.pick(PeerKey(0), PeerHas::Pieces(&peers[0]), 1, &[], &mut out);
        picker.request_dropped(PeerKey(0), out[0]);
        picker.check_invariants();
        let mut again = Vec::new();
        picker.pick(PeerKey(0), PeerHas::Pieces(&peers[0]), 1, &[], &mut again);
        assert_eq!(again, out);
    }

    #[test]
    fn seeds_and_completing_haves() {
        let (mut picker, mut peers) = small_swarm();
        picker.peer_have_all();
        assert_eq!(picker.availability(idx(7)), 1);
        assert_eq!(picker.availability(idx(0)), 4);
        // Peer 2 completes its bitfield with HAVEs and becomes a seed.
        for p in 4..8 {
            peers[2].set(idx(p));
            picker.peer_have(idx(p), peers[2].is_complete());
        }
        assert_eq!(picker.seeds(), 2);
        assert_eq!(picker.availability(idx(7)), 2);
        assert_eq!(picker.availability(idx(0)), 4);
        picker.check_invariants();
        picker.peer_removed(&peers[2]);
        picker.peer_removed(&Bitfield::full(8));
        assert_eq!(picker.seeds(), 0);
        assert_eq!(picker.availability(idx(0)), 2);
        picker.check_invariants();
    }

    #[test]
    fn sequential_and_random_strategies() {
        let layout = Layout::new(B, &[10 * B]).unwrap();
        let mut picker = PiecePicker::new(&layout, &bits(10, &[0]), PickerStrategy::Sequential, 1);
        let peer = bits(10, &[2, 3, 4]);
        picker.peer_bitfield(&peer);
        let mut out = Vec::new();
        picker.pick(PeerKey(0), PeerHas::Pieces(&peer), 3, &[], &mut out);
        assert_eq!(
            out.iter().map(|b| b.piece.get()).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        picker.request_dropped(PeerKey(0), out[0]);
        out.clear();
        picker.pick(PeerKey(1), PeerHas::All, 1, &[], &mut out);
        assert_eq!(out[0].piece.get(), 1);

        let mut seen = HashSet::new();
        for seed in 0..10 {
            let mut picker =
                PiecePicker::new(&layout, &Bitfield::new(10), PickerStrategy::Random, seed);
            let mut out = Vec::new();
            picker.pick(PeerKey(0), PeerHas::Pieces(&peer), 1, &[], &mut out);
            assert!(peer.has(out[0].piece));
            seen.insert(out[0].piece.get());
        }
        assert_eq!(seen.len(), 3);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Connect(Vec<bool>),
        ConnectSeed,
        Have(usize, u32),
        Disconnect(usize),
        Pick(usize, usize),
        Receive(usize),
        Drop(usize),
        Verify(usize, bool),
        SetPriority(u32, Priority),
    }

    fn op(pieces: u32) -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => proptest::collection::vec(any::<bool>(), pieces as usize).prop_map(Op::Connect),
            1 => Just(Op::ConnectSeed),
            4 => (any::<usize>(), 0..pieces).prop_map(|(p, i)| Op::Have(p, i)),
            1 => any::<usize>().prop_map(Op::Disconnect),
            6 => (any::<usize>(), 1usize..6).prop_map(|(p, n)| Op::Pick(p, n)),
            5 => any::<usize>().prop_map(Op::Receive),
            2 => any::<usize>().prop_map(Op::Drop),
            2 => (any::<usize>(), proptest::bool::weighted(0.8)).prop_map(|(p, ok)| Op::Verify(p, ok)),
            2 => (0..pieces, prop_oneof![Just(Priority::Skip), Just(Priority::Normal), Just(Priority::High)])
                .prop_map(|(p, prio)| Op::SetPriority(p, prio)),
        ]
    }

    fn scenario() -> impl Strategy<Value = (u32, u64, Vec<bool>, Vec<Op>)> {
        (2u32..24, 1u64..4).prop_flat_map(|(pieces, blocks)| {
            (
                Just(pieces),
                Just(blocks),
                proptest::collection::vec(proptest::bool::weighted(0.3), pieces as usize),
                proptest::collection::vec(op(pieces), 1..120),
            )
        })
    }

    /// The reference model: peers' bitfields, block requests and receipts by brute force.
    struct Model {
        strategy: PickerStrategy,
        layout: Layout,
        have: Bitfield,
        peers: Vec<Option<(Bitfield, bool)>>,
        requests: HashMap<BlockRef, Vec<PeerKey>>,
        received: HashSet<BlockRef>,
        priority: Vec<Priority>,
    }

    impl Model {
        fn availability(&self, piece: PieceIndex) -> u32 {
            self.peers
                .iter()
                .flatten()
                .filter(|(f, _)| f.has(piece))
                .count() as u32
        }
        fn in_progress(&self, piece: PieceIndex) -> bool {
            self.requests
                .keys()
                .chain(&self.received)
                .any(|b| b.piece == piece)
        }
        /// Pieces we lack that the picker may still ask for: wanted ones,
        /// and skipped ones already in progress (they are finished).
        fn lacked(&self) -> Vec<PieceIndex> {
            self.have
                .iter_unset()
                .filter(|&p| self.priority[p.as_usize()].is_wanted() || self.in_progress(p))
                .collect()
        }
        fn all_requested(&self) -> bool {
            let lacked = self.lacked();
            !lacked.is_empty()
                && lacked.iter().all(|&p| {
                    self.layout
                        .blocks(p)
                        .all(|b| self.received.contains(&b) || self.requests.contains_key(&b))
                })
        }
        fn live(&self, n: usize) -> Option<usize> {
            let live: Vec<usize> = (0..self.peers.len())
                .filter(|&i| self.peers[i].is_some())
                .collect();
            (!live.is_empty()).then(|| live[n % live.len()])
        }
    }

    fn check_pick(
        picker: &mut PiecePicker,
        model: &mut Model,
        n: usize,
        max: usize,
    ) -> Result<(), TestCaseError> {
        let Some(p) = model.live(n) else {
            return Ok(());
        };
        let key = PeerKey(p);
        let (field, seed) = model.peers[p].clone().unwrap();
        let has = if seed {
            PeerHas::All
        } else {
            PeerHas::Pieces(&field)
        };
        let open_before: Vec<PieceIndex> = model
            .lacked()
            .into_iter()
            .filter(|&piece| {
                model.in_progress(piece)
                    && field.has(piece)
                    && model
                        .layout
                        .blocks(piece)
                        .any(|b| !model.received.contains(&b) && !model.requests.contains_key(&b))
            })
            .collect();
        let mut eligible: Vec<PieceIndex> = model
            .lacked()
            .into_iter()
            .filter(|&piece| field.has(piece) && !model.in_progress(piece))
            .collect();
        let in_progress_before: Vec<PieceIndex> = model
            .lacked()
            .into_iter()
            .filter(|&p| model.in_progress(p))
            .collect();
        let mut out = Vec::new();
        picker.pick(key, has, max, &[], &mut out);
        prop_assert!(out.len() <= max);
        for block in &out {
            prop_assert!(field.has(block.piece), "peer lacks {:?}", block);
            prop_assert!(!model.have.has(block.piece), "we have {:?}", block);
            prop_assert!(!model.received.contains(block));
            prop_assert!(
                model.priority[block.piece.as_usize()].is_wanted()
                    || in_progress_before.contains(&block.piece),
                "skipped piece {:?} requested",
                block
            );
            let requesters = model.requests.entry(*block).or_default();
            prop_assert!(!requesters.contains(&key), "{:?} already requested", block);
            prop_assert!(requesters.len() <= 1);
            if !requesters.is_empty() {
                prop_assert!(picker.is_endgame(), "duplicate outside endgame");
            }
            requesters.push(key);
            if let Some(pos) = eligible.iter().position(|&e| e == block.piece) {
                // A new piece: only when no piece in progress the peer has had a free
                // block, and the rarest among the eligible ones (random first aside).
                let finished = open_before.iter().all(|&piece| {
                    model
                        .layout
                        .blocks(piece)
                        .all(|b| model.received.contains(&b) || model.requests.contains_key(&b))
                });
                prop_assert!(finished, "new piece before partial {:?}", open_before);
                let high: Vec<u32> = eligible
                    .iter()
                    .filter(|&&e| model.priority[e.as_usize()] == Priority::High)
                    .map(|&e| model.availability(e))
                    .collect();
                if let Some(&min) = high.iter().min() {
                    // High pieces first, rarest first among them.
                    prop_assert_eq!(model.priority[block.piece.as_usize()], Priority::High);
                    prop_assert_eq!(model.availability(block.piece), min);
                    eligible.swap_remove(pos);
                    continue;
                }
                match model.strategy {
                    PickerStrategy::RarestFirst
                        if seed || model.have.count() >= RANDOM_FIRST_PIECES =>
                    {
                        let min = eligible
                            .iter()
                            .map(|&e| model.availability(e))
                            .min()
                            .unwrap();
                        prop_assert_eq!(model.availability(block.piece), min);
                    }
                    PickerStrategy::Sequential => {
                        prop_assert_eq!(Some(&block.piece), eligible.iter().min());
                    }
                    _ => {}
                }
                eligible.swap_remove(pos);
            }
        }
        if out.len() < max {
            // Nothing left for this peer: no eligible piece, and endgame exhausted.
            prop_assert!(eligible.is_empty());
        }
        Ok(())
    }

    fn check_flight(
        picker: &mut PiecePicker,
        model: &mut Model,
        n: usize,
        drop: bool,
    ) -> Result<(), TestCaseError> {
        let mut flights: Vec<(BlockRef, PeerKey)> = model
            .requests
            .iter()
            .flat_map(|(block, r)| r.iter().map(move |k| (*block, *k)))
            .collect();
        flights.sort();
        if flights.is_empty() {
            return Ok(());
        }
        let (block, key) = flights[n % flights.len()];
        let requesters = model.requests.remove(&block).unwrap();
        if drop {
            picker.request_dropped(key, block);
            let rest: Vec<_> = requesters.into_iter().filter(|&k| k != key).collect();
            if !rest.is_empty() {
                model.requests.insert(block, rest);
            }
        } else {
            let got = picker.block_received(key, block);
            model.received.insert(block);
            let complete = model
                .layout
                .blocks(block.piece)
                .all(|b| model.received.contains(&b));
            let other = requesters.iter().copied().find(|&k| k != key);
            prop_assert_eq!(
                got,
                BlockReceived::New {
                    cancel: other,
                    piece_complete: complete
                }
            );
            prop_assert_eq!(picker.block_received(key, block), BlockReceived::Duplicate);
            if let Some(other) = other {
                picker.request_dropped(other, block);
            }
        }
        Ok(())
    }

    fn run(
        strategy: PickerStrategy,
        pieces: u32,
        blocks: u64,
        have: &[bool],
        ops: Vec<Op>,
    ) -> Result<(), TestCaseError> {
        let total = u64::from(pieces) * blocks * B - B / 2;
        let layout = Layout::new(blocks * B, &[total]).unwrap();
        let mut have_bits = Bitfield::new(pieces);
        for (i, &h) in have.iter().enumerate() {
            if h {
                have_bits.set(idx(i as u32));
            }
        }
        let mut picker = PiecePicker::new(&layout, &have_bits, strategy, 99);
        let mut model = Model {
            strategy,
            layout: layout.clone(),
            have: have_bits,
            peers: Vec::new(),
            requests: HashMap::new(),
            received: HashSet::new(),
            priority: vec![Priority::Normal; pieces as usize],
        };
        for op in ops {
            match op {
                Op::Connect(set) => {
                    let mut field = Bitfield::new(pieces);
                    for (i, &b) in set.iter().enumerate() {
                        if b {
                            field.set(idx(i as u32));
                        }
                    }
                    picker.peer_bitfield(&field);
                    model.peers.push(Some((field, false)));
                }
                Op::ConnectSeed => {
                    picker.peer_have_all();
                    model.peers.push(Some((Bitfield::full(pieces), true)));
                }
                Op::Have(n, piece) => {
                    let Some(p) = model.live(n) else { continue };
                    let (field, _) = model.peers[p].as_mut().unwrap();
                    if field.set(idx(piece)) {
                        picker.peer_have(idx(piece), field.is_complete());
                    }
                }
                Op::Disconnect(n) => {
                    let Some(p) = model.live(n) else { continue };
                    let (field, _) = model.peers[p].take().unwrap();
                    picker.peer_removed(&field);
                    let key = PeerKey(p);
                    for (block, requesters) in &mut model.requests {
                        if requesters.contains(&key) {
                            picker.request_dropped(key, *block);
                            requesters.retain(|&k| k != key);
                        }
                    }
                    model.requests.retain(|_, r| !r.is_empty());
                }
                Op::Pick(n, max) => check_pick(&mut picker, &mut model, n, max)?,
                Op::Receive(n) => check_flight(&mut picker, &mut model, n, false)?,
                Op::Drop(n) => check_flight(&mut picker, &mut model, n, true)?,
                Op::Verify(n, ok) => {
                    let complete: Vec<PieceIndex> = model
                        .lacked()
                        .into_iter()
                        .filter(|&p| model.layout.blocks(p).all(|b| model.received.contains(&b)))
                        .collect();
                    if complete.is_empty() {
                        continue;
                    }
                    let piece = complete[n % complete.len()];
                    model.received.retain(|b| b.piece != piece);
                    if ok {
                        picker.piece_verified(piece);
                        model.have.set(piece);
                    } else {
                        picker.piece_failed(piece);
                    }
                }
                Op::SetPriority(piece, priority) => {
                    picker.set_priority(idx(piece), priority);
                    model.priority[piece as usize] = priority;
                }
            }
            picker.check_invariants();
            for piece in layout.pieces() {
                prop_assert_eq!(picker.availability(piece), model.availability(piece));
            }
            prop_assert_eq!(picker.is_endgame(), model.all_requested());
            prop_assert_eq!(picker.have(), &model.have);
            for piece in layout.pieces() {
                prop_assert_eq!(picker.priority(piece), model.priority[piece.as_usize()]);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn picker_matches_brute_force_reference((pieces, blocks, have, ops) in scenario()) {
            run(PickerStrategy::RarestFirst, pieces, blocks, &have, ops)?;
        }

        #[test]
        fn other_strategies_keep_the_invariants(
            (pieces, blocks, have, ops) in scenario(),
            sequential in any::<bool>(),
        ) {
            let strategy = if sequential { PickerStrategy::Sequential } else { PickerStrategy::Random };
            run(strategy, pieces, blocks, &have, ops)?;
        }
    }
}
