//! Interoperability with real BitTorrent clients from Debian's packages
//! (`scripts/test.sh` installs them, opentracker included): Transmission 3 (`transmission-daemon`,
//! `transmission-remote`, `transmission-create`), aria2 (`aria2c`) and
//! libtorrent-rasterbar (`python3-libtorrent`, driven by `lt_client.py`).
//!
//! Everything runs on 127.0.0.1 with free ports and private folders; every
//! wait is bounded and every process a test starts is killed by pid when
//! the test ends. The `minibit-peer` binary is taken from the same target
//! folder as `minibit-tracker` (see [`minibit::peer`]).
//!
//! 1. minibit seeds, real clients download: `minibit-tracker FILE` seeds,
//!    each client is given the `.torrent` the tracker serves.
//! 2. real clients seed, minibit downloads: `transmission-create` or
//!    `mktorrent` builds the `.torrent` for a pure `minibit-tracker`, the
//!    client seeds it, `minibit-peer` downloads it (one file and a folder).
//! 3. a mixed swarm: the seeding tracker, two `minibit-peer`s and two real
//!    clients start together; all complete, and a minibit-peer uploaded to
//!    libtorrent (which reports the blocks it exchanged with each peer id).
//! 4. UDP trackers (`udp.rs`): libtorrent, aria2 and `minibit-peer`
//!    announce over BEP 15 to `minibit-tracker` and download from its
//!    seeder; a libtorrent seed and a `minibit-peer` find each other
//!    through opentracker over UDP.
//! 5. one port (`many.rs`): the tracker seeds 50 torrents through one
//!    client on one peer port; three libtorrent clients download three of
//!    them at once.
//! 6. magnet links (`magnet.rs`): libtorrent downloads from the magnet link
//!    the tracker lists, the metadata served by minibit's seeder (BEP 9).
//! 7. the Mainline DHT (`dht.rs`, in network namespaces: needs root):
//!    libtorrent finds minibit's seeder, and minibit-peer a libtorrent
//!    seeder, from a bare magnet link through the DHT alone.

mod clients;
mod dht;
mod magnet;
mod many;
// Shared with the e2e tests through `#[path]`; each suite uses a part.
#[allow(dead_code)]
mod minibit;
mod udp;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clients::{Client, Libtorrent};
use minibit::{Tracker, info_hash};
use tempfile::TempDir;
use test_support::content::{random_file, random_folder, same_content};
use test_support::process::{Proc, free_port, run, wait_until};
use test_support::tools;

/// The longest a transfer may take. Transmission 3 seeds slowly on
/// loopback (a few MB/s), and every test shares two cores.
const TRANSFER: Duration = Duration::from_secs(150);

/// Size of the single-file content, bytes.
const FILE_LEN: usize = 6_000_000;

fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("minibit-interop-")
        .tempdir()
        .unwrap()
}

/// Waits until `copy` holds `source` exactly (printing how long that
/// took, for the record); panics with `describe()`.
fn wait_same(source: &Path, copy: &Path, what: &str, describe: impl Fn() -> String) {
    let started = Instant::now();
    wait_until(TRANSFER, what, || same_content(source, copy).then_some(()))
        .unwrap_or_else(|| panic!("{what}: no identical copy in time\n{}", describe()));
    eprintln!("{what}: identical copy after {:?}", started.elapsed());
}

// 1. minibit seeds, real clients download.

fn real_client_downloads_from_minibit(client: Client) {
    let tmp = tempdir();
    let source = tmp.path().join("seed").join("Holiday Movie.bin");
    random_file(&source, FILE_LEN);
    let (tracker, seeded) = Tracker::start(&[&source]);
    let torrent = tmp.path().join("movie.torrent");
    tracker.fetch(&seeded[0].torrent_url, &torrent);

    let dir = tmp.path().join("download");
    let running = client.download(&torrent, &dir, &tmp.path().join("home"));
    wait_same(
        &source,
        &dir.join("Holiday Movie.bin"),
        &format!("{client:?} downloading from minibit-tracker"),
        || running.describe(),
    );
}

#[test]
fn libtorrent_downloads_from_minibit() {
    real_client_downloads_from_minibit(Client::Libtorrent);
}

#[test]
fn aria2_downloads_from_minibit() {
    real_client_downloads_from_minibit(Client::Aria2);
}

#[test]
fn transmission_downloads_from_minibit() {
    real_client_downloads_from_minibit(Client::Transmission);
}

// 2. real clients seed, minibit downloads.

/// Which tool builds the `.torrent`.
#[derive(Clone, Copy)]
enum Maker {
    TransmissionCreate,
    Mktorrent,
}

