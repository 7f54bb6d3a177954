//! What every route and the UDP tracker share ([`TrackerState`]): the swarm
//! registry, the catalogue, the embedded seeders' peer sinks, the
//! metrics counters and the service side (token, data folder, database,
//! catalogue events, seeding sessions).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use minibit_core::metainfo::InfoHash;
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::{AnnounceRequest, AnnounceResponse};
use minibit_peer::PeerSink;

use crate::activity::Activity;
use crate::catalogue::Catalogue;
use crate::counters::{Counters, Protocol};
use crate::registry::{Registry, RegistryConfig};
use crate::service::{Service, ServiceConfig};

/// How long after a leecher's announce it is handed to the embedded seeder.
const HANDOVER_DELAY: Duration = Duration::from_secs(2);

/// What the HTTP handlers share: the swarm registry and the catalogue.
/// Both locks are held only for in-memory work, never across an `.await`.
#[derive(Debug)]
pub struct TrackerState {
    registry: Mutex<Registry>,
    catalogue: RwLock<Catalogue>,
    /// The embedded seeder of each info-hash this tracker seeds.
    seeders: Mutex<HashMap<InfoHash, PeerSink>>,
    /// Announces counted for the log's summary line.
    activity: Activity,
    /// Interval between two summary lines in the log.
    summary_interval: Duration,
    /// Announces and scrapes counted for `/metrics`.
    counters: Counters,
    /// Token, data folder, database, events and seeding sessions.
    service: Service,
}

/// Default interval between two summary lines in the log.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

impl TrackerState {
    /// A tracker with an empty registry and catalogue, logging a summary
    /// line every [`SUMMARY_INTERVAL`] (60 s).
    pub fn new(config: RegistryConfig) -> Self {
        Self {
            registry: Mutex::new(Registry::new(config)),
            catalogue: RwLock::new(Catalogue::new()),
            seeders: Mutex::new(HashMap::new()),
            activity: Activity::default(),
            summary_interval: SUMMARY_INTERVAL,
            counters: Counters::default(),
            service: Service::new(ServiceConfig::default()),
        }
    }

    /// Sets the service side: the API token, the data folder, the
    /// database and the tracker's own URL (see [`ServiceConfig`]).
    #[must_use]
    pub fn with_service(mut self, config: ServiceConfig) -> Self {
        self.service = Service::new(config);
        self
    }

    /// The service side.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The counters behind `/metrics`.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// What the log says about swarms.
    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }

    /// Handles one announce received over `protocol` from `remote_ip`
    /// ([`Registry::announce`]), counts it for `/metrics`, and counts a
    /// completed download of a catalogued torrent (kept in the database
    /// with `--state`). Also returns whether it started a new swarm.
    pub fn announce(
        &self,
        now: Instant,
        req: &AnnounceRequest,
        remote_ip: IpAddr,
        protocol: Protocol,
    ) -> (AnnounceResponse, bool) {
        self.counters.announced(protocol);
        let (resp, new_swarm, completed) = {
            let mut registry = self.registry();
            let known = registry.tracks(&req.info_hash);
            let before = registry.stats(&req.info_hash).downloaded;
            let resp = registry.announce(now, req, remote_ip);
            let after = registry.stats(&req.info_hash).downloaded;
            (
                resp,
                !known && registry.tracks(&req.info_hash),
                after > before,
            )
        };
        if completed && req.event == AnnounceEvent::Completed {
            let count = self.catalogue_mut().count_completed(&req.info_hash);
            if let (Some(count), Some(store)) = (count, self.service.store()) {
                if let Err(e) = store.set_completed(&req.info_hash, count) {
                    tracing::warn!(info_hash = %req.info_hash, error = %e, "cannot record a completed download");
                }
            }
        }
        (resp, new_swarm)
    }

    /// Sets the interval between two summary lines of [`serve`](crate::http::serve)'s log
    /// (announces received, swarms, seeders, leechers), at least 1 s.
    #[must_use]
    pub fn with_summary_interval(mut self, interval: Duration) -> Self {
        self.summary_interval = interval.max(Duration::from_secs(1));
        self
    }

    /// The interval between two summary lines.
    pub fn summary_interval(&self) -> Duration {
        self.summary_interval
    }

    /// Registers the embedded seeder of `info_hash`: from now on every
    /// leecher announcing it (any event but `stopped`) is handed to
    /// `seeder` 2 s later, which dials it unless it is already connected. Peers that only accept connections
    /// (Transmission ignores loopback peers from a tracker) are thus
    /// reached without waiting for the seeder's next announce.
    pub fn add_seeder(&self, info_hash: InfoHash, seeder: PeerSink) {
        self.seeders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(info_hash, seeder);
    }

    /// Unregisters the embedded seeder of `info_hash` (leechers are no
    /// longer handed to it).
    pub fn remove_seeder(&self, info_hash: &InfoHash) {
        self.seeders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(info_hash);
    }

    /// Hands the client of `req` (from `remote_ip`) to the embedded seeder
    /// of its info-hash, if there is one and the client is a leecher that
    /// is not leaving.
    pub(crate) fn tell_seeder(&self, req: &AnnounceRequest, remote_ip: IpAddr) {
        if req.left == 0 || req.event == AnnounceEvent::Stopped {
            return;
        }
        let seeders = self.seeders.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(seeder) = seeders.get(&req.info_hash) {
            let (seeder, addr, peer_id) = (
                seeder.clone(),
                Registry::announcer_addr(req, remote_ip),
                req.peer_id,
            );
            // Most clients dial the seeder they were just told about: give
            // them time to, so the two do not dial each other at once.
            tokio::spawn(async move {
                tokio::time::sleep(HANDOVER_DELAY).await;
                seeder.add_peer(addr, peer_id);
            });
        }
    }

    /// The swarm registry.
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The catalogue, for reading.
    pub fn catalogue(&self) -> RwLockReadGuard<'_, Catalogue> {
        self.catalogue
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The catalogue, for adding torrents.
    pub fn catalogue_mut(&self) -> RwLockWriteGuard<'_, Catalogue> {
        self.catalogue
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
