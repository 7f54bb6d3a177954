//! [`Connections`]: the session-wide connection table, one slab whose
//! entries are dialling, handshaking or bound to a torrent's peer.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Instant;

use slab::Slab;

use crate::id::{ConnectionId, PeerKey, TorrentId};
use crate::torrent::Direction;

/// Where a connection stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// We are dialling for `torrent`; the TCP connection is not up yet.
    Dialing {
        /// The torrent that asked for the dial.
        torrent: TorrentId,
    },
    /// Connected, waiting for the remote handshake. `torrent` is known for
    /// our dials and unknown for inbound connections until the
    /// initiator's handshake names an info-hash.
    Handshaking {
        /// The torrent, for outbound connections.
        torrent: Option<TorrentId>,
        /// Who opened the connection.
        direction: Direction,
        /// The instant the handshake must be done by.
        deadline: Instant,
    },
    /// The handshake was accepted: the connection is `peer` of `torrent`.
    Bound {
        /// The torrent.
        torrent: TorrentId,
        /// The peer's key inside that torrent.
        peer: PeerKey,
    },
}

impl ConnectionState {
    /// The torrent the connection belongs to, if known yet.
    pub fn torrent(&self) -> Option<TorrentId> {
        match *self {
            Self::Dialing { torrent } | Self::Bound { torrent, .. } => Some(torrent),
            Self::Handshaking { torrent, .. } => torrent,
        }
    }

    /// Whether the connection is ours and not bound yet (dialling or
    /// waiting for the remote handshake).
    pub(super) fn is_outbound_half_open(&self) -> bool {
        matches!(
            self,
            Self::Dialing { .. }
                | Self::Handshaking {
                    direction: Direction::Outbound,
                    ..
                }
        )
    }
}

/// One connection.
#[derive(Clone, Debug)]
pub(super) struct Connection {
    pub(super) id: ConnectionId,
    pub(super) addr: SocketAddr,
    pub(super) state: ConnectionState,
}

/// The connection table: a slab (a freed slot is reused) whose ids carry a
/// sequence number, so an id is never reused; plus an index of the
/// handshaking connections by deadline (the oldest first) and a count of
/// the dials in progress.
#[derive(Debug, Default)]
pub(super) struct Connections {
    slab: Slab<Connection>,
    /// Bumped for each new connection: the high 32 bits of its id.
    sequence: u32,
    /// Handshaking connections by deadline; all share one timeout, so
    /// the first is also the oldest.
    handshaking: BTreeSet<(Instant, ConnectionId)>,
    dialing: usize,
}

impl Connections {
    /// Adds a connection to `addr` in `state`.
    pub(super) fn insert(&mut self, addr: SocketAddr, state: ConnectionState) -> ConnectionId {
        self.sequence = self.sequence.wrapping_add(1);
        let entry = self.slab.vacant_entry();
        let id = ConnectionId((u64::from(self.sequence) << 32) | entry.key() as u64);
        entry.insert(Connection { id, addr, state });
        self.index(id, state);
        id
    }

    /// The connection `id`, if it is still in the table.
    pub(super) fn get(&self, id: ConnectionId) -> Option<&Connection> {
        self.slab
            .get(Self::slot(id))
            .filter(|connection| connection.id == id)
    }

    /// Moves `id` to `state`.
    pub(super) fn set_state(&mut self, id: ConnectionId, state: ConnectionState) {
        let Some(old) = self.get(id).map(|c| c.state) else {
            return;
        };
        self.unindex(id, old);
        self.slab[Self::slot(id)].state = state;
        self.index(id, state);
    }

    /// Removes `id` from the table.
    pub(super) fn remove(&mut self, id: ConnectionId) -> Option<Connection> {
        let state = self.get(id)?.state;
        self.unindex(id, state);
        Some(self.slab.remove(Self::slot(id)))
    }

    /// Every connection in the table.
    pub(super) fn len(&self) -> usize {
        self.slab.len()
    }

    /// Connections waiting for the remote handshake.
    pub(super) fn handshaking(&self) -> usize {
        self.handshaking.len()
    }

    /// Dials in progress.
    pub(super) fn dialing(&self) -> usize {
        self.dialing
    }

    /// The handshaking connection with the earliest deadline (the oldest).
    pub(super) fn oldest_handshaking(&self) -> Option<(Instant, ConnectionId)> {
        self.handshaking.first().copied()
    }

    /// Every connection, in slot order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Connection> {
        self.slab.iter().map(|(_, connection)| connection)
    }

    fn slot(id: ConnectionId) -> usize {
        (id.0 & u64::from(u32::MAX)) as usize
    }

    fn index(&mut self, id: ConnectionId, state: ConnectionState) {
        match state {
            ConnectionState::Dialing { .. } => self.dialing += 1,
            ConnectionState::Handshaking { deadline, .. } => {
                self.handshaking.insert((deadline, id));
            }
            ConnectionState::Bound { .. } => {}
        }
    }

    fn unindex(&mut self, id: ConnectionId, state: ConnectionState) {
        match state {
            ConnectionState::Dialing { .. } => self.dialing -= 1,
            ConnectionState::Handshaking { deadline, .. } => {
                self.handshaking.remove(&(deadline, id));
            }
            ConnectionState::Bound { .. } => {}
        }
    }
}
