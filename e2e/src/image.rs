//! Container images of `coffer-server` and `coffer-operator`, assembled here without a base
//! image or a container engine: an OCI image layout (`oci-layout`, `index.json`, blobs) written
//! into one tar file, the *OCI archive* that `skopeo copy oci-archive:…` pushes to a registry
//! and that the process kubelet ([`crate::k8s`]) unpacks and runs.
//!
//! An image has two layers. The base layer holds what the binary needs from the system: the
//! shared libraries `ldd` resolves for it (and the dynamic loader), the CA bundle, an
//! `/etc/passwd` and `/etc/group` naming the non-root user [`UID`], an `nsswitch.conf` so
//! names resolve through `/etc/hosts` first, and `/data` owned by that user. The app layer
//! holds the binary. Every entry has a fixed owner and modification time, in sorted order, so
//! the same inputs give the same digests.
//!
//! [`load`] reads an archive back ([`Image`]: its config and layer blobs) and
//! [`Image::unpack`] writes its layers into a root folder, which is what a container runtime
//! does on pull and create.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use flate2::write::GzEncoder;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The user the images run as (the `nonroot` id of distroless images; the operator's pods
/// run as the same id).
pub const UID: u32 = 65532;
/// Where the base layer takes the CA bundle from (Debian's `ca-certificates`).
pub const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Where it is in the image (the path rustls-native-certs and OpenSSL look at first).
pub const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
const SOURCE: &str = "https://github.com/coffer-dev/coffer";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What goes into one image.
pub struct ImageSpec {
    /// `coffer-server` or `coffer-operator`: the image's name and its binary's.
    pub name: String,
    pub binary: PathBuf,
    /// The default arguments (`Cmd`), after the binary (`Entrypoint`).
    pub cmd: Vec<String>,
    pub ports: Vec<u16>,
    pub description: String,
    /// The full reference the archive is tagged with, e.g. `ghcr.io/coffer-dev/coffer-server:0.1.0`.
    pub reference: String,
}

impl ImageSpec {
    /// The server image: serves `/data` on every interface when run without arguments.
    pub fn server(binary: PathBuf, repository: &str) -> ImageSpec {
        ImageSpec {
            name: "coffer-server".into(),
            binary,
            cmd: ["serve", "/data", "--address", "0.0.0.0:9000"]
                .map(String::from)
                .to_vec(),
            ports: vec![9000, 9001],
            description: "Coffer: S3-compatible, erasure-coded object storage".into(),
            reference: coffer_operator::images::server_image_in(repository),
        }
    }

    /// The operator image: `run` reconciles with the in-cluster credentials.
    pub fn operator(binary: PathBuf, repository: &str) -> ImageSpec {
        ImageSpec {
            name: "coffer-operator".into(),
            binary,
            cmd: vec!["run".into()],
            ports: vec![8080],
            description: "Coffer operator: ObjectStores, Buckets and AccessKeys on Kubernetes"
                .into(),
            reference: coffer_operator::images::operator_image_in(repository),
        }
    }
}

/// An archive written by [`build`].
pub struct BuiltImage {
    pub reference: String,
    pub archive: PathBuf,
    /// The manifest's digest: what a registry reports for the image once pushed as is.
    pub digest: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A tar stream with fixed owners and times, entries added in the order given.
struct Layer {
    tar: tar::Builder<Vec<u8>>,
}

impl Layer {
    fn new() -> Layer {
        Layer {
            tar: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, uid: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid.into());
        h.set_gid(uid.into());
        h.set_mtime(0);
        h.set_size(size);
        h
    }

    fn dir(&mut self, path: &str, mode: u32, uid: u32) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Directory, mode, uid, 0);
        self.tar
            .append_data(&mut h, format!("{path}/"), std::io::empty())?;
        Ok(())
    }

    fn file(&mut self, path: &str, mode: u32, contents: &[u8]) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Regular, mode, 0, contents.len() as u64);
        self.tar.append_data(&mut h, path, contents)?;
        Ok(())
    }

    /// Every parent folder of `paths` (root-owned, 0755), then the files, each once, sorted.
    fn files(&mut self, files: &BTreeMap<String, (u32, Vec<u8>)>) -> Result<()> {
        let mut dirs = std::collections::BTreeSet::new();
        for path in files.keys() {
            let mut p = Path::new(path).parent();
            while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
                dirs.insert(d.to_string_lossy().into_owned());
                p = d.parent();
            }
        }
        for d in &dirs {
            self.dir(d, 0o755, 0)?;
        }
        for (path, (mode, contents)) in files {
            self.file(path, *mode, contents)?;
        }
        Ok(())
    }

    /// (diff id of the tar, the gzipped blob)
    fn finish(self) -> Result<(String, Vec<u8>)> {
        let tar = self.tar.into_inner()?;
        let diff_id = format!("sha256:{}", sha256_hex(&tar));
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar)?;
        Ok((diff_id, gz.finish()?))
    }
}

