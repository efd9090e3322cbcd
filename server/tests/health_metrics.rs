//! The probe and scrape endpoints through a real server: liveness and readiness answer 200
//! on healthy 1-drive and 4-drive servers without credentials, `/_coffer/metrics` counts
//! S3 requests by operation and status with latency histograms and reports the drives, and
//! every other `/_coffer/` path still needs a signature. (Readiness going to 503 when quorum
//! is lost is covered by the unit tests of `http::health`: a running server cannot lose
//! drives without a restart yet.)

mod common;

use common::{put_bytes, TestServer};

/// The value of the sample line that starts with `series ` (name and labels), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn get(server: &TestServer, path: &str) -> common::RawResponse {
    server.raw("GET", path).anonymous().send().await
}

#[tokio::test]
async fn live_and_ready_on_one_and_four_drives() {
    for server in [TestServer::start(), TestServer::start_drives(4, &[])] {
        let live = get(&server, "/_coffer/health/live").await;
        assert_eq!(live.status, 200, "{}", live.text());
        let ready = get(&server, "/_coffer/health/ready").await;
        assert_eq!(ready.status, 200, "{}", ready.text());
    }
}

#[tokio::test]
async fn metrics_count_requests_and_drives_without_auth() {
    let server = TestServer::start_drives(4, &[]);
    let client = server.bucket("metrics").await;
    const PUTS: usize = 3;
    for i in 0..PUTS {
        put_bytes(&client, "metrics", &format!("k{i}"), vec![7u8; 1000]).await;
    }
    let got = client
        .get_object()
        .bucket("metrics")
        .key("k0")
        .send()
        .await
        .expect("GET of a stored object succeeds");
    assert_eq!(got.body.collect().await.unwrap().into_bytes().len(), 1000);

    let resp = get(&server, "/_coffer/metrics").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(ct.contains("text"), "content type {ct}");
    let text = resp.text();
    let puts = sample(
        &text,
        r#"coffer_s3_requests_total{operation="PutObject",status="200"}"#,
    )
    .unwrap_or_else(|| panic!("no PutObject counter in:\n{text}"));
    assert!(puts >= PUTS as f64, "{puts} PutObject counted");
    let histogram = sample(
        &text,
        r#"coffer_s3_request_duration_seconds_count{operation="PutObject"}"#,
    )
    .unwrap_or_else(|| panic!("no PutObject histogram in:\n{text}"));
    assert!(histogram >= PUTS as f64);
    assert!(
        text.contains(
            r#"coffer_s3_request_duration_seconds_bucket{le="+Inf",operation="PutObject"}"#
        ) || text.contains(
            r#"coffer_s3_request_duration_seconds_bucket{operation="PutObject",le="+Inf"}"#
        ),
        "no +Inf bucket in:\n{text}"
    );
    assert!(sample(&text, "coffer_s3_bytes_received_total").unwrap_or(0.0) >= (PUTS * 1000) as f64);
    assert!(sample(&text, "coffer_s3_bytes_sent_total").unwrap_or(0.0) >= 1000.0);
    assert_eq!(sample(&text, r#"coffer_drives{state="online"}"#), Some(4.0));
    assert_eq!(
        sample(&text, r#"coffer_drives{state="offline"}"#),
        Some(0.0)
    );
    assert_eq!(sample(&text, "coffer_write_quorum"), Some(3.0));
    assert!(text.contains("coffer_heal_objects_scanned_total"));
    for drive in 0..4 {
        let series = format!(r#"coffer_rocksdb_estimate_live_data_bytes{{drive="{drive}"}}"#);
        assert!(sample(&text, &series).is_some(), "no {series} in:\n{text}");
    }
    assert!(sample(&text, "coffer_process_resident_memory_bytes").unwrap_or(0.0) > 0.0);
    // Scrapes and probes are not S3 requests and are not counted as such.
    assert!(!text.contains(r#"operation="unknown",status="200""#));
}

#[tokio::test]
async fn requests_failing_before_routing_count_as_unknown() {
    let server = TestServer::start();
    // A key past S3's 1024-byte limit is refused by the router.
    let bad = server
        .raw("GET", &format!("/b/{}", "k".repeat(1025)))
        .send()
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(bad.code(), "KeyTooLongError");
    let text = get(&server, "/_coffer/metrics").await.text();
    assert!(
        sample(
            &text,
            r#"coffer_s3_requests_total{operation="unknown",status="400"}"#
        )
        .is_some(),
        "no unknown counter in:\n{text}"
    );
}

#[tokio::test]
async fn other_reserved_paths_still_need_auth() {
    let server = TestServer::start();
    for path in [
        "/_coffer/admin/v1/status",
        "/_coffer/metrics/",
        "/_coffer/health",
    ] {
        let resp = get(&server, path).await;
        assert_ne!(
            resp.status,
            200,
            "{path} answered anonymously: {}",
            resp.text()
        );
        assert!(
            resp.status == 403 || resp.status == 400,
            "{path}: {} {}",
            resp.status,
            resp.text()
        );
    }
    // Only GET is a probe: a PUT on the metrics path goes through S3 authentication.
    let put = server
        .raw("PUT", "/_coffer/metrics")
        .anonymous()
        .send()
        .await;
    assert_ne!(put.status, 200);
}
