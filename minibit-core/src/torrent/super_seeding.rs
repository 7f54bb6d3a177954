//! Super-seeding (the idea of BEP 16): an initial seed hides its bitfield
//! and announces one piece at a time per peer with a HAVE, as decided by
//! the [`crate::superseed::SuperSeeder`].

use std::time::Instant;

use crate::bitfield::Bitfield;
use crate::piece::PieceIndex;
use crate::superseed::Offer;
use crate::wire::Message;

use super::Torrent;
use super::types::PeerKey;

impl Torrent {
    /// A new peer in super-seed mode: offer it a first piece.
    pub(super) fn super_seed_connected(&mut self, now: Instant, key: PeerKey) {
        let empty = Bitfield::new(self.layout.piece_count());
        let offers = self
            .super_seeder
            .as_mut()
            .map(|seeder| seeder.peer_connected(key, &empty))
            .unwrap_or_default();
        self.send_offers(now, offers);
    }

    /// `key` reported `piece` (HAVE, or its opening bitfield).
    pub(super) fn super_seed_have(&mut self, now: Instant, key: PeerKey, piece: PieceIndex) {
        let offers = self
            .super_seeder
            .as_mut()
            .map(|seeder| seeder.peer_have(key, piece))
            .unwrap_or_default();
        self.send_offers(now, offers);
    }

    /// `key` left: its offer is freed for others.
    pub(super) fn super_seed_left(&mut self, now: Instant, key: PeerKey) {
        let offers = self
            .super_seeder
            .as_mut()
            .map(|seeder| seeder.peer_disconnected(key))
            .unwrap_or_default();
        self.send_offers(now, offers);
    }

    /// Announces each offered piece to its peer with a HAVE.
    fn send_offers(&mut self, now: Instant, offers: impl IntoIterator<Item = Offer>) {
        for offer in offers {
            if let Some(peer) = self.peers.get_mut(offer.peer.0) {
                if !peer.closing {
                    peer.send(
                        &mut self.out,
                        now,
                        Message::Have {
                            piece: offer.piece.get(),
                        },
                    );
                }
            }
        }
    }
}
