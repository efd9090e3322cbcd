//! Streaming decoder for `aws-chunked` request bodies, with chunk-signature verification
//! and trailing headers.
//!
//! Wire format (signed): `hex-size;chunk-signature=SIG\r\n DATA \r\n`, repeated, ending with
//! a signed 0-size chunk. Each chunk's signature chains the previous one (the first chains the
//! seed, i.e. the header signature):
//! `AWS4-HMAC-SHA256-PAYLOAD\n{timestamp}\n{scope}\n{previous}\n{sha256("")}\n{sha256(DATA)}`.
//! With trailers, trailer lines `name:value\r\n` follow the 0-size chunk, then (signed form)
//! `x-amz-trailer-signature:SIG\r\n` over
//! `AWS4-HMAC-SHA256-TRAILER\n{timestamp}\n{scope}\n{previous}\n{sha256(lines)}`, where the
//! lines are the trailers as `name:value\n`, and a final empty line. The unsigned-trailer form
//! (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`) has no signatures: `hex-size\r\n DATA \r\n`.
//!
//! The decoder hands out slices of the input frames (no copy of chunk data), keeps only a
//! chunk-header line or the trailer section in memory (both bounded), and is strict about
//! signatures but liberal about what SDKs vary in: bare `\n` line ends, a blank line before
//! the trailers, a missing final blank line.
//!
//! Data of a chunk is yielded before that chunk's signature can be checked (the signature
//! covers the whole chunk). Every failure is yielded as an error before the stream ends, so a
//! consumer that commits an object only when the stream ends cleanly never commits bad data.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::Stream;
use sha2::{Digest, Sha256};

use super::sigv4::{parse_signature, signatures_equal, SigningKey, EMPTY_SHA256};
use super::AuthError;

/// The longest chunk-size line accepted (size, extensions and CRLF); real ones are ~85 bytes.
const MAX_CHUNK_LINE: usize = 4096;
/// The largest trailer section accepted, all lines together.
const MAX_TRAILER_SECTION: usize = 16 * 1024;
/// The most trailer lines accepted.
const MAX_TRAILERS: usize = 64;

/// What chunk verification needs, built by `authenticate` from the request's headers.
#[derive(Clone)]
pub struct ChunkedMode {
    /// `None` for `STREAMING-UNSIGNED-PAYLOAD-TRAILER`. Shared, as the keyed HMAC state is
    /// a few hundred bytes and the mode travels by value inside `PayloadCheck`.
    signing: Option<Arc<ChunkSigning>>,
    trailers: bool,
    decoded_length: Option<u64>,
    declared_trailers: Vec<String>,
}

#[derive(Clone)]
struct ChunkSigning {
    key: SigningKey,
    timestamp: String,
    scope: String,
    seed: [u8; 32],
}

impl ChunkedMode {
    /// Signed chunks (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, or `...-TRAILER` with
    /// `trailers`), chained from `seed_signature`, the signature of the request headers.
    pub fn signed(
        key: SigningKey,
        timestamp: String,
        scope: String,
        seed_signature: [u8; 32],
        trailers: bool,
    ) -> Self {
        ChunkedMode {
            signing: Some(Arc::new(ChunkSigning {
                key,
                timestamp,
                scope,
                seed: seed_signature,
            })),
            trailers,
            decoded_length: None,
            declared_trailers: Vec::new(),
        }
    }

    /// Unsigned chunks followed by trailers (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`).
    pub fn unsigned_trailer() -> Self {
        ChunkedMode {
            signing: None,
            trailers: true,
            decoded_length: None,
            declared_trailers: Vec::new(),
        }
    }

    /// The `x-amz-decoded-content-length` the decoded body must have, if the client gave one.
    pub fn with_decoded_length(mut self, decoded_length: Option<u64>) -> Self {
        self.decoded_length = decoded_length;
        self
    }

    /// The trailer names listed in `x-amz-trailer` (lower-case); each must arrive.
    pub fn with_declared_trailers(mut self, names: Vec<String>) -> Self {
        self.declared_trailers = names;
        self
    }

    pub fn is_signed(&self) -> bool {
        self.signing.is_some()
    }

    pub fn expects_trailers(&self) -> bool {
        self.trailers
    }

    pub fn decoded_length(&self) -> Option<u64> {
        self.decoded_length
    }

    pub fn declared_trailers(&self) -> &[String] {
        &self.declared_trailers
    }
}

impl std::fmt::Debug for ChunkedMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The signing key and the seed signature stay out of logs.
        f.debug_struct("ChunkedMode")
            .field("signed", &self.is_signed())
            .field("trailers", &self.trailers)
            .field("decoded_length", &self.decoded_length)
            .field("declared_trailers", &self.declared_trailers)
            .finish()
    }
}

