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
    seed_store(&fake, &ObjectStore::test().adopting());
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
    seed_store(&fake, &ObjectStore::test().adopting());
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

fn path_in(ns: &str, name: &str) -> String {
    format!("/apis/coffer.dev/v1alpha1/namespaces/{ns}/buckets/{name}")
}

async fn pass_in(
    fake: &FakeApi,
    ctx: &Arc<crate::controller::Context>,
    ns: &str,
    name: &str,
) -> Result<kube::runtime::controller::Action, String> {
    let b: Bucket = read(fake, &path_in(ns, name));
    reconcile_bucket(Arc::new(b), ctx.clone())
        .await
        .map_err(|e| e.to_string())
}

fn condition_in(fake: &FakeApi, ns: &str, name: &str, type_: &str) -> Condition {
    read::<Bucket>(fake, &path_in(ns, name))
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_)
        .unwrap()
}

/// Bucket `name` of namespace `ns` pointing at store `media/photos`.
fn tenant_bucket(ns: &str, name: &str) -> Bucket {
    let mut b = Bucket::test(name);
    b.metadata.namespace = Some(ns.into());
    b.metadata.uid = Some(format!("uid-{ns}-{name}"));
    b.spec.store_ref.namespace = Some("media".into());
    b
}

#[tokio::test]
async fn a_bucket_or_key_from_a_namespace_the_store_does_not_allow_is_refused() {
    let server = RealServer::start();
    let (fake, ctx) = world(&server, &[]);
    let mut intruder = tenant_bucket("team-x", "loot").with_deletion(BucketDeletionPolicy::Delete);
    fake.put(&path_in("team-x", "loot"), &intruder);
    pass_in(&fake, &ctx, "team-x", "loot").await.unwrap();
    let ready = condition_in(&fake, "team-x", "loot", READY);
    assert_eq!(ready.reason, "NamespaceNotAllowed");
    assert!(
        ready
            .message
            .contains("does not allow resources of namespace team-x"),
        "{}",
        ready.message
    );
    assert!(condition_in(&fake, "team-x", "loot", DEGRADED).is_true());
    assert_eq!(fake.take_events(), ["NamespaceNotAllowed"]);
    assert!(server.admin().bucket("loot").await.unwrap().is_none());

    // Neither can it get a key for a bucket of the store.
    let mut key = AccessKey::test("app", "loot");
    key.metadata.namespace = Some("team-x".into());
    key.spec.store_ref.namespace = Some("media".into());
    let key_path = "/apis/coffer.dev/v1alpha1/namespaces/team-x/accesskeys/app";
    fake.put(key_path, &key);
    crate::controller::reconcile_access_key(Arc::new(read(&fake, key_path)), ctx.clone())
        .await
        .unwrap();
    let key: AccessKey = read(&fake, key_path);
    let ready = key
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == READY)
        .unwrap();
    assert_eq!(ready.reason, "NamespaceNotAllowed");
    assert!(server.admin().keys().await.unwrap().is_empty());

    // Deleting it (deletionPolicy Delete) deletes nothing of the store's.
    server.admin().create_bucket("loot").await.unwrap();
    intruder = read(&fake, &path_in("team-x", "loot"));
    fake.put(&path_in("team-x", "loot"), intruder.deleting());
    pass_in(&fake, &ctx, "team-x", "loot").await.unwrap();
    assert!(server.admin().bucket("loot").await.unwrap().is_some());
    server.admin().delete_bucket("loot").await.unwrap();

    // The store names the namespace, or selects it by label: allowed.
    seed_store(&fake, &ObjectStore::test().allowing(&["team-x"]));
    fake.put(&path_in("team-x", "okay"), tenant_bucket("team-x", "okay"));
    pass_in(&fake, &ctx, "team-x", "okay").await.unwrap();
    let ok = condition_in(&fake, "team-x", "okay", READY);
    assert!(ok.is_true(), "{ok:?}");
    let mut selecting = ObjectStore::test();
    selecting.spec.access = Some(StoreAccess {
        namespace_selector: Some(
            serde_json::from_value(
                serde_json::json!({"matchLabels": {"coffer.dev/tenant": "true"}}),
            )
            .unwrap(),
        ),
        ..StoreAccess::default()
    });
    seed_store(&fake, &selecting);
    fake.put(
        "/api/v1/namespaces/team-y",
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-y", "labels": {"coffer.dev/tenant": "true"}}}),
    );
    fake.put(&path_in("team-y", "fine"), tenant_bucket("team-y", "fine"));
    pass_in(&fake, &ctx, "team-y", "fine").await.unwrap();
    let fine = condition_in(&fake, "team-y", "fine", READY);
    assert!(fine.is_true(), "{fine:?}");
}

#[tokio::test]
async fn an_existing_bucket_no_resource_created_is_adopted_only_where_the_store_allows_it() {
    let server = RealServer::start();
    server.admin().create_bucket("payroll").await.unwrap();
    server
        .admin()
        .s3(http::Method::PUT, "/payroll/salaries.csv", None, b"secret")
        .await
        .unwrap();
    let (fake, ctx) = world(
        &server,
        &[Bucket::test("payroll").with_deletion(BucketDeletionPolicy::Delete)],
    );
    pass(&fake, &ctx, "payroll").await.unwrap();
    let c = ready(&fake, "payroll");
    assert_eq!(c.reason, "BucketExists");
    assert!(c.message.contains("allowBucketAdoption"), "{}", c.message);
    assert_eq!(fake.take_events(), ["BucketExists"]);

    // Deleting the refused resource leaves the bucket and its objects alone.
    let b: Bucket = read(&fake, &path("payroll"));
    fake.put(&path("payroll"), b.deleting());
    pass(&fake, &ctx, "payroll").await.unwrap();
    let info = server.admin().bucket("payroll").await.unwrap().unwrap();
    assert_eq!(info.usage.objects, 1);

    // With the store's consent a new resource adopts it.
    seed_store(&fake, &ObjectStore::test().adopting());
    fake.put(&path("payroll"), Bucket::test("payroll"));
    pass(&fake, &ctx, "payroll").await.unwrap();
    assert!(ready(&fake, "payroll").is_true());
    assert!(fake.take_events().contains(&"BucketAdopted".to_string()));
}

