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
}

impl HealStatus {
    pub fn report(&self) -> HealStatusReport {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HealStatusReport {
            cycles: g(&self.cycles),
            objects_scanned: g(&self.objects_scanned),
            shards_missing: g(&self.shards_missing),
            shards_healed: g(&self.shards_healed),
            bytes_healed: g(&self.bytes_healed),
            errors: g(&self.errors),
            scanning: g(&self.scanning) > 0,
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
                    status
                        .shards_missing
                        .fetch_add(r.shards_missing, Ordering::Relaxed);
                    status
                        .shards_healed
                        .fetch_add(r.shards_healed, Ordering::Relaxed);
                    status
                        .bytes_healed
                        .fetch_add(r.bytes_healed, Ordering::Relaxed);
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
    status.scanning.store(0, Ordering::Relaxed);
    status.cycles.fetch_add(1, Ordering::Relaxed);
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
