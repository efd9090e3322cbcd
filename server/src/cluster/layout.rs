//! How a pool of `S` servers × `D` drives is cut into erasure sets of `E` drives.
//!
//! Persisted-format decision: the cut below decides which drives hold the shards of an object,
//! and each drive records its place in its format file. It must never change for an existing
//! pool; `tests::layout_fixed_vectors` pins it.
//!
//! The pool's drives are listed *drive-major*: drive 0 of servers 0, 1, …, S−1, then drive 1
//! of every server, and so on. Set `j` takes positions `j·E .. (j+1)·E` of that list, in that
//! order (its drive `i` is position `j·E + i`). The list repeats the servers with period `S`,
//! so any `E` consecutive entries hold each server ⌊E/S⌋ or ⌈E/S⌉ times: every set is spread
//! over `min(E, S)` servers with at most ⌈E/S⌉ drives on one, which is the least possible.

use crate::store::erasure::{ErasureGeometry, MAX_SET_SIZE};

/// Smallest erasure set of a pool with at least this many drives (DESIGN.md, "Topology").
/// Smaller pools form one set of all their drives.
pub const MIN_SET_SIZE: usize = 4;

/// One drive of a pool: the index of its server in the pool's `servers` list and the index of
/// the drive in that server's `drives` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DrivePosition {
    pub server: usize,
    pub drive: usize,
}

/// One erasure set of a pool: its `E` drives, in shard-slot order (`drives[i]` is drive `i`
/// of the set, before the per-object rotation of `store::erasure::shard_order`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureSetLayout {
    /// The set's index within its pool.
    pub index: usize,
    pub drives: Vec<DrivePosition>,
}

/// Where one drive sits in the cluster; the triple a drive's format file records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DriveLocation {
    /// Index of the pool in the topology's `pools` list.
    pub pool: usize,
    /// Index of the erasure set within the pool.
    pub set: usize,
    /// Index of the drive within the set.
    pub index: usize,
}

/// The resolved geometry of a validated pool: counts, set size and parity with defaults
/// applied. Built by `PoolSpec::layout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolLayout {
    pub servers: usize,
    pub drives_per_server: usize,
    /// `E`, drives per erasure set.
    pub set_size: usize,
    /// `K + M = E`.
    pub geometry: ErasureGeometry,
}

impl PoolLayout {
    /// `S · D`.
    pub fn drive_count(&self) -> usize {
        self.servers * self.drives_per_server
    }

    /// Number of erasure sets in the pool, `S·D / E`.
    pub fn set_count(&self) -> usize {
        self.drive_count() / self.set_size
    }

    /// Every erasure set of the pool, in index order (see the module documentation).
    pub fn sets(&self) -> Vec<ErasureSetLayout> {
        (0..self.set_count())
            .map(|index| ErasureSetLayout {
                index,
                drives: (0..self.set_size)
                    .map(|i| self.position(index * self.set_size + i))
                    .collect(),
            })
            .collect()
    }

    /// The set and index within the set of drive `drive` of server `server`, or `None` when the
    /// pool has no such drive. The inverse of [`PoolLayout::sets`], in constant time.
    pub fn locate(&self, server: usize, drive: usize) -> Option<(usize, usize)> {
        if server >= self.servers || drive >= self.drives_per_server {
            return None;
        }
        let position = drive * self.servers + server;
        Some((position / self.set_size, position % self.set_size))
    }

    /// The drive at `position` of the pool's drive-major list.
    fn position(&self, position: usize) -> DrivePosition {
        DrivePosition {
            server: position % self.servers,
            drive: position / self.servers,
        }
    }
}

/// The set size a pool of `drives` drives gets when its `setSize` is absent: all its drives
/// when there are fewer than [`MIN_SET_SIZE`], otherwise the largest size from 4 to 16 that
/// divides `drives` (larger sets spend less space on parity for the same failure tolerance);
/// `None` when no size fits (e.g. 17 drives) or `drives` is 0.
///
/// Persisted decision: a file without `setSize` relies on this rule; never change it.
pub fn default_set_size(drives: usize) -> Option<usize> {
    match drives {
        0 => None,
        1..MIN_SET_SIZE => Some(drives),
        _ => (MIN_SET_SIZE..=MAX_SET_SIZE)
            .rev()
            .find(|e| drives % e == 0),
    }
}
