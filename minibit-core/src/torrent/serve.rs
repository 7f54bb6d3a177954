//! Our side of the upload: queueing the peers' requests, reading blocks
//! from storage, sending them, and choking (BEP 3 "request", "cancel",
//! "choke"; BEP 6 "reject request").

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::piece::BlockRef;
use crate::wire::Message;

use super::Torrent;
use super::spread::Claim;
use super::types::Violation;
use super::types::{Action, PeerKey};

/// Fewest pieces initial spreading keeps reserved for an unchoked peer.
const MIN_SPREAD_WINDOW: usize = 2;

/// Most pieces initial spreading keeps reserved for one peer (below the
/// 16 suggestions a minibit leecher remembers).
const MAX_SPREAD_WINDOW: usize = 12;

/// Upload time a peer's window of reserved pieces covers beyond
/// [`MIN_SPREAD_WINDOW`], at the peer's rate from us.
const SPREAD_WINDOW_COVER: Duration = Duration::from_secs(1);

/// The reject (BEP 6) answering a request for `block`.
fn reject(block: BlockRef) -> Message {
    Message::Reject {
        piece: block.piece.get(),
        offset: block.offset,
        length: block.length,
    }
}

impl Torrent {
    /// A request from `key`. A bad range or a piece we lack is a protocol
    /// violation; a request while choked (outside the BEP 6 allowed-fast
    /// set of a starting peer) or past the queue cap is rejected (BEP 6) or
    /// dropped (BEP 3); anything else is queued for reading.
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        key: PeerKey,
        piece: u32,
        offset: u32,
        length: u32,
    ) -> Result<(), Violation> {
        let block = self.layout.block_ref(piece, offset, length)?;
        if !self.have.has(block.piece) {
            return Err(Violation::RequestForMissingPiece(piece));
        }
        let peer = &mut self.peers[key.0];
        if peer.queued.contains(&block) || peer.reading.contains(&block) {
            return Ok(());
        }
        if self.spread_rejects(now, key, block) {
            return Ok(());
        }
        let peer = &mut self.peers[key.0];
        let full = peer.queued.len() + peer.reading.len() >= self.config.max_queued_requests;
        // BEP 6: a choked peer may still get its allowed-fast pieces while
        // it is starting (fewer pieces than the set holds).
        let allowed = peer.may_fetch_choked(block.piece, self.config.allowed_fast_count);
        if (peer.am_choking && !allowed) || full {
            if peer.fast {
                peer.send(&mut self.out, now, reject(block));
            }
            return Ok(());
        }
        peer.queued.push_back(block);
        self.issue_reads(key);
        Ok(())
    }

    /// A cancel from `key`: the request is dropped; with BEP 6 it is
    /// answered with a reject (every request gets exactly one answer).
    pub(super) fn on_cancel(
        &mut self,
        now: Instant,
        key: PeerKey,
        piece: u32,
        offset: u32,
        length: u32,
    ) -> Result<(), Violation> {
        let block = self.layout.block_ref(piece, offset, length)?;
        let peer = &mut self.peers[key.0];
        let queued = peer.queued.len() + peer.reading.len();
        peer.queued.retain(|&b| b != block);
        peer.reading.retain(|&b| b != block);
        if peer.fast && peer.queued.len() + peer.reading.len() != queued {
            peer.send(&mut self.out, now, reject(block));
        }
        self.issue_reads(key);
        Ok(())
    }

    /// Initial spreading: rejects (BEP 6) `key`'s request for `block` when
    /// another peer is getting its piece, after reserving for an unchoked
    /// `key` one more piece nobody has taken and suggesting it (BEP 6);
    /// `true` if so. A piece only reserved for another peer is taken over
    /// (that peer gets another). A plain BEP 3 peer cannot be told and is
    /// served.
    fn spread_rejects(&mut self, now: Instant, key: PeerKey, block: BlockRef) -> bool {
        let Some(spread) = self.spread.as_mut().filter(|_| self.peers[key.0].fast) else {
            return false;
        };
        match spread.claim(key, block) {
            Claim::Granted => false,
            Claim::TakenFrom(owner) => {
                self.offer_spread(now, owner, 0);
                false
            }
            Claim::Refused => {
                self.offer_spread(now, key, 1);
                self.peers[key.0].send(&mut self.out, now, reject(block));
                true
            }
        }
    }

    /// Initial spreading: tops up the window of pieces reserved for `key`
    /// (see [`super::spread`]) to what its share of our upload rate takes
    /// [`SPREAD_WINDOW_COVER`] to send, plus `extra` pieces, at least
    /// [`MIN_SPREAD_WINDOW`] and at most [`MAX_SPREAD_WINDOW`]; suggests
    /// (BEP 6) each piece added. Only for an unchoked BEP 6 peer: the
    /// window goes when the peer is choked or leaves.
    pub(super) fn offer_spread(&mut self, now: Instant, key: PeerKey, extra: usize) {
        let (Some(spread), Some(peer)) = (self.spread.as_mut(), self.peers.get_mut(key.0)) else {
            return;
        };
        if !peer.fast || peer.am_choking || peer.closing {
            return;
        }
        let share = self.upload_rate.rate(now) / self.config.unchoke_slots.max(1) as f64;
        let rate = peer.upload.rate(now).max(share);
        let piece = f64::from(self.layout.piece_length());
        let covered = (rate * SPREAD_WINDOW_COVER.as_secs_f64() / piece).ceil() as usize;
        let target = (MIN_SPREAD_WINDOW + covered + extra).min(MAX_SPREAD_WINDOW);
        while spread.window(key) < target {
            let Some(piece) = spread.reserve(key, |piece| !peer.bitfield.has(piece)) else {
                break;
            };
            let piece = piece.get();
            peer.send(&mut self.out, now, Message::Suggest { piece });
        }
    }

    /// Emits [`Action::ReadBlock`]s for queued requests of `key`, at most
    /// `max_reads_in_flight` at a time.
    fn issue_reads(&mut self, key: PeerKey) {
        let peer = &mut self.peers[key.0];
        while peer.reading.len() < self.config.max_reads_in_flight {
            let Some(block) = peer.queued.pop_front() else {
                break;
            };
            peer.reading.push(block);
            self.out.act(Action::ReadBlock { peer: key, block });
        }
    }

    /// Storage returned `block` for `key`: send it if the request still
    /// stands (not cancelled, not dropped by a choke, peer still here).
    pub(super) fn serve_block(&mut self, now: Instant, key: PeerKey, block: BlockRef, data: Bytes) {
        let Some(peer) = self.peers.get_mut(key.0) else {
            return;
        };
        let Some(position) = peer.reading.iter().position(|&b| b == block) else {
            return;
        };
        peer.reading.swap_remove(position);
        if peer.closing || data.len() != block.length as usize {
            return;
        }
        // Another peer may have taken the piece since the request came.
        if self.spread_rejects(now, key, block) {
            self.issue_reads(key);
            return;
        }
        let peer = &mut self.peers[key.0];
        let length = u64::from(block.length);
        peer.upload.record(now, length);
        self.upload_rate.record(now, length);
        self.uploaded += length;
        peer.send(
            &mut self.out,
            now,
            Message::Piece {
                piece: block.piece.get(),
                offset: block.offset,
                data,
            },
        );
        if self
            .spread
            .as_mut()
            .is_some_and(|spread| spread.uploaded(key, block))
        {
            self.offer_spread(now, key, 0);
        }
        self.super_seed_served(now, key);
        self.issue_reads(key);
    }

    /// Chokes `key`: its pending requests are dropped (BEP 3) and, with
    /// BEP 6, each is rejected after the choke, except those for the
    /// allowed-fast pieces of a starting peer.
    pub(super) fn choke(&mut self, now: Instant, key: PeerKey) {
        let peer = &mut self.peers[key.0];
        if peer.am_choking || peer.closing {
            return;
        }
        peer.am_choking = true;
        peer.send(&mut self.out, now, Message::Choke);
        self.release_spread(key);
        self.super_seed_window(now, key);
        let peer = &mut self.peers[key.0];
        let k = self.config.allowed_fast_count;
        let dropped: Vec<BlockRef> = peer
            .queued
            .iter()
            .chain(&peer.reading)
            .filter(|b| !peer.may_fetch_choked(b.piece, k))
            .copied()
            .collect();
        peer.queued.retain(|b| !dropped.contains(b));
        peer.reading.retain(|b| !dropped.contains(b));
        if peer.fast {
            for block in dropped {
                peer.send(&mut self.out, now, reject(block));
            }
        }
        self.issue_reads(key);
    }

    /// Unchokes `key`; while spreading, its first suggestions (BEP 6) go
    /// just before the unchoke, so its first requests take them (and,
    /// super-seeding, its window of offers).
    pub(super) fn unchoke(&mut self, now: Instant, key: PeerKey) {
        let peer = &mut self.peers[key.0];
        if peer.am_choking && !peer.closing {
            peer.am_choking = false;
            self.offer_spread(now, key, 0);
            self.super_seed_window(now, key);
            self.peers[key.0].send(&mut self.out, now, Message::Unchoke);
        }
    }
}
