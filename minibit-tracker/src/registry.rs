//! The tracker's swarm bookkeeping: which peers announced which
//! info-hash, and whom to tell about whom (BEP 3 "trackers").
//!
//! Pure bookkeeping, no IO: time is an argument, randomness comes from a
//! [`ChaCha8Rng`] seeded from [`RegistryConfig::seed`], and iteration order
//! is deterministic, so the same inputs give the same answers.
//!
//! Memory is bounded by [`RegistryConfig::max_swarms`] ×
//! [`RegistryConfig::max_peers_per_swarm`]. When the swarm table is full,
//! an announce for a new info-hash first expires stale peers and empty
//! swarms; if still full, the torrent is not tracked and the caller gets an
//! empty peer list with a `warning message`. When a swarm is full, a new
//! peer is not recorded (others will not hear of it) but still receives
//! peers and a warning.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use minibit_core::metainfo::InfoHash;
use minibit_core::tracker::{
    AnnounceEvent, AnnounceRequest, AnnounceResponse, ScrapeResponse, ScrapeStats, TrackerPeer,
};
use minibit_core::wire::PeerId;

use crate::announce_rate::AnnounceRate;
use crate::roster::{Role, Roster};

/// Warning sent when the swarm table is full and a new torrent cannot be tracked.
pub const WARNING_TRACKER_FULL: &str = "tracker full: this torrent is not tracked";
/// Warning sent when a swarm is full and the announcing peer is not recorded.
pub const WARNING_SWARM_FULL: &str = "swarm full: this peer is not listed";

/// Tunables of a [`Registry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryConfig {
    /// The announce `interval` sent to clients (default 300 s).
    pub interval: Duration,
    /// The `min interval` sent to clients, if any (default 5 s: a client
    /// with no peer may ask again that soon, so a seeder that joins later
    /// is found within seconds).
    pub min_interval: Option<Duration>,
    /// A peer not heard from for `2 × interval + expiry_slack` is dropped (default 60 s).
    pub expiry_slack: Duration,
    /// Peers returned when the request has no `numwant` (default 50).
    pub default_numwant: u32,
    /// Most peers returned whatever `numwant` says (default 200).
    pub max_numwant: u32,
    /// Most info-hashes tracked at once (default 10 000).
    pub max_swarms: usize,
    /// Most peers recorded per info-hash (default 5 000).
    pub max_peers_per_swarm: usize,
    /// Seed of the RNG that picks which peers to return.
    pub seed: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(300),
            min_interval: Some(Duration::from_secs(5)),
            expiry_slack: Duration::from_secs(60),
            default_numwant: 50,
            max_numwant: 200,
            max_swarms: 10_000,
            max_peers_per_swarm: 5_000,
            seed: 0,
        }
    }
}

/// A peer's identity in a swarm: its peer id at its address.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
struct PeerKey {
    peer_id: PeerId,
    addr: SocketAddr,
}

/// What the registry remembers of a peer.
#[derive(Copy, Clone, Debug)]
struct PeerEntry {
    /// Bytes still missing (0: seeder).
    left: u64,
    /// Time of its last announce.
    last_seen: Instant,
}

/// The peers of one info-hash.
#[derive(Debug, Default)]
struct Swarm {
    /// Leechers and seeders (`left == 0`) apart, so the counts cost O(1)
    /// (counting seeders on every announce took 30 % of the UDP tracker's
    /// time under load) and so do random picks.
    peers: Roster<PeerKey, PeerEntry>,
    /// No peer was last seen before this (a lower bound, `None` with no
    /// peers): until it is older than the timeout there is nothing to
    /// expire and the scan is skipped (scanning on every announce took
    /// 20 % of the UDP tracker's time under load).
    oldest_seen: Option<Instant>,
    /// `completed` events received (BEP 48 `downloaded`).
    downloaded: u64,
    /// Announces received, for their rate per minute.
    announces: AnnounceRate,
}

impl Swarm {
    fn expire(&mut self, now: Instant, timeout: Duration) {
        match self.oldest_seen {
            Some(oldest) if now.saturating_duration_since(oldest) > timeout => {}
            _ => return,
        }
        self.peers
            .retain(|_, e| now.saturating_duration_since(e.last_seen) <= timeout);
        self.oldest_seen = self.peers.iter().map(|(_, e)| e.last_seen).min();
    }

