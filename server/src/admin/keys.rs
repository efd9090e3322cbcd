//! Admin endpoints for scoped access keys (`keys`, `keys/{id}`, `keys/{id}/{action}`). Every
//! call is idempotent so the operator can repeat it on each reconcile: creating a key with a
//! given `accessKey` creates or updates it, enabling an enabled key or deleting a missing one
//! succeeds. A secret appears only in the response that set it; listings never carry one.

use std::sync::Arc;

use axum::body::Body;
use http::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::json;
use crate::http::{Context, ErrorCode, RequestBody, S3Error};
use crate::iam::keys::{AccessKeyRecord, AccessMode};
use crate::iam::{new_access_key_record, Credential};
use crate::s3::blocking;
use crate::store::StoreError;

/// One bucket of a key and what the key may do there.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketGrant {
    pub name: String,
    pub mode: AccessMode,
}

/// The body of `POST keys`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKey {
    pub buckets: Vec<BucketGrant>,
    /// RFC 3339 time after which the key stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The access key id to use (generated when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// The secret to use (generated for a new key when absent; kept for an existing one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A key as the admin API describes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyInfo {
    access_key: String,
    buckets: Vec<BucketGrant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    enabled: bool,
    created: String,
    description: String,
    /// Only in the response of the call that set the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_key: Option<String>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn info(r: &AccessKeyRecord, secret_key: Option<String>) -> KeyInfo {
    KeyInfo {
        access_key: r.access_key.clone(),
        buckets: r
            .buckets
            .iter()
            .map(|(name, mode)| BucketGrant {
                name: name.clone(),
                mode: *mode,
            })
            .collect(),
        expires_at: r
            .expires_at
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .map(rfc3339),
        enabled: r.enabled,
        created: OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.created_ns))
            .map(rfc3339)
            .unwrap_or_default(),
        description: r.description.clone(),
        secret_key,
    }
}

fn invalid(msg: impl Into<String>) -> S3Error {
    S3Error::msg(ErrorCode::InvalidArgument, msg)
}

fn not_found(id: &str) -> S3Error {
    S3Error::msg(ErrorCode::NoSuchKey, format!("no access key {id}"))
}

fn valid_access_key(id: &str) -> bool {
    (3..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Serves `rest` (the path after the admin prefix, starting with `keys`).
pub async fn handle(
    ctx: &Context,
    method: &Method,
    rest: &str,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let response = serve(ctx, method, rest, body).await;
    if method != Method::GET && response.is_ok() {
        // Every server must honour the change before the caller hears it is done.
        ctx.broadcast(crate::cluster::peer::Notice::AccessKeys)
            .await;
    }
    response
}

async fn serve(
    ctx: &Context,
    method: &Method,
    rest: &str,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let parts: Vec<&str> = rest.split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::POST, ["keys"]) => create(ctx, body).await,
        (&Method::GET, ["keys"]) => {
            let keys = blocking(ctx, |s| s.list_access_keys()).await?;
            let keys: Vec<KeyInfo> = keys.iter().map(|r| info(r, None)).collect();
            json(&serde_json::json!({ "keys": keys }))
        }
        (&Method::GET, ["keys", id]) => {
            let id = id.to_string();
            let record = blocking(ctx, move |s| s.access_key(&id)).await?;
            json(&info(&record.ok_or_else(|| not_found(parts[1]))?, None))
        }
        (&Method::DELETE, ["keys", id]) => {
            let (iam, id) = (ctx.iam.clone(), id.to_string());
            let deleted = blocking(ctx, move |s| {
                let existed = s.delete_access_key(&id)?;
                iam.reload(s)?;
                Ok(existed)
            })
            .await?;
            json(&serde_json::json!({ "deleted": deleted }))
        }
        (&Method::POST, ["keys", id, action @ ("enable" | "disable" | "rotate")]) => {
            let (iam, id, action) = (ctx.iam.clone(), id.to_string(), action.to_string());
            let updated = blocking(ctx, move |s| {
                let Some(mut r) = s.access_key(&id)? else {
                    return Ok(None);
                };
                let mut secret = None;
                match action.as_str() {
                    "enable" => r.enabled = true,
                    "disable" => r.enabled = false,
                    _ => {
                        let new = Credential::generate().secret_key;
                        r.sealed_secret = iam.sealer().seal(&r.access_key, &new);
                        secret = Some(new);
                    }
                }
                s.put_access_key(&r)?;
                iam.reload(s)?;
                Ok(Some(info(&r, secret)))
            })
            .await?;
            json(&updated.ok_or_else(|| not_found(parts[1]))?)
        }
        _ => Err(S3Error::msg(
            ErrorCode::InvalidRequest,
            format!("unknown admin endpoint {method} {rest}"),
        )),
    }
}

