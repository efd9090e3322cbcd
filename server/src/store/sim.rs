//! Deterministic simulation of one erasure set's records: in-memory drives behind
//! [`RemoteRecords`], reached by several coordinators (servers), each its own [`DriveSet`]
//! with its own clock, skewed up to ±10 minutes. A seeded schedule writes, deletes, reads and
//! lists keys while drives crash and come back, links are cut and mended, calls fail before
//! or after the drive applied them (a coordinator killed mid-write), time jumps, and the
//! scanner's sweep runs. A checker holds every answer against the history:
//!
//! - a read (or a listing) returns the last acknowledged state of the key, or the state of a
//!   write that was not acknowledged (it may take effect any time after it began) — never an
//!   older acknowledged state, never a value nobody wrote, never "absent" for a key whose
//!   last acknowledged write stored a value unless a delete of it is pending;
//! - a read quorum that cannot tell answers 503, which is always allowed.
//!
//! Every decision (the schedule, each call's fate) comes from the seed: a failing seed is
//! printed, and `COFFER_SIM_SEED=<seed> cargo test --release --workspace --lib sim::` replays it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::drive::{DataReader, DataWriter, Drive};
use super::erasure::{ErasureCodec, ErasureGeometry};
use super::set::{plan, Batch, Change, DriveSet, RecordPage, RemoteRecords, Slot, WireOp};
use super::stamp::{Clock, Stamp};
use super::{keys, Store, StoreError};

/// The simulated world: drives, links, time and the fate of every call.
struct World {
    seed: u64,
    drives: Vec<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>,
    /// Drives whose server is down.
    down: Mutex<HashSet<usize>>,
    /// Links (coordinator, drive) that are cut.
    cut: Mutex<HashSet<(usize, usize)>>,
    /// Drives whose server answers nothing (it dies while called): every call is lost.
    refuse: Mutex<HashSet<usize>>,
    /// Simulated wall time, nanoseconds since the epoch.
    now_ns: AtomicU64,
    /// Per mille of calls that fail before the drive applies them, and after.
    fail_before: u64,
    fail_after: u64,
    /// A coordinator whose record writes wait at the drives' door (a paused process).
    pause: Mutex<Pause>,
    door: std::sync::Condvar,
}

/// Who waits at the door, and how many of its calls do.
#[derive(Default)]
struct Pause {
    coord: Option<usize>,
    waiting: usize,
}

impl World {
    /// The fate of call number `n` on link (`coord`, `drive`): fixed by the seed alone.
    fn fate(&self, coord: usize, drive: usize, n: u64) -> Fate {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.seed, coord, drive, n).hash(&mut h);
        let roll = h.finish() % 1000;
        if roll < self.fail_before {
            Fate::Before
        } else if roll < self.fail_before + self.fail_after {
            Fate::After
        } else {
            Fate::Ok
        }
    }

    fn reachable(&self, coord: usize, drive: usize) -> bool {
        !self.down.lock().unwrap().contains(&drive)
            && !self.cut.lock().unwrap().contains(&(coord, drive))
    }
}

enum Fate {
    Ok,
    /// The call is lost before the drive sees it.
    Before,
    /// The drive applies the call; its answer is lost.
    After,
}

/// A coordinator's link to one simulated drive.
struct Link {
    world: Arc<World>,
    coord: usize,
    drive: usize,
    calls: AtomicU64,
}

fn lost() -> StoreError {
    StoreError::Io(std::io::Error::other("simulated: the call was lost"))
}

impl Link {
    fn call<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<Vec<u8>, Vec<u8>>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.world.reachable(self.coord, self.drive) {
            return Err(StoreError::QuorumLost { have: 0, need: 1 });
        }
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let fate = if self.world.refuse.lock().unwrap().contains(&self.drive) {
            Fate::Before
        } else {
            self.world.fate(self.coord, self.drive, n)
        };
        if matches!(fate, Fate::Before) {
            return Err(lost());
        }
        let result = f(&mut self.world.drives[self.drive].lock().unwrap());
        match fate {
            Fate::After => Err(lost()),
            _ => result,
        }
    }
}

