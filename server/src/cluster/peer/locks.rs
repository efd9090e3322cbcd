//! Quorum locks: a key is locked cluster-wide when a majority of the servers granted it to one
//! owner. Each server keeps its votes in a [`LockTable`] with a lease: a lock of a server that
//! died is free again once its lease runs out.
//!
//! A holder keeps its lock by renewing the lease on a majority every third of a lease (a
//! background task on the runtime); when a round cannot reach a majority before the lease
//! ends, the lock is lost and writes under it are refused. Each lock carries a fencing token
//! (a [`Stamp`] of the process clock, taken after observing the voters' clocks and the last
//! tokens they saw), checked by the drives on every write under it (see
//! [`crate::store::fence`]). A server votes only once one lease has passed since it started:
//! the votes it gave before a restart were forgotten, and must have expired first.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use http::{Method, StatusCode};

use super::client::PeerClient;
use super::{LockGrant, LockRequest};
use crate::store::fence::{ClusterGuard, Fence, Lease};
use crate::store::stamp::{Clock, Stamp};
use crate::store::{KeyLocker, StoreError};

/// A lock's lease: longer than any commit holds it between renewals, short enough that a
/// restarted server (which waits one lease before voting) is soon back.
pub const LEASE: Duration = Duration::from_secs(15);
/// A writer gives up (503 SlowDown) after waiting this long for a key.
const WAIT: Duration = Duration::from_secs(30);

/// One server's vote for a resource.
struct Vote {
    owner: u128,
    until: Instant,
    /// The newest fencing token this server heard of for the resource (kept past the vote).
    token: Option<Stamp>,
}

/// One server's votes: resource → owner, lease end and last token.
pub struct LockTable {
    held: Mutex<HashMap<String, Vote>>,
    lease: Duration,
    /// No vote before this: one lease after the start, so that every vote this server gave
    /// before a restart has expired.
    votes_from: Instant,
    clock: Arc<Clock>,
}

impl LockTable {
    /// A table granting leases of at most `lease`, voting one lease from now.
    pub fn new(lease: Duration, clock: Arc<Clock>) -> LockTable {
        LockTable::started_at(lease, clock, Instant::now())
    }

    /// A table of a server that started at `started`.
    pub fn started_at(lease: Duration, clock: Arc<Clock>, started: Instant) -> LockTable {
        LockTable {
            held: Mutex::new(HashMap::new()),
            lease,
            votes_from: started + lease,
            clock,
        }
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Grants (or renews) `req.resource` to `req.owner` unless another owner holds an
    /// unexpired lease or this server is still waiting out its start.
    pub fn try_lock(&self, req: &LockRequest) -> Option<LockGrant> {
        self.try_lock_at(req, Instant::now())
    }

    pub fn try_lock_at(&self, req: &LockRequest, now: Instant) -> Option<LockGrant> {
        if now < self.votes_from {
            return None;
        }
        let ttl = Duration::from_millis(req.ttl_ms).min(self.lease);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.len() > 10_000 {
            held.retain(|_, v| v.until > now);
        }
        let last = match held.get(&req.resource) {
            Some(v) if v.owner != req.owner && v.until > now => return None,
            Some(v) => v.token,
            None => None,
        };
        held.insert(
            req.resource.clone(),
            Vote {
                owner: req.owner,
                until: now + ttl,
                token: last.max(req.token),
            },
        );
        Some(LockGrant {
            last,
            clock: self.clock.now(),
        })
    }

    /// Gives up `owner`'s vote, remembering its last token.
    pub fn unlock(&self, resource: &str, owner: u128, token: Option<Stamp>) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = held.get_mut(resource).filter(|v| v.owner == owner) {
            v.until = Instant::now();
            v.token = v.token.max(token);
        }
    }
}

/// Takes locks on a majority of the cluster's servers: this one and its peers (at least one).
pub struct QuorumLocker {
    pub table: Arc<LockTable>,
    pub peers: Vec<Arc<PeerClient>>,
    /// Takes the fencing tokens.
    pub clock: Arc<Clock>,
}

