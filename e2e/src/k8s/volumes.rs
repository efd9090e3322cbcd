//! A pod's volumes as folders on the host: volume claims are the folders of their bound
//! PersistentVolumes (`hostPath`, made by the provisioner), emptyDir a folder of the pod;
//! Secrets, ConfigMaps, downward API and projected volumes are files the kubelet writes
//! into a folder of the pod and rewrites (atomically, by rename) when their source changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod, Secret, ServiceAccount,
    Volume,
};
use k8s_openapi::ByteString;
use kube::api::PostParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};

/// Where a volume lives on the host, and whether the kubelet renders its files.
pub struct Prepared {
    pub folders: BTreeMap<String, PathBuf>,
}

/// The sources file volumes are rendered from: caches of every Secret and ConfigMap.
#[derive(Clone)]
pub struct Sources {
    pub client: Client,
    pub secrets: Store<Secret>,
    pub config_maps: Store<ConfigMap>,
}

/// Resolves every volume of `pod` to a folder under `pod_dir` (or a claim's folder), failing
/// while a claim is not bound yet.
pub async fn prepare(client: &Client, pod: &Pod, pod_dir: &Path) -> Result<Prepared> {
    let ns = pod.namespace().unwrap_or_default();
    let mut folders = BTreeMap::new();
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for volume in &volumes {
        let folder = if let Some(claim) = &volume.persistent_volume_claim {
            let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
                .get(&claim.claim_name)
                .await
                .with_context(|| format!("claim {}", claim.claim_name))?;
            let Some(pv_name) = pvc
                .spec
                .and_then(|s| s.volume_name)
                .filter(|v| !v.is_empty())
            else {
                bail!("claim {} is not bound yet", claim.claim_name);
            };
            let pv = Api::<PersistentVolume>::all(client.clone())
                .get(&pv_name)
                .await?;
            let Some(path) = pv.spec.and_then(|s| s.host_path).map(|h| h.path) else {
                bail!("volume {pv_name} is not a folder (hostPath)");
            };
            PathBuf::from(path)
        } else {
            let folder = pod_dir.join("volumes").join(&volume.name);
            std::fs::create_dir_all(&folder)?;
            folder
        };
        if let Some(group) = fs_group(pod) {
            if volume.persistent_volume_claim.is_some() || volume.empty_dir.is_some() {
                give_to_group(&folder, group)?;
            }
        }
        folders.insert(volume.name.clone(), folder);
    }
    Ok(Prepared { folders })
}

/// The pod's `securityContext.fsGroup`.
fn fs_group(pod: &Pod) -> Option<u32> {
    pod.spec
        .as_ref()?
        .security_context
        .as_ref()?
        .fs_group
        .and_then(|g| u32::try_from(g).ok())
}

/// What a kubelet does for `fsGroup` (with `fsGroupChangePolicy: OnRootMismatch`): unless the
/// volume's root already belongs to `group` with the set-group-id bit, every file and folder
/// in it is given to `group` and made group-readable and -writable, folders set-group-id so
/// new files inherit the group. A non-root container can then use its volume.
fn give_to_group(folder: &Path, group: u32) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(folder)?;
    if meta.gid() == group && meta.mode() & 0o2000 != 0 {
        return Ok(());
    }
    let mut stack = vec![folder.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        std::os::unix::fs::chown(&path, None, Some(group))?;
        let extra = if meta.is_dir() { 0o2070 } else { 0o060 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(meta.mode() | extra))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(())
}

