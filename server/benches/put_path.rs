//! The per-byte work of a PUT: the MD5 behind the ETag, alone and together with a requested
//! checksum or the SHA-256 of a signed payload, and the multipart ETag of 10 000 parts.

use coffer_server::store::checksum::{
    multipart_etag, BodyHasher, ChecksumAlgorithm, DigestRequest,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn body_digests(c: &mut Criterion) {
    let data = vec![0x5au8; 16 << 20];
    let mut group = c.benchmark_group("put_digests_16MiB");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    let cases: [(&str, DigestRequest); 5] = [
        ("md5", DigestRequest::default()),
        (
            "md5+crc32c",
            DigestRequest {
                checksum: Some(ChecksumAlgorithm::Crc32c),
                sha256: false,
            },
        ),
        (
            "md5+crc64nvme",
            DigestRequest {
                checksum: Some(ChecksumAlgorithm::Crc64Nvme),
                sha256: false,
            },
        ),
        (
            "md5+crc32",
            DigestRequest {
                checksum: Some(ChecksumAlgorithm::Crc32),
                sha256: false,
            },
        ),
        (
            "md5+sha256",
            DigestRequest {
                checksum: None,
                sha256: true,
            },
        ),
    ];
    for (name, request) in cases {
        group.bench_with_input(BenchmarkId::from_parameter(name), &request, |b, request| {
            b.iter(|| {
                let mut h = BodyHasher::new(*request);
                // Feed in the 64 KiB pieces a network body arrives in.
                for chunk in data.chunks(64 << 10) {
                    h.update(chunk);
                }
                h.finish()
            })
        });
    }
    group.finish();
}

fn multipart(c: &mut Criterion) {
    let etags: Vec<String> = (0..10_000u32)
        .map(|i| format!("{:032x}", u128::from(i) * 0x9e37_79b9))
        .collect();
    let refs: Vec<&str> = etags.iter().map(String::as_str).collect();
    c.bench_function("multipart_etag_10000_parts", |b| {
        b.iter(|| multipart_etag(&refs))
    });
}

criterion_group!(benches, body_digests, multipart);
criterion_main!(benches);
