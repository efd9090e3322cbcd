//! Healing within this server's erasure set: rebuilding the shard files of one data file
//! from K good shards (heal on read, after bitrot), and making a drive that came back empty
//! whole again by copying the records it lacks and rebuilding its shards.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use super::erasure::{frame_shard_block, verify_shard_block, DEFAULT_BITROT};
use super::record::{self, DataLayout, PartData, PartRecord, VersionRecord};
use super::set::{resolve, DriveSet, DriveValues, State, WireOp};
use super::stamp::{self, Stamp};
use super::{ecio, keys, KeyGuard, Store, StoreError};

/// Marks a data file as being healed for as long as it lives.
struct HealGuard<'a> {
    set: &'a DriveSet,
    id: String,
}

impl<'a> HealGuard<'a> {
    fn take(set: &'a DriveSet, id: &str) -> Option<HealGuard<'a>> {
        let mut healing = set.healing.lock().unwrap_or_else(|p| p.into_inner());
        healing.insert(id.to_string()).then(|| HealGuard {
            set,
            id: id.to_string(),
        })
    }
}

impl Drop for HealGuard<'_> {
    fn drop(&mut self) {
        self.set
            .healing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// What a heal did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HealReport {
    pub records_scanned: u64,
    pub records_healed: u64,
    pub shards_missing: u64,
    pub shards_healed: u64,
    pub bytes_healed: u64,
    pub errors: u64,
}

/// Rebuilds the shard files of `data_id` (a part of `part_size` bytes) on the drives listed in
/// `drives`, from K good shards of the others. Returns the bytes written.
pub fn heal_data_file(
    set: &DriveSet,
    order: &[usize],
    data_id: &str,
    part_size: u64,
    drives: &[usize],
) -> Result<u64, StoreError> {
    let codec = set
        .codec
        .as_ref()
        .ok_or_else(|| StoreError::Internal("nothing to heal without erasure coding".into()))?;
    let total = codec.geometry().total();
    // Drives that cannot be reached now, or went quiet, are healed when they are back
    // (catch-up, scanner).
    let targets: Vec<usize> = (0..total)
        .filter(|i| drives.contains(&order[*i]))
        .filter(|i| {
            set.slots[order[*i]]
                .as_ref()
                .is_some_and(|s| s.responsive())
        })
        .collect();
    if targets.is_empty() {
        return Ok(0);
    }
    // One heal per data file at a time (a read, the scanner and a drive heal may all find the
    // same damage); the others skip it.
    let _guard = match HealGuard::take(set, data_id) {
        Some(g) => g,
        None => return Ok(0),
    };
    let mut sources: Vec<Option<Box<dyn super::drive::DataReader>>> = order
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if targets.contains(&i) {
                None
            } else {
                set.slots[d]
                    .as_ref()
                    .and_then(|s| s.drive.open(data_id).ok())
            }
        })
        .collect();
    let mut writers = Vec::new();
    for &i in &targets {
        let slot = set.slots[order[i]]
            .as_ref()
            .ok_or(StoreError::QuorumLost { have: 0, need: 1 })?;
        writers.push((i, slot.drive.create(data_id)?));
    }
    let mut written = 0u64;
    for block in 0..codec.block_count(part_size) {
        let block_len = codec.block_len(part_size, block);
        let offset = codec.shard_file_offset(block);
        let framed_len = codec.framed_len(block_len);
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; total];
        for (i, src) in sources.iter_mut().enumerate() {
            let Some(file) = src else { continue };
            match ecio::read_frame(file.as_mut(), offset, framed_len) {
                Ok(frame) => {
                    if let Ok(shard) = verify_shard_block(DEFAULT_BITROT, i, block, &frame) {
                        shards[i] = Some(shard.to_vec());
                    }
                }
                // A source that failed once (a dead peer) is not asked again.
                Err(_) => *src = None,
            }
        }
        codec
            .reconstruct_missing(&mut shards, block_len)
            .map_err(|e| StoreError::Internal(format!("cannot heal {data_id}: {e}")))?;
        for (i, w) in &mut writers {
            let shard = shards[*i]
                .as_ref()
                .expect("reconstruct_missing fills every shard");
            let frame = frame_shard_block(DEFAULT_BITROT, *i, block, shard);
            w.write_all(&frame)?;
            written += frame.len() as u64;
        }
    }
    for (_, w) in writers {
        w.commit()?;
    }
    Ok(written)
}

