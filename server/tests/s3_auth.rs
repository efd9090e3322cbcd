//! Authentication as a client sees it: bad keys and signatures, anonymous requests,
//! presigned URLs (valid, tampered, expired, too long-lived), clock skew, and bodies that do
//! not match what was signed (payload hash, aws-chunked chunk signatures, truncation) —
//! none of which may leave an object behind.

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_smithy_async::time::StaticTimeSource;
use common::{
    assert_s3_error, exists, get_bytes, pattern, presign_url, put_bytes, sha256_hex, TestServer,
    ACCESS_KEY,
};

const B: &str = "secure";

async fn http_send(
    method: &str,
    url: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut req = client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    for (n, v) in headers {
        req = req.header(n, v);
    }
    let resp = req.body(body).send().await.expect("the server answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

fn code_of(xml: &str) -> &str {
    xml.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map_or("", |(c, _)| c)
}

#[tokio::test]
async fn a_wrong_secret_or_unknown_key_is_refused() {
    let server = TestServer::start();
    server.bucket(B).await;
    let wrong_secret = server.client_with(|b| {
        b.credentials_provider(Credentials::new(
            ACCESS_KEY,
            "not-the-secret",
            None,
            None,
            "t",
        ))
    });
    assert_s3_error(
        wrong_secret.list_objects_v2().bucket(B).send().await,
        403,
        "SignatureDoesNotMatch",
    );
    assert_s3_error(
        wrong_secret
            .put_object()
            .bucket(B)
            .key("k")
            .body(b"x".to_vec().into())
            .send()
            .await,
        403,
        "SignatureDoesNotMatch",
    );

    let unknown = server.client_with(|b| {
        b.credentials_provider(Credentials::new(
            "nobody-here",
            "whatever-secret",
            None,
            None,
            "t",
        ))
    });
    assert_s3_error(
        unknown.list_buckets().send().await,
        403,
        "InvalidAccessKeyId",
    );
    assert_s3_error(
        unknown
            .put_object()
            .bucket(B)
            .key("k")
            .body(b"x".to_vec().into())
            .send()
            .await,
        403,
        "InvalidAccessKeyId",
    );

    assert!(
        !exists(&server.client(), B, "k").await,
        "refused writes store nothing"
    );
}

#[tokio::test]
async fn anonymous_requests_are_denied_with_an_s3_error_document() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    put_bytes(&client, B, "private", b"secret".to_vec()).await;

    let resp = server
        .raw("GET", "/secure/private")
        .anonymous()
        .send()
        .await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.header("content-type"), Some("application/xml"));
    assert_eq!(resp.code(), "AccessDenied");
    assert!(resp.xml("Message").is_some_and(|m| !m.is_empty()));
    assert_eq!(resp.xml("Resource").as_deref(), Some("/secure/private"));
    let request_id = resp.xml("RequestId").expect("the error names its request");
    assert!(!request_id.is_empty());
    assert_eq!(resp.header("x-amz-request-id"), Some(request_id.as_str()));
    assert!(!resp.text().contains("secret"), "the object is not leaked");

    for (method, path) in [
        ("PUT", "/secure/anon"),
        ("DELETE", "/secure/private"),
        ("GET", "/"),
        ("PUT", "/anonbucket"),
    ] {
        let resp = server
            .raw(method, path)
            .anonymous()
            .body(b"x".to_vec())
            .send()
            .await;
        assert_eq!(
            (resp.status, resp.code().as_str()),
            (403, "AccessDenied"),
            "{method} {path}"
        );
    }
    assert!(!exists(&client, B, "anon").await);
    assert_eq!(
        get_bytes(&client, B, "private").await,
        b"secret",
        "an anonymous DELETE deleted nothing"
    );
    assert_s3_error(
        client.head_bucket().bucket("anonbucket").send().await,
        404,
        "NotFound",
    );
}

#[tokio::test]
async fn presigned_get_and_put_work() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    put_bytes(&client, B, "shared file.txt", b"shared content".to_vec()).await;

    let get = client
        .get_object()
        .bucket(B)
        .key("shared file.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let headers = get
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let (status, body) = http_send(get.method(), get.uri(), headers, Vec::new()).await;
    assert_eq!((status, body.as_str()), (200, "shared content"));

    let put = client
        .put_object()
        .bucket(B)
        .key("uploaded")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let headers = put
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let (status, body) = http_send(
        put.method(),
        put.uri(),
        headers,
        b"via presigned PUT".to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        get_bytes(&client, B, "uploaded").await,
        b"via presigned PUT"
    );
}

