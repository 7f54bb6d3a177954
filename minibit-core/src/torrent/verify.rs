//! Hash-check outcomes (BEP 3: a piece counts only once its SHA-1
//! matches): HAVE to the peers, interest updates and completion on
//! success; re-download, strikes, parole and bans on failure.

use std::net::IpAddr;
use std::time::Instant;

use crate::piece::PieceIndex;
use crate::wire::Message;

use super::Torrent;
use super::types::{DisconnectReason, Event, PeerKey};

impl Torrent {
    /// `piece` verified: it counts as ours, every peer gets a HAVE (BEP 3;
    /// also those that have it, so their view of us stays exact),
    /// peers with nothing left for us get NotInterested, and the last piece
    /// completes the download (event + `completed` announce).
    pub(super) fn piece_passed(&mut self, now: Instant, piece: PieceIndex) {
        if !self.sources.is_verifying(piece) {
            return;
        }
        self.sources.finish(piece);
        self.picker.piece_verified(piece);
        if !self.have.set(piece) {
            return;
        }
        let was_finished = self.is_finished();
        // A skipped piece (in progress when it was skipped) was settled already.
        let newly_settled = self.settled.set(piece);
        self.downloaded += u64::from(self.layout.piece_size(piece));
        self.out.report(Event::PieceCompleted { piece });
        let keys: Vec<PeerKey> = self.peers.iter().map(|(_, p)| p.key).collect();
        for &key in &keys {
            let peer = &mut self.peers[key.0];
            if peer.closing {
                continue;
            }
            peer.send(&mut self.out, now, Message::Have { piece: piece.get() });
            if newly_settled && peer.bitfield.has(piece) {
                peer.wanted -= 1;
                self.update_interest(now, key);
            }
        }
        if !was_finished && self.is_finished() {
            self.finished(now);
        }
    }

    /// `piece` failed its hash check: it is downloaded again. With one
    /// sender, that IP address gets a strike; at `max_strikes` it is
    /// banned and all its connections closed. With several senders nobody
    /// can be blamed (the good blocks and the bad look alike): each goes on
    /// parole and downloads whole pieces alone from then on, so its next
    /// bad piece has one sender (libtorrent's parole mode). Striking every
    /// sender instead bans honest peers that shared a piece with a liar.
    pub(super) fn piece_failed(&mut self, now: Instant, piece: PieceIndex) {
        if !self.sources.is_verifying(piece) {
            return;
        }
        let contributors = self.sources.finish(piece);
        self.picker.piece_failed(piece);
        self.out.report(Event::PieceFailed { piece });
        match contributors[..] {
            [ip] => self.strike(ip),
            _ => {
                for ip in contributors {
                    if !self.addresses.parole(ip) {
                        continue;
                    }
                    for (_, p) in self.peers.iter().filter(|(_, p)| p.addr.ip() == ip) {
                        self.picker.set_parole(p.key, true);
                    }
                }
            }
        }
        self.request_from_all(now);
    }

    /// A strike for `ip`; at `max_strikes` it is banned and every
    /// connection from it closed.
    fn strike(&mut self, ip: IpAddr) {
        if !self.addresses.strike(ip, self.config.max_strikes) {
            return;
        }
        self.out.report(Event::PeerBanned { ip });
        let banned: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.addr.ip() == ip)
            .map(|(_, p)| p.key)
            .collect();
        for key in banned {
            self.disconnect(key, DisconnectReason::Banned);
        }
    }
}