impl Store {
    /// Makes drives that came back empty whole: every record present on a quorum of the other
    /// drives is written to them (with their own inline shard), and every shard file they
    /// should hold is rebuilt.
    pub fn heal_drives(
        &self,
        set_index: usize,
        drives: &[usize],
    ) -> Result<HealReport, StoreError> {
        let set = &self.sets[set_index];
        let _healing = DrivesHealing::start(set, drives.len() as u64);
        let mut report = HealReport::default();
        // Part records are keyed by upload id only: their shard order and their lock come from
        // the upload's bucket and key, looked up here once rather than by a scan per part.
        let mut uploads = HashMap::new();
        for (_, v) in set.scan(&[keys::UPLOAD])? {
            let u: record::UploadRecord = record::decode(&v)?;
            let order = Self::order(set, &u.bucket, &u.key);
            uploads.insert(
                u.upload_id.clone(),
                UploadPlace {
                    bucket: u.bucket,
                    key: u.key,
                    order,
                },
            );
        }
        set.heal_bytes_left
            .store(self.bytes_to_heal(set, drives)?, Ordering::Relaxed);
        let mut it = set.merged_iter();
        it.seek(&[]);
        while it.valid() {
            let key = it.key().expect("valid").to_vec();
            let values = it.values();
            let stamp = it.stamp().expect("valid");
            report.records_scanned += 1;
            let missing: Vec<usize> = drives
                .iter()
                .copied()
                .filter(|&d| values[d].is_none() && set.slots[d].is_some())
                .collect();
            if !missing.is_empty() {
                // One damaged record must not stop the rest from healing.
                if let Err(e) = self.heal_record(
                    set_index,
                    &key,
                    stamp,
                    &values,
                    &missing,
                    &uploads,
                    &mut report,
                ) {
                    // A version record is retried by the missed-write healer (every second
                    // once all drives answer) instead of waiting for the next scanner cycle.
                    tracing::warn!(error = %e, "could not heal a record; retrying it later");
                    report.errors += 1;
                    if key.first() == Some(&keys::VERSION) {
                        set.requeue_missed(vec![key.clone()]);
                    }
                }
            }
            it.next();
        }
        set.heal_bytes_left.store(0, Ordering::Relaxed);
        it.status()?;
        Ok(report)
    }

    /// The bytes of shard files `drives` lack for the records they miss (what
    /// [`Store::heal_drives`] will write), for the heal status.
    fn bytes_to_heal(&self, set: &DriveSet, drives: &[usize]) -> Result<u64, StoreError> {
        let Some(codec) = set.codec else {
            return Ok(0);
        };
        let mut total = 0u64;
        let mut it = set.merged_iter();
        it.seek(&[]);
        while it.valid() {
            let values = it.values();
            let missing = drives.iter().filter(|&&d| values[d].is_none()).count() as u64;
            if missing > 0 {
                let any = values.iter().flatten().next();
                let sizes: Vec<u64> = match (it.key().and_then(|k| k.first()), any) {
                    (Some(&keys::VERSION), Some(v)) => match record::decode::<VersionRecord>(v)?
                        .data
                    {
                        DataLayout::Parts { parts, .. } => parts.iter().map(|p| p.size).collect(),
                        _ => Vec::new(),
                    },
                    (Some(&keys::PART), Some(v)) => vec![record::decode::<PartRecord>(v)?.size],
                    _ => Vec::new(),
                };
                total += sizes
                    .iter()
                    .map(|&s| codec.shard_file_size(s) * missing)
                    .sum::<u64>();
            }
            it.next();
        }
        it.status()?;
        Ok(total)
    }

