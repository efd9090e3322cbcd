//! Fenced writes on a simulated set reached by two coordinators: the holder of a key's lock
//! before (whose lease ran out while it was paused) and the holder after.

use std::sync::atomic::AtomicBool;

use super::super::fence::{Fence, Lease};
use super::*;

/// A lease the test holds the strings of: whether it is still valid, and its token.
struct TestLease {
    valid: AtomicBool,
    token: Mutex<Stamp>,
    clock: Arc<Clock>,
}

impl Lease for TestLease {
    fn valid(&self) -> bool {
        self.valid.load(Ordering::SeqCst)
    }
    fn token(&self) -> Stamp {
        *self.token.lock().unwrap()
    }
    fn newer_token(&self, held: Stamp) -> Option<Stamp> {
        if !self.valid() {
            return None;
        }
        self.clock.observe(held);
        let t = self.clock.now();
        *self.token.lock().unwrap() = t;
        Some(t)
    }
}

/// The lock of `key_name(0)` taken by coordinator `coord`, its token from that coordinator's
/// clock now.
fn take(sim: &Sim, coord: usize) -> (Arc<TestLease>, Fence) {
    let clock = sim.set(coord).clock().clone();
    let lease = Arc::new(TestLease {
        valid: AtomicBool::new(true),
        token: Mutex::new(clock.now()),
        clock,
    });
    (lease.clone(), Fence::new("bkt/k", lease))
}

fn put_fenced(set: &DriveSet, key: &[u8], value: u64, fence: &Fence) -> Result<(), StoreError> {
    let mut b = Batch::default();
    b.put(key.to_vec(), value.to_be_bytes().to_vec());
    set.write_fenced(&b, Some(fence))
}

/// Issue 15 finding 4: a writer that checked its lease, then stalled past it (a GC pause, a
/// stopped process) while the next holder took the lock and wrote, used to overwrite that
/// write when it woke up. Every drive now holds the next holder's newer token and refuses
/// the stale write; it is not acknowledged, and the next holder's value stays.
#[test]
fn a_writer_paused_past_its_lease_cannot_overwrite_the_next_holders_write() {
    let sim = quiet((2, 2), 2);
    let key = key_name(0);
    let (old_lease, old) = take(&sim, 0);
    sim.world.pause.lock().unwrap().coord = Some(0);
    std::thread::scope(|scope| {
        let paused = scope.spawn(|| put_fenced(sim.set(0), &key, 1, &old));
        // The old holder's write waits at every drive's door: its lease checked, then paused.
        let mut pause = sim.world.pause.lock().unwrap();
        while pause.waiting < 4 {
            pause = sim.world.door.wait(pause).unwrap();
        }
        drop(pause);
        // Its lease runs out; the next holder locks the key and writes.
        old_lease.valid.store(false, Ordering::SeqCst);
        let (_, next) = take(&sim, 1);
        assert!(next.token() > old.token());
        put_fenced(sim.set(1), &key, 2, &next).unwrap();
        // The old holder wakes up and its write reaches the drives.
        sim.world.pause.lock().unwrap().coord = None;
        sim.world.door.notify_all();
        let woke = paused.join().unwrap();
        assert!(matches!(woke, Err(StoreError::LockLost(_))), "{woke:?}");
    });
    for c in 0..2 {
        assert_eq!(get(sim.set(c), &key).unwrap(), Some(2));
    }
    for d in 0..4 {
        assert_eq!(value_on(&sim, d, &key), Some(Some(2)), "drive {d}");
    }
}

/// The old holder's write after the next holder's is refused by the drives (not
/// acknowledged), and what the next holder wrote stays readable.
#[test]
fn a_write_under_an_older_token_than_the_drives_saw_is_refused() {
    let sim = quiet((2, 2), 2);
    let key = key_name(0);
    let (old_lease, old) = take(&sim, 0);
    let (_, next) = take(&sim, 1);
    put_fenced(sim.set(1), &key, 2, &next).unwrap();
    old_lease.valid.store(false, Ordering::SeqCst);
    let refused = put_fenced(sim.set(0), &key, 1, &old);
    assert!(
        matches!(refused, Err(StoreError::LockLost(_))),
        "{refused:?}"
    );
    assert_eq!(get(sim.set(0), &key).unwrap(), Some(2));
    for d in 0..4 {
        assert_eq!(value_on(&sim, d, &key), Some(Some(2)), "drive {d}");
    }
    // The next holder goes on writing under its token.
    put_fenced(sim.set(1), &key, 3, &next).unwrap();
    assert_eq!(get(sim.set(0), &key).unwrap(), Some(3));
}

