//! `minibit-peer`: join a swarm, download, verify every piece, then seed.

mod cli;
mod display;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use indicatif::HumanBytes;
use minibit_core::metainfo::Metainfo;
use minibit_peer::catalogue;
use minibit_peer::session::{Session, SessionConfig, content_path};
use minibit_peer::source::Source;

use crate::cli::{Cli, Command, DownloadArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.quiet, cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Search { tracker, query }) => {
            search(&tracker, query.as_deref().unwrap_or("")).await
        }
        Some(Command::Info { torrent }) => info(&torrent),
        None => download(cli.download, cli.quiet).await,
    }
}

async fn search(tracker: &str, query: &str) -> Result<()> {
    let entries = catalogue::search(&http_client()?, tracker, query).await?;
    if entries.is_empty() {
        println!("no torrent matches {query:?}");
    }
    for entry in entries {
        println!(
            "{}\t{}\tseeders {}\tleechers {}",
            entry.name,
            HumanBytes(entry.size),
            entry.seeders,
            entry.leechers
        );
    }
    Ok(())
}

fn info(path: &std::path::Path) -> Result<()> {
    let bytes = minibit_peer::source::read_torrent_file(path)?;
    let metainfo = Metainfo::from_bytes(&bytes).with_context(|| format!("{}", path.display()))?;
    let layout = metainfo.layout();
    println!("name:         {}", metainfo.info().name());
    println!("info-hash:    {}", metainfo.info_hash());
    println!(
        "total size:   {} ({} bytes)",
        HumanBytes(layout.total_length()),
        layout.total_length()
    );
    println!(
        "piece length: {} ({} bytes)",
        HumanBytes(u64::from(layout.piece_length())),
        layout.piece_length()
    );
    println!("pieces:       {}", layout.piece_count());
    if let Some(announce) = metainfo.announce() {
        println!("announce:     {announce}");
    }
    println!("files:");
    for (i, file) in metainfo.info().files().iter().enumerate() {
        println!(
            "  {} ({})",
            metainfo.relative_path(i).display(),
            HumanBytes(file.length)
        );
    }
    Ok(())
}

async fn download(args: DownloadArgs, quiet: bool) -> Result<()> {
    let Some(source) = args.source else {
        bail!(
            "a SOURCE is required (a .torrent file, a .torrent URL, or a tracker URL and a NAME)"
        );
    };
    let source = Source::parse(&source, args.name.as_deref())?;
    let bytes = source.load(&http_client()?).await?;
    let metainfo = Metainfo::from_bytes(&bytes).context("bad .torrent")?;
    let path = content_path(&metainfo, &args.output);
    let mut config = SessionConfig::new(metainfo, &args.output);
    config.listen = SocketAddr::new(args.bind, args.port);
    let started = Instant::now();
    let handle = Session::start(config).await?;
    let display = (!quiet).then(|| tokio::spawn(display::show(handle.progress())));
    let initially = handle.progress().borrow().clone();
    let outcome = tokio::select! {
        complete = handle.wait_complete() => Some(complete),
        _ = tokio::signal::ctrl_c() => None,
    };
    if let Some(display) = display {
        if outcome.is_some() {
            // It stops by itself once the download completed or the session ended.
            let _ = display.await;
        } else {
            display.abort();
        }
    }
    match outcome {
        Some(true) => {
            let progress = handle.progress().borrow().clone();
            let elapsed = started.elapsed();
            if initially.complete {
                println!(
                    "{}: already complete ({})",
                    path.display(),
                    HumanBytes(progress.total_bytes)
                );
            } else {
                println!(
                    "{}: {} complete in {}, downloaded {} at {}/s",
                    path.display(),
                    HumanBytes(progress.total_bytes),
                    display::duration(elapsed),
                    HumanBytes(progress.downloaded),
                    HumanBytes(
                        (progress.downloaded as f64 / elapsed.as_secs_f64().max(1e-3)) as u64
                    )
                );
            }
            if !args.exit_on_complete {
                if !quiet {
                    eprintln!(
                        "seeding on port {}; Ctrl-C to stop",
                        handle.local_addr().port()
                    );
                }
                tokio::select! {
                    () = handle.wait_ended() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            handle.shutdown().await?;
        }
        Some(false) => {
            handle.shutdown().await?;
            bail!("the session ended before the download completed");
        }
        None => handle.shutdown().await?,
    }
    Ok(())
}
