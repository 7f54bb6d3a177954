//! Peers found past the trackers: the client's Mainline DHT node (BEP 5)
//! and its local service discovery node (BEP 14), and the glue between
//! them and the torrents.
//!
//! The DHT node starts in the background (resolving the bootstrap routers'
//! names must never hold up the client); each non-private torrent gets a
//! task driven by the core's [`DhtSchedule`]: `get_peers` while it is
//! incomplete and has fewer than [`WANTED_PEERS`] connections (with the
//! schedule's back-off), `announce_peer` on our TCP listen port at once and
//! every 15-30 minutes. Every non-private torrent is registered with the
//! LSD node. Peers found go to the torrent like tracker peers (same dial
//! limits, bans and duplicate checks in the core). Private torrents
//! (BEP 27) are never announced or looked up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use minibit_core::dht_schedule::{DhtNeeds, DhtQuery, DhtSchedule, DhtScheduleConfig};
use minibit_core::id::TorrentId;
use minibit_core::metainfo::InfoHash;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};

use super::PeerSink;
use super::types::Progress;
use crate::dht::{DhtConfig, DhtNode, DhtStats};
use crate::error_chain::one_line;
use crate::lsd::{LsdConfig, LsdNode, LsdPeer, LsdWithdrawer};

/// A torrent with fewer connections than this (and pieces missing) looks
/// for more peers on the DHT.
pub const WANTED_PEERS: usize = 30;

/// Most peers taken from one `get_peers` lookup.
const MAX_PEERS_PER_LOOKUP: usize = 200;

/// DHT nodes from BEP 5 `port` messages waiting for the node (more are
/// dropped: a flood of `port` messages cannot grow memory).
const LEARNED_QUEUE: usize = 64;

/// Torrents that take LSD peers, by info-hash.
type Sinks = Arc<Mutex<HashMap<InfoHash, PeerSink>>>;

/// The client's discovery nodes and the torrents registered with them.
#[derive(Debug)]
pub(crate) struct Discovery {
    /// Our TCP listen address (announced port; never dialled).
    listen: SocketAddr,
    /// The DHT node once started (`None` until then; the sender is dropped
    /// if it could not start).
    dht: Option<watch::Receiver<Option<DhtNode>>>,
    dht_start: Option<JoinHandle<()>>,
    /// Where the driver sends the DHT nodes peers named in `port` messages.
    learned: Option<mpsc::Sender<SocketAddr>>,
    lsd: Option<LsdNode>,
    lsd_forward: Option<JoinHandle<()>>,
    sinks: Sinks,
    /// The DHT task of each registered torrent, and its info-hash.
    torrents: Mutex<HashMap<TorrentId, Registered>>,
}

