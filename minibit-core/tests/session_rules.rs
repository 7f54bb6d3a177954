//! Rule tests of the [`Session`] router: routing and refusal reasons,
//! eviction of the oldest handshaking connection, caps, dials, removal,
//! pause/resume, rate limits and `poll_timeout`.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use minibit_core::id::{ConnectionId, TorrentId};
use minibit_core::metainfo::InfoHash;
use minibit_core::piece::PieceIndex;
use minibit_core::session::{
    CloseReason, ConnectionState, Refusal, Session, SessionAction, SessionConfig, SessionError,
};
use minibit_core::torrent::{
    Action, AnnounceEvent, DisconnectReason, HandshakeRejection, TorrentConfig,
};
use minibit_core::wire::{Handshake, Message};
use support::{Content, bitfield, peer_id, secs, t0};

/// The info-hash of test torrent `n`.
fn info_hash(n: u8) -> InfoHash {
    InfoHash([n; 20])
}

/// `10.1.a.b:6881`.
fn ip(a: u8, b: u8) -> SocketAddr {
    SocketAddr::from(([10, 1, a, b], 6881))
}

/// Peer `n`'s handshake for torrent `hash`, with the BEP 6 bit.
fn hs(hash: InfoHash, n: u8) -> Handshake {
    Handshake::new(hash, peer_id(n)).with_fast()
}

fn content() -> Content {
    Content::new(1024 * 1024, 64 * 1024, 1)
}

fn piece(n: u32) -> PieceIndex {
    content().layout.piece_index(n).unwrap()
}

fn torrent_config() -> TorrentConfig {
    TorrentConfig {
        rng_seed: Some(3),
        max_peers: 500,
        initial_spread: false,
        ..TorrentConfig::default()
    }
}

/// A session of `n` leeching torrents (info-hashes 1..=n) at `t0`, its
/// start-up actions drained.
fn session(config: SessionConfig, n: u8, now: Instant) -> (Session, Vec<TorrentId>) {
    let mut session = Session::new(config, peer_id(0), now);
    let layout = content().layout;
    let ids = (1..=n)
        .map(|i| {
            session
                .add_torrent(
                    now,
                    torrent_config(),
                    info_hash(i),
                    layout.clone(),
                    bitfield(&layout, &[]),
                )
                .unwrap()
        })
        .collect();
    drain(&mut session);
    (session, ids)
}

fn drain(session: &mut Session) -> Vec<SessionAction> {
    std::iter::from_fn(|| session.poll_action()).collect()
}

/// Accepts a connection from `addr` and routes peer `n`'s handshake for `hash`.
fn join(
    session: &mut Session,
    now: Instant,
    addr: SocketAddr,
    hash: InfoHash,
    n: u8,
) -> Result<ConnectionId, Refusal> {
    let conn = session.handle_incoming(now, addr)?;
    session.handle_handshake(now, conn, &hs(hash, n))?;
    Ok(conn)
}

fn closes(actions: &[SessionAction], reason: CloseReason) -> Vec<ConnectionId> {
    actions
        .iter()
        .filter_map(|a| match a {
            SessionAction::Close { conn, reason: r } if *r == reason => Some(*conn),
            _ => None,
        })
        .collect()
}

fn announces(actions: &[SessionAction], torrent: TorrentId) -> Vec<AnnounceEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            SessionAction::Torrent {
                torrent: t,
                action: Action::Announce { event, .. },
                ..
            } if *t == torrent => Some(*event),
            _ => None,
        })
        .collect()
}

