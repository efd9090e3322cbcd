//! An erasure set of drives on this server, and its replicated metadata: every drive keeps a
//! RocksDB with the same record keys (records may differ per drive only in the inline shard
//! they carry). A change is one synced write batch per drive, applied in parallel, and
//! succeeds on a write quorum of drives; a read trusts a record present on a read quorum.
//! With one drive (E=1, M=0) this degenerates to a single RocksDB with no extra cost.
//!
//! A drive of the set is local (its RocksDB and files on this server) or remote (another
//! server's drive, reached over peer RPC through [`RemoteRecords`] and a remote [`Drive`]).
//! Remote calls block the calling thread, so the store runs on blocking threads.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rocksdb::{DBRawIterator, WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};

use super::drive::{Drive, DriveFormat, LocalDrive};
use super::erasure::{ErasureCodec, ErasureGeometry};
use super::{RawKey, StoreError};

/// A record's value on each drive of the set, in drive order (`None`: missing there).
pub type DriveValues = Vec<Option<Vec<u8>>>;

/// One write of records, the same on every drive except for per-drive values.
#[derive(Default)]
pub struct Batch {
    ops: Vec<Op>,
}

enum Op {
    Put(Vec<u8>, Vec<u8>),
    /// One value per drive of the set, in drive order.
    PutPerDrive(Vec<u8>, Vec<Vec<u8>>),
    Delete(Vec<u8>),
}

impl Batch {
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put(key.into(), value.into()));
    }
    pub fn put_per_drive(&mut self, key: impl Into<Vec<u8>>, values: Vec<Vec<u8>>) {
        self.ops.push(Op::PutPerDrive(key.into(), values));
    }
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.ops.push(Op::Delete(key.as_ref().to_vec()));
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    /// Deletes of every record this batch puts.
    fn undo_puts(&self) -> Batch {
        let mut undo = Batch::default();
        for op in &self.ops {
            if let Op::Put(k, _) | Op::PutPerDrive(k, _) = op {
                undo.delete(k);
            }
        }
        undo
    }
    fn for_drive(&self, drive: usize) -> WriteBatch {
        let mut b = WriteBatch::default();
        for op in &self.ops {
            match op {
                Op::Put(k, v) => b.put(k, v),
                Op::PutPerDrive(k, vs) => b.put(k, &vs[drive]),
                Op::Delete(k) => b.delete(k),
            }
        }
        b
    }
    /// The batch as sent to a remote drive.
    pub fn wire_for_drive(&self, drive: usize) -> Vec<WireOp> {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Put(k, v) => WireOp::Put(k.clone(), v.clone()),
                Op::PutPerDrive(k, vs) => WireOp::Put(k.clone(), vs[drive].clone()),
                Op::Delete(k) => WireOp::Delete(k.clone()),
            })
            .collect()
    }
}

