//! One StatefulSet per pool: `servers` pods of `coffer-server`, each with `volumesPerServer`
//! volume claims (one per drive), probes on the server's health endpoints, spread over nodes
//! and zones, running as non-root. Its update strategy is `OnDelete`: the operator itself
//! replaces servers one at a time when the store is whole (see `controller::rollout`). With
//! `spec.tls` the store's TLS Secret is mounted read-only and serves S3, the admin API and
//! peer RPC; the probes then use HTTPS.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, ObjectFieldSelector, PersistentVolumeClaim, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecretKeySelector, SecretVolumeSource,
    SecurityContext, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{
    cluster_secret_name, drive_path, drive_volume_name, headless_service_name, root_secret_name,
    statefulset_name, store_labels, store_meta, topology_config_map_name, CLUSTER_SECRET_KEY,
    POOL_LABEL, ROOT_PASSWORD_KEY, ROOT_USER_KEY, RPC_PORT, S3_PORT, STORE_LABEL, TLS_CA_KEY,
    TLS_CERT_KEY, TLS_DIR, TLS_KEY_KEY, TOPOLOGY_FILE, TOPOLOGY_KEY,
};
use crate::crd::{ObjectStore, Pool, StorageDeletionPolicy};

/// The server's liveness and readiness paths (`coffer_server::http::health`).
pub const LIVE_PATH: &str = coffer_server::http::health::LIVE;
pub const READY_PATH: &str = coffer_server::http::health::READY;
/// The unprivileged user and group the server runs as.
pub const SERVER_UID: i64 = 65532;

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The name of the volume holding the store's TLS Secret.
const TLS_VOLUME: &str = "tls";

/// A probe of the S3 port; `HTTPS` with TLS (the kubelet does not verify the certificate).
fn probe(path: &str, period: i32, failures: i32, tls: bool) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("s3".into()),
            scheme: Some(if tls { "HTTPS" } else { "HTTP" }.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn pool_selector(store: &str, pool: &str) -> BTreeMap<String, String> {
    [
        (STORE_LABEL.to_string(), store.to_string()),
        (POOL_LABEL.to_string(), pool.to_string()),
    ]
    .into()
}

/// One server per node where possible, and pools balanced over zones; both soft, so a small
/// cluster still schedules every server.
fn default_spread(store: &str, pool: &str) -> Vec<TopologySpreadConstraint> {
    ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
        .into_iter()
        .map(|key| TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(pool_selector(store, pool)),
                ..LabelSelector::default()
            }),
            ..TopologySpreadConstraint::default()
        })
        .collect()
}

