//! Object lock (WORM) through the real server with aws-sdk-s3: buckets made with object
//! lock, default retention, per-version retention and legal hold on PUT and by API,
//! GOVERNANCE bypass only for a caller allowed to, COMPLIANCE binding everyone (the root
//! credential and the admin API included), and the lock surviving a killed process.

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    BucketVersioningStatus, DefaultRetention, Delete, ObjectIdentifier, ObjectLockConfiguration,
    ObjectLockEnabled, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode,
    ObjectLockRetention, ObjectLockRetentionMode, ObjectLockRule, VersioningConfiguration,
};
use coffer_server::admin::AdminClient;
use common::{assert_s3_error, put_bytes, TestServer, ACCESS_KEY, REGION, SECRET_KEY};

async fn locked_bucket(server: &TestServer, name: &str) -> aws_sdk_s3::Client {
    let client = server.client();
    client
        .create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("creating a bucket with object lock succeeds");
    client
}

fn in_future(secs: u64) -> DateTime {
    DateTime::from(SystemTime::now() + Duration::from_secs(secs))
}

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(b"worm".to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {key}: {e:?}"))
        .version_id
        .expect("object lock buckets are versioned")
}

async fn delete_version(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: &str,
    bypass: bool,
) -> Result<(), (u16, String)> {
    client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .set_bypass_governance_retention(bypass.then_some(true))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| common::s3_error(&e))
}

fn retention(mode: ObjectLockRetentionMode, secs: u64) -> ObjectLockRetention {
    ObjectLockRetention::builder()
        .mode(mode)
        .retain_until_date(in_future(secs))
        .build()
}

