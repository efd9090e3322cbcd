//! The request body as the S3 handlers see it: a stream of decoded bytes (aws-chunked
//! framing removed and chunk signatures verified), the trailers that came after it, and what
//! the signature promised about it.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::error::{ErrorCode, S3Error};
use crate::auth::Trailers;

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, S3Error>> + Send>>;

pub struct RequestBody {
    stream: ByteStream,
    /// Trailing headers of an aws-chunked body, filled once the stream has ended.
    pub trailers: Option<Trailers>,
    /// The SHA-256 the signature covers (`x-amz-content-sha256` with a signed payload).
    pub expected_sha256: Option<[u8; 32]>,
    /// The length the client declared (Content-Length or x-amz-decoded-content-length).
    pub declared_length: Option<u64>,
}

impl RequestBody {
    pub fn new(stream: ByteStream, declared_length: Option<u64>) -> RequestBody {
        RequestBody {
            stream,
            trailers: None,
            expected_sha256: None,
            declared_length,
        }
    }

    pub async fn next(&mut self) -> Option<Result<Bytes, S3Error>> {
        self.stream.next().await
    }

    /// Reads a small body whole (XML documents), refusing more than `limit` bytes.
    pub async fn collect(mut self, limit: usize) -> Result<Bytes, S3Error> {
        let mut buf = Vec::new();
        while let Some(chunk) = self.next().await {
            let chunk = chunk?;
            if buf.len() + chunk.len() > limit {
                return Err(S3Error::msg(
                    ErrorCode::MalformedXML,
                    format!("the request document exceeds {limit} bytes"),
                ));
            }
            buf.extend_from_slice(&chunk);
        }
        if let Some(expected) = self.expected_sha256 {
            use sha2::Digest;
            if sha2::Sha256::digest(&buf).as_slice() != expected {
                return Err(ErrorCode::XAmzContentSHA256Mismatch.into());
            }
        }
        Ok(Bytes::from(buf))
    }

    /// The value of trailing header `name`, once the body has been read.
    pub fn trailer(&self, name: &str) -> Option<String> {
        self.trailers.as_ref().and_then(|t| t.get(name))
    }
}
