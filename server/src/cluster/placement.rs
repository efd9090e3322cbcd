//! Which erasure set of which pool holds an object.
//!
//! Within a pool the set is `store::erasure::set_for_key` (a persisted decision pinned there).
//! Across pools, a *new* object goes to a pool drawn at random in proportion to its free space,
//! the draw seeded by the object's hash ([`choose_pool`]); reads and overwrites look in every
//! pool ([`Topology::candidate_sets`]), so the pool choice is not persisted and may change.

use super::{Topology, TopologyError};
use crate::store::erasure::{object_hash, set_for_key};

/// One erasure set of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetId {
    /// Index of the pool in `Topology::pools`.
    pub pool: usize,
    /// Index of the set within the pool.
    pub set: usize,
}

/// The pool a new object `bucket/key` goes to, given each pool's free space (any unit, the
/// same for all): pool `i` is chosen with probability `free_space[i] / Σ free_space`, so pools
/// fill evenly and a full pool gets nothing. The same inputs always give the same pool.
/// `None` when every pool is full or there are no pools.
pub fn choose_pool(bucket: &str, key: &str, free_space: &[u64]) -> Option<usize> {
    let total: u128 = free_space.iter().map(|&f| u128::from(f)).sum();
    if total == 0 {
        return None;
    }
    // The set and the shard rotation use the low and high bits of the raw hash; a finalizer
    // decorrelates the pool draw from both.
    // draw = ⌊mix · total / 2^64⌋ < total, computed without overflowing u128: total may
    // exceed 2^64, so it is split into its high and low 64-bit halves.
    let seed = u128::from(mix(object_hash(bucket, key)));
    let draw = seed * (total >> 64) + ((seed * (total & u128::from(u64::MAX))) >> 64);
    let mut end = 0u128;
    for (pool, &free) in free_space.iter().enumerate() {
        end += u128::from(free);
        if draw < end {
            return Some(pool);
        }
    }
    // Unreachable: `draw < total` because `mix(..) < 2^64`.
    free_space.iter().rposition(|&f| f > 0)
}

/// SplitMix64's finalizer: every output bit depends on every input bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