    /// Sweeps every record of set `set_index` while every drive of the set answers, and
    /// brings the drives to one state per key:
    /// - a drive behind the visible state (a delete or change it missed while away) is given
    ///   it: a tombstone or a record copied, a version record healed with its shards;
    /// - a write that reached too few drives to have been acknowledged (a remnant newer than
    ///   the visible state, or a record from before stamps below a read quorum) is retracted
    ///   where it landed, with the data files only it named;
    ///
    /// Tombstones are kept: removing one from some drives but not others would let a write
    /// stamped by a slow clock under it and lose to the copies left. Retractions wait until the same record was found in sweeps at least
    /// `min_age` apart by this server's own clock, so a write still in flight, whatever its
    /// writer's clock says, is never touched. Every change is conditional on the drive still
    /// holding what the sweep saw: a write racing the sweep wins. Returns the records of
    /// deleted or failed writes removed from drives.
    pub fn sweep_records(&self, set_index: usize, min_age: Duration) -> Result<u64, StoreError> {
        let set = &self.sets[set_index];
        if set.codec.is_none() || !set.all_responsive() {
            return Ok(0);
        }
        let (w, r) = (set.write_quorum(), set.read_quorum());
        let mut found: Vec<(Vec<u8>, DriveValues, Sweep)> = Vec::new();
        let mut it = set.raw_iter();
        it.seek(&[]);
        while let Some(key) = it.key() {
            let raw = it.values();
            let opened: Vec<Option<stamp::Opened>> =
                raw.iter().map(|v| v.as_deref().map(stamp::open)).collect();
            // A drive that dropped out of the sweep may hold anything: its keys wait.
            let silent = it.silent();
            if silent.iter().any(|&s| s) {
                it.next();
                continue;
            }
            let newest = opened
                .iter()
                .flatten()
                .map(|o| o.stamp)
                .filter(|&s| s != Stamp::LEGACY)
                .max();
            let state = resolve(&opened, &silent, w, r);
            let sweep = match &state {
                State::Live(seen) | State::Dead(seen) if newest > Some(seen.stamp) => {
                    newest.map(Sweep::Retract)
                }
                State::Absent if newest.is_some() => newest.map(Sweep::Retract),
                State::Absent if opened.iter().any(Option::is_some) => {
                    Some(Sweep::Retract(Stamp::LEGACY))
                }
                State::Live(seen) | State::Dead(seen) if !seen.behind.is_empty() => {
                    Some(Sweep::Repair(seen.stamp))
                }
                _ => None,
            };
            if let Some(sweep) = sweep {
                found.push((key.to_vec(), raw, sweep));
            }
            it.next();
        }
        it.status()?;
        drop(it);
        if !set.all_responsive() {
            return Ok(0);
        }
        let due = self.sweep_due(
            set_index,
            found
                .iter()
                .filter(|(_, _, s)| !matches!(s, Sweep::Repair(_)))
                .map(|(k, _, s)| (k.clone(), s.stamp())),
            min_age,
        );
        let mut removed = 0;
        for (key, raw, sweep) in found {
            let result = match sweep {
                Sweep::Repair(stamp) => self.sweep_repair(set, &key, &raw, stamp),
                Sweep::Retract(stamp) if due.contains(&(key.clone(), stamp)) => {
                    self.sweep_retract(set_index, &key, &raw, stamp)
                }
                _ => Ok(0),
            };
            match result {
                Ok(n) => removed += n,
                Err(e) => tracing::debug!(error = %e, "sweep of a record deferred"),
            }
        }
        Ok(removed)
    }

    /// Remembers the retractions found in a sweep of set `set_index` and returns
    /// those found (the same key, the same stamp) in an earlier sweep at least `min_age` ago.
    fn sweep_due(
        &self,
        set_index: usize,
        found: impl Iterator<Item = (Vec<u8>, Stamp)>,
        min_age: Duration,
    ) -> std::collections::HashSet<(Vec<u8>, Stamp)> {
        const MAX_REMEMBERED: usize = 100_000;
        let mut seen = self.sweep_seen.lock().unwrap_or_else(|p| p.into_inner());
        let before = std::mem::take(&mut seen[set_index]);
        let now = std::time::Instant::now();
        let mut due = std::collections::HashSet::new();
        for (key, stamp) in found {
            let first = match before.get(&(key.clone(), stamp)) {
                Some(&at) => at,
                None => now,
            };
            if now.duration_since(first) >= min_age {
                due.insert((key.clone(), stamp));
            }
            if seen[set_index].len() < MAX_REMEMBERED {
                seen[set_index].insert((key, stamp), first);
            }
        }
        due
    }

