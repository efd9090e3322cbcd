//! A Coffer cluster on one machine: N `coffer-server` processes on 127.0.0.1, each with D
//! drive folders, joined by a generated topology file (`Topology::local_cluster`, the same
//! schema the operator writes). Used by `coffer-e2e local-cluster` and the cluster tests.
//! Servers can be killed (`SIGKILL`) and restarted to test failures.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use coffer_server::cluster::Topology;

use crate::server::Credentials;

/// How long a server may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

pub struct LocalCluster {
    binary: PathBuf,
    dir: PathBuf,
    topology_path: PathBuf,
    pub topology: Topology,
    pub creds: Credentials,
    secret: String,
    children: Vec<Option<Child>>,
    starts: Vec<usize>,
}

/// A base port with `2 * servers` free ports above it.
fn free_base_port(servers: usize) -> Result<u16> {
    for _ in 0..50 {
        let base: u16 = 20_000 + (rand_u16() % 30_000);
        let all_free =
            (0..2 * servers as u16).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return Ok(base);
        }
    }
    bail!("no range of {} free loopback ports found", 2 * servers)
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
        std::fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let base = free_base_port(servers)?;
        let mut topology = Topology::local_cluster(servers, drives, &dir, base)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if parity.is_some() {
            topology.pools[0].parity = parity;
            topology.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let topology_path = dir.join("topology.json");
        std::fs::write(
            &topology_path,
            topology.to_json().map_err(|e| anyhow::anyhow!("{e}"))?,
        )?;
        let mut cluster = LocalCluster {
            binary: binary.to_path_buf(),
            dir,
            topology_path,
            topology,
            creds: Credentials::default(),
            secret: format!("local-cluster-{:x}", rand_u16() as u64 * 7919 + base as u64),
            children: (0..servers).map(|_| None).collect(),
            starts: vec![0; servers],
        };
        for i in 0..servers {
            cluster.spawn(i)?;
        }
        for i in 0..servers {
            cluster.wait_ready(i)?;
        }
        Ok(cluster)
    }

    pub fn len(&self) -> usize {
        self.children.len()
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    fn server(&self, i: usize) -> &coffer_server::cluster::ServerSpec {
        &self.topology.pools[0].servers[i]
    }

    /// `http://127.0.0.1:PORT` of server `i`'s S3 listener.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://{}", self.server(i).endpoint)
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
        let rpc_port = spec.rpc.rsplit(':').next().unwrap_or_default().to_string();
        let child = Command::new(&self.binary)
            .arg("serve")
            .args(["--topology".as_ref(), self.topology_path.as_os_str()])
            .args(["--node", &spec.name])
            .args(["--address", &spec.endpoint])
            .args(["--rpc-address", &format!("127.0.0.1:{rpc_port}")])
            .env("COFFER_ROOT_USER", &self.creds.access_key)
            .env("COFFER_ROOT_PASSWORD", &self.creds.secret_key)
            .env("COFFER_CLUSTER_SECRET", &self.secret)
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
            if http_status(&addr, "/_coffer/health/ready") == Some(200) {
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

/// The status code of `GET path` on `addr`, or `None` when nothing answers.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}
