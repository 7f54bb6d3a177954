//! Our side of the download: the request pipeline to each peer, arriving
//! blocks, rejects, request timeouts and endgame cancels (BEP 3
//! "pipelining" and "endgame mode"). Which blocks to ask for is the
//! [`crate::picker::PiecePicker`]'s decision.

use std::time::Instant;

use bytes::Bytes;

use crate::picker::{BlockReceived, PeerHas};
use crate::piece::{BlockRef, PieceIndex};
use crate::wire::Message;

use super::Torrent;
use super::peer::Outstanding;
use super::types::Violation;
use super::types::{Action, PeerKey};

/// The cancel withdrawing our request for `block`.
fn cancel(block: BlockRef) -> Message {
    Message::Cancel {
        piece: block.piece.get(),
        offset: block.offset,
        length: block.length,
    }
}

impl Torrent {
    /// Tops up the request pipeline to `key`, if we are interested in it
    /// and it unchokes us (or allows pieces fast, BEP 6). Pieces it
    /// suggested (BEP 6) are preferred.
    pub(super) fn request_from(&mut self, now: Instant, key: PeerKey) {
        let Some(peer) = self.peers.get(key.0) else {
            return;
        };
        // Called on every block, HAVE and unchoke: the cheap reasons to
        // ask for nothing come first.
        if peer.closing || !peer.am_interested || (peer.chokes_us && peer.allowed_fast.is_empty()) {
            return;
        }
        let cap = peer.pipeline_cap(
            now,
            self.config.min_pipeline,
            self.config.pipeline_target,
            self.config.max_pipeline,
        );
        let room = cap.saturating_sub(peer.outstanding.len());
        if room == 0 {
            return;
        }
        let mut blocks = Vec::with_capacity(room);
        let was_endgame = self.picker.is_endgame();
        if peer.chokes_us {
            // While choked only the allowed-fast pieces it has and we lack count.
            let fast: Vec<PieceIndex> = peer
                .allowed_fast
                .iter()
                .copied()
                .filter(|&p| peer.bitfield.has(p) && !self.settled.has(p))
                .collect();
            self.picker
                .pick(key, PeerHas::Listed(&fast), room, &[], &mut blocks);
        } else {
            self.pick_unchoked(key, room, &mut blocks);
        }
        let peer = &mut self.peers[key.0];
        for block in blocks {
            peer.outstanding.push(Outstanding { block, sent: now });
            peer.send(
                &mut self.out,
                now,
                Message::Request {
                    piece: block.piece.get(),
                    offset: block.offset,
                    length: block.length,
                },
            );
        }
        // Endgame just began: peers with nothing left to pick may now
        // duplicate requests.
        if !was_endgame && self.picker.is_endgame() {
            self.request_from_others(now, key);
        }
    }

    /// Picks up to `max_blocks` blocks for `key`, which unchokes us, into
    /// `out`: its suggestions first, then the picker's order; never a
    /// piece it rejected since it unchoked us. A seed with suggestions we
    /// still lack is asked for those only (a seed spreading its first copy
    /// suggests the pieces it keeps for us and rejects the others), unless
    /// none of them is or can be asked of it because they are asked of
    /// other peers (two seeds suggesting the same pieces): then it is
    /// asked like any peer.
    fn pick_unchoked(&mut self, key: PeerKey, max_blocks: usize, out: &mut Vec<BlockRef>) {
        let peer = &self.peers[key.0];
        let suggested: Vec<PieceIndex> = peer
            .suggested
            .iter()
            .copied()
            .filter(|&p| !peer.rejected.contains(&p) && !self.settled.has(p))
            .collect();
        if !suggested.is_empty() && peer.has_all(self.layout.piece_count()) {
            let asked = peer
                .outstanding
                .iter()
                .any(|o| suggested.contains(&o.block.piece));
            let before = out.len();
            self.picker
                .pick(key, PeerHas::Listed(&suggested), max_blocks, &[], out);
            if asked || out.len() > before || !self.asked_elsewhere(key, &suggested) {
                return;
            }
        }
        // Pieces it rejected since it unchoked us are not asked again.
        let askable = (!peer.rejected.is_empty()).then(|| {
            let mut field = peer.bitfield.clone();
            for &piece in &peer.rejected {
                field.clear(piece);
            }
            field
        });
        let has = match &askable {
            Some(field) => PeerHas::Pieces(field),
            None if peer.has_all(self.layout.piece_count()) => PeerHas::All,
            None => PeerHas::Pieces(&peer.bitfield),
        };
        self.picker.pick(key, has, max_blocks, &suggested, out);
    }

    /// Whether a peer other than `key` has a request of ours out for a
    /// block of one of `pieces`.
    fn asked_elsewhere(&self, key: PeerKey, pieces: &[PieceIndex]) -> bool {
        self.peers.iter().any(|(_, p)| {
            p.key != key
                && p.outstanding
                    .iter()
                    .any(|o| pieces.contains(&o.block.piece))
        })
    }

    /// Tops up every peer but `except`.
    pub(super) fn request_from_others(&mut self, now: Instant, except: PeerKey) {
        let keys: Vec<PeerKey> = self
            .peers
            .iter()
            .map(|(_, p)| p.key)
            .filter(|&k| k != except)
            .collect();
        for key in keys {
            self.request_from(now, key);
        }
    }

    /// Tops up every peer, snubbed ones last (so blocks a stalled peer
    /// timed out on go to the others first).
    pub(super) fn request_from_all(&mut self, now: Instant) {
        let mut keys: Vec<(bool, PeerKey)> =
            self.peers.iter().map(|(_, p)| (p.snubbed, p.key)).collect();
        keys.sort_unstable();
        for (_, key) in keys {
            self.request_from(now, key);
        }
    }

