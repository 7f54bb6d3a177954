//! Progress output on stderr: while downloading, percent, bytes, rates
//! over the last few seconds, peers and an ETA (blank while unknown);
//! while seeding, uploaded bytes, ratio and peers. On a terminal one line
//! redrawn in place, cut to the terminal's width (never wrapping);
//! otherwise a plain line every few seconds. Also the finished line and
//! the summary printed at exit.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};
use minibit_peer::Progress;
use tokio::sync::{oneshot, watch};

/// Interval between two redraws on a terminal.
const TICK: Duration = Duration::from_millis(500);

/// Interval between plain progress lines (not a terminal).
const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// Span the shown rates are measured over: long enough to smooth bursts,
/// short enough that a stalled transfer shows 0 B/s within seconds.
const RATE_WINDOW: Duration = Duration::from_secs(3);

/// Width of plain lines (no terminal to fit).
const PLAIN_WIDTH: usize = 200;

/// The progress display, running until [`Display::stop`].
pub struct Display {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Display {
    /// Starts showing `progress` on stderr.
    pub fn start(progress: watch::Receiver<Progress>) -> Self {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(progress, stopped));
        Self { stop, task }
    }

    /// Stops the display and clears the bar from the terminal.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn run(progress: watch::Receiver<Progress>, mut stopped: oneshot::Receiver<()>) {
    let terminal = std::io::stderr().is_terminal();
    let bar = if terminal {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let mut rates = Rates::default();
    let mut tick = tokio::time::interval(if terminal {
        TICK
    } else {
        TICK.min(LINE_INTERVAL)
    });
    let mut last_line: Option<Instant> = None;
    let mut last_seeding_state = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stopped => break,
        }
        let p = progress.borrow().clone();
        let now = Instant::now();
        rates.sample(now, &p);
        if let Some(bar) = &bar {
            // Room for the `^C` the terminal echoes, so the line never wraps.
            let width = usize::from(console::Term::stderr().size().1).max(23) - 3;
            bar.set_message(status_line(&p, &rates, width, true));
            bar.tick();
        } else {
            // Plain lines: every LINE_INTERVAL while downloading; while
            // seeding, only when the upload or the peers changed. The first
            // comes after one interval: at the start there is nothing to show.
            let last = *last_line.get_or_insert(now);
            let seeding_state = p.complete.then_some((p.uploaded, p.peers));
            let changed = !p.complete || seeding_state != last_seeding_state;
            if now.duration_since(last) >= LINE_INTERVAL && changed {
                eprintln!("{}", status_line(&p, &rates, PLAIN_WIDTH, false));
                last_line = Some(now);
                last_seeding_state = seeding_state;
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// Download and upload rates over the last [`RATE_WINDOW`], from the
/// session's byte counters.
#[derive(Debug, Default)]
pub struct Rates {
    /// (when, downloaded bytes, uploaded bytes), oldest first.
    samples: VecDeque<(Instant, u64, u64)>,
}

impl Rates {
    /// Records the counters of `p` at `now`, forgetting samples older than the window.
    pub fn sample(&mut self, now: Instant, p: &Progress) {
        self.samples.push_back((now, p.downloaded, p.uploaded));
        while self
            .samples
            .get(1)
            .is_some_and(|&(at, _, _)| now.duration_since(at) >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// (download, upload) rates in bytes/s over the window; 0 until two samples exist.
    pub fn rates(&self) -> (f64, f64) {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return (0.0, 0.0);
        };
        let span = last.0.duration_since(first.0).as_secs_f64();
        if span <= 0.0 {
            return (0.0, 0.0);
        }
        (
            last.1.saturating_sub(first.1) as f64 / span,
            last.2.saturating_sub(first.2) as f64 / span,
        )
    }
}

/// `1 peer`, `2 peers`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
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

fn rate(bytes_per_second: f64) -> String {
    format!("{}/s", HumanBytes(bytes_per_second as u64))
}

/// Uploaded bytes over downloaded ones, or over the size for a peer that
/// downloaded nothing (a seeder), as Transmission computes it.
pub fn ratio(p: &Progress) -> f64 {
    let base = if p.downloaded > 0 {
        p.downloaded
    } else {
        p.total_bytes
    };
    if base == 0 {
        0.0
    } else {
        p.uploaded as f64 / base as f64
    }
}

/// The status line for `p`, at most `width` characters: the least
/// important parts go first when it does not fit; `bar` adds a bar in the
/// room left while downloading.
pub fn status_line(p: &Progress, rates: &Rates, width: usize, bar: bool) -> String {
    let (down, up) = rates.rates();
    let peers = count(p.peers, "peer");
    // Parts in order of importance; the line shows a prefix of them that fits.
    let (head, parts): (String, Vec<String>) = if p.fetching_metadata {
        (
            "fetching metadata:".to_owned(),
            vec![peers, format!("down {}", rate(down))],
        )
    } else if p.complete {
        (
            "seeding:".to_owned(),
            vec![
                format!("uploaded {}", HumanBytes(p.uploaded)),
                format!("ratio {:.2}", ratio(p)),
                peers,
                format!("up {}", rate(up)),
            ],
        )
    } else {
        let percent = crate::exit::percent(p.have_bytes, p.total_bytes);
        let mut parts = vec![
            format!("down {}", rate(down)),
            peers,
            format!(
                "{} / {}",
                HumanBytes(p.have_bytes),
                HumanBytes(p.total_bytes)
            ),
        ];
        // Blank while unknown: nothing downloaded in the window.
        if down >= 1.0 {
            let left = p.total_bytes.saturating_sub(p.have_bytes) as f64;
            let eta = Duration::from_secs_f64((left / down).min(1e9).ceil());
            parts.insert(2, format!("ETA {}", HumanDuration(eta)));
        }
        parts.push(format!("up {}", rate(up)));
        (format!("{percent:>3}%"), parts)
    };
    let mut line = head;
    let mut taken = Vec::new();
    for part in parts {
        if line.chars().count() + 2 + part.chars().count() > width {
            break;
        }
        line.push_str(if taken.is_empty() { " " } else { ", " });
        line.push_str(&part);
        taken.push(part);
    }
    if bar && !p.complete && !p.fetching_metadata {
        // `[=====>    ] ` after the percent, in the room that is left.
        let room = width.saturating_sub(line.chars().count() + 3).min(30);
        if room >= 10 {
            let filled = if p.total_bytes == 0 {
                room
            } else {
                (u128::from(p.have_bytes) * room as u128 / u128::from(p.total_bytes)) as usize
            };
            let drawn = format!("[{}{}]", "=".repeat(filled), " ".repeat(room - filled));
            let (percent, rest) = line.split_at(4);
            line = format!("{percent} {drawn}{rest}");
        }
    }
    line.chars().take(width).collect()
}

/// The line printed once every piece is verified.
pub fn finished_line(path: &Path, initially: &Progress, p: &Progress, elapsed: Duration) -> String {
    if initially.complete {
        return format!(
            "{}: already complete ({})",
            path.display(),
            HumanBytes(p.total_bytes)
        );
    }
    format!(
        "{}: {} complete in {}: downloaded {} at {}, {} already on disk",
        path.display(),
        HumanBytes(p.total_bytes),
        duration(elapsed),
        HumanBytes(p.downloaded),
        rate(p.downloaded as f64 / elapsed.as_secs_f64().max(1e-3)),
        HumanBytes(initially.have_bytes),
    )
}

/// The summary printed at exit: `downloaded X, uploaded Y, N peers seen, in T`.
pub fn summary_line(p: &Progress, elapsed: Duration) -> String {
    format!(
        "downloaded {}, uploaded {}, {} seen, in {}",
        HumanBytes(p.downloaded),
        HumanBytes(p.uploaded),
        count(p.peers_seen, "peer"),
        duration(elapsed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn downloading() -> Progress {
        Progress {
            have_bytes: 17 * 1024 * 1024,
            total_bytes: 31 * 1024 * 1024,
            downloaded: 17 * 1024 * 1024,
            uploaded: 3 * 1024 * 1024,
            peers: 1,
            ..Progress::default()
        }
    }

    /// Rates measured over `seconds` of samples where the counters grew by `down` and `up` bytes a second.
    fn rates_over(seconds: u64, down: u64, up: u64) -> Rates {
        let start = Instant::now();
        let mut rates = Rates::default();
        for s in 0..=seconds {
            let p = Progress {
                downloaded: s * down,
                uploaded: s * up,
                ..Progress::default()
            };
            rates.sample(start + Duration::from_secs(s), &p);
        }
        rates
    }

    #[test]
    fn short_durations_keep_their_fraction() {
        assert_eq!(duration(Duration::from_millis(70)), "0.07 s");
        assert_eq!(duration(Duration::from_millis(12_400)), "12.40 s");
        assert_eq!(duration(Duration::from_secs(130)), "2 minutes");
    }

    #[test]
    fn plurals() {
        assert_eq!(count(0, "peer"), "0 peers");
        assert_eq!(count(1, "peer"), "1 peer");
        assert_eq!(count(2, "peer"), "2 peers");
    }

    #[test]
    fn rates_fall_to_zero_within_the_window_after_a_stall() {
        let start = Instant::now();
        let mut rates = Rates::default();
        let mut p = Progress::default();
        for s in 0..10 {
            p.downloaded = s * 1000;
            rates.sample(start + Duration::from_secs(s), &p);
        }
        assert!(
            (rates.rates().0 - 1000.0).abs() < 1.0,
            "{:?}",
            rates.rates()
        );
        // The seeder stops: the counter stays put.
        for s in 10..14 {
            rates.sample(start + Duration::from_secs(s), &p);
        }
        assert!(rates.rates().0 < 1.0, "{:?}", rates.rates());
    }

    #[test]
    fn eta_is_blank_while_nothing_arrives() {
        let p = Progress {
            total_bytes: 1000,
            ..Progress::default()
        };
        let line = status_line(&p, &Rates::default(), 200, false);
        assert!(line.starts_with("  0%"), "{line}");
        assert!(!line.contains("ETA"), "{line}");
        let line = status_line(&downloading(), &rates_over(3, 1024 * 1024, 0), 200, false);
        assert!(line.contains("ETA 14 seconds"), "{line}");
        assert!(line.contains("1 peer,"), "{line}");
    }

    #[test]
    fn a_magnet_link_says_it_fetches_the_metadata_first() {
        let p = Progress {
            fetching_metadata: true,
            peers: 2,
            ..Progress::default()
        };
        let line = status_line(&p, &Rates::default(), 200, true);
        assert!(line.starts_with("fetching metadata: 2 peers"), "{line}");
        assert!(!line.contains('%') && !line.contains('['), "{line}");
    }

    #[test]
    fn lines_fit_a_60_column_terminal() {
        let mut p = downloading();
        p.peers = 12;
        let rates = rates_over(3, 123_456_789, 98_765_432);
        for width in [20, 40, 60, 80] {
            for bar in [false, true] {
                let line = status_line(&p, &rates, width, bar);
                assert!(line.chars().count() <= width, "{width}: {line:?}");
                assert!(line.contains('%'), "{line}");
            }
        }
        let wide = status_line(&p, &rates, 60, true);
        assert!(wide.contains("down"), "{wide}");
        assert!(wide.contains('['), "{wide}");
        let mut seeding = p.clone();
        seeding.complete = true;
        let line = status_line(&seeding, &rates, 60, true);
        assert!(line.chars().count() <= 60, "{line}");
        assert!(
            line.starts_with("seeding: uploaded 3.00 MiB, ratio 0.18, 12 peers"),
            "{line}"
        );
    }

    #[test]
    fn finished_line_says_what_was_already_on_disk() {
        let initially = Progress {
            have_bytes: 8 * 1024 * 1024,
            total_bytes: 31 * 1024 * 1024,
            ..Progress::default()
        };
        let mut p = downloading();
        p.have_bytes = p.total_bytes;
        p.downloaded = 23 * 1024 * 1024;
        let line = finished_line(
            Path::new("out/a.bin"),
            &initially,
            &p,
            Duration::from_secs(2),
        );
        assert_eq!(
            line,
            "out/a.bin: 31.00 MiB complete in 2.00 s: downloaded 23.00 MiB at 11.50 MiB/s, 8.00 MiB already on disk"
        );
        let summary = summary_line(&Progress { peers_seen: 1, ..p }, Duration::from_secs(2));
        assert_eq!(
            summary,
            "downloaded 23.00 MiB, uploaded 3.00 MiB, 1 peer seen, in 2.00 s"
        );
    }
}
