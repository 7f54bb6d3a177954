//! Incoming peer messages (BEP 3 "peer messages", BEP 6): state updates,
//! bitfield and have handling, interest, and the protocol checks that turn
//! bad input into a disconnect.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::bitfield::Bitfield;
use crate::wire::{ExtendedHandshake, Message};

use super::Torrent;
use super::pex::UT_PEX_ID;
use super::types::{DisconnectReason, Event, PeerKey, Violation};
use super::ut_metadata::UT_METADATA_ID;

/// The name of a BEP 6 message, `None` for the others.
fn fast_message_name(message: &Message) -> Option<&'static str> {
    match message {
        Message::Suggest { .. } => Some("suggest piece"),
        Message::HaveAll => Some("have all"),
        Message::HaveNone => Some("have none"),
        Message::Reject { .. } => Some("reject request"),
        Message::AllowedFast { .. } => Some("allowed fast"),
        _ => None,
    }
}

impl Torrent {
    /// Applies one message from a connected, not-closing peer.
    pub(super) fn on_message(
        &mut self,
        now: Instant,
        key: PeerKey,
        message: Message,
    ) -> Result<(), Violation> {
        if let Some(name) = fast_message_name(&message) {
            if !self.peers[key.0].fast {
                return Err(Violation::FastNotNegotiated(name));
            }
        }
        if !self.metadata.layout_known() {
            if let Some(result) = self.buffer_availability(key, &message) {
                return result;
            }
        }
        let peer = &mut self.peers[key.0];
        let opening = matches!(
            message,
            Message::Bitfield(_) | Message::HaveAll | Message::HaveNone
        );
        // BEP 3 sends the bitfield (BEP 6: or have-all / have-none) only as
        // the first message, but real clients (aria2 1.36) send another one
        // later: it replaces what the peer had.
        let replaces = opening && peer.started;
        if !matches!(
            message,
            Message::KeepAlive | Message::Port(_) | Message::Extended { .. }
        ) {
            peer.started = true;
        }
        if replaces {
            self.forget_availability(key);
        }
        match message {
            Message::KeepAlive => {}
            Message::Port(port) => self.on_port(key, port),
            Message::HaveNone => {
                self.set_bitfield(now, key, Bitfield::new(self.layout.piece_count()));
            }
            Message::Extended { id, payload } => self.on_extended(now, key, id, &payload)?,
            Message::Choke => self.on_choke(now, key),
            Message::Unchoke => {
                let peer = &mut self.peers[key.0];
                if peer.chokes_us {
                    peer.chokes_us = false;
                    peer.unchoked_us_at = Some(now);
                    peer.rejected.clear();
                }
                self.request_from(now, key);
            }
            Message::Interested => {
                let peer = &mut self.peers[key.0];
                if !peer.interested_in_us {
                    peer.interested_in_us = true;
                    self.rechoke_if_slot_free(now);
                }
            }
            Message::NotInterested => {
                let peer = &mut self.peers[key.0];
                if peer.interested_in_us {
                    peer.interested_in_us = false;
                    if !peer.am_choking {
                        self.rechoke_if_slot_free(now);
                    }
                }
            }
            Message::Have { piece } => self.on_have(now, key, piece)?,
            Message::Bitfield(bytes) => self.on_bitfield(now, key, &bytes)?,
            Message::HaveAll => {
                self.picker.peer_have_all();
                self.set_bitfield(now, key, Bitfield::full(self.layout.piece_count()));
            }
            Message::Request {
                piece,
                offset,
                length,
            } => self.on_request(now, key, piece, offset, length)?,
            Message::Piece {
                piece,
                offset,
                data,
            } => self.on_piece(now, key, piece, offset, data)?,
            Message::Cancel {
                piece,
                offset,
                length,
            } => self.on_cancel(now, key, piece, offset, length)?,
            Message::Reject {
                piece,
                offset,
                length,
            } => self.on_reject(now, key, piece, offset, length)?,
            Message::Suggest { piece } => {
                let piece = self.layout.piece_index(piece)?;
                self.peers[key.0].suggest(piece);
                if !self.settled.has(piece) {
                    self.request_from(now, key);
                }
            }
            Message::AllowedFast { piece } => {
                let piece = self.layout.piece_index(piece)?;
                if self.peers[key.0].allow_fast(piece) {
                    self.request_from(now, key);
                }
            }
        }
        Ok(())
    }

    /// BEP 10: the extended handshake (id 0) gives the peer's `reqq`, its
    /// listen port `p`, its client name `v`, its `ut_pex` id and its BEP 9 `ut_metadata` id and
    /// `metadata_size`; id [`UT_PEX_ID`] is a BEP 11 message when we
    /// advertised peer exchange, id [`UT_METADATA_ID`] a BEP 9 message
    /// when we advertised `ut_metadata`; other ids are ignored.
    fn on_extended(
        &mut self,
        now: Instant,
        key: PeerKey,
        id: u8,
        payload: &Bytes,
    ) -> Result<(), Violation> {
        let peer = &mut self.peers[key.0];
        if !peer.extensions {
            return Err(Violation::ExtendedNotNegotiated);
        }
        if id == 0 {
            let handshake = ExtendedHandshake::decode(payload)?;
            peer.extended_handshake = true;
            if let Some(reqq) = handshake.reqq {
                peer.reqq = Some((reqq as usize).max(1));
            }
            if handshake.p.is_some() {
                peer.listen_port = handshake.p;
            }
            if let Some(v) = &handshake.v {
                peer.client = Some(super::snapshot::client_name(v));
            }
            self.pex_negotiated(now, key, handshake.id_for("ut_pex"));
            self.on_metadata_handshake(now, key, &handshake)?;
        } else if id == UT_PEX_ID && self.config.pex_enabled() {
            self.on_pex(key, payload)?;
        } else if id == UT_METADATA_ID && self.metadata_advert().0 {
            self.on_metadata_message(now, key, payload)?;
        }
        Ok(())
    }