/// Builds a `.torrent` for `content` announcing to `announce`, 64 KiB pieces.
fn make_torrent(maker: Maker, content: &Path, announce: &str, out: &Path) {
    let mut command = match maker {
        Maker::TransmissionCreate => {
            tools::require(&tools::TRANSMISSION_CREATE);
            let mut c = Command::new("transmission-create");
            c.arg("-o").arg(out).args(["-t", announce, "-s", "64"]);
            c
        }
        Maker::Mktorrent => {
            tools::require(&tools::MKTORRENT);
            let mut c = Command::new("mktorrent");
            c.arg("-o").arg(out).args(["-a", announce, "-l", "16"]);
            c
        }
    };
    command.arg(content);
    run(command);
}

/// [`FILE_LEN`] random bytes in `dir/seed/Holiday Movie.bin`, a pure
/// `minibit-tracker`, and `dir/content.torrent` of the file announcing to
/// it, made by `transmission-create`: (the tracker, the file, the
/// `.torrent`).
fn a_file_on_a_pure_tracker(dir: &Path) -> (Tracker, PathBuf, PathBuf) {
    let source = dir.join("seed").join("Holiday Movie.bin");
    random_file(&source, FILE_LEN);
    let (tracker, _) = Tracker::start(&[]);
    let torrent = dir.join("content.torrent");
    make_torrent(
        Maker::TransmissionCreate,
        &source,
        &tracker.announce_url(),
        &torrent,
    );
    (tracker, source, torrent)
}

/// Runs `minibit-peer --exit-on-complete SOURCE` (a `.torrent` or a
/// magnet link) into `out` until it exits, at most [`TRANSFER`], prints how
/// long that took and asserts it succeeded (else panics with its output
/// and `describe()`, what the peers it downloads from, named `from`, say).
fn minibit_downloads(source: &str, out: &Path, from: &str, describe: impl Fn() -> String) -> Proc {
    let peer = minibit::peer("minibit-peer", source, out, free_port(), true);
    minibit_exits_ok(peer, TRANSFER, from, describe)
}

/// Waits (at most `within`) until `peer`, a `minibit-peer
/// --exit-on-complete` downloading from `from`, exits, prints how long
/// that took and asserts it succeeded (else panics with its output and
/// `describe()`, what the peers it downloads from say).
fn minibit_exits_ok(
    mut peer: Proc,
    within: Duration,
    from: &str,
    describe: impl Fn() -> String,
) -> Proc {
    let started = Instant::now();
    let status = peer.wait_exit(within);
    eprintln!(
        "minibit-peer from {from}: exited after {:?}",
        started.elapsed()
    );
    assert!(
        status.success(),
        "minibit-peer failed ({status}):\n{}\n--- {from}:\n{}",
        peer.lines().join("\n"),
        describe()
    );
    peer
}

fn minibit_downloads_from_real_client(client: Client, maker: Maker, folder: bool) {
    let tmp = tempdir();
    let seed_dir = tmp.path().join("seed");
    let name = if folder { "Album" } else { "Holiday Movie.bin" };
    let source = seed_dir.join(name);
    if folder {
        random_folder(&source);
    } else {
        random_file(&source, FILE_LEN);
    }
    let (tracker, _) = Tracker::start(&[]);
    let torrent = tmp.path().join("content.torrent");
    make_torrent(maker, &source, &tracker.announce_url(), &torrent);

    let seeder = client.seed(&torrent, &seed_dir, &tmp.path().join("home"), TRANSFER);
    // minibit-peer announces once at start: the seeder must be known by then.
    tracker.wait_for_a_seeder(info_hash(&torrent), TRANSFER);

    let out = tmp.path().join("minibit");
    let from = format!("{client:?}");
    minibit_downloads(torrent.to_str().unwrap(), &out, &from, || seeder.describe());
    assert!(
        same_content(&source, &out.join(name)),
        "minibit-peer's copy differs from what {client:?} seeds"
    );
}

#[test]
fn minibit_downloads_from_libtorrent() {
    minibit_downloads_from_real_client(Client::Libtorrent, Maker::TransmissionCreate, false);
}

#[test]
fn minibit_downloads_folder_from_libtorrent() {
    minibit_downloads_from_real_client(Client::Libtorrent, Maker::Mktorrent, true);
}

#[test]
fn minibit_downloads_from_aria2() {
    minibit_downloads_from_real_client(Client::Aria2, Maker::Mktorrent, false);
}

#[test]
fn minibit_downloads_folder_from_aria2() {
    minibit_downloads_from_real_client(Client::Aria2, Maker::TransmissionCreate, true);
}

#[test]
fn minibit_downloads_from_transmission() {
    minibit_downloads_from_real_client(Client::Transmission, Maker::TransmissionCreate, false);
}

#[test]
fn minibit_downloads_folder_from_transmission() {
    minibit_downloads_from_real_client(Client::Transmission, Maker::TransmissionCreate, true);
}

// The harness itself: two real clients swap a file through a pure
// minibit-tracker (Transmission added first: it only accepts connections,
// so libtorrent must hear of it when it announces).

