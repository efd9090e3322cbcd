//! Kubernetes end to end: the scenarios of issue 6 against a real control plane and the
//! process kubelet (`coffer_e2e::k8s`), run in sequence against one store where they do not
//! interfere. Each step asserts what a user would see: `kubectl get` columns, pod phases,
//! resource conditions, the chart's Argo CD health check under Lua, and what the `aws` CLI
//! can and cannot do with a generated Secret. Then the chart itself: `helm install`, its
//! operator pod and the RBAC it grants.
//!
//! Needs root, iproute2, Go (the control plane and helm are built once into the cache),
//! lua5.4 and the aws CLI (`e2e/compat/install.sh`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coffer_e2e::k8s::{Cluster, Options};
use serde_json::Value;

#[path = "k8s/argocd_health.rs"]
mod argocd_health;
#[path = "k8s/fresh_volumes.rs"]
mod fresh_volumes;
#[path = "k8s/helm_chart.rs"]
mod helm_chart;
#[path = "k8s/image_change.rs"]
mod image_change;

/// Upper bound for anything the scenarios wait for (a store's first start included).
const WAIT: Duration = Duration::from_secs(240);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate sits in the workspace")
        .to_path_buf()
}

/// Polls `check` every half second until it returns `Some`, failing after `WAIT` with what
/// the last attempt saw.
async fn wait_for<T>(
    what: &str,
    cluster: &mut Cluster,
    mut check: impl FnMut(&Cluster) -> Result<T, String>,
) -> T {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < WAIT {
        if let Err(e) = cluster.check() {
            panic!("while waiting for {what}: {e:#}");
        }
        match check(cluster) {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{what} not seen within {WAIT:?}; last: {last}");
}

fn get_json(cluster: &Cluster, args: &[&str]) -> Result<Value, String> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = cluster.kubectl(&all).map_err(|e| format!("{e:#}"))?;
    serde_json::from_str(&out).map_err(|e| e.to_string())
}

fn condition(obj: &Value, kind: &str) -> Option<String> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["status"].as_str())
        .map(String::from)
}

/// When condition `kind` of `obj` last changed status.
fn transition_time(obj: &Value, kind: &str) -> Option<String> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["lastTransitionTime"].as_str())
        .map(String::from)
}

fn ready(cluster: &Cluster, kind: &str, ns: &str, name: &str) -> Result<Value, String> {
    let obj = get_json(cluster, &[kind, "-n", ns, name])?;
    match condition(&obj, "Ready").as_deref() {
        Some("True") => Ok(obj),
        other => Err(format!("{kind} {name} Ready={other:?}: {}", obj["status"])),
    }
}

