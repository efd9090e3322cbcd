//! Integrity checks on upload: the five `x-amz-checksum-*` algorithms (as the SDK sends
//! them, in aws-chunked trailers), checksum headers, trailers and Content-MD5 — a mismatch
//! is refused and stores nothing.

mod common;

use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use base64::Engine;
use common::{exists, pattern, TestServer};

const B: &str = "sums";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The base64 checksum S3 reports for `data`, computed independently of the server.
fn expected(alg: &ChecksumAlgorithm, data: &[u8]) -> String {
    use sha1::Digest as _;
    match alg {
        ChecksumAlgorithm::Crc32 => b64(&crc32fast::hash(data).to_be_bytes()),
        ChecksumAlgorithm::Crc32C => b64(&crc32c::crc32c(data).to_be_bytes()),
        ChecksumAlgorithm::Crc64Nvme => {
            let mut d = crc64fast_nvme::Digest::new();
            d.write(data);
            b64(&d.sum64().to_be_bytes())
        }
        ChecksumAlgorithm::Sha1 => b64(&sha1::Sha1::digest(data)),
        ChecksumAlgorithm::Sha256 => b64(&sha2::Sha256::digest(data)),
        other => panic!("no test value for {other:?}"),
    }
}

macro_rules! checksum_of {
    ($out:expr, $alg:expr) => {
        match $alg {
            ChecksumAlgorithm::Crc32 => $out.checksum_crc32().map(str::to_string),
            ChecksumAlgorithm::Crc32C => $out.checksum_crc32_c().map(str::to_string),
            ChecksumAlgorithm::Crc64Nvme => $out.checksum_crc64_nvme().map(str::to_string),
            ChecksumAlgorithm::Sha1 => $out.checksum_sha1().map(str::to_string),
            ChecksumAlgorithm::Sha256 => $out.checksum_sha256().map(str::to_string),
            _ => None,
        }
    };
}

const ALGORITHMS: [ChecksumAlgorithm; 5] = [
    ChecksumAlgorithm::Crc32,
    ChecksumAlgorithm::Crc32C,
    ChecksumAlgorithm::Crc64Nvme,
    ChecksumAlgorithm::Sha1,
    ChecksumAlgorithm::Sha256,
];

#[tokio::test]
async fn every_checksum_algorithm_round_trips() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    // One inline-sized and one file-backed body per algorithm.
    for (i, alg) in ALGORITHMS.iter().enumerate() {
        for size in [1000usize, 300_000] {
            let data = pattern(size, i as u8);
            let want = expected(alg, &data);
            let key = format!("{}-{size}", alg.as_str());
            let put = client
                .put_object()
                .bucket(B)
                .key(&key)
                .checksum_algorithm(alg.clone())
                .body(data.clone().into())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{key}: {e:?}"));
            assert_eq!(
                checksum_of!(put, alg),
                Some(want.clone()),
                "PUT answer for {key}"
            );

            let get = client
                .get_object()
                .bucket(B)
                .key(&key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            assert_eq!(checksum_of!(get, alg), Some(want.clone()), "GET {key}");
            assert_eq!(
                get.body.collect().await.unwrap().into_bytes().as_ref(),
                &data[..]
            );
            let head = client
                .head_object()
                .bucket(B)
                .key(&key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            assert_eq!(checksum_of!(head, alg), Some(want.clone()), "HEAD {key}");
        }
    }
    // Listings name the algorithm.
    let listed = client.list_objects_v2().bucket(B).send().await.unwrap();
    assert!(
        listed
            .contents()
            .iter()
            .all(|o| o.checksum_algorithm().len() == 1),
        "{listed:?}"
    );
}

#[tokio::test]
async fn checksums_are_returned_only_when_asked_for() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    client
        .put_object()
        .bucket(B)
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(b"abc".to_vec().into())
        .send()
        .await
        .unwrap();
    let plain = server.raw("GET", "/sums/k").send().await;
    assert!(plain.header("x-amz-checksum-sha256").is_none());
    let asked = server
        .raw("GET", "/sums/k")
        .header("x-amz-checksum-mode", "ENABLED")
        .send()
        .await;
    assert_eq!(
        asked.header("x-amz-checksum-sha256"),
        Some(expected(&ChecksumAlgorithm::Sha256, b"abc").as_str())
    );
    // A range is not the whole object: its checksum would not describe it.
    let ranged = server
        .raw("GET", "/sums/k")
        .header("x-amz-checksum-mode", "ENABLED")
        .header("range", "bytes=0-0")
        .send()
        .await;
    assert_eq!(ranged.status, 206);
    assert!(ranged.header("x-amz-checksum-sha256").is_none());
}