#[tokio::test]
async fn a_lock_bucket_is_versioned_for_good_and_applies_its_default_retention() {
    let server = TestServer::start();
    let client = locked_bucket(&server, "vault").await;
    let v = client
        .get_bucket_versioning()
        .bucket("vault")
        .send()
        .await
        .unwrap();
    assert_eq!(v.status(), Some(&BucketVersioningStatus::Enabled));
    assert_s3_error(
        client
            .put_bucket_versioning()
            .bucket("vault")
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Suspended)
                    .build(),
            )
            .send()
            .await,
        409,
        "InvalidBucketState",
    );
    let conf = client
        .get_object_lock_configuration()
        .bucket("vault")
        .send()
        .await
        .unwrap();
    let conf = conf.object_lock_configuration().unwrap();
    assert_eq!(
        conf.object_lock_enabled(),
        Some(&ObjectLockEnabled::Enabled)
    );
    assert!(conf.rule().is_none(), "no default retention yet");

    client
        .put_object_lock_configuration()
        .bucket("vault")
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = client
        .get_object_lock_configuration()
        .bucket("vault")
        .send()
        .await
        .unwrap();
    let rule = got.object_lock_configuration().unwrap().rule().unwrap();
    assert_eq!(rule.default_retention().unwrap().days(), Some(1));

    let v1 = put(&client, "vault", "report.pdf").await;
    let head = client
        .head_object()
        .bucket("vault")
        .key("report.pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    let until = head.object_lock_retain_until_date().unwrap().secs();
    let day_from_now = DateTime::from(SystemTime::now()).secs() + 86_400;
    assert!(
        (until - day_from_now).abs() < 60,
        "retained one day: {until}"
    );

    // Without the bypass the version stays; a plain delete only adds a marker.
    assert_eq!(
        delete_version(&client, "vault", "report.pdf", &v1, false).await,
        Err((403, "AccessDenied".into()))
    );
    let marker = client
        .delete_object()
        .bucket("vault")
        .key("report.pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(marker.delete_marker(), Some(true));
    // The root credential may bypass GOVERNANCE.
    assert_eq!(
        delete_version(&client, "vault", "report.pdf", &v1, true).await,
        Ok(())
    );

    // A bucket made without object lock cannot get it later, nor lock objects.
    let plain = server.bucket("plain").await;
    assert_s3_error(
        plain
            .get_object_lock_configuration()
            .bucket("plain")
            .send()
            .await,
        404,
        "ObjectLockConfigurationNotFoundError",
    );
    assert_s3_error(
        plain
            .put_object()
            .bucket("plain")
            .key("k")
            .object_lock_mode(ObjectLockMode::Governance)
            .object_lock_retain_until_date(in_future(60))
            .body(b"x".to_vec().into())
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    assert!(!common::exists(&plain, "plain", "k").await);
}

#[tokio::test]
async fn compliance_retention_binds_everyone_and_only_grows() {
    let server = TestServer::start();
    let client = locked_bucket(&server, "legal").await;
    let v = client
        .put_object()
        .bucket("legal")
        .key("ledger")
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(in_future(3600))
        .body(b"entries".to_vec().into())
        .send()
        .await
        .unwrap()
        .version_id
        .unwrap();
    let got = client
        .get_object_retention()
        .bucket("legal")
        .key("ledger")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.retention().unwrap().mode(),
        Some(&ObjectLockRetentionMode::Compliance)
    );
    // Root with the bypass cannot delete it, shorten it, remove it or weaken its mode.
    assert_eq!(
        delete_version(&client, "legal", "ledger", &v, true).await,
        Err((403, "AccessDenied".into()))
    );
    for weaker in [
        retention(ObjectLockRetentionMode::Compliance, 60),
        retention(ObjectLockRetentionMode::Governance, 7200),
    ] {
        assert_s3_error(
            client
                .put_object_retention()
                .bucket("legal")
                .key("ledger")
                .version_id(&v)
                .bypass_governance_retention(true)
                .retention(weaker)
                .send()
                .await,
            403,
            "AccessDenied",
        );
    }
    // Extending is allowed.
    client
        .put_object_retention()
        .bucket("legal")
        .key("ledger")
        .version_id(&v)
        .retention(retention(ObjectLockRetentionMode::Compliance, 7200))
        .send()
        .await
        .unwrap();
    // DeleteObjects reports the refusal per key and removes nothing.
    let out = client
        .delete_objects()
        .bucket("legal")
        .bypass_governance_retention(true)
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("ledger")
                        .version_id(&v)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.errors().len(), 1);
    assert_eq!(out.errors()[0].code(), Some("AccessDenied"));
    // Nor can the admin API's forced bucket deletion remove it.
    let admin = AdminClient {
        endpoint: server.endpoint.parse().unwrap(),
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
        region: REGION.into(),
        ca_cert: None,
    };
    assert!(admin
        .call_with_body(http::Method::DELETE, "buckets/legal?force=true", None)
        .await
        .is_err());
    let still = client
        .get_object()
        .bucket("legal")
        .key("ledger")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(
        still.body.collect().await.unwrap().into_bytes().as_ref(),
        b"entries"
    );
}

#[tokio::test]
async fn a_legal_hold_keeps_a_version_until_lifted() {
    let mut server = TestServer::start();
    let client = locked_bucket(&server, "holds").await;
    let v = put(&client, "holds", "evidence").await;
    let hold = |status| ObjectLockLegalHold::builder().status(status).build();
    client
        .put_object_legal_hold()
        .bucket("holds")
        .key("evidence")
        .version_id(&v)
        .legal_hold(hold(ObjectLockLegalHoldStatus::On))
        .send()
        .await
        .unwrap();
    // A hold outlives a restart and beats the bypass.
    server.kill9();
    server.restart();
    let client = server.client();
    let got = client
        .get_object_legal_hold()
        .bucket("holds")
        .key("evidence")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.legal_hold().unwrap().status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    assert_eq!(
        delete_version(&client, "holds", "evidence", &v, true).await,
        Err((403, "AccessDenied".into()))
    );
    client
        .put_object_legal_hold()
        .bucket("holds")
        .key("evidence")
        .version_id(&v)
        .legal_hold(hold(ObjectLockLegalHoldStatus::Off))
        .send()
        .await
        .unwrap();
    assert_eq!(
        delete_version(&client, "holds", "evidence", &v, false).await,
        Ok(())
    );

    // Legal holds need an object lock bucket too.
    let plain = server.bucket("nohold").await;
    put_bytes(&plain, "nohold", "k", b"x".to_vec()).await;
    assert_s3_error(
        plain
            .put_object_legal_hold()
            .bucket("nohold")
            .key("k")
            .legal_hold(hold(ObjectLockLegalHoldStatus::On))
            .send()
            .await,
        400,
        "InvalidRequest",
    );
}

