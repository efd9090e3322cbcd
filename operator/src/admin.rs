//! Reaching a store's admin API: which address to call, with which root credential, and the
//! typed calls the reconcilers make. The HTTP and SigV4 work is the server crate's own
//! `coffer_server::admin::AdminClient`; this module adds timeouts, typed errors (the S3
//! error code of the JSON error document) and the response shapes of `docs/admin-api.yaml`.

use std::time::Duration;

use coffer_server::admin::AdminClient;
use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An admin API failure. Never carries a secret: error documents hold a code, a message and
/// the request path only.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AdminError {
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// The S3 error code of the error document (e.g. `NoSuchBucket`, `AccessDenied`).
    pub code: Option<String>,
    pub message: String,
}

impl AdminError {
    /// Reads the `"<status>: <JSON error document>"` errors `AdminClient` returns; anything
    /// else (connection refused, timeout) has no status.
    fn from_client(e: anyhow::Error) -> AdminError {
        let text = e.to_string();
        let status = text
            .split_once(' ')
            .and_then(|(code, _)| code.parse::<u16>().ok())
            .filter(|s| (100..600).contains(s));
        let doc: Option<Value> = text
            .split_once(": ")
            .and_then(|(_, body)| serde_json::from_str(body).ok());
        // Errors from the admin handlers are JSON; a request refused before it reaches them
        // (a bad signature) gets the S3 XML error.
        let code = doc
            .as_ref()
            .and_then(|d| d.get("code"))
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| {
                text.split_once("<Code>")
                    .and_then(|(_, rest)| rest.split_once("</Code>"))
                    .map(|(code, _)| code.to_string())
            });
        let message = match (
            &code,
            doc.as_ref()
                .and_then(|d| d.get("message"))
                .and_then(Value::as_str),
        ) {
            (Some(code), Some(msg)) => format!("{code}: {msg}"),
            _ => text,
        };
        AdminError {
            status,
            code,
            message,
        }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// A short reason for a condition: the error code, or `AdminAPIUnreachable`.
    pub fn reason(&self) -> String {
        match &self.code {
            Some(code) => format!("AdminAPI{code}"),
            None => "AdminAPIUnreachable".into(),
        }
    }
}

/// Where the operator finds stores' admin APIs. In a cluster: each store's client Service
/// (`http://<store>.<ns>.svc:9000`, `https://` with `spec.tls`) and, for per-server status,
/// each pod through the headless Service. `endpoint_override` sends every call to one
/// address instead (the operator run from a laptop through a port-forward, and tests).
#[derive(Clone, Debug)]
pub struct AdminAccess {
    pub endpoint_override: Option<String>,
    pub timeout: Duration,
}

impl Default for AdminAccess {
    fn default() -> Self {
        AdminAccess {
            endpoint_override: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The root credential of a store.
#[derive(Clone)]
pub struct RootCredential {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for RootCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RootCredential {{ user: {:?}, password: <hidden> }}",
            self.user
        )
    }
}

impl AdminAccess {
    /// A client for `endpoint` (`http(s)://host:port`), or for the override when one is set;
    /// an `https` endpoint is trusted when `ca` (PEM, the store's `ca.crt`) signed its
    /// certificate.
    pub fn client(
        &self,
        endpoint: &str,
        root: &RootCredential,
        region: &str,
        ca: Option<&[u8]>,
    ) -> Result<Admin, AdminError> {
        let url = self.endpoint_override.as_deref().unwrap_or(endpoint);
        let endpoint = url.parse().map_err(|e| AdminError {
            status: None,
            code: None,
            message: format!("bad admin endpoint {url}: {e}"),
        })?;
        Ok(Admin {
            client: AdminClient {
                endpoint,
                access_key: root.user.clone(),
                secret_key: root.password.clone(),
                region: region.to_string(),
                ca_cert: ca.map(<[u8]>::to_vec),
            },
            timeout: self.timeout,
        })
    }
}

/// A store's admin API.
pub struct Admin {
    client: AdminClient,
    timeout: Duration,
}

/// `GET status`: one server's drives and quorums.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ServerStatus {
    #[serde(default)]
    pub write_quorum: usize,
    #[serde(default)]
    pub drives: Vec<DriveStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct DriveStatus {
    /// The drive's erasure set and index in it: every server of a pool lists all the pool's
    /// drives as it sees them, so these identify a drive across answers.
    #[serde(default)]
    pub set: usize,
    #[serde(default)]
    pub index: usize,
    #[serde(default)]
    pub online: bool,
}

/// `GET heal/status`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct HealReport {
    #[serde(default)]
    pub shards_missing: u64,
    #[serde(default)]
    pub shards_healed: u64,
    #[serde(default)]
    pub scanning: bool,
    /// Drives of the server still catching up with their set (after a restart, or empty).
    #[serde(default)]
    pub drives_healing: u64,
    /// Bytes of shard files those drives still have to receive.
    #[serde(default)]
    pub bytes_left: u64,
    /// Writes the server made while a drive was away, not yet healed onto it.
    #[serde(default)]
    pub writes_to_heal: u64,
}

