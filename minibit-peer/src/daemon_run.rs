//! `minibit-peer daemon`: starts the [`Daemon`], serves its API and page,
//! and stops both on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use minibit_peer::ClientConfig;
use minibit_peer::daemon::api::{self, ApiState};
use minibit_peer::daemon::{Daemon, DaemonConfig};
use minibit_peer::token::{ApiToken, TOKEN_FILE, create_state_dir};

use crate::cli::DaemonArgs;
use crate::exit::StopSignals;

/// Longest wait for the API's open requests (event streams end at once)
/// before the client is stopped anyway.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs the daemon until SIGINT/SIGTERM; prints `api listening on
/// http://ADDR` (stdout) once the API serves.
pub async fn run(args: DaemonArgs) -> Result<ExitCode> {
    let mut signals = StopSignals::install().context("cannot catch Ctrl-C")?;
    create_state_dir(&args.state)
        .with_context(|| format!("--state {}: cannot create it", args.state.display()))?;
    let (token, new_token) = token(&args)?;
    let listener = tokio::net::TcpListener::bind(args.api)
        .await
        .with_context(|| format!("--api {}: cannot listen", args.api))?;
    let api_addr = listener.local_addr()?;
    let port = match (args.bind.port, args.port) {
        (Some(_), Some(_)) => {
            anyhow::bail!("give the peer port once: --bind IP:PORT or --port PORT")
        }
        (port, other) => port.or(other).unwrap_or(0),
    };
    let listen = SocketAddr::new(args.bind.ip, port);
    let config = DaemonConfig {
        download_root: args
            .download_root
            .clone()
            .unwrap_or_else(|| args.state.join("downloads")),
        state_dir: args.state.clone(),
        client: ClientConfig {
            listen,
            dht: args.discovery.dht(listen, &args.state),
            lsd: args.discovery.lsd(listen),
            ..ClientConfig::default()
        },
    };
    let daemon = Daemon::start(config)
        .await
        .with_context(|| format!("--state {}", args.state.display()))?;
    eprintln!("listening for peers on {}", daemon.peer_addr());
    if new_token {
        // On stderr, as Jupyter does: stdout stays the machine-read lines.
        eprintln!("api login: http://{api_addr}/#token={}", token.reveal());
    } else if args.api_token.is_none() {
        eprintln!("api token in {}", args.state.join(TOKEN_FILE).display());
    }
    println!("api listening on http://{api_addr}");
    let state = Arc::new(ApiState::new(daemon, token));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(listener, Arc::clone(&state), async move {
        let _ = stopped.await;
    }));
    signals.recv().await;
    eprintln!("stopping");
    let _ = stop.send(());
    if tokio::time::timeout(DRAIN, server).await.is_err() {
        tracing::warn!("open API requests did not finish; stopping anyway");
    }
    if let Ok(state) = Arc::try_unwrap(state) {
        state.into_daemon().shutdown().await?;
    } else {
        // A request still holds the daemon: dropping the client stops it
        // without the `stopped` announces.
        tracing::warn!("an API request still runs; stopping without announcing");
    }
    Ok(ExitCode::SUCCESS)
}

/// The API token: `--api-token`, or `STATE/token` (created, and printed
/// as a login URL, at first start). The boolean says whether it is new.
fn token(args: &DaemonArgs) -> Result<(ApiToken, bool)> {
    if let Some(token) = &args.api_token {
        return Ok((ApiToken::new(token.clone()).context("--api-token")?, false));
    }
    ApiToken::load_or_create(&args.state).context("--state: API token")
}
