//! ObjectStore scenarios.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::controller::reconcile_store;
use crate::crd::*;
use crate::fixtures::pool;

const STORE: &str = "/apis/coffer.dev/v1alpha1/namespaces/media/objectstores/photos";

fn store_status(fake: &FakeApi) -> ObjectStoreStatus {
    read::<ObjectStore>(fake, STORE).status.unwrap()
}

fn condition(status: &ObjectStoreStatus, type_: &str) -> Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
        .unwrap()
}

async fn pass(
    fake: &FakeApi,
    ctx: &Arc<crate::controller::Context>,
) -> kube::runtime::controller::Action {
    let store: ObjectStore = read(fake, STORE);
    reconcile_store(Arc::new(store), ctx.clone()).await.unwrap()
}

/// Creates the store's objects, then makes its pods exist and be ready, as the StatefulSet
/// controller and kubelet would, with pod revisions `revisions` and update revision `v2`.
async fn running_store(
    fake: &FakeApi,
    ctx: &Arc<crate::controller::Context>,
    store: ObjectStore,
    revisions: &[&str],
) {
    fake.put(STORE, &store);
    pass(fake, ctx).await;
    let sts = format!("{APPS}/statefulsets/photos-pool-0");
    let mut obj = fake.get(&sts).unwrap();
    let generation = obj["metadata"]["generation"].clone();
    obj["status"] = json!({"replicas": revisions.len(), "readyReplicas": revisions.len(), "updateRevision": "v2", "currentRevision": "v1", "observedGeneration": generation});
    fake.put(&sts, obj);
    for (i, rev) in revisions.iter().enumerate() {
        fake.put(
            &format!("{CORE}/pods/photos-pool-0-{i}"),
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("photos-pool-0-{i}"), "namespace": "media",
                    "labels": {"coffer.dev/store": "photos", "coffer.dev/pool": "pool-0", "controller-revision-hash": rev}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}
            }),
        );
    }
    // The generated root Secret is replaced by the one the real server runs with.
    seed_store(fake, &read::<ObjectStore>(fake, STORE));
    fake.take_writes();
    fake.take_events();
}

#[tokio::test]
async fn first_reconcile_creates_the_store_and_a_second_changes_nothing() {
    let (client, fake) = FakeApi::start();
    let ctx = context(client, None, &[]);
    fake.put(STORE, ObjectStore::test().finalized());
    pass(&fake, &ctx).await;

    let writes = fake.take_writes();
    for expected in [
        format!("POST {CORE}/secrets"),
        format!("PATCH {CORE}/services/photos-hl"),
        format!("PATCH {CORE}/services/photos"),
        format!("PATCH {APPS}/statefulsets/photos-pool-0"),
        "PATCH /apis/policy/v1/namespaces/media/poddisruptionbudgets/photos-pool-0".to_string(),
        format!("PATCH {CORE}/configmaps/photos-topology"),
        format!("PATCH {STORE}/status"),
    ] {
        assert!(
            writes.contains(&expected),
            "missing {expected} in {writes:#?}"
        );
    }
    assert_eq!(
        writes
            .iter()
            .filter(|w| w.starts_with(&format!("POST {CORE}/secrets")))
            .count(),
        2
    );
    assert!(fake.get(&format!("{CORE}/secrets/photos-root")).is_some());
    assert!(fake
        .get(&format!("{CORE}/secrets/photos-cluster-secret"))
        .is_some());
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        read(&fake, &format!("{CORE}/configmaps/photos-topology"));
    let topology =
        coffer_server::cluster::Topology::parse(&cm.data.unwrap()["topology.json"]).unwrap();
    assert_eq!(topology.pools[0].servers.len(), 4);

    let status = store_status(&fake);
    assert_eq!(
        status.endpoint.as_deref(),
        Some("http://photos.media.svc:9000")
    );
    assert_eq!(status.servers.as_deref(), Some("0/4"));
    assert_eq!(status.observed_generation, Some(1));
    let ready = condition(&status, READY);
    assert!(!ready.is_true());
    assert_eq!(ready.reason, "ServersNotReady");
    assert_eq!(ready.observed_generation, Some(1));
    assert!(condition(&status, PROGRESSING).is_true());
    assert!(!condition(&status, DEGRADED).is_true());
    assert_eq!(fake.take_events(), ["SecretGenerated", "SecretGenerated"]);
    // No secret value reached status or an Event.
    let root: k8s_openapi::api::core::v1::Secret =
        read(&fake, &format!("{CORE}/secrets/photos-root"));
    let password = String::from_utf8(root.data.unwrap()["COFFER_ROOT_PASSWORD"].0.clone()).unwrap();
    assert!(!serde_json::to_string(&status).unwrap().contains(&password));

    pass(&fake, &ctx).await;
    assert_eq!(
        fake.take_writes(),
        Vec::<String>::new(),
        "an unchanged world needs no writes"
    );
    assert_eq!(fake.take_events(), Vec::<String>::new());
}

