//! Per-peer connection state (BEP 3 "peer protocol": choked/interested on
//! both sides, the peer's bitfield) plus our requests to it, its requests
//! to us, and the instants the timers need.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::bitfield::Bitfield;
use crate::choker::PeerStats;
use crate::piece::{BLOCK_SIZE, BlockRef, PieceIndex};
use crate::rate::{DEFAULT_WINDOW, RateEstimator};
use crate::wire::{Message, PeerId};

use super::outbox::Outbox;
use super::pex::PexState;
use super::types::{Action, PeerKey};
use super::ut_metadata::PeerMetadata;

/// Most BEP 6 allowed-fast pieces kept per peer (BEP 6 suggests k = 10).
const MAX_ALLOWED_FAST: usize = 32;

/// Most BEP 6 suggestions kept per peer (the newest win).
const MAX_SUGGESTED: usize = 16;

/// The request pipeline covers at least this many round trips at the
/// peer's rate: one for the request and the block to travel, the rest for
/// the peer's queue to ride out its other uploads and a reject's round
/// trip (matters beyond 125 ms round trips, where the 0.5 s
/// `pipeline_target` alone would leave the link idle).
const PIPELINE_ROUND_TRIPS: u32 = 4;

/// Window of the rate that sizes the request pipeline: short, so that the
/// pipeline follows a new unchoke within a few round trips (sized from
/// the choker's 20 s [`DEFAULT_WINDOW`], each block received added a
/// tenth of a request: seconds of ramp at 100 ms).
const PIPELINE_RATE_WINDOW: Duration = Duration::from_secs(2);

/// One block request we sent to the peer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct Outstanding {
    /// The block asked for.
    pub(super) block: BlockRef,
    /// When the request was sent.
    pub(super) sent: Instant,
}

/// State of one connected peer.
// The four choke/interest bits are BEP 3's connection state.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug)]
pub(super) struct Peer {
    pub(super) key: PeerKey,
    pub(super) addr: SocketAddr,
    /// The peer id from its handshake.
    pub(super) id: PeerId,
    /// We asked the driver to close the connection: ignore the peer.
    pub(super) closing: bool,
    /// Both sides set the BEP 10 extension-protocol bit.
    pub(super) extensions: bool,
    /// The DHT port of the peer's last BEP 5 `port` message (each new one
    /// is reported once).
    pub(super) dht_port: Option<u16>,
    /// We dialled the connection (outbound).
    pub(super) outbound: bool,
    /// Most outstanding requests the peer queues (BEP 10 `reqq`), if it said.
    pub(super) reqq: Option<usize>,
    /// The peer's BEP 10 extended handshake arrived.
    pub(super) extended_handshake: bool,
    /// The peer's TCP listen port (BEP 10 `p`), if it said.
    pub(super) listen_port: Option<u16>,
    /// Its client name (BEP 10 `v`, made printable), if it said.
    pub(super) client: Option<String>,
    /// BEP 11 peer exchange with this peer, once it advertised `ut_pex`.
    pub(super) pex: Option<PexState>,
    /// Its listen address is dialled again (after a back-off) when the
    /// connection ends; false once we closed it for a reason that makes a
    /// new connection pointless (violation, ban, both seeding, duplicate).
    pub(super) redial: bool,
    /// Both sides set the BEP 6 fast-extension bit.
    pub(super) fast: bool,
    /// Pieces the peer has.
    pub(super) bitfield: Bitfield,
    /// How many of the peer's pieces we lack: we are interested exactly
    /// while this is non-zero (kept on every HAVE and every piece we
    /// complete, so interest never rescans the bitfield).
    pub(super) wanted: u32,
    /// A message other than keep-alive, port or extended arrived (a
    /// bitfield, have-all or have-none must come before any).
    pub(super) started: bool,
    /// We choke the peer (connections start choked, BEP 3).
    pub(super) am_choking: bool,
    /// We told the peer we are interested.
    pub(super) am_interested: bool,
    /// The peer chokes us.
    pub(super) chokes_us: bool,
    /// The peer is interested in us.
    pub(super) interested_in_us: bool,
    /// Our requests to the peer, oldest first.
    pub(super) outstanding: Vec<Outstanding>,
    /// Pieces the peer lets us request while choked (BEP 6 allowed fast).
    pub(super) allowed_fast: BTreeSet<PieceIndex>,
    /// Pieces we let the peer request while we choke it (BEP 6 allowed fast).
    pub(super) allowed_fast_out: BTreeSet<PieceIndex>,
    /// Pieces the peer rejected a request for (BEP 6): not asked for
    /// again until it unchokes us anew, suggests them, or our next rechoke
    /// round (a seed spreading its first copy keeps pieces for other
    /// peers; asking again at once would only bring more rejects).
    pub(super) rejected: BTreeSet<PieceIndex>,
    /// Pieces the peer suggested (BEP 6), newest last: picked first.
    pub(super) suggested: VecDeque<PieceIndex>,
    /// Requests from the peer waiting for a [`Action::ReadBlock`].
    pub(super) queued: VecDeque<BlockRef>,
    /// Requests from the peer with a [`Action::ReadBlock`] in flight.
    pub(super) reading: Vec<BlockRef>,
    /// When the connection was accepted.
    pub(super) connected_at: Instant,
    /// When we last sent the peer anything.
    pub(super) last_sent: Instant,
    /// When the peer last sent anything.
    pub(super) last_received: Instant,
    /// When the peer last sent a block we asked for (anti-snubbing).
    pub(super) last_block: Option<Instant>,
    /// The choker found the peer snubbed, or a request to it timed out:
    /// the pipeline shrinks to one block until a block arrives.
    pub(super) snubbed: bool,
    /// Requests we gave up on (timeout, cancel, choke), newest last: a late
    /// block for one of them is still accepted; a block that is neither
    /// here nor outstanding was never requested.
    pub(super) dropped: VecDeque<BlockRef>,
    /// When the peer last unchoked us.
    pub(super) unchoked_us_at: Option<Instant>,
    /// When we last became interested in the peer.
    pub(super) interested_at: Option<Instant>,
    /// Payload bytes received from the peer (bytes/s estimator).
    pub(super) download: RateEstimator,
    /// The same over [`PIPELINE_RATE_WINDOW`]: the rate the request
    /// pipeline is sized from.
    pub(super) pipeline_rate: RateEstimator,
    /// Shortest time from a request to its block seen on this connection:
    /// the round trip without queueing (plus one block's transmission).
    pub(super) min_rtt: Option<Duration>,
    /// Payload bytes sent to the peer (bytes/s estimator).
    pub(super) upload: RateEstimator,
    /// BEP 9 `ut_metadata` with this peer.
    pub(super) metadata: PeerMetadata,
}

