//! Local service discovery (BEP 14): announce our torrents to the local
//! network by UDP multicast and hear the peers that announce theirs.
//!
//! An [`LsdNode`] joins the IPv4 group `239.192.152.143:6771` on one
//! interface (and the IPv6 group `[ff15::efc0:988f]:6771` when asked and
//! available; failing that is not fatal) and sends a `BT-SEARCH` announce
//! for its registered torrents when they are added and every 5 minutes
//! (the core's [`LsdSchedule`]: at most once a minute per torrent, batched,
//! see [`minibit_core::lsd`]). Announces it hears for registered torrents
//! come out as [`LsdPeer`]s: the datagram's source IP with the announced
//! port. Its own announces (its cookie, back through multicast loopback),
//! malformed datagrams, port 0 and non-unicast sources are dropped, and a
//! flood costs at most [`LsdConfig::flood_burst`] parses at once and
//! [`LsdConfig::flood_per_second`] after. Private torrents (BEP 27) are
//! refused at registration, so they are never announced.
//!
//! ```no_run
//! # async fn run(info_hash: minibit_core::metainfo::InfoHash) -> Result<(), Box<dyn std::error::Error>> {
//! use minibit_peer::lsd::{LsdConfig, LsdNode};
//!
//! let (node, mut peers) = LsdNode::start(LsdConfig::new("192.168.1.20".parse()?, 6881))?;
//! node.add(info_hash, false)?;
//! while let Some(peer) = peers.recv().await {
//!     println!("{} is in {} on the LAN", peer.addr, peer.info_hash);
//! }
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use minibit_core::lsd::{
    FloodCap, LSD_GROUP_V4, LSD_GROUP_V6, LSD_PORT, LsdAnnounce, LsdGroup, LsdSchedule,
    LsdScheduleConfig, MAX_DATAGRAM_LEN, cookie_from,
};
use minibit_core::metainfo::InfoHash;
use socket2::{Domain, Protocol, Socket, Type};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::dht::usable_peer;

/// How an [`LsdNode`] starts.
#[derive(Clone, Debug)]
pub struct LsdConfig {
    /// IPv4 address of the interface to announce and listen on (the
    /// multicast membership and outgoing interface); 0.0.0.0 lets the
    /// kernel choose by its routes.
    pub interface: Ipv4Addr,
    /// Index of the interface for the IPv6 group (0: the kernel chooses);
    /// `None` (the default): IPv4 only.
    pub ipv6_interface: Option<u32>,
    /// The TCP port we accept peer connections on: the announced `Port`.
    pub listen_port: u16,
    /// UDP port of the groups (default [`LSD_PORT`], 6771).
    pub group_port: u16,
    /// When torrents are announced.
    pub schedule: LsdScheduleConfig,
    /// Datagrams parsed at once before the flood cap bites (default 64).
    pub flood_burst: u32,
    /// Datagrams parsed per second under a flood (default 32).
    pub flood_per_second: u32,
    /// Peers found that may wait unread in the channel (default 256);
    /// more are dropped until it is read.
    pub channel_capacity: usize,
}

impl LsdConfig {
    /// A node on the interface with address `interface` announcing TCP
    /// port `listen_port`, with the BEP 14 defaults, IPv4 only.
    pub fn new(interface: Ipv4Addr, listen_port: u16) -> Self {
        Self {
            interface,
            ipv6_interface: None,
            listen_port,
            group_port: LSD_PORT,
            schedule: LsdScheduleConfig::default(),
            flood_burst: 64,
            flood_per_second: 32,
            channel_capacity: 256,
        }
    }
}

/// Why local service discovery failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LsdError {
    /// The IPv4 multicast socket could not be set up (port taken without
    /// `SO_REUSEPORT`, no such interface address, no multicast route).
    #[error("cannot join the LSD group 239.192.152.143:{port} on {interface}")]
    Start {
        /// The interface address asked for.
        interface: Ipv4Addr,
        /// The group port asked for.
        port: u16,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A private torrent (BEP 27) may only use its trackers: never
    /// announced on LSD.
    #[error("torrent {0} is private: not announced on the local network")]
    Private(InfoHash),
    /// The node has stopped.
    #[error("the LSD node has stopped")]
    Stopped,
}

/// A peer heard on the local network.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct LsdPeer {
    /// The torrent it announced (one we registered).
    pub info_hash: InfoHash,
    /// Where it accepts peer connections: the datagram's source IP with
    /// the announced port.
    pub addr: SocketAddr,
}

/// Counters of an [`LsdNode`] since it started.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LsdStats {
    /// Announce datagrams sent (one per batch and group).
    pub announces_sent: u64,
    /// Datagrams that could not be sent (the error is logged).
    pub send_errors: u64,
    /// Datagrams received on the groups.
    pub received: u64,
    /// Received datagrams dropped unread by the flood cap.
    pub flood_dropped: u64,
    /// Received datagrams that are not a valid announce.
    pub refused: u64,
    /// Our own announces heard back (our cookie).
    pub own: u64,
    /// Peers handed to the channel.
    pub peers_found: u64,
    /// Peers heard but dropped because the channel was full.
    pub peers_dropped: u64,
}

