//! `GET /metrics` of the daemon in the Prometheus text format (through
//! `prometheus-client`), from a snapshot of its torrents.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `minibit_daemon_uploaded_bytes_total` | counter | (payload since start) |
//! | `minibit_daemon_downloaded_bytes_total` | counter | (verified since start) |
//! | `minibit_daemon_peers` | gauge | (connected, all torrents) |
//! | `minibit_daemon_torrents` | gauge | `state` (`downloading`, `seeding`, `paused`, `error`) |
//! | `minibit_daemon_pieces_verified` | gauge | (verified pieces held, all torrents) |
//! | `minibit_daemon_pieces_failed_total` | counter | (pieces that failed SHA-1 verification since start, torrents present) |

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::view::{State, TorrentView};

fn gauge(value: u64) -> Gauge {
    let gauge = Gauge::default();
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
    gauge
}

/// Piece counts over every torrent of the daemon.
#[derive(Clone, Copy, Debug, Default)]
pub struct PieceCounts {
    /// Verified pieces held.
    pub verified: u64,
    /// Pieces that failed verification since start.
    pub failed: u64,
}

/// The `/metrics` page for the daemon's `torrents` and their `pieces`, in
/// the Prometheus text format.
pub fn render(torrents: &[TorrentView], pieces: PieceCounts) -> String {
    let mut registry = Registry::with_prefix("minibit_daemon");
    let sum = |f: fn(&TorrentView) -> u64| torrents.iter().map(f).sum::<u64>();
    registry.register_with_unit(
        "uploaded",
        "Payload bytes uploaded since start",
        Unit::Bytes,
        ConstCounter::new(sum(|t| t.uploaded)),
    );
    registry.register_with_unit(
        "downloaded",
        "Verified bytes downloaded since start",
        Unit::Bytes,
        ConstCounter::new(sum(|t| t.downloaded)),
    );
    registry.register("peers", "Connected peers", gauge(sum(|t| t.peers as u64)));
    let by_state = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    for (state, name) in [
        (State::Downloading, "downloading"),
        (State::Seeding, "seeding"),
        (State::Paused, "paused"),
        (State::Error, "error"),
    ] {
        let count = torrents.iter().filter(|t| t.state == state).count();
        by_state
            .get_or_create(&vec![("state", name)])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
    registry.register("torrents", "Torrents by state", by_state);
    registry.register(
        "pieces_verified",
        "Verified pieces held, all torrents",
        gauge(pieces.verified),
    );
    registry.register(
        "pieces_failed",
        "Pieces that failed SHA-1 verification since start, all torrents",
        ConstCounter::new(pieces.failed),
    );
    let mut page = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut page, &registry);
    page
}