/// Trailing headers of an aws-chunked body (lower-case names, in arrival order). Empty until
/// the [`ChunkedBody`] has ended successfully.
#[derive(Debug, Clone, Default)]
pub struct Trailers(Arc<Mutex<Vec<(String, String)>>>);

impl Trailers {
    /// The value of trailer `name` (lower-case), e.g. `x-amz-checksum-crc32`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.lock()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// All trailers, in arrival order.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.lock().clone()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn set(&self, trailers: Vec<(String, String)>) {
        *self.lock() = trailers;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, String)>> {
        // A panic while holding this lock cannot leave the Vec half-written, so a poisoned
        // lock still guards consistent data.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a `hex-size[;chunk-signature=SIG]` line.
    ChunkHeader,
    /// Inside chunk data.
    Data { remaining: u64 },
    /// Expecting the CRLF after chunk data; `cr` says whether `\r` was already seen.
    DataEnd { cr: bool },
    /// Reading trailer lines; `started` once a trailer line arrived.
    Trailers { started: bool },
    /// Everything parsed: only line ends may remain before the end of the input.
    AwaitEof,
    /// Finished, successfully or not.
    Done,
}

/// What one decoding step produced.
enum Progress {
    Data(Bytes),
    NeedInput,
    Continue,
    Finished,
}

/// Decodes an aws-chunked body, verifying chunk signatures as it goes; see the module docs.
pub struct ChunkedBody<S> {
    inner: S,
    inner_done: bool,
    /// The part of the current input frame not consumed yet.
    input: Bytes,
    /// A chunk-size or trailer line gathered across frames.
    line: Vec<u8>,
    state: State,
    signing: Option<Arc<ChunkSigning>>,
    expects_trailers: bool,
    decoded_length: Option<u64>,
    declared_trailers: Vec<String>,
    /// `AWS4-HMAC-SHA256-PAYLOAD\n{timestamp}\n{scope}\n`, built once.
    chunk_sts_prefix: Vec<u8>,
    previous_signature: [u8; 32],
    pending_signature: [u8; 32],
    hasher: Sha256,
    decoded: u64,
    trailer_lines: Vec<(String, String)>,
    trailer_bytes: usize,
    trailer_signature_seen: bool,
    trailers: Trailers,
}

impl<S, E> ChunkedBody<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    pub fn new(inner: S, mode: ChunkedMode) -> Self {
        let (chunk_sts_prefix, seed) = match &mode.signing {
            Some(s) => (
                format!("AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n", s.timestamp, s.scope).into_bytes(),
                s.seed,
            ),
            None => (Vec::new(), [0; 32]),
        };
        ChunkedBody {
            inner,
            inner_done: false,
            input: Bytes::new(),
            line: Vec::with_capacity(128),
            state: State::ChunkHeader,
            signing: mode.signing,
            expects_trailers: mode.trailers,
            decoded_length: mode.decoded_length,
            declared_trailers: mode.declared_trailers,
            chunk_sts_prefix,
            previous_signature: seed,
            pending_signature: [0; 32],
            hasher: Sha256::new(),
            decoded: 0,
            trailer_lines: Vec::new(),
            trailer_bytes: 0,
            trailer_signature_seen: false,
            trailers: Trailers::default(),
        }
    }

    /// Trailing headers (lower-case names, e.g. "x-amz-checksum-crc32"), available once the
    /// stream has ended successfully.
    pub fn trailers(&self) -> Trailers {
        self.trailers.clone()
    }
}

impl<S> ChunkedBody<S> {
    /// Moves bytes from `input` into `line` up to and including a `\n`. Returns true when a
    /// whole line is in `line` (its line end stripped).
    fn take_line(&mut self, limit: usize) -> Result<bool, AuthError> {
        let (found, take) = match memchr_newline(&self.input) {
            Some(pos) => (true, pos + 1),
            None => (false, self.input.len()),
        };
        if self.line.len() + take > limit {
            return Err(incomplete("a chunk header or trailer line is too long"));
        }
        self.line.extend_from_slice(&self.input[..take]);
        self.input.advance(take);
        if found {
            strip_line_end(&mut self.line);
        }
        Ok(found)
    }