/// What the handle asks of the node's task.
#[derive(Copy, Clone, Debug)]
enum Command {
    Add(InfoHash),
    Remove(InfoHash),
    Request(InfoHash),
}

/// A running LSD node: a task owning the multicast sockets. Dropping the
/// node (or [`LsdNode::shutdown`]) stops it.
#[derive(Debug)]
pub struct LsdNode {
    commands: mpsc::UnboundedSender<Command>,
    stats: Arc<Mutex<LsdStats>>,
    cookie: String,
    ipv6: bool,
    task: JoinHandle<()>,
}

impl LsdNode {
    /// Joins the groups and starts the node (a task on the current tokio
    /// runtime: call it inside one); returns it and the channel the peers
    /// it hears come out of.
    ///
    /// # Errors
    /// [`LsdError::Start`] when the IPv4 group cannot be joined. The IPv6
    /// group is joined only when [`LsdConfig::ipv6_interface`] is set, and
    /// failing that only logs a warning.
    pub fn start(config: LsdConfig) -> Result<(Self, mpsc::Receiver<LsdPeer>), LsdError> {
        let v4 =
            v4_socket(config.interface, config.group_port).map_err(|source| LsdError::Start {
                interface: config.interface,
                port: config.group_port,
                source,
            })?;
        let v6 =
            config
                .ipv6_interface
                .and_then(|index| match v6_socket(index, config.group_port) {
                    Ok(socket) => Some(socket),
                    Err(e) => {
                        tracing::warn!("local service discovery on IPv4 only: {e}");
                        None
                    }
                });
        let cookie = cookie_from(rand::random());
        let stats = Arc::new(Mutex::new(LsdStats::default()));
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (peers, peer_rx) = mpsc::channel(config.channel_capacity.max(1));
        let ipv6 = v6.is_some();
        let own = SocketAddr::new(IpAddr::V4(config.interface), config.listen_port);
        let node_task = NodeTask {
            schedule: LsdSchedule::new(config.schedule.clone()),
            flood: FloodCap::new(config.flood_burst, config.flood_per_second),
            cookie: cookie.clone(),
            config,
            own,
            stats: Arc::clone(&stats),
            peers,
        };
        let task = tokio::spawn(node_task.run(v4, v6, command_rx));
        Ok((
            Self {
                commands,
                stats,
                cookie,
                ipv6,
                task,
            },
            peer_rx,
        ))
    }

    /// Registers a torrent: announced at once (within the once-a-minute
    /// limit) and every 5 minutes; peers heard for it come out of the
    /// channel. Registering one twice changes nothing.
    ///
    /// # Errors
    /// [`LsdError::Private`] when `private` (the BEP 27 flag of its info
    /// dictionary) is set; [`LsdError::Stopped`] when the node stopped.
    pub fn add(&self, info_hash: InfoHash, private: bool) -> Result<(), LsdError> {
        if private {
            return Err(LsdError::Private(info_hash));
        }
        self.send(Command::Add(info_hash))
    }

    /// Stops announcing a torrent and hearing peers for it.
    ///
    /// # Errors
    /// [`LsdError::Stopped`] when the node stopped.
    pub fn remove(&self, info_hash: InfoHash) -> Result<(), LsdError> {
        self.send(Command::Remove(info_hash))
    }

    /// Asks for an announce of a registered torrent soon (it wants
    /// peers); at most one per minute goes out however often this is
    /// called.
    ///
    /// # Errors
    /// [`LsdError::Stopped`] when the node stopped.
    pub fn request(&self, info_hash: InfoHash) -> Result<(), LsdError> {
        self.send(Command::Request(info_hash))
    }

    /// The cookie our announces carry.
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// Whether the IPv6 group was joined.
    pub fn ipv6(&self) -> bool {
        self.ipv6
    }

    /// The counters so far.
    pub fn stats(&self) -> LsdStats {
        *self.stats.lock().expect("stats lock")
    }

    /// Stops the node and waits for its task to end (the sockets leave
    /// the groups as they close).
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    fn send(&self, command: Command) -> Result<(), LsdError> {
        self.commands.send(command).map_err(|_| LsdError::Stopped)
    }

    /// A handle that can take torrents off this node from another task
    /// (a magnet link's torrent found private, BEP 27, once its metadata
    /// arrives).
    pub fn withdrawer(&self) -> LsdWithdrawer {
        LsdWithdrawer {
            commands: self.commands.clone(),
        }
    }
}

/// Takes torrents off a running [`LsdNode`] (see [`LsdNode::withdrawer`]).
#[derive(Clone, Debug)]
pub struct LsdWithdrawer {
    commands: mpsc::UnboundedSender<Command>,
}

impl LsdWithdrawer {
    /// [`LsdNode::remove`].
    ///
    /// # Errors
    /// [`LsdError::Stopped`] when the node stopped.
    pub fn remove(&self, info_hash: InfoHash) -> Result<(), LsdError> {
        self.commands
            .send(Command::Remove(info_hash))
            .map_err(|_| LsdError::Stopped)
    }
}