    /// Gives drives behind the visible state of `key` that state. Returns 1 when that removed
    /// a deleted version's record from a drive that missed the delete.
    fn sweep_repair(
        &self,
        set: &DriveSet,
        key: &[u8],
        raw: &[Option<Vec<u8>>],
        stamp: Stamp,
    ) -> Result<u64, StoreError> {
        let opened: Vec<Option<stamp::Opened>> =
            raw.iter().map(|v| v.as_deref().map(stamp::open)).collect();
        let holder = (0..raw.len())
            .find(|&d| opened[d].is_some_and(|o| o.stamp == stamp))
            .expect("the visible state has holders");
        let source = raw[holder].clone().expect("holders hold a value");
        let live = opened[holder].is_some_and(|o| o.payload.is_some());
        if live && matches!(key.first(), Some(&keys::VERSION) | Some(&keys::PART)) {
            // Version records carry each drive's own shard; the version pass heals them.
            set.note_missed_key(key);
            return Ok(0);
        }
        let behind: Vec<usize> = (0..raw.len())
            .filter(|&d| opened[d].is_none_or(|o| o.stamp < stamp))
            .collect();
        let results = set.parallel(&behind, |_, slot| match slot {
            Some(s) => s.put(key, source.clone()),
            None => Ok(()),
        });
        let mut removed = 0;
        for (&d, r) in behind.iter().zip(results) {
            r?;
            if !live
                && key.first() == Some(&keys::VERSION)
                && opened[d].is_some_and(|o| o.payload.is_some())
            {
                removed = 1;
            }
        }
        Ok(removed)
    }

    /// Takes back a write of `key` stamped `stamp` that reached too few drives to have been
    /// acknowledged: where a drive still holds it, it is replaced by the visible state it hid
    /// (so the drives holding that state or newer stay as many), and the data files only it
    /// named are removed. Returns 1 when a record went.
    fn sweep_retract(
        &self,
        set_index: usize,
        key: &[u8],
        raw: &[Option<Vec<u8>>],
        stamp: Stamp,
    ) -> Result<u64, StoreError> {
        let set = &self.sets[set_index];
        let opened: Vec<Option<stamp::Opened>> =
            raw.iter().map(|v| v.as_deref().map(stamp::open)).collect();
        let holders: Vec<usize> = (0..raw.len())
            .filter(|&d| opened[d].is_some_and(|o| o.stamp == stamp))
            .collect();
        let Some(&first) = holders.first() else {
            return Ok(0);
        };
        let data_of = |payload: Option<&[u8]>| -> Vec<String> {
            let Some(p) = payload else { return Vec::new() };
            match key.first() {
                Some(&keys::VERSION) => record::decode::<VersionRecord>(p)
                    .map(|r| r.data_ids())
                    .unwrap_or_default(),
                Some(&keys::PART) => record::decode::<PartRecord>(p)
                    .map(|r| vec![r.data_id])
                    .unwrap_or_default(),
                _ => Vec::new(),
            }
        };
        let remnant_data = data_of(opened[first].and_then(|o| o.payload));
        let silent = vec![false; raw.len()];
        // What each holder gets instead: the visible state, sealed with a stamp newer than the
        // write taken back, so no drive ever moves to an older stamp (a write stamped by a slow
        // clock is then still refused and stamped again, never let under a stamp it missed).
        set.clock().observe(stamp);
        let fresh = set.clock().now();
        let (hidden, kept): (Vec<Option<Vec<u8>>>, Vec<String>) =
            match resolve(&opened, &silent, set.write_quorum(), set.read_quorum()) {
                State::Dead(_) | State::Absent | State::Unknown => {
                    (vec![Some(stamp::tombstone(fresh)); raw.len()], Vec::new())
                }
                State::Live(seen) => {
                    let source = raw[seen.holders[0]]
                        .as_deref()
                        .expect("holders hold a value");
                    let payload = stamp::open(source).payload.expect("a live state");
                    let per_drive: Vec<Vec<u8>> = match split_version_key(key) {
                        Some((bucket, object)) => {
                            let values: DriveValues = (0..raw.len())
                                .map(|d| {
                                    opened[d]
                                        .filter(|_| seen.holders.contains(&d))
                                        .and_then(|o| o.payload)
                                        .map(<[u8]>::to_vec)
                                })
                                .collect();
                            let merged = self.merge_record(set_index, &bucket, &object, &values)?;
                            self.per_drive_records(&bucket, &object, &merged)?
                        }
                        None => vec![payload.to_vec(); raw.len()],
                    };
                    let sealed = per_drive
                        .iter()
                        .map(|v| Some(stamp::seal(fresh, v)))
                        .collect();
                    (sealed, data_of(Some(payload)))
                }
            };
        for r in set.parallel(&holders, |d, slot| match slot {
            Some(s) => s.apply(vec![match &hidden[d] {
                Some(v) => WireOp::Retract(key.to_vec(), stamp, v.clone()),
                None => WireOp::Purge(key.to_vec(), stamp),
            }]),
            None => Ok(()),
        }) {
            r?;
        }
        for id in remnant_data.iter().filter(|id| !kept.contains(id)) {
            set.remove_data(id)?;
        }
        tracing::info!(
            key = %String::from_utf8_lossy(key),
            drives = holders.len(),
            "took back a write that missed its quorum"
        );
        Ok(1)
    }

