//! `wan [--client minibit,libtorrent,aria2] [--leechers N] [--size BYTES]
//! [--piece-length BYTES] [--up-mbit R] [--seed-up-mbit R] [--down-mbit R]
//! [--slow-leechers K] [--slow-up-mbit R] [--queue-ms MS] [--plot FILE.svg]
//! [--timeout S]`: a flash crowd of real
//! processes on an emulated WAN, one network namespace per peer (needs
//! root: `ip netns`, veth, a bridge and `tc tbf`). One seeder and N
//! leechers start together; every copy is checked. Prints one JSON line
//! per client: client, n, size, piece_length, up_mbit, seed_up_mbit,
//! down_mbit, queue_ms, fluid_bound_s (Kumar-Ross), wire_bound_s (the same
//! on the bytes a link carries), first_s, median_s, last_s, last_over_fluid,
//! last_over_wire, seed_tx_bytes (Ethernet bytes the seeder's namespace
//! sent), seed_copies (seed_tx_bytes over the wire cost of one copy),
//! all_ok and finish_s (each leecher, ascending, seconds). With
//! `--slow-leechers K` the last K leechers' uplinks are shaped to
//! `--slow-up-mbit` (free riders, in effect: issue 17's tit-for-tat
//! check), and the line adds slow_leechers, slow_up_mbit, slow_median_s,
//! others_median_s and slow_over_others (the slow leechers' median finish
//! over the others').
//!
//! The minibit binaries are taken from `--bins` (default: the folder of
//! this executable): `cargo build --release --workspace` first.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use clap::Parser;
use minibit_benches::bins;
use minibit_benches::loopback::content::seed_file;
use minibit_benches::loopback::swarm::Client;
use minibit_benches::wan::bound::{self, Rates};
use minibit_benches::wan::plot::{self, Series};
use minibit_benches::wan::swarm::{self, Outcome, Setup};
use serde::Serialize;
use test_support::netns::{self as net, Link, Net};

#[derive(Debug, Parser)]
#[command(about = "Emulated-WAN flash crowd: one seeder, N leechers, a network namespace each")]
struct Cli {
    /// Clients to run, one swarm each, in this order (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "minibit")]
    client: Vec<Client>,
    /// Number of leechers.
    #[arg(long, default_value_t = 12)]
    leechers: usize,
    /// Bytes to move.
    #[arg(long, default_value_t = 64 << 20)]
    size: u64,
    /// Piece length, bytes.
    #[arg(long, default_value_t = 256 << 10)]
    piece_length: u32,
    /// Upload rate of every peer, Mbit/s (10^6 bit/s).
    #[arg(long, default_value_t = 20.0)]
    up_mbit: f64,
    /// Upload rate of the seeder, Mbit/s (default: --up-mbit).
    #[arg(long)]
    seed_up_mbit: Option<f64>,
    /// How many leechers (the last ones) get the slow uplink of
    /// `--slow-up-mbit` instead of `--up-mbit`.
    #[arg(long, default_value_t = 0)]
    slow_leechers: usize,
    /// Upload rate of the slow leechers, Mbit/s (default 0.064: 64 kbit/s).
    #[arg(long, default_value_t = 0.064)]
    slow_up_mbit: f64,
    /// Download rate of every leecher, Mbit/s (default: not capped).
    #[arg(long)]
    down_mbit: Option<f64>,
    /// Longest a packet waits in a shaper's queue, milliseconds.
    #[arg(long, default_value_t = 50)]
    queue_ms: u32,
    /// Write the completion-time CDF of every client to this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Longest time the leechers of one swarm get, seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Folder of minibit-tracker and minibit-peer (default: this executable's).
    #[arg(long)]
    bins: Option<PathBuf>,
    /// Scratch folder (default: a fresh temporary folder, deleted afterwards).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Report {
    client: Client,
    n: usize,
    size: u64,
    piece_length: u32,
    up_mbit: f64,
    seed_up_mbit: f64,
    down_mbit: Option<f64>,
    queue_ms: u32,
    fluid_bound_s: f64,
    wire_bound_s: f64,
    first_s: f64,
    median_s: f64,
    last_s: f64,
    last_over_fluid: f64,
    last_over_wire: f64,
    seed_tx_bytes: u64,
    seed_copies: f64,
    all_ok: bool,
    finish_s: Vec<f64>,
    #[serde(flatten)]
    slow: Option<SlowReport>,
}

