//! AWS Signature Version 4: the canonical request, the string to sign, the signing key, and
//! the two ways S3 carries a signature (the `Authorization` header and presigned query
//! parameters).
//!
//! The building blocks ([`canonical_uri`], [`canonical_query`], [`canonical_request`],
//! [`string_to_sign`], [`SigningKey`]) take the service name as data so the generic AWS test
//! suite (service `service`) can exercise them; [`authenticate`] is where S3's own rules live:
//! service `s3`, the server's region, the 15-minute clock window, `x-amz-content-sha256`.

use std::borrow::Cow;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::{
    AuthError, AuthRequest, Authenticated, ChunkedMode, PayloadCheck, Principal, SecretLookup,
};

/// The only signing algorithm this server verifies.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const ECDSA_ALGORITHM: &str = "AWS4-ECDSA-P256-SHA256";
/// The service name S3 requests are scoped to.
pub const S3_SERVICE: &str = "s3";
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_PAYLOAD_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// Hex SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// How far a request's timestamp may be from the server clock (S3 allows 15 minutes).
const MAX_SKEW_SECONDS: i64 = 15 * 60;
/// The longest lifetime of a presigned URL: 7 days.
const MAX_PRESIGNED_EXPIRES: i64 = 604_800;

/// `x-amz-*` headers a client may leave out of `SignedHeaders`. The content hash is part of
/// the canonical request whether signed or not; the decoded length and the trailer list only
/// steer the chunk decoder, whose chunk signatures cover the data itself.
const UNSIGNED_AMZ_HEADERS_ALLOWED: &[&str] = &[
    "x-amz-content-sha256",
    "x-amz-decoded-content-length",
    "x-amz-trailer",
];

/// AWS URI encoding: every byte except `A-Za-z0-9-_.~` becomes `%XX` (upper-case hex).
const URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, keeping `/` as the path separator.
const PATH_ENCODE: &AsciiSet = &URI_ENCODE.remove(b'/');

type HmacSha256 = Hmac<Sha256>;

/// The key derived from a secret for one date, region and service; it signs strings to sign.
/// It is kept keyed so each signature costs two SHA-256 compressions fewer.
#[derive(Clone)]
pub struct SigningKey(HmacSha256);

impl SigningKey {
    /// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
    pub fn derive(secret: &str, date: &str, region: &str, service: &str) -> Self {
        let k_secret = format!("AWS4{secret}");
        let k_date = hmac_sha256(k_secret.as_bytes(), date.as_bytes());
        let k_region = hmac_sha256(&k_date, region.as_bytes());
        let k_service = hmac_sha256(&k_region, service.as_bytes());
        let k_signing = hmac_sha256(&k_service, b"aws4_request");
        SigningKey(
            HmacSha256::new_from_slice(&k_signing).expect("HMAC accepts a key of any length"),
        )
    }

