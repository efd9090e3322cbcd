//! AWS Signature Version 2 as S3 speaks it: `Authorization: AWS AccessKeyId:Signature` and
//! the presigned query form (`AWSAccessKeyId`, `Expires`, `Signature`).
//!
//! The signature is `Base64(HMAC-SHA1(secret, StringToSign))` with
//! `StringToSign = VERB\nContent-MD5\nContent-Type\nDate\nCanonicalizedAmzHeaders
//! CanonicalizedResource`. Old clients still speak it: boto3 presigns with it by default,
//! s3cmd and backup tools sign headers with it.
//!
//! Limitation: the canonical resource is built from the path as received, which is right
//! for path-style requests (`/bucket/key`) and for requests naming no bucket. A
//! virtual-hosted-style request (`bucket.DOMAIN/key`) signs `/bucket/key` while its path is
//! `/key`; [`AuthRequest`] does not carry the bucket taken from the `Host`, so such a
//! request fails with SignatureDoesNotMatch until the HTTP layer passes it.

use hmac::{Hmac, Mac};
use percent_encoding::percent_decode_str;
use sha1::Sha1;
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

use super::sigv4::{parse_amz_date, query_param};
use super::{AuthError, AuthRequest, Authenticated, PayloadCheck, Principal, SecretLookup};

/// The `Authorization` scheme of Signature Version 2.
pub const SCHEME: &str = "AWS";

/// How far a header-signed request's timestamp may be from the server clock.
const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// The query parameters that name a sub-resource or override a response header, and so are
/// part of the canonical resource; every other parameter is left out. This is the list
/// AWS's own SigV2 signer (botocore `HmacV1Auth.QSAOfInterest`) uses, a superset of the
/// one in the S3 documentation ("Constructing the CanonicalizedResource element"), so that
/// what boto3 signs is what this server checks. Sorted.
const SUB_RESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

type HmacSha1 = Hmac<Sha1>;

/// `HMAC-SHA1(secret, string_to_sign)`, the raw signature (Base64-encode it for the wire).
pub fn sign(secret: &str, string_to_sign: &[u8]) -> [u8; 20] {
    let mut mac =
        HmacSha1::new_from_slice(secret.as_bytes()).expect("HMAC accepts a key of any length");
    mac.update(string_to_sign);
    mac.finalize().into_bytes().into()
}

/// The `x-amz-*` headers, names lower-cased and sorted, each value trimmed, several values of
/// one name joined by `,` in the order received: `name:value\n` per name.
pub fn canonical_amz_headers(headers: &http::HeaderMap) -> Vec<u8> {
    // `HeaderMap` names are already lower case.
    let mut names: Vec<&str> = headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|name| name.starts_with("x-amz-"))
        .collect();
    names.sort_unstable();
    let mut out = Vec::new();
    for name in names {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in headers.get_all(name).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(value.as_bytes().trim_ascii());
        }
        out.push(b'\n');
    }
    out
}

/// The canonical resource of a path-style request: the path exactly as received (still
/// percent-encoded, `/` when empty), then `?` and the sub-resources present, sorted by name,
/// each `name` or `name=value` with the value percent-decoded, joined by `&`.
pub fn canonical_resource(raw_path: &str, raw_query: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw_path.len() + 1);
    out.extend_from_slice(if raw_path.is_empty() { "/" } else { raw_path }.as_bytes());
    let mut sub: Vec<(&str, Vec<u8>)> = raw_query
        .unwrap_or("")
        .split('&')
        .filter_map(|param| {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            let name = SUB_RESOURCES
                .iter()
                .find(|s| percent_decode_str(name).eq(s.bytes()))?;
            Some((*name, percent_decode_str(value).collect()))
        })
        .collect();
    // Stable, so repeated parameters keep the order they were sent in.
    sub.sort_by_key(|(name, _)| *name);
    for (i, (name, value)) in sub.iter().enumerate() {
        out.push(if i == 0 { b'?' } else { b'&' });
        out.extend_from_slice(name.as_bytes());
        if !value.is_empty() {
            out.push(b'=');
            out.extend_from_slice(value);
        }
    }
    out
}

/// `VERB\nContent-MD5\nContent-Type\n{date}\n{amz headers}{resource}`, where `date` is the
/// `Date` header, empty when `x-amz-date` is present, or `Expires` for a presigned URL.
pub fn string_to_sign(
    method: &str,
    headers: &http::HeaderMap,
    date: &[u8],
    raw_path: &str,
    raw_query: Option<&str>,
) -> Vec<u8> {
    let header = |name: &str| {
        headers
            .get(name)
            .map_or(&[][..], |v| v.as_bytes().trim_ascii())
    };
    let mut out = Vec::with_capacity(128 + raw_path.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(header("content-md5"));
    out.push(b'\n');
    out.extend_from_slice(header("content-type"));
    out.push(b'\n');
    out.extend_from_slice(date);
    out.push(b'\n');
    out.extend_from_slice(&canonical_amz_headers(headers));
    out.extend_from_slice(&canonical_resource(raw_path, raw_query));
    out
}

/// Whether the `Authorization` header uses the Signature Version 2 scheme.
pub(crate) fn is_header_auth(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(SCHEME.as_bytes()))
        .is_some_and(|rest| rest.first() == Some(&b' '))
}

/// Whether the query string carries a Signature Version 2 presigned signature.
pub(crate) fn is_presigned(raw_query: Option<&str>) -> bool {
    query_param(raw_query, "AWSAccessKeyId").is_some()
        && query_param(raw_query, "Signature").is_some()
}

