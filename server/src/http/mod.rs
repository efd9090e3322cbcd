//! The HTTP front: listener, graceful shutdown, routing a request to its S3 operation,
//! authentication, body decoding, and turning errors into S3 XML error documents.

pub mod body;
pub mod error;
pub mod router;
mod server;

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderValue, Request, Response};

pub use body::RequestBody;
pub use error::{ErrorCode, S3Error};
pub use router::{Operation, Route};
pub use server::{serve, ServerHandle};

use crate::auth::{self, AuthRequest, ChunkedBody, PayloadCheck, Principal};
use crate::iam::Iam;
use crate::s3;
use crate::store::Store;

/// Everything a request needs, shared by all requests.
pub struct Context {
    pub store: Arc<Store>,
    pub iam: Arc<Iam>,
    pub region: String,
    /// Parent domains for virtual-hosted-style requests (`bucket.DOMAIN`).
    pub domains: Vec<String>,
    /// Progress of the background scanner, for the admin API.
    pub heal: Arc<crate::heal::HealStatus>,
}

fn request_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}

/// Handles one request end to end; never fails (errors become S3 error responses).
pub async fn handle(ctx: Arc<Context>, req: Request<Body>) -> Response<Body> {
    let id = request_id();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let mut response = match dispatch(&ctx, req).await {
        Ok(r) => r,
        Err(e) => {
            let resource = percent_encoding::percent_decode_str(&path)
                .decode_utf8_lossy()
                .into_owned();
            let head = method == http::Method::HEAD;
            let xml = error::error_xml(&e, &resource, &id);
            let mut r = Response::new(if head { Body::empty() } else { Body::from(xml) });
            *r.status_mut() = e.code.status();
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
            r
        }
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("x-amz-request-id", v.clone());
        headers.insert("x-amz-id-2", v);
    }
    headers.insert(http::header::SERVER, HeaderValue::from_static("Coffer"));
    tracing::debug!(
        request_id = %id, method = %method, path = %path,
        status = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

async fn dispatch(ctx: &Context, req: Request<Body>) -> Result<Response<Body>, S3Error> {
    let (mut parts, body) = req.into_parts();
    if !parts.headers.contains_key(http::header::HOST) {
        // HTTP/2 carries the host in `:authority`; signatures cover it as `host`.
        if let Some(v) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.insert(http::header::HOST, v);
        }
    }
    let raw_path = parts.uri.path();
    let raw_query = parts.uri.query();
    if raw_path.starts_with(crate::admin::PREFIX) {
        let auth = auth::authenticate(
            &AuthRequest {
                method: &parts.method,
                raw_path,
                raw_query,
                headers: &parts.headers,
            },
            &ctx.region,
            SystemTime::now(),
            ctx.iam.as_ref(),
        )?;
        let Principal::AccessKey(principal) = auth.principal else {
            return Err(ErrorCode::AccessDenied.into());
        };
        return crate::admin::handle(ctx, &parts.method, raw_path, &principal).await;
    }
    let route = router::route(
        &parts.method,
        raw_path,
        raw_query,
        &parts.headers,
        &ctx.domains,
    )?;
    let auth = auth::authenticate(
        &AuthRequest {
            method: &parts.method,
            raw_path,
            raw_query,
            headers: &parts.headers,
        },
        &ctx.region,
        SystemTime::now(),
        ctx.iam.as_ref(),
    )?;
    if let Principal::Anonymous = auth.principal {
        // Bucket policies that may allow anonymous access arrive with the IAM issue.
        return Err(ErrorCode::AccessDenied.into());
    }
    let content_length = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok()))
        .map(|v| {
            v.ok_or_else(|| {
                S3Error::msg(ErrorCode::InvalidArgument, "Content-Length is not a number")
            })
        })
        .transpose()?;
    let raw = body.into_data_stream().map_err(|e| {
        S3Error::msg(
            ErrorCode::IncompleteBody,
            format!("the request body ended early: {e}"),
        )
    });
    let body = match auth.payload {
        PayloadCheck::None => RequestBody::new(raw.boxed(), content_length),
        PayloadCheck::Sha256(hash) => {
            let mut b = RequestBody::new(raw.boxed(), content_length);
            b.expected_sha256 = Some(hash);
            b
        }
        PayloadCheck::Chunked(mode) => {
            let declared = parts
                .headers
                .get("x-amz-decoded-content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.parse::<u64>().ok());
            let decoder = ChunkedBody::new(raw.boxed(), mode);
            let trailers = decoder.trailers();
            let mut b = RequestBody::new(decoder.map_err(S3Error::from).boxed(), declared);
            b.trailers = Some(trailers);
            b
        }
    };
    s3::dispatch(ctx, &route, &parts.headers, body).await
}