    /// Records `entry` for `key`, replacing what was known of it.
    fn put(&mut self, key: PeerKey, entry: PeerEntry) {
        let role = if entry.left == 0 {
            Role::Seeder
        } else {
            Role::Leecher
        };
        self.peers.insert(key, entry, role);
        self.oldest_seen = Some(
            self.oldest_seen
                .map_or(entry.last_seen, |oldest| oldest.min(entry.last_seen)),
        );
    }

    fn stats(&self) -> ScrapeStats {
        let complete = self.peers.seeders();
        ScrapeStats {
            complete: complete as u32,
            downloaded: self.downloaded,
            incomplete: (self.peers.len() - complete) as u32,
        }
    }

    /// Up to `n` random peers other than `caller`. A `seeder` gets
    /// leechers first and other seeders only to fill what is left: a
    /// seeder has nothing to gain from seeders, but a client that starts
    /// from a magnet link announces `left=0` while it fetches the metadata
    /// (aria2 1.36 does, BEP 9 gives it no size to report) and needs the
    /// swarm's seeders to fetch it from. A leecher gets both, seeders
    /// somewhat above their share.
    fn pick(
        &self,
        rng: &mut ChaCha8Rng,
        caller: &PeerKey,
        seeder: bool,
        n: usize,
    ) -> Vec<TrackerPeer> {
        let skip = |k: &PeerKey| k.peer_id == caller.peer_id || k.addr == caller.addr;
        let mut keys = self.peers.pick(rng, Role::Leecher, n, skip);
        if seeder {
            let room = n - keys.len();
            keys.extend(self.peers.pick(rng, Role::Seeder, room, skip));
        } else {
            // As many of each as could be wanted, then n of those at random
            // (seeders weigh more than their share: a leecher wants them).
            keys.extend(self.peers.pick(rng, Role::Seeder, n, skip));
            keys.shuffle(rng);
            keys.truncate(n);
        }
        let mut peers: Vec<TrackerPeer> = keys
            .into_iter()
            .map(|k| TrackerPeer {
                addr: k.addr,
                peer_id: Some(k.peer_id),
            })
            .collect();
        peers.shuffle(rng);
        peers
    }
}

/// The swarms a tracker knows, keyed by info-hash (any info-hash is
/// accepted, as on an open tracker).
#[derive(Debug)]
pub struct Registry {
    config: RegistryConfig,
    swarms: HashMap<InfoHash, Swarm>,
    rng: ChaCha8Rng,
}

