//! Tests of SigV4 verification: the AWS test suite (canonical request, string to sign,
//! signature), the S3 documentation examples through `authenticate`, and the refusals.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sha2::{Digest, Sha256};

use super::sigv4::{
    canonical_query, canonical_request, canonical_uri, parse_amz_date, string_to_sign, SigningKey,
};
use super::test_support::{doc_keys, drain, frames_at, OneKey, DOC_ACCESS_KEY, DOC_SECRET_KEY};
use super::{authenticate, AuthError, AuthRequest, Authenticated, PayloadCheck, Principal};

// ---------------------------------------------------------------------------------------
// The AWS SigV4 test suite (service "service"), see testdata/README.md.

struct SuiteCase {
    name: String,
    req: String,
    creq: String,
    sts: String,
    authz: String,
}

fn suite_cases() -> Vec<SuiteCase> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/auth/testdata");
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("testdata directory") {
        let path = entry.expect("testdata entry").path();
        if !path.is_dir() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("ASCII case name")
            .to_string();
        let read = |ext: &str| {
            std::fs::read_to_string(path.join(format!("{name}.{ext}")))
                .unwrap_or_else(|e| panic!("{name}.{ext}: {e}"))
        };
        cases.push(SuiteCase {
            req: read("req"),
            creq: read("creq"),
            sts: read("sts"),
            authz: read("authz"),
            name,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// A parsed `.req`: method, raw path, raw query, headers, body.
fn parse_req(req: &str) -> (Method, String, Option<String>, HeaderMap, Vec<u8>) {
    let (head, body) = req.split_once("\n\n").unwrap_or((req, ""));
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let method = request_line.split(' ').next().expect("method");
    let uri = request_line[method.len() + 1..]
        .rsplit_once(' ')
        .expect("HTTP version")
        .0;
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (uri.to_string(), None),
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("header line");
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    (
        Method::from_bytes(method.as_bytes()).expect("method"),
        path,
        query,
        headers,
        body.as_bytes().to_vec(),
    )
}

#[test]
fn aws_sigv4_test_suite() {
    let cases = suite_cases();
    assert_eq!(cases.len(), 19, "every vector in testdata is found");
    let key = SigningKey::derive(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "20150830",
        "us-east-1",
        "service",
    );
    for case in cases {
        let (method, path, query, headers, body) = parse_req(&case.req);
        let signed_headers = case
            .authz
            .split_once("SignedHeaders=")
            .and_then(|(_, rest)| rest.split_once(','))
            .expect("SignedHeaders in .authz")
            .0;
        let creq = canonical_request(
            method.as_str(),
            &canonical_uri(&path),
            &canonical_query(query.as_deref(), false),
            &headers,
            signed_headers,
            &hex::encode(Sha256::digest(&body)),
        );
        assert_eq!(
            String::from_utf8(creq.clone()).expect("UTF-8"),
            case.creq,
            "{}: canonical request",
            case.name
        );
        let sts = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            &creq,
        );
        assert_eq!(sts, case.sts, "{}: string to sign", case.name);
        let signature = hex::encode(key.sign(sts.as_bytes()));
        let expected = case.authz.rsplit_once("Signature=").expect("signature").1;
        assert_eq!(signature, expected, "{}: signature", case.name);
    }
}

#[test]
fn canonical_uri_is_not_normalized() {
    // S3 signs the path as received: no dot-segment removal, no slash merging, one encoding.
    assert_eq!(canonical_uri("/example/.."), "/example/..");
    assert_eq!(canonical_uri("//example//"), "//example//");
    assert_eq!(canonical_uri("/./example"), "/./example");
    assert_eq!(canonical_uri("/test$file.text"), "/test%24file.text");
    assert_eq!(canonical_uri("/a%20b/c%2a"), "/a%20b/c%2A");
    assert_eq!(canonical_uri("/%E1%88%B4"), "/%E1%88%B4");
    assert_eq!(
        canonical_uri("/key%252F"),
        "/key%252F",
        "no double decoding"
    );
    assert_eq!(canonical_uri(""), "/");
}

#[test]
fn canonical_query_rules() {
    assert_eq!(canonical_query(Some("b=2&a=1&a=0"), false), "a=0&a=1&b=2");
    assert_eq!(canonical_query(Some("acl"), false), "acl=");
    assert_eq!(
        canonical_query(Some("uploads&prefix=a%20b"), false),
        "prefix=a%20b&uploads="
    );
    assert_eq!(canonical_query(Some("k=a+b&x=%7e"), false), "k=a%2Bb&x=~");
    assert_eq!(canonical_query(Some("a=1&&b"), false), "a=1&b=");
    assert_eq!(
        canonical_query(Some("X-Amz-Signature=abc&X-Amz-Date=1"), true),
        "X-Amz-Date=1"
    );
    assert_eq!(canonical_query(None, false), "");
}

// ---------------------------------------------------------------------------------------
// The S3 documentation examples (examplebucket, 20130524T000000Z).

fn at(timestamp: &str) -> SystemTime {
    parse_amz_date(timestamp).expect("test timestamp").into()
}

fn doc_now() -> SystemTime {
    at("20130524T000000Z")
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    map
}

fn run(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    let req = AuthRequest {
        method,
        raw_path: path,
        raw_query: query,
        headers,
    };
    authenticate(&req, "us-east-1", now, &doc_keys())
}

fn doc_authorization(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
         SignedHeaders={signed_headers},Signature={signature}"
    )
}

const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const GET_OBJECT_SIGNATURE: &str =
    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

fn get_object_headers(signature: &str) -> HeaderMap {
    headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY_HASH),
        ("x-amz-date", "20130524T000000Z"),
        (
            "authorization",
            &doc_authorization("host;range;x-amz-content-sha256;x-amz-date", signature),
        ),
    ])
}