/// A held lock's lease, shared by its guard, its fence and its renewal task.
pub(crate) struct HeldLease {
    resource: String,
    owner: u128,
    clock: Arc<Clock>,
    token: Mutex<Stamp>,
    /// The lease ends then, unless renewed (kept short of the voters' own ends).
    until: Mutex<tokio::time::Instant>,
    lost: AtomicBool,
    released: AtomicBool,
    wake: tokio::sync::Notify,
}

impl HeldLease {
    pub(crate) fn new(
        resource: &str,
        owner: u128,
        clock: Arc<Clock>,
        token: Stamp,
        until: tokio::time::Instant,
    ) -> HeldLease {
        HeldLease {
            resource: resource.to_string(),
            owner,
            clock,
            token: Mutex::new(token),
            until: Mutex::new(until),
            lost: AtomicBool::new(false),
            released: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        }
    }

    fn until(&self) -> tokio::time::Instant {
        *self.until.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn release(&self) {
        self.released.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

impl Lease for HeldLease {
    fn valid(&self) -> bool {
        !self.lost.load(Ordering::Acquire)
            && !self.released.load(Ordering::Acquire)
            && tokio::time::Instant::now() < self.until()
    }

    fn token(&self) -> Stamp {
        *self.token.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn newer_token(&self, held: Stamp) -> Option<Stamp> {
        if !self.valid() {
            return None;
        }
        self.clock.observe(held);
        let mut token = self.token.lock().unwrap_or_else(|p| p.into_inner());
        *token = self.clock.now();
        Some(*token)
    }
}

/// How much of a lease the holder does not count on: the voters' leases start when the
/// request reaches them, later than the holder's, and clocks run at slightly different rates.
fn margin(lease: Duration) -> Duration {
    lease / 10
}

/// Keeps `lease` (of length `length`) renewed: a `round` (with the current token) every third
/// of a lease, more often after a failed one, until released; when no round succeeded before
/// the lease ends, the lock is lost.
pub(crate) async fn keep<F, Fut>(lease: Arc<HeldLease>, length: Duration, mut round: F)
where
    F: FnMut(Stamp) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut wait = length / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = lease.wake.notified() => {}
        }
        if lease.released.load(Ordering::Acquire) {
            return;
        }
        let sent = tokio::time::Instant::now();
        let until = lease.until();
        let renewed = tokio::time::timeout_at(until, round(lease.token()))
            .await
            .unwrap_or(false);
        if renewed {
            *lease.until.lock().unwrap_or_else(|p| p.into_inner()) = sent + length - margin(length);
            wait = length / 3;
        } else if tokio::time::Instant::now() >= until {
            tracing::warn!(resource = %lease.resource, "a cluster lock was lost: its lease could not be renewed");
            lease.lost.store(true, Ordering::Release);
            return;
        } else {
            wait = length / 12;
        }
    }
}

/// The lock held; dropping it gives the votes back.
struct Held {
    lease: Arc<HeldLease>,
    table: Arc<LockTable>,
    peers: Vec<Arc<PeerClient>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.lease.release();
        let token = Some(self.lease.token());
        let (resource, owner) = (&self.lease.resource, self.lease.owner);
        self.table.unlock(resource, owner, token);
        let body = encode(&LockRequest {
            resource: resource.clone(),
            owner,
            ttl_ms: 0,
            token,
        });
        release(&self.peers, body);
    }
}

fn encode(req: &LockRequest) -> Vec<u8> {
    postcard::to_stdvec(req).expect("a lock request serializes")
}

/// Gives back votes, without waiting for the answers.
fn release(peers: &[Arc<PeerClient>], body: Vec<u8>) {
    for p in peers {
        let (p, body) = (p.clone(), body.clone());
        p.handle().clone().spawn(async move {
            let _ = p.call(Method::POST, "/peer/v1/unlock", body).await;
        });
    }
}

type Ballot = (Arc<PeerClient>, Option<LockGrant>);

/// Asks every peer for its vote.
fn ask(peers: &[Arc<PeerClient>], body: &[u8]) -> FuturesUnordered<BoxFuture<'static, Ballot>> {
    peers
        .iter()
        .map(|p| {
            let (p, body) = (p.clone(), body.to_vec());
            let ask: BoxFuture<'static, Ballot> = Box::pin(async move {
                let grant = match p.call(Method::POST, "/peer/v1/lock", body).await {
                    Ok((StatusCode::OK, bytes)) => postcard::from_bytes(&bytes).ok(),
                    _ => None,
                };
                (p, grant)
            });
            ask
        })
        .collect()
}

