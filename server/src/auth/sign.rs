//! Signing requests as a client (the `coffer-server admin` commands), with the same
//! canonicalisation the verifier uses.

use std::time::SystemTime;

use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::sigv4::{
    canonical_query, canonical_request, canonical_uri, string_to_sign, SigningKey, ALGORITHM,
    S3_SERVICE,
};

/// Adds `x-amz-date`, `x-amz-content-sha256` and `Authorization` to `headers` for a request
/// with `body`. `headers` must already hold `host`.
#[allow(clippy::too_many_arguments)]
pub fn sign_request(
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &mut HeaderMap,
    body: &[u8],
    access_key: &str,
    secret_key: &str,
    region: &str,
    now: SystemTime,
) {
    let t = OffsetDateTime::from(now);
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let stamp = t.format(&fmt).expect("a UTC timestamp always formats");
    let date = &stamp[..8];
    let payload = hex::encode(Sha256::digest(body));
    headers.insert(
        "x-amz-date",
        HeaderValue::from_str(&stamp).expect("timestamps are ASCII"),
    );
    headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_str(&payload).expect("hex is ASCII"),
    );
    let signed = "host;x-amz-content-sha256;x-amz-date";
    let creq = canonical_request(
        method,
        &canonical_uri(raw_path),
        &canonical_query(raw_query, false),
        headers,
        signed,
        &payload,
    );
    let scope = format!("{date}/{region}/{S3_SERVICE}/aws4_request");
    let sts = string_to_sign(&stamp, &scope, &creq);
    let key = SigningKey::derive(secret_key, date, region, S3_SERVICE);
    let signature = hex::encode(key.sign(sts.as_bytes()));
    let auth = format!("{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}");
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&auth).expect("the authorization value is ASCII"),
    );
}

/// The SigV4 form fields that sign a browser-upload policy (`policy_base64`, the Base64 of the
/// policy document): `x-amz-algorithm`, `x-amz-credential`, `x-amz-date`, `x-amz-signature`.
/// The policy should carry conditions on the first three (they are form fields too).
pub fn post_policy_v4_fields(
    policy_base64: &str,
    access_key: &str,
    secret_key: &str,
    region: &str,
    now: SystemTime,
) -> Vec<(&'static str, String)> {
    let (stamp, credential) = post_policy_v4_credential(access_key, region, now);
    let key = SigningKey::derive(secret_key, &stamp[..8], region, S3_SERVICE);
    let signature = hex::encode(key.sign(policy_base64.as_bytes()));
    vec![
        ("x-amz-algorithm", ALGORITHM.to_string()),
        ("x-amz-credential", credential),
        ("x-amz-date", stamp),
        ("x-amz-signature", signature),
    ]
}

/// The `x-amz-date` and `x-amz-credential` values of a SigV4 POST form signed at `now`, for
/// the policy's conditions (sign it with [`post_policy_v4_fields`] at the same `now`).
pub fn post_policy_v4_credential(
    access_key: &str,
    region: &str,
    now: SystemTime,
) -> (String, String) {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let stamp = OffsetDateTime::from(now)
        .format(&fmt)
        .expect("a UTC timestamp always formats");
    let credential = format!(
        "{access_key}/{}/{region}/{S3_SERVICE}/aws4_request",
        &stamp[..8]
    );
    (stamp, credential)
}

/// The SigV2 `signature` form field of a browser-upload policy: Base64(HMAC-SHA1).
pub fn post_policy_v2_signature(policy_base64: &str, secret_key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(super::sigv2::sign(secret_key, policy_base64.as_bytes()))
}
