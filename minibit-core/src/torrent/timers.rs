//! Everything driven by the clock: announces, rechokes (BEP 3: every
//! 10 s, optimistic unchoke rotation inside the choker), request timeouts,
//! keep-alives (BEP 3: about every two minutes) and silent peers.

use std::time::Instant;

use crate::choker::PeerStats;
use crate::wire::Message;

use super::Torrent;
use super::types::{DisconnectReason, PeerKey};

impl Torrent {
    /// Runs every timer due at `now`.
    pub(super) fn on_timeout(&mut self, now: Instant) {
        self.announce_if_due(now);
        self.addresses.promote_due(now);
        self.dial_more();
        self.send_due_pex(now);
        self.metadata_timers(now);
        let rechoked = self.next_rechoke <= now;
        if rechoked {
            self.rechoke(now);
            self.next_rechoke = now + self.config.rechoke_interval;
            // Rejected pieces are asked for again at most once a round:
            // the peer may have freed them (a spreading seed whose other
            // taker left) without unchoking us anew.
            for (_, peer) in &mut self.peers {
                peer.rejected.clear();
            }
        }
        let expired = self.expire_requests(now);
        let keys: Vec<PeerKey> = self.peers.iter().map(|(_, p)| p.key).collect();
        for key in keys {
            let peer = &mut self.peers[key.0];
            if peer.closing {
                continue;
            }
            if peer.last_received + self.config.peer_timeout <= now {
                self.disconnect(key, DisconnectReason::Timeout);
            } else if peer.last_sent + self.config.keep_alive_interval <= now {
                peer.send(&mut self.out, now, Message::KeepAlive);
            }
        }
        // Expired requests free blocks for others; the periodic pass also
        // catches pipelines whose cap grew with the rate. Every other change
        // (a block, a choke, a HAVE, endgame) tops pipelines up on arrival.
        if expired || rechoked {
            self.request_from_all(now);
        }
        self.refresh_peer_timer_floor(now);
    }

    /// Asks the choker who gets the upload slots and sends the changes;
    /// also refreshes who is snubbed.
    pub(super) fn rechoke(&mut self, now: Instant) {
        let stats = self.choker_stats(now);
        let changes = self.choker.rechoke(now, self.is_finished(), &stats);
        for key in changes.choke {
            self.choke(now, key);
        }
        for key in changes.unchoke {
            self.unchoke(now, key);
        }
    }

    /// Unchokes whom the choker puts in free slots between rounds
    /// ([`crate::choker::Choker::fill_free_slots`]).
    fn fill_free_slots(&mut self, now: Instant) {
        let stats = self.choker_stats(now);
        for key in self.choker.fill_free_slots(now, self.is_finished(), &stats) {
            self.unchoke(now, key);
        }
    }

    /// What the choker needs of every connected peer; also refreshes who
    /// is snubbed.
    fn choker_stats(&mut self, now: Instant) -> Vec<PeerStats> {
        let stats: Vec<PeerStats> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.closing)
            .map(|(_, p)| p.choker_stats(now, &self.have))
            .collect();
        for stat in &stats {
            if self.choker.is_snubbed(now, stat) {
                self.peers[stat.peer.0].snubbed = true;
            }
        }
        stats
    }

    /// Rechokes at once when an upload slot is free (a newly interested
    /// peer need not wait for the next 10 s round; a slot is free when
    /// fewer than `unchoke_slots` interested peers are unchoked, so a peer
    /// that lost interest or left frees its slot at once, as in libtorrent
    /// and Transmission). While leeching, a giver slot
    /// ([`crate::choker::Choker::giver_slots`]) not taken is free too:
    /// then only the free slots are filled
    /// ([`crate::choker::Choker::fill_free_slots`]).
    pub(super) fn rechoke_if_slot_free(&mut self, now: Instant) {
        let unchoked = self
            .peers
            .iter()
            .filter(|(_, p)| !p.closing && !p.am_choking && p.interested_in_us)
            .count();
        if unchoked < self.config.unchoke_slots {
            self.rechoke(now);
        } else if !self.is_finished()
            && unchoked < self.config.unchoke_slots + self.choker.giver_slots()
        {
            self.fill_free_slots(now);
        }
    }

    /// The earliest instant a timer is due, or a little earlier (an extra
    /// timeout is harmless). O(1) in the number of peers: the per-peer
    /// timers enter through `peer_timer_floor`, refreshed by every timeout.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let redial = self
            .config
            .connect_to_peers
            .then(|| self.addresses.next_retry())
            .flatten();
        [self.announce.due(), Some(self.next_rechoke), redial]
            .into_iter()
            .flatten()
            .chain([self.peer_timer_floor])
            .min()
    }

    /// Recomputes the instant before which no per-peer timer is due. Each
    /// per-peer deadline only moves later (a message sent or received, the
    /// oldest request answered, a ut_pex message sent) or goes away, and one
    /// started at `t` is due no sooner than `t + shortest_peer_timer()`; so
    /// the minimum over the peers now, capped at `now +
    /// shortest_peer_timer()`, stays a lower bound until the next timeout
    /// refreshes it. (A new per-peer timer must be counted here and in
    /// `shortest_peer_timer`.)
    fn refresh_peer_timer_floor(&mut self, now: Instant) {
        let timeout = self.config.request_timeout;
        let scanned = self
            .peers
            .iter()
            .filter(|(_, p)| !p.closing)
            .flat_map(|(_, p)| {
                [
                    p.request_deadline(timeout),
                    Some(p.last_sent + self.config.keep_alive_interval),
                    Some(p.last_received + self.config.peer_timeout),
                    p.pex.as_ref().map(|s| s.next_at),
                    p.metadata.deadline(timeout),
                ]
            })
            .flatten()
            .min();
        let bound = now + self.config.shortest_peer_timer();
        self.peer_timer_floor = scanned.map_or(bound, |at| at.min(bound));
    }
}