/// Collects votes until `need` granted (counting the `local` ones) or no longer can.
async fn gather(
    ballots: &mut FuturesUnordered<BoxFuture<'static, Ballot>>,
    local: Vec<LockGrant>,
    need: usize,
) -> (Vec<LockGrant>, Vec<Arc<PeerClient>>) {
    let mut grants = local;
    let mut granted = Vec::new();
    let mut outstanding = ballots.len();
    if grants.len() >= need {
        return (grants, granted);
    }
    while let Some((peer, grant)) = ballots.next().await {
        outstanding -= 1;
        if let Some(g) = grant {
            grants.push(g);
            granted.push(peer);
        }
        if grants.len() >= need || grants.len() + outstanding < need {
            break;
        }
    }
    (grants, granted)
}

impl QuorumLocker {
    fn majority(&self) -> usize {
        let servers = self.peers.len() + 1;
        servers / 2 + 1
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.peers
            .first()
            .expect("a quorum locker has peers (a single server locks nothing)")
            .handle()
            .clone()
    }

    /// Asks every server for `resource` and returns as soon as a majority granted it (or can
    /// no longer grant it): a hung peer's vote is not waited for. Votes that arrive later are
    /// given back as they come.
    fn attempt(&self, resource: &str, owner: u128) -> Option<ClusterGuard> {
        let lease = self.table.lease();
        let req = LockRequest {
            resource: resource.to_string(),
            owner,
            ttl_ms: lease.as_millis() as u64,
            token: None,
        };
        let body = encode(&req);
        let handle = self.handle();
        let sent = tokio::time::Instant::now();
        let local: Vec<LockGrant> = self.table.try_lock(&req).into_iter().collect();
        let local_granted = !local.is_empty();
        let need = self.majority();
        let mut ballots = ask(&self.peers, &body);
        let (grants, granted) = super::client::block_on(&handle, gather(&mut ballots, local, need));
        if !ballots.is_empty() {
            let body = body.clone();
            handle.spawn(async move {
                while let Some((peer, grant)) = ballots.next().await {
                    if grant.is_some() {
                        release(&[peer], body.clone());
                    }
                }
            });
        }
        if grants.len() < need {
            if local_granted {
                self.table.unlock(resource, owner, None);
            }
            release(&granted, body);
            return None;
        }
        // The token passes every clock and token the voters know of, so it is newer than
        // the tokens of the holders before (a majority saw each of them, or its writes).
        for g in &grants {
            self.clock.observe(g.clock);
            if let Some(last) = g.last {
                self.clock.observe(last);
            }
        }
        let token = self.clock.now();
        let held = Arc::new(HeldLease::new(
            resource,
            owner,
            self.clock.clone(),
            token,
            sent + lease - margin(lease),
        ));
        let (table, peers) = (self.table.clone(), self.peers.clone());
        let round = move |token: Stamp| {
            let req = LockRequest {
                token: Some(token),
                ..req.clone()
            };
            let (table, peers) = (table.clone(), peers.clone());
            async move {
                let local: Vec<LockGrant> = table.try_lock(&req).into_iter().collect();
                let mut ballots = ask(&peers, &encode(&req));
                gather(&mut ballots, local, need).await.0.len() >= need
            }
        };
        handle.spawn(keep(held.clone(), lease, round));
        let fence = Fence::new(resource, held.clone());
        Some(ClusterGuard::new(
            fence,
            Box::new(Held {
                lease: held,
                table: self.table.clone(),
                peers: self.peers.clone(),
            }),
        ))
    }
}

