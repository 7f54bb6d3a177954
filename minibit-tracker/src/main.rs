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
use minibit_tracker::seed::{SeedOptions, Seeding, seed};
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
    /// TCP port of the embedded seeder: the n-th FILE is seeded on PORT+n;
    /// 0 picks free ports.
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
    let state = Arc::new(TrackerState::new(RegistryConfig {
        interval,
        min_interval: defaults.min_interval.map(|min| min.min(interval)),
        ..defaults
    }));
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

/// Seeds every FILE, then waits for Ctrl-C; stops the seeders started so
/// far on the way out (they announce `stopped` to the still-running tracker).
async fn seed_and_wait(cli: &Cli, addr: SocketAddr, state: &TrackerState) -> anyhow::Result<()> {
    // Caught from the start, so a Ctrl-C while hashing also stops cleanly.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot catch Ctrl-C (SIGINT)")?;
    let mut seeding = Vec::new();
    let seeded = tokio::select! {
        result = seed_files(cli, addr, state, &mut seeding) => Some(result),
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
    shut_down(seeding).await;
    result
}

/// Stops the seeders (they announce `stopped` to the still-running tracker).
async fn shut_down(seeding: Vec<Seeding>) {
    for s in seeding {
        if let Err(e) = s.session.shutdown().await {
            tracing::warn!(name = %s.name, error = %e, "seeder ended with an error");
        }
    }
}

/// Hashes, catalogues and starts seeding each FILE in turn, printing
/// `seeding NAME info_hash=HEX torrent=URL` for each.
async fn seed_files(
    cli: &Cli,
    addr: SocketAddr,
    state: &TrackerState,
    seeding: &mut Vec<Seeding>,
) -> anyhow::Result<()> {
    if addr.ip().is_unspecified() && !cli.files.is_empty() {
        tracing::warn!(%addr, "torrents will announce to an unspecified address; bind a concrete IP for remote peers");
    }
    for (n, path) in cli.files.iter().enumerate() {
        let port = match cli.peer_port {
            0 => 0,
            first => u16::try_from(n)
                .ok()
                .and_then(|n| first.checked_add(n))
                .context("--peer-port plus the number of FILEs exceeds 65535")?,
        };
        let options = SeedOptions {
            tracker_url: format!("http://{addr}"),
            listen: SocketAddr::new(addr.ip(), port),
            piece_length: cli.piece_length,
        };
        let bar = hashing_bar(cli.verbosity.quiet, path);
        let progress = {
            let bar = bar.clone();
            move |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            }
        };
        let result = seed(path, &options, state, progress).await;
        bar.finish_and_clear();
        let s = result?;
        println!(
            "seeding {} info_hash={} torrent={}",
            s.name, s.info_hash, s.torrent_url
        );
        seeding.push(s);
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
