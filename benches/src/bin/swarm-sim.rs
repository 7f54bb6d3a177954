//! `swarm-sim`: runs one deterministic simulated swarm and prints what it measured.
//!
//! ```text
//! cargo run --release -p minibit-benches --bin swarm-sim -- \
//!     --peers 100 --size 1073741824 --piece-length 262144 \
//!     --upload 1000000 --seed-upload 1000000 --rng-seed 1 --json
//! ```
//!
//! While it runs, a progress bar on stderr (when stderr is a terminal)
//! shows the leechers done, the virtual time reached and the event rate.

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use minibit_core::torrent::PickerStrategy;
use minibit_sim::{Progress, SimConfig, Simulation};

/// Simulate a BitTorrent swarm on a virtual clock.
// Independent command-line switches.
#[allow(clippy::struct_excessive_bools)]
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Number of leechers (the initial seed comes on top).
    #[arg(long)]
    peers: usize,
    /// File size in bytes.
    #[arg(long)]
    size: u64,
    /// Piece length in bytes.
    #[arg(long, default_value_t = 256 * 1024)]
    piece_length: u32,
    /// Upload capacity of each leecher, bytes/s.
    #[arg(long)]
    upload: f64,
    /// Download capacity of each leecher, bytes/s (default: unlimited).
    #[arg(long)]
    download: Option<f64>,
    /// Upload capacity of the initial seed, bytes/s.
    #[arg(long)]
    seed_upload: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    rng_seed: u64,
    /// How many leechers never upload.
    #[arg(long, default_value_t = 0)]
    free_riders: usize,
    /// How many leechers upload at `--slow-upload` instead of `--upload`.
    #[arg(long, default_value_t = 0)]
    slow_peers: usize,
    /// Upload capacity of each slow peer, bytes/s.
    #[arg(long, default_value_t = 10_000.0)]
    slow_upload: f64,
    /// Piece-selection strategy.
    #[arg(long, value_enum, default_value_t = Picker::Rarest)]
    picker: Picker,
    /// The initial seed uses super-seeding.
    #[arg(long)]
    super_seed: bool,
    /// The initial seed serves pieces as asked, without spreading its
    /// first copy one piece per peer.
    #[arg(long)]
    no_initial_spread: bool,
    /// Peers each tracker answer lists at most.
    #[arg(long, default_value_t = 50)]
    numwant: usize,
    /// Turn BEP 11 peer exchange off on every node.
    #[arg(long)]
    no_pex: bool,
    /// The initial seed leaves after uploading this many copies.
    #[arg(long)]
    seed_leaves_after_copies: Option<f64>,
    /// One-way latency of every link, milliseconds.
    #[arg(long, default_value_t = 25)]
    latency_ms: u64,
    /// Probability that a message is lost once and retransmitted.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Leechers arrive uniformly over this many seconds (0: flash crowd).
    #[arg(long, default_value_t = 0)]
    arrival_spread_s: u64,
    /// How many leechers leave for good, each at a random instant within
    /// `--leave-within-s` of its arrival (churn).
    #[arg(long, default_value_t = 0)]
    leavers: usize,
    /// Span after its arrival within which each leaver leaves, seconds.
    #[arg(long, default_value_t = 60)]
    leave_within_s: u64,
    /// Time the request pipeline to a peer covers at its rate, in
    /// milliseconds (`TorrentConfig::pipeline_target`; absent: the core's
    /// default).
    #[arg(long)]
    pipeline_target_ms: Option<u64>,
    /// Stop after this much virtual time, seconds.
    #[arg(long, default_value_t = 86_400)]
    time_limit_s: u64,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum Picker {
    Rarest,
    Random,
    Sequential,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config = SimConfig {
        peers: args.peers,
        file_bytes: args.size,
        piece_length: args.piece_length,
        upload_bps: args.upload,
        download_bps: args.download,
        seed_upload_bps: args.seed_upload,
        latency: Duration::from_millis(args.latency_ms),
        loss: args.loss,
        rng_seed: args.rng_seed,
        free_riders: args.free_riders,
        slow_peers: args.slow_peers,
        slow_upload_bps: args.slow_upload,
        picker: match args.picker {
            Picker::Rarest => PickerStrategy::RarestFirst,
            Picker::Random => PickerStrategy::Random,
            Picker::Sequential => PickerStrategy::Sequential,
        },
        super_seed: args.super_seed,
        initial_spread: !args.no_initial_spread,
        tracker_numwant: args.numwant,
        peer_exchange: !args.no_pex,
        seed_leaves_after_copies: args.seed_leaves_after_copies,
        arrival_spread: Duration::from_secs(args.arrival_spread_s),
        leavers: args.leavers,
        leave_within: Duration::from_secs(args.leave_within_s),
        pipeline_target: args
            .pipeline_target_ms
            .map_or(SimConfig::default().pipeline_target, Duration::from_millis),
        time_limit: Duration::from_secs(args.time_limit_s),
    };
    let started = Instant::now();
    let bar = progress_bar(config.peers)?;
    let report = Simulation::new(config, started)?.run_observed(PROGRESS_EVERY, |progress| {
        show(&bar, progress, started);
    });
    bar.finish_and_clear();
    let wall_s = started.elapsed().as_secs_f64();
    let mut json = serde_json::to_value(&report)?;
    json["wall_s"] = serde_json::json!(wall_s);
    if args.json {
        println!("{json}");
    } else {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(())
}

/// Events between two progress updates.
const PROGRESS_EVERY: u64 = 1 << 20;

/// A bar of the leechers done, on stderr (hidden when it is not a terminal).
fn progress_bar(leechers: usize) -> Result<ProgressBar> {
    let bar = ProgressBar::new(leechers as u64);
    bar.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} leechers done, {msg}",
    )?);
    Ok(bar)
}

fn show(bar: &ProgressBar, progress: &Progress, started: Instant) {
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    bar.set_position(progress.completed as u64);
    bar.set_message(format!(
        "virtual {:.0} s, {:.1} M events ({:.2} M/s)",
        progress.virtual_time.as_secs_f64(),
        progress.events as f64 / 1e6,
        progress.events as f64 / 1e6 / wall,
    ));
}
