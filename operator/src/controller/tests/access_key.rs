//! AccessKey scenarios against the mock API server and a real coffer-server.

use std::sync::Arc;

use http::Method;
use serde_json::json;

use super::*;
use crate::controller::reconcile_access_key;
use crate::crd::*;

const KEY: &str = "/apis/coffer.dev/v1alpha1/namespaces/media/accesskeys/app";
const SECRET: &str = "/api/v1/namespaces/media/secrets/app";

async fn pass(fake: &FakeApi, ctx: &Arc<crate::controller::Context>) -> Result<(), String> {
    let k: AccessKey = read(fake, KEY);
    reconcile_access_key(Arc::new(k), ctx.clone())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Store `photos` with a Ready Bucket resource `photos` (bucket created on the server), the
/// bucket `other` nobody granted, and AccessKey `app` for `photos`.
async fn world(server: &RealServer) -> (FakeApi, Arc<crate::controller::Context>) {
    let (client, fake) = FakeApi::start();
    let ctx = context(client, Some(&server.endpoint), &[]);
    seed_store(&fake, &ObjectStore::test());
    server.admin().create_bucket("photos").await.unwrap();
    server.admin().create_bucket("other").await.unwrap();
    let mut bucket = Bucket::test("photos");
    bucket.status = Some(BucketStatus {
        conditions: vec![Condition::new(READY, true, "BucketReady", "", Some(1))],
        bucket_name: Some("photos".into()),
        ..BucketStatus::default()
    });
    fake.put(&format!("{COFFER}/buckets/photos"), &bucket);
    fake.put(KEY, AccessKey::test("app", "photos"));
    (fake, ctx)
}

fn secret_data(fake: &FakeApi) -> std::collections::BTreeMap<String, String> {
    let s: k8s_openapi::api::core::v1::Secret = read(fake, SECRET);
    s.data
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

/// Moves every recorded revocation time (the Secret's rotation state) into the past.
fn end_grace_periods(fake: &FakeApi) {
    let mut secret = fake.get(SECRET).unwrap();
    let text = secret["metadata"]["annotations"]["coffer.dev/rotation"]
        .as_str()
        .unwrap()
        .to_string();
    let mut state: serde_json::Value = serde_json::from_str(&text).unwrap();
    for r in state["retiredKeys"].as_array_mut().unwrap() {
        r["revokeAfter"] = json!("2026-01-01T00:00:00Z");
    }
    secret["metadata"]["annotations"]["coffer.dev/rotation"] = json!(state.to_string());
    fake.put(SECRET, secret);
}

fn status(fake: &FakeApi) -> AccessKeyStatus {
    read::<AccessKey>(fake, KEY).status.unwrap()
}

fn ready(fake: &FakeApi) -> Condition {
    status(fake)
        .conditions
        .into_iter()
        .find(|c| c.type_ == READY)
        .unwrap()
}

/// The store's answer to an S3 PUT signed with the key in the Secret.
async fn put_with_secret(
    server: &RealServer,
    data: &std::collections::BTreeMap<String, String>,
    path: &str,
) -> u16 {
    let admin = crate::admin::AdminAccess::default()
        .client(
            &server.endpoint,
            &crate::admin::RootCredential {
                user: data["AWS_ACCESS_KEY_ID"].clone(),
                password: data["AWS_SECRET_ACCESS_KEY"].clone(),
            },
            "us-east-1",
            None,
        )
        .unwrap();
    admin.s3(Method::PUT, path, None, b"data").await.unwrap().0
}

#[tokio::test]
async fn an_access_key_delivers_a_scoped_working_secret_and_then_changes_nothing() {
    let server = RealServer::start();
    let (fake, ctx) = world(&server).await;
    pass(&fake, &ctx).await.unwrap();

    let data = secret_data(&fake);
    let id = data["AWS_ACCESS_KEY_ID"].clone();
    assert!(id.starts_with("CK"));
    assert_eq!(data["AWS_ENDPOINT_URL"], "http://photos.media.svc:9000");
    assert_eq!(data["BUCKET_NAME"], "photos");
    assert_eq!(data["BUCKET_HOST"], "photos.media.svc");
    assert_eq!(data["BUCKET_PORT"], "9000");
    assert_eq!(data["COSI_S3_ACCESS_KEY_ID"], id);
    let info = server.admin().key(&id).await.unwrap().unwrap();
    assert_eq!(
        info.buckets,
        [crate::admin::Grant {
            name: "photos".into(),
            mode: "ReadWrite".into()
        }]
    );
    assert_eq!(
        put_with_secret(&server, &data, "/photos/hello.txt").await,
        200
    );
    assert_eq!(
        put_with_secret(&server, &data, "/other/hello.txt").await,
        403
    );

    let st = status(&fake);
    assert_eq!(st.access_key_id.as_deref(), Some(id.as_str()));
    assert!(ready(&fake).is_true());
    let events = fake.take_events();
    assert_eq!(events, ["KeyIssued"]);
    let secret = &data["AWS_SECRET_ACCESS_KEY"];
    assert!(!serde_json::to_string(&st)
        .unwrap()
        .contains(secret.as_str()));

    fake.take_writes();
    pass(&fake, &ctx).await.unwrap();
    assert_eq!(fake.take_writes(), Vec::<String>::new());
    assert_eq!(fake.take_events(), Vec::<String>::new());
}

#[tokio::test]
async fn rotation_issues_a_new_key_and_revokes_the_old_one_after_the_grace_period() {
    let server = RealServer::start();
    let (fake, ctx) = world(&server).await;
    pass(&fake, &ctx).await.unwrap();
    let before = secret_data(&fake);
    let hash = |fake: &FakeApi| {
        fake.get(SECRET).unwrap()["metadata"]["annotations"]["coffer.dev/content-hash"].clone()
    };
    let old_hash = hash(&fake);

    let mut key: AccessKey = read(&fake, KEY);
    key.spec.rotation = Some(Rotation {
        period: None,
        grace_period: Some("1h".into()),
        requested_at: Some("2026-11-22".into()),
    });
    fake.put(KEY, &key);
    fake.take_events();
    pass(&fake, &ctx).await.unwrap();

    let after = secret_data(&fake);
    assert_ne!(after["AWS_ACCESS_KEY_ID"], before["AWS_ACCESS_KEY_ID"]);
    assert_ne!(
        hash(&fake),
        old_hash,
        "the content hash tells Deployments to roll"
    );
    assert_eq!(
        put_with_secret(&server, &after, "/photos/new.txt").await,
        200
    );
    assert_eq!(
        put_with_secret(&server, &before, "/photos/old.txt").await,
        200,
        "the old key works during the grace period"
    );
    let st = status(&fake);
    assert_eq!(st.retired_keys.len(), 1);
    assert_eq!(
        st.retired_keys[0].access_key_id,
        before["AWS_ACCESS_KEY_ID"]
    );
    assert_eq!(st.handled_rotation_request.as_deref(), Some("2026-11-22"));
    assert_eq!(fake.take_events(), ["KeyRotated"]);

    // A second pass within the grace period rotates nothing more.
    pass(&fake, &ctx).await.unwrap();
    assert_eq!(
        secret_data(&fake)["AWS_ACCESS_KEY_ID"],
        after["AWS_ACCESS_KEY_ID"]
    );

    // The grace period ends.
    end_grace_periods(&fake);
    pass(&fake, &ctx).await.unwrap();
    assert!(server
        .admin()
        .key(&before["AWS_ACCESS_KEY_ID"])
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        put_with_secret(&server, &before, "/photos/old.txt").await,
        403
    );
    assert!(status(&fake).retired_keys.is_empty());
    assert_eq!(fake.take_events(), ["KeyRevoked"]);
}

#[tokio::test]
async fn a_key_the_store_lost_is_registered_again_and_orphans_are_revoked() {
    let server = RealServer::start();
    let (fake, ctx) = world(&server).await;
    pass(&fake, &ctx).await.unwrap();
    let data = secret_data(&fake);
    let id = data["AWS_ACCESS_KEY_ID"].clone();
    server.admin().delete_key(&id).await.unwrap();
    // A key this AccessKey registered before a crash, never written to its Secret.
    let key: AccessKey = read(&fake, KEY);
    server
        .admin()
        .put_key(&crate::admin::KeyRequest {
            access_key: "CKORPHAN".into(),
            secret_key: "orphan-secret-orphan-secret".into(),
            buckets: vec![crate::admin::Grant {
                name: "photos".into(),
                mode: "ReadOnly".into(),
            }],
            expires_at: None,
            description: super::super::access_key::description(&key),
        })
        .await
        .unwrap();
    pass(&fake, &ctx).await.unwrap();
    assert!(server.admin().key(&id).await.unwrap().is_some());
    assert_eq!(secret_data(&fake), data, "the same key and secret");
    assert_eq!(
        put_with_secret(&server, &data, "/photos/again.txt").await,
        200
    );
    assert!(server.admin().key("CKORPHAN").await.unwrap().is_none());
}

#[tokio::test]
async fn a_key_reaches_only_buckets_its_namespace_manages() {
    let server = RealServer::start();
    let (fake, ctx) = world(&server).await;
    fake.put(KEY, AccessKey::test("app", "other"));
    pass(&fake, &ctx).await.unwrap();
    let c = ready(&fake);
    assert!(!c.is_true());
    assert_eq!(c.reason, "BucketNotFound");
    let progressing = status(&fake)
        .conditions
        .into_iter()
        .find(|c| c.type_ == PROGRESSING)
        .unwrap();
    assert!(
        progressing.is_true(),
        "waiting for the Bucket is progress, not degradation"
    );
    assert!(fake.get(SECRET).is_none());
    assert!(server.admin().keys().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_secret_someone_else_owns_is_never_overwritten() {
    let server = RealServer::start();
    let (fake, ctx) = world(&server).await;
    let theirs = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app", "namespace": "media"},
                        "data": {"password": base64("theirs")}});
    fake.put(SECRET, theirs.clone());
    pass(&fake, &ctx).await.unwrap();
    assert_eq!(fake.get(SECRET).unwrap(), theirs);
    let c = ready(&fake);
    assert_eq!(c.reason, "SecretConflict");
    let degraded = status(&fake)
        .conditions
        .into_iter()
        .find(|c| c.type_ == DEGRADED)
        .unwrap();
    assert!(degraded.is_true());
}

#[tokio::test]
async fn deleting_the_access_key_revokes_every_key_it_issued() {
    let server = RealServer::start();
    let (fake, ctx) = world(&server).await;
    pass(&fake, &ctx).await.unwrap();
    let mut key: AccessKey = read(&fake, KEY);
    key.spec.rotation = Some(Rotation {
        period: None,
        grace_period: Some("1h".into()),
        requested_at: Some("now".into()),
    });
    fake.put(KEY, &key);
    pass(&fake, &ctx).await.unwrap();
    assert_eq!(server.admin().keys().await.unwrap().len(), 2);
    let key: AccessKey = read(&fake, KEY);
    fake.put(KEY, key.deleting());
    fake.take_events();
    pass(&fake, &ctx).await.unwrap();
    assert!(server.admin().keys().await.unwrap().is_empty());
    assert!(read::<AccessKey>(&fake, KEY)
        .metadata
        .finalizers
        .unwrap_or_default()
        .is_empty());
    assert_eq!(fake.take_events(), ["KeyRevoked"]);
}

#[tokio::test]
async fn a_failed_status_write_after_a_rotation_keeps_the_retired_key_for_its_grace_period() {
    let server = RealServer::start();
    let (fake, ctx) = world(&server).await;
    pass(&fake, &ctx).await.unwrap();
    let before = secret_data(&fake);

    let mut key: AccessKey = read(&fake, KEY);
    key.spec.rotation = Some(Rotation {
        period: None,
        grace_period: Some("1h".into()),
        requested_at: Some("now".into()),
    });
    fake.put(KEY, &key);
    // The rotation happens, but its status write fails.
    fake.fail_writes_to(&format!("{KEY}/status"));
    assert!(pass(&fake, &ctx).await.is_err());
    fake.heal_writes_to(&format!("{KEY}/status"));
    let after = secret_data(&fake);
    assert_ne!(after["AWS_ACCESS_KEY_ID"], before["AWS_ACCESS_KEY_ID"]);
    assert!(status(&fake).retired_keys.is_empty(), "the status lost it");

    // The next pass neither rotates again nor revokes the old key before its time.
    pass(&fake, &ctx).await.unwrap();
    assert_eq!(
        secret_data(&fake)["AWS_ACCESS_KEY_ID"],
        after["AWS_ACCESS_KEY_ID"]
    );
    assert_eq!(
        put_with_secret(&server, &before, "/photos/old.txt").await,
        200,
        "apps still on the old key keep working during the grace period"
    );
    let st = status(&fake);
    assert_eq!(st.retired_keys.len(), 1);
    assert_eq!(
        st.retired_keys[0].access_key_id,
        before["AWS_ACCESS_KEY_ID"]
    );
    assert_eq!(st.handled_rotation_request.as_deref(), Some("now"));

    // After the grace period it goes.
    end_grace_periods(&fake);
    pass(&fake, &ctx).await.unwrap();
    assert!(server
        .admin()
        .key(&before["AWS_ACCESS_KEY_ID"])
        .await
        .unwrap()
        .is_none());
}
