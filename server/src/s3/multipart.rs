//! Multipart uploads: create, upload part (and part copy with a range), complete, abort,
//! list parts.

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};

use super::headers::{self, header, insert, quoted};
use super::object::{copy_data, load_copy_source, write_condition};
use super::{blocking, empty, receive_body, xml, xml_response, xml_response_root};
use crate::http::{Context, ErrorCode, RequestBody, Route, S3Error};
use crate::store::checksum::{self, ChecksumAlgorithm};
use crate::store::record::StoredChecksum;
use crate::store::{ByteRange, CompletedPart};

fn upload_id(route: &Route) -> String {
    route.param("uploadId").unwrap_or("").to_string()
}

fn part_number(route: &Route) -> Result<u32, S3Error> {
    route
        .param("partNumber")
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|n| (1..=crate::store::record_limits::MAX_PARTS).contains(n))
        .ok_or_else(|| {
            S3Error::msg(
                ErrorCode::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })
}

pub async fn create(
    ctx: &Context,
    route: &Route,
    headers: &HeaderMap,
) -> Result<Response<Body>, S3Error> {
    let new = super::object::new_object(headers, headers::object_meta(headers)?)?;
    let algorithm = header(headers, "x-amz-checksum-algorithm")
        .map(headers::parse_algorithm)
        .transpose()?;
    let (bucket, key) = (route.bucket().to_string(), route.key().to_string());
    let (b, k) = (bucket.clone(), key.clone());
    let upload = blocking(ctx, move |s| s.create_upload(&b, &k, new, algorithm)).await?;
    let mut r = xml_response(
        StatusCode::OK,
        &xml::InitiateMultipartUploadResult {
            xmlns: xml::NS,
            bucket,
            key,
            upload_id: upload.upload_id,
        },
    )?;
    if let Some(a) = algorithm {
        insert(r.headers_mut(), "x-amz-checksum-algorithm", a.name());
        insert(
            r.headers_mut(),
            "x-amz-checksum-type",
            if a.full_object_for_multipart() {
                "FULL_OBJECT"
            } else {
                "COMPOSITE"
            },
        );
    }
    Ok(r)
}

pub async fn upload_part(
    ctx: &Context,
    route: &Route,
    headers: &HeaderMap,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let number = part_number(route)?;
    let (bucket, key, id) = (
        route.bucket().to_string(),
        route.key().to_string(),
        upload_id(route),
    );
    let (b, k, u) = (bucket.clone(), key.clone(), id.clone());
    let upload = blocking(ctx, move |s| s.upload(&b, &k, &u)).await?;
    let mut checksum_req = headers::checksum_request(headers)?;
    if let (Some(want), Some(have)) = (upload.checksum_algorithm, checksum_req.algorithm) {
        if want != have {
            return Err(S3Error::msg(ErrorCode::InvalidRequest, format!("Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}", want.name().to_lowercase(), have.name().to_lowercase())));
        }
    }
    // Parts of an upload with a checksum algorithm always get that checksum, so the object's
    // checksum can be assembled at completion.
    checksum_req.algorithm = checksum_req.algorithm.or(upload.checksum_algorithm);
    let (staged, checksum) = receive_body(ctx, route, headers, body, &checksum_req, true).await?;
    let part = blocking(ctx, move |s| {
        s.put_part(&bucket, &key, &id, number, staged, checksum)
    })
    .await?;
    let mut r = empty(StatusCode::OK);
    insert(r.headers_mut(), "etag", &quoted(&part.etag));
    if let Some(c) = &part.checksum {
        headers::insert_checksum(r.headers_mut(), c);
        r.headers_mut().remove("x-amz-checksum-type");
    }
    Ok(r)
}