#[derive(Debug)]
struct Registered {
    info_hash: InfoHash,
    dht_task: Option<JoinHandle<()>>,
    /// For a magnet link: takes it off LSD if its metadata says private.
    lsd_watch: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

/// One torrent's DHT activity, updated by its task.
#[derive(Debug, Default)]
struct Counters {
    lookups_in_flight: AtomicUsize,
    lookups_done: AtomicU64,
    peers_found: AtomicU64,
    last_lookup_peers: AtomicUsize,
    announced: AtomicBool,
}

/// The client's DHT as the API and the web UI show it (BEP 5).
#[derive(Clone, Debug)]
pub struct DhtStatus {
    /// The node, `None` while it starts (or when it could not).
    pub node: Option<DhtStats>,
    /// Nodes peers named in BEP 5 `port` messages (pinged, and kept for
    /// the next start: see [`DhtNode::learn`]).
    pub learned_nodes: Vec<SocketAddr>,
    /// `get_peers` lookups running now, over all torrents.
    pub lookups_in_flight: usize,
    /// Each torrent on the DHT (private ones never are), in no order.
    pub torrents: Vec<DhtTorrentStatus>,
}

/// One torrent's use of the DHT.
#[derive(Clone, Debug)]
pub struct DhtTorrentStatus {
    /// The torrent.
    pub id: TorrentId,
    /// Its info-hash (the lookup target).
    pub info_hash: InfoHash,
    /// `get_peers` lookups finished.
    pub lookups: u64,
    /// Usable peers the lookups returned, added up (a peer found by two
    /// lookups counts twice).
    pub peers_found: u64,
    /// Usable peers the last lookup returned.
    pub last_lookup_peers: usize,
    /// Whether the last `announce_peer` was stored by some node.
    pub announced: bool,
}

impl Discovery {
    /// Starts the nodes asked for. `listen` is the bound TCP listener's
    /// address: a DHT port of 0 becomes its port number, and it is the
    /// port LSD announces. A node that cannot start is a warning.
    pub(crate) fn start(
        listen: SocketAddr,
        dht: Option<DhtConfig>,
        lsd: Option<LsdConfig>,
    ) -> Self {
        let sinks: Sinks = Arc::default();
        let (dht, dht_start, learned) = match dht {
            Some(mut config) => {
                config.port = dht_port(&config, listen);
                let (tx, rx) = watch::channel(None);
                let (learned, learned_rx) = mpsc::channel(LEARNED_QUEUE);
                let start = tokio::spawn(run_dht(config, tx, learned_rx));
                (Some(rx), Some(start), Some(learned))
            }
            None => (None, None, None),
        };
        let (lsd, lsd_forward) = match lsd {
            Some(mut config) => {
                config.listen_port = listen.port();
                match LsdNode::start(config) {
                    Ok((node, peers)) => {
                        let forward = tokio::spawn(forward_lsd(peers, Arc::clone(&sinks)));
                        (Some(node), Some(forward))
                    }
                    Err(e) => {
                        warn!("running without local service discovery: {}", one_line(&e));
                        (None, None)
                    }
                }
            }
            None => (None, None),
        };
        Self {
            listen,
            dht,
            dht_start,
            learned,
            lsd,
            lsd_forward,
            sinks,
            torrents: Mutex::default(),
        }
    }

    /// Where the driver sends the DHT nodes peers name in BEP 5 `port`
    /// messages (`None` without a DHT); send with `try_send`: a full
    /// queue drops the node.
    pub(crate) fn learned_nodes(&self) -> Option<mpsc::Sender<SocketAddr>> {
        self.learned.clone()
    }

    /// Registers torrent `id` with the nodes, unless `private` (BEP 27).
    /// A magnet link's torrent (still fetching its metadata) is looked up
    /// but announced only once it has its metadata, and taken off both
    /// nodes if that says it is private.
    pub(crate) fn add(
        &self,
        id: TorrentId,
        info_hash: InfoHash,
        private: bool,
        sink: PeerSink,
        progress: watch::Receiver<Progress>,
    ) {
        if private {
            return;
        }
        let watch_privacy = progress.borrow().fetching_metadata;
        if let Some(lsd) = &self.lsd {
            let _ = lsd.add(info_hash, false);
            self.sinks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(info_hash, sink.clone());
        }
        let counters = Arc::<Counters>::default();
        let dht_task = self.dht.clone().map(|node| {
            tokio::spawn(dht_task(
                node,
                Lookup {
                    info_hash,
                    sink,
                    listen: self.listen,
                    counters: Arc::clone(&counters),
                },
                progress.clone(),
                rand::random(),
            ))
        });
        let lsd_watch = match &self.lsd {
            Some(lsd) if watch_privacy => Some(tokio::spawn(withdraw_if_private(
                progress,
                lsd.withdrawer(),
                Arc::clone(&self.sinks),
                info_hash,
            ))),
            _ => None,
        };
        self.torrents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id,
                Registered {
                    info_hash,
                    dht_task,
                    lsd_watch,
                    counters,
                },
            );
    }

    /// Waits for the DHT node and returns its UDP address; `None` without
    /// a DHT or when it could not start.
    pub(crate) async fn dht_addr(&self) -> Option<SocketAddr> {
        let mut node = self.dht.clone()?;
        let up = node.wait_for(Option::is_some).await.ok()?;
        up.as_ref().map(DhtNode::local_addr)
    }

