//! `minibit-peer`: join a swarm, download, verify every piece, then seed;
//! also `create`, `search`, `files` and `info`; `daemon` runs it as a
//! service and `add`, `list`, `pause`, `resume`, `remove`, `subscribe`,
//! `unsubscribe`, `subscriptions` drive a running daemon.
//!
//! Exit codes: 0 success (a download: every piece verified), 1 an error
//! (one `error:` line), 2 a usage error (clap's), 130/143 stopped by
//! SIGINT/SIGTERM before the download completed.

mod cli;
mod create;
mod daemon_run;
mod display;
mod exit;
mod remote;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::CommandFactory;
use indicatif::HumanBytes;
use minibit_core::metainfo::Metainfo;
use minibit_peer::catalogue;
use minibit_peer::cli_common::Verbosity;
use minibit_peer::error_report::report;
use minibit_peer::file_select;
use minibit_peer::source::{Source, SourceError, not_a_torrent_file};
use minibit_peer::{Session, SessionConfig, SessionHandle, content_path};

use crate::cli::{Cli, Command, DownloadArgs};
use crate::display::Display;
use crate::exit::StopSignals;

fn main() -> ExitCode {
    let cli = Cli::try_parse_checked(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let verbosity = cli.verbosity;
    verbosity.init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.into_command(), verbosity)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", report(&e, verbosity.verbose > 0));
            ExitCode::FAILURE
        }
    }
}

fn http_client() -> Result<reqwest::Client> {
    Ok(minibit_peer::http::client(Duration::from_secs(30))?)
}

async fn run(command: Command, verbosity: Verbosity) -> Result<ExitCode> {
    match command {
        Command::Download(args) => download(args, verbosity.quiet).await,
        Command::Create(args) => create::create(args, verbosity.quiet)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Search { tracker, query } => search(&tracker, query.as_deref().unwrap_or(""))
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Info { torrent } => info(&torrent).map(|()| ExitCode::SUCCESS),
        Command::Files { source, name } => files(&source, name.as_deref())
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Daemon(args) => daemon_run::run(args).await,
        Command::Add(args) => remote::add(&args).await.map(|()| ExitCode::SUCCESS),
        Command::List { remote } => remote::list(&remote).await.map(|()| ExitCode::SUCCESS),
        Command::Pause(args) => remote::pause_or_resume(&args, "pause")
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Resume(args) => remote::pause_or_resume(&args, "resume")
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Remove {
            target,
            delete_data,
        } => remote::remove(&target, delete_data)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Subscribe(args) => remote::subscribe(&args).await.map(|()| ExitCode::SUCCESS),
        Command::Unsubscribe(args) => remote::unsubscribe(&args).await.map(|()| ExitCode::SUCCESS),
        Command::Subscriptions { remote } => remote::subscriptions(&remote)
            .await
            .map(|()| ExitCode::SUCCESS),
    }
}