/// The shared libraries `binary` loads, as `ldd` resolves them on this machine, and its
/// dynamic loader: absolute paths (the loader first). A static binary has none.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd (package libc-bin)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if text.contains("not a dynamic executable")
            || String::from_utf8_lossy(&out.stderr).contains("not a dynamic executable")
        {
            return Ok(Vec::new());
        }
        bail!(
            "ldd {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut loader = Vec::new();
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some((name, rest)) = line.split_once("=>") {
            let path = rest.trim().split(" (").next().unwrap_or("").trim();
            if path == "not found" || path.is_empty() {
                bail!(
                    "{} needs {}, which this machine does not have",
                    binary.display(),
                    name.trim()
                );
            }
            libs.push(PathBuf::from(path));
        } else if line.starts_with('/') {
            loader.push(PathBuf::from(line.split(" (").next().unwrap_or(line)));
        }
    }
    loader.extend(libs);
    Ok(loader)
}

/// The base layer's files: libraries, CA bundle, users, name service order.
fn base_files(binary: &Path) -> Result<BTreeMap<String, (u32, Vec<u8>)>> {
    let mut files = BTreeMap::new();
    for lib in shared_libraries(binary)? {
        let bytes = std::fs::read(&lib).with_context(|| format!("reading {}", lib.display()))?;
        let path = lib.to_string_lossy().trim_start_matches('/').to_string();
        files.insert(path, (0o755, bytes));
    }
    let ca = std::fs::read(HOST_CA_BUNDLE).with_context(|| {
        format!("reading {HOST_CA_BUNDLE} (install Debian's ca-certificates package)")
    })?;
    ensure!(
        String::from_utf8_lossy(&ca).contains("BEGIN CERTIFICATE"),
        "{HOST_CA_BUNDLE} holds no certificate"
    );
    files.insert(CA_BUNDLE.into(), (0o644, ca));
    files.insert(
        "etc/passwd".into(),
        (
            0o644,
            format!("root:x:0:0:root:/root:/sbin/nologin\ncoffer:x:{UID}:{UID}:coffer:/home/coffer:/sbin/nologin\n")
                .into_bytes(),
        ),
    );
    files.insert(
        "etc/group".into(),
        (0o644, format!("root:x:0:\ncoffer:x:{UID}:\n").into_bytes()),
    );
    // glibc without this file asks DNS before /etc/hosts; pods name each other in both.
    files.insert(
        "etc/nsswitch.conf".into(),
        (0o644, b"hosts: files dns\nnetworks: files\n".to_vec()),
    );
    Ok(files)
}

fn blob(dir: &Path, bytes: &[u8]) -> Result<(String, u64)> {
    let hex = sha256_hex(bytes);
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs)?;
    std::fs::write(blobs.join(&hex), bytes)?;
    Ok((format!("sha256:{hex}"), bytes.len() as u64))
}

