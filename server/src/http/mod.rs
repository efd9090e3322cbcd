//! The HTTP front: listener, graceful shutdown, routing a request to its S3 operation,
//! authentication, body decoding, and turning errors into S3 XML error documents.

pub mod body;
pub mod error;
pub mod health;
pub mod router;
mod server;
pub mod tls;

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderValue, Request, Response};

pub use body::RequestBody;
pub use error::{ErrorCode, S3Error};
pub use router::{Operation, Route};
pub use server::{serve, serve_with_tls, ClientConnection, ServerHandle};

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
    /// Parsed bucket policies, cached for the access check of every request.
    pub policies: s3::policy::BucketPolicies,
    /// Request counters and state gauges served at `/_coffer/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// This server's cluster (peers to notify of metadata changes); `None` when standalone.
    pub cluster: Option<Arc<crate::cluster::node::Cluster>>,
}

impl Context {
    /// Drops the cached policy of `bucket` here and on every other server.
    pub async fn forget_policy(&self, bucket: &str) {
        self.policies.forget(bucket);
        self.broadcast(crate::cluster::peer::Notice::BucketPolicy(
            bucket.to_string(),
        ))
        .await;
    }

    /// Tells the other servers of the cluster to re-read what changed.
    pub async fn broadcast(&self, notice: crate::cluster::peer::Notice) {
        if let Some(c) = &self.cluster {
            c.broadcast(notice).await;
        }
    }
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
    let bytes_received = content_length(req.headers());
    // A browser's actual request (not the preflight) gets the bucket's CORS headers.
    let cors = req
        .headers()
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|_| method != http::Method::OPTIONS && !path.starts_with(crate::admin::PREFIX))
        .and_then(|origin| {
            router::bucket_and_key(&path, req.headers(), &ctx.domains)
                .ok()
                .and_then(|(bucket, _)| bucket)
                .map(|bucket| (bucket, origin.to_string()))
        });
    // Set by `dispatch` once the request is routed; failures before that count as "unknown".
    let mut operation: Option<String> = None;
    let mut response = match dispatch(&ctx, req, &mut operation).await {
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
            for (name, value) in &e.headers {
                if let Ok(v) = HeaderValue::from_str(value) {
                    r.headers_mut().insert(*name, v);
                }
            }
            r
        }
    };
    if let Some((bucket, origin)) = cors {
        s3::cors::decorate(&ctx, &bucket, &method, &origin, &mut response).await;
    }
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
    if health::endpoint(&method, &path).is_none() {
        ctx.metrics.record_request(
            operation.as_deref().unwrap_or("unknown"),
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
            bytes_received,
            content_length(response.headers()),
        );
    }
    response
}

/// A message's declared Content-Length, when it has a valid one.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

async fn dispatch(
    ctx: &Context,
    req: Request<Body>,
    operation: &mut Option<String>,
) -> Result<Response<Body>, S3Error> {
    // Probes and scrapes are unauthenticated, and only these exact paths are.
    if let Some(endpoint) = health::endpoint(req.method(), req.uri().path()) {
        return Ok(health::handle(ctx, endpoint));
    }
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
    if parts.method == http::Method::OPTIONS && !raw_path.starts_with(crate::admin::PREFIX) {
        // CORS preflight: browsers send it without credentials; the bucket's rules decide.
        *operation = Some("PreflightCors".into());
        let (bucket, _) = router::bucket_and_key(raw_path, &parts.headers, &ctx.domains)?;
        return s3::cors::preflight(ctx, bucket.as_deref(), &parts.headers).await;
    }
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
    if raw_path.starts_with(crate::admin::PREFIX) {
        *operation = Some("Admin".into());
        let Principal::AccessKey(principal) = auth.principal else {
            return Err(ErrorCode::AccessDenied.into());
        };
        let mut body = RequestBody::new(
            body.into_data_stream()
                .map_err(|e| S3Error::msg(ErrorCode::IncompleteBody, e.to_string()))
                .boxed(),
            None,
        );
        if let PayloadCheck::Sha256(hash) = auth.payload {
            body.expected_sha256 = Some(hash);
        }
        return crate::admin::handle(ctx, &parts.method, raw_path, raw_query, &principal, body)
            .await;
    }
    let route = router::route(
        &parts.method,
        raw_path,
        raw_query,
        &parts.headers,
        &ctx.domains,
    )?;
    *operation = Some(format!("{:?}", route.op));
    let connection = parts.extensions.get::<ClientConnection>();
    if route.op == Operation::PostObject {
        // The form, not the request, carries the credential: the handler authenticates
        // and authorizes once it has read the fields.
        return s3::post_object::post_object(ctx, &route, &parts.headers, body, connection).await;
    }
    if let Principal::AccessKey(principal) = &auth.principal {
        // Scoped keys: their buckets and modes only; copies also need read on the source.
        // Checked before bucket policies so nothing tells a key whether another bucket exists.
        let source = matches!(route.op, Operation::CopyObject | Operation::UploadPartCopy)
            .then(|| s3::object::copy_source(&parts.headers))
            .transpose()?;
        let source_bucket = source.as_ref().map(|s| s.bucket.as_str());
        ctx.iam
            .authorize(principal, &route.op, route.bucket.as_deref(), source_bucket)
            .map_err(|_| S3Error::from(ErrorCode::AccessDenied))?;
        if route.op == Operation::ListBuckets {
            if let Some(scope) = ctx.iam.bucket_scope(principal) {
                return s3::bucket::list_buckets_in(ctx, Some(&scope)).await;
            }
        }
    }
    // Bucket policies: an anonymous request needs an Allow; an explicit Deny refuses anyone.
    s3::policy::authorize(ctx, &route, &auth.principal, &parts.headers, connection).await?;
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
    s3::dispatch(
        ctx,
        &route,
        &auth.principal,
        connection,
        &parts.headers,
        body,
    )
    .await
}
