//! The SigV4 request path: canonical URI, canonical query and canonical request built from
//! untrusted request parts, then full authentication (Authorization header or presigned
//! query parsing, scope checks, signature comparison). Nothing may panic.
//!
//! Input: `METHOD\nRAW-PATH\nRAW-QUERY\nName: value\n…` (header lines that are not valid
//! HTTP are skipped; an empty query line means no query).
#![no_main]

use std::time::{Duration, SystemTime};

use coffer_server::auth::{self, sigv4, AuthRequest, SecretLookup};
use libfuzzer_sys::fuzz_target;

struct Keys;

impl SecretLookup for Keys {
    fn secret_key(&self, access_key: &str) -> Option<String> {
        (access_key == "AKIDFUZZ").then(|| "fuzz-secret-key".to_string())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or("GET").trim_end_matches('\r');
    let raw_path = lines.next().unwrap_or("/").trim_end_matches('\r');
    let raw_query = lines
        .next()
        .map(|q| q.trim_end_matches('\r'))
        .filter(|q| !q.is_empty());
    let mut headers = http::HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.trim_end_matches('\r').split_once(':') else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.trim().as_bytes()),
            http::HeaderValue::from_str(value.trim()),
        ) {
            headers.append(n, v);
        }
    }
    let uri = sigv4::canonical_uri(raw_path);
    for presigned in [false, true] {
        let query = sigv4::canonical_query(raw_query, presigned);
        let _ = sigv4::canonical_request(
            method,
            &uri,
            &query,
            &headers,
            "host;x-amz-content-sha256;x-amz-date",
            sigv4::UNSIGNED_PAYLOAD,
        );
    }
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        return;
    };
    // 2025-01-01T00:00:00Z: seeds signed at that time verify, so the fuzzer starts past the
    // signature check.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600);
    let _ = auth::authenticate(
        &AuthRequest {
            method: &method,
            raw_path,
            raw_query,
            headers: &headers,
        },
        "us-east-1",
        now,
        &Keys,
    );
});
