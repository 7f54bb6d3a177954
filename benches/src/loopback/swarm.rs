//! One seeder and N leechers of one client on 127.0.0.1, with a tracker,
//! timed from the start of the leechers to the last verified copy.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use minibit_core::metainfo::MetainfoBuilder;

use super::content::check_copy;
use super::proc::{POLL, Watched, free_port};

/// Longest wait for a seeder to be ready (hashing included).
const TIMEOUT: Duration = Duration::from_secs(900);

/// The libtorrent client script of the interop tests.
pub const LT_CLIENT: &str = include_str!("../../../minibit-tracker/tests/interop/lt_client.py");

/// Which program seeds and leeches.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Client {
    /// minibit-tracker (tracker + seeder) and minibit-peer leechers.
    Minibit,
    /// aria2c, with minibit-tracker as the tracker.
    Aria2,
    /// libtorrent-rasterbar (python3-libtorrent), with minibit-tracker as the tracker.
    Libtorrent,
    /// transmission-daemon (not runnable on loopback, see [`run`]).
    Transmission,
    /// No protocol: `loopback-baseline` streams the file over TCP to each
    /// leecher, which checks every piece's SHA-1 and writes it (the least
    /// work any client must do; the tracker idles).
    Baseline,
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Start of the leechers to the last verified copy, seconds.
    pub wall_s: f64,
    /// User + system CPU of every process of the swarm, seconds.
    pub cpu_s: f64,
    /// Largest peak resident set of one leecher, bytes.
    pub peak_rss_bytes: u64,
}

/// Moves `file` from one seeder to `leechers` leechers of `client`; `bins`
/// holds the minibit binaries, `work` is a scratch folder; the leechers
/// get at most `timeout` to finish.
///
/// # Errors
/// When a process fails, times out, or a copy differs from `file`.
/// Transmission always fails: two daemons on 127.0.0.1 never connect
/// (Transmission 3 does not dial 127.x peers from a tracker and keeps one
/// connection per IP).
pub fn run(
    client: Client,
    bins: &Path,
    work: &Path,
    file: &Path,
    leechers: usize,
    timeout: Duration,
) -> Result<Outcome> {
    let name = file.file_name().context("file name")?.to_owned();
    let tracker_port = free_port()?;
    let mut tracker = Command::new(bins.join("minibit-tracker"));
    tracker.args(["-q", "--bind", &format!("127.0.0.1:{tracker_port}")]);
    if client == Client::Minibit {
        tracker.arg(file);
    }
    let mut tracker = Watched::spawn("minibit-tracker", tracker)?;
    tracker.wait_line(TIMEOUT, |l| {
        l.starts_with("tracker listening").then_some(())
    })?;
    let announce = format!("http://127.0.0.1:{tracker_port}/announce");
    let content_dir = file.parent().context("file folder")?;
    let leecher_dir = |i: usize| work.join(format!("leecher{i}"));
    let mut seeders = vec![];
    let mut starts: Vec<Command> = vec![];
    match client {
        Client::Minibit => {
            tracker.wait_line(TIMEOUT, |l| l.starts_with("seeding ").then_some(()))?;
            for i in 0..leechers {
                let mut c = Command::new(bins.join("minibit-peer"));
                c.args(["-q", "--exit-on-complete", "-o"])
                    .arg(leecher_dir(i))
                    .arg(format!("http://127.0.0.1:{tracker_port}"))
                    .arg(&name);
                starts.push(c);
            }
        }
        Client::Libtorrent => {
            let torrent = make_torrent(work, file, &announce, None)?;
            let script = work.join("lt_client.py");
            std::fs::write(&script, LT_CLIENT)?;
            let lt = |dir: &Path, mode: &str| -> Result<Command> {
                Ok(libtorrent(&script, &torrent, dir, free_port()?, mode))
            };
            let mut seed = Watched::spawn("libtorrent seeder", lt(content_dir, "--seed")?)?;
            seed.wait_line(TIMEOUT, |l| (l == "complete").then_some(()))?;
            seeders.push(seed);
            for i in 0..leechers {
                starts.push(lt(&leecher_dir(i), "--download")?);
            }
        }
        Client::Aria2 => {
            let torrent = make_torrent(work, file, &announce, None)?;
            let mut seed = Watched::spawn(
                "aria2 seeder",
                aria2(&torrent, content_dir, "--seed-ratio=0.0", free_port()?),
            )?;
            seed.wait_line(TIMEOUT, |l| l.contains("SEED(").then_some(()))?;
            seeders.push(seed);
            for i in 0..leechers {
                starts.push(aria2(
                    &torrent,
                    &leecher_dir(i),
                    "--seed-time=0",
                    free_port()?,
                ));
            }
        }
        Client::Baseline => {
            let targets: Vec<PathBuf> = (0..leechers).map(|i| leecher_dir(i).join(&name)).collect();
            let (sender, receivers) = baseline(bins, work, file, &announce, &targets)?;
            seeders.push(sender);
            starts.extend(receivers);
        }
        Client::Transmission => bail!(
            "transmission cannot run a loopback swarm: Transmission 3 never dials 127.x peers \
             learnt from a tracker and keeps one connection per IP, so two daemons on 127.0.0.1 never meet"
        ),
    }
    seeders.insert(0, tracker);
    let started = Instant::now();
    let mut running = starts
        .into_iter()
        .enumerate()
        .map(|(i, c)| Watched::spawn(&format!("leecher {i}"), c))
        .collect::<Result<Vec<_>>>()?;
    let wall_s = wait_all(&mut running, &mut seeders, started, timeout)?;
    for seeder in &mut seeders {
        seeder.stop()?;
    }
    for i in 0..leechers {
        check_copy(file, &leecher_dir(i).join(&name))?;
    }
    Ok(Outcome {
        wall_s,
        cpu_s: running.iter().chain(&seeders).map(Watched::cpu_s).sum(),
        peak_rss_bytes: running.iter().map(Watched::peak_rss).max().unwrap_or(0),
    })
}

