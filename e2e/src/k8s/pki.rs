//! The control plane's certificates and keys, generated per run with rcgen: one CA that
//! signs the API server's serving certificate and the client certificates of each component,
//! and an ECDSA key pair that signs and verifies service-account tokens.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::Result;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate and its key, written as PEM files.
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Everything the components and clients need, as files under one folder.
pub struct Pki {
    pub ca: PathBuf,
    pub apiserver: Pair,
    pub admin: Pair,
    pub controller_manager: Pair,
    pub scheduler: Pair,
    /// Service-account token signing key (private) and its public half.
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
}

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

fn write(dir: &Path, name: &str, contents: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, contents)?;
    Ok(path)
}

fn leaf(
    ca: &Ca,
    dir: &Path,
    file: &str,
    cn: &str,
    org: Option<&str>,
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<Pair> {
    let mut params = CertificateParams::new(sans)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(org) = org {
        dn.push(DnType::OrganizationName, org);
    }
    params.distinguished_name = dn;
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca.cert, &ca.key)?;
    Ok(Pair {
        cert: write(dir, &format!("{file}.crt"), &cert.pem())?,
        key: write(dir, &format!("{file}.key"), &key.serialize_pem())?,
    })
}

impl Pki {
    /// Generates every certificate into `dir`. The API server's certificate names every
    /// address it is reached at: loopback, the bridge address pods and the operator use, and
    /// the first address of the service range (the `kubernetes` Service).
    pub fn generate(dir: &Path, addresses: &[Ipv4Addr]) -> Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "coffer-e2e-ca");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let ca_path = write(dir, "ca.crt", &cert.pem())?;
        write(dir, "ca.key", &key.serialize_pem())?;
        let ca = Ca { cert, key };

        let mut sans: Vec<String> = [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        sans.push("127.0.0.1".into());
        sans.extend(addresses.iter().map(|a| a.to_string()));
        let server = ExtendedKeyUsagePurpose::ServerAuth;
        let client = || ExtendedKeyUsagePurpose::ClientAuth;
        let apiserver = leaf(&ca, dir, "apiserver", "kube-apiserver", None, sans, server)?;
        let admin = leaf(
            &ca,
            dir,
            "admin",
            "coffer-e2e-admin",
            Some("system:masters"),
            vec![],
            client(),
        )?;
        let controller_manager = leaf(
            &ca,
            dir,
            "controller-manager",
            "system:kube-controller-manager",
            None,
            vec![],
            client(),
        )?;
        let scheduler = leaf(
            &ca,
            dir,
            "scheduler",
            "system:kube-scheduler",
            None,
            vec![],
            client(),
        )?;
        let sa = KeyPair::generate()?;
        Ok(Pki {
            ca: ca_path,
            apiserver,
            admin,
            controller_manager,
            scheduler,
            sa_key: write(dir, "sa.key", &sa.serialize_pem())?,
            sa_pub: write(dir, "sa.pub", &sa.public_key_pem())?,
        })
    }
}

/// A kubeconfig for `server` authenticating with a client certificate.
pub fn kubeconfig(server: &str, ca: &Path, client: &Pair) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: coffer-e2e
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: user
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: coffer-e2e
  context:
    cluster: coffer-e2e
    user: user
current-context: coffer-e2e
",
        ca = ca.display(),
        cert = client.cert.display(),
        key = client.key.display(),
    )
}
