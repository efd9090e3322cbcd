//! HTTPS for the S3 and admin listener: a rustls server configuration (ring, TLS 1.2 and 1.3,
//! ALPN `h2` and `http/1.1`) whose certificate is reloaded when its files change.
//!
//! cert-manager (and any other rotation) replaces the certificate and key files in place or
//! through a symlink swap; [`spawn_reloader`] polls both files' metadata every few seconds and
//! swaps the certificate in [`ReloadingCert`] for new handshakes. A new pair that does not load
//! (unparsable, or a key that does not match the certificate — as while a rotation has
//! written one file but not yet the other) is logged and the previous certificate stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the certificate files are checked for a change.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// The certificate chain and private key files, both PEM.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("the key in {key} does not fit the certificate in {cert}: {source}")]
    Key {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("building the TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The one crypto provider of the server side (ring), chosen explicitly so the process never
/// depends on which rustls features other crates enable.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads and checks a certificate chain and its private key.
pub fn load_certified_key(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    fn read(path: &Path) -> impl Fn(rustls::pki_types::pem::Error) -> TlsError + '_ {
        move |source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        }
    }
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(read(&files.cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read(&files.cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(read(&files.key))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|source| TlsError::Key {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    })
}

/// The server certificate, swapped in place on reload; every handshake reads the current one.
#[derive(Debug)]
pub struct ReloadingCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCert {
    pub fn new(key: CertifiedKey) -> ReloadingCert {
        ReloadingCert {
            current: RwLock::new(Arc::new(key)),
        }
    }

    pub fn replace(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The rustls configuration of the listener: certificates from `resolver`, ALPN `h2` first
/// then `http/1.1` (the listener serves both).
pub fn server_config(resolver: Arc<ReloadingCert>) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// What identifies one version of the files: modification time, length and inode of each
/// (following symlinks, so a Kubernetes secret volume's `..data` swap counts as a change).
type Stamp = Vec<Option<(SystemTime, u64, u64)>>;

fn stamp(files: &TlsFiles) -> Stamp {
    [&files.cert, &files.key]
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            #[cfg(unix)]
            let ino = std::os::unix::fs::MetadataExt::ino(&m);
            #[cfg(not(unix))]
            let ino = 0;
            Some((m.modified().ok()?, m.len(), ino))
        })
        .collect()
}

/// Loads the certificate, then polls its files every `interval` and reloads it on change for
/// as long as the returned resolver is in use (the task ends when the listener drops it).
pub fn spawn_reloader(files: TlsFiles, interval: Duration) -> Result<Arc<ReloadingCert>, TlsError> {
    let mut seen = stamp(&files);
    let resolver = Arc::new(ReloadingCert::new(load_certified_key(&files)?));
    let weak = Arc::downgrade(&resolver);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(resolver) = weak.upgrade() else {
                return;
            };
            let now = stamp(&files);
            if now == seen {
                continue;
            }
            // Remember the attempt whatever its outcome: a half-written rotation is retried
            // when the other file changes, not logged again every few seconds.
            seen = now;
            let loaded = {
                let files = files.clone();
                tokio::task::spawn_blocking(move || load_certified_key(&files)).await
            };
            match loaded {
                Ok(Ok(key)) => {
                    resolver.replace(key);
                    tracing::info!(cert = %files.cert.display(), "reloaded the TLS certificate");
                }
                Ok(Err(e)) => tracing::error!(
                    error = %e,
                    "the new TLS certificate does not load; still serving the previous one"
                ),
                Err(e) => tracing::error!(error = %e, "reloading the TLS certificate failed"),
            }
        }
    });
    Ok(resolver)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key as PEM files in `dir`, named `name.crt/.key`.
    fn write_pair(dir: &Path, name: &str) -> TlsFiles {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("rcgen makes a certificate");
        let files = TlsFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, cert.cert.pem()).unwrap();
        std::fs::write(&files.key, cert.key_pair.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn a_matching_pair_loads_and_mismatches_or_empty_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_pair(dir.path(), "a");
        let b = write_pair(dir.path(), "b");
        let key = load_certified_key(&a).expect("a matching pair loads");
        assert_eq!(key.cert.len(), 1);

        let mixed = TlsFiles {
            cert: a.cert.clone(),
            key: b.key.clone(),
        };
        let err = load_certified_key(&mixed).unwrap_err();
        assert!(matches!(err, TlsError::Key { .. }), "{err}");
        assert!(err.to_string().contains("does not fit"), "{err}");

        std::fs::write(&b.cert, "").unwrap();
        let err = load_certified_key(&b).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate(_)), "{err}");

        let missing = TlsFiles {
            cert: dir.path().join("nope.crt"),
            key: a.key.clone(),
        };
        assert!(matches!(
            load_certified_key(&missing).unwrap_err(),
            TlsError::Read { .. }
        ));
    }

    #[test]
    fn the_resolver_serves_the_replaced_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_certified_key(&write_pair(dir.path(), "a")).unwrap();
        let b = load_certified_key(&write_pair(dir.path(), "b")).unwrap();
        let b_der = b.cert[0].clone();
        let resolver = ReloadingCert::new(a);
        resolver.replace(b);
        assert_eq!(resolver.current().cert[0], b_der);
        let config = server_config(Arc::new(resolver)).unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
