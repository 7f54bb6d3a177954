//! The seeding tracker dies once every piece exists among the leechers;
//! they finish by trading with the peers they already know, and a late
//! peer whose tracker lists only one leecher finds the others through
//! BEP 11 peer exchange.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

use minibit_core::tracker::{AnnounceResponse, TrackerPeer};

use super::minibit::{Tracker, info_hash};
use super::{
    DRIVER_LOG, completed, exits_ok, path_str, peer, race_until, same_file, signal, tempdir,
    verified,
};
use test_support::content;
use test_support::process::{Proc, free_port};

/// Longest wait for the late peer's first PEX message (a peer sends it as
/// soon as the extended handshakes are exchanged).
const PEX_WAIT: Duration = Duration::from_secs(60);

/// A one-line HTTP tracker on 127.0.0.1 that answers every announce with
/// `peers` only (and a 30 min interval); returns its announce URL.
fn fixed_tracker(peers: Vec<SocketAddr>) -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let body = AnnounceResponse {
        interval: 1800,
        min_interval: None,
        complete: 1,
        incomplete: 0,
        peers: peers
            .into_iter()
            .map(|addr| TrackerPeer {
                addr,
                peer_id: None,
            })
            .collect(),
        warning: None,
    }
    .encode(true);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    url
}

/// The `.torrent` at `from` with its `announce` replaced by `url` (same
/// info dictionary, so the same info-hash), written to `to`.
pub(super) fn with_announce(from: &Path, url: &str, to: &Path) {
    let bytes = std::fs::read(from).unwrap();
    let rest = bytes
        .strip_prefix(b"d8:announce")
        .expect("the tracker's .torrent starts with its announce URL");
    let colon = rest.iter().position(|&b| b == b':').unwrap();
    let len: usize = std::str::from_utf8(&rest[..colon])
        .unwrap()
        .parse()
        .unwrap();
    let mut out = format!("d8:announce{}:{url}", url.len()).into_bytes();
    out.extend_from_slice(&rest[colon + 1 + len..]);
    std::fs::write(to, out).unwrap();
    assert_eq!(info_hash(from), info_hash(to));
}

#[test]
fn leechers_finish_after_the_seeding_tracker_dies_and_pex_finds_the_late_peer_its_partners() {
    const LEN: usize = 48 * 1024 * 1024;
    const PIECE: usize = 256 * 1024;
    let pieces = u32::try_from(LEN / PIECE).unwrap();
    let tmp = tempdir();
    let source = tmp.path().join("seed").join("swarm.bin");
    content::random_file(&source, LEN);
    let (tracker, seeded) = Tracker::start_with(
        &["--bind", "127.0.0.1:0", "--piece-length", "262144"],
        &[&source],
    );
    let torrent = tmp.path().join("swarm.torrent");
    tracker.fetch(&seeded[0].torrent_url, &torrent);
    let hash = info_hash(&torrent);
    tracker.wait_for_a_seeder(hash, PEX_WAIT);

    // Three leechers learn the seeder and each other from the tracker;
    // leecher 1 listens on a known port for the late peer below.
    let first_port = free_port();
    let leechers: Vec<(Proc, std::path::PathBuf)> = (1..=3)
        .map(|i| {
            let dir = tmp.path().join(format!("leecher{i}"));
            let port = first_port.to_string();
            // Tracker and PEX only: LSD (or the DHT) would introduce the
            // late peer to the leechers by another way than ut_pex.
            let mut args = vec!["-q", "--no-lsd", "--no-dht", "-o", path_str(&dir)];
            if i == 1 {
                args.extend(["--port", &port]);
            }
            args.push(path_str(&torrent));
            (peer(&format!("leecher {i}"), &args, Some(DRIVER_LOG)), dir)
        })
        .collect();
    // Once every piece exists among them, freeze them (SIGSTOP): their
    // connections stay open and nothing more moves. By then a leecher may
    // already hold every piece (the last pieces of the seeder's first copy
    // reach the others within milliseconds on loopback, faster than this
    // polls): that is fine, as the late peer below can only finish from
    // the leechers, and only learns leechers 2 and 3 through ut_pex.
    race_until("every piece to exist among the leechers", || {
        let union: BTreeSet<u32> = leechers.iter().flat_map(|(p, _)| verified(p)).collect();
        union.len() == pieces as usize
    });
    for (proc, _) in &leechers {
        signal(proc, "STOP");
    }
    let done_early = leechers.iter().filter(|(p, _)| completed(p)).count();

    // The tracker and its seeder die: SIGKILL. No tracker is left for them.
    drop(tracker);

    // A late peer whose tracker only ever lists leecher 1.
    let leecher_one = SocketAddr::from((Ipv4Addr::LOCALHOST, first_port));
    let late_torrent = tmp.path().join("late.torrent");
    with_announce(&torrent, &fixed_tracker(vec![leecher_one]), &late_torrent);
    let late_dir = tmp.path().join("late");
    let late_args = [
        "-q",
        "--no-lsd",
        "--no-dht",
        "--exit-on-complete",
        "-o",
        path_str(&late_dir),
        path_str(&late_torrent),
    ];
    let mut late = peer("late peer", &late_args, Some(DRIVER_LOG));
    for (proc, _) in &leechers {
        signal(proc, "CONT");
    }
    let learned = late.wait_line(PEX_WAIT, |l| {
        l.contains("via pex")
            .then(|| {
                l.split("learned ")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse::<u32>()
                    .ok()
            })
            .flatten()
    });

    exits_ok(&mut late);
    assert!(same_file(&source, &late_dir.join("swarm.bin")));
    for (proc, dir) in &leechers {
        race_until("every leecher to finish", || completed(proc));
        assert!(
            same_file(&source, &dir.join("swarm.bin")),
            "{}",
            dir.display()
        );
    }
    eprintln!(
        "the late peer learned {learned} peers via pex; {done_early} of 3 leechers \
         had every piece when the tracker died"
    );
    assert!(learned >= 1);
}
