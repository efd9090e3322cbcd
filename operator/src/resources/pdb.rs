//! One PodDisruptionBudget per pool, so voluntary evictions (node drains) never take more
//! servers than every erasure set of the pool can lose while still accepting writes.

use coffer_server::cluster::PoolLayout;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{statefulset_name, store_meta, POOL_LABEL, STORE_LABEL};
use crate::crd::{ObjectStore, Pool};

/// How many servers of a pool may be down at once with every set keeping its write quorum:
/// a set tolerates `E − writeQuorum` lost drives, and one server holds at most `⌈E/S⌉` drives
/// of a set. 0 for a pool without parity (every eviction would stop writes).
pub fn tolerated_servers(layout: &PoolLayout) -> i32 {
    let spare = layout.set_size - layout.geometry.write_quorum();
    let per_server = layout.set_size.div_ceil(layout.servers);
    (spare / per_server) as i32
}

pub fn pod_disruption_budget(
    store: &ObjectStore,
    pool: &Pool,
    layout: &PoolLayout,
) -> PodDisruptionBudget {
    let name = store.name_any();
    PodDisruptionBudget {
        metadata: store_meta(
            store,
            statefulset_name(&name, &pool.name),
            &[(POOL_LABEL, &pool.name)],
        ),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(tolerated_servers(layout))),
            selector: Some(LabelSelector {
                match_labels: Some(
                    [
                        (STORE_LABEL.to_string(), name.clone()),
                        (POOL_LABEL.to_string(), pool.name.clone()),
                    ]
                    .into(),
                ),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