impl Registry {
    /// An empty registry.
    pub fn new(config: RegistryConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Self {
            config,
            swarms: HashMap::new(),
            rng,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Info-hashes currently tracked.
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }

    /// Whether `info_hash` is tracked (some peer announced it, or a local
    /// seeder is registered for it).
    pub fn tracks(&self, info_hash: &InfoHash) -> bool {
        self.swarms.contains_key(info_hash)
    }

    /// Every tracked swarm with its counts, ordered by info-hash.
    pub fn swarms(&self) -> Vec<(InfoHash, ScrapeStats)> {
        let mut swarms: Vec<(InfoHash, ScrapeStats)> =
            self.swarms.iter().map(|(h, s)| (*h, s.stats())).collect();
        swarms.sort_unstable_by_key(|&(h, _)| h.0);
        swarms
    }

    /// How long a peer may stay silent before it is dropped: `2 × interval + slack`.
    pub fn peer_timeout(&self) -> Duration {
        self.config.interval * 2 + self.config.expiry_slack
    }

    /// The address [`Registry::announce`] records and hands out for the
    /// client of `req` whose TCP connection came from `remote_ip`: the
    /// connection's IP, or the claimed `ip` when that connection is from
    /// loopback or a private network; the announced `port`.
    pub fn announcer_addr(req: &AnnounceRequest, remote_ip: IpAddr) -> SocketAddr {
        SocketAddr::new(effective_ip(remote_ip, req.ip), req.port)
    }

    /// Handles one announce from a client whose TCP connection came from
    /// `remote_ip`, and returns the response to send.
    ///
    /// The peer's address is `remote_ip:port`; the request's `ip` is used
    /// instead only when `remote_ip` is loopback or private (the BEP 3 case
    /// of an origin on the tracker's own machine or network), so nobody on
    /// the internet can announce someone else's address. The peer is
    /// recorded (keyed by peer id and address), `stopped` removes it and
    /// `completed` counts a download once per leecher turned seeder. The
    /// response holds at most `numwant` (default and cap from the config)
    /// random peers, never the caller (same peer id or same address); a
    /// caller that is a seeder (`left == 0`) gets leechers first and
    /// seeders only to fill the rest. Stale
    /// peers of the swarm are expired first.
    pub fn announce(
        &mut self,
        now: Instant,
        req: &AnnounceRequest,
        remote_ip: IpAddr,
    ) -> AnnounceResponse {
        let caller = PeerKey {
            peer_id: req.peer_id,
            addr: Self::announcer_addr(req, remote_ip),
        };
        let stopping = req.event == AnnounceEvent::Stopped;
        let mut response = AnnounceResponse {
            interval: secs(self.config.interval),
            min_interval: self.config.min_interval.map(secs),
            complete: 0,
            incomplete: 0,
            peers: Vec::new(),
            warning: None,
        };
        if !self.swarms.contains_key(&req.info_hash) {
            if stopping {
                return response;
            }
            if !self.make_room(now) {
                response.warning = Some(WARNING_TRACKER_FULL.into());
                return response;
            }
        }
        let timeout = self.peer_timeout();
        let max_peers = self.config.max_peers_per_swarm;
        let swarm = self.swarms.entry(req.info_hash).or_default();
        swarm.announces.record(now);
        swarm.expire(now, timeout);
        if stopping {
            swarm.peers.remove(&caller);
        } else {
            let known = swarm.peers.get(&caller).copied();
            if req.event == AnnounceEvent::Completed && known.is_none_or(|e| e.left > 0) {
                swarm.downloaded += 1;
            }
            if known.is_some() || swarm.peers.len() < max_peers {
                let entry = PeerEntry {
                    left: req.left,
                    last_seen: now,
                };
                swarm.put(caller, entry);
            } else {
                response.warning = Some(WARNING_SWARM_FULL.into());
            }
            let numwant = req
                .numwant
                .unwrap_or(self.config.default_numwant)
                .min(self.config.max_numwant);
            response.peers = swarm.pick(&mut self.rng, &caller, req.left == 0, numwant as usize);
        }
        let stats = swarm.stats();
        response.complete = stats.complete;
        response.incomplete = stats.incomplete;
        response
    }

    /// Drops peers not heard from for [`Registry::peer_timeout`] and
    /// swarms left empty. Call it periodically;
    /// announces also expire their own swarm.
    pub fn expire(&mut self, now: Instant) {
        let timeout = self.peer_timeout();
        self.swarms.retain(|_, swarm| {
            swarm.expire(now, timeout);
            !swarm.peers.is_empty()
        });
    }

    /// Drops the swarm of `info_hash` (its peers and its completed count);
    /// returns whether it was tracked. A later announce starts it afresh.
    pub fn forget(&mut self, info_hash: &InfoHash) -> bool {
        self.swarms.remove(info_hash).is_some()
    }

    /// The counts of one swarm (all zero if unknown).
    pub fn stats(&self, info_hash: &InfoHash) -> ScrapeStats {
        self.swarms
            .get(info_hash)
            .map(Swarm::stats)
            .unwrap_or_default()
    }

    /// Announces of `info_hash` received in the minute before `now`
    /// (estimated, see [`AnnounceRate`]; 0 for an unknown swarm).
    pub fn announces_per_minute(&self, info_hash: &InfoHash, now: Instant) -> f64 {
        self.swarms
            .get(info_hash)
            .map_or(0.0, |s| s.announces.per_minute(now))
    }

    /// The addresses of the peers recorded for `info_hash` (none if unknown).
    pub fn peer_addrs<'a>(&'a self, info_hash: &InfoHash) -> impl Iterator<Item = SocketAddr> + 'a {
        self.swarms
            .get(info_hash)
            .into_iter()
            .flat_map(|s| s.peers.iter().map(|(k, _)| k.addr))
    }

    /// Scrape (BEP 48): the counts of each requested swarm, zero for unknown ones.
    pub fn scrape(&self, info_hashes: &[InfoHash]) -> ScrapeResponse {
        ScrapeResponse {
            files: info_hashes.iter().map(|h| (*h, self.stats(h))).collect(),
        }
    }

    /// Whether a new swarm fits, after expiring stale peers and empty swarms if the table is full.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.swarms.len() >= self.config.max_swarms {
            self.expire(now);
        }
        self.swarms.len() < self.config.max_swarms
    }
}

/// Whole seconds, saturating at `u32::MAX`.
fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// The address to record for a peer: the connection's, or the claimed
/// `ip` when the connection comes from loopback or a private network.
fn effective_ip(remote_ip: IpAddr, claimed: Option<IpAddr>) -> IpAddr {
    let remote = remote_ip.to_canonical();
    match claimed {
        Some(ip) if is_local(remote) => ip.to_canonical(),
        _ => remote,
    }
}

