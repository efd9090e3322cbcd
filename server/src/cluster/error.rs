//! Everything that can be wrong with a topology file, or with a question asked of it.

use std::path::PathBuf;

/// Why a topology was refused, or a lookup in it failed. Messages name the pool, server and
/// field at fault so an operator can fix the file from the message alone.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read topology file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("topology is not valid JSON: {0}")]
    Syntax(serde_json::Error),
    #[error("topology has no \"version\" field (this coffer-server reads version {supported})")]
    MissingVersion { supported: u32 },
    #[error("topology \"version\" must be a positive integer, found {found}")]
    InvalidVersion { found: String },
    #[error(
        "topology version {found} is not supported: this coffer-server reads version \
         {supported}; upgrade coffer-server before writing a newer topology"
    )]
    UnsupportedVersion { found: u64, supported: u32 },
    #[error("topology does not match the version {version} format: {source}")]
    Schema {
        version: u32,
        source: serde_json::Error,
    },
    #[error("topology \"clusterId\" is empty")]
    EmptyClusterId,
    #[error("topology has no pools")]
    NoPools,
    #[error("{what} name {name:?} is invalid: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("pool name {0:?} is used twice")]
    DuplicatePool(String),
    #[error("pool {pool:?} has no servers")]
    NoServers { pool: String },
    #[error("server {server:?} is listed twice (server names are unique in the cluster)")]
    DuplicateServer { server: String },
    #[error("server {server:?} of pool {pool:?} has no drives")]
    NoDrives { pool: String, server: String },
    #[error(
        "server {server:?} of pool {pool:?} has {drives} drives, but the pool's first server \
         has {expected}: every server of a pool has the same number of drives"
    )]
    UnevenDrives {
        pool: String,
        server: String,
        drives: usize,
        expected: usize,
    },
    #[error("server {server:?} lists drive {drive:?} twice")]
    DuplicateDrive { server: String, drive: PathBuf },
    #[error("server {server:?} has an invalid drive path {drive:?}: {reason}")]
    InvalidDrive {
        server: String,
        drive: PathBuf,
        reason: &'static str,
    },
    #[error("server {server:?} has an invalid {field} {address:?}: {reason}")]
    InvalidAddress {
        server: String,
        field: &'static str,
        address: String,
        reason: &'static str,
    },
    #[error("address {address:?} is used by both server {first:?} and server {second:?}")]
    DuplicateAddress {
        address: String,
        first: String,
        second: String,
    },
    #[error("pool {pool:?} has {drives} drives and setSize {set_size}: {reason}")]
    InvalidSetSize {
        pool: String,
        set_size: usize,
        drives: usize,
        reason: &'static str,
    },
    #[error(
        "pool {pool:?} has {drives} drives, which no set size from 4 to 16 divides; \
         change the number of servers or drives per server"
    )]
    NoSetSize { pool: String, drives: usize },
    #[error(
        "pool {pool:?} has parity {parity} with setSize {set_size}: parity may be at most \
         half the set size (at least as many data shards as parity shards)"
    )]
    InvalidParity {
        pool: String,
        parity: usize,
        set_size: usize,
    },
    #[error("node {node:?} is not a server of this topology (servers: {known})")]
    UnknownNode { node: String, known: String },
    #[error("drive {drive:?} is not a drive of server {node:?} in the topology")]
    UnknownDrive { node: String, drive: PathBuf },
    #[error("pool index {index} is out of range: the topology has {pools} pools")]
    UnknownPool { index: usize, pools: usize },
    #[error("{got} free-space weights given for {expected} pools")]
    WeightCount { expected: usize, got: usize },
    #[error("no pool has free space")]
    NoFreeSpace,
    #[error("topology update refused: {0}")]
    IncompatibleUpdate(String),
    #[error("local cluster: {0}")]
    LocalCluster(String),
}
