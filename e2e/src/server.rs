//! S3 servers run as child processes — coffer-server and MinIO — each on
//! 127.0.0.1 with its own temporary drive folder, killed (and the folder
//! removed) when the handle is dropped. Used by the compatibility tests and by
//! the benchmark.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

/// How long a server may take from spawn to serving requests.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The root access key and secret a server is started with.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            access_key: "cofferadmin".into(),
            secret_key: "coffer-e2e-secret-key".into(),
        }
    }
}

/// A running server; dropping it kills the process and deletes its folder.
pub struct ServerProcess {
    name: &'static str,
    child: Child,
    host_port: String,
    log_path: PathBuf,
    // Declared last so the folder outlives the process while it is killed.
    dir: TempDir,
}

impl ServerProcess {
    /// Starts `coffer-server serve DRIVE --address 127.0.0.1:0` in a fresh
    /// folder under `scratch` and waits for its `endpoint=` line.
    pub fn start_coffer(
        binary: &Path,
        creds: &Credentials,
        scratch: &Path,
        drives: usize,
    ) -> Result<Self> {
        let dir = server_dir("coffer", scratch)?;
        let drives = drive_folders(dir.path(), drives)?;
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path)?;
        let mut child = Command::new(binary)
            .arg("serve")
            .args(&drives)
            .args(["--address", "127.0.0.1:0"])
            .env("COFFER_ROOT_USER", &creds.access_key)
            .env("COFFER_ROOT_PASSWORD", &creds.secret_key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;

        // The stdout reader keeps draining (into the log) after the endpoint
        // line, so the server never blocks on a full pipe.
        let stdout = child.stdout.take().expect("stdout was configured as piped");
        let mut log_copy = OpenOptions::new().append(true).open(&log_path)?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log_copy, "{line}");
                if let Some(endpoint) = line.trim().strip_prefix("endpoint=") {
                    let _ = tx.send(endpoint.to_string());
                }
            }
        });

        let mut server = ServerProcess {
            name: "coffer-server",
            child,
            host_port: String::new(),
            log_path,
            dir,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(endpoint) => {
                server.host_port = endpoint
                    .strip_prefix("http://")
                    .with_context(|| format!("endpoint line is not http://HOST:PORT: {endpoint}"))?
                    .trim_end_matches('/')
                    .to_string();
                Ok(server)
            }
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                bail!(
                    "coffer-server printed no endpoint= line within {START_TIMEOUT:?} (exit status: {status:?})\n{}",
                    server.log_tail(40)
                )
            }
        }
    }

    /// Starts `minio server DRIVE` on a free loopback port with `creds` as the
    /// root user and waits until its liveness probe answers.
    pub fn start_minio(
        binary: &Path,
        creds: &Credentials,
        scratch: &Path,
        drives: usize,
    ) -> Result<Self> {
        let dir = server_dir("minio", scratch)?;
        let drives = drive_folders(dir.path(), drives)?;
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path)?;
        let host_port = format!("127.0.0.1:{}", free_port()?);
        let console = format!("127.0.0.1:{}", free_port()?);
        let child = Command::new(binary)
            .arg("server")
            .args(&drives)
            .args([
                "--address",
                &host_port,
                "--console-address",
                &console,
                "--quiet",
            ])
            .env("MINIO_ROOT_USER", &creds.access_key)
            .env("MINIO_ROOT_PASSWORD", &creds.secret_key)
            .env("MINIO_BROWSER", "off")
            // Our drive folders share the root filesystem; without this MinIO refuses
            // them in erasure mode ("drive not found") and never becomes ready.
            .env("MINIO_CI_CD", "on")
            .env("MINIO_UPDATE", "off")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut server = ServerProcess {
            name: "minio",
            child,
            host_port,
            log_path,
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        // `cluster` answers 200 only once the drives are formatted and write quorum is
        // up (`live` answers before that, and the first requests would fail).
        while !server.http_ok("/minio/health/cluster") {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "minio exited with {status} while starting\n{}",
                    server.log_tail(40)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "minio not live within {START_TIMEOUT:?}\n{}",
                    server.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// Fails when the process has exited (crashed, or killed from outside).
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("{} is no longer running: exited with {status}", self.name),
            None => Ok(()),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.host_port)
    }

    /// `127.0.0.1:PORT`
    pub fn host_port(&self) -> &str {
        &self.host_port
    }

    /// The server's temporary folder (drive and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last `lines` lines the server wrote to stdout and stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = strip_ansi(&std::fs::read_to_string(&self.log_path).unwrap_or_default());
        let all: Vec<&str> = text.lines().collect();
        let start = all.len().saturating_sub(lines);
        format!(
            "--- {} log (last {lines} lines) ---\n{}",
            self.name,
            all[start..].join("\n")
        )
    }

    /// One plain HTTP/1.0 GET; true on a 200 answer.
    fn http_ok(&self, path: &str) -> bool {
        http_ok(&self.host_port, path)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A distributed MinIO on loopback: `servers` processes, each on its own port with `drives`
/// drive folders of its own (`DIR/nodeI/dJ`), all listed as one erasure set, the way MinIO runs
/// on several machines. Dropping it kills every process and deletes the folder.
pub struct MinioCluster {
    children: Vec<Child>,
    host_ports: Vec<String>,
    log_paths: Vec<PathBuf>,
    /// The parity asked for with `MINIO_STORAGE_CLASS_STANDARD` (`None`: MinIO's default).
    pub parity: Option<usize>,
    // Declared last so the folder outlives the processes while they are killed.
    dir: TempDir,
}

impl MinioCluster {
    /// Starts the processes and waits until every one answers its cluster health probe (drives
    /// formatted, write quorum up).
    ///
    /// MinIO's ellipsis syntax (`http://127.0.0.1:{9001...9004}/data/d{1...2}`) expands to
    /// the same folder paths on every port, which MinIO refuses on one address ("path can not
    /// be served by different port on same address"), so the endpoints are listed one by one:
    /// without any ellipsis, MinIO takes all the arguments as one pool.
    pub fn start(
        binary: &Path,
        creds: &Credentials,
        scratch: &Path,
        servers: usize,
        drives: usize,
        parity: Option<usize>,
    ) -> Result<Self> {
        let dir = server_dir("minio-cluster", scratch)?;
        let ports = free_ports(2 * servers)?;
        let host_ports: Vec<String> = ports[..servers]
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let mut endpoints = Vec::new();
        for (i, hp) in host_ports.iter().enumerate() {
            for j in 0..drives {
                let path = dir.path().join(format!("node{i}")).join(format!("d{j}"));
                std::fs::create_dir_all(&path)?;
                endpoints.push(format!("http://{hp}{}", path.display()));
            }
        }
        let mut cluster = MinioCluster {
            children: Vec::new(),
            host_ports,
            log_paths: Vec::new(),
            parity,
            dir,
        };
        for i in 0..servers {
            let log_path = cluster.dir.path().join(format!("node{i}.log"));
            let log = File::create(&log_path)?;
            let mut cmd = Command::new(binary);
            cmd.arg("server")
                .args(&endpoints)
                .args([
                    "--address",
                    &cluster.host_ports[i],
                    "--console-address",
                    &format!("127.0.0.1:{}", ports[servers + i]),
                    "--quiet",
                ])
                .env("MINIO_ROOT_USER", &creds.access_key)
                .env("MINIO_ROOT_PASSWORD", &creds.secret_key)
                .env("MINIO_BROWSER", "off")
                // Folders on the root filesystem (see `start_minio`).
                .env("MINIO_CI_CD", "on")
                // In a container (`/.dockerenv`) MinIO waits forever for endpoints that
                // resolve to loopback, unless told which one is this process's own; the others
                // are then taken as remote peers.
                .env("_MINIO_SERVER_LOCAL", &cluster.host_ports[i])
                .env("MINIO_UPDATE", "off")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            if let Some(p) = parity {
                cmd.env("MINIO_STORAGE_CLASS_STANDARD", format!("EC:{p}"));
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("spawning {}", binary.display()))?;
            cluster.children.push(child);
            cluster.log_paths.push(log_path);
        }
        // Peers wait for each other before formatting: allow more than one server's start.
        let deadline = Instant::now() + 2 * START_TIMEOUT;
        for i in 0..servers {
            while !http_ok(&cluster.host_ports[i], "/minio/health/cluster") {
                cluster.ensure_running()?;
                if Instant::now() > deadline {
                    bail!(
                        "distributed minio not ready within {:?}\n{}",
                        2 * START_TIMEOUT,
                        cluster.log_tail(20)
                    );
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(cluster)
    }

    /// Fails when a process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        for (i, child) in self.children.iter_mut().enumerate() {
            if let Some(status) = child.try_wait()? {
                bail!("minio node{i} is no longer running: exited with {status}");
            }
        }
        Ok(())
    }

    /// `127.0.0.1:PORT` of every process.
    pub fn host_ports(&self) -> &[String] {
        &self.host_ports
    }

    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// The last `lines` lines of every process's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for (i, path) in self.log_paths.iter().enumerate() {
            let text = strip_ansi(&std::fs::read_to_string(path).unwrap_or_default());
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            out.push_str(&format!(
                "--- minio node{i} log (last {lines} lines) ---\n{}\n",
                all[start..].join("\n")
            ));
        }
        out
    }
}

