//! A flash crowd in a [`Net`]: the tracker and the seeder in peer 0's
//! namespace, leecher `i` in peer `i + 1`'s, all leechers started at once;
//! each one's finish (its exit after the last verified piece) is timed and
//! its copy compared with the original.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::loopback::content::check_copy;
use crate::loopback::proc::{POLL, Watched};
use crate::loopback::swarm::{Client, LT_CLIENT, aria2, libtorrent, make_torrent};
use test_support::netns::Net;

/// Longest wait for the tracker and the seeder to be ready (hashing included).
const READY: Duration = Duration::from_secs(300);

/// TCP port of the tracker (on peer 0's address).
const TRACKER_PORT: u16 = 6969;

/// TCP port every BitTorrent client listens on (one per namespace).
const PEER_PORT: u16 = 6881;

/// What one flash crowd measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Each leecher's finish after the common start, seconds, in leecher
    /// order (leecher `i` lives in peer `i + 1`'s namespace).
    pub finish_s: Vec<f64>,
    /// Bytes the seeder's namespace sent while the leechers ran (Ethernet
    /// frames: payload, protocol and TCP/IP headers, the tracker's replies).
    pub seed_tx_bytes: u64,
    /// Whether every copy equals the original.
    pub all_ok: bool,
}

/// One flash crowd: which client, where, and what it moves.
pub struct Setup<'a> {
    /// The program that seeds and leeches.
    pub client: Client,
    /// The namespaces: peer 0 for the tracker and seeder, `1..=leechers` for leechers.
    pub net: &'a Net,
    /// Number of leechers.
    pub leechers: usize,
    /// Folder of `minibit-tracker` and `minibit-peer`.
    pub bins: &'a Path,
    /// Scratch folder (torrent, leechers' downloads).
    pub work: &'a Path,
    /// The content the seeder starts with.
    pub file: &'a Path,
    /// Piece length, bytes.
    pub piece_length: u32,
}

impl Setup<'_> {
    fn leecher_dir(&self, i: usize) -> PathBuf {
        self.work.join(format!("leecher{i}"))
    }
}

/// Moves `setup.file` from the seeder to every leecher; gives up after
/// `timeout`, or as soon as `stop` is set (Ctrl-C).
///
/// # Errors
/// When a process fails, exits early or times out; copies that differ are
/// reported in [`Outcome::all_ok`], not as an error.
pub fn run(setup: &Setup<'_>, timeout: Duration, stop: &AtomicBool) -> Result<Outcome> {
    let (mut seeders, starts) = start_seeders(setup)?;
    let before = setup.net.tx_bytes(0)?;
    let started = Instant::now();
    let mut running = starts
        .into_iter()
        .enumerate()
        .map(|(i, c)| Watched::spawn(&format!("leecher {i}"), c))
        .collect::<Result<Vec<_>>>()?;
    let finish_s = wait_all(&mut running, &mut seeders, started, timeout, stop)?;
    let seed_tx_bytes = setup.net.tx_bytes(0)? - before;
    for seeder in &mut seeders {
        seeder.stop()?;
    }
    let name = setup.file.file_name().context("file name")?;
    let mut all_ok = true;
    for i in 0..setup.leechers {
        if let Err(e) = check_copy(setup.file, &setup.leecher_dir(i).join(name)) {
            eprintln!("{:?}: {e:#}", setup.client);
            all_ok = false;
        }
    }
    Ok(Outcome {
        finish_s,
        seed_tx_bytes,
        all_ok,
    })
}