fn assert_doc_principal(result: &Result<Authenticated, AuthError>) {
    match result {
        Ok(auth) => assert_eq!(
            auth.principal,
            Principal::AccessKey(DOC_ACCESS_KEY.to_string())
        ),
        Err(e) => panic!("expected success, got {e:?}"),
    }
}

#[test]
fn doc_get_object_with_range() {
    let result = run(
        &Method::GET,
        "/test.txt",
        None,
        &get_object_headers(GET_OBJECT_SIGNATURE),
        doc_now(),
    );
    assert_doc_principal(&result);
    match result.map(|a| a.payload) {
        Ok(PayloadCheck::Sha256(hash)) => assert_eq!(hex::encode(hash), EMPTY_HASH),
        other => panic!("expected a SHA-256 payload check, got {other:?}"),
    }
}

#[test]
fn doc_put_object() {
    let body_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    assert_eq!(
        hex::encode(Sha256::digest(b"Welcome to Amazon S3.")),
        body_hash
    );
    let map = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", body_hash),
        (
            "authorization",
            &doc_authorization(
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            ),
        ),
    ]);
    let result = run(&Method::PUT, "/test$file.text", None, &map, doc_now());
    assert_doc_principal(&result);
    assert!(matches!(
        result.map(|a| a.payload),
        Ok(PayloadCheck::Sha256(hash)) if hex::encode(hash) == body_hash
    ));
}

fn bucket_get_headers(signature: &str) -> HeaderMap {
    headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-content-sha256", EMPTY_HASH),
        (
            "authorization",
            &doc_authorization("host;x-amz-content-sha256;x-amz-date", signature),
        ),
    ])
}