impl RemoteRecords for Link {
    fn write(&self, ops: Vec<WireOp>) -> Result<(), StoreError> {
        let mut pause = self.world.pause.lock().unwrap();
        if pause.coord == Some(self.coord) {
            pause.waiting += 1;
            self.world.door.notify_all();
            while pause.coord == Some(self.coord) {
                pause = self.world.door.wait(pause).unwrap();
            }
        }
        drop(pause);
        self.call(|records| {
            let changes = plan(&ops, |k| Ok(records.get(k).cloned()))?;
            let changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = changes
                .into_iter()
                .map(|c| match c {
                    Change::Put(k, v) => (k.to_vec(), Some(v.to_vec())),
                    Change::Delete(k) => (k.to_vec(), None),
                })
                .collect();
            for (k, v) in changes {
                match v {
                    Some(v) => records.insert(k, v),
                    None => records.remove(&k),
                };
            }
            Ok(())
        })
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.call(|records| Ok(records.get(key).cloned()))
    }

    fn page(&self, from: &[u8], inclusive: bool, limit: usize) -> Result<RecordPage, StoreError> {
        self.call(|records| {
            let mut page: Vec<(Vec<u8>, Vec<u8>)> = records
                .range(from.to_vec()..)
                .filter(|(k, _)| inclusive || k.as_slice() != from)
                .take(limit + 1)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let more = page.len() > limit;
            page.truncate(limit);
            Ok((page, more))
        })
    }

    fn reachable(&self) -> bool {
        self.world.reachable(self.coord, self.drive)
    }

    fn responsive(&self) -> bool {
        self.world.reachable(self.coord, self.drive)
    }

    fn retry_after(&self) -> Duration {
        Duration::ZERO
    }
}

/// The simulation holds records only; no data file is ever asked for.
struct NoFiles;