#[tokio::test]
async fn drift_is_repaired_and_generated_secrets_are_never_overwritten() {
    let (client, fake) = FakeApi::start();
    let ctx = context(client, None, &[]);
    fake.put(STORE, ObjectStore::test().finalized());
    pass(&fake, &ctx).await;
    fake.take_writes();
    let sts = format!("{APPS}/statefulsets/photos-pool-0");
    let mut obj = fake.get(&sts).unwrap();
    obj["spec"]["replicas"] = json!(1);
    fake.put(&sts, obj);
    fake.remove(&format!("{CORE}/services/photos"));
    let mut root = fake.get(&format!("{CORE}/secrets/photos-root")).unwrap();
    root["data"]["COFFER_ROOT_PASSWORD"] = json!(base64("chosen-by-hand"));
    fake.put(&format!("{CORE}/secrets/photos-root"), root.clone());

    pass(&fake, &ctx).await;
    assert_eq!(
        fake.take_writes(),
        [
            format!("PATCH {CORE}/services/photos"),
            format!("PATCH {sts}")
        ]
    );
    assert_eq!(fake.get(&sts).unwrap()["spec"]["replicas"], 4);
    assert_eq!(
        fake.get(&format!("{CORE}/secrets/photos-root")).unwrap(),
        root
    );
}

#[tokio::test]
async fn an_image_change_replaces_one_server_at_a_time_while_the_store_is_whole() {
    let server = RealServer::start();
    let (client, fake) = FakeApi::start();
    let ctx = context(client, Some(&server.endpoint), &[]);
    let store = ObjectStore::test()
        .with_pools(vec![pool("pool-0", 4, 1)])
        .finalized();
    running_store(
        &fake,
        &ctx,
        store.with_image("coffer:2"),
        &["v1", "v1", "v2", "v2"],
    )
    .await;

    pass(&fake, &ctx).await;
    let writes = fake.take_writes();
    assert_eq!(
        writes
            .iter()
            .filter(|w| w.starts_with("DELETE"))
            .collect::<Vec<_>>(),
        [&format!("DELETE {CORE}/pods/photos-pool-0-1")],
        "exactly one server, the highest outdated ordinal: {writes:#?}"
    );
    assert_eq!(fake.take_events(), ["ReplacingServer"]);
    let status = store_status(&fake);
    assert_eq!(condition(&status, READY).reason, "RollingUpdate");
    assert!(condition(&status, PROGRESSING).is_true());
    assert_eq!(status.drives.online, 4);

    // The replaced server is back but not ready yet: nothing else is touched.
    let mut pod = fake.get(&format!("{CORE}/pods/photos-pool-0-2")).unwrap();
    pod["metadata"]["name"] = json!("photos-pool-0-1");
    pod["status"]["conditions"][0]["status"] = json!("False");
    fake.put(&format!("{CORE}/pods/photos-pool-0-1"), pod);
    pass(&fake, &ctx).await;
    assert!(fake.take_writes().iter().all(|w| !w.starts_with("DELETE")));
}