    /// The raw signature of `data` (hex-encode it for the wire).
    pub fn sign(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Compares a computed signature with a supplied one without leaking where they differ.
pub(crate) fn signatures_equal(expected: &[u8; 32], supplied: &[u8; 32]) -> bool {
    bool::from(expected.ct_eq(supplied))
}

/// Parses a 64-character hex signature.
pub(crate) fn parse_signature(hex_sig: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex_sig.len() != 64 || hex::decode_to_slice(hex_sig, &mut out).is_err() {
        return None;
    }
    Some(out)
}

/// The canonical URI for S3: the received path decoded once and encoded once with AWS URI
/// encoding, `/` kept. S3 does not remove `.`/`..` segments or merge slashes.
pub fn canonical_uri(raw_path: &str) -> String {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let decoded: Cow<'_, [u8]> = percent_decode_str(path).into();
    percent_encode(&decoded, PATH_ENCODE).to_string()
}

/// The canonical query string: each parameter decoded, re-encoded with AWS URI encoding
/// (a parameter without `=` gets an empty value), sorted by name then value, joined by `&`.
/// With `presigned`, `X-Amz-Signature` is left out, as the signature cannot sign itself.
pub fn canonical_query(raw_query: Option<&str>, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(raw_query.unwrap_or(""))
        .filter(|(name, _)| !(presigned && name.as_ref() == b"X-Amz-Signature"))
        .map(|(name, value)| {
            (
                percent_encode(&name, URI_ENCODE).to_string(),
                percent_encode(&value, URI_ENCODE).to_string(),
            )
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(raw_query.map_or(0, |q| q.len() + 16));
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// The query parameters, percent-decoded (`+` stays a literal `+`, as SigV4 signers send a
/// space as `%20`). Empty segments (`a=1&&b=2`) are skipped.
fn query_pairs(raw: &str) -> impl Iterator<Item = (Cow<'_, [u8]>, Cow<'_, [u8]>)> {
    raw.split('&').filter(|s| !s.is_empty()).map(|param| {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        (
            percent_decode_str(name).into(),
            percent_decode_str(value).into(),
        )
    })
}

/// Looks up a query parameter by exact (case-sensitive) decoded name.
pub(crate) fn query_param(raw: Option<&str>, name: &str) -> Option<String> {
    query_pairs(raw?)
        .find(|(n, _)| n.as_ref() == name.as_bytes())
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
}

/// The canonical request:
/// `METHOD\nURI\nQUERY\nname:value\n...\n\nSIGNED;HEADERS\nPAYLOAD-HASH`.
///
/// Header values are trimmed and inner runs of spaces collapsed; several values of one header
/// are joined by `,` in the order received. A signed header absent from the request signs an
/// empty value (and so will not match what the client computed).
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    headers: &http::HeaderMap,
    signed_headers: &str,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + canonical_uri.len() + canonical_query.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query.as_bytes());
    out.push(b'\n');
    for name in signed_headers.split(';') {
        let name = name.trim().to_ascii_lowercase();
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_trimmed_value(&mut out, value.as_bytes());
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// Appends a header value with leading/trailing whitespace removed and every inner run of
/// spaces or tabs collapsed to one space.
fn push_trimmed_value(out: &mut Vec<u8>, value: &[u8]) {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let mut in_space = false;
    let start = out.len();
    for b in value {
        if is_space(b) {
            in_space = true;
            continue;
        }
        if in_space && out.len() > start {
            out.push(b' ');
        }
        in_space = false;
        out.push(*b);
    }
}

/// `AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n{hex(sha256(canonical request))}`.
pub fn string_to_sign(timestamp: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request))
    )
}

/// `Credential=AK/DATE/REGION/SERVICE/aws4_request`, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
}

impl Credential {
    /// Parses the credential; on failure returns the client-facing reason.
    pub fn parse(value: &str) -> Result<Credential, String> {
        // The access key id is everything before the last four parts.
        let mut parts = value.rsplitn(5, '/');
        let terminal = parts.next().unwrap_or_default();
        let service = parts.next();
        let region = parts.next();
        let date = parts.next();
        let access_key = parts.next();
        let (Some(service), Some(region), Some(date), Some(access_key)) =
            (service, region, date, access_key)
        else {
            return Err(
                "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."
                    .to_string(),
            );
        };
        if terminal != "aws4_request" {
            return Err(format!(
                "incorrect terminal '{terminal}'. This endpoint uses 'aws4_request'."
            ));
        }
        if access_key.is_empty() {
            return Err("the access key id in the Credential is empty.".to_string());
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "incorrect date format '{date}'. This date in the credential must be in the format \"yyyyMMdd\"."
            ));
        }
        Ok(Credential {
            access_key: access_key.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
        })
    }

    /// `DATE/REGION/SERVICE/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }

    /// The S3 checks on the scope: the server's region and service `s3`.
    pub(crate) fn check_scope(&self, region: &str) -> Result<(), String> {
        if self.service != S3_SERVICE {
            return Err(format!(
                "incorrect service '{}'. This endpoint belongs to '{S3_SERVICE}'.",
                self.service
            ));
        }
        if self.region != region {
            return Err(format!(
                "the region '{}' is wrong; expecting '{region}'",
                self.region
            ));
        }
        Ok(())
    }
}

