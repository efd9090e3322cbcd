//! `Bucket`: one S3 bucket inside a store, with its settings.
// Several `printcolumn(…)` arguments share `type_ = "string"`, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::{Condition, StoreRef};

/// A valid S3 bucket name as a regular expression (length and characters); the CEL rules
/// below add "no `..`" and "not an IPv4 address".
pub const BUCKET_NAME_PATTERN: &str = "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$";

#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "coffer.dev",
    version = "v1alpha1",
    kind = "Bucket",
    plural = "buckets",
    shortname = "cbkt",
    category = "coffer",
    namespaced,
    status = "BucketStatus",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Bucket", type_ = "string", json_path = ".status.bucketName"),
    printcolumn(name = "Store", type_ = "string", json_path = ".spec.storeRef.name"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("has(self.spec.bucketName) || (size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$') && !self.metadata.name.contains('..'))").message("metadata.name is not a valid S3 bucket name: set spec.bucketName"),
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.bucketName) == has(oldSelf.bucketName) && (!has(self.bucketName) || self.bucketName == oldSelf.bucketName)",
        "message": "bucketName is immutable"
    },
    {
        "rule": "has(self.objectLock) == has(oldSelf.objectLock) && (!has(self.objectLock) || self.objectLock == oldSelf.objectLock)",
        "message": "objectLock is immutable"
    },
    {
        "rule": "!has(self.objectLock) || !self.objectLock.enabled || (has(self.versioning) && self.versioning == 'Enabled')",
        "message": "objectLock needs versioning: Enabled"
    }
]))]
pub struct BucketSpec {
    /// The store holding the bucket.
    pub store_ref: StoreRef,
    /// The S3 name of the bucket; defaults to the resource name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 3, max = 63),
        regex(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
        extend("x-kubernetes-validations" = [
            {
                "rule": "!self.contains('..') && !self.contains('.-') && !self.contains('-.') && !self.startsWith('xn--') && !self.startsWith('sthree-') && !self.endsWith('-s3alias') && !self.endsWith('--ol-s3') && !self.matches('^[0-9]+\\\\.[0-9]+\\\\.[0-9]+\\\\.[0-9]+$')",
                "message": "not a valid S3 bucket name: no '..', '.-' or '-.', no reserved prefix or suffix, not an IP address"
            }
        ])
    )]
    pub bucket_name: Option<String>,
    /// Versioning of the bucket's objects; absent: unversioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versioning: Option<Versioning>,
    /// Object lock (WORM). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLock>,
    /// Lifecycle rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Vec<LifecycleRule>>,
    /// Limits on the bucket's contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// A bucket policy document (AWS JSON grammar).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// What deleting this resource does to the bucket: Retain (default) keeps it and its
    /// objects; Delete removes it.
    #[serde(default)]
    pub deletion_policy: BucketDeletionPolicy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Versioning {
    Enabled,
    Suspended,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectLock {
    pub enabled: bool,
    /// Default retention mode for new objects: GOVERNANCE or COMPLIANCE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(GOVERNANCE|COMPLIANCE)$"))]
    pub default_retention_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub default_retention_days: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleRule {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Current versions expire this many days after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub expiration_days: Option<i32>,
    /// Old versions are removed this many days after they become noncurrent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub noncurrent_version_expiration_days: Option<i32>,
    /// Incomplete multipart uploads are aborted after this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub abort_incomplete_multipart_upload_days: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    /// Most bytes the bucket may hold, as a quantity (e.g. `100Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_objects: Option<i64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BucketDeletionPolicy {
    #[default]
    Retain,
    Delete,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The S3 name of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    /// The store's S3 endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<BucketUsage>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketUsage {
    pub objects: i64,
    pub bytes: i64,
    /// False when the server's bounded count stopped early (the numbers are lower bounds).
    pub complete: bool,
}

impl Bucket {
    /// The S3 name: `spec.bucketName`, else the resource name.
    pub fn bucket_name(&self) -> String {
        self.spec
            .bucket_name
            .clone()
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }
}

/// Whether `name` is a valid S3 bucket name: the rules `coffer-server` enforces (and the
/// schema's pattern plus CEL rule encode), checked again before the admin API is called so
/// a defaulted name gets a clear condition. `tests/admin_api.rs` holds both to the server.
pub fn valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ip_like = name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok());
    (3..=63).contains(&b.len())
        && b.iter().all(|c| alnum(c) || *c == b'.' || *c == b'-')
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && !ip_like
        && !["..", ".-", "-."].iter().any(|s| name.contains(s))
        && !name.starts_with("xn--")
        && !name.starts_with("sthree-")
        && !name.ends_with("-s3alias")
        && !name.ends_with("--ol-s3")
}
