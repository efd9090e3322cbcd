//! Fencing: what a cluster lock gives the writes done under it, so that a holder whose lease
//! ran out (a paused process, a partition) cannot overwrite the next holder's writes.
//!
//! A [`ClusterGuard`] holds a quorum lock; its [`Fence`] names the locked resource and reads
//! the lock's [`Lease`]: whether it is still held and its fencing token, a [`Stamp`] that
//! grows from one holder to the next. [`DriveSet::write_fenced`](super::set::DriveSet) checks
//! the lease before every attempt and sends the token with the batch ([`WireOp::Fence`]);
//! each drive keeps the newest token it saw per resource and refuses, as a whole, a batch
//! carrying an older one ([`StoreError::Fenced`]).
//!
//! [`WireOp::Fence`]: super::set::WireOp::Fence
//! [`StoreError::Fenced`]: super::StoreError::Fenced

use std::sync::Arc;

use super::stamp::{self, Stamp};
use super::{keys, StoreError};

/// A held lock's lease, kept by the locker (renewed in the background).
pub trait Lease: Send + Sync {
    /// Whether the lock is still held: renewed on a majority in time, not given up.
    fn valid(&self) -> bool;
    /// The fencing token writes under the lock carry now.
    fn token(&self) -> Stamp;
    /// A token newer than `held` (a drive holds it), taken only while the lease is valid;
    /// later writes and renewals carry it.
    fn newer_token(&self, held: Stamp) -> Option<Stamp>;
}

/// What the writes under one cluster lock carry to the drives.
#[derive(Clone)]
pub struct Fence {
    resource: String,
    lease: Arc<dyn Lease>,
}

impl Fence {
    pub fn new(resource: &str, lease: Arc<dyn Lease>) -> Fence {
        Fence {
            resource: resource.to_string(),
            lease,
        }
    }

    pub fn resource(&self) -> &str {
        &self.resource
    }

    pub fn valid(&self) -> bool {
        self.lease.valid()
    }

    pub fn token(&self) -> Stamp {
        self.lease.token()
    }

    pub fn newer_token(&self, held: Stamp) -> Option<Stamp> {
        self.lease.newer_token(held)
    }

    /// The error of a write refused because the lock was lost.
    pub fn lost(&self) -> StoreError {
        StoreError::LockLost(self.resource.clone())
    }

    /// The fence record as sent with a batch: its key and the sealed token (a drive keeps it
    /// like any stamped record, so heal copies the newest and never moves one back).
    pub fn record(&self) -> (Vec<u8>, Vec<u8>) {
        (keys::fence(&self.resource), stamp::seal(self.token(), &[]))
    }
}

/// A cluster lock held until dropped, with the fence of the writes under it.
pub struct ClusterGuard {
    fence: Fence,
    _held: Box<dyn Send>,
}

impl ClusterGuard {
    /// `held` gives the lock back when dropped.
    pub fn new(fence: Fence, held: Box<dyn Send>) -> ClusterGuard {
        ClusterGuard { fence, _held: held }
    }

    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Whether the lock is still held (background work checks it between steps).
    pub fn valid(&self) -> bool {
        self.fence.valid()
    }
}

#[cfg(test)]
mod tests {
    use super::super::set::{LocalRecords, WireOp};
    use super::*;

    fn drive() -> (tempfile::TempDir, LocalRecords) {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        let db = rocksdb::DB::open(&opts, dir.path()).unwrap();
        (dir, LocalRecords::new(db))
    }

    fn token(time: u64) -> Stamp {
        Stamp { time, node: 1 }
    }

    /// A batch as `DriveSet::write_fenced` sends it: the fence first, then the records.
    fn fenced(resource: &str, t: Stamp, key: &[u8], value: &[u8]) -> Vec<WireOp> {
        vec![
            WireOp::Fence(keys::fence(resource), stamp::seal(t, &[])),
            WireOp::Put(key.to_vec(), stamp::seal(Stamp { time: 1_000, ..t }, value)),
        ]
    }

    fn value(d: &LocalRecords, key: &[u8]) -> Option<Vec<u8>> {
        let raw = d.db().get(key).unwrap()?;
        stamp::open(&raw).payload.map(<[u8]>::to_vec)
    }

    #[test]
    fn a_drive_refuses_a_batch_fenced_older_than_it_saw_and_changes_nothing() {
        let (_dir, d) = drive();
        d.apply(&fenced("b/k", token(20), b"Ok-new", b"new"))
            .unwrap();
        let refused = d.apply(&fenced("b/k", token(10), b"Ok-old", b"old"));
        assert!(
            matches!(refused, Err(StoreError::Fenced(held)) if held == token(20)),
            "{refused:?}"
        );
        assert_eq!(value(&d, b"Ok-old"), None, "nothing of the batch applied");
        let fence = d.db().get(keys::fence("b/k")).unwrap().unwrap();
        assert_eq!(stamp::open(&fence).stamp, token(20));
        // The same token, and a newer one, go through; the newer one is kept.
        d.apply(&fenced("b/k", token(20), b"Ok-same", b"same"))
            .unwrap();
        d.apply(&fenced("b/k", token(30), b"Ok-newer", b"newer"))
            .unwrap();
        assert_eq!(value(&d, b"Ok-same").as_deref(), Some(&b"same"[..]));
        assert_eq!(value(&d, b"Ok-newer").as_deref(), Some(&b"newer"[..]));
        let fence = d.db().get(keys::fence("b/k")).unwrap().unwrap();
        assert_eq!(stamp::open(&fence).stamp, token(30));
        // Another resource's fence is its own.
        d.apply(&fenced("b/other", token(5), b"Oo", b"o")).unwrap();
    }

    #[test]
    fn a_fence_outside_the_fence_records_is_refused() {
        let (_dir, d) = drive();
        let ops = vec![WireOp::Fence(b"Ob/k".to_vec(), stamp::seal(token(1), &[]))];
        assert!(matches!(d.apply(&ops), Err(StoreError::Internal(_))));
        assert_eq!(d.db().get(b"Ob/k").unwrap(), None);
    }
}
