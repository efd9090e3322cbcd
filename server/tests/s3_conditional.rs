//! Conditional writes: `If-None-Match: *` and `If-Match` on PutObject and
//! CompleteMultipartUpload, including many writers racing for one key.

mod common;

use std::sync::Arc;

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::{assert_s3_error, get_bytes, put_bytes, s3_error, TestServer};

const B: &str = "cond";

#[tokio::test]
async fn if_none_match_star_creates_only_once() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    client
        .put_object()
        .bucket(B)
        .key("once")
        .if_none_match("*")
        .body(b"first".to_vec().into())
        .send()
        .await
        .expect("the first create succeeds");
    assert_s3_error(
        client
            .put_object()
            .bucket(B)
            .key("once")
            .if_none_match("*")
            .body(b"second".to_vec().into())
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    assert_eq!(
        get_bytes(&client, B, "once").await,
        b"first",
        "the refused write changed nothing"
    );

    // After a delete the key can be created again.
    client
        .delete_object()
        .bucket(B)
        .key("once")
        .send()
        .await
        .unwrap();
    client
        .put_object()
        .bucket(B)
        .key("once")
        .if_none_match("*")
        .body(b"third".to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&client, B, "once").await, b"third");
}

#[tokio::test]
async fn if_match_writes_only_over_the_expected_version() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    let etag = put_bytes(&client, B, "doc", b"v1".to_vec()).await;

    assert_s3_error(
        client
            .put_object()
            .bucket(B)
            .key("doc")
            .if_match("\"0123456789abcdef0123456789abcdef\"")
            .body(b"lost".to_vec().into())
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    assert_eq!(get_bytes(&client, B, "doc").await, b"v1");

    let v2 = client
        .put_object()
        .bucket(B)
        .key("doc")
        .if_match(&etag)
        .body(b"v2".to_vec().into())
        .send()
        .await
        .expect("If-Match with the current ETag");
    assert_eq!(get_bytes(&client, B, "doc").await, b"v2");

    // The old ETag is stale now.
    assert_s3_error(
        client
            .put_object()
            .bucket(B)
            .key("doc")
            .if_match(&etag)
            .body(b"v3".to_vec().into())
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    assert_ne!(v2.e_tag(), Some(etag.as_str()));

    // If-Match on a missing key: S3 answers 404 NoSuchKey.
    assert_s3_error(
        client
            .put_object()
            .bucket(B)
            .key("absent")
            .if_match(&etag)
            .body(b"x".to_vec().into())
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    assert!(!common::exists(&client, B, "absent").await);
}

#[tokio::test]
async fn concurrent_if_none_match_writers_have_exactly_one_winner() {
    let server = TestServer::start();
    let client = Arc::new(server.bucket(B).await);
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("writer {i}").into_bytes();
            let r = client
                .put_object()
                .bucket(B)
                .key("race")
                .if_none_match("*")
                .body(body.into())
                .send()
                .await;
            (i, r.map(|_| ()).map_err(|e| s3_error(&e)))
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (i, Ok(())) => winners.push(i),
            (_, Err(e)) => assert_eq!(e, (412, "PreconditionFailed".to_string())),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins: {winners:?}");
    assert_eq!(
        get_bytes(&client, B, "race").await,
        format!("writer {}", winners[0]).into_bytes()
    );
}

async fn prepared_upload(
    client: &aws_sdk_s3::Client,
    key: &str,
    body: &[u8],
) -> (String, CompletedMultipartUpload) {
    let upload = client
        .create_multipart_upload()
        .bucket(B)
        .key(key)
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap().to_string();
    let part = client
        .upload_part()
        .bucket(B)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap();
    let done = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(part.e_tag().unwrap())
                .build(),
        )
        .build();
    (id, done)
}

#[tokio::test]
async fn complete_multipart_upload_honours_if_none_match() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    put_bytes(&client, B, "taken", b"existing".to_vec()).await;
    let (id, done) = prepared_upload(&client, "taken", b"multipart").await;
    assert_s3_error(
        client
            .complete_multipart_upload()
            .bucket(B)
            .key("taken")
            .upload_id(&id)
            .multipart_upload(done.clone())
            .if_none_match("*")
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    assert_eq!(get_bytes(&client, B, "taken").await, b"existing");

    let (id, done) = prepared_upload(&client, "fresh", b"multipart").await;
    client
        .complete_multipart_upload()
        .bucket(B)
        .key("fresh")
        .upload_id(&id)
        .multipart_upload(done)
        .if_none_match("*")
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&client, B, "fresh").await, b"multipart");
}

#[tokio::test]
async fn concurrent_conditional_completes_have_exactly_one_winner() {
    let server = TestServer::start();
    let client = Arc::new(server.bucket(B).await);
    let mut prepared = Vec::new();
    for i in 0..16u8 {
        prepared.push((
            i,
            prepared_upload(&client, "mp-race", format!("upload {i}").as_bytes()).await,
        ));
    }
    let mut tasks = Vec::new();
    for (i, (id, done)) in prepared {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .complete_multipart_upload()
                .bucket(B)
                .key("mp-race")
                .upload_id(id)
                .multipart_upload(done)
                .if_none_match("*")
                .send()
                .await;
            (i, r.map(|_| ()).map_err(|e| s3_error(&e)))
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (i, Ok(())) => winners.push(i),
            (_, Err(e)) => assert_eq!(e, (412, "PreconditionFailed".to_string())),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one complete wins: {winners:?}");
    assert_eq!(
        get_bytes(&client, B, "mp-race").await,
        format!("upload {}", winners[0]).into_bytes()
    );
}

#[tokio::test]
async fn if_none_match_with_an_etag_on_a_write_is_not_supported() {
    let server = TestServer::start();
    let client = server.bucket(B).await;
    // Refused, never silently ignored.
    assert_s3_error(
        client
            .put_object()
            .bucket(B)
            .key("k")
            .if_none_match("\"abc\"")
            .body(b"x".to_vec().into())
            .send()
            .await,
        501,
        "NotImplemented",
    );
    assert!(!common::exists(&client, B, "k").await);
}
