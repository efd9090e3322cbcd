//! A Coffer cluster on one machine: N `coffer-server` processes, each on its own loopback
//! address (`127.A.B.i`, so servers are told apart by address as pods are, and clusters of
//! parallel tests never meet), each with D drive folders, joined by a generated topology file
//! (`Topology::local_cluster`, the same schema the operator writes). A cluster may have several
//! pools, and a pool can be appended while it runs. Used by `coffer-e2e local-cluster` and the
//! cluster tests. Servers can be killed (`SIGKILL`) and restarted to test failures. With TLS
//! (`local-cluster --tls`) every server serves S3 and peer RPC over TLS with a certificate of
//! a CA generated for the cluster ([`crate::cluster_pki`]); a server can be given another
//! CA to see the others refuse it.

use std::fs::File;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use coffer_server::cluster::{PoolSpec, ServerSpec, Topology};

use crate::cluster_pki::ClusterPki;
use crate::server::Credentials;

/// The lock lease of the test clusters' servers (production: 15 s).
const LOCK_LEASE_MS: &str = "4000";

/// How long a server may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

pub struct LocalCluster {
    binary: PathBuf,
    dir: PathBuf,
    topology_path: PathBuf,
    pub topology: Topology,
    pub creds: Credentials,
    secret: String,
    block: [u8; 2],
    children: Vec<Option<Child>>,
    starts: Vec<usize>,
    tls: Option<ClusterTls>,
}

/// The TLS files of a cluster: the cluster's own (`pkis[0]`) and any other CA's given to a
/// server, which server uses which, and a client of the harness trusting them all.
struct ClusterTls {
    pkis: Vec<ClusterPki>,
    /// Index into `pkis` of each server's files.
    uses: Vec<usize>,
    client: Arc<rustls::ClientConfig>,
}

impl ClusterTls {
    fn new(dir: &Path, block: [u8; 2], servers: usize) -> Result<ClusterTls> {
        let pki = ClusterPki::generate(
            &dir.join("tls"),
            "coffer local-cluster CA",
            &certificate_hosts(block),
        )?;
        let client = crate::cluster_pki::client_config(&[pki.ca_pem()], &[b"http/1.1"])?;
        Ok(ClusterTls {
            pkis: vec![pki],
            uses: vec![0; servers],
            client,
        })
    }

    fn trust_all(&mut self) -> Result<()> {
        let pems: Vec<&str> = self.pkis.iter().map(ClusterPki::ca_pem).collect();
        self.client = crate::cluster_pki::client_config(&pems, &[b"http/1.1"])?;
        Ok(())
    }

    fn of(&self, i: usize) -> &ClusterPki {
        &self.pkis[self.uses[i]]
    }
}

/// Every address a server of `block` may have (the block's room for appended pools) and
/// `localhost`: one certificate serves every server, as one Secret serves every pod.
fn certificate_hosts(block: [u8; 2]) -> Vec<String> {
    let mut hosts: Vec<String> = (0..ADDRESSES_PER_BLOCK)
        .map(|i| server_ip(block, i))
        .collect();
    hosts.push("localhost".into());
    hosts
}

/// Servers a cluster's address block holds: those it starts with, and room for pools
/// appended later.
const ADDRESSES_PER_BLOCK: usize = 64;

/// A pool of `shape` for servers numbered from `first` (names `node-N`, addresses in
/// `block`, drives under `dir/node-N/drive-J`).
fn pool_spec(dir: &Path, block: [u8; 2], index: usize, first: usize, shape: PoolShape) -> PoolSpec {
    PoolSpec {
        name: format!("pool-{index}"),
        set_size: None,
        parity: shape.parity,
        servers: (first..first + shape.servers)
            .map(|i| {
                let name = format!("node-{i}");
                let ip = server_ip(block, i);
                ServerSpec {
                    endpoint: format!("{ip}:{S3_PORT}"),
                    rpc: format!("{ip}:{RPC_PORT}"),
                    drives: (0..shape.drives)
                        .map(|j| dir.join(&name).join(format!("drive-{j}")))
                        .collect(),
                    name,
                }
            })
            .collect(),
    }
}

/// The shape of one pool: servers × drives, and its parity (`None`: the set size's default).
#[derive(Clone, Copy, Debug)]
pub struct PoolShape {
    pub servers: usize,
    pub drives: usize,
    pub parity: Option<usize>,
}

/// The S3 and peer RPC ports every server listens on (each on its own address).
const S3_PORT: u16 = 9000;
const RPC_PORT: u16 = 9100;

