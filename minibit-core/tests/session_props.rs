//! Property tests of the [`Session`] router: random sequences of
//! connections, handshakes, dials, closes, bans, pauses, removals and
//! time, carried out by a model driver; after every step the connection
//! table must agree with the torrents.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Instant;

use minibit_core::id::{ConnectionId, TorrentId};
use minibit_core::metainfo::InfoHash;
use minibit_core::session::{ConnectionState, Session, SessionAction, SessionConfig};
use minibit_core::torrent::{Action, Torrent, TorrentConfig};
use minibit_core::wire::Handshake;
use proptest::prelude::*;
use support::{Content, bitfield, peer_id, secs, t0};

const TORRENTS: u8 = 3;

#[derive(Clone, Debug)]
enum Op {
    /// An inbound connection from IP `10.2.0.ip`.
    Incoming {
        ip: u8,
    },
    /// The handshake of the `conn`-th known connection, for torrent
    /// `torrent` (`TORRENTS` = unknown), from peer `peer`.
    Handshake {
        conn: usize,
        torrent: u8,
        peer: u8,
    },
    /// The `conn`-th known dial connected.
    Connected {
        conn: usize,
    },
    /// The `conn`-th known connection closed.
    Close {
        conn: usize,
    },
    /// Peers for torrent `torrent` to dial: `10.3.0.first ..`.
    Peers {
        torrent: u8,
        first: u8,
        count: u8,
    },
    /// Time passes, then timers fire.
    Wait {
        seconds: u8,
    },
    Ban {
        ip: u8,
    },
    Pause {
        torrent: u8,
    },
    Resume {
        torrent: u8,
    },
    Remove {
        torrent: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..12u8).prop_map(|ip| Op::Incoming { ip }),
        4 => (0..16usize, 0..=TORRENTS, 0..12u8)
            .prop_map(|(conn, torrent, peer)| Op::Handshake { conn, torrent, peer }),
        2 => (0..16usize).prop_map(|conn| Op::Connected { conn }),
        3 => (0..16usize).prop_map(|conn| Op::Close { conn }),
        2 => (0..TORRENTS, 0..12u8, 1..6u8)
            .prop_map(|(torrent, first, count)| Op::Peers { torrent, first, count }),
        2 => (0..8u8).prop_map(|seconds| Op::Wait { seconds }),
        1 => (0..12u8).prop_map(|ip| Op::Ban { ip }),
        1 => (0..TORRENTS).prop_map(|torrent| Op::Pause { torrent }),
        1 => (0..TORRENTS).prop_map(|torrent| Op::Resume { torrent }),
        1 => (0..TORRENTS).prop_map(|torrent| Op::Remove { torrent }),
    ]
}

fn info_hash(n: u8) -> InfoHash {
    InfoHash([n + 1; 20])
}

/// The model driver: every connection it was told of, and the session.
struct Driver {
    session: Session,
    config: SessionConfig,
    torrents: Vec<TorrentId>,
    /// Connections the driver holds a socket for, in the order learned.
    known: Vec<ConnectionId>,
    /// Every id ever handed out (must never repeat).
    ever: BTreeSet<ConnectionId>,
    removed: BTreeSet<TorrentId>,
    now: Instant,
}

impl Driver {
    fn new() -> Self {
        let now = t0();
        let config = SessionConfig {
            max_connections: 8,
            max_handshaking: 3,
            max_dials: 2,
            handshake_timeout: secs(5),
            ..SessionConfig::default()
        };
        let mut session = Session::new(config.clone(), peer_id(0), now);
        let layout = Content::new(256 * 1024, 64 * 1024, 1).layout;
        let torrents = (0..TORRENTS)
            .map(|i| {
                let torrent_config = TorrentConfig {
                    rng_seed: Some(u64::from(i)),
                    max_peers: 4,
                    max_dials: 2,
                    ..TorrentConfig::default()
                };
                session
                    .add_torrent(
                        now,
                        torrent_config,
                        info_hash(i),
                        layout.clone(),
                        bitfield(&layout, &[]),
                    )
                    .unwrap()
            })
            .collect();
        let mut driver = Self {
            session,
            config,
            torrents,
            known: Vec::new(),
            ever: BTreeSet::new(),
            removed: BTreeSet::new(),
            now,
        };
        driver.pump();
        driver
    }

    fn learn(&mut self, conn: ConnectionId) {
        assert!(self.ever.insert(conn), "{conn} handed out twice");
        self.known.push(conn);
    }

    fn pick(&self, index: usize) -> Option<ConnectionId> {
        (!self.known.is_empty()).then(|| self.known[index % self.known.len()])
    }

