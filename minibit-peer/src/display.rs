//! Progress output: an indicatif bar on a terminal, otherwise a plain line
//! every few seconds (on stderr either way).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};
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

/// A duration for people: seconds with two decimals under a minute
/// (`0.07 s`, `12.40 s`), else rounded to the largest units (`2 minutes`).
pub fn duration(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(60) {
        format!("{:.2} s", elapsed.as_secs_f64())
    } else {
        HumanDuration(elapsed).to_string()
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
    // The first line comes after one interval: at the start there is nothing to show.
    let start = tokio::time::Instant::now() + LINE_INTERVAL;
    let mut tick = tokio::time::interval_at(start, LINE_INTERVAL);
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
        // Once complete, the rates and the peers (seeds drop each other) say nothing.
        let state = if p.complete {
            "complete".to_owned()
        } else {
            rates(&p)
        };
        eprintln!(
            "{percent:5.1}% {} / {}, {state}",
            HumanBytes(p.have_bytes),
            HumanBytes(p.total_bytes),
        );
        if p.complete || progress.has_changed().is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_durations_keep_their_fraction() {
        assert_eq!(duration(Duration::from_millis(70)), "0.07 s");
        assert_eq!(duration(Duration::from_millis(12_400)), "12.40 s");
        assert_eq!(duration(Duration::from_secs(130)), "2 minutes");
    }
}