/// A loopback block `127.A.B.0/24` whose first `servers` addresses have both ports free.
fn free_address_block(servers: usize) -> Result<[u8; 2]> {
    for _ in 0..50 {
        let r = rand_u16();
        let block = [1 + (r % 250) as u8, 1 + ((r >> 8) % 250) as u8];
        let all_free = (0..servers).all(|i| {
            let ip = server_ip(block, i);
            TcpListener::bind((ip.as_str(), S3_PORT)).is_ok()
                && TcpListener::bind((ip.as_str(), RPC_PORT)).is_ok()
        });
        if all_free {
            return Ok(block);
        }
    }
    bail!("no loopback block with {servers} free addresses found")
}

/// The address of server `i` (counted over all pools) in `block`.
fn server_ip(block: [u8; 2], i: usize) -> String {
    format!("127.{}.{}.{}", block[0], block[1], i + 1)
}

fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ (std::process::id() << 7)) as u16
}

impl LocalCluster {
    /// Writes the topology for `servers` × `drives` under `dir` and starts every server; returns
    /// once all are ready.
    pub fn start(binary: &Path, servers: usize, drives: usize, dir: &Path) -> Result<LocalCluster> {
        Self::start_with_parity(binary, servers, drives, dir, None)
    }

    /// Like [`LocalCluster::start`], with the pool's parity set in the topology (`None`: the
    /// default for the set size).
    pub fn start_with_parity(
        binary: &Path,
        servers: usize,
        drives: usize,
        dir: &Path,
        parity: Option<usize>,
    ) -> Result<LocalCluster> {
        Self::start_pools(
            binary,
            &[PoolShape {
                servers,
                drives,
                parity,
            }],
            dir,
        )
    }

    /// Starts a cluster of several pools; servers are numbered across pools, pool after pool.
    pub fn start_pools(binary: &Path, pools: &[PoolShape], dir: &Path) -> Result<LocalCluster> {
        Self::start_pools_with(binary, pools, dir, false)
    }

    /// Like [`LocalCluster::start`], with S3 and peer RPC over TLS: a CA and a certificate
    /// for every server's address are generated under `dir/tls` (`ca.crt`, `tls.crt`,
    /// `tls.key`), and endpoints are `https://`.
    pub fn start_tls(
        binary: &Path,
        servers: usize,
        drives: usize,
        dir: &Path,
    ) -> Result<LocalCluster> {
        let shape = PoolShape {
            servers,
            drives,
            parity: None,
        };
        Self::start_pools_with(binary, &[shape], dir, true)
    }

    /// Starts a cluster of several pools, over TLS when `tls`.
    pub fn start_pools_with(
        binary: &Path,
        pools: &[PoolShape],
        dir: &Path,
        tls: bool,
    ) -> Result<LocalCluster> {
        std::fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let total: usize = pools.iter().map(|p| p.servers).sum();
        if total + 16 > ADDRESSES_PER_BLOCK {
            bail!(
                "a local cluster has at most {} servers",
                ADDRESSES_PER_BLOCK - 16
            );
        }
        // Room for a few pools appended later.
        let block = free_address_block(total + 16)?;
        // Topology::local_cluster gives the cluster id and checks the geometry; the servers
        // are then placed on their own addresses.
        let first = pools.first().context("a cluster has at least one pool")?;
        let mut topology = Topology::local_cluster(first.servers, first.drives, &dir, 1)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        topology.pools.clear();
        let mut next = 0;
        for (index, shape) in pools.iter().enumerate() {
            topology
                .pools
                .push(pool_spec(&dir, block, index, next, *shape));
            next += shape.servers;
        }
        topology.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        let topology_path = dir.join("topology.json");
        let tls = tls
            .then(|| ClusterTls::new(&dir, block, total))
            .transpose()?;
        let mut cluster = LocalCluster {
            binary: binary.to_path_buf(),
            dir,
            topology_path,
            topology,
            creds: Credentials::default(),
            secret: format!(
                "local-cluster-{:x}",
                rand_u16() as u64 * 7919 + block[0] as u64
            ),
            block,
            children: (0..total).map(|_| None).collect(),
            starts: vec![0; total],
            tls,
        };
        cluster.write_topology()?;
        for i in 0..total {
            cluster.spawn(i)?;
        }
        cluster.wait_all_connected()?;
        Ok(cluster)
    }