#[test]
fn doc_get_bucket_lifecycle() {
    let map =
        bucket_get_headers("fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    assert_doc_principal(&run(&Method::GET, "/", Some("lifecycle"), &map, doc_now()));
}

#[test]
fn doc_list_objects() {
    let map =
        bucket_get_headers("34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    let query = Some("max-keys=2&prefix=J");
    assert_doc_principal(&run(&Method::GET, "/", query, &map, doc_now()));
    // The query is signed: changing it breaks the signature.
    let changed = run(
        &Method::GET,
        "/",
        Some("max-keys=3&prefix=J"),
        &map,
        doc_now(),
    );
    assert_eq!(changed.unwrap_err(), AuthError::SignatureDoesNotMatch);
}

const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
    &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
    &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
    &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

fn presigned(query: &str, now: SystemTime) -> Result<Authenticated, AuthError> {
    let map = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
    run(&Method::GET, "/test.txt", Some(query), &map, now)
}

#[test]
fn doc_presigned_url() {
    let result = presigned(PRESIGNED_QUERY, doc_now() + Duration::from_secs(3600));
    assert_doc_principal(&result);
    assert!(matches!(result.map(|a| a.payload), Ok(PayloadCheck::None)));
    // Valid up to the last second of X-Amz-Expires.
    assert_doc_principal(&presigned(
        PRESIGNED_QUERY,
        doc_now() + Duration::from_secs(86400),
    ));
}

#[test]
fn presigned_url_expiry_and_limits() {
    assert_eq!(
        presigned(PRESIGNED_QUERY, doc_now() + Duration::from_secs(86401)).unwrap_err(),
        AuthError::AccessDenied("Request has expired".to_string())
    );
    assert!(matches!(
        presigned(PRESIGNED_QUERY, doc_now() - Duration::from_secs(16 * 60)),
        Err(AuthError::AccessDenied(m)) if m == "Request is not valid yet"
    ));
    for expires in ["604801", "0", "-5", "soon"] {
        let query =
            PRESIGNED_QUERY.replace("X-Amz-Expires=86400", &format!("X-Amz-Expires={expires}"));
        assert!(
            matches!(
                presigned(&query, doc_now()),
                Err(AuthError::AuthorizationQueryParametersError(_))
            ),
            "X-Amz-Expires={expires}"
        );
    }
    // 16 bytes with a two-byte character where digits belong: refused, not a panic.
    for date in [
        "20130524T0%C9%8F000Z",
        "20130524T0\u{24f}000Z",
        "2013052470000000",
    ] {
        let query = PRESIGNED_QUERY.replace("20130524T000000Z", date);
        assert!(
            matches!(
                presigned(&query, doc_now()),
                Err(AuthError::AuthorizationQueryParametersError(m)) if m.contains("ISO8601")
            ),
            "X-Amz-Date={date}"
        );
    }
    assert_eq!(parse_amz_date("20130524T0\u{24f}000Z"), None);
    let query = PRESIGNED_QUERY.replace("&X-Amz-SignedHeaders=host", "");
    assert!(matches!(
        presigned(&query, doc_now()),
        Err(AuthError::AuthorizationQueryParametersError(_))
    ));
    let query = PRESIGNED_QUERY.replace("us-east-1", "eu-west-1");
    assert!(matches!(
        presigned(&query, doc_now()),
        Err(AuthError::AuthorizationQueryParametersError(m)) if m.contains("'eu-west-1' is wrong")
    ));
    let tampered = PRESIGNED_QUERY.replace("aeeed9bb", "aeeed9bc");
    assert_eq!(
        presigned(&tampered, doc_now()).unwrap_err(),
        AuthError::SignatureDoesNotMatch
    );
    let other_object = run(
        &Method::GET,
        "/other.txt",
        Some(PRESIGNED_QUERY),
        &headers(&[("host", "examplebucket.s3.amazonaws.com")]),
        doc_now(),
    );
    assert_eq!(other_object.unwrap_err(), AuthError::SignatureDoesNotMatch);
}

/// The documentation's chunked PUT (seed signature 4f232c43...), through `authenticate` and
/// then the decoder.
#[test]
fn doc_chunked_upload_end_to_end() {
    let map = headers(&[
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("content-length", "66824"),
        (
            "authorization",
            &doc_authorization(
                "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
                 x-amz-decoded-content-length;x-amz-storage-class",
                "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
            ),
        ),
    ]);
    let result = run(
        &Method::PUT,
        "/examplebucket/chunkObject.txt",
        None,
        &map,
        doc_now(),
    );
    assert_doc_principal(&result);
    let Ok(PayloadCheck::Chunked(mode)) = result.map(|a| a.payload) else {
        panic!("expected a chunked payload");
    };
    assert!(mode.is_signed());
    assert!(!mode.expects_trailers());
    assert_eq!(mode.decoded_length(), Some(66560));

    let data = vec![b'a'; 66560];
    let mut body = Vec::new();
    for (chunk, signature) in [
        (
            &data[..65536],
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        ),
        (
            &data[65536..],
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        ),
        (
            &[][..],
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ),
    ] {
        body.extend_from_slice(
            format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes(),
        );
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    assert_eq!(body.len(), 66824);
    let decoded = drain(frames_at(&body, &[100, 65600]), mode);
    assert_eq!(decoded.error, None);
    assert_eq!(decoded.data, data);
}

#[test]
fn streaming_content_hash_values_select_the_mode() {
    for (value, signed, trailers) in [
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", true, true),
        ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", false, true),
    ] {
        let map = signed_headers_request(&[
            ("x-amz-content-sha256", value),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ]);
        let result = run(&Method::PUT, "/bucket/key", None, &map, doc_now());
        match result.map(|a| a.payload) {
            Ok(PayloadCheck::Chunked(mode)) => {
                assert_eq!(mode.is_signed(), signed, "{value}");
                assert_eq!(mode.expects_trailers(), trailers, "{value}");
                assert_eq!(mode.declared_trailers(), ["x-amz-checksum-crc32"]);
            }
            other => panic!("{value}: {other:?}"),
        }
    }
    let map = signed_headers_request(&[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]);
    assert!(matches!(
        run(&Method::PUT, "/bucket/key", None, &map, doc_now()).map(|a| a.payload),
        Ok(PayloadCheck::None)
    ));
}

/// Signs a PUT /bucket/key with the documentation key, signing every header given plus
/// host and x-amz-date, the way an SDK would.
fn signed_headers_request(extra: &[(&str, &str)]) -> HeaderMap {
    signed_request_with(extra, DOC_SECRET_KEY, "/bucket/key", None)
}

fn signed_request_with(
    extra: &[(&str, &str)],
    secret: &str,
    path: &str,
    query: Option<&str>,
) -> HeaderMap {
    let mut map = headers(&[
        ("host", "s3.example.com"),
        ("x-amz-date", "20130524T000000Z"),
    ]);
    for (name, value) in extra {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    let mut names: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    let signed = names.join(";");
    let payload_hash = map
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(EMPTY_HASH)
        .to_string();
    let creq = canonical_request(
        "PUT",
        &canonical_uri(path),
        &canonical_query(query, false),
        &map,
        &signed,
        &payload_hash,
    );
    let sts = string_to_sign(
        "20130524T000000Z",
        "20130524/us-east-1/s3/aws4_request",
        &creq,
    );
    let key = SigningKey::derive(secret, "20130524", "us-east-1", "s3");
    let authorization = doc_authorization(&signed, &hex::encode(key.sign(sts.as_bytes())));
    map.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&authorization).expect("header value"),
    );
    map
}

// ---------------------------------------------------------------------------------------
// Refusals.

#[test]
fn tampered_signature_wrong_secret_and_unknown_key() {
    let mut tampered = GET_OBJECT_SIGNATURE.to_string();
    tampered.replace_range(0..1, "e");
    let result = run(
        &Method::GET,
        "/test.txt",
        None,
        &get_object_headers(&tampered),
        doc_now(),
    );
    assert_eq!(result.unwrap_err(), AuthError::SignatureDoesNotMatch);

    let map = signed_request_with(
        &[("x-amz-content-sha256", EMPTY_HASH)],
        "not-the-secret",
        "/bucket/key",
        None,
    );
    let result = run(&Method::PUT, "/bucket/key", None, &map, doc_now());
    assert_eq!(result.unwrap_err(), AuthError::SignatureDoesNotMatch);

    let req = AuthRequest {
        method: &Method::GET,
        raw_path: "/test.txt",
        raw_query: None,
        headers: &get_object_headers(GET_OBJECT_SIGNATURE),
    };
    let other_keys = OneKey {
        access_key: "AKIDOTHER",
        secret_key: DOC_SECRET_KEY,
    };
    assert_eq!(
        authenticate(&req, "us-east-1", doc_now(), &other_keys).unwrap_err(),
        AuthError::InvalidAccessKeyId
    );
}

#[test]
fn clock_skew_window_is_fifteen_minutes() {
    let map = get_object_headers(GET_OBJECT_SIGNATURE);
    for offset in [Duration::from_secs(14 * 60), Duration::from_secs(15 * 60)] {
        assert_doc_principal(&run(
            &Method::GET,
            "/test.txt",
            None,
            &map,
            doc_now() + offset,
        ));
        assert_doc_principal(&run(
            &Method::GET,
            "/test.txt",
            None,
            &map,
            doc_now() - offset,
        ));
    }
    for now in [
        doc_now() + Duration::from_secs(15 * 60 + 1),
        doc_now() - Duration::from_secs(15 * 60 + 1),
    ] {
        assert_eq!(
            run(&Method::GET, "/test.txt", None, &map, now).unwrap_err(),
            AuthError::RequestTimeTooSkewed
        );
    }
}

#[test]
fn credential_scope_must_name_this_region_and_s3() {
    let req_headers = get_object_headers(GET_OBJECT_SIGNATURE);
    let req = AuthRequest {
        method: &Method::GET,
        raw_path: "/test.txt",
        raw_query: None,
        headers: &req_headers,
    };
    match authenticate(&req, "eu-west-1", doc_now(), &doc_keys()) {
        Err(e @ AuthError::AuthorizationHeaderMalformed(_)) => assert_eq!(
            e.to_string(),
            "The authorization header is malformed; the region 'us-east-1' is wrong; \
             expecting 'eu-west-1'"
        ),
        other => panic!("expected AuthorizationHeaderMalformed, got {other:?}"),
    }
    let mut map = req_headers.clone();
    let wrong_service = doc_authorization(
        "host;range;x-amz-content-sha256;x-amz-date",
        GET_OBJECT_SIGNATURE,
    )
    .replace("/s3/", "/iam/");
    map.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&wrong_service).expect("value"),
    );
    assert!(matches!(
        run(&Method::GET, "/test.txt", None, &map, doc_now()),
        Err(AuthError::AuthorizationHeaderMalformed(m)) if m.contains("service 'iam'")
    ));
    let wrong_date = doc_authorization(
        "host;range;x-amz-content-sha256;x-amz-date",
        GET_OBJECT_SIGNATURE,
    )
    .replace("/20130524/", "/20130525/");
    map.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&wrong_date).expect("value"),
    );
    assert!(matches!(
        run(&Method::GET, "/test.txt", None, &map, doc_now()),
        Err(AuthError::AuthorizationHeaderMalformed(m)) if m.contains("Invalid credential date")
    ));
}

