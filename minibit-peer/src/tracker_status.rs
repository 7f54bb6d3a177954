//! Whether any tracker answered: a torrent whose trackers cannot be used
//! (all dead, or only schemes we do not speak) would otherwise wait at 0 %
//! in silence. After [`SILENCE`] with no tracker answer and no peer, the
//! user is told once: `no tracker answered; 0 peers`, with the last error
//! of each tracker of the torrent.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::tracker_client::AnnounceError;

/// How long a session may go without a tracker answer and without a peer
/// before the user is told.
pub(crate) const SILENCE: Duration = Duration::from_secs(5);

/// One tracker and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Tracker {
    url: String,
    /// The last error; `None`: no answer yet.
    error: Option<String>,
}

/// The trackers of one session and whether any answered.
#[derive(Debug)]
pub(crate) struct TrackerStatus {
    since: Instant,
    trackers: Vec<Tracker>,
    answered: bool,
    told: bool,
}

impl TrackerStatus {
    /// The trackers announced to (`urls`, in the order they are tried,
    /// e.g. [`crate::tracker_client::TrackerClient::urls`]); the silence is
    /// counted from `now`.
    pub(crate) fn new(now: Instant, urls: Vec<String>) -> Self {
        let trackers = urls
            .into_iter()
            .map(|url| Tracker { url, error: None })
            .collect();
        Self {
            since: now,
            trackers,
            answered: false,
            told: false,
        }
    }

    /// The tracker announced to answered.
    pub(crate) fn answered(&mut self) {
        self.answered = true;
    }

    /// The announce failed: each tracker it tried keeps its error.
    pub(crate) fn failed(&mut self, error: &AnnounceError) {
        for (url, cause) in error.failures() {
            if let Some(tracker) = self.trackers.iter_mut().find(|t| t.url == url) {
                tracker.error = Some(cause);
            }
        }
    }

    /// The line to tell the user, once: when no tracker has answered
    /// [`SILENCE`] after the start and the session has no `peers`.
    pub(crate) fn check(&mut self, now: Instant, peers: usize) -> Option<String> {
        if self.told || self.answered || peers > 0 || now < self.since + SILENCE {
            return None;
        }
        self.told = true;
        let mut line = String::from("no tracker answered; 0 peers");
        if self.trackers.is_empty() {
            line.push_str(" (the torrent names no tracker)");
        }
        for (i, tracker) in self.trackers.iter().enumerate() {
            let error = tracker.error.as_deref().unwrap_or("no answer yet");
            let sep = if i == 0 { ": " } else { "; " };
            let _ = write!(line, "{sep}{} ({error})", tracker.url);
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsupported(url: &str) -> AnnounceError {
        AnnounceError::Unsupported {
            url: url.to_owned(),
        }
    }

    #[test]
    fn silence_is_reported_once_with_each_trackers_last_error() {
        let t0 = Instant::now();
        let urls = vec!["udp://a:80".to_owned(), "wss://b/announce".to_owned()];
        let mut status = TrackerStatus::new(t0, urls);
        assert_eq!(status.check(t0 + SILENCE / 2, 0), None, "too early");
        status.failed(&unsupported("wss://b/announce"));
        let line = status.check(t0 + SILENCE, 0).unwrap();
        assert_eq!(
            line,
            "no tracker answered; 0 peers: udp://a:80 (no answer yet); wss://b/announce (unsupported scheme)"
        );
        assert_eq!(status.check(t0 + SILENCE * 2, 0), None, "said once");
    }

    #[test]
    fn every_failure_of_an_announce_is_recorded() {
        let t0 = Instant::now();
        let urls = vec!["wss://a".to_owned(), "wss://b".to_owned()];
        let mut status = TrackerStatus::new(t0, urls);
        status.failed(&AnnounceError::AllFailed(vec![
            unsupported("wss://a"),
            unsupported("wss://b"),
        ]));
        assert_eq!(
            status.check(t0 + SILENCE, 0).unwrap(),
            "no tracker answered; 0 peers: wss://a (unsupported scheme); wss://b (unsupported scheme)"
        );
    }

    #[test]
    fn an_answer_or_a_peer_means_nothing_to_report() {
        let t0 = Instant::now();
        let mut status = TrackerStatus::new(t0, vec!["http://b/announce".to_owned()]);
        assert_eq!(status.check(t0 + SILENCE, 1), None, "a peer (e.g. via PEX)");
        status.answered();
        assert_eq!(status.check(t0 + SILENCE * 2, 0), None);
        let mut none = TrackerStatus::new(t0, Vec::new());
        assert_eq!(
            none.check(t0 + SILENCE, 0).unwrap(),
            "no tracker answered; 0 peers (the torrent names no tracker)"
        );
    }
}
