//! One server of a cluster: its store assembled from the topology (its own drives local, the
//! other servers' drives over peer RPC), its peers, and the notices it sends them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;

use super::peer::{LockTable, Notice, PeerClient, PeerService, QuorumLocker, RemoteDrive};
use super::Topology;
use crate::store::drive::{DriveFormat, LocalDrive, DRIVE_FORMAT_V1};
use crate::store::erasure::ErasureCodec;
use crate::store::set::{DriveSet, Slot};
use crate::store::{Store, StoreError};

/// This server's place in the cluster and its links to the others.
pub struct Cluster {
    pub node: String,
    pub peers: Vec<Arc<PeerClient>>,
    pub locks: Arc<LockTable>,
    /// (set, slot in the set) of this server's drives, by the drive's index in its `drives`
    /// list.
    pub local_slots: Vec<(usize, usize)>,
    /// Local drives that were found empty, as (set, slot): they are healed from the others.
    pub fresh: Vec<(usize, usize)>,
    /// This server's drive folders, by index.
    pub drive_paths: Vec<PathBuf>,
}

fn config(why: impl Into<String>) -> StoreError {
    StoreError::Config(why.into())
}

/// Opens this server's part of the cluster described by `topology`: checks or writes the
/// format of its drives and assembles the erasure set with the peers' drives, reached over
/// TLS with `tls` (the client side of [`super::peer::PeerTls`]).
pub fn open(
    topology: &Topology,
    node: &str,
    secret: Arc<Vec<u8>>,
    tls: Option<Arc<rustls::ClientConfig>>,
    region: &str,
    lock_lease: Duration,
) -> Result<(Store, Cluster), StoreError> {
    let me = topology.server(node).map_err(|e| config(e.to_string()))?;
    // A peer client for every other server of every pool: a key may live in any pool.
    let peers: Vec<Vec<Option<Arc<PeerClient>>>> = topology
        .pools
        .iter()
        .enumerate()
        .map(|(p, pool)| {
            pool.servers
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    (p != me.pool || i != me.server).then(|| {
                        PeerClient::new(&s.name, &s.rpc, node, secret.clone(), tls.clone())
                    })
                })
                .collect()
        })
        .collect();
    let mut local_slots = vec![(usize::MAX, usize::MAX); me.spec.drives.len()];
    let mut fresh = Vec::new();
    let mut pools = Vec::with_capacity(topology.pools.len());
    // Sets are numbered across pools, pool after pool (the store's `sets`).
    let mut set_base = 0;
    for (pool_index, pool) in topology.pools.iter().enumerate() {
        let layout = pool.layout().map_err(|e| config(e.to_string()))?;
        let geometry = layout.geometry;
        let codec = (geometry.total() > 1)
            .then(|| ErasureCodec::with_default_block_size(geometry))
            .transpose()
            .map_err(|e| config(e.to_string()))?;
        let mut sets = Vec::new();
        for set_layout in layout.sets() {
            let set_index = set_layout.index;
            let mut slots = Vec::with_capacity(set_layout.drives.len());
            for (i, pos) in set_layout.drives.iter().enumerate() {
                let path = &pool.servers[pos.server].drives[pos.drive];
                match &peers[pool_index][pos.server] {
                    None => {
                        let wanted = DriveFormat {
                            format: DRIVE_FORMAT_V1,
                            deployment_id: topology.cluster_id.clone(),
                            pool: pool_index as u32,
                            set: set_index as u32,
                            drive: i as u32,
                            set_size: (geometry.total() > 1).then_some(geometry.total() as u32),
                            parity: (geometry.parity > 0).then_some(geometry.parity as u32),
                        };
                        let drive = open_local_drive(path, &wanted, &mut fresh, set_base)?;
                        let meta = drive.meta_path();
                        slots.push(Some(Slot::open(Arc::new(drive), &meta)?));
                        local_slots[pos.drive] = (set_base + set_index, i);
                    }
                    Some(peer) => {
                        let remote = Arc::new(RemoteDrive::new(peer.clone(), pos.drive, path));
                        slots.push(Some(Slot::remote(
                            Arc::new(super::peer::SharedRemoteDrive(remote.clone())),
                            remote,
                        )));
                    }
                }
            }
            sets.push(Arc::new(DriveSet::assemble(slots, geometry, codec)));
        }
        set_base += sets.len();
        pools.push(sets);
    }
    let peers: Vec<Arc<PeerClient>> = peers.into_iter().flatten().flatten().collect();
    // Votes start one lease from now (see `LockTable`): the ones given before a restart end.
    let locks = Arc::new(LockTable::new(
        lock_lease,
        crate::store::stamp::process_clock(),
    ));
    let locker = (!peers.is_empty()).then(|| {
        Arc::new(QuorumLocker {
            table: locks.clone(),
            peers: peers.clone(),
            clock: crate::store::stamp::process_clock(),
        }) as Arc<dyn crate::store::KeyLocker>
    });
    let store = Store::assemble(pools, locker, region);
    Ok((
        store,
        Cluster {
            node: node.to_string(),
            peers,
            locks,
            local_slots,
            fresh,
            drive_paths: me.spec.drives.clone(),
        },
    ))
}