/// One change of a record batch on the wire (peer RPC).
#[derive(Debug, Serialize, Deserialize)]
pub enum WireOp {
    Put(
        #[serde(with = "serde_bytes")] Vec<u8>,
        #[serde(with = "serde_bytes")] Vec<u8>,
    ),
    Delete(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// Applies wire ops to a local RocksDB as one synced batch.
pub fn apply_wire(db: &DB, ops: &[WireOp]) -> Result<(), StoreError> {
    let mut b = WriteBatch::default();
    for op in ops {
        match op {
            WireOp::Put(k, v) => b.put(k, v),
            WireOp::Delete(k) => b.delete(k),
        }
    }
    Ok(db.write_opt(b, &synced())?)
}

/// Records of a page of a remote scan, in key order, and whether more follow.
pub type RecordPage = (Vec<(Vec<u8>, Vec<u8>)>, bool);

/// The records of a drive on another server.
pub trait RemoteRecords: Send + Sync {
    /// Applies one synced batch.
    fn write(&self, ops: Vec<WireOp>) -> Result<(), StoreError>;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Records from `from` (inclusive or not) in key order: at most `limit` of them and about
    /// `max_bytes`, and whether more follow.
    fn page(&self, from: &[u8], inclusive: bool, limit: usize) -> Result<RecordPage, StoreError>;
    /// Whether the drive's server answered lately (a down peer is skipped without waiting).
    fn reachable(&self) -> bool;
    /// Whether the drive's server answered anything very lately: a quiet one is not waited
    /// for past a quorum of the others.
    fn responsive(&self) -> bool;
}

/// Where a drive's records live.
pub enum Records {
    Local(DB),
    Remote(Arc<dyn RemoteRecords>),
}

/// A drive of the set: its files and its records.
pub struct Slot {
    pub drive: Arc<dyn Drive>,
    pub records: Records,
}

pub struct DriveSet {
    /// In set order; `None` for a drive that is offline.
    pub slots: Vec<Option<Slot>>,
    pub geometry: ErasureGeometry,
    /// The Reed–Solomon codec, `None` for a single drive (no erasure coding).
    pub codec: Option<ErasureCodec>,
    /// Data files being healed right now: one heal per file at a time.
    pub healing: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Writes that succeeded without every drive: healed soon by the store's heal worker
    /// instead of waiting for the scanner.
    missed: std::sync::Mutex<Missed>,
    /// Blocks that reads had to rebuild from parity because a data shard was missing or
    /// corrupt (a whole set reads none).
    reconstructed: std::sync::atomic::AtomicU64,
    /// Bytes of shard files a drive healing into this set still has to receive.
    pub heal_bytes_left: std::sync::atomic::AtomicU64,
    /// Drives of this set that [`Store::heal_drives`](super::Store::heal_drives) is filling
    /// right now (a server catching up after a restart, or an empty drive): they answer
    /// but do not hold everything yet.
    pub drives_healing: std::sync::atomic::AtomicU64,
}

/// Records written without every drive, and data files written without every shard.
#[derive(Default)]
struct Missed {
    keys: std::collections::HashSet<Vec<u8>>,
    data: std::collections::HashSet<String>,
}

/// At most this many missed writes are remembered; the scanner finds the rest.
const MAX_MISSED: usize = 100_000;

fn db_options() -> rocksdb::Options {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.set_max_background_jobs(2);
    opts.set_keep_log_file_num(4);
    opts.set_max_open_files(512);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    opts.set_block_based_table_factory(&table);
    opts
}

fn synced() -> WriteOptions {
    let mut o = WriteOptions::default();
    o.set_sync(true);
    o
}

impl Slot {
    pub fn open(drive: Arc<dyn Drive>, meta: &Path) -> Result<Slot, StoreError> {
        let db = DB::open(&db_options(), meta)?;
        // RocksDB's lock file now guarantees no other process serves this drive.
        drive.clear_tmp()?;
        Ok(Slot {
            drive,
            records: Records::Local(db),
        })
    }

    pub fn remote(drive: Arc<dyn Drive>, records: Arc<dyn RemoteRecords>) -> Slot {
        Slot {
            drive,
            records: Records::Remote(records),
        }
    }

    /// The local RocksDB, `None` for a remote drive.
    pub fn local_db(&self) -> Option<&DB> {
        match &self.records {
            Records::Local(db) => Some(db),
            Records::Remote(_) => None,
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self.records, Records::Local(_))
    }

    /// Whether the drive can be asked now (local drives always can).
    pub fn reachable(&self) -> bool {
        match &self.records {
            Records::Local(_) => true,
            Records::Remote(r) => r.reachable(),
        }
    }

    /// Whether the drive answers promptly now (see [`RemoteRecords::responsive`]).
    pub fn responsive(&self) -> bool {
        match &self.records {
            Records::Local(_) => true,
            Records::Remote(r) => r.responsive(),
        }
    }

    fn write_batch(&self, batch: &Batch, drive: usize) -> Result<(), StoreError> {
        match &self.records {
            Records::Local(db) => Ok(db.write_opt(batch.for_drive(drive), &synced())?),
            Records::Remote(r) => r.write(batch.wire_for_drive(drive)),
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.records {
            Records::Local(db) => Ok(db.get(key)?),
            Records::Remote(r) => r.get(key),
        }
    }

    /// Writes one record (synced).
    pub fn put(&self, key: &[u8], value: Vec<u8>) -> Result<(), StoreError> {
        match &self.records {
            Records::Local(db) => Ok(db.put_opt(key, value, &synced())?),
            Records::Remote(r) => r.write(vec![WireOp::Put(key.to_vec(), value)]),
        }
    }

    fn iter(&self) -> SlotIter<'_> {
        match &self.records {
            Records::Local(db) => SlotIter::Local(db.raw_iterator()),
            Records::Remote(r) => SlotIter::Remote(PagedIter::new(r.clone())),
        }
    }
}

impl DriveSet {
    /// Opens the drive folders `roots` as one erasure set with `parity` shards (default by
    /// set size). Drive formats are checked: every drive must belong to the same deployment,
    /// sit at its own index, and agree on the geometry; a foreign drive is refused, an empty
    /// drive is formatted (and healed by the caller).
    pub fn open_local(
        roots: &[&Path],
        parity: Option<usize>,
    ) -> Result<(DriveSet, Vec<usize>), StoreError> {
        let e = roots.len();
        let geometry = match parity {
            Some(m) if m >= e => {
                return Err(StoreError::Config(format!(
                    "--parity {m} needs more than {m} drives"
                )))
            }
            Some(m) => ErasureGeometry::new(e - m, m),
            None => ErasureGeometry::default_for(e),
        }
        .map_err(|err| StoreError::Config(err.to_string()))?;
        let drives: Vec<LocalDrive> = roots
            .iter()
            .map(|r| LocalDrive::open(r))
            .collect::<Result<_, _>>()?;
        let formats: Vec<Option<DriveFormat>> = drives
            .iter()
            .map(|d| d.read_format())
            .collect::<Result<_, _>>()?;
        // The deployment is the one most formatted drives agree on; a tie is refused rather
        // than guessed, so a foreign drive is always the one named.
        let mut counts: Vec<(String, usize)> = Vec::new();
        for f in formats.iter().flatten() {
            match counts.iter_mut().find(|(d, _)| *d == f.deployment_id) {
                Some((_, n)) => *n += 1,
                None => counts.push((f.deployment_id.clone(), 1)),
            }
        }
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        if counts.len() > 1 && counts[0].1 == counts[1].1 {
            return Err(StoreError::Config(format!(
                "the drives disagree on their deployment ({} against {}, {} drives each): refusing to guess which are foreign",
                counts[0].0, counts[1].0, counts[0].1
            )));
        }
        let deployment = counts
            .first()
            .map(|(d, _)| d.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let mut fresh = Vec::new();
        for (i, (drive, format)) in drives.iter().zip(&formats).enumerate() {
            match format {
                Some(f) => {
                    if f.deployment_id != deployment {
                        return Err(StoreError::Config(format!(
                            "drive {} belongs to another deployment ({}), expected {deployment}: refusing to use it",
                            drive.root().display(),
                            f.deployment_id
                        )));
                    }
                    if f.drive as usize != i || f.set_size.unwrap_or(1) as usize != e {
                        return Err(StoreError::Config(format!(
                            "drive {} was drive {} of a set of {}; it is given as drive {i} of {e}",
                            drive.root().display(),
                            f.drive,
                            f.set_size.unwrap_or(1)
                        )));
                    }
                    if f.parity.unwrap_or(0) as usize != geometry.parity {
                        return Err(StoreError::Config(format!(
                            "drive {} was formatted with {} parity shards, not {}",
                            drive.root().display(),
                            f.parity.unwrap_or(0),
                            geometry.parity
                        )));
                    }
                }
                None => {
                    drive.write_format(&DriveFormat::new(
                        &deployment,
                        i as u32,
                        e as u32,
                        geometry.parity as u32,
                    ))?;
                    if formats.iter().any(Option::is_some) {
                        fresh.push(i);
                    }
                }
            }
        }
        let mut slots = Vec::with_capacity(e);
        for drive in drives {
            let meta = drive.meta_path();
            slots.push(Some(Slot::open(Arc::new(drive), &meta)?));
        }
        let codec = (e > 1)
            .then(|| ErasureCodec::with_default_block_size(geometry))
            .transpose()
            .map_err(|err| StoreError::Config(err.to_string()))?;
        Ok((
            DriveSet {
                slots,
                geometry,
                codec,
                healing: Default::default(),
                missed: Default::default(),
                reconstructed: Default::default(),
                heal_bytes_left: Default::default(),
                drives_healing: Default::default(),
            },
            fresh,
        ))
    }

    /// A set of already opened drives (a cluster's, local and remote).
    pub fn assemble(
        slots: Vec<Option<Slot>>,
        geometry: ErasureGeometry,
        codec: Option<ErasureCodec>,
    ) -> DriveSet {
        DriveSet {
            slots,
            geometry,
            codec,
            healing: Default::default(),
            missed: Default::default(),
            reconstructed: Default::default(),
            heal_bytes_left: Default::default(),
            drives_healing: Default::default(),
        }
    }

    pub fn single(slot: Slot) -> DriveSet {
        DriveSet {
            slots: vec![Some(slot)],
            geometry: ErasureGeometry::new(1, 0).expect("1+0 is a valid geometry"),
            codec: None,
            healing: Default::default(),
            missed: Default::default(),
            reconstructed: Default::default(),
            heal_bytes_left: Default::default(),
            drives_healing: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn online(&self) -> impl Iterator<Item = (usize, &Slot)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
    }

    /// Drives that are online and answering.
    pub fn reachable_count(&self) -> usize {
        self.online().filter(|(_, s)| s.reachable()).count()
    }

    /// Whether every drive of the set is online and answering promptly.
    pub fn all_responsive(&self) -> bool {
        self.slots
            .iter()
            .all(|s| s.as_ref().is_some_and(Slot::responsive))
    }

    pub fn write_quorum(&self) -> usize {
        self.geometry.write_quorum()
    }

    pub fn read_quorum(&self) -> usize {
        self.geometry.read_quorum()
    }

    /// Applies `batch` (synced) on every online drive; fails unless a write quorum did.
    pub fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Known to be short of a quorum: write nothing rather than a change that must be undone.
        let reachable = self.reachable_count();
        if reachable < self.write_quorum() {
            return Err(StoreError::QuorumLost {
                have: reachable,
                need: self.write_quorum(),
            });
        }
        let all: Vec<usize> = (0..self.slots.len()).collect();
        let results: Vec<Result<(), StoreError>> =
            self.parallel_quorum(self.write_quorum(), |i, slot| match slot {
                Some(s) if s.reachable() => s.write_batch(batch, i),
                _ => Err(StoreError::QuorumLost { have: 0, need: 1 }),
            });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        if ok >= self.write_quorum() {
            if ok < self.slots.len() {
                self.note_missed(batch);
            }
            return Ok(());
        }
        // Too few drives took the change: take back the records it added where it landed, so
        // a failed write is not visible (removals it made stay; they only hide older data
        // the client was replacing anyway).
        let undo = batch.undo_puts();
        let landed: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| results[i].is_ok())
            .collect();
        for r in self.parallel(&landed, |i, slot| match slot {
            Some(s) => s.write_batch(&undo, i),
            None => Ok(()),
        }) {
            if let Err(e) = r {
                tracing::error!(error = %e, "could not undo a write that missed its quorum");
            }
        }
        let first = results.into_iter().find_map(Result::err);
        match first {
            Some(e) if !matches!(e, StoreError::QuorumLost { .. }) => Err(e),
            _ => Err(StoreError::QuorumLost {
                have: ok,
                need: self.write_quorum(),
            }),
        }
    }

    /// Counts a block a read rebuilt from parity.
    pub fn note_reconstructed(&self) {
        self.reconstructed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Blocks reads of this set rebuilt from parity since the server started.
    pub fn reconstructed_blocks(&self) -> u64 {
        self.reconstructed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn missed(&self) -> std::sync::MutexGuard<'_, Missed> {
        self.missed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers the records of a write that reached a quorum but not every drive.
    fn note_missed(&self, batch: &Batch) {
        let mut missed = self.missed();
        for op in &batch.ops {
            if let Op::Put(k, _) | Op::PutPerDrive(k, _) = op {
                if missed.keys.len() < MAX_MISSED {
                    missed.keys.insert(k.clone());
                }
            }
        }
    }

    /// Remembers a data file written without all its shards.
    pub fn note_degraded_data(&self, id: &str) {
        let mut missed = self.missed();
        if missed.data.len() < MAX_MISSED {
            missed.data.insert(id.to_string());
        }
    }

    /// Queues `key` for healing when any of `ids` was written without all its shards.
    pub fn note_degraded_record(&self, key: &[u8], ids: &[String]) {
        let mut missed = self.missed();
        let degraded = ids.iter().any(|id| missed.data.remove(id));
        if degraded && missed.keys.len() < MAX_MISSED {
            missed.keys.insert(key.to_vec());
        }
    }

    /// How many records wait for the missed-write healer (written without every drive).
    pub fn missed_records(&self) -> usize {
        self.missed().keys.len()
    }

    /// Takes the queued record keys (see [`DriveSet::requeue_missed`]).
    pub fn take_missed(&self) -> Vec<Vec<u8>> {
        self.missed().keys.drain().collect()
    }

    /// Puts back keys that could not be healed yet (a drive is still away).
    pub fn requeue_missed(&self, keys: Vec<Vec<u8>>) {
        let mut missed = self.missed();
        for k in keys {
            if missed.keys.len() >= MAX_MISSED {
                break;
            }
            missed.keys.insert(k);
        }
    }

    /// Runs `f` for each drive index in `drives` (with its slot, `None` when offline), local
    /// drives on this thread and remote ones in parallel, and returns the results in the same
    /// order. A single local drive costs no thread.
    pub fn parallel<T: Send>(
        &self,
        drives: &[usize],
        f: impl Fn(usize, Option<&Slot>) -> T + Sync,
    ) -> Vec<T> {
        let remote = drives
            .iter()
            .filter(|&&d| self.slots[d].as_ref().is_some_and(|s| !s.is_local()))
            .count();
        if remote == 0 && drives.len() <= 1 {
            return drives
                .iter()
                .map(|&d| f(d, self.slots[d].as_ref()))
                .collect();
        }
        let f = &f;
        std::thread::scope(|scope| {
            let handles: Vec<_> = drives
                .iter()
                .map(|&d| {
                    let slot = self.slots[d].as_ref();
                    scope.spawn(move || f(d, slot))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("drive calls do not panic"))
                .collect()
        })
    }

    /// Like [`DriveSet::parallel`] over every drive, returning once `need` calls succeeded and
    /// the others had a grace to catch up (see [`super::quorum::run`]); calls to drives left
    /// behind return errors.
    pub fn parallel_quorum<T: Send, E: Send>(
        &self,
        need: usize,
        f: impl Fn(usize, Option<&Slot>) -> Result<T, E> + Sync,
    ) -> Vec<Result<T, E>> {
        let remote = self
            .slots
            .iter()
            .filter(|s| s.as_ref().is_some_and(|s| !s.is_local()))
            .count();
        if remote == 0 {
            let all: Vec<usize> = (0..self.slots.len()).collect();
            return self.parallel(&all, f);
        }
        let quiet: Vec<bool> = self
            .slots
            .iter()
            .map(|s| s.as_ref().is_some_and(|s| !s.responsive()))
            .collect();
        super::quorum::run(
            self.slots.len(),
            need,
            Result::is_ok,
            |i| quiet[i],
            |i| f(i, self.slots[i].as_ref()),
        )
    }

    /// A record's value on each drive (`None` where missing or offline).
    pub fn get_all(&self, key: &[u8]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.read_all(key).map(|(values, _)| values)
    }

    /// [`DriveSet::get_all`], with how many drives gave no answer (away, failing, or left
    /// behind by the quorum).
    fn read_all(&self, key: &[u8]) -> Result<(DriveValues, usize), StoreError> {
        let mut out = vec![None; self.slots.len()];
        let mut errors = 0;
        let results = self.parallel_quorum(self.read_quorum(), |_, slot| match slot {
            Some(s) if s.reachable() => s.get(key).map(Some),
            Some(_) => Err(StoreError::QuorumLost { have: 0, need: 1 }),
            None => Ok(None),
        });
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(Some(v)) => out[i] = v,
                Ok(None) => {}
                Err(StoreError::QuorumLost { .. }) => errors += 1,
                Err(e) => {
                    errors += 1;
                    tracing::warn!(drive = i, error = %e, "metadata read failed");
                }
            }
        }
        if self.slots.len() - errors < self.read_quorum() {
            return Err(StoreError::QuorumLost {
                have: self.slots.len() - errors,
                need: self.read_quorum(),
            });
        }
        Ok((out, errors))
    }

    /// A record present on a read quorum of drives (the value of the first drive holding it).
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (all, silent) = self.read_all(key)?;
        let count = all.iter().filter(|v| v.is_some()).count();
        if count >= self.read_quorum() {
            return Ok(all.into_iter().flatten().next());
        }
        // An acknowledged write is on a write quorum of drives: fewer copies than that among
        // the answers plus the silent drives means it is absent (or a failed write's remnant);
        // otherwise the silent drives decide and nobody can tell yet (503, not a false 404).
        if count > 0 && count + silent >= self.write_quorum() {
            return Err(StoreError::QuorumLost {
                have: count,
                need: self.read_quorum(),
            });
        }
        Ok(None)
    }

    /// Every record whose key starts with `prefix` and that is present on a read quorum of
    /// drives, with its value on each drive, in key order.
    pub fn scan_all(&self, prefix: &[u8]) -> Result<Vec<(RawKey, DriveValues)>, StoreError> {
        let mut it = self.merged_iter();
        it.seek(prefix);
        let mut out = Vec::new();
        while it.valid() {
            let key = it.key().expect("a valid iterator has a key");
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key.to_vec().into_boxed_slice(), it.values()));
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Like [`DriveSet::scan_all`] with one value per record.
    pub fn scan(&self, prefix: &[u8]) -> Result<Vec<(RawKey, Vec<u8>)>, StoreError> {
        Ok(self
            .scan_all(prefix)?
            .into_iter()
            .map(|(k, vs)| {
                (
                    k,
                    vs.into_iter()
                        .flatten()
                        .next()
                        .expect("scanned records are present on a quorum"),
                )
            })
            .collect())
    }

    /// An iterator over the union of the drives' records that yields, in key order, the keys
    /// present on a read quorum of drives.
    pub fn merged_iter(&self) -> MergedIter<'_> {
        self.merged_iter_min(self.read_quorum())
    }

    /// Like [`DriveSet::merged_iter`], yielding records held by at least `quorum` drives
    /// (the orphan sweep looks at those below a read quorum).
    pub fn merged_iter_min(&self, quorum: usize) -> MergedIter<'_> {
        MergedIter {
            iters: self
                .online()
                .filter(|(_, s)| s.reachable())
                .map(|(i, s)| (i, s.iter()))
                .collect(),
            drives: self.slots.len(),
            quorum: quorum.max(1),
            // A record acknowledged on a write quorum keeps a read quorum of copies among any
            // N - W + R drives: a scan may leave the others behind, never more.
            answers: (self.slots.len() + self.read_quorum())
                .saturating_sub(self.write_quorum())
                .min(self.slots.len()),
            current: None,
        }
    }

