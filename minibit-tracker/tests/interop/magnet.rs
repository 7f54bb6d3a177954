//! minibit serves metadata (BEP 9): libtorrent and aria2 download from the
//! magnet link `minibit-tracker` lists, fetching the info dictionary from
//! minibit's embedded seeder (the only peer), then the content.

use std::path::Path;

use crate::clients::{Libtorrent, aria2_magnet};
use crate::content::random_file;
use crate::minibit::{Tracker, http_get};
use crate::{tempdir, wait_same};

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
