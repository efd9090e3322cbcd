//! The Secret an `AccessKey` produces: everything an app needs to reach its buckets, under
//! the names common tools read (AWS SDK environment, the ObjectBucketClaim convention and
//! COSI's `COSI_S3_*`), owned by the AccessKey so it goes away with it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use super::{controller_ref, S3_PORT};
use crate::crd::AccessKey;

/// Annotation with a hash of the Secret's data: a Deployment can copy it into its pod
/// template (or a tool like Reloader can watch it) to restart apps when the key rotates.
pub const CONTENT_HASH: &str = "coffer.dev/content-hash";

/// Annotation holding the rotation state (retired keys with their revocation times, the
/// last rotation, the rotation request answered) as JSON. It is written in the same update
/// that puts a new key into the Secret, so the record of the replaced key can never be lost
/// between the two (a failed status write afterwards loses nothing).
pub const ROTATION_STATE: &str = "coffer.dev/rotation";

/// What goes into the Secret besides the AccessKey itself.
pub struct AccessKeySecretInput<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// The store's client Service host (`<store>.<ns>.svc`).
    pub host: &'a str,
    /// Whether the store serves HTTPS (`spec.tls`): the endpoints are then `https://`.
    pub tls: bool,
    pub region: &'a str,
    /// The S3 names of the key's buckets, in spec order; the first is `BUCKET_NAME`.
    pub buckets: &'a [String],
    /// The rotation state, as the `coffer.dev/rotation` annotation's JSON.
    pub rotation_state: &'a str,
}

/// Hex SHA-256 over the sorted keys and values.
pub fn content_hash(data: &BTreeMap<String, ByteString>) -> String {
    let mut h = Sha256::new();
    for (k, v) in data {
        h.update((k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update((v.0.len() as u64).to_le_bytes());
        h.update(&v.0);
    }
    hex::encode(h.finalize())
}

pub fn access_key_secret(key: &AccessKey, input: &AccessKeySecretInput<'_>) -> Secret {
    let scheme = if input.tls { "https" } else { "http" };
    let endpoint = format!("{scheme}://{}:{S3_PORT}", input.host);
    let first = input.buckets.first().cloned().unwrap_or_default();
    let data: BTreeMap<String, ByteString> = [
        ("AWS_ACCESS_KEY_ID", input.access_key_id.to_string()),
        ("AWS_SECRET_ACCESS_KEY", input.secret_access_key.to_string()),
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("AWS_REGION", input.region.to_string()),
        ("BUCKET_NAME", first),
        ("BUCKET_NAMES", input.buckets.join(",")),
        ("BUCKET_HOST", input.host.to_string()),
        ("BUCKET_PORT", S3_PORT.to_string()),
        ("BUCKET_REGION", input.region.to_string()),
        ("COSI_S3_ENDPOINT", endpoint),
        ("COSI_S3_ACCESS_KEY_ID", input.access_key_id.to_string()),
        (
            "COSI_S3_ACCESS_SECRET_KEY",
            input.secret_access_key.to_string(),
        ),
        ("COSI_S3_REGION", input.region.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
    .collect();
    let hash = content_hash(&data);
    Secret {
        metadata: ObjectMeta {
            name: Some(key.secret_name()),
            namespace: key.namespace(),
            labels: Some(
                [
                    (
                        "app.kubernetes.io/managed-by".to_string(),
                        "coffer-operator".to_string(),
                    ),
                    ("coffer.dev/access-key".to_string(), key.name_any()),
                ]
                .into(),
            ),
            annotations: Some(
                [
                    (CONTENT_HASH.to_string(), hash),
                    (ROTATION_STATE.to_string(), input.rotation_state.to_string()),
                ]
                .into(),
            ),
            owner_references: Some(vec![controller_ref(key)]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    }
}
