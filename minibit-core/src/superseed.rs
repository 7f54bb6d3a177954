//! Super-seeding for an initial seed (the idea of BEP 16).
//!
//! Instead of advertising every piece, the initial seeder hides its bitfield
//! (sends BEP 6 have-none or an empty bitfield) and offers each peer
//! pieces with `have`s: pieces the peer lacks that no other peer has been
//! given yet, chosen at random. A peer holds at most its window of offers
//! not yet seen elsewhere (another peer sent a `have` for them): one, as
//! BEP 16 describes, or more while the seed unchokes it and its link to
//! the peer carries more in the time a piece takes to spread
//! ([`SuperSeeder::set_window`]), so the seed uploads each piece about once
//! and the swarm spreads it. Only pieces no connected peer has are offered: once every
//! piece is out, peers left without an offer wait (they are not interested
//! in the seed, so its upload slots go to the peers still fetching the
//! first copy of a piece), and a piece is offered again only when every
//! peer that had it left.
//!
//! [`SuperSeeder`] is pure bookkeeping: it returns which piece to announce to
//! which peer; the torrent sends the `have` messages and serves the requests.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bitfield::Bitfield;
use crate::id::PeerKey;
use crate::piece::PieceIndex;

/// Most pieces offered to one peer and not yet seen elsewhere, whatever
/// its window.
pub const MAX_OFFERS: usize = 64;

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
/// other than the one it was offered to reports having it (a `have`, or the
/// bitfield of a peer that connects later). Each peer has at most its
/// window of pending offers (one unless [`SuperSeeder::set_window`] says
/// more), and only pieces no connected peer has are offered. A peer with fewer gets more as soon as such a piece is free
/// (one of its offers was seen elsewhere, or a peer left). Choosing a
/// piece scans every piece (O(pieces) per offer; super-seeding serves
/// small, young swarms). A piece held only by peers that never upload it
/// does not spread.
/// Offers never expire: a peer that never downloads its piece keeps it
/// locked until it disconnects.
#[derive(Clone, Debug)]
pub struct SuperSeeder {
    rng: ChaCha8Rng,
    /// Connected peers that have each piece.
    availability: Vec<u32>,
    /// The peer each piece is offered to and not yet seen elsewhere.
    locked_to: Vec<Option<PeerKey>>,
    peers: BTreeMap<PeerKey, PeerState>,
}

#[derive(Clone, Debug)]
struct PeerState {
    has: Bitfield,
    /// The pending offers, oldest first: fewer than `window` only while
    /// no piece is free for the peer (or after the window shrank).
    offers: Vec<PieceIndex>,
    /// Most pending offers, 1 to [`MAX_OFFERS`].
    window: usize,
}

