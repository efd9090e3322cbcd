//! Listings: ListObjects (v1), ListObjectsV2, ListObjectVersions and ListMultipartUploads, including
//! `encoding-type=url` and opaque continuation tokens.

use axum::body::Body;
use base64::Engine;
use http::{Response, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{blocking, headers, owner, xml, xml_response};
use crate::http::{Context, ErrorCode, Route, S3Error};
use crate::store::record::VersionKind;
use crate::store::{ListEntry, ListQuery};

/// Characters S3 leaves alone in `encoding-type=url` output.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

fn max_keys(route: &Route, name: &str) -> Result<usize, S3Error> {
    match route.param(name) {
        None => Ok(1000),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n.min(1000) as usize)
            .ok_or_else(|| {
                S3Error::msg(
                    ErrorCode::InvalidArgument,
                    format!("Provided {name} not an integer or within integer range"),
                )
            }),
    }
}

fn encoder(route: &Route) -> Result<impl Fn(&str) -> String, S3Error> {
    let url = match route.param("encoding-type") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("url") => true,
        Some(_) => {
            return Err(S3Error::msg(
                ErrorCode::InvalidArgument,
                "Invalid Encoding Method specified in Request",
            ))
        }
    };
    Ok(move |s: &str| {
        if url {
            utf8_percent_encode(s, KEY_ENCODE).to_string()
        } else {
            s.to_string()
        }
    })
}

/// The query of a listing paged by a key marker and a second marker (upload id or version
/// id): the query, the key marker and the second marker as given ("" when absent).
fn marker_query(
    route: &Route,
    max_param: &str,
    second_param: &str,
) -> Result<(ListQuery, String, String), S3Error> {
    let key_marker = route.param("key-marker").unwrap_or("").to_string();
    let second = route.param(second_param).unwrap_or("").to_string();
    let query = ListQuery {
        prefix: route.param("prefix").unwrap_or("").to_string(),
        delimiter: route
            .param("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        start_after: Some(key_marker.clone()).filter(|k| !k.is_empty()),
        max_keys: max_keys(route, max_param)?,
    };
    Ok((query, key_marker, second))
}

fn encode_token(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name.as_bytes())
}

fn decode_token(token: &str) -> Result<String, S3Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            S3Error::msg(
                ErrorCode::InvalidArgument,
                "The continuation token provided is incorrect",
            )
        })
}

