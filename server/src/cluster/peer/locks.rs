//! Quorum locks: a key is locked cluster-wide when a majority of the servers granted it to one
//! owner. Each server keeps its votes in a [`LockTable`] with a lease, so a lock of a server
//! that died is free again once its lease runs out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use http::{Method, StatusCode};

use super::client::PeerClient;
use super::LockRequest;
use crate::store::{KeyLocker, StoreError};

/// A lock's lease: longer than any commit holds it.
const LEASE: Duration = Duration::from_secs(60);
/// A writer gives up (503 SlowDown) after waiting this long for a key.
const WAIT: Duration = Duration::from_secs(30);

/// One server's votes: resource → (owner, lease end).
#[derive(Default)]
pub struct LockTable {
    held: Mutex<HashMap<String, (u128, Instant)>>,
}

impl LockTable {
    /// Grants `resource` to `owner` unless another owner holds an unexpired lease.
    pub fn try_lock(&self, resource: &str, owner: u128, ttl: Duration) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if held.len() > 10_000 {
            held.retain(|_, (_, until)| *until > now);
        }
        match held.get(resource) {
            Some((o, until)) if *o != owner && *until > now => false,
            _ => {
                held.insert(resource.to_string(), (owner, now + ttl));
                true
            }
        }
    }

    pub fn unlock(&self, resource: &str, owner: u128) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.get(resource).is_some_and(|(o, _)| *o == owner) {
            held.remove(resource);
        }
    }
}

/// Takes locks on a majority of the cluster's servers: this one and its peers.
pub struct QuorumLocker {
    pub table: Arc<LockTable>,
    pub peers: Vec<Arc<PeerClient>>,
}

struct Held {
    resource: String,
    owner: u128,
    table: Arc<LockTable>,
    granted: Vec<Arc<PeerClient>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.table.unlock(&self.resource, self.owner);
        release(&self.granted, &self.resource, self.owner);
    }
}

fn request(resource: &str, owner: u128) -> Vec<u8> {
    postcard::to_stdvec(&LockRequest {
        resource: resource.to_string(),
        owner,
        ttl_ms: LEASE.as_millis() as u64,
    })
    .expect("a lock request serializes")
}

/// Gives back votes, without waiting for the answers.
fn release(peers: &[Arc<PeerClient>], resource: &str, owner: u128) {
    for p in peers {
        let (p, body) = (p.clone(), request(resource, owner));
        p.handle().clone().spawn(async move {
            let _ = p.call(Method::POST, "/peer/v1/unlock", body).await;
        });
    }
}

impl QuorumLocker {
    fn majority(&self) -> usize {
        let servers = self.peers.len() + 1;
        servers / 2 + 1
    }

    /// Asks every server for `resource` and returns as soon as a majority granted it (or can
    /// no longer grant it): a hung peer's vote is not waited for. Votes that arrive later are
    /// given back as they come.
    fn attempt(&self, resource: &str, owner: u128) -> Option<Held> {
        let local = self.table.try_lock(resource, owner, LEASE);
        let mut held = Held {
            resource: resource.to_string(),
            owner,
            table: self.table.clone(),
            granted: Vec::new(),
        };
        let need = self.majority();
        let Some(handle) = self.peers.first().map(|p| p.handle().clone()) else {
            return (usize::from(local) >= need).then_some(held);
        };
        let body = request(resource, owner);
        let mut votes: FuturesUnordered<_> = self
            .peers
            .iter()
            .map(|p| {
                let (p, body) = (p.clone(), body.clone());
                async move {
                    let granted = matches!(
                        p.call(Method::POST, "/peer/v1/lock", body).await,
                        Ok((StatusCode::OK, _))
                    );
                    (p, granted)
                }
            })
            .collect();
        let mut outstanding = self.peers.len();
        super::client::block_on(&handle, async {
            while let Some((peer, granted)) = votes.next().await {
                outstanding -= 1;
                if granted {
                    held.granted.push(peer);
                }
                let count = held.granted.len() + usize::from(local);
                if count >= need || count + outstanding < need {
                    break;
                }
            }
        });
        if outstanding > 0 {
            let resource = resource.to_string();
            handle.spawn(async move {
                while let Some((peer, granted)) = votes.next().await {
                    if granted {
                        release(&[peer], &resource, owner);
                    }
                }
            });
        }
        if held.granted.len() + usize::from(local) >= need {
            Some(held)
        } else {
            None // dropping `held` gives the votes back
        }
    }
}

impl KeyLocker for QuorumLocker {
    fn lock(&self, resource: &str) -> Result<Box<dyn Send>, StoreError> {
        let reachable = 1 + self.peers.iter().filter(|p| p.reachable()).count();
        if reachable < self.majority() {
            return Err(StoreError::QuorumLost {
                have: reachable,
                need: self.majority(),
            });
        }
        let owner: u128 = rand::random();
        let start = Instant::now();
        let mut backoff = Duration::from_millis(2);
        loop {
            if let Some(held) = self.attempt(resource, owner) {
                return Ok(Box::new(held));
            }
            if start.elapsed() > WAIT {
                return Err(StoreError::Busy(format!(
                    "could not lock {resource} on a majority of servers"
                )));
            }
            let jitter = Duration::from_micros(rand::random::<u64>() % 2000);
            std::thread::sleep(backoff + jitter);
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_exclusive_until_unlocked_or_expired() {
        let t = LockTable::default();
        assert!(t.try_lock("b/k", 1, LEASE));
        assert!(!t.try_lock("b/k", 2, LEASE));
        assert!(t.try_lock("b/other", 2, LEASE));
        t.unlock("b/k", 2); // not the owner: no effect
        assert!(!t.try_lock("b/k", 2, LEASE));
        t.unlock("b/k", 1);
        assert!(t.try_lock("b/k", 2, Duration::from_millis(0)));
        std::thread::sleep(Duration::from_millis(2));
        assert!(t.try_lock("b/k", 3, LEASE), "an expired lease is free");
    }
}