#[tokio::test]
async fn buckets_of_two_namespaces_naming_one_bucket_never_both_manage_it() {
    let server = RealServer::start();
    // One operator watching two namespaces has one cache per namespace: neither cache knows
    // the other namespace's Bucket.
    let (client, fake) = FakeApi::start();
    let store = ObjectStore::test().allowing(&["team-a", "team-b"]);
    seed_store(&fake, &store);
    let a = tenant_bucket("team-a", "shared");
    let mut b = tenant_bucket("team-b", "shared");
    b.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2025-06-01T00:00:00Z".parse().unwrap(),
    ));
    fake.put(&path_in("team-a", "shared"), &a);
    fake.put(&path_in("team-b", "shared"), &b);
    let ctx_a = context(client.clone(), Some(&server.endpoint), &[a]);
    let ctx_b = context(client, Some(&server.endpoint), &[b]);

    pass_in(&fake, &ctx_a, "team-a", "shared").await.unwrap();
    assert!(condition_in(&fake, "team-a", "shared", READY).is_true());
    fake.take_events();
    for _ in 0..2 {
        pass_in(&fake, &ctx_b, "team-b", "shared").await.unwrap();
        pass_in(&fake, &ctx_a, "team-a", "shared").await.unwrap();
    }
    let loser = condition_in(&fake, "team-b", "shared", READY);
    assert_eq!(loser.reason, "BucketClaimed");
    assert!(loser.message.contains("team-a/shared"), "{}", loser.message);
    assert!(condition_in(&fake, "team-a", "shared", READY).is_true());
    assert_eq!(fake.take_events(), ["BucketClaimed"], "said once");

    // The claim is released when its resource goes (Retain): the bucket then belongs to no
    // resource, and the other one may take it only by adoption.
    let a: Bucket = read(&fake, &path_in("team-a", "shared"));
    fake.put(&path_in("team-a", "shared"), a.deleting());
    pass_in(&fake, &ctx_a, "team-a", "shared").await.unwrap();
    fake.remove(&path_in("team-a", "shared"));
    pass_in(&fake, &ctx_b, "team-b", "shared").await.unwrap();
    assert_eq!(
        condition_in(&fake, "team-b", "shared", READY).reason,
        "BucketExists"
    );
}

#[tokio::test]
async fn deleting_a_versioned_bucket_removes_every_version_and_delete_marker() {
    let server = RealServer::start();
    let mut b = Bucket::test("history").with_deletion(BucketDeletionPolicy::Delete);
    b.spec.versioning = Some(Versioning::Enabled);
    let (fake, ctx) = world(&server, &[b]);
    pass(&fake, &ctx, "history").await.unwrap();
    let admin = server.admin();
    for (key, body) in [("a.txt", "1"), ("a.txt", "2"), ("dir/b c.txt", "3")] {
        let path = format!("/history/{}", crate::admin::encode_key_for_tests(key));
        assert_eq!(
            admin
                .s3(http::Method::PUT, &path, None, body.as_bytes())
                .await
                .unwrap()
                .0,
            200
        );
    }
    // A delete without a version id leaves a delete marker over the versions.
    assert_eq!(
        admin
            .s3(http::Method::DELETE, "/history/a.txt", None, b"")
            .await
            .unwrap()
            .0,
        204
    );

    let b: Bucket = read(&fake, &path("history"));
    fake.put(&path("history"), b.deleting());
    fake.take_events();
    let mut passes = 0;
    while read::<Bucket>(&fake, &path("history"))
        .metadata
        .finalizers
        .is_some_and(|f| !f.is_empty())
    {
        passes += 1;
        assert!(passes <= 3, "the deletion never finishes");
        pass(&fake, &ctx, "history")
            .await
            .expect("emptying is progress, not an error");
    }
    assert!(admin.bucket("history").await.unwrap().is_none());
    assert_eq!(fake.take_events(), ["BucketDeleted"]);
}

#[tokio::test]
async fn removing_the_policy_or_lifecycle_from_the_spec_removes_them_from_the_bucket() {
    let server = RealServer::start();
    let mut b = Bucket::test("site");
    b.spec.policy = Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"}]}"#.into());
    b.spec.lifecycle = Some(vec![LifecycleRule {
        id: "tmp".into(),
        prefix: Some("tmp/".into()),
        expiration_days: Some(1),
        ..Default::default()
    }]);
    let (fake, ctx) = world(&server, &[b]);
    pass(&fake, &ctx, "site").await.unwrap();
    let admin = server.admin();
    assert!(admin.bucket_policy("site").await.unwrap().is_some());
    assert!(admin.bucket_lifecycle("site").await.unwrap().is_some());

    let mut b: Bucket = read(&fake, &path("site"));
    b.spec.policy = None;
    b.spec.lifecycle = None;
    b.metadata.generation = Some(2);
    fake.put(&path("site"), &b);
    pass(&fake, &ctx, "site").await.unwrap();
    assert!(ready(&fake, "site").is_true());
    assert_eq!(admin.bucket_policy("site").await.unwrap(), None);
    assert_eq!(admin.bucket_lifecycle("site").await.unwrap(), None);
}