/// Parses an ISO 8601 basic timestamp, `YYYYMMDDTHHMMSSZ`.
pub fn parse_amz_date(value: &str) -> Option<OffsetDateTime> {
    let b = value.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    // Works on bytes: a multi-byte character must fail the parse, not split a slice.
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(num(6..8)?).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Parses an RFC 7231 `Date` header (`Fri, 24 May 2013 00:00:00 GMT`).
fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(value.trim(), format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Formats a time as `YYYYMMDDTHHMMSSZ`.
fn format_amz_date(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// What `x-amz-content-sha256` (or `X-Amz-Content-Sha256`) says about the body.
enum ContentHash {
    Sha256([u8; 32]),
    Unsigned,
    Streaming { signed: bool, trailer: bool },
}

fn parse_content_hash(value: &str) -> Result<ContentHash, AuthError> {
    match value {
        UNSIGNED_PAYLOAD => Ok(ContentHash::Unsigned),
        STREAMING_PAYLOAD => Ok(ContentHash::Streaming {
            signed: true,
            trailer: false,
        }),
        STREAMING_PAYLOAD_TRAILER => Ok(ContentHash::Streaming {
            signed: true,
            trailer: true,
        }),
        STREAMING_UNSIGNED_TRAILER => Ok(ContentHash::Streaming {
            signed: false,
            trailer: true,
        }),
        v if v.starts_with("STREAMING-AWS4-ECDSA-P256-SHA256") => Err(AuthError::NotImplemented(
            "Signature Version 4A (AWS4-ECDSA-P256-SHA256) streaming payloads are not supported; \
             sign with AWS4-HMAC-SHA256."
                .to_string(),
        )),
        v => parse_signature(v).map(ContentHash::Sha256).ok_or_else(|| {
            AuthError::InvalidArgument(
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, \
                 STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, \
                 or a valid sha256 value."
                    .to_string(),
            )
        }),
    }
}

fn header_str<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Authenticates a request; see [`super::authenticate`].
pub(crate) fn authenticate(
    req: &AuthRequest<'_>,
    region: &str,
    now: SystemTime,
    secrets: &dyn SecretLookup,
) -> Result<Authenticated, AuthError> {
    let authorization = req.headers.get(http::header::AUTHORIZATION);
    let presigned = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"]
        .iter()
        .any(|name| query_param(req.raw_query, name).is_some());
    match (authorization, presigned) {
        (Some(_), true) => Err(AuthError::InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified"
                .to_string(),
        )),
        (Some(value), false) => {
            let value = value.to_str().map_err(|_| {
                AuthError::AuthorizationHeaderMalformed("it is not valid ASCII.".to_string())
            })?;
            authenticate_header(req, value, region, OffsetDateTime::from(now), secrets)
        }
        (None, true) => authenticate_presigned(req, region, OffsetDateTime::from(now), secrets),
        (None, false) => Ok(Authenticated {
            principal: Principal::Anonymous,
            payload: PayloadCheck::None,
        }),
    }
}

fn sigv4a_not_implemented() -> AuthError {
    AuthError::NotImplemented(
        "Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported; sign requests with \
         AWS4-HMAC-SHA256."
            .to_string(),
    )
}

/// The three parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
/// Signature=...`.
struct HeaderAuth<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<HeaderAuth<'_>, AuthError> {
    let value = value.trim();
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    match scheme {
        ALGORITHM => {}
        ECDSA_ALGORITHM => return Err(sigv4a_not_implemented()),
        _ => {
            return Err(AuthError::InvalidArgument(
                "Unsupported Authorization Type".to_string(),
            ))
        }
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, val) = part.split_once('=').ok_or_else(|| {
            AuthError::AuthorizationHeaderMalformed(format!(
                "the component '{part}' is not of the form key=value."
            ))
        })?;
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(AuthError::AuthorizationHeaderMalformed(format!(
                    "unknown component '{other}'."
                )))
            }
        };
        if slot.replace(val.trim()).is_some() {
            return Err(AuthError::AuthorizationHeaderMalformed(format!(
                "the component '{}' is repeated.",
                key.trim()
            )));
        }
    }
    let missing = |name: &str| {
        AuthError::AuthorizationHeaderMalformed(format!("the {name} component is missing."))
    };
    Ok(HeaderAuth {
        credential: credential.ok_or_else(|| missing("Credential"))?,
        signed_headers: signed_headers
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("SignedHeaders"))?,
        signature: signature.ok_or_else(|| missing("Signature"))?,
    })
}

