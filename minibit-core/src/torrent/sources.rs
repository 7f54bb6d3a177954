//! Which peers sent blocks of each piece in progress, and which pieces
//! await their hash check: a piece that fails verification gives a strike
//! to every IP address that contributed to it (bans are per IP, as in
//! libtorrent: a peer cannot shed its strikes by reconnecting from a new port).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::piece::PieceIndex;

/// Contributors of the pieces in progress (ordered maps: deterministic).
#[derive(Debug, Default)]
pub(super) struct PieceSources {
    sources: BTreeMap<PieceIndex, Vec<IpAddr>>,
    verifying: BTreeSet<PieceIndex>,
}

impl PieceSources {
    /// `from` sent a block of `piece` that was stored.
    pub(super) fn block_from(&mut self, piece: PieceIndex, from: IpAddr) {
        let sources = self.sources.entry(piece).or_default();
        if !sources.contains(&from) {
            sources.push(from);
        }
    }

    /// Every block of `piece` is stored and a verification was requested.
    pub(super) fn start_verifying(&mut self, piece: PieceIndex) {
        self.verifying.insert(piece);
    }

    /// Whether `piece` awaits its hash check.
    pub(super) fn is_verifying(&self, piece: PieceIndex) -> bool {
        self.verifying.contains(&piece)
    }

    /// The hash check of `piece` is done: forget it and return who sent its blocks.
    pub(super) fn finish(&mut self, piece: PieceIndex) -> Vec<IpAddr> {
        self.verifying.remove(&piece);
        self.sources.remove(&piece).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::piece::Layout;

    #[test]
    fn contributors_are_listed_once_and_forgotten_after_the_check() {
        let layout = Layout::new(16_384, &[40_000]).unwrap();
        let piece = layout.piece_index(1).unwrap();
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let mut sources = PieceSources::default();
        sources.block_from(piece, a);
        sources.block_from(piece, b);
        sources.block_from(piece, a);
        assert!(!sources.is_verifying(piece));
        sources.start_verifying(piece);
        assert!(sources.is_verifying(piece));
        assert_eq!(sources.finish(piece), [a, b]);
        assert!(!sources.is_verifying(piece));
        assert!(sources.finish(piece).is_empty());
    }
}