    /// Takes the lock of the object a version record `key` belongs to and reads the record
    /// again on every drive: a version replaced or deleted since it was scanned must not be
    /// brought back (its record on one drive, its shard files after their removal). None when
    /// it is gone or no longer on a read quorum.
    fn lock_version(
        &self,
        set: &DriveSet,
        key: &[u8],
    ) -> Result<Option<(KeyGuard<'_>, Stamp, DriveValues)>, StoreError> {
        let Some((bucket, object)) = split_version_key(key) else {
            return Ok(None);
        };
        let guard = self.lock_for(&bucket, &object)?;
        Ok(set
            .get_resolved(key)?
            .map(|(stamp, fresh)| (guard, stamp, fresh)))
    }

    /// Takes the lock of the upload a part record `key` belongs to (uploads, parts, aborts and
    /// completions take their object's lock) and reads the record again on every drive: a part
    /// replaced, or removed by an abort or completion, since it was scanned must not be brought
    /// back. None when it is gone, no longer on a read quorum, or its upload is unknown.
    fn lock_part(
        &self,
        set: &DriveSet,
        key: &[u8],
        uploads: &HashMap<String, UploadPlace>,
    ) -> Result<Option<(KeyGuard<'_>, Stamp, DriveValues)>, StoreError> {
        let upload_id = key[1..].split(|&b| b == 0).next().unwrap_or_default();
        let Some(place) = uploads.get(String::from_utf8_lossy(upload_id).as_ref()) else {
            return Ok(None);
        };
        let guard = self.lock_for(&place.bucket, &place.key)?;
        Ok(set
            .get_resolved(key)?
            .map(|(stamp, fresh)| (guard, stamp, fresh)))
    }