impl Peer {
    pub(super) fn new(
        key: PeerKey,
        addr: SocketAddr,
        id: PeerId,
        fast: bool,
        pieces: u32,
        now: Instant,
    ) -> Self {
        Self {
            key,
            addr,
            id,
            closing: false,
            outbound: false,
            extensions: false,
            dht_port: None,
            reqq: None,
            extended_handshake: false,
            listen_port: None,
            client: None,
            pex: None,
            redial: true,
            fast,
            bitfield: Bitfield::new(pieces),
            wanted: 0,
            started: false,
            am_choking: true,
            am_interested: false,
            chokes_us: true,
            interested_in_us: false,
            outstanding: Vec::new(),
            allowed_fast: BTreeSet::new(),
            rejected: BTreeSet::new(),
            suggested: VecDeque::new(),
            allowed_fast_out: BTreeSet::new(),
            queued: VecDeque::new(),
            reading: Vec::new(),
            connected_at: now,
            last_sent: now,
            last_received: now,
            last_block: None,
            snubbed: false,
            dropped: VecDeque::new(),
            unchoked_us_at: None,
            interested_at: None,
            download: RateEstimator::new(DEFAULT_WINDOW, now),
            pipeline_rate: RateEstimator::new(PIPELINE_RATE_WINDOW, now),
            min_rtt: None,
            upload: RateEstimator::new(DEFAULT_WINDOW, now),
            metadata: PeerMetadata::default(),
        }
    }

    /// Queues `message` to the peer and notes the send time (keep-alive timer).
    pub(super) fn send(&mut self, out: &mut Outbox, now: Instant, message: Message) {
        self.last_sent = now;
        out.act(Action::Send {
            peer: self.key,
            message,
        });
    }

    /// The address the peer accepts connections on: the one we dialled,
    /// or for an inbound peer its IP with the BEP 10 `p` it sent (the
    /// source port of an inbound connection is ephemeral).
    pub(super) fn listen_addr(&self) -> Option<SocketAddr> {
        if self.outbound {
            return Some(self.addr);
        }
        self.listen_port
            .filter(|&port| port != 0)
            .map(|port| SocketAddr::new(self.addr.ip(), port))
    }

    /// Records a BEP 6 suggestion, forgetting the oldest beyond [`MAX_SUGGESTED`].
    pub(super) fn suggest(&mut self, piece: PieceIndex) {
        self.rejected.remove(&piece);
        if self.suggested.contains(&piece) {
            return;
        }
        if self.suggested.len() == MAX_SUGGESTED {
            self.suggested.pop_front();
        }
        self.suggested.push_back(piece);
    }