/// The `coffer-server serve` arguments of a server of `pool`: the topology file, its node
/// name (the pod name, expanded by the kubelet from `POD_NAME`), the listener and its drives.
pub fn server_args(store: &ObjectStore, pool: &Pool) -> Vec<String> {
    let mut args: Vec<String> = [
        "serve",
        "--topology",
        TOPOLOGY_FILE,
        "--node",
        "$(POD_NAME)",
        "--address",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    args.push(format!("0.0.0.0:{S3_PORT}"));
    args.push("--region".into());
    args.push(store.spec.region().into());
    if store.spec.tls_enabled() {
        // The same certificate serves S3 and peer RPC; peers are trusted by the Secret's CA.
        for (flag, key) in [
            ("--tls-cert", TLS_CERT_KEY),
            ("--tls-key", TLS_KEY_KEY),
            ("--tls-ca", TLS_CA_KEY),
        ] {
            args.push(flag.into());
            args.push(format!("{TLS_DIR}/{key}"));
        }
    }
    args.extend((0..pool.volumes_per_server).map(drive_path));
    args
}

/// The StatefulSet of one pool, its servers running `image` (the store's, or the operator's
/// default when the store names none).
pub fn statefulset(store: &ObjectStore, pool: &Pool, image: &str) -> StatefulSet {
    let name = store.name_any();
    let mut labels = store_labels(store);
    labels.insert(POOL_LABEL.into(), pool.name.clone());
    let scheduling = pool.scheduling.clone().unwrap_or_default();
    let root = root_secret_name(store);

    let mut mounts: Vec<VolumeMount> = (0..pool.volumes_per_server)
        .map(|j| VolumeMount {
            name: drive_volume_name(j),
            mount_path: drive_path(j),
            ..VolumeMount::default()
        })
        .collect();
    mounts.push(VolumeMount {
        name: "topology".into(),
        mount_path: "/etc/coffer".into(),
        read_only: Some(true),
        ..VolumeMount::default()
    });
    let tls = store.spec.tls.as_ref();
    if tls.is_some() {
        mounts.push(VolumeMount {
            name: TLS_VOLUME.into(),
            mount_path: TLS_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }

    let container = Container {
        name: "coffer-server".into(),
        image: Some(image.to_string()),
        image_pull_policy: store.spec.image_pull_policy.clone(),
        args: Some(server_args(store, pool)),
        env: Some(vec![
            EnvVar {
                name: "POD_NAME".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.name".into(),
                        ..ObjectFieldSelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            },
            secret_env(ROOT_USER_KEY, &root, ROOT_USER_KEY),
            secret_env(ROOT_PASSWORD_KEY, &root, ROOT_PASSWORD_KEY),
            secret_env(
                CLUSTER_SECRET_KEY,
                &cluster_secret_name(&name),
                CLUSTER_SECRET_KEY,
            ),
        ]),
        ports: Some(vec![
            ContainerPort {
                name: Some("s3".into()),
                container_port: S3_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("rpc".into()),
                container_port: RPC_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
        ]),
        // Opening RocksDB on big drives can take a while: the startup probe allows 5 minutes
        // before liveness starts counting.
        startup_probe: Some(probe(LIVE_PATH, 5, 60, tls.is_some())),
        liveness_probe: Some(probe(LIVE_PATH, 10, 6, tls.is_some())),
        readiness_probe: Some(probe(READY_PATH, 5, 3, tls.is_some())),
        resources: pool.resources.clone(),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    };

    let pod = PodSpec {
        containers: vec![container],
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(SERVER_UID),
            run_as_group: Some(SERVER_UID),
            fs_group: Some(SERVER_UID),
            fs_group_change_policy: Some("OnRootMismatch".into()),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        termination_grace_period_seconds: Some(60),
        topology_spread_constraints: Some(
            scheduling
                .topology_spread_constraints
                .clone()
                .unwrap_or_else(|| default_spread(&name, &pool.name)),
        ),
        node_selector: (!scheduling.node_selector.is_empty())
            .then(|| scheduling.node_selector.clone()),
        tolerations: (!scheduling.tolerations.is_empty()).then(|| scheduling.tolerations.clone()),
        affinity: scheduling.affinity.clone(),
        priority_class_name: scheduling.priority_class_name.clone(),
        volumes: Some(
            std::iter::once(Volume {
                name: "topology".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: topology_config_map_name(&name),
                    items: Some(vec![KeyToPath {
                        key: TOPOLOGY_KEY.into(),
                        path: TOPOLOGY_KEY.into(),
                        ..KeyToPath::default()
                    }]),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            })
            .chain(tls.map(|tls| {
                Volume {
                    name: TLS_VOLUME.into(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(tls.secret_name.clone()),
                        items: Some(
                            [TLS_CERT_KEY, TLS_KEY_KEY, TLS_CA_KEY]
                                .into_iter()
                                .map(|key| KeyToPath {
                                    key: key.into(),
                                    path: key.into(),
                                    ..KeyToPath::default()
                                })
                                .collect(),
                        ),
                        // Readable by the server's group (fsGroup) only: the key is private.
                        default_mode: Some(0o440),
                        ..SecretVolumeSource::default()
                    }),
                    ..Volume::default()
                }
            }))
            .collect(),
        ),
        ..PodSpec::default()
    };

    let claims = (0..pool.volumes_per_server)
        .map(|j| PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(drive_volume_name(j)),
                labels: Some(pool_selector(&name, &pool.name)),
                ..ObjectMeta::default()
            },
            spec: Some(pool.volume_claim_template.clone()),
            ..PersistentVolumeClaim::default()
        })
        .collect();

    let when_deleted = match store.spec.storage_deletion_policy() {
        StorageDeletionPolicy::Retain => "Retain",
        StorageDeletionPolicy::Delete => "Delete",
    };

    StatefulSet {
        metadata: store_meta(
            store,
            statefulset_name(&name, &pool.name),
            &[(POOL_LABEL, &pool.name)],
        ),
        spec: Some(StatefulSetSpec {
            replicas: Some(pool.servers),
            service_name: Some(headless_service_name(&name)),
            // Every server starts at once: none is useful before a quorum of its peers runs.
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..StatefulSetUpdateStrategy::default()
            }),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(when_deleted.into()),
                    when_scaled: Some("Retain".into()),
                },
            ),
            selector: LabelSelector {
                match_labels: Some(pool_selector(&name, &pool.name)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            volume_claim_templates: Some(claims),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}