/// Writes the image of `spec` as `out/<name>.oci.tar` and returns its reference and digest.
pub fn build(spec: &ImageSpec, out: &Path) -> Result<BuiltImage> {
    let binary = std::fs::read(&spec.binary)
        .with_context(|| format!("reading {}", spec.binary.display()))?;
    let version = coffer_operator::images::VERSION;

    let mut base = Layer::new();
    base.files(&base_files(&spec.binary)?)?;
    // A folder for a volume or `docker run -v`; the user owns it so a fresh named volume
    // copied from it is writable.
    base.dir("data", 0o755, UID)?;
    base.dir("home", 0o755, 0)?;
    base.dir("home/coffer", 0o755, UID)?;
    base.dir("tmp", 0o1777, 0)?;
    // Mount points a runtime fills (hosts file, /proc, /dev): present, so a read-only root
    // still takes them.
    base.dir("proc", 0o555, 0)?;
    base.dir("dev", 0o755, 0)?;
    base.file("etc/hosts", 0o644, b"127.0.0.1 localhost\n")?;
    base.file("etc/resolv.conf", 0o644, b"")?;
    let (base_diff, base_blob) = base.finish()?;

    let mut app = Layer::new();
    app.dir("usr", 0o755, 0)?;
    app.dir("usr/local", 0o755, 0)?;
    app.dir("usr/local/bin", 0o755, 0)?;
    let entrypoint = format!("usr/local/bin/{}", spec.name);
    app.file(&entrypoint, 0o755, &binary)?;
    let (app_diff, app_blob) = app.finish()?;

    let labels: BTreeMap<&str, String> = [
        ("org.opencontainers.image.title", spec.name.clone()),
        (
            "org.opencontainers.image.description",
            spec.description.clone(),
        ),
        ("org.opencontainers.image.version", version.to_string()),
        ("org.opencontainers.image.source", SOURCE.to_string()),
        (
            "org.opencontainers.image.licenses",
            "Apache-2.0".to_string(),
        ),
        ("org.opencontainers.image.ref.name", spec.reference.clone()),
    ]
    .into_iter()
    .collect();
    let ports: serde_json::Map<String, Value> = spec
        .ports
        .iter()
        .map(|p| (format!("{p}/tcp"), json!({})))
        .collect();
    let config = json!({
        "architecture": oci_arch(),
        "os": "linux",
        "config": {
            "User": format!("{UID}:{UID}"),
            "Env": [format!("PATH={PATH}"), format!("SSL_CERT_FILE=/{CA_BUNDLE}")],
            "Entrypoint": [format!("/{entrypoint}")],
            "Cmd": spec.cmd,
            "WorkingDir": "/data",
            "ExposedPorts": ports,
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [base_diff, app_diff]},
        "history": [
            {"created_by": "coffer-e2e image build: libraries, CA certificates, users"},
            {"created_by": format!("coffer-e2e image build: /{entrypoint}")},
        ],
    });

    let tmp = tempfile::tempdir_in(out_dir(out)?)?;
    let layout = tmp.path();
    let (config_digest, config_size) = blob(layout, &serde_json::to_vec(&config)?)?;
    let (base_digest, base_size) = blob(layout, &base_blob)?;
    let (app_digest, app_size) = blob(layout, &app_blob)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [
            {"mediaType": MEDIA_LAYER, "digest": base_digest, "size": base_size},
            {"mediaType": MEDIA_LAYER, "digest": app_digest, "size": app_size},
        ],
        "annotations": labels,
    });
    let (manifest_digest, manifest_size) = blob(layout, &serde_json::to_vec(&manifest)?)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest_digest,
            "size": manifest_size,
            "platform": {"architecture": oci_arch(), "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": spec.reference},
        }],
    });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;

    let archive = out.join(format!("{}.oci.tar", spec.name));
    let partial = archive.with_extension("tar.partial");
    let mut tar = tar::Builder::new(std::fs::File::create(&partial)?);
    let mut names = vec![
        "oci-layout".to_string(),
        "index.json".to_string(),
        "blobs/".to_string(),
        "blobs/sha256/".to_string(),
    ];
    let mut blob_names: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))?
        .map(|e| Ok(format!("blobs/sha256/{}", e?.file_name().to_string_lossy())))
        .collect::<Result<_>>()?;
    blob_names.sort();
    names.extend(blob_names);
    for name in names {
        if let Some(d) = name.strip_suffix('/') {
            let mut h = Layer::header(tar::EntryType::Directory, 0o755, 0, 0);
            tar.append_data(&mut h, format!("{d}/"), std::io::empty())?;
        } else {
            let bytes = std::fs::read(layout.join(&name))?;
            let mut h = Layer::header(tar::EntryType::Regular, 0o644, 0, bytes.len() as u64);
            tar.append_data(&mut h, &name, bytes.as_slice())?;
        }
    }
    tar.into_inner()?.sync_all()?;
    std::fs::rename(&partial, &archive)?;
    Ok(BuiltImage {
        reference: spec.reference.clone(),
        archive,
        digest: manifest_digest,
    })
}

fn out_dir(out: &Path) -> Result<&Path> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    Ok(out)
}

fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Builds both images from the workspace's release binaries into `out`.
pub fn build_all(out: &Path, repository: &str) -> Result<Vec<BuiltImage>> {
    let server = crate::server::workspace_binary("coffer-server")?;
    let operator = crate::server::workspace_binary("coffer-operator")?;
    [
        ImageSpec::server(server, repository),
        ImageSpec::operator(operator, repository),
    ]
    .iter()
    .map(|spec| build(spec, out))
    .collect()
}

/// How the image says its process runs.
#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

