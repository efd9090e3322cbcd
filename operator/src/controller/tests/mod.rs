//! Scenario tests of the reconcilers against a mock API server (tower-test, as kube-rs's
//! controller-rs fixtures) that keeps objects in memory and records every request, and —
//! where the admin API is involved — a real `coffer-server` process.

mod access_key;
mod admin_api;
mod bucket;
mod object_store;
mod runtime;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use http::{Request, Response};
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use kube::Client;
use serde_json::{json, Value};

use super::Context;
use crate::admin::{Admin, AdminAccess, RootCredential};
use crate::crd::Bucket;
use crate::metrics::Metrics;

/// The mock API server's state: objects by path, and every request as `METHOD path`.
#[derive(Clone, Default)]
pub struct FakeApi {
    objects: Arc<Mutex<BTreeMap<String, Value>>>,
    requests: Arc<Mutex<Vec<String>>>,
    events: Arc<Mutex<Vec<Value>>>,
    /// Writes to these paths are refused with 422 Invalid (what the API server answers, e.g.,
    /// to a changed StatefulSet claim template).
    invalid: Arc<Mutex<Vec<String>>>,
    /// Writes to these paths fail with 500 (an API server or etcd hiccup).
    failing: Arc<Mutex<Vec<String>>>,
    /// Requests to paths under these prefixes never get an answer (a hung API call).
    hanging: Arc<Mutex<Vec<String>>>,
    /// The last server-side apply of each object: what its field manager owns.
    applied: Arc<Mutex<BTreeMap<String, Value>>>,
}

fn status(code: u16, reason: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason}),
    )
}

/// Merges `patch` into `target` (objects recursively, everything else replaced, null removes).
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// Removes from `target` what `before` (the previous apply) named and `now` does not: what
/// server-side apply does to the fields a manager stops applying. Lists are atomic here.
fn drop_unapplied(target: &mut Value, before: &Value, now: &Value) {
    let (Some(t), Some(b)) = (target.as_object_mut(), before.as_object()) else {
        return;
    };
    for (k, bv) in b {
        match now.get(k) {
            None => {
                t.remove(k);
            }
            Some(nv) => {
                if let Some(tv) = t.get_mut(k) {
                    drop_unapplied(tv, bv, nv);
                }
            }
        }
    }
}

/// Rewrites quantities under `limits`/`requests` to the API server's canonical form for the
/// cases the tests use (a decimal fraction of a core becomes millicores: `0.5` → `500m`).
fn canonical_quantities(v: &mut Value, inside: bool) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                canonical_quantities(child, inside || matches!(k.as_str(), "limits" | "requests"));
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| canonical_quantities(i, false)),
        Value::String(q) if inside => {
            if let Ok(n) = q.parse::<f64>() {
                if n.fract() != 0.0 {
                    *q = format!("{}m", (n * 1000.0).round() as i64);
                }
            }
        }
        _ => {}
    }
}

fn decode(s: &str) -> String {
    s.replace("%2F", "/")
        .replace("%3D", "=")
        .replace("%2C", ",")
}

