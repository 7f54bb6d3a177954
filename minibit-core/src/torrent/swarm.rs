//! The address book: peer addresses learned (tracker, PEX, peers we were
//! connected to), dials in progress, re-dials with back-off, hash-failure
//! strikes and bans.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Most addresses the book holds; later ones are ignored until some are
/// forgotten (libtorrent's peer list is bounded the same way).
pub(super) const MAX_KNOWN: usize = 1000;

/// Re-dials of one address (after a failed dial or a lost connection)
/// before it is forgotten; the delays are `backoff x 1, 2, 4, ... 32`.
pub(super) const MAX_REDIALS: u32 = 6;

/// One address in the book.
#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    /// Re-dials scheduled so far.
    redials: u32,
    /// When the pending re-dial becomes a candidate again, if one is pending.
    retry_at: Option<Instant>,
}

/// What we know about peer addresses (ordered collections only, so the
/// dialling order is deterministic).
#[derive(Debug, Default)]
pub(super) struct AddressBook {
    /// Addresses ready to dial, oldest first.
    candidates: VecDeque<SocketAddr>,
    /// Addresses waiting for their re-dial back-off, earliest first.
    retries: BTreeSet<(Instant, SocketAddr)>,
    /// Every address in the book (candidate, waiting, dialled or connected):
    /// never queued twice. At most [`MAX_KNOWN`].
    known: BTreeMap<SocketAddr, Entry>,
    /// Dials started with [`super::Action::Connect`] and not yet resolved.
    connecting: BTreeSet<SocketAddr>,
    /// Hash-failure strikes per IP address.
    strikes: BTreeMap<IpAddr, u32>,
    /// Banned IP addresses (every port).
    banned: BTreeSet<IpAddr>,
    /// IP addresses that sent blocks of a piece that failed with several
    /// senders: their connections download whole pieces alone.
    parole: BTreeSet<IpAddr>,
}

impl AddressBook {
    /// Remembers `addr` as a dial candidate unless it is already known,
    /// banned, `own` (our listen address), has port 0, or the book is full.
    /// Returns whether it was new.
    pub(super) fn learn(&mut self, addr: SocketAddr, own: Option<SocketAddr>) -> bool {
        if self.remember(addr, own) {
            self.candidates.push_back(addr);
            return true;
        }
        false
    }

    /// Adds `addr` to the book without queueing a dial (a peer we are
    /// connected to); same refusals as [`AddressBook::learn`].
    pub(super) fn remember(&mut self, addr: SocketAddr, own: Option<SocketAddr>) -> bool {
        if Some(addr) == own
            || addr.port() == 0
            || self.is_banned(addr)
            || self.known.contains_key(&addr)
            || self.known.len() >= MAX_KNOWN
        {
            return false;
        }
        self.known.insert(addr, Entry::default());
        true
    }

    /// The next candidate to dial for which `connected` is false; it is
    /// marked as connecting.
    pub(super) fn next_dial(
        &mut self,
        connected: impl Fn(SocketAddr) -> bool,
    ) -> Option<SocketAddr> {
        while let Some(addr) = self.candidates.pop_front() {
            if self.known.contains_key(&addr)
                && !self.is_banned(addr)
                && !self.connecting.contains(&addr)
                && !connected(addr)
            {
                self.connecting.insert(addr);
                return Some(addr);
            }
        }
        None
    }

    /// A dial to `addr` failed or a connection to it ended: it becomes a
    /// candidate again after `backoff x 2^n` (n = re-dials so far), or is
    /// forgotten after [`MAX_REDIALS`] (a later announce or PEX message may
    /// bring it back). Unknown addresses are ignored.
    pub(super) fn retry_later(&mut self, addr: SocketAddr, now: Instant, backoff: Duration) {
        let banned = self.is_banned(addr);
        let Some(entry) = self.known.get_mut(&addr) else {
            return;
        };
        if entry.redials >= MAX_REDIALS || banned {
            self.forget(addr);
            return;
        }
        if let Some(at) = entry.retry_at.take() {
            self.retries.remove(&(at, addr));
        }
        let at = now + backoff * 2u32.pow(entry.redials);
        entry.redials += 1;
        entry.retry_at = Some(at);
        self.retries.insert((at, addr));
    }

    /// Moves the addresses whose back-off ended by `now` to the candidates.
    pub(super) fn promote_due(&mut self, now: Instant) {
        while let Some(&(at, addr)) = self.retries.first() {
            if at > now {
                break;
            }
            self.retries.pop_first();
            if let Some(entry) = self.known.get_mut(&addr) {
                entry.retry_at = None;
                self.candidates.push_back(addr);
            }
        }
    }