#[tokio::test]
async fn a_store_without_an_image_runs_the_operators_server_image() {
    let server = RealServer::start();
    let (client, fake) = FakeApi::start();
    let ctx = context(client, Some(&server.endpoint), &[]);
    let mut store = ObjectStore::test()
        .with_pools(vec![pool("pool-0", 4, 1)])
        .finalized();
    store.spec.image = None;
    running_store(&fake, &ctx, store, &["v2", "v2", "v2", "v2"]).await;
    pass(&fake, &ctx).await;
    let sts = fake
        .get(&format!("{APPS}/statefulsets/photos-pool-0"))
        .unwrap();
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "coffer:default"
    );
    assert_eq!(
        store_status(&fake).current_image.as_deref(),
        Some("coffer:default")
    );
}

#[tokio::test]
async fn a_server_being_replaced_is_progressing_before_the_admin_api_answers() {
    let server = RealServer::start();
    let (client, fake) = FakeApi::start();
    let ctx = context(client.clone(), Some(&server.endpoint), &[]);
    let store = ObjectStore::test()
        .with_pools(vec![pool("pool-0", 4, 1)])
        .finalized();
    running_store(&fake, &ctx, store, &["v2", "v2", "v2", "v2"]).await;
    pass(&fake, &ctx).await;
    let before = store_status(&fake);
    assert!(condition(&before, READY).is_true());
    fake.take_writes();

    // A server's pod is deleted, and the admin API hangs (a server shutting down holds the
    // call): the status says so before any admin call returns.
    let pod = format!("{CORE}/pods/photos-pool-0-1");
    let mut obj = fake.get(&pod).unwrap();
    obj["metadata"]["deletionTimestamp"] = json!("2026-12-07T12:00:00Z");
    fake.put(&pod, obj);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging = context(
        client,
        Some(&format!("http://{}", silent.local_addr().unwrap())),
        &[],
    );
    let store: ObjectStore = read(&fake, STORE);
    let cut = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        reconcile_store(Arc::new(store), hanging.clone()),
    )
    .await;
    assert!(cut.is_err(), "the admin calls hang past the cut");
    let status = store_status(&fake);
    assert!(condition(&status, PROGRESSING).is_true(), "{status:#?}");
    assert!(!condition(&status, READY).is_true());
    assert_eq!(status.servers.as_deref(), Some("3/4"));
    assert_eq!(
        condition(&status, DEGRADED).reason,
        condition(&before, DEGRADED).reason
    );

    // Said once: while it stays so, the early write is not repeated.
    fake.take_writes();
    let store: ObjectStore = read(&fake, STORE);
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        reconcile_store(Arc::new(store), hanging),
    )
    .await;
    assert!(
        fake.take_writes().iter().all(|w| !w.contains("/status")),
        "nothing new to say"
    );
}

#[tokio::test]
async fn a_running_store_is_ready_only_when_the_servers_confirm_every_drive() {
    let server = RealServer::start();
    let (client, fake) = FakeApi::start();
    let ctx = context(client, Some(&server.endpoint), &[]);
    let store = ObjectStore::test()
        .with_pools(vec![pool("pool-0", 4, 1)])
        .finalized();
    running_store(&fake, &ctx, store, &["v2", "v2", "v2", "v2"]).await;
    pass(&fake, &ctx).await;
    let status = store_status(&fake);
    assert!(condition(&status, READY).is_true(), "{status:#?}");
    assert!(!condition(&status, PROGRESSING).is_true());
    assert_eq!(
        status.drives,
        DriveCounts {
            total: 4,
            online: 4,
            offline: 0,
            healing: 0
        }
    );
    assert_eq!(status.write_quorum, Some(3));
    assert_eq!(status.current_image.as_deref(), Some("coffer:1"));
    assert_eq!(status.usage_bytes, Some(0));
    assert_eq!(fake.take_events(), ["StoreReady"]);

    // The admin API stops answering: Ready turns False with the reason; not Degraded.
    let ctx = context(ctx.client.clone(), Some("http://127.0.0.1:9"), &[]);
    pass(&fake, &ctx).await;
    let status = store_status(&fake);
    let ready = condition(&status, READY);
    assert!(!ready.is_true());
    assert_eq!(ready.reason, "AdminAPIUnreachable");
    assert!(!condition(&status, DEGRADED).is_true());
}