impl Drive for NoFiles {
    fn root(&self) -> &Path {
        Path::new("/simulated")
    }
    fn create(&self, _: &str) -> std::io::Result<Box<dyn DataWriter>> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
    fn open_at(&self, _: &str, _: u64) -> std::io::Result<Box<dyn DataReader>> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
    fn size(&self, _: &str) -> std::io::Result<u64> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
    fn remove(&self, _: &str) -> std::io::Result<()> {
        Ok(())
    }
    fn clear_tmp(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A simulated cluster: the world and one store (one set) per coordinator.
struct Sim {
    world: Arc<World>,
    coords: Vec<Store>,
}

impl Sim {
    /// A set of `data`+`parity` drives reached by `coords` servers; `faults` is the per
    /// mille of calls lost before and after the drive applied them.
    fn new(
        seed: u64,
        (data, parity): (usize, usize),
        coords: usize,
        faults: (u64, u64),
        skews: &[i64],
    ) -> Sim {
        let n = data + parity;
        let world = Arc::new(World {
            seed,
            drives: (0..n).map(|_| Mutex::new(BTreeMap::new())).collect(),
            down: Mutex::new(HashSet::new()),
            cut: Mutex::new(HashSet::new()),
            refuse: Mutex::new(HashSet::new()),
            now_ns: AtomicU64::new(1_800_000_000_000_000_000),
            fail_before: faults.0,
            fail_after: faults.1,
            pause: Mutex::default(),
            door: std::sync::Condvar::new(),
        });
        let geometry = ErasureGeometry::new(data, parity).expect("a valid geometry");
        let coords = (0..coords)
            .map(|c| {
                let slots = (0..n)
                    .map(|d| {
                        Some(Slot::remote(
                            Arc::new(NoFiles),
                            Arc::new(Link {
                                world: world.clone(),
                                coord: c,
                                drive: d,
                                calls: AtomicU64::new(0),
                            }),
                        ))
                    })
                    .collect();
                let codec = ErasureCodec::with_default_block_size(geometry).expect("a codec");
                let mut set = DriveSet::assemble(slots, geometry, Some(codec));
                let skew = skews[c];
                let w = world.clone();
                set.set_clock(Arc::new(Clock::new(c as u32 + 1, move || {
                    w.now_ns.load(Ordering::Relaxed).saturating_add_signed(skew)
                })));
                Store::assemble(vec![vec![Arc::new(set)]], None, "sim")
            })
            .collect();
        Sim { world, coords }
    }

    /// Each drive's stamp and value of `key`, for a failure's report.
    fn dump(&self, key: &[u8]) -> String {
        (0..self.world.drives.len())
            .map(|d| {
                let held = self.world.drives[d].lock().unwrap().get(key).cloned();
                match held.as_deref().map(super::stamp::open) {
                    None => format!("{d}: -"),
                    Some(o) => format!(
                        "{d}: {}.{} {:?}",
                        o.stamp.time % 1_000_000_000_000,
                        o.stamp.node,
                        o.payload.map(decode)
                    ),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn set(&self, coord: usize) -> &DriveSet {
        self.coords[coord].drive_set()
    }
}

/// What happened to one key, in order.
#[derive(Default)]
struct KeyHistory {
    /// The state of the last acknowledged write (`None`: deleted or never written).
    acked: Option<u64>,
    /// Index (in `writes`) of that write.
    acked_at: Option<usize>,
    /// Every write: its state and whether it was acknowledged.
    writes: Vec<(Option<u64>, bool)>,
}

impl KeyHistory {
    /// Whether a read may return `state` now.
    fn allows(&self, state: Option<u64>) -> Result<(), String> {
        if state == self.acked {
            return Ok(());
        }
        // A write never acknowledged may take effect at any time after it began.
        if self.writes.iter().any(|&(s, acked)| !acked && s == state) {
            return Ok(());
        }
        if state.is_none() && self.acked_at.is_none() {
            return Ok(());
        }
        match self.writes.iter().position(|&(s, _)| s == state) {
            Some(i) => Err(format!(
                "returned {state:?}, the state of acknowledged write #{i}, after acknowledged write #{} ({:?}): an acknowledged state went back",
                self.acked_at.unwrap_or(0),
                self.acked
            )),
            None => Err(format!(
                "returned {state:?}, which nobody wrote (last acknowledged: {:?})",
                self.acked
            )),
        }
    }
}

fn key_name(k: usize) -> Vec<u8> {
    keys::access_key(&format!("key{k}"))
}

/// Runs one seeded schedule of `steps` steps; `Err` describes the first violation with the
/// steps that led to it.
fn run(seed: u64, steps: usize) -> Result<usize, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (data, parity) = [(6, 2), (2, 2), (1, 1), (4, 2)][rng.gen_range(0..4)];
    let n = data + parity;
    let coords = rng.gen_range(2..=4);
    let faults = (rng.gen_range(0..60), rng.gen_range(0..60));
    // Each server's clock is off by up to ten minutes either way.
    let skews: Vec<i64> = (0..coords)
        .map(|_| rng.gen_range(-600_000_000_000i64..=600_000_000_000))
        .collect();
    let sim = Sim::new(seed, (data, parity), coords, faults, &skews);
    let nkeys = rng.gen_range(1..=4);
    let mut history: Vec<KeyHistory> = (0..nkeys).map(|_| KeyHistory::default()).collect();
    let mut log: Vec<String> = vec![format!(
        "seed {seed}: {data}+{parity}, {coords} servers, {nkeys} keys, calls lost {}‰ before / {}‰ after",
        sim.world.fail_before, sim.world.fail_after
    )];
    let mut next_value = 1u64;
    let mut checks = 0;
    let fail = |log: &[String], why: String| -> String {
        let tail = log.len().saturating_sub(40);
        format!("{}\n{}\n=> {why}", log[0], log[tail.max(1)..].join("\n"))
    };
    for step in 0..steps {
        let coord = rng.gen_range(0..coords);
        let k = rng.gen_range(0..nkeys);
        let key = key_name(k);
        let set = sim.set(coord);
        sim.world
            .now_ns
            .fetch_add(rng.gen_range(0..50_000_000), Ordering::Relaxed);
        match rng.gen_range(0..100) {
            0..=29 => {
                let value = next_value;
                next_value += 1;
                let mut batch = Batch::default();
                batch.put(key.clone(), value.to_be_bytes().to_vec());
                let r = set.write(&batch);
                log.push(format!("{step}: s{coord} put key{k}={value}: {r:?}"));
                record_write(&mut history[k], Some(value), &r);
            }
            30..=44 => {
                let mut batch = Batch::default();
                batch.delete(&key);
                let r = set.write(&batch);
                log.push(format!("{step}: s{coord} delete key{k}: {r:?}"));
                record_write(&mut history[k], None, &r);
            }
            45..=69 => {
                let r = set.get(&key);
                log.push(format!("{step}: s{coord} get key{k}: {r:?}"));
                match r {
                    Ok(v) => {
                        let state = v.map(|b| decode(&b));
                        history[k]
                            .allows(state)
                            .map_err(|e| fail(&log, format!("{e}\ndrives: {}", sim.dump(&key))))?;
                        checks += 1;
                    }
                    Err(StoreError::QuorumLost { .. }) => {}
                    Err(e) => return Err(fail(&log, format!("a read failed with {e}"))),
                }
            }
            70..=77 => {
                let r = set.scan(&[keys::ACCESS_KEY]);
                log.push(format!(
                    "{step}: s{coord} list: {:?}",
                    r.as_ref().map(|l| l.len())
                ));
                match r {
                    Ok(listed) => {
                        let listed: HashMap<Vec<u8>, u64> = listed
                            .into_iter()
                            .map(|(k, v)| (k.to_vec(), decode(&v)))
                            .collect();
                        for (k, h) in history.iter().enumerate() {
                            h.allows(listed.get(&key_name(k)).copied())
                                .map_err(|e| fail(&log, format!("listing: key{k} {e}")))?;
                            checks += 1;
                        }
                    }
                    Err(StoreError::QuorumLost { .. }) => {}
                    Err(e) => return Err(fail(&log, format!("a listing failed with {e}"))),
                }
            }
            78..=85 => {
                // A server crashes or comes back (its drives keep what they synced).
                let d = rng.gen_range(0..n);
                let mut down = sim.world.down.lock().unwrap();
                if !down.remove(&d) && down.len() < parity + 1 {
                    down.insert(d);
                }
                log.push(format!("{step}: drives down {:?}", sorted(&down)));
            }
            86..=90 => {
                let mut cut = sim.world.cut.lock().unwrap();
                if rng.gen_bool(0.3) {
                    cut.clear();
                } else {
                    cut.insert((coord, rng.gen_range(0..n)));
                }
                log.push(format!("{step}: links cut {:?}", sorted(&cut)));
            }
            91..=95 => {
                let r = sim.coords[coord].sweep_records(0, Duration::ZERO);
                log.push(format!("{step}: s{coord} sweep: {r:?}"));
            }
            _ => {
                // Everything mends: every drive up, every link whole.
                sim.world.down.lock().unwrap().clear();
                sim.world.cut.lock().unwrap().clear();
                log.push(format!("{step}: all mended"));
            }
        }
    }
    Ok(checks)
}

fn sorted<T: Ord + Clone>(s: &HashSet<T>) -> Vec<T> {
    let mut v: Vec<T> = s.iter().cloned().collect();
    v.sort();
    v
}

fn decode(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().expect("values are 8 bytes"))
}

fn record_write(h: &mut KeyHistory, state: Option<u64>, r: &Result<(), StoreError>) {
    match r {
        Ok(()) => {
            h.writes.push((state, true));
            h.acked = state;
            h.acked_at = Some(h.writes.len() - 1);
        }
        // Refused before anything was sent: it never happened.
        Err(StoreError::QuorumLost { .. }) => {}
        Err(_) => h.writes.push((state, false)),
    }
}

#[test]
fn thousands_of_seeded_schedules_never_revert_an_acknowledged_write() {
    if let Some(seed) = std::env::var("COFFER_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        if let Err(e) = run(seed, 400) {
            panic!("{e}");
        }
        return;
    }
    // A fixed budget: as many seeds as fit, and never fewer than the floor.
    const FLOOR: u64 = 2_000;
    let budget = Duration::from_secs(40);
    let start = Instant::now();
    let base: u64 = rand::random::<u32>() as u64;
    let mut seeds = 0u64;
    let mut checks = 0;
    while seeds < FLOOR || (start.elapsed() < budget && seeds < 20_000) {
        let seed = base + seeds;
        match run(seed, 150) {
            Ok(c) => checks += c,
            Err(e) => panic!(
                "{e}\nreplay: COFFER_SIM_SEED={seed} cargo test --release --workspace --lib sim::"
            ),
        }
        seeds += 1;
    }
    assert!(
        checks > seeds as usize,
        "the schedules checked reads ({checks} in {seeds} seeds)"
    );
    eprintln!(
        "{seeds} seeds, {checks} checked answers in {:?}",
        start.elapsed()
    );
}

/// A named scenario: a fresh simulated set, no random faults, clocks in step.
fn quiet(geometry: (usize, usize), coords: usize) -> Sim {
    Sim::new(7, geometry, coords, (0, 0), &vec![0; coords])
}

fn put(set: &DriveSet, key: &[u8], value: u64) -> Result<(), StoreError> {
    let mut b = Batch::default();
    b.put(key.to_vec(), value.to_be_bytes().to_vec());
    set.write(&b)
}

fn get(set: &DriveSet, key: &[u8]) -> Result<Option<u64>, StoreError> {
    set.get(key).map(|v| v.map(|b| decode(&b)))
}

fn listed(set: &DriveSet) -> Result<Vec<u64>, StoreError> {
    Ok(set
        .scan(&[keys::ACCESS_KEY])?
        .into_iter()
        .map(|(_, v)| decode(&v))
        .collect())
}

fn stamp_on(sim: &Sim, drive: usize, key: &[u8]) -> Option<Stamp> {
    sim.world.drives[drive]
        .lock()
        .unwrap()
        .get(key)
        .map(|v| super::stamp::open(v).stamp)
}

/// What drive `drive` holds of `key`: `None` nothing, `Some(None)` a tombstone.
fn value_on(sim: &Sim, drive: usize, key: &[u8]) -> Option<Option<u64>> {
    sim.world.drives[drive]
        .lock()
        .unwrap()
        .get(key)
        .map(|v| super::stamp::open(v).payload.map(decode))
}

fn mark(set: &Mutex<HashSet<usize>>, drives: &[usize]) {
    let mut s = set.lock().unwrap();
    s.clear();
    s.extend(drives.iter().copied());
}

/// Finding 1: an overwrite that reached three drives of 6+2 (then its server died) used to be
/// "undone" by deleting the key where it landed, which left the old value on five drives —
/// below the read quorum of six — and the object vanished.
#[test]
fn an_overwrite_that_misses_its_quorum_leaves_the_previous_value_readable() {
    let sim = quiet((6, 2), 2);
    let key = key_name(0);
    put(sim.set(0), &key, 1).unwrap();
    mark(&sim.world.refuse, &[3, 4, 5, 6, 7]);
    let failed = put(sim.set(0), &key, 2);
    assert!(
        matches!(failed, Err(StoreError::Indeterminate { have: 3, need: 6 })),
        "{failed:?}"
    );
    mark(&sim.world.refuse, &[]);
    for c in 0..2 {
        assert_eq!(get(sim.set(c), &key).unwrap(), Some(1));
        assert_eq!(listed(sim.set(c)).unwrap(), vec![1]);
    }
    // The sweep takes the failed write back: the old value is on every drive again.
    sim.coords[1].sweep_records(0, Duration::ZERO).unwrap();
    for d in 0..8 {
        assert_eq!(value_on(&sim, d, &key), Some(Some(1)), "drive {d}");
    }
    assert_eq!(get(sim.set(0), &key).unwrap(), Some(1));
}

/// Finding 2: drives holding different values were never reconciled and a read took the
/// lowest-numbered drive's: a server back from a restart brought back what it held before
/// (a disabled access key authenticated again).
#[test]
fn a_server_back_from_a_restart_cannot_bring_back_what_was_replaced() {
    let sim = quiet((2, 2), 2);
    let key = key_name(0);
    put(sim.set(0), &key, 1).unwrap();
    mark(&sim.world.down, &[0]);
    put(sim.set(1), &key, 2).unwrap();
    mark(&sim.world.down, &[]);
    // Only the returning drive and one other answer.
    mark(&sim.world.refuse, &[2, 3]);
    assert_eq!(get(sim.set(0), &key).unwrap(), Some(2));
    assert_eq!(listed(sim.set(0)).unwrap(), vec![2]);
    // The read repaired the returning drive.
    assert_eq!(stamp_on(&sim, 0, &key), stamp_on(&sim, 1, &key));
}

/// Finding 3: a scan dropped unreachable drives before the merge, so a record acknowledged
/// on a write quorum, with two of those drives now away, was left out of listings (and a
/// read said 503) although a read quorum answered.
#[test]
fn a_record_on_a_write_quorum_stays_visible_with_its_holders_away() {
    let sim = quiet((6, 2), 2);
    let key = key_name(0);
    mark(&sim.world.down, &[6, 7]);
    put(sim.set(0), &key, 1).unwrap();
    mark(&sim.world.down, &[0, 1]);
    assert_eq!(get(sim.set(1), &key).unwrap(), Some(1));
    assert_eq!(listed(sim.set(1)).unwrap(), vec![1]);
    // With fewer drives than a read quorum, nobody can tell: 503, never "absent".
    mark(&sim.world.down, &[0, 1, 2]);
    assert!(matches!(
        get(sim.set(1), &key),
        Err(StoreError::QuorumLost { .. })
    ));
    assert!(matches!(
        listed(sim.set(1)),
        Err(StoreError::QuorumLost { .. })
    ));
}

/// Finding 6 (and every heal): a drive takes a record only when its stamp is newer than the
/// one it holds, so a copy read long before cannot be written back over a newer change.
#[test]
fn a_heal_with_an_old_copy_cannot_move_a_record_backwards() {
    let sim = quiet((2, 2), 1);
    let key = key_name(0);
    put(sim.set(0), &key, 1).unwrap();
    let old = sim.world.drives[0]
        .lock()
        .unwrap()
        .get(&key)
        .cloned()
        .unwrap();
    let mut b = Batch::default();
    b.delete(&key);
    sim.set(0).write(&b).unwrap();
    let slot = sim.set(0).slots[0].as_ref().unwrap();
    let refused = slot.put(&key, old);
    assert!(matches!(refused, Err(StoreError::Stale(_))), "{refused:?}");
    // Nor does a copy of a record from before stamps (the oldest of all).
    let refused = slot.put(&key, 1u64.to_be_bytes().to_vec());
    assert!(matches!(refused, Err(StoreError::Stale(_))), "{refused:?}");
    assert_eq!(get(sim.set(0), &key).unwrap(), None);
    assert_eq!(listed(sim.set(0)).unwrap(), Vec::<u64>::new());
}

/// Clock skew: a server ten minutes behind writes after one ten minutes ahead. Its stamp is
/// older; the drives refuse it, it stamps again past theirs, and its write wins as it must.
#[test]
fn a_write_through_a_server_with_a_slow_clock_replaces_a_newer_stamped_one() {
    let ten_minutes = 600_000_000_000i64;
    let sim = Sim::new(7, (2, 2), 2, (0, 0), &[ten_minutes, -ten_minutes]);
    let key = key_name(0);
    put(sim.set(0), &key, 1).unwrap();
    let first = stamp_on(&sim, 0, &key).unwrap();
    put(sim.set(1), &key, 2).unwrap();
    assert!(stamp_on(&sim, 0, &key).unwrap() > first);
    for c in 0..2 {
        assert_eq!(get(sim.set(c), &key).unwrap(), Some(2));
    }
    // And a delete through the slow server sticks too.
    let mut b = Batch::default();
    b.delete(&key);
    sim.set(1).write(&b).unwrap();
    assert_eq!(get(sim.set(0), &key).unwrap(), None);
}

/// Drives written before records were stamped: their values read as before (visible on a
/// read quorum), are replaced by the next write, and one left on too few drives by an old
/// delete stays invisible and is swept.
#[test]
fn records_written_before_stamps_read_as_before_and_upgrade_in_place() {
    let sim = quiet((2, 2), 1);
    let (kept, orphan) = (key_name(0), key_name(1));
    for d in 0..4 {
        let mut drive = sim.world.drives[d].lock().unwrap();
        drive.insert(kept.clone(), 5u64.to_be_bytes().to_vec());
        if d == 3 {
            drive.insert(orphan.clone(), 9u64.to_be_bytes().to_vec());
        }
    }
    let set = sim.set(0);
    assert_eq!(get(set, &kept).unwrap(), Some(5));
    assert_eq!(get(set, &orphan).unwrap(), None);
    assert_eq!(listed(set).unwrap(), vec![5]);
    put(set, &kept, 6).unwrap();
    assert_eq!(get(set, &kept).unwrap(), Some(6));
    assert!(stamp_on(&sim, 0, &kept).unwrap() > Stamp::LEGACY);
    sim.coords[0].sweep_records(0, Duration::ZERO).unwrap();
    assert_eq!(
        value_on(&sim, 3, &orphan),
        Some(None),
        "the old orphan is taken back (a tombstone)"
    );
    assert_eq!(get(set, &orphan).unwrap(), None);
}

/// A delete leaves tombstones, and a drive that missed it gets one too. Tombstones are kept:
/// seed 703128581 showed that purging them from some drives but not others let a later write
/// stamped by a slow clock in under the copies left, which then won.
#[test]
fn a_delete_a_drive_missed_reaches_it_and_its_tombstone_stays() {
    let sim = quiet((2, 2), 1);
    let key = key_name(0);
    put(sim.set(0), &key, 1).unwrap();
    mark(&sim.world.down, &[2]);
    let mut b = Batch::default();
    b.delete(&key);
    sim.set(0).write(&b).unwrap();
    mark(&sim.world.down, &[]);
    // Read through the returning drive and another: the read repairs it.
    mark(&sim.world.refuse, &[0, 1]);
    assert_eq!(get(sim.set(0), &key).unwrap(), None);
    mark(&sim.world.refuse, &[]);
    let tomb = stamp_on(&sim, 3, &key);
    assert!(tomb.is_some(), "a delete leaves a tombstone");
    assert_eq!(
        stamp_on(&sim, 2, &key),
        tomb,
        "the tombstone reached the drive"
    );
    sim.coords[0].sweep_records(0, Duration::ZERO).unwrap();
    sim.coords[0].sweep_records(0, Duration::ZERO).unwrap();
    for d in 0..4 {
        assert_eq!(
            stamp_on(&sim, d, &key),
            tomb,
            "drive {d} keeps the tombstone"
        );
    }
    assert_eq!(get(sim.set(0), &key).unwrap(), None);
}

#[test]
fn seed_703128581_a_write_under_a_partly_removed_tombstone_is_not_lost() {
    run(703128581, 400).unwrap_or_else(|e| panic!("{e}"));
}

/// Finding 7: the missed-write healer waited until every drive answered, so with one drive
/// dead a write that reached exactly a write quorum (another drive missed it for a moment)
/// stayed one failure from loss until the 10-minute scanner.
#[test]
fn a_write_a_live_drive_missed_is_healed_while_another_drive_is_dead() {
    let sim = quiet((4, 2), 1);
    let key = key_name(0);
    mark(&sim.world.down, &[5]);
    mark(&sim.world.refuse, &[4]);
    put(sim.set(0), &key, 1).unwrap();
    mark(&sim.world.refuse, &[]);
    assert_eq!(stamp_on(&sim, 4, &key), None);
    let status = crate::heal::HealStatus::default();
    crate::heal::heal_missed(&sim.coords[0], &status);
    let written = stamp_on(&sim, 0, &key);
    assert_eq!(
        stamp_on(&sim, 4, &key),
        written,
        "healed onto the live drive"
    );
    assert_eq!(sim.set(0).missed_records(), 1, "waiting for the dead drive");
    mark(&sim.world.down, &[]);
    crate::heal::heal_missed(&sim.coords[0], &status);
    assert_eq!(stamp_on(&sim, 5, &key), written, "healed once it is back");
    assert_eq!(sim.set(0).missed_records(), 0);
}

#[cfg(test)]
mod fence;
