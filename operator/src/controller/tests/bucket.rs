//! Bucket scenarios against the mock API server and a real coffer-server.

use std::sync::Arc;

use super::*;
use crate::controller::reconcile_bucket;
use crate::crd::*;

fn path(name: &str) -> String {
    format!("{COFFER}/buckets/{name}")
}

fn ready(fake: &FakeApi, name: &str) -> Condition {
    read::<Bucket>(fake, &path(name))
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == READY)
        .unwrap()
}

async fn pass(
    fake: &FakeApi,
    ctx: &Arc<crate::controller::Context>,
    name: &str,
) -> Result<(), String> {
    let b: Bucket = read(fake, &path(name));
    reconcile_bucket(Arc::new(b), ctx.clone())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn world(server: &RealServer, buckets: &[Bucket]) -> (FakeApi, Arc<crate::controller::Context>) {
    let (client, fake) = FakeApi::start();
    let ctx = context(client, Some(&server.endpoint), buckets);
    seed_store(&fake, &ObjectStore::test());
    for b in buckets {
        fake.put(&path(&b.metadata.name.clone().unwrap()), b);
    }
    (fake, ctx)
}

#[tokio::test]
async fn a_bucket_is_created_then_left_alone_and_recreated_when_it_drifts() {
    let server = RealServer::start();
    let (fake, ctx) = world(&server, &[Bucket::test("photos")]);
    pass(&fake, &ctx, "photos").await.unwrap();
    assert!(server.admin().bucket("photos").await.unwrap().is_some());
    let status = read::<Bucket>(&fake, &path("photos")).status.unwrap();
    assert_eq!(status.bucket_name.as_deref(), Some("photos"));
    assert_eq!(
        status.endpoint.as_deref(),
        Some("http://photos.media.svc:9000")
    );
    assert_eq!(
        status.usage,
        Some(BucketUsage {
            objects: 0,
            bytes: 0,
            complete: true
        })
    );
    assert!(ready(&fake, "photos").is_true());
    let conditions = read::<Bucket>(&fake, &path("photos"))
        .status
        .unwrap()
        .conditions;
    let types: Vec<_> = conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.is_true()))
        .collect();
    assert_eq!(
        types,
        [(READY, true), (PROGRESSING, false), (DEGRADED, false)]
    );
    assert!(conditions.iter().all(|c| c.observed_generation == Some(1)));
    assert_eq!(fake.take_events(), ["BucketCreated"]);
    fake.take_writes();

    pass(&fake, &ctx, "photos").await.unwrap();
    assert_eq!(fake.take_writes(), Vec::<String>::new());
    assert_eq!(fake.take_events(), Vec::<String>::new());

    server.admin().delete_bucket("photos").await.unwrap();
    pass(&fake, &ctx, "photos").await.unwrap();
    assert!(
        server.admin().bucket("photos").await.unwrap().is_some(),
        "recreated"
    );
}

