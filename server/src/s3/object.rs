//! Object operations: PutObject (with conditional writes), GetObject / HeadObject (ranges,
//! part numbers, conditional reads, response overrides), DeleteObject, DeleteObjects and
//! CopyObject.

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, Response, StatusCode};

use super::headers::{self, header, insert, quoted};
use super::{blocking, empty, object_lock, receive_body, tagging, xml, xml_response};
use crate::auth::Principal;
use crate::http::{ClientConnection, Context, ErrorCode, RequestBody, Route, S3Error};
use crate::store::record::{DataLayout, ObjectMeta, VersionRecord};
use crate::store::{ByteRange, NewObject, WriteCondition};

/// `If-None-Match` / `If-Match` on a write.
pub fn write_condition(headers: &HeaderMap) -> Result<WriteCondition, S3Error> {
    let mut cond = WriteCondition::default();
    if let Some(v) = header(headers, "if-none-match") {
        if v.trim() != "*" {
            return Err(S3Error::msg(
                ErrorCode::NotImplemented,
                "If-None-Match on writes only supports '*'",
            ));
        }
        cond.if_none_match_any = true;
    }
    cond.if_match = header(headers, "if-match").map(|v| v.trim().to_string());
    Ok(cond)
}

/// A new version's metadata with the tags and object lock its write names in headers.
pub fn new_object(headers: &HeaderMap, meta: ObjectMeta) -> Result<NewObject, S3Error> {
    let (retention, legal_hold) = object_lock::from_headers(headers)?;
    Ok(NewObject {
        meta,
        checksum: None,
        tags: tagging::from_header(headers)?,
        retention,
        legal_hold,
    })
}

fn key_error(e: S3Error, key: &str) -> S3Error {
    if e.code == ErrorCode::NoSuchKey {
        e.with("Key", key.to_string())
    } else {
        e
    }
}

pub async fn put_object(
    ctx: &Context,
    route: &Route,
    headers: &HeaderMap,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let mut new = new_object(headers, headers::object_meta(headers)?)?;
    let cond = write_condition(headers)?;
    if body.declared_length.is_none() && header(headers, "transfer-encoding").is_none() {
        return Err(ErrorCode::MissingContentLength.into());
    }
    let (bucket, key) = (route.bucket().to_string(), route.key().to_string());
    // Fail fast on a missing bucket before a body that goes to the drives as it arrives; a
    // small one stays in memory, and the commit reads the bucket anyway.
    if !body
        .declared_length
        .is_some_and(|n| ctx.store.stays_in_memory(n))
    {
        let b = bucket.clone();
        blocking(ctx, move |s| s.bucket(&b)).await?;
    }
    let checksum_req = headers::checksum_request(headers)?;
    let (staged, checksum) = receive_body(ctx, route, headers, body, &checksum_req, false).await?;
    new.checksum = checksum;
    let k = key.clone();
    let record = blocking(ctx, move |s| s.put_object(&bucket, &k, new, staged, &cond))
        .await
        .map_err(|e| key_error(e, &key))?;
    let mut r = empty(StatusCode::OK);
    write_headers(r.headers_mut(), &record);
    if let Some(c) = &record.checksum {
        headers::insert_checksum(r.headers_mut(), c);
    }
    Ok(r)
}

/// ETag and version id of a written version.
fn write_headers(h: &mut HeaderMap, record: &VersionRecord) {
    insert(h, "etag", &quoted(&record.etag));
    headers::insert_version_id(h, record.version_id.as_deref());
}

/// Headers describing a stored version on GET/HEAD.
fn object_headers(h: &mut HeaderMap, record: &VersionRecord) {
    let m = &record.meta;
    insert(
        h,
        "content-type",
        m.content_type.as_deref().unwrap_or("binary/octet-stream"),
    );
    for (name, v) in [
        ("content-encoding", &m.content_encoding),
        ("content-disposition", &m.content_disposition),
        ("content-language", &m.content_language),
        ("cache-control", &m.cache_control),
        ("expires", &m.expires),
    ] {
        if let Some(v) = v {
            insert(h, name, v);
        }
    }
    for (name, value) in &m.user {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(format!("x-amz-meta-{name}").as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            h.append(n, v);
        }
    }
    insert(h, "last-modified", &headers::http_date(record.mod_time_ns));
    insert(h, "accept-ranges", "bytes");
    tagging::insert_count(h, &record.tags);
    object_lock::insert_headers(h, record);
    write_headers(h, record);
}

