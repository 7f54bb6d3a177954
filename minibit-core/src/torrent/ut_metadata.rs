//! BEP 9 `ut_metadata` inside a [`Torrent`]: the torrent's metadata
//! phases, serving the info dictionary to peers, and, for a torrent
//! started from a magnet link, becoming a normal torrent once the driver
//! has opened storage ([`Torrent::metadata_ready`]); the fetch itself is
//! in `metadata_fetch`.
//!
//! While the metadata is unknown the torrent runs with a one-piece
//! placeholder layout: it connects, announces and keeps its peers like any
//! torrent, and keeps each peer's bitfield, have-all / have-none and HAVEs
//! aside ([`PendingAvailability`]) until the piece count is known.

use std::time::{Duration, Instant};

use bytes::Bytes;
use sha1::{Digest, Sha1};

use crate::bitfield::Bitfield;
use crate::metadata::FetchError;
use crate::metainfo::Metainfo;
use crate::picker::PiecePicker;
use crate::piece::Layout;
use crate::priority::PiecePriorities;
use crate::wire::{
    ExtendedHandshake, MAX_METADATA_SIZE, METADATA_PIECE_LEN, Message, MetadataMessage,
    metadata_piece_count,
};

use super::metadata_fetch::Fetch;
use super::pending::PendingAvailability;
use super::types::{DisconnectReason, MetadataMisuse, MetadataPhase, PeerKey, Violation};
use super::{Torrent, apply_priorities};

/// The extended message id under which we receive `ut_metadata` (the `m`
/// entry of our extended handshake; 2 as in libtorrent).
pub(super) const UT_METADATA_ID: u8 = 2;

/// Piece length and size of the placeholder layout, bytes: announces
/// while fetching say `left` = 16384, as libtorrent's do.
const PLACEHOLDER_LEN: u64 = 16 * 1024;

/// The one-piece layout of a torrent whose metadata is unknown.
pub(super) fn placeholder_layout() -> Layout {
    Layout::new(PLACEHOLDER_LEN, &[PLACEHOLDER_LEN]).expect("16 KiB in one piece is a valid layout")
}

/// The torrent's metadata.
#[derive(Clone, Debug)]
pub(super) enum MetadataState {
    /// The layout is known; the info dictionary is served if we hold it.
    Ready(Option<Bytes>),
    /// Started from a magnet link: fetching.
    Fetching(Fetch),
    /// Verified and parsed: served, waiting for the driver's storage.
    AwaitingStorage {
        info: Bytes,
        metainfo: Box<Metainfo>,
    },
    /// Verified but not a usable torrent.
    Unusable,
}

impl MetadataState {
    pub(super) fn phase(&self) -> MetadataPhase {
        match self {
            Self::Ready(_) => MetadataPhase::Ready,
            Self::Fetching(_) => MetadataPhase::Fetching,
            Self::AwaitingStorage { .. } => MetadataPhase::AwaitingStorage,
            Self::Unusable => MetadataPhase::Unusable,
        }
    }

    /// The info dictionary, when we hold it.
    pub(super) fn info(&self) -> Option<&Bytes> {
        match self {
            Self::Ready(info) => info.as_ref(),
            Self::AwaitingStorage { info, .. } => Some(info),
            Self::Fetching(_) | Self::Unusable => None,
        }
    }

    /// Whether the layout is the real one (not the placeholder).
    pub(super) fn layout_known(&self) -> bool {
        matches!(self, Self::Ready(_))
    }
}

