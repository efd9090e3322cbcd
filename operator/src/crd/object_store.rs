//! `ObjectStore`: a Coffer cluster — pools of `coffer-server` pods with their drives.
// Several `printcolumn(…)` arguments share `type_ = "string"`, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, PersistentVolumeClaimSpec, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::Condition;

#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "coffer.dev",
    version = "v1alpha1",
    kind = "ObjectStore",
    plural = "objectstores",
    shortname = "cos",
    category = "coffer",
    namespaced,
    status = "ObjectStoreStatus",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Servers", type_ = "string", json_path = ".status.servers", description = "ready/desired servers"),
    printcolumn(name = "Drives", type_ = "integer", json_path = ".status.drives.online", description = "drives online"),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.endpoint"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 30").message("an ObjectStore name has at most 30 characters (pod names derive from it)"),
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.erasure) && has(self.erasure.parity)) == (has(oldSelf.erasure) && has(oldSelf.erasure.parity)) && (!(has(self.erasure) && has(self.erasure.parity)) || self.erasure.parity == oldSelf.erasure.parity)",
        "message": "erasure.parity is immutable: the drives of existing sets store it"
    },
    {
        "rule": "has(self.tls) == has(oldSelf.tls)",
        "message": "tls cannot be added to or removed from an existing store: servers with and without TLS cannot reach each other, so a rollout one server at a time would never finish"
    }
]))]
pub struct ObjectStoreSpec {
    /// The `coffer-server` image. Changing it rolls the servers one at a time. Default: the
    /// operator's server image, `ghcr.io/coffer-dev/coffer-server` of the operator's own
    /// version (the chart's `serverImage`), so upgrading the operator upgrades such stores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,
    /// Pull policy of the image (Always, IfNotPresent, Never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// The pools, in creation order. Append-only: a pool's index is part of its drives'
    /// identity, so pools are never removed, renamed or reordered.
    #[schemars(length(min = 1, max = 16))]
    #[schemars(extend(
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["name"],
        "x-kubernetes-validations" = [
            {
                "rule": "size(self) >= size(oldSelf)",
                "message": "pools are append-only: a pool cannot be removed"
            },
            // Names only: a rule on positions (`indexOf` over mapped names) is refused by
            // kube-apiserver as over 100x the CEL cost budget, and two-variable
            // comprehensions need Kubernetes 1.33. A reordering passes this rule but not the
            // operator, whose `Topology::check_update` compares pools position by position
            // (the store turns Degraded instead).
            {
                "rule": "oldSelf.all(p, self.exists(q, q.name == p.name))",
                "message": "pools are append-only: existing pools cannot be removed or renamed; add new pools at the end"
            }
        ]
    ))]
    pub pools: Vec<Pool>,
    /// Erasure coding of every pool's sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure: Option<ErasureSpec>,
    /// Where the root credential lives; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_credentials: Option<RootCredentials>,
    /// HTTPS for S3 and the admin API, and TLS between the servers (peer RPC). Set when the
    /// store is created; it cannot be added or removed later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// The client Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,
    /// How an image change is rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_strategy: Option<UpgradeStrategy>,
    /// What happens to the volume claims (the data) when the ObjectStore is deleted.
    #[serde(default)]
    pub storage_deletion_policy: StorageDeletionPolicy,
    /// Region reported to clients and required in signatures (default us-east-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Who may use the store through Bucket and AccessKey resources. Default: resources in
    /// the store's own namespace only, and no adoption of existing buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<StoreAccess>,
}

/// Which namespaces may point Bucket and AccessKey resources at a store (as Rook's
/// `allowUsersInNamespaces`), and whether a Bucket may take over a bucket it did not create.
/// A resource from another namespace is refused with `NamespaceNotAllowed`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreAccess {
    /// Namespaces allowed besides the store's own; `*` allows every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_namespaces: Vec<String>,
    /// Namespaces whose labels match are allowed too. Needs the operator's cluster-wide
    /// install (reading a Namespace is a cluster-scoped right).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Whether a Bucket may adopt a bucket that exists on the store and that no Bucket
    /// resource created (made through S3 or the admin API, or left by a Bucket deleted with
    /// `deletionPolicy: Retain`). Default false: such a Bucket is refused with `BucketExists`,
    /// so no namespace can take over (and with `deletionPolicy: Delete`, delete) data it did
    /// not create.
    #[serde(default)]
    pub allow_bucket_adoption: bool,
}

