//! UDP trackers (BEP 15).
//!
//! 1. Real clients and `minibit-peer` announce over UDP to
//!    `minibit-tracker` and download from its seeder: the `.torrent` the
//!    tracker serves is given a single `udp://` tracker, so the only way a
//!    client can learn of the seeder (which announced over HTTP) is a UDP
//!    announce answered from the shared registry.
//! 2. opentracker (Debian's whitelist build) over UDP only: a libtorrent
//!    seed and a `minibit-peer` find each other through it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use minibit_core::metainfo::{Metainfo, MetainfoBuilder};
use tempfile::TempDir;

use crate::clients::Client;
use crate::minibit::Tracker;
use crate::{FILE_LEN, TRANSFER, minibit_downloads, tempdir, wait_same};
use test_support::content::random_file;
use test_support::process::{Proc, free_port};
use test_support::tools;

/// A seeding `minibit-tracker` and a copy of its `.torrent` whose only
/// tracker is its `udp://` address: (tracker, source file, `.torrent`).
fn seeded_over_udp(tmp: &TempDir) -> (Tracker, PathBuf, PathBuf) {
    let source = tmp.path().join("seed").join("Holiday Movie.bin");
    random_file(&source, FILE_LEN);
    let (tracker, seeded) = Tracker::start(&[&source]);
    let http_torrent = tmp.path().join("movie-http.torrent");
    tracker.fetch(&seeded[0].torrent_url, &http_torrent);
    let mut metainfo = Metainfo::from_bytes(&std::fs::read(&http_torrent).unwrap()).unwrap();
    let udp = format!(
        "{}/announce",
        tracker.base().replacen("http://", "udp://", 1)
    );
    metainfo.extras_mut().announce = Some(udp);
    metainfo.extras_mut().announce_list.clear();
    let torrent = tmp.path().join("movie-udp.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();
    (tracker, source, torrent)
}

fn real_client_downloads_over_udp(client: Client) {
    let tmp = tempdir();
    let (_tracker, source, torrent) = seeded_over_udp(&tmp);
    let dir = tmp.path().join("download");
    let running = client.download_over_udp_tracker(&torrent, &dir, &tmp.path().join("home"));
    wait_same(
        &source,
        &dir.join("Holiday Movie.bin"),
        &format!("{client:?} downloading via minibit-tracker's UDP tracker"),
        || running.describe(),
    );
}

#[test]
fn libtorrent_announces_over_udp_and_downloads_from_minibit() {
    real_client_downloads_over_udp(Client::Libtorrent);
}

#[test]
fn aria2_announces_over_udp_and_downloads_from_minibit() {
    real_client_downloads_over_udp(Client::Aria2);
}

#[test]
fn minibit_peer_announces_over_udp_and_downloads_from_minibit() {
    let tmp = tempdir();
    let (_tracker, source, torrent) = seeded_over_udp(&tmp);
    let dir = tmp.path().join("download");
    minibit_downloads(
        torrent.to_str().unwrap(),
        &dir,
        "minibit-tracker's seeder over its UDP tracker",
        String::new,
    );
    assert!(
        crate::same_content(&source, &dir.join("Holiday Movie.bin")),
        "the copy differs from the source"
    );
}

/// A running opentracker on 127.0.0.1, TCP and UDP on `port`, whose
/// whitelist holds `info_hash_hex`.
fn opentracker(tmp: &Path, port: u16, info_hash_hex: &str) -> Proc {
    tools::require(&tools::OPENTRACKER);
    // It drops root for `nobody`, who must still read its whitelist.
    let home = tmp.join("opentracker");
    std::fs::create_dir_all(&home).unwrap();
    for dir in [tmp, &home] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let whitelist = home.join("whitelist");
    std::fs::write(&whitelist, format!("{info_hash_hex}\n")).unwrap();
    let config = home.join("opentracker.conf");
    std::fs::write(
        &config,
        format!("access.whitelist {}\n", whitelist.display()),
    )
    .unwrap();
    let mut command = Command::new("opentracker");
    command
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
            &port.to_string(),
        ])
        .arg("-f")
        .arg(&config)
        .current_dir(&home);
    Proc::spawn("opentracker", command)
}

#[test]
fn libtorrent_and_minibit_peer_find_each_other_through_opentracker_over_udp() {
    let tmp = tempdir();
    let seed_dir = tmp.path().join("seed");
    let source = seed_dir.join("Holiday Movie.bin");
    random_file(&source, FILE_LEN);
    let port = free_port();
    let metainfo = MetainfoBuilder::new(&source)
        .piece_length(Some(64 * 1024))
        .announce(format!("udp://127.0.0.1:{port}/announce"))
        .build()
        .unwrap();
    let _opentracker = opentracker(tmp.path(), port, &metainfo.info_hash().to_hex());
    let torrent = tmp.path().join("movie.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();

    let seeder = Client::Libtorrent.seed(&torrent, &seed_dir, &tmp.path().join("home"), TRANSFER);
    let dir = tmp.path().join("download");
    minibit_downloads(
        torrent.to_str().unwrap(),
        &dir,
        "libtorrent via opentracker",
        || seeder.describe(),
    );
    assert!(
        crate::same_content(&source, &dir.join("Holiday Movie.bin")),
        "the copy differs from the source"
    );
}