/// `ut_metadata` state of one peer.
#[derive(Debug, Default)]
pub(super) struct PeerMetadata {
    /// Unique within the torrent (peer keys are reused): names the peer
    /// in the [`MetadataFetch`], so blame never lands on a newcomer.
    pub(super) serial: u64,
    /// The extended id the peer receives `ut_metadata` under.
    pub(super) id: Option<u8>,
    /// `metadata_size` from its extended handshake, bytes.
    pub(super) size: Option<u64>,
    /// Pieces asked of it, with when.
    pub(super) asked: Vec<(u32, Instant)>,
    /// It rejected or did not answer: not asked again before this.
    pub(super) resting_until: Option<Instant>,
    /// How often it rejected or did not answer: peers with fewer are
    /// asked first, so a silent peer never starves an honest one.
    pub(super) misses: u32,
    /// Data messages we answered it with.
    pub(super) answered: u32,
    /// Its availability while the piece count is unknown.
    pub(super) pending: PendingAvailability,
}

impl PeerMetadata {
    /// The earliest metadata timer of the peer: a request timing out
    /// after `timeout`, or its rest ending.
    pub(super) fn deadline(&self, timeout: Duration) -> Option<Instant> {
        let oldest = self.asked.iter().map(|&(_, sent)| sent + timeout).min();
        oldest.into_iter().chain(self.resting_until).min()
    }
}

impl Torrent {
    /// A torrent started from a magnet link (BEP 9): it has only the
    /// info-hash. It announces (`left` = 16384), dials and accepts peers
    /// like any torrent, fetches the info dictionary from the peers that
    /// advertise `ut_metadata` (up to two 16 KiB pieces asked of each at
    /// once), reports [`Event::MetadataReceived`](super::Event::MetadataReceived) once it hashes to
    /// `info_hash`, and downloads after [`Torrent::metadata_ready`].
    ///
    /// Hostile peers: a `metadata_size` of 0 or above 8 MiB
    /// ([`MAX_METADATA_SIZE`]) is refused before anything is allocated; a
    /// piece out of range, of the wrong length or of another total size,
    /// and metadata that does not hash to the info-hash, disconnect the
    /// peer that sent it ([`Violation::Metadata`], [`Violation::MetadataHash`])
    /// and the pieces are asked of others. A peer that rejects a piece or
    /// does not answer within [`super::TorrentConfig::request_timeout`] is
    /// not asked again for that long.
    pub fn from_magnet(
        config: super::TorrentConfig,
        info_hash: crate::metainfo::InfoHash,
        peer_id: crate::wire::PeerId,
        now: Instant,
    ) -> Self {
        let layout = placeholder_layout();
        let have = Bitfield::new(layout.piece_count());
        let mut torrent = Self::new(config, info_hash, peer_id, layout, have, now);
        torrent.metadata = MetadataState::Fetching(Fetch::default());
        torrent
    }

    /// Where the torrent stands with its metadata.
    pub fn metadata_phase(&self) -> MetadataPhase {
        self.metadata.phase()
    }

    /// The bencoded info dictionary, when we hold it (served to peers).
    pub fn info_bytes(&self) -> Option<&Bytes> {
        self.metadata.info()
    }

    /// Serves `info` (the exact bencoded info dictionary the info-hash was
    /// computed over, e.g. [`Metainfo::info_bytes`]) to peers with BEP 9
    /// `ut_metadata`, private torrents too (BEP 27 forbids only PEX and
    /// the DHT). Connected peers get a new extended handshake with
    /// `metadata_size` (BEP 10 handshakes are additive).
    ///
    /// # Errors
    /// [`MetadataMisuse::WrongInfoHash`] when `info` does not hash to the
    /// info-hash; [`MetadataMisuse::Magnet`] for a torrent that fetches its
    /// metadata itself.
    pub fn set_info_bytes(&mut self, now: Instant, info: Bytes) -> Result<(), MetadataMisuse> {
        let now = self.clock(now);
        if !self.metadata.layout_known() {
            return Err(MetadataMisuse::Magnet);
        }
        if Sha1::digest(&info).as_slice() != self.info_hash.0 {
            return Err(MetadataMisuse::WrongInfoHash);
        }
        self.metadata = MetadataState::Ready(Some(info));
        let handshake = self.extended_handshake();
        for (_, peer) in &mut self.peers {
            if peer.extensions && !peer.closing {
                peer.send(&mut self.out, now, handshake.clone());
            }
        }
        Ok(())
    }

