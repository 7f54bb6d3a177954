//! `GET /metrics` in the Prometheus text format (through
//! `prometheus-client`): announces and scrapes received (HTTP and UDP),
//! swarm sizes (per info-hash and in total), catalogue entries and the
//! bytes the embedded seeders uploaded.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `minibit_tracker_announces_total` | counter | `protocol` (`http`, `udp`) |
//! | `minibit_tracker_scrapes_total` | counter | `protocol` |
//! | `minibit_tracker_swarms` | gauge | |
//! | `minibit_tracker_seeders`, `minibit_tracker_leechers` | gauge | (totals) |
//! | `minibit_tracker_swarm_seeders`, `minibit_tracker_swarm_leechers` | gauge | `info_hash` |
//! | `minibit_tracker_catalogue_entries` | gauge | |
//! | `minibit_tracker_seeder_uploaded_bytes_total` | counter | |

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::counters::Labels;
use crate::state::TrackerState;

fn gauge(value: u64) -> Gauge {
    let gauge = Gauge::default();
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
    gauge
}

/// The `/metrics` page of `state`, in the Prometheus text format.
pub fn render(state: &TrackerState) -> String {
    let mut registry = Registry::with_prefix("minibit_tracker");
    let counters = state.counters();
    registry.register("announces", "Announces received", counters.announces());
    registry.register("scrapes", "Scrapes received", counters.scrapes());

    let swarms = state.registry().swarms();
    let seeders = Family::<Labels, Gauge>::default();
    let leechers = Family::<Labels, Gauge>::default();
    for (info_hash, stats) in &swarms {
        let labels = vec![("info_hash", info_hash.to_hex())];
        seeders.get_or_create(&labels).set(stats.complete.into());
        leechers.get_or_create(&labels).set(stats.incomplete.into());
    }
    let total = |f: fn(&minibit_core::tracker::ScrapeStats) -> u32| {
        swarms.iter().map(|(_, s)| u64::from(f(s))).sum::<u64>()
    };
    registry.register("swarms", "Swarms tracked", gauge(swarms.len() as u64));
    registry.register(
        "seeders",
        "Seeders in all swarms",
        gauge(total(|s| s.complete)),
    );
    registry.register(
        "leechers",
        "Leechers in all swarms",
        gauge(total(|s| s.incomplete)),
    );
    registry.register("swarm_seeders", "Seeders per swarm", seeders);
    registry.register("swarm_leechers", "Leechers per swarm", leechers);
    registry.register(
        "catalogue_entries",
        "Torrents in the catalogue",
        gauge(state.catalogue().len() as u64),
    );
    registry.register_with_unit(
        "seeder_uploaded",
        "Payload bytes uploaded by the embedded seeders since start",
        Unit::Bytes,
        ConstCounter::new(state.service().uploaded()),
    );
    let mut page = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut page, &registry);
    page
}
