//! CORS: Put/Get/DeleteBucketCors, preflight `OPTIONS` answered from the bucket's rules
//! (unauthenticated, as browsers send it), and the `Access-Control-*` headers added to actual
//! requests (successes and errors alike) that carry an `Origin` the rules allow.
//!
//! Rules are matched as S3 does: the first rule whose AllowedOrigin (one `*` wildcard allowed),
//! AllowedMethod and, for a preflight, every requested header (AllowedHeader patterns,
//! case-insensitive, `*` wildcard) match.

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::headers::header;
use super::{blocking, empty, xml};
use crate::http::{Context, ErrorCode, RequestBody, Route, S3Error};
use crate::store::BucketDocument;

const MAX_RULES: usize = 100;
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

#[derive(Serialize, Deserialize, Default)]
#[serde(rename = "CORSConfiguration")]
pub struct CorsConfiguration {
    #[serde(
        rename = "@xmlns",
        skip_deserializing,
        skip_serializing_if = "str::is_empty"
    )]
    pub xmlns: &'static str,
    #[serde(rename = "CORSRule", default)]
    pub rules: Vec<CorsRule>,
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct CorsRule {
    #[serde(rename = "ID", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "AllowedHeader", default)]
    pub allowed_headers: Vec<String>,
    #[serde(rename = "AllowedMethod", default)]
    pub allowed_methods: Vec<String>,
    #[serde(rename = "AllowedOrigin", default)]
    pub allowed_origins: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    pub expose_headers: Vec<String>,
    #[serde(
        rename = "MaxAgeSeconds",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_age_seconds: Option<i64>,
}

/// `pattern` with at most one `*` matching any run of characters.
fn wildcard(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len()
                && value.starts_with(head)
                && value.ends_with(tail)
        }
    }
}

impl CorsRule {
    fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| wildcard(o, origin))
    }

    fn allows_method(&self, method: &str) -> bool {
        self.allowed_methods.iter().any(|m| m == method)
    }

    fn allows_header(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.allowed_headers
            .iter()
            .any(|h| wildcard(&h.to_ascii_lowercase(), &name))
    }
}

/// Checks a configuration against S3's rules; the message names the problem.
fn validate(config: &CorsConfiguration) -> Result<(), S3Error> {
    let bad = |m: String| S3Error::msg(ErrorCode::InvalidRequest, m);
    if config.rules.is_empty() || config.rules.len() > MAX_RULES {
        return Err(S3Error::new(ErrorCode::MalformedXML));
    }
    for rule in &config.rules {
        if rule.allowed_origins.is_empty() || rule.allowed_methods.is_empty() {
            return Err(S3Error::new(ErrorCode::MalformedXML));
        }
        for m in &rule.allowed_methods {
            if !METHODS.contains(&m.as_str()) {
                return Err(bad(format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
                )));
            }
        }
        for o in &rule.allowed_origins {
            if o.matches('*').count() > 1 {
                return Err(bad(format!(
                    "AllowedOrigin \"{o}\" can not have more than one wildcard."
                )));
            }
        }
        for h in &rule.allowed_headers {
            if h.matches('*').count() > 1 {
                return Err(bad(format!(
                    "AllowedHeader \"{h}\" can not have more than one wildcard."
                )));
            }
        }
    }
    Ok(())
}

fn parse(doc: &[u8]) -> Result<CorsConfiguration, S3Error> {
    let config: CorsConfiguration = xml::from_xml(doc)?;
    validate(&config)?;
    Ok(config)
}

pub async fn put_bucket_cors(
    ctx: &Context,
    route: &Route,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let doc = body.collect(64 * 1024).await?;
    parse(&doc)?;
    let text =
        String::from_utf8(doc.to_vec()).map_err(|_| S3Error::new(ErrorCode::MalformedXML))?;
    let bucket = route.bucket().to_string();
    blocking(ctx, move |s| {
        s.put_bucket_document(&bucket, BucketDocument::Cors, text)
    })
    .await?;
    Ok(empty(StatusCode::OK))
}

pub async fn get_bucket_cors(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let config = load(ctx, route.bucket()).await?;
    let Some(mut config) = config else {
        return Err(
            S3Error::new(ErrorCode::NoSuchCORSConfiguration).with("BucketName", route.bucket())
        );
    };
    config.xmlns = xml::NS;
    super::xml_response(StatusCode::OK, &config)
}