/// The slow leechers' finish against the others' (`--slow-leechers`).
#[derive(Debug, Serialize)]
struct SlowReport {
    slow_leechers: usize,
    slow_up_mbit: f64,
    slow_median_s: f64,
    others_median_s: f64,
    slow_over_others: f64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    ensure!(
        cli.size > 0 && cli.leechers > 0,
        "--size and --leechers must be positive"
    );
    ensure!(
        cli.slow_leechers < cli.leechers && cli.slow_up_mbit > 0.0,
        "--slow-leechers must leave at least one other leecher, and --slow-up-mbit must be positive"
    );
    ensure!(
        is_root(),
        "the wan bench needs root (network namespaces, veth, bridge, tc): run it as root"
    );
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("cannot install the Ctrl-C handler")?;
    }
    let swept = net::sweep()?;
    if swept > 0 {
        eprintln!("removed {swept} namespaces left by earlier runs");
    }
    let bins = match cli.bins.clone() {
        Some(bins) => {
            bins::check(&bins)?;
            bins
        }
        None => bins::beside_this_exe()?,
    };
    let temp = tempfile::Builder::new()
        .prefix("minibit-wan")
        .tempdir_in(cli.work_dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let file = seed_file(temp.path(), cli.size)?;

    let (links, rates) = links_and_rates(&cli);
    let mut runs: Vec<(Client, Vec<f64>)> = vec![];
    let mut all_ok = true;
    for (k, &client) in cli.client.iter().enumerate() {
        let work = temp.path().join(format!("run{k}"));
        std::fs::create_dir_all(&work)?;
        let net = Net::create(&links, cli.queue_ms)?;
        let setup = Setup {
            client,
            net: &net,
            leechers: cli.leechers,
            bins: &bins,
            work: &work,
            file: &file,
            piece_length: cli.piece_length,
        };
        let outcome = swarm::run(&setup, Duration::from_secs(cli.timeout), &stop)?;
        drop(net);
        std::fs::remove_dir_all(&work)?;
        let report = report(&cli, client, &rates, &outcome);
        println!("{}", serde_json::to_string(&report)?);
        all_ok &= outcome.all_ok;
        runs.push((client, report.finish_s));
    }
    if let Some(path) = &cli.plot {
        write_plot(&cli, path, &rates, &runs)?;
    }
    ensure!(all_ok, "a copy differs from the original");
    Ok(())
}

/// The shaping of the seeder's link (peer 0) and each leecher's (the last
/// `--slow-leechers` with the slow uplink), and the same rates in bytes/s
/// for the bounds.
fn links_and_rates(cli: &Cli) -> (Vec<Link>, Rates) {
    let bps = |mbit: f64| (mbit * 1e6).round() as u64;
    let bytes = |mbit: f64| mbit * 1e6 / 8.0;
    let seed_up = cli.seed_up_mbit.unwrap_or(cli.up_mbit);
    let leecher_up: Vec<f64> = (0..cli.leechers)
        .map(|i| {
            if is_slow(cli, i) {
                cli.slow_up_mbit
            } else {
                cli.up_mbit
            }
        })
        .collect();
    let mut links = vec![Link {
        up_bps: bps(seed_up),
        down_bps: None,
    }];
    links.extend(leecher_up.iter().map(|&up| Link {
        up_bps: bps(up),
        down_bps: cli.down_mbit.map(bps),
    }));
    let rates = Rates {
        seed_up: bytes(seed_up),
        leecher_up: leecher_up.into_iter().map(bytes).collect(),
        leecher_down: vec![cli.down_mbit.map_or(f64::INFINITY, bytes); cli.leechers],
    };
    (links, rates)
}

