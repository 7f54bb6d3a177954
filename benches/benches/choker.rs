//! Tit-for-tat choker cost: one rechoke with 50 and 500 connected peers.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use minibit_core::choker::{ChokeChanges, Choker, ChokerConfig, PeerStats, RECHOKE_INTERVAL};
use minibit_core::torrent::PeerKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn peers(count: usize, t0: Instant) -> Vec<PeerStats> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    (0..count)
        .map(|i| PeerStats {
            peer: PeerKey(i),
            interested: rng.random_bool(0.8),
            choked: true,
            download_rate: rng.random_range(0.0..1e6),
            upload_rate: rng.random_range(0.0..1e6),
            downloaded: rng.random_range(0..1_000_000),
            wants_from_us: rng.random_range(0..64),
            connected_at: t0 + Duration::from_secs(rng.random_range(0..600)),
            can_download_since: rng.random_bool(0.5).then_some(t0),
            last_block_at: Some(t0 + Duration::from_secs(rng.random_range(0..600))),
        })
        .collect()
}

fn apply(peers: &mut [PeerStats], changes: &ChokeChanges) {
    for p in peers {
        if changes.unchoke.contains(&p.peer) {
            p.choked = false;
        }
        if changes.choke.contains(&p.peer) {
            p.choked = true;
        }
    }
}

fn rechoke(c: &mut Criterion) {
    let mut group = c.benchmark_group("rechoke");
    for count in [50usize, 500] {
        for seeding in [false, true] {
            let t0 = Instant::now();
            let mode = if seeding { "seeding" } else { "leeching" };
            group.bench_function(BenchmarkId::new(mode, format!("{count}_peers")), |b| {
                let mut stats = peers(count, t0);
                let mut choker = Choker::new(ChokerConfig::default(), 7);
                let mut now = t0 + Duration::from_secs(600);
                b.iter(|| {
                    now += RECHOKE_INTERVAL;
                    let changes = choker.rechoke(now, seeding, &stats);
                    apply(&mut stats, &changes);
                    changes
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, rechoke);
criterion_main!(benches);
