//! Object lock (WORM): the bucket's configuration (enabled at creation, default retention),
//! per-version retention and legal hold (Put/GetObjectRetention, Put/GetObjectLegalHold and
//! the `x-amz-object-lock-*` headers of writes), and who may bypass GOVERNANCE retention.
//!
//! COMPLIANCE retention can only be extended, by anyone, the root credential included.
//! GOVERNANCE retention can be shortened or removed (and a version under it deleted) only by a
//! request with `x-amz-bypass-governance-retention: true` from the root credential: scoped
//! access keys never hold `s3:BypassGovernanceRetention`.

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::headers::{header, insert, with_version};
use super::{blocking, empty, xml, xml_response};
use crate::auth::Principal;
use crate::http::{Context, ErrorCode, RequestBody, Route, S3Error};
use crate::store::record::{
    DefaultRetention, ObjectLockConfig, Retention, RetentionMode, RetentionPeriod, VersionRecord,
};
use crate::store::{now_ns, StoreError};

/// Whether this request may bypass GOVERNANCE retention: it asks to, and may.
pub fn bypass_governance(ctx: &Context, principal: &Principal, headers: &HeaderMap) -> bool {
    let asked = header(headers, "x-amz-bypass-governance-retention")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    asked && matches!(principal, Principal::AccessKey(k) if ctx.iam.is_root(k))
}

fn invalid_argument(message: impl Into<String>) -> S3Error {
    S3Error::msg(ErrorCode::InvalidArgument, message)
}

fn parse_mode(s: &str) -> Result<RetentionMode, S3Error> {
    RetentionMode::parse(s.trim()).ok_or_else(|| invalid_argument("Unknown wormMode directive."))
}

/// An ISO 8601 date as unix nanoseconds.
fn parse_date(s: &str) -> Result<u64, S3Error> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map_err(|_| invalid_argument("The retain until date is not a valid ISO 8601 date"))?;
    u64::try_from(t.unix_timestamp_nanos())
        .map_err(|_| invalid_argument("The retain until date must be in the future!"))
}

fn future(until_ns: u64) -> Result<u64, S3Error> {
    if until_ns <= now_ns() {
        return Err(invalid_argument(
            "The retain until date must be in the future!",
        ));
    }
    Ok(until_ns)
}

fn parse_legal_hold(s: &str) -> Result<bool, S3Error> {
    match s.trim() {
        "ON" => Ok(true),
        "OFF" => Ok(false),
        _ => Err(S3Error::new(ErrorCode::MalformedXML)),
    }
}

/// Retention and legal hold named by the `x-amz-object-lock-*` headers of a write.
pub fn from_headers(headers: &HeaderMap) -> Result<(Option<Retention>, bool), S3Error> {
    let mode = header(headers, "x-amz-object-lock-mode");
    let until = header(headers, "x-amz-object-lock-retain-until-date");
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(m), Some(u)) => Some(Retention {
            mode: parse_mode(m)?,
            until_ns: future(parse_date(u)?)?,
        }),
        _ => return Err(invalid_argument(
            "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
        )),
    };
    let legal_hold = match header(headers, "x-amz-object-lock-legal-hold") {
        None => false,
        Some(v) => parse_legal_hold(v)
            .map_err(|_| invalid_argument("Legal Hold must be either of 'ON' or 'OFF'"))?,
    };
    Ok((retention, legal_hold))
}

/// `x-amz-object-lock-*` headers describing a version on GET/HEAD.
pub fn insert_headers(h: &mut HeaderMap, record: &VersionRecord) {
    if let Some(r) = &record.retention {
        insert(h, "x-amz-object-lock-mode", r.mode.as_str());
        insert(
            h,
            "x-amz-object-lock-retain-until-date",
            &super::headers::iso8601(r.until_ns),
        );
    }
    if record.legal_hold {
        insert(h, "x-amz-object-lock-legal-hold", "ON");
    }
}

fn missing_configuration(bucket: &str) -> S3Error {
    S3Error::new(ErrorCode::ObjectLockConfigurationNotFoundError).with("BucketName", bucket)
}

pub async fn get_configuration(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let bucket = route.bucket().to_string();
    let record = blocking(ctx, move |s| s.bucket(&bucket)).await?;
    let Some(lock) = record.object_lock else {
        return Err(missing_configuration(&record.name));
    };
    let rule = lock.default_retention.map(|d| xml::ObjectLockRule {
        default_retention: xml::DefaultRetentionXml {
            mode: Some(d.mode.as_str().to_string()),
            days: match d.period {
                RetentionPeriod::Days(n) => Some(n.into()),
                RetentionPeriod::Years(_) => None,
            },
            years: match d.period {
                RetentionPeriod::Years(n) => Some(n.into()),
                RetentionPeriod::Days(_) => None,
            },
        },
    });
    xml_response(
        StatusCode::OK,
        &xml::ObjectLockConfiguration {
            xmlns: xml::NS,
            enabled: Some("Enabled".into()),
            rule,
        },
    )
}

