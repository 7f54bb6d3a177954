//! Fetching a magnet link's info dictionary (BEP 9) inside a
//! [`Torrent`]: which peer is asked for which `ut_metadata` piece, rejects
//! and silence, pieces that are lies, and the SHA-1 check, after which the
//! torrent waits for storage ([`Event::MetadataReceived`]).

use std::collections::BTreeSet;
use std::time::Instant;

use bytes::Bytes;

use crate::metadata::{MetadataFetch, Progress};
use crate::metainfo::Metainfo;
use crate::wire::MetadataMessage;

use super::Torrent;
use super::types::{DisconnectReason, Event, PeerKey, Violation};
use super::ut_metadata::MetadataState;

/// Metadata pieces asked of one peer at once.
const REQUESTS_PER_PEER: usize = 2;

/// The fetch of a magnet link's metadata.
#[derive(Clone, Debug, Default)]
pub(super) struct Fetch {
    /// Started with the first peer that says `metadata_size`.
    current: Option<MetadataFetch<u64>>,
    /// Set after metadata assembled from several peers failed its hash:
    /// nobody can tell who lied, so from then on one peer at a time (the
    /// soloist) is asked for the whole dictionary, and a mismatch names
    /// exactly the liar.
    solo: bool,
    /// The peer asked in solo mode; when it leaves or rests, its partial
    /// pieces are dropped and the next peer (round-robin by serial, so
    /// every peer gets a turn) starts over.
    soloist: Option<u64>,
    /// The previous soloist.
    last_soloist: Option<u64>,
}

impl Torrent {
    /// A metadata piece from `key`; ignored unless we are fetching and
    /// asked `key` for it (a late answer after a timeout or a restarted
    /// fetch is no lie), but an index out of range always is one.
    pub(super) fn metadata_data(
        &mut self,
        now: Instant,
        key: PeerKey,
        piece: u32,
        total_size: u32,
        data: &[u8],
    ) -> Result<(), Violation> {
        let MetadataState::Fetching(Fetch {
            current: Some(fetch),
            ..
        }) = &mut self.metadata
        else {
            return Ok(());
        };
        let peer = &mut self.peers[key.0].metadata;
        match peer.asked.iter().position(|&(p, _)| p == piece) {
            Some(at) => {
                peer.asked.swap_remove(at);
            }
            None if piece < fetch.piece_count() => return Ok(()),
            None => {}
        }
        match fetch.received(peer.serial, piece, total_size, data)? {
            Progress::Pending => self.request_metadata(now, key),
            Progress::HashMismatch(suspects) => self.metadata_mismatch(now, &suspects),
            Progress::Complete(info) => self.metadata_complete(info),
        }
        Ok(())
    }

    /// `key` rejected `piece`: asked of others; `key` rests.
    pub(super) fn metadata_rejected(&mut self, now: Instant, key: PeerKey, piece: u32) {
        let MetadataState::Fetching(Fetch {
            current: Some(fetch),
            ..
        }) = &mut self.metadata
        else {
            return;
        };
        let peer = &mut self.peers[key.0].metadata;
        let Some(at) = peer.asked.iter().position(|&(p, _)| p == piece) else {
            return;
        };
        peer.asked.swap_remove(at);
        fetch.rejected(peer.serial, piece);
        peer.resting_until = Some(now + self.config.request_timeout);
        peer.misses += 1;
        let serial = peer.serial;
        self.release_soloist(serial);
        self.request_metadata_all(now);
    }

    /// In solo mode, peer `serial` stops being asked (it left or rests):
    /// what it sent is dropped and its requests forgotten, so the next
    /// soloist's dictionary comes from one peer only.
    fn release_soloist(&mut self, serial: u64) {
        let MetadataState::Fetching(fetch) = &mut self.metadata else {
            return;
        };
        if fetch.soloist == Some(serial) {
            fetch.soloist = None;
            fetch.last_soloist = Some(serial);
            fetch.current = None;
            for (_, peer) in &mut self.peers {
                if peer.metadata.serial == serial {
                    peer.metadata.asked.clear();
                }
            }
        }
    }

    /// The assembled metadata did not hash: the fetch starts over (its
    /// size may have been the lie). A lone sender lied and is
    /// disconnected; with several, the liar is unknown and the fetch goes
    /// on one peer at a time (see [`Fetch::solo`]).
    fn metadata_mismatch(&mut self, now: Instant, suspects: &BTreeSet<u64>) {
        let liar = match suspects.len() {
            1 => suspects.first().copied(),
            _ => None,
        };
        self.metadata = MetadataState::Fetching(Fetch {
            current: None,
            solo: true,
            soloist: None,
            last_soloist: liar,
        });
        let keys: Vec<PeerKey> = self.peers.iter().map(|(_, p)| p.key).collect();
        for key in keys {
            let peer = &mut self.peers[key.0];
            peer.metadata.asked.clear();
            if liar == Some(peer.metadata.serial) {
                self.disconnect(
                    key,
                    DisconnectReason::ProtocolViolation(Violation::MetadataHash),
                );
            }
        }
        self.request_metadata_all(now);
    }

    /// Every piece is in and hashes to the info-hash.
    fn metadata_complete(&mut self, info: Vec<u8>) {
        for (_, peer) in &mut self.peers {
            peer.metadata.asked.clear();
        }
        match Metainfo::from_info_bytes(&info) {
            Ok(metainfo) => {
                self.out.report(Event::MetadataReceived {
                    metainfo: Box::new(metainfo.clone()),
                });
                self.metadata = MetadataState::AwaitingStorage {
                    info: Bytes::from(info),
                    metainfo: Box::new(metainfo),
                };
            }
            Err(error) => {
                self.metadata = MetadataState::Unusable;
                self.out.report(Event::MetadataUnusable { error });
            }
        }
    }

