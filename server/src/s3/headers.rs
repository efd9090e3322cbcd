//! Request and response headers of S3 objects: stored metadata, checksum requests, Content-MD5,
//! conditional requests, ranges and dates.

use http::{HeaderMap, HeaderValue};

use crate::http::{ErrorCode, S3Error};
use crate::store::checksum::{self, ChecksumAlgorithm};
use crate::store::record::{ObjectMeta, StoredChecksum, VersionRecord};
use crate::store::ByteRange;

/// S3's limit on the total size of user metadata (names and values).
pub const MAX_USER_METADATA: usize = 2048;

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn object_meta(headers: &HeaderMap) -> Result<ObjectMeta, S3Error> {
    let get = |n: &str| header(headers, n).map(str::to_string);
    let mut user = Vec::new();
    let mut total = 0;
    for (name, value) in headers {
        if let Some(n) = name.as_str().strip_prefix("x-amz-meta-") {
            let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
            total += n.len() + v.len();
            user.push((n.to_string(), v));
        }
    }
    if total > MAX_USER_METADATA {
        return Err(S3Error::new(ErrorCode::MetadataTooLarge)
            .with("Size", total.to_string())
            .with("MaxSizeAllowed", MAX_USER_METADATA.to_string()));
    }
    if let Some(class) = header(headers, "x-amz-storage-class") {
        const CLASSES: &[&str] = &[
            "STANDARD",
            "REDUCED_REDUNDANCY",
            "STANDARD_IA",
            "ONEZONE_IA",
            "INTELLIGENT_TIERING",
            "GLACIER",
            "DEEP_ARCHIVE",
            "GLACIER_IR",
            "OUTPOSTS",
            "EXPRESS_ONEZONE",
        ];
        if !CLASSES.contains(&class) {
            return Err(S3Error::msg(
                ErrorCode::InvalidStorageClass,
                "The storage class you specified is not valid",
            ));
        }
    }
    Ok(ObjectMeta {
        content_type: get("content-type"),
        content_encoding: get("content-encoding")
            .map(strip_aws_chunked)
            .filter(|s| !s.is_empty()),
        content_disposition: get("content-disposition"),
        content_language: get("content-language"),
        cache_control: get("cache-control"),
        expires: get("expires"),
        user,
    })
}

