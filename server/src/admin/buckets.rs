//! Admin endpoints for buckets (`buckets`, `buckets/{name}`). Every call is idempotent so the
//! operator can repeat it on each reconcile: creating an existing bucket answers 200 with its
//! description, deleting a missing one answers 204. Descriptions carry usage (objects and
//! bytes of the current versions) counted by a bounded listing scan; `usage.complete` says
//! whether the scan saw the whole bucket.
//!
//! `DELETE buckets/{name}?force=true` empties the bucket first (every object version the
//! listing reveals, then the bucket with its unfinished multipart uploads), for the operator's
//! `deletionPolicy: Delete` and `coffer-server admin bucket delete --force`.

use axum::body::Body;
use http::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::json;
use crate::http::RequestBody;
use crate::http::{Context, ErrorCode, S3Error};
use crate::s3::blocking;
use crate::store::record::{
    BucketRecord, DefaultRetention, ObjectLockConfig, Quota, RetentionMode, RetentionPeriod,
    Versioning,
};
use crate::store::{BucketUsage, ListEntry, ListQuery, Store, StoreError};

/// Most objects counted per bucket for usage; past it the counts are lower bounds, so one
/// huge bucket cannot make a reconcile slow.
const USAGE_SCAN_LIMIT: usize = 100_000;
const USAGE_PAGE: usize = 1000;

/// A bucket as the admin API describes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BucketInfo {
    name: String,
    created: String,
    region: String,
    versioning: Versioning,
    object_lock: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_retention: Option<RetentionSetting>,
    quota: QuotaInfo,
    usage: BucketUsage,
}

#[derive(Serialize, Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QuotaInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_objects: Option<u64>,
}

/// Settings a `PUT buckets/{name}` body may carry; absent ones are left as they are.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BucketSettings {
    versioning: Option<Versioning>,
    /// Object lock, chosen when the bucket is made (it cannot be turned on or off later).
    object_lock: Option<bool>,
    /// The retention object lock gives new versions (`null`: none).
    default_retention: Option<Option<RetentionSetting>>,
    quota: Option<QuotaInfo>,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RetentionSetting {
    mode: RetentionMode,
    days: u32,
}

fn describe(s: &Store, r: BucketRecord) -> Result<BucketInfo, StoreError> {
    let usage = s.bucket_usage(&r.name, USAGE_SCAN_LIMIT)?;
    Ok(BucketInfo {
        created: OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.created_ns))
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default(),
        name: r.name,
        region: r.region,
        versioning: r.versioning,
        object_lock: r.object_lock.is_some(),
        default_retention: r.object_lock.and_then(|l| l.default_retention).map(|d| {
            RetentionSetting {
                mode: d.mode,
                days: match d.period {
                    RetentionPeriod::Days(n) => n,
                    RetentionPeriod::Years(n) => n.saturating_mul(365),
                },
            }
        }),
        quota: QuotaInfo {
            max_bytes: r.quota.max_bytes,
            max_objects: r.quota.max_objects,
        },
        usage,
    })
}

fn check_name(name: &str) -> Result<(), S3Error> {
    if crate::s3::bucket::valid_bucket_name(name) {
        Ok(())
    } else {
        Err(S3Error::msg(
            ErrorCode::InvalidBucketName,
            format!("{name:?} is not a valid bucket name"),
        )
        .with("BucketName", name))
    }
}

/// How many times a forced delete empties the bucket again when writers keep adding objects.
const FORCE_ROUNDS: usize = 5;

/// Removes every object version and delete marker of `bucket`; returns how many. A version
/// object lock keeps stops it (the bucket then stays, not empty).
fn empty_bucket(s: &Store, bucket: &str) -> Result<u64, StoreError> {
    let mut removed = 0;
    let query = ListQuery {
        max_keys: USAGE_PAGE,
        ..ListQuery::default()
    };
    let mut previous_first: Option<(String, Option<String>)> = None;
    loop {
        // Always from the start: writers may have added versions meanwhile.
        let page = s.list_versions(bucket, &query, None)?;
        let first = page.entries.iter().find_map(|e| match e {
            ListEntry::Item(key, (v, _)) => Some((key.clone(), v.version_id.clone())),
            ListEntry::CommonPrefix(_) => None,
        });
        let Some(first) = first else {
            return Ok(removed);
        };
        // A version that survives its deletion would make this loop spin forever.
        if previous_first.as_ref() == Some(&first) {
            return Err(StoreError::BucketNotEmpty);
        }
        previous_first = Some(first);
        for entry in &page.entries {
            if let ListEntry::Item(key, (v, _)) = entry {
                let version = v.version_id.as_deref().unwrap_or("null");
                s.delete_object(bucket, key, Some(version), false)?;
                removed += 1;
            }
        }
    }
}

