//! Bucket operations: list, create (with LocationConstraint), head, delete, location and
//! versioning state (Get/PutBucketVersioning).

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};

use super::{blocking, empty, headers, owner, xml, xml_response};
use crate::http::{Context, ErrorCode, RequestBody, Route, S3Error};
use crate::store::record::{ObjectLockConfig, Versioning};

/// S3's bucket naming rules (general purpose buckets).
pub fn valid_bucket_name(name: &str) -> bool {
    let len_ok = (3..=63).contains(&name.len());
    let chars_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    let ip_like = name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok());
    let reserved = name.starts_with("xn--")
        || name.starts_with("sthree-")
        || name.ends_with("-s3alias")
        || name.ends_with("--ol-s3");
    len_ok
        && chars_ok
        && ends_ok
        && !ip_like
        && !reserved
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
}

pub async fn list_buckets(ctx: &Context) -> Result<Response<Body>, S3Error> {
    list_buckets_in(ctx, None).await
}

/// ListBuckets showing only `scope` (a scoped access key's buckets) when given.
pub async fn list_buckets_in(
    ctx: &Context,
    scope: Option<&[String]>,
) -> Result<Response<Body>, S3Error> {
    let mut buckets = blocking(ctx, |s| s.list_buckets()).await?;
    if let Some(scope) = scope {
        buckets.retain(|b| scope.contains(&b.name));
    }
    let doc = xml::ListAllMyBucketsResult {
        xmlns: xml::NS,
        owner: owner(ctx),
        buckets: xml::Buckets {
            bucket: buckets
                .into_iter()
                .map(|b| xml::BucketEntry {
                    name: b.name,
                    creation_date: headers::iso8601(b.created_ns),
                    region: b.region,
                })
                .collect(),
        },
    };
    xml_response(StatusCode::OK, &doc)
}

pub async fn create_bucket(
    ctx: &Context,
    route: &Route,
    req: &HeaderMap,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let name = route.bucket().to_string();
    if !valid_bucket_name(&name) {
        return Err(S3Error::new(ErrorCode::InvalidBucketName).with("BucketName", name));
    }
    let doc = body.collect(64 * 1024).await?;
    if !doc.iter().all(u8::is_ascii_whitespace) {
        let config: xml::CreateBucketConfiguration = xml::from_xml(&doc)?;
        if let Some(loc) = config.location_constraint.filter(|l| !l.is_empty()) {
            if loc != ctx.region {
                return Err(S3Error::msg(
                    ErrorCode::IllegalLocationConstraintException,
                    format!("The {loc} location constraint is incompatible for the region specific endpoint this request was sent to."),
                ));
            }
        }
    }
    let object_lock = match headers::header(req, "x-amz-bucket-object-lock-enabled") {
        None => None,
        Some(v) if v.trim().eq_ignore_ascii_case("true") => Some(ObjectLockConfig::default()),
        Some(v) if v.trim().eq_ignore_ascii_case("false") => None,
        Some(_) => {
            return Err(S3Error::msg(
                ErrorCode::InvalidArgument,
                "x-amz-bucket-object-lock-enabled must be true or false",
            ))
        }
    };
    let n = name.clone();
    blocking(ctx, move |s| s.create_bucket(&n, object_lock))
        .await
        .map_err(|e| e.with("BucketName", name.clone()))?;
    let mut r = empty(StatusCode::OK);
    headers::insert(r.headers_mut(), "location", &format!("/{name}"));
    Ok(r)
}

pub async fn head_bucket(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let name = route.bucket().to_string();
    let b = blocking(ctx, move |s| s.bucket(&name)).await?;
    let mut r = empty(StatusCode::OK);
    headers::insert(r.headers_mut(), "x-amz-bucket-region", &b.region);
    Ok(r)
}

pub async fn delete_bucket(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let name = route.bucket().to_string();
    let n = name.clone();
    blocking(ctx, move |s| s.delete_bucket(&n))
        .await
        .map_err(|e| e.with("BucketName", name.clone()))?;
    // The bucket's policy went with it; a bucket made later under this name starts without.
    ctx.forget_policy(&name).await;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn get_location(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let name = route.bucket().to_string();
    let b = blocking(ctx, move |s| s.bucket(&name)).await?;
    // S3 answers an empty constraint for us-east-1.
    let region = if b.region == "us-east-1" {
        String::new()
    } else {
        b.region
    };
    xml_response(
        StatusCode::OK,
        &xml::LocationConstraint {
            xmlns: xml::NS,
            region,
        },
    )
}

pub async fn get_versioning(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let name = route.bucket().to_string();
    let b = blocking(ctx, move |s| s.bucket(&name)).await?;
    let status = match b.versioning {
        Versioning::Unversioned => None,
        Versioning::Enabled => Some("Enabled".to_string()),
        Versioning::Suspended => Some("Suspended".to_string()),
    };
    xml_response(
        StatusCode::OK,
        &xml::VersioningConfiguration {
            xmlns: xml::NS,
            status,
        },
    )
}

pub async fn put_versioning(
    ctx: &Context,
    route: &Route,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let doc = body.collect(64 * 1024).await?;
    let config: xml::VersioningRequest = xml::from_xml(&doc)?;
    if config
        .mfa_delete
        .as_deref()
        .is_some_and(|m| m.trim() == "Enabled")
    {
        return Err(S3Error::msg(
            ErrorCode::NotImplemented,
            "MFA delete is not supported",
        ));
    }
    let versioning = match config.status.as_deref().map(str::trim) {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        _ => return Err(S3Error::new(ErrorCode::MalformedXML)),
    };
    let name = route.bucket().to_string();
    blocking(ctx, move |s| s.set_versioning(&name, versioning)).await?;
    Ok(empty(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::valid_bucket_name;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket.v2", "a1b", &"a".repeat(63)] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "Abc",
            "a_b",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "x-s3alias",
            &"a".repeat(64),
            "a.-b",
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }
}