#[tokio::test]
async fn a_store_with_tls_is_called_over_https_trusting_only_its_secrets_ca() {
    let pki = TestPki::new();
    let server = RealServer::start_tls(&pki);
    assert!(
        server.endpoint.starts_with("https://"),
        "{}",
        server.endpoint
    );
    let (client, fake) = FakeApi::start();
    let ctx = context(client, Some(&server.endpoint), &[]);
    let store = ObjectStore::test()
        .with_pools(vec![pool("pool-0", 4, 1)])
        .with_tls("photos-tls")
        .finalized();
    running_store(&fake, &ctx, store, &["v2", "v2", "v2", "v2"]).await;

    // Without its Secret no server is trusted, and Ready says which Secret is missing.
    pass(&fake, &ctx).await;
    let status = store_status(&fake);
    let ready = condition(&status, READY);
    assert!(!ready.is_true());
    assert!(
        ready
            .message
            .contains("the TLS Secret photos-tls does not exist"),
        "{ready:?}"
    );

    // With the Secret the servers answer over HTTPS and the store is Ready; clients are
    // told to use https.
    fake.put(
        &format!("{CORE}/secrets/photos-tls"),
        pki.secret("photos-tls"),
    );
    pass(&fake, &ctx).await;
    let status = store_status(&fake);
    assert!(condition(&status, READY).is_true(), "{status:#?}");
    assert_eq!(status.drives.online, 4);
    assert_eq!(
        status.endpoint.as_deref(),
        Some("https://photos.media.svc:9000")
    );

    // A Secret whose CA did not sign the servers' certificate: they are not trusted.
    let other = TestPki::new();
    let mut secret = pki.secret("photos-tls");
    secret["data"]["ca.crt"] = json!(base64(&other.ca_pem));
    fake.put(&format!("{CORE}/secrets/photos-tls"), secret);
    pass(&fake, &ctx).await;
    let ready = condition(&store_status(&fake), READY);
    assert!(!ready.is_true());
    assert_eq!(ready.reason, "AdminAPIUnreachable");
}

#[tokio::test]
async fn unready_servers_still_report_their_drives() {
    // A server below its write quorum fails its readiness probe: with quorum lost no server
    // is ready, and the store's status must still come from what the servers say.
    let server = RealServer::start();
    let (client, fake) = FakeApi::start();
    let ctx = context(client, Some(&server.endpoint), &[]);
    let store = ObjectStore::test()
        .with_pools(vec![pool("pool-0", 4, 1)])
        .finalized();
    running_store(&fake, &ctx, store, &["v2"; 4]).await;
    pass(&fake, &ctx).await;
    for i in 0..4 {
        let path = format!("{CORE}/pods/photos-pool-0-{i}");
        let mut pod = fake.get(&path).unwrap();
        pod["status"] = json!({
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "server", "image": "coffer:1", "imageID": "",
                "ready": false, "restartCount": 0, "state": {"running": {}}}]
        });
        fake.put(&path, pod);
    }
    pass(&fake, &ctx).await;
    let status = store_status(&fake);
    assert_eq!(status.servers.as_deref(), Some("0/4"), "{status:#?}");
    assert_eq!(status.drives.online, 4, "{status:#?}");
    assert_eq!(condition(&status, READY).reason, "ServersNotReady");
    // This server has its quorum: unready is not Degraded.
    let degraded = condition(&status, DEGRADED);
    assert!(!degraded.is_true());
    assert_eq!(degraded.reason, "QuorumIntact");
}

