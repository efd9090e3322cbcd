//! Bucket settings through the admin API (versioning, object lock at creation, quotas) and
//! quotas enforced on S3 writes: over quota is QuotaExceeded and nothing is stored.

mod common;

use aws_sdk_s3::types::{BucketVersioningStatus, ObjectLockEnabled};
use common::{assert_s3_error, exists, get_bytes, put_bytes, TestServer};
use serde_json::{json, Value};

fn admin_path(name: &str) -> String {
    format!("{}{name}", coffer_server::admin::PREFIX)
}

async fn put_settings(server: &TestServer, bucket: &str, settings: Value) -> (u16, Value) {
    let r = server
        .raw("PUT", &admin_path(&format!("buckets/{bucket}")))
        .header("content-type", "application/json")
        .body(settings.to_string())
        .send()
        .await;
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

#[tokio::test]
async fn quotas_refuse_writes_past_them_and_store_nothing() {
    let server = TestServer::start();
    let (status, info) = put_settings(
        &server,
        "capped",
        json!({ "quota": { "maxObjects": 2, "maxBytes": 1000 } }),
    )
    .await;
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["quota"], json!({ "maxObjects": 2, "maxBytes": 1000 }));
    let client = server.client();
    put_bytes(&client, "capped", "a", vec![1u8; 400]).await;
    put_bytes(&client, "capped", "b", vec![2u8; 400]).await;
    assert_s3_error(
        client
            .put_object()
            .bucket("capped")
            .key("c")
            .body(vec![3u8; 10].into())
            .send()
            .await,
        400,
        "QuotaExceeded",
    );
    assert!(
        !exists(&client, "capped", "c").await,
        "a refused write stores nothing"
    );
    // Overwriting a key replaces it: the count stays, the bytes are checked.
    put_bytes(&client, "capped", "a", vec![4u8; 500]).await;
    assert_s3_error(
        client
            .put_object()
            .bucket("capped")
            .key("b")
            .body(vec![5u8; 700].into())
            .send()
            .await,
        400,
        "QuotaExceeded",
    );
    assert_eq!(
        get_bytes(&client, "capped", "b").await,
        vec![2u8; 400],
        "the old one stays"
    );

    // Deleting frees room at once; raising the quota too.
    client
        .delete_object()
        .bucket("capped")
        .key("a")
        .send()
        .await
        .unwrap();
    put_bytes(&client, "capped", "c", vec![6u8; 10]).await;
    let (status, info) =
        put_settings(&server, "capped", json!({ "quota": { "maxObjects": 10 } })).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["usage"]["objects"], 2);
    put_bytes(&client, "capped", "d", vec![7u8; 5000]).await;
    assert!(exists(&client, "capped", "d").await);
}

#[tokio::test]
async fn admin_settings_set_versioning_and_object_lock() {
    let server = TestServer::start();
    let (status, info) = put_settings(&server, "kept", json!({ "versioning": "Enabled" })).await;
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["versioning"], "Enabled");
    let client = server.client();
    let v = client
        .get_bucket_versioning()
        .bucket("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(v.status(), Some(&BucketVersioningStatus::Enabled));
    // The same settings again change nothing; suspending is a change.
    assert_eq!(
        put_settings(&server, "kept", json!({ "versioning": "Enabled" }))
            .await
            .0,
        200
    );
    let (_, info) = put_settings(&server, "kept", json!({ "versioning": "Suspended" })).await;
    assert_eq!(info["versioning"], "Suspended");
    let (status, _) = put_settings(&server, "kept", json!({ "versioning": "Unversioned" })).await;
    assert_eq!(status, 409);

    let (status, info) = put_settings(&server, "worm", json!({ "objectLock": true })).await;
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["objectLock"], true);
    assert_eq!(info["versioning"], "Enabled");
    let conf = client
        .get_object_lock_configuration()
        .bucket("worm")
        .send()
        .await
        .unwrap();
    assert_eq!(
        conf.object_lock_configuration()
            .unwrap()
            .object_lock_enabled(),
        Some(&ObjectLockEnabled::Enabled)
    );
    // Object lock cannot be added to an existing bucket, nor removed.
    assert_eq!(
        put_settings(&server, "kept", json!({ "objectLock": true }))
            .await
            .0,
        409
    );
    assert_eq!(
        put_settings(&server, "worm", json!({ "objectLock": false }))
            .await
            .0,
        409
    );
    // Unknown settings are refused, not ignored.
    assert_eq!(
        put_settings(&server, "kept", json!({ "versionin": "Enabled" }))
            .await
            .0,
        400
    );
}