#[tokio::test]
async fn a_checksum_header_is_verified() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let data = pattern(5000, 1);

    let good = server
        .raw("PUT", "/sums/good")
        .header(
            "x-amz-checksum-crc32",
            &expected(&ChecksumAlgorithm::Crc32, &data),
        )
        .body(data.clone())
        .send()
        .await;
    assert_eq!(good.status, 200, "{}", good.text());
    let got = client
        .get_object()
        .bucket(B)
        .key("good")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.checksum_crc32(),
        Some(expected(&ChecksumAlgorithm::Crc32, &data).as_str())
    );

    let wrong = server
        .raw("PUT", "/sums/bad")
        .header(
            "x-amz-checksum-crc32",
            &expected(&ChecksumAlgorithm::Crc32, b"other"),
        )
        .body(data.clone())
        .send()
        .await;
    assert_eq!(
        (wrong.status, wrong.code().as_str()),
        (400, "BadDigest"),
        "{}",
        wrong.text()
    );
    assert!(
        !exists(&client, B, "bad").await,
        "a body that fails its checksum is not stored"
    );

    let wrong = server
        .raw("PUT", "/sums/bad")
        .header(
            "x-amz-checksum-sha256",
            &expected(&ChecksumAlgorithm::Sha256, b"other"),
        )
        .body(data.clone())
        .send()
        .await;
    assert_eq!((wrong.status, wrong.code().as_str()), (400, "BadDigest"));
    assert!(!exists(&client, B, "bad").await);

    // An overwrite that fails its checksum leaves the previous object in place.
    let wrong = server
        .raw("PUT", "/sums/good")
        .header(
            "x-amz-checksum-crc32c",
            &expected(&ChecksumAlgorithm::Crc32C, b"other"),
        )
        .body(b"replacement".to_vec())
        .send()
        .await;
    assert_eq!(wrong.code(), "BadDigest");
    assert_eq!(common::get_bytes(&client, B, "good").await, data);

    let garbage = server
        .raw("PUT", "/sums/bad")
        .header("x-amz-checksum-crc32", "not base64!")
        .body(data.clone())
        .send()
        .await;
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    assert!(!exists(&client, B, "bad").await);
}

#[tokio::test]
async fn a_wrong_checksum_in_a_trailer_is_refused() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let data = pattern(2000, 2);
    for (key, value, ok) in [
        ("t-good", expected(&ChecksumAlgorithm::Crc32, &data), true),
        ("t-bad", expected(&ChecksumAlgorithm::Crc32, b"x"), false),
    ] {
        let raw = server
            .raw("PUT", &format!("/sums/{key}"))
            .header("content-encoding", "aws-chunked")
            .header("x-amz-decoded-content-length", &data.len().to_string())
            .header("x-amz-trailer", "x-amz-checksum-crc32")
            .content_sha256("STREAMING-UNSIGNED-PAYLOAD-TRAILER");
        let mut body = format!("{:x}\r\n", data.len()).into_bytes();
        body.extend_from_slice(&data);
        body.extend_from_slice(format!("\r\n0\r\nx-amz-checksum-crc32:{value}\r\n\r\n").as_bytes());
        let (headers, _) = raw.signed_headers();
        let resp = raw.send_with(headers, body).await;
        if ok {
            assert_eq!(resp.status, 200, "{}", resp.text());
            assert_eq!(common::get_bytes(&client, B, key).await, data);
        } else {
            assert_eq!(
                (resp.status, resp.code().as_str()),
                (400, "BadDigest"),
                "{}",
                resp.text()
            );
            assert!(!exists(&client, B, key).await);
        }
    }
}

#[tokio::test]
async fn content_md5_is_verified() {
    use md5::Digest;
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let data = pattern(4000, 3);

    let good = server
        .raw("PUT", "/sums/md5-good")
        .header("content-md5", &b64(&md5::Md5::digest(&data)))
        .body(data.clone())
        .send()
        .await;
    assert_eq!(good.status, 200, "{}", good.text());

    let wrong = server
        .raw("PUT", "/sums/md5-bad")
        .header("content-md5", &b64(&md5::Md5::digest(b"other")))
        .body(data.clone())
        .send()
        .await;
    assert_eq!(
        (wrong.status, wrong.code().as_str()),
        (400, "BadDigest"),
        "{}",
        wrong.text()
    );
    assert!(!exists(&client, B, "md5-bad").await);

    for invalid in ["not-base64!", "AAAA", ""] {
        let resp = server
            .raw("PUT", "/sums/md5-invalid")
            .header("content-md5", invalid)
            .body(data.clone())
            .send()
            .await;
        assert_eq!(
            (resp.status, resp.code().as_str()),
            (400, "InvalidDigest"),
            "Content-MD5 {invalid:?}: {}",
            resp.text()
        );
    }
    assert!(!exists(&client, B, "md5-invalid").await);

    // Through the SDK, on a file-backed body.
    let big = pattern(400_000, 4);
    let e = client
        .put_object()
        .bucket(B)
        .key("md5-sdk")
        .content_md5(b64(&md5::Md5::digest(b"nope")))
        .body(big.into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::s3_error(&e), (400, "BadDigest".to_string()));
    assert!(!exists(&client, B, "md5-sdk").await);
}
