//! Multipart uploads: create, upload (and copy) parts, complete, abort, list, the errors of
//! a bad completion, part reads and composite checksums.

mod common;

use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use common::{assert_s3_error, get_bytes, md5_hex, pattern, put_bytes, TestServer};

const B: &str = "multi";
const MIB: usize = 1024 * 1024;

/// The S3 multipart ETag: MD5 of the concatenated binary part MD5s, then `-N`.
fn multipart_etag(parts: &[&[u8]]) -> String {
    use md5::Digest;
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(&md5::Md5::digest(p));
    }
    format!(
        "\"{}-{}\"",
        hex::encode(md5::Md5::digest(&all)),
        parts.len()
    )
}

fn completed(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(*e).build())
                .collect(),
        ))
        .build()
}

async fn create(client: &aws_sdk_s3::Client, key: &str) -> String {
    client
        .create_multipart_upload()
        .bucket(B)
        .key(key)
        .send()
        .await
        .unwrap()
        .upload_id
        .expect("an upload id")
}

async fn part(client: &aws_sdk_s3::Client, key: &str, id: &str, n: i32, data: &[u8]) -> String {
    client
        .upload_part()
        .bucket(B)
        .key(key)
        .upload_id(id)
        .part_number(n)
        .body(data.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("UploadPart {n}: {e:?}"))
        .e_tag
        .expect("UploadPart answers an ETag")
}

#[tokio::test]
async fn complete_assembles_the_parts_with_a_multipart_etag() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let p1 = pattern(5 * MIB, 1);
    let p2 = pattern(100_000, 2);
    let id = create(&client, "big").await;
    let e1 = part(&client, "big", &id, 1, &p1).await;
    let e2 = part(&client, "big", &id, 2, &p2).await;
    assert_eq!(
        e1,
        format!("\"{}\"", md5_hex(&p1)),
        "a part's ETag is its MD5"
    );

    assert!(
        !common::exists(&client, B, "big").await,
        "an unfinished upload is not an object"
    );
    let done = client
        .complete_multipart_upload()
        .bucket(B)
        .key("big")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1), (2, &e2)]))
        .send()
        .await
        .unwrap();
    let expected_etag = multipart_etag(&[&p1, &p2]);
    assert_eq!(done.e_tag(), Some(expected_etag.as_str()));
    assert_eq!(done.key(), Some("big"));
    assert_eq!(done.bucket(), Some(B));

    let whole = get_bytes(&client, B, "big").await;
    assert_eq!(whole.len(), p1.len() + p2.len());
    assert!(
        whole[..p1.len()] == p1[..] && whole[p1.len()..] == p2[..],
        "the object is the parts in order"
    );
    let head = client
        .head_object()
        .bucket(B)
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(head.e_tag(), Some(expected_etag.as_str()));
    assert_eq!(head.content_length(), Some((p1.len() + p2.len()) as i64));

    // Reading by part number.
    for (n, data) in [(1, &p1), (2, &p2)] {
        let out = client
            .get_object()
            .bucket(B)
            .key("big")
            .part_number(n)
            .send()
            .await
            .unwrap();
        assert_eq!(out.parts_count(), Some(2));
        assert_eq!(out.content_length(), Some(data.len() as i64));
        assert_eq!(
            out.body.collect().await.unwrap().into_bytes().as_ref(),
            &data[..],
            "part {n}"
        );
    }
    let head = client
        .head_object()
        .bucket(B)
        .key("big")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(head.parts_count(), Some(2));
    assert_eq!(head.content_length(), Some(p2.len() as i64));
    assert_s3_error(
        client
            .get_object()
            .bucket(B)
            .key("big")
            .part_number(3)
            .send()
            .await,
        416,
        "InvalidRange",
    );

    // The upload is gone once completed.
    assert_s3_error(
        client
            .list_parts()
            .bucket(B)
            .key("big")
            .upload_id(&id)
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
}

