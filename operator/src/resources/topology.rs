//! The topology file every server reads, built with the server's own
//! `coffer_server::cluster::Topology` so its schema can never drift from what servers parse,
//! and the ConfigMap carrying it.

use std::collections::BTreeMap;

use coffer_server::cluster::{
    PoolLayout, PoolSpec, ServerSpec, Topology, TopologyError, TOPOLOGY_VERSION,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;

use super::{
    drive_path, pod_name, server_host, store_meta, topology_config_map_name, RPC_PORT, S3_PORT,
};
use crate::crd::{ObjectStore, Pool};

/// The ConfigMap key holding the topology.
pub const TOPOLOGY_KEY: &str = "topology.json";
/// Where servers find it (the ConfigMap is mounted as a folder, so updates reach running pods).
pub const TOPOLOGY_FILE: &str = "/etc/coffer/topology.json";

fn pool_spec(store: &ObjectStore, pool: &Pool) -> PoolSpec {
    let name = store.name_any();
    let namespace = store.namespace().unwrap_or_default();
    PoolSpec {
        name: pool.name.clone(),
        set_size: None,
        parity: store
            .spec
            .erasure
            .as_ref()
            .and_then(|e| e.parity)
            .map(|p| p.max(0) as usize),
        servers: (0..pool.servers)
            .map(|i| {
                let pod = pod_name(&name, &pool.name, i);
                let host = server_host(&name, &namespace, &pod);
                ServerSpec {
                    name: pod,
                    endpoint: format!("{host}:{S3_PORT}"),
                    rpc: format!("{host}:{RPC_PORT}"),
                    drives: (0..pool.volumes_per_server)
                        .map(|j| drive_path(j).into())
                        .collect(),
                }
            })
            .collect(),
    }
}

/// The erasure geometry of `pool` (set size and parity with defaults applied), or why the
/// pool cannot be laid out (e.g. 17 drives, or a parity above half the set size).
pub fn pool_layout(store: &ObjectStore, pool: &Pool) -> Result<PoolLayout, TopologyError> {
    pool_spec(store, pool).layout()
}

/// The topology of the first `pools` pools of `store` under `cluster_id`, validated.
pub fn topology(
    store: &ObjectStore,
    cluster_id: &str,
    pools: usize,
) -> Result<Topology, TopologyError> {
    let topology = Topology {
        version: TOPOLOGY_VERSION,
        cluster_id: cluster_id.to_string(),
        pools: store
            .spec
            .pools
            .iter()
            .take(pools)
            .map(|p| pool_spec(store, p))
            .collect(),
    };
    topology.validate()?;
    Ok(topology)
}

/// The ConfigMap `<store>-topology` holding `topology` as `topology.json`. It carries the
/// cluster id every drive's format file names, so it has no owner reference: with
/// `storageDeletionPolicy: Retain` it outlives the store with the volume claims, and a store
/// created again under the same name adopts it (and its id) instead of minting a new one
/// that would make the servers refuse every drive as foreign. `Delete` removes it.
pub fn topology_config_map(
    store: &ObjectStore,
    topology: &Topology,
) -> Result<ConfigMap, TopologyError> {
    let mut metadata = store_meta(store, topology_config_map_name(&store.name_any()), &[]);
    metadata.owner_references = None;
    Ok(ConfigMap {
        metadata,
        data: Some(BTreeMap::from([(
            TOPOLOGY_KEY.to_string(),
            topology.to_json()?,
        )])),
        ..ConfigMap::default()
    })
}
