//! Identifiers shared by every module of the core: a leaf module that
//! imports nothing from the crate, so anything may import it without
//! creating a cycle.
//!
//! | identifier | names | handed out by |
//! |---|---|---|
//! | [`PeerKey`] | a connected peer inside one torrent | [`Torrent::handle_handshake`](crate::torrent::Torrent::handle_handshake) |
//! | [`TorrentId`] | a torrent inside a session | [`Session::add_torrent`](crate::session::Session::add_torrent) |
//! | [`ConnectionId`] | a connection inside a session, from its accept (or dial) to its close | [`Session::handle_incoming`](crate::session::Session::handle_incoming) and the session's dials |

/// Opaque key of a connected peer, handed out by
/// [`Torrent::handle_handshake`](crate::torrent::Torrent::handle_handshake).
/// Valid until the peer disconnects; a later peer may reuse the number.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub usize);

/// Opaque key of a torrent inside a [`Session`](crate::session::Session).
/// Valid until the torrent is removed; numbers are never reused within
/// one session, so a stale id never reaches another torrent.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TorrentId(pub u64);

/// Session-wide handle of one connection (inbound or dialled), valid from
/// the moment the session learns of it until the driver reports it closed.
/// Numbers are never reused within one session, so a late report about a
/// closed connection never touches a newer one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl std::fmt::Display for TorrentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "torrent#{}", self.0)
    }
}

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}