pub async fn list_objects(
    ctx: &Context,
    route: &Route,
    v2: bool,
) -> Result<Response<Body>, S3Error> {
    let enc = encoder(route)?;
    let prefix = route.param("prefix").unwrap_or("").to_string();
    let delimiter = route
        .param("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let max = max_keys(route, "max-keys")?;
    let token = if v2 {
        route
            .param("continuation-token")
            .map(decode_token)
            .transpose()?
    } else {
        None
    };
    let start_after = if v2 {
        token
            .clone()
            .or_else(|| route.param("start-after").map(str::to_string))
    } else {
        route.param("marker").map(str::to_string)
    };
    let query = ListQuery {
        prefix: prefix.clone(),
        delimiter: delimiter.clone(),
        start_after: start_after.filter(|s| !s.is_empty()),
        max_keys: max,
    };
    let bucket = route.bucket().to_string();
    let page = blocking(ctx, move |s| s.list_objects(&bucket, &query)).await?;
    let with_owner = !v2 || route.param("fetch-owner") == Some("true");
    let mut doc = xml::ListBucketResult {
        xmlns: xml::NS,
        name: route.bucket().to_string(),
        prefix: enc(&prefix),
        marker: None,
        next_marker: None,
        continuation_token: None,
        next_continuation_token: None,
        start_after: None,
        key_count: None,
        max_keys: max,
        delimiter: delimiter.as_deref().map(&enc),
        encoding_type: route.param("encoding-type").map(|_| "url".to_string()),
        is_truncated: page.truncated,
        contents: Vec::new(),
        common_prefixes: Vec::new(),
    };
    let next = page
        .truncated
        .then(|| page.last_name().map(str::to_string))
        .flatten();
    if v2 {
        doc.key_count = Some(page.entries.len());
        doc.continuation_token = route.param("continuation-token").map(str::to_string);
        doc.next_continuation_token = next.as_deref().map(encode_token);
        doc.start_after = route.param("start-after").map(&enc);
    } else {
        doc.marker = Some(enc(route.param("marker").unwrap_or("")));
        doc.next_marker = next.as_deref().map(&enc);
    }
    for entry in page.entries {
        match entry {
            ListEntry::CommonPrefix(p) => doc
                .common_prefixes
                .push(xml::CommonPrefix { prefix: enc(&p) }),
            ListEntry::Item(key, r) => doc.contents.push(xml::Contents {
                key: enc(&key),
                last_modified: headers::iso8601(r.mod_time_ns),
                etag: headers::quoted(&r.etag),
                checksum_algorithm: r.checksum.as_ref().map(|c| c.algorithm.name().to_string()),
                size: r.size,
                owner: with_owner.then(|| owner(ctx)),
                storage_class: "STANDARD",
            }),
        }
    }
    xml_response(StatusCode::OK, &doc)
}

pub async fn list_uploads(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let enc = encoder(route)?;
    let (query, key_marker, upload_id_marker) =
        marker_query(route, "max-uploads", "upload-id-marker")?;
    let (prefix, delimiter, max) = (
        query.prefix.clone(),
        query.delimiter.clone(),
        query.max_keys,
    );
    let bucket = route.bucket().to_string();
    let after_id = Some(upload_id_marker.clone()).filter(|u| !u.is_empty());
    let page = blocking(ctx, move |s| {
        s.list_uploads(&bucket, &query, after_id.as_deref())
    })
    .await?;
    let mut doc = xml::ListMultipartUploadsResult {
        xmlns: xml::NS,
        bucket: route.bucket().to_string(),
        key_marker: enc(&key_marker),
        upload_id_marker: upload_id_marker.clone(),
        next_key_marker: None,
        next_upload_id_marker: None,
        delimiter: delimiter.as_deref().map(&enc),
        prefix: enc(&prefix),
        encoding_type: route.param("encoding-type").map(|_| "url".to_string()),
        max_uploads: max,
        is_truncated: page.truncated,
        uploads: Vec::new(),
        common_prefixes: Vec::new(),
    };
    if page.truncated {
        if let Some(last) = page.entries.last() {
            doc.next_key_marker = Some(enc(last.name()));
            if let ListEntry::Item(_, u) = last {
                doc.next_upload_id_marker = Some(u.upload_id.clone());
            }
        }
    }
    for e in page.entries {
        match e {
            ListEntry::CommonPrefix(p) => doc
                .common_prefixes
                .push(xml::CommonPrefix { prefix: enc(&p) }),
            ListEntry::Item(key, u) => doc.uploads.push(xml::UploadEntry {
                key: enc(&key),
                upload_id: u.upload_id,
                initiator: xml::Initiator {
                    id: owner(ctx).id,
                    display_name: owner(ctx).display_name,
                },
                owner: owner(ctx),
                storage_class: "STANDARD",
                initiated: headers::iso8601(u.initiated_ns),
                checksum_algorithm: u.checksum_algorithm.map(|a| a.name().to_string()),
            }),
        }
    }
    xml_response(StatusCode::OK, &doc)
}

pub async fn list_versions(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let enc = encoder(route)?;
    let (query, key_marker, version_marker) = marker_query(route, "max-keys", "version-id-marker")?;
    if !version_marker.is_empty() && key_marker.is_empty() {
        return Err(S3Error::msg(
            ErrorCode::InvalidArgument,
            "A version-id marker cannot be specified without a key marker.",
        ));
    }
    let (prefix, delimiter, max) = (
        query.prefix.clone(),
        query.delimiter.clone(),
        query.max_keys,
    );
    let bucket = route.bucket().to_string();
    let after = Some(version_marker.clone()).filter(|v| !v.is_empty());
    let page = blocking(ctx, move |s| {
        s.list_versions(&bucket, &query, after.as_deref())
    })
    .await?;
    let mut doc = xml::ListVersionsResult {
        xmlns: xml::NS,
        name: route.bucket().to_string(),
        prefix: enc(&prefix),
        key_marker: enc(&key_marker),
        version_id_marker: version_marker,
        next_key_marker: None,
        next_version_id_marker: None,
        max_keys: max,
        delimiter: delimiter.as_deref().map(&enc),
        encoding_type: route.param("encoding-type").map(|_| "url".to_string()),
        is_truncated: page.truncated,
        entries: Vec::new(),
        common_prefixes: Vec::new(),
    };
    if page.truncated {
        if let Some(last) = page.entries.last() {
            doc.next_key_marker = Some(enc(last.name()));
            if let ListEntry::Item(_, (r, _)) = last {
                doc.next_version_id_marker =
                    Some(r.version_id.clone().unwrap_or_else(|| "null".into()));
            }
        }
    }
    for e in page.entries {
        match e {
            ListEntry::CommonPrefix(p) => doc
                .common_prefixes
                .push(xml::CommonPrefix { prefix: enc(&p) }),
            ListEntry::Item(key, (r, latest)) => {
                let version_id = r.version_id.clone().unwrap_or_else(|| "null".into());
                let last_modified = headers::iso8601(r.mod_time_ns);
                doc.entries.push(match r.kind {
                    VersionKind::DeleteMarker => {
                        xml::VersionEntry::DeleteMarker(xml::DeleteMarkerEntry {
                            key: enc(&key),
                            version_id,
                            is_latest: latest,
                            last_modified,
                            owner: owner(ctx),
                        })
                    }
                    VersionKind::Object => xml::VersionEntry::Version(xml::ObjectVersion {
                        key: enc(&key),
                        version_id,
                        is_latest: latest,
                        last_modified,
                        etag: headers::quoted(&r.etag),
                        checksum_algorithm: r
                            .checksum
                            .as_ref()
                            .map(|c| c.algorithm.name().to_string()),
                        size: r.size,
                        storage_class: "STANDARD",
                        owner: owner(ctx),
                    }),
                });
            }
        }
    }
    xml_response(StatusCode::OK, &doc)
}