    /// Copies record `key` to the drives `missing` and rebuilds their shards; a version
    /// record is healed under its object's lock, a part record under its upload's.
    #[allow(clippy::too_many_arguments)]
    fn heal_record(
        &self,
        set_index: usize,
        key: &[u8],
        stamp: Stamp,
        values: &[Option<Vec<u8>>],
        missing: &[usize],
        uploads: &HashMap<String, UploadPlace>,
        report: &mut HealReport,
    ) -> Result<(), StoreError> {
        let set = &self.sets[set_index];
        let locked = match key.first() {
            Some(&keys::VERSION) => self.lock_version(set, key)?,
            Some(&keys::PART) => self.lock_part(set, key, uploads)?,
            _ => {
                return self
                    .heal_record_locked(set_index, key, stamp, values, missing, uploads, report)
            }
        };
        let Some((_guard, stamp, fresh)) = locked else {
            return Ok(());
        };
        let missing: Vec<usize> = missing
            .iter()
            .copied()
            .filter(|&d| fresh[d].is_none())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        self.heal_record_locked(set_index, key, stamp, &fresh, &missing, uploads, report)
    }

    #[allow(clippy::too_many_arguments)]
    fn heal_record_locked(
        &self,
        set_index: usize,
        key: &[u8],
        stamp: Stamp,
        values: &[Option<Vec<u8>>],
        missing: &[usize],
        uploads: &HashMap<String, UploadPlace>,
        report: &mut HealReport,
    ) -> Result<(), StoreError> {
        let set = &self.sets[set_index];
        let any = values
            .iter()
            .flatten()
            .next()
            .expect("a quorum record has a value")
            .clone();
        let mut per_drive: Vec<(usize, Vec<u8>)> =
            missing.iter().map(|&d| (d, any.clone())).collect();
        match key.first() {
            Some(&keys::VERSION) => {
                let Some((bucket, object)) = split_version_key(key) else {
                    return Ok(());
                };
                let order = Self::order(set, &bucket, &object);
                let merged = self.merge_record(set_index, &bucket, &object, values)?;
                match &merged.data {
                    DataLayout::InlineShards(_) => {
                        let all = self.per_drive_records(&bucket, &object, &merged)?;
                        for (d, v) in &mut per_drive {
                            *v = all[*d].clone();
                            report.shards_missing += 1;
                            report.shards_healed += 1;
                        }
                    }
                    DataLayout::Parts { parts, .. } if set.codec.is_some() => {
                        for p in parts {
                            report.shards_missing += missing.len() as u64;
                            let bytes = heal_data_file(set, &order, &p.data_id, p.size, missing)?;
                            report.bytes_healed += bytes;
                            report.shards_healed += missing.len() as u64;
                            count_healed(set, bytes);
                        }
                    }
                    _ => {}
                }
            }
            Some(&keys::PART) => {
                let part: PartRecord = record::decode(&any)?;
                let upload_id = key[1..].split(|&b| b == 0).next().unwrap_or_default();
                if let Some(place) = uploads.get(String::from_utf8_lossy(upload_id).as_ref()) {
                    report.shards_missing += missing.len() as u64;
                    let bytes =
                        heal_data_file(set, &place.order, &part.data_id, part.size, missing)?;
                    report.bytes_healed += bytes;
                    report.shards_healed += missing.len() as u64;
                    count_healed(set, bytes);
                }
            }
            _ => {}
        }
        for (d, v) in per_drive {
            if let Some(slot) = &set.slots[d] {
                match slot.put(key, stamp::seal(stamp, &v)) {
                    // The drive took a newer change meanwhile (a delete, an overwrite): the
                    // copy read before is not written back over it.
                    Ok(()) | Err(StoreError::Stale(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        report.records_healed += 1;
        Ok(())
    }
}

/// What the sweep does with one key ([`Store::sweep_records`]).
enum Sweep {
    /// Give drives behind the visible state (stamped so) that state.
    Repair(Stamp),
    /// Take back a write (stamped so) that reached too few drives.
    Retract(Stamp),
}

impl Sweep {
    fn stamp(&self) -> Stamp {
        match self {
            Sweep::Repair(s) | Sweep::Retract(s) => *s,
        }
    }
}

/// Where an unfinished upload's parts belong: its object (whose lock guards them) and the
/// shard order of that object.
struct UploadPlace {
    bucket: String,
    key: String,
    order: Vec<usize>,
}

/// Counts drives in [`DriveSet::drives_healing`] while [`Store::heal_drives`] fills them,
/// however it ends (an error or a panic included), so the heal status never shows a heal that
/// stopped, nor hides one that runs.
struct DrivesHealing<'a> {
    set: &'a DriveSet,
    drives: u64,
}

impl<'a> DrivesHealing<'a> {
    fn start(set: &'a DriveSet, drives: u64) -> Self {
        set.drives_healing.fetch_add(drives, Ordering::Relaxed);
        DrivesHealing { set, drives }
    }
}

impl Drop for DrivesHealing<'_> {
    fn drop(&mut self) {
        self.set
            .drives_healing
            .fetch_sub(self.drives, Ordering::Relaxed);
    }
}

/// Takes healed bytes off the set's bytes left to heal.
fn count_healed(set: &DriveSet, bytes: u64) {
    let _ = set
        .heal_bytes_left
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            Some(left.saturating_sub(bytes))
        });
}

/// Bucket and object key of a version record key.
fn split_version_key(raw: &[u8]) -> Option<(String, String)> {
    let rest = raw.strip_prefix(&[keys::VERSION])?;
    let end = rest.iter().position(|&b| b == 0)?;
    let bucket = std::str::from_utf8(&rest[..end]).ok()?.to_string();
    let key = keys::decode_object_key(keys::VERSION, &bucket, raw)?;
    Some((bucket, key))
}

/// One object version seen by the scanner.
pub struct ScannedVersion {
    /// The erasure set holding it.
    pub set: usize,
    pub raw_key: Vec<u8>,
    pub values: super::set::DriveValues,
}

impl Store {
    /// Version records after `after` (exclusive), at most `limit`, with their per-drive
    /// values; `None` as the next position when the scan is complete.
    pub fn scan_versions(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<ScannedVersion>, Option<Vec<u8>>), StoreError> {
        let mut it = self.object_iter();
        match after {
            Some(a) => {
                it.seek(a);
                if it.key() == Some(a) {
                    it.next();
                }
            }
            None => it.seek(&[keys::VERSION]),
        }
        let mut out = Vec::new();
        while it.valid() && out.len() < limit {
            let key = it.key().expect("valid");
            if key.first() != Some(&keys::VERSION) {
                break;
            }
            out.push(ScannedVersion {
                set: it.set().expect("valid"),
                raw_key: key.to_vec(),
                values: it.values(),
            });
            it.next();
        }
        it.status()?;
        let next = (out.len() == limit)
            .then(|| out.last().map(|v| v.raw_key.clone()))
            .flatten();
        Ok((out, next))
    }