    /// Removes data file `id` from every drive. A drive that is away fails the call (the
    /// caller keeps the garbage record and tries again later), so its copy is not left
    /// behind with nothing naming it; an empty slot (a drive being replaced) holds nothing.
    pub fn remove_data(&self, id: &str) -> Result<(), StoreError> {
        // A drive that went quiet, or is left behind by a quorum of the others, fails the
        // call like one that is away: its removal is retried later.
        let results = self.parallel_quorum(self.write_quorum(), |_, slot| match slot {
            Some(s) if s.responsive() => s.drive.remove(id).map_err(StoreError::from),
            Some(_) => Err(StoreError::QuorumLost { have: 0, need: 1 }),
            None => Ok(()),
        });
        results.into_iter().collect()
    }
}

/// K-way merge of the drives' RocksDB iterators.
pub struct MergedIter<'a> {
    iters: Vec<(usize, SlotIter<'a>)>,
    drives: usize,
    quorum: usize,
    /// How many drives must answer a seek before the slow rest may be left behind.
    answers: usize,
    /// The current key and which iterators sit on it.
    current: Option<(Vec<u8>, Vec<usize>)>,
}

impl MergedIter<'_> {
    /// One drive answering alone (a single-drive server): the merge is the drive's own
    /// iterator, with no copying of keys per step on the listing path.
    fn direct(&self) -> bool {
        self.iters.len() == 1 && self.quorum <= 1
    }

    /// Seeks every drive: local ones here, remote ones in parallel as a quorum call, so a
    /// hung peer is left out of this scan after a grace instead of holding it — as long as
    /// enough others answered that no acknowledged record can go missing from the merge.
    pub fn seek(&mut self, key: &[u8]) {
        let mut remote: Vec<Mutex<&mut PagedIter>> = Vec::new();
        let mut local = 0;
        for (_, it) in &mut self.iters {
            match it {
                SlotIter::Local(it) => {
                    it.seek(key);
                    local += 1;
                }
                SlotIter::Remote(it) => remote.push(Mutex::new(it)),
            }
        }
        if remote.len() == 1 {
            remote[0]
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .seek(key);
        } else if remote.len() > 1 {
            let need = self.answers.saturating_sub(local).max(1);
            let quiet: Vec<bool> = remote
                .iter_mut()
                .map(|it| {
                    !it.get_mut()
                        .unwrap_or_else(|p| p.into_inner())
                        .src
                        .responsive()
                })
                .collect();
            super::quorum::run(
                remote.len(),
                need,
                |&answered| answered,
                |i| quiet[i],
                |i| {
                    remote[i]
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .seek(key)
                },
            );
        }
        self.settle();
    }

    pub fn next(&mut self) {
        if self.direct() {
            self.iters[0].1.next();
            return;
        }
        if let Some((_, on)) = self.current.take() {
            for j in on {
                self.iters[j].1.next();
            }
        }
        self.settle();
    }

    /// Moves to the smallest key present on a quorum, skipping keys on fewer drives.
    fn settle(&mut self) {
        if self.direct() {
            return;
        }
        loop {
            let min = self
                .iters
                .iter()
                .filter(|(_, it)| it.valid())
                .filter_map(|(_, it)| it.key())
                .min()
                .map(<[u8]>::to_vec);
            let Some(min) = min else {
                self.current = None;
                return;
            };
            let on: Vec<usize> = self
                .iters
                .iter()
                .enumerate()
                .filter(|(_, (_, it))| it.valid() && it.key() == Some(min.as_slice()))
                .map(|(j, _)| j)
                .collect();
            if on.len() >= self.quorum {
                self.current = Some((min, on));
                return;
            }
            for j in on {
                self.iters[j].1.next();
            }
        }
    }

    pub fn valid(&self) -> bool {
        if self.direct() {
            return self.iters[0].1.valid();
        }
        self.current.is_some()
    }

    pub fn key(&self) -> Option<&[u8]> {
        if self.direct() {
            return self.iters[0].1.key();
        }
        self.current.as_ref().map(|(k, _)| k.as_slice())
    }

    /// The value of the current record on one drive holding it.
    pub fn value(&self) -> Option<&[u8]> {
        if self.direct() {
            return self.iters[0].1.value();
        }
        let (_, on) = self.current.as_ref()?;
        self.iters[on[0]].1.value()
    }

    /// The current record's value on each drive, in drive order.
    pub fn values(&self) -> Vec<Option<Vec<u8>>> {
        let mut out = vec![None; self.drives];
        if self.direct() {
            let (drive, it) = &self.iters[0];
            out[*drive] = it.value().map(<[u8]>::to_vec);
            return out;
        }
        if let Some((_, on)) = &self.current {
            for &j in on {
                let (drive, it) = &self.iters[j];
                out[*drive] = it.value().map(<[u8]>::to_vec);
            }
        }
        out
    }

    pub fn status(&self) -> Result<(), StoreError> {
        for (_, it) in &self.iters {
            it.status()?;
        }
        Ok(())
    }
}

