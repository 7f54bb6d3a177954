//! Super-seeding (the idea of BEP 16): an initial seed hides its bitfield
//! and announces pieces to each peer with HAVEs (one at a time, a window
//! while the peer is unchoked), as decided by the
//! [`crate::superseed::SuperSeeder`].

use std::time::{Duration, Instant};

use crate::bitfield::Bitfield;
use crate::piece::PieceIndex;
use crate::superseed::Offer;
use crate::wire::Message;

use super::Torrent;

use super::types::PeerKey;

/// How long a piece offered to a peer the seed unchokes takes, about, to
/// be reported by another peer: its window of offers covers what the seed
/// uploads to it meanwhile.
const OFFER_HORIZON: Duration = Duration::from_secs(1);

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

    /// Resizes `key`'s window of offers: one while we choke it, else the
    /// pieces our upload to it carries in [`OFFER_HORIZON`] (our highest
    /// upload rate yet, shared among the unchoke slots and the optimistic
    /// one).
    pub(super) fn super_seed_window(&mut self, now: Instant, key: PeerKey) {
        let Some(seeder) = self.super_seeder.as_mut() else {
            return;
        };
        self.super_seed_peak_rate = self.super_seed_peak_rate.max(self.upload_rate.rate(now));
        let window = if self.peers[key.0].am_choking {
            1
        } else {
            let per_peer = self.super_seed_peak_rate / (self.choker.config().slots + 1) as f64;
            (per_peer * OFFER_HORIZON.as_secs_f64() / f64::from(self.layout.piece_length()))
                as usize
        };
        let offers = seeder.set_window(key, window);
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
