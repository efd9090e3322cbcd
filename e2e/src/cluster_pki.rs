//! TLS for a local cluster (`local-cluster --tls`): a CA generated per cluster with rcgen and
//! one server certificate naming every server's loopback address, as one cert-manager
//! Certificate names every pod of a store. Written as the three files of a Kubernetes TLS
//! Secret (`ca.crt`, `tls.crt`, `tls.key`); the harness's own HTTPS calls trust the CA.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// A CA and the server certificate it signed, as files in one folder.
pub struct ClusterPki {
    dir: PathBuf,
    ca_pem: String,
}

impl ClusterPki {
    /// Generates a CA named `name` and a server certificate for `hosts` (addresses or DNS
    /// names) into `dir`.
    pub fn generate(dir: &Path, name: &str, hosts: &[String]) -> Result<ClusterPki> {
        std::fs::create_dir_all(dir)?;
        let ca_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&ca_key)?;

        // rcgen turns the hosts that parse as IP addresses into IP address SANs, which is
        // what a client checks when it connects to an address.
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "coffer-server");
        let cert = params.signed_by(&key, &ca, &ca_key)?;

        let pki = ClusterPki {
            dir: dir.to_path_buf(),
            ca_pem: ca.pem(),
        };
        std::fs::write(pki.ca(), &pki.ca_pem)?;
        std::fs::write(pki.cert(), cert.pem())?;
        std::fs::write(pki.key(), key.serialize_pem())?;
        Ok(pki)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.join("tls.key")
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The `coffer-server serve` arguments of a server using these files.
    pub fn serve_args(&self) -> Vec<String> {
        [
            ("--tls-cert", self.cert()),
            ("--tls-key", self.key()),
            ("--tls-ca", self.ca()),
        ]
        .into_iter()
        .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
        .collect()
    }
}

/// A rustls client trusting the CAs in `ca_pems`, offering `alpn`.
pub fn client_config(ca_pems: &[&str], alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for pem in ca_pems {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert?)?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A TLS connection to `addr` (`host:port`) checking that the certificate names `host`.
pub fn connect(
    addr: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let host = addr
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(addr);
    let name = ServerName::try_from(host.to_string())?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(5)))?;
    let conn = rustls::ClientConnection::new(config, name)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    // Finish the handshake now, so a refused certificate is an error here.
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// The status and body of `GET path` on `addr` (HTTP/1.1, `Connection: close`) over `stream`,
/// or `None` when nothing answers.
pub fn http_get_over<S: Read + Write>(
    mut stream: S,
    addr: &str,
    path: &str,
) -> Option<(u16, String)> {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    stream.flush().ok()?;
    // Read until the server closes; a TLS peer closing without close_notify is an error
    // after the whole answer arrived, so keep what was read.
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}
