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
use super::fence::Fence;
use super::stamp::{self, Clock, Stamp};
use super::{keys, RawKey, StoreError};

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
    /// The batch as sent to drive `drive`, sealed with `stamp`. With `tombstones`, a delete
    /// is a tombstone newer than what it deletes (a set of several drives); otherwise (one
    /// drive, nothing to bring it back) the record is removed.
    pub fn wire_for_drive(&self, drive: usize, stamp: Stamp, tombstones: bool) -> Vec<WireOp> {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Put(k, v) => WireOp::Put(k.clone(), stamp::seal(stamp, v)),
                Op::PutPerDrive(k, vs) => WireOp::Put(k.clone(), stamp::seal(stamp, &vs[drive])),
                Op::Delete(k) if tombstones => WireOp::Put(k.clone(), stamp::tombstone(stamp)),
                Op::Delete(k) => WireOp::Delete(k.clone()),
            })
            .collect()
    }
}

/// One change of a record batch on the wire (peer RPC).
#[derive(Debug, Serialize, Deserialize)]
pub enum WireOp {
    /// Writes a sealed value unless the drive holds a newer stamp for the key (then the whole
    /// batch is refused with that stamp); a value from a peer that does not stamp is written.
    Put(
        #[serde(with = "serde_bytes")] Vec<u8>,
        #[serde(with = "serde_bytes")] Vec<u8>,
    ),
    /// Removes a record outright (a single drive's delete).
    Delete(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Removes the record if the drive still holds the one stamped so (a tombstone every drive
    /// holds, or a write taken back that hid nothing).
    Purge(#[serde(with = "serde_bytes")] Vec<u8>, Stamp),
    /// Takes back a write that missed its quorum: if the drive still holds the record stamped
    /// so, it is replaced by the sealed value of the state it hid (older: the one move back
    /// a drive makes, and only from a write no quorum holds).
    Retract(
        #[serde(with = "serde_bytes")] Vec<u8>,
        Stamp,
        #[serde(with = "serde_bytes")] Vec<u8>,
    ),
    /// The fence of a cluster lock: the record under `keys::fence(resource)` and the token
    /// sealed as its stamp. A drive holding a newer token refuses the whole batch
    /// ([`StoreError::Fenced`]); otherwise it keeps the token, atomically with the batch.
    Fence(
        #[serde(with = "serde_bytes")] Vec<u8>,
        #[serde(with = "serde_bytes")] Vec<u8>,
    ),
}

/// Key stripes of a drive's conditional writes: a write reads the stamps it replaces and
/// writes under its keys' stripes, so two writers of one key cannot both pass the check.
const STRIPES: usize = 64;

/// A drive's RocksDB on this server, written only through [`LocalRecords::apply`].
pub struct LocalRecords {
    db: DB,
    stripes: Vec<Mutex<()>>,
}

impl LocalRecords {
    pub fn new(db: DB) -> LocalRecords {
        LocalRecords {
            db,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    pub fn db(&self) -> &DB {
        &self.db
    }

    /// Applies `ops` as one synced batch, all or nothing: fails with
    /// [`StoreError::Stale`] when the drive holds a newer stamp than a put's for its key, so
    /// no late write and no heal ever moves a record backwards. A put of the stamp the drive
    /// already holds is already applied.
    pub fn apply(&self, ops: &[WireOp]) -> Result<(), StoreError> {
        let key_of = |op: &WireOp| -> Vec<u8> {
            match op {
                WireOp::Put(k, _)
                | WireOp::Delete(k)
                | WireOp::Purge(k, _)
                | WireOp::Retract(k, _, _)
                | WireOp::Fence(k, _) => k.clone(),
            }
        };
        let mut stripes: Vec<usize> = ops.iter().map(|op| stripe_of(&key_of(op))).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let _held: Vec<_> = stripes
            .iter()
            .map(|&i| self.stripes[i].lock().unwrap_or_else(|p| p.into_inner()))
            .collect();
        let mut b = WriteBatch::default();
        for change in plan(ops, |k| Ok(self.db.get_pinned(k)?.map(|v| v.to_vec())))? {
            match change {
                Change::Put(k, v) => b.put(k, v),
                Change::Delete(k) => b.delete(k),
            }
        }
        if b.is_empty() {
            return Ok(());
        }
        Ok(self.db.write_opt(b, &synced())?)
    }
}

/// A change a drive makes to its records.
#[derive(Debug, PartialEq, Eq)]
pub enum Change<'a> {
    Put(&'a [u8], &'a [u8]),
    Delete(&'a [u8]),
}

/// What a drive holding `held(key)` makes of `ops`: the changes to apply as one batch, or
/// [`StoreError::Stale`] with the newer stamp it holds for a put's key, or
/// [`StoreError::Fenced`] with the newer token it holds for a fence (nothing applies then).
/// A put of the stamp held already is already applied; a value from before stamps (a heal
/// copying one) never replaces a stamped one.
pub fn plan<'a>(
    ops: &'a [WireOp],
    held: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, StoreError>,
) -> Result<Vec<Change<'a>>, StoreError> {
    let clock = stamp::process_clock();
    let stamp_held = |k: &[u8]| -> Result<Option<Stamp>, StoreError> {
        Ok(held(k)?.map(|h| stamp::open(&h).stamp))
    };
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            WireOp::Put(k, v) => {
                let incoming = stamp::open(v).stamp;
                if incoming != Stamp::LEGACY {
                    clock.observe(incoming);
                }
                match stamp_held(k)? {
                    Some(h) if h > incoming => return Err(StoreError::Stale(h)),
                    // Already applied (a value from before stamps replaces its like).
                    Some(h) if h == incoming && incoming != Stamp::LEGACY => continue,
                    _ => {}
                }
                out.push(Change::Put(k, v));
            }
            WireOp::Delete(k) => out.push(Change::Delete(k)),
            WireOp::Purge(k, s) => {
                if stamp_held(k)? == Some(*s) {
                    out.push(Change::Delete(k));
                }
            }
            WireOp::Retract(k, s, hidden) => {
                if stamp_held(k)? == Some(*s) {
                    out.push(Change::Put(k, hidden));
                }
            }
            WireOp::Fence(k, v) => {
                if k.first() != Some(&keys::FENCE) {
                    return Err(StoreError::Internal(
                        "a fence outside the fence records".into(),
                    ));
                }
                let token = stamp::open(v).stamp;
                clock.observe(token);
                match stamp_held(k)? {
                    Some(h) if h > token => return Err(StoreError::Fenced(h)),
                    Some(h) if h == token => {}
                    _ => out.push(Change::Put(k, v)),
                }
            }
        }
    }
    Ok(out)
}

/// The newest stamp among the drives' refusals of one kind (`pick`), if any refused so.
fn newest_refusal(
    results: &[Result<(), StoreError>],
    pick: impl Fn(&StoreError) -> Option<Stamp>,
) -> Option<Stamp> {
    results
        .iter()
        .filter_map(|r| r.as_ref().err().and_then(&pick))
        .max()
}

fn stripe_of(key: &[u8]) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % STRIPES as u64) as usize
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
    /// `get(key)` and `page(from, true, limit)`; a peer answers both in one round trip.
    fn get_and_page(
        &self,
        key: &[u8],
        from: &[u8],
        limit: usize,
    ) -> Result<(Option<Vec<u8>>, RecordPage), StoreError> {
        Ok((self.get(key)?, self.page(from, true, limit)?))
    }
    /// Whether the drive's server answered lately (a down peer is skipped without waiting).
    fn reachable(&self) -> bool;
    /// Whether the drive's server answered anything very lately: a quiet one is not waited
    /// for past a quorum of the others.
    fn responsive(&self) -> bool;
    /// How long to wait before asking again after a failed page (a pooled connection to a
    /// peer that just restarted fails once).
    fn retry_after(&self) -> std::time::Duration {
        std::time::Duration::from_millis(50)
    }
}