impl Drop for MinioCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The peak resident set size (`VmHWM`) of process `pid` in KiB, from `/proc/PID/status`;
/// `None` once the process is gone.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// One plain HTTP/1.0 GET to `host_port`; true on a 200 answer.
fn http_ok(host_port: &str, path: &str) -> bool {
    let Ok(mut conn) = TcpStream::connect(host_port) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host_port}\r\n\r\n");
    let mut answer = String::new();
    conn.write_all(request.as_bytes()).is_ok()
        && conn.read_to_string(&mut answer).is_ok()
        && answer.split(' ').nth(1) == Some("200")
}

/// `n` distinct loopback ports nobody listens on right now (all bound at once, so none
/// repeats).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// Drops terminal colour sequences (`ESC [ … letter`) from a log.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn server_dir(name: &str, scratch: &Path) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("coffer-e2e-{name}-"))
        .tempdir_in(scratch)
        .with_context(|| format!("creating a temporary folder in {}", scratch.display()))
}

/// A loopback port nobody listens on right now (for servers that cannot
/// report the port they bound themselves).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `n` empty drive folders inside `dir` (`drive` alone, or `drive0`…`driveN-1`).
fn drive_folders(dir: &Path, n: usize) -> Result<Vec<PathBuf>> {
    let names: Vec<PathBuf> = if n <= 1 {
        vec![dir.join("drive")]
    } else {
        (0..n).map(|i| dir.join(format!("drive{i}"))).collect()
    };
    for d in &names {
        std::fs::create_dir(d)?;
    }
    Ok(names)
}

