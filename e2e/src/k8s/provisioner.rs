//! A dynamic provisioner of folders: a default StorageClass whose claims get a
//! PersistentVolume (`hostPath`, a fresh folder under the run's folder) bound to them, and
//! whose released volumes (claim deleted, reclaim policy Delete) are removed with their folder.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

/// The provisioner name in the StorageClass and on the volumes it made.
pub const PROVISIONER: &str = "e2e.coffer.dev/folders";
pub const STORAGE_CLASS: &str = "folders";
const RESYNC: Duration = Duration::from_millis(500);

pub async fn install_storage_class(client: &Client) -> Result<()> {
    let class: StorageClass = serde_json::from_value(json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {
            "storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }))?;
    match Api::<StorageClass>::all(client.clone())
        .create(&PostParams::default(), &class)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn run(client: Client, folders: PathBuf) -> Result<()> {
    let claims: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    loop {
        if let Err(e) = sync(&claims, &volumes, &folders).await {
            eprintln!("provisioner: {e:#}");
        }
        tokio::time::sleep(RESYNC).await;
    }
}

async fn sync(
    claims: &Api<PersistentVolumeClaim>,
    volumes: &Api<PersistentVolume>,
    folders: &std::path::Path,
) -> Result<()> {
    for claim in claims.list(&ListParams::default()).await? {
        let annotations = claim.annotations();
        let ours = [
            "volume.kubernetes.io/storage-provisioner",
            "volume.beta.kubernetes.io/storage-provisioner",
        ]
        .iter()
        .any(|a| annotations.get(*a).map(String::as_str) == Some(PROVISIONER));
        let spec = claim.spec.clone().unwrap_or_default();
        let pending = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending");
        if !ours
            || !pending
            || spec.volume_name.is_some()
            || claim.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        let uid = claim.uid().unwrap_or_default();
        let name = format!("pvc-{uid}");
        let folder = folders.join(&name);
        std::fs::create_dir_all(&folder)?;
        let size = spec
            .resources
            .and_then(|r| r.requests)
            .and_then(|r| r.get("storage").cloned())
            .map(|q| q.0)
            .unwrap_or_else(|| "1Gi".into());
        let pv: PersistentVolume = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": spec.access_modes.unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": spec.storage_class_name.unwrap_or_else(|| STORAGE_CLASS.into()),
                "hostPath": {"path": folder.display().to_string(), "type": "Directory"},
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "namespace": claim.namespace(), "name": claim.name_any(), "uid": uid},
            },
        }))?;
        match volumes.create(&PostParams::default(), &pv).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    for pv in volumes.list(&ListParams::default()).await? {
        let ours = pv
            .annotations()
            .get("pv.kubernetes.io/provisioned-by")
            .map(String::as_str)
            == Some(PROVISIONER);
        let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
        let delete = pv
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
            == Some("Delete");
        if !(ours && released && delete) {
            continue;
        }
        if let Some(path) = pv
            .spec
            .as_ref()
            .and_then(|s| s.host_path.as_ref())
            .map(|h| PathBuf::from(&h.path))
        {
            if path.starts_with(folders) {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
        let _ = volumes
            .delete(&pv.name_any(), &DeleteParams::default())
            .await;
    }
    Ok(())
}
