//! The harness shared by the S3 integration tests: a real `coffer-server` process on a
//! temporary drive folder ([`TestServer`]), an AWS SDK client for it, and a raw HTTP request
//! builder ([`Raw`]) for the malformed, anonymous or hand-signed requests an SDK will not
//! send. Each test file compiles this module on its own, so not every helper is used by
//! every file.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use coffer_server::auth::sigv4::{self, SigningKey};
use sha2::{Digest, Sha256};

pub const ACCESS_KEY: &str = "coffer-test";
pub const SECRET_KEY: &str = "coffer-test-secret-key";
pub const REGION: &str = "us-east-1";

/// A `coffer-server` process serving one drive folder (or several, as one erasure set) in a
/// temporary directory. The process is killed when this value drops; if the test is failing,
/// the server log is printed.
pub struct TestServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The drive folders passed to `serve`, in order.
    drives: Vec<PathBuf>,
    /// Extra `serve` arguments (e.g. `--parity 1`).
    args: Vec<String>,
    /// `http://127.0.0.1:PORT` of the running process.
    pub endpoint: String,
    pub port: u16,
    /// Server logs of every start, one file per start.
    logs: Vec<PathBuf>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let mut server = TestServer::unstarted(&[], &[]);
        server.spawn();
        server
    }

    /// A server on `drives` drive folders (`drive0`, `drive1`, … in the temporary directory)
    /// with extra `serve` arguments.
    pub fn start_drives(drives: usize, args: &[&str]) -> TestServer {
        let mut server = TestServer::unstarted(&vec![""; drives], args);
        server.spawn();
        server
    }

    /// Like [`TestServer::start_drives`] but not started (for
    /// [`TestServer::start_expecting_exit`]).
    pub fn stopped_drives(drives: usize, args: &[&str]) -> TestServer {
        TestServer::unstarted(&vec![""; drives], args)
    }

    /// A server that is not started yet; `names` are its drive folders in the temporary
    /// directory (`drive0`, `drive1`, … when empty strings; no names: the single `drive`).
    fn unstarted(names: &[&str], args: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary directory can be created");
        let drives = if names.is_empty() {
            vec![dir.path().join("drive")]
        } else {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    if n.is_empty() {
                        dir.path().join(format!("drive{i}"))
                    } else {
                        dir.path().join(n)
                    }
                })
                .collect()
        };
        TestServer {
            dir,
            child: None,
            drives,
            args: args.iter().map(|a| a.to_string()).collect(),
            endpoint: String::new(),
            port: 0,
            logs: Vec::new(),
        }
    }

    /// The (first) drive folder the server serves.
    pub fn drive(&self) -> PathBuf {
        self.drives[0].clone()
    }

    /// Every drive folder the server serves, in order.
    pub fn drives(&self) -> &[PathBuf] {
        &self.drives
    }

    /// The temporary directory holding the drive folders and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the drive folders and extra arguments of the next start.
    pub fn set_drives(&mut self, drives: Vec<PathBuf>, args: &[&str]) {
        self.drives = drives;
        self.args = args.iter().map(|a| a.to_string()).collect();
    }

    /// Starts the server (which must not be running) expecting it to refuse to start: waits
    /// for it to exit and returns its exit status and everything it wrote to stderr.
    pub fn start_expecting_exit(&mut self) -> (ExitStatus, String) {
        assert!(self.child.is_none(), "the server is still running");
        let log_path = self
            .dir
            .path()
            .join(format!("server-{}.log", self.logs.len()));
        let log = std::fs::File::create(&log_path).expect("the log file can be created");
        self.logs.push(log_path.clone());
        let mut child = self
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("the coffer-server binary starts");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("the server can be polled") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server kept running although it should have refused to start; log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            status,
            std::fs::read_to_string(&log_path).unwrap_or_default(),
        )
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_coffer-server"));
        command
            .arg("serve")
            .args(&self.drives)
            .args(["--address", "127.0.0.1:0"])
            .args(&self.args)
            .env("COFFER_ROOT_USER", ACCESS_KEY)
            .env("COFFER_ROOT_PASSWORD", SECRET_KEY)
            .env_remove("COFFER_DRIVES")
            .env_remove("COFFER_ADDRESS")
            .env_remove("COFFER_DOMAIN")
            .env_remove("COFFER_REGION")
            .env_remove("COFFER_PARITY")
            .env_remove("COFFER_HEAL_RATE")
            .env_remove("COFFER_HEAL_INTERVAL")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    fn spawn(&mut self) {
        let log_path = self
            .dir
            .path()
            .join(format!("server-{}.log", self.logs.len()));
        let log = std::fs::File::create(&log_path).expect("the log file can be created");
        self.logs.push(log_path);
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("the coffer-server binary starts");
        // Keep draining stdout for the life of the process: a closed pipe would make the
        // server's later writes fail.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(endpoint) = line.strip_prefix("endpoint=") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(endpoint.trim().to_string());
                    }
                }
            }
        });
        let endpoint = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(e) => e,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not print endpoint=; log:\n{}", self.log());
            }
        };
        self.port = endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the endpoint ends with a port");
        self.endpoint = endpoint;
        self.child = Some(child);
    }

    /// Everything the server processes wrote to stderr so far.
    pub fn log(&self) -> String {
        self.logs
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// `kill -9`: the process gets no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("the server process can be killed");
            child.wait().expect("the killed server can be reaped");
        }
    }

    /// Sends SIGTERM (graceful shutdown) without waiting for the exit.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit (after [`TestServer::sigterm`]).
    pub fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        child.wait().expect("the server can be reaped")
    }

    /// Kills the server (if running) and starts a new process on the same drive folder.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Starts the server again after it stopped by itself (e.g. after SIGTERM).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.spawn();
    }

    /// Resident memory of the server process, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/PID/status is readable");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .expect("status has VmRSS");
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("VmRSS is a number of kB");
        kib * 1024
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        self.client_with(|b| b)
    }

    /// A client whose configuration `f` may adjust (credentials, time source, …).
    pub fn client_with(
        &self,
        f: impl FnOnce(aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder,
    ) -> aws_sdk_s3::Client {
        let builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(
                ACCESS_KEY,
                SECRET_KEY,
                None,
                None,
                "coffer-tests",
            ))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled());
        aws_sdk_s3::Client::from_conf(f(builder).build())
    }

    /// A raw request to this server (path already percent-encoded, starting with `/`).
    pub fn raw(&self, method: &str, path: &str) -> Raw {
        Raw::new(self.port, method, path)
    }

    /// Creates a bucket with the SDK and returns the client used.
    pub async fn bucket(&self, name: &str) -> aws_sdk_s3::Client {
        let client = self.client();
        client
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("creating a fresh bucket succeeds");
        client
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!(
                "=== coffer-server log, last 40 lines ({}) ===\n{tail}",
                self.dir.path().display()
            );
        }
    }
}

