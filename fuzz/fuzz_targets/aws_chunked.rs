//! The aws-chunked body decoder (chunk sizes, chunk signatures, trailers, trailer
//! signature) on untrusted bytes cut into arbitrary frames. It must end with data or an
//! error, never panic, and never yield more bytes than the body holds.
//!
//! Input: byte 0 picks the mode (signed / signed with trailers / unsigned with trailers) and
//! whether a decoded length is declared; byte 1 is the frame size; the rest is the body.
#![no_main]

use bytes::Bytes;
use coffer_server::auth::sigv4::SigningKey;
use coffer_server::auth::{ChunkedBody, ChunkedMode};
use futures_util::StreamExt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (flags, frame, body) = (data[0], usize::from(data[1]).max(1), &data[2..]);
    let key = || SigningKey::derive("fuzz-secret-key", "20250101", "us-east-1", "s3");
    let scope = "20250101/us-east-1/s3/aws4_request".to_string();
    let mode = match flags % 3 {
        0 => ChunkedMode::signed(key(), "20250101T000000Z".into(), scope, [7; 32], false),
        1 => ChunkedMode::signed(key(), "20250101T000000Z".into(), scope, [7; 32], true)
            .with_declared_trailers(vec!["x-amz-checksum-crc32".into()]),
        _ => ChunkedMode::unsigned_trailer(),
    };
    let mode = if flags & 0x80 != 0 {
        mode.with_decoded_length(Some(u64::from(flags & 0x3f)))
    } else {
        mode
    };
    let frames: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(frame)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let mut decoder = ChunkedBody::new(futures_util::stream::iter(frames), mode);
    let mut decoded = 0usize;
    futures_executor::block_on(async {
        while let Some(item) = decoder.next().await {
            match item {
                Ok(chunk) => decoded += chunk.len(),
                Err(_) => break,
            }
        }
    });
    assert!(
        decoded <= body.len(),
        "decoded more bytes than the body holds"
    );
});
