//! The background scanner: walks every object version of this server's erasure set at a
//! bounded rate, checks that each drive holds its record and its shard files, and rebuilds
//! what is missing. Its progress is shared with the admin API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::store::Store;

/// Counters of the scanner, readable at any time.
#[derive(Default)]
pub struct HealStatus {
    pub cycles: AtomicU64,
    pub objects_scanned: AtomicU64,
    pub shards_missing: AtomicU64,
    pub shards_healed: AtomicU64,
    pub bytes_healed: AtomicU64,
    pub errors: AtomicU64,
    /// Objects of the current cycle still to scan, as of the last page (0 between cycles).
    pub scanning: AtomicU64,
    /// Version records removed because only a minority of drives kept them.
    pub orphans_removed: AtomicU64,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct HealStatusReport {
    pub cycles: u64,
    pub objects_scanned: u64,
    pub shards_missing: u64,
    pub shards_healed: u64,
    pub bytes_healed: u64,
    pub errors: u64,
    pub scanning: bool,
    pub orphans_removed: u64,
    /// Bytes of shard files that drives healing right now (empty or returning) still have
    /// to receive.
    pub bytes_left: u64,
    /// Drives of this server still catching up with the rest of their set (after a restart,
    /// or empty): they are online but do not hold everything yet.
    pub drives_healing: u64,
    /// Writes this server made while a drive was away, not yet healed onto it: until then the
    /// set holds them with less redundancy than its parity promises.
    pub writes_to_heal: u64,
}

impl HealStatus {
    /// Counts what one heal found and did (not an object scanned by the scanner).
    pub fn add(&self, r: &crate::store::heal::HealReport) {
        self.shards_missing
            .fetch_add(r.shards_missing, Ordering::Relaxed);
        self.shards_healed
            .fetch_add(r.shards_healed, Ordering::Relaxed);
        self.bytes_healed
            .fetch_add(r.bytes_healed, Ordering::Relaxed);
    }

