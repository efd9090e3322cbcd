//! Scenario 5: a new `spec.image` (a second tag of the same binary) rolls the servers one at
//! a time under a steady client load that sees no failed request, and the status shows the
//! new image.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use coffer_e2e::k8s::{Cluster, IMAGE_NEXT};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::ResourceExt;

use super::{condition, get_json, pattern, NS};

/// Upper bound for the whole roll (every server replaced and the store Ready again).
const ROLL_WAIT: Duration = Duration::from_secs(600);
/// Clients writing and reading at once.
const WORKERS: usize = 2;

/// What the load did: acknowledged writes (key → body seed and size) and every request that
/// failed after the SDK's own retries, as an app would see it.
#[derive(Default)]
struct Load {
    puts: usize,
    gets: usize,
    lists: usize,
    acked: Vec<(String, u64, usize)>,
    failures: Vec<String>,
}

/// An S3 client as an app on a node would build it from the AccessKey's Secret: the standard
/// SDK with its default retries, through the Service's cluster IP (kube-proxy's address).
fn app_client(env: &[(String, String)], endpoint: &str) -> Client {
    let get = |k: &str| {
        env.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("the Secret has no {k}"))
    };
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(get("AWS_REGION")))
        .credentials_provider(Credentials::new(
            get("AWS_ACCESS_KEY_ID"),
            get("AWS_SECRET_ACCESS_KEY"),
            None,
            None,
            "access-key-secret",
        ))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

/// One client: writes an object, reads back the one before, lists now and then, until told
/// to stop. Sizes alternate between inline and erasure-coded objects.
async fn worker(client: Client, w: usize, stop: Arc<AtomicBool>, load: Arc<Mutex<Load>>) {
    let mut i = 0u64;
    let mut previous: Option<(String, u64, usize)> = None;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("roll/w{w}-{i}");
        let seed = 5_000_000 + (w as u64) * 1_000_000 + i;
        let size = if i % 2 == 0 { 4 << 10 } else { 300 << 10 };
        let put = client
            .put_object()
            .bucket("photos")
            .key(&key)
            .body(ByteStream::from(pattern(seed, size)))
            .send()
            .await;
        let acked = {
            let mut l = load.lock().expect("load lock");
            l.puts += 1;
            match put {
                Ok(_) => {
                    l.acked.push((key.clone(), seed, size));
                    true
                }
                Err(e) => {
                    l.failures
                        .push(format!("PUT {key}: {}", DisplayErrorContext(&e)));
                    false
                }
            }
        };
        if let Some((k, seed, size)) = previous.take() {
            let got = match client.get_object().bucket("photos").key(&k).send().await {
                Ok(o) => o
                    .body
                    .collect()
                    .await
                    .map(|b| b.into_bytes())
                    .map_err(|e| format!("GET {k} body: {e}")),
                Err(e) => Err(format!("GET {k}: {}", DisplayErrorContext(&e))),
            };
            let mut l = load.lock().expect("load lock");
            l.gets += 1;
            match got {
                Ok(b) if b[..] == pattern(seed, size)[..] => {}
                Ok(b) => l
                    .failures
                    .push(format!("GET {k}: {} bytes, not the ones written", b.len())),
                Err(e) => l.failures.push(e),
            }
        }
        if i % 10 == 9 {
            let listed = client
                .list_objects_v2()
                .bucket("photos")
                .prefix("roll/")
                .max_keys(20)
                .send()
                .await;
            let mut l = load.lock().expect("load lock");
            l.lists += 1;
            if let Err(e) = listed {
                l.failures
                    .push(format!("LIST roll/: {}", DisplayErrorContext(&e)));
            }
        }
        if acked {
            previous = Some((key, seed, size));
        }
        i += 1;
    }
}

