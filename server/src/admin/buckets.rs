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
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::json;
use crate::http::{Context, ErrorCode, S3Error};
use crate::s3::blocking;
use crate::store::record::{BucketRecord, Versioning};
use crate::store::{ListEntry, ListQuery, Store, StoreError};

/// Most objects counted per bucket for usage; past it the counts are lower bounds, so one
/// huge bucket cannot make a reconcile slow.
const USAGE_SCAN_LIMIT: usize = 100_000;
const USAGE_PAGE: usize = 1000;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Usage {
    objects: u64,
    bytes: u64,
    /// False when the scan stopped at its limit (the counts are then lower bounds).
    complete: bool,
}

/// A bucket as the admin API describes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BucketInfo {
    name: String,
    created: String,
    region: String,
    versioning: Versioning,
    usage: Usage,
}

fn usage(s: &Store, bucket: &str) -> Result<Usage, StoreError> {
    let mut u = Usage {
        objects: 0,
        bytes: 0,
        complete: true,
    };
    let mut query = ListQuery {
        max_keys: USAGE_PAGE,
        ..ListQuery::default()
    };
    let mut seen = 0usize;
    loop {
        let page = s.list_objects(bucket, &query)?;
        for entry in &page.entries {
            if let ListEntry::Item(_, v) = entry {
                u.objects += 1;
                u.bytes += v.size;
            }
        }
        seen += page.entries.len();
        match page.last_name() {
            Some(last) if page.truncated => {
                if seen >= USAGE_SCAN_LIMIT {
                    u.complete = false;
                    return Ok(u);
                }
                query.start_after = Some(last.to_string());
            }
            _ => return Ok(u),
        }
    }
}

fn describe(s: &Store, r: BucketRecord) -> Result<BucketInfo, StoreError> {
    let usage = usage(s, &r.name)?;
    Ok(BucketInfo {
        created: OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.created_ns))
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default(),
        name: r.name,
        region: r.region,
        versioning: r.versioning,
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
            let n = name.to_string();
            let (info, created) = blocking(ctx, move |s| {
                let (r, created) = match s.create_bucket(&n, None) {
                    Ok(r) => (r, true),
                    Err(StoreError::BucketAlreadyExists) => (s.bucket(&n)?, false),
                    Err(e) => return Err(e),
                };
                Ok((describe(s, r)?, created))
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