    /// A block arrived. A block we never asked this peer for (nor gave up
    /// on recently: see `TorrentConfig::dropped_history`) or a bad range is a
    /// violation; the block is not written. The first
    /// copy of a block is written, an endgame duplicate request of it is
    /// cancelled, and a piece whose blocks are all in goes to verification.
    pub(super) fn on_piece(
        &mut self,
        now: Instant,
        key: PeerKey,
        piece: u32,
        offset: u32,
        data: Bytes,
    ) -> Result<(), Violation> {
        let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let block = self.layout.block_ref(piece, offset, length)?;
        let peer = &mut self.peers[key.0];
        let requested = peer.take_outstanding(block);
        if requested.is_none() && !peer.take_dropped(block) {
            self.wasted += u64::from(length);
            return Err(Violation::UnrequestedBlock(block));
        }
        peer.block_arrived(now, u64::from(length), requested);
        self.download_rate.record(now, u64::from(length));
        let from = peer.addr;
        match self.picker.block_received(key, block) {
            BlockReceived::Duplicate => self.wasted += u64::from(length),
            BlockReceived::New {
                cancel: other,
                piece_complete,
            } => {
                self.sources.block_from(block.piece, from.ip());
                self.out.act(Action::WriteBlock { block, data });
                if let Some(other) = other {
                    self.cancel_request(now, other, block);
                }
                if self.picker.is_endgame() {
                    self.cancel_everywhere(now, block);
                }
                if piece_complete {
                    self.sources.start_verifying(block.piece);
                    self.out.act(Action::VerifyPiece { piece: block.piece });
                }
            }
        }
        self.request_from(now, key);
        Ok(())
    }

    /// Withdraws our request of `block` from `key` (endgame duplicate).
    fn cancel_request(&mut self, now: Instant, key: PeerKey, block: BlockRef) {
        let Some(peer) = self.peers.get_mut(key.0) else {
            return;
        };
        if peer.take_outstanding(block).is_some() {
            peer.remember_dropped(block, self.config.dropped_history());
            peer.send(&mut self.out, now, cancel(block));
            self.picker.request_dropped(key, block);
        }
    }

    /// Endgame: withdraws `block` from every peer it is still requested from
    /// (the picker names one duplicate; a late answer may leave more).
    fn cancel_everywhere(&mut self, now: Instant, block: BlockRef) {
        let holders: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.outstanding.iter().any(|o| o.block == block))
            .map(|(_, p)| p.key)
            .collect();
        for key in holders {
            self.cancel_request(now, key, block);
        }
    }

    /// BEP 6 reject: the request is over; the block goes to other peers,
    /// the piece is no longer preferred as the peer's suggestion nor asked
    /// of this peer until it unchokes us anew, suggests it or the next
    /// rechoke round, and the
    /// pipeline to `key` is topped up with other blocks (a seed
    /// spreading its first copy rejects pieces another peer is getting and
    /// suggests one nobody has). A piece rejected while the peer chokes us
    /// leaves its allowed-fast set, as in libtorrent: the peer does not
    /// serve it fast after all, and asking again would only bounce
    /// request and reject back and forth.
    pub(super) fn on_reject(
        &mut self,
        now: Instant,
        key: PeerKey,
        piece: u32,
        offset: u32,
        length: u32,
    ) -> Result<(), Violation> {
        let block = self.layout.block_ref(piece, offset, length)?;
        let peer = &mut self.peers[key.0];
        // A suggestion the peer now rejects is stale: stop preferring it.
        peer.suggested.retain(|&p| p != block.piece);
        if peer.chokes_us {
            peer.allowed_fast.remove(&block.piece);
        }
        // A reject of a request we no longer wait for (one we cancelled,
        // or dropped at a choke) only acknowledges it.
        if peer.take_outstanding(block).is_some() {
            peer.rejected.insert(block.piece);
            self.picker.request_dropped(key, block);
            // Only peers that have the piece and may be asked for it
            // (they unchoke us, or allow it fast) can take the freed block.
            let others: Vec<PeerKey> = self
                .peers
                .iter()
                .filter(|&(_, p)| {
                    p.key != key
                        && p.bitfield.has(block.piece)
                        && (!p.chokes_us || p.allowed_fast.contains(&block.piece))
                })
                .map(|(_, p)| p.key)
                .collect();
            for other in others {
                self.request_from(now, other);
            }
            self.request_from(now, key);
        }
        Ok(())
    }

    /// Every request to `key` ends without data (a BEP 3 choke, a disconnect).
    pub(super) fn drop_all_requests(&mut self, key: PeerKey) {
        let limit = self.config.dropped_history();
        let peer = &mut self.peers[key.0];
        for outstanding in std::mem::take(&mut peer.outstanding) {
            peer.remember_dropped(outstanding.block, limit);
            self.picker.request_dropped(key, outstanding.block);
        }
    }

    /// Requests older than `request_timeout` go back to the picker for
    /// other peers; their peer is snubbed (pipeline of one). A late block
    /// is still accepted. `true` if any request expired.
    pub(super) fn expire_requests(&mut self, now: Instant) -> bool {
        let timeout = self.config.request_timeout;
        let limit = self.config.dropped_history();
        let mut any = false;
        for (index, peer) in &mut self.peers {
            let late = peer
                .outstanding
                .iter()
                .take_while(|o| o.sent + timeout <= now)
                .count();
            if late == 0 {
                continue;
            }
            any = true;
            peer.snubbed = true;
            let expired: Vec<Outstanding> = peer.outstanding.drain(..late).collect();
            for outstanding in expired {
                peer.remember_dropped(outstanding.block, limit);
                self.picker
                    .request_dropped(PeerKey(index), outstanding.block);
            }
        }
        any
    }
}