    /// One step of the state machine on the buffered input.
    fn advance(&mut self) -> Result<Progress, AuthError> {
        match self.state {
            State::ChunkHeader => {
                if !self.take_line(MAX_CHUNK_LINE)? {
                    return if self.inner_done {
                        Err(incomplete(
                            "the body ended before the final 0-size chunk of aws-chunked data",
                        ))
                    } else {
                        Ok(Progress::NeedInput)
                    };
                }
                let line = std::mem::take(&mut self.line);
                let result = self.chunk_header(&line);
                self.line = line;
                self.line.clear();
                result.map(|()| Progress::Continue)
            }
            State::Data { remaining } => {
                if self.input.is_empty() {
                    return if self.inner_done {
                        Err(incomplete("the body ended inside an aws-chunked chunk"))
                    } else {
                        Ok(Progress::NeedInput)
                    };
                }
                let take = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(self.input.len());
                let data = self.input.split_to(take);
                if self.signing.is_some() {
                    self.hasher.update(&data);
                }
                let remaining = remaining - take as u64;
                self.state = if remaining == 0 {
                    State::DataEnd { cr: false }
                } else {
                    State::Data { remaining }
                };
                Ok(Progress::Data(data))
            }
            State::DataEnd { cr } => {
                let Some(&byte) = self.input.first() else {
                    return if self.inner_done {
                        Err(incomplete("the body ended inside an aws-chunked chunk"))
                    } else {
                        Ok(Progress::NeedInput)
                    };
                };
                self.input.advance(1);
                match (cr, byte) {
                    (false, b'\r') => self.state = State::DataEnd { cr: true },
                    (_, b'\n') => {
                        self.verify_chunk()?;
                        self.state = State::ChunkHeader;
                    }
                    _ => return Err(incomplete("chunk data is longer than its declared size")),
                }
                Ok(Progress::Continue)
            }
            State::Trailers { started } => {
                let complete = self.take_line(MAX_TRAILER_SECTION)?;
                if !complete && !self.inner_done {
                    return Ok(Progress::NeedInput);
                }
                if !complete {
                    // The input ended without a final line end; a last trailer line without
                    // one is accepted, some SDKs send it so.
                    strip_line_end(&mut self.line);
                    if !self.line.is_empty() {
                        let line = std::mem::take(&mut self.line);
                        self.trailer_line(&line)?;
                    }
                    self.finish()?;
                    return Ok(Progress::Finished);
                }
                let line = std::mem::take(&mut self.line);
                let result = if line.is_empty() {
                    // A blank line before the first trailer is tolerated; after one, it ends
                    // the section.
                    if started {
                        self.state = State::AwaitEof;
                    }
                    Ok(())
                } else {
                    self.state = State::Trailers { started: true };
                    self.trailer_line(&line)
                };
                self.line = line;
                self.line.clear();
                result.map(|()| Progress::Continue)
            }
            State::AwaitEof => {
                let extra = self.input.iter().position(|&b| b != b'\r' && b != b'\n');
                if extra.is_some() {
                    return Err(incomplete(
                        "unexpected data after the final aws-chunked chunk",
                    ));
                }
                self.input.clear();
                if !self.inner_done {
                    return Ok(Progress::NeedInput);
                }
                self.finish()?;
                Ok(Progress::Finished)
            }
            State::Done => Ok(Progress::Finished),
        }
    }

