//! `magnet-first-piece [--size BYTES] [--rounds N] [--json]`: how long a
//! client started from a magnet link takes, on 127.0.0.1, from its start
//! to its first verified piece: `minibit-peer 'magnet:?...'` next to
//! libtorrent (`lt_client.py --magnet`) in the same run, alternating, N
//! rounds each. A libtorrent seeder holds a file of SIZE pseudo-random
//! bytes; a pure `minibit-tracker` lists it; the link carries both the
//! tracker (`tr=`) and the seeder's address (`x.pe=`), so either client
//! can start at once. The time includes starting the process (Python and
//! the libtorrent module for libtorrent), fetching the metadata (BEP 9)
//! and the first piece. minibit's first piece is its first `piece
//! verified` log line (`RUST_LOG=minibit_peer::client::driver=debug`);
//! libtorrent's is its first `progress` line above 0 (it reports every
//! 200 ms, so its figure may be up to 0.2 s late). Every wait is bounded
//! by `--timeout` seconds.
//!
//! The minibit binaries are taken from the folder of this executable:
//! `cargo build --release --workspace` first.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use minibit_benches::bins;
use minibit_benches::loopback::content::seed_file;
use minibit_benches::loopback::proc::{Watched, free_port};
use minibit_benches::loopback::swarm::{LT_CLIENT, make_torrent};
use minibit_core::magnet::{Magnet, MagnetPeer};
use minibit_core::metainfo::Metainfo;
use serde::Serialize;

#[derive(Debug, Parser)]
#[command(
    about = "Magnet link to first verified piece on loopback: minibit-peer next to libtorrent"
)]
struct Cli {
    /// Bytes of the seeded file.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    size: u64,
    /// Starts of each client (alternating).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Longest wait for one client's first piece, seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    size: u64,
    piece_length: u32,
    rounds: usize,
    /// Seconds from start to the first verified piece, each round.
    minibit_s: Vec<f64>,
    libtorrent_s: Vec<f64>,
    minibit_median_s: f64,
    libtorrent_median_s: f64,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// Starts `command` and returns the seconds until `first_piece` accepts
/// one of its lines (then stops it).
fn time_to_first_piece(
    name: &str,
    command: Command,
    timeout: Duration,
    first_piece: impl Fn(&str) -> Option<()>,
) -> Result<f64> {
    let started = Instant::now();
    let mut client = Watched::spawn(name, command)?;
    client.wait_line(timeout, first_piece)?;
    let took = started.elapsed().as_secs_f64();
    client.stop()?;
    Ok(took)
}

fn libtorrent_progress(line: &str) -> Option<()> {
    let ppm: u32 = line
        .strip_prefix("progress ")?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    (ppm > 0).then_some(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    ensure!(
        cli.size > 0 && cli.rounds > 0,
        "--size and --rounds must be positive"
    );
    let timeout = Duration::from_secs(cli.timeout);
    let bins = bins::beside_this_exe()?;
    let work = tempfile::Builder::new()
        .prefix("minibit-magnet")
        .tempdir()?;
    let file = seed_file(work.path(), cli.size)?;
    let seed_dir = file.parent().context("the seed folder")?;

    let tracker_port = free_port()?;
    let mut tracker = Command::new(bins.join("minibit-tracker"));
    tracker.args(["-q", "--bind", &format!("127.0.0.1:{tracker_port}")]);
    let mut tracker = Watched::spawn("minibit-tracker", tracker)?;
    tracker.wait_line(timeout, |l| {
        l.starts_with("tracker listening").then_some(())
    })?;
    let announce = format!("http://127.0.0.1:{tracker_port}/announce");
    let torrent = make_torrent(work.path(), &file, &announce, None)?;
    let metainfo = Metainfo::from_bytes(&std::fs::read(&torrent)?)?;

    let script = work.path().join("lt_client.py");
    std::fs::write(&script, LT_CLIENT)?;
    let lt = |args: &[&std::ffi::OsStr], dir: &Path, mode: &str| -> Result<(Command, u16)> {
        let port = free_port()?;
        let mut c = Command::new("/usr/bin/python3");
        c.arg(&script).args(args).arg("--dir").arg(dir);
        c.args(["--port", &port.to_string(), mode]);
        Ok((c, port))
    };
    let (seed, seed_port) = lt(
        &["--torrent".as_ref(), torrent.as_os_str()],
        seed_dir,
        "--seed",
    )?;
    let mut seeder = Watched::spawn("libtorrent seeder", seed)?;
    seeder.wait_line(timeout, |l| (l == "complete").then_some(()))?;

    let mut magnet = Magnet::new(metainfo.info_hash());
    magnet.trackers.push(announce);
    magnet.peers.push(MagnetPeer::Addr(SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        seed_port,
    ))));
    let link = magnet.to_string();

    let (mut minibit_s, mut libtorrent_s) = (Vec::new(), Vec::new());
    for round in 0..cli.rounds {
        let out = work.path().join(format!("minibit{round}"));
        let mut peer = Command::new(bins.join("minibit-peer"));
        peer.env("RUST_LOG", "minibit_peer::client::driver=debug")
            .args(["--bind", "127.0.0.1", "--no-dht", "--no-lsd", "-o"])
            .arg(&out)
            .arg(&link);
        minibit_s.push(time_to_first_piece("minibit-peer", peer, timeout, |l| {
            l.contains("piece verified").then_some(())
        })?);
        let (leech, _) = lt(
            &["--magnet".as_ref(), link.as_ref()],
            &work.path().join(format!("libtorrent{round}")),
            "--download",
        )?;
        libtorrent_s.push(time_to_first_piece(
            "libtorrent",
            leech,
            timeout,
            libtorrent_progress,
        )?);
    }
    seeder.stop()?;
    tracker.stop()?;

    let report = Report {
        size: cli.size,
        piece_length: metainfo.layout().piece_length(),
        rounds: cli.rounds,
        minibit_median_s: median(&minibit_s),
        libtorrent_median_s: median(&libtorrent_s),
        minibit_s,
        libtorrent_s,
    };
    if cli.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "magnet link to first verified piece, {} bytes, {} rounds: minibit-peer median {:.3} s, libtorrent median {:.3} s",
            report.size, report.rounds, report.minibit_median_s, report.libtorrent_median_s
        );
    }
    Ok(())
}
