//! Which erasure set holds an object, and which drive of the set holds each shard.
//!
//! Persisted-format decision: [`object_hash`] is SipHash-1-3 with the fixed keys below over the
//! bytes `bucket "/" key`. Objects are found again by recomputing it, so the function, its keys
//! and the way [`set_for_key`] and [`shard_order`] use it must never change for an existing
//! pool; `tests::placement_is_stable` pins their outputs. (Bucket names cannot contain `/`,
//! so `bucket/key` names one object unambiguously.)

use siphasher::sip::SipHasher13;

/// SipHash keys of the placement hash: fixed random words, never change.
const PLACEMENT_KEYS: (u64, u64) = (0x0c0f_fe20_25e7_a5e1, 0x5e7d_15b7_1b0c_4a39);

/// The placement hash of `bucket/key`.
pub fn object_hash(bucket: &str, key: &str) -> u64 {
    let mut name = Vec::with_capacity(bucket.len() + 1 + key.len());
    name.extend_from_slice(bucket.as_bytes());
    name.push(b'/');
    name.extend_from_slice(key.as_bytes());
    SipHasher13::new_with_keys(PLACEMENT_KEYS.0, PLACEMENT_KEYS.1).hash(&name)
}

/// The erasure set (of `set_count` in a pool) that holds `bucket/key`: `object_hash % set_count`.
///
/// # Panics
/// When `set_count` is 0; a validated topology has at least one set per pool.
pub fn set_for_key(bucket: &str, key: &str, set_count: usize) -> usize {
    assert!(set_count > 0, "a pool has at least one erasure set");
    (object_hash(bucket, key) % set_count as u64) as usize
}

/// The drive order of an object within its set: shard `i` goes to drive `order[i]` of the set.
/// The order is the identity rotated by `(object_hash >> 32) % set_size`, so data and parity
/// shards spread evenly over all drives. The rotation uses the high half of the hash, not the
/// low bits that pick the set: otherwise with `set_count == set_size` (a power of two) every
/// object of a set would get the same rotation and its parity would pile onto the same drives.
pub fn shard_order(object_hash: u64, set_size: usize) -> Vec<usize> {
    if set_size == 0 {
        return Vec::new();
    }
    let rotation = ((object_hash >> 32) % set_size as u64) as usize;
    (0..set_size).map(|i| (i + rotation) % set_size).collect()
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
