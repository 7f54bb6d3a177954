//! Whether any tracker answered: a torrent whose trackers cannot be used
//! (all dead, or only schemes we do not speak) would otherwise wait at 0 %
//! in silence. After [`SILENCE`] with no tracker answer and no peer, the
//! user is told once: `no tracker answered; 0 peers`, with the last error
//! of each tracker of the torrent.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use minibit_core::metainfo::Metainfo;

/// How long a session may go without a tracker answer and without a peer
/// before the user is told.
pub(crate) const SILENCE: Duration = Duration::from_secs(5);

/// Why a tracker of the torrent is not announced to.
const UNSUPPORTED: &str = "unsupported scheme (only http:// and https:// trackers are spoken)";

/// One tracker and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Tracker {
    url: String,
    /// The last error, or why it is not used; `None`: no answer yet.
    error: Option<String>,
}

/// The trackers of one session and whether any answered.
#[derive(Debug)]
pub(crate) struct TrackerStatus {
    since: Instant,
    trackers: Vec<Tracker>,
    /// Index in `trackers` of the one announced to.
    active: Option<usize>,
    answered: bool,
    told: bool,
}

impl TrackerStatus {
    /// The trackers of `metainfo` (`announce`, then the BEP 12
    /// `announce-list` tiers, without repeats), or only `announce_url`
    /// when one is given, with `active` the one announced to (`None`:
    /// none can be used). The silence is counted from `now`.
    pub(crate) fn new(
        now: Instant,
        metainfo: &Metainfo,
        announce_url: Option<&str>,
        active: Option<&str>,
    ) -> Self {
        let mut urls: Vec<&str> = Vec::new();
        let listed = metainfo.announce().into_iter().chain(
            metainfo
                .announce_list()
                .iter()
                .flatten()
                .map(String::as_str),
        );
        for url in announce_url.into_iter().chain(listed) {
            if !urls.contains(&url) {
                urls.push(url);
            }
            if announce_url.is_some() {
                break;
            }
        }
        let trackers = urls
            .into_iter()
            .map(|url| Tracker {
                url: url.to_owned(),
                error: (Some(url) != active).then(|| UNSUPPORTED.to_owned()),
            })
            .collect::<Vec<_>>();
        let active = active.and_then(|a| trackers.iter().position(|t| t.url == a));
        Self {
            since: now,
            trackers,
            active,
            answered: false,
            told: false,
        }
    }

    /// The tracker announced to answered.
    pub(crate) fn answered(&mut self) {
        self.answered = true;
    }

    /// The announce failed with `error` (one line).
    pub(crate) fn failed(&mut self, error: String) {
        if let Some(i) = self.active {
            self.trackers[i].error = Some(error);
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
    use minibit_core::metainfo::MetainfoBuilder;

    fn metainfo(announce: &str, list: &[&str]) -> Metainfo {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"content").unwrap();
        MetainfoBuilder::new(dir.path().join("f"))
            .announce(announce)
            .announce_list(vec![list.iter().map(|&u| u.to_owned()).collect()])
            .build()
            .unwrap()
    }

    #[test]
    fn silence_is_reported_once_with_each_trackers_last_error() {
        let t0 = Instant::now();
        let m = metainfo("udp://a:80", &["http://b/announce", "udp://a:80"]);
        let mut status = TrackerStatus::new(t0, &m, None, Some("http://b/announce"));
        assert_eq!(status.check(t0 + SILENCE / 2, 0), None, "too early");
        status.failed("connection refused".into());
        let line = status.check(t0 + SILENCE, 0).unwrap();
        assert_eq!(
            line,
            format!(
                "no tracker answered; 0 peers: udp://a:80 ({UNSUPPORTED}); http://b/announce (connection refused)"
            )
        );
        assert_eq!(status.check(t0 + SILENCE * 2, 0), None, "said once");
    }

    #[test]
    fn an_answer_or_a_peer_means_nothing_to_report() {
        let t0 = Instant::now();
        let m = metainfo("http://b/announce", &[]);
        let mut status = TrackerStatus::new(t0, &m, None, Some("http://b/announce"));
        assert_eq!(status.check(t0 + SILENCE, 1), None, "a peer (e.g. via PEX)");
        status.answered();
        assert_eq!(status.check(t0 + SILENCE * 2, 0), None);
        let mut status = TrackerStatus::new(t0, &m, Some("http://x/announce"), None);
        assert_eq!(
            status.check(t0 + SILENCE, 0).unwrap(),
            format!("no tracker answered; 0 peers: http://x/announce ({UNSUPPORTED})"),
            "an explicit tracker replaces the metainfo's"
        );
    }
}
