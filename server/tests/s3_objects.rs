//! Object operations through the AWS SDK (and raw requests where the SDK cannot express
//! them): put/get/head/delete, metadata, ranges, response overrides, conditional reads,
//! CopyObject, DeleteObjects, awkward keys and virtual-hosted-style addressing.

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{Delete, MetadataDirective, ObjectIdentifier};
use common::{
    assert_s3_error, encode_key, exists, get_bytes, md5_hex, pattern, put_bytes, s3_error,
    TestServer,
};

const B: &str = "objects";

#[tokio::test]
async fn put_get_head_and_delete_an_object() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let data = pattern(10_000, 1);

    let etag = put_bytes(&client, B, "docs/report.bin", data.clone()).await;
    assert_eq!(
        etag,
        format!("\"{}\"", md5_hex(&data)),
        "the ETag of a simple PUT is the quoted MD5"
    );

    assert_eq!(get_bytes(&client, B, "docs/report.bin").await, data);
    let head = client
        .head_object()
        .bucket(B)
        .key("docs/report.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(10_000));
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert!(head.last_modified().is_some());

    client
        .delete_object()
        .bucket(B)
        .key("docs/report.bin")
        .send()
        .await
        .expect("DeleteObject succeeds");
    assert_s3_error(
        client
            .get_object()
            .bucket(B)
            .key("docs/report.bin")
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    assert_s3_error(
        client
            .head_object()
            .bucket(B)
            .key("docs/report.bin")
            .send()
            .await,
        404,
        "NotFound",
    );
    client
        .delete_object()
        .bucket(B)
        .key("docs/report.bin")
        .send()
        .await
        .expect("deleting a missing key is not an error");
}

#[tokio::test]
async fn an_object_stored_without_content_type_gets_the_s3_default() {
    let server = TestServer::start();
    server.bucket(B).await;
    let put = server
        .raw("PUT", "/objects/plain")
        .body(b"abc".to_vec())
        .send()
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    let get = server.raw("GET", "/objects/plain").send().await;
    assert_eq!(get.header("content-type"), Some("binary/octet-stream"));
    assert_eq!(get.body, b"abc");
}

#[tokio::test]
async fn an_empty_object_round_trips() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let etag = put_bytes(&client, B, "empty", Vec::new()).await;
    assert_eq!(etag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
    assert_eq!(get_bytes(&client, B, "empty").await, b"");
    assert_eq!(
        client
            .head_object()
            .bucket(B)
            .key("empty")
            .send()
            .await
            .unwrap()
            .content_length(),
        Some(0)
    );
}

#[tokio::test]
async fn overwriting_replaces_content_and_metadata() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    client
        .put_object()
        .bucket(B)
        .key("k")
        .metadata("old", "1")
        .body(b"first".to_vec().into())
        .send()
        .await
        .unwrap();
    client
        .put_object()
        .bucket(B)
        .key("k")
        .metadata("new", "2")
        .body(b"second!".to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&client, B, "k").await, b"second!");
    let head = client
        .head_object()
        .bucket(B)
        .key("k")
        .send()
        .await
        .unwrap();
    let meta = head.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.get("new").map(String::as_str), Some("2"));
    assert!(
        !meta.contains_key("old"),
        "metadata of the previous version is gone: {meta:?}"
    );
}

#[tokio::test]
async fn metadata_and_content_headers_round_trip() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let expires = DateTime::from_secs(1_900_000_000);
    client
        .put_object()
        .bucket(B)
        .key("styled.txt")
        .body(b"hello".to_vec().into())
        .content_type("text/plain; charset=utf-8")
        .content_encoding("gzip")
        .content_disposition("attachment; filename=\"report.txt\"")
        .content_language("fr-CA")
        .cache_control("max-age=3600, public")
        .expires(expires)
        .metadata("color", "blue")
        .metadata("owner-name", "Ada Lovelace")
        .send()
        .await
        .unwrap();

    for head in [true, false] {
        let (ct, ce, cd, cl, cc, exp, meta) = if head {
            let o = client
                .head_object()
                .bucket(B)
                .key("styled.txt")
                .send()
                .await
                .unwrap();
            #[allow(deprecated)]
            let exp = o.expires().cloned();
            (
                o.content_type,
                o.content_encoding,
                o.content_disposition,
                o.content_language,
                o.cache_control,
                exp,
                o.metadata,
            )
        } else {
            let o = client
                .get_object()
                .bucket(B)
                .key("styled.txt")
                .send()
                .await
                .unwrap();
            #[allow(deprecated)]
            let exp = o.expires().cloned();
            (
                o.content_type,
                o.content_encoding,
                o.content_disposition,
                o.content_language,
                o.cache_control,
                exp,
                o.metadata,
            )
        };
        assert_eq!(ct.as_deref(), Some("text/plain; charset=utf-8"));
        assert_eq!(
            ce.as_deref(),
            Some("gzip"),
            "aws-chunked is a transfer detail and not stored"
        );
        assert_eq!(cd.as_deref(), Some("attachment; filename=\"report.txt\""));
        assert_eq!(cl.as_deref(), Some("fr-CA"));
        assert_eq!(cc.as_deref(), Some("max-age=3600, public"));
        assert_eq!(exp, Some(expires));
        let meta = meta.unwrap_or_default();
        assert_eq!(meta.get("color").map(String::as_str), Some("blue"));
        assert_eq!(
            meta.get("owner-name").map(String::as_str),
            Some("Ada Lovelace")
        );
        assert_eq!(meta.len(), 2, "{meta:?}");
    }
}

