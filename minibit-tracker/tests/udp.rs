//! The UDP tracker (BEP 15) over real sockets on loopback, driven by a
//! client made of the core codec (`minibit_core::tracker::udp`), and by
//! minibit-peer sessions whose only trackers are `udp://` (one of them
//! behind a dead first tier, BEP 12).
//!
//! "No answer" is observed without timing: the server handles the datagrams
//! of one socket in order, so when a bad packet is followed by a connect
//! request, the first datagram that comes back must be the connect answer.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use minibit_core::metainfo::{InfoHash, Metainfo, MetainfoBuilder};
use minibit_core::tracker::AnnounceEvent;
use minibit_core::tracker::udp::{
    Family, Request, Response, UdpAnnounce, UdpPeers, UdpScrapeStats, max_peers,
};
use minibit_core::tracker::{AnnounceRequest, AnnounceResponse};
use minibit_core::wire::PeerId;
use minibit_peer::{Session, SessionConfig};
use minibit_tracker::udp::bind_pair;
use minibit_tracker::{RegistryConfig, TrackerState, serve, serve_udp};
use test_support::content::xorshift;
use test_support::process::first_line_after;
use tokio::net::UdpSocket;

/// Generous bound on one answer over loopback.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// A tracker (HTTP and UDP) on an ephemeral port of `ip`.
async fn start(ip: IpAddr, config: RegistryConfig) -> (SocketAddr, Arc<TrackerState>) {
    let (tcp, udp) = bind_pair(SocketAddr::new(ip, 0)).await.unwrap();
    let addr = tcp.local_addr().unwrap();
    assert_eq!(udp.local_addr().unwrap(), addr);
    let state = Arc::new(TrackerState::new(config));
    tokio::spawn(serve(tcp, Arc::clone(&state), std::future::pending()));
    tokio::spawn(serve_udp(udp, Arc::clone(&state), std::future::pending()));
    (addr, state)
}

struct Client {
    socket: UdpSocket,
    tracker: SocketAddr,
    next_transaction: u32,
}

impl Client {
    async fn new(tracker: SocketAddr) -> Self {
        let socket = UdpSocket::bind(SocketAddr::new(tracker.ip(), 0))
            .await
            .unwrap();
        Self {
            socket,
            tracker,
            next_transaction: 1,
        }
    }

    fn family(&self) -> Family {
        Family::of(&self.tracker)
    }

    fn transaction(&mut self) -> u32 {
        self.next_transaction += 1;
        self.next_transaction
    }

    async fn send(&self, packet: &[u8]) {
        self.socket.send_to(packet, self.tracker).await.unwrap();
    }

    async fn receive(&self) -> Response {
        let mut buf = vec![0; 4096];
        let (len, from) = tokio::time::timeout(ANSWER_WAIT, self.socket.recv_from(&mut buf))
            .await
            .expect("the tracker answers")
            .unwrap();
        assert_eq!(from, self.tracker);
        assert!(len <= 1472, "answer of {len} bytes");
        Response::decode(&buf[..len], self.family()).unwrap()
    }

    async fn exchange(&self, request: &Request) -> Response {
        self.send(&request.encode()).await;
        let response = self.receive().await;
        assert_eq!(response.transaction_id(), request.transaction_id());
        response
    }

    async fn connect(&mut self) -> u64 {
        let transaction_id = self.transaction();
        match self.exchange(&Request::Connect { transaction_id }).await {
            Response::Connect { connection_id, .. } => connection_id,
            other => panic!("connect answered with {other:?}"),
        }
    }

    /// Sends `packet`, then a connect: the first answer must be the connect's.
    async fn assert_dropped(&mut self, packet: &[u8]) {
        self.send(packet).await;
        let transaction_id = self.transaction();
        let connect = Request::Connect { transaction_id };
        self.send(&connect.encode()).await;
        let response = self.receive().await;
        assert!(
            matches!(response, Response::Connect { transaction_id: t, .. } if t == transaction_id),
            "{} bytes {:02x?}... were answered with {response:?}",
            packet.len(),
            &packet[..packet.len().min(16)]
        );
    }
}

fn announce(
    connection_id: u64,
    transaction_id: u32,
    info_hash: InfoHash,
    peer: u8,
    port: u16,
    left: u64,
) -> UdpAnnounce {
    UdpAnnounce {
        connection_id,
        transaction_id,
        info_hash,
        peer_id: PeerId([peer; 20]),
        downloaded: 0,
        left,
        uploaded: 0,
        event: AnnounceEvent::Started,
        ip: None,
        key: u32::from(peer),
        num_want: None,
        port,
    }
}

