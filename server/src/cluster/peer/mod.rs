//! Peer RPC: how the servers of a cluster reach each other's drives, take quorum locks and
//! tell each other about metadata changes.
//!
//! HTTP/2 on its own port (the topology's `rpc` address): in cleartext, or over TLS when the
//! cluster has a CA (`--tls-ca`, see [`tls`]): each server then serves its S3 certificate
//! and trusts only peers whose certificate that CA signed for their topology host. Every
//! request, with or without TLS, carries
//! `x-coffer-peer: NODE:UNIX_SECONDS:HMAC`, an HMAC-SHA256 under the cluster secret
//! (`COFFER_CLUSTER_SECRET`) of the time, method and path; the server refuses a wrong MAC or a
//! time more than five minutes off. Record calls carry postcard bodies; shard files stream as
//! raw bytes. A shard upload commits only when the stream ends with the `x-coffer-commit`
//! trailer, so a writer that dies mid-stream leaves only a temporary file.
//!
//! Routes (`D` is the drive's index in its server's `drives` list):
//!
//! | route                                   | does |
//! |-----------------------------------------|------|
//! | `GET  /peer/v1/health`                  | the node name; used to tell a live peer |
//! | `POST /peer/v1/drive/D/records/write`   | one synced RocksDB batch (`Vec<WireOp>`) |
//! | `POST /peer/v1/drive/D/records/get`     | the value of a key (404: absent) |
//! | `POST /peer/v1/drive/D/records/page`    | records from a key, in order ([`PageRequest`]) |
//! | `PUT  /peer/v1/drive/D/data/ID`         | streams a shard file; commits on the trailer |
//! | `GET  /peer/v1/drive/D/data/ID?offset=N`| streams a shard file from `N` |
//! | `HEAD /peer/v1/drive/D/data/ID`         | its size, in `x-coffer-size` |
//! | `DELETE /peer/v1/drive/D/data/ID`       | removes it |
//! | `GET  /peer/v1/drive/D/space`           | its filesystem's size and free space (postcard `DriveSpace`) |
//! | `POST /peer/v1/lock`, `/peer/v1/unlock` | one server's vote of a quorum lock ([`LockRequest`]) |
//! | `POST /peer/v1/notify`                  | a metadata change to re-read ([`Notice`]) |

mod client;
mod drive;
pub mod locks;
mod server;
pub mod tls;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub use client::PeerClient;
pub use drive::{RemoteDrive, SharedRemoteDrive};
pub use locks::{LockTable, QuorumLocker};
pub use server::{serve, NotifyFn, PeerService};
pub use tls::{roots_from_pem, PeerTls};

/// The authentication header of peer requests.
pub const AUTH_HEADER: &str = "x-coffer-peer";
/// The trailer that commits a streamed shard file.
pub const COMMIT_TRAILER: &str = "x-coffer-commit";
/// The size of a shard file (HEAD).
pub const SIZE_HEADER: &str = "x-coffer-size";
/// How far a peer's clock may be off.
const MAX_SKEW_SECS: u64 = 300;

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

/// One server's part of a quorum lock.
#[derive(Debug, Serialize, Deserialize)]
pub struct LockRequest {
    pub resource: String,
    pub owner: u128,
    pub ttl_ms: u64,
}

/// Metadata another server changed; cached copies must be re-read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    /// Access keys changed.
    AccessKeys,
    /// The policy of a bucket changed (or the bucket went).
    BucketPolicy(String),
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn mac(secret: &[u8], node: &str, time: u64, method: &str, path: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(format!("{node}\n{time}\n{method}\n{path}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// The `x-coffer-peer` value for a request from `node`.
pub fn sign(secret: &[u8], node: &str, method: &str, path: &str) -> String {
    let time = unix_now();
    format!("{node}:{time}:{}", mac(secret, node, time, method, path))
}

/// Checks an `x-coffer-peer` value; returns the calling node.
pub fn verify<'a>(
    secret: &[u8],
    header: &'a str,
    method: &str,
    path: &str,
) -> Result<&'a str, &'static str> {
    let mut parts = header.rsplitn(3, ':');
    let (Some(given), Some(time), Some(node)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("malformed peer authentication");
    };
    let time: u64 = time.parse().map_err(|_| "malformed peer time")?;
    if time.abs_diff(unix_now()) > MAX_SKEW_SECS {
        return Err("peer clock is more than five minutes off");
    }
    let expected = mac(secret, node, time, method, path);
    if subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.as_bytes()).into() {
        Ok(node)
    } else {
        Err("wrong cluster secret")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_same_secret_method_and_path() {
        let h = sign(b"secret", "node-1", "POST", "/peer/v1/lock");
        assert_eq!(verify(b"secret", &h, "POST", "/peer/v1/lock"), Ok("node-1"));
        assert!(verify(b"other", &h, "POST", "/peer/v1/lock").is_err());
        assert!(verify(b"secret", &h, "GET", "/peer/v1/lock").is_err());
        assert!(verify(b"secret", &h, "POST", "/peer/v1/unlock").is_err());
        assert!(verify(b"secret", "garbage", "POST", "/peer/v1/lock").is_err());
        let old = format!(
            "node-1:1000:{}",
            mac(b"secret", "node-1", 1000, "POST", "/peer/v1/lock")
        );
        assert_eq!(
            verify(b"secret", &old, "POST", "/peer/v1/lock"),
            Err("peer clock is more than five minutes off")
        );
    }
}
