//! Lifecycle through the real server with aws-sdk-s3, with a lifecycle "day" of two seconds
//! (`--lifecycle-day-seconds`): Put/Get/DeleteBucketLifecycleConfiguration, expiration of
//! current versions (a single delete marker in versioned buckets, however many passes run),
//! noncurrent versions past NoncurrentDays beyond NewerNoncurrentVersions, expired delete
//! markers, aborted multipart uploads, and versions object lock keeps left alone.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, ObjectLockMode, VersioningConfiguration,
};
use common::{assert_s3_error, exists, put_bytes, TestServer};

const DAY_ARGS: &[&str] = &["--lifecycle-day-seconds", "2"];

fn rule(id: &str, prefix: &str) -> aws_sdk_s3::types::builders::LifecycleRuleBuilder {
    LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
}

async fn set_rules(client: &aws_sdk_s3::Client, bucket: &str, rules: Vec<LifecycleRule>) {
    client
        .put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("PutBucketLifecycleConfiguration succeeds");
}

async fn versioned(client: &aws_sdk_s3::Client, bucket: &str) {
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// (version id, is delete marker) of every version of `key`, newest first.
async fn versions_of(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<(String, bool)> {
    let out = client
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .unwrap();
    let mut all: Vec<(String, bool, aws_sdk_s3::primitives::DateTime)> = Vec::new();
    for v in out.versions().iter().filter(|v| v.key() == Some(key)) {
        all.push((
            v.version_id().unwrap().into(),
            false,
            *v.last_modified().unwrap(),
        ));
    }
    for d in out.delete_markers().iter().filter(|d| d.key() == Some(key)) {
        all.push((
            d.version_id().unwrap().into(),
            true,
            *d.last_modified().unwrap(),
        ));
    }
    all.sort_by_key(|a| std::cmp::Reverse(a.2));
    all.into_iter().map(|(v, m, _)| (v, m)).collect()
}

/// Waits (bounded) until `done` holds.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn configurations_are_stored_validated_and_removed() {
    let server = TestServer::start_drives(1, DAY_ARGS);
    let client = server.bucket("conf").await;
    assert_s3_error(
        client
            .get_bucket_lifecycle_configuration()
            .bucket("conf")
            .send()
            .await,
        404,
        "NoSuchLifecycleConfiguration",
    );
    set_rules(
        &client,
        "conf",
        vec![rule("logs", "logs/")
            .expiration(LifecycleExpiration::builder().days(30).build())
            .build()
            .unwrap()],
    )
    .await;
    let got = client
        .get_bucket_lifecycle_configuration()
        .bucket("conf")
        .send()
        .await
        .unwrap();
    assert_eq!(got.rules().len(), 1);
    assert_eq!(got.rules()[0].id(), Some("logs"));
    assert_eq!(got.rules()[0].expiration().unwrap().days(), Some(30));
    let bad = server
        .raw("PUT", "/conf")
        .query("lifecycle")
        .body(b"<LifecycleConfiguration><Rule><ID>x</ID><Status>Enabled</Status><Expiration><Days>0</Days></Expiration></Rule></LifecycleConfiguration>".to_vec())
        .send()
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let transition = server
        .raw("PUT", "/conf")
        .query("lifecycle")
        .body(b"<LifecycleConfiguration><Rule><ID>x</ID><Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition></Rule></LifecycleConfiguration>".to_vec())
        .send()
        .await;
    assert_eq!(transition.status, 501, "{}", transition.text());
    client
        .delete_bucket_lifecycle()
        .bucket("conf")
        .send()
        .await
        .unwrap();
    assert_s3_error(
        client
            .get_bucket_lifecycle_configuration()
            .bucket("conf")
            .send()
            .await,
        404,
        "NoSuchLifecycleConfiguration",
    );
}

#[tokio::test]
async fn expired_objects_go_and_others_stay() {
    let server = TestServer::start_drives(1, DAY_ARGS);
    let client = server.bucket("expire").await;
    put_bytes(&client, "expire", "logs/old", b"old".to_vec()).await;
    put_bytes(&client, "expire", "keep/this", b"kept".to_vec()).await;
    set_rules(
        &client,
        "expire",
        vec![rule("logs", "logs/")
            .expiration(LifecycleExpiration::builder().days(1).build())
            .build()
            .unwrap()],
    )
    .await;
    eventually("logs/old to expire", || async {
        !exists(&client, "expire", "logs/old").await
    })
    .await;
    assert!(
        exists(&client, "expire", "keep/this").await,
        "outside the rule's prefix"
    );
    let listed = client
        .list_object_versions()
        .bucket("expire")
        .send()
        .await
        .unwrap();
    assert!(
        listed.delete_markers().is_empty(),
        "an unversioned bucket gets no markers"
    );
}

#[tokio::test]
async fn versioned_buckets_get_one_marker_and_lose_old_versions_by_the_rules() {
    let server = TestServer::start_drives(1, DAY_ARGS);
    let client = server.bucket("hist").await;
    versioned(&client, "hist").await;
    let mut ids = Vec::new();
    for i in 0..4u8 {
        let out = client
            .put_object()
            .bucket("hist")
            .key("doc")
            .body(vec![i; 4].into())
            .send()
            .await
            .unwrap();
        ids.push(out.version_id.unwrap());
    }
    put_bytes(&client, "hist", "current/x", b"x".to_vec()).await;
    set_rules(
        &client,
        "hist",
        vec![
            // Old versions of doc: all but the newest noncurrent one go.
            rule("history", "doc")
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(1)
                        .newer_noncurrent_versions(1)
                        .build(),
                )
                .build()
                .unwrap(),
            rule("current", "current/")
                .expiration(LifecycleExpiration::builder().days(1).build())
                .build()
                .unwrap(),
        ],
    )
    .await;
    eventually("doc's oldest versions to go", || async {
        versions_of(&client, "hist", "doc").await.len() == 2
    })
    .await;
    let doc = versions_of(&client, "hist", "doc").await;
    assert_eq!(
        doc,
        vec![(ids[3].clone(), false), (ids[2].clone(), false)],
        "the current version and the newest noncurrent one stay"
    );
    eventually("current/x to be expired", || async {
        !exists(&client, "hist", "current/x").await
    })
    .await;
    // Many more passes (a pass every half second) add no second marker.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let x = versions_of(&client, "hist", "current/x").await;
    assert_eq!(x.len(), 2, "one marker over the version: {x:?}");
    assert!(x[0].1 && !x[1].1);
    assert_eq!(
        versions_of(&client, "hist", "doc").await,
        doc,
        "nothing more removed"
    );
}