#[test]
fn transmission_downloads_from_libtorrent_through_minibit_tracker() {
    let tmp = tempdir();
    let seed_dir = tmp.path().join("seed");
    let (tracker, source, torrent) = a_file_on_a_pure_tracker(tmp.path());

    let dir = tmp.path().join("transmission");
    let leecher = Client::Transmission.download(&torrent, &dir, &tmp.path().join("tr-home"));
    tracker.wait_for_peers(info_hash(&torrent), 1, TRANSFER);
    let seeder =
        Client::Libtorrent.seed(&torrent, &seed_dir, &tmp.path().join("lt-home"), TRANSFER);
    wait_same(
        &source,
        &dir.join("Holiday Movie.bin"),
        "Transmission downloading from libtorrent",
        || format!("{}\n---\n{}", leecher.describe(), seeder.describe()),
    );
}

// 3. a mixed swarm.

/// The seeding tracker, two minibit-peers, libtorrent and `other` start
/// together (within seconds); all complete, and libtorrent got blocks from
/// a minibit-peer.
fn mixed_swarm(other: Client) {
    let tmp = tempdir();
    let source = tmp.path().join("seed").join("swarm.bin");
    random_file(&source, 2 * FILE_LEN);
    let (tracker, seeded) = Tracker::start(&[&source]);
    let torrent = tmp.path().join("swarm.torrent");
    tracker.fetch(&seeded[0].torrent_url, &torrent);
    let dir = |name: &str| -> PathBuf { tmp.path().join(name) };

    // `other` announces first, so the minibit-peers hear of it and dial it
    // (Transmission never dials loopback peers). libtorrent downloads at
    // 1 MB/s and the minibit-peers start once it holds a fifth: they fetch
    // that fifth partly from libtorrent while it still needs most of the
    // file, which they soon hold.
    let other_client = other.download(&torrent, &dir("other"), &dir("other-home"));
    let hash = info_hash(&torrent);
    tracker.wait_for_peers(hash, 2, TRANSFER);
    let libtorrent = Libtorrent::download_throttled(&torrent, &dir("libtorrent"), 1_000_000);
    tracker.wait_for_peers(hash, 3, TRANSFER);
    libtorrent.wait_progress(200_000, TRANSFER);
    let ports = [free_port(), free_port()];
    let peers: Vec<_> = ports
        .iter()
        .enumerate()
        .map(|(i, &port)| {
            minibit::peer(
                &format!("minibit-peer {i}"),
                torrent.to_str().unwrap(),
                &dir(&format!("minibit-{i}")),
                port,
                false,
            )
        })
        .collect();

    let copies = [
        ("the other real client", dir("other")),
        ("minibit-0", dir("minibit-0")),
        ("minibit-1", dir("minibit-1")),
        ("libtorrent", dir("libtorrent")),
    ];
    let describe = || {
        let minibit: Vec<_> = peers.iter().map(|p| p.lines().join("\n")).collect();
        format!(
            "--- {other:?}:\n{}\n--- libtorrent:\n{}\n--- minibit-peers:\n{}",
            other_client.describe(),
            libtorrent.describe(),
            minibit.join("\n---\n")
        )
    };
    for (name, copy) in &copies {
        wait_same(&source, &copy.join("swarm.bin"), name, describe);
    }

    // Who sent what: libtorrent counts blocks per peer id; the tracker maps
    // the minibit-peers' listen ports to their peer ids.
    let (swarm, _) = tracker.swarm(hash);
    let ids: Vec<_> = swarm
        .iter()
        .filter(|(addr, _)| ports.contains(&addr.port()))
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(
        ids.len(),
        2,
        "both minibit-peers are in the swarm: {swarm:?}"
    );
    let blocks = libtorrent.blocks();
    let sum = |pick: fn(&(u64, u64)) -> u64| -> u64 {
        ids.iter().filter_map(|id| blocks.get(id)).map(pick).sum()
    };
    let (from_minibit, to_minibit) = (sum(|b| b.0), sum(|b| b.1));
    // Which way blocks flow between peers that all hold a fast seed is a
    // race; the throttled libtorrent needs the minibit-peers, so they must
    // have uploaded to it. (Real clients uploading to minibit-peers is
    // what the `minibit_downloads_from_*` tests check.)
    eprintln!(
        "libtorrent got {from_minibit} blocks from the minibit-peers, sent them {to_minibit}"
    );
    assert!(
        from_minibit > 0,
        "libtorrent got no block from a minibit-peer (sent them {to_minibit})\n{}",
        describe()
    );
}

#[test]
fn mixed_swarm_with_libtorrent_and_aria2() {
    mixed_swarm(Client::Aria2);
}

#[test]
fn mixed_swarm_with_libtorrent_and_transmission() {
    mixed_swarm(Client::Transmission);
}