    /// The driver opened storage after [`Event::MetadataReceived`](super::Event::MetadataReceived); `have`
    /// holds the pieces already verified on disk (all clear for a fresh
    /// download; a wrong length counts as all clear). The torrent takes
    /// the real layout (and BEP 27 `private`: PEX stops), applies what its
    /// peers reported so far (a peer whose bitfield or HAVEs do not fit
    /// the torrent is disconnected), tells them our pieces with HAVEs,
    /// and starts requesting.
    ///
    /// # Errors
    /// [`MetadataMisuse::NotAwaitingStorage`] unless
    /// [`Torrent::metadata_phase`] is [`MetadataPhase::AwaitingStorage`].
    pub fn metadata_ready(&mut self, now: Instant, have: Bitfield) -> Result<(), MetadataMisuse> {
        let now = self.clock(now);
        let state = std::mem::replace(&mut self.metadata, MetadataState::Ready(None));
        let MetadataState::AwaitingStorage { info, metainfo } = state else {
            self.metadata = state;
            return Err(MetadataMisuse::NotAwaitingStorage);
        };
        self.metadata = MetadataState::Ready(Some(info));
        if metainfo.info().private() {
            self.config.private = true;
            for (_, peer) in &mut self.peers {
                peer.pex = None;
            }
        }
        self.install_layout(now, metainfo.layout().clone(), have);
        Ok(())
    }

    /// A fresh torrent for the same info-hash with `config` (a session
    /// resuming a paused torrent): the pieces verified, the metadata and
    /// what was learned from it (BEP 27 `private`) carry over.
    pub(crate) fn restarted(&self, mut config: super::TorrentConfig, now: Instant) -> Self {
        config.private |= self.config.private;
        let (info_hash, peer_id) = (self.info_hash, self.peer_id);
        if self.metadata.layout_known() {
            let mut torrent = Self::new(
                config,
                info_hash,
                peer_id,
                self.layout.clone(),
                self.have.clone(),
                now,
            );
            torrent.metadata = self.metadata.clone();
            return torrent;
        }
        let mut torrent = Self::from_magnet(config, info_hash, peer_id, now);
        if let MetadataState::AwaitingStorage { .. } = self.metadata {
            torrent.metadata = self.metadata.clone();
        }
        torrent
    }

    /// What our extended handshake says of BEP 9: whether we speak
    /// `ut_metadata` (we hold the metadata or fetch it) and its size.
    pub(super) fn metadata_advert(&self) -> (bool, Option<u32>) {
        let speaks = !matches!(self.metadata, MetadataState::Ready(None));
        let size = self.metadata.info().map(|info| info.len() as u32);
        (speaks, size)
    }

    /// While the piece count is unknown: keeps `message` aside if it says
    /// what the peer has (BEP 6 suggest and allowed-fast are dropped);
    /// `None` for the other messages.
    pub(super) fn buffer_availability(
        &mut self,
        key: PeerKey,
        message: &Message,
    ) -> Option<Result<(), Violation>> {
        let peer = &mut self.peers[key.0];
        let pending = &mut peer.metadata.pending;
        let result = match message {
            Message::Bitfield(bytes) => pending.bitfield(bytes.clone()),
            Message::Have { piece } => pending.have(*piece),
            Message::HaveAll => {
                pending.have_all();
                Ok(())
            }
            Message::HaveNone => {
                pending.have_none();
                Ok(())
            }
            Message::Suggest { .. } | Message::AllowedFast { .. } => Ok(()),
            _ => return None,
        };
        peer.started = true;
        Some(result)
    }

