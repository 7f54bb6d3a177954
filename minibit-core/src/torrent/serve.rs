//! Our side of the upload: queueing the peers' requests, reading blocks
//! from storage, sending them, and choking (BEP 3 "request", "cancel",
//! "choke"; BEP 6 "reject request").

use std::time::Instant;

use bytes::Bytes;

use crate::piece::BlockRef;
use crate::wire::Message;

use super::Torrent;
use super::types::Violation;
use super::types::{Action, PeerKey};

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
    /// another peer is getting its piece, after suggesting (BEP 6) a piece
    /// nobody has taken; `true` if so. A plain BEP 3 peer cannot be told
    /// and is served.
    fn spread_rejects(&mut self, now: Instant, key: PeerKey, block: BlockRef) -> bool {
        let peer = &mut self.peers[key.0];
        let Some(spread) = self
            .spread
            .as_mut()
            .filter(|s| peer.fast && s.refuses(key, block))
        else {
            return false;
        };
        if let Some(piece) = spread.suggestion(|piece| !peer.bitfield.has(piece)) {
            let piece = piece.get();
            peer.send(&mut self.out, now, Message::Suggest { piece });
        }
        peer.send(&mut self.out, now, reject(block));
        true
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
        if let Some(spread) = &mut self.spread {
            spread.uploaded(key, block.piece);
        }
        self.super_seed_window(now, key);
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

    /// Unchokes `key`.
    pub(super) fn unchoke(&mut self, now: Instant, key: PeerKey) {
        let peer = &mut self.peers[key.0];
        if peer.am_choking && !peer.closing {
            peer.am_choking = false;
            peer.send(&mut self.out, now, Message::Unchoke);
            self.super_seed_window(now, key);
        }
    }
}
