//! Bucket operations through the AWS SDK: create, list, head, delete, location constraints,
//! naming rules and the errors a client sees for each.

mod common;

use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use common::{assert_s3_error, put_bytes, TestServer};

#[tokio::test]
async fn create_list_head_and_delete_a_bucket() {
    let server = TestServer::start();
    let client = server.client();

    let created = client
        .create_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("CreateBucket succeeds");
    assert_eq!(created.location(), Some("/photos"));
    client.create_bucket().bucket("alpha").send().await.unwrap();

    let listed = client.list_buckets().send().await.unwrap();
    let names: Vec<_> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(
        names,
        ["alpha", "photos"],
        "ListBuckets lists buckets by name"
    );
    assert!(listed.buckets().iter().all(|b| b.creation_date().is_some()));
    assert!(listed
        .owner()
        .and_then(|o| o.id())
        .is_some_and(|id| !id.is_empty()));

    let head = client
        .head_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("HeadBucket on an existing bucket");
    assert_eq!(head.bucket_region(), Some("us-east-1"));

    client
        .delete_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("deleting an empty bucket succeeds");
    assert_s3_error(
        client.head_bucket().bucket("photos").send().await,
        404,
        "NotFound",
    );
    let names: Vec<_> = client
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name.clone())
        .collect();
    assert_eq!(names, ["alpha"]);
}

#[tokio::test]
async fn location_constraint_must_name_the_server_region() {
    let server = TestServer::start();
    let client = server.client();
    let config = |loc: &str| {
        CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(loc))
            .build()
    };

    client
        .create_bucket()
        .bucket("east")
        .create_bucket_configuration(config("us-east-1"))
        .send()
        .await
        .expect("the server's own region is accepted as LocationConstraint");
    let loc = client
        .get_bucket_location()
        .bucket("east")
        .send()
        .await
        .unwrap();
    // S3 reports us-east-1 as an empty constraint.
    assert!(
        loc.location_constraint()
            .is_none_or(|l| l.as_str().is_empty()),
        "GetBucketLocation for us-east-1: {loc:?}"
    );

    assert_s3_error(
        client
            .create_bucket()
            .bucket("west")
            .create_bucket_configuration(config("eu-west-1"))
            .send()
            .await,
        400,
        "IllegalLocationConstraintException",
    );
    assert_s3_error(
        client.head_bucket().bucket("west").send().await,
        404,
        "NotFound",
    );
}

#[tokio::test]
async fn creating_an_owned_bucket_again_is_refused() {
    let server = TestServer::start();
    let client = server.bucket("twice").await;
    assert_s3_error(
        client.create_bucket().bucket("twice").send().await,
        409,
        "BucketAlreadyOwnedByYou",
    );
}

#[tokio::test]
async fn a_bucket_with_objects_cannot_be_deleted() {
    let server = TestServer::start();
    let client = server.bucket("full").await;
    put_bytes(&client, "full", "thing", b"x".to_vec()).await;
    assert_s3_error(
        client.delete_bucket().bucket("full").send().await,
        409,
        "BucketNotEmpty",
    );
    client
        .head_bucket()
        .bucket("full")
        .send()
        .await
        .expect("the bucket is still there");

    client
        .delete_object()
        .bucket("full")
        .key("thing")
        .send()
        .await
        .unwrap();
    client
        .delete_bucket()
        .bucket("full")
        .send()
        .await
        .expect("an emptied bucket can be deleted");
}

#[tokio::test]
async fn invalid_bucket_names_are_refused() {
    let server = TestServer::start();
    let client = server.client();
    for name in [
        "Bad_Name",
        "ab",
        "UPPER",
        "-leading",
        "trailing-",
        "a..b",
        "192.168.1.1",
        &"a".repeat(64),
    ] {
        assert_s3_error(
            client.create_bucket().bucket(name).send().await,
            400,
            "InvalidBucketName",
        );
    }
    assert!(
        client
            .list_buckets()
            .send()
            .await
            .unwrap()
            .buckets()
            .is_empty(),
        "no bucket was created"
    );
}

#[tokio::test]
async fn operations_on_a_missing_bucket_answer_no_such_bucket() {
    let server = TestServer::start();
    let client = server.client();
    let b = "missing";
    assert_s3_error(client.head_bucket().bucket(b).send().await, 404, "NotFound");
    assert_s3_error(
        client.delete_bucket().bucket(b).send().await,
        404,
        "NoSuchBucket",
    );
    assert_s3_error(
        client.get_bucket_location().bucket(b).send().await,
        404,
        "NoSuchBucket",
    );
    assert_s3_error(
        client.list_objects_v2().bucket(b).send().await,
        404,
        "NoSuchBucket",
    );
    assert_s3_error(
        client.list_objects().bucket(b).send().await,
        404,
        "NoSuchBucket",
    );
    assert_s3_error(
        client.list_multipart_uploads().bucket(b).send().await,
        404,
        "NoSuchBucket",
    );
    assert_s3_error(
        client
            .put_object()
            .bucket(b)
            .key("k")
            .body(b"x".to_vec().into())
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
    assert_s3_error(
        client.get_object().bucket(b).key("k").send().await,
        404,
        "NoSuchBucket",
    );
    assert_s3_error(
        client
            .create_multipart_upload()
            .bucket(b)
            .key("k")
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
}

#[tokio::test]
async fn bucket_operations_by_raw_request_carry_the_s3_error_document() {
    let server = TestServer::start();
    let resp = server
        .raw("GET", "/nobucket")
        .query("list-type=2")
        .send()
        .await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.code(), "NoSuchBucket");
    assert_eq!(resp.xml("Resource").as_deref(), Some("/nobucket"));
    assert!(resp
        .header("x-amz-request-id")
        .is_some_and(|id| Some(id.to_string()) == resp.xml("RequestId")));
}
