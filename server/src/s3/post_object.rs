//! POST Object: browser-based uploads. `POST /bucket` with a multipart/form-data body whose
//! fields (key, policy and its signature, metadata, success_action_*) come first and whose
//! `file` field comes last. The fields are read into memory (bounded), the policy's
//! signature, expiration and conditions are checked, the signer is authorized exactly as for
//! PutObject (key scope, bucket policy), and the file streams into the store through the
//! same staging path as PutObject — never held whole in memory.

use axum::body::Body;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use time::OffsetDateTime;

use super::headers::{self, insert, quoted};
use super::{blocking, empty, xml, xml_response, MAX_PUT_SIZE};
use crate::auth::post_policy::{self, FormFields};
use crate::auth::Principal;
use crate::http::router::MAX_KEY_LEN;
use crate::http::{ClientConnection, Context, ErrorCode, Operation, Route, S3Error};
use crate::store::checksum::DigestRequest;
use crate::store::{NewObject, WriteCondition};

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const PATH: &AsciiSet = &COMPONENT.remove(b'/');

/// Most bytes of form fields (names and values) before the file, as S3 bounds them.
pub const MAX_PRE_DATA: usize = 20 * 1024;

/// Form fields that become object metadata, as the same-named PutObject headers do.
const META_FIELDS: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "expires",
];

fn malformed(e: multer::Error) -> S3Error {
    match e {
        multer::Error::StreamReadFailed(e) => S3Error::msg(
            ErrorCode::IncompleteBody,
            format!("the request body ended early: {e}"),
        ),
        e => S3Error::msg(
            ErrorCode::MalformedPOSTRequest,
            format!("The body of your POST request is not well-formed multipart/form-data: {e}"),
        ),
    }
}

/// The file part of the form, once every field before it has been read.
struct FilePart {
    field: multer::Field<'static>,
    filename: Option<String>,
}

/// Reads the fields before `file` into `fields`; returns the file part, or an error when the
/// form has none.
async fn read_fields(
    form: &mut multer::Multipart<'static>,
    fields: &mut FormFields,
) -> Result<FilePart, S3Error> {
    let mut total = 0usize;
    loop {
        let Some(mut field) = form.next_field().await.map_err(malformed)? else {
            return Err(S3Error::msg(
                ErrorCode::InvalidArgument,
                "POST requires exactly one file upload per request.",
            )
            .with("ArgumentName", "file")
            .with("ArgumentValue", "0"));
        };
        let name = field.name().unwrap_or_default().to_string();
        if name.eq_ignore_ascii_case("file") {
            let filename = field.file_name().map(str::to_string);
            return Ok(FilePart { field, filename });
        }
        let mut value = Vec::new();
        total += name.len();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            total += chunk.len();
            if total > MAX_PRE_DATA {
                return Err(ErrorCode::MaxPostPreDataLengthExceeded.into());
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value).map_err(|_| {
            S3Error::msg(
                ErrorCode::InvalidArgument,
                format!("The form field '{name}' is not valid UTF-8."),
            )
        })?;
        fields.push(name, value);
    }
}

/// Metadata headers equivalent to the form's metadata fields (for `headers::object_meta`).
fn meta_headers(fields: &FormFields) -> Result<HeaderMap, S3Error> {
    let mut map = HeaderMap::new();
    for (name, value) in fields.iter() {
        let lower = name.to_ascii_lowercase();
        // Not stored in the clear while the form asked for encryption (as for PutObject).
        if lower.starts_with("x-amz-server-side-encryption") {
            return Err(S3Error::msg(
                ErrorCode::NotImplemented,
                format!("Server-side encryption ('{name}') is not implemented."),
            ));
        }
        if !META_FIELDS.contains(&lower.as_str()) && !lower.starts_with("x-amz-meta-") {
            continue;
        }
        let bad = || {
            S3Error::msg(
                ErrorCode::InvalidArgument,
                format!("The form field '{name}' cannot be stored as object metadata."),
            )
        };
        let n = HeaderName::from_bytes(lower.as_bytes()).map_err(|_| bad())?;
        let v = HeaderValue::from_str(value).map_err(|_| bad())?;
        map.append(n, v);
    }
    Ok(map)
}

