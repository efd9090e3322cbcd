//! The admin API: JSON over HTTP on the S3 port under `/_coffer/admin/v1/` (a path no bucket
//! can take, as bucket names cannot contain `_`), signed with SigV4 by the root credential.
//! Used by `coffer-server admin …` and, later, by the operator.

use std::time::SystemTime;

use axum::body::Body;
use http::{HeaderValue, Method, Response, StatusCode};
use serde::Serialize;

use crate::http::{Context, ErrorCode, RequestBody, S3Error};

mod buckets;
mod keys;
pub mod output;
pub use keys::{BucketGrant, CreateKey};

/// Path prefix of every admin endpoint.
pub const PREFIX: &str = "/_coffer/admin/v1/";

/// Every admin endpoint as (method, path template after [`PREFIX`]). `docs/admin-api.yaml`
/// must describe each one, and `tests/admin_api.rs` calls each one to prove the router serves
/// it, so neither the document nor this list can go stale silently.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "status"),
    ("GET", "heal/status"),
    ("POST", "heal/start"),
    ("GET", "keys"),
    ("POST", "keys"),
    ("GET", "keys/{id}"),
    ("DELETE", "keys/{id}"),
    ("POST", "keys/{id}/enable"),
    ("POST", "keys/{id}/disable"),
    ("POST", "keys/{id}/rotate"),
    ("GET", "buckets"),
    ("GET", "buckets/{name}"),
    ("PUT", "buckets/{name}"),
    ("DELETE", "buckets/{name}"),
];

#[derive(Serialize)]
struct DriveStatus {
    set: usize,
    index: usize,
    path: String,
    online: bool,
}

#[derive(Serialize)]
struct ServerStatus {
    version: &'static str,
    region: String,
    data_shards: usize,
    parity_shards: usize,
    write_quorum: usize,
    read_quorum: usize,
    sets: usize,
    drives: Vec<DriveStatus>,
}

