//! `minibit-tracker [--bind IP[:PORT]] [--peer-port PORT] [--piece-length BYTES] [--interval SECONDS] [FILE|DIR]...`:
//! an HTTP tracker with a catalogue, and a UDP tracker (BEP 15) on the same
//! port number; seeds the FILEs it is given.
//!
//! Exit codes: 0 after Ctrl-C, 1 an error (one `error:` line; `-v` adds
//! the chain), 2 a usage error (clap's).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use minibit_core::metainfo::build::check_piece_length;
use minibit_peer::cli_common::{BindAddr, Verbosity};
use minibit_peer::error_report::report;
use minibit_tracker::seed::{SeedOptions, Seeder};
use minibit_tracker::udp::bind_pair;
use minibit_tracker::{RegistryConfig, TrackerState, serve, serve_udp};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

/// The tracker's port when `--bind` gives none.
const DEFAULT_PORT: u16 = 6969;

/// HTTP BitTorrent tracker with a searchable catalogue; seeds the FILEs it is given.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Where to listen, IP[:PORT] (port 6969 when none is given; 0 picks a
    /// free port, the real one is printed). Torrents built for FILEs
    /// announce to this address, so bind a concrete IP, not 0.0.0.0, when
    /// remote peers must reach it.
    #[arg(long, value_name = "IP[:PORT]", default_value = "127.0.0.1:6969")]
    bind: BindAddr,
    /// TCP port of the embedded seeder: every FILE is seeded through one
    /// client on this one port; 0 picks a free port.
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    peer_port: u16,
    /// Piece length of the torrents built for FILEs, bytes (a power of two,
    /// 16 KiB-16 MiB) [default: chosen from the size, ~1000-2000 pieces, as
    /// `minibit-peer create` does].
    #[arg(long, value_name = "BYTES")]
    piece_length: Option<u32>,
    /// Re-announce interval handed to peers, seconds (peers may wait at
    /// least 15 s whatever it says).
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    interval: u64,
    /// Interval between two summary lines in the log (announces, swarms),
    /// seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    summary_interval: u64,
    #[command(flatten)]
    verbosity: Verbosity,
    /// Files or folders to seed (none: a pure tracker).
    #[arg(value_name = "FILE|DIR")]
    files: Vec<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.verbosity.init_logging();
    match run(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", report(&e, cli.verbosity.verbose > 0));
            ExitCode::FAILURE
        }
    }
}

/// The arguments are checked before anything is bound or hashed: every
/// FILE exists, the piece length is usable.
fn check_args(cli: &Cli) -> anyhow::Result<()> {
    if let Some(length) = cli.piece_length {
        check_piece_length(length).context("--piece-length: leave it out for an automatic one")?;
    }
    for path in &cli.files {
        let meta = std::fs::metadata(path).with_context(|| {
            format!(
                "{}: cannot seed it (give an existing file or folder)",
                path.display()
            )
        })?;
        anyhow::ensure!(
            meta.is_file() || meta.is_dir(),
            "{}: not a regular file or a folder",
            path.display()
        );
    }
    Ok(())
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    check_args(cli)?;
    let bind = cli.bind.with_default_port(DEFAULT_PORT);
    let (listener, udp_socket) = bind_pair(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (TCP and UDP)"))?;
    let addr = listener.local_addr()?;
    let interval = Duration::from_secs(cli.interval);
    let defaults = RegistryConfig::default();
    let state = Arc::new(
        TrackerState::new(RegistryConfig {
            interval,
            min_interval: defaults.min_interval.map(|min| min.min(interval)),
            ..defaults
        })
        .with_summary_interval(Duration::from_secs(cli.summary_interval)),
    );
    minibit_tracker::hangup::ignore_hangup().context("cannot handle SIGHUP")?;
    let (stop_server, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, Arc::clone(&state), async {
        let _ = stopped.await;
    }));
    let udp_server = tokio::spawn(serve_udp(
        udp_socket,
        Arc::clone(&state),
        std::future::pending(),
    ));
    println!("tracker listening on http://{addr}");
    tracing::info!("UDP tracker (BEP 15) listening on udp://{addr}/announce");

    let result = seed_and_wait(cli, addr, &state).await;
    let _ = stop_server.send(());
    udp_server.abort();
    server.await??;
    result
}

/// Seeds every FILE, then waits for Ctrl-C; stops the seeder on the way
/// out (its torrents announce `stopped` to the still-running tracker).
async fn seed_and_wait(cli: &Cli, addr: SocketAddr, state: &TrackerState) -> anyhow::Result<()> {
    // Caught from the start, so a Ctrl-C while hashing also stops cleanly.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot catch Ctrl-C (SIGINT)")?;
    if cli.files.is_empty() {
        interrupt.recv().await;
        tracing::info!("shutting down");
        return Ok(());
    }
    if addr.ip().is_unspecified() {
        tracing::warn!(%addr, "torrents will announce to an unspecified address; bind a concrete IP for remote peers");
    }
    let seeder = Seeder::start(SeedOptions {
        tracker_url: format!("http://{addr}"),
        listen: SocketAddr::new(addr.ip(), cli.peer_port),
        piece_length: cli.piece_length,
    })
    .await
    .context("cannot start the embedded seeder")?;
    tracing::info!(addr = %seeder.local_addr(), "seeding on one peer port");
    let seeded = tokio::select! {
        result = seed_files(cli, state, &seeder) => Some(result),
        _ = interrupt.recv() => None,
    };
    let result = match seeded {
        Some(Ok(())) => {
            interrupt.recv().await;
            tracing::info!("shutting down");
            Ok(())
        }
        Some(Err(e)) => Err(e),
        None => Ok(()),
    };
    if let Err(e) = seeder.shutdown().await {
        tracing::warn!(error = %e, "seeder ended with an error");
    }
    result
}

/// Hashes, catalogues and starts seeding each FILE in turn, printing
/// `seeding NAME info_hash=HEX torrent=URL` for each.
async fn seed_files(cli: &Cli, state: &TrackerState, seeder: &Seeder) -> anyhow::Result<()> {
    for path in &cli.files {
        let bar = hashing_bar(cli.verbosity.quiet, path);
        let progress = {
            let bar = bar.clone();
            move |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            }
        };
        let result = seeder.add(path, state, progress).await;
        bar.finish_and_clear();
        let s = result?;
        println!(
            "seeding {} info_hash={} torrent={}",
            s.name, s.info_hash, s.torrent_url
        );
    }
    Ok(())
}

/// A progress bar for hashing `path` on stderr (hidden with `-q`).
fn hashing_bar(quiet: bool, path: &std::path::Path) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "hashing {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    ProgressBar::new(0)
        .with_style(style)
        .with_message(path.display().to_string())
}