    /// The BEP 9 part of a peer's extended handshake: its `ut_metadata` id
    /// and `metadata_size`; while fetching, a size of 0 or above the cap is
    /// a lie, and the peer is asked for pieces.
    pub(super) fn on_metadata_handshake(
        &mut self,
        now: Instant,
        key: PeerKey,
        handshake: &ExtendedHandshake,
    ) -> Result<(), Violation> {
        let fetching = matches!(self.metadata, MetadataState::Fetching(_));
        let peer = &mut self.peers[key.0].metadata;
        if handshake.m.contains_key("ut_metadata") {
            peer.id = handshake.id_for("ut_metadata");
        }
        if let Some(size) = handshake.metadata_size {
            let size = u64::from(size);
            if fetching && (size == 0 || size > MAX_METADATA_SIZE as u64) {
                return Err(FetchError::BadSize(size).into());
            }
            peer.size = Some(size);
        }
        self.request_metadata_all(now);
        Ok(())
    }

    /// A `ut_metadata` message from `key`.
    pub(super) fn on_metadata_message(
        &mut self,
        now: Instant,
        key: PeerKey,
        payload: &Bytes,
    ) -> Result<(), Violation> {
        match MetadataMessage::decode(payload)? {
            MetadataMessage::Request { piece } => self.answer_metadata(now, key, piece),
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => self.metadata_data(now, key, piece, total_size, &data)?,
            MetadataMessage::Reject { piece } => self.metadata_rejected(now, key, piece),
        }
        Ok(())
    }

    /// Answers a request: the piece, or a reject when we do not hold the
    /// metadata, the index is out of range, or the peer was answered two
    /// whole copies already. Nothing when the peer did not advertise
    /// `ut_metadata` (no id to answer under).
    fn answer_metadata(&mut self, now: Instant, key: PeerKey, piece: u32) {
        let peer = &mut self.peers[key.0];
        let Some(id) = peer.metadata.id else {
            return;
        };
        let data = self.metadata.info().and_then(|info| {
            let count = metadata_piece_count(info.len());
            let cap = 2 * count as u32;
            let start = piece as usize * METADATA_PIECE_LEN;
            ((piece as usize) < count && peer.metadata.answered < cap).then(|| {
                let end = (start + METADATA_PIECE_LEN).min(info.len());
                (info.len() as u32, info.slice(start..end))
            })
        });
        let reply = match data {
            Some((total_size, data)) => {
                peer.metadata.answered += 1;
                MetadataMessage::Data {
                    piece,
                    total_size,
                    data,
                }
            }
            None => MetadataMessage::Reject { piece },
        };
        peer.send(&mut self.out, now, reply.to_message(id));
    }

    /// Takes the real `layout` (after the metadata arrived): pieces,
    /// picker and priorities, each peer's availability kept so far.
    fn install_layout(&mut self, now: Instant, layout: Layout, have: Bitfield) {
        let pieces = layout.piece_count();
        let have = if have.len() == pieces {
            have
        } else {
            Bitfield::new(pieces)
        };
        self.picker = PiecePicker::new(&layout, &have, self.config.picker, self.picker_seed);
        let priorities = PiecePriorities::from_files(&layout, &self.config.file_priorities);
        self.settled = apply_priorities(&mut self.picker, &priorities, &have);
        self.layout = layout;
        self.have = have;
        let keys: Vec<PeerKey> = self.peers.iter().map(|(_, p)| p.key).collect();
        for key in keys {
            let peer = &mut self.peers[key.0];
            peer.bitfield = Bitfield::new(pieces);
            peer.wanted = 0;
            let pending = std::mem::take(&mut peer.metadata.pending);
            if peer.closing {
                continue;
            }
            let bitfield = match pending.resolve(pieces) {
                Ok(bitfield) => bitfield,
                Err(violation) => {
                    self.disconnect(key, DisconnectReason::ProtocolViolation(violation));
                    continue;
                }
            };
            for piece in self.have.iter_set() {
                peer.send(&mut self.out, now, Message::Have { piece: piece.get() });
            }
            self.picker.peer_bitfield(&bitfield);
            self.set_bitfield(now, key, bitfield);
            self.offer_allowed_fast(now, key);
        }
        if self.is_finished() {
            self.finished(now);
        }
    }
}