/// Empties `bucket` and deletes it (its unfinished uploads go with it); `None` when it was
/// absent already, else the number of object versions removed.
fn force_delete(s: &Store, bucket: &str) -> Result<Option<u64>, StoreError> {
    let mut removed = 0;
    for _ in 0..FORCE_ROUNDS {
        match empty_bucket(s, bucket) {
            Ok(n) => removed += n,
            Err(StoreError::NoSuchBucket) => return Ok(None),
            Err(e) => return Err(e),
        }
        match s.delete_bucket(bucket) {
            Ok(()) => return Ok(Some(removed)),
            Err(StoreError::NoSuchBucket) => return Ok(None),
            Err(StoreError::BucketNotEmpty) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::BucketNotEmpty)
}

/// Serves `rest` (the path after the admin prefix, starting with `buckets`).
pub async fn handle(
    ctx: &Context,
    method: &Method,
    rest: &str,
    query: &std::collections::BTreeMap<String, String>,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let parts: Vec<&str> = rest.split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::GET, ["buckets"]) => {
            let buckets = blocking(ctx, |s| {
                s.list_buckets()?
                    .into_iter()
                    .map(|r| describe(s, r))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
            json(&serde_json::json!({ "buckets": buckets }))
        }
        (&Method::GET, ["buckets", name]) => {
            check_name(name)?;
            let n = name.to_string();
            let info = blocking(ctx, move |s| {
                let r = s.bucket(&n)?;
                describe(s, r)
            })
            .await
            .map_err(|e| e.with("BucketName", *name))?;
            json(&info)
        }
        (&Method::PUT, ["buckets", name]) => {
            check_name(name)?;
            let doc = body.collect(64 * 1024).await?;
            let settings: BucketSettings = if doc.iter().all(u8::is_ascii_whitespace) {
                BucketSettings::default()
            } else {
                serde_json::from_slice(&doc).map_err(|e| {
                    S3Error::msg(ErrorCode::InvalidArgument, format!("bucket settings: {e}"))
                })?
            };
            let n = name.to_string();
            let (info, created) = blocking(ctx, move |s| {
                let lock = settings.object_lock.unwrap_or(false);
                let (r, created) = match s.create_bucket(&n, lock.then(ObjectLockConfig::default)) {
                    Ok(r) => (r, true),
                    Err(StoreError::BucketAlreadyExists) => (s.bucket(&n)?, false),
                    Err(e) => return Err(e),
                };
                if settings
                    .object_lock
                    .is_some_and(|l| l != r.object_lock.is_some())
                {
                    return Err(StoreError::InvalidBucketState(
                        "object lock is chosen when a bucket is created and cannot change".into(),
                    ));
                }
                if let Some(v) = settings.versioning.filter(|v| *v != r.versioning) {
                    if v == Versioning::Unversioned {
                        return Err(StoreError::InvalidBucketState(
                            "a versioned bucket can be suspended, not made unversioned".into(),
                        ));
                    }
                    s.set_versioning(&n, v)?;
                }
                if let Some(d) = settings.default_retention {
                    s.update_bucket(&n, |b| match &mut b.object_lock {
                        Some(lock) => {
                            lock.default_retention =
                                d.filter(|d| d.days > 0).map(|d| DefaultRetention {
                                    mode: d.mode,
                                    period: RetentionPeriod::Days(d.days),
                                });
                            Ok(())
                        }
                        None => Err(StoreError::InvalidBucketState(
                            "a default retention needs a bucket created with object lock".into(),
                        )),
                    })?;
                }
                if let Some(q) = settings.quota {
                    let quota = Quota {
                        max_bytes: q.max_bytes,
                        max_objects: q.max_objects,
                    };
                    s.update_bucket(&n, |b| {
                        b.quota = quota;
                        Ok(())
                    })?;
                }
                Ok((describe(s, s.bucket(&n)?)?, created))
            })
            .await?;
            let mut r = json(&info)?;
            if created {
                *r.status_mut() = StatusCode::CREATED;
            }
            Ok(r)
        }
        (&Method::DELETE, ["buckets", name])
            if query.get("force").map(String::as_str) == Some("true") =>
        {
            check_name(name)?;
            let n = name.to_string();
            let removed = blocking(ctx, move |s| force_delete(s, &n))
                .await
                .map_err(|e| e.with("BucketName", *name))?;
            ctx.policies.forget(name);
            json(&serde_json::json!({
                "name": name,
                "existed": removed.is_some(),
                "deletedObjects": removed.unwrap_or(0),
            }))
        }
        (&Method::DELETE, ["buckets", name]) => {
            check_name(name)?;
            let n = name.to_string();
            blocking(ctx, move |s| match s.delete_bucket(&n) {
                Ok(()) | Err(StoreError::NoSuchBucket) => Ok(()),
                Err(e) => Err(e),
            })
            .await
            .map_err(|e| e.with("BucketName", *name))?;
            // The bucket's policy went with it; a bucket made later under this name starts
            // without one (as S3 DeleteBucket does).
            ctx.forget_policy(name).await;
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            Ok(r)
        }
        _ => Err(S3Error::msg(
            ErrorCode::InvalidRequest,
            format!("unknown admin endpoint {method} {rest}"),
        )),
    }
}