/// Where a drive's records live.
pub enum Records {
    Local(LocalRecords),
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
    /// Stamps this set's writes (the process's clock).
    clock: Arc<Clock>,
}

/// Records written without every drive, and data files written without every shard.
#[derive(Default)]
struct Missed {
    keys: std::collections::HashSet<Vec<u8>>,
    /// Healed onto every drive that answered; still to heal onto one that was away.
    parked: std::collections::HashSet<Vec<u8>>,
    data: std::collections::HashSet<String>,
}

/// At most this many missed writes are remembered; the scanner finds the rest.
const MAX_MISSED: usize = 100_000;

/// How often a write is stamped again after drives refused it for holding newer stamps.
const WRITE_ATTEMPTS: usize = 4;

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
            records: Records::Local(LocalRecords::new(db)),
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
        self.local_records().map(LocalRecords::db)
    }

    /// The local records, `None` for a remote drive.
    pub fn local_records(&self) -> Option<&LocalRecords> {
        match &self.records {
            Records::Local(r) => Some(r),
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

    /// Applies `ops` on the drive (see [`LocalRecords::apply`]).
    pub fn apply(&self, ops: Vec<WireOp>) -> Result<(), StoreError> {
        match &self.records {
            Records::Local(r) => r.apply(&ops),
            Records::Remote(r) => r.write(ops),
        }
    }

    /// The stored (sealed) value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.records {
            Records::Local(r) => Ok(r.db.get(key)?),
            Records::Remote(r) => r.get(key),
        }
    }

    /// Writes one sealed value (synced) unless the drive holds a newer one.
    pub fn put(&self, key: &[u8], sealed: Vec<u8>) -> Result<(), StoreError> {
        self.apply(vec![WireOp::Put(key.to_vec(), sealed)])
    }

    fn iter(&self) -> SlotIter<'_> {
        match &self.records {
            Records::Local(r) => SlotIter::Local(r.db.raw_iterator(), &r.db),
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
                clock: stamp::process_clock(),
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
            clock: stamp::process_clock(),
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
            clock: stamp::process_clock(),
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

    /// The clock stamping this set's writes.
    pub fn clock(&self) -> &Arc<Clock> {
        &self.clock
    }

    /// Stamps this set's writes with `clock` (a cluster simulation gives each coordinator its
    /// own, skewed).
    pub fn set_clock(&mut self, clock: Arc<Clock>) {
        self.clock = clock;
    }

    /// Applies `batch` (synced, under one new stamp) on every online drive; succeeds once a
    /// write quorum took it. A drive holding a newer stamp for one of its keys (a write
    /// stamped by a clock ahead of this one) refuses it: the stamp is observed and the batch
    /// written again, newer. A write that misses its quorum is not taken back — taking back
    /// would destroy what the drives held before — but it cannot be seen either unless it
    /// could have been acknowledged ([`resolve`]); the scanner later completes or retracts it.
    /// It fails with [`StoreError::Indeterminate`] (it may yet take effect), or
    /// [`StoreError::QuorumLost`] when nothing was sent.
    pub fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        self.write_fenced(batch, None)
    }

    /// [`DriveSet::write`] under a cluster lock's `fence` (none standalone): nothing is sent
    /// once the lease is lost ([`StoreError::LockLost`]), and every drive checks the fence's
    /// token against the newest it saw for the resource, atomically with the batch. Drives
    /// refusing an older token ([`StoreError::Fenced`]) make a holder whose lease is still
    /// valid take a newer token and write again; one whose lease is lost gives up, and its
    /// write is not acknowledged.
    pub fn write_fenced(&self, batch: &Batch, fence: Option<&Fence>) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Known to be short of a quorum: write nothing.
        let reachable = self.reachable_count();
        if reachable < self.write_quorum() {
            return Err(StoreError::QuorumLost {
                have: reachable,
                need: self.write_quorum(),
            });
        }
        let tombstones = self.slots.len() > 1;
        let mut ok = 0;
        for _ in 0..WRITE_ATTEMPTS {
            if let Some(f) = fence.filter(|f| !f.valid()) {
                return Err(f.lost());
            }
            let stamp = self.clock.now();
            // The fence goes first: a drive checks it before any record.
            let fence_record = fence.map(Fence::record);
            let results: Vec<Result<(), StoreError>> =
                self.parallel_quorum(self.write_quorum(), |i, slot| match slot {
                    Some(s) if s.reachable() => {
                        let mut ops = Vec::with_capacity(batch.ops.len() + 1);
                        if let Some((k, v)) = &fence_record {
                            ops.push(WireOp::Fence(k.clone(), v.clone()));
                        }
                        ops.extend(batch.wire_for_drive(i, stamp, tombstones));
                        s.apply(ops)
                    }
                    _ => Err(StoreError::QuorumLost { have: 0, need: 1 }),
                });
            let fenced = newest_refusal(&results, |e| match e {
                StoreError::Fenced(s) => Some(*s),
                _ => None,
            });
            if let (Some(held), Some(f)) = (fenced, fence) {
                // Another writer took the lock since this one's token was taken: only a
                // holder still holding a majority may go on, under a newer token.
                if f.newer_token(held).is_none() {
                    return Err(f.lost());
                }
                continue;
            }
            let newer = newest_refusal(&results, |e| match e {
                StoreError::Stale(s) => Some(*s),
                _ => None,
            });
            if let Some(newer) = newer {
                self.clock.observe(newer);
                continue;
            }
            ok = results.iter().filter(|r| r.is_ok()).count();
            if ok >= self.write_quorum() {
                if ok < self.slots.len() {
                    self.note_missed(batch);
                }
                return Ok(());
            }
            if let Some(e) = results.into_iter().find_map(|r| {
                r.err()
                    .filter(|e| !matches!(e, StoreError::QuorumLost { .. }))
            }) {
                tracing::warn!(error = %e, drives = ok, "a write missed its quorum");
            }
            break;
        }
        Err(StoreError::Indeterminate {
            have: ok,
            need: self.write_quorum(),
        })
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

    /// Queues one record for the missed-write healer.
    pub fn note_missed_key(&self, key: &[u8]) {
        let mut missed = self.missed();
        if missed.keys.len() < MAX_MISSED {
            missed.keys.insert(key.to_vec());
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
        let missed = self.missed();
        missed.keys.len() + missed.parked.len()
    }

    /// Takes the queued record keys (see [`DriveSet::requeue_missed`]), and the parked ones
    /// too when `everyone` (every drive of the set) answers.
    pub fn take_missed(&self, everyone: bool) -> Vec<Vec<u8>> {
        let mut missed = self.missed();
        let mut keys: Vec<Vec<u8>> = missed.keys.drain().collect();
        if everyone {
            keys.extend(missed.parked.drain());
        }
        keys
    }

    /// Parks keys healed onto every drive that answered, until every drive answers.
    pub fn park_missed(&self, keys: Vec<Vec<u8>>) {
        let mut missed = self.missed();
        for k in keys {
            if missed.parked.len() >= MAX_MISSED {
                break;
            }
            missed.parked.insert(k);
        }
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

    /// Runs `f` for each drive index in `drives` (with its slot, `None` when offline) in
    /// parallel on the drive workers, and returns the results in the same order. A single
    /// local drive runs on this thread.
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
        super::quorum::all(drives.len(), |j| {
            let d = drives[j];
            f(d, self.slots[d].as_ref())
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

    /// What the drives say of `key`: its visible state (see [`resolve`]) with the record on
    /// each drive holding that state (`None` elsewhere), after repairing the drives that
    /// answered with an older state. `Ok(None)` when absent; 503 when too few drives answer
    /// to tell.
    pub fn get_resolved(&self, key: &[u8]) -> Result<Option<(Stamp, DriveValues)>, StoreError> {
        let (raw, silent) = self.read_raw(key)?;
        self.resolve_read(key, &raw, &silent)
    }

    /// [`DriveSet::get_resolved`] of `key`, and a [`MergedIter`] seeked to `from`, in one
    /// round trip to each drive (a GET reads its bucket and seeks its key at once).
    pub fn get_and_seek(
        &self,
        key: &[u8],
        from: &[u8],
        expect: usize,
    ) -> Result<(Option<(Stamp, DriveValues)>, MergedIter<'_>), StoreError> {
        let mut it = self.merged_iter();
        it.expect(expect);
        let (raw, silent) = it.seek_reading(from, Some(key));
        self.enough_answered(&silent)?;
        Ok((self.resolve_read(key, &raw, &silent)?, it))
    }

    /// Fails unless a read quorum of drives answered.
    fn enough_answered(&self, silent: &[bool]) -> Result<(), StoreError> {
        let answered = silent.iter().filter(|&&s| !s).count();
        if answered < self.read_quorum() {
            return Err(StoreError::QuorumLost {
                have: answered,
                need: self.read_quorum(),
            });
        }
        Ok(())
    }

    /// The visible state of `key` from each drive's stored value `raw` (see
    /// [`DriveSet::get_resolved`]), repairing the drives behind it.
    fn resolve_read(
        &self,
        key: &[u8],
        raw: &[Option<Vec<u8>>],
        silent: &[bool],
    ) -> Result<Option<(Stamp, DriveValues)>, StoreError> {
        let opened: Vec<Option<stamp::Opened>> =
            raw.iter().map(|v| v.as_deref().map(stamp::open)).collect();
        match resolve(&opened, silent, self.write_quorum(), self.read_quorum()) {
            State::Unknown => Err(StoreError::QuorumLost {
                have: silent.iter().filter(|&&s| !s).count(),
                need: self.read_quorum(),
            }),
            State::Absent => Ok(None),
            State::Dead(seen) => {
                self.repair(key, raw, &seen);
                Ok(None)
            }
            State::Live(seen) => {
                self.repair(key, raw, &seen);
                let values = opened
                    .iter()
                    .enumerate()
                    .map(|(d, o)| {
                        o.filter(|_| seen.holders.contains(&d))
                            .and_then(|o| o.payload)
                            .map(<[u8]>::to_vec)
                    })
                    .collect();
                Ok(Some((seen.stamp, values)))
            }
        }
    }

    /// A record's value on each drive holding its visible state (all `None` when absent).
    pub fn get_all(&self, key: &[u8]) -> Result<DriveValues, StoreError> {
        Ok(match self.get_resolved(key)? {
            Some((_, values)) => values,
            None => vec![None; self.slots.len()],
        })
    }

    /// Brings drives that answered with an older state of `key` than the visible one up to
    /// it. A record whose drives hold different values (an object version's inline shards)
    /// or that needs shard files (an upload's part) is left to the healers.
    fn repair(&self, key: &[u8], raw: &[Option<Vec<u8>>], seen: &Seen) {
        if seen.stamp == Stamp::LEGACY || seen.behind.is_empty() {
            return;
        }
        let source = raw[seen.holders[0]].clone().expect("holders hold a value");
        let live = stamp::open(&source).payload.is_some();
        if live && matches!(key.first(), Some(&keys::VERSION) | Some(&keys::PART)) {
            self.note_missed_key(key);
            return;
        }
        let targets: Vec<usize> = seen.behind.clone();
        for r in self.parallel(&targets, |_, slot| match slot {
            Some(s) => s.put(key, source.clone()),
            None => Ok(()),
        }) {
            if let Err(e) = r {
                tracing::debug!(error = %e, "read repair failed; the scanner retries it");
            }
        }
    }

    /// Every drive's stored value of `key` (`None` where missing or silent), with how many
    /// drives gave no answer (away, failing, or left behind by the quorum). Fails when fewer
    /// than a read quorum answered.
    fn read_raw(&self, key: &[u8]) -> Result<(DriveValues, Vec<bool>), StoreError> {
        let mut out = vec![None; self.slots.len()];
        let mut silent = vec![false; self.slots.len()];
        let results = self.parallel_quorum(self.read_quorum(), |_, slot| match slot {
            Some(s) if s.reachable() => s.get(key),
            _ => Err(StoreError::QuorumLost { have: 0, need: 1 }),
        });
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(v) => out[i] = v,
                Err(StoreError::QuorumLost { .. }) => silent[i] = true,
                Err(e) => {
                    silent[i] = true;
                    tracing::warn!(drive = i, error = %e, "metadata read failed");
                }
            }
        }
        self.enough_answered(&silent)?;
        Ok((out, silent))
    }

    /// A record's visible value (see [`resolve`]), `None` when absent.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .get_resolved(key)?
            .and_then(|(_, values)| values.into_iter().flatten().next()))
    }

    /// Every record whose key starts with `prefix` and that is present on a read quorum of
    /// drives, with its value on each drive, in key order.
    pub fn scan_all(&self, prefix: &[u8]) -> Result<Vec<(RawKey, DriveValues)>, StoreError> {
        let mut it = self.merged_iter();
        it.seek(prefix);
        it.collect_prefix(prefix)
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
    /// whose visible state (see [`resolve`]) is a live record.
    pub fn merged_iter(&self) -> MergedIter<'_> {
        self.new_merge(false)
    }

    /// An iterator over every key any drive holds, with every drive's stored value (the
    /// scanner's sweep of tombstones and unfinished writes).
    pub fn raw_iter(&self) -> MergedIter<'_> {
        self.new_merge(true)
    }

    fn new_merge(&self, raw: bool) -> MergedIter<'_> {
        MergedIter {
            iters: self
                .online()
                .filter(|(_, s)| s.reachable())
                .map(|(i, s)| (i, s.iter()))
                .collect(),
            drives: self.slots.len(),
            raw,
            write_quorum: self.write_quorum(),
            read_quorum: self.read_quorum(),
            // A record acknowledged on a write quorum keeps a read quorum of copies among any
            // N - W + R drives: a scan may leave the others behind, never more.
            answers: (self.slots.len() + self.read_quorum())
                .saturating_sub(self.write_quorum())
                .min(self.slots.len()),
            expect: FIRST_PAGE,
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

/// What the drives that answered say about one key ([`resolve`]).
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    /// A record, held as `Seen::holders` say.
    Live(Seen),
    /// Deleted (a tombstone).
    Dead(Seen),
    /// No drive that answered holds anything that could have been acknowledged.
    Absent,
    /// Too few drives answered to tell (a record from before stamps, below a read quorum,
    /// that the silent drives might complete).
    Unknown,
}