/// Writes `contents` to `dir/name` by rename when it differs from what is there.
/// With `group` (the pod's fsGroup) the file belongs to it and is group-readable, as a
/// kubelet makes Secret and ConfigMap files readable by a non-root container.
fn put(
    dir: &Path,
    name: &str,
    contents: &[u8],
    mode: Option<i32>,
    group: Option<u32>,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    if std::fs::read(&path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("kubelet-tmp");
    std::fs::write(&tmp, contents)?;
    let mut mode = mode.map_or(0o644, |m| m as u32);
    if let Some(group) = group {
        std::os::unix::fs::chown(&tmp, None, Some(group))?;
        mode |= 0o040;
    }
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

fn select<'a>(
    data: &'a BTreeMap<String, Vec<u8>>,
    items: &Option<Vec<KeyToPath>>,
) -> Vec<(String, &'a [u8], Option<i32>)> {
    match items {
        Some(items) => items
            .iter()
            .filter_map(|i| {
                data.get(&i.key)
                    .map(|v| (i.path.clone(), v.as_slice(), i.mode))
            })
            .collect(),
        None => data
            .iter()
            .map(|(k, v)| (k.clone(), v.as_slice(), None))
            .collect(),
    }
}

fn secret_data(store: &Store<Secret>, ns: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
    let secret = store.get(&ObjectRef::new(name).within(ns))?;
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, ByteString(v))| (k, v))
        .collect();
    for (k, v) in secret.string_data.clone().unwrap_or_default() {
        data.insert(k, v.into_bytes());
    }
    Some(data)
}

fn config_map_data(
    store: &Store<ConfigMap>,
    ns: &str,
    name: &str,
) -> Option<BTreeMap<String, Vec<u8>>> {
    let cm = store.get(&ObjectRef::new(name).within(ns))?;
    let mut data: BTreeMap<String, Vec<u8>> = cm
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    for (k, ByteString(v)) in cm.binary_data.clone().unwrap_or_default() {
        data.insert(k, v);
    }
    Some(data)
}

/// The value of a downward-API field path of `pod`.
pub fn field(pod: &Pod, path: &str) -> Option<String> {
    let status = pod.status.as_ref();
    let spec = pod.spec.as_ref();
    match path {
        "metadata.name" => Some(pod.name_any()),
        "metadata.namespace" => pod.namespace(),
        "metadata.uid" => pod.uid(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()),
        _ => {
            let (map, key) = if let Some(rest) = path.strip_prefix("metadata.labels['") {
                (pod.metadata.labels.as_ref(), rest.strip_suffix("']")?)
            } else if let Some(rest) = path.strip_prefix("metadata.annotations['") {
                (pod.metadata.annotations.as_ref(), rest.strip_suffix("']")?)
            } else {
                return None;
            };
            map.and_then(|m| m.get(key).cloned())
        }
    }
}

