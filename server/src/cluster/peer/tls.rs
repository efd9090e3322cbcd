//! TLS for peer RPC (`--tls-ca`): the listener serves the server's own certificate (the one
//! the S3 listener serves, reloaded with it), and the client trusts only the cluster's CA and
//! checks that a peer's certificate names the host its topology entry gives (`rpc`).
//!
//! Not mutual TLS: a caller is authenticated by the HMAC of the cluster secret on every
//! request, as without TLS. Asking peers for client certificates would add nothing the secret
//! does not already prove, and would require every certificate to carry the `clientAuth`
//! usage, which cert-manager and most CAs do not put in a server certificate by default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::server::ResolvesServerCert;
use rustls::RootCertStore;

/// The only application protocol of peer RPC: HTTP/2.
const ALPN_H2: &[u8] = b"h2";

#[derive(Debug, thiserror::Error)]
pub enum PeerTlsError {
    #[error("reading the CA file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA file {path}: {source}")]
    Ca { path: PathBuf, source: CaError },
    #[error("building the peer TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Why a PEM bundle of CA certificates cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    #[error("it holds no certificate")]
    Empty,
    #[error("it holds a certificate rustls refuses: {0}")]
    Refused(#[from] rustls::Error),
}

/// The certificates of a PEM bundle (one or more, as during a CA rotation) as trust roots:
/// a `--tls-ca` file, or the `ca.crt` of a Kubernetes TLS Secret.
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, CaError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert?)?;
    }
    if roots.is_empty() {
        return Err(CaError::Empty);
    }
    Ok(roots)
}

/// Both sides of peer RPC over TLS.
#[derive(Clone, Debug)]
pub struct PeerTls {
    /// The listener's configuration: this server's certificate, ALPN `h2` only.
    pub server: Arc<rustls::ServerConfig>,
    /// The client's configuration: the cluster's CA as the only root (the connector offers
    /// ALPN `h2`).
    pub client: Arc<rustls::ClientConfig>,
}

fn provider() -> Arc<CryptoProvider> {
    // The same provider as the S3 listener's (ring), named here so peer RPC does not depend
    // on the HTTP layer.
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM CA file (one or more, as during a CA rotation).
pub fn load_ca(path: &Path) -> Result<RootCertStore, PeerTlsError> {
    let pem = std::fs::read(path).map_err(|source| PeerTlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    roots_from_pem(&pem).map_err(|source| PeerTlsError::Ca {
        path: path.to_path_buf(),
        source,
    })
}

impl PeerTls {
    /// Peer TLS serving the certificates `cert` resolves and trusting the CAs in `ca`.
    pub fn new(cert: Arc<dyn ResolvesServerCert>, ca: &Path) -> Result<PeerTls, PeerTlsError> {
        let roots = load_ca(ca)?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(cert);
        server.alpn_protocols = vec![ALPN_H2.to_vec()];
        // No ALPN here: the client's https connector offers `h2` itself (and refuses a
        // configuration that names protocols already).
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(PeerTls {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = load_ca(&empty).unwrap_err();
        assert!(
            matches!(
                err,
                PeerTlsError::Ca {
                    source: CaError::Empty,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("empty.pem"), "{err}");

        let missing = dir.path().join("missing.pem");
        let err = load_ca(&missing).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }

    #[test]
    fn the_listener_speaks_only_http2() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["node-0".to_string()]).unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.cert.pem()).unwrap();
        let key = rustls::sign::CertifiedKey::from_der(
            vec![ca.cert.der().clone()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(ca.key_pair.serialize_der()).into(),
            &provider(),
        )
        .unwrap();
        let resolver = Arc::new(rustls::sign::SingleCertAndKey::from(key));
        let tls = PeerTls::new(resolver, &ca_path).unwrap();
        assert_eq!(tls.server.alpn_protocols, [b"h2".to_vec()]);
    }
}
