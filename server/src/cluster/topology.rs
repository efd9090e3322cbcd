//! The topology file: its types, parsing, validation and the lookups a server needs at start.
//! The format is documented field by field in `docs/topology.md`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layout::{default_set_size, DriveLocation, PoolLayout, MIN_SET_SIZE};
use super::TopologyError;
use crate::store::erasure::{ErasureGeometry, MAX_SET_SIZE};

/// The topology format version this server reads and writes. A file with another version is
/// refused ([`TopologyError::UnsupportedVersion`]); any change to the format bumps it.
pub const TOPOLOGY_VERSION: u32 = 1;

/// A whole cluster: every pool, server and drive. Build one with [`Topology::parse`],
/// [`Topology::load`] or [`Topology::local_cluster`]; one built by hand must pass
/// [`Topology::validate`] before any other method is trusted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Topology {
    /// Format version, [`TOPOLOGY_VERSION`].
    pub version: u32,
    /// Identifies the deployment; every drive's format file carries it, so a drive of another
    /// cluster is refused.
    pub cluster_id: String,
    /// Pools in creation order. Append-only: a pool's index is its identity.
    pub pools: Vec<PoolSpec>,
}

/// One pool: servers with the same number of drives, cut into erasure sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolSpec {
    /// Unique in the cluster; the operator uses the `ObjectStore` pool name.
    pub name: String,
    /// `E`, drives per erasure set; absent: [`super::default_set_size`] of the pool's drives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_size: Option<usize>,
    /// `M`, parity shards per set; absent: `ErasureGeometry::default_for(E)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parity: Option<usize>,
    /// The pool's servers; a server's index in this list is part of its drives' identity.
    pub servers: Vec<ServerSpec>,
}

/// One server (pod) and its drives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerSpec {
    /// The name given to `coffer-server serve --node NAME`; unique in the cluster (the
    /// operator uses the pod name).
    pub name: String,
    /// `host:port` of the server's S3 listener.
    pub endpoint: String,
    /// `host:port` of the server's peer RPC listener.
    pub rpc: String,
    /// The server's drive folders, as that server sees them.
    pub drives: Vec<PathBuf>,
}

/// A server found by name: where it sits and what the file says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerRef<'a> {
    /// Index of the server's pool in `Topology::pools`.
    pub pool: usize,
    /// Index of the server in its pool's `servers`.
    pub server: usize,
    pub spec: &'a ServerSpec,
}

