//! What the tracker tells its log about swarms: a new swarm at INFO, each
//! peer's `started` / `completed` / `stopped` at DEBUG, and every
//! [`TrackerState::summary_interval`](crate::TrackerState::summary_interval)
//! an INFO summary of the announces received and the swarms' sizes.

use std::sync::atomic::{AtomicU64, Ordering};

use minibit_core::metainfo::InfoHash;
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::{AnnounceRequest, ScrapeStats};
use tracing::{debug, info};

/// Counts announces between two summaries.
#[derive(Debug, Default)]
pub struct Activity {
    announces: AtomicU64,
}

impl Activity {
    /// Records one announce from `remote` and logs what it changed:
    /// `new_swarm` when its info-hash was not tracked before.
    pub fn announced(&self, req: &AnnounceRequest, remote: std::net::SocketAddr, new_swarm: bool) {
        self.announces.fetch_add(1, Ordering::Relaxed);
        if new_swarm {
            info!(info_hash = %req.info_hash, %remote, "torrent added: first announce of a new swarm");
        }
        let what = match req.event {
            AnnounceEvent::Started => "peer started",
            AnnounceEvent::Completed => "peer completed",
            AnnounceEvent::Stopped => "peer stopped",
            AnnounceEvent::None => return,
        };
        debug!(info_hash = %req.info_hash, %remote, left = req.left, "{what}");
    }

    /// The summary line of the announces since the last call and the
    /// current `swarms`; resets the announce count.
    pub fn summary(&self, swarms: &[(InfoHash, ScrapeStats)]) -> String {
        let announces = self.announces.swap(0, Ordering::Relaxed);
        let seeders: u64 = swarms.iter().map(|(_, s)| u64::from(s.complete)).sum();
        let leechers: u64 = swarms.iter().map(|(_, s)| u64::from(s.incomplete)).sum();
        format!(
            "{announces} announce{}; {} swarm{}, {seeders} seeder{}, {leechers} leecher{}",
            plural(announces),
            swarms.len(),
            plural(swarms.len() as u64),
            plural(seeders),
            plural(leechers),
        )
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_announces_since_the_last_one_and_sums_the_swarms() {
        let activity = Activity::default();
        let req = AnnounceRequest::parse_query(
            "info_hash=%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01\
             &peer_id=-MB0001-abcdefghijkl&port=6881&uploaded=0&downloaded=0&left=5",
        )
        .unwrap();
        let remote = "127.0.0.1:1".parse().unwrap();
        activity.announced(&req, remote, true);
        activity.announced(&req, remote, false);
        let stats = |complete, incomplete| ScrapeStats {
            complete,
            downloaded: 0,
            incomplete,
        };
        let swarms = [
            (InfoHash([1; 20]), stats(1, 2)),
            (InfoHash([2; 20]), stats(0, 1)),
        ];
        assert_eq!(
            activity.summary(&swarms),
            "2 announces; 2 swarms, 1 seeder, 3 leechers"
        );
        assert_eq!(
            activity.summary(&[]),
            "0 announces; 0 swarms, 0 seeders, 0 leechers"
        );
    }
}