/// The no-protocol baseline: `loopback-baseline send` serving `file` (started
/// and listening) and one `loopback-baseline receive` per copy in `targets`.
fn baseline(
    bins: &Path,
    work: &Path,
    file: &Path,
    announce: &str,
    targets: &[PathBuf],
) -> Result<(Watched, Vec<Command>)> {
    let torrent = make_torrent(work, file, announce, None)?;
    let listen = format!("127.0.0.1:{}", free_port()?);
    let mut send = Command::new(bins.join("loopback-baseline"));
    send.args(["send", "--listen", &listen, "--receivers"])
        .arg(targets.len().to_string())
        .arg(file);
    let mut sender = Watched::spawn("baseline sender", send)?;
    sender.wait_line(TIMEOUT, |l| l.starts_with("listening on").then_some(()))?;
    let receivers = targets
        .iter()
        .map(|target| {
            let mut c = Command::new(bins.join("loopback-baseline"));
            c.args(["receive", "--connect", &listen, "--torrent"])
                .arg(&torrent)
                .arg("--out")
                .arg(target);
            c
        })
        .collect();
    Ok((sender, receivers))
}

/// Samples every process until each leecher exited successfully; returns
/// the seconds from `started` to the last exit.
fn wait_all(
    leechers: &mut [Watched],
    seeders: &mut [Watched],
    started: Instant,
    timeout: Duration,
) -> Result<f64> {
    let mut last = started;
    loop {
        let mut done = 0;
        for leecher in leechers.iter_mut() {
            if let Some(status) = leecher.sample()? {
                ensure!(
                    status.success(),
                    "{} failed ({status}):\n{}",
                    leecher.name(),
                    leecher.lines().join("\n")
                );
                done += 1;
            }
        }
        for seeder in seeders.iter_mut() {
            if seeder.sample()?.is_some() {
                bail!("{} exited:\n{}", seeder.name(), seeder.lines().join("\n"));
            }
        }
        if done == leechers.len() {
            return Ok(last.duration_since(started).as_secs_f64());
        }
        if started.elapsed() >= timeout {
            let unfinished: Vec<String> = leechers
                .iter()
                .map(|l| format!("{}:\n{}", l.name(), l.lines().join("\n")))
                .collect();
            bail!(
                "leechers not done within {timeout:?}\n{}",
                unfinished.join("\n")
            );
        }
        thread::sleep(POLL);
        last = Instant::now();
    }
}

/// Builds `work/bench.torrent` for `file` announcing to `announce`, with
/// pieces of `piece_length` bytes (`None`: chosen from the size).
///
/// # Errors
/// When `file` cannot be read or the torrent cannot be written.
pub fn make_torrent(
    work: &Path,
    file: &Path,
    announce: &str,
    piece_length: Option<u32>,
) -> Result<PathBuf> {
    let metainfo = MetainfoBuilder::new(file)
        .announce(announce)
        .piece_length(piece_length)
        .build()?;
    let path = work.join("bench.torrent");
    std::fs::write(&path, metainfo.to_bytes())?;
    Ok(path)
}

/// libtorrent through `script` (the interop harness's `lt_client.py`,
/// [`LT_CLIENT`]) for `torrent` in `dir`, listening on TCP `port`; `mode`
/// is `--seed` or `--download`.
pub fn libtorrent(script: &Path, torrent: &Path, dir: &Path, port: u16, mode: &str) -> Command {
    let mut c = Command::new("/usr/bin/python3");
    c.arg(script)
        .arg("--torrent")
        .arg(torrent)
        .arg("--dir")
        .arg(dir)
        .args(["--port", &port.to_string(), mode]);
    c
}

/// `aria2c` for `torrent` in `dir`, listening on TCP `port`, with only the
/// tracker for peers (options from the interop harness); `seeding` is
/// `--seed-ratio=0.0` for a seeder, `--seed-time=0` for a leecher.
pub fn aria2(torrent: &Path, dir: &Path, seeding: &str, port: u16) -> Command {
    let mut c = Command::new("aria2c");
    c.arg(format!("--dir={}", dir.display()))
        .arg(format!("--listen-port={port}"))
        .args([
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--disable-ipv6=true",
            "--bt-require-crypto=false",
            "--check-integrity=true",
            "--bt-tracker-interval=2",
            "--summary-interval=1",
            "--console-log-level=warn",
            "--enable-color=false",
            "--file-allocation=none",
            seeding,
        ])
        .arg(torrent);
    c
}