#[tokio::test]
async fn metadata_given_at_create_is_on_the_completed_object() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let up = client
        .create_multipart_upload()
        .bucket(B)
        .key("m")
        .content_type("video/mp4")
        .metadata("camera", "front")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let e1 = part(&client, "m", &id, 1, b"only part").await;
    client
        .complete_multipart_upload()
        .bucket(B)
        .key("m")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1)]))
        .send()
        .await
        .unwrap();
    let head = client
        .head_object()
        .bucket(B)
        .key("m")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("video/mp4"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("camera"))
            .map(String::as_str),
        Some("front")
    );
    assert_eq!(head.e_tag(), Some(multipart_etag(&[b"only part"]).as_str()));
}

#[tokio::test]
async fn upload_part_copy_copies_byte_ranges() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let source = pattern(6 * MIB + 1234, 3);
    put_bytes(&client, B, "source", source.clone()).await;
    let id = create(&client, "copied").await;
    let c1 = client
        .upload_part_copy()
        .bucket(B)
        .key("copied")
        .upload_id(&id)
        .part_number(1)
        .copy_source(format!("{B}/source"))
        .copy_source_range(format!("bytes=0-{}", 5 * MIB - 1))
        .send()
        .await
        .unwrap();
    let e1 = c1
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .unwrap()
        .to_string();
    assert_eq!(e1, format!("\"{}\"", md5_hex(&source[..5 * MIB])));
    let c2 = client
        .upload_part_copy()
        .bucket(B)
        .key("copied")
        .upload_id(&id)
        .part_number(2)
        .copy_source(format!("{B}/source"))
        .copy_source_range(format!("bytes={}-{}", 5 * MIB, source.len() - 1))
        .send()
        .await
        .unwrap();
    let e2 = c2
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .unwrap()
        .to_string();
    // A range past the end of the source is refused.
    assert_s3_error(
        client
            .upload_part_copy()
            .bucket(B)
            .key("copied")
            .upload_id(&id)
            .part_number(3)
            .copy_source(format!("{B}/source"))
            .copy_source_range(format!("bytes=0-{}", source.len()))
            .send()
            .await,
        416,
        "InvalidRange",
    );
    client
        .complete_multipart_upload()
        .bucket(B)
        .key("copied")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1), (2, &e2)]))
        .send()
        .await
        .unwrap();
    assert!(
        get_bytes(&client, B, "copied").await == source,
        "the copied object equals the source"
    );
}

#[tokio::test]
async fn list_parts_and_list_multipart_uploads() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let id_a = create(&client, "docs/a").await;
    let id_b = create(&client, "docs/b").await;
    let id_c = create(&client, "other").await;
    let e1 = part(&client, "docs/a", &id_a, 1, &pattern(1000, 1)).await;
    let e3 = part(&client, "docs/a", &id_a, 3, &pattern(3000, 3)).await;

    let parts = client
        .list_parts()
        .bucket(B)
        .key("docs/a")
        .upload_id(&id_a)
        .send()
        .await
        .unwrap();
    let listed: Vec<(i32, i64, &str)> = parts
        .parts()
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap(),
                p.size().unwrap(),
                p.e_tag().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(1, 1000, e1.as_str()), (3, 3000, e3.as_str())]);
    assert_eq!(parts.upload_id(), Some(id_a.as_str()));
    assert_eq!(parts.is_truncated(), Some(false));
    let paged = client
        .list_parts()
        .bucket(B)
        .key("docs/a")
        .upload_id(&id_a)
        .max_parts(1)
        .send()
        .await
        .unwrap();
    assert_eq!(paged.parts().len(), 1);
    assert_eq!(paged.is_truncated(), Some(true));
    let rest = client
        .list_parts()
        .bucket(B)
        .key("docs/a")
        .upload_id(&id_a)
        .part_number_marker(paged.next_part_number_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        rest.parts()
            .iter()
            .map(|p| p.part_number().unwrap())
            .collect::<Vec<_>>(),
        [3]
    );

    let uploads = client
        .list_multipart_uploads()
        .bucket(B)
        .send()
        .await
        .unwrap();
    let mut listed: Vec<(&str, &str)> = uploads
        .uploads()
        .iter()
        .map(|u| (u.key().unwrap(), u.upload_id().unwrap()))
        .collect();
    listed.sort();
    let mut expected = vec![
        ("docs/a", id_a.as_str()),
        ("docs/b", id_b.as_str()),
        ("other", id_c.as_str()),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(uploads.uploads().iter().all(|u| u.initiated().is_some()));

    let prefixed = client
        .list_multipart_uploads()
        .bucket(B)
        .prefix("docs/")
        .send()
        .await
        .unwrap();
    assert_eq!(prefixed.uploads().len(), 2);
    let grouped = client
        .list_multipart_uploads()
        .bucket(B)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        grouped
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .collect::<Vec<_>>(),
        ["docs/"]
    );
    assert_eq!(
        grouped
            .uploads()
            .iter()
            .filter_map(|u| u.key())
            .collect::<Vec<_>>(),
        ["other"]
    );

    client
        .abort_multipart_upload()
        .bucket(B)
        .key("docs/b")
        .upload_id(&id_b)
        .send()
        .await
        .unwrap();
    let after = client
        .list_multipart_uploads()
        .bucket(B)
        .send()
        .await
        .unwrap();
    assert!(
        after
            .uploads()
            .iter()
            .all(|u| u.upload_id() != Some(id_b.as_str())),
        "an aborted upload is not listed"
    );
    assert_eq!(after.uploads().len(), 2);
}

