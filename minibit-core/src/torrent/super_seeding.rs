//! Super-seeding (the idea of BEP 16): an initial seed hides its bitfield
//! and announces pieces to each peer with HAVEs (one at a time, a window
//! while the peer is unchoked), as decided by the
//! [`crate::superseed::SuperSeeder`].

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
        let Some(seeder) = self.super_seeder.as_mut() else {
            return;
        };
        self.super_seed_pacing.reported(key, piece, now);
        let offers = seeder.peer_have(key, piece);
        self.send_offers(now, offers);
    }

    /// `key` left: its offer is freed for others.
    pub(super) fn super_seed_left(&mut self, now: Instant, key: PeerKey) {
        let Some(seeder) = self.super_seeder.as_mut() else {
            return;
        };
        self.super_seed_pacing.left(key);
        let offers = seeder.peer_disconnected(key);
        self.send_offers(now, offers);
    }

    /// We served `key` a block: resizes its window of offers (the first
    /// block since its unchoke times a round trip).
    pub(super) fn super_seed_served(&mut self, now: Instant, key: PeerKey) {
        if self.super_seeder.is_some() {
            self.super_seed_pacing.served(key, now);
            self.resize_offer_window(now, key);
        }
    }

    /// We choked or unchoked `key`: resizes its window of offers.
    pub(super) fn super_seed_window(&mut self, now: Instant, key: PeerKey) {
        if self.super_seeder.is_none() {
            return;
        }
        if self.peers[key.0].am_choking {
            self.super_seed_pacing.choked(key);
        } else {
            self.super_seed_pacing.unchoked(key, now);
        }
        self.resize_offer_window(now, key);
    }

    /// Sizes `key`'s window of offers: one while we choke it, else as
    /// [`super::offer_pacing::OfferPacing::window`] says for our unchoke slots and the
    /// optimistic one.
    fn resize_offer_window(&mut self, now: Instant, key: PeerKey) {
        let Some(seeder) = self.super_seeder.as_mut() else {
            return;
        };
        let pacing = &mut self.super_seed_pacing;
        pacing.observe_rate(self.upload_rate.rate(now));
        let window = if self.peers[key.0].am_choking {
            1
        } else {
            pacing.window(self.choker.config().slots + 1, self.layout.piece_length())
        };
        let offers = seeder.set_window(key, window);
        self.send_offers(now, offers);
    }

    /// Announces each offered piece to its peer with a HAVE.
    fn send_offers(&mut self, now: Instant, offers: impl IntoIterator<Item = Offer>) {
        for offer in offers {
            self.super_seed_pacing.offered(offer.peer, offer.piece, now);
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
