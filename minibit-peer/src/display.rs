//! Progress output: an indicatif bar on a terminal, otherwise a plain line
//! every few seconds (on stderr either way).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use minibit_peer::Progress;
use tokio::sync::watch;

/// Interval between plain progress lines.
const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// Shows `progress` until the download completes or the session ends.
pub async fn show(progress: watch::Receiver<Progress>) {
    if std::io::stderr().is_terminal() {
        bar(progress).await;
    } else {
        lines(progress).await;
    }
}

fn rates(p: &Progress) -> String {
    format!(
        "down {}/s, up {}/s, {} peers",
        HumanBytes(p.download_rate as u64),
        HumanBytes(p.upload_rate as u64),
        p.peers
    )
}

async fn bar(mut progress: watch::Receiver<Progress>) {
    let total = progress.borrow().total_bytes;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{percent:>3}% [{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    loop {
        let complete = {
            let p = progress.borrow_and_update();
            bar.set_position(p.have_bytes);
            bar.set_message(rates(&p));
            p.complete
        };
        if complete || progress.changed().await.is_err() {
            break;
        }
    }
    bar.finish_and_clear();
}

async fn lines(mut progress: watch::Receiver<Progress>) {
    let mut tick = tokio::time::interval(LINE_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // Completion (or the session ending) prints at once.
            _ = progress.wait_for(|p| p.complete) => {}
        }
        let p = progress.borrow().clone();
        let percent = if p.total_bytes == 0 {
            100.0
        } else {
            p.have_bytes as f64 * 100.0 / p.total_bytes as f64
        };
        eprintln!(
            "{percent:5.1}% {} / {}, {}",
            HumanBytes(p.have_bytes),
            HumanBytes(p.total_bytes),
            rates(&p)
        );
        if p.complete || progress.has_changed().is_err() {
            break;
        }
    }
}
