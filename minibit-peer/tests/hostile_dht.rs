//! A hostile DHT: rogue nodes on 127.0.0.1 answer every `get_peers` with
//! as many peers as a datagram holds (thousands over all of them): port
//! 0, our own address, and a flood of addresses whose listeners accept
//! and never answer a handshake, with the real seeder among them. The
//! client takes at most 200 peers per lookup, never dials port 0 or
//! itself, keeps its dials (connect plus handshake) within the torrent's
//! cap, and still downloads the file. (Private-range addresses are not in the flood: dialling them
//! would send traffic off this machine; they go through the same path.)

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use common::content;
use common::scripted::LogCapture;
use minibit_core::bencode::{Limits, string_end, value_end};
use minibit_core::metainfo::MetainfoBuilder;
use minibit_core::session::SessionConfig;
use minibit_core::torrent::TorrentConfig;
use minibit_peer::dht::DhtConfig;
use minibit_peer::{AddTorrent, Client, ClientConfig};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};

/// Rogue DHT nodes.
const ROGUES: usize = 16;
/// Other rogues each answer names (26 bytes each).
const NODES_PER_ANSWER: usize = 8;
/// Peers per answer (8 bytes each: the answer fits `mainline`'s 2048-byte datagrams).
const PEERS_PER_ANSWER: usize = 180;
/// Listeners that accept connections and stay silent.
const TARPITS: usize = 300;
/// The client's cap on peers taken from one lookup (`discovery.rs`).
const PEERS_PER_LOOKUP: usize = 200;

/// What every rogue answers with.
struct Script {
    rogues: Vec<SocketAddrV4>,
    seeder: SocketAddr,
    tarpits: Vec<SocketAddr>,
    /// The client's own listen address, once it is known.
    own: OnceLock<SocketAddr>,
}

fn compact(addr: SocketAddr) -> [u8; 6] {
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only")
    };
    let mut out = [0; 6];
    out[..4].copy_from_slice(&v4.ip().octets());
    out[4..].copy_from_slice(&v4.port().to_be_bytes());
    out
}

fn node_id(rogue: usize) -> [u8; 20] {
    let mut id = [0x5a; 20];
    id[0] = u8::try_from(rogue).unwrap().wrapping_mul(16);
    id[19] = u8::try_from(rogue).unwrap();
    id
}

