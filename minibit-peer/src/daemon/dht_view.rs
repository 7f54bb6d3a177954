//! `GET /api/dht`: the client's Mainline DHT (BEP 5) as JSON, for the API
//! and the page.

use serde::Serialize;

use crate::client::DhtStatus;

/// The DHT's state (`{"enabled": false}` alone when the daemon runs no
/// DHT).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DhtView {
    /// Whether the daemon runs a DHT node (`--no-dht` turns it off).
    pub enabled: bool,
    /// The node's UDP address, `null` while it starts (or when it could not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Nodes in the routing table.
    pub routing_table_nodes: usize,
    /// Estimated number of nodes in the whole DHT.
    pub size_estimate: usize,
    /// Nodes peers named in BEP 5 `port` messages (kept for the next start).
    pub learned_nodes: usize,
    /// `get_peers` lookups running now.
    pub lookups_in_flight: usize,
    /// Each torrent on the DHT (never a private one), by info-hash.
    pub torrents: Vec<DhtTorrentView>,
}

/// One torrent's use of the DHT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DhtTorrentView {
    /// 40 hex digits.
    pub info_hash: String,
    /// `get_peers` lookups finished.
    pub lookups: u64,
    /// Usable peers the lookups returned, added up.
    pub peers_found: u64,
    /// Usable peers the last lookup returned.
    pub last_lookup_peers: usize,
    /// Whether the last `announce_peer` was stored by some node.
    pub announced: bool,
}

impl DhtView {
    /// The view of `status` (`None`: no DHT).
    pub fn new(status: Option<DhtStatus>) -> Self {
        let Some(status) = status else {
            return Self::default();
        };
        let mut torrents: Vec<DhtTorrentView> = status
            .torrents
            .into_iter()
            .map(|t| DhtTorrentView {
                info_hash: t.info_hash.to_hex(),
                lookups: t.lookups,
                peers_found: t.peers_found,
                last_lookup_peers: t.last_lookup_peers,
                announced: t.announced,
            })
            .collect();
        torrents.sort_by(|a, b| a.info_hash.cmp(&b.info_hash));
        Self {
            enabled: true,
            node: status.node.as_ref().map(|n| n.local_addr.to_string()),
            routing_table_nodes: status.node.as_ref().map_or(0, |n| n.routing_table_nodes),
            size_estimate: status.node.as_ref().map_or(0, |n| n.size_estimate),
            learned_nodes: status.learned_nodes.len(),
            lookups_in_flight: status.lookups_in_flight,
            torrents,
        }
    }
}
