//! Parse once, match once: an incoming request becomes one typed [`Operation`] with its
//! bucket and key, from the method, the path or the virtual host, and the query's
//! sub-resources. Everything downstream matches on it.

use std::collections::BTreeMap;

use http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;

use super::error::{ErrorCode, S3Error};

/// S3's longest key, in UTF-8 bytes.
pub const MAX_KEY_LEN: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    ListObjects,
    ListObjectsV2,
    ListMultipartUploads,
    DeleteObjects,
    PutObject,
    /// `POST /bucket` with a multipart/form-data body: a browser-based upload.
    PostObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    PutBucketPolicy,
    GetBucketPolicy,
    DeleteBucketPolicy,
    GetBucketPolicyStatus,
    PutBucketVersioning,
    ListObjectVersions,
    GetBucketTagging,
    PutBucketTagging,
    DeleteBucketTagging,
    GetObjectLockConfiguration,
    PutObjectLockConfiguration,
    GetBucketCors,
    PutBucketCors,
    DeleteBucketCors,
    GetBucketLifecycleConfiguration,
    PutBucketLifecycleConfiguration,
    DeleteBucketLifecycle,
    GetObjectTagging,
    PutObjectTagging,
    DeleteObjectTagging,
    GetObjectAttributes,
    GetObjectRetention,
    PutObjectRetention,
    GetObjectLegalHold,
    PutObjectLegalHold,
}

/// A routed request.
#[derive(Clone, Debug)]
pub struct Route {
    pub op: Operation,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// Decoded query parameters (a parameter without `=` maps to an empty string).
    pub query: BTreeMap<String, String>,
}

impl Route {
    pub fn bucket(&self) -> &str {
        self.bucket
            .as_deref()
            .expect("bucket operations are only routed with a bucket")
    }