#[tokio::test]
async fn a_tampered_presigned_url_is_refused() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    put_bytes(&client, B, "a", b"A".to_vec()).await;
    put_bytes(&client, B, "b", b"B".to_vec()).await;
    let get = client
        .get_object()
        .bucket(B)
        .key("a")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let url = get.uri().to_string();

    // Another key with the same signature.
    let other_key = url.replacen("/secure/a?", "/secure/b?", 1);
    assert_ne!(other_key, url);
    let (status, body) = http_send("GET", &other_key, vec![], vec![]).await;
    assert_eq!(
        (status, code_of(&body)),
        (403, "SignatureDoesNotMatch"),
        "{body}"
    );

    // A flipped signature digit.
    let (head, sig) = url.split_once("X-Amz-Signature=").unwrap();
    let first = if sig.starts_with('0') { '1' } else { '0' };
    let flipped = format!("{first}{}", &sig[1..]);
    let (status, body) = http_send(
        "GET",
        &format!("{head}X-Amz-Signature={flipped}"),
        vec![],
        vec![],
    )
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (403, "SignatureDoesNotMatch"),
        "{body}"
    );

    // A longer lifetime than was signed.
    let longer = url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000");
    assert_ne!(longer, url);
    let (status, body) = http_send("GET", &longer, vec![], vec![]).await;
    assert_eq!(
        (status, code_of(&body)),
        (403, "SignatureDoesNotMatch"),
        "{body}"
    );

    // A presigned GET does not authorize a PUT.
    let (status, body) = http_send("PUT", &url, vec![], b"overwrite".to_vec()).await;
    assert_eq!(
        (status, code_of(&body)),
        (403, "SignatureDoesNotMatch"),
        "{body}"
    );
    assert_eq!(get_bytes(&client, B, "a").await, b"A");
}

#[tokio::test]
async fn expired_and_overlong_presigned_urls_are_refused() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    put_bytes(&client, B, "k", b"v".to_vec()).await;

    let config = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(2 * 3600))
        .expires_in(Duration::from_secs(3600))
        .build()
        .unwrap();
    let expired = client
        .get_object()
        .bucket(B)
        .key("k")
        .presigned(config)
        .await
        .unwrap();
    let (status, body) = http_send("GET", expired.uri(), vec![], vec![]).await;
    assert_eq!((status, code_of(&body)), (403, "AccessDenied"), "{body}");

    // Built by hand: the SDK will not sign more than 7 days.
    let week = presign_url(server.port, "GET", "/secure/k", SystemTime::now(), 604_800);
    let (status, body) = http_send("GET", &week, vec![], vec![]).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "v"),
        "exactly 7 days is allowed"
    );
    let too_long = presign_url(server.port, "GET", "/secure/k", SystemTime::now(), 604_801);
    let (status, body) = http_send("GET", &too_long, vec![], vec![]).await;
    assert_eq!(
        (status, code_of(&body)),
        (400, "AuthorizationQueryParametersError"),
        "{body}"
    );
    let dated_in_future = presign_url(
        server.port,
        "GET",
        "/secure/k",
        SystemTime::now() + Duration::from_secs(3600),
        600,
    );
    let (status, body) = http_send("GET", &dated_in_future, vec![], vec![]).await;
    assert_eq!((status, code_of(&body)), (403, "AccessDenied"), "{body}");
}

#[tokio::test]
async fn a_skewed_clock_is_refused() {
    let server = TestServer::start();
    server.bucket(B).await;
    for skew in [-20i64 * 60, 20 * 60] {
        let at = if skew < 0 {
            SystemTime::now() - Duration::from_secs(skew.unsigned_abs())
        } else {
            SystemTime::now() + Duration::from_secs(skew as u64)
        };
        // A fresh client per request: the SDK learns the skew from a response's Date header
        // and corrects later signatures.
        let skewed = || server.client_with(|b| b.time_source(StaticTimeSource::new(at)));
        assert_s3_error(
            skewed().list_objects_v2().bucket(B).send().await,
            403,
            "RequestTimeTooSkewed",
        );
        assert_s3_error(
            skewed()
                .put_object()
                .bucket(B)
                .key("skewed")
                .body(b"x".to_vec().into())
                .send()
                .await,
            403,
            "RequestTimeTooSkewed",
        );
    }
    // Ten minutes off is within S3's 15-minute window.
    let close = server.client_with(|b| {
        b.time_source(StaticTimeSource::new(
            SystemTime::now() - Duration::from_secs(600),
        ))
    });
    close
        .list_objects_v2()
        .bucket(B)
        .send()
        .await
        .expect("10 minutes of skew is tolerated");
    assert!(!exists(&server.client(), B, "skewed").await);
}