#[tokio::test]
async fn an_aborted_upload_is_gone() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let id = create(&client, "gone").await;
    let e1 = part(&client, "gone", &id, 1, b"data").await;
    client
        .abort_multipart_upload()
        .bucket(B)
        .key("gone")
        .upload_id(&id)
        .send()
        .await
        .expect("abort succeeds");

    assert_s3_error(
        client
            .upload_part()
            .bucket(B)
            .key("gone")
            .upload_id(&id)
            .part_number(2)
            .body(b"x".to_vec().into())
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    assert_s3_error(
        client
            .list_parts()
            .bucket(B)
            .key("gone")
            .upload_id(&id)
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    assert_s3_error(
        client
            .complete_multipart_upload()
            .bucket(B)
            .key("gone")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &e1)]))
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    assert_s3_error(
        client
            .abort_multipart_upload()
            .bucket(B)
            .key("gone")
            .upload_id(&id)
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    assert!(!common::exists(&client, B, "gone").await);
    assert_s3_error(
        client
            .upload_part()
            .bucket(B)
            .key("gone")
            .upload_id("no-such-id")
            .part_number(1)
            .body(b"x".to_vec().into())
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    // An upload id belongs to its key.
    let id2 = create(&client, "mine").await;
    assert_s3_error(
        client
            .upload_part()
            .bucket(B)
            .key("not-mine")
            .upload_id(&id2)
            .part_number(1)
            .body(b"x".to_vec().into())
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
}

#[tokio::test]
async fn bad_completions_are_refused_and_leave_the_upload_usable() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let p1 = pattern(5 * MIB, 4);
    let p2 = pattern(10, 5);
    let id = create(&client, "k").await;
    let e1 = part(&client, "k", &id, 1, &p1).await;
    let e2 = part(&client, "k", &id, 2, &p2).await;
    let complete = |parts: CompletedMultipartUpload| {
        client
            .complete_multipart_upload()
            .bucket(B)
            .key("k")
            .upload_id(&id)
            .multipart_upload(parts)
    };

    assert_s3_error(
        complete(completed(&[
            (1, &e1),
            (2, "\"0123456789abcdef0123456789abcdef\""),
        ]))
        .send()
        .await,
        400,
        "InvalidPart",
    );
    assert_s3_error(
        complete(completed(&[(1, &e1), (3, &e2)])).send().await,
        400,
        "InvalidPart",
    );
    assert_s3_error(
        complete(completed(&[(2, &e2), (1, &e1)])).send().await,
        400,
        "InvalidPartOrder",
    );
    assert!(!common::exists(&client, B, "k").await);

    complete(completed(&[(1, &e1), (2, &e2)]))
        .send()
        .await
        .expect("the upload still completes after refused attempts");
    assert_eq!(get_bytes(&client, B, "k").await.len(), p1.len() + p2.len());
}

#[tokio::test]
async fn parts_smaller_than_5_mib_are_refused_except_the_last() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let id = create(&client, "small").await;
    let e1 = part(&client, "small", &id, 1, &pattern(MIB, 6)).await;
    let e2 = part(&client, "small", &id, 2, &pattern(MIB, 7)).await;
    assert_s3_error(
        client
            .complete_multipart_upload()
            .bucket(B)
            .key("small")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &e1), (2, &e2)]))
            .send()
            .await,
        400,
        "EntityTooSmall",
    );
    assert!(!common::exists(&client, B, "small").await);
    // Completing with only the first part is fine: a lone part may be small.
    client
        .complete_multipart_upload()
        .bucket(B)
        .key("small")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1)]))
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&client, B, "small").await, pattern(MIB, 6));
}