/// One pool: `servers` pods with `volumesPerServer` volumes each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.servers == oldSelf.servers && self.volumesPerServer == oldSelf.volumesPerServer",
        "message": "pool geometry (servers, volumesPerServer) is immutable: append a pool to grow the store"
    }
]))]
pub struct Pool {
    /// Unique in the store; part of the StatefulSet and pod names.
    #[schemars(
        length(min = 1, max = 20),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Number of servers (pods).
    #[schemars(range(min = 1, max = 64))]
    pub servers: i32,
    /// Drives (volumes) per server.
    #[schemars(range(min = 1, max = 16))]
    pub volumes_per_server: i32,
    /// Template of every drive's PersistentVolumeClaim. Fixed once the pool exists (a
    /// StatefulSet's claim templates cannot change; the store turns Degraded if asked to).
    /// No CEL rule says so: comparing whole claim specs exceeds the API server's CEL cost
    /// budget.
    pub volume_claim_template: PersistentVolumeClaimSpec,
    /// CPU and memory of each server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Where the pool's pods may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<Scheduling>,
}

/// Placement of a pool's pods.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scheduling {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Replaces the default spread (one server per node preferred, zones balanced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// Erasure coding settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErasureSpec {
    /// Parity shards per erasure set (up to this many drives of a set may fail). Absent: the
    /// default of docs/topology.md for each pool's set size. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 8))]
    pub parity: Option<i32>,
}

/// A reference to a Secret in the store's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The root credential: a Secret with keys `COFFER_ROOT_USER` and `COFFER_ROOT_PASSWORD`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RootCredentials {
    /// The Secret; generated under this name when it does not exist (never overwritten).
    pub secret_ref: SecretRef,
}

/// The certificate of every server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// A Secret in the store's namespace with `tls.crt`, `tls.key` and `ca.crt` (type
    /// kubernetes.io/tls, as a cert-manager Certificate writes it). The certificate must name
    /// the client Service (`<store>.<namespace>.svc`) and every server
    /// (`*.<store>-hl.<namespace>.svc`); `ca.crt` is the CA servers trust for each other and
    /// the operator trusts for the admin API. A new `tls.crt`/`tls.key` is served without a
    /// restart; a new `ca.crt` is trusted once the servers restart.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
}

/// The client Service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// ClusterIP (default), NodePort or LoadBalancer.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(ClusterIP|NodePort|LoadBalancer)$"))]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum UpgradeStrategyType {
    /// The operator replaces one server at a time and waits for the store to be whole
    /// (all drives online, nothing healing) before the next.
    #[default]
    RollingOneAtATime,
    /// The operator updates the StatefulSets but never deletes a pod; an administrator does.
    OnDelete,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    #[serde(default, rename = "type")]
    pub type_: UpgradeStrategyType,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StorageDeletionPolicy {
    /// Deleting the ObjectStore keeps the volume claims and the generated Secrets, so a store
    /// created again under the same name finds its data.
    #[default]
    Retain,
    /// Deleting the ObjectStore deletes the volume claims (the data) and generated Secrets.
    Delete,
}

/// Observed state of a store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStoreStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The S3 endpoint for clients inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `ready/desired` servers over all pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<String>,
    #[serde(default)]
    pub pools: Vec<PoolStatus>,
    #[serde(default)]
    pub drives: DriveCounts,
    /// Drives of a set that must be online for a write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_quorum: Option<i32>,
    /// Provisioned capacity: the sum of every drive's requested storage, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_bytes: Option<i64>,
    /// Bytes stored in current object versions, as the admin API counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_bytes: Option<i64>,
    /// The image every server runs once the rollout is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_image: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatus {
    pub name: String,
    pub servers: i32,
    pub ready_servers: i32,
    /// Whether the pool is part of the published topology yet.
    pub in_topology: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriveCounts {
    pub total: i32,
    pub online: i32,
    pub offline: i32,
    pub healing: i32,
}

impl ObjectStoreSpec {
    pub fn storage_deletion_policy(&self) -> StorageDeletionPolicy {
        self.storage_deletion_policy
    }

    pub fn region(&self) -> &str {
        self.region.as_deref().unwrap_or("us-east-1")
    }

    /// Whether the servers speak TLS (S3, admin API, peer RPC).
    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether adoption of existing buckets is allowed (`access.allowBucketAdoption`).
    pub fn allows_adoption(&self) -> bool {
        self.access
            .as_ref()
            .is_some_and(|a| a.allow_bucket_adoption)
    }

    pub fn upgrade(&self) -> UpgradeStrategyType {
        self.upgrade_strategy
            .as_ref()
            .map(|u| u.type_)
            .unwrap_or_default()
    }
}