/// Loopback, private (RFC 1918 / unique local) or link-local.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;

    /// The origin of the tests' time (only differences from it matter).
    fn origin() -> Instant {
        Instant::now()
    }

    const HASH: InfoHash = InfoHash([7; 20]);

    fn id(n: u32) -> PeerId {
        let mut id = [b'-'; 20];
        id[16..].copy_from_slice(&n.to_be_bytes());
        PeerId(id)
    }

    /// A regular announce of peer `n` at 10.0.x.y:6881 from its own address.
    fn req(n: u32, left: u64) -> AnnounceRequest {
        AnnounceRequest {
            info_hash: HASH,
            peer_id: id(n),
            port: 6881,
            uploaded: 0,
            downloaded: 0,
            left,
            event: AnnounceEvent::None,
            compact: true,
            numwant: None,
            ip: None,
            key: None,
        }
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x5000_0000 + n))
    }

    fn announce(reg: &mut Registry, now: Instant, r: &AnnounceRequest, n: u32) -> AnnounceResponse {
        reg.announce(now, r, ip(n))
    }

    /// A registry with leechers 0..leechers and seeders after them.
    fn populated(now: Instant, leechers: u32, seeders: u32) -> Registry {
        let mut reg = Registry::new(RegistryConfig::default());
        for n in 0..leechers + seeders {
            let left = if n < leechers { 100 } else { 0 };
            announce(&mut reg, now, &req(n, left), n);
        }
        reg
    }

    #[test]
    fn numwant_has_a_default_and_a_cap() {
        let now = origin();
        let mut reg = populated(now, 300, 0);
        let caller = 1000;
        let mut r = req(caller, 5);
        assert_eq!(announce(&mut reg, now, &r, caller).peers.len(), 50);
        r.numwant = Some(1_000_000);
        assert_eq!(announce(&mut reg, now, &r, caller).peers.len(), 200);
        r.numwant = Some(3);
        assert_eq!(announce(&mut reg, now, &r, caller).peers.len(), 3);
        r.numwant = Some(0);
        assert!(announce(&mut reg, now, &r, caller).peers.is_empty());
    }

    #[test]
    fn counts_seeders_and_leechers() {
        let now = origin();
        let mut reg = populated(now, 4, 3);
        let resp = announce(&mut reg, now, &req(100, 1), 100);
        assert_eq!((resp.complete, resp.incomplete), (3, 5));
        assert_eq!(resp.interval, 300);
        assert_eq!(resp.min_interval, Some(5));
        let stats = reg.scrape(&[HASH, InfoHash([0; 20])]);
        assert_eq!(
            stats.files[&HASH],
            ScrapeStats {
                complete: 3,
                downloaded: 0,
                incomplete: 5
            }
        );
        assert_eq!(stats.files[&InfoHash([0; 20])], ScrapeStats::default());
    }

    #[test]
    fn a_seeder_gets_every_leecher_before_any_seeder() {
        let now = origin();
        let mut reg = populated(now, 5, 5);
        let mut r = req(100, 0);
        r.numwant = Some(5);
        let resp = announce(&mut reg, now, &r, 100);
        let got: HashSet<_> = resp.peers.iter().map(|p| p.peer_id.unwrap()).collect();
        assert_eq!(got, (0..5).map(id).collect());
    }

    #[test]
    fn a_seeder_short_of_leechers_also_gets_seeders() {
        // aria2 announces left=0 while it fetches a magnet link's metadata:
        // it must still learn the swarm's seeders.
        let now = origin();
        let mut reg = populated(now, 2, 3);
        let mut r = req(100, 0);
        r.numwant = Some(4);
        let resp = announce(&mut reg, now, &r, 100);
        let got: HashSet<_> = resp.peers.iter().map(|p| p.peer_id.unwrap()).collect();
        assert_eq!(got.len(), 4);
        assert!(got.contains(&id(0)) && got.contains(&id(1)));
        let seeders = got
            .iter()
            .filter(|p| (2..5).map(id).any(|s| s == **p))
            .count();
        assert_eq!(seeders, 2);
    }

    #[test]
    fn stopped_removes_and_completed_counts_once() {
        let now = origin();
        let mut reg = populated(now, 2, 0);
        let mut r = req(0, 0);
        r.event = AnnounceEvent::Completed;
        announce(&mut reg, now, &r, 0);
        announce(&mut reg, now, &r, 0);
        assert_eq!(
            reg.stats(&HASH),
            ScrapeStats {
                complete: 1,
                downloaded: 1,
                incomplete: 1
            }
        );
        r.event = AnnounceEvent::Stopped;
        let resp = announce(&mut reg, now, &r, 0);
        assert!(resp.peers.is_empty());
        assert_eq!(
            reg.stats(&HASH),
            ScrapeStats {
                complete: 0,
                downloaded: 1,
                incomplete: 1
            }
        );
    }

    #[test]
    fn every_announce_of_a_swarm_counts_in_its_rate_per_minute() {
        let now = origin();
        let mut reg = populated(now, 2, 1);
        assert!((reg.announces_per_minute(&HASH, now) - 3.0).abs() < 1e-9);
        let mut r = req(0, 0);
        r.event = AnnounceEvent::Stopped;
        announce(&mut reg, now + Duration::from_secs(10), &r, 0);
        let later = now + Duration::from_secs(30);
        assert!((reg.announces_per_minute(&HASH, later) - 4.0).abs() < 1e-9);
        assert!(reg.announces_per_minute(&HASH, now + Duration::from_secs(200)) < 1e-9);
        assert!(reg.announces_per_minute(&InfoHash([9; 20]), now) < 1e-9);
    }

    #[test]
    fn a_forgotten_swarm_is_gone_until_its_next_announce() {
        let now = origin();
        let mut reg = populated(now, 2, 1);
        assert!(reg.forget(&HASH));
        assert!(!reg.forget(&HASH));
        assert!(!reg.tracks(&HASH));
        assert_eq!(reg.stats(&HASH), ScrapeStats::default());
        let resp = announce(&mut reg, now, &req(5, 100), 5);
        assert!(resp.peers.is_empty(), "the old peers are forgotten");
        assert_eq!(reg.stats(&HASH).incomplete, 1);
    }

    #[test]
    fn stale_peers_expire_lazily_and_on_expire() {
        let t0 = origin();
        let mut reg = populated(t0, 3, 0);
        let timeout = reg.peer_timeout();
        assert_eq!(timeout, Duration::from_secs(660));
        let t1 = t0 + timeout;
        announce(&mut reg, t1, &req(0, 1), 0);
        assert_eq!(
            reg.stats(&HASH).incomplete,
            3,
            "not yet stale at exactly the timeout"
        );
        let t2 = t0 + timeout + Duration::from_secs(1);
        let resp = announce(&mut reg, t2, &req(0, 1), 0);
        assert!(resp.peers.is_empty());
        assert_eq!(reg.stats(&HASH).incomplete, 1);
        reg.expire(t2 + timeout + Duration::from_secs(1));
        assert_eq!(reg.swarm_count(), 0);
    }

    #[test]
    fn time_going_backwards_expires_nobody() {
        let t0 = origin() + Duration::from_secs(1000);
        let mut reg = populated(t0, 3, 0);
        reg.expire(origin());
        assert_eq!(reg.stats(&HASH).incomplete, 3);
    }

    #[test]
    fn claimed_ip_is_trusted_only_from_local_networks() {
        let now = origin();
        let mut reg = Registry::new(RegistryConfig::default());
        let mut r = req(1, 0);
        r.ip = Some("192.0.2.1".parse().unwrap());
        reg.announce(now, &r, "127.0.0.1".parse().unwrap());
        let mut r2 = req(2, 0);
        r2.ip = Some("192.0.2.2".parse().unwrap());
        reg.announce(now, &r2, "203.0.113.9".parse().unwrap());
        let resp = announce(&mut reg, now, &req(3, 5), 3);
        let addrs: HashSet<SocketAddr> = resp.addrs().collect();
        let mut recorded: HashSet<SocketAddr> = reg.peer_addrs(&HASH).collect();
        assert!(recorded.remove(&SocketAddr::new(ip(3), 6881)));
        assert_eq!(recorded, addrs);
        assert_eq!(reg.peer_addrs(&InfoHash([0; 20])).count(), 0);
        let want: HashSet<SocketAddr> = ["192.0.2.1:6881", "203.0.113.9:6881"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(addrs, want);
    }

    #[test]
    fn a_full_swarm_table_refuses_new_torrents_until_expiry() {
        let t0 = origin();
        let config = RegistryConfig {
            max_swarms: 2,
            ..RegistryConfig::default()
        };
        let mut reg = Registry::new(config);
        for h in 0..2u8 {
            let r = AnnounceRequest {
                info_hash: InfoHash([h; 20]),
                ..req(1, 5)
            };
            assert_eq!(announce(&mut reg, t0, &r, 1).warning, None);
        }
        let third = AnnounceRequest {
            info_hash: InfoHash([2; 20]),
            ..req(1, 5)
        };
        let resp = announce(&mut reg, t0, &third, 1);
        assert_eq!(resp.warning.as_deref(), Some(WARNING_TRACKER_FULL));
        assert_eq!(reg.swarm_count(), 2);
        let later = t0 + reg.peer_timeout() + Duration::from_secs(1);
        assert_eq!(announce(&mut reg, later, &third, 1).warning, None);
        assert_eq!(reg.swarm_count(), 1);
    }

    #[test]
    fn a_full_swarm_still_answers_but_does_not_list_the_newcomer() {
        let now = origin();
        let config = RegistryConfig {
            max_peers_per_swarm: 3,
            ..RegistryConfig::default()
        };
        let mut reg = Registry::new(config);
        for n in 0..3 {
            announce(&mut reg, now, &req(n, 5), n);
        }
        let resp = announce(&mut reg, now, &req(3, 5), 3);
        assert_eq!(resp.warning.as_deref(), Some(WARNING_SWARM_FULL));
        assert_eq!(resp.peers.len(), 3);
        assert_eq!(reg.stats(&HASH).incomplete, 3);
        // Known peers can still re-announce.
        assert_eq!(announce(&mut reg, now, &req(0, 5), 0).warning, None);
    }

    #[test]
    fn same_seed_same_answers() {
        let now = origin();
        let run = || {
            let mut reg = populated(now, 100, 0);
            (0..5)
                .map(|_| announce(&mut reg, now, &req(500, 1), 500))
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert_ne!(a[0].peers, a[1].peers, "successive answers are shuffled");
    }

    proptest! {
        #[test]
        fn never_returns_the_caller(
            peers in proptest::collection::vec((0u32..20, 0u32..20, any::<bool>()), 1..60),
            caller in (0u32..20, 0u32..20, any::<bool>()),
        ) {
            let now = origin();
            let mut reg = Registry::new(RegistryConfig::default());
            // Peer ids and addresses collide on purpose.
            for (pid, host, seeder) in peers {
                reg.announce(now, &req(pid, u64::from(!seeder)), ip(host));
            }
            let (pid, host, seeder) = caller;
            let mut r = req(pid, u64::from(!seeder));
            r.numwant = Some(200);
            let resp = reg.announce(now, &r, ip(host));
            let me = SocketAddr::new(ip(host), 6881);
            prop_assert!(resp.peers.len() <= 200);
            for p in &resp.peers {
                prop_assert_ne!(p.peer_id, Some(id(pid)));
                prop_assert_ne!(p.addr, me);
            }
            let unique: HashSet<_> = resp.peers.iter().collect();
            prop_assert_eq!(unique.len(), resp.peers.len());
            prop_assert!(reg.stats(&HASH).complete + reg.stats(&HASH).incomplete <= 61);
        }

        /// The kept seeder count always equals a recount, through
        /// announces that turn leechers into seeders and back, stops and
        /// expiry; after an expiry nobody older than the timeout is left
        /// (the skipped scans miss nobody).
        #[test]
        fn the_seeder_count_matches_a_recount(
            steps in proptest::collection::vec((0u32..12, 0u8..4, 0u64..400), 1..120),
        ) {
            let start = origin();
            let mut reg = Registry::new(RegistryConfig::default());
            for (pid, kind, secs) in steps {
                let now = start + Duration::from_secs(secs * 5);
                let mut r = req(pid, u64::from(kind % 2));
                if kind == 3 {
                    r.event = AnnounceEvent::Stopped;
                }
                reg.announce(now, &r, ip(pid));
                if kind == 2 {
                    reg.expire(now);
                }
                if let Some(swarm) = reg.swarms.get(&HASH) {
                    if kind == 2 {
                        let timeout = reg.peer_timeout();
                        prop_assert!(swarm.peers.iter().all(|(_, e)| now.saturating_duration_since(e.last_seen) <= timeout));
                    }
                    let recount = swarm.peers.iter().filter(|(_, e)| e.left == 0).count();
                    prop_assert_eq!(reg.stats(&HASH).complete as usize, recount);
                }
            }
        }
    }
}