impl FakeApi {
    /// A client whose every request this fake answers.
    pub fn start() -> (Client, FakeApi) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = FakeApi::default();
        let state = fake.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (code, body) = state.answer(request).await;
                let response = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap();
                send.send_response(response);
            }
        });
        (Client::new(service, crate::fixtures::NS), fake)
    }

    async fn answer(&self, request: Request<Body>) -> (u16, Value) {
        let method = request.method().to_string();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or("").to_string();
        let content_type = request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.requests
            .lock()
            .unwrap()
            .push(format!("{method} {path}"));
        if path.contains("/events") {
            self.events.lock().unwrap().push(body.clone());
            return (201, body);
        }
        if method != "GET" && self.invalid.lock().unwrap().contains(&path) {
            return status(422, "Invalid");
        }
        if method != "GET" && self.failing.lock().unwrap().contains(&path) {
            return status(500, "InternalError");
        }
        if self
            .hanging
            .lock()
            .unwrap()
            .iter()
            .any(|p| path.starts_with(p.as_str()))
        {
            return std::future::pending().await;
        }
        let segments: Vec<&str> = path.split('/').collect();
        let after_ns = segments
            .iter()
            .position(|s| *s == "namespaces")
            .map(|i| segments.len() - i - 2)
            .unwrap_or(0);
        let mut objects = self.objects.lock().unwrap();
        match (method.as_str(), after_ns) {
            ("GET", 1) => {
                let selector: Vec<(String, String)> = query
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("labelSelector="))
                    .flat_map(|s| decode(s).split(',').map(String::from).collect::<Vec<_>>())
                    .filter_map(|kv| {
                        kv.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                    })
                    .collect();
                let prefix = format!("{path}/");
                let items: Vec<Value> = objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                    .map(|(_, v)| v.clone())
                    .filter(|v| {
                        selector
                            .iter()
                            .all(|(k, want)| v["metadata"]["labels"][k].as_str() == Some(want))
                    })
                    .collect();
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
                )
            }
            ("GET", _) => match objects.get(&path) {
                Some(v) => (200, v.clone()),
                None => status(404, "NotFound"),
            },
            ("POST", 1) => {
                let key = format!("{path}/{}", body["metadata"]["name"].as_str().unwrap_or(""));
                if objects.contains_key(&key) {
                    return status(409, "AlreadyExists");
                }
                let mut obj = body.clone();
                merge(
                    &mut obj,
                    &json!({"metadata": {"uid": format!("uid-{key}"), "resourceVersion": "1"}}),
                );
                objects.insert(key, obj.clone());
                (201, obj)
            }
            ("PUT", _) => {
                // An update carries the resourceVersion it read: a stale one is a conflict.
                let stored = objects
                    .get(&path)
                    .map(|o| o["metadata"]["resourceVersion"].clone());
                let sent = &body["metadata"]["resourceVersion"];
                if let Some(stored) = &stored {
                    if !sent.is_null() && sent != stored {
                        return status(409, "Conflict");
                    }
                }
                let next = stored
                    .and_then(|v| v.as_str().and_then(|s| s.parse::<u64>().ok()))
                    .unwrap_or(0)
                    + 1;
                let mut obj = body.clone();
                obj["metadata"]["resourceVersion"] = json!(next.to_string());
                objects.insert(path.clone(), obj.clone());
                (200, obj)
            }
            ("DELETE", _) => match objects.remove(&path) {
                Some(v) => (200, v),
                None => status(404, "NotFound"),
            },
            ("PATCH", _) => {
                let (key, sub) = match path.strip_suffix("/status") {
                    Some(k) if after_ns == 3 => (k.to_string(), true),
                    _ => (path.clone(), false),
                };
                if content_type.contains("json-patch") {
                    let Some(obj) = objects.get_mut(&key) else {
                        return status(404, "NotFound");
                    };
                    for op in body.as_array().cloned().unwrap_or_default() {
                        let p = op["path"].as_str().unwrap_or("");
                        match (op["op"].as_str(), p) {
                            (Some("remove"), p) if p.starts_with("/metadata/finalizers/") => {
                                let i: usize = p.rsplit('/').next().unwrap().parse().unwrap();
                                obj["metadata"]["finalizers"]
                                    .as_array_mut()
                                    .unwrap()
                                    .remove(i);
                            }
                            (Some("add"), "/metadata/finalizers") => {
                                obj["metadata"]["finalizers"] = op["value"].clone()
                            }
                            (Some("add"), "/metadata/finalizers/-") => obj["metadata"]
                                ["finalizers"]
                                .as_array_mut()
                                .unwrap()
                                .push(op["value"].clone()),
                            _ => {}
                        }
                    }
                    return (200, obj.clone());
                }
                if content_type.contains("apply-patch") && !sub {
                    // Server-side apply by one manager: fields it stopped applying go, the
                    // rest merges in; quantities are canonicalized and a changed spec bumps
                    // the generation, as the API server does.
                    let mut applied = self.applied.lock().unwrap();
                    let entry = objects.entry(key.clone()).or_insert_with(|| json!({}));
                    let spec_before = entry["spec"].clone();
                    if let Some(before) = applied.get(&key) {
                        drop_unapplied(entry, before, &body);
                    }
                    merge(entry, &body);
                    canonical_quantities(entry, false);
                    applied.insert(key, body.clone());
                    if entry["spec"] != spec_before || entry["metadata"]["generation"].is_null() {
                        let generation = entry["metadata"]["generation"].as_i64().unwrap_or(0);
                        entry["metadata"]["generation"] = json!(generation + 1);
                    }
                    return (200, entry.clone());
                }
                let entry = objects.entry(key).or_insert_with(|| json!({}));
                let mut patch = body.clone();
                if sub {
                    patch = json!({"status": body["status"].clone()});
                }
                merge(entry, &patch);
                (200, entry.clone())
            }
            _ => status(405, "MethodNotAllowed"),
        }
    }

    pub fn refuse_writes_to(&self, path: &str) {
        self.invalid.lock().unwrap().push(path.into());
    }

    /// Writes to `path` fail with 500 from now on.
    pub fn fail_writes_to(&self, path: &str) {
        self.failing.lock().unwrap().push(path.into());
    }

    /// Writes to `path` succeed again.
    pub fn heal_writes_to(&self, path: &str) {
        self.failing.lock().unwrap().retain(|p| p != path);
    }

    /// Requests under `prefix` hang from now on.
    pub fn hang(&self, prefix: &str) {
        self.hanging.lock().unwrap().push(prefix.into());
    }

    /// What the garbage collector does once owner `uid` is gone: deletes every object with
    /// an owner reference to it.
    pub fn collect_garbage(&self, uid: &str) {
        self.objects.lock().unwrap().retain(|_, obj| {
            !obj["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        });
    }

    pub fn put(&self, path: &str, obj: impl serde::Serialize) {
        self.objects
            .lock()
            .unwrap()
            .insert(path.into(), serde_json::to_value(obj).unwrap());
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.objects.lock().unwrap().get(path).cloned()
    }

    pub fn remove(&self, path: &str) {
        self.objects.lock().unwrap().remove(path);
    }

    /// Paths under `prefix`.
    pub fn paths(&self, prefix: &str) -> Vec<String> {
        self.objects
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Every request that changed something (not GET, not an Event), then forgets them.
    pub fn take_writes(&self) -> Vec<String> {
        let all = std::mem::take(&mut *self.requests.lock().unwrap());
        all.into_iter()
            .filter(|r| !r.starts_with("GET ") && !r.contains("/events"))
            .collect()
    }

    /// The reasons of the Events published so far, then forgets them.
    pub fn take_events(&self) -> Vec<String> {
        std::mem::take(&mut *self.events.lock().unwrap())
            .iter()
            .map(|e| e["reason"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Everything the operator wrote anywhere (objects and Events), as text.
    pub fn everything(&self) -> String {
        format!(
            "{:?}{:?}",
            self.objects.lock().unwrap(),
            self.events.lock().unwrap()
        )
    }
}

pub const CORE: &str = "/api/v1/namespaces/media";
pub const APPS: &str = "/apis/apps/v1/namespaces/media";
pub const COFFER: &str = "/apis/coffer.dev/v1alpha1/namespaces/media";

pub fn context(client: Client, endpoint: Option<&str>, buckets: &[Bucket]) -> Arc<Context> {
    let mut writer = Writer::<Bucket>::default();
    for b in buckets {
        writer.apply_watcher_event(&watcher::Event::Apply(b.clone()));
    }
    Arc::new(Context {
        client,
        admin: AdminAccess {
            endpoint_override: endpoint.map(String::from),
            timeout: std::time::Duration::from_secs(5),
        },
        metrics: Arc::new(Metrics::default()),
        reporter: Reporter {
            controller: "coffer-operator".into(),
            instance: None,
        },
        buckets: writer.as_reader(),
        server_image: "coffer:default".into(),
    })
}

/// The object at `path` as `K`.
pub fn read<K: serde::de::DeserializeOwned>(fake: &FakeApi, path: &str) -> K {
    serde_json::from_value(
        fake.get(path)
            .unwrap_or_else(|| panic!("no object at {path}")),
    )
    .unwrap()
}

pub const ROOT_USER: &str = "coffer-test-root";
pub const ROOT_PASSWORD: &str = "coffer-test-root-password";

/// A real `coffer-server` on one drive in a temporary folder, killed on drop.
pub struct RealServer {
    child: Child,
    _dir: tempfile::TempDir,
    _tls_dir: Option<tempfile::TempDir>,
    pub endpoint: String,
}

fn server_binary() -> std::path::PathBuf {
    static BUILT: OnceLock<std::path::PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| workspace.join("target"));
            // A no-op when `cargo test --workspace` built it already: `--bin` at the workspace
            // root resolves the workspace's one feature set (`-p coffer-server` would resolve
            // another and rebuild tokio, hyper and the rest; see Cargo.toml).
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--release", "--bin", "coffer-server"])
                .current_dir(&workspace)
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building coffer-server failed");
            target.join("release").join("coffer-server")
        })
        .clone()
}

/// A CA and a certificate it signed for `127.0.0.1`, as PEM (what a store's TLS Secret holds).
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestPki {
    pub fn new() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        TestPki {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The store's TLS Secret `name`, as cert-manager writes it.
    pub fn secret(&self, name: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": "media"},
            "data": {
                "tls.crt": base64(&self.cert_pem),
                "tls.key": base64(&self.key_pem),
                "ca.crt": base64(&self.ca_pem),
            }
        })
    }
}

impl RealServer {
    pub fn start() -> RealServer {
        Self::start_with(&[])
    }

    /// A server serving HTTPS with `pki`'s certificate.
    pub fn start_tls(pki: &TestPki) -> RealServer {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert, &pki.cert_pem).unwrap();
        std::fs::write(&key, &pki.key_pem).unwrap();
        let mut server = Self::start_with(&[
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ]);
        server._tls_dir = Some(dir);
        server
    }

    fn start_with(args: &[&std::ffi::OsStr]) -> RealServer {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        // Four drives: the tests' stores are one pool of 4 servers × 1 drive, and every
        // server of a pool lists all the pool's drives, as this one server does for all four
        // pods it answers for.
        let mut child = Command::new(server_binary())
            .arg("serve")
            .args((0..4).map(|i| dir.path().join(format!("drive{i}"))))
            .args(["--address", "127.0.0.1:0"])
            .args(args)
            .env("COFFER_ROOT_USER", ROOT_USER)
            .env("COFFER_ROOT_PASSWORD", ROOT_PASSWORD)
            .env_remove("COFFER_DRIVES")
            .env_remove("COFFER_ADDRESS")
            .env_remove("COFFER_REGION")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("coffer-server starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(e) = line.strip_prefix("endpoint=") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(e.trim().to_string());
                    }
                }
            }
        });
        let endpoint = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("coffer-server prints its endpoint");
        RealServer {
            child,
            _dir: dir,
            _tls_dir: None,
            endpoint,
        }
    }

    /// The operator's admin client for this server.
    pub fn admin(&self) -> Admin {
        AdminAccess::default()
            .client(
                &self.endpoint,
                &RootCredential {
                    user: ROOT_USER.into(),
                    password: ROOT_PASSWORD.into(),
                },
                "us-east-1",
                None,
            )
            .unwrap()
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The store `photos` as the API server holds it, with the root Secret the real server uses.
pub fn seed_store(fake: &FakeApi, store: &crate::crd::ObjectStore) {
    fake.put(&format!("{COFFER}/objectstores/photos"), store);
    fake.put(
        &format!("{CORE}/secrets/photos-root"),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "photos-root", "namespace": "media", "labels": {"coffer.dev/store": "photos"}},
            "data": {
                "COFFER_ROOT_USER": base64(ROOT_USER),
                "COFFER_ROOT_PASSWORD": base64(ROOT_PASSWORD),
            }
        }),
    );
}

pub fn base64(s: &str) -> String {
    serde_json::to_value(k8s_openapi::ByteString(s.as_bytes().to_vec()))
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}
