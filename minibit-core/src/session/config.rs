//! [`SessionConfig`]: the global limits of a [`super::Session`].

use std::net::SocketAddr;
use std::time::Duration;

/// Limits shared by every torrent of a [`super::Session`]. `Default` gives
/// libtorrent-like values.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Most connections at once, over all torrents, whatever their state
    /// (dialling, handshaking, bound) (default 200, libtorrent's
    /// `connections_limit`).
    pub max_connections: usize,
    /// Most connections waiting for the remote handshake (default 50).
    /// When full, a new inbound connection evicts the oldest one rather
    /// than being refused: 300 connections that sent five bytes and hang
    /// cannot lock a real peer out.
    pub max_handshaking: usize,
    /// Most dials in progress (TCP connect not done yet) over all torrents
    /// (default 30); further dials wait in a queue.
    pub max_dials: usize,
    /// A connection whose remote handshake has not arrived this long after
    /// it was accepted (or connected) is closed (default 5 s).
    pub handshake_timeout: Duration,
    /// Upload rate limit over all torrents, payload bytes per second
    /// (0 = unlimited, the default): gates [`crate::torrent::Action::ReadBlock`]s.
    pub upload_limit: u64,
    /// Download rate limit over all torrents, payload bytes per second
    /// (0 = unlimited, the default): becomes
    /// [`super::SessionAction::PauseReading`] /
    /// [`super::SessionAction::ResumeReading`].
    pub download_limit: u64,
    /// A global number of upload slots shared by every running torrent
    /// (libtorrent's `unchoke_slots_limit`); `None` (the default) leaves
    /// each torrent its own [`crate::torrent::TorrentConfig::unchoke_slots`].
    /// Shared every 10 s and whenever a torrent is added, removed, paused
    /// or resumed: round-robin, one slot at a time, to the torrents with
    /// interested peers (starting one torrent further each time, so with
    /// fewer slots than such torrents each gets a turn), then one to each
    /// torrent still without any; the shares never add up to more.
    pub unchoke_slots: Option<usize>,
    /// Our listen address, given to each torrent that has none in its own
    /// config (never dialled; its port goes in the BEP 10 handshake).
    pub listen_addr: Option<SocketAddr>,
    /// UDP port of our BEP 5 DHT node, given to each torrent that has none
    /// in its own config ([`crate::torrent::TorrentConfig::dht_port`]:
    /// the DHT bit in the handshake and `port` messages); `None` (the
    /// default) when no DHT node runs.
    pub dht_port: Option<u16>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_connections: 200,
            max_handshaking: 50,
            max_dials: 30,
            handshake_timeout: Duration::from_secs(5),
            upload_limit: 0,
            download_limit: 0,
            unchoke_slots: None,
            listen_addr: None,
            dht_port: None,
        }
    }
}