#[test]
fn malformed_authorization_headers() {
    for value in [
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Garbage",
    ] {
        let mut map = get_object_headers(GET_OBJECT_SIGNATURE);
        map.insert(http::header::AUTHORIZATION, HeaderValue::from_str(value).expect("value"));
        assert!(
            matches!(
                run(&Method::GET, "/test.txt", None, &map, doc_now()),
                Err(AuthError::AuthorizationHeaderMalformed(_))
            ),
            "{value}"
        );
    }
}

#[test]
fn unsupported_schemes_say_so() {
    for (value, code) in [
        ("AWS4-ECDSA-P256-SHA256 Credential=AK/20130524/s3/aws4_request, SignedHeaders=host, Signature=00", "NotImplemented"),
        ("Bearer token", "InvalidArgument"),
    ] {
        let map = headers(&[("host", "h"), ("authorization", value)]);
        let error = run(&Method::GET, "/", None, &map, doc_now()).unwrap_err();
        assert_eq!(error.code(), code, "{value}");
        if code == "NotImplemented" {
            assert_eq!(error.status(), 501);
            assert!(error.to_string().contains("not supported"), "{error}");
        }
    }
}

#[test]
fn anonymous_requests_carry_no_payload_check() {
    let map = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
    let result = run(
        &Method::GET,
        "/test.txt",
        Some("versionId=3"),
        &map,
        doc_now(),
    )
    .expect("anonymous is not an error here");
    assert_eq!(result.principal, Principal::Anonymous);
    assert!(matches!(result.payload, PayloadCheck::None));
}

