//! Bucket policies as S3 serves them: Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus,
//! and the access check every routed request passes ([`authorize`]). Parsing and evaluation
//! are `iam::policy`'s; this module owns the per-bucket cache of parsed policies
//! ([`BucketPolicies`]) and what a request looks like to a policy (action, resource ARN and
//! condition keys such as `aws:SourceIp`).
//!
//! The rules: an anonymous request proceeds only when the bucket's policy allows it and does
//! not deny it; a signed request is refused when the policy explicitly denies it, and is
//! otherwise left to the caller's own permissions. The root key may always read, replace and
//! delete a bucket policy, as the bucket owner's root user may in S3, so no policy can lock
//! the owner out.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{blocking, empty, headers as s3_headers, xml, xml_response};
use crate::auth::Principal;
use crate::http::{ClientConnection, Context, ErrorCode, Operation, RequestBody, Route, S3Error};
use crate::iam::policy::{
    bucket_arn, object_arn, s3_action_for, s3_version_action_for, Decision, Policy, PolicyError,
    PolicyRequest, MAX_POLICY_BYTES,
};
use crate::store::BucketDocument;

/// Buckets whose policy (or its absence) is remembered before the cache starts over; bounds
/// the memory anonymous requests naming made-up buckets can take.
const MAX_CACHED: usize = 10_000;

/// Parsed bucket policies by bucket, so requests do not re-read or re-parse them. `None`
/// entries remember that a bucket has no policy. Every change to a policy calls
/// [`BucketPolicies::forget`] after it is durable.
#[derive(Default)]
pub struct BucketPolicies {
    inner: RwLock<PolicyCache>,
}

#[derive(Default)]
struct PolicyCache {
    /// Bumped by every `forget`: a load that started before a change must not cache what it
    /// read, which may be the old policy.
    generation: u64,
    policies: HashMap<String, Option<Arc<Policy>>>,
}

impl BucketPolicies {
    /// The cached policy of `bucket`, or on a miss the generation to load it under.
    fn cached(&self, bucket: &str) -> Result<Option<Arc<Policy>>, u64> {
        // A poisoned lock only means a panic while holding it; the map itself stays valid.
        let cache = self.inner.read().unwrap_or_else(|p| p.into_inner());
        cache.policies.get(bucket).cloned().ok_or(cache.generation)
    }

    fn remember(&self, bucket: &str, generation: u64, policy: Option<Arc<Policy>>) {
        let mut cache = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if cache.generation != generation {
            return;
        }
        if cache.policies.len() >= MAX_CACHED {
            cache.policies.clear();
        }
        cache.policies.insert(bucket.to_string(), policy);
    }

    /// Drops every cached policy (a periodic refresh in a cluster).
    pub fn forget_all(&self) {
        let mut cache = self.inner.write().unwrap_or_else(|p| p.into_inner());
        cache.generation += 1;
        cache.policies.clear();
    }

    /// Drops what is known about `bucket`'s policy (it was put, deleted, or the bucket went).
    pub fn forget(&self, bucket: &str) {
        let mut cache = self.inner.write().unwrap_or_else(|p| p.into_inner());
        cache.generation += 1;
        cache.policies.remove(bucket);
    }
}

/// The parsed policy of `bucket`, from the cache or the store.
async fn load(ctx: &Context, bucket: &str) -> Result<Option<Arc<Policy>>, S3Error> {
    let generation = match ctx.policies.cached(bucket) {
        Ok(policy) => return Ok(policy),
        Err(generation) => generation,
    };
    let b = bucket.to_string();
    let document = blocking(ctx, move |s| s.bucket_document(&b, BucketDocument::Policy)).await?;
    let policy = match document {
        None => None,
        Some(doc) => Some(Arc::new(Policy::parse(doc.as_bytes(), bucket).map_err(
            |e| {
                S3Error::internal(format!(
                    "the stored policy of bucket {bucket} is refused: {e}"
                ))
            },
        )?)),
    };
    ctx.policies.remember(bucket, generation, policy.clone());
    Ok(policy)
}

