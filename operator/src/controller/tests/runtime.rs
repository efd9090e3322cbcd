//! What the binary runs besides the reconcilers: leader election through a Lease, and the
//! /metrics, /healthz and /readyz endpoints.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::leader::LeaderElection;

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/media/leases/coffer-operator";

#[tokio::test]
async fn one_replica_leads_until_it_stops_renewing() {
    let (client, fake) = FakeApi::start();
    let replica = |id: &str| LeaderElection {
        api: kube::Api::namespaced(client.clone(), "media"),
        name: "coffer-operator".into(),
        identity: id.into(),
        lease_duration: Duration::from_secs(15),
    };
    let (a, b) = (replica("a"), replica("b"));
    assert!(a.try_acquire().await.unwrap());
    assert!(!b.try_acquire().await.unwrap(), "a holds a fresh Lease");
    assert!(a.try_acquire().await.unwrap(), "the holder renews");
    let mut lease = fake.get(LEASE).unwrap();
    lease["spec"]["renewTime"] = json!("2026-01-01T00:00:00.000000Z");
    fake.put(LEASE, lease);
    assert!(
        b.try_acquire().await.unwrap(),
        "b takes over an expired Lease"
    );
    let lease = fake.get(LEASE).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert!(!a.try_acquire().await.unwrap());
}

async fn get(url: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn metrics_count_reconciles_and_probes_report_readiness() {
    let (client, fake) = FakeApi::start();
    let ctx = context(client, None, &[]);
    fake.put(
        "/apis/coffer.dev/v1alpha1/namespaces/media/objectstores/photos",
        crate::crd::ObjectStore::test()
            .with_pools(vec![crate::fixtures::pool("odd", 17, 1)])
            .finalized(),
    );
    let store = read(
        &fake,
        "/apis/coffer.dev/v1alpha1/namespaces/media/objectstores/photos",
    );
    crate::controller::reconcile_store(Arc::new(store), ctx.clone())
        .await
        .unwrap();

    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(crate::http::serve(
        listener,
        ctx.metrics.clone(),
        ready.clone(),
    ));
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    assert_eq!(get(&format!("{base}/readyz")).await.0, 503);
    ready.store(true, Ordering::SeqCst);
    assert_eq!(get(&format!("{base}/readyz")).await.0, 200);
    let (code, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(code, 200);
    assert!(
        text.contains("coffer_operator_reconciles_total{kind=\"ObjectStore\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("coffer_operator_reconcile_duration_seconds_count{kind=\"ObjectStore\"} 1"),
        "{text}"
    );
}
