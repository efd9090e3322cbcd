//! Pure desired-state builders: an `ObjectStore` (or `AccessKey`) in, the Kubernetes objects
//! the operator applies out. No I/O here, so every builder is tested as data.

mod access_secret;
mod names;
mod pdb;
mod secrets;
mod services;
mod statefulset;
mod topology;

pub use access_secret::{
    access_key_secret, content_hash, AccessKeySecretInput, CONTENT_HASH, ROTATION_STATE,
};
pub use names::*;
pub use pdb::{pod_disruption_budget, tolerated_servers};
pub use secrets::{
    cluster_secret, root_secret, CLUSTER_SECRET_KEY, ROOT_PASSWORD_KEY, ROOT_USER_KEY,
};
pub use services::{client_service, headless_service};
pub use statefulset::statefulset;
pub use topology::{pool_layout, topology, topology_config_map, TOPOLOGY_FILE, TOPOLOGY_KEY};

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::crd::ObjectStore;

/// The owner reference making `owner` the controller of an object.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    owner
        .controller_owner_ref(&())
        .expect("objects from the API server have a name and uid")
}

/// Metadata of an object belonging to `store`: its namespace, labels and owner reference.
pub fn store_meta(store: &ObjectStore, name: String, extra: &[(&str, &str)]) -> ObjectMeta {
    let mut labels = store_labels(store);
    for (k, v) in extra {
        labels.insert(k.to_string(), v.to_string());
    }
    ObjectMeta {
        name: Some(name),
        namespace: store.namespace(),
        labels: Some(labels),
        owner_references: Some(vec![controller_ref(store)]),
        ..ObjectMeta::default()
    }
}

/// Labels every object of a store carries; `coffer.dev/store` alone selects its pods.
pub fn store_labels(store: &ObjectStore) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "coffer".to_string()),
        ("app.kubernetes.io/instance".to_string(), store.name_any()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "coffer-operator".to_string(),
        ),
        (STORE_LABEL.to_string(), store.name_any()),
    ])
}

#[cfg(test)]
pub(crate) mod tests;