impl KeyLocker for QuorumLocker {
    fn lock(&self, resource: &str) -> Result<ClusterGuard, StoreError> {
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
                return Ok(held);
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

    fn clock() -> Arc<Clock> {
        Arc::new(Clock::new(1, crate::store::now_ns))
    }

    fn req(resource: &str, owner: u128) -> LockRequest {
        LockRequest {
            resource: resource.into(),
            owner,
            ttl_ms: LEASE.as_millis() as u64,
            token: None,
        }
    }

    /// A table that started one lease ago (it votes now).
    fn started() -> (LockTable, Instant) {
        let now = Instant::now();
        (LockTable::started_at(LEASE, clock(), now - LEASE), now)
    }

    #[test]
    fn a_lock_is_exclusive_until_unlocked_or_expired() {
        let (t, now) = started();
        assert!(t.try_lock_at(&req("b/k", 1), now).is_some());
        assert!(t.try_lock_at(&req("b/k", 2), now).is_none());
        assert!(t.try_lock_at(&req("b/other", 2), now).is_some());
        t.unlock("b/k", 2, None); // not the owner: no effect
        assert!(t.try_lock(&req("b/k", 2)).is_none());
        t.unlock("b/k", 1, None);
        assert!(t.try_lock(&req("b/k", 2)).is_some());
        assert!(
            t.try_lock_at(&req("b/k", 3), Instant::now() + LEASE)
                .is_some(),
            "an expired lease is free"
        );
    }

    #[test]
    fn a_restarted_server_refuses_votes_within_a_lease_of_its_start() {
        let start = Instant::now();
        let t = LockTable::started_at(LEASE, clock(), start);
        assert!(t.try_lock_at(&req("b/k", 1), start).is_none());
        assert!(t
            .try_lock_at(&req("b/k", 1), start + LEASE - Duration::from_millis(1))
            .is_none());
        assert!(t.try_lock_at(&req("b/k", 1), start + LEASE).is_some());
    }

    #[test]
    fn a_renewed_lock_is_not_taken_by_another_owner_past_its_first_lease() {
        let (t, now) = started();
        assert!(t.try_lock_at(&req("b/k", 1), now).is_some());
        // Renewed two thirds into the lease, by the same owner.
        assert!(t.try_lock_at(&req("b/k", 1), now + LEASE * 2 / 3).is_some());
        let past_first = now + LEASE + Duration::from_millis(1);
        assert!(t.try_lock_at(&req("b/k", 2), past_first).is_none());
        // Not renewed again: free once the renewed lease ends.
        assert!(t
            .try_lock_at(
                &req("b/k", 2),
                now + LEASE * 5 / 3 + Duration::from_millis(1)
            )
            .is_some());
    }

    #[test]
    fn a_vote_hands_the_next_owner_the_last_token_it_heard_of() {
        let (t, now) = started();
        let token = Stamp { time: 42, node: 7 };
        t.try_lock_at(&req("b/k", 1), now).unwrap();
        t.unlock("b/k", 1, Some(token));
        let grant = t.try_lock(&req("b/k", 2)).unwrap();
        assert_eq!(grant.last, Some(token));
    }

    fn lease_until(until: tokio::time::Instant) -> Arc<HeldLease> {
        Arc::new(HeldLease::new(
            "b/k",
            1,
            clock(),
            Stamp { time: 1, node: 1 },
            until,
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_whose_renewal_fails_is_reported_lost() {
        let lease = lease_until(tokio::time::Instant::now() + LEASE);
        let keeper = tokio::spawn(keep(lease.clone(), LEASE, |_| async { false }));
        assert!(lease.valid());
        // Paused time runs on while the keeper retries: it stops once the lease has ended.
        keeper.await.unwrap();
        assert!(!lease.valid());
        assert!(lease.lost.load(Ordering::Acquire));
        assert_eq!(lease.newer_token(Stamp { time: 9, node: 9 }), None);
        let fence = Fence::new("b/k", lease);
        assert!(matches!(fence.lost(), StoreError::LockLost(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewed_lock_stays_valid_past_its_first_lease_until_released() {
        let start = tokio::time::Instant::now();
        let lease = lease_until(start + LEASE);
        let rounds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = rounds.clone();
        let keeper = tokio::spawn(keep(lease.clone(), LEASE, move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { true }
        }));
        tokio::time::sleep(LEASE * 3).await;
        assert!(lease.valid(), "renewed three leases on");
        assert!(rounds.load(Ordering::SeqCst) >= 3);
        lease.release();
        keeper.await.unwrap();
        assert!(!lease.valid(), "a released lock is not held");
    }
}