impl SuperSeeder {
    /// Bookkeeping for a torrent of `piece_count` pieces; `rng_seed` breaks ties.
    pub fn new(piece_count: u32, rng_seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            availability: vec![0; piece_count as usize],
            locked_to: vec![None; piece_count as usize],
            peers: BTreeMap::new(),
        }
    }

    /// `peer` connected and has `bitfield` (all clear for have-none,
    /// complete for have-all). Returns the offers to announce: one for
    /// `peer` if a piece is free for it, and one for each peer whose offered
    /// piece `peer` already has (that piece is now seen elsewhere).
    pub fn peer_connected(&mut self, peer: PeerKey, bitfield: &Bitfield) -> Vec<Offer> {
        let count = self.availability.len() as u32;
        let mut has = Bitfield::new(count);
        if bitfield.len() == count {
            has.clone_from(bitfield);
        }
        let mut released = false;
        for piece in has.iter_set() {
            self.availability[piece.as_usize()] += 1;
            released |= self.seen_at(peer, piece);
        }
        self.peers.insert(
            peer,
            PeerState {
                has,
                offers: Vec::new(),
                window: 1,
            },
        );
        let mut offers = Vec::new();
        if released {
            self.offer_to_waiting(&mut offers);
        } else {
            self.offer_to(peer, &mut offers);
        }
        offers
    }

    /// `peer` sent `have` for `piece`. Returns the new offers this releases
    /// (to `peer` when it reports a piece offered to someone else or its own
    /// offered piece was already seen elsewhere; to the peer the piece was
    /// offered to when `peer` is someone else).
    pub fn peer_have(&mut self, peer: PeerKey, piece: PieceIndex) -> Vec<Offer> {
        let mut offers = Vec::new();
        let Some(state) = self.peers.get_mut(&peer) else {
            return offers;
        };
        if piece.get() >= self.availability.len() as u32 || !state.has.set(piece) {
            return offers;
        }
        self.availability[piece.as_usize()] += 1;
        if self.seen_at(peer, piece) {
            self.offer_to_waiting(&mut offers);
        }
        offers
    }

    /// `peer` disconnected: its pieces leave the availability and its
    /// pending offer is freed. Returns offers for peers left waiting.
    pub fn peer_disconnected(&mut self, peer: PeerKey) -> Vec<Offer> {
        let mut offers = Vec::new();
        let Some(state) = self.peers.remove(&peer) else {
            return offers;
        };
        let mut released = false;
        for piece in state.has.iter_set() {
            let avail = &mut self.availability[piece.as_usize()];
            *avail -= 1;
            // The last copy left: the piece may be offered again.
            released |= *avail == 0;
        }
        for piece in state.offers {
            if self.locked_to[piece.as_usize()] == Some(peer) {
                self.locked_to[piece.as_usize()] = None;
                released = true;
            }
        }
        if released {
            self.offer_to_waiting(&mut offers);
        }
        offers
    }

    /// Sets how many offers `peer` may hold not yet seen elsewhere
    /// (clamped to 1..=[`MAX_OFFERS`]; 1 is the classic rule). One leaves
    /// the seed's link to the peer idle from the end of each piece until
    /// another peer reports it; a window covering the time a piece takes to
    /// spread keeps the peer's pipeline to the seed full across pieces at a
    /// high bandwidth-delay product. Returns the offers that fill a grown
    /// window; a shrunk one keeps the offers already made (the peer was
    /// told of them).
    pub fn set_window(&mut self, peer: PeerKey, window: usize) -> Vec<Offer> {
        let mut offers = Vec::new();
        let Some(state) = self.peers.get_mut(&peer) else {
            return offers;
        };
        let window = window.clamp(1, MAX_OFFERS);
        if state.window == window {
            return offers;
        }
        state.window = window;
        self.offer_to(peer, &mut offers);
        offers
    }

    /// The pieces currently offered to `peer`, oldest first (empty for an
    /// unknown peer).
    pub fn offered(&self, peer: PeerKey) -> &[PieceIndex] {
        self.peers
            .get(&peer)
            .map_or(&[], |state| state.offers.as_slice())
    }

    /// `peer` has `piece`: if the piece is locked to another peer, it is
    /// released and that peer's offer is done. Returns whether anything was released.
    fn seen_at(&mut self, peer: PeerKey, piece: PieceIndex) -> bool {
        match self.locked_to[piece.as_usize()] {
            Some(owner) if owner != peer => {
                self.locked_to[piece.as_usize()] = None;
                if let Some(state) = self.peers.get_mut(&owner) {
                    state.offers.retain(|&p| p != piece);
                }
                true
            }
            _ => false,
        }
    }

    /// Tops up the offers of every peer below its window, while pieces
    /// are free for it.
    fn offer_to_waiting(&mut self, offers: &mut Vec<Offer>) {
        let waiting: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, state)| state.offers.len() < state.window)
            .map(|(&key, _)| key)
            .collect();
        for peer in waiting {
            self.offer_to(peer, offers);
        }
    }

    /// Tops up `peer`'s offers to its window with free pieces no
    /// connected peer has (each uniformly at random among them), locking
    /// each.
    fn offer_to(&mut self, peer: PeerKey, offers: &mut Vec<Offer>) {
        while let Some(piece) = self.free_piece_for(peer) {
            self.locked_to[piece.as_usize()] = Some(peer);
            if let Some(state) = self.peers.get_mut(&peer) {
                state.offers.push(piece);
            }
            offers.push(Offer { peer, piece });
        }
    }

    /// A free piece `peer` lacks and no connected peer has, uniformly at
    /// random; `None` if the peer's window is full or none is free.
    fn free_piece_for(&mut self, peer: PeerKey) -> Option<PieceIndex> {
        let state = self.peers.get(&peer)?;
        if state.offers.len() >= state.window {
            return None;
        }
        let mut chosen = None;
        let mut seen = 0u32;
        for piece in state.has.iter_unset() {
            if self.locked_to[piece.as_usize()].is_some() || self.availability[piece.as_usize()] > 0
            {
                continue;
            }
            seen += 1;
            if self.rng.random_range(0..seen) == 0 {
                chosen = Some(piece);
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn idx(i: u32) -> PieceIndex {
        PieceIndex::new_unchecked(i)
    }

    #[test]
    fn each_peer_gets_a_different_piece_until_it_spreads() {
        let mut seeder = SuperSeeder::new(4, 1);
        let a = seeder.peer_connected(PeerKey(0), &Bitfield::new(4));
        let b = seeder.peer_connected(PeerKey(1), &Bitfield::new(4));
        assert_eq!(a.len(), 1);
        assert_eq!(b.len(), 1);
        assert_ne!(a[0].piece, b[0].piece);
        // Peer 0 downloads its piece: no new offer until someone else has it.
        assert!(seeder.peer_have(PeerKey(0), a[0].piece).is_empty());
        assert_eq!(seeder.offered(PeerKey(0)), [a[0].piece]);
        // Peer 1 gets it from peer 0: peer 0 is released and offered a new piece.
        let next = seeder.peer_have(PeerKey(1), a[0].piece);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].peer, PeerKey(0));
        assert_ne!(next[0].piece, a[0].piece);
        assert_ne!(next[0].piece, b[0].piece);
    }

    #[test]
    fn only_pieces_nobody_has_are_offered_and_disconnect_frees_the_offer() {
        let mut seeder = SuperSeeder::new(3, 1);
        let mut field = Bitfield::new(3);
        field.set(idx(0));
        field.set(idx(1));
        // Peer 0 has 0 and 1: offered 2.
        assert_eq!(
            seeder.peer_connected(PeerKey(0), &field),
            vec![Offer {
                peer: PeerKey(0),
                piece: idx(2)
            }]
        );
        // Peer 2 has 0 and 1 too: 2 is locked, nothing free for it.
        assert!(seeder.peer_connected(PeerKey(2), &field).is_empty());
        // Peer 1 has nothing: 0 and 1 are out already (no second copies), 2 is locked.
        assert!(
            seeder
                .peer_connected(PeerKey(1), &Bitfield::new(3))
                .is_empty()
        );
        // Peer 0 leaves before fetching 2: 2 is free again, the first
        // waiting peer gets it.
        assert_eq!(
            seeder.peer_disconnected(PeerKey(0)),
            vec![Offer {
                peer: PeerKey(1),
                piece: idx(2)
            }]
        );
        assert!(seeder.offered(PeerKey(2)).is_empty());
        // A complete newcomer holds piece 2: peer 1's offer is done, and
        // with every piece out nobody gets a new one.
        assert!(
            seeder
                .peer_connected(PeerKey(3), &Bitfield::full(3))
                .is_empty()
        );
        assert!(seeder.offered(PeerKey(3)).is_empty());
        assert!(seeder.offered(PeerKey(1)).is_empty());
        assert!(seeder.offered(PeerKey(2)).is_empty());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Connect(Vec<bool>),
        HaveOffered(usize),
        Have(usize, u32),
        Disconnect(usize),
        Window(usize, usize),
    }

    proptest! {
        /// A piece is never offered to a second peer before a peer other than
        /// the first reports it; every offer is for a piece the peer lacks;
        /// only pieces no connected peer has are offered; and a peer
        /// without an offer has nothing it lacks that it may be offered.
        #[test]
        fn never_offers_a_piece_twice_before_it_spreads(
            pieces in 1u32..12,
            ops in proptest::collection::vec(prop_oneof![
                1 => proptest::collection::vec(proptest::bool::weighted(0.2), 12).prop_map(Op::Connect),
                4 => any::<usize>().prop_map(Op::HaveOffered),
                1 => (any::<usize>(), any::<u32>()).prop_map(|(p, i)| Op::Have(p, i)),
                1 => any::<usize>().prop_map(Op::Disconnect),
                1 => (any::<usize>(), 0usize..5).prop_map(|(p, w)| Op::Window(p, w)),
            ], 1..80),
        ) {
            let mut seeder = SuperSeeder::new(pieces, 9);
            let mut has: BTreeMap<PeerKey, Bitfield> = BTreeMap::new();
            // Piece -> peer it was offered to, while not yet seen at another peer.
            let mut pending: HashMap<PieceIndex, PeerKey> = HashMap::new();
            let mut windows: BTreeMap<PeerKey, usize> = BTreeMap::new();
            let mut next_key = 0;
            for op in ops {
                let live: Vec<PeerKey> = has.keys().copied().collect();
                let (reporter, piece, offers) = match op {
                    Op::Connect(bits) => {
                        let mut field = Bitfield::new(pieces);
                        for i in 0..pieces {
                            if bits[i as usize] {
                                field.set(idx(i));
                            }
                        }
                        let key = PeerKey(next_key);
                        next_key += 1;
                        for p in field.iter_set() {
                            if pending.get(&p).is_some_and(|&o| o != key) {
                                pending.remove(&p);
                            }
                        }
                        has.insert(key, field.clone());
                        (None, None, seeder.peer_connected(key, &field))
                    }
                    Op::HaveOffered(n) | Op::Have(n, _) if live.is_empty() => { let _ = n; continue }
                    Op::HaveOffered(n) => {
                        let key = live[n % live.len()];
                        let offered = seeder.offered(key);
                        let Some(&p) = offered.get(n / live.len() % offered.len().max(1)) else { continue };
                        (Some(key), Some(p), Vec::new())
                    }
                    Op::Have(n, i) => (Some(live[n % live.len()]), Some(idx(i % pieces)), Vec::new()),
                    Op::Disconnect(n) => {
                        if live.is_empty() { continue }
                        let key = live[n % live.len()];
                        has.remove(&key);
                        pending.retain(|_, o| *o != key);
                        (None, None, seeder.peer_disconnected(key))
                    }
                    Op::Window(n, window) => {
                        if live.is_empty() { continue }
                        let key = live[n % live.len()];
                        windows.insert(key, window.max(1));
                        (None, None, seeder.set_window(key, window))
                    }
                };
                let offers = match (reporter, piece) {
                    (Some(key), Some(p)) => {
                        let fresh = has.get_mut(&key).unwrap().set(p);
                        if fresh && pending.get(&p).is_some_and(|&o| o != key) {
                            pending.remove(&p);
                        }
                        seeder.peer_have(key, p)
                    }
                    _ => offers,
                };
                // Copies among connected peers, from the test's own view.
                let avail = |p: PieceIndex| has.values().filter(|f| f.has(p)).count();
                for offer in offers {
                    prop_assert!(!has[&offer.peer].has(offer.piece), "offered a piece it has");
                    prop_assert_eq!(avail(offer.piece), 0, "second copy of {:?} offered", offer.piece);
                    prop_assert!(!pending.contains_key(&offer.piece), "{:?} offered twice before spreading", offer.piece);
                    pending.insert(offer.piece, offer.peer);
                    prop_assert!(seeder.offered(offer.peer).contains(&offer.piece));
                    let window = windows.get(&offer.peer).copied().unwrap_or(1);
                    prop_assert!(seeder.offered(offer.peer).len() <= window, "more offers than the window");
                }
                for (&key, field) in &has {
                    if seeder.offered(key).len() < windows.get(&key).copied().unwrap_or(1) {
                        let free = field.iter_unset().any(|p| {
                            seeder.locked_to[p.as_usize()].is_none() && avail(p) == 0
                        });
                        prop_assert!(!free, "{:?} waits while a piece is free", key);
                    }
                }
            }
        }
    }
}