#[tokio::test]
async fn a_pool_that_cannot_form_erasure_sets_is_degraded_and_not_retried() {
    let (client, fake) = FakeApi::start();
    let ctx = context(client, None, &[]);
    fake.put(
        STORE,
        ObjectStore::test()
            .with_pools(vec![pool("odd", 17, 1)])
            .finalized(),
    );
    let action = pass(&fake, &ctx).await;
    assert_eq!(action, kube::runtime::controller::Action::await_change());
    let status = store_status(&fake);
    let degraded = condition(&status, DEGRADED);
    assert!(degraded.is_true());
    assert_eq!(degraded.reason, "InvalidTopology");
    assert!(fake.paths(&format!("{APPS}/statefulsets")).is_empty());
    assert!(fake.take_events().contains(&"InvalidTopology".to_string()));
}

#[tokio::test]
async fn an_appended_pool_joins_the_topology_once_its_servers_exist() {
    let (client, fake) = FakeApi::start();
    let ctx = context(client, None, &[]);
    fake.put(STORE, ObjectStore::test().finalized());
    pass(&fake, &ctx).await;
    let mut store: ObjectStore = read(&fake, STORE);
    store.spec.pools.push(pool("more", 4, 1));
    fake.put(STORE, &store);
    pass(&fake, &ctx).await;
    let topology = |fake: &FakeApi| {
        let cm: k8s_openapi::api::core::v1::ConfigMap =
            read(fake, &format!("{CORE}/configmaps/photos-topology"));
        coffer_server::cluster::Topology::parse(&cm.data.unwrap()["topology.json"]).unwrap()
    };
    assert!(fake
        .get(&format!("{APPS}/statefulsets/photos-more"))
        .is_some());
    let first = topology(&fake);
    assert_eq!(first.pools.len(), 1, "the new pool waits for its pods");
    let sts = format!("{APPS}/statefulsets/photos-more");
    let mut obj = fake.get(&sts).unwrap();
    obj["status"] = json!({"replicas": 4});
    fake.put(&sts, obj);
    fake.take_events();
    pass(&fake, &ctx).await;
    let second = topology(&fake);
    assert_eq!(second.pools.len(), 2);
    assert_eq!(second.cluster_id, first.cluster_id);
    first.check_update(&second).unwrap();
    assert_eq!(fake.take_events(), ["PoolPublished"]);
}

#[tokio::test]
async fn deleting_a_store_keeps_or_removes_its_data_as_the_policy_says() {
    for policy in [StorageDeletionPolicy::Retain, StorageDeletionPolicy::Delete] {
        let (client, fake) = FakeApi::start();
        let ctx = context(client, None, &[]);
        fake.put(STORE, ObjectStore::test().with_deletion(policy).finalized());
        pass(&fake, &ctx).await;
        for j in 0..2 {
            fake.put(
                &format!("{CORE}/persistentvolumeclaims/data-{j}-photos-pool-0-0"),
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                       "metadata": {"name": format!("data-{j}-photos-pool-0-0"), "labels": {"coffer.dev/store": "photos", "coffer.dev/pool": "pool-0"}}}),
            );
        }
        let mut store: ObjectStore = read(&fake, STORE);
        store.metadata.deletion_timestamp = store.metadata.creation_timestamp.clone();
        fake.put(STORE, &store);
        fake.take_events();
        pass(&fake, &ctx).await;
        let claims = fake.paths(&format!("{CORE}/persistentvolumeclaims/"));
        let secrets = fake.paths(&format!("{CORE}/secrets/"));
        let finalizers = read::<ObjectStore>(&fake, STORE)
            .metadata
            .finalizers
            .unwrap_or_default();
        assert!(finalizers.is_empty(), "the finalizer is released");
        match policy {
            StorageDeletionPolicy::Retain => {
                assert_eq!(claims.len(), 2);
                assert_eq!(secrets.len(), 2);
                assert_eq!(fake.take_events(), ["StorageRetained"]);
            }
            StorageDeletionPolicy::Delete => {
                assert!(claims.is_empty(), "{claims:?}");
                assert!(secrets.is_empty(), "{secrets:?}");
                assert_eq!(fake.take_events(), ["StorageDeleted"]);
            }
        }
    }
}