/// A drive's sorted records: RocksDB's own iterator, or pages fetched from a peer.
pub enum SlotIter<'a> {
    Local(DBRawIterator<'a>),
    Remote(PagedIter),
}

impl SlotIter<'_> {
    fn next(&mut self) {
        match self {
            SlotIter::Local(it) => it.next(),
            SlotIter::Remote(it) => it.next(),
        }
    }
    fn valid(&self) -> bool {
        match self {
            SlotIter::Local(it) => it.valid(),
            SlotIter::Remote(it) => it.valid(),
        }
    }
    fn key(&self) -> Option<&[u8]> {
        match self {
            SlotIter::Local(it) => it.key(),
            SlotIter::Remote(it) => it.key(),
        }
    }
    fn value(&self) -> Option<&[u8]> {
        match self {
            SlotIter::Local(it) => it.value(),
            SlotIter::Remote(it) => it.value(),
        }
    }
    fn status(&self) -> Result<(), StoreError> {
        match self {
            SlotIter::Local(it) => Ok(it.status()?),
            // A peer that went down mid-scan counts as offline: the merge goes on with the
            // others. One that is up but failed makes the scan's answer unknown (503).
            SlotIter::Remote(it) => match &it.failed {
                None => Ok(()),
                Some(e) => Err(StoreError::QuorumLost { have: 0, need: 1 })
                    .inspect_err(|_| tracing::debug!(error = %e, "scan incomplete")),
            },
        }
    }
}

