//! The chart: `helm install` of `charts/coffer` takes over from the operator the test
//! started. The release's Deployment runs the operator as a pod from the chart's default
//! image (`ghcr.io/coffer-dev/coffer-operator:<appVersion>`, the image `coffer-e2e image
//! build` makes of the workspace's `coffer-operator`), which takes the leader Lease, turns Ready, and reconciles
//! a new Bucket and AccessKey of the running store with nothing but the permissions the chart
//! grants; `kubectl auth can-i` as its ServiceAccount shows those permissions are what it
//! needs and no more. The install is the namespaced one (`watchNamespaces`): a Role in the
//! store's namespace and nothing cluster-wide, so "no more" can be checked in full.

use std::path::Path;
use std::process::Command;

use coffer_e2e::k8s::Cluster;

use super::argocd_health::assert_healthy;
use super::{
    aws, bucket_yaml, condition, get_json, key_yaml, ready, repo, secret_env, text, wait_for, NS,
};

const RELEASE_NS: &str = "coffer-system";
/// The release is named `coffer`, which the chart's full name keeps as is.
const ACCOUNT: &str = "system:serviceaccount:coffer-system:coffer";

/// The helm binary `charts/ensure-helm.sh` built (test.sh builds it before the tests).
fn helm() -> String {
    let out = Command::new(repo().join("charts/ensure-helm.sh"))
        .output()
        .expect("running charts/ensure-helm.sh");
    assert!(
        out.status.success(),
        "charts/ensure-helm.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `kubectl auth can-i VERB RESOURCE` as the operator's ServiceAccount; `scope` is `-n NS`,
/// `--all-namespaces` or nothing (cluster-scoped resources).
fn can_i(cluster: &Cluster, verb: &str, resource: &str, scope: &[&str]) -> bool {
    let out = Command::new(&cluster.kubectl)
        .arg(format!("--kubeconfig={}", cluster.kubeconfig.display()))
        .args(["auth", "can-i", verb, resource, "--as", ACCOUNT])
        .args(scope)
        .output()
        .expect("running kubectl auth can-i");
    match String::from_utf8_lossy(&out.stdout).trim() {
        "yes" => true,
        "no" => false,
        _ => panic!(
            "kubectl auth can-i {verb} {resource} {scope:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

pub async fn the_chart_runs_the_operator(cluster: &mut Cluster, work: &Path) {
    let helm = helm();
    // Two operators on one store would fight over it: the test's own goes first.
    cluster.stop_in_cluster("coffer-operator");
    let home = cluster.dir.join("helm");
    let out = Command::new(&helm)
        .args(["install", "coffer"])
        .arg(repo().join("charts/coffer"))
        .args(["--namespace", RELEASE_NS, "--create-namespace"])
        .args(["--set", &format!("watchNamespaces={{{NS}}}")])
        .args(["--set", "leaderElection.enabled=true"])
        .arg(format!("--kubeconfig={}", cluster.kubeconfig.display()))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("running helm install");
    assert!(
        out.status.success(),
        "helm install: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let pod = wait_for("the operator Deployment available", cluster, |c| {
        let deployment = get_json(c, &["deployment", "-n", RELEASE_NS, "coffer"])?;
        let pods = get_json(
            c,
            &[
                "pods",
                "-n",
                RELEASE_NS,
                "-l",
                "app.kubernetes.io/name=coffer-operator",
            ],
        )?;
        let ready: Vec<String> = pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                p["status"]["phase"] == "Running"
                    && condition(p, "Ready").as_deref() == Some("True")
            })
            .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
            .collect();
        match (
            deployment["status"]["availableReplicas"].as_i64(),
            &ready[..],
        ) {
            (Some(1), [pod]) => Ok(pod.clone()),
            _ => Err(format!(
                "deployment status {}, ready pods {ready:?}",
                deployment["status"]
            )),
        }
    })
    .await;
    let lease = get_json(cluster, &["lease", "-n", RELEASE_NS, "coffer-operator"])
        .unwrap_or_else(|e| panic!("the leader Lease: {e}"));
    assert_eq!(
        lease["spec"]["holderIdentity"].as_str(),
        Some(pod.as_str()),
        "the Lease is held by the operator's pod: {lease}"
    );

    // What the operator needs, where it needs it...
    let store_ns = ["-n", NS];
    let release_ns = ["-n", RELEASE_NS];
    for (verb, resource, scope) in [
        ("watch", "objectstores.coffer.dev", &store_ns),
        ("patch", "buckets.coffer.dev", &store_ns),
        ("list", "accesskeys.coffer.dev", &store_ns),
        ("create", "statefulsets.apps", &store_ns),
        ("create", "secrets", &store_ns),
        ("create", "configmaps", &store_ns),
        ("create", "services", &store_ns),
        ("create", "poddisruptionbudgets.policy", &store_ns),
        ("create", "events.events.k8s.io", &store_ns),
        ("delete", "pods", &store_ns),
        ("watch", "pods", &store_ns),
        ("get", "leases.coordination.k8s.io", &release_ns),
        ("update", "leases.coordination.k8s.io", &release_ns),
    ] {
        assert!(
            can_i(cluster, verb, resource, scope),
            "the operator cannot {verb} {resource} {scope:?}"
        );
    }
    for sub in ["status", "finalizers"] {
        let args = ["-n", NS, "--subresource", sub];
        assert!(
            can_i(cluster, "update", "objectstores.coffer.dev", &args),
            "the operator cannot update objectstores/{sub}"
        );
    }
    // ... and nothing else: not other namespaces, not the cluster, not RBAC itself.
    let kube_system = ["-n", "kube-system"];
    let default = ["-n", "default"];
    let all = ["--all-namespaces"];
    for (verb, resource, scope) in [
        ("get", "secrets", &kube_system[..]),
        ("create", "statefulsets.apps", &default[..]),
        ("list", "objectstores.coffer.dev", &all[..]),
        ("delete", "nodes", &[][..]),
        ("create", "clusterroles.rbac.authorization.k8s.io", &[][..]),
        (
            "create",
            "rolebindings.rbac.authorization.k8s.io",
            &store_ns[..],
        ),
        ("*", "*", &store_ns[..]),
        ("create", "pods", &store_ns[..]),
        ("delete", "statefulsets.apps", &store_ns[..]),
        ("create", "leases.coordination.k8s.io", &store_ns[..]),
        (
            "delete",
            "customresourcedefinitions.apiextensions.k8s.io",
            &[][..],
        ),
    ] {
        assert!(
            !can_i(cluster, verb, resource, scope),
            "the operator may {verb} {resource} {scope:?}"
        );
    }

    // The chart's operator reconciles: a new bucket and a key for it, used with the aws CLI.
    cluster
        .apply(
            &[
                bucket_yaml("charted"),
                key_yaml("charted", "charted", "ReadWrite"),
            ]
            .join("---\n"),
        )
        .expect("kubectl apply of a bucket and a key");
    wait_for("Bucket charted Ready", cluster, |c| {
        ready(c, "bucket", NS, "charted")
    })
    .await;
    wait_for("AccessKey charted Ready", cluster, |c| {
        ready(c, "accesskey", NS, "charted")
    })
    .await;
    assert_healthy(cluster, "bucket", "charted");
    assert_healthy(cluster, "accesskey", "charted");
    let env = wait_for("Secret charted-s3", cluster, |c| {
        secret_env(c, NS, "charted-s3")
    })
    .await;
    let file = work.join("charted");
    std::fs::write(&file, b"installed with helm").expect("writing a file");
    let put = aws(
        cluster,
        work,
        &env,
        &["s3", "cp", &file.display().to_string(), "s3://charted/f"],
    );
    assert!(put.status.success(), "writing with the key: {}", text(&put));
    let ls = aws(cluster, work, &env, &["s3", "ls", "s3://charted/"]);
    assert!(
        ls.status.success() && text(&ls).contains(" f\n"),
        "listing with the key: {}",
        text(&ls)
    );
    ready(cluster, "objectstore", NS, "photos")
        .unwrap_or_else(|e| panic!("the store under the chart's operator: {e}"));

    // What Prometheus would scrape through the chart's metrics Service: every kind was
    // reconciled and the API server refused none of the operator's calls (a permission the
    // chart forgot shows up here as a `kube` error, whatever the resource).
    let metrics = wait_for("the operator's metrics", cluster, |c| {
        let url = format!("http://coffer-metrics.{RELEASE_NS}.svc:8080/metrics");
        let out = c
            .run_in_cluster("app", "curl", &["-sf", "--max-time", "10", &url], &[])
            .map_err(|e| format!("{e:#}"))?;
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        let kinds = ["ObjectStore", "Bucket", "AccessKey"];
        let all = kinds.iter().all(|k| {
            sample(
                &body,
                &format!("coffer_operator_reconciles_total{{kind=\"{k}\"}}"),
            )
            .is_some_and(|n| n > 0.0)
        });
        if out.status.success() && all {
            Ok(body)
        } else {
            Err(format!("{}{body}", String::from_utf8_lossy(&out.stderr)))
        }
    })
    .await;
    let refused = sample(
        &metrics,
        "coffer_operator_reconcile_errors_total{error=\"kube\"}",
    );
    assert!(
        refused.unwrap_or(0.0) == 0.0,
        "the API server refused the chart's operator:\n{metrics}"
    );
}

/// The value of series `name` (with its labels) in a Prometheus text exposition.
fn sample(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}