/// The release `coffer-server` of this workspace (see [`workspace_binary`]).
pub fn coffer_binary() -> Result<PathBuf> {
    workspace_binary("coffer-server")
}

/// A release binary of this workspace (`coffer-server`, `coffer-operator`),
/// found next to the running executable: `target/release/` for `coffer-e2e`,
/// its parent for test executables in `target/release/deps/`. Fails when it is
/// missing or older than one of its sources, so nobody tests a stale build by
/// accident (`cargo test -p coffer-e2e` does not rebuild another package's
/// binary).
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    let dirs = [exe.parent(), exe.parent().and_then(Path::parent)];
    let Some(binary) = dirs
        .into_iter()
        .flatten()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
    else {
        bail!(
            "{name} binary not found next to {} or in its parent folder; build it with `cargo build --release -p {name}`",
            exe.display()
        );
    };
    let built = std::fs::metadata(&binary)?.modified()?;
    if let Some(newer) = sources_of(&binary)
        .into_iter()
        .find(|src| modified(src).is_some_and(|t| t > built))
    {
        bail!(
            "{} is older than its source {}; rebuild it with `cargo build --release -p {name}`",
            binary.display(),
            newer.display()
        );
    }
    Ok(binary)
}

/// The source files cargo recorded for `binary` in its dep-info file
/// (`coffer-server.d`, Makefile syntax: `target: src1 src2 …`, spaces in
/// paths escaped). Empty when there is none.
fn sources_of(binary: &Path) -> Vec<PathBuf> {
    let mut dep_info = binary.as_os_str().to_owned();
    dep_info.push(".d");
    let Ok(text) = std::fs::read_to_string(PathBuf::from(dep_info)) else {
        return Vec::new();
    };
    let Some((_, deps)) = text.lines().next().and_then(|l| l.split_once(": ")) else {
        return Vec::new();
    };
    deps.replace("\\ ", "\0")
        .split(' ')
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d.replace("\0", " ")))
        .collect()
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_are_removed_from_logs() {
        assert_eq!(
            strip_ansi("\x1b[2mtime\x1b[0m \x1b[32m INFO\x1b[0m x"),
            "time  INFO x"
        );
    }

    #[test]
    fn dep_info_lists_sources_with_escaped_spaces() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("coffer-server");
        std::fs::write(
            dir.path().join("coffer-server.d"),
            "/t/coffer-server: /a/b.rs /a/with\\ space.rs\n\n/a/b.rs:\n",
        )
        .unwrap();
        assert_eq!(
            sources_of(&binary),
            vec![PathBuf::from("/a/b.rs"), PathBuf::from("/a/with space.rs")]
        );
    }
}