fn bstr(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("{}:", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
}

/// The `t` and `q` of a KRPC query (`None` for anything else).
fn query(datagram: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let limits = Limits {
        max_depth: 8,
        max_len: datagram.len(),
    };
    value_end(datagram, 0, limits).ok()?;
    if datagram.first() != Some(&b'd') {
        return None;
    }
    let (mut t, mut q, mut y) = (None, None, None);
    let mut pos = 1;
    while datagram.get(pos) != Some(&b'e') {
        let key_end = string_end(datagram, pos).ok()?;
        let key = &datagram[datagram[pos..].iter().position(|&b| b == b':')? + pos + 1..key_end];
        let value_end = value_end(datagram, key_end, limits).ok()?;
        let value = &datagram[key_end..value_end];
        let text = || {
            let colon = value.iter().position(|&b| b == b':')?;
            value[0]
                .is_ascii_digit()
                .then(|| value[colon + 1..].to_vec())
        };
        match key {
            b"t" => t = text(),
            b"q" => q = text(),
            b"y" => y = text(),
            _ => {}
        }
        pos = value_end;
    }
    (y.as_deref() == Some(b"q")).then_some(())?;
    Some((t?, q?))
}

/// Rogue `r`'s answer to query `q` with transaction id `t`.
fn answer(script: &Script, r: usize, t: &[u8], q: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(b"d2:id");
    bstr(&mut body, &node_id(r));
    if q == b"find_node" || q == b"get_peers" {
        let mut nodes = Vec::new();
        for i in 1..=NODES_PER_ANSWER {
            let other = (r + i) % ROGUES;
            nodes.extend_from_slice(&node_id(other));
            nodes.extend_from_slice(&compact(SocketAddr::V4(script.rogues[other])));
        }
        body.extend_from_slice(b"5:nodes");
        bstr(&mut body, &nodes);
    }
    if q == b"get_peers" {
        body.extend_from_slice(b"5:token2:tk6:valuesl");
        let own = *script.own.get().expect("own address set before any lookup");
        let mut peers = vec![
            script.seeder,
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            own,
        ];
        let first = r * PEERS_PER_ANSWER;
        peers.extend(
            (first..)
                .map(|i| script.tarpits[i % TARPITS])
                .take(PEERS_PER_ANSWER - peers.len()),
        );
        for peer in peers {
            bstr(&mut body, &compact(peer));
        }
        body.push(b'e');
    }
    body.push(b'e');
    let mut out = b"d1:r".to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(b"1:t");
    bstr(&mut out, t);
    out.extend_from_slice(b"1:y1:re");
    out
}

/// Connections the tarpits hold now, the most at once, and every
/// address dialled.
#[derive(Default)]
struct Tarpit {
    open: AtomicUsize,
    peak: AtomicUsize,
    dialled: Mutex<std::collections::HashSet<SocketAddr>>,
}

async fn tarpit(listener: TcpListener, stats: Arc<Tarpit>) {
    let addr = listener.local_addr().unwrap();
    while let Ok((mut stream, _)) = listener.accept().await {
        stats
            .dialled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(addr);
        let now = stats.open.fetch_add(1, Ordering::SeqCst) + 1;
        stats.peak.fetch_max(now, Ordering::SeqCst);
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            // Read (never answer) until the client gives up.
            let mut buf = [0u8; 512];
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            stats.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// [`TARPITS`] silent listeners on 127.0.0.1 counting into `stats`.
async fn start_tarpits(stats: &Arc<Tarpit>) -> Vec<SocketAddr> {
    let mut tarpits = Vec::new();
    for _ in 0..TARPITS {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        tarpits.push(listener.local_addr().unwrap());
        tokio::spawn(tarpit(listener, Arc::clone(stats)));
    }
    tarpits
}

/// [`ROGUES`] rogue DHT nodes on 127.0.0.1 naming `seeder` and `tarpits`;
/// returns their script and the count of queries they answered.
async fn start_rogues(
    seeder: SocketAddr,
    tarpits: Vec<SocketAddr>,
) -> (Arc<Script>, Arc<AtomicUsize>) {
    let mut sockets = Vec::new();
    for _ in 0..ROGUES {
        sockets.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    let rogues: Vec<SocketAddrV4> = sockets
        .iter()
        .map(|s| match s.local_addr().unwrap() {
            SocketAddr::V4(v4) => v4,
            SocketAddr::V6(_) => unreachable!(),
        })
        .collect();
    let script = Arc::new(Script {
        rogues,
        seeder,
        tarpits,
        own: OnceLock::new(),
    });
    let queries = Arc::new(AtomicUsize::new(0));
    for (r, socket) in sockets.into_iter().enumerate() {
        let (script, queries) = (Arc::clone(&script), Arc::clone(&queries));
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                if let Some((t, q)) = query(&buf[..n]) {
                    queries.fetch_add(1, Ordering::Relaxed);
                    let _ = socket.send_to(&answer(&script, r, &t, &q), from).await;
                }
            }
        });
    }
    (script, queries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_dht_peers_are_dialled_within_the_caps_and_the_seeder_is_found() {
    let log = LogCapture::install();
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let len = 300_000;
    std::fs::write(seed_dir.join("rogue.bin"), content(len, 31)).unwrap();
    let metainfo = MetainfoBuilder::new(seed_dir.join("rogue.bin"))
        .piece_length(Some(32 * 1024))
        .build()
        .unwrap();
    let seeder = Client::start(ClientConfig::default()).await.unwrap();
    let seeding = seeder
        .add_torrent(AddTorrent::new(metainfo.clone(), &seed_dir))
        .await
        .unwrap();
    assert!(seeding.wait_complete().await);

    let stats = Arc::new(Tarpit::default());
    let tarpits = start_tarpits(&stats).await;
    let (script, queries) = start_rogues(seeder.local_addr(), tarpits).await;

    let leecher = Client::start(ClientConfig {
        limits: SessionConfig {
            // Silent peers free their dial slot sooner.
            handshake_timeout: Duration::from_secs(2),
            ..SessionConfig::default()
        },
        dht: Some(DhtConfig {
            bind: Ipv4Addr::LOCALHOST,
            bootstrap: vec![script.rogues[0].to_string()],
            ..DhtConfig::new(0)
        }),
        ..ClientConfig::default()
    })
    .await
    .unwrap();
    let own = leecher.local_addr();
    script.own.set(own).unwrap();
    let leech_dir = dir.path().join("leech");
    let leeching = leecher
        .add_torrent(AddTorrent::new(metainfo.clone(), &leech_dir))
        .await
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(60), leeching.wait_complete()).await;
    assert_eq!(done, Ok(true), "the download did not finish");
    assert!(std::fs::read(leech_dir.join("rogue.bin")).unwrap() == content(len, 31));

    let status = leecher.dht_status().await.expect("dht on");
    let torrent = &status.torrents[0];
    assert!(
        torrent.lookups >= 1 && torrent.peers_found >= 1,
        "{status:?}"
    );
    assert!(
        torrent.last_lookup_peers <= PEERS_PER_LOOKUP,
        "one lookup gave {} peers",
        torrent.last_lookup_peers
    );
    let dialled = stats
        .dialled
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len();
    let lookups = usize::try_from(torrent.lookups).unwrap();
    assert!(
        dialled <= PEERS_PER_LOOKUP * lookups,
        "{dialled} tarpits dialled after {lookups} lookups"
    );
    let peak = stats.peak.load(Ordering::SeqCst);
    assert!(peak >= 1, "the flood reached the dialler");
    // A dial holds its slot until the handshake (which a tarpit never
    // sends) or the handshake timeout; a tarpit notices the close a moment
    // after the client started its next dial, hence two more.
    let cap = TorrentConfig::default().max_dials;
    assert!(
        peak <= cap + 2,
        "{peak} connections at once with a cap of {cap} dials"
    );
    assert!(
        queries.load(Ordering::Relaxed) >= ROGUES / 2,
        "the lookup went through the rogues"
    );
    assert!(
        !log.lines()
            .iter()
            .any(|l| l.contains("connection to ourselves")),
        "dialled itself"
    );
    leecher.shutdown().await.unwrap();
    seeder.shutdown().await.unwrap();
}