    /// Checks one version on every drive (record present, shard files present with the
    /// expected size) and rebuilds what is missing. Returns what it found and did.
    pub fn heal_version(&self, v: &ScannedVersion) -> Result<HealReport, StoreError> {
        let set = &self.sets[v.set];
        let mut report = HealReport {
            records_scanned: 1,
            ..Default::default()
        };
        if set.codec.is_none() || self.damage(v.set, &v.raw_key, &v.values)?.is_none() {
            return Ok(report);
        }
        // Damaged: look again under the object's lock (it may have been replaced meanwhile).
        let Some((_guard, stamp, values)) = self.lock_version(set, &v.raw_key)? else {
            return Ok(report);
        };
        match self.damage(v.set, &v.raw_key, &values)? {
            None => {}
            Some(Damage::Record(missing)) => {
                // Copies the record and rebuilds every shard of those drives.
                self.heal_record_locked(
                    v.set,
                    &v.raw_key,
                    stamp,
                    &values,
                    &missing,
                    &HashMap::new(),
                    &mut report,
                )?;
            }
            Some(Damage::Shards(order, parts)) => {
                for (p, bad) in parts {
                    report.shards_missing += bad.len() as u64;
                    report.bytes_healed += heal_data_file(set, &order, &p.data_id, p.size, &bad)?;
                    report.shards_healed += bad.len() as u64;
                }
            }
        }
        Ok(report)
    }