    /// The DHT's state, `None` without a DHT.
    pub(crate) async fn dht_status(&self) -> Option<DhtStatus> {
        let node = self.dht.as_ref()?.borrow().clone();
        let torrents: Vec<DhtTorrentStatus> = self
            .torrents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, r)| r.dht_task.is_some())
            .map(|(&id, r)| DhtTorrentStatus {
                id,
                info_hash: r.info_hash,
                lookups: r.counters.lookups_done.load(Ordering::Relaxed),
                peers_found: r.counters.peers_found.load(Ordering::Relaxed),
                last_lookup_peers: r.counters.last_lookup_peers.load(Ordering::Relaxed),
                announced: r.counters.announced.load(Ordering::Relaxed),
            })
            .collect();
        let lookups_in_flight = self
            .torrents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|r| r.counters.lookups_in_flight.load(Ordering::Relaxed))
            .sum();
        let (node, learned_nodes) = match node {
            Some(node) => (
                Some(node.stats().await),
                node.learned_nodes()
                    .into_iter()
                    .map(SocketAddr::V4)
                    .collect(),
            ),
            None => (None, Vec::new()),
        };
        Some(DhtStatus {
            node,
            learned_nodes,
            lookups_in_flight,
            torrents,
        })
    }

    /// Unregisters torrent `id` (no more announces or lookups).
    pub(crate) fn remove(&self, id: TorrentId) {
        let removed = self
            .torrents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        let Some(registered) = removed else { return };
        for task in [registered.dht_task, registered.lsd_watch]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        if let Some(lsd) = &self.lsd {
            let _ = lsd.remove(registered.info_hash);
        }
        self.sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&registered.info_hash);
    }

    /// Stops every task, saves the DHT routing table (when the DHT config
    /// names a file) and stops the nodes.
    pub(crate) async fn shutdown(mut self) {
        let torrents = std::mem::take(
            self.torrents
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for task in torrents.into_values().filter_map(|r| r.dht_task) {
            task.abort();
        }
        let node = self.dht.as_ref().and_then(|rx| rx.borrow().clone());
        if let Some(node) = node {
            if let Err(e) = node.save_routing_table().await {
                warn!("{}", one_line(&e));
            }
        }
        if let Some(start) = self.dht_start.take() {
            start.abort();
        }
        if let Some(forward) = self.lsd_forward.take() {
            forward.abort();
        }
        if let Some(lsd) = self.lsd.take() {
            lsd.shutdown().await;
        }
    }
}

/// The UDP port the DHT node of `config` takes: its own, or 0 for the
/// TCP listen port's number.
pub(crate) fn dht_port(config: &DhtConfig, listen: SocketAddr) -> u16 {
    if config.port == 0 {
        listen.port()
    } else {
        config.port
    }
}

/// Starts the DHT node, publishes it on `node`, then hands it the nodes
/// learned from `port` messages until the client shuts down.
async fn run_dht(
    config: DhtConfig,
    node: watch::Sender<Option<DhtNode>>,
    mut learned: mpsc::Receiver<SocketAddr>,
) {
    let dht = match DhtNode::start(config).await {
        Ok(dht) => dht,
        Err(e) => {
            warn!("running without the DHT: {}", one_line(&e));
            return;
        }
    };
    info!(addr = %dht.local_addr(), "dht node listening");
    let _ = node.send(Some(dht.clone()));
    // Keep the sender: receivers see the node until shutdown.
    loop {
        tokio::select! {
            () = node.closed() => return,
            addr = learned.recv() => {
                let Some(addr) = addr else {
                    node.closed().await;
                    return;
                };
                if dht.learn(addr) {
                    tracing::debug!(%addr, "dht node learned from a port message");
                }
            }
        }
    }
}

/// Hands each peer heard on LSD to its torrent.
async fn forward_lsd(mut peers: mpsc::Receiver<LsdPeer>, sinks: Sinks) {
    while let Some(peer) = peers.recv().await {
        let sink = sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer.info_hash)
            .cloned();
        if let Some(sink) = sink {
            sink.add_peers(vec![peer.addr]);
        }
    }
}

/// A finished DHT query of one torrent.
enum Done {
    Lookup(Vec<SocketAddr>),
    Announce(bool),
}

