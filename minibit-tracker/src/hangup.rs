//! SIGHUP (a closed terminal, `kill -HUP`, a log rotation) does not stop
//! the tracker: it is logged and ignored. Only Ctrl-C / SIGINT stop it.

use tokio::signal::unix::{SignalKind, signal};

/// Installs a SIGHUP handler that logs and otherwise ignores the signal,
/// for as long as the tokio runtime runs.
///
/// # Errors
/// When the handler cannot be installed.
pub fn ignore_hangup() -> std::io::Result<()> {
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP received: ignored (Ctrl-C or SIGINT stops the tracker)");
        }
    });
    Ok(())
}