    pub fn key(&self) -> &str {
        self.key
            .as_deref()
            .expect("object operations are only routed with a key")
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

pub fn parse_query(raw: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        // In query strings '+' means space (form encoding), as S3 treats it.
        let dec = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        out.insert(dec(k), dec(v));
    }
    out
}

/// The bucket named by a virtual-hosted-style Host header, if any of `domains` is its parent.
fn host_bucket(headers: &HeaderMap, domains: &[String]) -> Option<String> {
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    let host = host
        .rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    domains.iter().find_map(|d| {
        host.strip_suffix(d.as_str())
            .and_then(|b| b.strip_suffix('.'))
            .filter(|b| !b.is_empty())
            .map(str::to_string)
    })
}

/// The bucket and key a request names, by its path or virtual host.
pub fn bucket_and_key(
    raw_path: &str,
    headers: &HeaderMap,
    domains: &[String],
) -> Result<(Option<String>, Option<String>), S3Error> {
    let path = percent_decode_str(raw_path).decode_utf8().map_err(|_| {
        S3Error::msg(
            ErrorCode::InvalidArgument,
            "the request path is not valid UTF-8",
        )
    })?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    Ok(match host_bucket(headers, domains) {
        Some(b) => (Some(b), Some(path.to_string()).filter(|k| !k.is_empty())),
        None => match path.split_once('/') {
            None if path.is_empty() => (None, None),
            None => (Some(path.to_string()), None),
            Some((b, k)) => (
                Some(b.to_string()),
                Some(k.to_string()).filter(|k| !k.is_empty()),
            ),
        },
    })
}

pub fn route(
    method: &Method,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    domains: &[String],
) -> Result<Route, S3Error> {
    let query = parse_query(raw_query);
    let (bucket, key) = bucket_and_key(raw_path, headers, domains)?;
    if let Some(k) = &key {
        if k.len() > MAX_KEY_LEN {
            return Err(S3Error::new(ErrorCode::KeyTooLongError)
                .with("Size", k.len().to_string())
                .with("MaxSizeAllowed", MAX_KEY_LEN.to_string()));
        }
    }
    if let Some(name) = encryption_request(headers, &query) {
        return Err(S3Error::msg(
            ErrorCode::NotImplemented,
            format!("Server-side encryption ({name}) is not implemented; the request was refused so that nothing is stored unencrypted while the client believes otherwise"),
        ));
    }
    let has = |name: &str| query.contains_key(name);
    let copy = headers.contains_key("x-amz-copy-source");
    let op = match (&bucket, &key) {
        (None, _) => match *method {
            Method::GET => Operation::ListBuckets,
            _ => return Err(ErrorCode::MethodNotAllowed.into()),
        },
        (Some(_), None) => match *method {
            Method::GET if has("location") => Operation::GetBucketLocation,
            Method::GET if has("versioning") => Operation::GetBucketVersioning,
            Method::PUT if has("versioning") => Operation::PutBucketVersioning,
            Method::GET if has("versions") => Operation::ListObjectVersions,
            Method::GET if has("tagging") => Operation::GetBucketTagging,
            Method::PUT if has("tagging") => Operation::PutBucketTagging,
            Method::DELETE if has("tagging") => Operation::DeleteBucketTagging,
            Method::GET if has("object-lock") => Operation::GetObjectLockConfiguration,
            Method::PUT if has("object-lock") => Operation::PutObjectLockConfiguration,
            Method::GET if has("cors") => Operation::GetBucketCors,
            Method::PUT if has("cors") => Operation::PutBucketCors,
            Method::DELETE if has("cors") => Operation::DeleteBucketCors,
            Method::GET if has("lifecycle") => Operation::GetBucketLifecycleConfiguration,
            Method::PUT if has("lifecycle") => Operation::PutBucketLifecycleConfiguration,
            Method::DELETE if has("lifecycle") => Operation::DeleteBucketLifecycle,
            Method::GET if has("uploads") => Operation::ListMultipartUploads,
            Method::GET if query.get("list-type").map(String::as_str) == Some("2") => {
                Operation::ListObjectsV2
            }
            Method::POST if has("delete") => Operation::DeleteObjects,
            Method::PUT if has("policy") => Operation::PutBucketPolicy,
            Method::GET if has("policy") => Operation::GetBucketPolicy,
            Method::DELETE if has("policy") => Operation::DeleteBucketPolicy,
            Method::GET if has("policyStatus") => Operation::GetBucketPolicyStatus,
            _ if unsupported_subresource(&query).is_some() => {
                return Err(not_implemented(&query));
            }
            Method::GET => Operation::ListObjects,
            Method::PUT => Operation::CreateBucket,
            Method::HEAD => Operation::HeadBucket,
            Method::DELETE => Operation::DeleteBucket,
            Method::POST => Operation::PostObject,
            _ => return Err(ErrorCode::MethodNotAllowed.into()),
        },
        (Some(_), Some(_)) => match *method {
            Method::PUT if has("uploadId") && copy => Operation::UploadPartCopy,
            Method::PUT if has("uploadId") => Operation::UploadPart,
            Method::GET if has("uploadId") => Operation::ListParts,
            Method::POST if has("uploads") => Operation::CreateMultipartUpload,
            Method::POST if has("uploadId") => Operation::CompleteMultipartUpload,
            Method::DELETE if has("uploadId") => Operation::AbortMultipartUpload,
            Method::GET if has("tagging") => Operation::GetObjectTagging,
            Method::PUT if has("tagging") => Operation::PutObjectTagging,
            Method::DELETE if has("tagging") => Operation::DeleteObjectTagging,
            Method::GET if has("attributes") => Operation::GetObjectAttributes,
            Method::GET if has("retention") => Operation::GetObjectRetention,
            Method::PUT if has("retention") => Operation::PutObjectRetention,
            Method::GET if has("legal-hold") => Operation::GetObjectLegalHold,
            Method::PUT if has("legal-hold") => Operation::PutObjectLegalHold,
            _ if unsupported_subresource(&query).is_some() => return Err(not_implemented(&query)),
            Method::PUT if copy => Operation::CopyObject,
            Method::PUT => Operation::PutObject,
            Method::GET => Operation::GetObject,
            Method::HEAD => Operation::HeadObject,
            Method::DELETE => Operation::DeleteObject,
            _ => return Err(ErrorCode::MethodNotAllowed.into()),
        },
    };
    Ok(Route {
        op,
        bucket,
        key,
        query,
    })
}

/// Sub-resources of S3 that this server does not implement yet: they must not fall through
/// to a plain GET/PUT/DELETE of the bucket or object.
const SUBRESOURCES: &[&str] = &[
    "acl",
    "accelerate",
    "analytics",
    "attributes",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
    "versions",
    "website",
    "versioning",
    "location",
    "uploads",
    "delete",
];

/// The first header (or presigned query parameter) asking for server-side encryption of any
/// kind: SSE-S3, SSE-KMS, SSE-C, or the SSE-C key of a copy source. Coffer does not encrypt
/// yet, so such a request is refused instead of being stored in the clear (or served without
/// the customer's key) while the client believes it is encrypted.
fn encryption_request<'a>(
    headers: &'a HeaderMap,
    query: &'a BTreeMap<String, String>,
) -> Option<&'a str> {
    const PREFIXES: [&str; 2] = [
        "x-amz-server-side-encryption",
        "x-amz-copy-source-server-side-encryption",
    ];
    let asks = |name: &str| {
        let lower = name.to_ascii_lowercase();
        PREFIXES.iter().any(|p| lower.starts_with(p))
    };
    headers
        .keys()
        .map(|k| k.as_str())
        .find(|k| asks(k))
        .or_else(|| query.keys().map(String::as_str).find(|k| asks(k)))
}

