//! HTTPS as a client sees it: a real `coffer-server` with `--tls-cert`/`--tls-key` (a CA and
//! server certificates generated here with rcgen), S3 traffic through the AWS SDK over TLS,
//! HTTP/2 by ALPN, `aws:SecureTransport` in bucket policies, certificate rotation picked up
//! without a restart (a broken rotation keeps the old certificate), and the admin CLI against
//! an https endpoint.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_smithy_http_client::tls;
use common::{get_bytes, put_bytes, TestServer, ACCESS_KEY, SECRET_KEY};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

/// A test certificate authority and the PEM files of server certificates it signs.
struct Pki {
    dir: tempfile::TempDir,
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
}

/// A server certificate: its DER (to compare with what a server presents) and PEM files.
struct Leaf {
    der: Vec<u8>,
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = KeyPair::generate().expect("a key pair can be generated");
        let mut params =
            CertificateParams::new(Vec::<String>::new()).expect("empty SANs are valid");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Coffer test CA");
        let ca_cert = params.self_signed(&ca_key).expect("the CA self-signs");
        let pki = Pki {
            dir: tempfile::tempdir().expect("a temporary directory can be created"),
            ca_cert,
            ca_key,
        };
        std::fs::write(pki.ca_path(), pki.ca_cert.pem()).expect("the CA file can be written");
        pki
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    fn leaf(&self, name: &str) -> Leaf {
        let key = KeyPair::generate().expect("a key pair can be generated");
        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("the SANs are valid");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .expect("the CA signs a server certificate");
        Leaf {
            der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes `leaf` as the served certificate, each file replaced atomically (as a rotation
    /// by cert-manager's secret volume does).
    fn install(&self, leaf: &Leaf) {
        replace(&self.cert_path(), leaf.cert_pem.as_bytes());
        replace(&self.key_path(), leaf.key_pem.as_bytes());
    }

    fn serve_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert_path().display().to_string(),
            "--tls-key".into(),
            self.key_path().display().to_string(),
        ]
    }

    fn start_server(&self) -> TestServer {
        let args = self.serve_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        TestServer::start_drives(1, &args)
    }

    /// An AWS SDK client trusting this CA.
    fn s3_client(&self, server: &TestServer) -> aws_sdk_s3::Client {
        let trust = tls::TrustStore::empty().with_pem_certificate(self.ca_cert.pem().into_bytes());
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .tls_context(
                tls::TlsContext::builder()
                    .with_trust_store(trust)
                    .build()
                    .expect("the trust store is valid"),
            )
            .build_https();
        server.client_with(|b| b.http_client(http))
    }

    /// A rustls client configuration trusting this CA, offering `alpn`.
    fn rustls_client(&self, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca_cert.der().to_vec()))
            .expect("the CA is a valid trust anchor");
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// Completes a TLS handshake with the server (verifying its certificate against the CA)
    /// and returns the certificate it presented and the negotiated ALPN protocol.
    async fn handshake(&self, port: u16, alpn: &[&[u8]]) -> (Vec<u8>, Option<Vec<u8>>) {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.rustls_client(alpn)));
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("the server accepts connections");
        let name = ServerName::try_from("localhost").expect("a valid server name");
        let stream = connector
            .connect(name, tcp)
            .await
            .expect("the handshake succeeds with a certificate signed by the CA");
        let (_, conn) = stream.get_ref();
        let presented = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .expect("the server presents a certificate")
            .to_vec();
        (presented, conn.alpn_protocol().map(<[u8]>::to_vec))
    }
}

fn replace(path: &Path, content: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).expect("the new file can be written");
    std::fs::rename(&tmp, path).expect("the new file can be renamed into place");
}

#[tokio::test]
async fn s3_objects_round_trip_over_https_with_h2_by_alpn() {
    let pki = Pki::new();
    let leaf = pki.leaf("server one");
    pki.install(&leaf);
    let server = pki.start_server();
    assert!(
        server.endpoint.starts_with("https://127.0.0.1:"),
        "the printed endpoint says https: {}",
        server.endpoint
    );

    let client = pki.s3_client(&server);
    client
        .create_bucket()
        .bucket("secure")
        .send()
        .await
        .expect("CreateBucket over https succeeds");
    let data = common::pattern(300 * 1024, 7);
    put_bytes(&client, "secure", "dir/blob", data.clone()).await;
    assert_eq!(get_bytes(&client, "secure", "dir/blob").await, data);

    let (presented, alpn) = pki.handshake(server.port, &[b"h2", b"http/1.1"]).await;
    assert_eq!(presented, leaf.der, "the configured certificate is served");
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "h2 is negotiated first");
    let (_, alpn) = pki.handshake(server.port, &[b"http/1.1"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));

    // A plain-HTTP request to the TLS port gets no S3 answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/", server.port))
        .send()
        .await;
    assert!(
        plain.map_or(true, |r| r.status().as_u16() != 200),
        "plain HTTP is not served on the TLS port"
    );
}