/// The visible state of a key: its stamp, the drives holding it, and the drives that answered
/// with something older (or nothing) and should be repaired.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    pub stamp: Stamp,
    pub holders: Vec<usize>,
    pub behind: Vec<usize>,
}

/// Settles one key from each drive's stored value (`None`: missing, or the drive is `silent`).
/// The visible state is the newest stamp `s` that could have been acknowledged: the drives
/// holding `s` or newer, with the silent ones, make a write quorum — or `s` is the newest
/// stamp seen and a read quorum holds it (drives that came back empty answer "nothing"). Drives only ever move to
/// newer stamps (a write taken back is replaced by the state it hid, see [`WireOp::Retract`]),
/// so an acknowledged write keeps a write quorum at or above its stamp, and every read quorum
/// sees it or something newer that could have been acknowledged — never anything older. A
/// failed write on fewer drives is passed over, leaving the state before it readable. A value
/// from before stamps counts as it always did: visible on a read quorum.
pub fn resolve(
    values: &[Option<stamp::Opened>],
    silent: &[bool],
    write_quorum: usize,
    read_quorum: usize,
) -> State {
    let silent_n = silent.iter().filter(|&&s| s).count();
    let mut stamps: Vec<Stamp> = values
        .iter()
        .flatten()
        .map(|o| o.stamp)
        .filter(|&s| s != Stamp::LEGACY)
        .collect();
    stamps.sort_unstable_by(|a, b| b.cmp(a));
    stamps.dedup();
    let on = |stamp: Stamp| -> Vec<usize> {
        (0..values.len())
            .filter(|&d| values[d].is_some_and(|o| o.stamp == stamp))
            .collect()
    };
    for (i, &stamp) in stamps.iter().enumerate() {
        let holders = on(stamp);
        let newer = (0..values.len())
            .filter(|&d| values[d].is_some_and(|o| o.stamp > stamp))
            .count();
        // Or the newest stamp any drive gave, on a read quorum: drives that answered without
        // it may be empty ones being filled, and nothing newer was seen.
        if holders.len() + newer + silent_n >= write_quorum
            || (i == 0 && holders.len() >= read_quorum)
        {
            let behind = (0..values.len())
                .filter(|&d| !silent[d] && values[d].is_none_or(|o| o.stamp < stamp))
                .collect();
            let live = values[holders[0]].is_some_and(|o| o.payload.is_some());
            let seen = Seen {
                stamp,
                holders,
                behind,
            };
            return if live {
                State::Live(seen)
            } else {
                State::Dead(seen)
            };
        }
    }
    let legacy = on(Stamp::LEGACY);
    if legacy.len() >= read_quorum {
        State::Live(Seen {
            stamp: Stamp::LEGACY,
            holders: legacy,
            behind: Vec::new(),
        })
    } else if !legacy.is_empty() && legacy.len() + silent_n >= write_quorum {
        State::Unknown
    } else {
        State::Absent
    }
}