/// S3's rules on `SignedHeaders`: `host` must be signed, and so must every `x-amz-*` header
/// present (S3 answers AccessDenied "There were headers present in the request which were
/// not signed").
fn check_signed_headers(headers: &http::HeaderMap, signed_headers: &str) -> Result<(), AuthError> {
    let signed: Vec<String> = signed_headers
        .split(';')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if !signed.iter().any(|h| h == "host") {
        return Err(AuthError::AccessDenied(
            "There were headers present in the request which were not signed: host".to_string(),
        ));
    }
    let mut unsigned: Vec<&str> = headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|name| {
            name.starts_with("x-amz-")
                && !UNSIGNED_AMZ_HEADERS_ALLOWED.contains(name)
                && !signed.iter().any(|s| s == name)
        })
        .collect();
    if unsigned.is_empty() {
        return Ok(());
    }
    unsigned.sort_unstable();
    Err(AuthError::AccessDenied(format!(
        "There were headers present in the request which were not signed: {}",
        unsigned.join(", ")
    )))
}

fn check_skew(request_time: OffsetDateTime, now: OffsetDateTime) -> Result<(), AuthError> {
    if (now - request_time).whole_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(AuthError::RequestTimeTooSkewed);
    }
    Ok(())
}

fn authenticate_header(
    req: &AuthRequest<'_>,
    authorization: &str,
    region: &str,
    now: OffsetDateTime,
    secrets: &dyn SecretLookup,
) -> Result<Authenticated, AuthError> {
    let auth = parse_authorization(authorization)?;
    let credential =
        Credential::parse(auth.credential).map_err(AuthError::AuthorizationHeaderMalformed)?;
    credential
        .check_scope(region)
        .map_err(AuthError::AuthorizationHeaderMalformed)?;

    // x-amz-date wins over Date; the string to sign carries the timestamp in ISO 8601 form.
    let missing_date = || {
        AuthError::AccessDenied(
            "AWS authentication requires a valid Date or x-amz-date header".to_string(),
        )
    };
    let (request_time, timestamp) = match header_str(req.headers, "x-amz-date") {
        Some(v) => (parse_amz_date(v.trim()).ok_or_else(missing_date)?, v.trim()),
        None => {
            let date = header_str(req.headers, "date").ok_or_else(missing_date)?;
            let t = parse_http_date(date).ok_or_else(missing_date)?;
            (t, "")
        }
    };
    let timestamp: Cow<'_, str> = if timestamp.is_empty() {
        format_amz_date(request_time).into()
    } else {
        timestamp.into()
    };
    if !timestamp.starts_with(&credential.date) {
        return Err(AuthError::AuthorizationHeaderMalformed(format!(
            "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{}\".",
            credential.date,
            &timestamp[..8]
        )));
    }

    let payload_hash = header_str(req.headers, "x-amz-content-sha256")
        .map(str::trim)
        .ok_or_else(|| {
            AuthError::InvalidRequest(
                "Missing required header for this request: x-amz-content-sha256".to_string(),
            )
        })?;
    let content_hash = parse_content_hash(payload_hash)?;
    check_signed_headers(req.headers, auth.signed_headers)?;

    let secret = secrets
        .secret_key(&credential.access_key)
        .ok_or(AuthError::InvalidAccessKeyId)?;
    check_skew(request_time, now)?;

    let key = SigningKey::derive(&secret, &credential.date, &credential.region, S3_SERVICE);
    let scope = credential.scope();
    let creq = canonical_request(
        req.method.as_str(),
        &canonical_uri(req.raw_path),
        &canonical_query(req.raw_query, false),
        req.headers,
        auth.signed_headers,
        payload_hash,
    );
    let sts = string_to_sign(&timestamp, &scope, &creq);
    let expected = key.sign(sts.as_bytes());
    let supplied = parse_signature(auth.signature).ok_or(AuthError::SignatureDoesNotMatch)?;
    if !signatures_equal(&expected, &supplied) {
        return Err(AuthError::SignatureDoesNotMatch);
    }

    let payload = match content_hash {
        ContentHash::Sha256(hash) => PayloadCheck::Sha256(hash),
        ContentHash::Unsigned => PayloadCheck::None,
        ContentHash::Streaming { signed, trailer } => {
            let decoded_length = match header_str(req.headers, "x-amz-decoded-content-length") {
                None => None,
                Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                    AuthError::InvalidArgument(
                        "x-amz-decoded-content-length must be a non-negative integer".to_string(),
                    )
                })?),
            };
            let declared_trailers = header_str(req.headers, "x-amz-trailer")
                .map(|v| {
                    v.split(',')
                        .map(|n| n.trim().to_ascii_lowercase())
                        .filter(|n| !n.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let mode = if signed {
                ChunkedMode::signed(key, timestamp.into_owned(), scope, supplied, trailer)
            } else {
                ChunkedMode::unsigned_trailer()
            };
            PayloadCheck::Chunked(
                mode.with_decoded_length(decoded_length)
                    .with_declared_trailers(declared_trailers),
            )
        }
    };
    Ok(Authenticated {
        principal: Principal::AccessKey(credential.access_key),
        payload,
    })
}