pub async fn delete_bucket_cors(ctx: &Context, route: &Route) -> Result<Response<Body>, S3Error> {
    let bucket = route.bucket().to_string();
    blocking(ctx, move |s| {
        s.delete_bucket_document(&bucket, BucketDocument::Cors)
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// The CORS configuration of `bucket` (checking the bucket exists), `None` without one.
async fn load(ctx: &Context, bucket: &str) -> Result<Option<CorsConfiguration>, S3Error> {
    let b = bucket.to_string();
    let doc = blocking(ctx, move |s| {
        s.bucket(&b)?;
        s.bucket_document(&b, BucketDocument::Cors)
    })
    .await?;
    match doc {
        None => Ok(None),
        Some(text) => Ok(Some(parse(text.as_bytes()).map_err(|e| {
            S3Error::internal(format!("the stored CORS configuration is refused: {e}"))
        })?)),
    }
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// The headers every allowed CORS answer carries.
fn allow(h: &mut HeaderMap, rule: &CorsRule, origin: &str) {
    let any = rule.allowed_origins.iter().any(|o| o == "*");
    set(
        h,
        "access-control-allow-origin",
        if any { "*" } else { origin },
    );
    if !any {
        set(h, "access-control-allow-credentials", "true");
    }
    if !rule.expose_headers.is_empty() {
        set(
            h,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    h.append(http::header::VARY, HeaderValue::from_static("Origin"));
}

/// Answers a preflight `OPTIONS` request for `bucket` from its CORS rules.
pub async fn preflight(
    ctx: &Context,
    bucket: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response<Body>, S3Error> {
    let forbidden = || S3Error::new(ErrorCode::CORSResponse);
    let origin = header(headers, "origin").ok_or_else(|| {
        S3Error::msg(
            ErrorCode::InvalidRequest,
            "Insufficient information. Origin request header needed.",
        )
    })?;
    let method = header(headers, "access-control-request-method").ok_or_else(|| {
        S3Error::msg(
            ErrorCode::InvalidRequest,
            "Invalid Access-Control-Request-Method: null",
        )
    })?;
    let Some(bucket) = bucket else {
        return Err(forbidden());
    };
    let requested: Vec<String> = header(headers, "access-control-request-headers")
        .unwrap_or("")
        .split(',')
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    let config = load(ctx, bucket).await?.ok_or_else(forbidden)?;
    let rule = config
        .rules
        .iter()
        .find(|r| {
            r.allows_origin(origin)
                && r.allows_method(method)
                && requested.iter().all(|h| r.allows_header(h))
        })
        .ok_or_else(forbidden)?;
    let mut r = empty(StatusCode::OK);
    let h = r.headers_mut();
    allow(h, rule, origin);
    set(
        h,
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !requested.is_empty() {
        set(h, "access-control-allow-headers", &requested.join(", "));
    }
    if let Some(age) = rule.max_age_seconds {
        set(h, "access-control-max-age", &age.to_string());
    }
    Ok(r)
}

/// Adds the CORS headers of `bucket`'s first rule allowing `origin` and `method` to an
/// actual request's response. Lookup failures add nothing (the answer stands as it is).
pub async fn decorate(
    ctx: &Context,
    bucket: &str,
    method: &Method,
    origin: &str,
    response: &mut Response<Body>,
) {
    let Ok(Some(config)) = load(ctx, bucket).await else {
        return;
    };
    if let Some(rule) = config
        .rules
        .iter()
        .find(|r| r.allows_origin(origin) && r.allows_method(method.as_str()))
    {
        allow(response.headers_mut(), rule, origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        CorsRule {
            allowed_origins: v(origins),
            allowed_methods: v(methods),
            allowed_headers: v(headers),
            ..Default::default()
        }
    }

    #[test]
    fn origins_methods_and_headers_match_with_one_wildcard() {
        let r = rule(
            &["https://*.example.com"],
            &["PUT"],
            &["x-amz-*", "Content-Type"],
        );
        assert!(r.allows_origin("https://app.example.com"));
        assert!(!r.allows_origin("https://example.org"));
        assert!(r.allows_method("PUT") && !r.allows_method("GET"));
        assert!(r.allows_header("X-Amz-Date") && r.allows_header("content-type"));
        assert!(!r.allows_header("authorization"));
        assert!(rule(&["*"], &["GET"], &[]).allows_origin("http://anything:8080"));
    }

    #[test]
    fn configurations_are_validated() {
        let ok = CorsConfiguration {
            rules: vec![rule(&["*"], &["GET", "PUT"], &["*"])],
            ..Default::default()
        };
        assert!(validate(&ok).is_ok());
        for bad in [
            vec![],
            vec![rule(&["*"], &["PATCH"], &[])],
            vec![rule(&["*.*.com"], &["GET"], &[])],
            vec![rule(&[], &["GET"], &[])],
        ] {
            let c = CorsConfiguration {
                rules: bad,
                ..Default::default()
            };
            assert!(validate(&c).is_err());
        }
        let doc = br#"<CORSConfiguration><CORSRule><AllowedOrigin>http://a</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>60</MaxAgeSeconds></CORSRule></CORSConfiguration>"#;
        let c = parse(doc).unwrap();
        assert_eq!(c.rules[0].expose_headers, vec!["ETag"]);
        assert_eq!(c.rules[0].max_age_seconds, Some(60));
    }
}