#[tokio::test]
async fn governance_changes_need_the_bypass() {
    let server = TestServer::start();
    let client = locked_bucket(&server, "gov").await;
    let v = client
        .put_object()
        .bucket("gov")
        .key("k")
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(in_future(3600))
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap()
        .version_id
        .unwrap();
    let shorter = || retention(ObjectLockRetentionMode::Governance, 60);
    assert_s3_error(
        client
            .put_object_retention()
            .bucket("gov")
            .key("k")
            .version_id(&v)
            .retention(shorter())
            .send()
            .await,
        403,
        "AccessDenied",
    );
    client
        .put_object_retention()
        .bucket("gov")
        .key("k")
        .version_id(&v)
        .bypass_governance_retention(true)
        .retention(shorter())
        .send()
        .await
        .unwrap();
    let got = client
        .get_object_retention()
        .bucket("gov")
        .key("k")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    let until = got.retention().unwrap().retain_until_date().unwrap().secs();
    assert!(until < DateTime::from(SystemTime::now()).secs() + 120);
    // A retain-until date in the past is refused.
    assert_s3_error(
        client
            .put_object()
            .bucket("gov")
            .key("late")
            .object_lock_mode(ObjectLockMode::Governance)
            .object_lock_retain_until_date(DateTime::from_secs(1_000_000_000))
            .body(b"x".to_vec().into())
            .send()
            .await,
        400,
        "InvalidArgument",
    );
}

#[tokio::test]
async fn copies_and_multipart_uploads_carry_the_lock_their_headers_name() {
    let server = TestServer::start();
    let client = locked_bucket(&server, "vault").await;
    let source = put(&client, "vault", "source").await;

    // CopyObject with a COMPLIANCE retention: the copy is locked, the source is not.
    let copy = client
        .copy_object()
        .bucket("vault")
        .key("copy")
        .copy_source(format!("vault/source?versionId={source}"))
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(in_future(3600))
        .send()
        .await
        .expect("CopyObject with object lock headers")
        .version_id
        .expect("a versioned copy");
    let got = client
        .get_object_retention()
        .bucket("vault")
        .key("copy")
        .version_id(&copy)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.retention().unwrap().mode(),
        Some(&ObjectLockRetentionMode::Compliance)
    );
    assert_eq!(
        delete_version(&client, "vault", "copy", &copy, true).await,
        Err((403, "AccessDenied".into()))
    );
    assert_eq!(
        delete_version(&client, "vault", "source", &source, false).await,
        Ok(())
    );

    // CreateMultipartUpload with a legal hold: the completed object is held.
    let upload = client
        .create_multipart_upload()
        .bucket("vault")
        .key("big")
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .expect("CreateMultipartUpload with a legal hold");
    let upload_id = upload.upload_id().unwrap();
    let part = client
        .upload_part()
        .bucket("vault")
        .key("big")
        .upload_id(upload_id)
        .part_number(1)
        .body(vec![7u8; 1 << 20].into())
        .send()
        .await
        .unwrap();
    let done = client
        .complete_multipart_upload()
        .bucket("vault")
        .key("big")
        .upload_id(upload_id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("CompleteMultipartUpload");
    let big = done.version_id().expect("a versioned object").to_string();
    let head = client
        .head_object()
        .bucket("vault")
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.object_lock_legal_hold_status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    assert_eq!(
        delete_version(&client, "vault", "big", &big, true).await,
        Err((403, "AccessDenied".into()))
    );
    // A retention date in the past is refused on a copy as on a PUT.
    assert_s3_error(
        client
            .copy_object()
            .bucket("vault")
            .key("late")
            .copy_source("vault/copy")
            .object_lock_mode(ObjectLockMode::Governance)
            .object_lock_retain_until_date(DateTime::from_secs(1_000_000))
            .send()
            .await,
        400,
        "InvalidArgument",
    );
}
