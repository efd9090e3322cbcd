//! Erasure layer micro-benchmarks: Reed–Solomon encode/decode of 1 MiB blocks (2+2, 4+2,
//! 8+4) next to a plain 1 MiB memory copy (`memcpy`), so throughput reads as a fraction of
//! what one core moves, and the two bitrot hashes on shard-sized buffers.
//!
//! `cargo bench -p coffer-server --bench erasure -- --measurement-time 3 --warm-up-time 1`

use coffer_server::store::erasure::{
    shard_block_hash, BitrotAlgorithm, ErasureCodec, ErasureGeometry, BLOCK_SIZE,
};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn block() -> Vec<u8> {
    (0..BLOCK_SIZE as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn codec(data: usize, parity: usize) -> ErasureCodec {
    ErasureCodec::with_default_block_size(ErasureGeometry::new(data, parity).unwrap()).unwrap()
}

/// The geometries measured: 4, 6 and 12 drives.
const GEOMETRIES: [(usize, usize); 3] = [(2, 2), (4, 2), (8, 4)];

/// The baseline: one 1 MiB `copy_from_slice` into a reused buffer, in the same group (and so
/// the same GB/s unit) as the codec cases.
fn memcpy_case(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let block = block();
    let mut dst = vec![0u8; BLOCK_SIZE];
    group.bench_function(BenchmarkId::from_parameter("memcpy-1MiB"), |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&block));
            black_box(&mut dst);
        })
    });
}

fn encode(c: &mut Criterion) {
    let block = block();
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Bytes(BLOCK_SIZE as u64));
    memcpy_case(&mut group);
    for (d, p) in GEOMETRIES {
        let codec = codec(d, p);
        group.bench_function(BenchmarkId::from_parameter(format!("{d}+{p}")), |b| {
            b.iter(|| codec.encode_block(black_box(&block)).unwrap())
        });
        // The crate's one-shot API, which allocates its work space on every call: what the
        // per-thread encoder cache in `encode_block` saves.
        let shards = codec.encode_block(&block).unwrap();
        group.bench_function(
            BenchmarkId::new("rs-oneshot-parity", format!("{d}+{p}")),
            |b| b.iter(|| reed_solomon_simd::encode(d, p, black_box(&shards[..d])).unwrap()),
        );
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let block = block();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(BLOCK_SIZE as u64));
    memcpy_case(&mut group);
    for (d, p) in GEOMETRIES {
        let codec = codec(d, p);
        let shards: Vec<Option<Vec<u8>>> = codec
            .encode_block(&block)
            .unwrap()
            .into_iter()
            .map(Some)
            .collect();
        // The worst case: the first M data shards are gone.
        let mut degraded = shards.clone();
        for shard in &mut degraded[..p] {
            *shard = None;
        }
        for (name, input) in [("0-missing", &shards), ("m-missing", &degraded)] {
            // Into a reused output buffer, as a streaming reader would.
            let mut out = Vec::with_capacity(BLOCK_SIZE);
            group.bench_function(BenchmarkId::new(name, format!("{d}+{p}")), |b| {
                b.iter_batched_ref(
                    || input.clone(),
                    |shards| {
                        out.clear();
                        codec
                            .decode_block_into(shards, BLOCK_SIZE, &mut out)
                            .unwrap();
                    },
                    criterion::BatchSize::LargeInput,
                )
            });
        }
        // A fresh output Vec per block.
        group.bench_function(
            BenchmarkId::new("0-missing-alloc", format!("{d}+{p}")),
            |b| {
                b.iter_batched_ref(
                    || shards.clone(),
                    |shards| codec.decode_block(shards, BLOCK_SIZE).unwrap(),
                    criterion::BatchSize::LargeInput,
                )
            },
        );
    }
    group.finish();
}

fn bitrot(c: &mut Criterion) {
    let block = block();
    let mut group = c.benchmark_group("bitrot");
    for k in [1, 4, 8] {
        let shard = &block[..BLOCK_SIZE / k];
        group.throughput(Throughput::Bytes(shard.len() as u64));
        for (name, algorithm) in [
            ("blake3", BitrotAlgorithm::Blake3),
            ("highway256", BitrotAlgorithm::HighwayHash256),
        ] {
            group.bench_function(BenchmarkId::new(name, format!("1MiB/{k}")), |b| {
                b.iter(|| shard_block_hash(algorithm, 1, 2, black_box(shard)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, encode, decode, bitrot);
criterion_main!(benches);
