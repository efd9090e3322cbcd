//! How many data and parity shards an erasure set holds, and the quorums that follow.

use super::ErasureError;

/// Largest erasure set Coffer builds (DESIGN.md, "Topology").
pub const MAX_SET_SIZE: usize = 16;

/// Largest `K + M` this layer accepts. The codec (GF(2^16)) would allow far more; 256 keeps
/// every shard index in one byte should a later format want it.
pub const MAX_SHARDS: usize = 256;

/// `K` data shards plus `M` parity shards; any `K` of the `K + M` rebuild a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ErasureGeometry {
    /// `K`: shards holding the block's bytes.
    pub data: usize,
    /// `M`: Reed–Solomon parity shards; up to `M` shards of a block may be lost.
    pub parity: usize,
}

impl ErasureGeometry {
    /// A checked geometry: `1 ≤ K`, `0 ≤ M`, `K + M ≤ 256`.
    pub fn new(data: usize, parity: usize) -> Result<Self, ErasureError> {
        let geometry = ErasureGeometry { data, parity };
        geometry.validate()?;
        Ok(geometry)
    }

    /// Checks the invariants [`ErasureGeometry::new`] enforces (the fields are public, so a
    /// geometry read from a topology file must be validated before use).
    pub fn validate(&self) -> Result<(), ErasureError> {
        let invalid = |reason| ErasureError::InvalidGeometry {
            data: self.data,
            parity: self.parity,
            reason,
        };
        if self.data == 0 {
            return Err(invalid("at least one data shard is needed"));
        }
        match self.data.checked_add(self.parity) {
            Some(total) if total <= MAX_SHARDS => Ok(()),
            _ => Err(invalid("more than 256 shards")),
        }
    }

    /// The default split of a set of `set_size` drives (DESIGN.md: `M = E/2` for `E ≤ 5`,
    /// otherwise 2–4): E=1 → 1+0, 2 → 1+1, 3 → 2+1, 4 → 2+2, 5 → 3+2, 6–7 → M=2,
    /// 8–11 → M=3, 12–16 → M=4.
    pub fn default_for(set_size: usize) -> Result<Self, ErasureError> {
        let parity = match set_size {
            1..=5 => set_size / 2,
            6..=7 => 2,
            8..=11 => 3,
            12..=MAX_SET_SIZE => 4,
            _ => {
                return Err(ErasureError::InvalidGeometry {
                    data: set_size,
                    parity: 0,
                    reason: "an erasure set has 1 to 16 drives",
                })
            }
        };
        Self::new(set_size - parity, parity)
    }

    /// `K + M`: the number of drives in the set, one shard each.
    pub fn total(&self) -> usize {
        self.data + self.parity
    }

    /// Drives that must commit for a write to succeed: `K`, or `K + 1` when `K == M` so
    /// that two disjoint halves of a split set can never both accept a write.
    pub fn write_quorum(&self) -> usize {
        if self.data == self.parity {
            self.data + 1
        } else {
            self.data
        }
    }

    /// Agreeing drives needed to serve a read: any `K` shards rebuild the data.
    pub fn read_quorum(&self) -> usize {
        self.data
    }
}

impl std::fmt::Display for ErasureGeometry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{}", self.data, self.parity)
    }
}