#[tokio::test]
async fn ranges_return_the_requested_bytes() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let data = pattern(1000, 2);
    put_bytes(&client, B, "r", data.clone()).await;

    for (range, start, end) in [
        ("bytes=0-9", 0usize, 10usize),
        ("bytes=100-199", 100, 200),
        ("bytes=-10", 990, 1000),
        ("bytes=900-", 900, 1000),
        ("bytes=990-5000", 990, 1000),
    ] {
        let out = client
            .get_object()
            .bucket(B)
            .key("r")
            .range(range)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{range}: {e:?}"));
        assert_eq!(
            out.content_range(),
            Some(format!("bytes {}-{}/1000", start, end - 1).as_str()),
            "{range}"
        );
        assert_eq!(out.content_length(), Some((end - start) as i64), "{range}");
        let body = out.body.collect().await.unwrap().into_bytes();
        assert_eq!(&body[..], &data[start..end], "{range}");
    }

    let resp = server
        .raw("GET", "/objects/r")
        .header("range", "bytes=0-0")
        .send()
        .await;
    assert_eq!(resp.status, 206);
    assert_eq!(resp.body, &data[..1]);

    assert_s3_error(
        client
            .get_object()
            .bucket(B)
            .key("r")
            .range("bytes=1000-")
            .send()
            .await,
        416,
        "InvalidRange",
    );
    assert_s3_error(
        client
            .get_object()
            .bucket(B)
            .key("r")
            .range("bytes=5000-6000")
            .send()
            .await,
        416,
        "InvalidRange",
    );
}

#[tokio::test]
async fn response_overrides_replace_the_returned_headers() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    client
        .put_object()
        .bucket(B)
        .key("o")
        .content_type("text/plain")
        .body(b"data".to_vec().into())
        .send()
        .await
        .unwrap();
    let out = client
        .get_object()
        .bucket(B)
        .key("o")
        .response_content_type("application/json")
        .response_content_disposition("attachment; filename=\"x.json\"")
        .response_content_language("de")
        .response_cache_control("no-cache")
        .response_content_encoding("identity")
        .response_expires(DateTime::from_secs(2_000_000_000))
        .send()
        .await
        .unwrap();
    assert_eq!(out.content_type(), Some("application/json"));
    assert_eq!(
        out.content_disposition(),
        Some("attachment; filename=\"x.json\"")
    );
    assert_eq!(out.content_language(), Some("de"));
    assert_eq!(out.cache_control(), Some("no-cache"));
    assert_eq!(out.content_encoding(), Some("identity"));
    #[allow(deprecated)]
    let expires = out.expires().cloned();
    assert_eq!(expires, Some(DateTime::from_secs(2_000_000_000)));
    assert_eq!(
        out.body.collect().await.unwrap().into_bytes().as_ref(),
        b"data"
    );
    // The override does not change what is stored.
    let head = client
        .head_object()
        .bucket(B)
        .key("o")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/plain"));
}

