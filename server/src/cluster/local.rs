//! The topology of a cluster on one machine, for the `local-cluster` harness and tests.

use std::path::Path;

use super::layout::default_set_size;
use super::{PoolSpec, ServerSpec, Topology, TopologyError, TOPOLOGY_VERSION};

impl Topology {
    /// One pool `pool-0` of `servers` servers named `node-0`, `node-1`, … on 127.0.0.1, each
    /// with `drives_per_server` drive folders `BASE/node-I/drive-J`. Server `i` listens for S3
    /// on `base_port + i` and for peer RPC on `base_port + servers + i`, so the S3 ports come
    /// first and in a row. The set size is written out ([`super::default_set_size`]); parity is
    /// left to its default. The cluster id is random.
    ///
    /// Fails when there are no servers or drives, the ports run past 65535, no set size fits
    /// the drive count (e.g. 17 × 1), or `base_dir` is not UTF-8.
    pub fn local_cluster(
        servers: usize,
        drives_per_server: usize,
        base_dir: &Path,
        base_port: u16,
    ) -> Result<Topology, TopologyError> {
        let refuse = |why: String| Err(TopologyError::LocalCluster(why));
        if servers == 0 || drives_per_server == 0 {
            return refuse("needs at least one server with at least one drive".into());
        }
        if base_port == 0 {
            return refuse("needs a fixed base port: peers must know each other's ports".into());
        }
        let last_port = usize::from(base_port) + 2 * servers - 1;
        if last_port > usize::from(u16::MAX) {
            return refuse(format!(
                "{servers} servers need ports {base_port}..={last_port}, past 65535"
            ));
        }
        let drives = servers * drives_per_server;
        let Some(set_size) = default_set_size(drives) else {
            return refuse(format!(
                "{servers} servers × {drives_per_server} drives = {drives} drives, which no \
                 set size from 4 to 16 divides"
            ));
        };
        // Checked above: every port fits in u16.
        let port = |offset: usize| usize::from(base_port) + offset;
        let servers = (0..servers)
            .map(|i| {
                let name = format!("node-{i}");
                ServerSpec {
                    endpoint: format!("127.0.0.1:{}", port(i)),
                    rpc: format!("127.0.0.1:{}", port(servers + i)),
                    drives: (0..drives_per_server)
                        .map(|j| base_dir.join(&name).join(format!("drive-{j}")))
                        .collect(),
                    name,
                }
            })
            .collect();
        let topology = Topology {
            version: TOPOLOGY_VERSION,
            cluster_id: uuid::Uuid::new_v4().to_string(),
            pools: vec![PoolSpec {
                name: "pool-0".into(),
                set_size: Some(set_size),
                parity: None,
                servers,
            }],
        };
        topology.validate()?;
        Ok(topology)
    }
}