#[test]
fn header_and_query_signature_together_are_refused() {
    let map = get_object_headers(GET_OBJECT_SIGNATURE);
    let error = run(
        &Method::GET,
        "/test.txt",
        Some(PRESIGNED_QUERY),
        &map,
        doc_now(),
    )
    .unwrap_err();
    assert_eq!(error.code(), "InvalidArgument");
}

#[test]
fn content_sha256_header_is_required_and_validated() {
    let mut map = get_object_headers(GET_OBJECT_SIGNATURE);
    map.remove("x-amz-content-sha256");
    assert!(matches!(
        run(&Method::GET, "/test.txt", None, &map, doc_now()),
        Err(AuthError::InvalidRequest(m)) if m.contains("x-amz-content-sha256")
    ));
    let map = signed_headers_request(&[("x-amz-content-sha256", "not-a-hash")]);
    assert!(matches!(
        run(&Method::PUT, "/bucket/key", None, &map, doc_now()),
        Err(AuthError::InvalidArgument(_))
    ));
    let map = signed_headers_request(&[(
        "x-amz-content-sha256",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
    )]);
    assert_eq!(
        run(&Method::PUT, "/bucket/key", None, &map, doc_now())
            .unwrap_err()
            .code(),
        "NotImplemented"
    );
}

