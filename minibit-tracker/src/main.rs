//! `minibit-tracker [--bind ADDR] [--peer-port PORT] [--piece-length BYTES] [FILE|DIR]...`:
//! an HTTP tracker with a catalogue; seeds the FILEs it is given.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{ArgAction, Parser};
use minibit_core::tracker::RegistryConfig;
use minibit_tracker::{TrackerState, serve};
use tracing_subscriber::EnvFilter;

/// HTTP BitTorrent tracker with a searchable catalogue; seeds the FILEs it is given.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on; port 0 picks a free port (the real one is printed).
    #[arg(long, default_value = "127.0.0.1:6969")]
    bind: SocketAddr,
    /// TCP port of the embedded seeder; 0 picks a free port.
    #[arg(long, default_value_t = 0)]
    peer_port: u16,
    /// Piece length of the torrents built for FILEs, bytes (default: chosen from the size).
    #[arg(long, value_name = "BYTES")]
    piece_length: Option<u32>,
    /// Only warnings and errors.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// More detail (-v debug, -vv trace).
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
    /// Files or directories to seed (none: a pure tracker).
    #[arg(value_name = "FILE|DIR")]
    files: Vec<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();

    if !cli.files.is_empty() {
        anyhow::bail!("seeding not available yet: run without FILE arguments for a pure tracker");
    }
    let listener = tokio::net::TcpListener::bind(cli.bind)
        .await
        .with_context(|| format!("cannot listen on {}", cli.bind))?;
    let addr = listener.local_addr()?;
    let state = Arc::new(TrackerState::new(RegistryConfig::default()));
    println!("tracker listening on http://{addr}");
    serve(listener, state, async {
        // If the signal handler cannot be installed, serve until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
    .await?;
    tracing::info!("shut down");
    Ok(())
}