/// The decoded data of a Secret: the environment an app would get from `envFrom`.
fn secret_env(cluster: &Cluster, ns: &str, name: &str) -> Result<Vec<(String, String)>, String> {
    let secret = get_json(cluster, &["secret", "-n", ns, name])?;
    let data = secret["data"].as_object().ok_or("secret without data")?;
    let mut env = Vec::new();
    for (k, v) in data {
        let out = std::process::Command::new("base64")
            .arg("-d")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("piped")
                    .write_all(v.as_str().unwrap_or_default().as_bytes())?;
                child.wait_with_output()
            })
            .map_err(|e| e.to_string())?;
        env.push((k.clone(), String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    Ok(env)
}

/// Runs the aws CLI inside the cluster's network with `env` (a Secret's values) as its only
/// credentials and endpoint; the host's own aws configuration is kept out.
fn aws(
    cluster: &Cluster,
    work: &Path,
    env: &[(String, String)],
    args: &[&str],
) -> std::process::Output {
    let mut env = env.to_vec();
    env.push((
        "AWS_CONFIG_FILE".into(),
        work.join("none").display().to_string(),
    ));
    env.push((
        "AWS_SHARED_CREDENTIALS_FILE".into(),
        work.join("none").display().to_string(),
    ));
    env.push((
        "HOME".into(),
        std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
    ));
    let mut all = vec!["--cli-read-timeout", "60"];
    all.extend_from_slice(args);
    cluster
        .run_in_cluster("app", "aws", &all, &env)
        .expect("running the aws CLI")
}

/// `len` bytes of a pseudo-random sequence named by `seed` (incompressible, so a drive's
/// bytes on disk say how much of them it holds).
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const NS: &str = "media";

/// The store of every scenario. It names no image: its servers run the operator's default,
/// the release's `coffer-server` image, which the kubelet runs from its layers.
fn store_yaml() -> String {
    format!(
        "apiVersion: coffer.dev/v1alpha1
kind: ObjectStore
metadata:
  name: photos
  namespace: {NS}
spec:
  pools:
    - name: pool-0
      servers: 4
      volumesPerServer: 2
      volumeClaimTemplate:
        accessModes: [\"ReadWriteOnce\"]
        resources:
          requests:
            storage: 1Gi
"
    )
}

fn bucket_yaml(name: &str) -> String {
    format!(
        "apiVersion: coffer.dev/v1alpha1
kind: Bucket
metadata:
  name: {name}
  namespace: {NS}
spec:
  storeRef:
    name: photos
"
    )
}

fn key_yaml(name: &str, bucket: &str, mode: &str) -> String {
    format!(
        "apiVersion: coffer.dev/v1alpha1
kind: AccessKey
metadata:
  name: {name}
  namespace: {NS}
spec:
  storeRef:
    name: photos
  buckets:
    - name: {bucket}
      accessMode: {mode}
  secretName: {name}-s3
"
    )
}

/// Scenario 1: CRDs, the operator, a 4 × 2 store → 4 pods Running, the store Ready with 8
/// drives online, and `kubectl get objectstores` with every column filled.
async fn store_comes_up(cluster: &mut Cluster) {
    cluster
        .kubectl(&["apply", "-f", &repo().join("crds").display().to_string()])
        .expect("kubectl apply -f crds/");
    cluster
        .kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ])
        .expect("CRDs established");
    let operator =
        coffer_e2e::server::workspace_binary("coffer-operator").unwrap_or_else(|e| panic!("{e:#}"));
    let kubeconfig = cluster.kubeconfig.display().to_string();
    cluster
        .spawn_in_cluster(
            "coffer-operator",
            &operator,
            &["run"],
            &[("KUBECONFIG", &kubeconfig), ("COFFER_LOG", "info")],
        )
        .expect("starting the operator");
    cluster
        .kubectl(&["create", "namespace", NS])
        .expect("namespace");
    cluster
        .apply(&store_yaml())
        .expect("kubectl apply of the ObjectStore");

    // Scenario 8's first half: what Argo CD would show while the store comes up.
    let mut verdicts = argocd_health::Verdicts::default();
    wait_for("4 pods Running and Ready", cluster, |c| {
        if let Ok(store) = get_json(c, &["objectstore", "-n", NS, "photos"]) {
            verdicts.sample(&store);
        }
        let pods = get_json(
            c,
            &["pods", "-n", NS, "-l", "app.kubernetes.io/instance=photos"],
        )?;
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        let running = items
            .iter()
            .filter(|p| {
                p["status"]["phase"] == "Running"
                    && condition(p, "Ready").as_deref() == Some("True")
            })
            .count();
        if running == 4 {
            Ok(())
        } else {
            Err(format!(
                "{running} of {} pods running and ready",
                items.len()
            ))
        }
    })
    .await;
    // Judged on the object the verdict was sampled from: fetching it again could find it
    // Ready a moment later, with Healthy never sampled.
    let store = wait_for("ObjectStore Ready", cluster, |c| {
        let store = get_json(c, &["objectstore", "-n", NS, "photos"])?;
        verdicts.sample(&store);
        match condition(&store, "Ready").as_deref() {
            Some("True") => Ok(store),
            other => Err(format!(
                "ObjectStore photos Ready={other:?}: {}",
                store["status"]
            )),
        }
    })
    .await;
    verdicts.assert_progressing_then_healthy();
    assert_eq!(
        store["status"]["drives"]["online"], 8,
        "status: {}",
        store["status"]
    );
    let default_image = coffer_operator::images::default_server_image();
    assert_eq!(
        store["status"]["currentImage"], default_image,
        "a store without spec.image runs the release's server image"
    );
    let pods = get_json(
        cluster,
        &["pods", "-n", NS, "-l", "app.kubernetes.io/instance=photos"],
    )
    .expect("the store's pods");
    for pod in pods["items"].as_array().expect("pod list") {
        assert_eq!(pod["spec"]["containers"][0]["image"], default_image);
        // What a runtime reports once it ran the image: its digest.
        let id = pod["status"]["containerStatuses"][0]["imageID"]
            .as_str()
            .unwrap_or_default();
        assert!(id.contains("@sha256:"), "imageID {id}");
    }
    let table = cluster
        .kubectl(&["get", "objectstores", "-n", NS])
        .expect("kubectl get objectstores");
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header.len(), row.len(), "every column filled:\n{table}");
    assert!(!row.contains(&"<none>"), "every column filled:\n{table}");
    assert_eq!(
        row[header
            .iter()
            .position(|h| *h == "READY")
            .expect("READY column")],
        "True"
    );
}