#[test]
fn inbound_connections_are_routed_by_info_hash_or_refused_with_a_reason() {
    let now = t0();
    let (mut s, ids) = session(SessionConfig::default(), 3, now);

    let conn = s.handle_incoming(now, ip(0, 1)).unwrap();
    assert!(matches!(
        s.connection(conn),
        Some(ConnectionState::Handshaking { torrent: None, .. })
    ));
    let routed = s.handle_handshake(now, conn, &hs(info_hash(2), 1)).unwrap();
    assert_eq!(routed.torrent, ids[1]);
    let reply = routed
        .reply
        .expect("an inbound connection gets our handshake");
    assert_eq!(reply.info_hash, info_hash(2));
    assert_eq!(reply.peer_id, peer_id(0));
    assert!(matches!(
        s.connection(conn),
        Some(ConnectionState::Bound { torrent, .. }) if torrent == ids[1]
    ));
    assert_eq!(s.peer_connections(ids[1]).collect::<Vec<_>>(), vec![conn]);
    // The torrent's first message (BEP 6 have-none) is tagged with the connection.
    let actions = drain(&mut s);
    assert!(actions.iter().any(|a| matches!(
        a,
        SessionAction::Torrent { torrent, conn: Some(c), action: Action::Send { message: Message::HaveNone, .. } }
            if *torrent == ids[1] && *c == conn
    )));

    let unknown = s.handle_incoming(now, ip(0, 2)).unwrap();
    assert_eq!(
        s.handle_handshake(now, unknown, &hs(info_hash(9), 2)),
        Err(Refusal::UnknownInfoHash(info_hash(9)))
    );
    assert_eq!(
        s.connection(unknown),
        None,
        "a refused connection is forgotten"
    );

    s.pause_torrent(now, ids[2]).unwrap();
    assert_eq!(
        join(&mut s, now, ip(0, 3), info_hash(3), 3),
        Err(Refusal::Paused(ids[2]))
    );

    assert_eq!(
        join(&mut s, now, ip(0, 4), info_hash(2), 1),
        Err(Refusal::Rejected(HandshakeRejection::DuplicatePeer))
    );

    s.ban_ip(now, ip(0, 5).ip());
    assert_eq!(s.handle_incoming(now, ip(0, 5)), Err(Refusal::Banned));

    assert_eq!(
        s.handle_handshake(now, conn, &hs(info_hash(2), 1)),
        Err(Refusal::NotHandshaking)
    );
    assert!(
        s.connection(conn).is_some(),
        "a bound connection stays bound"
    );
    assert_eq!(s.stats().connections, 1);
}

#[test]
fn three_hundred_stalled_handshakes_evict_the_oldest_and_never_lock_out_a_real_peer() {
    let t = t0();
    let config = SessionConfig {
        max_handshaking: 50,
        max_connections: 200,
        ..SessionConfig::default()
    };
    let (mut s, ids) = session(config, 1, t);
    let stalled: Vec<ConnectionId> = (0..300u16)
        .map(|i| {
            let now = t + Duration::from_millis(u64::from(i));
            s.handle_incoming(now, ip((i / 256) as u8 + 1, i as u8))
                .expect("a stalled handshake never locks out the next connection")
        })
        .collect();
    let evicted = closes(&drain(&mut s), CloseReason::Evicted);
    assert_eq!(
        evicted,
        stalled[..250],
        "the oldest 250 are evicted, in order"
    );
    assert_eq!(s.stats().handshaking, 50);
    for conn in &stalled[250..] {
        assert!(s.connection(*conn).is_some());
    }

    let now = t + Duration::from_millis(300);
    let real = join(&mut s, now, ip(9, 9), info_hash(1), 9).unwrap();
    assert!(matches!(
        s.connection(real),
        Some(ConnectionState::Bound { torrent, .. }) if torrent == ids[0]
    ));
    assert_eq!(
        s.stats().handshaking,
        49,
        "one stalled connection made room"
    );
}

#[test]
fn the_connection_cap_refuses_only_when_no_handshaking_connection_can_be_evicted() {
    let now = t0();
    let config = SessionConfig {
        max_connections: 3,
        ..SessionConfig::default()
    };
    let (mut s, _) = session(config, 2, now);
    join(&mut s, now, ip(0, 1), info_hash(1), 1).unwrap();
    join(&mut s, now, ip(0, 2), info_hash(2), 2).unwrap();
    let stalled = s.handle_incoming(now, ip(0, 3)).unwrap();
    let newer = s.handle_incoming(now, ip(0, 4)).unwrap();
    assert_eq!(closes(&drain(&mut s), CloseReason::Evicted), vec![stalled]);
    s.handle_handshake(now, newer, &hs(info_hash(1), 4))
        .unwrap();
    assert_eq!(
        s.handle_incoming(now, ip(0, 5)),
        Err(Refusal::ConnectionLimit)
    );
    assert_eq!(s.stats().connections, 3);
}

