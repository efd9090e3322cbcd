//! Bucket policy documents (PutBucketPolicy bodies are untrusted JSON): parsing and
//! validation never panic, and a policy that parses evaluates any request without panicking.
#![no_main]

use coffer_server::iam::policy::{object_arn, Policy, PolicyRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(policy) = Policy::parse(data, "fuzz-bucket") else {
        return;
    };
    for (principal, action, key) in [
        (None, "s3:GetObject", "index.html"),
        (Some("AKIDFUZZ"), "s3:PutObject", "a/b/c"),
        (Some("root"), "s3:ListBucket", ""),
    ] {
        let request = PolicyRequest::new(principal, action, object_arn("fuzz-bucket", key))
            .with("aws:SourceIp", "192.0.2.10")
            .with("aws:SecureTransport", "false")
            .with("aws:CurrentTime", "2025-01-01T00:00:00Z")
            .with("aws:EpochTime", "1735689600")
            .with("s3:prefix", "a/")
            .with("s3:max-keys", "100");
        let _ = policy.evaluate(&request);
    }
    let _ = policy.is_public();
});
