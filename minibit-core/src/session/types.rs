//! The public vocabulary of a [`super::Session`]: its actions, events,
//! refusals and errors.

use crate::id::{ConnectionId, TorrentId};
use crate::metainfo::InfoHash;
use crate::torrent::{Action, Event, HandshakeRejection, MetadataMisuse};
use crate::wire::Handshake;

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionAction {
    /// An action of one torrent, with the connection it concerns: the
    /// peer's connection for [`Action::Send`], [`Action::Disconnect`] and
    /// [`Action::ReadBlock`]; for [`Action::Connect`] the handle of the new
    /// dial (report it with [`super::Session::handle_connected`] or
    /// [`super::Session::handle_connection_closed`]); `None` for the others.
    Torrent {
        /// The torrent.
        torrent: TorrentId,
        /// The connection, see above.
        conn: Option<ConnectionId>,
        /// What to do.
        action: Action,
    },
    /// Close a connection that is not (or no longer) a torrent's peer;
    /// the session has already forgotten it.
    Close {
        /// The connection.
        conn: ConnectionId,
        /// Why, for the log.
        reason: CloseReason,
    },
    /// Stop reading from every connection: the download limit is spent.
    /// Frames already read are still handed in.
    PauseReading,
    /// Read again (after [`SessionAction::PauseReading`]).
    ResumeReading,
}

/// Something worth reporting to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// An event of one torrent.
    Torrent {
        /// The torrent.
        torrent: TorrentId,
        /// What happened.
        event: Event,
    },
}

/// Why the session closes a connection of its own accord.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// No handshake within [`super::SessionConfig::handshake_timeout`].
    #[error("no handshake in time")]
    HandshakeTimeout,
    /// The handshaking (or connection) cap was full: the oldest
    /// handshaking connection made room for a newer one.
    #[error("evicted to make room for a newer connection")]
    Evicted,
    /// Its IP address was banned.
    #[error("address banned")]
    Banned,
    /// Its torrent was removed or paused.
    #[error("torrent stopped")]
    TorrentStopped,
}

/// Why the session refuses a connection; the driver closes it (the
/// session has already forgotten it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The remote IP address is banned.
    #[error("address banned")]
    Banned,
    /// [`super::SessionConfig::max_connections`] connections are open and
    /// none is handshaking (so none can be evicted).
    #[error("connection limit reached")]
    ConnectionLimit,
    /// The initiator's handshake names a torrent this session does not have.
    #[error("unknown info-hash {0}")]
    UnknownInfoHash(InfoHash),
    /// The torrent is paused.
    #[error("{0} is paused")]
    Paused(TorrentId),
    /// The torrent refused the peer.
    #[error(transparent)]
    Rejected(#[from] HandshakeRejection),
    /// The connection is not in the table (closed, evicted or timed out
    /// meanwhile).
    #[error("unknown connection")]
    UnknownConnection,
    /// A second handshake on a connection already bound, or a handshake
    /// on a dial that has not connected.
    #[error("connection is not waiting for a handshake")]
    NotHandshaking,
}

/// API misuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A torrent with this info-hash is already in the session.
    #[error("torrent {0} is already in the session")]
    DuplicateInfoHash(InfoHash),
    /// No torrent with this id (never added, or removed).
    #[error("no torrent {0}")]
    UnknownTorrent(TorrentId),
    /// A metadata call the torrent cannot take now (BEP 9).
    #[error("torrent {0}: {1}")]
    Metadata(TorrentId, MetadataMisuse),
}

/// An accepted handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routed {
    /// The torrent the connection now belongs to.
    pub torrent: TorrentId,
    /// For an inbound connection, our handshake: write it before anything
    /// [`super::Session::poll_action`] gives for this connection.
    pub reply: Option<Handshake>,
}

/// Counts over the whole session.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Torrents in the session (paused ones included).
    pub torrents: usize,
    /// Connections in the table, whatever their state.
    pub connections: usize,
    /// Connections waiting for the remote handshake.
    pub handshaking: usize,
    /// Dials in progress.
    pub dialing: usize,
    /// Dials waiting for a free dial slot.
    pub queued_dials: usize,
}
