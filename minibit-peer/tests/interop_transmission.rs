//! Interop: minibit-peer downloads from a real client. Transmission
//! (`transmission-cli`, installed by `.ci/run`) seeds a generated file;
//! a leeching [`Session`] learns its address from the tracker stub,
//! downloads over the peer wire protocol and must end with an identical copy.
//!
//! Transmission never talks to 127.0.0.0/8 peers, so everything binds the
//! machine's outbound IPv4 address instead of loopback.

mod common;

use std::net::{IpAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use minibit_peer::Session;

use common::{config_on, init_logging, make_single, start_stub_on};

/// The local IPv4 address of the default route (no packet is sent).
fn outbound_ip() -> IpAddr {
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket
        .connect("10.255.255.255:9")
        .expect("this test needs a non-loopback IPv4 interface with a route");
    socket.local_addr().unwrap().ip()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minibit_downloads_from_a_transmission_seeder() {
    init_logging();
    let ip = outbound_ip();
    let dir = tempfile::tempdir().unwrap();
    let (src, dst, cfg) = (
        dir.path().join("src"),
        dir.path().join("dst"),
        dir.path().join("cfg"),
    );
    for d in [&src, &dst, &cfg] {
        std::fs::create_dir(d).unwrap();
    }
    let stub = start_stub_on(ip).await;
    let metainfo = make_single(&src, "clip.bin", 1_500_000, &stub.announce_url());
    let torrent = dir.path().join("clip.torrent");
    std::fs::write(&torrent, metainfo.to_bytes()).unwrap();

    // TCP only, no encryption requirement, no DHT/LPD/PEX: the tracker is
    // the only source of peers.
    std::fs::write(
        cfg.join("settings.json"),
        r#"{"utp-enabled": false, "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false,
            "port-forwarding-enabled": false, "peer-port-random-on-start": true}"#,
    )
    .unwrap();
    let mut transmission = Command::new("transmission-cli")
        .args(["-et", "-v", "-w"])
        .arg(&src)
        .arg("-g")
        .arg(&cfg)
        .arg(&torrent)
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("transmission-cli is installed (.ci/run installs it)");

    // Transmission announces once it has verified its copy; start the
    // leecher after that so the stub hands it Transmission's address.
    for _ in 0..600 {
        if !stub.log.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let leecher = Session::start(config_on(ip, &metainfo, &dst, 7))
        .await
        .unwrap();
    // A generous bound so a broken swarm fails instead of hanging.
    let done = tokio::time::timeout(Duration::from_secs(120), leecher.wait_complete()).await;
    leecher.shutdown().await.unwrap();
    transmission.kill().unwrap();
    transmission.wait().unwrap();
    assert_eq!(done, Ok(true), "the download from Transmission completed");
    let original = std::fs::read(src.join("clip.bin")).unwrap();
    let copy = std::fs::read(dst.join("clip.bin")).unwrap();
    assert!(original == copy, "the copy differs");
}
