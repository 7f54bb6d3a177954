//! `loopback --size BYTES --leechers N [--client minibit|aria2|libtorrent|transmission|baseline] [--json]`:
//! one seeder and N leechers as real processes on 127.0.0.1 move a file of
//! SIZE pseudo-random bytes; every copy is checked. Prints client, size,
//! leechers, wall_s (start of the leechers to the last verified copy), cpu_s
//! (user + system of every process, seconds) and its parts startup_cpu_s
//! (tracker and seeders before the leechers start: minibit's seeder hashes
//! the file then), seed_cpu_s (tracker and seeders while the leechers run)
//! and leech_cpu_s (every leecher), peak_rss_bytes (largest leecher) and
//! mb_per_s (size x leechers / wall, 10^6 bytes/s).
//!
//! The minibit binaries are taken from the folder of this executable, so
//! build them first with the same profile: `cargo build --release --workspace`
//! (`baseline` also runs `loopback-baseline`, the no-protocol bound).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, ensure};
use clap::Parser;
use minibit_benches::bins;
use minibit_benches::loopback::content::seed_file;
use minibit_benches::loopback::swarm::{self, Client};
use serde::Serialize;

#[derive(Debug, Parser)]
#[command(about = "End-to-end loopback benchmark: one seeder, N leechers, real processes")]
struct Cli {
    /// Bytes to move.
    #[arg(long)]
    size: u64,
    /// Number of leechers.
    #[arg(long, default_value_t = 1)]
    leechers: usize,
    /// Which program seeds and leeches.
    #[arg(long, value_enum, default_value_t = Client::Minibit)]
    client: Client,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Longest time the leechers get, seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Scratch folder (default: a fresh temporary folder, deleted afterwards).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Report {
    client: Client,
    size: u64,
    leechers: usize,
    wall_s: f64,
    cpu_s: f64,
    startup_cpu_s: f64,
    seed_cpu_s: f64,
    leech_cpu_s: f64,
    peak_rss_bytes: u64,
    mb_per_s: f64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    ensure!(
        cli.size > 0 && cli.leechers > 0,
        "--size and --leechers must be positive"
    );
    let bins = bins::beside_this_exe()?;
    let temp = tempfile::Builder::new()
        .prefix("minibit-loopback")
        .tempdir_in(cli.work_dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let file = seed_file(temp.path(), cli.size)?;
    let outcome = swarm::run(
        cli.client,
        &bins,
        temp.path(),
        &file,
        cli.leechers,
        Duration::from_secs(cli.timeout),
    )?;
    #[allow(clippy::cast_precision_loss)]
    let mb_per_s = (cli.size as f64 * cli.leechers as f64) / outcome.wall_s / 1e6;
    let report = Report {
        client: cli.client,
        size: cli.size,
        leechers: cli.leechers,
        wall_s: outcome.wall_s,
        cpu_s: outcome.cpu_s,
        startup_cpu_s: outcome.startup_cpu_s,
        seed_cpu_s: outcome.seed_cpu_s,
        leech_cpu_s: outcome.leech_cpu_s,
        peak_rss_bytes: outcome.peak_rss_bytes,
        mb_per_s,
    };
    if cli.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{:?}: {} bytes to {} leechers in {:.3} s wall, {:.3} s CPU (start-up {:.3}, seeding {:.3}, leechers {:.3}), peak leecher RSS {} MiB, {:.1} MB/s",
            report.client,
            report.size,
            report.leechers,
            report.wall_s,
            report.cpu_s,
            report.startup_cpu_s,
            report.seed_cpu_s,
            report.leech_cpu_s,
            report.peak_rss_bytes >> 20,
            report.mb_per_s
        );
    }
    Ok(())
}
