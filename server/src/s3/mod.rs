//! S3 semantics, one module per resource. Handlers take a routed request and return a
//! response; storage details stay behind [`crate::store::Store`].

mod attributes;
pub(crate) mod bucket;
pub(crate) mod cors;
pub mod headers;
mod lifecycle;
mod list;
mod multipart;
pub(crate) mod object;
pub(crate) mod object_lock;
pub(crate) mod policy;
pub(crate) mod post_object;
pub(crate) mod tagging;
pub mod xml;

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};

use crate::auth::Principal;
use crate::http::{ClientConnection, Context, ErrorCode, Operation, RequestBody, Route, S3Error};
use crate::store::checksum::DigestRequest;
use crate::store::record::StoredChecksum;
use crate::store::{Staged, StagingWriter, Store, StoreError};

use headers::ChecksumRequest;

/// The largest single PUT (and part), as in S3.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

pub async fn dispatch(
    ctx: &Context,
    route: &Route,
    principal: &Principal,
    connection: Option<&ClientConnection>,
    headers: &HeaderMap,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    use Operation as O;
    match route.op {
        O::ListBuckets => bucket::list_buckets(ctx).await,
        O::CreateBucket => bucket::create_bucket(ctx, route, headers, body).await,
        O::HeadBucket => bucket::head_bucket(ctx, route).await,
        O::DeleteBucket => bucket::delete_bucket(ctx, route).await,
        O::GetBucketLocation => bucket::get_location(ctx, route).await,
        O::GetBucketVersioning => bucket::get_versioning(ctx, route).await,
        O::ListObjects => list::list_objects(ctx, route, false).await,
        O::ListObjectsV2 => list::list_objects(ctx, route, true).await,
        O::ListMultipartUploads => list::list_uploads(ctx, route).await,
        O::DeleteObjects => {
            object::delete_objects(ctx, route, principal, connection, headers, body).await
        }
        O::PutObject => object::put_object(ctx, route, headers, body).await,
        O::PostObject => Err(S3Error::internal(
            "POST Object is served by s3::post_object before the body is decoded",
        )),
        O::CopyObject => object::copy_object(ctx, route, headers).await,
        O::GetObject => object::get_object(ctx, route, headers, false).await,
        O::HeadObject => object::get_object(ctx, route, headers, true).await,
        O::DeleteObject => object::delete_object(ctx, route, principal, headers).await,
        O::CreateMultipartUpload => multipart::create(ctx, route, headers).await,
        O::UploadPart => multipart::upload_part(ctx, route, headers, body).await,
        O::UploadPartCopy => multipart::upload_part_copy(ctx, route, headers).await,
        O::CompleteMultipartUpload => multipart::complete(ctx, route, headers, body).await,
        O::AbortMultipartUpload => multipart::abort(ctx, route).await,
        O::ListParts => multipart::list_parts(ctx, route).await,
        O::PutBucketPolicy => policy::put_bucket_policy(ctx, route, headers, body).await,
        O::GetBucketPolicy => policy::get_bucket_policy(ctx, route).await,
        O::DeleteBucketPolicy => policy::delete_bucket_policy(ctx, route).await,
        O::GetBucketPolicyStatus => policy::get_bucket_policy_status(ctx, route).await,
        O::PutBucketVersioning => bucket::put_versioning(ctx, route, body).await,
        O::ListObjectVersions => list::list_versions(ctx, route).await,
        O::GetBucketTagging => tagging::get_bucket_tagging(ctx, route).await,
        O::PutBucketTagging => tagging::put_bucket_tagging(ctx, route, body).await,
        O::DeleteBucketTagging => tagging::delete_bucket_tagging(ctx, route).await,
        O::GetObjectTagging => tagging::get_object_tagging(ctx, route).await,
        O::PutObjectTagging => tagging::put_object_tagging(ctx, route, body).await,
        O::DeleteObjectTagging => tagging::delete_object_tagging(ctx, route).await,
        O::GetObjectAttributes => attributes::get_object_attributes(ctx, route, headers).await,
        O::GetObjectLockConfiguration => object_lock::get_configuration(ctx, route).await,
        O::PutObjectLockConfiguration => object_lock::put_configuration(ctx, route, body).await,
        O::GetObjectRetention => object_lock::get_retention(ctx, route).await,
        O::PutObjectRetention => {
            object_lock::put_retention(ctx, route, principal, headers, body).await
        }
        O::GetObjectLegalHold => object_lock::get_legal_hold(ctx, route).await,
        O::PutObjectLegalHold => object_lock::put_legal_hold(ctx, route, body).await,
        O::GetBucketCors => cors::get_bucket_cors(ctx, route).await,
        O::PutBucketCors => cors::put_bucket_cors(ctx, route, body).await,
        O::DeleteBucketCors => cors::delete_bucket_cors(ctx, route).await,
        O::GetBucketLifecycleConfiguration => lifecycle::get(ctx, route).await,
        O::PutBucketLifecycleConfiguration => lifecycle::put(ctx, route, body).await,
        O::DeleteBucketLifecycle => lifecycle::delete(ctx, route).await,
    }
}