#[test]
fn a_handshake_not_done_by_the_deadline_is_closed() {
    let now = t0();
    let config = SessionConfig {
        handshake_timeout: secs(5),
        ..SessionConfig::default()
    };
    let (mut s, _) = session(config, 1, now);
    let later = now + secs(1);
    let slow = s.handle_incoming(later, ip(0, 1)).unwrap();
    assert_eq!(s.poll_timeout(), Some(later + secs(5)));
    s.handle_timeout(later + secs(4));
    assert!(s.connection(slow).is_some());
    s.handle_timeout(later + secs(5));
    assert_eq!(
        closes(&drain(&mut s), CloseReason::HandshakeTimeout),
        vec![slow]
    );
    assert_eq!(s.connection(slow), None);
    assert_eq!(
        s.handle_handshake(later + secs(5), slow, &hs(info_hash(1), 1)),
        Err(Refusal::UnknownConnection)
    );
}

#[test]
fn dials_beyond_the_global_dial_cap_wait_in_a_queue_and_go_out_as_slots_free() {
    let now = t0();
    let config = SessionConfig {
        max_dials: 3,
        ..SessionConfig::default()
    };
    let (mut s, ids) = session(config, 2, now);
    let peers: Vec<SocketAddr> = (1..=5).map(|i| ip(2, i)).collect();
    s.handle_announce_response(now, ids[0], secs(1800), None, &peers);
    let dials: Vec<(ConnectionId, SocketAddr)> = drain(&mut s)
        .into_iter()
        .filter_map(|a| match a {
            SessionAction::Torrent {
                conn: Some(conn),
                action: Action::Connect { addr },
                ..
            } => Some((conn, addr)),
            _ => None,
        })
        .collect();
    assert_eq!(dials.len(), 3);
    assert_eq!(s.stats().dialing, 3);
    assert_eq!(s.stats().queued_dials, 2);

    // A failed dial frees a slot for a queued one.
    s.handle_connection_closed(now, dials[0].0);
    let next = drain(&mut s);
    assert_eq!(
        next.iter()
            .filter(|a| matches!(
                a,
                SessionAction::Torrent {
                    action: Action::Connect { .. },
                    ..
                }
            ))
            .count(),
        1
    );
    assert_eq!(s.stats().dialing, 3);

    // A dial that connects sends the torrent's handshake and binds on theirs.
    let (conn, _) = dials[1];
    let ours = s.handle_connected(now, conn).unwrap();
    assert_eq!(ours.info_hash, info_hash(1));
    assert!(matches!(
        s.connection(conn),
        Some(ConnectionState::Handshaking { torrent: Some(t), .. }) if t == ids[0]
    ));
    let routed = s.handle_handshake(now, conn, &hs(info_hash(1), 7)).unwrap();
    assert_eq!(routed.torrent, ids[0]);
    assert_eq!(routed.reply, None, "we sent ours when we connected");

    // A banned address is never dialled.
    s.ban_ip(now, ip(3, 1).ip());
    s.handle_announce_response(now, ids[1], secs(1800), None, &[ip(3, 1)]);
    assert!(!drain(&mut s).iter().any(|a| matches!(
        a,
        SessionAction::Torrent { action: Action::Connect { addr }, .. } if *addr == ip(3, 1)
    )));
}

