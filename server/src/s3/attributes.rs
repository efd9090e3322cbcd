//! GetObjectAttributes: the attributes named by `x-amz-object-attributes` (ETag, Checksum,
//! ObjectParts, StorageClass, ObjectSize) of the current version or `versionId`, without the
//! body; the parts of a multipart object page with `x-amz-max-parts` and
//! `x-amz-part-number-marker`.

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};

use super::headers::{self, header, insert};
use super::{blocking, xml, xml_response};
use crate::http::{Context, ErrorCode, Route, S3Error};
use crate::store::record::DataLayout;

const ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

fn number(headers: &HeaderMap, name: &str, default: u32) -> Result<u32, S3Error> {
    match header(headers, name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            S3Error::msg(
                ErrorCode::InvalidArgument,
                format!("{name} must be an integer"),
            )
        }),
    }
}

pub async fn get_object_attributes(
    ctx: &Context,
    route: &Route,
    req: &HeaderMap,
) -> Result<Response<Body>, S3Error> {
    let mut wanted = Vec::new();
    for v in req.get_all("x-amz-object-attributes") {
        for a in v.to_str().unwrap_or("").split(',').map(str::trim) {
            if a.is_empty() {
                continue;
            }
            if !ATTRIBUTES.contains(&a) {
                return Err(S3Error::msg(
                    ErrorCode::InvalidArgument,
                    format!("Invalid attribute name specified: {a}"),
                ));
            }
            wanted.push(a.to_string());
        }
    }
    if wanted.is_empty() {
        return Err(S3Error::msg(
            ErrorCode::InvalidRequest,
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
        ));
    }
    let max_parts = number(req, "x-amz-max-parts", 1000)?.min(1000) as usize;
    let marker = number(req, "x-amz-part-number-marker", 0)?;
    let (bucket, key) = (route.bucket().to_string(), route.key().to_string());
    let version = route.param("versionId").map(str::to_string);
    let record = blocking(ctx, move |s| {
        s.head_object(&bucket, &key, version.as_deref())
    })
    .await?;
    let want = |a: &str| wanted.iter().any(|w| w == a);
    let checksum = record.checksum.as_ref().map(|c| xml::ChecksumXml {
        value: headers::checksum_elements(Some(c)),
        checksum_type: headers::checksum_type(c),
    });
    let object_parts = match &record.data {
        DataLayout::Parts {
            multipart: true,
            parts,
        } if want("ObjectParts") => {
            let after: Vec<_> = parts.iter().filter(|p| p.number > marker).collect();
            let page: Vec<_> = after.iter().take(max_parts).collect();
            let truncated = after.len() > page.len();
            Some(xml::ObjectPartsXml {
                is_truncated: truncated,
                max_parts,
                next_part_number_marker: page.last().map_or(marker, |p| p.number),
                part_number_marker: marker,
                parts: page
                    .iter()
                    .map(|p| xml::ObjectPartXml {
                        checksum: headers::checksum_elements(p.checksum.as_ref()),
                        part_number: p.number,
                        size: p.size,
                    })
                    .collect(),
                parts_count: parts.len(),
            })
        }
        _ => None,
    };
    let doc = xml::GetObjectAttributesResponse {
        xmlns: xml::NS,
        etag: want("ETag").then(|| record.etag.clone()),
        checksum: checksum.filter(|_| want("Checksum")),
        object_parts,
        storage_class: want("StorageClass").then_some("STANDARD"),
        object_size: want("ObjectSize").then_some(record.size),
    };
    let mut r = xml_response(StatusCode::OK, &doc)?;
    insert(
        r.headers_mut(),
        "last-modified",
        &headers::http_date(record.mod_time_ns),
    );
    Ok(headers::with_version(r, record.version_id.as_deref()))
}
