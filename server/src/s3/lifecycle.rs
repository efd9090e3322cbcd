//! Put/Get/DeleteBucketLifecycleConfiguration: the document is validated by
//! [`crate::lifecycle::parse`] and kept as sent; the lifecycle worker applies it.

use axum::body::Body;
use http::{Response, StatusCode};

use super::{blocking, empty};
use crate::http::{Context, ErrorCode, RequestBody, Route, S3Error};
use crate::lifecycle::LifecycleError;
use crate::store::BucketDocument;

pub async fn put(
    ctx: &Context,
    route: &Route,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let doc = body.collect(1024 * 1024).await?;
    crate::lifecycle::parse(&doc).map_err(|e| match e {
        LifecycleError::Malformed(m) => S3Error::msg(ErrorCode::MalformedXML, m),
        LifecycleError::Invalid(m) => S3Error::msg(ErrorCode::InvalidArgument, m),
        LifecycleError::NotImplemented(m) => S3Error::msg(ErrorCode::NotImplemented, m),
    })?;
    let text =
        String::from_utf8(doc.to_vec()).map_err(|_| S3Error::new(ErrorCode::MalformedXML))?;
    let bucket = route.bucket().to_string();
    blocking(ctx, move |s| {
        s.put_bucket_document(&bucket, BucketDocument::Lifecycle, text)
    })
    .await?;
    Ok(empty(StatusCode::OK))
}

pub async fn get(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let bucket = route.bucket().to_string();
    let b = bucket.clone();
    let doc = blocking(ctx, move |s| {
        s.bucket(&b)?;
        s.bucket_document(&b, BucketDocument::Lifecycle)
    })
    .await?;
    let Some(doc) = doc else {
        return Err(
            S3Error::new(ErrorCode::NoSuchLifecycleConfiguration).with("BucketName", bucket)
        );
    };
    let mut r = Response::new(Body::from(doc));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    Ok(r)
}

pub async fn delete(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let bucket = route.bucket().to_string();
    blocking(ctx, move |s| {
        s.delete_bucket_document(&bucket, BucketDocument::Lifecycle)
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