#[tokio::test]
async fn an_existing_bucket_is_adopted_with_its_policy_applied() {
    let server = RealServer::start();
    server.admin().create_bucket("shared").await.unwrap();
    let mut b = Bucket::test("shared");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::shared/*"}]}"#;
    b.spec.policy = Some(policy.into());
    let (fake, ctx) = world(&server, &[b]);
    pass(&fake, &ctx, "shared").await.unwrap();
    assert_eq!(fake.take_events(), ["BucketAdopted"]);
    assert!(ready(&fake, "shared").is_true());
    let stored = server
        .admin()
        .bucket_policy("shared")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored["Statement"][0]["Action"], "s3:GetObject");
    fake.take_writes();
    pass(&fake, &ctx, "shared").await.unwrap();
    assert_eq!(fake.take_writes(), Vec::<String>::new());
}

#[tokio::test]
async fn a_bucket_name_claimed_from_another_namespace_is_refused() {
    let server = RealServer::start();
    let mut theirs = Bucket::test("photos");
    theirs.metadata.namespace = Some("team-a".into());
    theirs.metadata.uid = Some("uid-team-a".into());
    theirs.spec.store_ref.namespace = Some("media".into());
    let mut mine = Bucket::test("photos");
    mine.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-06-01T00:00:00Z".parse().unwrap(),
    ));
    let (fake, ctx) = world(&server, &[theirs, mine.clone()]);
    fake.put(&path("photos"), &mine);
    pass(&fake, &ctx, "photos").await.unwrap();
    let c = ready(&fake, "photos");
    assert_eq!(c.reason, "BucketClaimed");
    assert!(c.message.contains("team-a/photos"), "{}", c.message);
    assert!(server.admin().bucket("photos").await.unwrap().is_none());
    assert_eq!(fake.take_events(), ["BucketClaimed"]);
}

#[tokio::test]
async fn settings_the_server_refuses_keep_the_bucket_from_ready() {
    let server = RealServer::start();
    let mut b = Bucket::test("logs");
    // A rule without any action is not a lifecycle rule S3 accepts.
    b.spec.lifecycle = Some(vec![LifecycleRule {
        id: "nothing".into(),
        ..LifecycleRule::default()
    }]);
    let (fake, ctx) = world(&server, &[b]);
    pass(&fake, &ctx, "logs").await.unwrap();
    let c = ready(&fake, "logs");
    assert!(!c.is_true());
    assert_eq!(c.reason, "AdminAPIMalformedXML", "{}", c.message);
}

#[tokio::test]
async fn admin_api_errors_become_the_ready_condition() {
    let server = RealServer::start();
    let (fake, ctx) = world(&server, &[Bucket::test("photos")]);
    let mut root = fake.get(&format!("{CORE}/secrets/photos-root")).unwrap();
    root["data"]["COFFER_ROOT_PASSWORD"] = serde_json::json!(base64("wrong"));
    fake.put(&format!("{CORE}/secrets/photos-root"), root);
    let err = pass(&fake, &ctx, "photos").await.unwrap_err();
    assert!(
        err.contains("SignatureDoesNotMatch")
            || err.contains("AccessDenied")
            || err.contains("InvalidAccessKeyId"),
        "{err}"
    );
    let c = ready(&fake, "photos");
    assert!(!c.is_true());
    assert!(c.reason.starts_with("AdminAPI"), "{}", c.reason);
    assert!(!fake.everything().contains("wrong\""));
}

#[tokio::test]
async fn deletion_retains_or_removes_the_bucket_as_the_policy_says() {
    let server = RealServer::start();
    let admin = server.admin();
    for (name, policy) in [
        ("kept", BucketDeletionPolicy::Retain),
        ("gone", BucketDeletionPolicy::Delete),
    ] {
        let (fake, ctx) = world(&server, &[Bucket::test(name).with_deletion(policy)]);
        pass(&fake, &ctx, name).await.unwrap();
        let b: Bucket = read(&fake, &path(name));
        fake.put(&path(name), b.deleting());
        fake.take_events();
        pass(&fake, &ctx, name).await.unwrap();
        assert!(read::<Bucket>(&fake, &path(name))
            .metadata
            .finalizers
            .unwrap_or_default()
            .is_empty());
        let exists = admin.bucket(name).await.unwrap().is_some();
        match policy {
            BucketDeletionPolicy::Retain => {
                assert!(exists);
                assert_eq!(fake.take_events(), ["BucketRetained"]);
            }
            BucketDeletionPolicy::Delete => {
                assert!(!exists);
                assert_eq!(fake.take_events(), ["BucketDeleted"]);
            }
        }
    }
}

#[tokio::test]
async fn deletion_policy_delete_empties_the_bucket_then_removes_it() {
    let server = RealServer::start();
    let (fake, ctx) = world(
        &server,
        &[Bucket::test("full").with_deletion(BucketDeletionPolicy::Delete)],
    );
    pass(&fake, &ctx, "full").await.unwrap();
    for key in [
        "a.txt",
        "dir/b.txt",
        "with space & ampersand.txt",
        "d/\u{fc}nicode.txt",
    ] {
        let path = format!("/full/{}", crate::admin::encode_key_for_tests(key));
        let (code, _) = server
            .admin()
            .s3(http::Method::PUT, &path, None, b"hello")
            .await
            .unwrap();
        assert_eq!(code, 200, "{key}");
    }
    assert_eq!(
        server
            .admin()
            .bucket("full")
            .await
            .unwrap()
            .unwrap()
            .usage
            .objects,
        4
    );
    let b: Bucket = read(&fake, &path("full"));
    fake.put(&path("full"), b.deleting());
    fake.take_events();
    pass(&fake, &ctx, "full").await.unwrap();
    assert!(server.admin().bucket("full").await.unwrap().is_none());
    assert_eq!(fake.take_events(), ["BucketDeleted"]);
    assert!(read::<Bucket>(&fake, &path("full"))
        .metadata
        .finalizers
        .unwrap_or_default()
        .is_empty());
}

#[tokio::test]
async fn settings_reach_the_server_and_drift_is_put_back() {
    let server = RealServer::start();
    let mut b = Bucket::test("ledger");
    b.spec.versioning = Some(Versioning::Enabled);
    b.spec.quota = Some(Quota {
        max_size: Some("1Mi".into()),
        max_objects: Some(5),
    });
    let (fake, ctx) = world(&server, &[b]);
    pass(&fake, &ctx, "ledger").await.unwrap();
    assert!(ready(&fake, "ledger").is_true());
    let info = server.admin().bucket("ledger").await.unwrap().unwrap();
    assert_eq!(info.versioning, "Enabled");
    // Someone suspends versioning behind the operator's back: the next pass restores it.
    server
        .admin()
        .put_bucket("ledger", &serde_json::json!({ "versioning": "Suspended" }))
        .await
        .unwrap();
    pass(&fake, &ctx, "ledger").await.unwrap();
    let info = server.admin().bucket("ledger").await.unwrap().unwrap();
    assert_eq!(info.versioning, "Enabled");

    // Lifecycle rules reach the server as its S3 configuration, and go when emptied.
    let mut b: Bucket = read(&fake, &path("ledger"));
    b.spec.lifecycle = Some(vec![LifecycleRule {
        id: "logs".into(),
        prefix: Some("logs/".into()),
        expiration_days: Some(30),
        ..Default::default()
    }]);
    fake.put(&path("ledger"), &b);
    pass(&fake, &ctx, "ledger").await.unwrap();
    assert!(ready(&fake, "ledger").is_true());
    let doc = server.admin().bucket_lifecycle("ledger").await.unwrap();
    assert!(
        doc.as_deref()
            .is_some_and(|d| d.contains("<Days>30</Days>")),
        "{doc:?}"
    );
    b.spec.lifecycle = Some(Vec::new());
    fake.put(&path("ledger"), &b);
    pass(&fake, &ctx, "ledger").await.unwrap();
    assert_eq!(
        server.admin().bucket_lifecycle("ledger").await.unwrap(),
        None
    );

    // Object lock cannot be added to a bucket that exists without it: a terminal condition.
    server.admin().create_bucket("plain").await.unwrap();
    let mut locked = Bucket::test("plain");
    locked.spec.versioning = Some(Versioning::Enabled);
    locked.spec.object_lock = Some(ObjectLock {
        enabled: true,
        ..Default::default()
    });
    fake.put(&path("plain"), &locked);
    pass(&fake, &ctx, "plain").await.unwrap();
    let cond = ready(&fake, "plain");
    assert!(!cond.is_true());
    assert_eq!(
        cond.reason, "AdminAPIInvalidBucketState",
        "{}",
        cond.message
    );
}
