//! Local service discovery (BEP 14) between network namespaces on one
//! bridge (the `wan` bench's namespaces, `test_support::netns`): nodes
//! find each other's torrents by multicast, a private torrent is refused
//! and never announced, hostile datagrams are dropped and the node stays
//! up. Needs root (`ip netns`, veth, a bridge, `tc`); without it, or
//! without `ip` (Debian package iproute2), the tests fail saying so.
//!
//! Each node's sockets are made by a thread that entered its namespace
//! ([`Net::run_in`]); the node then runs on the test's runtime like any
//! task. Traffic stays inside the namespaces (10.77.0.0/16 exists only
//! there).

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use minibit_core::lsd::{LSD_GROUP_V4, LSD_PORT, LsdAnnounce, LsdGroup};
use minibit_core::metainfo::InfoHash;
use minibit_peer::lsd::{LsdConfig, LsdError, LsdNode, LsdPeer};
use socket2::{Domain, Protocol, Socket, Type};
use test_support::netns::{FAST, Net, one_at_a_time};
use test_support::process::Killed;
use test_support::root::require_root;
use test_support::tools;
use tokio::sync::mpsc;

/// Generous bound on every wait (the machine is shared).
const WAIT: Duration = Duration::from_secs(40);

/// What the LSD tests need root for.
const NEEDS: &str = "network namespaces, veth, a bridge";

/// An LSD node of peer `i` of `net` announcing TCP port `6881 + i`, its
/// announces every second or two so no test waits 5 minutes.
fn start_node(
    net: &Net,
    i: usize,
    tune: impl FnOnce(&mut LsdConfig),
) -> (LsdNode, mpsc::Receiver<LsdPeer>) {
    let mut config = LsdConfig::new(Net::ip(i), 6881 + i as u16);
    config.schedule.interval = Duration::from_secs(2);
    config.schedule.min_gap = Duration::from_secs(1);
    tune(&mut config);
    let runtime = tokio::runtime::Handle::current();
    net.run_in(i, move || {
        let _inside = runtime.enter();
        LsdNode::start(config).expect("LSD node starts")
    })
}

/// A plain UDP socket of peer `i` of `net`, member of the IPv4 LSD group,
/// sending to it from that peer's address.
fn group_socket(net: &Net, i: usize) -> UdpSocket {
    let ip = Net::ip(i);
    net.run_in(i, move || {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket.set_reuse_port(true).unwrap();
        socket
            .bind(&SocketAddr::new(IpAddr::V4(LSD_GROUP_V4), LSD_PORT).into())
            .unwrap();
        socket.join_multicast_v4(&LSD_GROUP_V4, &ip).unwrap();
        socket.set_multicast_if_v4(&ip).unwrap();
        socket.set_multicast_ttl_v4(1).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        socket.into()
    })
}

fn group() -> SocketAddr {
    LsdGroup::V4.addr(LSD_PORT)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Peers from `rx` until `done` holds of those seen, or [`WAIT`] passed.
async fn collect_until(
    rx: &mut mpsc::Receiver<LsdPeer>,
    seen: &mut Vec<LsdPeer>,
    done: impl Fn(&[LsdPeer]) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(seen) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(peer)) => seen.push(peer),
            Ok(None) | Err(_) => return false,
        }
    }
    true
}