    /// Parses `hex-size[;chunk-signature=SIG]` and moves to the chunk's data.
    fn chunk_header(&mut self, line: &[u8]) -> Result<(), AuthError> {
        let line = std::str::from_utf8(line)
            .map_err(|_| incomplete("malformed aws-chunked chunk header"))?;
        let (size, extension) = line.split_once(';').unwrap_or((line, ""));
        let size = size.trim_end();
        if size.is_empty() || size.len() > 16 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(incomplete("malformed aws-chunked chunk size"));
        }
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| incomplete("malformed aws-chunked chunk size"))?;
        if self.signing.is_some() {
            let signature = extension
                .trim()
                .strip_prefix("chunk-signature=")
                .and_then(parse_signature)
                .ok_or(AuthError::SignatureDoesNotMatch)?;
            self.pending_signature = signature;
        }
        let decoded = self
            .decoded
            .checked_add(size)
            .ok_or_else(|| incomplete("aws-chunked chunk sizes overflow"))?;
        if self
            .decoded_length
            .is_some_and(|expected| decoded > expected)
        {
            return Err(incomplete(
                "the aws-chunked data is longer than x-amz-decoded-content-length",
            ));
        }
        self.decoded = decoded;
        if size > 0 {
            self.state = State::Data { remaining: size };
            return Ok(());
        }
        self.verify_chunk()?;
        self.state = if self.expects_trailers {
            State::Trailers { started: false }
        } else {
            State::AwaitEof
        };
        Ok(())
    }

    /// Checks the signature of the chunk whose data was just hashed.
    fn verify_chunk(&mut self) -> Result<(), AuthError> {
        let Some(signing) = &self.signing else {
            return Ok(());
        };
        let data_hash = std::mem::take(&mut self.hasher).finalize();
        let mut sts = Vec::with_capacity(self.chunk_sts_prefix.len() + 3 * 64 + 2);
        sts.extend_from_slice(&self.chunk_sts_prefix);
        sts.extend_from_slice(hex::encode(self.previous_signature).as_bytes());
        sts.push(b'\n');
        sts.extend_from_slice(EMPTY_SHA256.as_bytes());
        sts.push(b'\n');
        sts.extend_from_slice(hex::encode(data_hash).as_bytes());
        let expected = signing.key.sign(&sts);
        if !signatures_equal(&expected, &self.pending_signature) {
            return Err(AuthError::SignatureDoesNotMatch);
        }
        self.previous_signature = self.pending_signature;
        Ok(())
    }

    /// Handles one non-empty trailer line, `name:value`.
    fn trailer_line(&mut self, line: &[u8]) -> Result<(), AuthError> {
        if self.trailer_signature_seen {
            return Err(incomplete("a trailer follows x-amz-trailer-signature"));
        }
        self.trailer_bytes += line.len();
        if self.trailer_bytes > MAX_TRAILER_SECTION || self.trailer_lines.len() >= MAX_TRAILERS {
            return Err(incomplete("the trailer section is too large"));
        }
        let line = std::str::from_utf8(line).map_err(|_| incomplete("malformed trailer line"))?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| incomplete("malformed trailer line"))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if name.is_empty() {
            return Err(incomplete("malformed trailer line"));
        }
        if name != "x-amz-trailer-signature" {
            self.trailer_lines.push((name, value.to_string()));
            return Ok(());
        }
        self.trailer_signature_seen = true;
        // An unsigned-trailer stream has nothing to check a trailer signature against.
        let Some(signing) = &self.signing else {
            return Ok(());
        };
        let supplied = parse_signature(value).ok_or(AuthError::SignatureDoesNotMatch)?;
        let mut canonical = Sha256::new();
        for (name, value) in &self.trailer_lines {
            canonical.update(name.as_bytes());
            canonical.update(b":");
            canonical.update(value.as_bytes());
            canonical.update(b"\n");
        }
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            signing.timestamp,
            signing.scope,
            hex::encode(self.previous_signature),
            hex::encode(canonical.finalize())
        );
        if !signatures_equal(&signing.key.sign(sts.as_bytes()), &supplied) {
            return Err(AuthError::SignatureDoesNotMatch);
        }
        Ok(())
    }

    /// The end-of-body checks, then publishes the trailers.
    fn finish(&mut self) -> Result<(), AuthError> {
        if self.expects_trailers && self.signing.is_some() && !self.trailer_signature_seen {
            return Err(incomplete(
                "the trailer section has no x-amz-trailer-signature",
            ));
        }
        if let Some(missing) = self
            .declared_trailers
            .iter()
            .find(|name| !self.trailer_lines.iter().any(|(n, _)| n == *name))
        {
            return Err(incomplete(&format!(
                "the trailer {missing} declared in x-amz-trailer was not sent"
            )));
        }
        if let Some(expected) = self.decoded_length {
            if self.decoded != expected {
                return Err(incomplete(&format!(
                    "the aws-chunked data has {} bytes but x-amz-decoded-content-length is {expected}",
                    self.decoded
                )));
            }
        }
        self.trailers.set(std::mem::take(&mut self.trailer_lines));
        self.state = State::Done;
        Ok(())
    }
}

impl<S, E> Stream for ChunkedBody<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = Result<Bytes, AuthError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.state == State::Done {
                return Poll::Ready(None);
            }
            if this.input.is_empty() && !this.inner_done {
                match Pin::new(&mut this.inner).poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(frame))) => {
                        this.input = frame;
                        continue;
                    }
                    Poll::Ready(Some(Err(e))) => {
                        this.state = State::Done;
                        return Poll::Ready(Some(Err(incomplete(&format!(
                            "reading the request body failed: {e}"
                        )))));
                    }
                    Poll::Ready(None) => this.inner_done = true,
                }
            }
            match this.advance() {
                Ok(Progress::Data(data)) => return Poll::Ready(Some(Ok(data))),
                Ok(Progress::NeedInput | Progress::Continue) => {}
                Ok(Progress::Finished) => {
                    this.state = State::Done;
                    return Poll::Ready(None);
                }
                Err(e) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

fn incomplete(reason: &str) -> AuthError {
    AuthError::IncompleteBody(reason.to_string())
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Drops a trailing `\n` and then a trailing `\r`.
fn strip_line_end(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
}

#[cfg(test)]
#[path = "chunked_tests.rs"]
mod tests;