impl HealReport {
    /// Healing is under way: the server's drives are still catching up with their set (a
    /// restarted server, an empty drive), or a scan runs and has found shards it has not
    /// rebuilt yet.
    pub fn healing(&self) -> bool {
        self.drives_healing > 0
            || self.bytes_left > 0
            || self.writes_to_heal > 0
            || (self.scanning && self.shards_missing > self.shards_healed)
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct BucketInfo {
    pub name: String,
    #[serde(default)]
    pub versioning: String,
    #[serde(default)]
    pub usage: Usage,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Usage {
    #[serde(default)]
    pub objects: u64,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub complete: bool,
}

/// One bucket of a key, as the admin API spells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub name: String,
    pub mode: String,
}

/// `KeyInfo` without the secret (the operator never reads one back).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    pub access_key: String,
    #[serde(default)]
    pub buckets: Vec<Grant>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub description: String,
}

/// The body of `POST keys`. Debug hides the secret.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRequest {
    pub access_key: String,
    pub secret_key: String,
    pub buckets: Vec<Grant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub description: String,
}

impl std::fmt::Debug for KeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeyRequest {{ access_key: {:?}, buckets: {:?} }}",
            self.access_key, self.buckets
        )
    }
}

impl Admin {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, AdminError> {
        match tokio::time::timeout(self.timeout, self.client.call_with_body(method, path, body))
            .await
        {
            Ok(result) => result.map_err(AdminError::from_client),
            Err(_) => Err(AdminError {
                status: None,
                code: None,
                message: format!(
                    "the admin API did not answer {path} within {:?}",
                    self.timeout
                ),
            }),
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, AdminError> {
        serde_json::from_value(value).map_err(|e| AdminError {
            status: None,
            code: None,
            message: format!("unexpected admin API answer: {e}"),
        })
    }

    pub async fn status(&self) -> Result<ServerStatus, AdminError> {
        Self::parse(self.call(Method::GET, "status", None).await?)
    }

    pub async fn heal_status(&self) -> Result<HealReport, AdminError> {
        Self::parse(self.call(Method::GET, "heal/status", None).await?)
    }

    pub async fn buckets(&self) -> Result<Vec<BucketInfo>, AdminError> {
        let v = self.call(Method::GET, "buckets", None).await?;
        Self::parse(v.get("buckets").cloned().unwrap_or(Value::Array(vec![])))
    }

    /// The bucket, or `None` when the store has no bucket of that name.
    pub async fn bucket(&self, name: &str) -> Result<Option<BucketInfo>, AdminError> {
        match self
            .call(Method::GET, &format!("buckets/{name}"), None)
            .await
        {
            Ok(v) => Ok(Some(Self::parse(v)?)),
            Err(e) if e.is("NoSuchBucket") => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn create_bucket(&self, name: &str) -> Result<BucketInfo, AdminError> {
        Self::parse(
            self.call(Method::PUT, &format!("buckets/{name}"), None)
                .await?,
        )
    }

    /// Creates the bucket or applies `settings` (versioning, objectLock, defaultRetention,
    /// quota) to it; idempotent.
    pub async fn put_bucket(&self, name: &str, settings: &Value) -> Result<BucketInfo, AdminError> {
        Self::parse(
            self.call(Method::PUT, &format!("buckets/{name}"), Some(settings))
                .await?,
        )
    }

    /// Deletes an empty bucket; `BucketNotEmpty` when it holds objects.
    pub async fn delete_bucket(&self, name: &str) -> Result<(), AdminError> {
        self.call(Method::DELETE, &format!("buckets/{name}"), None)
            .await
            .map(|_| ())
    }

    pub async fn keys(&self) -> Result<Vec<KeyInfo>, AdminError> {
        let v = self.call(Method::GET, "keys", None).await?;
        Self::parse(v.get("keys").cloned().unwrap_or(Value::Array(vec![])))
    }

    pub async fn key(&self, id: &str) -> Result<Option<KeyInfo>, AdminError> {
        match self.call(Method::GET, &format!("keys/{id}"), None).await {
            Ok(v) => Ok(Some(Self::parse(v)?)),
            Err(e) if e.is("NoSuchKey") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the key or updates its buckets, expiry and description (the server keeps an
    /// existing key's secret). The response's secret is dropped unread.
    pub async fn put_key(&self, request: &KeyRequest) -> Result<KeyInfo, AdminError> {
        let body = serde_json::to_value(request).expect("a key request serializes");
        Self::parse(self.call(Method::POST, "keys", Some(&body)).await?)
    }

    pub async fn delete_key(&self, id: &str) -> Result<(), AdminError> {
        self.call(Method::DELETE, &format!("keys/{id}"), None)
            .await
            .map(|_| ())
    }
}

/// Bucket policies travel over the S3 API (`PUT/GET/DELETE /<bucket>?policy`), which the
/// admin API does not duplicate; these calls sign with the same root credential using the
/// server crate's SigV4 signer.
impl Admin {
    /// A signed S3 request (`path` like `/bucket` or `/bucket/key`, already URI-encoded).
    pub(crate) async fn s3(
        &self,
        method: Method,
        path: &str,
        query: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), AdminError> {
        use http_body_util::BodyExt;
        let fail = |message: String| AdminError {
            status: None,
            code: None,
            message,
        };
        let authority = self
            .client
            .endpoint
            .authority()
            .ok_or_else(|| {
                fail(format!(
                    "the endpoint has no host: {}",
                    self.client.endpoint
                ))
            })?
            .clone();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::HOST,
            http::HeaderValue::from_str(authority.as_str()).map_err(|e| fail(e.to_string()))?,
        );
        coffer_server::auth::sign::sign_request(
            method.as_str(),
            path,
            query,
            &mut headers,
            body,
            &self.client.access_key,
            &self.client.secret_key,
            &self.client.region,
            std::time::SystemTime::now(),
        );
        let uri = format!(
            "{}://{}{}{}",
            self.client.endpoint.scheme_str().unwrap_or("http"),
            authority,
            path,
            query.map(|q| format!("?{q}")).unwrap_or_default()
        );
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(
                body,
            )))
            .map_err(|e| fail(e.to_string()))?;
        *req.headers_mut() = headers;
        let client = self.client.http_client().map_err(|e| fail(e.to_string()))?;
        let call = async {
            let resp = client.request(req).await.map_err(|e| fail(e.to_string()))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| fail(e.to_string()))?
                .to_bytes();
            Ok::<_, AdminError>((status, body.to_vec()))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| {
                fail(format!(
                    "the S3 API did not answer {path} within {:?}",
                    self.timeout
                ))
            })?
    }

    /// Deletes every version and delete marker of the bucket's objects, by version id, at
    /// most `pages` listings of 1000 per call so one reconcile stays short. Returns how many
    /// were deleted and whether the bucket is empty now. (The admin API has no forced bucket
    /// deletion, so this walks the S3 API: ListObjectVersions, then DeleteObject with each
    /// `versionId` — a delete without one would only add a delete marker to a versioned
    /// bucket, which then never empties. An unversioned object's version id is `null`.)
    pub async fn empty_bucket(
        &self,
        bucket: &str,
        pages: usize,
    ) -> Result<(usize, bool), AdminError> {
        let mut deleted = 0;
        for _ in 0..pages {
            let (status, body) = self
                .s3(
                    Method::GET,
                    &format!("/{bucket}"),
                    Some("versions&max-keys=1000"),
                    b"",
                )
                .await?;
            if status != 200 {
                return Err(Self::s3_error(status, &body));
            }
            let xml = String::from_utf8_lossy(&body);
            // Each <Version> and <DeleteMarker> holds its <Key> and then its <VersionId>.
            let entries: Vec<(String, String)> = xml_values(&xml, "Key")
                .into_iter()
                .zip(xml_values(&xml, "VersionId"))
                .collect();
            if entries.is_empty() {
                return Ok((deleted, true));
            }
            for (key, version) in entries {
                let path = format!("/{bucket}/{}", encode_key(&key));
                let query = format!("versionId={}", encode_key(&version).replace('/', "%2F"));
                let (status, body) = self.s3(Method::DELETE, &path, Some(&query), b"").await?;
                if !(200..300).contains(&status) {
                    return Err(Self::s3_error(status, &body));
                }
                deleted += 1;
            }
        }
        Ok((deleted, false))
    }

    /// Removes the bucket's policy (nothing to do when it has none).
    pub async fn delete_bucket_policy(&self, bucket: &str) -> Result<(), AdminError> {
        let (status, body) = self
            .s3(Method::DELETE, &format!("/{bucket}"), Some("policy"), b"")
            .await?;
        match status {
            200..300 => Ok(()),
            404 if Self::s3_error(status, &body).is("NoSuchBucketPolicy") => Ok(()),
            _ => Err(Self::s3_error(status, &body)),
        }
    }

    /// An S3 XML error answer as an `AdminError` (code from `<Code>`).
    fn s3_error(status: u16, body: &[u8]) -> AdminError {
        let text = String::from_utf8_lossy(body);
        let code = text
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map(|(code, _)| code.to_string());
        AdminError {
            status: Some(status),
            message: format!(
                "{} ({status})",
                code.clone().unwrap_or_else(|| "S3 error".into())
            ),
            code,
        }
    }

    /// The bucket's policy document, `None` when it has none.
    pub async fn bucket_policy(&self, bucket: &str) -> Result<Option<Value>, AdminError> {
        let (status, body) = self
            .s3(Method::GET, &format!("/{bucket}"), Some("policy"), b"")
            .await?;
        match status {
            200 => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| AdminError {
                    status: Some(status),
                    code: None,
                    message: format!("the stored policy is not JSON: {e}"),
                }),
            404 if Self::s3_error(status, &body).is("NoSuchBucketPolicy") => Ok(None),
            _ => Err(Self::s3_error(status, &body)),
        }
    }

    pub async fn put_bucket_policy(&self, bucket: &str, policy: &str) -> Result<(), AdminError> {
        let (status, body) = self
            .s3(
                Method::PUT,
                &format!("/{bucket}"),
                Some("policy"),
                policy.as_bytes(),
            )
            .await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(Self::s3_error(status, &body))
        }
    }

