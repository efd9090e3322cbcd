//! What the binary runs besides the reconcilers: leader election through a Lease, and the
//! /metrics, /healthz and /readyz endpoints.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::leader::LeaderElection;

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/media/leases/coffer-operator";

/// Replicas electing over the fake's Lease with short durations: lease 1.5 s, renew deadline
/// 1 s, retries every 100 ms.
fn replica(client: &kube::Client, id: &str) -> LeaderElection {
    LeaderElection::new(
        kube::Api::namespaced(client.clone(), "media"),
        "coffer-operator",
        id,
        Duration::from_millis(1500),
        Duration::from_millis(1000),
        Duration::from_millis(100),
    )
}

/// The holder's clock is far behind: its renew times look expired to everyone else.
fn skew_renew_time(fake: &FakeApi) {
    let mut lease = fake.get(LEASE).unwrap();
    lease["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
    fake.put(LEASE, lease);
}

#[tokio::test]
async fn a_lease_its_holder_renews_is_never_taken_over_whatever_its_clock_says() {
    let (client, fake) = FakeApi::start();
    let (a, b) = (replica(&client, "a"), replica(&client, "b"));
    assert!(a.try_acquire().await.unwrap());
    for _ in 0..3 {
        skew_renew_time(&fake);
        assert!(!b.try_acquire().await.unwrap(), "a renews: b must wait");
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(a.try_acquire().await.unwrap(), "the holder renews");
    }
    assert_eq!(fake.get(LEASE).unwrap()["spec"]["holderIdentity"], "a");
}

#[tokio::test]
async fn a_lease_left_unrenewed_for_a_lease_duration_is_taken_over() {
    let (client, fake) = FakeApi::start();
    let (a, b) = (replica(&client, "a"), replica(&client, "b"));
    assert!(a.try_acquire().await.unwrap());
    assert!(!b.try_acquire().await.unwrap(), "a holds a fresh Lease");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(
        b.try_acquire().await.unwrap(),
        "b takes over a Lease unchanged for a lease duration of its own clock"
    );
    let lease = fake.get(LEASE).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert!(!a.try_acquire().await.unwrap());
}

#[tokio::test]
async fn a_leader_whose_renewals_hang_steps_down_before_its_lease_can_be_taken_over() {
    let (client, fake) = FakeApi::start();
    let a = replica(&client, "a");
    assert!(a.try_acquire().await.unwrap());
    // Every later call to the API server hangs (a partitioned or stuck connection).
    fake.hang(LEASE);
    let started = tokio::time::Instant::now();
    let stepped_down = tokio::time::timeout(Duration::from_millis(1500), a.keep()).await;
    assert!(
        stepped_down.is_ok(),
        "the leader still acts when another replica may take the Lease over"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "not before the renew deadline"
    );
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
