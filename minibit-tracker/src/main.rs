//! `minibit-tracker [--bind IP[:PORT]] [--state DIR] [--data DIR] [--api-token T] [--peer-port PORT] [--piece-length BYTES] [--interval SECONDS] [FILE|DIR]...`:
//! an HTTP tracker with a catalogue and a JSON API, and a UDP tracker
//! (BEP 15) on the same port number; seeds the FILEs it is given and what
//! is published into it.
//!
//! `minibit-tracker publish --tracker URL [--token T] FILE`: publishes a
//! file (or a `.torrent`) into a running tracker.
//!
//! Exit codes: 0 after Ctrl-C, 1 an error (one `error:` line; `-v` adds
//! the chain), 2 a usage error (clap's).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use minibit_core::metainfo::build::check_piece_length;
use minibit_peer::cli_common::{BindAddr, Verbosity};
use minibit_peer::error_report::report;
use minibit_tracker::publish::{Restored, restore};
use minibit_tracker::service::torrent_path;
use minibit_tracker::store::Store;
use minibit_tracker::token::{ApiToken, TOKEN_FILE, create_state_dir};
use minibit_tracker::udp::bind_pair;
use minibit_tracker::{RegistryConfig, ServiceConfig, TrackerState, serve, serve_udp};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

/// The tracker's port when `--bind` gives none.
const DEFAULT_PORT: u16 = 6969;

/// HTTP BitTorrent tracker with a searchable catalogue and a JSON API;
/// seeds the FILEs it is given and the files published into it.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish a file into a running tracker (stored in its data folder,
    /// hashed, catalogued and seeded there); a FILE named *.torrent is
    /// published as a .torrent alone.
    Publish(PublishArgs),
}

#[derive(Debug, clap::Args)]
struct PublishArgs {
    /// The tracker's URL, http://HOST:PORT.
    #[arg(long, value_name = "URL")]
    tracker: String,
    /// The tracker's API token (its STATE/token file, or the one printed at its first start).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MINIBIT_TRACKER_TOKEN",
        hide_env_values = true
    )]
    token: String,
    #[command(flatten)]
    verbosity: Verbosity,
    /// The file to publish.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Keep the catalogue (SQLite, DIR/catalogue.sqlite3) and the API
    /// token (DIR/token, mode 0600) in DIR, created if missing; a restart
    /// brings the catalogue back and seeds it again. Without it the
    /// catalogue lives in memory and the token changes at every start.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Folder published files are stored in [default: STATE/data with
    /// --state; without either, only .torrent files can be published].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The API token state-changing requests must carry (at least 16
    /// visible characters) [default: generated, kept in STATE/token].
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MINIBIT_TRACKER_TOKEN",
        hide_env_values = true
    )]
    api_token: Option<String>,
    /// Where to listen, IP[:PORT] (port 6969 when none is given; 0 picks a
    /// free port, the real one is printed). Torrents built for FILEs
    /// announce to this address, so bind a concrete IP, not 0.0.0.0, when
    /// remote peers must reach it.
    #[arg(long, value_name = "IP[:PORT]", default_value = "127.0.0.1:6969")]
    bind: BindAddr,
    /// TCP port of the embedded seeder, on the tracker's IP: one port for
    /// every torrent it seeds (FILEs, publications, the restored catalogue);
    /// 0 picks a free port.
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
    let (verbosity, result) = match &cli.command {
        Some(Command::Publish(args)) => {
            args.verbosity.init_logging();
            (&args.verbosity, publish(args).await)
        }
        None => {
            cli.serve.verbosity.init_logging();
            (&cli.serve.verbosity, run(&cli.serve).await)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", report(&e, verbosity.verbose > 0));
            ExitCode::FAILURE
        }
    }
}

/// `minibit-tracker publish`: prints `published NAME info_hash=HEX torrent=URL`.
async fn publish(args: &PublishArgs) -> anyhow::Result<()> {
    let published =
        minibit_tracker::remote::publish(&args.tracker, &args.token, &args.file).await?;
    println!(
        "published {} info_hash={} torrent={}{}{}",
        published.name,
        published.info_hash,
        args.tracker.trim_end_matches('/'),
        published.torrent,
        if published.seeded {
            ""
        } else {
            " (tracked only: the tracker has no data for it)"
        }
    );
    Ok(())
}