    /// What version record `raw_key` (with `values` on each drive) lacks on the drives that
    /// answer: the record itself on some, or shards of its parts (missing, the wrong size,
    /// or, on this server's own drives, failing a block's bitrot check). None when whole.
    fn damage(
        &self,
        set_index: usize,
        raw_key: &[u8],
        values: &[Option<Vec<u8>>],
    ) -> Result<Option<Damage>, StoreError> {
        let set = &self.sets[set_index];
        let (Some(codec), Some((bucket, key))) = (set.codec, split_version_key(raw_key)) else {
            return Ok(None);
        };
        // A quiet drive's record is unknown (it may only have been left behind), and it
        // could not take a heal now anyway.
        let online: Vec<usize> = set
            .online()
            .filter(|(_, s)| s.responsive())
            .map(|(i, _)| i)
            .collect();
        let missing_record: Vec<usize> = online
            .iter()
            .copied()
            .filter(|&d| values[d].is_none())
            .collect();
        if !missing_record.is_empty() {
            return Ok(Some(Damage::Record(missing_record)));
        }
        let record = self.merge_record(set_index, &bucket, &key, values)?;
        let DataLayout::Parts { parts, .. } = record.data else {
            return Ok(None);
        };
        let order = Self::order(set, &bucket, &key);
        let mut damaged = Vec::new();
        for p in parts {
            let expected = codec.shard_file_size(p.size);
            let bad: Vec<usize> = online
                .iter()
                .copied()
                .filter(|&d| {
                    let slot = set.slots[d].as_ref().expect("online");
                    let size_ok = slot
                        .drive
                        .size(&p.data_id)
                        .map(|len| len == expected)
                        .unwrap_or(false);
                    // Deep check of this server's own shards (every server scans its own
                    // drives): each block's bitrot hash, so damage in a shard no read
                    // touches (a parity shard) is found too.
                    let shard = order.iter().position(|&o| o == d);
                    !size_ok
                        || (slot.is_local()
                            && shard.is_some_and(|i| {
                                !shard_file_intact(&codec, slot, &p.data_id, p.size, i)
                            }))
                })
                .collect();
            if !bad.is_empty() {
                damaged.push((p, bad));
            }
        }
        Ok((!damaged.is_empty()).then_some(Damage::Shards(order, damaged)))
    }
}

/// What a version lacks on the drives that answer ([`Store::damage`]).
enum Damage {
    /// The record on these drives (healing it rebuilds their shards too).
    Record(Vec<usize>),
    /// With the shard order, the parts and the drives whose shard of each is missing or bad.
    Shards(Vec<usize>, Vec<(PartData, Vec<usize>)>),
}

/// Whether every block of shard `shard` of a part (`part_size` bytes) in data file `data_id`
/// reads back and passes its bitrot check.
fn shard_file_intact(
    codec: &super::erasure::ErasureCodec,
    slot: &super::set::Slot,
    data_id: &str,
    part_size: u64,
    shard: usize,
) -> bool {
    let Ok(mut file) = slot.drive.open(data_id) else {
        return false;
    };
    (0..codec.block_count(part_size)).all(|block| {
        let len = codec.framed_len(codec.block_len(part_size, block));
        ecio::read_frame(file.as_mut(), codec.shard_file_offset(block), len)
            .is_ok_and(|frame| verify_shard_block(DEFAULT_BITROT, shard, block, &frame).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::erasure::ErasureGeometry;

    #[test]
    fn drives_being_filled_count_until_their_heal_ends_however_it_ends() {
        let geometry = ErasureGeometry::new(2, 2).expect("2+2 is a valid geometry");
        let set = DriveSet::assemble(Vec::new(), geometry, None);
        let healing = |set: &DriveSet| set.drives_healing.load(Ordering::Relaxed);
        {
            let _first = DrivesHealing::start(&set, 2);
            assert_eq!(healing(&set), 2);
            let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _second = DrivesHealing::start(&set, 1);
                assert_eq!(healing(&set), 3);
                panic!("a heal that fails half way");
            }));
            assert!(failed.is_err());
            assert_eq!(healing(&set), 2);
        }
        assert_eq!(healing(&set), 0);
    }
}