/// Scenario 2: Bucket + AccessKey → Secret; the aws CLI with only that Secret uploads, lists
/// and downloads 50 MiB; a key of another bucket is denied; a ReadOnly key cannot write.
async fn keys_work_as_scoped(
    cluster: &mut Cluster,
    work: &Path,
) -> BTreeMap<&'static str, Vec<(String, String)>> {
    let manifests = [
        bucket_yaml("photos"),
        bucket_yaml("other"),
        key_yaml("gallery", "photos", "ReadWrite"),
        key_yaml("elsewhere", "other", "ReadWrite"),
        key_yaml("viewer", "photos", "ReadOnly"),
    ]
    .join("---\n");
    cluster
        .apply(&manifests)
        .expect("kubectl apply of buckets and keys");
    for bucket in ["photos", "other"] {
        wait_for(&format!("Bucket {bucket} Ready"), cluster, |c| {
            ready(c, "bucket", NS, bucket)
        })
        .await;
    }
    for bucket in ["photos", "other"] {
        argocd_health::assert_healthy(cluster, "bucket", bucket);
    }
    let mut envs = BTreeMap::new();
    for key in ["gallery", "elsewhere", "viewer"] {
        wait_for(&format!("AccessKey {key} Ready"), cluster, |c| {
            ready(c, "accesskey", NS, key)
        })
        .await;
        argocd_health::assert_healthy(cluster, "accesskey", key);
        let env = wait_for(&format!("Secret {key}-s3"), cluster, |c| {
            secret_env(c, NS, &format!("{key}-s3"))
        })
        .await;
        envs.insert(key, env);
    }

    let file = work.join("big");
    let data: Vec<u8> = (0..50u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &data).expect("writing the 50 MiB file");
    let file_arg = file.display().to_string();
    let gallery = &envs["gallery"];
    let up = aws(
        cluster,
        work,
        gallery,
        &["s3", "cp", &file_arg, "s3://photos/big"],
    );
    assert!(
        up.status.success(),
        "upload with the gallery key: {}",
        text(&up)
    );
    let ls = aws(cluster, work, gallery, &["s3", "ls", "s3://photos/"]);
    assert!(
        ls.status.success() && text(&ls).contains("52428800 big"),
        "listing: {}",
        text(&ls)
    );
    let back = work.join("back");
    let down = aws(
        cluster,
        work,
        gallery,
        &["s3", "cp", "s3://photos/big", &back.display().to_string()],
    );
    assert!(down.status.success(), "download: {}", text(&down));
    assert!(
        std::fs::read(&back).expect("downloaded file") == data,
        "downloaded bytes differ"
    );

    let denied = aws(
        cluster,
        work,
        &envs["elsewhere"],
        &["s3", "ls", "s3://photos/"],
    );
    assert!(
        !denied.status.success() && text(&denied).contains("AccessDenied"),
        "a key of bucket other lists photos: {}",
        text(&denied)
    );
    let own = aws(
        cluster,
        work,
        &envs["elsewhere"],
        &["s3", "ls", "s3://other/"],
    );
    assert!(
        own.status.success(),
        "a key lists its own bucket: {}",
        text(&own)
    );

    let viewer = &envs["viewer"];
    let write = aws(
        cluster,
        work,
        viewer,
        &["s3", "cp", &file_arg, "s3://photos/by-viewer"],
    );
    assert!(
        !write.status.success() && text(&write).contains("AccessDenied"),
        "a ReadOnly key writes: {}",
        text(&write)
    );
    let read = aws(cluster, work, viewer, &["s3", "ls", "s3://photos/"]);
    assert!(
        read.status.success() && text(&read).contains("big"),
        "a ReadOnly key reads: {}",
        text(&read)
    );
    envs
}