#[tokio::test]
async fn conditional_gets_answer_412_and_304() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let etag = put_bytes(&client, B, "c", b"conditional".to_vec()).await;
    let modified = client
        .head_object()
        .bucket(B)
        .key("c")
        .send()
        .await
        .unwrap()
        .last_modified
        .unwrap();
    let modified_t = SystemTime::try_from(modified).unwrap();
    let before = DateTime::from(modified_t - Duration::from_secs(3600));
    let after = DateTime::from(modified_t + Duration::from_secs(3600));
    let get = || client.get_object().bucket(B).key("c");

    // Conditions that hold.
    get()
        .if_match(&etag)
        .send()
        .await
        .expect("If-Match with the current ETag");
    get().if_match("*").send().await.expect("If-Match: *");
    get()
        .if_none_match("\"0123456789abcdef0123456789abcdef\"")
        .send()
        .await
        .expect("If-None-Match with another ETag");
    get()
        .if_modified_since(before)
        .send()
        .await
        .expect("modified since an earlier time");
    get()
        .if_unmodified_since(after)
        .send()
        .await
        .expect("unmodified since a later time");

    // Conditions that fail.
    assert_s3_error(
        get()
            .if_match("\"0123456789abcdef0123456789abcdef\"")
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    assert_s3_error(
        get().if_unmodified_since(before).send().await,
        412,
        "PreconditionFailed",
    );
    let e = get().if_none_match(&etag).send().await.unwrap_err();
    assert_eq!(
        s3_error(&e).0,
        304,
        "If-None-Match with the current ETag: {e:?}"
    );
    let e = get().if_modified_since(after).send().await.unwrap_err();
    assert_eq!(s3_error(&e).0, 304, "If-Modified-Since a later time: {e:?}");
    let e = client
        .head_object()
        .bucket(B)
        .key("c")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(s3_error(&e).0, 304);
    let e = client
        .head_object()
        .bucket(B)
        .key("c")
        .if_match("\"nope\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(s3_error(&e).0, 412, "HEAD with a failing If-Match");

    // RFC 7232: If-Match wins over If-Unmodified-Since, If-None-Match over If-Modified-Since.
    get()
        .if_match(&etag)
        .if_unmodified_since(before)
        .send()
        .await
        .expect("If-Match true overrides If-Unmodified-Since");
    let e = get()
        .if_none_match(&etag)
        .if_modified_since(before)
        .send()
        .await
        .unwrap_err();
    assert_eq!(s3_error(&e).0, 304);
}

#[tokio::test]
async fn not_modified_carries_the_validators() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let etag = put_bytes(&client, B, "c", b"conditional".to_vec()).await;
    let head = server.raw("HEAD", "/objects/c").send().await;
    let last_modified = head
        .header("last-modified")
        .expect("HEAD has Last-Modified")
        .to_string();

    // RFC 7232 4.1 (and S3): a 304 carries ETag and Last-Modified, and no body, so a cache
    // can refresh what it holds.
    for method in ["GET", "HEAD"] {
        let resp = server
            .raw(method, "/objects/c")
            .header("if-none-match", &etag)
            .send()
            .await;
        assert_eq!(resp.status, 304, "{method}");
        assert!(resp.body.is_empty(), "{method}");
        assert_eq!(
            resp.header("etag"),
            Some(etag.as_str()),
            "{method} 304 ETag"
        );
        assert_eq!(
            resp.header("last-modified"),
            Some(last_modified.as_str()),
            "{method} 304 Last-Modified"
        );
    }
}

