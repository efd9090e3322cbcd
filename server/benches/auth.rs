//! Benchmarks of request authentication: SigV4 header verification of a typical PUT, and
//! aws-chunked decoding (with chunk-signature checks) of a 16 MiB body in 64 KiB chunks.

use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use bytes::Bytes;
use coffer_server::auth::sigv4::{
    canonical_query, canonical_request, canonical_uri, parse_amz_date, string_to_sign, SigningKey,
    EMPTY_SHA256,
};
use coffer_server::auth::{
    authenticate, AuthRequest, ChunkedBody, ChunkedMode, PayloadCheck, SecretLookup,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::Stream;
use http::{HeaderMap, HeaderValue, Method};
use sha2::{Digest, Sha256};

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const TIMESTAMP: &str = "20130524T000000Z";
const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";

struct Keys;

impl SecretLookup for Keys {
    fn secret_key(&self, access_key: &str) -> Option<String> {
        (access_key == ACCESS_KEY).then(|| SECRET_KEY.to_string())
    }
}

fn signing_key() -> SigningKey {
    SigningKey::derive(SECRET_KEY, "20130524", "us-east-1", "s3")
}

/// A PUT as an SDK sends it: content hash, content type, metadata, all signed.
fn signed_put() -> HeaderMap {
    let mut headers = HeaderMap::new();
    let pairs = [
        ("content-length", "1048576"),
        ("content-md5", "1B2M2Y8AsgTpgAEiw7Id+Q=="),
        ("content-type", "application/octet-stream"),
        ("host", "examplebucket.s3.us-east-1.amazonaws.com"),
        (
            "x-amz-content-sha256",
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        ),
        ("x-amz-date", TIMESTAMP),
        ("x-amz-meta-owner", "bench"),
        ("x-amz-storage-class", "STANDARD"),
        ("x-amz-user-agent", "aws-sdk-rust/1.0 os/linux"),
    ];
    for (name, value) in pairs {
        headers.insert(name, HeaderValue::from_static(value));
    }
    let signed: Vec<&str> = pairs.iter().map(|(n, _)| *n).collect();
    let signed = signed.join(";");
    let creq = canonical_request(
        "PUT",
        &canonical_uri("/photos/2024/summer%20trip/IMG_0001.jpg"),
        &canonical_query(Some("x-id=PutObject"), false),
        &headers,
        &signed,
        pairs[4].1,
    );
    let sts = string_to_sign(TIMESTAMP, SCOPE, &creq);
    let signature = hex::encode(signing_key().sign(sts.as_bytes()));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE}, SignedHeaders={signed}, Signature={signature}"
    );
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&authorization).expect("ASCII header"),
    );
    headers
}

fn bench_header_verification(c: &mut Criterion) {
    let headers = signed_put();
    let now: SystemTime = parse_amz_date(TIMESTAMP).expect("timestamp").into();
    let method = Method::PUT;
    c.bench_function("sigv4_verify_put_header", |b| {
        b.iter(|| {
            let req = AuthRequest {
                method: &method,
                raw_path: "/photos/2024/summer%20trip/IMG_0001.jpg",
                raw_query: Some("x-id=PutObject"),
                headers: &headers,
            };
            let auth = authenticate(std::hint::black_box(&req), "us-east-1", now, &Keys)
                .expect("the bench request is validly signed");
            assert!(matches!(auth.payload, PayloadCheck::Sha256(_)));
        })
    });
}

/// A signed aws-chunked body of `len` bytes in `chunk` byte chunks.
fn signed_chunked_body(len: usize, chunk: usize, seed: [u8; 32]) -> Vec<u8> {
    let key = signing_key();
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut out = Vec::with_capacity(len + len / chunk * 100 + 200);
    let mut previous = hex::encode(seed);
    for piece in data.chunks(chunk).chain(std::iter::once(&[][..])) {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{TIMESTAMP}\n{SCOPE}\n{previous}\n{EMPTY_SHA256}\n{}",
            hex::encode(Sha256::digest(piece))
        );
        previous = hex::encode(key.sign(sts.as_bytes()));
        out.extend_from_slice(
            format!("{:x};chunk-signature={previous}\r\n", piece.len()).as_bytes(),
        );
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn bench_chunked_decoding(c: &mut Criterion) {
    const LEN: usize = 16 * 1024 * 1024;
    let seed = [0x5a; 32];
    let body = Bytes::from(signed_chunked_body(LEN, 64 * 1024, seed));
    // Frames as a socket delivers them: 16 KiB, not aligned with chunk boundaries.
    let frames: Vec<Bytes> = (0..body.len())
        .step_by(16 * 1024)
        .map(|start| body.slice(start..(start + 16 * 1024).min(body.len())))
        .collect();
    let mode = ChunkedMode::signed(signing_key(), TIMESTAMP.into(), SCOPE.into(), seed, false)
        .with_decoded_length(Some(LEN as u64));

    let mut group = c.benchmark_group("aws_chunked");
    group.throughput(Throughput::Bytes(LEN as u64));
    group.sample_size(10);
    group.bench_function("decode_signed_16MiB_64KiB_chunks", |b| {
        b.iter(|| {
            let inner = futures_util::stream::iter(frames.iter().cloned().map(Ok::<_, String>));
            let mut decoder = ChunkedBody::new(inner, mode.clone());
            let mut cx = Context::from_waker(Waker::noop());
            let mut total = 0usize;
            loop {
                match std::pin::Pin::new(&mut decoder).poll_next(&mut cx) {
                    Poll::Ready(Some(Ok(data))) => total += data.len(),
                    Poll::Ready(Some(Err(e))) => panic!("the bench body is valid: {e}"),
                    Poll::Ready(None) => break,
                    Poll::Pending => unreachable!("an in-memory body is always ready"),
                }
            }
            assert_eq!(total, LEN);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_header_verification, bench_chunked_decoding);
criterion_main!(benches);