/// The root credential's Secret as an S3 client environment (an operator's view of the
/// store, to look at buckets no AccessKey names any more).
fn root_env(cluster: &Cluster) -> Result<Vec<(String, String)>, String> {
    let root: BTreeMap<String, String> = secret_env(cluster, NS, "photos-root")?
        .into_iter()
        .collect();
    Ok(vec![
        (
            "AWS_ACCESS_KEY_ID".into(),
            root.get("COFFER_ROOT_USER")
                .cloned()
                .ok_or("no root user")?,
        ),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            root.get("COFFER_ROOT_PASSWORD")
                .cloned()
                .ok_or("no root password")?,
        ),
        (
            "AWS_ENDPOINT_URL".into(),
            format!("http://photos.{NS}.svc:9000"),
        ),
        ("AWS_REGION".into(), "us-east-1".into()),
    ])
}

/// Scenario 3: one server's pod deleted under a steady client load → the StatefulSet brings
/// it back, the store goes Progressing (and leaves Ready), returns to Ready once healing has
/// finished, and every acknowledged write reads back.
async fn a_deleted_pod_comes_back(
    cluster: &mut Cluster,
    work: &Path,
    gallery: &[(String, String)],
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let small = work.join("small");
    std::fs::write(&small, b"acknowledged write").expect("writing the small file");
    let ns = cluster
        .client_netns("load")
        .expect("a namespace for the load");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (env, flag, file, count) = (
        gallery.to_vec(),
        stop.clone(),
        small.clone(),
        written.clone(),
    );
    let none = work.join("none");
    // One client writing objects one after another, noting those the server acknowledged.
    let load = std::thread::spawn(move || {
        let (mut acked, mut failed) = (Vec::new(), 0);
        let mut i = 0;
        while !flag.load(Ordering::Relaxed) {
            let key = format!("s3://photos/load/obj-{i}");
            let out = std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "aws",
                    "--cli-read-timeout",
                    "30",
                    "s3",
                    "cp",
                ])
                .arg(&file)
                .arg(&key)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", std::env::var_os("HOME").unwrap_or_default())
                .env("AWS_CONFIG_FILE", &none)
                .env("AWS_SHARED_CREDENTIALS_FILE", &none)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .output()
                .expect("running the aws CLI");
            if out.status.success() {
                acked.push(format!("obj-{i}"));
                count.fetch_add(1, Ordering::Relaxed);
            } else {
                failed += 1;
            }
            i += 1;
        }
        (acked, failed)
    });
    let victim = "photos-pool-0-1";
    let old_uid =
        get_json(cluster, &["pod", "-n", NS, victim]).expect("the pod")["metadata"]["uid"].clone();
    let before = get_json(cluster, &["objectstore", "-n", NS, "photos"]).expect("the store");
    assert_eq!(
        condition(&before, "Progressing").as_deref(),
        Some("False"),
        "the store settled before the deletion: {}",
        before["status"]
    );
    wait_for(
        "a few acknowledged writes before the deletion",
        cluster,
        |_| match written.load(Ordering::Relaxed) {
            n if n >= 3 => Ok(()),
            n => Err(format!("{n} writes so far")),
        },
    )
    .await;
    cluster
        .kubectl(&["delete", "pod", "-n", NS, victim, "--wait=false"])
        .expect("kubectl delete pod");
    // What the store's conditions said while the server was away, sampled on every poll.
    let (mut saw_progressing, mut saw_unready) = (false, false);
    let mut sample = |c: &Cluster| -> Result<Value, String> {
        let store = get_json(c, &["objectstore", "-n", NS, "photos"])?;
        saw_progressing |= condition(&store, "Progressing").as_deref() == Some("True");
        saw_unready |= condition(&store, "Ready").as_deref() != Some("True");
        Ok(store)
    };
    wait_for("the pod back, Running and Ready", cluster, |c| {
        sample(c)?;
        let pod = get_json(c, &["pod", "-n", NS, victim])?;
        let back = pod["metadata"]["uid"] != old_uid
            && pod["status"]["phase"] == "Running"
            && condition(&pod, "Ready").as_deref() == Some("True");
        if back {
            Ok(())
        } else {
            Err(format!("pod status: {}", pod["status"]))
        }
    })
    .await;
    let store = wait_for(
        "ObjectStore Ready again with 8 drives online, nothing healing",
        cluster,
        |c| {
            let store = sample(c)?;
            if condition(&store, "Ready").as_deref() == Some("True")
                && condition(&store, "Progressing").as_deref() == Some("False")
                && store["status"]["drives"]["online"] == 8
                && store["status"]["drives"]["healing"] == 0
            {
                Ok(store)
            } else {
                Err(format!("status: {}", store["status"]))
            }
        },
    )
    .await;
    // The StatefulSet may bring the pod back between two polls, so the test can miss the
    // moment the store was Progressing. Its conditions cannot: a condition's
    // lastTransitionTime moves only when its status does, and Progressing (False before the
    // deletion, False now) has a new one only if it was True in between; likewise Ready.
    let moved = |kind: &str| transition_time(&store, kind) != transition_time(&before, kind);
    assert!(
        saw_progressing || moved("Progressing"),
        "the store never went Progressing while its server was replaced: before {}, after {}",
        before["status"],
        store["status"]
    );
    assert!(
        saw_unready || moved("Ready"),
        "the store stayed Ready while a server was away: before {}, after {}",
        before["status"],
        store["status"]
    );
    eprintln!(
        "scenario 3: Progressing {} (seen by the test: {saw_progressing})",
        if moved("Progressing") {
            "went True and back"
        } else {
            "True when sampled"
        }
    );
    stop.store(true, Ordering::Relaxed);
    let (acked, failed) = load.join().expect("the load thread");
    eprintln!("scenario 3: {} writes acknowledged, {failed} failed during the pod's replacement; store {}", acked.len(), store["status"]["servers"]);
    assert!(!acked.is_empty(), "the load wrote nothing");
    let listing = aws(cluster, work, gallery, &["s3", "ls", "s3://photos/load/"]);
    assert!(
        listing.status.success(),
        "listing the load: {}",
        text(&listing)
    );
    let listed = text(&listing);
    let lost: Vec<&String> = acked
        .iter()
        .filter(|k| !listed.contains(&format!(" {k}\n")))
        .collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    for key in acked.iter().take(5) {
        let back = work.join("check");
        let get = aws(
            cluster,
            work,
            gallery,
            &[
                "s3",
                "cp",
                &format!("s3://photos/load/{key}"),
                &back.display().to_string(),
            ],
        );
        assert!(get.status.success(), "reading {key}: {}", text(&get));
        assert_eq!(
            std::fs::read(&back).expect("read back"),
            b"acknowledged write"
        );
    }
}

