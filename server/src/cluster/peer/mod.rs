//! Peer RPC: how the servers of a cluster reach each other's drives, take quorum locks and
//! tell each other about metadata changes.
//!
//! HTTP/2 on its own port (the topology's `rpc` address): in cleartext, or over TLS when the
//! cluster has a CA (`--tls-ca`, see [`tls`]): each server then serves its S3 certificate
//! and trusts only peers whose certificate that CA signed for their topology host. Every
//! request, with or without TLS, carries `x-coffer-peer`, an HMAC-SHA256 under the cluster
//! secret (`COFFER_CLUSTER_SECRET`) of the method, the path with its query, the SHA-256 of the
//! body, the time and a random nonce ([`auth`]); the server refuses a wrong MAC, a time more
//! than five minutes off, a nonce it has seen, and a body that is not the signed one. Record
//! calls carry postcard bodies; shard files stream as raw bytes. A shard upload commits only
//! when the stream ends with the `x-coffer-commit` trailer, which carries the digest of the
//! bytes sent sealed for that one request: a writer that dies mid-stream leaves only a
//! temporary file, and an altered or replayed stream commits nothing.
//!
//! Routes (`D` is the drive's index in its server's `drives` list):
//!
//! | route                                   | does |
//! |-----------------------------------------|------|
//! | `GET  /peer/v1/health`                  | the node name; used to tell a live peer |
//! | `POST /peer/v1/drive/D/records/write`   | one synced RocksDB batch (`Vec<WireOp>`; 409 + stamp: `Stale`, 423 + token: `Fenced`) |
//! | `POST /peer/v1/drive/D/records/get`     | the value of a key (404: absent) |
//! | `POST /peer/v1/drive/D/records/page`    | records from a key, in order ([`PageRequest`]) |
//! | `PUT  /peer/v1/drive/D/data/ID`         | streams a shard file; commits on the trailer |
//! | `GET  /peer/v1/drive/D/data/ID?offset=N`| streams a shard file from `N` |
//! | `HEAD /peer/v1/drive/D/data/ID`         | its size, in `x-coffer-size` |
//! | `DELETE /peer/v1/drive/D/data/ID`       | removes it |
//! | `GET  /peer/v1/drive/D/space`           | its filesystem's size and free space (postcard `DriveSpace`) |
//! | `POST /peer/v1/lock`, `/peer/v1/unlock` | one server's vote of a quorum lock ([`LockRequest`]; the same owner again renews it; granted with a [`LockGrant`], 409 refused) |
//! | `POST /peer/v1/notify`                  | a metadata change to re-read ([`Notice`]) |

pub mod auth;
mod client;
mod drive;
pub mod locks;
mod server;
#[cfg(test)]
mod tests;
pub mod tls;

use serde::{Deserialize, Serialize};

pub use auth::{PeerAuthError, SeenNonces, SignedBody};
pub use client::PeerClient;
pub use drive::{RemoteDrive, SharedRemoteDrive};
pub use locks::{LockTable, QuorumLocker, LEASE};
pub use server::{serve, NotifyFn, PeerService};
pub use tls::{roots_from_pem, PeerTls};

/// The authentication header of peer requests.
pub const AUTH_HEADER: &str = "x-coffer-peer";
/// The trailer that commits a streamed shard file: `DIGEST:SEAL` ([`auth::StreamSeal`]).
pub const COMMIT_TRAILER: &str = "x-coffer-commit";
/// The size of a shard file (HEAD).
pub const SIZE_HEADER: &str = "x-coffer-size";

/// A page of records asked of a remote drive.
#[derive(Debug, Serialize, Deserialize)]
pub struct PageRequest {
    #[serde(with = "serde_bytes")]
    pub from: Vec<u8>,
    pub inclusive: bool,
    pub limit: u32,
}

/// Records of a page, and whether more follow.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Page {
    pub records: Vec<(serde_bytes::ByteBuf, serde_bytes::ByteBuf)>,
    pub more: bool,
}

/// One record and a page of records asked of a remote drive in one round trip (a GET reads
/// its bucket's record and seeks its key's versions at once).
#[derive(Debug, Serialize, Deserialize)]
pub struct LookupRequest {
    #[serde(with = "serde_bytes")]
    pub get: Vec<u8>,
    pub page: PageRequest,
}

/// The answer to a [`LookupRequest`]: the record's stored value, if any, and the page.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Lookup {
    pub value: Option<serde_bytes::ByteBuf>,
    pub page: Page,
}

/// One server's part of a quorum lock: a request for its vote (the same owner again renews
/// it), or, to `/unlock`, the vote given back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockRequest {
    pub resource: String,
    pub owner: u128,
    pub ttl_ms: u64,
    /// The holder's fencing token (renewals and unlocks; `None` when asking first).
    pub token: Option<crate::store::stamp::Stamp>,
}

/// A vote granted (the body of a `200` to `/lock`; `409`: refused, held by another owner or
/// the server is waiting out the lease after its start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockGrant {
    /// The newest fencing token the voter heard of for the resource.
    pub last: Option<crate::store::stamp::Stamp>,
    /// The voter's clock, which passed every token its drives saw.
    pub clock: crate::store::stamp::Stamp,
}

/// Metadata another server changed; cached copies must be re-read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    /// Access keys changed.
    AccessKeys,
    /// The policy of a bucket changed (or the bucket went).
    BucketPolicy(String),
}