/// The configuration a PutObjectLockConfiguration document asks for.
fn parse_configuration(doc: xml::ObjectLockConfiguration) -> Result<ObjectLockConfig, S3Error> {
    if doc.enabled.as_deref().map(str::trim) != Some("Enabled") {
        return Err(S3Error::new(ErrorCode::MalformedXML));
    }
    let default_retention = match doc.rule {
        None => None,
        Some(rule) => {
            let d = rule.default_retention;
            let mode = parse_mode(d.mode.as_deref().unwrap_or(""))
                .map_err(|_| S3Error::new(ErrorCode::MalformedXML))?;
            let positive = |n: i64| {
                u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                    S3Error::msg(
                        ErrorCode::InvalidArgument,
                        "Default retention period must be a positive integer value.",
                    )
                })
            };
            let period = match (d.days, d.years) {
                (Some(days), None) => RetentionPeriod::Days(positive(days)?),
                (None, Some(years)) => RetentionPeriod::Years(positive(years)?),
                _ => return Err(S3Error::new(ErrorCode::MalformedXML)),
            };
            Some(DefaultRetention { mode, period })
        }
    };
    Ok(ObjectLockConfig { default_retention })
}

pub async fn put_configuration(
    ctx: &Context,
    route: &Route,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let doc = body.collect(64 * 1024).await?;
    let config = parse_configuration(xml::from_xml(&doc)?)?;
    let bucket = route.bucket().to_string();
    blocking(ctx, move |s| {
        s.update_bucket(&bucket, |b| match &mut b.object_lock {
            Some(lock) => {
                *lock = config;
                Ok(())
            }
            // Object lock is chosen when the bucket is made (x-amz-bucket-object-lock-enabled).
            None => Err(StoreError::InvalidBucketState(
                "Object Lock configuration cannot be enabled on existing buckets".into(),
            )),
        })
    })
    .await?;
    Ok(empty(StatusCode::OK))
}

/// Fails unless `bucket` was created with object lock.
async fn require_lock(ctx: &Context, bucket: &str) -> Result<(), S3Error> {
    let b = bucket.to_string();
    let record = blocking(ctx, move |s| s.bucket(&b)).await?;
    if record.object_lock.is_none() {
        return Err(S3Error::msg(
            ErrorCode::InvalidRequest,
            "Bucket is missing Object Lock Configuration",
        ));
    }
    Ok(())
}

pub async fn get_retention(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    require_lock(ctx, route.bucket()).await?;
    let (bucket, key) = (route.bucket().to_string(), route.key().to_string());
    let version = route.param("versionId").map(str::to_string);
    let record = blocking(ctx, move |s| {
        s.head_object(&bucket, &key, version.as_deref())
    })
    .await?;
    let Some(r) = record.retention else {
        return Err(S3Error::new(ErrorCode::NoSuchObjectLockConfiguration));
    };
    let doc = xml::RetentionXml {
        xmlns: xml::NS,
        mode: Some(r.mode.as_str().to_string()),
        retain_until_date: Some(super::headers::iso8601(r.until_ns)),
    };
    Ok(with_version(
        xml_response(StatusCode::OK, &doc)?,
        record.version_id.as_deref(),
    ))
}

/// Whether retention `old` may become `new` (`None`: removed): COMPLIANCE only lengthens;
/// GOVERNANCE changes otherwise need the bypass.
fn may_change(old: Option<Retention>, new: Option<Retention>, bypass: bool) -> bool {
    let Some(old) = old.filter(|o| o.until_ns > now_ns()) else {
        return true;
    };
    let keeps = new.is_some_and(|n| n.mode == old.mode && n.until_ns >= old.until_ns);
    if keeps {
        return true;
    }
    match old.mode {
        RetentionMode::Compliance => false,
        RetentionMode::Governance => bypass,
    }
}