#[tokio::test]
async fn a_change_the_api_server_refuses_makes_the_store_degraded() {
    let (client, fake) = FakeApi::start();
    let ctx = context(client, None, &[]);
    fake.put(STORE, ObjectStore::test().finalized());
    pass(&fake, &ctx).await;
    let mut store: ObjectStore = read(&fake, STORE);
    store.spec.pools[0].volume_claim_template.storage_class_name = Some("fast".into());
    store.metadata.generation = Some(2);
    fake.put(STORE, &store);
    fake.refuse_writes_to(&format!("{APPS}/statefulsets/photos-pool-0"));
    fake.take_events();
    let action = pass(&fake, &ctx).await;
    assert_eq!(action, kube::runtime::controller::Action::await_change());
    let status = store_status(&fake);
    let degraded = condition(&status, DEGRADED);
    assert!(degraded.is_true());
    assert_eq!(degraded.reason, "InvalidStatefulSet");
    assert_eq!(degraded.observed_generation, Some(2));
    assert_eq!(fake.take_events(), ["InvalidStatefulSet"]);
}

#[tokio::test]
async fn removing_scheduling_limits_and_annotations_from_the_spec_removes_them_and_quantities_do_not_reapply(
) {
    let (client, fake) = FakeApi::start();
    let ctx = context(client, None, &[]);
    let mut store = ObjectStore::test().finalized();
    let pool = &mut store.spec.pools[0];
    pool.resources = Some(
        serde_json::from_value(json!({
            "limits": {"cpu": "0.5", "memory": "1Gi"}, "requests": {"cpu": "0.25"}
        }))
        .unwrap(),
    );
    pool.scheduling = Some(serde_json::from_value(json!({
        "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "storage", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
        "priorityClassName": "storage-critical"
    })).unwrap());
    store.spec.service = Some(ServiceSpec {
        type_: None,
        annotations: [("lb.example.com/internal".to_string(), "true".to_string())].into(),
    });
    fake.put(STORE, &store);
    pass(&fake, &ctx).await;
    let sts = format!("{APPS}/statefulsets/photos-pool-0");
    let pod_spec = |fake: &FakeApi| fake.get(&sts).unwrap()["spec"]["template"]["spec"].clone();
    assert_eq!(pod_spec(&fake)["nodeSelector"]["disk"], "ssd");
    assert_eq!(
        pod_spec(&fake)["containers"][0]["resources"]["limits"]["cpu"],
        "500m",
        "the API server rewrites the quantity"
    );
    fake.take_writes();

    // The API server's spelling of a quantity is not a change: nothing is written.
    pass(&fake, &ctx).await;
    assert_eq!(fake.take_writes(), Vec::<String>::new());

    // Every optional field goes from the spec, and from the objects.
    let mut store: ObjectStore = read(&fake, STORE);
    store.spec.pools[0].scheduling = None;
    store.spec.pools[0].resources =
        Some(serde_json::from_value(json!({"requests": {"cpu": "0.25"}})).unwrap());
    store.spec.service = None;
    store.metadata.generation = Some(2);
    fake.put(STORE, &store);
    pass(&fake, &ctx).await;
    let spec = pod_spec(&fake);
    for field in [
        "nodeSelector",
        "tolerations",
        "affinity",
        "priorityClassName",
    ] {
        assert!(
            spec.get(field).is_none(),
            "{field} is still there: {spec:#}"
        );
    }
    let resources = &spec["containers"][0]["resources"];
    assert!(resources.get("limits").is_none(), "{resources}");
    assert_eq!(resources["requests"]["cpu"], "250m");
    let service = fake.get(&format!("{CORE}/services/photos")).unwrap();
    assert!(
        service["metadata"]["annotations"]
            .get("lb.example.com/internal")
            .is_none(),
        "{service:#}"
    );
    fake.take_writes();
    pass(&fake, &ctx).await;
    assert_eq!(fake.take_writes(), Vec::<String>::new());
}

