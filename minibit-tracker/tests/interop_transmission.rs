//! Interop: Transmission (`transmission-cli`, a Debian package that
//! `.ci/run` installs) downloads a file from `minibit-tracker FILE`: it
//! announces to our tracker, gets our embedded seeder as a compact peer,
//! downloads over the peer wire protocol, and reports `completed`.
//!
//! Transmission never connects to 127.0.0.0/8 peers, so everything binds
//! the machine's outbound IPv4 address instead of loopback.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The local IPv4 address of the default route (no packet is sent).
fn outbound_ip() -> IpAddr {
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket
        .connect("10.255.255.255:9")
        .expect("this test needs a non-loopback IPv4 interface with a route");
    socket.local_addr().unwrap().ip()
}

/// Deterministic pseudo-random content (xorshift), `len` bytes.
fn content(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn transmission_downloads_from_the_embedded_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst, cfg) = (
        dir.path().join("src"),
        dir.path().join("dst"),
        dir.path().join("cfg"),
    );
    for d in [&src, &dst, &cfg] {
        std::fs::create_dir(d).unwrap();
    }
    let data = content(1_200_000);
    std::fs::write(src.join("clip.bin"), &data).unwrap();

    let mut tracker = Command::new(env!("CARGO_BIN_EXE_minibit-tracker"))
        .arg("--bind")
        .arg(format!("{}:0", outbound_ip()))
        .args(["-q", "--piece-length", "32768"])
        .arg(src.join("clip.bin"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(tracker.stdout.take().unwrap()).lines();
    let listening = lines.next().unwrap().unwrap();
    let base = listening
        .strip_prefix("tracker listening on ")
        .unwrap()
        .to_owned();
    let seeding = lines.next().unwrap().unwrap();
    let url = seeding.split_once(" torrent=").unwrap().1.to_owned();
    let torrent = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    std::fs::write(dir.path().join("clip.torrent"), &torrent).unwrap();

    // TCP only, no encryption requirement, no DHT/LPD/PEX: the tracker is the only source of peers.
    std::fs::write(
        cfg.join("settings.json"),
        r#"{"utp-enabled": false, "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false,
            "port-forwarding-enabled": false, "peer-port-random-on-start": true}"#,
    )
    .unwrap();
    let mut transmission = Command::new("transmission-cli")
        .arg("-et")
        .arg("-w")
        .arg(&dst)
        .arg("-g")
        .arg(&cfg)
        .arg(dir.path().join("clip.torrent"))
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("transmission-cli is installed (.ci/run installs it)");

    // Wait (bounded, so a broken swarm fails instead of hanging) for the
    // complete file and for Transmission's `completed` announce.
    let mut done = false;
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let copied = std::fs::read(dst.join("clip.bin")).is_ok_and(|copy| copy == data);
        let listing: serde_json::Value = serde_json::from_slice(
            &reqwest::get(format!("{base}/torrents"))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .unwrap();
        if copied && listing[0]["completed"] == 1 {
            done = true;
            break;
        }
    }
    transmission.kill().unwrap();
    transmission.wait().unwrap();
    let pid = tracker.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(tracker.wait().unwrap().success());
    assert!(
        done,
        "Transmission downloaded an identical copy and announced `completed`"
    );
}
