//! The store's generated Secrets: the root credential and the cluster secret that
//! authenticates peer RPC. Both are created only when absent and never updated, so a value
//! someone chose (or the data sealed under it) is never lost. They carry no owner reference:
//! with `storageDeletionPolicy: Retain` they outlive the store together with its volumes (the
//! access keys on the drives are sealed under the root secret); with `Delete` the operator's
//! finalizer removes them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::ResourceExt;
use rand::distributions::{Alphanumeric, DistString};

use super::{cluster_secret_name, root_secret_name, store_labels};
use crate::crd::ObjectStore;

pub const ROOT_USER_KEY: &str = "COFFER_ROOT_USER";
pub const ROOT_PASSWORD_KEY: &str = "COFFER_ROOT_PASSWORD";
pub const CLUSTER_SECRET_KEY: &str = "COFFER_CLUSTER_SECRET";

fn secret(store: &ObjectStore, name: String, data: BTreeMap<String, String>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: store.namespace(),
            labels: Some(store_labels(store)),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// A new root credential for `store`: a user `COFFER` + 16 upper-case letters and digits
/// and a 40-character password, from the operating system's random source.
pub fn root_secret(store: &ObjectStore) -> Secret {
    let mut rng = rand::rngs::OsRng;
    let user = format!(
        "COFFER{}",
        Alphanumeric
            .sample_string(&mut rng, 16)
            .to_ascii_uppercase()
    );
    let password = Alphanumeric.sample_string(&mut rng, 40);
    secret(
        store,
        root_secret_name(store),
        BTreeMap::from([
            (ROOT_USER_KEY.to_string(), user),
            (ROOT_PASSWORD_KEY.to_string(), password),
        ]),
    )
}

/// A new cluster secret for `store`: 32 random bytes, hex.
pub fn cluster_secret(store: &ObjectStore) -> Secret {
    let bytes: [u8; 32] = rand::random();
    secret(
        store,
        cluster_secret_name(&store.name_any()),
        BTreeMap::from([(CLUSTER_SECRET_KEY.to_string(), hex::encode(bytes))]),
    )
}