impl Topology {
    /// Parses and validates a topology document. The version is checked before anything else,
    /// so a file from a newer operator is refused with [`TopologyError::UnsupportedVersion`]
    /// rather than with a confusing schema error.
    pub fn parse(text: &str) -> Result<Topology, TopologyError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(TopologyError::Syntax)?;
        let version = match value.get("version") {
            None => {
                return Err(TopologyError::MissingVersion {
                    supported: TOPOLOGY_VERSION,
                })
            }
            Some(v) => {
                v.as_u64()
                    .filter(|&v| v > 0)
                    .ok_or_else(|| TopologyError::InvalidVersion {
                        found: v.to_string(),
                    })?
            }
        };
        if version != u64::from(TOPOLOGY_VERSION) {
            return Err(TopologyError::UnsupportedVersion {
                found: version,
                supported: TOPOLOGY_VERSION,
            });
        }
        // Parsed again from the text, not from `value`, so schema errors carry line and column.
        let topology: Topology =
            serde_json::from_str(text).map_err(|source| TopologyError::Schema {
                version: TOPOLOGY_VERSION,
                source,
            })?;
        topology.validate()?;
        Ok(topology)
    }

    /// Reads and parses the topology file at `path`.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Topology::parse(&text)
    }

    /// The document as pretty-printed JSON, as [`Topology::parse`] reads it back.
    pub fn to_json(&self) -> Result<String, TopologyError> {
        // Only a drive path that is not UTF-8 can fail here, and validation refuses those.
        serde_json::to_string_pretty(self).map_err(|source| TopologyError::Schema {
            version: self.version,
            source,
        })
    }

    /// Checks every rule of the format (see `docs/topology.md`, "Validation").
    pub fn validate(&self) -> Result<(), TopologyError> {
        if self.version != TOPOLOGY_VERSION {
            return Err(TopologyError::UnsupportedVersion {
                found: self.version.into(),
                supported: TOPOLOGY_VERSION,
            });
        }
        if self.cluster_id.trim().is_empty() {
            return Err(TopologyError::EmptyClusterId);
        }
        if self.pools.is_empty() {
            return Err(TopologyError::NoPools);
        }
        let mut pool_names = HashSet::new();
        let mut server_names = HashSet::new();
        // Lower-cased address → server using it (DNS names are case-insensitive).
        let mut addresses: HashMap<String, &str> = HashMap::new();
        for pool in &self.pools {
            check_name("pool", &pool.name)?;
            if !pool_names.insert(pool.name.as_str()) {
                return Err(TopologyError::DuplicatePool(pool.name.clone()));
            }
            for server in &pool.servers {
                check_name("server", &server.name)?;
                if !server_names.insert(server.name.as_str()) {
                    return Err(TopologyError::DuplicateServer {
                        server: server.name.clone(),
                    });
                }
                for (field, address) in [("endpoint", &server.endpoint), ("rpc", &server.rpc)] {
                    check_address(&server.name, field, address)?;
                    if let Some(first) =
                        addresses.insert(address.to_ascii_lowercase(), &server.name)
                    {
                        return Err(TopologyError::DuplicateAddress {
                            address: address.clone(),
                            first: first.to_string(),
                            second: server.name.clone(),
                        });
                    }
                }
                check_drives(server)?;
            }
            pool.layout()?;
        }
        Ok(())
    }

    /// The server named `node` (the `--node` argument).
    pub fn server(&self, node: &str) -> Result<ServerRef<'_>, TopologyError> {
        for (pool_index, pool) in self.pools.iter().enumerate() {
            if let Some(server_index) = pool.servers.iter().position(|s| s.name == node) {
                return Ok(ServerRef {
                    pool: pool_index,
                    server: server_index,
                    spec: &pool.servers[server_index],
                });
            }
        }
        let known: Vec<&str> = self
            .pools
            .iter()
            .flat_map(|p| p.servers.iter().map(|s| s.name.as_str()))
            .collect();
        Err(TopologyError::UnknownNode {
            node: node.to_string(),
            known: known.join(", "),
        })
    }

    /// Where drive `drive` of server `node` sits: the pool, set and index within the set that
    /// its format file must record. Paths compare component-wise (`/data/0/` is `/data/0`).
    pub fn drive_identity(&self, node: &str, drive: &Path) -> Result<DriveLocation, TopologyError> {
        let server = self.server(node)?;
        let drive_index = server
            .spec
            .drives
            .iter()
            .position(|d| d.as_path() == drive)
            .ok_or_else(|| TopologyError::UnknownDrive {
                node: node.to_string(),
                drive: drive.to_path_buf(),
            })?;
        let layout = self.pools[server.pool].layout()?;
        let (set, index) = layout
            .locate(server.server, drive_index)
            .expect("a listed drive of a listed server of a validated pool has a place in a set");
        Ok(DriveLocation {
            pool: server.pool,
            set,
            index,
        })
    }

    /// Every drive of server `node`, in the file's order, with its place in the cluster.
    pub fn local_drives(&self, node: &str) -> Result<Vec<(PathBuf, DriveLocation)>, TopologyError> {
        let server = self.server(node)?;
        server
            .spec
            .drives
            .iter()
            .map(|d| Ok((d.clone(), self.drive_identity(node, d)?)))
            .collect()
    }

    /// Checks that `next` may replace `self` while the cluster runs: same cluster id, pools
    /// only appended, and every existing pool's name, geometry, servers (by name, in order)
    /// and drives unchanged. Endpoints and RPC addresses may change. `next` must be valid.
    pub fn check_update(&self, next: &Topology) -> Result<(), TopologyError> {
        let refuse = |why: String| Err(TopologyError::IncompatibleUpdate(why));
        if next.cluster_id != self.cluster_id {
            return refuse(format!(
                "clusterId changed from {:?} to {:?}",
                self.cluster_id, next.cluster_id
            ));
        }
        if next.pools.len() < self.pools.len() {
            return refuse(format!(
                "pools are append-only: {} pools became {}",
                self.pools.len(),
                next.pools.len()
            ));
        }
        for (old, new) in self.pools.iter().zip(&next.pools) {
            if old.name != new.name {
                return refuse(format!(
                    "pool {:?} was replaced by {:?}: pools are append-only",
                    old.name, new.name
                ));
            }
            let (old_layout, new_layout) = (old.layout()?, new.layout()?);
            if old_layout != new_layout {
                return refuse(format!(
                    "pool {:?} geometry changed ({} servers × {} drives, sets of {} as {} → \
                     {} servers × {} drives, sets of {} as {}): pool geometry is immutable",
                    old.name,
                    old_layout.servers,
                    old_layout.drives_per_server,
                    old_layout.set_size,
                    old_layout.geometry,
                    new_layout.servers,
                    new_layout.drives_per_server,
                    new_layout.set_size,
                    new_layout.geometry,
                ));
            }
            for (a, b) in old.servers.iter().zip(&new.servers) {
                if a.name != b.name || a.drives != b.drives {
                    return refuse(format!(
                        "server {:?} of pool {:?} was renamed or had its drives changed: \
                         servers and drives of a pool are immutable",
                        a.name, old.name
                    ));
                }
            }
        }
        Ok(())
    }
}