    /// The bucket's lifecycle configuration document as stored, `None` without one.
    pub async fn bucket_lifecycle(&self, bucket: &str) -> Result<Option<String>, AdminError> {
        let (status, body) = self
            .s3(Method::GET, &format!("/{bucket}"), Some("lifecycle"), b"")
            .await?;
        match status {
            200 => Ok(Some(String::from_utf8_lossy(&body).into_owned())),
            404 if Self::s3_error(status, &body).is("NoSuchLifecycleConfiguration") => Ok(None),
            _ => Err(Self::s3_error(status, &body)),
        }
    }

    /// Replaces the bucket's lifecycle configuration, or removes it (`None`).
    pub async fn put_bucket_lifecycle(
        &self,
        bucket: &str,
        document: Option<&str>,
    ) -> Result<(), AdminError> {
        let (method, body) = match document {
            Some(d) => (Method::PUT, d.as_bytes()),
            None => (Method::DELETE, &b""[..]),
        };
        let (status, reply) = self
            .s3(method, &format!("/{bucket}"), Some("lifecycle"), body)
            .await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(Self::s3_error(status, &reply))
        }
    }
}

/// The text of every `<tag>…</tag>` in `xml`, with the five XML entities decoded.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(
            after[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    out
}

#[cfg(test)]
pub(crate) fn encode_key_for_tests(key: &str) -> String {
    encode_key(key)
}