fn authenticate_presigned(
    req: &AuthRequest<'_>,
    region: &str,
    now: OffsetDateTime,
    secrets: &dyn SecretLookup,
) -> Result<Authenticated, AuthError> {
    let param = |name: &str| query_param(req.raw_query, name);
    let query_error = AuthError::AuthorizationQueryParametersError;
    let (
        Some(algorithm),
        Some(credential),
        Some(signature),
        Some(date),
        Some(signed_headers),
        Some(expires),
    ) = (
        param("X-Amz-Algorithm"),
        param("X-Amz-Credential"),
        param("X-Amz-Signature"),
        param("X-Amz-Date"),
        param("X-Amz-SignedHeaders"),
        param("X-Amz-Expires"),
    )
    else {
        return Err(query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, \
             X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and \
             X-Amz-Expires parameters."
                .to_string(),
        ));
    };
    match algorithm.as_str() {
        ALGORITHM => {}
        ECDSA_ALGORITHM => return Err(sigv4a_not_implemented()),
        _ => {
            return Err(query_error(
                "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"".to_string(),
            ))
        }
    }
    let credential = Credential::parse(&credential)
        .and_then(|c| c.check_scope(region).map(|()| c))
        .map_err(|reason| {
            query_error(format!(
                "Error parsing the X-Amz-Credential parameter; {reason}"
            ))
        })?;
    let request_time = parse_amz_date(&date).ok_or_else(|| {
        query_error(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"".to_string(),
        )
    })?;
    if !date.starts_with(&credential.date) {
        return Err(query_error(format!(
            "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{}\".",
            credential.date,
            &date[..8]
        )));
    }
    let expires: i64 = expires
        .parse()
        .map_err(|_| query_error("X-Amz-Expires should be a number".to_string()))?;
    if expires < 1 {
        return Err(query_error(
            "X-Amz-Expires must be a positive number of seconds".to_string(),
        ));
    }
    if expires > MAX_PRESIGNED_EXPIRES {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800".to_string(),
        ));
    }
    check_signed_headers(req.headers, &signed_headers)?;

    let secret = secrets
        .secret_key(&credential.access_key)
        .ok_or(AuthError::InvalidAccessKeyId)?;
    if (request_time - now).whole_seconds() > MAX_SKEW_SECONDS {
        return Err(AuthError::AccessDenied(
            "Request is not valid yet".to_string(),
        ));
    }
    if (now - request_time).whole_seconds() > expires {
        return Err(AuthError::AccessDenied("Request has expired".to_string()));
    }

    // A presigned URL signs UNSIGNED-PAYLOAD unless it carries the body hash itself.
    let payload_hash = param("X-Amz-Content-Sha256").unwrap_or_else(|| UNSIGNED_PAYLOAD.into());
    let payload = match parse_content_hash(&payload_hash)? {
        ContentHash::Sha256(hash) => PayloadCheck::Sha256(hash),
        ContentHash::Unsigned => PayloadCheck::None,
        ContentHash::Streaming { .. } => {
            return Err(AuthError::InvalidArgument(
                "aws-chunked payloads cannot be sent with a presigned URL".to_string(),
            ))
        }
    };

    let key = SigningKey::derive(&secret, &credential.date, &credential.region, S3_SERVICE);
    let creq = canonical_request(
        req.method.as_str(),
        &canonical_uri(req.raw_path),
        &canonical_query(req.raw_query, true),
        req.headers,
        &signed_headers,
        &payload_hash,
    );
    let sts = string_to_sign(&date, &credential.scope(), &creq);
    let expected = key.sign(sts.as_bytes());
    let supplied = parse_signature(&signature).ok_or(AuthError::SignatureDoesNotMatch)?;
    if !signatures_equal(&expected, &supplied) {
        return Err(AuthError::SignatureDoesNotMatch);
    }
    Ok(Authenticated {
        principal: Principal::AccessKey(credential.access_key),
        payload,
    })
}