#[test]
fn removing_a_torrent_closes_its_connections_and_frees_their_slots() {
    let now = t0();
    let (mut s, ids) = session(SessionConfig::default(), 2, now);
    let a1 = join(&mut s, now, ip(0, 1), info_hash(1), 1).unwrap();
    let a2 = join(&mut s, now, ip(0, 2), info_hash(1), 2).unwrap();
    let b1 = join(&mut s, now, ip(0, 3), info_hash(2), 3).unwrap();
    s.handle_announce_response(now, ids[0], secs(1800), None, &[ip(2, 1)]);
    let dial = drain(&mut s)
        .into_iter()
        .find_map(|a| match a {
            SessionAction::Torrent {
                conn: Some(conn),
                action: Action::Connect { .. },
                ..
            } => Some(conn),
            _ => None,
        })
        .unwrap();
    assert_eq!(s.stats().connections, 4);

    s.remove_torrent(now, ids[0]).unwrap();
    let actions = drain(&mut s);
    assert_eq!(announces(&actions, ids[0]), vec![AnnounceEvent::Stopped]);
    let disconnected: Vec<ConnectionId> = actions
        .iter()
        .filter_map(|a| match a {
            SessionAction::Torrent {
                conn: Some(conn),
                action:
                    Action::Disconnect {
                        reason: DisconnectReason::Shutdown,
                        ..
                    },
                ..
            } => Some(*conn),
            _ => None,
        })
        .collect();
    assert_eq!(disconnected.len(), 2);
    assert!(disconnected.contains(&a1) && disconnected.contains(&a2));
    assert_eq!(closes(&actions, CloseReason::TorrentStopped), vec![dial]);
    assert_eq!(
        s.stats().connections,
        1,
        "only the other torrent's peer is left"
    );
    assert!(s.connection(b1).is_some());
    assert_eq!(s.torrent_id(&info_hash(1)), None);
    assert!(s.torrent(ids[0]).is_none());
    // Late reports about the removed torrent's connections are harmless.
    s.handle_connection_closed(now, a1);
    s.handle_piece_verified(now, ids[0], piece(0), true);
    assert_eq!(s.stats().connections, 1);
    assert_eq!(
        s.remove_torrent(now, ids[0]),
        Err(minibit_core::session::SessionError::UnknownTorrent(ids[0]))
    );
}

#[test]
fn a_paused_torrent_announces_stopped_refuses_peers_and_resumes_with_its_pieces() {
    let now = t0();
    let mut s = Session::new(SessionConfig::default(), peer_id(0), now);
    let layout = content().layout;
    let ids = [s
        .add_torrent(
            now,
            torrent_config(),
            info_hash(1),
            layout.clone(),
            bitfield(&layout, &[2]),
        )
        .unwrap()];
    let conn = join(&mut s, now, ip(0, 1), info_hash(1), 1).unwrap();
    drain(&mut s);
    s.pause_torrent(now, ids[0]).unwrap();
    assert_eq!(s.is_paused(ids[0]), Some(true));
    let actions = drain(&mut s);
    assert_eq!(announces(&actions, ids[0]), vec![AnnounceEvent::Stopped]);
    s.handle_connection_closed(now, conn);
    assert_eq!(s.stats().connections, 0, "the closed peer freed its slot");
    assert_eq!(s.poll_timeout(), None, "a paused torrent has no timer");
    assert_eq!(
        join(&mut s, now, ip(0, 2), info_hash(1), 2),
        Err(Refusal::Paused(ids[0]))
    );

    let later = now + secs(3);
    s.resume_torrent(later, ids[0]).unwrap();
    assert_eq!(
        announces(&drain(&mut s), ids[0]),
        vec![AnnounceEvent::Started]
    );
    assert!(join(&mut s, later, ip(0, 2), info_hash(1), 2).is_ok());
    let torrent = s.torrent(ids[0]).unwrap();
    assert!(
        torrent.have().has(piece(2)) && torrent.have().count() == 1,
        "pieces verified before the pause are kept"
    );
}

