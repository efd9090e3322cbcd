//! The S3 action vocabulary: every action name a bucket policy may mention, the kind of
//! resource each applies to (so a statement granting `s3:GetObject` on the bucket ARN is
//! refused, as AWS refuses it), and the mapping from S3 API operations to actions.

/// What an action's resource is: the bucket ARN, an object ARN, or neither (account-level
/// actions are real names, but never apply to a resource in a bucket policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Bucket,
    Object,
    Account,
}

use ResourceKind::{Account, Bucket, Object};

/// Every S3 action Coffer knows, with its resource kind. Names are as AWS spells them; policy
/// matching ignores case.
pub const S3_ACTIONS: &[(&str, ResourceKind)] = &[
    // Object actions.
    ("s3:AbortMultipartUpload", Object),
    ("s3:BypassGovernanceRetention", Object),
    ("s3:DeleteObject", Object),
    ("s3:DeleteObjectTagging", Object),
    ("s3:DeleteObjectVersion", Object),
    ("s3:DeleteObjectVersionTagging", Object),
    ("s3:GetObject", Object),
    ("s3:GetObjectAcl", Object),
    ("s3:GetObjectAttributes", Object),
    ("s3:GetObjectLegalHold", Object),
    ("s3:GetObjectRetention", Object),
    ("s3:GetObjectTagging", Object),
    ("s3:GetObjectTorrent", Object),
    ("s3:GetObjectVersion", Object),
    ("s3:GetObjectVersionAcl", Object),
    ("s3:GetObjectVersionAttributes", Object),
    ("s3:GetObjectVersionForReplication", Object),
    ("s3:GetObjectVersionTagging", Object),
    ("s3:GetObjectVersionTorrent", Object),
    ("s3:InitiateReplication", Object),
    ("s3:ListMultipartUploadParts", Object),
    ("s3:ObjectOwnerOverrideToBucketOwner", Object),
    ("s3:PutObject", Object),
    ("s3:PutObjectAcl", Object),
    ("s3:PutObjectLegalHold", Object),
    ("s3:PutObjectRetention", Object),
    ("s3:PutObjectTagging", Object),
    ("s3:PutObjectVersionAcl", Object),
    ("s3:PutObjectVersionTagging", Object),
    ("s3:ReplicateDelete", Object),
    ("s3:ReplicateObject", Object),
    ("s3:ReplicateTags", Object),
    ("s3:RestoreObject", Object),
    // Bucket actions.
    ("s3:CreateBucket", Bucket),
    ("s3:DeleteBucket", Bucket),
    ("s3:DeleteBucketOwnershipControls", Bucket),
    ("s3:DeleteBucketPolicy", Bucket),
    ("s3:DeleteBucketWebsite", Bucket),
    ("s3:GetAccelerateConfiguration", Bucket),
    ("s3:GetAnalyticsConfiguration", Bucket),
    ("s3:GetBucketAcl", Bucket),
    ("s3:GetBucketCORS", Bucket),
    ("s3:GetBucketLocation", Bucket),
    ("s3:GetBucketLogging", Bucket),
    ("s3:GetBucketNotification", Bucket),
    ("s3:GetBucketObjectLockConfiguration", Bucket),
    ("s3:GetBucketOwnershipControls", Bucket),
    ("s3:GetBucketPolicy", Bucket),
    ("s3:GetBucketPolicyStatus", Bucket),
    ("s3:GetBucketPublicAccessBlock", Bucket),
    ("s3:GetBucketRequestPayment", Bucket),
    ("s3:GetBucketTagging", Bucket),
    ("s3:GetBucketVersioning", Bucket),
    ("s3:GetBucketWebsite", Bucket),
    ("s3:GetEncryptionConfiguration", Bucket),
    ("s3:GetIntelligentTieringConfiguration", Bucket),
    ("s3:GetInventoryConfiguration", Bucket),
    ("s3:GetLifecycleConfiguration", Bucket),
    ("s3:GetMetricsConfiguration", Bucket),
    ("s3:GetReplicationConfiguration", Bucket),
    ("s3:ListBucket", Bucket),
    ("s3:ListBucketMultipartUploads", Bucket),
    ("s3:ListBucketVersions", Bucket),
    ("s3:PutAccelerateConfiguration", Bucket),
    ("s3:PutAnalyticsConfiguration", Bucket),
    ("s3:PutBucketAcl", Bucket),
    ("s3:PutBucketCORS", Bucket),
    ("s3:PutBucketLogging", Bucket),
    ("s3:PutBucketNotification", Bucket),
    ("s3:PutBucketObjectLockConfiguration", Bucket),
    ("s3:PutBucketOwnershipControls", Bucket),
    ("s3:PutBucketPolicy", Bucket),
    ("s3:PutBucketPublicAccessBlock", Bucket),
    ("s3:PutBucketRequestPayment", Bucket),
    ("s3:PutBucketTagging", Bucket),
    ("s3:PutBucketVersioning", Bucket),
    ("s3:PutBucketWebsite", Bucket),
    ("s3:PutEncryptionConfiguration", Bucket),
    ("s3:PutIntelligentTieringConfiguration", Bucket),
    ("s3:PutInventoryConfiguration", Bucket),
    ("s3:PutLifecycleConfiguration", Bucket),
    ("s3:PutMetricsConfiguration", Bucket),
    ("s3:PutReplicationConfiguration", Bucket),
    // Account actions: valid names, but no bucket or object resource ever fits them.
    ("s3:CreateJob", Account),
    ("s3:GetAccountPublicAccessBlock", Account),
    ("s3:ListAccessPoints", Account),
    ("s3:ListAllMyBuckets", Account),
    ("s3:ListJobs", Account),
    ("s3:PutAccountPublicAccessBlock", Account),
];

