//! POST Object policy documents (Base64 JSON from browser forms): parsing, and checking a
//! parsed policy against form fields taken from the same input, never panic.
//!
//! Input: `POLICY-JSON\0name=value\0name=value…`.
#![no_main]

use base64::Engine as _;
use coffer_server::auth::post_policy::{FormFields, PostPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let doc = parts.next().unwrap_or_default();
    let encoded = base64::engine::general_purpose::STANDARD.encode(doc);
    let Ok(policy) = PostPolicy::parse(&encoded) else {
        return;
    };
    let mut fields = FormFields::new();
    for part in parts {
        let text = String::from_utf8_lossy(part);
        let (n, v) = text.split_once('=').unwrap_or((&text, ""));
        fields.push(n, v);
    }
    let _ = policy.content_length_range();
    let _ = policy.check(&fields, "fuzz-bucket", time::OffsetDateTime::UNIX_EPOCH);
});