/// Parses a request timestamp: the HTTP date forms (RFC 1123 with `GMT`, RFC 850, asctime),
/// RFC 2822 with a numeric zone (`+0000`, as the S3 documentation writes it), or ISO 8601
/// basic (`20130524T000000Z`).
fn parse_date(value: &str) -> Option<OffsetDateTime> {
    let value = value.trim();
    httpdate::parse_http_date(value)
        .ok()
        .map(OffsetDateTime::from)
        .or_else(|| OffsetDateTime::parse(value, &Rfc2822).ok())
        .or_else(|| parse_amz_date(value))
}

/// Decodes a Base64 signature and compares it with the expected one in constant time.
fn signature_matches(expected: &[u8; 20], supplied_base64: &str) -> bool {
    use base64::Engine as _;
    let Ok(supplied) = base64::engine::general_purpose::STANDARD.decode(supplied_base64.trim())
    else {
        return false;
    };
    // Lengths are public (always 20 for SHA-1); only the contents are compared in constant
    // time.
    supplied.len() == expected.len() && bool::from(expected.ct_eq(supplied.as_slice()))
}

/// Whether `signature` signs the request with `date` in the Date slot.
///
/// A path-style bucket path without its trailing slash (`/bucket`) also verifies as
/// `/bucket/`: botocore sends the former and signs the latter, which is the canonical
/// resource of the same bucket sent virtual-hosted style (`GET /` on `bucket.DOMAIN`). Both
/// name the same bucket, so accepting either signs no other resource.
fn verify(req: &AuthRequest<'_>, secret: &str, date: &[u8], signature: &str) -> bool {
    let check = |path: &str| {
        let sts = string_to_sign(req.method.as_str(), req.headers, date, path, req.raw_query);
        signature_matches(&sign(secret, &sts), signature)
    };
    let path = req.raw_path;
    if check(path) {
        return true;
    }
    let bucket_only = path.len() > 1 && path.starts_with('/') && !path[1..].contains('/');
    bucket_only && check(&format!("{path}/"))
}

/// Authenticates a Signature Version 2 request; the caller has checked that exactly one of
/// [`is_header_auth`] and [`is_presigned`] holds.
pub(crate) fn authenticate(
    req: &AuthRequest<'_>,
    now: OffsetDateTime,
    secrets: &dyn SecretLookup,
) -> Result<Authenticated, AuthError> {
    if is_header_auth(req.headers) {
        authenticate_header(req, now, secrets)
    } else {
        authenticate_presigned(req, now, secrets)
    }
}

fn authenticate_header(
    req: &AuthRequest<'_>,
    now: OffsetDateTime,
    secrets: &dyn SecretLookup,
) -> Result<Authenticated, AuthError> {
    let malformed = || {
        AuthError::InvalidArgument(
            "AWS authorization header is invalid. Expected AwsAccessKeyId:signature".to_string(),
        )
    };
    let value = req
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(malformed)?;
    let credentials = value
        .strip_prefix(SCHEME)
        .map(str::trim)
        .ok_or_else(malformed)?;
    let (access_key, signature) = credentials
        .split_once(':')
        .filter(|(key, sig)| !key.is_empty() && !sig.is_empty())
        .ok_or_else(malformed)?;

    // With x-amz-date the Date slot is empty: x-amz-date is signed among the amz headers.
    let missing_date = || {
        AuthError::AccessDenied(
            "AWS authentication requires a valid Date or x-amz-date header".to_string(),
        )
    };
    let (request_time, date_slot) = match req.headers.get("x-amz-date") {
        Some(v) => {
            let t = v.to_str().ok().and_then(parse_date);
            (t.ok_or_else(missing_date)?, &[][..])
        }
        None => {
            let v = req
                .headers
                .get(http::header::DATE)
                .ok_or_else(missing_date)?;
            let t = v.to_str().ok().and_then(parse_date);
            (t.ok_or_else(missing_date)?, v.as_bytes().trim_ascii())
        }
    };

    let secret = secrets
        .secret_key(access_key)
        .ok_or(AuthError::InvalidAccessKeyId)?;
    if (now - request_time).whole_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(AuthError::RequestTimeTooSkewed);
    }
    if !verify(req, &secret, date_slot, signature) {
        return Err(AuthError::SignatureDoesNotMatch);
    }
    Ok(Authenticated {
        principal: Principal::AccessKey(access_key.to_string()),
        payload: PayloadCheck::None,
    })
}

fn authenticate_presigned(
    req: &AuthRequest<'_>,
    now: OffsetDateTime,
    secrets: &dyn SecretLookup,
) -> Result<Authenticated, AuthError> {
    let param = |name: &str| query_param(req.raw_query, name);
    let (Some(access_key), Some(signature)) = (param("AWSAccessKeyId"), param("Signature")) else {
        return Err(AuthError::AccessDenied(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId \
             parameters"
                .to_string(),
        ));
    };
    let expires = param("Expires").ok_or_else(|| {
        AuthError::AccessDenied(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId \
             parameters"
                .to_string(),
        )
    })?;
    // The string to sign carries `Expires` as sent; the number is only for the clock.
    let expires_at: i64 = expires.parse().map_err(|_| {
        AuthError::AccessDenied("Invalid date (should be seconds since epoch)".to_string())
    })?;

    let secret = secrets
        .secret_key(&access_key)
        .ok_or(AuthError::InvalidAccessKeyId)?;
    if now.unix_timestamp() > expires_at {
        return Err(AuthError::AccessDenied("Request has expired".to_string()));
    }
    if !verify(req, &secret, expires.as_bytes(), &signature) {
        return Err(AuthError::SignatureDoesNotMatch);
    }
    Ok(Authenticated {
        principal: Principal::AccessKey(access_key),
        payload: PayloadCheck::None,
    })
}

#[cfg(test)]
#[path = "sigv2_tests.rs"]
mod tests;
