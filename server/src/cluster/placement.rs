//! Which erasure set of which pool holds an object.
//!
//! Within a pool the set is `store::erasure::set_for_key` (a persisted decision pinned there).
//! Across pools, a *new* object goes to a pool drawn at random in proportion to its free space,
//! the draw seeded by the object's hash ([`choose_pool`]); reads and overwrites look in every
//! pool ([`Topology::candidate_sets`]), so the pool choice is not persisted and may change.

use super::{Topology, TopologyError};
pub use crate::store::erasure::choose_pool;
use crate::store::erasure::set_for_key;

/// One erasure set of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetId {
    /// Index of the pool in `Topology::pools`.
    pub pool: usize,
    /// Index of the set within the pool.
    pub set: usize,
}

impl Topology {
    /// The set of pool `pool` that holds `bucket/key`, if the object is in that pool.
    pub fn set_in_pool(
        &self,
        pool: usize,
        bucket: &str,
        key: &str,
    ) -> Result<SetId, TopologyError> {
        let set_count = self
            .pools
            .get(pool)
            .ok_or(TopologyError::UnknownPool {
                index: pool,
                pools: self.pools.len(),
            })?
            .layout()?
            .set_count();
        Ok(SetId {
            pool,
            set: set_for_key(bucket, key, set_count),
        })
    }

    /// The set that receives a new object `bucket/key`, given each pool's free space
    /// (`free_space[i]` for `pools[i]`; see [`choose_pool`]). With a single pool the weights
    /// are not consulted: there is no choice to make, and a full drive fails the write itself.
    pub fn set_for(
        &self,
        bucket: &str,
        key: &str,
        free_space: &[u64],
    ) -> Result<SetId, TopologyError> {
        if free_space.len() != self.pools.len() {
            return Err(TopologyError::WeightCount {
                expected: self.pools.len(),
                got: free_space.len(),
            });
        }
        let pool = if self.pools.len() == 1 {
            0
        } else {
            choose_pool(bucket, key, free_space).ok_or(TopologyError::NoFreeSpace)?
        };
        self.set_in_pool(pool, bucket, key)
    }

    /// The set of every pool that may hold `bucket/key`, in pool order: where a read, an
    /// overwrite or a delete must look.
    pub fn candidate_sets(&self, bucket: &str, key: &str) -> Result<Vec<SetId>, TopologyError> {
        (0..self.pools.len())
            .map(|pool| self.set_in_pool(pool, bucket, key))
            .collect()
    }
}
