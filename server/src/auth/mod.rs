//! Request authentication: AWS Signature Version 4 as S3 speaks it, server side, the legacy
//! Signature Version 2 that old clients and boto3's default presigner still send, and the
//! signed policy documents of browser-based POST uploads ([`post_policy`]).
//!
//! This module owns turning an incoming request (method, raw path, raw query, headers) into
//! an [`Authenticated`] principal plus what remains to be checked about the body
//! ([`PayloadCheck`]), and decoding `aws-chunked` bodies with their chunk signatures and
//! trailers ([`ChunkedBody`]). It knows nothing of buckets, policies or storage: the IAM
//! layer answers [`SecretLookup`], the HTTP layer decides what an anonymous principal may do
//! and maps [`AuthError`] to an S3 error response.
//!
//! Invariants:
//! 1. A signature is compared in constant time and never appears in an error message.
//! 2. The canonical URI is the received path decoded once and re-encoded once: S3 neither
//!    normalizes (`.`/`..`, `//`) nor double-encodes it.
//! 3. SigV2 signs the path exactly as received (no decoding at all) and only the
//!    sub-resource query parameters; see [`sigv2`].
//! 4. [`ChunkedBody`] yields an error before it ever ends normally when the body is bad, so
//!    a consumer that commits only on a clean end never stores a forged or partial object.

mod chunked;
mod error;
pub mod post_policy;
pub mod sign;
pub mod sigv2;
pub mod sigv4;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use chunked::{ChunkedBody, ChunkedMode, Trailers};
pub use error::AuthError;

use std::time::SystemTime;

/// The parts of an HTTP request that authentication looks at.
///
/// For HTTP/2 requests the HTTP layer must put the `:authority` into a `host` header first:
/// every SigV4 request signs `host`.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    pub method: &'a http::Method,
    /// The request path exactly as received, still percent-encoded.
    pub raw_path: &'a str,
    /// The raw query string, without `?`.
    pub raw_query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
}

/// Looks up the secret key of an access key id (the IAM layer implements it).
pub trait SecretLookup: Send + Sync {
    fn secret_key(&self, access_key: &str) -> Option<String>;
}

/// Who sent the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    AccessKey(String),
}

/// What is left to verify about the request body once the headers are authenticated.
#[derive(Debug, Clone)]
pub enum PayloadCheck {
    /// Nothing to verify about the body (UNSIGNED-PAYLOAD, presigned URLs, anonymous).
    None,
    /// The body must hash (SHA-256) to this value, else XAmzContentSHA256Mismatch.
    Sha256([u8; 32]),
    /// The body is aws-chunked: decode it with `ChunkedBody`.
    Chunked(ChunkedMode),
}

/// The outcome of a successful [`authenticate`].
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    pub payload: PayloadCheck,
}

/// Authenticates a request signed with SigV4 or SigV2, in the `Authorization` header or in
/// the query string (presigned URL). A request carrying neither is [`Principal::Anonymous`];
/// one carrying more than one is refused.
///
/// `region` is the region this server answers for; a SigV4 credential scope must name it and
/// the service `s3` (SigV2 has no scope). `now` is the server clock, used for the 15-minute
/// skew window and presigned expiry.
pub fn authenticate(
    req: &AuthRequest<'_>,
    region: &str,
    now: SystemTime,
    secrets: &dyn SecretLookup,
) -> Result<Authenticated, AuthError> {
    let v2_header = sigv2::is_header_auth(req.headers);
    let v2_query = sigv2::is_presigned(req.raw_query);
    if !v2_header && !v2_query {
        return sigv4::authenticate(req, region, now, secrets);
    }
    let v4_query = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"]
        .iter()
        .any(|name| sigv4::query_param(req.raw_query, name).is_some());
    let in_query = usize::from(v2_query) + usize::from(v4_query);
    if in_query > 1 || (in_query == 1 && req.headers.contains_key(http::header::AUTHORIZATION)) {
        return Err(AuthError::InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified"
                .to_string(),
        ));
    }
    sigv2::authenticate(req, now.into(), secrets)
}