    /// Records a BEP 6 allowed-fast piece (at most [`MAX_ALLOWED_FAST`]);
    /// `true` when it is new.
    pub(super) fn allow_fast(&mut self, piece: PieceIndex) -> bool {
        self.allowed_fast.len() < MAX_ALLOWED_FAST && self.allowed_fast.insert(piece)
    }

    /// BEP 6: whether the peer may get `piece` while we choke it: the piece
    /// is in its allowed-fast set and it holds fewer than `k` pieces.
    pub(super) fn may_fetch_choked(&self, piece: PieceIndex, k: usize) -> bool {
        self.allowed_fast_out.contains(&piece) && (self.bitfield.count() as usize) < k
    }

    /// Whether the peer has every piece of a torrent of `pieces` pieces.
    pub(super) fn has_all(&self, pieces: u32) -> bool {
        self.bitfield.count() == pieces
    }

    /// Remembers a request we gave up on, forgetting the oldest beyond
    /// `limit`.
    pub(super) fn remember_dropped(&mut self, block: BlockRef, limit: usize) {
        while self.dropped.len() >= limit.max(1) {
            self.dropped.pop_front();
        }
        self.dropped.push_back(block);
    }

    /// Removes `block` from the requests we gave up on; `true` if it was one.
    pub(super) fn take_dropped(&mut self, block: BlockRef) -> bool {
        let position = self.dropped.iter().position(|&b| b == block);
        position.is_some_and(|i| self.dropped.remove(i).is_some())
    }

    /// The peer as the choker sees it, given the pieces we `have`. The
    /// choker ranks only interested peers, so the rates and the count of
    /// our pieces a peer not interested in us lacks are left at 0 (a
    /// rechoke then costs no rate query nor bitfield scan for the idle
    /// part of the swarm).
    pub(super) fn choker_stats(&self, now: Instant, have: &Bitfield) -> PeerStats {
        let can_download_since = match (self.chokes_us, self.am_interested) {
            (false, true) => self.unchoked_us_at.max(self.interested_at),
            _ => None,
        };
        let rate = |estimator: &RateEstimator| {
            if self.interested_in_us {
                estimator.rate(now)
            } else {
                0.0
            }
        };
        PeerStats {
            peer: self.key,
            interested: self.interested_in_us,
            choked: self.am_choking,
            download_rate: rate(&self.download),
            upload_rate: rate(&self.upload),
            downloaded: self.download.total(),
            wants_from_us: if self.interested_in_us {
                self.bitfield.lacking_count(have)
            } else {
                0
            },
            connected_at: self.connected_at,
            can_download_since,
            last_block_at: self.last_block,
        }
    }

    /// Removes the outstanding request for `block`; when it was sent if
    /// there was one.
    pub(super) fn take_outstanding(&mut self, block: BlockRef) -> Option<Instant> {
        let position = self.outstanding.iter().position(|o| o.block == block)?;
        Some(self.outstanding.remove(position).sent)
    }

    /// A block of `bytes` we asked for arrived at `now`; `requested` is
    /// when we asked for it, if it was still outstanding (a round-trip
    /// sample).
    pub(super) fn block_arrived(&mut self, now: Instant, bytes: u64, requested: Option<Instant>) {
        if let Some(sent) = requested {
            let rtt = now.saturating_duration_since(sent);
            self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        }
        self.last_block = Some(now);
        self.snubbed = false;
        self.download.record(now, bytes);
        self.pipeline_rate.record(now, bytes);
    }

    /// How many requests the pipeline to this peer should hold: `min`
    /// plus what the peer's download rate (over the last two seconds; on
    /// a younger connection over its age but at least one round trip)
    /// covers in `target` or in [`PIPELINE_ROUND_TRIPS`] measured round
    /// trips, whichever is longer; capped at `max` and at the peer's
    /// `reqq`; one block while snubbed.
    pub(super) fn pipeline_cap(
        &self,
        now: Instant,
        min: usize,
        target: Duration,
        max: usize,
    ) -> usize {
        if self.snubbed {
            return 1;
        }
        let rtt = self.min_rtt.unwrap_or_default();
        let rate = self.pipeline_rate.rate_over_at_least(now, rtt);
        let cover = (rtt * PIPELINE_ROUND_TRIPS).max(target);
        let extra = (rate * cover.as_secs_f64() / f64::from(BLOCK_SIZE)) as usize;
        min.saturating_add(extra)
            .min(max)
            .min(self.reqq.unwrap_or(usize::MAX))
            .max(1)
    }

    /// When the oldest outstanding request times out after `timeout`.
    pub(super) fn request_deadline(&self, timeout: Duration) -> Option<Instant> {
        self.outstanding.first().map(|o| o.sent + timeout)
    }
}
