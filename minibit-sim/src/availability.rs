//! Piece availability among the leechers present: how many of them hold
//! each piece, and the fewest that hold any one piece (the "minimum
//! availability" the rarest-first literature tracks; the seed is left out).

use minibit_core::bitfield::Bitfield;
use minibit_core::piece::PieceIndex;

pub(crate) struct Availability {
    /// The pieces each node verified (the seed's entry stays empty).
    held: Vec<Bitfield>,
    /// Per piece, how many leechers present hold it.
    copies: Vec<u32>,
    /// `pieces_with[c]`: how many pieces exactly `c` leechers hold.
    pieces_with: Vec<u32>,
    /// The fewest leechers holding any one piece.
    min: u32,
    /// Pieces held, summed over the leechers present.
    total: u64,
}

impl Availability {
    pub fn new(nodes: usize, piece_count: u32) -> Self {
        let mut pieces_with = vec![0; nodes + 1];
        pieces_with[0] = piece_count;
        Self {
            held: (0..nodes).map(|_| Bitfield::new(piece_count)).collect(),
            copies: vec![0; piece_count as usize],
            pieces_with,
            min: 0,
            total: 0,
        }
    }

    /// Leecher `node` verified `piece`; false if it already held it.
    pub fn add(&mut self, node: usize, piece: PieceIndex) -> bool {
        if !self.held[node].set(piece) {
            return false;
        }
        let copies = &mut self.copies[piece.as_usize()];
        self.pieces_with[*copies as usize] -= 1;
        *copies += 1;
        self.pieces_with[*copies as usize] += 1;
        self.total += 1;
        while self.pieces_with[self.min as usize] == 0 {
            self.min += 1;
        }
        true
    }

    /// Leecher `node` left the swarm with everything it held.
    pub fn remove_node(&mut self, node: usize) {
        let held = std::mem::replace(&mut self.held[node], Bitfield::new(0));
        for piece in held.iter_set() {
            let copies = &mut self.copies[piece.as_usize()];
            self.pieces_with[*copies as usize] -= 1;
            *copies -= 1;
            self.pieces_with[*copies as usize] += 1;
            self.min = self.min.min(*copies);
            self.total -= 1;
        }
    }

    /// The fewest leechers present that hold any one piece.
    pub fn min(&self) -> u32 {
        self.min
    }

    /// Pieces held, summed over the leechers present.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Pieces in the torrent.
    pub fn piece_count(&self) -> u32 {
        self.copies.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use minibit_core::piece::Layout;

    use super::*;

    fn piece(layout: &Layout, i: u32) -> PieceIndex {
        layout.piece_index(i).unwrap()
    }

    #[test]
    fn minimum_follows_adds_and_departures() {
        let layout = Layout::new(16, &[48]).unwrap();
        let mut a = Availability::new(3, 3);
        assert_eq!(a.min(), 0);
        for p in 0..3 {
            assert!(a.add(1, piece(&layout, p)));
        }
        assert!(!a.add(1, piece(&layout, 0)), "already held");
        assert_eq!((a.min(), a.total()), (1, 3));
        assert!(a.add(2, piece(&layout, 1)));
        assert_eq!(a.min(), 1);
        a.remove_node(1);
        assert_eq!((a.min(), a.total()), (0, 1));
    }
}