#[test]
fn two_nodes_on_one_bridge_find_each_other_and_a_private_torrent_is_never_announced() {
    require_root(NEEDS);
    let _serial = one_at_a_time();
    let net = Net::create(&[FAST; 3], 50).expect("namespaces on a bridge");
    let public = InfoHash([0xaa; 20]);
    let private = InfoHash([0xbb; 20]);
    let sniffer = group_socket(&net, 2);
    runtime().block_on(async {
        let (a, mut a_peers) = start_node(&net, 0, |_| {});
        let (b, mut b_peers) = start_node(&net, 1, |_| {});
        a.add(public, false).unwrap();
        assert!(
            matches!(a.add(private, true), Err(LsdError::Private(h)) if h == private),
            "a private torrent is refused"
        );
        // B has the same info-hash as a public torrent: if A ever
        // announced it, B would hear it.
        b.add(public, false).unwrap();
        b.add(private, false).unwrap();
        let a_addr = SocketAddr::new(Net::ip(0).into(), 6881);
        let b_addr = SocketAddr::new(Net::ip(1).into(), 6882);
        let (mut a_seen, mut b_seen) = (vec![], vec![]);
        let want = |addr| {
            move |seen: &[LsdPeer]| {
                seen.contains(&LsdPeer {
                    info_hash: public,
                    addr,
                })
            }
        };
        let (a_found, b_found) = tokio::join!(
            collect_until(&mut a_peers, &mut a_seen, want(b_addr)),
            collect_until(&mut b_peers, &mut b_seen, want(a_addr)),
        );
        assert!(a_found, "A heard {a_seen:?}, stats {:?}", a.stats());
        assert!(b_found, "B heard {b_seen:?}, stats {:?}", b.stats());
        // A few more rounds of announces from both.
        tokio::time::sleep(Duration::from_secs(3)).await;
        while let Ok(peer) = a_peers.try_recv() {
            a_seen.push(peer);
        }
        while let Ok(peer) = b_peers.try_recv() {
            b_seen.push(peer);
        }
        let (a_stats, b_stats) = (a.stats(), b.stats());
        assert!(a_stats.announces_sent >= 2 && b_stats.announces_sent >= 2);
        assert!(
            a_stats.own >= 1 && b_stats.own >= 1,
            "each hears itself back and drops it by cookie: {a_stats:?} {b_stats:?}"
        );
        // A hears B's announces of both torrents but reports only the one
        // it registered; B never hears the private one from A; nobody
        // reports itself.
        assert!(a_seen.iter().all(|p| *p
            == LsdPeer {
                info_hash: public,
                addr: b_addr
            }));
        assert!(b_seen.iter().all(|p| *p
            == LsdPeer {
                info_hash: public,
                addr: a_addr
            }));
        // On the wire: every announce from A carries its port and cookie
        // and the public torrent alone.
        let mut from_a = 0;
        let mut buf = [0; 2048];
        while let Ok((len, source)) = sniffer.recv_from(&mut buf) {
            let announce = LsdAnnounce::parse(&buf[..len]).expect("announces parse");
            if source.ip() == a_addr.ip() {
                from_a += 1;
                assert_eq!(announce.port, 6881);
                assert_eq!(announce.cookie.as_deref(), Some(a.cookie()));
                assert_eq!(announce.info_hashes, [public]);
            }
        }
        assert!(from_a >= 2, "the sniffer heard {from_a} announces from A");
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn hostile_datagrams_are_dropped_a_flood_is_capped_and_the_node_stays_up() {
    require_root(NEEDS);
    let _serial = one_at_a_time();
    let net = Net::create(&[FAST; 2], 50).expect("namespaces on a bridge");
    let hash = InfoHash([0xcc; 20]);
    let other = InfoHash([0xdd; 20]);
    let attacker = group_socket(&net, 1);
    let announce = |port, info_hashes: Vec<InfoHash>| {
        LsdAnnounce {
            group: LsdGroup::V4,
            group_port: LSD_PORT,
            port,
            info_hashes,
            cookie: Some("attacker".into()),
        }
        .encode()
    };
    runtime().block_on(async {
        let (node, mut peers) = start_node(&net, 0, |c| {
            // Announce rarely: only the attacker's datagrams count here.
            c.schedule.interval = Duration::from_secs(3600);
            c.flood_burst = 20;
            c.flood_per_second = 1;
        });
        node.add(hash, false).unwrap();
        // Its first announce comes back (multicast loopback) before the
        // attack starts.
        let deadline = tokio::time::Instant::now() + WAIT;
        while node.stats().own == 0 {
            assert!(tokio::time::Instant::now() < deadline, "{:?}", node.stats());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut garbage: Vec<Vec<u8>> = vec![
            vec![b'x'; 4000],
            vec![0xff; 300],
            b"GET / HTTP/1.1\r\nHost: 239.192.152.143:6771\r\n\r\n".to_vec(),
            String::from_utf8(announce(7000, vec![hash]))
                .unwrap()
                .replace("Port: 7000", "Port: 0")
                .into_bytes(),
            String::from_utf8(announce(7000, vec![hash]))
                .unwrap()
                .replace("Infohash: cc", "Infohash: zz")
                .into_bytes(),
            vec![],
        ];
        // Not garbage, but for a torrent the node does not have.
        garbage.push(announce(7001, vec![other]));
        for datagram in &garbage {
            attacker.send_to(datagram, group()).unwrap();
        }
        while node.stats().received < 1 + garbage.len() as u64 {
            assert!(tokio::time::Instant::now() < deadline, "{:?}", node.stats());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stats = node.stats();
        assert_eq!(stats.refused, 6, "{stats:?}");
        assert_eq!(stats.peers_found, 0, "{stats:?}");
        assert!(peers.try_recv().is_err());

        // A flood of valid announces from 1000 ports: the first few fill
        // the burst, the rest are dropped unread.
        let before = node.stats();
        for port in 10_000..11_000 {
            attacker
                .send_to(&announce(port, vec![hash]), group())
                .unwrap();
        }
        // (The kernel may drop some when the socket's buffer is full:
        // wait until nothing more arrives.)
        let mut last = before;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = node.stats();
            if now.received > before.received && now == last {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{now:?}");
            last = now;
        }
        let mut flood = HashSet::new();
        while let Ok(peer) = peers.try_recv() {
            flood.insert(peer.addr.port());
        }
        let after = node.stats();
        let received = after.received - before.received;
        let reported = after.peers_found - before.peers_found;
        assert!(received >= 100, "{received} of 1000 datagrams arrived");
        assert!(reported < 100, "{reported} peers reported, {after:?}");
        assert!(!flood.is_empty() && flood.len() as u64 <= reported);
        // Every datagram of the flood was either dropped unread or
        // reported.
        assert_eq!(
            after.flood_dropped - before.flood_dropped + reported,
            received,
            "{after:?}"
        );
        assert!(flood.iter().all(|port| (10_000..11_000).contains(port)));

        // The node is still up: once the bucket refills, an announce is
        // heard.
        tokio::time::sleep(Duration::from_secs(2)).await;
        attacker
            .send_to(&announce(12_000, vec![hash]), group())
            .unwrap();
        let mut seen = vec![];
        let heard = collect_until(&mut peers, &mut seen, |seen| {
            seen.iter().any(|p| p.addr.port() == 12_000)
        })
        .await;
        assert!(heard, "heard {seen:?}, {:?}", node.stats());
        assert!(seen.iter().all(|p| p.addr.ip() == Net::ip(1)));
        node.shutdown().await;
    });
}

#[test]
fn two_nodes_find_each_other_on_the_ipv6_group_too() {
    require_root(NEEDS);
    let _serial = one_at_a_time();
    let net = Net::create(&[FAST; 2], 50).expect("namespaces on a bridge");
    let hash = InfoHash([0xee; 20]);
    runtime().block_on(async {
        // Interface 0: the kernel picks eth0, the namespace's one link.
        let (a, mut a_peers) = start_node(&net, 0, |c| c.ipv6_interface = Some(0));
        let (b, mut b_peers) = start_node(&net, 1, |c| c.ipv6_interface = Some(0));
        assert!(a.ipv6() && b.ipv6(), "the IPv6 group is joined");
        a.add(hash, false).unwrap();
        b.add(hash, false).unwrap();
        // A link-local source (the veth's fe80:: address, with its
        // interface as scope) and the announced port.
        let v6_from = |port| {
            move |seen: &[LsdPeer]| {
                seen.iter().any(|p| match p.addr {
                    SocketAddr::V6(addr) => {
                        addr.ip().is_unicast_link_local() && addr.port() == port
                    }
                    SocketAddr::V4(_) => false,
                })
            }
        };
        let (mut a_seen, mut b_seen) = (vec![], vec![]);
        let (a_found, b_found) = tokio::join!(
            collect_until(&mut a_peers, &mut a_seen, v6_from(6882)),
            collect_until(&mut b_peers, &mut b_seen, v6_from(6881)),
        );
        assert!(a_found, "A heard {a_seen:?}, stats {:?}", a.stats());
        assert!(b_found, "B heard {b_seen:?}, stats {:?}", b.stats());
        a.shutdown().await;
        b.shutdown().await;
    });
}

/// A libtorrent session (python3-libtorrent) listening on ARGV[2]
/// (`IP:PORT`) with LSD on and DHT, UPnP and NAT-PMP off, in the torrent
/// with info-hash ARGV[1] (hex; no metadata needed), announcing on LSD
/// every second; prints `lsd_peer MESSAGE` for each peer LSD finds (the
/// alert's message names the peer's `IP:PORT`; the Python binding has no
/// class for that alert).
const LIBTORRENT_LSD: &str = r"
import sys, tempfile, time
import libtorrent as lt
s = lt.session({
    'listen_interfaces': sys.argv[2],
    'enable_lsd': True, 'enable_dht': False,
    'enable_upnp': False, 'enable_natpmp': False,
    'local_service_announce_interval': 1,
    'alert_mask': lt.alert_category.peer | lt.alert_category.status | lt.alert_category.error,
})
p = lt.add_torrent_params()
p.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(sys.argv[1])))
p.save_path = tempfile.mkdtemp()
s.add_torrent(p)
print('started', flush=True)
end = time.time() + 60
while time.time() < end:
    s.wait_for_alert(200)
    for a in s.pop_alerts():
        if a.what() == 'lsd_peer':
            print('lsd_peer', a.message(), flush=True)
";

#[test]
fn libtorrent_and_minibit_hear_each_other_on_lsd() {
    require_root(NEEDS);
    tools::require_libtorrent();
    let _serial = one_at_a_time();
    let net = Net::create(&[FAST; 2], 50).expect("namespaces on a bridge");
    let hash = InfoHash([0x5a; 20]);
    let lt_addr = SocketAddr::new(Net::ip(1).into(), 6882);
    let mut python = Command::new("/usr/bin/python3");
    python.args(["-c", LIBTORRENT_LSD, &hash.to_hex(), &lt_addr.to_string()]);
    let mut libtorrent = Killed(
        net.command(1, &python)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs"),
    );
    // libtorrent's lines, read on a thread (the read blocks).
    let (line_tx, mut lines) = mpsc::unbounded_channel();
    let stdout = libtorrent.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    runtime().block_on(async {
        let (node, mut peers) = start_node(&net, 0, |_| {});
        node.add(hash, false).unwrap();
        let mut seen = vec![];
        let heard = collect_until(&mut peers, &mut seen, |seen| {
            seen.contains(&LsdPeer {
                info_hash: hash,
                addr: lt_addr,
            })
        })
        .await;
        assert!(heard, "minibit heard {seen:?}, {:?}", node.stats());
        let ours = format!("{}:6881", Net::ip(0));
        let mut said: Vec<String> = vec![];
        let deadline = tokio::time::Instant::now() + WAIT;
        while !said
            .iter()
            .any(|l| l.starts_with("lsd_peer") && l.contains(&ours))
        {
            match tokio::time::timeout_at(deadline, lines.recv()).await {
                Ok(Some(line)) => said.push(line),
                Ok(None) | Err(_) => panic!("libtorrent said {said:?}, not {ours}"),
            }
        }
        node.shutdown().await;
    });
}

#[test]
fn two_nodes_on_one_host_share_the_group_port_over_loopback() {
    require_root(NEEDS);
    let _serial = one_at_a_time();
    // One namespace: its loopback only.
    let net = Net::create(&[FAST], 50).expect("a namespace");
    let hash = InfoHash([0x11; 20]);
    runtime().block_on(async {
        let on_loopback = |port| {
            move |c: &mut LsdConfig| {
                c.interface = std::net::Ipv4Addr::LOCALHOST;
                c.listen_port = port;
            }
        };
        // Both bind 6771 (SO_REUSEPORT) and both get every datagram.
        let (a, mut a_peers) = start_node(&net, 0, on_loopback(7001));
        let (b, mut b_peers) = start_node(&net, 0, on_loopback(7002));
        a.add(hash, false).unwrap();
        b.add(hash, false).unwrap();
        let peer = |port| LsdPeer {
            info_hash: hash,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let (mut a_seen, mut b_seen) = (vec![], vec![]);
        let (a_found, b_found) = tokio::join!(
            collect_until(&mut a_peers, &mut a_seen, |s| s.contains(&peer(7002))),
            collect_until(&mut b_peers, &mut b_seen, |s| s.contains(&peer(7001))),
        );
        assert!(a_found, "A heard {a_seen:?}, stats {:?}", a.stats());
        assert!(b_found, "B heard {b_seen:?}, stats {:?}", b.stats());
        assert!(!a_seen.contains(&peer(7001)) && !b_seen.contains(&peer(7002)));
        a.shutdown().await;
        b.shutdown().await;
    });
}