/// K-way merge of the drives' RocksDB iterators.
pub struct MergedIter<'a> {
    iters: Vec<(usize, SlotIter<'a>)>,
    drives: usize,
    /// Every key with every stored value, rather than the visible records.
    raw: bool,
    write_quorum: usize,
    read_quorum: usize,
    /// How many drives must answer a seek before the slow rest may be left behind.
    answers: usize,
    /// How many records the next seek fetches from each remote drive at first.
    expect: usize,
    current: Option<Current>,
}

/// The key a [`MergedIter`] sits on.
struct Current {
    key: Vec<u8>,
    /// The iterators on it.
    on: Vec<usize>,
    /// Those holding its visible state.
    holders: Vec<usize>,
    stamp: Stamp,
}

impl MergedIter<'_> {
    /// One drive alone (a single-drive set): the merge is the drive's own iterator, with no
    /// copying of keys per step on the listing path.
    fn direct(&self) -> bool {
        self.drives == 1 && self.iters.len() == 1
    }

    /// Seeks every drive: local ones here, remote ones in parallel as a quorum call, so a
    /// hung peer is left out of this scan after a grace instead of holding it — as long as
    /// enough others answered that no acknowledged record can go missing from the merge.
    pub fn seek(&mut self, key: &[u8]) {
        self.seek_reading(key, None);
    }

    /// Tells the next seek that about `records` records will be read from it (a listing's
    /// page), so remote drives send that many at once instead of a small first page.
    pub fn expect(&mut self, records: usize) {
        self.expect = records.clamp(FIRST_PAGE, MAX_PAGE);
    }

    /// Seeks every drive to `key` like [`MergedIter::seek`] and, in the same round trip to
    /// each drive, reads record `get`: returns its stored value on each drive (`None` where
    /// absent or silent), and which drives were silent (see [`DriveSet::read_raw`]).
    fn seek_reading(&mut self, key: &[u8], get: Option<&[u8]>) -> (DriveValues, Vec<bool>) {
        let mut read = vec![None; self.drives];
        let mut silent = vec![true; self.drives];
        let mut remote: Vec<(usize, Mutex<&mut PagedIter>)> = Vec::new();
        let mut local = 0;
        for (d, it) in &mut self.iters {
            match it {
                SlotIter::Local(it, db) => {
                    it.seek(key);
                    local += 1;
                    match get.map(|get| db.get(get)) {
                        None => silent[*d] = false,
                        Some(Ok(v)) => (read[*d], silent[*d]) = (v, false),
                        Some(Err(e)) => {
                            tracing::warn!(drive = *d, error = %e, "metadata read failed")
                        }
                    }
                }
                SlotIter::Remote(it) => remote.push((*d, Mutex::new(it))),
            }
        }
        // The first page of a remote drive: what the caller expects to read, once.
        let first = std::mem::replace(&mut self.expect, FIRST_PAGE);
        let seek = |it: &mut PagedIter| match get {
            None => it.seek(key, first).then_some(None),
            Some(get) => it.seek_and_get(key, get, first),
        };
        let answers: Vec<Option<Option<Vec<u8>>>> = if remote.len() == 1 {
            vec![seek(
                remote[0].1.get_mut().unwrap_or_else(|p| p.into_inner()),
            )]
        } else if remote.len() > 1 {
            let need = self.answers.saturating_sub(local).max(1);
            let quiet: Vec<bool> = remote
                .iter_mut()
                .map(|(_, it)| {
                    !it.get_mut()
                        .unwrap_or_else(|p| p.into_inner())
                        .src
                        .responsive()
                })
                .collect();
            super::quorum::run(
                remote.len(),
                need,
                Option::is_some,
                |i| quiet[i],
                |i| seek(&mut remote[i].1.lock().unwrap_or_else(|p| p.into_inner())),
            )
        } else {
            Vec::new()
        };
        for ((d, _), answer) in remote.iter().zip(answers) {
            if let Some(v) = answer {
                (read[*d], silent[*d]) = (v, false);
            }
        }
        self.settle();
        (read, silent)
    }

    /// The records from here on whose keys start with `prefix`, with their values on each
    /// drive (see [`DriveSet::scan_all`]).
    pub fn collect_prefix(
        mut self,
        prefix: &[u8],
    ) -> Result<Vec<(RawKey, DriveValues)>, StoreError> {
        let mut out = Vec::new();
        while self.valid() {
            let key = self.key().expect("a valid iterator has a key");
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key.to_vec().into_boxed_slice(), self.values()));
            self.next();
        }
        self.status()?;
        Ok(out)
    }

    pub fn next(&mut self) {
        if self.direct() {
            self.iters[0].1.next();
            self.skip_tombstones();
            return;
        }
        if let Some(Current { on, .. }) = self.current.take() {
            for j in on {
                self.iters[j].1.next();
            }
        }
        self.settle();
    }

    /// A single drive removes records outright, but a drive that was part of a larger set
    /// may still hold tombstones: they are not records.
    fn skip_tombstones(&mut self) {
        if self.raw {
            return;
        }
        let it = &mut self.iters[0].1;
        while it.valid() && it.value().is_some_and(|v| stamp::open(v).payload.is_none()) {
            it.next();
        }
    }

    /// Drives that gave no answer: offline when the scan began, or dropped out of it.
    pub fn silent(&self) -> Vec<bool> {
        let mut silent = vec![true; self.drives];
        for (d, it) in &self.iters {
            if !it.dropped() {
                silent[*d] = false;
            }
        }
        silent
    }

    /// Moves to the smallest key whose visible state is a record (or, raw, that any drive
    /// holds), skipping the others.
    fn settle(&mut self) {
        if self.direct() {
            self.skip_tombstones();
            return;
        }
        let silent = self.silent();
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
            if self.raw {
                self.current = Some(Current {
                    key: min,
                    on: on.clone(),
                    holders: on,
                    stamp: Stamp::LEGACY,
                });
                return;
            }
            let mut values = vec![None; self.drives];
            for &j in &on {
                let (d, it) = &self.iters[j];
                values[*d] = it.value().map(stamp::open);
            }
            if let State::Live(seen) =
                resolve(&values, &silent, self.write_quorum, self.read_quorum)
            {
                let holders = on
                    .iter()
                    .copied()
                    .filter(|&j| seen.holders.contains(&self.iters[j].0))
                    .collect();
                self.current = Some(Current {
                    key: min,
                    on,
                    holders,
                    stamp: seen.stamp,
                });
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
        self.current.as_ref().map(|c| c.key.as_slice())
    }

    /// The current record (its visible value, on one drive holding it).
    pub fn value(&self) -> Option<&[u8]> {
        let raw = if self.direct() {
            self.iters[0].1.value()?
        } else {
            let c = self.current.as_ref()?;
            self.iters[c.holders[0]].1.value()?
        };
        if self.raw {
            Some(raw)
        } else {
            stamp::open(raw).payload
        }
    }

    /// The stamp of the current record's visible state.
    pub fn stamp(&self) -> Option<Stamp> {
        if self.direct() {
            return self.iters[0].1.value().map(|v| stamp::open(v).stamp);
        }
        self.current.as_ref().map(|c| c.stamp)
    }

    /// The current record on each drive holding its visible state, in drive order (raw: every
    /// drive's stored value).
    pub fn values(&self) -> Vec<Option<Vec<u8>>> {
        let mut out = vec![None; self.drives];
        let from: &[usize] = if self.direct() {
            &[0]
        } else {
            match &self.current {
                Some(c) => &c.holders,
                None => &[],
            }
        };
        for &j in from {
            let (drive, it) = &self.iters[j];
            out[*drive] = it.value().and_then(|v| {
                if self.raw {
                    Some(v.to_vec())
                } else {
                    stamp::open(v).payload.map(<[u8]>::to_vec)
                }
            });
        }
        out
    }

    /// Whether the scan saw enough: fails when fewer than a read quorum of drives answered
    /// (what the scan left out is then not proven absent).
    pub fn status(&self) -> Result<(), StoreError> {
        for (_, it) in &self.iters {
            it.status()?;
        }
        let answered = self.silent().iter().filter(|&&s| !s).count();
        if !self.raw && answered < self.read_quorum {
            return Err(StoreError::QuorumLost {
                have: answered,
                need: self.read_quorum,
            });
        }
        Ok(())
    }
}

