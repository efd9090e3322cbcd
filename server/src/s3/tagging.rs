//! Tagging: object tags (Put/Get/DeleteObjectTagging, `x-amz-tagging` on writes, the tag
//! count on reads) and bucket tags, with S3's limits on count, length and characters.

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};

use super::headers::{header, insert, with_version};
use super::{blocking, empty, xml, xml_response};
use crate::http::{Context, ErrorCode, RequestBody, Route, S3Error};

/// S3's limits: tags per object, per bucket, and key/value lengths in characters.
pub const MAX_OBJECT_TAGS: usize = 10;
pub const MAX_BUCKET_TAGS: usize = 50;
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;

pub type Tags = Vec<(String, String)>;

fn invalid(message: impl Into<String>) -> S3Error {
    S3Error::msg(ErrorCode::InvalidTag, message)
}

/// Checks a tag set against S3's rules: at most `max` tags, unique keys, lengths, the
/// allowed characters (letters, digits, spaces and `+ - = . _ : / @`), no `aws:` prefix.
pub fn validate(tags: &Tags, max: usize) -> Result<(), S3Error> {
    if tags.len() > max {
        return Err(invalid(format!("Object tags cannot be greater than {max}")));
    }
    let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "+-=._:/@".contains(c);
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > MAX_KEY_CHARS {
            return Err(invalid("The TagKey you have provided is too long or empty"));
        }
        if v.chars().count() > MAX_VALUE_CHARS {
            return Err(invalid("The TagValue you have provided is too long"));
        }
        if !k.chars().all(allowed) || !v.chars().all(allowed) {
            return Err(invalid(
                "The TagKey or TagValue you have provided is invalid",
            ));
        }
        if k.starts_with("aws:") {
            return Err(invalid("Your TagKey cannot be prefixed with aws:"));
        }
        if tags[..i].iter().any(|(other, _)| other == k) {
            return Err(invalid("Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

/// The tags of an `x-amz-tagging` header (URL query encoding: `k1=v1&k2=v2`).
pub fn from_header(headers: &HeaderMap) -> Result<Tags, S3Error> {
    let Some(raw) = header(headers, "x-amz-tagging") else {
        return Ok(Vec::new());
    };
    let tags: Tags = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| invalid("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))
            };
            Ok((dec(k)?, dec(v)?))
        })
        .collect::<Result<_, S3Error>>()?;
    validate(&tags, MAX_OBJECT_TAGS)?;
    Ok(tags)
}

/// Adds `x-amz-tagging-count` when the version has tags.
pub fn insert_count(h: &mut HeaderMap, tags: &Tags) {
    if !tags.is_empty() {
        insert(h, "x-amz-tagging-count", &tags.len().to_string());
    }
}

async fn read_tagging(body: RequestBody, max: usize) -> Result<Tags, S3Error> {
    parse_document(&body.collect(64 * 1024).await?, max)
}

/// The tags of a `Tagging` document (request bodies, the `tagging` field of POST forms).
pub fn parse_document(doc: &[u8], max: usize) -> Result<Tags, S3Error> {
    let tagging: xml::Tagging = xml::from_xml(doc)?;
    let tags: Tags = tagging
        .tag_set
        .tags
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect();
    validate(&tags, max)?;
    Ok(tags)
}

fn tagging_response(tags: Tags) -> Result<Response<Body>, S3Error> {
    xml_response(
        StatusCode::OK,
        &xml::Tagging {
            xmlns: xml::NS,
            tag_set: xml::TagSet {
                tags: tags
                    .into_iter()
                    .map(|(key, value)| xml::Tag { key, value })
                    .collect(),
            },
        },
    )
}

pub async fn get_object_tagging(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let (bucket, key) = (route.bucket().to_string(), route.key().to_string());
    let version = route.param("versionId").map(str::to_string);
    let record = blocking(ctx, move |s| {
        s.head_object(&bucket, &key, version.as_deref())
    })
    .await?;
    let r = tagging_response(record.tags)?;
    Ok(with_version(r, record.version_id.as_deref()))
}

async fn set_object_tags(
    ctx: &Context,
    route: &Route,
    tags: Tags,
    status: StatusCode,
) -> Result<Response<Body>, S3Error> {
    let (bucket, key) = (route.bucket().to_string(), route.key().to_string());
    let version = route.param("versionId").map(str::to_string);
    let record = blocking(ctx, move |s| {
        s.update_version(&bucket, &key, version.as_deref(), |r| {
            r.tags = tags;
            Ok(())
        })
    })
    .await?;
    Ok(with_version(empty(status), record.version_id.as_deref()))
}

pub async fn put_object_tagging(
    ctx: &Context,
    route: &Route,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let tags = read_tagging(body, MAX_OBJECT_TAGS).await?;
    set_object_tags(ctx, route, tags, StatusCode::OK).await
}

pub async fn delete_object_tagging(
    ctx: &Context,
    route: &Route,
) -> Result<Response<Body>, S3Error> {
    set_object_tags(ctx, route, Vec::new(), StatusCode::NO_CONTENT).await
}

pub async fn get_bucket_tagging(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let bucket = route.bucket().to_string();
    let record = blocking(ctx, move |s| s.bucket(&bucket)).await?;
    if record.tags.is_empty() {
        return Err(S3Error::new(ErrorCode::NoSuchTagSet).with("BucketName", record.name));
    }
    tagging_response(record.tags)
}

pub async fn put_bucket_tagging(
    ctx: &Context,
    route: &Route,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let tags = read_tagging(body, MAX_BUCKET_TAGS).await?;
    let bucket = route.bucket().to_string();
    blocking(ctx, move |s| {
        s.update_bucket(&bucket, |b| {
            b.tags = tags;
            Ok(())
        })
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn delete_bucket_tagging(
    ctx: &Context,
    route: &Route,
) -> Result<Response<Body>, S3Error> {
    let bucket = route.bucket().to_string();
    blocking(ctx, move |s| {
        s.update_bucket(&bucket, |b| {
            b.tags.clear();
            Ok(())
        })
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tag_sets_follow_s3_limits() {
        assert!(validate(&tags(&[("team", "data lake"), ("a:b", "c/d@e")]), 10).is_ok());
        let too_many: Tags = (0..11).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(
            validate(&too_many, 10).unwrap_err().code,
            ErrorCode::InvalidTag
        );
        assert!(validate(&too_many, 50).is_ok());
        for bad in [
            tags(&[("", "v")]),
            tags(&[(&"k".repeat(129), "v")]),
            tags(&[("k", &"v".repeat(257))]),
            tags(&[("k", "v"), ("k", "w")]),
            tags(&[("aws:x", "v")]),
            tags(&[("k*", "v")]),
        ] {
            assert_eq!(validate(&bad, 10).unwrap_err().code, ErrorCode::InvalidTag);
        }
    }

    #[test]
    fn the_tagging_header_is_url_encoded() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-tagging",
            "team=data%20lake&tier=hot&empty=".parse().unwrap(),
        );
        assert_eq!(
            from_header(&h).unwrap(),
            tags(&[("team", "data lake"), ("tier", "hot"), ("empty", "")])
        );
        h.insert("x-amz-tagging", "a=1&a=2".parse().unwrap());
        assert_eq!(from_header(&h).unwrap_err().code, ErrorCode::InvalidTag);
    }
}
