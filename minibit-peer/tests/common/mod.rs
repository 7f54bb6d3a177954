//! Shared test fixtures: generated content, a torrent over it, and a small
//! HTTP stub playing a minibit tracker (announce + catalogue).

#![allow(dead_code)] // each test binary uses a different subset

pub mod daemon;
pub mod scripted;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minibit_core::metainfo::{Metainfo, MetainfoBuilder};
use minibit_core::torrent::AnnounceEvent;
use minibit_core::tracker::{AnnounceRequest, AnnounceResponse, TrackerPeer};
use minibit_peer::{Session, SessionConfig, SessionHandle};
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// Deterministic pseudo-random bytes (xorshift), so pieces differ.
#[allow(unused_imports)] // each test binary uses a different subset
pub use test_support::content::xorshift as content;

/// Every announce the stub received: (the peer's address, event).
pub type Log = Arc<Mutex<Vec<(SocketAddr, AnnounceEvent)>>>;

/// The torrents a stub's catalogue lists.
type Catalogue = Arc<Mutex<Vec<Metainfo>>>;

/// A running tracker stub.
pub struct Stub {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `https://127.0.0.1:PORT`: the same stub over TLS, once
    /// [`Stub::serve_https`] started it.
    pub https_base: Option<String>,
    /// Announces received.
    pub log: Log,
    catalogue: Catalogue,
}

impl Stub {
    /// The announce URL.
    pub fn announce_url(&self) -> String {
        format!("{}/announce", self.base)
    }

    /// Serves the same announces and catalogue over HTTPS too, on another
    /// port of 127.0.0.1, with a self-signed certificate for `127.0.0.1`
    /// and `localhost` made now (rcgen); returns the certificate (PEM),
    /// the root a client must trust.
    pub async fn serve_https(&mut self) -> String {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap();
        let pem = cert.cert.pem();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()),
        );
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        self.https_base = Some(format!("https://{}", listener.local_addr().unwrap()));
        let (seen, listed) = (Arc::clone(&self.log), Arc::clone(&self.catalogue));
        tokio::spawn(async move {
            loop {
                let (stream, from) = listener.accept().await.unwrap();
                let (acceptor, seen, listed) =
                    (acceptor.clone(), Arc::clone(&seen), Arc::clone(&listed));
                tokio::spawn(async move {
                    // A client that does not trust the certificate hangs up here.
                    if let Ok(tls) = acceptor.accept(stream).await {
                        serve(tls, from.ip(), seen, listed).await;
                    }
                });
            }
        });
        pem
    }

    /// Adds `metainfo` to the catalogue.
    pub fn publish(&self, metainfo: Metainfo) {
        self.catalogue.lock().unwrap().push(metainfo);
    }

    /// The event announced by the peer listening on `port`, in order.
    pub fn events_of(&self, port: u16) -> Vec<AnnounceEvent> {
        self.events_where(|p| p == port)
    }

    /// The events announced by every peer but the one listening on
    /// `port`, in order.
    pub fn events_except(&self, port: u16) -> Vec<AnnounceEvent> {
        self.events_where(|p| p != port)
    }

    fn events_where(&self, port: impl Fn(u16) -> bool) -> Vec<AnnounceEvent> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|&&(addr, _)| port(addr.port()))
            .map(|&(_, e)| e)
            .collect()
    }

    /// Waits (at most 60 s) until the stub got its first announce.
    pub async fn first_announce(&self) {
        let start = std::time::Instant::now();
        while self.log.lock().unwrap().is_empty() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "no announce"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// Starts the stub on 127.0.0.1. `/announce` remembers every announcing peer (its
/// IP and announced port) and answers with the others in compact form;
/// `/torrents?q=` lists `catalogue` entries whose name contains q (JSON);
/// `/torrents/NAME.torrent` and `/get?name=NAME` serve the torrent of that name.
pub async fn start_stub() -> Stub {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let seen = Arc::clone(&log);
    let catalogue: Catalogue = Arc::default();
    let listed = Arc::clone(&catalogue);
    tokio::spawn(async move {
        loop {
            let (stream, from) = listener.accept().await.unwrap();
            tokio::spawn(serve(
                stream,
                from.ip(),
                Arc::clone(&seen),
                Arc::clone(&listed),
            ));
        }
    });
    Stub {
        base,
        https_base: None,
        log,
        catalogue,
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    from: IpAddr,
    seen: Log,
    catalogue: Catalogue,
) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&request)
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let target = line.split(' ').nth(1).unwrap().to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let catalogue = catalogue.lock().unwrap().clone();
    let (status, body) = if path == "/announce" {
        ("200 OK", announce(query, from, &seen))
    } else if path == "/torrents" {
        let q = query.strip_prefix("q=").unwrap_or("");
        let q = percent_decode_str(q).decode_utf8().unwrap();
        ("200 OK", listing(&catalogue, &q))
    } else if let Some(name) = path
        .strip_prefix("/torrents/")
        .and_then(|n| n.strip_suffix(".torrent"))
        .or_else(|| {
            (path == "/get")
                .then(|| query.strip_prefix("name="))
                .flatten()
        })
    {
        let name = percent_decode_str(name).decode_utf8().unwrap();
        match catalogue.iter().find(|m| m.info().name() == name) {
            Some(m) => ("200 OK", m.to_bytes()),
            None => ("404 Not Found", b"no such torrent".to_vec()),
        }
    } else {
        ("404 Not Found", b"not found".to_vec())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

fn announce(query: &str, from: IpAddr, seen: &Log) -> Vec<u8> {
    let announce = AnnounceRequest::parse_query(query).unwrap();
    let me = SocketAddr::new(from, announce.port);
    let peers = {
        let mut seen = seen.lock().unwrap();
        seen.push((me, announce.event));
        let mut addrs: Vec<SocketAddr> = seen.iter().map(|&(a, _)| a).collect();
        addrs.sort_unstable();
        addrs.dedup();
        addrs
            .into_iter()
            .filter(|&a| a != me)
            .map(|addr| TrackerPeer {
                addr,
                peer_id: None,
            })
            .collect()
    };
    AnnounceResponse {
        interval: 60,
        min_interval: None,
        complete: 0,
        incomplete: 0,
        peers,
        warning: None,
    }
    .encode(true)
}

fn listing(catalogue: &[Metainfo], q: &str) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = catalogue
        .iter()
        .filter(|m| m.info().name().contains(q))
        .map(|m| {
            serde_json::json!({
                "name": m.info().name(),
                "info_hash": m.info_hash().to_hex(),
                "size": m.total_length(),
                "piece_length": m.layout().piece_length(),
                "seeders": 1,
                "leechers": 0,
                "completed": 0,
            })
        })
        .collect();
    serde_json::to_vec(&entries).unwrap()
}

/// Files of the multi-file torrent `album`, relative to its folder.
pub const ALBUM_FILES: [&str; 3] = ["a.bin", "disc2/b.bin", "empty.txt"];

/// Writes the folder `album` under `root` (about 4 MiB in three files,
/// one empty) and builds its torrent with 64 KiB pieces.
pub fn make_album(root: &Path, announce: &str) -> Metainfo {
    let folder = root.join("album");
    std::fs::create_dir_all(folder.join("disc2")).unwrap();
    std::fs::write(folder.join("a.bin"), content(3 * 1024 * 1024 + 12_345, 1)).unwrap();
    std::fs::write(folder.join("disc2/b.bin"), content(1024 * 1024 + 777, 2)).unwrap();
    std::fs::write(folder.join("empty.txt"), b"").unwrap();
    MetainfoBuilder::new(&folder)
        .piece_length(Some(64 * 1024))
        .announce(announce)
        .build()
        .unwrap()
}

/// Writes one file `name` of `len` bytes under `root` and builds its torrent.
pub fn make_single(root: &Path, name: &str, len: usize, announce: &str) -> Metainfo {
    std::fs::write(root.join(name), content(len, 3)).unwrap();
    MetainfoBuilder::new(root.join(name))
        .piece_length(Some(32 * 1024))
        .announce(announce)
        .build()
        .unwrap()
}

/// Lists `leecher` in `stub`'s swarm (as if it had announced `started`)
/// and starts a seeder of `metainfo` over `seed_dir` (made by
/// [`make_single`]), which learns the leecher from the stub and dials it;
/// waits (at most 60 s) until the leecher completes and checks its copy,
/// `out_dir/NAME`, holds the content. Returns the seeder.
pub async fn an_honest_seeder_dials(
    stub: &Stub,
    metainfo: &Metainfo,
    seed_dir: &Path,
    leecher: &SessionHandle,
    out_dir: &Path,
) -> SessionHandle {
    stub.log
        .lock()
        .unwrap()
        .push((leecher.local_addr(), AnnounceEvent::Started));
    let seeder = Session::start(local_config(metainfo, seed_dir, 1))
        .await
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(60), leecher.wait_complete()).await;
    assert_eq!(done, Ok(true), "the download did not finish");
    let name = metainfo.info().name();
    let len = metainfo.total_length() as usize;
    let copy = std::fs::read(out_dir.join(name)).unwrap();
    assert!(copy == content(len, 3), "the downloaded file differs");
    seeder
}