impl Drop for LsdNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The node's task state.
struct NodeTask {
    config: LsdConfig,
    schedule: LsdSchedule,
    flood: FloodCap,
    cookie: String,
    own: SocketAddr,
    stats: Arc<Mutex<LsdStats>>,
    peers: mpsc::Sender<LsdPeer>,
}

impl NodeTask {
    async fn run(
        mut self,
        v4: UdpSocket,
        v6: Option<UdpSocket>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        // One byte more than the parser takes, so an over-long datagram is
        // seen as one.
        let mut buf4 = vec![0; MAX_DATAGRAM_LEN + 1];
        let mut buf6 = vec![0; MAX_DATAGRAM_LEN + 1];
        loop {
            self.send_due(&v4, v6.as_ref()).await;
            let deadline = self.schedule.poll_timeout().map(Instant::from_std);
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    self.handle_command(command);
                }
                received = v4.recv_from(&mut buf4) => {
                    if let Ok((len, source)) = received {
                        self.handle_datagram(&buf4[..len], source);
                    }
                }
                received = recv_from(v6.as_ref(), &mut buf6) => {
                    if let Ok((len, source)) = received {
                        self.handle_datagram(&buf6[..len], source);
                    }
                }
                () = sleep_until(deadline) => {}
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        let now = now();
        match command {
            Command::Add(hash) => {
                self.schedule.add(hash, now);
            }
            Command::Remove(hash) => {
                self.schedule.remove(&hash);
            }
            Command::Request(hash) => {
                self.schedule.request(&hash, now);
            }
        }
    }

    /// Sends every batch due now, on each group joined.
    async fn send_due(&mut self, v4: &UdpSocket, v6: Option<&UdpSocket>) {
        while let Some(info_hashes) = self.schedule.poll(now()) {
            let groups =
                std::iter::once((LsdGroup::V4, v4)).chain(v6.map(|socket| (LsdGroup::V6, socket)));
            for (group, socket) in groups {
                let announce = LsdAnnounce {
                    group,
                    group_port: self.config.group_port,
                    port: self.config.listen_port,
                    info_hashes: info_hashes.clone(),
                    cookie: Some(self.cookie.clone()),
                };
                let sent = socket
                    .send_to(&announce.encode(), group.addr(self.config.group_port))
                    .await;
                let mut stats = self.stats.lock().expect("stats lock");
                match sent {
                    Ok(_) => stats.announces_sent += 1,
                    Err(e) => {
                        stats.send_errors += 1;
                        tracing::debug!("LSD announce to {group:?} not sent: {e}");
                    }
                }
            }
        }
    }

    fn handle_datagram(&mut self, datagram: &[u8], source: SocketAddr) {
        let mut stats = self.stats.lock().expect("stats lock");
        stats.received += 1;
        if !self.flood.allow(now()) {
            stats.flood_dropped += 1;
            return;
        }
        let announce = match LsdAnnounce::parse(datagram) {
            Ok(announce) => announce,
            Err(e) => {
                stats.refused += 1;
                tracing::debug!("LSD datagram from {source} refused: {e}");
                return;
            }
        };
        if announce.is_from(&self.cookie) {
            stats.own += 1;
            return;
        }
        let addr = announce.peer_addr(source);
        if !usable_peer(addr, self.own) {
            stats.refused += 1;
            return;
        }
        for info_hash in announce.info_hashes {
            if !self.schedule.contains(&info_hash) {
                continue;
            }
            match self.peers.try_send(LsdPeer { info_hash, addr }) {
                Ok(()) => stats.peers_found += 1,
                Err(_) => stats.peers_dropped += 1,
            }
        }
    }
}

/// The clock, as the core takes it.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Receives on `socket`, or never without one.
async fn recv_from(socket: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A UDP socket bound to the IPv4 group (so it hears that group only),
/// member of it on `interface`, sending there with TTL 1 and loopback on
/// (other nodes on this host hear us; our own announces are filtered by
/// cookie). `SO_REUSEADDR`/`SO_REUSEPORT` let other LSD clients on this
/// host share the port.
fn v4_socket(interface: Ipv4Addr, port: u16) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(IpAddr::V4(LSD_GROUP_V4), port).into())?;
    socket.join_multicast_v4(&LSD_GROUP_V4, &interface)?;
    socket.set_multicast_if_v4(&interface)?;
    socket.set_multicast_ttl_v4(1)?;
    socket.set_multicast_loop_v4(true)?;
    UdpSocket::from_std(socket.into())
}

/// The IPv6 counterpart of [`v4_socket`] on the interface with index
/// `interface` (hop limit 1).
fn v6_socket(interface: u32, port: u16) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_only_v6(true)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(IpAddr::V6(LSD_GROUP_V6), port).into())?;
    socket.join_multicast_v6(&LSD_GROUP_V6, interface)?;
    socket.set_multicast_if_v6(interface)?;
    socket.set_multicast_hops_v6(1)?;
    socket.set_multicast_loop_v6(true)?;
    UdpSocket::from_std(socket.into())
}