/// The AWS name of an operation, as `iam::policy::s3_action_for` expects it.
fn operation_name(op: &Operation) -> &'static str {
    use Operation as O;
    match op {
        O::ListBuckets => "ListBuckets",
        O::CreateBucket => "CreateBucket",
        O::HeadBucket => "HeadBucket",
        O::DeleteBucket => "DeleteBucket",
        O::GetBucketLocation => "GetBucketLocation",
        O::GetBucketVersioning => "GetBucketVersioning",
        O::ListObjects => "ListObjects",
        O::ListObjectsV2 => "ListObjectsV2",
        O::ListMultipartUploads => "ListMultipartUploads",
        O::DeleteObjects => "DeleteObjects",
        // A browser upload is a PutObject to a policy: same action, same resource.
        O::PutObject | O::PostObject => "PutObject",
        O::CopyObject => "CopyObject",
        O::GetObject => "GetObject",
        O::HeadObject => "HeadObject",
        O::DeleteObject => "DeleteObject",
        O::CreateMultipartUpload => "CreateMultipartUpload",
        O::UploadPart => "UploadPart",
        O::UploadPartCopy => "UploadPartCopy",
        O::CompleteMultipartUpload => "CompleteMultipartUpload",
        O::AbortMultipartUpload => "AbortMultipartUpload",
        O::ListParts => "ListParts",
        O::PutBucketPolicy => "PutBucketPolicy",
        O::GetBucketPolicy => "GetBucketPolicy",
        O::DeleteBucketPolicy => "DeleteBucketPolicy",
        O::GetBucketPolicyStatus => "GetBucketPolicyStatus",
        O::PutBucketVersioning => "PutBucketVersioning",
        O::ListObjectVersions => "ListObjectVersions",
        O::GetBucketTagging => "GetBucketTagging",
        O::PutBucketTagging => "PutBucketTagging",
        O::DeleteBucketTagging => "DeleteBucketTagging",
        O::GetObjectLockConfiguration => "GetObjectLockConfiguration",
        O::PutObjectLockConfiguration => "PutObjectLockConfiguration",
        O::GetBucketCors => "GetBucketCors",
        O::PutBucketCors => "PutBucketCors",
        O::DeleteBucketCors => "DeleteBucketCors",
        O::GetBucketLifecycleConfiguration => "GetBucketLifecycleConfiguration",
        O::PutBucketLifecycleConfiguration => "PutBucketLifecycleConfiguration",
        O::DeleteBucketLifecycle => "DeleteBucketLifecycle",
        O::GetObjectTagging => "GetObjectTagging",
        O::PutObjectTagging => "PutObjectTagging",
        O::DeleteObjectTagging => "DeleteObjectTagging",
        O::GetObjectAttributes => "GetObjectAttributes",
        O::GetObjectRetention => "GetObjectRetention",
        O::PutObjectRetention => "PutObjectRetention",
        O::GetObjectLegalHold => "GetObjectLegalHold",
        O::PutObjectLegalHold => "PutObjectLegalHold",
    }
}

fn manages_policy(op: &Operation) -> bool {
    matches!(
        op,
        Operation::PutBucketPolicy
            | Operation::GetBucketPolicy
            | Operation::DeleteBucketPolicy
            | Operation::GetBucketPolicyStatus
    )
}

/// Operations no policy opens to anonymous callers: listing all buckets, creating one,
/// managing policies (the owner's alone), and those whose authorization depends on more than
/// the routed resource: a copy's source (not evaluated here yet), and a multi-object delete
/// (signed callers get each key checked as a DeleteObject by `s3::object::delete_objects`).
fn never_anonymous(op: &Operation) -> bool {
    manages_policy(op)
        || matches!(
            op,
            Operation::ListBuckets
                | Operation::CreateBucket
                | Operation::CopyObject
                | Operation::UploadPartCopy
                | Operation::DeleteObjects
        )
}

/// What `route` looks like to a bucket policy.
fn policy_request<'a>(
    route: &Route,
    bucket: &str,
    principal: Option<&str>,
    headers: &HeaderMap,
    connection: Option<&ClientConnection>,
    now: OffsetDateTime,
) -> Result<PolicyRequest<'a>, S3Error> {
    let name = operation_name(&route.op);
    let action = if route.param("versionId").is_some() {
        s3_version_action_for(name)
    } else {
        s3_action_for(name)
    }
    .ok_or_else(|| S3Error::internal(format!("operation {name} has no policy action")))?;
    let resource = match &route.key {
        Some(key) => object_arn(bucket, key),
        None => bucket_arn(bucket),
    };
    let mut request = PolicyRequest::new(principal, action, resource);
    let mut add = |key: &str, value: String| {
        request
            .conditions
            .entry(key.to_string())
            .or_default()
            .push(value);
    };
    if let Some(c) = connection {
        add("aws:SourceIp", c.peer.ip().to_canonical().to_string());
    }
    let tls = connection.is_some_and(|c| c.tls);
    add("aws:SecureTransport", tls.to_string());
    let now = now.replace_nanosecond(0).unwrap_or(now);
    if let Ok(text) = now.format(&Rfc3339) {
        add("aws:CurrentTime", text);
    }
    add("aws:EpochTime", now.unix_timestamp().to_string());
    if let Some(id) = principal {
        add("aws:username", id.to_string());
    }
    for (key, header) in [("aws:UserAgent", "user-agent"), ("aws:Referer", "referer")] {
        if let Some(v) = headers.get(header).and_then(|v| v.to_str().ok()) {
            add(key, v.to_string());
        }
    }
    if matches!(
        route.op,
        Operation::ListObjects | Operation::ListObjectsV2 | Operation::ListObjectVersions
    ) {
        for (key, param) in [
            ("s3:prefix", "prefix"),
            ("s3:delimiter", "delimiter"),
            ("s3:max-keys", "max-keys"),
        ] {
            if let Some(v) = route.param(param) {
                add(key, v.to_string());
            }
        }
    }
    if let Some(v) = route.param("versionId") {
        add("s3:VersionId", v.to_string());
    }
    Ok(request)
}