#[tokio::test]
async fn copy_object_copies_or_replaces_metadata() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let data = pattern(300_000, 3);
    let etag = {
        let out = client
            .put_object()
            .bucket(B)
            .key("src")
            .content_type("image/png")
            .metadata("origin", "camera")
            .body(data.clone().into())
            .send()
            .await
            .unwrap();
        out.e_tag.unwrap()
    };

    let copied = client
        .copy_object()
        .bucket(B)
        .key("dst-copy")
        .copy_source(format!("{B}/src"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        copied.copy_object_result().and_then(|r| r.e_tag()),
        Some(etag.as_str())
    );
    assert_eq!(get_bytes(&client, B, "dst-copy").await, data);
    let head = client
        .head_object()
        .bucket(B)
        .key("dst-copy")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/png"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("camera")
    );

    client
        .copy_object()
        .bucket(B)
        .key("dst-replace")
        .copy_source(format!("{B}/src"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/csv")
        .metadata("stage", "processed")
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&client, B, "dst-replace").await, data);
    let head = client
        .head_object()
        .bucket(B)
        .key("dst-replace")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/csv"));
    let meta = head.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.get("stage").map(String::as_str), Some("processed"));
    assert!(
        !meta.contains_key("origin"),
        "REPLACE drops the source metadata: {meta:?}"
    );

    // Copying onto itself needs REPLACE.
    assert_s3_error(
        client
            .copy_object()
            .bucket(B)
            .key("src")
            .copy_source(format!("{B}/src"))
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    client
        .copy_object()
        .bucket(B)
        .key("src")
        .copy_source(format!("{B}/src"))
        .metadata_directive(MetadataDirective::Replace)
        .metadata("origin", "scanner")
        .send()
        .await
        .expect("copying onto itself with REPLACE updates the metadata");
    let head = client
        .head_object()
        .bucket(B)
        .key("src")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("scanner")
    );
    assert_eq!(get_bytes(&client, B, "src").await, data);

    // Copy-source conditions.
    assert_s3_error(
        client
            .copy_object()
            .bucket(B)
            .key("dst-cond")
            .copy_source(format!("{B}/src"))
            .copy_source_if_match("\"0123456789abcdef0123456789abcdef\"")
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    assert!(
        !exists(&client, B, "dst-cond").await,
        "a failed conditional copy writes nothing"
    );
    client
        .copy_object()
        .bucket(B)
        .key("dst-cond")
        .copy_source(format!("{B}/src"))
        .copy_source_if_match(&etag)
        .send()
        .await
        .expect("x-amz-copy-source-if-match with the source ETag");

    assert_s3_error(
        client
            .copy_object()
            .bucket(B)
            .key("x")
            .copy_source(format!("{B}/nope"))
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    assert_s3_error(
        client
            .copy_object()
            .bucket(B)
            .key("x")
            .copy_source("nobucket/src")
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
}

#[tokio::test]
async fn copy_object_across_buckets_with_an_encoded_source_key() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    client.create_bucket().bucket("other").send().await.unwrap();
    let key = "dir/a file+ü%.txt";
    put_bytes(&client, B, key, b"payload".to_vec()).await;
    client
        .copy_object()
        .bucket("other")
        .key("copy")
        .copy_source(format!("{B}/{}", encode_key(key)))
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&client, "other", "copy").await, b"payload");
}

#[tokio::test]
async fn delete_objects_quiet_and_verbose() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    for k in ["a", "b", "c", "d"] {
        put_bytes(&client, B, k, k.as_bytes().to_vec()).await;
    }
    let ids = |keys: &[&str]| {
        keys.iter()
            .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
            .collect::<Vec<_>>()
    };

    let verbose = client
        .delete_objects()
        .bucket(B)
        .delete(
            Delete::builder()
                .set_objects(Some(ids(&["a", "b", "never-existed"])))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let mut deleted: Vec<_> = verbose.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    assert_eq!(
        deleted,
        ["a", "b", "never-existed"],
        "S3 reports a missing key as deleted"
    );
    assert!(verbose.errors().is_empty());

    let quiet = client
        .delete_objects()
        .bucket(B)
        .delete(
            Delete::builder()
                .set_objects(Some(ids(&["c"])))
                .quiet(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        quiet.deleted().is_empty(),
        "quiet mode reports only errors: {quiet:?}"
    );
    assert!(quiet.errors().is_empty());

    let left: Vec<String> = common::all_keys(&client, B).await;
    assert_eq!(left, ["d"]);
}

#[tokio::test]
async fn delete_objects_with_malformed_xml_is_refused() {
    let server = TestServer::start();
    server.bucket(B).await;
    let body = b"<Delete><Object><Key>a</Key></Object".to_vec();
    let resp = server
        .raw("POST", "/objects")
        .query("delete")
        .header("content-md5", &base64_md5(&body))
        .body(body)
        .send()
        .await;
    assert_eq!(
        (resp.status, resp.code().as_str()),
        (400, "MalformedXML"),
        "{}",
        resp.text()
    );
}

fn base64_md5(data: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}

const AWKWARD_KEYS: &[&str] = &[
    "../escape",
    "a/../../b",
    "dir//double//slash",
    "/leading-slash",
    "//two-leading",
    "./dot",
    "trailing/",
    "with space",
    "  spaces  around  ",
    "ünïcødé/日本語/ファイル",
    "emoji 🦀",
    "100%",
    "%2F-not-a-slash",
    "a+b",
    "question?mark=1&x",
    "hash#tag",
    "semi;colon,comma",
    "quote\"and'apostrophe",
    "tilde~and*star",
    "back\\slash",
    "<xml>&amp;",
];

#[tokio::test]
async fn awkward_keys_round_trip_exactly() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    for (i, key) in AWKWARD_KEYS.iter().enumerate() {
        let body = format!("body of key {i}");
        put_bytes(&client, B, key, body.clone().into_bytes()).await;
        assert_eq!(
            get_bytes(&client, B, key).await,
            body.as_bytes(),
            "GET {key:?}"
        );
        let head = client
            .head_object()
            .bucket(B)
            .key(*key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("HEAD {key:?}: {e:?}"));
        assert_eq!(head.content_length(), Some(body.len() as i64));
    }
    let mut expected: Vec<String> = AWKWARD_KEYS.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(
        common::all_keys(&client, B).await,
        expected,
        "the listing holds every key exactly"
    );

    // encoding-type=url: the Rust SDK hands the keys over still encoded.
    let listed = client
        .list_objects_v2()
        .bucket(B)
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.encoding_type().map(|e| e.as_str()), Some("url"));
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .map(common::decode_key)
        .collect();
    assert!(
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .all(|k| !k.contains(' ') && k.is_ascii()),
        "keys are URL-encoded"
    );
    assert_eq!(keys, expected);

    // No key escaped the drive folder.
    assert!(!server.drive().parent().unwrap().join("escape").exists());
    assert!(!server.drive().join("escape").exists());

    for key in AWKWARD_KEYS {
        client
            .delete_object()
            .bucket(B)
            .key(*key)
            .send()
            .await
            .unwrap();
    }
    assert!(common::all_keys(&client, B).await.is_empty());
}