/// An object key as a URI path: every byte but unreserved characters and `/` percent-encoded.
fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_become_codes() {
        let e = AdminError::from_client(anyhow::anyhow!(
            "404 Not Found: {{\"code\":\"NoSuchBucket\",\"message\":\"The specified bucket does not exist\",\"resource\":\"/x\"}}"
        ));
        assert_eq!(e.status, Some(404));
        assert!(e.is("NoSuchBucket"));
        assert_eq!(e.reason(), "AdminAPINoSuchBucket");
        let e = AdminError::from_client(anyhow::anyhow!(
            "error trying to connect: Connection refused"
        ));
        assert_eq!((e.status, e.code.clone()), (None, None));
        assert_eq!(e.reason(), "AdminAPIUnreachable");
    }

    #[test]
    fn a_server_catching_up_is_healing_before_its_scanner_finds_anything() {
        let report = |json: &str| serde_json::from_str::<HealReport>(json).unwrap();
        // What a server answers right after it came back with empty drives: the scanner is
        // idle, the drives are being filled.
        let catching_up = report(
            r#"{"cycles":0,"objects_scanned":0,"shards_missing":0,"shards_healed":0,
               "bytes_healed":0,"errors":0,"scanning":false,"orphans_removed":0,
               "bytes_left":0,"drives_healing":2}"#,
        );
        assert!(catching_up.healing());
        assert!(report(r#"{"scanning":false,"bytes_left":4096}"#).healing());
        assert!(report(r#"{"scanning":false,"writes_to_heal":3}"#).healing());
        assert!(report(r#"{"scanning":true,"shards_missing":3,"shards_healed":1}"#).healing());
        assert!(!report(r#"{"scanning":true,"shards_missing":3,"shards_healed":3}"#).healing());
        // A server from before `drives_healing` existed.
        assert!(!report(r#"{"scanning":false,"shards_missing":0,"shards_healed":0}"#).healing());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let root = RootCredential {
            user: "COFFERX".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{root:?}").contains("hunter2"));
        let req = KeyRequest {
            access_key: "CK1".into(),
            secret_key: "s3cr3t".into(),
            buckets: vec![],
            expires_at: None,
            description: String::new(),
        };
        assert!(!format!("{req:?}").contains("s3cr3t"));
    }

    #[test]
    fn listing_keys_are_decoded_and_paths_encoded() {
        let xml = "<ListBucketResult><Contents><Key>a &amp; b.txt</Key></Contents><Contents><Key>d/\u{fc}</Key></Contents></ListBucketResult>";
        assert_eq!(xml_values(xml, "Key"), ["a & b.txt", "d/\u{fc}"]);
        assert_eq!(encode_key("a & b/\u{fc}.txt"), "a%20%26%20b/%C3%BC.txt");
    }
}