#[test]
fn unsigned_amz_headers_and_unsigned_host_are_refused() {
    let mut map = get_object_headers(GET_OBJECT_SIGNATURE);
    map.insert("x-amz-meta-color", HeaderValue::from_static("red"));
    match run(&Method::GET, "/test.txt", None, &map, doc_now()) {
        Err(AuthError::AccessDenied(m)) => assert!(m.contains("x-amz-meta-color"), "{m}"),
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    // Headers that are not x-amz-* may stay unsigned.
    let mut map = get_object_headers(GET_OBJECT_SIGNATURE);
    map.insert("user-agent", HeaderValue::from_static("test"));
    assert_doc_principal(&run(&Method::GET, "/test.txt", None, &map, doc_now()));

    let mut map = get_object_headers(GET_OBJECT_SIGNATURE);
    map.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&doc_authorization(
            "range;x-amz-content-sha256;x-amz-date",
            GET_OBJECT_SIGNATURE,
        ))
        .expect("value"),
    );
    assert!(matches!(
        run(&Method::GET, "/test.txt", None, &map, doc_now()),
        Err(AuthError::AccessDenied(m)) if m.contains("host")
    ));
}

#[test]
fn date_header_alone_is_accepted() {
    let mut map = signed_headers_request(&[("x-amz-content-sha256", EMPTY_HASH)]);
    // Re-sign with Date instead of x-amz-date: the string to sign carries the same timestamp.
    map.remove("x-amz-date");
    map.remove(http::header::AUTHORIZATION);
    map.insert(
        "date",
        HeaderValue::from_static("Fri, 24 May 2013 00:00:00 GMT"),
    );
    let signed = "date;host;x-amz-content-sha256";
    let creq = canonical_request("PUT", "/bucket/key", "", &map, signed, EMPTY_HASH);
    let sts = string_to_sign(
        "20130524T000000Z",
        "20130524/us-east-1/s3/aws4_request",
        &creq,
    );
    let key = SigningKey::derive(DOC_SECRET_KEY, "20130524", "us-east-1", "s3");
    map.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&doc_authorization(
            signed,
            &hex::encode(key.sign(sts.as_bytes())),
        ))
        .expect("value"),
    );
    assert_doc_principal(&run(&Method::PUT, "/bucket/key", None, &map, doc_now()));

    map.remove("date");
    assert!(matches!(
        run(&Method::PUT, "/bucket/key", None, &map, doc_now()),
        Err(AuthError::AccessDenied(m)) if m.contains("Date")
    ));
}