fn json<T: Serialize>(value: &T) -> Result<Response<Body>, S3Error> {
    let body = serde_json::to_vec_pretty(value).map_err(S3Error::internal)?;
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// The JSON error document of the admin API: `{"code": …, "message": …, "resource": …}` plus
/// the error's extra fields (e.g. `BucketName`), with the S3 error's HTTP status.
fn json_error(err: &S3Error, path: &str) -> Response<Body> {
    let mut doc = serde_json::Map::new();
    doc.insert("code".into(), err.code.as_str().into());
    doc.insert("message".into(), err.message.clone().into());
    doc.insert("resource".into(), path.into());
    for (name, value) in &err.extra {
        doc.insert((*name).into(), value.clone().into());
    }
    let mut r = Response::new(Body::from(
        serde_json::Value::Object(doc).to_string().into_bytes(),
    ));
    *r.status_mut() = err.code.status();
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Serves an admin request from `principal` (an access key id; only root may use the API);
/// `query` is the raw query string (`DELETE buckets/{name}?force=true`).
/// Errors are answered as JSON documents (see [`json_error`]), not S3 XML.
pub async fn handle(
    ctx: &Context,
    method: &Method,
    path: &str,
    query: Option<&str>,
    principal: &str,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    Ok(route(ctx, method, path, query, principal, body)
        .await
        .unwrap_or_else(|e| json_error(&e, path)))
}

async fn route(
    ctx: &Context,
    method: &Method,
    path: &str,
    query: Option<&str>,
    principal: &str,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    if !ctx.iam.is_root(principal) {
        return Err(ErrorCode::AccessDenied.into());
    }
    let rest = path.strip_prefix(PREFIX).unwrap_or("");
    match (method, rest) {
        (&Method::GET, "status") => {
            let set = ctx.store.drive_set();
            let drives = ctx
                .store
                .sets()
                .iter()
                .enumerate()
                .flat_map(|(n, set)| set.slots.iter().enumerate().map(move |(i, s)| (n, i, s)))
                .map(|(n, i, s)| DriveStatus {
                    set: n,
                    index: i,
                    path: s
                        .as_ref()
                        .map(|s| s.drive.root().display().to_string())
                        .unwrap_or_default(),
                    online: s.as_ref().is_some_and(|s| s.reachable()),
                })
                .collect();
            json(&ServerStatus {
                version: env!("CARGO_PKG_VERSION"),
                region: ctx.region.clone(),
                data_shards: set.geometry.data,
                parity_shards: set.geometry.parity,
                write_quorum: set.write_quorum(),
                read_quorum: set.read_quorum(),
                sets: ctx.store.sets().len(),
                drives,
            })
        }
        (&Method::GET, "heal/status") => json(&ctx.heal.report(&ctx.store)),
        (_, r) if r == "keys" || r.starts_with("keys/") => keys::handle(ctx, method, r, body).await,
        (_, r) if r == "buckets" || r.starts_with("buckets/") => {
            let query = crate::http::router::parse_query(query);
            buckets::handle(ctx, method, r, &query, body).await
        }
        (&Method::POST, "heal/start") => {
            let (store, status) = (ctx.store.clone(), ctx.heal.clone());
            if store.drive_set().codec.is_some() {
                std::thread::spawn(move || {
                    crate::heal::scan_cycle(&store, &status, crate::heal::ScanPace::default())
                });
            }
            let mut r = json(&ctx.heal.report(&ctx.store))?;
            *r.status_mut() = StatusCode::ACCEPTED;
            Ok(r)
        }
        _ => Err(S3Error::msg(
            ErrorCode::InvalidRequest,
            format!("unknown admin endpoint {method} {path}"),
        )),
    }
}

/// A client of the admin API, signing with the root credential.
pub struct AdminClient {
    pub endpoint: http::Uri,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// PEM CA certificate(s) trusted for an `https` endpoint instead of the system's roots
    /// (the contents of `--ca-cert`, or of a store's TLS Secret's `ca.crt`).
    pub ca_cert: Option<Vec<u8>>,
}

/// The TLS client configuration for an `https` endpoint: the CA certificates in `ca_cert`,
/// or the system's trusted roots (loaded only when `https`: a plain endpoint needs none).
fn client_tls(ca_cert: Option<&[u8]>, https: bool) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_cert {
        Some(pem) => {
            roots = crate::cluster::peer::roots_from_pem(pem)
                .map_err(|e| anyhow::anyhow!("the CA certificate: {e}"))?;
        }
        None if !https => {}
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(crate::http::tls::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// The HTTP(S) client [`AdminClient::http_client`] makes.
pub type AdminHttp = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

impl AdminClient {
    /// A client for the endpoint: plain HTTP, or HTTPS trusting `ca_cert` (else the system's
    /// roots). Also carries the operator's signed S3 calls, so both trust the same CA.
    pub fn http_client(&self) -> anyhow::Result<AdminHttp> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client_tls(
                self.ca_cert.as_deref(),
                self.endpoint.scheme_str() == Some("https"),
            )?)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector),
        )
    }

    /// Calls `method` on admin endpoint `name` (which may end in `?query`) and returns the
    /// JSON body (`null` for an empty one, as a 204 has).
    pub async fn call(&self, method: Method, name: &str) -> anyhow::Result<serde_json::Value> {
        self.call_with_body(method, name, None).await
    }

    /// Like [`AdminClient::call`], sending `body` as JSON.
    pub async fn call_with_body(
        &self,
        method: Method,
        name: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        use http_body_util::BodyExt;
        let payload = match body {
            Some(v) => serde_json::to_vec(v)?,
            None => Vec::new(),
        };
        let authority = self
            .endpoint
            .authority()
            .ok_or_else(|| anyhow::anyhow!("the endpoint has no host: {}", self.endpoint))?
            .clone();
        let (name, query) = match name.split_once('?') {
            Some((n, q)) => (n, Some(q)),
            None => (name, None),
        };
        let path = format!("{PREFIX}{name}");
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::HOST,
            HeaderValue::from_str(authority.as_str())?,
        );
        crate::auth::sign::sign_request(
            method.as_str(),
            &path,
            query,
            &mut headers,
            &payload,
            &self.access_key,
            &self.secret_key,
            &self.region,
            SystemTime::now(),
        );
        let uri: http::Uri = format!(
            "{}://{}{}{}",
            self.endpoint.scheme_str().unwrap_or("http"),
            authority,
            path,
            query.map(|q| format!("?{q}")).unwrap_or_default()
        )
        .parse()?;
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(http_body_util::Full::new(bytes::Bytes::from(payload)))?;
        *req.headers_mut() = headers;
        let client = self.http_client()?;
        let resp = client.request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            anyhow::bail!("{status}: {}", String::from_utf8_lossy(&body));
        }
        if body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        Ok(serde_json::from_slice(&body)?)
    }
}
