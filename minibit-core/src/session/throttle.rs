//! Per-torrent rate limits under the session's global ones: each torrent
//! may have its own upload and download limit (bytes per second, 0 =
//! unlimited). Block reads for its peers are held back while its upload
//! bucket (or the global one) is closed; its block requests are held back
//! while its download bucket is closed, and a held request its torrent has
//! given up meanwhile (answered, cancelled, timed out, choked) is dropped.

use std::collections::VecDeque;
use std::time::Instant;

use crate::id::ConnectionId;
use crate::torrent::Action;
use crate::wire::Message;

use super::bucket::TokenBucket;

/// A held-back action and the connection it is for.
pub(super) type Held = (Option<ConnectionId>, Action);

/// One torrent's limits and what they hold back.
#[derive(Debug)]
pub(super) struct Throttle {
    upload: TokenBucket,
    download: TokenBucket,
    /// [`Action::ReadBlock`]s waiting for upload tokens, oldest first.
    reads: VecDeque<Held>,
    /// `Request` sends waiting for download tokens, oldest first.
    requests: VecDeque<Held>,
}

impl Throttle {
    /// Unlimited both ways.
    pub(super) fn new(now: Instant) -> Self {
        Self {
            upload: TokenBucket::new(0, now),
            download: TokenBucket::new(0, now),
            reads: VecDeque::new(),
            requests: VecDeque::new(),
        }
    }

    /// The limits, bytes per second (0 = unlimited): (upload, download).
    pub(super) fn limits(&self) -> (u64, u64) {
        (self.upload.rate(), self.download.rate())
    }

    /// New limits, bytes per second (0 = unlimited), full buckets.
    pub(super) fn set_limits(&mut self, now: Instant, upload: u64, download: u64) {
        self.upload = TokenBucket::new(upload, now);
        self.download = TokenBucket::new(download, now);
    }

    /// Holds `action` back if it must wait: a block read while this
    /// torrent's upload limit (or, `global_upload`, the session's) is set,
    /// a request while its download limit is set. Gives it back otherwise.
    pub(super) fn hold(
        &mut self,
        global_upload: bool,
        conn: Option<ConnectionId>,
        action: Action,
    ) -> Option<Action> {
        match &action {
            Action::ReadBlock { .. } if global_upload || self.upload.is_limited() => {
                self.reads.push_back((conn, action));
                None
            }
            Action::Send {
                message: Message::Request { .. },
                ..
            } if self.download.is_limited() => {
                self.requests.push_back((conn, action));
                None
            }
            _ => Some(action),
        }
    }

    /// The oldest held read if this torrent's upload bucket is open (its
    /// length is taken from it); the caller checks the global bucket.
    pub(super) fn next_read(&mut self, now: Instant) -> Option<Held> {
        self.upload.refill(now);
        if !self.upload.is_open() {
            return None;
        }
        let held = self.reads.pop_front()?;
        if let (_, Action::ReadBlock { block, .. }) = &held {
            self.upload.take(u64::from(block.length));
        }
        Some(held)
    }

    /// The held requests that may go now (their lengths taken from the
    /// download bucket); `still_wanted` drops those the torrent gave up.
    pub(super) fn release_requests(
        &mut self,
        now: Instant,
        mut still_wanted: impl FnMut(&Held) -> bool,
    ) -> Vec<Held> {
        self.download.refill(now);
        let mut out = Vec::new();
        while self.download.is_open() {
            let Some(held) = self.requests.pop_front() else {
                break;
            };
            if !still_wanted(&held) {
                continue;
            }
            if let (
                _,
                Action::Send {
                    message: Message::Request { length, .. },
                    ..
                },
            ) = &held
            {
                self.download.take(u64::from(*length));
            }
            out.push(held);
        }
        out
    }

    /// When this torrent's held actions may move on: its upload bucket
    /// opening for held reads (`global_upload_opens`: the session's), its
    /// download bucket for held requests. `None`: nothing held or waiting.
    pub(super) fn wakes_at(&self, global_upload_opens: Option<Instant>) -> Option<Instant> {
        let reads = if self.reads.is_empty() {
            None
        } else {
            [self.upload.opens_at(), global_upload_opens]
                .into_iter()
                .flatten()
                .max()
        };
        let requests = if self.requests.is_empty() {
            None
        } else {
            self.download.opens_at()
        };
        [reads, requests].into_iter().flatten().min()
    }

    /// Drops everything held (the torrent stopped).
    pub(super) fn clear(&mut self) {
        self.reads.clear();
        self.requests.clear();
    }
}