/// What a torrent needs from the DHT given its progress.
fn needs(progress: &Progress) -> DhtNeeds {
    DhtNeeds {
        peers: !progress.complete && progress.peers < WANTED_PEERS,
        // Not before the metadata: it could still say private (BEP 27).
        announce: !progress.fetching_metadata,
    }
}

/// Waits for a magnet link's metadata and takes the torrent off local
/// service discovery if it is private (BEP 27).
async fn withdraw_if_private(
    mut progress: watch::Receiver<Progress>,
    lsd: LsdWithdrawer,
    sinks: Sinks,
    info_hash: InfoHash,
) {
    let private = match progress.wait_for(|p| !p.fetching_metadata).await {
        Ok(progress) => progress.private,
        Err(_) => return,
    };
    if private {
        let _ = lsd.remove(info_hash);
        sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&info_hash);
        tracing::info!(%info_hash, "private torrent (BEP 27): off the DHT and local service discovery");
    }
}

/// What one torrent's DHT task works for.
struct Lookup {
    info_hash: InfoHash,
    /// Where found peers go.
    sink: PeerSink,
    /// Our TCP listen address (announced port; never returned by lookups).
    listen: SocketAddr,
    counters: Arc<Counters>,
}

/// One torrent's DHT task: waits for the node, then runs the queries its
/// [`DhtSchedule`] asks for until the torrent ends or the task is aborted.
async fn dht_task(
    mut node: watch::Receiver<Option<DhtNode>>,
    lookup: Lookup,
    mut progress: watch::Receiver<Progress>,
    seed: u64,
) {
    let Ok(node) = node.wait_for(Option::is_some).await.map(|n| n.clone()) else {
        return; // no DHT node
    };
    let Some(node) = node else { return };
    let Lookup {
        info_hash,
        sink,
        listen,
        counters,
    } = lookup;
    let mut schedule = DhtSchedule::new(DhtScheduleConfig::default(), Instant::now(), seed);
    let mut queries = JoinSet::new();
    loop {
        let needs = {
            let progress = progress.borrow_and_update();
            if progress.private {
                // A magnet link's metadata said private (BEP 27): off the DHT.
                return;
            }
            needs(&progress)
        };
        while let Some(query) = schedule.poll(Instant::now(), needs) {
            let node = node.clone();
            match query {
                DhtQuery::GetPeers => {
                    counters.lookups_in_flight.fetch_add(1, Ordering::Relaxed);
                    queries.spawn(async move {
                        Done::Lookup(
                            node.get_peers(&info_hash, MAX_PEERS_PER_LOOKUP, listen)
                                .await,
                        )
                    })
                }
                DhtQuery::Announce => queries.spawn(async move {
                    let stored = node.announce(&info_hash, listen.port()).await;
                    if let Err(e) = &stored {
                        tracing::debug!(%info_hash, "dht announce: {e}");
                    }
                    Done::Announce(stored.is_ok())
                }),
                other => {
                    warn!(?other, "dht query not supported");
                    continue;
                }
            };
        }
        let deadline = schedule.poll_timeout(needs);
        tokio::select! {
            Some(done) = queries.join_next() => match done {
                Ok(Done::Lookup(peers)) => {
                    tracing::debug!(%info_hash, peers = peers.len(), "dht lookup done");
                    counters.lookups_in_flight.fetch_sub(1, Ordering::Relaxed);
                    counters.lookups_done.fetch_add(1, Ordering::Relaxed);
                    counters.peers_found.fetch_add(peers.len() as u64, Ordering::Relaxed);
                    counters.last_lookup_peers.store(peers.len(), Ordering::Relaxed);
                    schedule.handle_lookup_done(Instant::now(), peers.len());
                    if !peers.is_empty() {
                        sink.add_peers(peers);
                    }
                }
                Ok(Done::Announce(stored)) => {
                    counters.announced.store(stored, Ordering::Relaxed);
                    schedule.handle_announce_done(Instant::now(), stored);
                }
                Err(_) => return,
            },
            changed = progress.changed() => if changed.is_err() { return },
            () = sleep_until(deadline) => {}
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