#[test]
fn poll_timeout_is_the_earliest_deadline_over_the_torrents() {
    let t = t0();
    let mut s = Session::new(SessionConfig::default(), peer_id(0), t);
    let layout = content().layout;
    let ids: Vec<TorrentId> = (1..=4u8)
        .map(|i| {
            let at = t + secs(u64::from(5 - i));
            s.add_torrent(
                at,
                torrent_config(),
                info_hash(i),
                layout.clone(),
                bitfield(&layout, &[]),
            )
            .unwrap()
        })
        .collect();
    let mut now = t + secs(4);
    for _ in 0..50 {
        let earliest = ids
            .iter()
            .filter_map(|&id| s.torrent(id).unwrap().poll_timeout())
            .min();
        assert_eq!(s.poll_timeout(), earliest);
        now = s.poll_timeout().unwrap().max(now);
        s.handle_timeout(now);
        for (i, &id) in ids.iter().enumerate() {
            // Answer announces so the schedules diverge.
            if announces(&drain(&mut s), id).contains(&AnnounceEvent::Started) {
                s.handle_announce_response(now, id, secs(60 * (i as u64 + 1)), None, &[]);
            }
        }
    }
    assert!(now > t + secs(60), "time went on: {:?}", now - t);
}

/// Drives a seed serving one peer that always keeps requests queued, for
/// `span` of virtual time under the global upload `limit` and the
/// torrent's own `torrent_limit`; returns the payload bytes sent.
fn served_under_upload_limit(limit: u64, torrent_limit: u64, span: Duration) -> u64 {
    let t = t0();
    let config = SessionConfig {
        upload_limit: limit,
        ..SessionConfig::default()
    };
    let content = content();
    let layout = content.layout.clone();
    let all: Vec<u32> = (0..layout.piece_count()).collect();
    let mut s = Session::new(config, peer_id(0), t);
    let id = s
        .add_torrent(
            t,
            torrent_config(),
            info_hash(1),
            layout.clone(),
            bitfield(&layout, &all),
        )
        .unwrap();
    s.set_torrent_rate_limits(t, id, torrent_limit, 0).unwrap();
    assert_eq!(s.torrent_rate_limits(id), Some((torrent_limit, 0)));
    let conn = join(&mut s, t, ip(0, 1), info_hash(1), 1).unwrap();
    s.handle_message(t, conn, Message::Interested);
    let blocks: Vec<_> = layout
        .pieces()
        .flat_map(|p| layout.blocks(p).collect::<Vec<_>>())
        .collect();
    let mut next = 0;
    let mut ask = |s: &mut Session, now| {
        let block = blocks[next % blocks.len()];
        next += 1;
        s.handle_message(now, conn, support::request(block));
    };
    for _ in 0..64 {
        ask(&mut s, t);
    }
    let mut now = t;
    let mut sent = 0;
    while now <= t + span {
        let actions = drain(&mut s);
        for action in actions {
            match action {
                SessionAction::Torrent {
                    torrent,
                    conn: Some(c),
                    action: Action::ReadBlock { block, .. },
                } => s.handle_block_read(now, torrent, c, block, content.block(block)),
                SessionAction::Torrent {
                    action:
                        Action::Send {
                            message: Message::Piece { data, .. },
                            ..
                        },
                    ..
                } => {
                    sent += data.len() as u64;
                    ask(&mut s, now);
                }
                SessionAction::Torrent {
                    torrent,
                    action: Action::Announce { .. },
                    ..
                } => s.handle_announce_response(now, torrent, secs(1800), None, &[]),
                _ => {}
            }
        }
        assert_eq!(s.torrent(id).unwrap().stats().peers, 1, "the peer stays");
        now = s.poll_timeout().expect("a timer is set");
        s.handle_timeout(now);
    }
    sent
}

#[test]
fn the_upload_limit_holds_the_payload_rate_over_20_s_within_ten_percent() {
    let span = secs(20);
    // (global, the torrent's own): the lower one holds.
    for (global, own) in [
        (256 * 1024, 0),
        (1024 * 1024, 0),
        (0, 256 * 1024),
        (256 * 1024, 1024 * 1024),
        (1024 * 1024, 256 * 1024),
    ] {
        let limit = [global, own].into_iter().filter(|&l| l > 0).min().unwrap();
        let sent = served_under_upload_limit(global, own, span);
        let ratio = sent as f64 / (limit as f64 * 20.0);
        eprintln!("upload {global}/{own} B/s: {sent} bytes in 20 s, {ratio:.4}");
        assert!(
            (0.9..=1.1).contains(&ratio),
            "{limit} B/s: {sent} bytes in 20 s, {ratio:.3} of the limit"
        );
    }
}