/// Whether leecher `i` (0-based) is one of the last `--slow-leechers`.
fn is_slow(cli: &Cli, i: usize) -> bool {
    i >= cli.leechers - cli.slow_leechers
}

/// The JSON line of one client's flash crowd.
fn report(cli: &Cli, client: Client, rates: &Rates, outcome: &Outcome) -> Report {
    let size = cli.size as f64;
    let (fluid_bound_s, wire_bound_s) = (bound::fluid(size, rates), bound::wire(size, rates));
    let f = ascending(outcome.finish_s.clone());
    let last_s = f[f.len() - 1];
    Report {
        client,
        n: cli.leechers,
        size: cli.size,
        piece_length: cli.piece_length,
        up_mbit: cli.up_mbit,
        seed_up_mbit: cli.seed_up_mbit.unwrap_or(cli.up_mbit),
        down_mbit: cli.down_mbit,
        queue_ms: cli.queue_ms,
        fluid_bound_s,
        wire_bound_s,
        first_s: f[0],
        median_s: median(&f),
        last_s,
        last_over_fluid: last_s / fluid_bound_s,
        last_over_wire: last_s / wire_bound_s,
        seed_tx_bytes: outcome.seed_tx_bytes,
        seed_copies: outcome.seed_tx_bytes as f64 / bound::wire_copy(size),
        all_ok: outcome.all_ok,
        finish_s: f,
        slow: (cli.slow_leechers > 0).then(|| slow_report(cli, &outcome.finish_s)),
    }
}

/// The slow leechers' median finish against the others', from `finish_s`
/// in leecher order.
fn slow_report(cli: &Cli, finish_s: &[f64]) -> SlowReport {
    let (mut slow, mut others) = (vec![], vec![]);
    for (i, &t) in finish_s.iter().enumerate() {
        if is_slow(cli, i) {
            slow.push(t);
        } else {
            others.push(t);
        }
    }
    let (slow_median_s, others_median_s) = (median(&ascending(slow)), median(&ascending(others)));
    SlowReport {
        slow_leechers: cli.slow_leechers,
        slow_up_mbit: cli.slow_up_mbit,
        slow_median_s,
        others_median_s,
        slow_over_others: slow_median_s / others_median_s,
    }
}

/// The completion-time CDF of every client's run, to the SVG `path`.
fn write_plot(cli: &Cli, path: &Path, rates: &Rates, runs: &[(Client, Vec<f64>)]) -> Result<()> {
    let labels: Vec<String> = runs
        .iter()
        .map(|(c, _)| format!("{c:?}").to_lowercase())
        .collect();
    let series: Vec<Series<'_>> = runs
        .iter()
        .zip(&labels)
        .map(|((_, f), label)| Series { label, finish_s: f })
        .collect();
    let title = format!(
        "{} leechers, {} MiB, {} KiB pieces, {} Mbit/s uplinks",
        cli.leechers,
        cli.size >> 20,
        cli.piece_length >> 10,
        cli.up_mbit
    );
    let size = cli.size as f64;
    plot::cdf_svg(
        path,
        &title,
        &series,
        bound::fluid(size, rates),
        bound::wire(size, rates),
    )
}

/// `times` in ascending order.
fn ascending(mut times: Vec<f64>) -> Vec<f64> {
    times.sort_by(f64::total_cmp);
    times
}

/// The median of ascending `sorted` (mean of the middle two for an even count).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        f64::midpoint(sorted[n / 2 - 1], sorted[n / 2])
    }
}

/// Whether this process runs as root (effective uid 0, from `/proc/self/status`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}