    /// Waits until every server is ready and sees every drive of the cluster online: a
    /// server is ready with a write quorum, and writes made before its last peer connects
    /// miss that peer's drives (healed later, but a test counting shards would see them
    /// missing).
    pub fn wait_all_connected(&mut self) -> Result<()> {
        for i in 0..self.len() {
            self.wait_ready(i)?;
        }
        let drives = self.total_drives() as f64;
        let start = Instant::now();
        for i in 0..self.len() {
            loop {
                let online = self.metric(i, "coffer_drives{state=\"online\"}");
                if online == Some(drives) {
                    break;
                }
                if start.elapsed() > READY_TIMEOUT {
                    bail!(
                        "server {i} sees {online:?} of {drives} drives online after {READY_TIMEOUT:?}\n{}",
                        self.log_tail(i, 30)
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    fn write_topology(&self) -> Result<()> {
        // Written whole and renamed, as a ConfigMap update lands: a server never reads half.
        let tmp = self.topology_path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            self.topology
                .to_json()
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        )?;
        std::fs::rename(&tmp, &self.topology_path)?;
        Ok(())
    }

    /// Appends a pool of `shape` while the cluster runs, as the operator does: starts the new
    /// servers, publishes the new topology, and starts again every server that stopped to pick
    /// it up. Returns once all servers are ready.
    pub fn add_pool(&mut self, shape: PoolShape) -> Result<()> {
        let first = self.len();
        let index = self.topology.pools.len();
        let mut topology = self.topology.clone();
        topology
            .pools
            .push(pool_spec(&self.dir, self.block, index, first, shape));
        topology.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        self.topology
            .check_update(&topology)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.topology = topology;
        self.children.extend((0..shape.servers).map(|_| None));
        self.starts.extend(std::iter::repeat_n(0, shape.servers));
        if let Some(tls) = &mut self.tls {
            tls.uses.extend(std::iter::repeat_n(0, shape.servers));
        }
        self.write_topology()?;
        for i in first..self.len() {
            self.spawn(i)?;
        }
        // The running servers notice the file within seconds and exit with status 75.
        let deadline = Instant::now() + Duration::from_secs(30);
        for i in 0..first {
            while let Some(child) = self.children[i].as_mut() {
                if let Some(status) = child.try_wait()? {
                    if status.code() != Some(75) {
                        bail!(
                            "node-{i} exited with {status}, not to restart\n{}",
                            self.log_tail(i, 20)
                        );
                    }
                    self.children[i] = None;
                    break;
                }
                if Instant::now() > deadline {
                    bail!("node-{i} did not pick up the new topology within 30 s");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            self.spawn(i)?;
        }
        self.wait_all_connected()
    }

    pub fn len(&self) -> usize {
        self.children.len()
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Drives of every server of every pool.
    fn total_drives(&self) -> usize {
        self.topology
            .pools
            .iter()
            .flat_map(|p| &p.servers)
            .map(|s| s.drives.len())
            .sum()
    }

    /// Server `i`, counted over all pools.
    fn server(&self, i: usize) -> &ServerSpec {
        self.topology
            .pools
            .iter()
            .flat_map(|p| &p.servers)
            .nth(i)
            .expect("a server of this cluster")
    }

    /// The pool of server `i`.
    pub fn pool_of(&self, i: usize) -> usize {
        let mut first = 0;
        for (p, pool) in self.topology.pools.iter().enumerate() {
            if i < first + pool.servers.len() {
                return p;
            }
            first += pool.servers.len();
        }
        panic!("server {i} is not in this cluster")
    }

    /// `http://ADDRESS:PORT` (`https://` with TLS) of server `i`'s S3 listener.
    pub fn endpoint(&self, i: usize) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.server(i).endpoint)
    }

    /// `ADDRESS:PORT` of server `i`'s peer RPC listener.
    pub fn rpc_address(&self, i: usize) -> String {
        self.server(i).rpc.clone()
    }

    /// The cluster's CA certificate (PEM), when it runs with TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.pkis[0].ca_pem())
    }

    /// Gives server `i` a certificate of a CA of its own (and makes it trust only that CA),
    /// as a server given the wrong Secret would be. Takes effect when it starts again.
    pub fn use_foreign_ca(&mut self, i: usize) -> Result<()> {
        let block = self.block;
        let dir = self.dir.join(format!("tls-foreign-{i}"));
        let tls = self
            .tls
            .as_mut()
            .context("only a TLS cluster has a CA to replace")?;
        let pki = ClusterPki::generate(&dir, "another CA", &certificate_hosts(block))?;
        tls.pkis.push(pki);
        tls.uses[i] = tls.pkis.len() - 1;
        tls.trust_all()
    }

    /// Gives server `i` the cluster's certificate and CA again. Takes effect when it starts
    /// again.
    pub fn use_cluster_ca(&mut self, i: usize) {
        if let Some(tls) = &mut self.tls {
            tls.uses[i] = 0;
        }
    }

    pub fn endpoints(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.endpoint(i)).collect()
    }

    /// Drive folder `j` of server `i`.
    pub fn drive(&self, i: usize, j: usize) -> PathBuf {
        self.server(i).drives[j].clone()
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node-{i}.log"))
    }

    /// Starts server `i` (again).
    pub fn spawn(&mut self, i: usize) -> Result<()> {
        if self.children[i].is_some() {
            bail!("server {i} is running");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))?;
        self.starts[i] += 1;
        let spec = self.server(i).clone();
        let tls_args = self
            .tls
            .as_ref()
            .map(|t| t.of(i).serve_args())
            .unwrap_or_default();
        let child = Command::new(&self.binary)
            .arg("serve")
            .args(&tls_args)
            .args(["--topology".as_ref(), self.topology_path.as_os_str()])
            .args(["--node", &spec.name])
            .args(["--address", &spec.endpoint])
            .args(["--rpc-address", &spec.rpc])
            .env("COFFER_ROOT_USER", &self.creds.access_key)
            .env("COFFER_ROOT_PASSWORD", &self.creds.secret_key)
            .env("COFFER_CLUSTER_SECRET", &self.secret)
            // A server votes for locks only once one lease passed since it started: a short
            // lease keeps each (re)start's wait short.
            .env("COFFER_LOCK_LEASE_MS", LOCK_LEASE_MS)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", self.binary.display()))?;
        self.children[i] = Some(child);
        Ok(())
    }

    /// Waits until server `i` answers its readiness probe.
    pub fn wait_ready(&mut self, i: usize) -> Result<()> {
        let start = Instant::now();
        let addr = self.server(i).endpoint.clone();
        while start.elapsed() < READY_TIMEOUT {
            if let Some(child) = self.children[i].as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.children[i] = None;
                    bail!(
                        "server {i} exited with {status} while starting\n{}",
                        self.log_tail(i, 30)
                    );
                }
            }
            if self
                .http_get(&addr, "/_coffer/health/ready")
                .map(|(s, _)| s)
                == Some(200)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "server {i} not ready within {READY_TIMEOUT:?}\n{}",
            self.log_tail(i, 30)
        )
    }