/// The S3 error code and HTTP status of an SDK error (`"NotFound"`-style codes for HEAD,
/// whose error responses have no body).
pub fn s3_error<E: ProvideErrorMetadata + std::fmt::Debug>(
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> (u16, String) {
    let status = err
        .raw_response()
        .map(|r| r.status().as_u16())
        .unwrap_or_else(|| panic!("no HTTP response: {err:?}"));
    (status, err.code().unwrap_or("").to_string())
}

/// Asserts that `result` is an S3 error with `status` and `code`.
#[track_caller]
pub fn assert_s3_error<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
    status: u16,
    code: &str,
) {
    match result {
        Ok(v) => panic!("expected {status} {code}, got success: {v:?}"),
        Err(e) => assert_eq!(s3_error(&e), (status, code.to_string()), "{e:?}"),
    }
}

pub async fn get_bytes(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("the body streams to the end")
        .into_bytes()
        .to_vec()
}

pub async fn put_bytes(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    data: impl Into<Vec<u8>>,
) -> String {
    let out = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(data.into().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key}: {e:?}"));
    out.e_tag.expect("PutObject answers an ETag")
}

/// Whether `key` exists (HeadObject 200 vs 404).
pub async fn exists(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(e) if s3_error(&e).0 == 404 => false,
        Err(e) => panic!("HEAD {bucket}/{key}: {e:?}"),
    }
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(data))
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Deterministic, non-repeating test data.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(seed).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// AWS URI encoding of a key for a path: every byte but `A-Za-z0-9-_.~/` escaped.
pub fn encode_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (as in `encoding-type=url` listings, which the SDK leaves encoded).
pub fn decode_key(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("escapes are ASCII");
            out.push(
                u8::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("bad escape in {encoded:?}")),
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("decoded keys are UTF-8")
}

