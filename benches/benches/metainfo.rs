//! Metainfo parse of a real `.torrent`: `testdata/torrents/photos.torrent`,
//! made by `transmission-create` over `testdata/media/photos` (9 files).
//! libtorrent's bdecode takes about 0.9 us for a typical one.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use minibit_core::metainfo::Metainfo;

const TORRENT: &[u8] = include_bytes!("../../testdata/torrents/photos.torrent");

fn parse(c: &mut Criterion) {
    let metainfo = Metainfo::from_bytes(TORRENT).expect("the fixture parses");
    assert!(metainfo.info().files().len() > 1, "a multi-file torrent");
    let mut group = c.benchmark_group("metainfo");
    group.throughput(Throughput::Bytes(TORRENT.len() as u64));
    group.bench_function("parse_transmission_create_multi_file", |b| {
        b.iter(|| Metainfo::from_bytes(black_box(TORRENT)).expect("parses"));
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