/// Runs `minibit-peer ARGS...` with `env` set (and
/// `MINIBIT_EXTRA_CA_CERTS` unset) to its end and returns its output; it
/// is killed when the test ends first, and a run over 120 s fails the test
/// (a hung binary fails the test instead of CI).
pub async fn run_peer(args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_minibit-peer"))
        .args(args)
        .env_remove("MINIBIT_EXTRA_CA_CERTS")
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .expect("minibit-peer did not exit")
        .unwrap()
}

/// A session config on 127.0.0.1 with a fixed RNG seed.
pub fn local_config(metainfo: &Metainfo, dir: &Path, seed: u64) -> SessionConfig {
    let mut config = SessionConfig::new(metainfo.clone(), dir);
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    config.options.torrent.rng_seed = Some(seed);
    config
}

/// Logs to the test output when `RUST_LOG` is set (e.g. `RUST_LOG=debug`).
pub fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// `session`'s upload counter (payload bytes) once it stopped changing:
/// progress is published every 250 ms and the last blocks may still be
/// counted after the downloader exits (polled every 300 ms, at most 6 s).
pub async fn settled_upload(session: &minibit_peer::SessionHandle) -> u64 {
    let progress = session.progress();
    let mut last = u64::MAX;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = progress.borrow().uploaded;
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// Nine "photos" of uneven sizes under `root/photos` (most 32 KiB pieces
/// straddle two files), as one torrent announcing to `announce`.
pub fn make_photos(root: &Path, announce: &str) -> Metainfo {
    let folder = root.join("photos");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 1..=9u64 {
        let len = 90_000 + i * 23_456;
        std::fs::write(
            folder.join(format!("photo-{i}.jpg")),
            content(len as usize, i),
        )
        .unwrap();
    }
    MetainfoBuilder::new(&folder)
        .piece_length(Some(32 * 1024))
        .announce(announce)
        .build()
        .unwrap()
}