/// The first page of a remote scan is small (most scans are point lookups of one key's
/// versions); later pages grow to this many records.
const FIRST_PAGE: usize = 8;
const MAX_PAGE: usize = 1000;

/// A remote drive's records in key order, fetched a page at a time.
pub struct PagedIter {
    src: Arc<dyn RemoteRecords>,
    page: Vec<(Vec<u8>, Vec<u8>)>,
    pos: usize,
    more: bool,
    limit: usize,
    /// A page failed twice while its peer still counted as up: the drive's records are
    /// unknown, so what the merge leaves out is not proven absent.
    failed: Option<String>,
}

impl PagedIter {
    fn new(src: Arc<dyn RemoteRecords>) -> PagedIter {
        PagedIter {
            src,
            page: Vec::new(),
            pos: 0,
            more: false,
            limit: FIRST_PAGE,
            failed: None,
        }
    }

    /// Fetches the page from `from`; returns whether the drive answered.
    fn fetch(&mut self, from: &[u8], inclusive: bool) -> bool {
        let left_behind = || super::quorum::left_behind().is_some_and(|t| t.is_cancelled());
        // One retry: a pooled connection to a peer that just restarted fails once.
        let mut result = self.src.page(from, inclusive, self.limit);
        if result.is_err() && self.src.reachable() && !left_behind() {
            std::thread::sleep(std::time::Duration::from_millis(50));
            result = self.src.page(from, inclusive, self.limit);
        }
        self.pos = 0;
        self.limit = (self.limit * 8).min(MAX_PAGE);
        match result {
            Ok((page, more)) => {
                self.page = page;
                self.more = more;
                true
            }
            Err(e) => {
                // A peer found down, or too slow for a scan that a quorum of the others
                // answered, is offline like any other (the merge needs a quorum of the
                // rest); one still up failed for another reason, and the scan says so.
                if self.src.reachable() && !left_behind() {
                    self.failed = Some(e.to_string());
                }
                tracing::warn!(error = %e, "a remote drive failed during a scan; skipping it");
                self.page.clear();
                self.more = false;
                false
            }
        }
    }

