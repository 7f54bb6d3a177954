//! Super-seeding for an initial seed (the idea of BEP 16).
//!
//! Instead of advertising every piece, the initial seeder hides its bitfield
//! (sends BEP 6 have-none or an empty bitfield) and offers each peer one
//! piece at a time with a `have`: a piece the peer lacks that no other peer
//! has been given yet, rarest in the swarm first. The peer gets its next
//! offer only once the offered piece was seen elsewhere (another peer sent a
//! `have` for it), so the seed uploads each piece about once and the swarm
//! spreads it.
//!
//! [`SuperSeeder`] is pure bookkeeping: it returns which piece to announce to
//! which peer; the torrent sends the `have` messages and serves the requests.

use crate::bitfield::Bitfield;
use crate::piece::PieceIndex;
use crate::torrent::PeerKey;

/// Announce `piece` to `peer` with a `have` message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// The peer to tell.
    pub peer: PeerKey,
    /// The piece to announce.
    pub piece: PieceIndex,
}

/// Super-seeding bookkeeping for one torrent we seed.
///
/// Invariant: a piece is offered to at most one peer at a time until a peer
/// other than the one it was offered to reports having it. Choosing a piece
/// scans every piece (O(pieces) per offer; super-seeding serves small,
/// young swarms).
#[derive(Clone, Debug)]
pub struct SuperSeeder {
    _todo: (),
}

impl SuperSeeder {
    /// Bookkeeping for a torrent of `piece_count` pieces; `rng_seed` breaks ties.
    pub fn new(piece_count: u32, rng_seed: u64) -> Self {
        let _ = (piece_count, rng_seed);
        todo!()
    }

    /// `peer` connected and has `bitfield` (all clear for have-none,
    /// complete for have-all). Returns the piece to announce to it, if any.
    pub fn peer_connected(&mut self, peer: PeerKey, bitfield: &Bitfield) -> Option<Offer> {
        let _ = (peer, bitfield);
        todo!()
    }

    /// `peer` sent `have` for `piece`. Returns the new offers this releases
    /// (to `peer` when it reports a piece offered to someone else or its own
    /// offered piece was already seen elsewhere; to the peer the piece was
    /// offered to when `peer` is someone else).
    pub fn peer_have(&mut self, peer: PeerKey, piece: PieceIndex) -> Vec<Offer> {
        let _ = (peer, piece);
        todo!()
    }

    /// `peer` disconnected: its pieces leave the availability and its
    /// pending offer is freed. Returns offers for peers left waiting.
    pub fn peer_disconnected(&mut self, peer: PeerKey) -> Vec<Offer> {
        let _ = peer;
        todo!()
    }

    /// The piece currently offered to `peer`, if any.
    pub fn offered(&self, peer: PeerKey) -> Option<PieceIndex> {
        let _ = peer;
        todo!()
    }
}