/// The file-backed volumes of `pod` rendered into their folders; a missing required source
/// is an error (the container must not start without it).
pub async fn render(
    sources: &Sources,
    pod: &Pod,
    prepared: &Prepared,
    token_written: &mut bool,
) -> Result<()> {
    let ns = pod.namespace().unwrap_or_default();
    let group = fs_group(pod);
    let volumes: Vec<Volume> = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for volume in &volumes {
        let Some(dir) = prepared.folders.get(&volume.name) else {
            continue;
        };
        if let Some(s) = &volume.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            match secret_data(&sources.secrets, &ns, &name) {
                Some(data) => {
                    for (path, value, mode) in select(&data, &s.items) {
                        put(dir, &path, value, mode.or(s.default_mode), group)?;
                    }
                }
                None if s.optional == Some(true) => {}
                None => bail!("secret {ns}/{name} not found"),
            }
        }
        if let Some(c) = &volume.config_map {
            let name = c.name.clone();
            match config_map_data(&sources.config_maps, &ns, &name) {
                Some(data) => {
                    for (path, value, mode) in select(&data, &c.items) {
                        put(dir, &path, value, mode.or(c.default_mode), group)?;
                    }
                }
                None if c.optional == Some(true) => {}
                None => bail!("config map {ns}/{name} not found"),
            }
        }
        if let Some(d) = &volume.downward_api {
            for item in d.items.clone().unwrap_or_default() {
                if let Some(f) = &item.field_ref {
                    let value = field(pod, &f.field_path).unwrap_or_default();
                    put(dir, &item.path, value.as_bytes(), item.mode, group)?;
                }
            }
        }
        if let Some(p) = &volume.projected {
            for source in p.sources.clone().unwrap_or_default() {
                if let Some(c) = &source.config_map {
                    match config_map_data(&sources.config_maps, &ns, &c.name) {
                        Some(data) => {
                            for (path, value, mode) in select(&data, &c.items) {
                                put(dir, &path, value, mode.or(p.default_mode), group)?;
                            }
                        }
                        None if c.optional == Some(true) => {}
                        None => bail!("config map {ns}/{} not found", c.name),
                    }
                }
                if let Some(s) = &source.secret {
                    match secret_data(&sources.secrets, &ns, &s.name) {
                        Some(data) => {
                            for (path, value, mode) in select(&data, &s.items) {
                                put(dir, &path, value, mode.or(p.default_mode), group)?;
                            }
                        }
                        None if s.optional == Some(true) => {}
                        None => bail!("secret {ns}/{} not found", s.name),
                    }
                }
                if let Some(d) = &source.downward_api {
                    for item in d.items.clone().unwrap_or_default() {
                        if let Some(f) = &item.field_ref {
                            let value = field(pod, &f.field_path).unwrap_or_default();
                            put(dir, &item.path, value.as_bytes(), item.mode, group)?;
                        }
                    }
                }
                if let Some(t) = &source.service_account_token {
                    // Requested once per pod: tokens last an hour, longer than any run.
                    if !*token_written {
                        let account = pod
                            .spec
                            .as_ref()
                            .and_then(|s| s.service_account_name.clone())
                            .unwrap_or_else(|| "default".into());
                        let request = TokenRequest {
                            spec: TokenRequestSpec {
                                audiences: t.audience.clone().into_iter().collect(),
                                expiration_seconds: Some(
                                    t.expiration_seconds.unwrap_or(3600).max(600),
                                ),
                                ..TokenRequestSpec::default()
                            },
                            ..TokenRequest::default()
                        };
                        let api = Api::<ServiceAccount>::namespaced(sources.client.clone(), &ns);
                        let answer: TokenRequest = api
                            .create_subresource("token", &account, &PostParams::default(), &request)
                            .await
                            .with_context(|| format!("token for {ns}/{account}"))?;
                        let token = answer.status.map(|s| s.token).unwrap_or_default();
                        put(dir, &t.path, token.as_bytes(), p.default_mode, group)?;
                        *token_written = true;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The value of an environment variable from a Secret or ConfigMap key; `Ok(None)` when the
/// reference is optional and missing.
pub fn secret_key(
    sources: &Sources,
    ns: &str,
    name: &str,
    key: &str,
    optional: bool,
) -> Result<Option<String>> {
    key_value(
        secret_data(&sources.secrets, ns, name),
        ("secret", ns, name, key),
        optional,
    )
}

pub fn config_map_key(
    sources: &Sources,
    ns: &str,
    name: &str,
    key: &str,
    optional: bool,
) -> Result<Option<String>> {
    key_value(
        config_map_data(&sources.config_maps, ns, name),
        ("config map", ns, name, key),
        optional,
    )
}

/// One key of a Secret's or ConfigMap's data as text; `what` names it for the error.
fn key_value(
    data: Option<BTreeMap<String, Vec<u8>>>,
    what: (&str, &str, &str, &str),
    optional: bool,
) -> Result<Option<String>> {
    let (kind, ns, name, key) = what;
    match data.and_then(|d| d.get(key).cloned()) {
        Some(v) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
        None if optional => Ok(None),
        None => bail!("{kind} {ns}/{name} has no key {key}"),
    }
}

/// Every key of a Secret or ConfigMap named by `envFrom`.
pub fn all_keys(
    sources: &Sources,
    ns: &str,
    secret: Option<&str>,
    config_map: Option<&str>,
) -> Option<BTreeMap<String, String>> {
    let data = match (secret, config_map) {
        (Some(s), _) => secret_data(&sources.secrets, ns, s)?,
        (_, Some(c)) => config_map_data(&sources.config_maps, ns, c)?,
        _ => return None,
    };
    Some(
        data.into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect(),
    )
}
