//! Helpers of the cluster test suites: clusters of real `coffer-server` processes in a
//! temporary folder, AWS SDK clients for any server, bodies, listings and shard files.
#![allow(dead_code)] // each suite uses its own subset

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use coffer_e2e::cluster::LocalCluster;
use md5::{Digest, Md5};

/// A cluster in a temporary folder; the folder goes after the cluster (whose drop prints the
/// servers' logs when the test fails).
pub struct TestCluster {
    pub cluster: LocalCluster,
    pub dir: tempfile::TempDir,
}

impl std::ops::Deref for TestCluster {
    type Target = LocalCluster;
    fn deref(&self) -> &LocalCluster {
        &self.cluster
    }
}

impl std::ops::DerefMut for TestCluster {
    fn deref_mut(&mut self) -> &mut LocalCluster {
        &mut self.cluster
    }
}

pub fn start(servers: usize, drives: usize) -> TestCluster {
    let binary = coffer_e2e::server::coffer_binary().unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(&binary, servers, drives, dir.path())
        .unwrap_or_else(|e| panic!("starting the cluster: {e:#}"));
    TestCluster { cluster, dir }
}

/// A cluster whose servers speak TLS on S3 and peer RPC (`local-cluster --tls`).
pub fn start_tls(servers: usize, drives: usize) -> TestCluster {
    let binary = coffer_e2e::server::coffer_binary().unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start_tls(&binary, servers, drives, dir.path())
        .unwrap_or_else(|e| panic!("starting the TLS cluster: {e:#}"));
    TestCluster { cluster, dir }
}

pub fn client(cluster: &LocalCluster, i: usize) -> Client {
    client_as(
        cluster,
        i,
        &cluster.creds.access_key,
        &cluster.creds.secret_key,
    )
}

pub fn client_as(cluster: &LocalCluster, i: usize, access_key: &str, secret_key: &str) -> Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "cluster-tests",
        ))
        .endpoint_url(cluster.endpoint(i))
        .force_path_style(true)
        .http_client(http_client(cluster))
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

/// Plain HTTP, or HTTPS trusting only the cluster's CA when it runs with TLS.
fn http_client(cluster: &LocalCluster) -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    match cluster.ca_pem() {
        None => aws_smithy_http_client::Builder::new().build_http(),
        Some(ca) => aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .tls_context(
                tls::TlsContext::builder()
                    .with_trust_store(
                        tls::TrustStore::empty().with_pem_certificate(ca.as_bytes().to_vec()),
                    )
                    .build()
                    .expect("the cluster's CA is a valid trust store"),
            )
            .build_https(),
    }
}

pub fn body(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

pub async fn get(c: &Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    match c.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => Some(o.body.collect().await.unwrap().into_bytes().to_vec()),
        Err(e) => {
            let code = e
                .as_service_error()
                .map(|s| s.is_no_such_key())
                .unwrap_or(false);
            assert!(code, "GET {key}: {e:?}");
            None
        }
    }
}

pub async fn create_bucket(c: &Client, bucket: &str) {
    c.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateBucket {bucket}: {e:?}"));
}

pub async fn put(c: &Client, bucket: &str, key: &str, data: Vec<u8>) {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {key}: {e:?}"));
}

pub async fn list(c: &Client, bucket: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .max_keys(100)
            .send()
            .await
            .unwrap();
        for o in page.contents() {
            out.push((o.key().unwrap().to_string(), o.e_tag().unwrap().to_string()));
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            return out;
        }
    }
}

/// Data files (shards) on one drive folder, by name with their sizes.
pub fn shard_files(drive: &Path) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Ok(dirs) = std::fs::read_dir(drive.join("data")) else {
        return out;
    };
    for d in dirs.flatten() {
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            out.insert(f.file_name().to_string_lossy().to_string(), len);
        }
    }
    out
}

/// Waits (bounded) until `drive` holds the same shard files, with the same sizes, as
/// `reference`.
pub fn wait_for_same_shards(drive: &Path, reference: &Path, what: &str) {
    let start = Instant::now();
    loop {
        let (have, want) = (shard_files(drive), shard_files(reference));
        if have == want && !want.is_empty() {
            return;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let missing = want.keys().filter(|k| have.get(*k) != want.get(*k)).count();
            panic!(
                "{what}: {} has {} shard files, {missing} of {} missing or short after 90 s",
                drive.display(),
                have.len(),
                want.len()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `coffer-server admin ARGS…` against server `i`; returns its output.
pub fn admin(cluster: &LocalCluster, i: usize, args: &[&str]) -> String {
    let out = std::process::Command::new(coffer_e2e::server::coffer_binary().unwrap())
        .arg("admin")
        .args(args)
        .env("COFFER_ENDPOINT", cluster.endpoint(i))
        .env("COFFER_ROOT_USER", &cluster.creds.access_key)
        .env("COFFER_ROOT_PASSWORD", &cluster.creds.secret_key)
        .output()
        .unwrap();
    assert!(out.status.success(), "admin {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub fn all_drives(cluster: &LocalCluster, drives: usize) -> Vec<PathBuf> {
    (0..cluster.len())
        .flat_map(|i| (0..drives).map(move |j| (i, j)))
        .map(|(i, j)| cluster.drive(i, j))
        .collect()
}

/// A child process killed (and reaped) when the test ends, passed or failed, with its process
/// group when it leads one (spawned with `process_group(0)`: a script and what it started).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a standalone server prints first: (endpoint, root user, root password). Reads its
/// standard output until all three were printed, each line within `patience`.
pub fn banner(stdout: std::process::ChildStdout, patience: Duration) -> (String, String, String) {
    use std::io::{BufRead, BufReader};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut endpoint, mut user, mut password) = (None, None, None);
    while endpoint.is_none() || user.is_none() || password.is_none() {
        let line = rx
            .recv_timeout(patience)
            .expect("the server prints its endpoint and a generated root credential");
        if let Some(v) = line.strip_prefix("endpoint=") {
            endpoint = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("COFFER_ROOT_USER=") {
            user = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("COFFER_ROOT_PASSWORD=") {
            password = Some(v.to_string());
        }
    }
    (endpoint.unwrap(), user.unwrap(), password.unwrap())
}

/// An S3 client of a plain-HTTP `endpoint` with the given credential.
pub fn s3_client(endpoint: &str, access_key: &str, secret_key: &str) -> Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "e2e"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(conf)
}