    /// Kills server `i` with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    /// The process ids of the running servers, by server index (`None`: not running).
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.children
            .iter()
            .map(|c| c.as_ref().map(Child::id))
            .collect()
    }

    /// Fails when a server has exited (crashed, or killed from outside) since it started.
    pub fn ensure_running(&mut self) -> Result<()> {
        for (i, c) in self.children.iter_mut().enumerate() {
            match c {
                None => bail!("node-{i} is not running"),
                Some(child) => {
                    if let Some(status) = child.try_wait()? {
                        *c = None;
                        bail!("node-{i} is no longer running: exited with {status}");
                    }
                }
            }
        }
        Ok(())
    }

    /// The last `n` lines of server `i`'s log.
    pub fn log_tail(&self, i: usize, n: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(self.log_path(i)) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Prints every server's log tail (for a failing test).
    pub fn dump_logs(&self, n: usize) {
        for i in 0..self.len() {
            eprintln!("---- node-{i} log ----\n{}", self.log_tail(i, n));
        }
    }

    /// Waits until the processes exit (`local-cluster` runs until interrupted).
    pub fn wait(&mut self) -> Result<()> {
        loop {
            for (i, c) in self.children.iter_mut().enumerate() {
                if let Some(child) = c {
                    if let Some(status) = child.try_wait()? {
                        eprintln!("node-{i} exited with {status}");
                        *c = None;
                    }
                }
            }
            if self.children.iter().all(Option::is_none) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            self.dump_logs(40);
        }
    }
}

impl LocalCluster {
    /// The value of metric `name` (a line `name value`, no labels) on server `i`'s
    /// `/_coffer/metrics`, or `None` when the server does not answer or has no such line.
    pub fn metric(&self, i: usize, name: &str) -> Option<f64> {
        let (status, text) = self.http_get(&self.server(i).endpoint, "/_coffer/metrics")?;
        if status != 200 {
            return None;
        }
        text.lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .find_map(|v| v.trim().parse().ok())
    }
}

impl LocalCluster {
    /// The status and body of `GET path` on `addr` (HTTP/1.1, `Connection: close`; HTTPS
    /// with TLS), or `None` when nothing answers.
    fn http_get(&self, addr: &str, path: &str) -> Option<(u16, String)> {
        match &self.tls {
            None => {
                let s = TcpStream::connect(addr).ok()?;
                s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
                crate::cluster_pki::http_get_over(s, addr, path)
            }
            Some(tls) => {
                let s = crate::cluster_pki::connect(addr, tls.client.clone()).ok()?;
                crate::cluster_pki::http_get_over(s, addr, path)
            }
        }
    }
}