/// Starts the tracker and the seeder and waits until they are ready;
/// returns them and the leechers' commands (not started yet).
fn start_seeders(setup: &Setup<'_>) -> Result<(Vec<Watched>, Vec<Command>)> {
    let (net, file, piece_length) = (setup.net, setup.file, setup.piece_length);
    let tracker_ip = Net::ip(0);
    let tracker_url = format!("http://{tracker_ip}:{TRACKER_PORT}");
    let mut tracker = Command::new(setup.bins.join("minibit-tracker"));
    tracker.args([
        "-q",
        "--bind",
        &format!("{tracker_ip}:{TRACKER_PORT}"),
        "--peer-port",
        &PEER_PORT.to_string(),
        "--piece-length",
        &piece_length.to_string(),
    ]);
    if setup.client == Client::Minibit {
        tracker.arg(file);
    }
    let mut tracker = Watched::spawn("minibit-tracker", net.command(0, &tracker))?;
    tracker.wait_line(READY, |l| l.starts_with("tracker listening").then_some(()))?;
    let content_dir = file.parent().context("file folder")?;
    let announce = format!("{tracker_url}/announce");
    let mut starts = vec![];
    let seeder = match setup.client {
        Client::Minibit => {
            tracker.wait_line(READY, |l| l.starts_with("seeding ").then_some(()))?;
            let name = file.file_name().context("file name")?;
            for i in 0..setup.leechers {
                let mut c = Command::new(setup.bins.join("minibit-peer"));
                c.args([
                    "-q",
                    "--exit-on-complete",
                    "--port",
                    &PEER_PORT.to_string(),
                    "-o",
                ])
                .arg(setup.leecher_dir(i))
                .arg(&tracker_url)
                .arg(name);
                starts.push(net.command(i + 1, &c));
            }
            None
        }
        Client::Libtorrent => {
            let torrent = make_torrent(setup.work, file, &announce, Some(piece_length))?;
            let script = setup.work.join("lt_client.py");
            std::fs::write(&script, LT_CLIENT)?;
            let lt = |peer: usize, dir: &Path, mode: &str| {
                let mut c = libtorrent(&script, &torrent, dir, PEER_PORT, mode);
                c.args(["--ip", &Net::ip(peer).to_string()]);
                net.command(peer, &c)
            };
            let mut seed = Watched::spawn("libtorrent seeder", lt(0, content_dir, "--seed"))?;
            seed.wait_line(READY, |l| (l == "complete").then_some(()))?;
            for i in 0..setup.leechers {
                starts.push(lt(i + 1, &setup.leecher_dir(i), "--download"));
            }
            Some(seed)
        }
        Client::Aria2 => {
            let torrent = make_torrent(setup.work, file, &announce, Some(piece_length))?;
            let seed = aria2(&torrent, content_dir, "--seed-ratio=0.0", PEER_PORT);
            let mut seed = Watched::spawn("aria2 seeder", net.command(0, &seed))?;
            seed.wait_line(READY, |l| l.contains("SEED(").then_some(()))?;
            for i in 0..setup.leechers {
                let c = aria2(&torrent, &setup.leecher_dir(i), "--seed-time=0", PEER_PORT);
                starts.push(net.command(i + 1, &c));
            }
            Some(seed)
        }
        Client::Transmission | Client::Baseline => {
            bail!("the wan bench drives minibit, libtorrent and aria2 only")
        }
    };
    Ok((std::iter::once(tracker).chain(seeder).collect(), starts))
}

/// Samples every process until each leecher exited successfully; returns
/// each leecher's exit, seconds after `started`.
fn wait_all(
    leechers: &mut [Watched],
    seeders: &mut [Watched],
    started: Instant,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<Vec<f64>> {
    let mut finish: Vec<Option<f64>> = vec![None; leechers.len()];
    loop {
        let now = started.elapsed().as_secs_f64();
        for (leecher, done) in leechers.iter_mut().zip(&mut finish) {
            if done.is_none() {
                if let Some(status) = leecher.sample()? {
                    ensure!(
                        status.success(),
                        "{} failed ({status}):\n{}",
                        leecher.name(),
                        leecher.lines().join("\n")
                    );
                    *done = Some(now);
                }
            }
        }
        for seeder in seeders.iter_mut() {
            if seeder.sample()?.is_some() {
                bail!("{} exited:\n{}", seeder.name(), seeder.lines().join("\n"));
            }
        }
        if finish.iter().all(Option::is_some) {
            return Ok(finish.into_iter().flatten().collect());
        }
        ensure!(!stop.load(Ordering::Relaxed), "interrupted");
        if started.elapsed() >= timeout {
            let unfinished: Vec<&str> = leechers
                .iter()
                .zip(&finish)
                .filter(|(_, f)| f.is_none())
                .map(|(l, _)| l.name())
                .collect();
            bail!("{} not done within {timeout:?}", unfinished.join(", "));
        }
        thread::sleep(POLL);
    }
}
