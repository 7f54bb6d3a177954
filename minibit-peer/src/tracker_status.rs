//! What became of each tracker of a torrent: its last announce, answer
//! and error (for the detail view, [`TrackerInfo`]), and whether any
//! answered: a torrent whose trackers cannot be used (all dead, or only
//! schemes we do not speak) would otherwise wait at 0 % in silence. After
//! [`SILENCE`] with no tracker answer and no peer, the user is told once:
//! `no tracker answered; 0 peers`, with the last error of each tracker of
//! the torrent.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use minibit_core::tracker::AnnounceResponse;

use crate::client::{TrackerAnswer, TrackerInfo};
use crate::tracker_client::AnnounceError;

/// How long a session may go without a tracker answer and without a peer
/// before the user is told.
pub(crate) const SILENCE: Duration = Duration::from_secs(5);

/// One tracker and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Tracker {
    url: String,
    /// The error of the last announce to it; `None`: it answered, or was
    /// not asked yet.
    error: Option<String>,
    /// When it was last announced to.
    last_announce: Option<SystemTime>,
    /// Its last answer.
    answer: Option<TrackerAnswer>,
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
            .map(|url| Tracker {
                url,
                error: None,
                last_announce: None,
                answer: None,
            })
            .collect();
        Self {
            since: now,
            trackers,
            answered: false,
            told: false,
        }
    }

    /// Tracker `url` answered `response` at `at` (trackers tried before
    /// it in the same announce failed: see [`TrackerStatus::failed`]).
    pub(crate) fn answered(&mut self, url: &str, response: &AnnounceResponse, at: SystemTime) {
        self.answered = true;
        if let Some(tracker) = self.tracker(url) {
            tracker.error = None;
            tracker.last_announce = Some(at);
            tracker.answer = Some(TrackerAnswer {
                seeders: response.complete,
                leechers: response.incomplete,
                peers: response.peers.len(),
            });
        }
    }

    /// Each tracker `error` lists failed at `at` and keeps its error.
    pub(crate) fn failed(&mut self, error: &AnnounceError, at: SystemTime) {
        for (url, cause) in error.failures() {
            if let Some(tracker) = self.tracker(url) {
                tracker.error = Some(cause);
                tracker.last_announce = Some(at);
            }
        }
    }

    fn tracker(&mut self, url: &str) -> Option<&mut Tracker> {
        self.trackers.iter_mut().find(|t| t.url == url)
    }

    /// Each tracker of `tiers` (`(tier, url)` in the order the next
    /// announce tries them) with what became of it; `next_announce` is the
    /// torrent's.
    pub(crate) fn infos(
        &self,
        tiers: Vec<(usize, String)>,
        next_announce: Option<SystemTime>,
    ) -> Vec<TrackerInfo> {
        tiers
            .into_iter()
            .map(|(tier, url)| {
                let known = self.trackers.iter().find(|t| t.url == url);
                TrackerInfo {
                    tier,
                    last_announce: known.and_then(|t| t.last_announce),
                    last_answer: known.and_then(|t| t.answer),
                    next_announce,
                    error: known.and_then(|t| t.error.clone()),
                    url,
                }
            })
            .collect()
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

    fn answer() -> AnnounceResponse {
        AnnounceResponse {
            interval: 900,
            min_interval: None,
            complete: 3,
            incomplete: 7,
            peers: Vec::new(),
            warning: None,
        }
    }

    #[test]
    fn each_tracker_keeps_its_last_announce_answer_and_error() {
        let t0 = Instant::now();
        let (a, b) = ("http://a/announce".to_owned(), "udp://b:80".to_owned());
        let mut status = TrackerStatus::new(t0, vec![a.clone(), b.clone()]);
        let (at1, at2) = (
            SystemTime::UNIX_EPOCH + Duration::from_secs(100),
            SystemTime::UNIX_EPOCH + Duration::from_secs(200),
        );
        status.failed(&unsupported(&b), at1);
        status.answered(&a, &answer(), at1);
        let next = Some(at2);
        let infos = status.infos(vec![(0, b.clone()), (1, a.clone()), (2, "x".into())], next);
        assert_eq!(infos[0].url, b);
        assert_eq!((infos[0].tier, infos[0].last_announce), (0, Some(at1)));
        assert_eq!(infos[0].error.as_deref(), Some("unsupported scheme"));
        assert_eq!(infos[0].last_answer, None);
        assert_eq!(infos[1].tier, 1);
        assert_eq!(
            infos[1].last_answer,
            Some(TrackerAnswer {
                seeders: 3,
                leechers: 7,
                peers: 0
            })
        );
        assert_eq!(
            (infos[1].error.as_ref(), infos[1].next_announce),
            (None, next)
        );
        assert_eq!(infos[2].last_announce, None, "a tracker never asked");
        // A later answer clears the error.
        status.answered(&b, &answer(), at2);
        let infos = status.infos(vec![(0, b)], None);
        assert_eq!(
            (infos[0].error.as_ref(), infos[0].last_announce),
            (None, Some(at2))
        );
    }

    #[test]
    fn silence_is_reported_once_with_each_trackers_last_error() {
        let t0 = Instant::now();
        let urls = vec!["udp://a:80".to_owned(), "wss://b/announce".to_owned()];
        let mut status = TrackerStatus::new(t0, urls);
        assert_eq!(status.check(t0 + SILENCE / 2, 0), None, "too early");
        status.failed(&unsupported("wss://b/announce"), SystemTime::UNIX_EPOCH);
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
        status.failed(
            &AnnounceError::AllFailed(vec![unsupported("wss://a"), unsupported("wss://b")]),
            SystemTime::UNIX_EPOCH,
        );
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
        status.answered("http://b/announce", &answer(), SystemTime::UNIX_EPOCH);
        assert_eq!(status.check(t0 + SILENCE * 2, 0), None);
        let mut none = TrackerStatus::new(t0, Vec::new());
        assert_eq!(
            none.check(t0 + SILENCE, 0).unwrap(),
            "no tracker answered; 0 peers (the torrent names no tracker)"
        );
    }
}