#[tokio::test]
async fn markers_left_alone_are_removed_and_stale_uploads_aborted() {
    let server = TestServer::start_drives(1, DAY_ARGS);
    let client = server.bucket("tidy").await;
    versioned(&client, "tidy").await;
    let v = client
        .put_object()
        .bucket("tidy")
        .key("gone")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap()
        .version_id
        .unwrap();
    client
        .delete_object()
        .bucket("tidy")
        .key("gone")
        .send()
        .await
        .unwrap();
    client
        .delete_object()
        .bucket("tidy")
        .key("gone")
        .version_id(v)
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions_of(&client, "tidy", "gone").await.len(),
        1,
        "a lone marker"
    );
    let up = client
        .create_multipart_upload()
        .bucket("tidy")
        .key("stale")
        .send()
        .await
        .unwrap();
    set_rules(
        &client,
        "tidy",
        vec![rule("tidy", "")
            .expiration(
                LifecycleExpiration::builder()
                    .expired_object_delete_marker(true)
                    .build(),
            )
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(1)
                    .build(),
            )
            .build()
            .unwrap()],
    )
    .await;
    eventually("the lone marker to go", || async {
        versions_of(&client, "tidy", "gone").await.is_empty()
    })
    .await;
    eventually("the stale upload to be aborted", || async {
        client
            .list_multipart_uploads()
            .bucket("tidy")
            .send()
            .await
            .unwrap()
            .uploads()
            .is_empty()
    })
    .await;
    assert_s3_error(
        client
            .list_parts()
            .bucket("tidy")
            .key("stale")
            .upload_id(up.upload_id().unwrap())
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
}

#[tokio::test]
async fn object_lock_keeps_what_rules_would_remove() {
    let server = TestServer::start_drives(1, DAY_ARGS);
    let client = server.client();
    client
        .create_bucket()
        .bucket("locked")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let until = aws_sdk_s3::primitives::DateTime::from(
        std::time::SystemTime::now() + Duration::from_secs(3600),
    );
    let v1 = client
        .put_object()
        .bucket("locked")
        .key("k")
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(until)
        .body(b"kept".to_vec().into())
        .send()
        .await
        .unwrap()
        .version_id
        .unwrap();
    set_rules(
        &client,
        "locked",
        vec![rule("all", "")
            .expiration(LifecycleExpiration::builder().days(1).build())
            .noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(1)
                    .build(),
            )
            .build()
            .unwrap()],
    )
    .await;
    // Expiring the current version only adds a marker (allowed); the locked version stays.
    eventually("k to be expired behind a marker", || async {
        !exists(&client, "locked", "k").await
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let k = versions_of(&client, "locked", "k").await;
    assert_eq!(k.len(), 2, "{k:?}");
    assert_eq!(
        k[1],
        (v1.clone(), false),
        "the locked version is still there"
    );
    let body = client
        .get_object()
        .bucket("locked")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(body.as_ref(), b"kept");
}