    /// The counters, with the bytes still to heal into `store`'s drives.
    pub fn report(&self, store: &Store) -> HealStatusReport {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HealStatusReport {
            cycles: g(&self.cycles),
            objects_scanned: g(&self.objects_scanned),
            shards_missing: g(&self.shards_missing),
            shards_healed: g(&self.shards_healed),
            bytes_healed: g(&self.bytes_healed),
            errors: g(&self.errors),
            scanning: g(&self.scanning) > 0,
            orphans_removed: g(&self.orphans_removed),
            bytes_left: store.sets().iter().map(|s| g(&s.heal_bytes_left)).sum(),
            drives_healing: store.sets().iter().map(|s| g(&s.drives_healing)).sum(),
            writes_to_heal: store.sets().iter().map(|s| s.missed_records() as u64).sum(),
        }
    }
}

/// How fast and how often the scanner runs.
#[derive(Clone, Copy, Debug)]
pub struct ScanPace {
    /// Most objects checked per second (bounds the scanner's I/O).
    pub objects_per_second: u64,
    /// Pause between two full cycles.
    pub interval: Duration,
}

impl Default for ScanPace {
    fn default() -> Self {
        ScanPace {
            objects_per_second: 500,
            interval: Duration::from_secs(600),
        }
    }
}

/// Runs one full scan cycle (blocking): every version checked, damage healed.
pub fn scan_cycle(store: &Store, status: &HealStatus, pace: ScanPace) {
    const PAGE: usize = 100;
    status.scanning.store(1, Ordering::Relaxed);
    let mut after: Option<Vec<u8>> = None;
    loop {
        let started = Instant::now();
        let (page, next) = match store.scan_versions(after.as_deref(), PAGE) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "scanner could not read records");
                status.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        };
        for v in &page {
            match store.heal_version(v) {
                Ok(r) => {
                    status.objects_scanned.fetch_add(1, Ordering::Relaxed);
                    status.add(&r);
                    if r.shards_healed > 0 {
                        tracing::info!(
                            shards = r.shards_healed,
                            bytes = r.bytes_healed,
                            "scanner healed an object"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "scanner could not heal an object");
                    status.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // Bound the rate: a page of N objects takes at least N / rate seconds.
        let budget =
            Duration::from_secs_f64(page.len() as f64 / pace.objects_per_second.max(1) as f64);
        if let Some(rest) = budget.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    for set in 0..store.sets().len() {
        match store.sweep_records(set, ORPHAN_MIN_AGE) {
            Ok(n) => {
                status.orphans_removed.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(set, error = %e, "scanner could not sweep orphan records");
                status.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    // Data files whose removal a drive missed (it was away) are removed now it is back.
    if let Err(e) = store.collect_garbage() {
        tracing::warn!(error = %e, "scanner could not remove replaced data files");
        status.errors.fetch_add(1, Ordering::Relaxed);
    }
    status.scanning.store(0, Ordering::Relaxed);
    status.cycles.fetch_add(1, Ordering::Relaxed);
}

/// A write no quorum holds, or a tombstone every drive holds, is left alone until two sweeps
/// this long apart found it: far longer than any write takes to reach its drives (and every
/// change the sweep makes is conditional on the drive still holding what it saw).
const ORPHAN_MIN_AGE: Duration = Duration::from_secs(60);

/// How often writes that missed a drive are looked at.
const MISSED_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the healer of missed writes: records and shards a write could not put on every
/// drive (a drive was away or failed) are rebuilt there within a second on the drives that
/// answer, and on the others as soon as they are back, rather than when the scanner next
/// passes.
pub fn spawn_missed_healer(store: Arc<Store>, status: Arc<HealStatus>) {
    if store.drive_set().codec.is_none() {
        return;
    }
    let store = Arc::downgrade(&store);
    std::thread::Builder::new()
        .name("coffer-missed".into())
        .spawn(move || loop {
            std::thread::sleep(MISSED_EVERY);
            let Some(store) = store.upgrade() else { return };
            heal_missed(&store, &status);
        })
        .expect("spawning the missed-write healer");
}

/// One round of the missed-write healer: every queued record is healed onto the drives that
/// answer now (a read repairs records; a version's record and shards are rebuilt). A record
/// healed while a drive of its set is away or quiet waits, parked, until every drive answers,
/// and is healed once more then — the drives that answer do not wait for the dead one.
pub fn heal_missed(store: &Store, status: &HealStatus) {
    for (index, set) in store.sets().iter().enumerate() {
        let everyone = set.all_responsive();
        let keys = set.take_missed(everyone);
        if keys.is_empty() {
            continue;
        }
        let (mut retry, mut parked) = (Vec::new(), Vec::new());
        for key in keys {
            // The read settles the key and repairs the drives that answered behind.
            let values = match set.get_all(&key) {
                Ok(v) => v,
                Err(_) => {
                    retry.push(key);
                    continue;
                }
            };
            if values.iter().all(Option::is_none) {
                continue; // deleted since
            }
            if key.first() != Some(&crate::store::keys::VERSION) {
                if !set.all_responsive() {
                    parked.push(key);
                }
                continue;
            }
            let v = crate::store::heal::ScannedVersion {
                set: index,
                raw_key: key.clone(),
                values,
            };
            match store.heal_version(&v) {
                // Healing skips a drive that is away or went quiet: heal it when it is back.
                Ok(report) => {
                    status.add(&report);
                    if !set.all_responsive() {
                        parked.push(key);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "healing a missed write failed; retrying");
                    retry.push(key);
                }
            }
        }
        set.requeue_missed(retry);
        set.park_missed(parked);
    }
}

/// Starts the scanner on its own thread; it runs a cycle right away, then every interval.
/// Only erasure-coded sets have anything to heal.
pub fn spawn_scanner(store: Arc<Store>, status: Arc<HealStatus>, pace: ScanPace) {
    if store.drive_set().codec.is_none() {
        return;
    }
    std::thread::Builder::new()
        .name("coffer-scanner".into())
        .spawn(move || loop {
            scan_cycle(&store, &status, pace);
            std::thread::sleep(pace.interval);
        })
        .expect("spawning the scanner thread");
}