fn unsupported_subresource(query: &BTreeMap<String, String>) -> Option<&str> {
    SUBRESOURCES
        .iter()
        .copied()
        .find(|s| query.contains_key(*s))
}

fn not_implemented(query: &BTreeMap<String, String>) -> S3Error {
    let name = unsupported_subresource(query).unwrap_or("?");
    S3Error::msg(
        ErrorCode::NotImplemented,
        format!("The '{name}' sub-resource is not implemented for this method"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, path: &str, query: Option<&str>) -> Operation {
        route(&method, path, query, &HeaderMap::new(), &[])
            .unwrap()
            .op
    }

    #[test]
    fn routes_from_the_s3_documentation() {
        assert_eq!(op(Method::GET, "/", None), Operation::ListBuckets);
        assert_eq!(
            op(Method::PUT, "/examplebucket", None),
            Operation::CreateBucket
        );
        assert_eq!(
            op(Method::GET, "/examplebucket", Some("location")),
            Operation::GetBucketLocation
        );
        assert_eq!(
            op(Method::GET, "/examplebucket", Some("list-type=2&prefix=a")),
            Operation::ListObjectsV2
        );
        assert_eq!(
            op(Method::GET, "/examplebucket/", Some("marker=x")),
            Operation::ListObjects
        );
        assert_eq!(
            op(Method::POST, "/examplebucket", Some("delete")),
            Operation::DeleteObjects
        );
        assert_eq!(
            op(Method::GET, "/examplebucket", Some("uploads")),
            Operation::ListMultipartUploads
        );
        // POST Object: `POST / HTTP/1.1` on the bucket's host, or the bucket path.
        assert_eq!(
            op(Method::POST, "/examplebucket", None),
            Operation::PostObject
        );
        assert_eq!(
            op(Method::POST, "/examplebucket/", None),
            Operation::PostObject
        );
        assert_eq!(
            op(
                Method::PUT,
                "/examplebucket/photos/2006/February/sample.jpg",
                None
            ),
            Operation::PutObject
        );
        assert_eq!(
            op(
                Method::POST,
                "/examplebucket/example-object",
                Some("uploads")
            ),
            Operation::CreateMultipartUpload
        );
        assert_eq!(
            op(
                Method::PUT,
                "/examplebucket/example-object",
                Some("partNumber=1&uploadId=VXBsb2FkIElE")
            ),
            Operation::UploadPart
        );
        assert_eq!(
            op(
                Method::POST,
                "/examplebucket/example-object",
                Some("uploadId=VXBs")
            ),
            Operation::CompleteMultipartUpload
        );
        assert_eq!(
            op(
                Method::DELETE,
                "/examplebucket/example-object",
                Some("uploadId=VXBs")
            ),
            Operation::AbortMultipartUpload
        );
        assert_eq!(
            op(
                Method::GET,
                "/examplebucket/example-object",
                Some("uploadId=VXBs")
            ),
            Operation::ListParts
        );
        assert_eq!(
            op(Method::HEAD, "/examplebucket/my-image.jpg", None),
            Operation::HeadObject
        );
    }

    #[test]
    fn keys_are_decoded_exactly_and_plus_stays_plus_in_paths() {
        let r = route(
            &Method::GET,
            "/b/a%20b/..%2F/c+d%25%3F",
            None,
            &HeaderMap::new(),
            &[],
        )
        .unwrap();
        assert_eq!(r.bucket.as_deref(), Some("b"));
        assert_eq!(r.key.as_deref(), Some("a b/..//c+d%?"));
        let r = route(&Method::GET, "/b//x", None, &HeaderMap::new(), &[]).unwrap();
        assert_eq!(r.key.as_deref(), Some("/x"));
    }

    #[test]
    fn virtual_hosted_style_takes_the_bucket_from_the_host() {
        let mut h = HeaderMap::new();
        h.insert(http::header::HOST, "photos.s3.local:9000".parse().unwrap());
        let r = route(
            &Method::GET,
            "/2024/a.jpg",
            None,
            &h,
            &["s3.local".to_string()],
        )
        .unwrap();
        assert_eq!(
            (r.bucket.as_deref(), r.key.as_deref()),
            (Some("photos"), Some("2024/a.jpg"))
        );
        let r = route(
            &Method::GET,
            "/photos/x",
            None,
            &h,
            &["other.domain".to_string()],
        )
        .unwrap();
        assert_eq!(r.bucket.as_deref(), Some("photos"));
    }

    #[test]
    fn a_request_for_server_side_encryption_is_refused_not_stored_in_the_clear() {
        for (header, value) in [
            ("x-amz-server-side-encryption", "AES256"),
            ("x-amz-server-side-encryption", "aws:kms"),
            ("x-amz-server-side-encryption-aws-kms-key-id", "k"),
            ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
            ("x-amz-server-side-encryption-customer-key", "a2V5"),
            (
                "x-amz-copy-source-server-side-encryption-customer-key",
                "a2V5",
            ),
        ] {
            for method in [Method::PUT, Method::GET, Method::HEAD, Method::POST] {
                let mut headers = HeaderMap::new();
                headers.insert(header, value.parse().unwrap());
                let e = route(&method, "/b/k", None, &headers, &[]).unwrap_err();
                assert_eq!(e.code, ErrorCode::NotImplemented, "{method} {header}");
            }
        }
        // Presigned: the same names as query parameters.
        let e = route(
            &Method::GET,
            "/b/k",
            Some("X-Amz-Server-Side-Encryption-Customer-Algorithm=AES256"),
            &HeaderMap::new(),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::NotImplemented);
        // Bucket default encryption is a sub-resource Coffer does not have either.
        let e = route(
            &Method::PUT,
            "/b",
            Some("encryption"),
            &HeaderMap::new(),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::NotImplemented);
    }

    #[test]
    fn overlong_keys_and_unknown_subresources_are_refused() {
        let long = format!("/b/{}", "k".repeat(1025));
        let e = route(&Method::PUT, &long, None, &HeaderMap::new(), &[]).unwrap_err();
        assert_eq!(e.code, ErrorCode::KeyTooLongError);
        let e = route(&Method::PUT, "/b/k", Some("acl"), &HeaderMap::new(), &[]).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotImplemented);
        // A known sub-resource with a method it does not have is refused, not a plain write.
        let e = route(
            &Method::POST,
            "/b/k",
            Some("tagging"),
            &HeaderMap::new(),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::NotImplemented);
    }

    #[test]
    fn data_management_subresources_route_to_their_operations() {
        use Operation as O;
        for (method, path, query, want) in [
            (Method::PUT, "/b", "versioning", O::PutBucketVersioning),
            (Method::GET, "/b", "versions", O::ListObjectVersions),
            (Method::GET, "/b", "tagging", O::GetBucketTagging),
            (Method::DELETE, "/b", "tagging", O::DeleteBucketTagging),
            (
                Method::PUT,
                "/b",
                "object-lock",
                O::PutObjectLockConfiguration,
            ),
            (Method::GET, "/b/k", "tagging", O::GetObjectTagging),
            (Method::PUT, "/b/k", "tagging", O::PutObjectTagging),
            (Method::DELETE, "/b/k", "tagging", O::DeleteObjectTagging),
            (Method::GET, "/b/k", "attributes", O::GetObjectAttributes),
            (Method::PUT, "/b/k", "retention", O::PutObjectRetention),
            (Method::GET, "/b/k", "legal-hold", O::GetObjectLegalHold),
        ] {
            assert_eq!(op(method, path, Some(query)), want, "{path}?{query}");
        }
    }
}
