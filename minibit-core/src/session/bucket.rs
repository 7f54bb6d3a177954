//! [`TokenBucket`]: a byte rate limit fed by `now`.

use std::time::{Duration, Instant};

use crate::piece::BLOCK_SIZE;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A token bucket of bytes: `rate` bytes per second flow in, up to a burst
/// of `rate / 10` bytes (at least one 16 KiB block). A transfer may start
/// while the balance is positive and may take it below zero (a block is
/// never split); the deficit is paid back before the next one, so over any
/// long span the bytes let through stay within one burst and one block of
/// `rate x span`. A rate of 0 means unlimited.
#[derive(Clone, Debug)]
pub(super) struct TokenBucket {
    /// Bytes per second; 0 = unlimited.
    rate: u64,
    /// Most tokens held, bytes.
    capacity: i64,
    /// Balance, bytes; negative after an overdraft.
    tokens: i64,
    /// Fraction of a token carried between refills, in byte-nanoseconds
    /// per second (so no rounding is lost however often `now` advances).
    carry: u128,
    /// Instant of the last refill.
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `rate` bytes per second (0 = unlimited).
    pub(super) fn new(rate: u64, now: Instant) -> Self {
        let capacity = i64::try_from(rate / 10)
            .unwrap_or(i64::MAX)
            .max(i64::from(BLOCK_SIZE));
        Self {
            rate,
            capacity,
            tokens: capacity,
            carry: 0,
            last: now,
        }
    }

    /// The rate, bytes per second (0 = unlimited).
    pub(super) fn rate(&self) -> u64 {
        self.rate
    }

    /// Whether a limit is set.
    pub(super) fn is_limited(&self) -> bool {
        self.rate != 0
    }

    /// Adds the tokens that flowed in since the last refill.
    pub(super) fn refill(&mut self, now: Instant) {
        let Some(elapsed) = now.checked_duration_since(self.last) else {
            return;
        };
        self.last = now;
        if !self.is_limited() {
            return;
        }
        let flow = self.carry + u128::from(self.rate) * elapsed.as_nanos();
        let added = i64::try_from(flow / NANOS_PER_SEC).unwrap_or(i64::MAX);
        self.carry = flow % NANOS_PER_SEC;
        self.tokens = self.tokens.saturating_add(added);
        if self.tokens >= self.capacity {
            self.tokens = self.capacity;
            self.carry = 0;
        }
    }

    /// Whether a transfer may start now (always, when unlimited).
    pub(super) fn is_open(&self) -> bool {
        !self.is_limited() || self.tokens > 0
    }

    /// Takes `bytes` (the balance may go below zero).
    pub(super) fn take(&mut self, bytes: u64) {
        if self.is_limited() {
            let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
            self.tokens = self.tokens.saturating_sub(bytes);
        }
    }

    /// When the bucket opens again, `None` if it is open or unlimited.
    pub(super) fn opens_at(&self) -> Option<Instant> {
        if self.is_open() {
            return None;
        }
        // Tokens needed to reach a balance of 1, in byte-nanoseconds per second.
        let needed = (1 - i128::from(self.tokens)) as u128 * NANOS_PER_SEC - self.carry;
        let nanos = needed.div_ceil(u128::from(self.rate));
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        Some(self.last + Duration::from_nanos(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_clock::origin;

    /// Sends 16 KiB blocks whenever the bucket is open, waking at
    /// `opens_at`, for `span`; returns the bytes let through.
    fn blocks_through(rate: u64, span: Duration) -> u64 {
        let t0 = origin();
        let mut bucket = TokenBucket::new(rate, t0);
        let mut now = t0;
        let mut sent = 0;
        while now < t0 + span {
            bucket.refill(now);
            if bucket.is_open() {
                bucket.take(u64::from(BLOCK_SIZE));
                sent += u64::from(BLOCK_SIZE);
            } else {
                let next = bucket.opens_at().expect("a closed bucket opens later");
                assert!(next > now, "opens_at lies in the future");
                now = next;
            }
        }
        sent
    }

    #[test]
    fn the_bytes_let_through_over_20_s_stay_within_ten_percent_of_the_rate() {
        for rate in [100_000, 1024 * 1024, 8 * 1024 * 1024, 100 * 1024 * 1024] {
            let sent = blocks_through(rate, Duration::from_secs(20));
            let expected = rate as f64 * 20.0;
            let ratio = sent as f64 / expected;
            assert!(
                (0.9..=1.1).contains(&ratio),
                "{rate} B/s let {sent} bytes through in 20 s ({ratio:.3} of the limit)"
            );
        }
    }

    #[test]
    fn an_unlimited_bucket_is_always_open_and_never_wakes() {
        let mut bucket = TokenBucket::new(0, origin());
        bucket.take(u64::MAX);
        assert!(bucket.is_open());
        assert_eq!(bucket.opens_at(), None);
    }

    #[test]
    fn an_overdraft_is_paid_back_before_the_bucket_opens() {
        let t0 = origin();
        let mut bucket = TokenBucket::new(1000, t0);
        bucket.take(16_384 + 1000);
        assert!(!bucket.is_open());
        // Balance -1000: 1001 tokens at 1000 B/s is 1.001 s.
        assert_eq!(bucket.opens_at(), Some(t0 + Duration::from_millis(1001)));
        bucket.refill(t0 + Duration::from_secs(1));
        assert!(!bucket.is_open());
        bucket.refill(t0 + Duration::from_millis(1001));
        assert!(bucket.is_open());
    }
}
