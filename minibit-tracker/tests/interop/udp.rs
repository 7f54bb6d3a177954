//! Real clients announce over UDP (BEP 15) to `minibit-tracker` and
//! download from its seeder: the `.torrent` the tracker serves is given a
//! single `udp://` tracker, so the only way a client can learn of the
//! seeder (which announced over HTTP) is a UDP announce answered from the
//! shared registry.

use minibit_core::metainfo::Metainfo;

use crate::clients::Client;
use crate::content::random_file;
use crate::minibit::Tracker;
use crate::{FILE_LEN, tempdir, wait_same};

fn real_client_downloads_over_udp(client: Client) {
    let tmp = tempdir();
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