/// The store's pods as seen now: (name, uid, image, ready and not being deleted).
async fn pods(cluster: &Cluster) -> Result<Vec<(String, String, String, bool)>, String> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    let list = api
        .list(&ListParams::default().labels("app.kubernetes.io/instance=photos"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(list
        .items
        .iter()
        .map(|p| {
            let image = p
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            let ready = p.metadata.deletion_timestamp.is_none()
                && p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            (p.name_any(), p.uid().unwrap_or_default(), image, ready)
        })
        .collect())
}

pub async fn an_image_change_rolls_one_server_at_a_time(
    cluster: &mut Cluster,
    gallery: &[(String, String)],
) {
    let servers = 4usize;
    let ip = cluster
        .kubectl(&[
            "get",
            "service",
            "-n",
            NS,
            "photos",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .expect("the store's Service");
    let url = gallery
        .iter()
        .find(|(k, _)| k == "AWS_ENDPOINT_URL")
        .map(|(_, v)| v.clone())
        .expect("the Secret names the endpoint");
    let port = url.rsplit(':').next().expect("the endpoint has a port");
    let endpoint = format!("http://{ip}:{port}");
    let before: BTreeMap<String, String> = pods(cluster)
        .await
        .expect("the store's pods")
        .into_iter()
        .map(|(name, uid, ..)| (name, uid))
        .collect();
    assert_eq!(before.len(), servers, "pods before the roll: {before:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Mutex::new(Load::default()));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            tokio::spawn(worker(
                app_client(gallery, &endpoint),
                w,
                stop.clone(),
                load.clone(),
            ))
        })
        .collect();
    // The load runs before the change, so a failure that has nothing to do with the roll
    // shows as such.
    let warm = Instant::now();
    while load.lock().expect("load lock").acked.len() < 10 {
        assert!(
            warm.elapsed() < Duration::from_secs(60),
            "the load did not get going: {:?}",
            load.lock().expect("load lock").failures
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let failed_before = load.lock().expect("load lock").failures.clone();
    assert!(
        failed_before.is_empty(),
        "failures before the roll: {failed_before:?}"
    );
    let requests_before = {
        let l = load.lock().expect("load lock");
        l.puts + l.gets + l.lists
    };

    let started = Instant::now();
    cluster
        .kubectl(&[
            "patch",
            "objectstore",
            "-n",
            NS,
            "photos",
            "--type=merge",
            "-p",
            &format!(r#"{{"spec":{{"image":"{IMAGE_NEXT}"}}}}"#),
        ])
        .expect("kubectl patch of spec.image");

    // Sample the pods while they roll: how many are unready (or missing) at once, and the
    // order in which they came back with the new image.
    let mut most_unready = 0usize;
    let mut samples = 0usize;
    let mut replaced: Vec<String> = Vec::new();
    let mut last_store_look: Option<Instant> = None;
    let mut last = String::new();
    let store = loop {
        if let Err(e) = cluster.check() {
            panic!("during the roll: {e:#}");
        }
        assert!(
            started.elapsed() < ROLL_WAIT,
            "the roll did not finish within {ROLL_WAIT:?}; last: {last}"
        );
        let now = match pods(cluster).await {
            Ok(p) => p,
            Err(e) => {
                last = e;
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        samples += 1;
        let ready = now.iter().filter(|p| p.3).count();
        most_unready = most_unready.max(servers.saturating_sub(ready));
        for (name, _, image, up) in &now {
            if *up && image == IMAGE_NEXT && !replaced.contains(name) {
                replaced.push(name.clone());
            }
        }
        let all_new = now.len() == servers
            && now
                .iter()
                .all(|(_, _, image, up)| *up && image == IMAGE_NEXT);
        if all_new && last_store_look.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
            last_store_look = Some(Instant::now());
            match get_json(cluster, &["objectstore", "-n", NS, "photos"]) {
                Ok(store) => {
                    let status = &store["status"];
                    if status["currentImage"] == IMAGE_NEXT
                        && status["observedGeneration"] == store["metadata"]["generation"]
                        && condition(&store, "Ready").as_deref() == Some("True")
                        && condition(&store, "Progressing").as_deref() == Some("False")
                    {
                        break store;
                    }
                    last = format!("status: {status}");
                }
                Err(e) => last = e,
            }
        } else if !all_new {
            last = format!("pods: {now:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let rolled_in = started.elapsed();
    // A little more load on the new servers, then stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("a load worker");
    }
    let load = std::mem::take(&mut *load.lock().expect("load lock"));
    let requests = load.puts + load.gets + load.lists;
    eprintln!(
        "scenario 5: rolled to {IMAGE_NEXT} in {rolled_in:?} (order {replaced:?}); {requests} \
         requests ({} PUT, {} GET, {} LIST; {} during the roll), {} failed; at most \
         {most_unready} of {servers} pods unready over {samples} samples; store {}",
        load.puts,
        load.gets,
        load.lists,
        requests - requests_before,
        load.failures.len(),
        store["status"]["servers"]
    );
    assert!(
        load.failures.is_empty(),
        "{} requests failed during the roll, e.g. {:?}",
        load.failures.len(),
        &load.failures[..load.failures.len().min(10)]
    );
    assert!(
        requests > requests_before,
        "the load made no request during the roll"
    );
    assert!(
        most_unready <= 1,
        "{most_unready} servers were unready at once during the roll"
    );
    let after = pods(cluster).await.expect("the store's pods");
    for (name, uid, image, up) in &after {
        assert!(
            *up && image == IMAGE_NEXT,
            "pod {name}: image {image}, ready {up}"
        );
        assert_ne!(
            before.get(name),
            Some(uid),
            "pod {name} was not replaced by the roll"
        );
    }
    assert_eq!(store["status"]["currentImage"], IMAGE_NEXT);

    // Every write the load saw acknowledged reads back as written.
    let client = app_client(gallery, &endpoint);
    for (key, seed, size) in &load.acked {
        let body = client
            .get_object()
            .bucket("photos")
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("reading {key} after the roll: {}", DisplayErrorContext(&e)))
            .body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("reading {key} after the roll: {e}"))
            .into_bytes();
        assert!(
            body[..] == pattern(*seed, *size)[..],
            "{key} reads back other bytes than written"
        );
    }
}
