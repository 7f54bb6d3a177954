//! Rarest-first picker cost: one pick (a whole 16-block piece for one peer)
//! and one HAVE, at 4k, 64k and 1M pieces with 50 and 500 peers holding
//! random half bitfields. Picks go to the peers in turn; every
//! `PICKS_PER_RESET` picks the requests are dropped again (untimed), so
//! about that many pieces are in progress. Targets: pick <= 100 ns, HAVE
//! <= 50 ns, flat in the piece count.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use minibit_core::bitfield::Bitfield;
use minibit_core::picker::{PeerHas, PickerStrategy, PiecePicker};
use minibit_core::piece::{BlockRef, Layout, PieceIndex};
use minibit_core::torrent::PeerKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// 256 KiB pieces: 16 blocks each.
const PIECE_LENGTH: u64 = 256 * 1024;
/// Picks timed between two untimed resets (dropping every request).
const PICKS_PER_RESET: u64 = 64;

struct Swarm {
    layout: Layout,
    picker: PiecePicker,
    /// Every peer's bitfield.
    peers: Vec<Bitfield>,
}

fn swarm(pieces: u32, peers: usize) -> Swarm {
    let layout = Layout::new(PIECE_LENGTH, &[u64::from(pieces) * PIECE_LENGTH]).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut have = Bitfield::new(pieces);
    // A few pieces already had, so the random-first rule is over.
    for i in 0..8 {
        have.set(layout.piece_index(i * (pieces / 8)).unwrap());
    }
    let mut picker = PiecePicker::new(&layout, &have, PickerStrategy::RarestFirst, 2);
    let mut fields = Vec::with_capacity(peers);
    for _ in 0..peers {
        let mut field = Bitfield::new(pieces);
        for piece in layout.pieces() {
            if rng.random_bool(0.5) {
                field.set(piece);
            }
        }
        picker.peer_bitfield(&field);
        fields.push(field);
    }
    Swarm {
        layout,
        picker,
        peers: fields,
    }
}

/// Every swarm of the table, built once and shared by the three groups
/// (building the 1M-piece ones dominates a run).
fn swarms() -> &'static [Swarm] {
    static SWARMS: OnceLock<Vec<Swarm>> = OnceLock::new();
    SWARMS.get_or_init(|| {
        [4_096u32, 65_536, 1 << 20]
            .into_iter()
            .flat_map(|pieces| [50usize, 500].map(|peers| swarm(pieces, peers)))
            .collect()
    })
}

fn bench_pick(c: &mut Criterion, name: &str, seed: bool) {
    let mut group = c.benchmark_group(name);
    for swarm in swarms() {
        let (pieces, peers) = (swarm.layout.piece_count(), swarm.peers.len());
        let id = BenchmarkId::new(format!("{pieces}_pieces"), format!("{peers}_peers"));
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut picker = swarm.picker.clone();
                let mut out: Vec<Vec<BlockRef>> =
                    vec![Vec::with_capacity(16); PICKS_PER_RESET as usize];
                let mut total = Duration::ZERO;
                let mut done = 0;
                let mut next_peer = 0;
                while done < iters {
                    let batch = PICKS_PER_RESET.min(iters - done) as usize;
                    let start = Instant::now();
                    for blocks in &mut out[..batch] {
                        let peer = next_peer;
                        next_peer = if peer + 1 == swarm.peers.len() {
                            0
                        } else {
                            peer + 1
                        };
                        let has = if seed {
                            PeerHas::All
                        } else {
                            PeerHas::Pieces(&swarm.peers[peer])
                        };
                        picker.pick(PeerKey(peer), has, 16, &[], blocks);
                    }
                    total += start.elapsed();
                    for (i, blocks) in out[..batch].iter_mut().enumerate() {
                        assert_eq!(blocks.len(), 16, "ran out of pieces");
                        let peer = PeerKey((done as usize + i) % swarm.peers.len());
                        for block in blocks.drain(..) {
                            picker.request_dropped(peer, block);
                        }
                    }
                    done += batch as u64;
                }
                total
            });
        });
    }
    group.finish();
}

fn pick_bitfield_peer(c: &mut Criterion) {
    bench_pick(c, "pick_bitfield_peer", false);
}

fn pick_seed_peer(c: &mut Criterion) {
    bench_pick(c, "pick_seed_peer", true);
}

fn have(c: &mut Criterion) {
    let mut group = c.benchmark_group("have");
    for swarm in swarms() {
        let (pieces, peers) = (swarm.layout.piece_count(), swarm.peers.len());
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let targets: Vec<PieceIndex> = (0..1 << 16)
            .map(|_| {
                swarm
                    .layout
                    .piece_index(rng.random_range(0..pieces))
                    .unwrap()
            })
            .collect();
        let id = BenchmarkId::new(format!("{pieces}_pieces"), format!("{peers}_peers"));
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut picker = swarm.picker.clone();
                let start = Instant::now();
                for i in 0..iters as usize {
                    picker.peer_have(black_box(targets[i % targets.len()]), false);
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, pick_bitfield_peer, pick_seed_peer, have);
criterion_main!(benches);