const RESPONSE_OVERRIDES: [(&str, &str); 6] = [
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

pub async fn get_object(
    ctx: &Context,
    route: &Route,
    req_headers: &HeaderMap,
    head: bool,
) -> Result<Response<Body>, S3Error> {
    let (bucket, key) = (route.bucket().to_string(), route.key().to_string());
    let version = route.param("versionId").map(str::to_string);
    let k = key.clone();
    let record = match blocking(ctx, move |s| s.head_object(&bucket, &k, version.as_deref())).await
    {
        Ok(r) => r,
        Err(e) => return Err(key_error(e, &key)),
    };
    if let Err(e) = headers::check_conditions(req_headers, "", &record, false) {
        if e.code != ErrorCode::NotModified {
            return Err(e);
        }
        // 304 carries the validators (RFC 7232 §4.1) and no body.
        let mut r = empty(StatusCode::NOT_MODIFIED);
        insert(r.headers_mut(), "etag", &quoted(&record.etag));
        insert(
            r.headers_mut(),
            "last-modified",
            &headers::http_date(record.mod_time_ns),
        );
        return Ok(r);
    }

    let part_number = match route.param("partNumber") {
        None => None,
        Some(p) => Some(
            p.parse::<u32>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| {
                    S3Error::msg(
                        ErrorCode::InvalidArgument,
                        "Part number must be an integer between 1 and 10000, inclusive",
                    )
                })?,
        ),
    };
    let mut status = StatusCode::OK;
    let mut range = ByteRange {
        start: 0,
        end: record.size,
    };
    let mut partial = false;
    if let Some(n) = part_number {
        if header(req_headers, "range").is_some() {
            return Err(S3Error::msg(
                ErrorCode::InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter",
            ));
        }
        range = part_range(&record, n)?;
        partial = true;
    } else if let Some(r) = headers::parse_range(header(req_headers, "range"), record.size)? {
        range = r;
        partial = true;
    }
    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    object_headers(h, &record);
    if let Some(count) = record.parts_count().filter(|_| part_number.is_some()) {
        insert(h, "x-amz-mp-parts-count", &count.to_string());
    }
    if partial {
        status = StatusCode::PARTIAL_CONTENT;
        if range.end > range.start {
            insert(
                h,
                "content-range",
                &format!("bytes {}-{}/{}", range.start, range.end - 1, record.size),
            );
        }
    }
    if header(req_headers, "x-amz-checksum-mode").is_some_and(|v| v.eq_ignore_ascii_case("ENABLED"))
    {
        // A checksum describes whole content: the object's, or one part's for partNumber.
        let c = match (part_number, &record.data) {
            (None, _) if !partial => record.checksum.clone(),
            (
                Some(n),
                DataLayout::Parts {
                    multipart: true,
                    parts,
                },
            ) => parts
                .iter()
                .find(|p| p.number == n)
                .and_then(|p| p.checksum.clone()),
            (Some(1), _) => record.checksum.clone(),
            _ => None,
        };
        if let Some(c) = c {
            headers::insert_checksum(h, &c);
        }
    }
    for (param, name) in RESPONSE_OVERRIDES {
        if let Some(v) = route.param(param) {
            insert(h, name, v);
        }
    }
    insert(h, "content-length", &(range.end - range.start).to_string());
    *response.status_mut() = status;
    if !head && range.end > range.start {
        let rx = ctx
            .store
            .read(route.bucket(), route.key(), &record, range)
            .await
            .map_err(S3Error::from)?;
        let stream = tokio_stream_from(rx);
        *response.body_mut() = Body::from_stream(stream);
    }
    Ok(response)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The byte range of part `n` of an object (the whole object is part 1 of a simple PUT).
fn part_range(record: &VersionRecord, n: u32) -> Result<ByteRange, S3Error> {
    let invalid = || {
        S3Error::msg(
            ErrorCode::InvalidRange,
            "The requested partnumber is not satisfiable",
        )
    };
    match &record.data {
        DataLayout::Parts {
            multipart: true,
            parts,
        } => {
            let idx = (n as usize)
                .checked_sub(1)
                .filter(|i| *i < parts.len())
                .ok_or_else(invalid)?;
            let start: u64 = parts[..idx].iter().map(|p| p.size).sum();
            Ok(ByteRange {
                start,
                end: start + parts[idx].size,
            })
        }
        _ if n == 1 => Ok(ByteRange {
            start: 0,
            end: record.size,
        }),
        _ => Err(invalid()),
    }
}

pub async fn delete_object(
    ctx: &Context,
    route: &Route,
    principal: &Principal,
    headers: &HeaderMap,
) -> Result<Response<Body>, S3Error> {
    let (bucket, key) = (route.bucket().to_string(), route.key().to_string());
    let version = route.param("versionId").map(str::to_string);
    let bypass = object_lock::bypass_governance(ctx, principal, headers);
    let outcome = blocking(ctx, move |s| {
        s.delete_object(&bucket, &key, version.as_deref(), bypass)
    })
    .await?;
    let mut r = empty(StatusCode::NO_CONTENT);
    if outcome.delete_marker {
        insert(r.headers_mut(), "x-amz-delete-marker", "true");
    }
    if let Some(v) = &outcome.version_id {
        insert(r.headers_mut(), "x-amz-version-id", v);
    }
    Ok(r)
}

/// S3 accepts at most this many keys in one DeleteObjects request.
const MAX_DELETE_KEYS: usize = 1000;

pub async fn delete_objects(
    ctx: &Context,
    route: &Route,
    principal: &Principal,
    connection: Option<&ClientConnection>,
    headers: &HeaderMap,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let bypass = object_lock::bypass_governance(ctx, principal, headers);
    let md5 = headers::content_md5(headers)?;
    let checksum_req = headers::checksum_request(headers)?;
    let doc = body.collect(2 * 1024 * 1024).await?;
    if let Some(expected) = md5 {
        use md5::Digest;
        if md5::Md5::digest(&doc).as_slice() != expected {
            return Err(ErrorCode::BadDigest.into());
        }
    }
    if let (Some(alg), Some(expected)) = (checksum_req.algorithm, &checksum_req.expected) {
        let mut h = crate::store::checksum::ChecksumHasher::new(alg);
        h.update(&doc);
        if &h.finish() != expected {
            return Err(ErrorCode::BadDigest.into());
        }
    }
    let request: xml::Delete = xml::from_xml(&doc)?;
    if request.objects.len() > MAX_DELETE_KEYS || request.objects.is_empty() {
        return Err(S3Error::new(ErrorCode::MalformedXML));
    }
    let quiet = request.quiet.unwrap_or(false);
    let bucket = route.bucket().to_string();
    let b = bucket.clone();
    blocking(ctx, move |s| s.bucket(&b)).await?;
    // Each key is authorized as the DeleteObject it stands for, so a policy's Deny on a
    // prefix holds for multi-object deletes too.
    let mut refused = Vec::with_capacity(request.objects.len());
    for o in &request.objects {
        let single = Route {
            op: crate::http::Operation::DeleteObject,
            bucket: route.bucket.clone(),
            key: Some(o.key.clone()),
            query: o
                .version_id
                .iter()
                .map(|v| ("versionId".to_string(), v.clone()))
                .collect(),
        };
        let denied = super::policy::authorize(ctx, &single, principal, headers, connection)
            .await
            .err();
        refused.push(denied);
    }
    let results = blocking(ctx, move |s| {
        Ok(request
            .objects
            .into_iter()
            .zip(refused)
            .map(|(o, refused)| {
                let r = if let Some(e) = refused {
                    Err(e)
                } else if o.key.len() > crate::http::router::MAX_KEY_LEN {
                    Err(S3Error::new(ErrorCode::KeyTooLongError))
                } else {
                    s.delete_object(&bucket, &o.key, o.version_id.as_deref(), bypass)
                        .map_err(S3Error::from)
                };
                (o, r)
            })
            .collect::<Vec<_>>())
    })
    .await?;
    let mut doc = xml::DeleteResult {
        xmlns: xml::NS,
        deleted: Vec::new(),
        errors: Vec::new(),
    };
    for (o, r) in results {
        match r {
            Ok(outcome) => {
                if !quiet {
                    let marker = outcome.delete_marker && o.version_id.is_none();
                    doc.deleted.push(xml::Deleted {
                        key: o.key,
                        version_id: o.version_id.clone(),
                        delete_marker: outcome.delete_marker.then_some(true),
                        delete_marker_version_id: if marker { outcome.version_id } else { None },
                    });
                }
            }
            Err(e) => {
                doc.errors.push(xml::DeleteError {
                    key: o.key,
                    version_id: o.version_id,
                    code: e.code.as_str().into(),
                    message: e.message,
                });
            }
        }
    }
    xml_response(StatusCode::OK, &doc)
}

/// A parsed `x-amz-copy-source`: `[/]bucket/key[?versionId=v]`, URL-encoded.
pub struct CopySource {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

pub fn copy_source(headers: &HeaderMap) -> Result<CopySource, S3Error> {
    let raw = header(headers, "x-amz-copy-source").unwrap_or("");
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    let invalid = || S3Error::msg(ErrorCode::InvalidArgument, "Invalid copy source object key");
    let (bucket, key) = decoded.split_once('/').ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    let version_id = crate::http::router::parse_query(Some(query)).remove("versionId");
    Ok(CopySource {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id,
    })
}

/// Looks up a copy source and checks the `x-amz-copy-source-if-*` conditions.
pub async fn load_copy_source(
    ctx: &Context,
    headers: &HeaderMap,
) -> Result<(CopySource, VersionRecord), S3Error> {
    let src = copy_source(headers)?;
    let (b, k, v) = (src.bucket.clone(), src.key.clone(), src.version_id.clone());
    let record = blocking(ctx, move |s| s.head_object(&b, &k, v.as_deref()))
        .await
        .map_err(|e| key_error(e, &src.key))?;
    headers::check_conditions(headers, "x-amz-copy-source-", &record, true)?;
    Ok((src, record))
}

/// Streams `range` of `record` into a new staged body.
pub async fn copy_data(
    ctx: &Context,
    source: (&str, &str),
    dest: &Route,
    record: &VersionRecord,
    range: ByteRange,
    checksum: Option<crate::store::checksum::ChecksumAlgorithm>,
    as_file: bool,
) -> Result<crate::store::Staged, S3Error> {
    let request = crate::store::checksum::DigestRequest {
        checksum,
        sha256: false,
    };
    let mut writer = if as_file {
        ctx.store.stage_part(
            dest.bucket(),
            dest.key(),
            dest.param("uploadId").unwrap_or(""),
            request,
        )
    } else {
        super::stage(ctx, dest.bucket(), dest.key(), request).await?
    };
    if range.end > range.start {
        let rx = ctx.store.read(source.0, source.1, record, range).await?;
        let mut stream = Box::pin(tokio_stream_from(rx));
        while let Some(chunk) = stream.next().await {
            writer.write(chunk.map_err(S3Error::internal)?).await?;
        }
    }
    Ok(writer.finish().await?)
}

pub async fn copy_object(
    ctx: &Context,
    route: &Route,
    headers: &HeaderMap,
) -> Result<Response<Body>, S3Error> {
    let (src, source) = load_copy_source(ctx, headers).await?;
    let (bucket, key) = (route.bucket().to_string(), route.key().to_string());
    let replace = match header(headers, "x-amz-metadata-directive").unwrap_or("COPY") {
        "COPY" => false,
        "REPLACE" => true,
        _ => {
            return Err(S3Error::msg(
                ErrorCode::InvalidArgument,
                "Unknown metadata directive.",
            ))
        }
    };
    let replace_tags = match header(headers, "x-amz-tagging-directive").unwrap_or("COPY") {
        "COPY" => false,
        "REPLACE" => true,
        _ => {
            return Err(S3Error::msg(
                ErrorCode::InvalidArgument,
                "Unknown tagging directive.",
            ))
        }
    };
    if src.bucket == bucket
        && src.key == key
        && src.version_id.is_none()
        && !replace
        && !replace_tags
    {
        return Err(S3Error::msg(
            ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    if source.size > super::MAX_PUT_SIZE {
        return Err(S3Error::msg(ErrorCode::InvalidRequest, "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120"));
    }
    let meta = if replace {
        headers::object_meta(headers)?
    } else {
        source.meta.clone()
    };
    let mut new = new_object(headers, meta)?;
    if !replace_tags {
        new.tags = source.tags.clone();
    }
    let cond = write_condition(headers)?;
    let algorithm = match header(headers, "x-amz-checksum-algorithm") {
        Some(a) => Some(headers::parse_algorithm(a)?),
        None => source.checksum.as_ref().map(|c| c.algorithm),
    };
    let staged = copy_data(
        ctx,
        (&src.bucket, &src.key),
        route,
        &source,
        ByteRange {
            start: 0,
            end: source.size,
        },
        algorithm,
        false,
    )
    .await?;
    let checksum = staged.digests.checksum.clone().map(|(algorithm, value)| {
        crate::store::record::StoredChecksum {
            algorithm,
            value,
            parts: None,
        }
    });
    new.checksum = checksum;
    let b = bucket.clone();
    let record = blocking(ctx, move |s| s.put_object(&b, &key, new, staged, &cond)).await?;
    let doc = xml::CopyResult {
        xmlns: xml::NS,
        etag: quoted(&record.etag),
        last_modified: headers::iso8601(record.mod_time_ns),
        checksums: headers::checksum_elements(record.checksum.as_ref()),
    };
    let mut r = super::xml_response_root(StatusCode::OK, "CopyObjectResult", &doc)?;
    if let Some(v) = &record.version_id {
        insert(r.headers_mut(), "x-amz-version-id", v);
    }
    if let Some(v) = &source.version_id {
        insert(r.headers_mut(), "x-amz-copy-source-version-id", v);
    }
    Ok(r)
}