/// A drive's sorted records: RocksDB's own iterator, or pages fetched from a peer.
pub enum SlotIter<'a> {
    /// The iterator, and its database (for reads along a seek).
    Local(DBRawIterator<'a>, &'a DB),
    Remote(PagedIter),
}

impl SlotIter<'_> {
    /// Whether the drive dropped out of the scan (its server went away).
    fn dropped(&self) -> bool {
        match self {
            SlotIter::Local(..) => false,
            SlotIter::Remote(it) => it.dropped,
        }
    }
    fn next(&mut self) {
        match self {
            SlotIter::Local(it, _) => it.next(),
            SlotIter::Remote(it) => it.next(),
        }
    }
    fn valid(&self) -> bool {
        match self {
            SlotIter::Local(it, _) => it.valid(),
            SlotIter::Remote(it) => it.valid(),
        }
    }
    fn key(&self) -> Option<&[u8]> {
        match self {
            SlotIter::Local(it, _) => it.key(),
            SlotIter::Remote(it) => it.key(),
        }
    }
    fn value(&self) -> Option<&[u8]> {
        match self {
            SlotIter::Local(it, _) => it.value(),
            SlotIter::Remote(it) => it.value(),
        }
    }
    fn status(&self) -> Result<(), StoreError> {
        match self {
            SlotIter::Local(it, _) => Ok(it.status()?),
            // A peer that failed mid-scan is silent from there on: the merge settles keys
            // with the others, counting it as silent ([`resolve`]).
            SlotIter::Remote(_) => Ok(()),
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
    /// A page failed (twice, for a peer still up): the drive no longer answers this scan.
    dropped: bool,
}

impl PagedIter {
    fn new(src: Arc<dyn RemoteRecords>) -> PagedIter {
        PagedIter {
            src,
            page: Vec::new(),
            pos: 0,
            more: false,
            limit: FIRST_PAGE,
            dropped: false,
        }
    }

    /// Fetches the page from `from`; returns whether the drive answered.
    fn fetch(&mut self, from: &[u8], inclusive: bool) -> bool {
        self.fetch_with(|src, limit| Ok(((), src.page(from, inclusive, limit)?)))
            .is_some()
    }

    /// Fetches a page with `call` (given the page's limit), which may bring something else
    /// along; returns that, or `None` when the drive did not answer.
    fn fetch_with<T>(
        &mut self,
        call: impl Fn(&dyn RemoteRecords, usize) -> Result<(T, RecordPage), StoreError>,
    ) -> Option<T> {
        let left_behind = || super::quorum::left_behind().is_some_and(|t| t.is_cancelled());
        // One retry: a pooled connection to a peer that just restarted fails once.
        let mut result = call(self.src.as_ref(), self.limit);
        if result.is_err() && self.src.reachable() && !left_behind() {
            std::thread::sleep(self.src.retry_after());
            result = call(self.src.as_ref(), self.limit);
        }
        self.pos = 0;
        self.limit = (self.limit * 8).min(MAX_PAGE);
        match result {
            Ok((also, (page, more))) => {
                self.page = page;
                self.more = more;
                Some(also)
            }
            Err(e) => {
                // A peer found down, too slow for a scan that a quorum of the others
                // answered, or failing, is silent for the rest of the scan.
                tracing::warn!(error = %e, "a remote drive failed during a scan; skipping it");
                self.dropped = true;
                self.page.clear();
                self.more = false;
                None
            }
        }
    }

    /// Seeks to `key`, fetching `first` records (the page grows from there).
    fn seek(&mut self, key: &[u8], first: usize) -> bool {
        self.limit = first;
        self.fetch(key, true)
    }

    /// Seeks to `key` and reads record `get` in the same round trip: its stored value, or
    /// `None` when the drive did not answer.
    fn seek_and_get(&mut self, key: &[u8], get: &[u8], first: usize) -> Option<Option<Vec<u8>>> {
        self.limit = first;
        self.fetch_with(|src, limit| src.get_and_page(get, key, limit))
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

    /// The merge of one set's iterator, already seeked.
    pub fn seeked(it: MergedIter<'a>) -> SetsIter<'a> {
        let mut sets = SetsIter {
            iters: vec![it],
            current: None,
        };
        sets.settle();
        sets
    }

    /// See [`MergedIter::expect`].
    pub fn expect(&mut self, records: usize) {
        for it in &mut self.iters {
            it.expect(records);
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
