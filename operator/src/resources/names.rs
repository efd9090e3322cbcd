//! Names and ports of everything a store consists of, in one place.

use kube::ResourceExt;

use crate::crd::ObjectStore;

/// Label naming the store an object belongs to.
pub const STORE_LABEL: &str = "coffer.dev/store";
/// Label naming the pool a pod, StatefulSet or volume claim belongs to.
pub const POOL_LABEL: &str = "coffer.dev/pool";
/// The S3 port of every server (and of the client Service).
pub const S3_PORT: i32 = 9000;
/// The peer RPC port of every server.
pub const RPC_PORT: i32 = 9100;
/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "coffer-operator";

/// StatefulSet of pool `pool`: `<store>-<pool>`.
pub fn statefulset_name(store: &str, pool: &str) -> String {
    format!("{store}-{pool}")
}

/// Pod `i` of pool `pool` (the server's `--node` name): `<store>-<pool>-<i>`.
pub fn pod_name(store: &str, pool: &str, i: i32) -> String {
    format!("{store}-{pool}-{i}")
}

/// The headless Service giving every server a stable DNS name.
pub fn headless_service_name(store: &str) -> String {
    format!("{store}-hl")
}

/// The client Service (the S3 endpoint apps use) has the store's name.
pub fn client_service_name(store: &str) -> String {
    store.to_string()
}

pub fn topology_config_map_name(store: &str) -> String {
    format!("{store}-topology")
}

/// The ConfigMap recording which Bucket resource manages which bucket of the store (see
/// `controller::claims`).
pub fn bucket_claims_name(store: &str) -> String {
    format!("{store}-bucket-claims")
}

/// The generated root-credential Secret, when the spec names none.
pub fn default_root_secret_name(store: &str) -> String {
    format!("{store}-root")
}

pub fn cluster_secret_name(store: &str) -> String {
    format!("{store}-cluster-secret")
}

/// The volume (and claim template) of drive `j`: `data-<j>`, mounted at `/data/<j>`.
pub fn drive_volume_name(j: i32) -> String {
    format!("data-{j}")
}

pub fn drive_path(j: i32) -> String {
    format!("/data/{j}")
}

/// The root-credential Secret a store uses.
pub fn root_secret_name(store: &ObjectStore) -> String {
    store
        .spec
        .root_credentials
        .as_ref()
        .map(|r| r.secret_ref.name.clone())
        .unwrap_or_else(|| default_root_secret_name(&store.name_any()))
}

/// `<store>.<namespace>.svc`, the client Service's DNS name.
pub fn service_host(store: &str, namespace: &str) -> String {
    format!("{}.{namespace}.svc", client_service_name(store))
}

/// `https` when the store has `tls`, else `http`.
pub fn scheme(store: &ObjectStore) -> &'static str {
    if store.spec.tls_enabled() {
        "https"
    } else {
        "http"
    }
}

/// `http(s)://<store>.<namespace>.svc:9000`, what apps and the operator call (`namespace`
/// is the store's).
pub fn endpoint_url(store: &ObjectStore, namespace: &str) -> String {
    format!(
        "{}://{}:{S3_PORT}",
        scheme(store),
        service_host(&store.name_any(), namespace)
    )
}

/// `<pod>.<store>-hl.<namespace>.svc`, a server's stable DNS name.
pub fn server_host(store: &str, namespace: &str, pod: &str) -> String {
    format!("{pod}.{}.{namespace}.svc", headless_service_name(store))
}

/// `http(s)://<pod>.<store>-hl.<namespace>.svc:9000`, one server's own S3 endpoint.
pub fn server_url(store: &ObjectStore, namespace: &str, pod: &str) -> String {
    format!(
        "{}://{}:{S3_PORT}",
        scheme(store),
        server_host(&store.name_any(), namespace, pod)
    )
}

/// Where a server reads the store's TLS Secret (`tls.crt`, `tls.key`, `ca.crt`). Not under
/// `/etc/coffer`, which is the topology ConfigMap's read-only volume.
pub const TLS_DIR: &str = "/etc/coffer-tls";
/// The keys of a kubernetes.io/tls Secret (with cert-manager's `ca.crt`).
pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_KEY_KEY: &str = "tls.key";
pub const TLS_CA_KEY: &str = "ca.crt";