/// Opens one of this server's drives, checking its format file against the one the topology
/// gives it (`wanted`), or writing it on an empty drive (then noted in `fresh` as (set across
/// pools, slot) to be healed).
fn open_local_drive(
    path: &std::path::Path,
    wanted: &DriveFormat,
    fresh: &mut Vec<(usize, usize)>,
    set_base: usize,
) -> Result<LocalDrive, StoreError> {
    std::fs::create_dir_all(path)?;
    let drive = LocalDrive::open(path)?;
    match drive.read_format()? {
        Some(f) if f == *wanted => {}
        Some(f) if f.deployment_id != wanted.deployment_id => {
            return Err(config(format!(
                "drive {} belongs to another cluster ({}), this one is {}: refusing to use it",
                path.display(),
                f.deployment_id,
                wanted.deployment_id
            )))
        }
        Some(f) => {
            return Err(config(format!(
                "drive {} was pool {} set {} drive {} of {} (parity {}); the topology makes it \
                 pool {} set {} drive {} of {} (parity {})",
                path.display(),
                f.pool,
                f.set,
                f.drive,
                f.set_size.unwrap_or(1),
                f.parity.unwrap_or(0),
                wanted.pool,
                wanted.set,
                wanted.drive,
                wanted.set_size.unwrap_or(1),
                wanted.parity.unwrap_or(0)
            )))
        }
        None => {
            drive.write_format(wanted)?;
            fresh.push((set_base + wanted.set as usize, wanted.drive as usize));
        }
    }
    Ok(drive)
}

impl Cluster {
    /// The peer RPC service of this server over `store`'s drives.
    pub fn service(
        &self,
        store: &Store,
        secret: Arc<Vec<u8>>,
        notify: super::peer::NotifyFn,
    ) -> Result<PeerService, StoreError> {
        let drives = self
            .drive_paths
            .iter()
            .zip(&self.local_slots)
            .map(|(p, &slot)| Ok((slot, LocalDrive::open(p)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(PeerService {
            node: self.node.clone(),
            secret,
            sets: store.sets().to_vec(),
            drives,
            locks: self.locks.clone(),
            notify,
            seen: Default::default(),
        })
    }

    /// Waits until a read quorum of drives of every set answers, or `limit` passed. Returns
    /// whether they do.
    pub async fn wait_for_drives(&self, store: &Store, limit: Duration) -> bool {
        let start = Instant::now();
        let mut last_log = Instant::now();
        loop {
            let (have, need) = store
                .sets()
                .iter()
                .map(|s| (s.reachable_count(), s.read_quorum()))
                .min_by_key(|(have, need)| *have as isize - *need as isize)
                .expect("a store has a set");
            if have >= need {
                return true;
            }
            if start.elapsed() > limit {
                return false;
            }
            if last_log.elapsed() > Duration::from_secs(5) {
                tracing::info!(have, need, "waiting for peers");
                last_log = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Tells every reachable peer about a change; waits (boundedly) for their answers so the
    /// change is in effect everywhere when the caller replies.
    pub async fn broadcast(&self, notice: Notice) {
        let body = postcard::to_stdvec(&notice).expect("a notice serializes");
        let calls = self.peers.iter().map(|p| {
            let body = body.clone();
            async move {
                if let Err(e) = p.call(Method::POST, "/peer/v1/notify", body).await {
                    tracing::warn!(peer = %p.name, error = %e, "peer missed a metadata notice; it re-reads on its next refresh");
                }
            }
        });
        futures_util::future::join_all(calls).await;
    }
}