    /// When the earliest pending re-dial becomes a candidate.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.retries.first().map(|&(at, _)| at)
    }

    /// Forgets `addr` entirely (queued dial and pending re-dial too), so a
    /// later announce listing it makes it a candidate again. Bans and
    /// strikes stay.
    pub(super) fn forget(&mut self, addr: SocketAddr) {
        if let Some(entry) = self.known.remove(&addr) {
            if let Some(at) = entry.retry_at {
                self.retries.remove(&(at, addr));
            }
            self.candidates.retain(|&a| a != addr);
        }
    }

    /// Dials in progress.
    pub(super) fn connecting(&self) -> usize {
        self.connecting.len()
    }

    /// A dial to `addr` ended (handshake or failure).
    pub(super) fn dial_ended(&mut self, addr: SocketAddr) {
        self.connecting.remove(&addr);
    }

    /// Whether the IP address of `addr` is banned (whatever the port).
    pub(super) fn is_banned(&self, addr: SocketAddr) -> bool {
        self.banned.contains(&addr.ip())
    }

    /// Puts `ip` on parole; returns whether it was not yet.
    pub(super) fn parole(&mut self, ip: IpAddr) -> bool {
        self.parole.insert(ip)
    }

    /// Whether `ip` is on parole.
    pub(super) fn on_parole(&self, ip: IpAddr) -> bool {
        self.parole.contains(&ip)
    }

    /// Gives `ip` a strike; returns `true` when that bans it (`max_strikes`
    /// reached), which forgets every address of that IP.
    pub(super) fn strike(&mut self, ip: IpAddr, max_strikes: u32) -> bool {
        let strikes = self.strikes.entry(ip).or_insert(0);
        *strikes += 1;
        if *strikes >= max_strikes && self.banned.insert(ip) {
            let gone: Vec<SocketAddr> = self
                .known
                .keys()
                .filter(|a| a.ip() == ip)
                .copied()
                .collect();
            for addr in gone {
                self.forget(addr);
            }
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn drain(book: &mut AddressBook) -> Vec<SocketAddr> {
        std::iter::from_fn(|| book.next_dial(|_| false)).collect()
    }

    #[test]
    fn learned_addresses_are_dialled_once_in_order_never_our_own() {
        let mut book = AddressBook::default();
        for port in [1, 2, 1, 3, 9, 0] {
            book.learn(addr(port), Some(addr(9)));
        }
        let dialled: Vec<_> = std::iter::from_fn(|| book.next_dial(|a| a == addr(2))).collect();
        assert_eq!(dialled, [addr(1), addr(3)]);
        assert_eq!(book.connecting(), 2);
        assert!(!book.learn(addr(1), None), "already known");
        assert_eq!(book.next_dial(|_| false), None);
        book.dial_ended(addr(1));
        book.forget(addr(1));
        assert!(book.learn(addr(1), None));
        assert_eq!(book.next_dial(|_| false), Some(addr(1)), "learned again");
    }

    #[test]
    fn strikes_ban_at_the_limit_and_banned_addresses_are_not_dialled() {
        let mut book = AddressBook::default();
        let other = SocketAddr::from(([10, 0, 0, 2], 5));
        book.learn(addr(5), None);
        book.learn(other, None);
        let ip = addr(5).ip();
        assert!(!book.strike(ip, 2));
        assert!(book.strike(ip, 2));
        assert!(!book.strike(ip, 2), "banned only once");
        assert!(book.is_banned(addr(5)));
        assert!(book.is_banned(addr(6)), "the ban covers every port");
        assert!(!book.is_banned(other));
        assert!(!book.learn(addr(5), None));
        assert!(!book.learn(addr(7), None));
        assert_eq!(book.next_dial(|_| false), Some(other), "only the other IP");
        assert_eq!(book.next_dial(|_| false), None);
    }

    #[test]
    fn a_lost_address_is_redialled_after_a_doubling_backoff_then_forgotten() {
        let t0 = crate::test_clock::origin();
        let backoff = Duration::from_secs(10);
        let mut book = AddressBook::default();
        book.learn(addr(1), None);
        let mut now = t0;
        for n in 0..MAX_REDIALS {
            assert_eq!(drain(&mut book), [addr(1)]);
            book.dial_ended(addr(1));
            book.retry_later(addr(1), now, backoff);
            let early = now + (backoff * 2u32.pow(n)).saturating_sub(Duration::from_millis(1));
            let due = early + Duration::from_millis(1);
            assert_eq!(book.next_retry(), Some(due));
            book.promote_due(early);
            assert!(drain(&mut book).is_empty(), "not before the back-off");
            book.promote_due(due);
            now = due;
        }
        assert_eq!(drain(&mut book), [addr(1)]);
        book.dial_ended(addr(1));
        book.retry_later(addr(1), now, backoff);
        assert_eq!(book.next_retry(), None, "forgotten after {MAX_REDIALS}");
        assert_eq!(book.known.len(), 0);
        assert!(book.learn(addr(1), None), "a later announce brings it back");
    }

    #[test]
    fn forgetting_cancels_a_pending_redial_and_a_queued_dial() {
        let now = crate::test_clock::origin();
        let mut book = AddressBook::default();
        book.remember(addr(1), None);
        book.retry_later(addr(1), now, Duration::from_secs(1));
        book.learn(addr(2), None);
        book.forget(addr(1));
        book.forget(addr(2));
        assert_eq!(book.next_retry(), None);
        book.promote_due(now + Duration::from_secs(60));
        assert!(drain(&mut book).is_empty());
        book.retry_later(addr(3), now, Duration::from_secs(1));
        assert_eq!(
            book.next_retry(),
            None,
            "unknown addresses are not re-dialled"
        );
    }

    #[test]
    fn the_book_is_bounded() {
        let mut book = AddressBook::default();
        let learned = (1..=u16::try_from(MAX_KNOWN).unwrap() + 10)
            .filter(|&p| book.learn(addr(p), None))
            .count();
        assert_eq!(learned, MAX_KNOWN);
        assert_eq!(book.known.len(), MAX_KNOWN);
        book.forget(addr(1));
        assert!(
            book.learn(addr(60_000), None),
            "room again after forgetting"
        );
    }

    /// Peer `n` of the property test, on an IP of its own (bans are per IP).
    fn host(n: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 1, u8::try_from(n).unwrap()], 6881))
    }

    /// One operation on the book, for the property test.
    #[derive(Clone, Debug)]
    enum Op {
        Learn(u16),
        Dial,
        Fail(u16),
        Forget(u16),
        Strike(u16),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let port = 1u16..12;
        prop_oneof![
            port.clone().prop_map(Op::Learn),
            Just(Op::Dial),
            port.clone().prop_map(Op::Fail),
            port.clone().prop_map(Op::Forget),
            port.prop_map(Op::Strike),
            (0u64..700).prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// Whatever happens: no address is dialled while a dial to it is in
        /// progress, banned or forgotten addresses are never dialled, the
        /// book stays bounded, re-dials never come before their back-off,
        /// and the same operations give the same dials.
        #[test]
        fn dials_are_unique_known_and_deterministic(ops in proptest::collection::vec(op(), 0..120)) {
            let t0 = crate::test_clock::origin();
            let run = |ops: &[Op]| {
                let mut book = AddressBook::default();
                let mut now = t0;
                let mut dialled = Vec::new();
                for op in ops {
                    match *op {
                        Op::Learn(p) => { book.learn(host(p), None); }
                        Op::Dial => {
                            let before: BTreeSet<_> = book.connecting.clone();
                            if let Some(a) = book.next_dial(|_| false) {
                                assert!(!before.contains(&a), "dialled twice at once");
                                assert!(!book.is_banned(a));
                                assert!(book.known.contains_key(&a));
                                dialled.push((now, a));
                            }
                        }
                        Op::Fail(p) => {
                            if book.connecting.contains(&host(p)) {
                                book.dial_ended(host(p));
                                book.retry_later(host(p), now, Duration::from_secs(15));
                                if let Some(e) = book.known.get(&host(p)) {
                                    assert!(e.retry_at.unwrap() >= now + Duration::from_secs(15));
                                }
                            }
                        }
                        Op::Forget(p) => book.forget(host(p)),
                        Op::Strike(p) => { book.strike(host(p).ip(), 2); }
                        Op::Advance(s) => {
                            now += Duration::from_secs(s);
                            book.promote_due(now);
                            assert!(book.next_retry().is_none_or(|at| at > now));
                        }
                    }
                    assert!(book.known.len() <= MAX_KNOWN);
                    assert_eq!(book.retries.len(), book.known.values().filter(|e| e.retry_at.is_some()).count());
                }
                dialled
            };
            prop_assert_eq!(run(&ops), run(&ops));
        }
    }
}