/// Decides whether a routed, authenticated request may proceed as far as bucket policies
/// go (see the module comment). Anonymous callers get AccessDenied whether or not the
/// bucket exists, so a denial says nothing about existence.
pub async fn authorize(
    ctx: &Context,
    route: &Route,
    principal: &Principal,
    headers: &HeaderMap,
    connection: Option<&ClientConnection>,
) -> Result<(), S3Error> {
    let key_id = match principal {
        Principal::Anonymous => None,
        Principal::AccessKey(id) => Some(id.as_str()),
    };
    let anonymous = key_id.is_none();
    if anonymous && never_anonymous(&route.op) {
        return Err(ErrorCode::AccessDenied.into());
    }
    let Some(bucket) = route.bucket.as_deref() else {
        return Ok(());
    };
    if manages_policy(&route.op) && key_id == Some(ctx.iam.root_access_key()) {
        return Ok(());
    }
    let Some(policy) = load(ctx, bucket).await? else {
        return if anonymous {
            Err(ErrorCode::AccessDenied.into())
        } else {
            Ok(())
        };
    };
    let request = policy_request(
        route,
        bucket,
        key_id,
        headers,
        connection,
        OffsetDateTime::now_utc(),
    )?;
    match policy.evaluate(&request) {
        Decision::ExplicitDeny => Err(ErrorCode::AccessDenied.into()),
        Decision::Allow => Ok(()),
        Decision::NotApplicable if anonymous => Err(ErrorCode::AccessDenied.into()),
        Decision::NotApplicable => Ok(()),
    }
}

pub async fn put_bucket_policy(
    ctx: &Context,
    route: &Route,
    headers: &HeaderMap,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let md5 = s3_headers::content_md5(headers)?;
    // Read a little past the limit so an oversized document is refused as too large, by
    // the parser, rather than cut short.
    let document = body
        .collect(2 * MAX_POLICY_BYTES)
        .await
        .map_err(|e| match e.code {
            ErrorCode::MalformedXML => S3Error::from(PolicyError::TooLarge),
            _ => e,
        })?;
    if let Some(expected) = md5 {
        use md5::Digest;
        if md5::Md5::digest(&document).as_slice() != expected {
            return Err(ErrorCode::BadDigest.into());
        }
    }
    let bucket = route.bucket().to_string();
    Policy::parse(&document, &bucket)?;
    let document = String::from_utf8(document.to_vec()).map_err(|_| PolicyError::InvalidJson)?;
    let b = bucket.clone();
    let stored = blocking(ctx, move |s| {
        s.put_bucket_document(&b, BucketDocument::Policy, document)
    })
    .await;
    ctx.forget_policy(&bucket).await;
    stored.map_err(|e| e.with("BucketName", bucket))?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn get_bucket_policy(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let bucket = route.bucket().to_string();
    let b = bucket.clone();
    let document = blocking(ctx, move |s| {
        s.bucket(&b)?;
        s.bucket_document(&b, BucketDocument::Policy)
    })
    .await
    .map_err(|e| e.with("BucketName", bucket.clone()))?
    .ok_or_else(|| S3Error::new(ErrorCode::NoSuchBucketPolicy).with("BucketName", bucket))?;
    let mut r = Response::new(Body::from(document));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

pub async fn delete_bucket_policy(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let bucket = route.bucket().to_string();
    let b = bucket.clone();
    let deleted = blocking(ctx, move |s| {
        s.delete_bucket_document(&b, BucketDocument::Policy)
    })
    .await;
    ctx.forget_policy(&bucket).await;
    deleted.map_err(|e| e.with("BucketName", bucket))?;
    Ok(empty(StatusCode::NO_CONTENT))
}

#[derive(Serialize)]
#[serde(rename = "PolicyStatus")]
struct PolicyStatus {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "IsPublic")]
    is_public: bool,
}