/// An image read from an OCI archive: its run config, labels and layer blobs (in order).
pub struct Image {
    pub reference: String,
    pub digest: String,
    pub config: RunConfig,
    pub labels: BTreeMap<String, String>,
    pub layers: Vec<Vec<u8>>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the (single-platform) image of an OCI archive.
pub fn load(archive: &Path) -> Result<Image> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let file =
        std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    for entry in tar::Archive::new(file).entries()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_file() {
            let name = entry.path()?.to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            files.insert(name.trim_start_matches("./").to_string(), bytes);
        }
    }
    let get_blob = |digest: &str| -> Result<&Vec<u8>> {
        let hex = digest
            .strip_prefix("sha256:")
            .with_context(|| format!("unsupported digest {digest}"))?;
        let bytes = files
            .get(&format!("blobs/sha256/{hex}"))
            .with_context(|| format!("{}: blob {digest} missing", archive.display()))?;
        ensure!(
            sha256_hex(bytes) == hex,
            "{}: blob {digest} does not match its digest",
            archive.display()
        );
        Ok(bytes)
    };
    let index: Value = serde_json::from_slice(
        files
            .get("index.json")
            .with_context(|| format!("{}: no index.json", archive.display()))?,
    )?;
    let entry = &index["manifests"][0];
    let digest = entry["digest"].as_str().context("index without manifest")?;
    let reference = entry["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let manifest: Value = serde_json::from_slice(get_blob(digest)?)?;
    let config: Value = serde_json::from_slice(get_blob(
        manifest["config"]["digest"]
            .as_str()
            .context("manifest without config")?,
    )?)?;
    let layers = manifest["layers"]
        .as_array()
        .context("manifest without layers")?
        .iter()
        .map(|l| {
            let digest = l["digest"].as_str().context("layer without digest")?;
            Ok(get_blob(digest)?.clone())
        })
        .collect::<Result<Vec<_>>>()?;
    let c = &config["config"];
    let env = strings(&c["Env"])
        .into_iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect();
    let labels = c["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Image {
        reference,
        digest: digest.to_string(),
        config: RunConfig {
            entrypoint: strings(&c["Entrypoint"]),
            cmd: strings(&c["Cmd"]),
            env,
            user: c["User"]
                .as_str()
                .filter(|u| !u.is_empty())
                .map(String::from),
            working_dir: c["WorkingDir"]
                .as_str()
                .filter(|d| !d.is_empty())
                .map(String::from),
        },
        labels,
        layers,
    })
}

impl Image {
    /// Extracts every layer, in order, into `root` (created; it should be empty). Entries
    /// keep their modes and owners; OCI whiteouts (`.wh.NAME`) remove what a lower layer had.
    pub fn unpack(&self, root: &Path) -> Result<()> {
        std::fs::create_dir_all(root)?;
        for layer in &self.layers {
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer.as_slice()));
            archive.set_preserve_permissions(true);
            archive.set_preserve_ownerships(true);
            archive.set_overwrite(true);
            for entry in archive.entries()? {
                let mut entry = entry?;
                let path = entry.path()?.into_owned();
                if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                    if let Some(hidden) = name.strip_prefix(".wh.") {
                        let parent = path.parent().unwrap_or(Path::new(""));
                        let victim = root.join(parent).join(hidden);
                        if victim.is_dir() {
                            std::fs::remove_dir_all(&victim)?;
                        } else if victim.exists() {
                            std::fs::remove_file(&victim)?;
                        }
                        continue;
                    }
                }
                ensure!(
                    entry.unpack_in(root)?,
                    "layer entry {} escapes the root",
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// The user and group ids the image's `User` names (numeric, or a name in its
    /// /etc/passwd, looked up in `root` once unpacked); root when it names none.
    pub fn user_ids(&self, root: &Path) -> Result<(u32, u32)> {
        let Some(user) = &self.config.user else {
            return Ok((0, 0));
        };
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
        let entry = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && (f[0] == u || f[2] == u));
        let uid = match u.parse() {
            Ok(n) => n,
            Err(_) => entry
                .as_ref()
                .and_then(|f| f[2].parse().ok())
                .with_context(|| format!("user {u} is not in the image's /etc/passwd"))?,
        };
        let gid = match g {
            Some(g) => match g.parse() {
                Ok(n) => n,
                Err(_) => {
                    let group = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
                    group
                        .lines()
                        .map(|l| l.split(':').collect::<Vec<_>>())
                        .find(|f| f.len() > 2 && f[0] == g)
                        .and_then(|f| f[2].parse().ok())
                        .with_context(|| format!("group {g} is not in the image's /etc/group"))?
                }
            },
            None => entry
                .as_ref()
                .and_then(|f| f[3].parse().ok())
                .unwrap_or(uid),
        };
        Ok((uid, gid))
    }
}

/// The home folder of `uid` in an unpacked image's /etc/passwd ("/" when it has none), as
/// a container runtime sets `HOME`.
pub fn home_of(root: &Path, uid: u32) -> String {
    std::fs::read_to_string(root.join("etc/passwd"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[2] == uid.to_string())
        .map(|f| f[5].to_string())
        .unwrap_or_else(|| "/".into())
}