/// The service side of `cli`: the database and token of `--state`, the
/// data folder, the token. Prints the login URL (stderr) when the token is new.
fn service_config(cli: &ServeArgs, addr: SocketAddr) -> anyhow::Result<ServiceConfig> {
    let mut config = ServiceConfig {
        tracker_addr: Some(addr),
        peer_port: cli.peer_port,
        piece_length: cli.piece_length,
        ..ServiceConfig::default()
    };
    let mut new_token = None;
    if let Some(dir) = &cli.state {
        create_private_dir(dir)?;
        config.store =
            Some(Store::open(dir).with_context(|| format!("--state {}", dir.display()))?);
        if cli.api_token.is_none() {
            let (token, created) = ApiToken::load_or_create(dir).context("--state: API token")?;
            if created {
                new_token = Some(token.clone());
            } else {
                eprintln!("api token in {}", dir.join(TOKEN_FILE).display());
            }
            config.token = Some(token);
        }
    }
    if let Some(token) = &cli.api_token {
        config.token = Some(ApiToken::new(token.clone()).context("--api-token")?);
    } else if config.token.is_none() {
        let token = ApiToken::generate();
        new_token = Some(token.clone());
        config.token = Some(token);
    }
    if let Some(token) = new_token {
        // On stderr, as Jupyter does: stdout stays the machine-read lines.
        eprintln!("api login: http://{addr}/#token={}", token.reveal());
    }
    let data = cli
        .data
        .clone()
        .or_else(|| cli.state.as_ref().map(|s| s.join("data")));
    if let Some(data) = data {
        create_private_dir(&data)?;
        config.data_root = Some(
            std::fs::canonicalize(&data)
                .with_context(|| format!("data folder {}", data.display()))?,
        );
    }
    Ok(config)
}

/// Creates `dir` (mode 0700) if it does not exist.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    create_state_dir(dir).with_context(|| format!("cannot create the folder {}", dir.display()))
}

/// The arguments are checked before anything is bound or hashed: every
/// FILE exists, the piece length is usable.
fn check_args(cli: &ServeArgs) -> anyhow::Result<()> {
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

async fn run(cli: &ServeArgs) -> anyhow::Result<()> {
    check_args(cli)?;
    let bind = cli.bind.with_default_port(DEFAULT_PORT);
    let (listener, udp_socket) = bind_pair(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (TCP and UDP)"))?;
    let addr = listener.local_addr()?;
    let interval = Duration::from_secs(cli.interval);
    let defaults = RegistryConfig::default();
    let service = service_config(cli, addr)?;
    println!("tracker listening on http://{addr}");
    let state = Arc::new(
        TrackerState::new(RegistryConfig {
            interval,
            min_interval: defaults.min_interval.map(|min| min.min(interval)),
            ..defaults
        })
        .with_summary_interval(Duration::from_secs(cli.summary_interval))
        .with_service(service),
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
    tracing::info!("UDP tracker (BEP 15) listening on udp://{addr}/announce");

    let result = seed_and_wait(cli, addr, &state).await;
    // Open event streams would hold the graceful shutdown forever.
    state.service().close_events();
    let _ = stop_server.send(());
    udp_server.abort();
    server.await??;
    result
}

/// Seeds every FILE, then waits for Ctrl-C; stops the seeders started so
/// far on the way out (they announce `stopped` to the still-running tracker).
async fn seed_and_wait(
    cli: &ServeArgs,
    addr: SocketAddr,
    state: &TrackerState,
) -> anyhow::Result<()> {
    // Caught from the start, so a Ctrl-C while hashing also stops cleanly.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot catch Ctrl-C (SIGINT)")?;
    let seeded = tokio::select! {
        result = restore_and_seed(cli, addr, state) => Some(result),
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
    // The seeders announce `stopped` to the still-running tracker.
    state.service().shutdown().await;
    result
}

/// Brings the catalogue of `--state` back (printing `seeding NAME
/// info_hash=HEX torrent=URL (restored: ...)` for each), then seeds the FILEs.
async fn restore_and_seed(
    cli: &ServeArgs,
    addr: SocketAddr,
    state: &TrackerState,
) -> anyhow::Result<()> {
    let restored = restore(state)
        .await
        .context("--state: cannot read the catalogue")?;
    if let Some(store) = state.service().store() {
        tracing::info!(path = %store.path().display(), entries = restored.len(), "catalogue restored");
    }
    for (name, info_hash, how) in restored {
        let how = match how {
            Restored::Unchanged => "restored, data unchanged: not re-hashed",
            Restored::Verified => "restored, data changed: every piece verified",
            Restored::DataMissing => "restored, data missing: tracked only",
            Restored::TrackedOnly => "restored, tracked only",
        };
        println!(
            "seeding {name} info_hash={info_hash} torrent=http://{addr}{} ({how})",
            torrent_path(&name)
        );
    }
    seed_files(cli, addr, state).await
}

/// Hashes, catalogues and starts seeding each FILE in turn, printing
/// `seeding NAME info_hash=HEX torrent=URL` for each.
async fn seed_files(cli: &ServeArgs, addr: SocketAddr, state: &TrackerState) -> anyhow::Result<()> {
    if addr.ip().is_unspecified() && !cli.files.is_empty() {
        tracing::warn!(%addr, "torrents will announce to an unspecified address; bind a concrete IP for remote peers");
    }
    if cli.files.is_empty() {
        return Ok(());
    }
    let seeder = state.service().seeder().await?;
    tracing::info!(addr = %seeder.local_addr(), "the embedded seeder listens for peers");
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
