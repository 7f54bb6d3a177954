//! The Mainline DHT (BEP 5) with libtorrent, both ways, with no tracker:
//! each side is started from a bare magnet link (`xt` only, no `tr`, no
//! `x.pe`) and finds the other through the DHT alone.
//!
//! Each peer has an address of its own, as on a real network: the tests
//! use network namespaces on one bridge (the `wan` bench's [`Net`], as the
//! LSD tests do; needs root and iproute2), addresses in 10.77.0.0/16 that
//! exist only there. Namespace 0 holds the DHT everyone bootstraps from:
//! a `mainline::Testnet` of [`BACKBONE`] nodes made in-process by a thread
//! that entered it. The peers live in namespaces 1 and 2.

use std::ffi::OsStr;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mainline::{Id, Testnet};
use minibit_core::metainfo::InfoHash;

use crate::clients::Libtorrent;
use crate::minibit::{Tracker, info_hash, peer_binary};
use crate::{FILE_LEN, minibit_exits_ok, tempdir};
use test_support::content::{random_file, same_content};
use test_support::netns::{self, FAST, Net, one_at_a_time};
use test_support::process::{Proc, run, wait_until};
use test_support::root::require_root;

/// Nodes of the DHT in namespace 0.
const BACKBONE: usize = 8;

/// The longest each step may take (the machine is shared; a working run
/// takes seconds).
const WAIT: Duration = Duration::from_secs(90);

/// TCP and UDP port of every peer (each has a namespace of its own).
const PORT: u16 = 6881;

/// The namespaces and the DHT in namespace 0.
struct Dht {
    // Dropped first: its nodes stop before their namespace goes.
    backbone: Testnet,
    net: Net,
    /// [`Net`] names its namespaces after the process: one at a time.
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Dht {
    /// The backbone and `peers` empty namespaces (1 to `peers`).
    fn start(peers: usize) -> Self {
        let serial = one_at_a_time();
        require_root("network namespaces, veth, a bridge");
        netns::sweep().expect("sweep the namespaces of dead runs");
        let net = Net::create(&vec![FAST; peers + 1], 50).expect("network namespaces");
        let backbone = net.run_in(0, || {
            Testnet::builder(BACKBONE)
                .bind_address(Net::ip(0))
                .build()
                .expect("the backbone DHT")
        });
        Self {
            backbone,
            net,
            _serial: serial,
        }
    }

    /// The backbone's nodes, `IP:PORT` each.
    fn bootstrap(&self) -> &[String] {
        &self.backbone.bootstrap
    }

    /// Waits until a lookup from a backbone node finds `peer` for
    /// `info_hash`: its `announce_peer` was stored.
    fn wait_announced(
        &self,
        info_hash: InfoHash,
        peer: SocketAddrV4,
        describe: impl Fn() -> String,
    ) {
        let node = self.backbone.nodes[0].clone().as_async();
        let started = Instant::now();
        wait_until(WAIT, &format!("{peer} to be announced on the DHT"), || {
            let found: Vec<Vec<SocketAddrV4>> =
                futures::executor::block_on(node.get_peers(Id::from(info_hash.0)).collect());
            found.iter().flatten().any(|&p| p == peer).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{peer} never announced {info_hash} on the DHT\n{}",
                describe()
            )
        });
        eprintln!("{peer} found on the DHT after {:?}", started.elapsed());
    }
}

/// `magnet:?xt=urn:btih:HEX`: nothing but the info-hash.
fn bare_magnet(info_hash: InfoHash) -> String {
    format!("magnet:?xt=urn:btih:{}", info_hash.to_hex())
}

/// Waits until `copy` holds `source` exactly; panics with `describe()`.
fn wait_same(source: &Path, copy: &Path, what: &str, describe: impl Fn() -> String) {
    let started = Instant::now();
    wait_until(WAIT, what, || same_content(source, copy).then_some(()))
        .unwrap_or_else(|| panic!("{what}: no identical copy in time\n{}", describe()));
    eprintln!("{what}: identical copy after {:?}", started.elapsed());
}