/// Scenario 6: deleting a Bucket with Retain keeps its data, with Delete removes it; deleting
/// an AccessKey revokes the key and removes its Secret.
async fn deletions_do_what_their_policy_says(
    cluster: &mut Cluster,
    work: &Path,
    viewer: &[(String, String)],
) {
    let with_policy =
        |name: &str, policy: &str| format!("{}  deletionPolicy: {policy}\n", bucket_yaml(name));
    cluster
        .apply(
            &[
                with_policy("kept", "Retain"),
                with_policy("scrap", "Delete"),
            ]
            .join("---\n"),
        )
        .expect("kubectl apply of two buckets");
    for bucket in ["kept", "scrap"] {
        wait_for(&format!("Bucket {bucket} Ready"), cluster, |c| {
            ready(c, "bucket", NS, bucket)
        })
        .await;
    }
    let root = wait_for("the root credential", cluster, root_env).await;
    let file = work.join("small-6");
    std::fs::write(&file, b"kept or not").expect("writing a file");
    for bucket in ["kept", "scrap"] {
        let put = aws(
            cluster,
            work,
            &root,
            &[
                "s3",
                "cp",
                &file.display().to_string(),
                &format!("s3://{bucket}/f"),
            ],
        );
        assert!(put.status.success(), "writing to {bucket}: {}", text(&put));
    }
    cluster
        .kubectl(&[
            "delete",
            "bucket",
            "-n",
            NS,
            "kept",
            "scrap",
            "--timeout=120s",
        ])
        .expect("kubectl delete bucket");
    let kept = aws(cluster, work, &root, &["s3", "ls", "s3://kept/"]);
    assert!(
        kept.status.success() && text(&kept).contains(" f\n"),
        "Retain keeps the data: {}",
        text(&kept)
    );
    let scrap = aws(cluster, work, &root, &["s3", "ls", "s3://scrap/"]);
    assert!(
        !scrap.status.success() && text(&scrap).contains("NoSuchBucket"),
        "Delete removes the bucket: {}",
        text(&scrap)
    );

    cluster
        .kubectl(&["delete", "accesskey", "-n", NS, "viewer", "--timeout=120s"])
        .expect("kubectl delete accesskey");
    wait_for("the viewer Secret gone", cluster, |c| {
        match c.kubectl(&["get", "secret", "-n", NS, "viewer-s3"]) {
            Err(e) if format!("{e:#}").contains("NotFound") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let revoked = aws(cluster, work, viewer, &["s3", "ls", "s3://photos/"]);
    let said = text(&revoked);
    assert!(
        !revoked.status.success()
            && (said.contains("InvalidAccessKeyId") || said.contains("AccessDenied")),
        "a deleted key still works: {said}"
    );
}

/// Scenario 7: rotating an AccessKey → the Secret carries a new key that works; the old key
/// works through the grace period, then is refused.
async fn a_rotated_key_retires_the_old_one(
    cluster: &mut Cluster,
    work: &Path,
    old: &[(String, String)],
) {
    let id = |env: &[(String, String)]| {
        env.iter()
            .find(|(k, _)| k == "AWS_ACCESS_KEY_ID")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let old_id = id(old);
    cluster
        .kubectl(&[
            "patch",
            "accesskey",
            "-n",
            NS,
            "gallery",
            "--type=merge",
            "-p",
            r#"{"spec":{"rotation":{"gracePeriod":"20s","requestedAt":"scenario-7"}}}"#,
        ])
        .expect("kubectl patch of the AccessKey");
    let new = wait_for("a new key in the Secret", cluster, |c| {
        let env = secret_env(c, NS, "gallery-s3")?;
        if id(&env) != old_id {
            Ok(env)
        } else {
            Err("still the old key".into())
        }
    })
    .await;
    let fresh = aws(cluster, work, &new, &["s3", "ls", "s3://photos/"]);
    assert!(fresh.status.success(), "the new key: {}", text(&fresh));
    let during = aws(cluster, work, old, &["s3", "ls", "s3://photos/"]);
    assert!(
        during.status.success(),
        "the old key within its grace period: {}",
        text(&during)
    );
    wait_for("the old key refused after its grace period", cluster, |c| {
        let out = aws(c, work, old, &["s3", "ls", "s3://photos/"]);
        let said = text(&out);
        if !out.status.success()
            && (said.contains("InvalidAccessKeyId") || said.contains("AccessDenied"))
        {
            Ok(())
        } else {
            Err(said)
        }
    })
    .await;
    let after = aws(cluster, work, &new, &["s3", "ls", "s3://photos/"]);
    assert!(
        after.status.success(),
        "the new key after the old one retired: {}",
        text(&after)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubernetes_end_to_end() {
    let mut cluster = Cluster::start(Options {
        nodes: 4,
        keep: std::env::var_os("COFFER_E2E_KEEP").is_some(),
    })
    .await
    .unwrap_or_else(|e| panic!("starting the cluster: {e:#}"));
    let work = tempfile::tempdir().expect("a scratch folder");
    let started = Instant::now();
    store_comes_up(&mut cluster).await;
    eprintln!("scenario 1 passed after {:?}", started.elapsed());
    let envs = keys_work_as_scoped(&mut cluster, work.path()).await;
    eprintln!("scenario 2 passed after {:?}", started.elapsed());
    deletions_do_what_their_policy_says(&mut cluster, work.path(), &envs["viewer"]).await;
    eprintln!("scenario 6 passed after {:?}", started.elapsed());
    a_deleted_pod_comes_back(&mut cluster, work.path(), &envs["gallery"]).await;
    eprintln!("scenario 3 passed after {:?}", started.elapsed());
    fresh_volumes::a_pod_deleted_with_its_claims_comes_back_empty_and_healed(
        &mut cluster,
        work.path(),
        &envs["gallery"],
    )
    .await;
    eprintln!("scenario 4 passed after {:?}", started.elapsed());
    image_change::an_image_change_rolls_one_server_at_a_time(&mut cluster, &envs["gallery"]).await;
    eprintln!("scenario 5 passed after {:?}", started.elapsed());
    a_rotated_key_retires_the_old_one(&mut cluster, work.path(), &envs["gallery"]).await;
    eprintln!("scenario 7 passed after {:?}", started.elapsed());
    // Last: it takes the store below its write quorum for a while.
    argocd_health::losing_quorum_is_degraded(&mut cluster).await;
    eprintln!("scenario 8 passed after {:?}", started.elapsed());
    // After everything else: it replaces the operator the scenarios ran with.
    helm_chart::the_chart_runs_the_operator(&mut cluster, work.path()).await;
    eprintln!("helm install passed after {:?}", started.elapsed());
}
