//! The cluster layer: which servers and drives form this store, and where an object lives.
//!
//! Today this module owns the *topology file* (`--topology FILE`, the JSON document the
//! operator writes into the store's ConfigMap; format in `docs/topology.md`): its types
//! ([`Topology`], [`PoolSpec`], [`ServerSpec`]), its parsing and validation
//! ([`TopologyError`]), the cut of every pool into erasure sets ([`PoolLayout`],
//! [`ErasureSetLayout`]), the identity of each drive ([`DriveLocation`], written into the
//! drive's format file) and placement of objects onto sets ([`SetId`], [`choose_pool`]).
//! Everything here is pure: no I/O except [`Topology::load`], no networking. Peer RPC, quorum
//! and locks will live beside it.
//!
//! Persisted decisions made here (changing any needs a new topology `version` and a
//! migration): the order of pools (a pool's index is its position), the cut of a pool into
//! sets ([`PoolLayout::sets`]), the default set size ([`default_set_size`]) and the default
//! parity (`ErasureGeometry::default_for`).

mod error;
mod layout;
mod local;
pub mod node;
pub mod peer;
mod placement;
mod topology;

#[cfg(test)]
mod tests;

pub use error::TopologyError;
pub use layout::{
    default_set_size, DriveLocation, DrivePosition, ErasureSetLayout, PoolLayout, MIN_SET_SIZE,
};
pub use placement::{choose_pool, SetId};
pub use topology::{PoolSpec, ServerRef, ServerSpec, Topology, TOPOLOGY_VERSION};
