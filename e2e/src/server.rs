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
    pub fn start_coffer(binary: &Path, creds: &Credentials, scratch: &Path) -> Result<Self> {
        let dir = server_dir("coffer", scratch)?;
        let drive = dir.path().join("drive");
        std::fs::create_dir(&drive)?;
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path)?;
        let mut child = Command::new(binary)
            .arg("serve")
            .arg(&drive)
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
    pub fn start_minio(binary: &Path, creds: &Credentials, scratch: &Path) -> Result<Self> {
        let dir = server_dir("minio", scratch)?;
        let drive = dir.path().join("drive");
        std::fs::create_dir(&drive)?;
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path)?;
        let host_port = format!("127.0.0.1:{}", free_port()?);
        let console = format!("127.0.0.1:{}", free_port()?);
        let child = Command::new(binary)
            .arg("server")
            .arg(&drive)
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
        while !server.http_ok("/minio/health/live") {
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
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
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
        let Ok(mut conn) = TcpStream::connect(&self.host_port) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.host_port);
        let mut answer = String::new();
        conn.write_all(request.as_bytes()).is_ok()
            && conn.read_to_string(&mut answer).is_ok()
            && answer.split(' ').nth(1) == Some("200")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// The release `coffer-server` of this workspace, found next to the running
/// executable: `target/release/` for `coffer-e2e`, its parent for test
/// executables in `target/release/deps/`. Fails when it is missing or older
/// than the server's sources, so nobody tests a stale build by accident.
pub fn coffer_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    let dirs = [exe.parent(), exe.parent().and_then(Path::parent)];
    let Some(binary) = dirs
        .into_iter()
        .flatten()
        .map(|d| d.join("coffer-server"))
        .find(|p| p.is_file())
    else {
        bail!(
            "coffer-server binary not found next to {} or in its parent folder; build it with `cargo build --release -p coffer-server`",
            exe.display()
        );
    };
    let built = std::fs::metadata(&binary)?.modified()?;
    let server_crate = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server");
    if let Some(newer) = newest_file(&server_crate).filter(|(t, _)| *t > built) {
        bail!(
            "{} is older than {}; rebuild it with `cargo build --release -p coffer-server`",
            binary.display(),
            newer.1.display()
        );
    }
    Ok(binary)
}

/// The most recently modified file under `dir` (sources only: `target`-like
/// folders are not expected inside a crate).
fn newest_file(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).ok()?.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if let Ok(t) = meta.modified() {
                if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                    newest = Some((t, path));
                }
            }
        }
    }
    newest
}