#[tokio::test]
async fn an_image_change_is_not_ready_before_the_statefulset_observed_it() {
    let server = RealServer::start();
    let (client, fake) = FakeApi::start();
    let ctx = context(client, Some(&server.endpoint), &[]);
    let store = ObjectStore::test()
        .with_pools(vec![pool("pool-0", 4, 1)])
        .finalized();
    running_store(&fake, &ctx, store, &["v2"; 4]).await;
    pass(&fake, &ctx).await;
    assert!(condition(&store_status(&fake), READY).is_true());
    fake.take_events();

    // The image changes; the StatefulSet's status still describes the old template (its
    // controller has not run yet): every pod matches the old update revision.
    let store: ObjectStore = read(&fake, STORE);
    fake.put(STORE, store.with_image("coffer:2"));
    pass(&fake, &ctx).await;
    let status = store_status(&fake);
    let ready = condition(&status, READY);
    assert!(!ready.is_true(), "{status:#?}");
    assert_eq!(ready.reason, "RollingUpdate");
    assert!(condition(&status, PROGRESSING).is_true());
    assert_eq!(status.current_image.as_deref(), Some("coffer:1"));
    assert!(
        fake.take_writes().iter().all(|w| !w.starts_with("DELETE")),
        "no server is replaced on a stale status"
    );

    // The controller observes the template: a new update revision, one server replaced.
    let sts = format!("{APPS}/statefulsets/photos-pool-0");
    let mut obj = fake.get(&sts).unwrap();
    obj["status"]["observedGeneration"] = obj["metadata"]["generation"].clone();
    obj["status"]["updateRevision"] = json!("v3");
    fake.put(&sts, obj);
    pass(&fake, &ctx).await;
    let deletes: Vec<String> = fake
        .take_writes()
        .into_iter()
        .filter(|w| w.starts_with("DELETE"))
        .collect();
    assert_eq!(deletes, [format!("DELETE {CORE}/pods/photos-pool-0-3")]);
    assert_eq!(
        condition(&store_status(&fake), READY).reason,
        "RollingUpdate"
    );
}

#[tokio::test]
async fn a_retained_store_created_again_keeps_its_cluster_id_and_root_credential() {
    let (client, fake) = FakeApi::start();
    let ctx = context(client, None, &[]);
    fake.put(STORE, ObjectStore::test().finalized());
    pass(&fake, &ctx).await;
    let topology = |fake: &FakeApi| {
        let cm: k8s_openapi::api::core::v1::ConfigMap =
            read(fake, &format!("{CORE}/configmaps/photos-topology"));
        coffer_server::cluster::Topology::parse(&cm.data.unwrap()["topology.json"]).unwrap()
    };
    let root =
        |fake: &FakeApi| fake.get(&format!("{CORE}/secrets/photos-root")).unwrap()["data"].clone();
    let (id, credential) = (topology(&fake).cluster_id, root(&fake));

    // Deleted with Retain; the garbage collector removes everything the store owned.
    let store: ObjectStore = read(&fake, STORE);
    fake.put(STORE, store.deleting());
    pass(&fake, &ctx).await;
    fake.remove(STORE);
    fake.collect_garbage("uid-store");
    assert!(fake
        .get(&format!("{APPS}/statefulsets/photos-pool-0"))
        .is_none());

    // Created again under the same name (a new uid): it finds its identity.
    let mut again = ObjectStore::test().finalized();
    again.metadata.uid = Some("uid-store-again".into());
    fake.put(STORE, &again);
    pass(&fake, &ctx).await;
    assert_eq!(
        topology(&fake).cluster_id,
        id,
        "the drives' cluster id is kept"
    );
    assert_eq!(root(&fake), credential, "the root credential is kept");
}