#[tokio::test]
async fn keys_longer_than_1024_bytes_are_refused() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let longest = "k".repeat(1024);
    put_bytes(&client, B, &longest, b"ok".to_vec()).await;
    assert_eq!(get_bytes(&client, B, &longest).await, b"ok");
    // 1025 bytes, counted in UTF-8 bytes, not characters.
    let too_long = format!("{}é", "k".repeat(1023));
    assert_eq!(too_long.len(), 1025);
    assert_s3_error(
        client
            .put_object()
            .bucket(B)
            .key(&too_long)
            .body(b"x".to_vec().into())
            .send()
            .await,
        400,
        "KeyTooLongError",
    );
    assert_s3_error(
        client
            .put_object()
            .bucket(B)
            .key("k".repeat(1025))
            .body(b"x".to_vec().into())
            .send()
            .await,
        400,
        "KeyTooLongError",
    );
    assert_eq!(common::all_keys(&client, B).await, [longest]);
}

#[tokio::test]
async fn missing_content_length_is_refused() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    // No Content-Length and no Transfer-Encoding: S3 answers 411 MissingContentLength.
    let answer = server
        .raw("PUT", "/objects/nolen")
        .content_sha256("UNSIGNED-PAYLOAD")
        .send_tcp(None, b"");
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
    assert!(
        answer.contains("<Code>MissingContentLength</Code>"),
        "{answer}"
    );
    assert!(!exists(&client, B, "nolen").await);
}

#[tokio::test]
async fn virtual_hosted_style_requests_address_the_bucket_by_host() {
    let server = TestServer::start();
    let client = server.bucket("vhost").await;
    let host = format!("vhost.localhost:{}", server.port);

    let put = server
        .raw("PUT", "/dir/file.txt")
        .host(&host)
        .body(b"hosted".to_vec())
        .send()
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(
        get_bytes(&client, "vhost", "dir/file.txt").await,
        b"hosted",
        "the object landed in the host's bucket"
    );

    let get = server.raw("GET", "/dir/file.txt").host(&host).send().await;
    assert_eq!(get.status, 200, "{}", get.text());
    assert_eq!(get.body, b"hosted");

    let list = server
        .raw("GET", "/")
        .query("list-type=2")
        .host(&host)
        .send()
        .await;
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(list.xml("Key").as_deref(), Some("dir/file.txt"));
    assert_eq!(list.xml("Name").as_deref(), Some("vhost"));

    let missing = server
        .raw("GET", "/x")
        .host(&format!("nobucket.localhost:{}", server.port))
        .send()
        .await;
    assert_eq!(
        (missing.status, missing.code().as_str()),
        (404, "NoSuchBucket")
    );
}

#[tokio::test]
async fn get_of_a_missing_key_names_the_key_in_the_error() {
    let server = TestServer::start();
    server.bucket(B).await;
    let resp = server.raw("GET", "/objects/no/such%20key").send().await;
    assert_eq!((resp.status, resp.code().as_str()), (404, "NoSuchKey"));
    assert_eq!(resp.xml("Key").as_deref(), Some("no/such key"));
    assert_eq!(
        resp.xml("Resource").as_deref(),
        Some("/objects/no/such key")
    );
}