#[test]
fn libtorrent_finds_a_minibit_seeder_on_the_dht_from_a_bare_magnet_link() {
    let dht = Dht::start(2);
    let tmp = tempdir();
    let source = tmp.path().join("seed").join("Holiday Movie.bin");
    random_file(&source, FILE_LEN);

    // Namespace 1: the tracker seeds the file; its seeder's DHT node is on
    // UDP PORT and announces the torrent there.
    let bind = format!("{}:6969", Net::ip(1));
    let port = PORT.to_string();
    let mut args = vec!["--bind", &bind, "--peer-port", &port, "--dht"];
    for node in dht.bootstrap() {
        args.extend(["--dht-bootstrap", node]);
    }
    let command = Tracker::command(&args, &[&source]);
    let (tracker, seeded) = Tracker::spawn(dht.net.command(1, &command), 1);
    tracker.proc().wait_line(WAIT, |l| {
        l.starts_with("dht node listening on ").then_some(())
    });
    let hash = seeded[0].info_hash;
    let seeder = SocketAddrV4::new(Net::ip(1), PORT);
    dht.wait_announced(hash, seeder, || tracker.proc().lines().join("\n"));

    // Namespace 2: libtorrent, bootstrapped from the backbone, knows only
    // the info-hash.
    let dir = tmp.path().join("lt");
    let lt = Libtorrent::start_on_dht(
        &dht.net,
        2,
        ("--magnet", OsStr::new(&bare_magnet(hash))),
        &dir,
        "--download",
        &dht.bootstrap().join(","),
    );
    wait_same(
        &source,
        &dir.join("Holiday Movie.bin"),
        "libtorrent from a minibit seeder found on the DHT",
        || {
            format!(
                "--- libtorrent:\n{}\n--- minibit-tracker:\n{}",
                lt.describe(),
                tracker.proc().lines().join("\n")
            )
        },
    );
    // libtorrent announced itself too, and a mainline node stored it.
    dht.wait_announced(hash, SocketAddrV4::new(Net::ip(2), PORT), || lt.describe());
}

#[test]
fn minibit_finds_a_libtorrent_seeder_on_the_dht_from_a_bare_magnet_link() {
    let dht = Dht::start(2);
    let tmp = tempdir();
    let seed_dir = tmp.path().join("seed");
    let source = seed_dir.join("Holiday Movie.bin");
    random_file(&source, FILE_LEN);
    // A .torrent with no tracker at all.
    let torrent = tmp.path().join("movie.torrent");
    let mut create = Command::new(peer_binary());
    create
        .args(["-q", "create", "-o"])
        .arg(&torrent)
        .arg(&source);
    run(create);
    let hash = info_hash(&torrent);

    // Namespace 1: libtorrent seeds it, its DHT bootstrapped from the
    // backbone; it announces the torrent there.
    let lt = Libtorrent::start_on_dht(
        &dht.net,
        1,
        ("--torrent", torrent.as_os_str()),
        &seed_dir,
        "--seed",
        &dht.bootstrap().join(","),
    );
    lt.wait_complete(WAIT);
    dht.wait_announced(hash, SocketAddrV4::new(Net::ip(1), PORT), || lt.describe());

    // Namespace 2: minibit-peer, its DHT bootstrapped from the backbone
    // (no LSD: only the DHT may find the seeder), knows only the info-hash.
    let out = tmp.path().join("minibit");
    let mut command = Command::new(peer_binary());
    command
        .arg("-v")
        .arg("-o")
        .arg(&out)
        .args(["--bind", &SocketAddr::from((Net::ip(2), PORT)).to_string()])
        .args(["--no-lsd", "--exit-on-complete"]);
    for node in dht.bootstrap() {
        command.args(["--dht-bootstrap", node]);
    }
    command.arg(bare_magnet(hash));
    let peer = Proc::spawn("minibit-peer", dht.net.command(2, &command));
    minibit_exits_ok(peer, WAIT, "a libtorrent seeder found on the DHT", || {
        lt.describe()
    });
    assert!(
        same_content(&source, &out.join("Holiday Movie.bin")),
        "minibit-peer's copy differs from what libtorrent seeds"
    );
}
