//! Peer wire codec throughput: encoding and decoding a stream of 16 KiB
//! `piece` messages and a stream of small control messages.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use minibit_core::wire::{Decoder, Message};

const PIECES: u32 = 4096;
const STREAM_LEN: usize = 256;

fn piece_stream() -> Vec<Message> {
    let block = Bytes::from(vec![0x5a; 16 * 1024]);
    (0..STREAM_LEN as u32)
        .map(|i| Message::Piece {
            piece: i / 16,
            offset: (i % 16) * 16 * 1024,
            data: block.clone(),
        })
        .collect()
}

fn small_stream() -> Vec<Message> {
    (0..STREAM_LEN as u32)
        .map(|i| match i % 4 {
            0 => Message::Have { piece: i },
            1 => Message::Request {
                piece: i,
                offset: 0,
                length: 16 * 1024,
            },
            2 => Message::Interested,
            _ => Message::Cancel {
                piece: i,
                offset: 16 * 1024,
                length: 16 * 1024,
            },
        })
        .collect()
}

fn encode_all(msgs: &[Message], dst: &mut BytesMut) {
    for msg in msgs {
        msg.encode(dst);
    }
}

fn bench_stream(c: &mut Criterion, name: &str, msgs: &[Message]) {
    let mut wire = BytesMut::new();
    encode_all(msgs, &mut wire);
    let wire = wire.freeze();
    let mut group = c.benchmark_group(format!("wire/{name}"));
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("encode", |b| {
        let mut dst = BytesMut::with_capacity(wire.len());
        b.iter(|| {
            dst.clear();
            encode_all(black_box(msgs), &mut dst);
            black_box(dst.len())
        });
    });
    group.bench_function("decode", |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            |mut buf| {
                let mut decoder = Decoder::new(PIECES);
                let mut count = 0usize;
                while let Ok(Some(msg)) = decoder.decode(&mut buf) {
                    black_box(msg);
                    count += 1;
                }
                assert_eq!(count, msgs.len());
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn wire(c: &mut Criterion) {
    bench_stream(c, "piece_16k", &piece_stream());
    bench_stream(c, "small", &small_stream());
}

criterion_group!(benches, wire);
criterion_main!(benches);