    /// Carries out actions as a driver would: dials are recorded, closes
    /// and disconnects close the socket and are reported, announces fail.
    fn pump(&mut self) {
        while let Some(action) = self.session.poll_action() {
            match action {
                SessionAction::Torrent {
                    conn: Some(conn),
                    action: Action::Connect { .. },
                    ..
                } => self.learn(conn),
                SessionAction::Torrent {
                    conn: Some(conn),
                    action: Action::Disconnect { .. },
                    ..
                }
                | SessionAction::Close { conn, .. } => {
                    self.known.retain(|&c| c != conn);
                    self.session.handle_connection_closed(self.now, conn);
                }
                SessionAction::Torrent {
                    torrent,
                    action: Action::Announce { .. },
                    ..
                } => self.session.handle_announce_failed(self.now, torrent),
                _ => {}
            }
        }
        self.known
            .retain(|&conn| self.session.connection(conn).is_some());
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match *op {
            Op::Incoming { ip } => {
                let addr = SocketAddr::from(([10, 2, 0, ip], 6881));
                if let Ok(conn) = self.session.handle_incoming(now, addr) {
                    self.learn(conn);
                }
            }
            Op::Handshake {
                conn,
                torrent,
                peer,
            } => {
                if let Some(conn) = self.pick(conn) {
                    let theirs = Handshake::new(info_hash(torrent), peer_id(peer + 1)).with_fast();
                    let _ = self.session.handle_handshake(now, conn, &theirs);
                }
            }
            Op::Connected { conn } => {
                if let Some(conn) = self.pick(conn) {
                    let _ = self.session.handle_connected(now, conn);
                }
            }
            Op::Close { conn } => {
                if let Some(conn) = self.pick(conn) {
                    self.known.retain(|&c| c != conn);
                    self.session.handle_connection_closed(now, conn);
                }
            }
            Op::Peers {
                torrent,
                first,
                count,
            } => {
                let peers: Vec<SocketAddr> = (0..count)
                    .map(|i| SocketAddr::from(([10, 3, 0, first.wrapping_add(i)], 6881)))
                    .collect();
                let id = self.torrents[usize::from(torrent)];
                self.session.handle_peers(now, id, &peers);
            }
            Op::Wait { seconds } => {
                self.now += secs(u64::from(seconds));
                self.session.handle_timeout(self.now);
            }
            Op::Ban { ip } => self
                .session
                .ban_ip(now, SocketAddr::from(([10, 2, 0, ip], 0)).ip()),
            Op::Pause { torrent } => {
                let _ = self
                    .session
                    .pause_torrent(now, self.torrents[usize::from(torrent)]);
            }
            Op::Resume { torrent } => {
                let _ = self
                    .session
                    .resume_torrent(now, self.torrents[usize::from(torrent)]);
            }
            Op::Remove { torrent } => {
                let id = self.torrents[usize::from(torrent)];
                if self.session.remove_torrent(now, id).is_ok() {
                    self.removed.insert(id);
                }
            }
        }
        self.pump();
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let s = &self.session;
        let stats = s.stats();
        prop_assert!(stats.connections <= self.config.max_connections);
        prop_assert!(stats.handshaking <= self.config.max_handshaking);
        prop_assert!(stats.dialing <= self.config.max_dials);
        // Every connection in the table is one the driver knows.
        let live: Vec<(ConnectionId, ConnectionState)> = self
            .known
            .iter()
            .filter_map(|&c| s.connection(c).map(|state| (c, state)))
            .collect();
        prop_assert_eq!(live.len(), stats.connections);
        prop_assert_eq!(
            live.iter()
                .filter(|(_, st)| matches!(st, ConnectionState::Handshaking { .. }))
                .count(),
            stats.handshaking
        );
        let mut bound_total = 0;
        let mut seen = BTreeSet::new();
        for &id in &self.torrents {
            let conns: Vec<ConnectionId> = s.peer_connections(id).collect();
            if self.removed.contains(&id) {
                prop_assert!(s.torrent(id).is_none());
                prop_assert!(conns.is_empty());
                prop_assert!(
                    live.iter().all(|(_, st)| st.torrent() != Some(id)),
                    "a connection of a removed torrent is left"
                );
                continue;
            }
            for &conn in &conns {
                prop_assert!(seen.insert(conn), "{} bound to two torrents", conn);
                let bound_to_it = matches!(
                    s.connection(conn),
                    Some(ConnectionState::Bound { torrent, .. }) if torrent == id
                );
                prop_assert!(
                    bound_to_it,
                    "{} listed by a torrent it is not bound to",
                    conn
                );
            }
            let bound_here = live
                .iter()
                .filter(|(_, st)| matches!(st, ConnectionState::Bound { torrent, .. } if *torrent == id))
                .count();
            prop_assert_eq!(bound_here, conns.len());
            prop_assert_eq!(s.torrent(id).unwrap().stats().peers, conns.len());
            bound_total += conns.len();
        }
        let bound_live = live
            .iter()
            .filter(|(_, st)| matches!(st, ConnectionState::Bound { .. }))
            .count();
        prop_assert_eq!(bound_live, bound_total, "global count = sum over torrents");
        // poll_timeout is the earliest deadline of the torrents and handshakes.
        let torrents = self
            .torrents
            .iter()
            .filter_map(|&id| s.torrent(id).and_then(Torrent::poll_timeout))
            .min();
        let timeout = s.poll_timeout();
        if stats.handshaking == 0 {
            prop_assert_eq!(timeout, torrents);
        } else {
            prop_assert!(timeout.is_some());
            let earliest_first = torrents.is_none_or(|t| timeout.unwrap() <= t);
            prop_assert!(earliest_first, "a torrent deadline before poll_timeout");
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_connection_table_always_agrees_with_the_torrents(ops in prop::collection::vec(op(), 1..80)) {
        let mut driver = Driver::new();
        driver.check()?;
        for op in &ops {
            driver.apply(op);
            driver.check()?;
        }
    }
}