pub async fn get_bucket_policy_status(
    ctx: &Context,
    route: &Route,
) -> Result<Response<Body>, S3Error> {
    let bucket = route.bucket().to_string();
    let b = bucket.clone();
    blocking(ctx, move |s| s.bucket(&b))
        .await
        .map_err(|e| e.with("BucketName", bucket.clone()))?;
    // As in S3, a bucket without a policy has no policy status.
    let policy = load(ctx, &bucket).await?.ok_or_else(|| {
        S3Error::new(ErrorCode::NoSuchBucketPolicy).with("BucketName", bucket.clone())
    })?;
    xml_response(
        StatusCode::OK,
        &PolicyStatus {
            xmlns: xml::NS,
            is_public: policy.is_public(),
        },
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use http::Method;

    use super::*;
    use crate::http::router::route;

    fn routed(method: Method, path: &str, query: Option<&str>) -> Route {
        route(&method, path, query, &HeaderMap::new(), &[]).unwrap()
    }

    #[test]
    fn policy_subresources_route_to_their_operations() {
        for (method, query, op) in [
            (Method::PUT, "policy", Operation::PutBucketPolicy),
            (Method::GET, "policy", Operation::GetBucketPolicy),
            (Method::DELETE, "policy", Operation::DeleteBucketPolicy),
            (
                Method::GET,
                "policyStatus",
                Operation::GetBucketPolicyStatus,
            ),
        ] {
            assert_eq!(routed(method, "/examplebucket", Some(query)).op, op);
        }
        let on_object = route(
            &Method::GET,
            "/examplebucket/key",
            Some("policy"),
            &HeaderMap::new(),
            &[],
        );
        assert_eq!(on_object.unwrap_err().code, ErrorCode::NotImplemented);
    }

    #[test]
    fn every_operation_has_a_policy_action() {
        use Operation as O;
        for op in [
            O::ListBuckets,
            O::CreateBucket,
            O::HeadBucket,
            O::DeleteBucket,
            O::GetBucketLocation,
            O::GetBucketVersioning,
            O::ListObjects,
            O::ListObjectsV2,
            O::ListMultipartUploads,
            O::DeleteObjects,
            O::PutObject,
            O::CopyObject,
            O::GetObject,
            O::HeadObject,
            O::DeleteObject,
            O::CreateMultipartUpload,
            O::UploadPart,
            O::UploadPartCopy,
            O::CompleteMultipartUpload,
            O::AbortMultipartUpload,
            O::ListParts,
            O::PutBucketPolicy,
            O::GetBucketPolicy,
            O::DeleteBucketPolicy,
            O::GetBucketPolicyStatus,
        ] {
            assert!(s3_action_for(operation_name(&op)).is_some(), "{op:?}");
        }
    }

    #[test]
    fn requests_carry_their_action_resource_and_condition_keys() {
        let connection = ClientConnection {
            peer: "[::ffff:10.1.2.3]:5000".parse::<SocketAddr>().unwrap(),
            tls: false,
        };
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", "curl/8".parse().unwrap());
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();

        let list = routed(
            Method::GET,
            "/bk",
            Some("list-type=2&prefix=logs%2F&delimiter=%2F&max-keys=10"),
        );
        let r = policy_request(&list, "bk", None, &headers, Some(&connection), now).unwrap();
        assert_eq!(r.action, "s3:ListBucket");
        assert_eq!(r.resource, "arn:aws:s3:::bk");
        assert_eq!(r.values("aws:SourceIp").unwrap(), ["10.1.2.3"]);
        assert_eq!(r.values("aws:SecureTransport").unwrap(), ["false"]);
        assert_eq!(
            r.values("aws:CurrentTime").unwrap(),
            ["2023-11-14T22:13:20Z"]
        );
        assert_eq!(r.values("aws:EpochTime").unwrap(), ["1700000000"]);
        assert_eq!(r.values("aws:UserAgent").unwrap(), ["curl/8"]);
        assert_eq!(r.values("s3:prefix").unwrap(), ["logs/"]);
        assert_eq!(r.values("s3:delimiter").unwrap(), ["/"]);
        assert_eq!(r.values("s3:max-keys").unwrap(), ["10"]);
        assert!(r.principal.is_none());

        let get = routed(Method::GET, "/bk/a/b.txt", Some("versionId=v1"));
        let r = policy_request(&get, "bk", Some("KEY"), &headers, None, now).unwrap();
        assert_eq!(r.action, "s3:GetObjectVersion");
        assert_eq!(r.resource, "arn:aws:s3:::bk/a/b.txt");
        assert_eq!(r.values("aws:username").unwrap(), ["KEY"]);
        assert!(r.values("aws:SourceIp").is_none());
        assert!(r.values("s3:prefix").is_none());
    }

    #[test]
    fn a_load_racing_a_change_does_not_cache_the_old_policy() {
        let cache = BucketPolicies::default();
        let generation = cache.cached("b").unwrap_err();
        cache.forget("b");
        cache.remember("b", generation, None);
        assert!(cache.cached("b").is_err(), "the stale load was not cached");
        let generation = cache.cached("b").unwrap_err();
        cache.remember("b", generation, None);
        assert!(matches!(cache.cached("b"), Ok(None)));
    }
}
