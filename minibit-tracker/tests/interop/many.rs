//! One client, one port: `minibit-tracker` seeds 50 small torrents through
//! one `minibit-peer` client on one peer port; three libtorrent clients
//! download three of them at once from that port, identical copies.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::clients::Libtorrent;
use crate::minibit::{Tracker, info_hash};
use crate::{TRANSFER, tempdir, wait_same};
use test_support::content::random_file;

/// Torrents seeded by the one tracker.
const TORRENTS: usize = 50;

#[test]
fn libtorrent_downloads_three_of_fifty_torrents_seeded_on_one_port() {
    let tmp = tempdir();
    let sources: Vec<PathBuf> = (0..TORRENTS)
        .map(|i| {
            let path = tmp.path().join("seed").join(format!("clip {i:02}.bin"));
            random_file(&path, 200_000 + i * 1_000);
            path
        })
        .collect();
    let files: Vec<&std::path::Path> = sources.iter().map(PathBuf::as_path).collect();
    let (tracker, seeded) = Tracker::start(&files);
    assert_eq!(seeded.len(), TORRENTS);

    let picks = [3, 25, 49];
    let torrents: Vec<PathBuf> = picks
        .iter()
        .map(|&i| {
            let torrent = tmp.path().join(format!("clip {i:02}.torrent"));
            tracker.fetch(&seeded[i].torrent_url, &torrent);
            torrent
        })
        .collect();
    // Every torrent's seeder announced the same address: one peer port.
    let seeders: BTreeSet<SocketAddr> = torrents
        .iter()
        .flat_map(|torrent| {
            let hash = info_hash(torrent);
            tracker.wait_for_a_seeder(hash, TRANSFER);
            tracker.swarm(hash).0.into_iter().map(|(addr, _)| addr)
        })
        .collect();
    assert_eq!(
        seeders.len(),
        1,
        "one peer port for every torrent: {seeders:?}"
    );

    let downloads: Vec<(usize, PathBuf, Libtorrent)> = picks
        .iter()
        .zip(&torrents)
        .map(|(&i, torrent)| {
            let dir = tmp.path().join(format!("lt-{i}"));
            let lt = Libtorrent::download_throttled(torrent, &dir, 0);
            (i, dir, lt)
        })
        .collect();
    for (i, dir, lt) in &downloads {
        let name = format!("clip {i:02}.bin");
        wait_same(
            &sources[*i],
            &dir.join(&name),
            &format!("libtorrent downloading {name} of {TORRENTS} on one port"),
            || lt.describe(),
        );
    }
}