    /// The peer with serial `serial` left: the pieces asked of it go to others.
    pub(super) fn metadata_peer_gone(&mut self, now: Instant, serial: u64) {
        if let MetadataState::Fetching(fetch) = &mut self.metadata {
            if let Some(current) = &mut fetch.current {
                current.peer_gone(serial);
            }
            self.release_soloist(serial);
            self.request_metadata_all(now);
        }
    }

    /// While fetching: metadata requests unanswered for
    /// `request_timeout` go to others and their peer rests; every peer
    /// not resting is asked for what is missing.
    pub(super) fn metadata_timers(&mut self, now: Instant) {
        let MetadataState::Fetching(fetch) = &mut self.metadata else {
            return;
        };
        let timeout = self.config.request_timeout;
        let mut rested = Vec::new();
        for (_, peer) in &mut self.peers {
            let state = &mut peer.metadata;
            if state.resting_until.is_some_and(|until| until <= now) {
                state.resting_until = None;
            }
            let before = state.asked.len();
            state.asked.retain(|&(piece, sent)| {
                let expired = sent + timeout <= now;
                if let (true, Some(current)) = (expired, fetch.current.as_mut()) {
                    current.rejected(state.serial, piece);
                }
                !expired
            });
            if state.asked.len() < before {
                state.resting_until = Some(now + timeout);
                state.misses += 1;
                rested.push(state.serial);
            }
        }
        for serial in rested {
            self.release_soloist(serial);
        }
        self.request_metadata_all(now);
    }

    /// Asks every peer that may be asked, those that missed least first.
    pub(super) fn request_metadata_all(&mut self, now: Instant) {
        self.drop_orphaned_fetch();
        self.choose_soloist();
        let mut order: Vec<(u32, u64, PeerKey)> = self
            .peers
            .iter()
            .map(|(_, p)| (p.metadata.misses, p.metadata.serial, p.key))
            .collect();
        order.sort_unstable();
        for (_, _, key) in order {
            self.request_metadata(now, key);
        }
    }

    /// Outside solo mode, drops the current fetch when the peers that may
    /// be asked all say another size (those that said its size left or
    /// rest: it may have been the lie), so the next peer asked starts over
    /// with its own.
    fn drop_orphaned_fetch(&mut self) {
        let MetadataState::Fetching(fetch) = &mut self.metadata else {
            return;
        };
        let Some(size) = fetch.current.as_ref().map(MetadataFetch::size) else {
            return;
        };
        let askable_sizes: BTreeSet<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| p.may_be_asked_for_metadata())
            .filter_map(|(_, p)| p.metadata.size)
            .collect();
        if !fetch.solo && !askable_sizes.is_empty() && !askable_sizes.contains(&u64::from(size)) {
            fetch.current = None;
            for (_, peer) in &mut self.peers {
                peer.metadata.asked.clear();
            }
        }
    }

    /// In solo mode without a soloist: the peer that may be asked with
    /// the next serial after the last soloist (or the lowest), and a
    /// fresh fetch for it.
    fn choose_soloist(&mut self) {
        let MetadataState::Fetching(fetch) = &mut self.metadata else {
            return;
        };
        if !fetch.solo || fetch.soloist.is_some() {
            return;
        }
        let mut candidates: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| p.may_be_asked_for_metadata())
            .map(|(_, p)| p.metadata.serial)
            .collect();
        candidates.sort_unstable();
        let after = fetch.last_soloist.unwrap_or(0);
        let next = candidates
            .iter()
            .find(|&&serial| fetch.last_soloist.is_none() || serial > after)
            .or(candidates.first());
        if let Some(&serial) = next {
            fetch.soloist = Some(serial);
            fetch.current = None;
        }
    }

    /// While fetching, asks `key` for missing pieces (up to
    /// [`REQUESTS_PER_PEER`] outstanding) if it advertised `ut_metadata`
    /// and the size being fetched, is not resting, and (in solo mode) is
    /// the soloist or there is none yet. The first such peer's
    /// `metadata_size` starts the fetch.
    pub(super) fn request_metadata(&mut self, now: Instant, key: PeerKey) {
        let MetadataState::Fetching(fetch) = &mut self.metadata else {
            return;
        };
        let peer = &mut self.peers[key.0];
        let state = &peer.metadata;
        if !peer.may_be_asked_for_metadata() || (fetch.solo && fetch.soloist != Some(state.serial))
        {
            return;
        }
        let (Some(id), Some(size)) = (state.id, state.size) else {
            return;
        };
        let fetch = match &mut fetch.current {
            Some(current) => current,
            empty @ None => match MetadataFetch::new(self.info_hash, size) {
                Ok(new) => empty.insert(new),
                Err(_) => return,
            },
        };
        if u64::from(fetch.size()) != size {
            return;
        }
        while peer.metadata.asked.len() < REQUESTS_PER_PEER {
            let Some(piece) = fetch.next_request(peer.metadata.serial) else {
                break;
            };
            peer.metadata.asked.push((piece, now));
            peer.send(
                &mut self.out,
                now,
                MetadataMessage::Request { piece }.to_message(id),
            );
        }
    }
}

impl super::peer::Peer {
    /// Whether the peer may be asked for metadata pieces: it advertised
    /// `ut_metadata` and `metadata_size`, is not closing and not resting.
    fn may_be_asked_for_metadata(&self) -> bool {
        let state = &self.metadata;
        state.id.is_some() && state.size.is_some() && !self.closing && state.resting_until.is_none()
    }
}
