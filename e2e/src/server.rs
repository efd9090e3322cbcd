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

/// The release `coffer-server` of this workspace, found next to the running
/// executable: `target/release/` for `coffer-e2e`, its parent for test
/// executables in `target/release/deps/`. Fails when it is missing or older
/// than one of its sources, so nobody tests a stale build by accident
/// (`cargo test -p coffer-e2e` does not rebuild another package's binary).
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
    if let Some(newer) = sources_of(&binary)
        .into_iter()
        .find(|src| modified(src).is_some_and(|t| t > built))
    {
        bail!(
            "{} is older than its source {}; rebuild it with `cargo build --release -p coffer-server`",
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