    fn on_bitfield(&mut self, now: Instant, key: PeerKey, bytes: &Bytes) -> Result<(), Violation> {
        let bitfield = Bitfield::from_wire(bytes, self.layout.piece_count())?;
        self.picker.peer_bitfield(&bitfield);
        self.set_bitfield(now, key, bitfield);
        Ok(())
    }

    /// Uncounts `key`'s pieces from the picker and empties its bitfield,
    /// before a later bitfield-class message replaces it. Requests already
    /// sent stay pending (the peer rejects or serves them).
    fn forget_availability(&mut self, key: PeerKey) {
        let peer = &mut self.peers[key.0];
        let old = std::mem::replace(&mut peer.bitfield, Bitfield::new(self.layout.piece_count()));
        peer.wanted = 0;
        self.picker.peer_removed(&old);
    }

    /// The peer's bitfield (opening or replacing; have-all, have-none),
    /// already counted by the picker; recomputes our interest.
    pub(super) fn set_bitfield(&mut self, now: Instant, key: PeerKey, bitfield: Bitfield) {
        let pieces: Vec<_> = if self.super_seeder.is_some() {
            bitfield.iter_set().collect()
        } else {
            Vec::new()
        };
        if self.spread.is_some() {
            self.spread_seen(now, bitfield.iter_set());
        }
        let peer = &mut self.peers[key.0];
        peer.wanted = self.settled.lacking_count(&bitfield);
        peer.bitfield = bitfield;
        if self.disconnect_if_both_seeding(key) {
            return;
        }
        for piece in pieces {
            self.super_seed_have(now, key, piece);
        }
        self.update_interest(now, key);
        self.request_from(now, key);
    }

    fn on_have(&mut self, now: Instant, key: PeerKey, piece: u32) -> Result<(), Violation> {
        let piece = self.layout.piece_index(piece)?;
        let peer = &mut self.peers[key.0];
        if !peer.bitfield.set(piece) {
            return Ok(());
        }
        let complete = peer.has_all(self.layout.piece_count());
        self.picker.peer_have(piece, complete);
        self.spread_seen(now, [piece]);
        if self.disconnect_if_both_seeding(key) {
            return Ok(());
        }
        self.super_seed_have(now, key, piece);
        if !self.settled.has(piece) {
            self.peers[key.0].wanted += 1;
            self.update_interest(now, key);
        }
        let peer = &self.peers[key.0];
        // A peer that chokes us can only be asked for its allowed-fast
        // pieces: a HAVE of another piece changes nothing to ask it for.
        if !peer.chokes_us || peer.allowed_fast.contains(&piece) {
            self.request_from(now, key);
        }
        Ok(())
    }

    /// BEP 5 `port`: the peer's DHT node listens on `port` at its IP.
    /// Reported once per new port; ignored without a DHT of our own, on a
    /// private torrent (BEP 27) and for port 0.
    fn on_port(&mut self, key: PeerKey, port: u16) {
        let peer = &mut self.peers[key.0];
        if self.config.active_dht_port().is_none() || port == 0 || peer.dht_port == Some(port) {
            return;
        }
        peer.dht_port = Some(port);
        let addr = SocketAddr::new(peer.addr.ip(), port);
        self.out.report(Event::DhtNodeLearned { peer: key, addr });
    }

    /// BEP 3: a choke drops every pending request; with BEP 6 requests stay
    /// pending until rejected or served, except that nothing new is asked.
    fn on_choke(&mut self, now: Instant, key: PeerKey) {
        let peer = &mut self.peers[key.0];
        peer.chokes_us = true;
        // A seed spreading its first copy frees what it kept for us.
        peer.suggested.clear();
        if peer.fast {
            return;
        }
        self.drop_all_requests(key);
        self.request_from_others(now, key);
    }

    /// Sends Interested / NotInterested to `key` when our interest changed:
    /// we are interested exactly when the peer has a piece we lack.
    pub(super) fn update_interest(&mut self, now: Instant, key: PeerKey) {
        let peer = &mut self.peers[key.0];
        let interested = peer.wanted > 0;
        if interested != peer.am_interested {
            peer.am_interested = interested;
            peer.interested_at = interested.then_some(now);
            let message = if interested {
                Message::Interested
            } else {
                Message::NotInterested
            };
            peer.send(&mut self.out, now, message);
        }
    }

    /// Closes the connection when we and `key` are both seeders; `true` if so.
    pub(super) fn disconnect_if_both_seeding(&mut self, key: PeerKey) -> bool {
        let both = self.is_finished() && self.peers[key.0].bitfield.is_complete();
        if both {
            self.disconnect(key, DisconnectReason::BothSeeding);
        }
        both
    }
}