impl PoolSpec {
    /// Servers × drives, the set size and the parity of this pool with defaults applied, after
    /// checking them: every server has the same (non-zero) number of drives, the set size
    /// divides the pool's drive count and is 4–16 (or all drives of a pool of fewer than 4),
    /// and parity is at most half the set size.
    pub fn layout(&self) -> Result<PoolLayout, TopologyError> {
        let first = self
            .servers
            .first()
            .ok_or_else(|| TopologyError::NoServers {
                pool: self.name.clone(),
            })?;
        let drives_per_server = first.drives.len();
        for server in &self.servers {
            if server.drives.is_empty() {
                return Err(TopologyError::NoDrives {
                    pool: self.name.clone(),
                    server: server.name.clone(),
                });
            }
            if server.drives.len() != drives_per_server {
                return Err(TopologyError::UnevenDrives {
                    pool: self.name.clone(),
                    server: server.name.clone(),
                    drives: server.drives.len(),
                    expected: drives_per_server,
                });
            }
        }
        let drives = self.servers.len() * drives_per_server;
        let set_size = match self.set_size {
            Some(e) => {
                let invalid = |reason| TopologyError::InvalidSetSize {
                    pool: self.name.clone(),
                    set_size: e,
                    drives,
                    reason,
                };
                if drives < MIN_SET_SIZE {
                    if e != drives {
                        return Err(invalid(
                            "a pool of fewer than 4 drives forms one set of all its drives",
                        ));
                    }
                } else if !(MIN_SET_SIZE..=MAX_SET_SIZE).contains(&e) {
                    return Err(invalid("setSize must be between 4 and 16"));
                } else if drives % e != 0 {
                    return Err(invalid("setSize must divide the pool's drive count"));
                }
                e
            }
            None => default_set_size(drives).ok_or_else(|| TopologyError::NoSetSize {
                pool: self.name.clone(),
                drives,
            })?,
        };
        let invalid_parity = |parity| TopologyError::InvalidParity {
            pool: self.name.clone(),
            parity,
            set_size,
        };
        let geometry = match self.parity {
            Some(m) if m > set_size / 2 => return Err(invalid_parity(m)),
            Some(m) => ErasureGeometry::new(set_size - m, m),
            None => ErasureGeometry::default_for(set_size),
        }
        .map_err(|_| invalid_parity(self.parity.unwrap_or(0)))?;
        Ok(PoolLayout {
            servers: self.servers.len(),
            drives_per_server,
            set_size,
            geometry,
        })
    }
}

/// Pool and server names: non-empty, at most 253 bytes, letters, digits, `-`, `.` and `_`
/// (Kubernetes object names fit), so they are safe in logs, metrics labels and file names.
fn check_name(what: &'static str, name: &str) -> Result<(), TopologyError> {
    let invalid = |reason| TopologyError::InvalidName {
        what,
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > 253 {
        return Err(invalid("it is longer than 253 bytes"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(invalid(
            "only letters, digits, '-', '.' and '_' are allowed",
        ));
    }
    Ok(())
}

/// `host:port` with a non-empty host (a DNS name, an IPv4 address or a bracketed IPv6
/// address) and a port from 1 to 65535.
fn check_address(server: &str, field: &'static str, address: &str) -> Result<(), TopologyError> {
    let invalid = |reason| TopologyError::InvalidAddress {
        server: server.to_string(),
        field,
        address: address.to_string(),
        reason,
    };
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected host:port"))?;
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(invalid("expected host:port with a host name or address"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(invalid(
            "an IPv6 address is written in brackets: [::1]:9000",
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(invalid("the port must be a number from 1 to 65535")),
    }
}

/// Drive paths: non-empty, UTF-8 (the file is JSON) and listed once per server.
fn check_drives(server: &ServerSpec) -> Result<(), TopologyError> {
    let mut seen = HashSet::new();
    for drive in &server.drives {
        let invalid = |reason| TopologyError::InvalidDrive {
            server: server.name.clone(),
            drive: drive.clone(),
            reason,
        };
        match drive.to_str() {
            None => return Err(invalid("it is not UTF-8")),
            Some("") => return Err(invalid("it is empty")),
            Some(_) => {}
        }
        if !seen.insert(drive.as_path()) {
            return Err(TopologyError::DuplicateDrive {
                server: server.name.clone(),
                drive: drive.clone(),
            });
        }
    }
    Ok(())
}
