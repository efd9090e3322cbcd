//! Helpers shared by the auth tests: the AWS S3 documentation's example credentials, an
//! aws-chunked encoder (the client side of what `ChunkedBody` decodes), and a synchronous
//! way to drain a stream whose input is always ready.

use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::Stream;
use sha2::{Digest, Sha256};

use super::sigv4::{SigningKey, EMPTY_SHA256};
use super::{AuthError, ChunkedBody, ChunkedMode, SecretLookup, Trailers};

/// The access key of the AWS S3 documentation examples.
pub const DOC_ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
/// The secret key of the AWS S3 documentation examples.
pub const DOC_SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
pub const DOC_TIMESTAMP: &str = "20130524T000000Z";
pub const DOC_SCOPE: &str = "20130524/us-east-1/s3/aws4_request";

/// A key store holding one access key.
pub struct OneKey {
    pub access_key: &'static str,
    pub secret_key: &'static str,
}

impl SecretLookup for OneKey {
    fn secret_key(&self, access_key: &str) -> Option<String> {
        (access_key == self.access_key).then(|| self.secret_key.to_string())
    }
}

pub fn doc_keys() -> OneKey {
    OneKey {
        access_key: DOC_ACCESS_KEY,
        secret_key: DOC_SECRET_KEY,
    }
}

pub fn doc_signing_key() -> SigningKey {
    SigningKey::derive(DOC_SECRET_KEY, "20130524", "us-east-1", "s3")
}

pub fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0; 32];
    hex::decode_to_slice(s, &mut out).expect("test signatures are 64 hex characters");
    out
}

/// Encodes `chunks` (the last should be empty) as aws-chunked data; signed when `key` is
/// given, with `trailers` after the last chunk when given.
pub fn encode_chunked(
    key: Option<&SigningKey>,
    seed: [u8; 32],
    chunks: &[&[u8]],
    trailers: Option<&[(&str, &str)]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut previous = hex::encode(seed);
    for chunk in chunks {
        match key {
            Some(key) => {
                let sts = format!(
                    "AWS4-HMAC-SHA256-PAYLOAD\n{DOC_TIMESTAMP}\n{DOC_SCOPE}\n{previous}\n{EMPTY_SHA256}\n{}",
                    hex::encode(Sha256::digest(chunk))
                );
                previous = hex::encode(key.sign(sts.as_bytes()));
                out.extend_from_slice(
                    format!("{:x};chunk-signature={previous}\r\n", chunk.len()).as_bytes(),
                );
            }
            None => out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes()),
        }
        if !chunk.is_empty() {
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
    }
    match trailers {
        None => out.extend_from_slice(b"\r\n"),
        Some(trailers) => {
            let mut canonical = String::new();
            for (name, value) in trailers {
                canonical.push_str(&format!("{name}:{value}\n"));
                out.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
            }
            if let Some(key) = key {
                let sts = format!(
                    "AWS4-HMAC-SHA256-TRAILER\n{DOC_TIMESTAMP}\n{DOC_SCOPE}\n{previous}\n{}",
                    hex::encode(Sha256::digest(canonical.as_bytes()))
                );
                let signature = hex::encode(key.sign(sts.as_bytes()));
                out.extend_from_slice(
                    format!("x-amz-trailer-signature:{signature}\r\n").as_bytes(),
                );
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// A signed mode with the documentation's key, timestamp and scope.
pub fn doc_mode(seed: [u8; 32], trailers: bool) -> ChunkedMode {
    ChunkedMode::signed(
        doc_signing_key(),
        DOC_TIMESTAMP.to_string(),
        DOC_SCOPE.to_string(),
        seed,
        trailers,
    )
}

/// What draining a `ChunkedBody` produced.
#[derive(Debug)]
pub struct Decoded {
    pub data: Vec<u8>,
    /// The first error, if any. `drain` asserts nothing but `None` follows an error.
    pub error: Option<AuthError>,
    pub trailers: Trailers,
}

/// Decodes `frames` (each one inner-stream item) with `mode`, polling synchronously: the
/// inner stream is always ready, so the decoder never returns Pending.
pub fn drain(frames: Vec<Result<Bytes, String>>, mode: ChunkedMode) -> Decoded {
    let mut body = ChunkedBody::new(futures_util::stream::iter(frames), mode);
    let trailers = body.trailers();
    let mut cx = Context::from_waker(Waker::noop());
    let mut data = Vec::new();
    let mut error = None;
    loop {
        match std::pin::Pin::new(&mut body).poll_next(&mut cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                assert!(error.is_none(), "data after an error");
                assert!(!bytes.is_empty(), "empty data frames are never yielded");
                data.extend_from_slice(&bytes);
            }
            Poll::Ready(Some(Err(e))) => {
                assert!(error.is_none(), "a second error after {error:?}");
                error = Some(e);
            }
            Poll::Ready(None) => break,
            Poll::Pending => panic!("an always-ready input never makes the decoder wait"),
        }
    }
    Decoded {
        data,
        error,
        trailers,
    }
}

/// Splits `body` into frames at the given offsets.
pub fn frames_at(body: &[u8], cuts: &[usize]) -> Vec<Result<Bytes, String>> {
    let body = Bytes::copy_from_slice(body);
    let mut frames = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
        frames.push(Ok(body.slice(start..cut)));
        start = cut;
    }
    frames
}