/// Downloads from one peer that answers every request a millisecond
/// later, for 20 s of virtual time under the global download `limit` and
/// the torrent's own `torrent_limit`; returns the payload bytes received
/// and how often reading was paused and resumed.
fn received_under_download_limit(limit: u64, torrent_limit: u64) -> (u64, usize, usize) {
    let t = t0();
    let config = SessionConfig {
        download_limit: limit,
        ..SessionConfig::default()
    };
    let content = Content::new(8 * 1024 * 1024, 256 * 1024, 2);
    let layout = content.layout.clone();
    let mut s = Session::new(config, peer_id(0), t);
    let id = s
        .add_torrent(
            t,
            torrent_config(),
            info_hash(1),
            layout.clone(),
            bitfield(&layout, &[]),
        )
        .unwrap();
    s.set_torrent_rate_limits(t, id, 0, torrent_limit).unwrap();
    let conn = join(&mut s, t, ip(0, 1), info_hash(1), 1).unwrap();
    s.handle_message(t, conn, Message::HaveAll);
    s.handle_message(t, conn, Message::Unchoke);
    // The remote peer answers requests one frame per millisecond (16 MiB/s)
    // while we read.
    let mut requested = std::collections::VecDeque::new();
    let mut paused = false;
    let (mut pauses, mut resumes) = (0, 0);
    let mut received = 0u64;
    let mut now = t;
    while now <= t + secs(20) {
        for action in drain(&mut s) {
            match action {
                SessionAction::Torrent {
                    action:
                        Action::Send {
                            message:
                                Message::Request {
                                    piece,
                                    offset,
                                    length,
                                },
                            ..
                        },
                    ..
                } => requested.push_back(
                    layout
                        .block_ref(piece, offset, length)
                        .expect("requests stay inside the torrent"),
                ),
                SessionAction::Torrent {
                    torrent,
                    action: Action::VerifyPiece { piece },
                    ..
                } => s.handle_piece_verified(now, torrent, piece, true),
                SessionAction::PauseReading => {
                    assert!(!paused, "two pauses in a row");
                    paused = true;
                    pauses += 1;
                }
                SessionAction::ResumeReading => {
                    assert!(paused, "resume without a pause");
                    paused = false;
                    resumes += 1;
                }
                _ => {}
            }
        }
        let due = s.poll_timeout();
        if paused {
            now = due.expect("a paused reader is woken");
            s.handle_timeout(now);
        } else if let Some(block) = requested.pop_front() {
            now += Duration::from_millis(1);
            received += u64::from(block.length);
            s.handle_message(
                now,
                conn,
                Message::Piece {
                    piece: block.piece.get(),
                    offset: block.offset,
                    data: content.block(block),
                },
            );
            if due.is_some_and(|due| due <= now) {
                s.handle_timeout(now);
            }
        } else {
            now = due.expect("a timer is set");
            s.handle_timeout(now);
        }
    }
    (received, pauses, resumes)
}

#[test]
fn the_download_limit_pauses_and_resumes_reading_and_holds_the_rate_within_ten_percent() {
    let limit = 256 * 1024;
    let (received, pauses, resumes) = received_under_download_limit(limit, 0);
    assert!(
        pauses > 10 && resumes + 1 >= pauses,
        "{pauses} pauses, {resumes} resumes"
    );
    let ratio = received as f64 / (limit as f64 * 20.0);
    eprintln!("download {limit} B/s: {received} bytes in 20 s, {ratio:.4}, {pauses} pauses");
    assert!(
        (0.9..=1.1).contains(&ratio),
        "{received} bytes in 20 s, {ratio:.3} of the limit"
    );
}