/// A holder whose lease is valid but whose token is older than one the drives saw (its clock
/// behind the previous holder's) takes a newer token and writes.
#[test]
fn a_valid_holder_meeting_a_newer_token_takes_a_newer_one_and_writes() {
    let sim = Sim::new(7, (2, 2), 2, (0, 0), &[0, 600_000_000_000]);
    let key = key_name(0);
    // Coordinator 0's clock is ten minutes behind coordinator 1's.
    let (_, behind) = take(&sim, 0);
    let (ahead_lease, ahead) = take(&sim, 1);
    assert!(behind.token() < ahead.token());
    put_fenced(sim.set(1), &key, 1, &ahead).unwrap();
    ahead_lease.valid.store(false, Ordering::SeqCst);
    put_fenced(sim.set(0), &key, 2, &behind).unwrap();
    assert!(behind.token() > ahead.token());
    assert_eq!(get(sim.set(1), &key).unwrap(), Some(2));
}

/// A write under a lock already known lost sends nothing.
#[test]
fn a_write_under_a_lost_lock_is_refused_before_reaching_a_drive() {
    let sim = quiet((2, 2), 1);
    let key = key_name(0);
    put(sim.set(0), &key, 1).unwrap();
    let (lease, fence) = take(&sim, 0);
    lease.valid.store(false, Ordering::SeqCst);
    let refused = put_fenced(sim.set(0), &key, 2, &fence);
    assert!(
        matches!(refused, Err(StoreError::LockLost(_))),
        "{refused:?}"
    );
    for d in 0..4 {
        assert_eq!(value_on(&sim, d, &key), Some(Some(1)), "drive {d}");
        assert!(sim.world.drives[d]
            .lock()
            .unwrap()
            .keys()
            .all(|k| k[0] != keys::FENCE));
    }
}

/// Hands out a lock with a fresh token of its coordinator's clock each time, past the last
/// token the (shared, simulated) voters saw as the quorum lock does, and keeps the leases so
/// the test can end them.
struct TestLocker {
    clock: Arc<Clock>,
    voters: Arc<Mutex<Stamp>>,
    leases: Mutex<Vec<Arc<TestLease>>>,
}

impl super::super::KeyLocker for TestLocker {
    fn lock(&self, resource: &str) -> Result<super::super::ClusterGuard, StoreError> {
        let mut last = self.voters.lock().unwrap();
        self.clock.observe(*last);
        *last = self.clock.now();
        let lease = Arc::new(TestLease {
            valid: AtomicBool::new(true),
            token: Mutex::new(*last),
            clock: self.clock.clone(),
        });
        self.leases.lock().unwrap().push(lease.clone());
        Ok(super::super::ClusterGuard::new(
            Fence::new(resource, lease),
            Box::new(()),
        ))
    }
}

/// The stores of `sim`'s coordinators again, each locking keys with a [`TestLocker`].
fn locked(sim: &Sim) -> (Vec<Store>, Vec<Arc<TestLocker>>) {
    let voters = Arc::new(Mutex::new(Stamp::LEGACY));
    let lockers: Vec<Arc<TestLocker>> = (0..sim.coords.len())
        .map(|c| {
            Arc::new(TestLocker {
                clock: sim.set(c).clock().clone(),
                voters: voters.clone(),
                leases: Mutex::default(),
            })
        })
        .collect();
    let stores = sim
        .coords
        .iter()
        .zip(&lockers)
        .map(|(s, l)| {
            let locker: Arc<dyn super::super::KeyLocker> = l.clone();
            Store::assemble(vec![vec![s.sets()[0].clone()]], Some(locker), "sim")
        })
        .collect();
    (stores, lockers)
}

fn tags(store: &Store) -> Vec<(String, String)> {
    store.bucket("bkt").unwrap().tags
}

/// The same through the object layer: a bucket update whose writer stalls at the drives past
/// its lease while another server updates the bucket is refused, and the other's stays.
#[test]
fn a_bucket_update_paused_past_its_lease_cannot_overwrite_the_next_holders() {
    let sim = quiet((2, 2), 2);
    let (stores, lockers) = locked(&sim);
    stores[0].create_bucket("bkt", None).unwrap();
    let tag = |v: &str| vec![("writer".to_string(), v.to_string())];
    sim.world.pause.lock().unwrap().coord = Some(0);
    std::thread::scope(|scope| {
        let paused = scope.spawn(|| {
            stores[0].update_bucket("bkt", |b| {
                b.tags = tag("old");
                Ok(())
            })
        });
        let mut pause = sim.world.pause.lock().unwrap();
        while pause.waiting < 4 {
            pause = sim.world.door.wait(pause).unwrap();
        }
        drop(pause);
        let old = lockers[0].leases.lock().unwrap().last().unwrap().clone();
        old.valid.store(false, Ordering::SeqCst);
        stores[1]
            .update_bucket("bkt", |b| {
                b.tags = tag("new");
                Ok(())
            })
            .unwrap();
        sim.world.pause.lock().unwrap().coord = None;
        sim.world.door.notify_all();
        let woke = paused.join().unwrap();
        assert!(matches!(woke, Err(StoreError::LockLost(_))), "{woke:?}");
    });
    assert_eq!(tags(&stores[0]), tag("new"));
    assert_eq!(tags(&stores[1]), tag("new"));
}