/// `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// How a raw request is authenticated.
#[derive(Clone, Debug)]
pub enum Auth {
    Anonymous,
    /// SigV4 in the `Authorization` header, with this `x-amz-content-sha256` value
    /// (`None`: the real SHA-256 of the body).
    Header {
        access_key: String,
        secret_key: String,
        content_sha256: Option<String>,
        time: SystemTime,
    },
}

/// A hand-built HTTP request, optionally signed with SigV4.
pub struct Raw {
    port: u16,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub auth: Auth,
    /// The Host header (default `127.0.0.1:PORT`).
    pub host: Option<String>,
}

/// A response to a raw request.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The text of the first `<name>` element of the body.
    pub fn xml(&self, name: &str) -> Option<String> {
        let text = self.text();
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].to_string())
    }

    /// `Code` of an S3 error document.
    pub fn code(&self) -> String {
        self.xml("Code").unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Raw {
    fn new(port: u16, method: &str, path: &str) -> Raw {
        Raw {
            port,
            method: method.to_string(),
            path: path.to_string(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
            auth: Auth::Header {
                access_key: ACCESS_KEY.into(),
                secret_key: SECRET_KEY.into(),
                content_sha256: None,
                time: SystemTime::now(),
            },
            host: None,
        }
    }

    pub fn query(mut self, q: &str) -> Raw {
        self.query = q.to_string();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Raw {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Raw {
        self.body = body.into();
        self
    }

    pub fn anonymous(mut self) -> Raw {
        self.auth = Auth::Anonymous;
        self
    }

    pub fn host(mut self, host: &str) -> Raw {
        self.host = Some(host.to_string());
        self
    }

    pub fn content_sha256(mut self, value: &str) -> Raw {
        if let Auth::Header { content_sha256, .. } = &mut self.auth {
            *content_sha256 = Some(value.to_string());
        }
        self
    }

    pub fn keys(mut self, access: &str, secret: &str) -> Raw {
        if let Auth::Header {
            access_key,
            secret_key,
            ..
        } = &mut self.auth
        {
            *access_key = access.to_string();
            *secret_key = secret.to_string();
        }
        self
    }

    fn host_value(&self) -> String {
        self.host
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{}", self.port))
    }

    /// The final header list (with `host` and, when signed, the SigV4 headers), plus the
    /// seed signature for aws-chunked bodies.
    pub fn signed_headers(&self) -> (Vec<(String, String)>, Option<SeedSignature>) {
        let mut headers = self.headers.clone();
        headers.push(("host".into(), self.host_value()));
        let Auth::Header {
            access_key,
            secret_key,
            content_sha256,
            time,
        } = &self.auth
        else {
            return (headers, None);
        };
        let date = amz_date(*time);
        let payload_hash = content_sha256
            .clone()
            .unwrap_or_else(|| sha256_hex(&self.body));
        headers.push(("x-amz-date".into(), date.clone()));
        headers.push(("x-amz-content-sha256".into(), payload_hash.clone()));
        let mut names: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        names.dedup();
        let signed = names.join(";");
        let mut map = http::HeaderMap::new();
        for (n, v) in &headers {
            map.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        let scope = format!("{}/{REGION}/s3/aws4_request", &date[..8]);
        let creq = sigv4::canonical_request(
            &self.method,
            &sigv4::canonical_uri(&self.path),
            &sigv4::canonical_query(Some(&self.query), false),
            &map,
            &signed,
            &payload_hash,
        );
        let key = SigningKey::derive(secret_key, &date[..8], REGION, "s3");
        let signature =
            hex::encode(key.sign(sigv4::string_to_sign(&date, &scope, &creq).as_bytes()));
        headers.push((
            "authorization".into(),
            format!("AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"),
        ));
        let seed = SeedSignature {
            key,
            timestamp: date,
            scope,
            signature,
        };
        (headers, Some(seed))
    }

    fn url(&self) -> String {
        let q = if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query)
        };
        format!("http://127.0.0.1:{}{}{}", self.port, self.path, q)
    }

    pub async fn send(self) -> RawResponse {
        let (headers, _) = self.signed_headers();
        self.send_with(headers, self.body.clone()).await
    }

    /// Sends with the given final headers and body (e.g. an aws-chunked encoding of the body).
    pub async fn send_with(&self, headers: Vec<(String, String)>, body: Vec<u8>) -> RawResponse {
        let client = reqwest::Client::builder()
            .build()
            .expect("a reqwest client builds");
        let method = reqwest::Method::from_bytes(self.method.as_bytes()).expect("a valid method");
        let mut req = client.request(method, self.url());
        for (n, v) in headers {
            req = req.header(n, v);
        }
        let resp = req.body(body).send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .expect("the response body arrives")
            .to_vec();
        RawResponse {
            status,
            headers,
            body,
        }
    }

    /// Writes the request head (with `content_length`) and then only `body_prefix` over a
    /// plain TCP socket, closes the sending half, and returns whatever the server answered.
    pub fn send_truncated(&self, content_length: usize, body_prefix: &[u8]) -> String {
        self.send_tcp(Some(content_length), body_prefix)
    }

    /// Writes the request over a plain TCP socket with exactly the given Content-Length
    /// (none at all with `None`) and `body`, closes the sending half, and returns the raw
    /// answer.
    pub fn send_tcp(&self, content_length: Option<usize>, body: &[u8]) -> String {
        let (mut headers, _) = self.signed_headers();
        headers.retain(|(n, _)| n != "content-length");
        let mut head = format!(
            "{} {}{} HTTP/1.1\r\n",
            self.method,
            self.path,
            if self.query.is_empty() {
                String::new()
            } else {
                format!("?{}", self.query)
            }
        );
        for (n, v) in &headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        if let Some(n) = content_length {
            head.push_str(&format!("content-length: {n}\r\n"));
        }
        head.push_str("connection: close\r\n\r\n");
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("the server accepts connections");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        stream.flush().unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        // Reading to the end waits until the server has finished with the request.
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }
}

/// What a signed aws-chunked body chains its chunk signatures from.
pub struct SeedSignature {
    pub key: SigningKey,
    pub timestamp: String,
    pub scope: String,
    pub signature: String,
}

impl SeedSignature {
    /// Encodes `chunks` as `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (a final empty chunk is
    /// added). `corrupt` names a chunk index whose signature is replaced by a wrong one.
    pub fn encode_chunked(&self, chunks: &[&[u8]], corrupt: Option<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut previous = self.signature.clone();
        let empty: &[u8] = &[];
        for (i, chunk) in chunks
            .iter()
            .copied()
            .chain(std::iter::once(empty))
            .enumerate()
        {
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{previous}\n{}\n{}",
                self.timestamp,
                self.scope,
                sigv4::EMPTY_SHA256,
                sha256_hex(chunk)
            );
            previous = hex::encode(self.key.sign(sts.as_bytes()));
            let sent = if corrupt == Some(i) {
                "0".repeat(64)
            } else {
                previous.clone()
            };
            out.extend_from_slice(
                format!("{:x};chunk-signature={sent}\r\n", chunk.len()).as_bytes(),
            );
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

/// A presigned URL built by hand (the SDK refuses lifetimes over 7 days).
pub fn presign_url(
    port: u16,
    method: &str,
    path: &str,
    time: SystemTime,
    expires_secs: u64,
) -> String {
    let date = amz_date(time);
    let scope = format!("{}/{REGION}/s3/aws4_request", &date[..8]);
    let credential = format!("{ACCESS_KEY}/{scope}").replace('/', "%2F");
    let query = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}&X-Amz-Date={date}&X-Amz-Expires={expires_secs}&X-Amz-SignedHeaders=host"
    );
    let mut map = http::HeaderMap::new();
    map.insert(
        "host",
        http::HeaderValue::from_str(&format!("127.0.0.1:{port}")).unwrap(),
    );
    let creq = sigv4::canonical_request(
        method,
        &sigv4::canonical_uri(path),
        &sigv4::canonical_query(Some(&query), true),
        &map,
        "host",
        sigv4::UNSIGNED_PAYLOAD,
    );
    let key = SigningKey::derive(SECRET_KEY, &date[..8], REGION, "s3");
    let signature = hex::encode(key.sign(sigv4::string_to_sign(&date, &scope, &creq).as_bytes()));
    format!("http://127.0.0.1:{port}{path}?{query}&X-Amz-Signature={signature}")
}

/// Lists every key of a bucket with ListObjectsV2, following continuation tokens.
pub async fn all_keys(client: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let out = client
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .expect("listing succeeds");
        keys.extend(out.contents().iter().filter_map(|o| o.key.clone()));
        token = out.next_continuation_token.clone();
        if token.is_none() {
            break;
        }
    }
    keys
}

/// Files in a folder (not recursive), for checks on the drive layout.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    }
}