/// The resource kind of an action name (any case), or `None` for a name S3 does not have.
pub fn action_kind(action: &str) -> Option<ResourceKind> {
    S3_ACTIONS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(action))
        .map(|(_, kind)| *kind)
}

/// The policy action an S3 API operation (as AWS names it: `GetObject`, `ListObjectsV2`, …)
/// is authorized as, or `None` for an operation name S3 does not have. Two operations need a
/// second check the caller makes itself: `CopyObject`/`UploadPartCopy` also need
/// `s3:GetObject` on the source, and an operation given a `versionId` uses
/// [`s3_version_action_for`] instead.
pub fn s3_action_for(operation: &str) -> Option<&'static str> {
    Some(match operation {
        "AbortMultipartUpload" => "s3:AbortMultipartUpload",
        "CompleteMultipartUpload"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "PostObject"
        | "PutObject"
        | "UploadPart"
        | "UploadPartCopy" => "s3:PutObject",
        "CreateBucket" => "s3:CreateBucket",
        "DeleteBucket" => "s3:DeleteBucket",
        "DeleteBucketAnalyticsConfiguration" | "PutBucketAnalyticsConfiguration" => {
            "s3:PutAnalyticsConfiguration"
        }
        "DeleteBucketCors" | "PutBucketCors" => "s3:PutBucketCORS",
        "DeleteBucketEncryption" | "PutBucketEncryption" => "s3:PutEncryptionConfiguration",
        "DeleteBucketIntelligentTieringConfiguration"
        | "PutBucketIntelligentTieringConfiguration" => "s3:PutIntelligentTieringConfiguration",
        "DeleteBucketInventoryConfiguration" | "PutBucketInventoryConfiguration" => {
            "s3:PutInventoryConfiguration"
        }
        "DeleteBucketLifecycle" | "PutBucketLifecycle" | "PutBucketLifecycleConfiguration" => {
            "s3:PutLifecycleConfiguration"
        }
        "DeleteBucketMetricsConfiguration" | "PutBucketMetricsConfiguration" => {
            "s3:PutMetricsConfiguration"
        }
        "DeleteBucketOwnershipControls" | "PutBucketOwnershipControls" => {
            "s3:PutBucketOwnershipControls"
        }
        "DeleteBucketPolicy" => "s3:DeleteBucketPolicy",
        "DeleteBucketReplication" | "PutBucketReplication" => "s3:PutReplicationConfiguration",
        "DeleteBucketTagging" | "PutBucketTagging" => "s3:PutBucketTagging",
        "DeleteBucketWebsite" => "s3:DeleteBucketWebsite",
        "DeleteObject" | "DeleteObjects" => "s3:DeleteObject",
        "DeleteObjectTagging" => "s3:DeleteObjectTagging",
        "DeletePublicAccessBlock" | "PutPublicAccessBlock" => "s3:PutBucketPublicAccessBlock",
        "GetBucketAccelerateConfiguration" => "s3:GetAccelerateConfiguration",
        "GetBucketAcl" => "s3:GetBucketAcl",
        "GetBucketAnalyticsConfiguration" | "ListBucketAnalyticsConfigurations" => {
            "s3:GetAnalyticsConfiguration"
        }
        "GetBucketCors" => "s3:GetBucketCORS",
        "GetBucketEncryption" => "s3:GetEncryptionConfiguration",
        "GetBucketIntelligentTieringConfiguration"
        | "ListBucketIntelligentTieringConfigurations" => "s3:GetIntelligentTieringConfiguration",
        "GetBucketInventoryConfiguration" | "ListBucketInventoryConfigurations" => {
            "s3:GetInventoryConfiguration"
        }
        "GetBucketLifecycle" | "GetBucketLifecycleConfiguration" => "s3:GetLifecycleConfiguration",
        "GetBucketLocation" => "s3:GetBucketLocation",
        "GetBucketLogging" => "s3:GetBucketLogging",
        "GetBucketMetricsConfiguration" | "ListBucketMetricsConfigurations" => {
            "s3:GetMetricsConfiguration"
        }
        "GetBucketNotification" | "GetBucketNotificationConfiguration" => {
            "s3:GetBucketNotification"
        }
        "GetBucketOwnershipControls" => "s3:GetBucketOwnershipControls",
        "GetBucketPolicy" => "s3:GetBucketPolicy",
        "GetBucketPolicyStatus" => "s3:GetBucketPolicyStatus",
        "GetBucketReplication" => "s3:GetReplicationConfiguration",
        "GetBucketRequestPayment" => "s3:GetBucketRequestPayment",
        "GetBucketTagging" => "s3:GetBucketTagging",
        "GetBucketVersioning" => "s3:GetBucketVersioning",
        "GetBucketWebsite" => "s3:GetBucketWebsite",
        "GetObject" | "HeadObject" | "SelectObjectContent" => "s3:GetObject",
        "GetObjectAcl" => "s3:GetObjectAcl",
        "GetObjectAttributes" => "s3:GetObjectAttributes",
        "GetObjectLegalHold" => "s3:GetObjectLegalHold",
        "GetObjectLockConfiguration" => "s3:GetBucketObjectLockConfiguration",
        "GetObjectRetention" => "s3:GetObjectRetention",
        "GetObjectTagging" => "s3:GetObjectTagging",
        "GetObjectTorrent" => "s3:GetObjectTorrent",
        "GetPublicAccessBlock" => "s3:GetBucketPublicAccessBlock",
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => "s3:ListBucket",
        "ListBuckets" => "s3:ListAllMyBuckets",
        "ListMultipartUploads" => "s3:ListBucketMultipartUploads",
        "ListObjectVersions" => "s3:ListBucketVersions",
        "ListParts" => "s3:ListMultipartUploadParts",
        "PutBucketAccelerateConfiguration" => "s3:PutAccelerateConfiguration",
        "PutBucketAcl" => "s3:PutBucketAcl",
        "PutBucketLogging" => "s3:PutBucketLogging",
        "PutBucketNotification" | "PutBucketNotificationConfiguration" => {
            "s3:PutBucketNotification"
        }
        "PutBucketPolicy" => "s3:PutBucketPolicy",
        "PutBucketRequestPayment" => "s3:PutBucketRequestPayment",
        "PutBucketVersioning" => "s3:PutBucketVersioning",
        "PutBucketWebsite" => "s3:PutBucketWebsite",
        "PutObjectAcl" => "s3:PutObjectAcl",
        "PutObjectLegalHold" => "s3:PutObjectLegalHold",
        "PutObjectLockConfiguration" => "s3:PutBucketObjectLockConfiguration",
        "PutObjectRetention" => "s3:PutObjectRetention",
        "PutObjectTagging" => "s3:PutObjectTagging",
        "RestoreObject" => "s3:RestoreObject",
        _ => return None,
    })
}