pub async fn put_retention(
    ctx: &Context,
    route: &Route,
    principal: &Principal,
    headers: &HeaderMap,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    require_lock(ctx, route.bucket()).await?;
    let doc = body.collect(64 * 1024).await?;
    let doc: xml::RetentionXml = xml::from_xml(&doc)?;
    let new = match (doc.mode.as_deref(), doc.retain_until_date.as_deref()) {
        (None, None) => None,
        (Some(m), Some(u)) => Some(Retention {
            mode: parse_mode(m).map_err(|_| S3Error::new(ErrorCode::MalformedXML))?,
            until_ns: future(parse_date(u)?)?,
        }),
        _ => return Err(S3Error::new(ErrorCode::MalformedXML)),
    };
    let bypass = bypass_governance(ctx, principal, headers);
    let (bucket, key) = (route.bucket().to_string(), route.key().to_string());
    let version = route.param("versionId").map(str::to_string);
    let record = blocking(ctx, move |s| {
        s.update_version(&bucket, &key, version.as_deref(), |r| {
            if !may_change(r.retention, new, bypass) {
                return Err(StoreError::ObjectLocked(
                    "Access Denied because object protected by object lock.".into(),
                ));
            }
            r.retention = new;
            Ok(())
        })
    })
    .await?;
    Ok(with_version(
        empty(StatusCode::OK),
        record.version_id.as_deref(),
    ))
}

pub async fn get_legal_hold(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    require_lock(ctx, route.bucket()).await?;
    let (bucket, key) = (route.bucket().to_string(), route.key().to_string());
    let version = route.param("versionId").map(str::to_string);
    let record = blocking(ctx, move |s| {
        s.head_object(&bucket, &key, version.as_deref())
    })
    .await?;
    let doc = xml::LegalHoldXml {
        xmlns: xml::NS,
        status: if record.legal_hold { "ON" } else { "OFF" }.into(),
    };
    Ok(with_version(
        xml_response(StatusCode::OK, &doc)?,
        record.version_id.as_deref(),
    ))
}

pub async fn put_legal_hold(
    ctx: &Context,
    route: &Route,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    require_lock(ctx, route.bucket()).await?;
    let doc = body.collect(64 * 1024).await?;
    let doc: xml::LegalHoldXml = xml::from_xml(&doc)?;
    let on = parse_legal_hold(&doc.status)?;
    let (bucket, key) = (route.bucket().to_string(), route.key().to_string());
    let version = route.param("versionId").map(str::to_string);
    let record = blocking(ctx, move |s| {
        s.update_version(&bucket, &key, version.as_deref(), |r| {
            r.legal_hold = on;
            Ok(())
        })
    })
    .await?;
    Ok(with_version(
        empty(StatusCode::OK),
        record.version_id.as_deref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600 * 1_000_000_000;

    fn retention(mode: RetentionMode, from_now: u64) -> Option<Retention> {
        Some(Retention {
            mode,
            until_ns: now_ns() + from_now,
        })
    }

    #[test]
    fn compliance_only_lengthens_and_governance_needs_the_bypass() {
        use RetentionMode::*;
        let c = retention(Compliance, HOUR);
        assert!(may_change(c, retention(Compliance, 2 * HOUR), false));
        assert!(!may_change(c, retention(Compliance, HOUR / 2), true));
        assert!(!may_change(c, None, true));
        assert!(!may_change(c, retention(Governance, 2 * HOUR), true));
        let g = retention(Governance, HOUR);
        assert!(may_change(g, retention(Governance, 2 * HOUR), false));
        assert!(!may_change(g, None, false));
        assert!(may_change(g, None, true));
        assert!(may_change(g, retention(Compliance, 2 * HOUR), true));
        // An expired retention no longer binds.
        let expired = Some(Retention {
            mode: Compliance,
            until_ns: now_ns() - 1,
        });
        assert!(may_change(expired, None, false));
    }

    #[test]
    fn lock_headers_come_in_pairs_and_in_the_future() {
        let mut h = HeaderMap::new();
        assert_eq!(from_headers(&h).unwrap(), (None, false));
        h.insert("x-amz-object-lock-mode", "GOVERNANCE".parse().unwrap());
        assert_eq!(
            from_headers(&h).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        h.insert(
            "x-amz-object-lock-retain-until-date",
            "2001-01-01T00:00:00Z".parse().unwrap(),
        );
        assert_eq!(
            from_headers(&h).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        h.insert(
            "x-amz-object-lock-retain-until-date",
            "2099-01-01T00:00:00.000Z".parse().unwrap(),
        );
        h.insert("x-amz-object-lock-legal-hold", "ON".parse().unwrap());
        let (r, hold) = from_headers(&h).unwrap();
        assert_eq!(r.unwrap().mode, RetentionMode::Governance);
        assert!(hold);
    }
}