/// `aws-chunked` is a transfer detail, not part of the stored Content-Encoding.
fn strip_aws_chunked(v: String) -> String {
    v.split(',')
        .map(str::trim)
        .filter(|e| !e.eq_ignore_ascii_case("aws-chunked"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The checksum a client asked for on an upload, and where its expected value comes from.
#[derive(Clone, Debug, Default)]
pub struct ChecksumRequest {
    pub algorithm: Option<ChecksumAlgorithm>,
    /// Expected raw digest from an `x-amz-checksum-*` header.
    pub expected: Option<Vec<u8>>,
    /// Name of the trailing header that will carry the expected value.
    pub trailer: Option<String>,
}

pub fn checksum_request(headers: &HeaderMap) -> Result<ChecksumRequest, S3Error> {
    let mut req = ChecksumRequest::default();
    for alg in ChecksumAlgorithm::ALL {
        let name = format!("x-amz-checksum-{}", alg.header_suffix());
        if let Some(v) = header(headers, &name) {
            if req.algorithm.is_some() {
                return Err(S3Error::msg(ErrorCode::InvalidRequest, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."));
            }
            let raw = checksum::from_base64(v)
                .filter(|r| r.len() == alg.digest_len())
                .ok_or_else(|| {
                    S3Error::msg(
                        ErrorCode::InvalidRequest,
                        format!("Value for {name} header is invalid."),
                    )
                })?;
            req.algorithm = Some(alg);
            req.expected = Some(raw);
        }
    }
    if let Some(trailer) = header(headers, "x-amz-trailer") {
        let name = trailer.trim().to_ascii_lowercase();
        if let Some(alg) = name.strip_prefix("x-amz-checksum-").and_then(|s| {
            ChecksumAlgorithm::ALL
                .into_iter()
                .find(|a| a.header_suffix() == s)
        }) {
            if req.algorithm.is_some_and(|a| a != alg) {
                return Err(S3Error::msg(ErrorCode::InvalidRequest, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."));
            }
            req.algorithm = Some(alg);
            req.trailer = Some(name);
        } else {
            return Err(S3Error::msg(
                ErrorCode::InvalidRequest,
                format!("The trailer {trailer} is not supported"),
            ));
        }
    }
    if req.algorithm.is_none() {
        if let Some(name) = header(headers, "x-amz-sdk-checksum-algorithm")
            .or_else(|| header(headers, "x-amz-checksum-algorithm"))
        {
            req.algorithm = Some(parse_algorithm(name)?);
        }
    }
    Ok(req)
}

pub fn parse_algorithm(name: &str) -> Result<ChecksumAlgorithm, S3Error> {
    ChecksumAlgorithm::parse(name).ok_or_else(|| {
        S3Error::msg(
            ErrorCode::InvalidRequest,
            format!("Checksum algorithm '{name}' is not supported"),
        )
    })
}

pub fn content_md5(headers: &HeaderMap) -> Result<Option<[u8; 16]>, S3Error> {
    match header(headers, "content-md5") {
        None => Ok(None),
        Some(v) => checksum::from_base64(v.trim())
            .and_then(|raw| <[u8; 16]>::try_from(raw).ok())
            .map(Some)
            .ok_or_else(|| {
                S3Error::msg(
                    ErrorCode::InvalidDigest,
                    "The Content-MD5 you specified is not valid.",
                )
            }),
    }
}

pub fn iso8601(ns: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

pub fn http_date(ns: u64) -> String {
    httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(ns / 1_000_000_000),
    )
}

fn parse_http_date(v: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(v.trim()).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs())
}

/// Quoted ETag as S3 returns it.
pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// Evaluates If-Match / If-None-Match / If-(Un)Modified-Since (with `prefix`
/// "x-amz-copy-source-" for a copy source), in the order RFC 7232 and S3 give them.
pub fn check_conditions(
    headers: &HeaderMap,
    prefix: &str,
    record: &VersionRecord,
    copy_source: bool,
) -> Result<(), S3Error> {
    let h = |n: &str| header(headers, &format!("{prefix}{n}"));
    let modified_secs = record.mod_time_ns / 1_000_000_000;
    let failed = || S3Error::new(ErrorCode::PreconditionFailed);
    let not_modified = || {
        if copy_source {
            failed()
        } else {
            S3Error::new(ErrorCode::NotModified)
        }
    };
    let if_match = h("if-match");
    if let Some(m) = if_match {
        if !crate::store::etag_matches(m, &record.etag) {
            return Err(failed().with("Condition", "If-Match"));
        }
    } else if let Some(since) = h("if-unmodified-since").and_then(parse_http_date) {
        if modified_secs > since {
            return Err(failed().with("Condition", "If-Unmodified-Since"));
        }
    }
    let if_none_match = h("if-none-match");
    if let Some(m) = if_none_match {
        if crate::store::etag_matches(m, &record.etag) {
            return Err(not_modified());
        }
    } else if let Some(since) = h("if-modified-since").and_then(parse_http_date) {
        if modified_secs <= since {
            return Err(not_modified());
        }
    }
    Ok(())
}

/// Parses a `Range: bytes=…` header against an object of `size` bytes. `Ok(None)` means the
/// whole object (no header, or one this server ignores as RFC 7233 allows).
pub fn parse_range(value: Option<&str>, size: u64) -> Result<Option<ByteRange>, S3Error> {
    let Some(value) = value else { return Ok(None) };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let unsatisfiable = || {
        S3Error::new(ErrorCode::InvalidRange)
            .with("RangeRequested", value.to_string())
            .with("ActualObjectSize", size.to_string())
    };
    let range = if first.is_empty() {
        let Ok(n) = last.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        ByteRange {
            start: size.saturating_sub(n),
            end: size,
        }
    } else {
        let Ok(start) = first.parse::<u64>() else {
            return Ok(None);
        };
        let end = if last.is_empty() {
            size
        } else {
            match last.parse::<u64>() {
                Ok(l) if l >= start => (l + 1).min(size),
                _ => return Ok(None),
            }
        };
        if start >= size {
            return Err(unsatisfiable());
        }
        ByteRange { start, end }
    };
    Ok(Some(range))
}

pub fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// Adds `x-amz-version-id` for a versioned record (the null version carries none).
pub fn insert_version_id(h: &mut HeaderMap, version_id: Option<&str>) {
    if let Some(v) = version_id {
        insert(h, "x-amz-version-id", v);
    }
}

/// `r` with the `x-amz-version-id` of the version it answers about.
pub fn with_version<B>(mut r: http::Response<B>, version_id: Option<&str>) -> http::Response<B> {
    insert_version_id(r.headers_mut(), version_id);
    r
}

/// The checksum value as S3 prints it: base64, with `-N` for COMPOSITE multipart checksums.
pub fn checksum_text(c: &StoredChecksum) -> String {
    match c.parts {
        Some(n) => format!("{}-{n}", checksum::base64(&c.value)),
        None => checksum::base64(&c.value),
    }
}

pub fn checksum_type(c: &StoredChecksum) -> &'static str {
    if c.parts.is_some() {
        "COMPOSITE"
    } else {
        "FULL_OBJECT"
    }
}

/// Adds `x-amz-checksum-<alg>` (and its type) for `c`.
pub fn insert_checksum(headers: &mut HeaderMap, c: &StoredChecksum) {
    let name = format!("x-amz-checksum-{}", c.algorithm.header_suffix());
    if let (Ok(n), Ok(v)) = (
        http::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(&checksum_text(c)),
    ) {
        headers.insert(n, v);
    }
    insert(headers, "x-amz-checksum-type", checksum_type(c));
}

/// The document elements (`ChecksumCRC32`…) for `c`.
pub fn checksum_elements(c: Option<&StoredChecksum>) -> super::xml::Checksums {
    use super::xml::ChecksumElement as E;
    c.map(|c| {
        let text = checksum_text(c);
        match c.algorithm {
            ChecksumAlgorithm::Crc32 => E::Crc32(text),
            ChecksumAlgorithm::Crc32c => E::Crc32c(text),
            ChecksumAlgorithm::Crc64Nvme => E::Crc64Nvme(text),
            ChecksumAlgorithm::Sha1 => E::Sha1(text),
            ChecksumAlgorithm::Sha256 => E::Sha256(text),
        }
    })
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_7233() {
        let r = |v: &str, size| parse_range(Some(v), size);
        assert_eq!(
            r("bytes=0-9", 100).unwrap(),
            Some(ByteRange { start: 0, end: 10 })
        );
        assert_eq!(
            r("bytes=90-", 100).unwrap(),
            Some(ByteRange {
                start: 90,
                end: 100
            })
        );
        assert_eq!(
            r("bytes=-10", 100).unwrap(),
            Some(ByteRange {
                start: 90,
                end: 100
            })
        );
        assert_eq!(
            r("bytes=-500", 100).unwrap(),
            Some(ByteRange { start: 0, end: 100 })
        );
        assert_eq!(
            r("bytes=50-5000", 100).unwrap(),
            Some(ByteRange {
                start: 50,
                end: 100
            })
        );
        assert_eq!(
            r("bytes=100-", 100).unwrap_err().code,
            ErrorCode::InvalidRange
        );
        assert_eq!(r("bytes=9-1", 100).unwrap(), None);
        assert_eq!(r("items=0-1", 100).unwrap(), None);
        assert_eq!(r("bytes=0-1,5-6", 100).unwrap(), None);
    }

    #[test]
    fn metadata_is_collected_and_bounded() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-meta-color", "blue".parse().unwrap());
        h.insert("content-type", "text/plain".parse().unwrap());
        h.insert("content-encoding", "aws-chunked,gzip".parse().unwrap());
        let m = object_meta(&h).unwrap();
        assert_eq!(m.user, vec![("color".to_string(), "blue".to_string())]);
        assert_eq!(m.content_encoding.as_deref(), Some("gzip"));
        h.insert("x-amz-meta-big", "x".repeat(3000).parse().unwrap());
        assert_eq!(
            object_meta(&h).unwrap_err().code,
            ErrorCode::MetadataTooLarge
        );
    }

    #[test]
    fn checksum_headers_are_validated() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-checksum-crc32", "DUoRhQ==".parse().unwrap());
        let r = checksum_request(&h).unwrap();
        assert_eq!(r.algorithm, Some(ChecksumAlgorithm::Crc32));
        h.insert("x-amz-checksum-crc32", "nope".parse().unwrap());
        assert_eq!(
            checksum_request(&h).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let mut h = HeaderMap::new();
        h.insert("x-amz-trailer", "x-amz-checksum-crc64nvme".parse().unwrap());
        let r = checksum_request(&h).unwrap();
        assert_eq!(r.algorithm, Some(ChecksumAlgorithm::Crc64Nvme));
        assert_eq!(r.trailer.as_deref(), Some("x-amz-checksum-crc64nvme"));
    }
}
