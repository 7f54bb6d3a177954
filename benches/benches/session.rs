//! Session router cost with 1000 torrents of 1000 pieces: adding (and
//! removing) one more torrent, routing a frame to a bound connection, and
//! a timeout round.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use minibit_core::bitfield::Bitfield;
use minibit_core::metainfo::InfoHash;
use minibit_core::piece::Layout;
use minibit_core::session::{Session, SessionConfig};
use minibit_core::torrent::TorrentConfig;
use minibit_core::wire::{Handshake, Message, PeerId};

const TORRENTS: u32 = 1000;

fn info_hash(n: u32) -> InfoHash {
    let mut hash = [0; 20];
    hash[..4].copy_from_slice(&n.to_be_bytes());
    InfoHash(hash)
}

fn layout() -> Layout {
    // 1000 pieces of 256 KiB.
    Layout::new(256 * 1024, &[1000 * 256 * 1024]).unwrap()
}

/// A session with `TORRENTS` leeching torrents, start-up actions drained.
fn session(now: Instant) -> Session {
    let mut session = Session::new(SessionConfig::default(), PeerId([1; 20]), now);
    let layout = layout();
    for n in 0..TORRENTS {
        let config = TorrentConfig {
            rng_seed: Some(u64::from(n)),
            ..TorrentConfig::default()
        };
        session
            .add_torrent(
                now,
                config,
                info_hash(n),
                layout.clone(),
                Bitfield::new(1000),
            )
            .unwrap();
    }
    while session.poll_action().is_some() {}
    session
}

fn bench(c: &mut Criterion) {
    let t0 = Instant::now();
    let mut group = c.benchmark_group("session_1000_torrents");

    group.bench_function("add_and_remove_one_torrent", |b| {
        let mut s = session(t0);
        let layout = layout();
        b.iter(|| {
            let id = s
                .add_torrent(
                    t0,
                    TorrentConfig::default(),
                    info_hash(TORRENTS),
                    layout.clone(),
                    Bitfield::new(1000),
                )
                .unwrap();
            s.remove_torrent(t0, id).unwrap();
            while s.poll_action().is_some() {}
        });
    });

    group.bench_function("route_a_have_to_a_bound_connection", |b| {
        let mut s = session(t0);
        let addr = SocketAddr::from(([127, 0, 0, 2], 6881));
        let conn = s.handle_incoming(t0, addr).unwrap();
        let theirs = Handshake::new(info_hash(TORRENTS / 2), PeerId([2; 20])).with_fast();
        s.handle_handshake(t0, conn, &theirs).unwrap();
        s.handle_message(t0, conn, Message::HaveNone);
        while s.poll_action().is_some() {}
        let mut piece = 0;
        b.iter(|| {
            s.handle_message(t0, conn, Message::Have { piece });
            piece = (piece + 1) % 1000;
            while s.poll_action().is_some() {}
        });
    });

    group.bench_function("timeout_round", |b| {
        let mut s = session(t0);
        let mut now = t0;
        b.iter(|| {
            now = s
                .poll_timeout()
                .unwrap_or(now + Duration::from_secs(1))
                .max(now);
            s.handle_timeout(now);
            while s.poll_action().is_some() {}
            while s.poll_event().is_some() {}
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