/// `x-amz-copy-source-range: bytes=first-last`, which must lie inside the source.
fn copy_range(value: Option<&str>, size: u64) -> Result<ByteRange, S3Error> {
    let Some(v) = value else {
        return Ok(ByteRange {
            start: 0,
            end: size,
        });
    };
    let invalid = || {
        S3Error::msg(ErrorCode::InvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
    };
    let spec = v.trim().strip_prefix("bytes=").ok_or_else(invalid)?;
    let (a, b) = spec.split_once('-').ok_or_else(invalid)?;
    let (first, last) = (
        a.parse::<u64>().map_err(|_| invalid())?,
        b.parse::<u64>().map_err(|_| invalid())?,
    );
    if first > last {
        return Err(invalid());
    }
    if last >= size {
        return Err(S3Error::msg(
            ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        ));
    }
    Ok(ByteRange {
        start: first,
        end: last + 1,
    })
}

pub async fn upload_part_copy(
    ctx: &Context,
    route: &Route,
    headers: &HeaderMap,
) -> Result<Response<Body>, S3Error> {
    let number = part_number(route)?;
    let (bucket, key, id) = (
        route.bucket().to_string(),
        route.key().to_string(),
        upload_id(route),
    );
    let (b, k, u) = (bucket.clone(), key.clone(), id.clone());
    let upload = blocking(ctx, move |s| s.upload(&b, &k, &u)).await?;
    let (src, source) = load_copy_source(ctx, headers).await?;
    let range = copy_range(header(headers, "x-amz-copy-source-range"), source.size)?;
    if range.end - range.start > super::MAX_PUT_SIZE {
        return Err(ErrorCode::EntityTooLarge.into());
    }
    let staged = copy_data(
        ctx,
        (&src.bucket, &src.key),
        route,
        &source,
        range,
        upload.checksum_algorithm,
        true,
    )
    .await?;
    let checksum = staged
        .digests
        .checksum
        .clone()
        .map(|(algorithm, value)| StoredChecksum {
            algorithm,
            value,
            parts: None,
        });
    let part = blocking(ctx, move |s| {
        s.put_part(&bucket, &key, &id, number, staged, checksum)
    })
    .await?;
    let doc = xml::CopyResult {
        xmlns: xml::NS,
        etag: quoted(&part.etag),
        last_modified: headers::iso8601(part.last_modified_ns),
        checksums: headers::checksum_elements(part.checksum.as_ref()),
    };
    xml_response_root(StatusCode::OK, "CopyPartResult", &doc)
}

fn stated_checksum(
    p: &xml::CompletePart,
    alg: Option<ChecksumAlgorithm>,
) -> Result<Option<Vec<u8>>, S3Error> {
    let Some(alg) = alg else { return Ok(None) };
    let text = match alg {
        ChecksumAlgorithm::Crc32 => &p.crc32,
        ChecksumAlgorithm::Crc32c => &p.crc32c,
        ChecksumAlgorithm::Crc64Nvme => &p.crc64nvme,
        ChecksumAlgorithm::Sha1 => &p.sha1,
        ChecksumAlgorithm::Sha256 => &p.sha256,
    };
    match text {
        None => Ok(None),
        Some(t) => checksum::from_base64(t.trim()).map(Some).ok_or_else(|| {
            S3Error::msg(
                ErrorCode::InvalidPart,
                format!("The checksum of part {} is not valid base64", p.part_number),
            )
        }),
    }
}

pub async fn complete(
    ctx: &Context,
    route: &Route,
    headers: &HeaderMap,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let cond = write_condition(headers)?;
    let (bucket, key, id) = (
        route.bucket().to_string(),
        route.key().to_string(),
        upload_id(route),
    );
    let (b, k, u) = (bucket.clone(), key.clone(), id.clone());
    let upload = blocking(ctx, move |s| s.upload(&b, &k, &u)).await?;
    let doc = body.collect(4 * 1024 * 1024).await?;
    let request: xml::CompleteMultipartUpload = xml::from_xml(&doc)?;
    if request.parts.len() > crate::store::record_limits::MAX_PARTS as usize {
        return Err(S3Error::msg(
            ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        ));
    }
    let parts = request
        .parts
        .iter()
        .map(|p| {
            Ok(CompletedPart {
                number: p.part_number,
                etag: p.etag.clone(),
                checksum: stated_checksum(p, upload.checksum_algorithm)?,
            })
        })
        .collect::<Result<Vec<_>, S3Error>>()?;
    let (b, k) = (bucket.clone(), key.clone());
    let record = blocking(ctx, move |s| s.complete_upload(&b, &k, &id, &parts, &cond)).await?;
    let result = xml::CompleteMultipartUploadResult {
        xmlns: xml::NS,
        location: format!("/{bucket}/{key}"),
        bucket,
        key,
        etag: quoted(&record.etag),
        checksums: headers::checksum_elements(record.checksum.as_ref()),
        checksum_type: record.checksum.as_ref().map(headers::checksum_type),
    };
    let mut r = xml_response(StatusCode::OK, &result)?;
    if let Some(v) = &record.version_id {
        insert(r.headers_mut(), "x-amz-version-id", v);
    }
    Ok(r)
}

pub async fn abort(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let (bucket, key, id) = (
        route.bucket().to_string(),
        route.key().to_string(),
        upload_id(route),
    );
    blocking(ctx, move |s| s.abort_upload(&bucket, &key, &id)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn list_parts(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let (bucket, key, id) = (
        route.bucket().to_string(),
        route.key().to_string(),
        upload_id(route),
    );
    let marker = match route.param("part-number-marker") {
        None => 0,
        Some(m) => m.parse::<u32>().map_err(|_| {
            S3Error::msg(
                ErrorCode::InvalidArgument,
                "Provided part-number-marker not an integer",
            )
        })?,
    };
    let max = match route.param("max-parts") {
        None => 1000,
        Some(m) => m
            .parse::<usize>()
            .map_err(|_| {
                S3Error::msg(
                    ErrorCode::InvalidArgument,
                    "Provided max-parts not an integer",
                )
            })?
            .min(1000),
    };
    let (b, k, u) = (bucket.clone(), key.clone(), id.clone());
    let (upload, parts, truncated) =
        blocking(ctx, move |s| s.list_parts(&b, &k, &u, marker, max)).await?;
    let owner = super::owner(ctx);
    let doc = xml::ListPartsResult {
        xmlns: xml::NS,
        bucket,
        key,
        upload_id: id,
        initiator: xml::Initiator {
            id: owner.id.clone(),
            display_name: owner.display_name.clone(),
        },
        owner,
        storage_class: "STANDARD",
        part_number_marker: marker,
        next_part_number_marker: parts.last().map(|p| p.number),
        max_parts: max,
        is_truncated: truncated,
        checksum_algorithm: upload.checksum_algorithm.map(|a| a.name().to_string()),
        parts: parts
            .iter()
            .map(|p| xml::PartEntry {
                part_number: p.number,
                last_modified: headers::iso8601(p.last_modified_ns),
                etag: quoted(&p.etag),
                size: p.size,
                checksums: headers::checksum_elements(p.checksum.as_ref()),
            })
            .collect(),
    };
    xml_response(StatusCode::OK, &doc)
}