/// Anonymous GETs of a bucket whose policy allows reads only over TLS and denies everything
/// else that is not TLS.
fn secure_only_policy(bucket: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*",
          "Condition":{{"Bool":{{"aws:SecureTransport":"true"}}}}}},
        {{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::{bucket}","arn:aws:s3:::{bucket}/*"],
          "Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}}]}}"#
    )
}

#[tokio::test]
async fn secure_transport_is_true_over_tls_and_false_over_plain_http() {
    let pki = Pki::new();
    pki.install(&pki.leaf("server"));
    let server = pki.start_server();
    let client = pki.s3_client(&server);
    client.create_bucket().bucket("web").send().await.unwrap();
    put_bytes(&client, "web", "index.html", b"<h1>hi</h1>".to_vec()).await;
    client
        .put_bucket_policy()
        .bucket("web")
        .policy(secure_only_policy("web"))
        .send()
        .await
        .expect("the policy is valid");

    // Anonymous read over TLS: allowed by the SecureTransport condition.
    let https = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(pki.ca_cert.pem().as_bytes()).expect("a PEM CA"),
        )
        .build()
        .expect("a reqwest client with rustls");
    let resp = https
        .get(format!("https://127.0.0.1:{}/web/index.html", server.port))
        .send()
        .await
        .expect("the https request completes");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.unwrap(), "<h1>hi</h1>");
    // The signed owner is still allowed over TLS (the Deny needs SecureTransport false).
    assert_eq!(
        get_bytes(&client, "web", "index.html").await,
        b"<h1>hi</h1>"
    );

    // The same policy on a plain-HTTP server: anonymous reads are refused, and so is the
    // owner, by the explicit Deny.
    let plain = TestServer::start();
    let plain_client = plain.bucket("web").await;
    put_bytes(&plain_client, "web", "index.html", b"x".to_vec()).await;
    plain_client
        .put_bucket_policy()
        .bucket("web")
        .policy(secure_only_policy("web"))
        .send()
        .await
        .unwrap();
    let resp = plain.raw("GET", "/web/index.html").anonymous().send().await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.code(), "AccessDenied");
    common::assert_s3_error(
        plain_client
            .get_object()
            .bucket("web")
            .key("index.html")
            .send()
            .await,
        403,
        "AccessDenied",
    );
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_restart_and_a_broken_one_is_ignored() {
    let pki = Pki::new();
    let first = pki.leaf("first");
    pki.install(&first);
    let server = pki.start_server();
    let (presented, _) = pki.handshake(server.port, &[]).await;
    assert_eq!(presented, first.der);

    // A broken rotation (garbage certificate) is logged and the old certificate stays.
    replace(
        &pki.cert_path(),
        b"-----BEGIN CERTIFICATE-----\nnot base64\n",
    );
    wait_for(
        &server,
        Duration::from_secs(30),
        "the broken certificate is reported",
        || server.log().contains("still serving the previous one"),
    );
    let (presented, _) = pki.handshake(server.port, &[]).await;
    assert_eq!(presented, first.der, "the old certificate is still served");
    let client = pki.s3_client(&server);
    client
        .create_bucket()
        .bucket("still-up")
        .send()
        .await
        .expect("requests still succeed after a broken rotation");

    // A good rotation is picked up within a bounded wait.
    let second = pki.leaf("second");
    pki.install(&second);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (presented, _) = pki.handshake(server.port, &[]).await;
        if presented == second.der {
            break;
        }
        assert_eq!(presented, first.der, "only the old or the new certificate");
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served within 30 s; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The new certificate serves S3 traffic.
    put_bytes(&client, "still-up", "k", b"v".to_vec()).await;
    assert_eq!(get_bytes(&client, "still-up", "k").await, b"v");
}

fn wait_for(server: &TestServer, limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_certificate_that_does_not_fit_its_key_stops_the_start() {
    let pki = Pki::new();
    let a = pki.leaf("a");
    let b = pki.leaf("b");
    replace(&pki.cert_path(), a.cert_pem.as_bytes());
    replace(&pki.key_path(), b.key_pem.as_bytes());
    let args = pki.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = TestServer::stopped_drives(1, &args);
    let (status, log) = server.start_expecting_exit();
    assert!(!status.success());
    assert!(
        log.contains("does not fit the certificate"),
        "the error names the problem: {log}"
    );
}

fn admin_cli(server: &TestServer, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_coffer-server"))
        .arg("admin")
        .args(["--endpoint", &server.endpoint])
        .args(extra)
        .env("COFFER_ROOT_USER", ACCESS_KEY)
        .env("COFFER_ROOT_PASSWORD", SECRET_KEY)
        .env_remove("COFFER_CA_CERT")
        .output()
        .expect("the admin CLI runs")
}

#[test]
fn the_admin_cli_talks_to_an_https_endpoint_trusting_the_given_ca() {
    let pki = Pki::new();
    pki.install(&pki.leaf("server"));
    let server = pki.start_server();
    let ca = pki.ca_path().display().to_string();

    let out = admin_cli(&server, &["--ca-cert", &ca, "bucket", "create", "cli-made"]);
    assert!(
        out.status.success(),
        "bucket create over https: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = admin_cli(&server, &["--ca-cert", &ca, "--json", "bucket", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert!(
        list.to_string().contains("cli-made"),
        "the bucket is listed: {list}"
    );

    // Without the CA the server's certificate is not trusted.
    let out = admin_cli(&server, &["status"]);
    assert!(!out.status.success(), "an unknown CA must be refused");
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("certificate"), "the error says why: {err}");
}