/// `minibit-peer files`: index, size and path inside the torrent of each file.
async fn files(source: &str, name: Option<&str>) -> Result<()> {
    let metainfo = load_metainfo(source, name).await?;
    for (i, file) in metainfo.info().files().iter().enumerate() {
        println!(
            "{i:>5}  {:>11}  {}",
            HumanBytes(file.length).to_string(),
            file_select::path_in_torrent(&metainfo, i)
        );
    }
    Ok(())
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
    let metainfo = Metainfo::from_bytes(&bytes).with_context(|| not_a_torrent_file(path))?;
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

/// A usage error found after parsing: clap's message and exit code 2.
fn usage_error(kind: clap::error::ErrorKind, message: impl std::fmt::Display) -> ! {
    Cli::command().error(kind, message).exit()
}

/// The listen address from `--bind IP[:PORT]` and `--port`.
fn listen_addr(args: &DownloadArgs) -> SocketAddr {
    match (args.bind.port, args.port) {
        (Some(_), Some(_)) => usage_error(
            clap::error::ErrorKind::ArgumentConflict,
            "give the port once: --bind IP:PORT or --port PORT",
        ),
        (port, other) => SocketAddr::new(args.bind.ip, port.or(other).unwrap_or(0)),
    }
}

/// Loads the `.torrent` (or parses the magnet link) and starts the
/// session (verifying what is on disk); returns it with the path of the
/// content (`None` for a magnet link: its name comes with the metadata).
async fn start(args: &DownloadArgs) -> Result<(SessionHandle, Option<PathBuf>)> {
    let listen = listen_addr(args);
    let source = parse_source(
        args.source.as_deref().unwrap_or_default(),
        args.name.as_deref(),
    )?;
    let (mut config, path) = if let Source::Magnet(magnet) = source {
        if !args.only.is_empty() {
            usage_error(
                clap::error::ErrorKind::ArgumentConflict,
                "--only needs the torrent's file list, which a magnet link does not carry: download the .torrent (or use the daemon's file priorities)",
            );
        }
        (SessionConfig::from_magnet(magnet, &args.output), None)
    } else {
        let metainfo = load_source(&source).await?;
        let priorities = match file_select::only(&metainfo, &args.only) {
            Ok(priorities) => priorities,
            Err(e) => usage_error(clap::error::ErrorKind::ValueValidation, e),
        };
        let path = content_path(&metainfo, &args.output);
        let mut config = SessionConfig::new(metainfo, &args.output);
        config.options.torrent.file_priorities = priorities;
        (config, Some(path))
    };
    config.listen = listen;
    config.options.state_dir.clone_from(&args.state);
    config.options.resume_interval = Duration::from_millis(args.resume_interval_ms);
    config.download_limit = args.download_limit.bytes_per_second();
    config.upload_limit = args.upload_limit.bytes_per_second();
    config.dht = args.discovery.dht(listen, &config.options.state_dir());
    config.lsd = args.discovery.lsd(listen);
    Ok((Session::start(config).await?, path))
}

/// Classifies SOURCE [NAME]; a NAME where none belongs is a usage error.
fn parse_source(source: &str, name: Option<&str>) -> Result<Source> {
    match Source::parse(source, name) {
        Ok(source) => Ok(source),
        Err(e @ SourceError::UnexpectedName(_)) => {
            usage_error(clap::error::ErrorKind::ArgumentConflict, e)
        }
        Err(e) => Err(e.into()),
    }
}

/// Loads and parses the `.torrent` named by SOURCE [NAME].
async fn load_metainfo(source: &str, name: Option<&str>) -> Result<Metainfo> {
    load_source(&parse_source(source, name)?).await
}

/// Loads and parses the `.torrent` of `source`.
async fn load_source(source: &Source) -> Result<Metainfo> {
    let bytes = source.load(&http_client()?).await?;
    let metainfo = Metainfo::from_bytes(&bytes).with_context(|| match source {
        Source::Url(url) => format!(
            "{url}: not a valid .torrent (for a torrent of a tracker's catalogue, add its NAME)"
        ),
        Source::File(path) => not_a_torrent_file(path),
        other => format!("{}: not a valid .torrent", other.describe()),
    })?;
    Ok(metainfo)
}

/// Downloads, then seeds (or exits with `--exit-on-complete`), until
/// SIGINT/SIGTERM; a second signal stops at once.
async fn download(args: DownloadArgs, quiet: bool) -> Result<ExitCode> {
    let mut signals = StopSignals::install().context("cannot catch Ctrl-C")?;
    let started = Instant::now();
    let (handle, path) = tokio::select! {
        handle = start(&args) => handle?,
        stop = signals.recv() => {
            eprintln!("{}", exit::interrupted_line(0));
            return Ok(ExitCode::from(stop.exit_code()));
        }
    };
    let progress = handle.progress();
    let initially = progress.borrow().clone();
    if !quiet {
        let addr = handle.local_addr();
        let note = if addr.ip().is_unspecified() {
            " (all interfaces; --bind 127.0.0.1 keeps it local)"
        } else {
            ""
        };
        eprintln!("listening for peers on {addr}{note}");
        if initially.fetching_metadata {
            eprintln!("magnet link: fetching metadata from peers first (BEP 9)");
        }
    }
    let display = (!quiet).then(|| Display::start(handle.progress()));
    let stop = tokio::select! {
        complete = handle.wait_complete() => if complete { None } else {
            if let Some(display) = display { display.stop().await; }
            handle.shutdown().await?;
            anyhow::bail!("the session ended before the download completed");
        },
        stop = signals.recv() => Some(stop),
    };
    let display = match (stop, display) {
        (None, display) => {
            // Complete: say so once, above the seeding line.
            if let Some(display) = display {
                display.stop().await;
            }
            let now = progress.borrow().clone();
            let path = match path {
                Some(path) => path,
                None => args.output.join(handle.name().await?),
            };
            println!(
                "{}",
                display::finished_line(&path, &initially, &now, started.elapsed())
            );
            if args.exit_on_complete {
                None
            } else {
                let display = (!quiet).then(|| Display::start(handle.progress()));
                tokio::select! {
                    () = handle.wait_ended() => {}
                    _ = signals.recv() => {}
                }
                display
            }
        }
        (Some(_), display) => display,
    };
    if let Some(display) = display {
        display.stop().await;
    }
    // A second signal while the `stopped` announce is under way stops at once.
    let result = tokio::select! {
        result = handle.shutdown() => result,
        second = signals.recv() => {
            let now = progress.borrow().clone();
            if !now.complete {
                eprintln!("{}", exit::interrupted_line(exit::percent(now.have_bytes, now.total_bytes)));
            }
            std::process::exit(i32::from(stop.unwrap_or(second).exit_code()));
        }
    };
    let end = progress.borrow().clone();
    if !quiet {
        eprintln!("{}", display::summary_line(&end, started.elapsed()));
    }
    result?;
    match stop {
        Some(signal) if !end.complete => {
            eprintln!(
                "{}",
                exit::interrupted_line(exit::percent(end.have_bytes, end.total_bytes))
            );
            Ok(ExitCode::from(signal.exit_code()))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