#[tokio::test]
async fn a_body_that_does_not_match_its_signed_hash_is_refused() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let body = pattern(300_000, 1);
    let resp = server
        .raw("PUT", "/secure/mismatch")
        .content_sha256(&sha256_hex(b"something else"))
        .body(body.clone())
        .send()
        .await;
    assert_eq!(
        (resp.status, resp.code().as_str()),
        (400, "XAmzContentSHA256Mismatch"),
        "{}",
        resp.text()
    );
    assert!(!exists(&client, B, "mismatch").await);

    let small = server
        .raw("PUT", "/secure/mismatch")
        .content_sha256(&sha256_hex(b"other"))
        .body(b"tiny".to_vec())
        .send()
        .await;
    assert_eq!(small.code(), "XAmzContentSHA256Mismatch");
    assert!(!exists(&client, B, "mismatch").await);

    let good = server
        .raw("PUT", "/secure/matching")
        .body(body.clone())
        .send()
        .await;
    assert_eq!(
        good.status,
        200,
        "the raw signer itself is right: {}",
        good.text()
    );
    assert_eq!(get_bytes(&client, B, "matching").await, body);
}

/// A signed aws-chunked PUT of `chunks`, with chunk `corrupt` carrying a wrong signature.
async fn chunked_put(
    server: &TestServer,
    key: &str,
    chunks: &[&[u8]],
    corrupt: Option<usize>,
) -> common::RawResponse {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let raw = server
        .raw("PUT", &format!("/secure/{key}"))
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", &total.to_string())
        .content_sha256("STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    let (headers, seed) = raw.signed_headers();
    let body = seed
        .expect("a signed request has a seed signature")
        .encode_chunked(chunks, corrupt);
    raw.send_with(headers, body).await
}

#[tokio::test]
async fn aws_chunked_bodies_are_verified_chunk_by_chunk() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let a = pattern(64 * 1024, 1);
    let b = pattern(64 * 1024, 2);
    let c = pattern(1000, 3);
    let chunks: [&[u8]; 3] = [&a, &b, &c];
    let whole: Vec<u8> = [a.clone(), b.clone(), c.clone()].concat();

    let ok = chunked_put(&server, "chunked-good", &chunks, None).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(get_bytes(&client, B, "chunked-good").await, whole);

    // A bad signature on a middle chunk, and on the final empty chunk.
    for (key, corrupt) in [("chunked-bad-middle", 1), ("chunked-bad-final", 3)] {
        let resp = chunked_put(&server, key, &chunks, Some(corrupt)).await;
        assert_eq!(
            (resp.status, resp.code().as_str()),
            (403, "SignatureDoesNotMatch"),
            "{key}: {}",
            resp.text()
        );
        assert!(!exists(&client, B, key).await, "{key} must not be stored");
    }
    // Overwriting with a forged body keeps the old object.
    let resp = chunked_put(&server, "chunked-good", &[b"forged"], Some(0)).await;
    assert_eq!(resp.code(), "SignatureDoesNotMatch");
    assert_eq!(get_bytes(&client, B, "chunked-good").await, whole);
}

#[tokio::test]
async fn a_truncated_body_stores_nothing() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let prefix = pattern(200_000, 4);

    // Unsigned payload, larger than the inline limit.
    let raw = server
        .raw("PUT", "/secure/truncated-big")
        .content_sha256("UNSIGNED-PAYLOAD");
    let answer = raw.send_truncated(1_000_000, &prefix);
    assert!(
        !answer.starts_with("HTTP/1.1 200"),
        "a truncated body is not acknowledged: {answer}"
    );
    assert!(!exists(&client, B, "truncated-big").await);

    // Small (inline) body.
    let raw = server
        .raw("PUT", "/secure/truncated-small")
        .content_sha256("UNSIGNED-PAYLOAD");
    let answer = raw.send_truncated(1000, b"only ten b");
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!exists(&client, B, "truncated-small").await);

    // A truncated aws-chunked body.
    let raw = server
        .raw("PUT", "/secure/truncated-chunked")
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", "200000")
        .content_sha256("STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    let (_, seed) = raw.signed_headers();
    let encoded = seed.unwrap().encode_chunked(&[&prefix], None);
    let cut = encoded.len() / 2;
    let answer = raw.send_truncated(encoded.len(), &encoded[..cut]);
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!exists(&client, B, "truncated-chunked").await);

    // The server is still healthy.
    put_bytes(&client, B, "after", b"fine".to_vec()).await;
}