/// Four seeding torrents with two interested peers each, run for 60 s of
/// virtual time; returns the most peers unchoked at once over all torrents
/// and, per torrent, whether it ever unchoked anyone.
fn unchoking_with_global_slots(slots: Option<usize>) -> (usize, Vec<bool>) {
    let t = t0();
    let config = SessionConfig {
        unchoke_slots: slots,
        ..SessionConfig::default()
    };
    let layout = content().layout;
    let all: Vec<u32> = (0..layout.piece_count()).collect();
    let mut s = Session::new(config, peer_id(0), t);
    let ids: Vec<TorrentId> = (1..=4u8)
        .map(|i| {
            s.add_torrent(
                t,
                torrent_config(),
                info_hash(i),
                layout.clone(),
                bitfield(&layout, &all),
            )
            .unwrap()
        })
        .collect();
    let mut most = 0;
    let mut served = vec![false; ids.len()];
    let mut observe = |s: &Session| {
        let unchoked: Vec<usize> = ids
            .iter()
            .map(|&id| s.torrent(id).unwrap().unchoked_peers())
            .collect();
        most = most.max(unchoked.iter().sum());
        for (served, n) in served.iter_mut().zip(&unchoked) {
            *served |= *n > 0;
        }
    };
    for (i, id) in (1..=4u8).enumerate() {
        for p in 0..2u8 {
            let n = 10 * id + p;
            let conn = join(&mut s, t, ip(id, p), info_hash(id), n).unwrap();
            s.handle_message(t, conn, Message::Interested);
            observe(&s);
        }
        assert_eq!(s.torrent(ids[i]).unwrap().interested_peers(), 2);
    }
    let mut now = t;
    while now < t + secs(60) {
        for action in drain(&mut s) {
            if let SessionAction::Torrent {
                torrent,
                action: Action::Announce { .. },
                ..
            } = action
            {
                s.handle_announce_response(now, torrent, secs(1800), None, &[]);
            }
        }
        observe(&s);
        now = s.poll_timeout().expect("timers are set");
        s.handle_timeout(now);
        observe(&s);
    }
    (most, served)
}

#[test]
fn a_global_number_of_unchoke_slots_is_never_exceeded_and_every_torrent_gets_a_turn() {
    let (most, served) = unchoking_with_global_slots(Some(3));
    assert!(
        most <= 3,
        "{most} peers unchoked at once with 3 global slots"
    );
    assert!(most > 0);
    assert_eq!(
        served,
        vec![true; 4],
        "each torrent unchoked someone in turn"
    );
    // Without the global limit each torrent unchokes both its peers.
    let (most, _) = unchoking_with_global_slots(None);
    assert_eq!(most, 8);
}

#[test]
fn a_torrents_own_download_limit_holds_its_requests_and_the_rate_within_ten_percent() {
    for (global, own) in [(0, 256 * 1024), (1024 * 1024, 256 * 1024)] {
        let (received, pauses, _) = received_under_download_limit(global, own);
        let ratio = received as f64 / (own as f64 * 20.0);
        eprintln!("download {global}/{own} B/s: {received} bytes in 20 s, {ratio:.4}");
        assert!(
            (0.9..=1.1).contains(&ratio),
            "{global}/{own} B/s: {received} bytes in 20 s, {ratio:.3} of the torrent's limit"
        );
        if global == 0 {
            assert_eq!(pauses, 0, "no global limit: reading never pauses");
        }
    }
}

#[test]
fn rate_limits_of_an_unknown_torrent_are_refused() {
    let (mut s, ids) = session(SessionConfig::default(), 1, t0());
    s.remove_torrent(t0(), ids[0]).unwrap();
    assert_eq!(
        s.set_torrent_rate_limits(t0(), ids[0], 1, 1),
        Err(SessionError::UnknownTorrent(ids[0]))
    );
    assert_eq!(s.torrent_rate_limits(ids[0]), None);
}