    fn seek(&mut self, key: &[u8]) -> bool {
        self.limit = FIRST_PAGE;
        self.fetch(key, true)
    }

    fn next(&mut self) {
        self.pos += 1;
        if self.pos >= self.page.len() && self.more {
            let last = self.page.last().map(|(k, _)| k.clone()).unwrap_or_default();
            self.fetch(&last, false);
        }
    }

    fn valid(&self) -> bool {
        self.pos < self.page.len()
    }

    fn key(&self) -> Option<&[u8]> {
        self.page.get(self.pos).map(|(k, _)| k.as_slice())
    }

    fn value(&self) -> Option<&[u8]> {
        self.page.get(self.pos).map(|(_, v)| v.as_slice())
    }
}

/// The merge of several sets' record streams (objects of a pool live in one set each): yields
/// records in key order from whichever set holds them.
pub struct SetsIter<'a> {
    iters: Vec<MergedIter<'a>>,
    current: Option<usize>,
}

impl<'a> SetsIter<'a> {
    pub fn new(sets: &'a [Arc<DriveSet>]) -> SetsIter<'a> {
        SetsIter {
            iters: sets.iter().map(|s| s.merged_iter()).collect(),
            current: None,
        }
    }

    fn settle(&mut self) {
        self.current = self
            .iters
            .iter()
            .enumerate()
            .filter(|(_, it)| it.valid())
            .min_by(|(_, a), (_, b)| a.key().cmp(&b.key()))
            .map(|(i, _)| i);
    }

    pub fn seek(&mut self, key: &[u8]) {
        for it in &mut self.iters {
            it.seek(key);
        }
        self.settle();
    }

    pub fn next(&mut self) {
        if let Some(i) = self.current {
            self.iters[i].next();
        }
        self.settle();
    }

    pub fn valid(&self) -> bool {
        self.current.is_some()
    }

    /// The set the current record comes from.
    pub fn set(&self) -> Option<usize> {
        self.current
    }

    pub fn key(&self) -> Option<&[u8]> {
        self.iters[self.current?].key()
    }

    pub fn value(&self) -> Option<&[u8]> {
        self.iters[self.current?].value()
    }

    pub fn values(&self) -> DriveValues {
        match self.current {
            Some(i) => self.iters[i].values(),
            None => Vec::new(),
        }
    }

    pub fn status(&self) -> Result<(), StoreError> {
        for it in &self.iters {
            it.status()?;
        }
        Ok(())
    }
}