#[tokio::test]
async fn a_client_connects_announces_and_scrapes_into_the_http_registry() {
    let (tracker, state) = start(IpAddr::V4(Ipv4Addr::LOCALHOST), RegistryConfig::default()).await;
    let hash = InfoHash([0x5a; 20]);
    let mut leecher = Client::new(tracker).await;
    let id = leecher.connect().await;
    let t = leecher.transaction();
    let first = leecher
        .exchange(&Request::Announce(announce(id, t, hash, 1, 6881, 1000)))
        .await;
    assert_eq!(
        first,
        Response::Announce {
            transaction_id: t,
            interval: 300,
            leechers: 1,
            seeders: 0,
            peers: UdpPeers::V4(vec![]),
        }
    );

    let mut seeder = Client::new(tracker).await;
    let id = seeder.connect().await;
    let t = seeder.transaction();
    let Response::Announce {
        leechers,
        seeders,
        peers,
        ..
    } = seeder
        .exchange(&Request::Announce(announce(id, t, hash, 2, 6882, 0)))
        .await
    else {
        panic!("announce not answered with peers");
    };
    assert_eq!((leechers, seeders), (1, 1));
    assert_eq!(peers.addrs(), [SocketAddr::new(tracker.ip(), 6881)]);

    // The HTTP side sees the UDP peers: one registry.
    let http = AnnounceRequest {
        info_hash: hash,
        peer_id: PeerId([3; 20]),
        port: 6883,
        uploaded: 0,
        downloaded: 0,
        left: 5,
        event: AnnounceEvent::Started,
        compact: true,
        numwant: None,
        ip: None,
        key: None,
    };
    let body = reqwest::get(format!("http://{tracker}/announce?{}", http.to_query()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut ports: Vec<u16> = AnnounceResponse::decode(&body)
        .unwrap()
        .addrs()
        .map(|a| a.port())
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, [6881, 6882]);

    let t = leecher.transaction();
    let id = leecher.connect().await;
    let scrape = Request::Scrape {
        connection_id: id,
        transaction_id: t,
        info_hashes: vec![hash, InfoHash([0; 20])],
    };
    assert_eq!(
        leecher.exchange(&scrape).await,
        Response::Scrape {
            transaction_id: t,
            stats: vec![
                UdpScrapeStats {
                    seeders: 1,
                    completed: 0,
                    leechers: 2
                },
                UdpScrapeStats::default(),
            ],
        }
    );

    // `/metrics` counts each transport apart; the swarm holds all three.
    let metrics = minibit_tracker::metrics::render(&state);
    for series in [
        "minibit_tracker_announces_total{protocol=\"udp\"} 2",
        "minibit_tracker_announces_total{protocol=\"http\"} 1",
        "minibit_tracker_scrapes_total{protocol=\"udp\"} 1",
        "minibit_tracker_seeders 1",
        "minibit_tracker_leechers 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == series),
            "no {series} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn forged_ids_and_ids_from_another_address_get_no_answer() {
    let (tracker, state) = start(IpAddr::V4(Ipv4Addr::LOCALHOST), RegistryConfig::default()).await;
    let hash = InfoHash([0x11; 20]);
    let mut owner = Client::new(tracker).await;
    let mut thief = Client::new(tracker).await;
    let id = owner.connect().await;
    let thief_id = thief.connect().await;
    assert_ne!(id, thief_id, "ids depend on the address");

    let stolen = Request::Announce(announce(id, 9, hash, 7, 7000, 1)).encode();
    thief.assert_dropped(&stolen).await;
    for forged in [0, 1, u64::MAX, id ^ 1, 0x0417_2710_1980] {
        let packet = Request::Announce(announce(forged, 9, hash, 7, 7000, 1)).encode();
        thief.assert_dropped(&packet).await;
        let scrape = Request::Scrape {
            connection_id: forged,
            transaction_id: 9,
            info_hashes: vec![hash],
        };
        thief.assert_dropped(&scrape.encode()).await;
    }
    assert_eq!(
        state.registry().stats(&hash).incomplete,
        0,
        "nothing recorded"
    );

    // The owner's id works from its own address.
    let t = owner.transaction();
    let answer = owner
        .exchange(&Request::Announce(announce(id, t, hash, 7, 7000, 1)))
        .await;
    assert!(
        matches!(answer, Response::Announce { leechers: 1, .. }),
        "{answer:?}"
    );
}

#[tokio::test]
async fn garbage_is_dropped_and_the_tracker_stays_up() {
    let (tracker, _state) = start(IpAddr::V4(Ipv4Addr::LOCALHOST), RegistryConfig::default()).await;
    let mut client = Client::new(tracker).await;
    let id = client.connect().await;
    let valid = Request::Announce(announce(id, 3, InfoHash([1; 20]), 1, 1, 1)).encode();
    let mut bad_event = valid.clone();
    bad_event[83] = 9;
    let mut port_zero = valid.clone();
    port_zero[96..98].copy_from_slice(&[0, 0]);
    let mut unknown_action = valid.clone();
    unknown_action[11] = 7;
    let mut error_action = valid.clone();
    error_action[11] = 3;
    let mut scrape_partial = Request::Scrape {
        connection_id: id,
        transaction_id: 4,
        info_hashes: vec![InfoHash([2; 20])],
    }
    .encode();
    scrape_partial.pop();
    let mut scrape_too_many = scrape_partial.clone();
    scrape_too_many.resize(16 + 75 * 20, 0);
    let mut connect_wrong_magic = Request::Connect { transaction_id: 5 }.encode();
    connect_wrong_magic[0] = 1;
    let mut packets = vec![
        vec![],
        vec![0],
        valid[..15].to_vec(),
        valid[..97].to_vec(),
        bad_event,
        port_zero,
        unknown_action,
        error_action,
        scrape_partial,
        scrape_too_many,
        connect_wrong_magic,
        vec![0xff; 3000],
    ];
    // Pseudo-random junk of every length up to 200 bytes, cut in turn from
    // one xorshift stream (fixed seed).
    let junk = xorshift((0..200).sum(), 0x2545_f491_4f6c_dd1d);
    let mut rest = &junk[..];
    for len in 0..200 {
        let (packet, tail) = rest.split_at(len);
        packets.push(packet.to_vec());
        rest = tail;
    }
    for packet in &packets {
        client.assert_dropped(packet).await;
    }
    let t = client.transaction();
    let answer = client
        .exchange(&Request::Announce(announce(
            id,
            t,
            InfoHash([1; 20]),
            1,
            1,
            1,
        )))
        .await;
    assert!(matches!(answer, Response::Announce { .. }), "{answer:?}");
}

#[tokio::test]
async fn announce_answers_stay_within_one_datagram() {
    let config = RegistryConfig {
        max_numwant: 10_000,
        ..RegistryConfig::default()
    };
    let (tracker, _state) = start(IpAddr::V4(Ipv4Addr::LOCALHOST), config).await;
    let hash = InfoHash([0x77; 20]);
    let mut client = Client::new(tracker).await;
    let id = client.connect().await;
    // 300 peers, each claiming its own address (trusted from loopback).
    for n in 0..300u16 {
        let mut a = announce(id, u32::from(n), hash, 0, 1000 + n, 1);
        a.peer_id.0[..2].copy_from_slice(&n.to_be_bytes());
        a.ip = Some(Ipv4Addr::new(10, 9, (n >> 8) as u8, n as u8));
        a.num_want = Some(0);
        client.exchange(&Request::Announce(a)).await;
    }
    let t = client.transaction();
    let mut greedy = announce(id, t, hash, 0xee, 9999, 1);
    greedy.num_want = Some(100_000);
    let Response::Announce {
        peers, leechers, ..
    } = client.exchange(&Request::Announce(greedy)).await
    else {
        panic!("no announce answer");
    };
    assert_eq!(leechers, 301);
    assert_eq!(peers.len(), max_peers(Family::V4));
}

#[tokio::test]
async fn ipv6_clients_get_ipv6_peers() {
    let (tracker, _state) = start("::1".parse().unwrap(), RegistryConfig::default()).await;
    let hash = InfoHash([0x66; 20]);
    let mut a = Client::new(tracker).await;
    let mut b = Client::new(tracker).await;
    let id = a.connect().await;
    let t = a.transaction();
    a.exchange(&Request::Announce(announce(id, t, hash, 1, 6881, 1)))
        .await;
    let id = b.connect().await;
    let t = b.transaction();
    let Response::Announce { peers, .. } = b
        .exchange(&Request::Announce(announce(id, t, hash, 2, 6882, 1)))
        .await
    else {
        panic!("no announce answer");
    };
    assert_eq!(peers.family(), Family::V6);
    assert_eq!(peers.addrs(), [SocketAddr::new(tracker.ip(), 6881)]);
}

#[tokio::test]
async fn the_binary_answers_udp_on_its_http_port_number_and_drops_garbage() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_minibit-tracker"))
        .args(["--bind", "127.0.0.1:0", "-q"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let addr: SocketAddr = first_line_after(&mut child, "tracker listening on http://")
        .parse()
        .unwrap();
    let mut client = Client::new(addr).await;
    let exchange = async {
        // Garbage and a truncated announce get no answer; the binary stays up.
        client.assert_dropped(&[0xff; 100]).await;
        let id = client.connect().await;
        let announce = Request::Announce(announce(id, 1, InfoHash([3; 20]), 1, 1, 1)).encode();
        client.assert_dropped(&announce[..97]).await;
        client.connect().await
    };
    let connected = tokio::time::timeout(ANSWER_WAIT, exchange).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(connected.is_ok(), "no UDP answer on {addr}");
}

/// Random bytes for a torrent's content.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::Rng::fill(&mut rand::rng(), bytes.as_mut_slice());
    bytes
}

/// A session on 127.0.0.1 for `metainfo` into `dir`: UDP requests sent
/// again after 200 ms, a tracker given up after 2 s.
fn session_config(metainfo: &Metainfo, dir: &Path) -> SessionConfig {
    let mut config = SessionConfig::new(metainfo.clone(), dir);
    config.listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    config.tracker_timeout = Duration::from_secs(2);
    config.udp_retransmit = Duration::from_millis(200);
    config
}

/// A seeder announcing to `tracker` only, and a leecher of `metainfo`
/// (whose trackers it uses): the leecher's copy must equal the source.
async fn leecher_completes(metainfo: &Metainfo, seed_dir: &Path, tracker: String) {
    let mut seed = session_config(metainfo, seed_dir);
    seed.announce_url = Some(tracker);
    seed.seed_mode = true;
    let seeder = Session::start(seed).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let leecher = Session::start(session_config(metainfo, out.path()))
        .await
        .unwrap();
    let complete = tokio::time::timeout(Duration::from_secs(60), leecher.wait_complete()).await;
    assert_eq!(complete, Ok(true), "the leecher did not complete in 60 s");
    let name = metainfo.info().name();
    assert_eq!(
        std::fs::read(out.path().join(name)).unwrap(),
        std::fs::read(seed_dir.join(name)).unwrap()
    );
    leecher.shutdown().await.unwrap();
    seeder.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn minibit_peers_find_each_other_over_udp_only() {
    let (addr, _state) = start(IpAddr::V4(Ipv4Addr::LOCALHOST), RegistryConfig::default()).await;
    let udp = format!("udp://{addr}/announce");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("u.bin"), random_bytes(600_000)).unwrap();
    let metainfo = MetainfoBuilder::new(dir.path().join("u.bin"))
        .announce(udp.clone())
        .build()
        .unwrap();
    leecher_completes(&metainfo, dir.path(), udp).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_first_tier_falls_over_to_the_second_within_seconds() {
    let (addr, _state) = start(IpAddr::V4(Ipv4Addr::LOCALHOST), RegistryConfig::default()).await;
    let udp = format!("udp://{addr}/announce");
    // Tier 1: a closed TCP port and a UDP tracker that never answers.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/announce", listener.local_addr().unwrap())
    };
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("udp://{}/announce", silent.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.bin"), random_bytes(600_000)).unwrap();
    let metainfo = MetainfoBuilder::new(dir.path().join("t.bin"))
        .announce(closed.clone())
        .announce_list(vec![vec![closed, silent_url], vec![udp.clone()]])
        .build()
        .unwrap();
    // Without the fall-over the leecher only ever asks tier 1 (and backs
    // off 15 s, 30 s, ... between tries): it would find no seeder.
    leecher_completes(&metainfo, dir.path(), udp).await;
    let mut connect = [0u8; 64];
    let (len, _) = silent.try_recv_from(&mut connect).unwrap();
    assert_eq!(len, 16, "the silent tracker of tier 1 was asked first");
}

#[tokio::test]
async fn minibit_peers_udp_client_announces_and_scrapes_against_the_tracker() {
    use minibit_peer::tracker_client::udp::{UdpConfig, UdpTracker};
    let (addr, _state) = start(IpAddr::V4(Ipv4Addr::LOCALHOST), RegistryConfig::default()).await;
    let url = format!("udp://{addr}/announce");
    let hash = InfoHash([0x42; 20]);
    let seeder = UdpTracker::new(&url, UdpConfig::default()).unwrap();
    let leecher = UdpTracker::new(&url, UdpConfig::default()).unwrap();
    let mut request = AnnounceRequest {
        info_hash: hash,
        peer_id: PeerId(*b"-XX0000-seeder------"),
        port: 7001,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: AnnounceEvent::Started,
        compact: true,
        numwant: Some(50),
        ip: None,
        key: None,
    };
    seeder.announce(&request, 1).await.unwrap();
    request.peer_id = PeerId(*b"-XX0000-leecher-----");
    request.port = 7002;
    request.left = 10;
    let response = leecher.announce(&request, 2).await.unwrap();
    assert_eq!(response.complete, 1);
    let peers: Vec<SocketAddr> = response.addrs().collect();
    assert_eq!(peers, [SocketAddr::from(([127, 0, 0, 1], 7001))]);
    let stats = leecher.scrape(&[hash, InfoHash([0; 20])]).await.unwrap();
    assert_eq!((stats[0].seeders, stats[0].leechers), (1, 1));
    assert_eq!((stats[1].seeders, stats[1].leechers), (0, 0));
}