/// The object's URL as the client reached this server (for `Location`).
fn object_url(headers: &HeaderMap, tls: bool, bucket: &str, key: &str) -> String {
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if tls { "https" } else { "http" };
    let key = utf8_percent_encode(key, PATH);
    if host.starts_with(&format!("{bucket}.")) {
        // Virtual-hosted style: the bucket is in the host already.
        format!("{scheme}://{host}/{key}")
    } else {
        format!("{scheme}://{host}/{bucket}/{key}")
    }
}

pub async fn post_object(
    ctx: &Context,
    route: &Route,
    headers: &HeaderMap,
    body: Body,
    connection: Option<&ClientConnection>,
) -> Result<Response<Body>, S3Error> {
    let bucket = route.bucket().to_string();
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type)
        .ok()
        .filter(|_| {
            content_type
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
        .ok_or_else(|| {
            S3Error::msg(
                ErrorCode::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            )
            .with(
                "Condition",
                "Bucket POST must be of the enclosure-type multipart/form-data",
            )
        })?;
    let stream = body.into_data_stream();
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fields = FormFields::new();
    let file = read_fields(&mut form, &mut fields).await?;

    let (principal, policy) =
        post_policy::authenticate(&fields, &ctx.region, ctx.iam.as_ref()).map_err(S3Error::from)?;
    let key = fields.get("key").map(str::to_string).ok_or_else(|| {
        S3Error::msg(
            ErrorCode::InvalidArgument,
            "Bucket POST must contain a field named 'key'.  If it is specified, please check the \
             order of the fields.",
        )
        .with("ArgumentName", "key")
    })?;
    // `${filename}` in the key is the name of the uploaded file (its last path segment, as
    // browsers may send a full path).
    let filename = file
        .filename
        .as_deref()
        .map(|f| f.rsplit(['/', '\\']).next().unwrap_or(f).to_string())
        .unwrap_or_default();
    let key = key.replace("${filename}", &filename);
    if key.is_empty() {
        return Err(S3Error::msg(
            ErrorCode::InvalidArgument,
            "User key must have a length greater than 0.",
        )
        .with("ArgumentName", "key"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(S3Error::new(ErrorCode::KeyTooLongError)
            .with("Size", key.len().to_string())
            .with("MaxSizeAllowed", MAX_KEY_LEN.to_string()));
    }
    fields.set("key", key.clone());
    if let Some(policy) = &policy {
        policy
            .check(&fields, &bucket, OffsetDateTime::now_utc())
            .map_err(S3Error::from)?;
    }

    // Authorized as a PutObject of this key by the policy's signer.
    let object_route = Route {
        op: Operation::PostObject,
        bucket: Some(bucket.clone()),
        key: Some(key.clone()),
        query: Default::default(),
    };
    if let Principal::AccessKey(id) = &principal {
        ctx.iam
            .authorize(id, &Operation::PostObject, Some(&bucket), None)
            .map_err(|_| S3Error::from(ErrorCode::AccessDenied))?;
    }
    super::policy::authorize(ctx, &object_route, &principal, headers, connection).await?;
    // Only now, as for every request: nothing tells an unauthorized sender whether the bucket
    // exists. Checked before the file is read.
    let b = bucket.clone();
    blocking(ctx, move |s| s.bucket(&b)).await?;

    let meta = headers::object_meta(&meta_headers(&fields)?)?;
    let tags = match fields.get("tagging") {
        Some(doc) => {
            super::tagging::parse_document(doc.as_bytes(), super::tagging::MAX_OBJECT_TAGS)?
        }
        None => Vec::new(),
    };
    let (min, max) = policy
        .as_ref()
        .and_then(|p| p.content_length_range())
        .map_or((0, MAX_PUT_SIZE), |(min, max)| (min, max.min(MAX_PUT_SIZE)));
    let mut writer = super::stage(
        ctx,
        &bucket,
        &key,
        DigestRequest {
            checksum: None,
            sha256: false,
        },
    )
    .await?;
    let mut received = 0u64;
    let mut field = file.field;
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        received += chunk.len() as u64;
        if received > max {
            return Err(S3Error::new(ErrorCode::EntityTooLarge)
                .with("ProposedSize", received.to_string())
                .with("MaxSizeAllowed", max.to_string()));
        }
        writer.write(chunk).await?;
    }
    if received < min {
        return Err(S3Error::msg(
            ErrorCode::EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed size",
        )
        .with("ProposedSize", received.to_string())
        .with("MinSizeAllowed", min.to_string()));
    }
    // Whatever follows the file is ignored, as S3 does; drain it so the client sees the
    // answer rather than a reset connection.
    drop(field);
    while let Ok(Some(mut rest)) = form.next_field().await {
        while let Ok(Some(_)) = rest.chunk().await {}
    }
    let staged = writer.finish().await?;
    let (b, k) = (bucket.clone(), key.clone());
    let record = blocking(ctx, move |s| {
        s.put_object(
            &b,
            &k,
            NewObject {
                meta,
                tags,
                ..Default::default()
            },
            staged,
            &WriteCondition::default(),
        )
    })
    .await?;

    let etag = quoted(&record.etag);
    let location = object_url(headers, connection.is_some_and(|c| c.tls), &bucket, &key);
    let redirect = fields
        .get("success_action_redirect")
        .or_else(|| fields.get("redirect"))
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .and_then(|u| u.parse::<http::Uri>().ok().map(|_| u.to_string()));
    let mut response = if let Some(url) = redirect {
        let enc = |s: &str| utf8_percent_encode(s, COMPONENT).to_string();
        let sep = if url.contains('?') { '&' } else { '?' };
        let target = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            enc(&bucket),
            enc(&key),
            enc(&etag)
        );
        let mut r = empty(StatusCode::SEE_OTHER);
        insert(r.headers_mut(), "location", &target);
        r
    } else {
        match fields.get("success_action_status") {
            Some("201") => {
                let mut r = xml_response(
                    StatusCode::CREATED,
                    &xml::PostResponse {
                        location: location.clone(),
                        bucket: bucket.clone(),
                        key: key.clone(),
                        etag: etag.clone(),
                    },
                )?;
                insert(r.headers_mut(), "location", &location);
                r
            }
            Some("200") => empty(StatusCode::OK),
            _ => empty(StatusCode::NO_CONTENT),
        }
    };
    let h = response.headers_mut();
    insert(h, "etag", &etag);
    if !h.contains_key("location") {
        insert(h, "location", &location);
    }
    if let Some(v) = &record.version_id {
        insert(h, "x-amz-version-id", v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_follow_the_addressing_style() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::HOST,
            HeaderValue::from_static("127.0.0.1:9000"),
        );
        assert_eq!(
            object_url(&h, false, "b", "a b/c"),
            "http://127.0.0.1:9000/b/a%20b/c"
        );
        h.insert(
            http::header::HOST,
            HeaderValue::from_static("b.s3.example.com"),
        );
        assert_eq!(object_url(&h, true, "b", "k"), "https://b.s3.example.com/k");
    }

    #[test]
    fn only_metadata_fields_become_metadata_headers() {
        let mut f = FormFields::new();
        for (n, v) in [
            ("key", "k"),
            ("Content-Type", "text/plain"),
            ("X-Amz-Meta-Owner", "eric"),
            ("policy", "p"),
            ("Cache-Control", "no-cache"),
        ] {
            f.push(n, v);
        }
        let h = meta_headers(&f).unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h["content-type"], "text/plain");
        assert_eq!(h["x-amz-meta-owner"], "eric");
        assert_eq!(h["cache-control"], "no-cache");
        let mut bad = FormFields::new();
        bad.push("x-amz-meta-a", "line\nbreak");
        assert_eq!(
            meta_headers(&bad).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn a_form_asking_for_server_side_encryption_is_refused() {
        for field in [
            "x-amz-server-side-encryption",
            "X-Amz-Server-Side-Encryption-Customer-Key",
        ] {
            let mut f = FormFields::new();
            f.push("key", "k");
            f.push(field, "AES256");
            assert_eq!(
                meta_headers(&f).unwrap_err().code,
                ErrorCode::NotImplemented
            );
        }
    }
}