/// Runs a synchronous store call (RocksDB, synced writes) off the async executor.
pub async fn blocking<T: Send + 'static>(
    ctx: &Context,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, S3Error> {
    let store: Arc<Store> = ctx.store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(S3Error::internal)?
        .map_err(S3Error::from)
}

/// Starts receiving the body of a new version of `bucket/key` (see [`Store::stage`]). With
/// several pools, where it goes is read from the cluster: off the async executor.
pub async fn stage(
    ctx: &Context,
    bucket: &str,
    key: &str,
    request: DigestRequest,
) -> Result<StagingWriter, S3Error> {
    if !ctx.store.places_by_lookup() {
        return Ok(ctx.store.stage(bucket, key, request));
    }
    let (bucket, key) = (bucket.to_string(), key.to_string());
    blocking(ctx, move |s| Ok(s.stage(&bucket, &key, request))).await
}

pub fn owner(ctx: &Context) -> xml::Owner {
    xml::Owner {
        id: hex::encode(ctx.iam.root_access_key().as_bytes()),
        display_name: "coffer".into(),
    }
}

pub fn xml_response<T: serde::Serialize>(
    status: StatusCode,
    doc: &T,
) -> Result<Response<Body>, S3Error> {
    let text = xml::to_xml(doc)?;
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    Ok(r)
}

pub fn xml_response_root<T: serde::Serialize>(
    status: StatusCode,
    root: &str,
    doc: &T,
) -> Result<Response<Body>, S3Error> {
    let text = xml::to_xml_root(root, doc)?;
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    Ok(r)
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// Streams a request body into the store, verifying everything the client promised about it
/// (Content-MD5, signed SHA-256, `x-amz-checksum-*` in a header or trailer, the declared
/// length). On any failure the staged data is dropped, so no partial object is ever visible.
pub async fn receive_body(
    ctx: &Context,
    route: &Route,
    headers: &HeaderMap,
    mut body: RequestBody,
    checksum: &ChecksumRequest,
    as_file: bool,
) -> Result<(Staged, Option<StoredChecksum>), S3Error> {
    let md5 = headers::content_md5(headers)?;
    if let Some(len) = body.declared_length {
        if len > MAX_PUT_SIZE {
            return Err(S3Error::new(ErrorCode::EntityTooLarge)
                .with("ProposedSize", len.to_string())
                .with("MaxSizeAllowed", MAX_PUT_SIZE.to_string()));
        }
    }
    let request = DigestRequest {
        checksum: checksum.algorithm,
        sha256: body.expected_sha256.is_some(),
    };
    let mut writer = if as_file {
        ctx.store.stage_part(
            route.bucket(),
            route.key(),
            route.param("uploadId").unwrap_or(""),
            request,
        )
    } else {
        stage(ctx, route.bucket(), route.key(), request).await?
    };
    let mut received = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        received += chunk.len() as u64;
        if received > MAX_PUT_SIZE {
            return Err(ErrorCode::EntityTooLarge.into());
        }
        writer.write(chunk).await?;
    }
    if let Some(len) = body.declared_length {
        if received != len {
            return Err(S3Error::msg(
                ErrorCode::IncompleteBody,
                format!("expected {len} bytes, received {received}"),
            ));
        }
    }
    let staged = writer.finish().await?;
    let digests = &staged.digests;
    if let Some(expected) = md5 {
        if expected != digests.md5 {
            return Err(ErrorCode::BadDigest.into());
        }
    }
    if let (Some(expected), Some(actual)) = (body.expected_sha256, digests.sha256) {
        if expected != actual {
            return Err(ErrorCode::XAmzContentSHA256Mismatch.into());
        }
    }
    let mut stored = None;
    if let Some((alg, actual)) = &digests.checksum {
        let expected = match (&checksum.expected, &checksum.trailer) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(name)) => {
                let text = body.trailer(name).ok_or_else(|| {
                    S3Error::msg(
                        ErrorCode::InvalidRequest,
                        format!("The trailing header {name} was announced but not sent"),
                    )
                })?;
                Some(
                    crate::store::checksum::from_base64(text.trim()).ok_or_else(|| {
                        S3Error::msg(
                            ErrorCode::InvalidRequest,
                            format!("Value for {name} trailing header is invalid."),
                        )
                    })?,
                )
            }
            (None, None) => None,
        };
        if let Some(expected) = expected {
            if &expected != actual {
                return Err(S3Error::msg(
                    ErrorCode::BadDigest,
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        alg.name()
                    ),
                ));
            }
        }
        stored = Some(StoredChecksum {
            algorithm: *alg,
            value: actual.clone(),
            parts: None,
        });
    }
    Ok((staged, stored))
}