#[test]
fn encoded_keys_and_queries_verify() {
    let query = Some("tagging&versionId=a%2Bb%20c");
    let map = signed_request_with(
        &[("x-amz-content-sha256", EMPTY_HASH)],
        DOC_SECRET_KEY,
        "/bucket/dir/na%20me%2B%E2%82%AC.txt",
        query,
    );
    assert_doc_principal(&run(
        &Method::PUT,
        "/bucket/dir/na%20me%2B%E2%82%AC.txt",
        query,
        &map,
        doc_now(),
    ));
}

#[test]
fn errors_never_reveal_the_secret_or_the_expected_signature() {
    let mut tampered = GET_OBJECT_SIGNATURE.to_string();
    tampered.replace_range(0..1, "e");
    let errors = [
        run(
            &Method::GET,
            "/test.txt",
            None,
            &get_object_headers(&tampered),
            doc_now(),
        ),
        presigned(&PRESIGNED_QUERY.replace("aeeed9bb", "aeeed9bc"), doc_now()),
    ];
    for error in errors {
        let error = error.unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(DOC_SECRET_KEY));
        assert!(!shown.contains(GET_OBJECT_SIGNATURE));
        assert!(!shown.contains("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"));
        assert_eq!(error.status(), 403);
    }
}

#[test]
fn error_codes_and_statuses() {
    let cases = [
        (AuthError::AccessDenied(String::new()), "AccessDenied", 403),
        (AuthError::InvalidAccessKeyId, "InvalidAccessKeyId", 403),
        (
            AuthError::SignatureDoesNotMatch,
            "SignatureDoesNotMatch",
            403,
        ),
        (AuthError::RequestTimeTooSkewed, "RequestTimeTooSkewed", 403),
        (
            AuthError::AuthorizationHeaderMalformed(String::new()),
            "AuthorizationHeaderMalformed",
            400,
        ),
        (
            AuthError::AuthorizationQueryParametersError(String::new()),
            "AuthorizationQueryParametersError",
            400,
        ),
        (
            AuthError::XAmzContentSHA256Mismatch,
            "XAmzContentSHA256Mismatch",
            400,
        ),
        (
            AuthError::InvalidArgument(String::new()),
            "InvalidArgument",
            400,
        ),
        (
            AuthError::InvalidRequest(String::new()),
            "InvalidRequest",
            400,
        ),
        (
            AuthError::IncompleteBody(String::new()),
            "IncompleteBody",
            400,
        ),
        (
            AuthError::NotImplemented(String::new()),
            "NotImplemented",
            501,
        ),
    ];
    for (error, code, status) in cases {
        assert_eq!(error.code(), code);
        assert_eq!(error.status(), status, "{code}");
    }
}