/// The action for an object operation that names a specific version (`?versionId=`), where
/// AWS checks a `…Version…` action instead; other operations fall back to [`s3_action_for`].
pub fn s3_version_action_for(operation: &str) -> Option<&'static str> {
    Some(match operation {
        "GetObject" | "HeadObject" => "s3:GetObjectVersion",
        "GetObjectAcl" => "s3:GetObjectVersionAcl",
        "GetObjectAttributes" => "s3:GetObjectVersionAttributes",
        "GetObjectTagging" => "s3:GetObjectVersionTagging",
        "GetObjectTorrent" => "s3:GetObjectVersionTorrent",
        "DeleteObject" | "DeleteObjects" => "s3:DeleteObjectVersion",
        "DeleteObjectTagging" => "s3:DeleteObjectVersionTagging",
        "PutObjectAcl" => "s3:PutObjectVersionAcl",
        "PutObjectTagging" => "s3:PutObjectVersionTagging",
        _ => return s3_action_for(operation),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_operation_names_a_known_action() {
        let ops = [
            "GetObject",
            "HeadObject",
            "ListObjectsV2",
            "ListObjectVersions",
            "PutObject",
            "CopyObject",
            "UploadPart",
            "CompleteMultipartUpload",
            "CreateMultipartUpload",
            "DeleteObject",
            "DeleteObjects",
            "AbortMultipartUpload",
            "ListParts",
            "ListMultipartUploads",
            "GetBucketLocation",
            "GetBucketPolicyStatus",
            "PutBucketCors",
            "ListBuckets",
            "HeadBucket",
        ];
        for op in ops {
            let action = s3_action_for(op).unwrap();
            assert!(action_kind(action).is_some(), "{op} -> {action}");
            let versioned = s3_version_action_for(op).unwrap();
            assert!(action_kind(versioned).is_some(), "{op} -> {versioned}");
        }
        assert_eq!(s3_action_for("HeadObject"), Some("s3:GetObject"));
        assert_eq!(s3_action_for("ListObjectsV2"), Some("s3:ListBucket"));
        assert_eq!(
            s3_action_for("ListObjectVersions"),
            Some("s3:ListBucketVersions")
        );
        assert_eq!(s3_action_for("UploadPart"), Some("s3:PutObject"));
        assert_eq!(s3_action_for("DeleteObjects"), Some("s3:DeleteObject"));
        assert_eq!(
            s3_action_for("ListParts"),
            Some("s3:ListMultipartUploadParts")
        );
        assert_eq!(
            s3_action_for("ListMultipartUploads"),
            Some("s3:ListBucketMultipartUploads")
        );
        assert_eq!(s3_action_for("Frobnicate"), None);
        assert_eq!(
            s3_version_action_for("HeadObject"),
            Some("s3:GetObjectVersion")
        );
        assert_eq!(
            s3_version_action_for("ListParts"),
            Some("s3:ListMultipartUploadParts")
        );
    }

    #[test]
    fn action_names_are_unique_and_case_insensitive() {
        for (i, (a, _)) in S3_ACTIONS.iter().enumerate() {
            assert!(a.starts_with("s3:"));
            for (b, _) in &S3_ACTIONS[i + 1..] {
                assert!(!a.eq_ignore_ascii_case(b), "{a} twice");
            }
        }
        assert_eq!(action_kind("S3:GETOBJECT"), Some(ResourceKind::Object));
        assert_eq!(action_kind("s3:ListBucket"), Some(ResourceKind::Bucket));
        assert_eq!(action_kind("s3:GetObjects"), None);
    }
}
