//! The address book: peers learned from the tracker, dials in progress,
//! hash-failure strikes and bans.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};

/// What we know about peer addresses (ordered collections only, so the
/// dialling order is deterministic).
#[derive(Debug, Default)]
pub(super) struct AddressBook {
    /// Addresses learned and not yet dialled, oldest first.
    candidates: VecDeque<SocketAddr>,
    /// Every address ever learned (dialled or not): never queued twice.
    known: BTreeSet<SocketAddr>,
    /// Dials started with [`super::Action::Connect`] and not yet resolved.
    connecting: BTreeSet<SocketAddr>,
    /// Hash-failure strikes per IP address.
    strikes: BTreeMap<IpAddr, u32>,
    /// Banned IP addresses (every port).
    banned: BTreeSet<IpAddr>,
}

impl AddressBook {
    /// Remembers `addr` as a dial candidate unless it is already known,
    /// banned, or `own` (our listen address).
    pub(super) fn learn(&mut self, addr: SocketAddr, own: Option<SocketAddr>) {
        if Some(addr) != own && !self.is_banned(addr) && self.known.insert(addr) {
            self.candidates.push_back(addr);
        }
    }

    /// The next candidate to dial for which `connected` is false; it is
    /// marked as connecting.
    pub(super) fn next_dial(
        &mut self,
        connected: impl Fn(SocketAddr) -> bool,
    ) -> Option<SocketAddr> {
        while let Some(addr) = self.candidates.pop_front() {
            if !self.is_banned(addr) && !self.connecting.contains(&addr) && !connected(addr) {
                self.connecting.insert(addr);
                return Some(addr);
            }
        }
        None
    }

    /// Forgets `addr` as known (a connection to it ended), so a later
    /// announce listing it makes it a candidate again. Bans and strikes stay.
    pub(super) fn forget(&mut self, addr: SocketAddr) {
        self.known.remove(&addr);
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

    /// Gives `ip` a strike; returns `true` when that bans it (`max_strikes` reached).
    pub(super) fn strike(&mut self, ip: IpAddr, max_strikes: u32) -> bool {
        let strikes = self.strikes.entry(ip).or_insert(0);
        *strikes += 1;
        if *strikes >= max_strikes && self.banned.insert(ip) {
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn learned_addresses_are_dialled_once_in_order_never_our_own() {
        let mut book = AddressBook::default();
        for port in [1, 2, 1, 3, 9] {
            book.learn(addr(port), Some(addr(9)));
        }
        let dialled: Vec<_> = std::iter::from_fn(|| book.next_dial(|a| a == addr(2))).collect();
        assert_eq!(dialled, [addr(1), addr(3)]);
        assert_eq!(book.connecting(), 2);
        book.learn(addr(1), None);
        assert_eq!(book.next_dial(|_| false), None, "already known");
        book.dial_ended(addr(1));
        book.forget(addr(1));
        book.learn(addr(1), None);
        assert_eq!(book.next_dial(|_| false), Some(addr(1)), "learned again");
    }

    #[test]
    fn strikes_ban_at_the_limit_and_banned_addresses_are_not_dialled() {
        let mut book = AddressBook::default();
        let ip = addr(5).ip();
        assert!(!book.strike(ip, 2));
        assert!(book.strike(ip, 2));
        assert!(!book.strike(ip, 2), "banned only once");
        assert!(book.is_banned(addr(5)));
        assert!(book.is_banned(addr(6)), "the ban covers every port");
        assert!(!book.is_banned(SocketAddr::from(([10, 0, 0, 2], 5))));
        book.learn(addr(5), None);
        book.learn(addr(7), None);
        assert_eq!(book.next_dial(|_| false), None);
    }
}