async fn create(ctx: &Context, body: RequestBody) -> Result<Response<Body>, S3Error> {
    let doc = body.collect(64 * 1024).await?;
    let req: CreateKey = serde_json::from_slice(&doc)
        .map_err(|e| invalid(format!("the key document does not parse: {e}")))?;
    if req.buckets.is_empty() {
        return Err(invalid("a key needs at least one bucket"));
    }
    let mut buckets: Vec<(String, AccessMode)> = Vec::new();
    for g in req.buckets {
        if !crate::s3::bucket::valid_bucket_name(&g.name) {
            return Err(invalid(format!("{:?} is not a valid bucket name", g.name)));
        }
        if buckets.iter().any(|(b, _)| *b == g.name) {
            return Err(invalid(format!("bucket {} is listed twice", g.name)));
        }
        buckets.push((g.name, g.mode));
    }
    let expires_at = req
        .expires_at
        .map(|t| {
            OffsetDateTime::parse(&t, &Rfc3339)
                .map(|t| t.unix_timestamp())
                .map_err(|e| invalid(format!("expiresAt {t:?} is not an RFC 3339 time: {e}")))
        })
        .transpose()?;
    let access_key = req
        .access_key
        .unwrap_or_else(|| Credential::generate().access_key);
    if !valid_access_key(&access_key) || ctx.iam.is_root(&access_key) {
        return Err(invalid(format!(
            "access key {access_key:?} must be 3 to 128 letters, digits, '.', '_' or '-' \
             and differ from the root user"
        )));
    }
    if let Some(s) = &req.secret_key {
        if !(8..=128).contains(&s.len()) || s.chars().any(char::is_control) {
            return Err(invalid("secretKey needs 8 to 128 printable characters"));
        }
    }
    let description = req.description.unwrap_or_default();
    let iam = ctx.iam.clone();
    let given_secret = req.secret_key;
    let (record, secret, created) = blocking(ctx, move |s| {
        create_or_update(
            s,
            &iam,
            access_key,
            given_secret,
            buckets,
            expires_at,
            description,
        )
    })
    .await?;
    let mut r = json(&info(&record, secret))?;
    if created {
        *r.status_mut() = StatusCode::CREATED;
    }
    Ok(r)
}

/// Writes the key; returns the record, the secret when this call set it, and whether the key
/// is new.
fn create_or_update(
    s: &crate::store::Store,
    iam: &Arc<crate::iam::Iam>,
    access_key: String,
    given_secret: Option<String>,
    buckets: Vec<(String, AccessMode)>,
    expires_at: Option<i64>,
    description: String,
) -> Result<(AccessKeyRecord, Option<String>, bool), StoreError> {
    let existing = s.access_key(&access_key)?;
    let created = existing.is_none();
    let (record, secret) = match (existing, given_secret) {
        (Some(mut r), None) => {
            r.buckets = buckets;
            r.expires_at = expires_at;
            r.description = description;
            (r, None)
        }
        (existing, given) => {
            let secret = given.unwrap_or_else(|| Credential::generate().secret_key);
            let mut r =
                new_access_key_record(iam, &access_key, &secret, buckets, expires_at, description);
            if let Some(old) = existing {
                r.enabled = old.enabled;
                r.created_ns = old.created_ns;
            }
            (r, Some(secret))
        }
    };
    s.put_access_key(&record)?;
    iam.reload(s)?;
    Ok((record, secret, created))
}
