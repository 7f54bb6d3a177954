//! Magnet links (BEP 9) both ways: libtorrent and aria2 download from the
//! magnet link `minibit-tracker` lists, fetching the info dictionary from
//! minibit's embedded seeder (the only peer), then the content; and
//! `minibit-peer 'magnet:?...'` downloads what libtorrent seeds, finding it
//! through the link's tracker (`tr=`) or its peer address (`x.pe=`) alone.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use minibit_core::magnet::{Magnet, MagnetPeer};

use crate::clients::{Client, Libtorrent, Running, aria2_magnet};
use crate::minibit::{Tracker, http_get, info_hash};
use crate::{TRANSFER, a_file_on_a_pure_tracker, minibit_downloads, tempdir, wait_same};
use test_support::content::{random_file, same_content};

/// The magnet link of the first entry of `tracker`'s catalogue.
fn listed_magnet(tracker: &Tracker) -> String {
    let listing: serde_json::Value =
        serde_json::from_slice(&http_get(&format!("{}/torrents", tracker.base()))).unwrap();
    let magnet = listing[0]["magnet"]
        .as_str()
        .unwrap_or_else(|| panic!("no magnet link in {listing}"));
    assert!(magnet.starts_with("magnet:?xt=urn:btih:"), "{magnet}");
    magnet.to_owned()
}

/// A tracker seeding a fresh 3 MB `clip.bin` from `root/seed`.
fn seeding_tracker(root: &Path) -> (Tracker, std::path::PathBuf) {
    let source = root.join("seed").join("clip.bin");
    random_file(&source, 3_000_000);
    let (tracker, _) = Tracker::start(&[&source]);
    (tracker, source)
}

#[test]
fn libtorrent_downloads_from_a_minibit_magnet_link() {
    let tmp = tempdir();
    let (tracker, source) = seeding_tracker(tmp.path());
    let magnet = listed_magnet(&tracker);
    let dir = tmp.path().join("lt");
    let lt = Libtorrent::download_magnet(&magnet, &dir);
    wait_same(
        &source,
        &dir.join("clip.bin"),
        "libtorrent from a minibit magnet link",
        || lt.describe(),
    );
}

/// aria2 announces `left=0` while it fetches the metadata; the tracker
/// still hands it the seeder (seeders get seeders when leechers run out).
#[test]
fn aria2_downloads_from_a_minibit_magnet_link() {
    let tmp = tempdir();
    let (tracker, source) = seeding_tracker(tmp.path());
    let magnet = listed_magnet(&tracker);
    let dir = tmp.path().join("aria2");
    let aria2 = aria2_magnet(&magnet, &dir);
    wait_same(
        &source,
        &dir.join("clip.bin"),
        "aria2 from a minibit magnet link",
        || aria2.lines().join("\n"),
    );
}

/// How the magnet link tells minibit-peer where the swarm is.
#[derive(Clone, Copy, Debug)]
enum Finder {
    /// `tr=`: the pure minibit-tracker libtorrent announces to.
    Tracker,
    /// `x.pe=`: libtorrent's address, and no tracker.
    PeerAddress,
}

/// libtorrent seeds a `.torrent` (built by `transmission-create`) that a
/// pure `minibit-tracker` lists; `minibit-peer` is given only a magnet
/// link (no `.torrent`): it fetches the metadata from libtorrent, saves
/// the `.torrent` in its state folder, and downloads an identical file.
fn minibit_downloads_a_magnet_link_from_libtorrent(finder: Finder) {
    let tmp = tempdir();
    let seed_dir = tmp.path().join("seed");
    let (tracker, source, torrent) = a_file_on_a_pure_tracker(tmp.path());
    let seeder = Client::Libtorrent.seed(&torrent, &seed_dir, &tmp.path().join("home"), TRANSFER);
    let Running::Libtorrent(lt) = &seeder else {
        unreachable!("a libtorrent seeder");
    };
    let info_hash = info_hash(&torrent);
    let mut magnet = Magnet::new(info_hash);
    match finder {
        Finder::Tracker => {
            // minibit-peer announces once at start: the seeder must be known by then.
            tracker.wait_for_a_seeder(info_hash, TRANSFER);
            magnet.trackers.push(tracker.announce_url());
        }
        Finder::PeerAddress => magnet.peers.push(MagnetPeer::Addr(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            lt.listen_port(),
        )))),
    }

    let out = tmp.path().join("minibit");
    let from = format!("libtorrent by a magnet link ({finder:?})");
    let peer = minibit_downloads(&magnet.to_string(), &out, &from, || seeder.describe());
    assert!(
        same_content(&source, &out.join("Holiday Movie.bin")),
        "minibit-peer's copy differs from what libtorrent seeds"
    );
    // The metadata was saved as a `.torrent` naming the same torrent, with
    // the link's trackers.
    let saved = out.join(".minibit").join(format!("{info_hash}.torrent"));
    let saved = minibit_core::metainfo::Metainfo::from_bytes(&std::fs::read(&saved).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", saved.display()));
    assert_eq!(saved.info_hash(), info_hash);
    match finder {
        Finder::Tracker => assert_eq!(saved.announce(), Some(tracker.announce_url().as_str())),
        Finder::PeerAddress => assert_eq!(saved.announce(), None),
    }
    assert!(
        peer.lines().iter().any(|l| l.contains("fetching metadata")),
        "minibit-peer never said it was fetching the metadata:\n{}",
        peer.lines().join("\n")
    );
}

#[test]
fn minibit_downloads_a_magnet_link_with_a_tracker_from_libtorrent() {
    minibit_downloads_a_magnet_link_from_libtorrent(Finder::Tracker);
}

#[test]
fn minibit_downloads_a_magnet_link_with_only_a_peer_address_from_libtorrent() {
    minibit_downloads_a_magnet_link_from_libtorrent(Finder::PeerAddress);
}