#[tokio::test]
async fn uploading_a_part_again_replaces_it() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let id = create(&client, "redo").await;
    let old = part(&client, "redo", &id, 1, b"first attempt").await;
    let new = part(&client, "redo", &id, 1, b"second attempt").await;
    let parts = client
        .list_parts()
        .bucket(B)
        .key("redo")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(parts.parts().len(), 1);
    assert_eq!(parts.parts()[0].e_tag(), Some(new.as_str()));
    assert_s3_error(
        client
            .complete_multipart_upload()
            .bucket(B)
            .key("redo")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, &old)]))
            .send()
            .await,
        400,
        "InvalidPart",
    );
    client
        .complete_multipart_upload()
        .bucket(B)
        .key("redo")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &new)]))
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&client, B, "redo").await, b"second attempt");
}

#[tokio::test]
async fn part_numbers_outside_1_to_10000_are_refused() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let id = create(&client, "n").await;
    for n in [0, 10_001] {
        let resp = server
            .raw("PUT", "/multi/n")
            .query(&format!("partNumber={n}&uploadId={id}"))
            .body(b"x".to_vec())
            .send()
            .await;
        assert_eq!(
            (resp.status, resp.code().as_str()),
            (400, "InvalidArgument"),
            "part {n}"
        );
    }
}

#[tokio::test]
async fn crc32_multipart_has_a_composite_checksum() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let p1 = pattern(5 * MIB, 8);
    let p2 = pattern(70_000, 9);
    let up = client
        .create_multipart_upload()
        .bucket(B)
        .key("ck")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let crc = |d: &[u8]| crc32fast::hash(d).to_be_bytes();
    let mut done = Vec::new();
    for (n, data) in [(1, &p1), (2, &p2)] {
        let out = client
            .upload_part()
            .bucket(B)
            .key("ck")
            .upload_id(&id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(data.clone().into())
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.checksum_crc32(),
            Some(b64(&crc(data)).as_str()),
            "part {n} checksum"
        );
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .checksum_crc32(out.checksum_crc32().unwrap())
                .build(),
        );
    }
    let complete = client
        .complete_multipart_upload()
        .bucket(B)
        .key("ck")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut both = crc(&p1).to_vec();
    both.extend_from_slice(&crc(&p2));
    let expected = format!("{}-2", b64(&crc(&both)));
    assert_eq!(complete.checksum_crc32(), Some(expected.as_str()));

    let head = client
        .head_object()
        .bucket(B)
        .key("ck")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_crc32(), Some(expected.as_str()));
    let get = client
        .get_object()
        .bucket(B)
        .key("ck")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(get.checksum_crc32(), Some(expected.as_str()));
    let body = get.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.len(), p1.len() + p2.len());
    // A part read carries the part's own checksum.
    let part2 = client
        .get_object()
        .bucket(B)
        .key("ck")
        .part_number(2)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(part2.checksum_crc32(), Some(b64(&crc(&p2)).as_str()));

    // A completion stating a wrong part checksum is refused.
    let up = client
        .create_multipart_upload()
        .bucket(B)
        .key("ck2")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let out = client
        .upload_part()
        .bucket(B)
        .key("ck2")
        .upload_id(&id)
        .part_number(1)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(b"abc".to_vec().into())
        .send()
        .await
        .unwrap();
    let wrong = CompletedPart::builder()
        .part_number(1)
        .e_tag(out.e_tag().unwrap())
        .checksum_crc32(b64(&crc(b"xyz")))
        .build();
    let e = client
        .complete_multipart_upload()
        .bucket(B)
        .key("ck2")
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().parts(wrong).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::s3_error(&e).0, 400, "{e:?}");
    assert!(!common::exists(&client, B, "ck2").await);
}
