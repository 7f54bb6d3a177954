//! minibit serves metadata (BEP 9): libtorrent downloads from the magnet
//! link `minibit-tracker` lists, fetching the info dictionary from
//! minibit's embedded seeder (the only peer), then the content.

use crate::clients::Libtorrent;
use crate::content::random_file;
use crate::minibit::{Tracker, http_get};
use crate::{tempdir, wait_same};

#[test]
fn libtorrent_downloads_from_a_minibit_magnet_link() {
    let tmp = tempdir();
    let source = tmp.path().join("seed").join("clip.bin");
    random_file(&source, 3_000_000);
    let (tracker, _) = Tracker::start(&[&source]);
    let listing: serde_json::Value =
        serde_json::from_slice(&http_get(&format!("{}/torrents", tracker.base()))).unwrap();
    let magnet = listing[0]["magnet"]
        .as_str()
        .unwrap_or_else(|| panic!("no magnet link in {listing}"));
    assert!(magnet.starts_with("magnet:?xt=urn:btih:"), "{magnet}");
    let dir = tmp.path().join("lt");
    let lt = Libtorrent::download_magnet(magnet, &dir);
    wait_same(
        &source,
        &dir.join("clip.bin"),
        "libtorrent from a minibit magnet link",
        || lt.describe(),
    );
}
