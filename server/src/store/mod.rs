//! The object layer: buckets, object versions, multipart uploads and listings over the
//! drives of this server. It knows nothing of HTTP or S3 XML; the S3 layer above turns its
//! results and [`StoreError`]s into responses.
//!
//! Records live in the drive's RocksDB (see [`keys`] for the key space); bodies above the
//! inline threshold live in data files named by random ids. Every change that acknowledges a
//! client is one synced RocksDB write batch, taken under a per-key lock so conditional writes
//! and overwrites are atomic against concurrent writers.

pub mod checksum;
pub mod drive;
mod ecio;
pub mod erasure;
pub mod heal;
mod iam;
pub mod keys;
mod list;
mod multipart;
mod policy;
pub mod record;
pub mod set;
mod staging;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

pub use list::{ListEntry, ListPage, ListQuery, UploadListing};
pub use multipart::CompletedPart;

/// S3's size and count limits of multipart uploads.
pub mod record_limits {
    pub use super::multipart::{MAX_OBJECT_SIZE, MAX_PARTS, MIN_PART_SIZE};
}
pub use staging::{Staged, StagedContent, StagingWriter};

use checksum::DigestRequest;
use drive::Drive;
use record::{
    BucketRecord, DataLayout, ObjectMeta, PartData, RecordError, StoredChecksum, VersionKind,
    VersionRecord, Versioning,
};
use set::{Batch, DriveSet};

/// What a version commit carries besides the record: more changes for the same batch, data
/// files it frees, and (erasure-coded inline objects) each drive's own shard.
#[derive(Default)]
struct CommitExtras {
    batch: Batch,
    garbage: Vec<String>,
    per_drive_inline: Option<Vec<Vec<u8>>>,
}

/// A record's key as RocksDB returns it.
type RawKey = Box<[u8]>;

/// Bodies up to this size live inside their version record.
pub const DEFAULT_INLINE_LIMIT: usize = 128 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("bucket does not exist")]
    NoSuchBucket,
    #[error("bucket already exists")]
    BucketAlreadyExists,
    #[error("bucket is not empty")]
    BucketNotEmpty,
    #[error("key does not exist")]
    NoSuchKey,
    #[error("version does not exist")]
    NoSuchVersion,
    #[error("upload does not exist")]
    NoSuchUpload,
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("invalid part: {0}")]
    InvalidPart(String),
    #[error("parts are not in ascending order")]
    InvalidPartOrder,
    #[error("part {0} is smaller than the 5 MiB minimum")]
    EntityTooSmall(u32),
    #[error("the object would exceed the maximum size")]
    EntityTooLarge,
    #[error("version is a delete marker")]
    DeleteMarker(Box<VersionRecord>),
    #[error("drive I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata store: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("record: {0}")]
    Record(#[from] RecordError),
    #[error("{0}")]
    Internal(String),
    #[error("drive configuration: {0}")]
    Config(String),
    #[error("only {have} drives answered, {need} are needed")]
    QuorumLost { have: usize, need: usize },
    #[error("busy: {0}")]
    Busy(String),
}

/// Mutual exclusion for one key across the servers of a cluster (the store's own per-key
/// locks cover one process). The returned guard holds the lock until dropped.
pub trait KeyLocker: Send + Sync {
    fn lock(&self, resource: &str) -> Result<Box<dyn Send>, StoreError>;
}

/// A key's lock: this process's stripe and, in a cluster, the quorum lock.
pub(crate) struct KeyGuard<'a> {
    _cluster: Option<Box<dyn Send>>,
    _local: std::sync::MutexGuard<'a, ()>,
}

/// Conditions a write must meet against the current object (checked atomically).
#[derive(Clone, Debug, Default)]
pub struct WriteCondition {
    /// `If-None-Match: *`: fail if the key has a current object.
    pub if_none_match_any: bool,
    /// `If-Match: etag`: fail unless the current object has this ETag.
    pub if_match: Option<String>,
}

/// What a new object version consists of, besides its content.
#[derive(Clone, Debug, Default)]
pub struct NewObject {
    pub meta: ObjectMeta,
    pub checksum: Option<StoredChecksum>,
}

/// A byte range of an object's content, already resolved against its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    /// Exclusive.
    pub end: u64,
}

/// The outcome of a delete.
#[derive(Clone, Debug, Default)]
pub struct DeleteOutcome {
    pub version_id: Option<String>,
    pub delete_marker: bool,
}

pub struct Store {
    /// Set 0: global records (buckets, policies, access keys) live here.
    set: Arc<DriveSet>,
    /// Every erasure set of the pool; an object's records and data live in the set its key
    /// hashes to (`erasure::set_for_key`).
    sets: Vec<Arc<DriveSet>>,
    locks: Vec<Mutex<()>>,
    cluster_locks: Option<Arc<dyn KeyLocker>>,
    inline_limit: usize,
    region: String,
}

pub(crate) fn new_data_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Store {
    /// Opens the drive at `root`, creating its format file and metadata store if empty.
    pub fn open(root: &Path, region: &str) -> Result<Store, StoreError> {
        Store::open_drives(&[root], None, region).map(|(s, _)| s)
    }

    /// Opens drive folders as one erasure set (one drive: no erasure coding). Returns the
    /// indexes of drives that were found empty in an existing set and need healing.
    pub fn open_drives(
        roots: &[&Path],
        parity: Option<usize>,
        region: &str,
    ) -> Result<(Store, Vec<usize>), StoreError> {
        let (set, fresh) = DriveSet::open_local(roots, parity)?;
        Ok((Store::with_set(set, region)?, fresh))
    }

    /// Opens a single-drive store over any [`Drive`] (tests wrap the local drive to inject
    /// failures).
    pub fn open_with(
        drive: Arc<dyn Drive>,
        meta: &Path,
        region: &str,
    ) -> Result<Store, StoreError> {
        Store::with_set(DriveSet::single(set::Slot::open(drive, meta)?), region)
    }

    fn with_set(set: DriveSet, region: &str) -> Result<Store, StoreError> {
        let store = Store::assemble(vec![Arc::new(set)], None, region);
        store.collect_garbage()?;
        Ok(store)
    }

    /// A store over an assembled drive set (local and remote drives) whose writers lock keys
    /// with `cluster_locks` as well. Call [`Store::collect_garbage`] once the drives answer.
    pub fn assemble(
        sets: Vec<Arc<DriveSet>>,
        cluster_locks: Option<Arc<dyn KeyLocker>>,
        region: &str,
    ) -> Store {
        assert!(!sets.is_empty(), "a store has at least one erasure set");
        Store {
            set: sets[0].clone(),
            sets,
            cluster_locks,
            locks: (0..256).map(|_| Mutex::new(())).collect(),
            inline_limit: DEFAULT_INLINE_LIMIT,
            region: region.to_string(),
        }
    }

    /// The drives of this server's erasure set.
    pub fn drive_set(&self) -> &DriveSet {
        &self.set
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub(crate) fn lock_for(&self, bucket: &str, key: &str) -> Result<KeyGuard<'_>, StoreError> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (bucket, key).hash(&mut h);
        let i = (h.finish() as usize) % self.locks.len();
        // A poisoned stripe only means another writer panicked; the guarded data is RocksDB's.
        let local = self.locks[i].lock().unwrap_or_else(|p| p.into_inner());
        let cluster = match &self.cluster_locks {
            Some(l) => Some(l.lock(&format!("{bucket}/{key}"))?),
            None => None,
        };
        Ok(KeyGuard {
            _cluster: cluster,
            _local: local,
        })
    }

    /// Every erasure set, in set order (peer RPC serves their local drives).
    pub fn sets(&self) -> &[Arc<DriveSet>] {
        &self.sets
    }

    /// The set holding the records and data of `bucket/key`.
    pub(crate) fn set_of(&self, bucket: &str, key: &str) -> &Arc<DriveSet> {
        if self.sets.len() == 1 {
            return &self.sets[0];
        }
        &self.sets[erasure::set_for_key(bucket, key, self.sets.len())]
    }

    /// Records of the object space (versions, uploads) of every set, merged in key order.
    pub(crate) fn object_iter(&self) -> set::SetsIter<'_> {
        set::SetsIter::new(&self.sets)
    }

    /// Removes data files whose records were replaced or deleted.
    pub fn collect_garbage(&self) -> Result<(), StoreError> {
        for set in &self.sets {
            let mut batch = Batch::default();
            for (k, _) in set.scan(&[keys::GARBAGE])? {
                let id = String::from_utf8_lossy(&k[1..]).to_string();
                set.remove_data(&id)?;
                batch.delete(&k);
            }
            set.write(&batch)?;
        }
        Ok(())
    }

    /// Queues data files for removal in `batch`; they are removed once the batch is durable.
    fn add_garbage(batch: &mut Batch, ids: &[String]) {
        for id in ids {
            batch.put(keys::garbage(id), Vec::new());
        }
    }

    fn remove_garbage(set: &DriveSet, ids: &[String]) {
        let mut done = Batch::default();
        for id in ids {
            match set.remove_data(id) {
                Ok(()) => done.delete(keys::garbage(id)),
                Err(e) => tracing::warn!(data_id = %id, error = %e, "could not remove data file"),
            }
        }
        if let Err(e) = set.write(&done) {
            tracing::warn!(error = %e, "could not clear garbage records");
        }
    }

    // ---------------------------------------------------------------- buckets

    pub fn create_bucket(&self, name: &str) -> Result<BucketRecord, StoreError> {
        let _g = self.lock_for(name, "")?;
        if self.set.get(&keys::bucket(name))?.is_some() {
            return Err(StoreError::BucketAlreadyExists);
        }
        let record = BucketRecord {
            name: name.to_string(),
            created_ns: now_ns(),
            region: self.region.clone(),
            versioning: Versioning::Unversioned,
        };
        let mut batch = Batch::default();
        batch.put(keys::bucket(name), record::encode(&record));
        self.set.write(&batch)?;
        Ok(record)
    }

    pub fn bucket(&self, name: &str) -> Result<BucketRecord, StoreError> {
        match self.set.get(&keys::bucket(name))? {
            Some(bytes) => Ok(record::decode(&bytes)?),
            None => Err(StoreError::NoSuchBucket),
        }
    }

    pub fn list_buckets(&self) -> Result<Vec<BucketRecord>, StoreError> {
        let mut out = Vec::new();
        for (_, v) in self.set.scan(&[keys::BUCKET])? {
            out.push(record::decode(&v)?);
        }
        Ok(out)
    }

    pub fn set_versioning(&self, name: &str, versioning: Versioning) -> Result<(), StoreError> {
        let _g = self.lock_for(name, "")?;
        let mut record = self.bucket(name)?;
        record.versioning = versioning;
        let mut batch = Batch::default();
        batch.put(keys::bucket(name), record::encode(&record));
        self.set.write(&batch)?;
        Ok(())
    }

    pub fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        let _g = self.lock_for(name, "")?;
        self.bucket(name)?;
        let prefix = keys::bucket_prefix(keys::VERSION, name);
        let mut it = self.object_iter();
        it.seek(&prefix);
        if it.key().is_some_and(|k| k.starts_with(&prefix)) {
            return Err(StoreError::BucketNotEmpty);
        }
        it.status()?;
        drop(it);
        // Unfinished multipart uploads go with the bucket, from whichever set holds them.
        let uploads = keys::bucket_prefix(keys::UPLOAD, name);
        for set in &self.sets {
            let mut batch = Batch::default();
            let mut garbage = Vec::new();
            for (k, v) in set.scan(&uploads)? {
                let upload: record::UploadRecord = record::decode(&v)?;
                for part in Self::parts_in(set, &upload.upload_id)? {
                    batch.delete(keys::part(&upload.upload_id, part.number));
                    garbage.push(part.data_id);
                }
                batch.delete(&k);
            }
            Self::add_garbage(&mut batch, &garbage);
            set.write(&batch)?;
            Self::remove_garbage(set, &garbage);
        }
        let mut batch = Batch::default();
        batch.delete(keys::bucket(name));
        batch.delete(keys::policy(name));
        self.set.write(&batch)?;
        Ok(())
    }

    // ---------------------------------------------------------------- objects

    /// Starts receiving the body of `bucket/key`; finish it, then pass it to
    /// [`Store::put_object`].
    pub fn stage(&self, bucket: &str, key: &str, request: DigestRequest) -> StagingWriter {
        StagingWriter::new(
            self.set_of(bucket, key).clone(),
            self.order(bucket, key),
            request,
            self.inline_limit,
        )
    }

    /// Like [`Store::stage`] but always to data files (multipart parts are never inline).
    pub fn stage_file(&self, bucket: &str, key: &str, request: DigestRequest) -> StagingWriter {
        StagingWriter::new(
            self.set_of(bucket, key).clone(),
            self.order(bucket, key),
            request,
            0,
        )
    }

    /// Which drive of the set holds each shard of `bucket/key`.
    pub(crate) fn order(&self, bucket: &str, key: &str) -> Vec<usize> {
        erasure::shard_order(erasure::object_hash(bucket, key), self.set.len())
    }

    /// Decodes one record from its per-drive values: with erasure coding, inline shards of
    /// each drive are gathered by shard index.
    fn merge_record(
        &self,
        bucket: &str,
        key: &str,
        values: &[Option<Vec<u8>>],
    ) -> Result<VersionRecord, StoreError> {
        let mut first: Option<VersionRecord> = None;
        let mut shards: Vec<Option<Vec<u8>>> = Vec::new();
        let order = if self.set.codec.is_some() {
            self.order(bucket, key)
        } else {
            Vec::new()
        };
        for (drive, v) in values.iter().enumerate() {
            let Some(v) = v else { continue };
            let r: VersionRecord = record::decode(v)?;
            if self.set.codec.is_some() {
                if let DataLayout::Inline(shard) = &r.data {
                    if shards.is_empty() {
                        shards = vec![None; order.len()];
                    }
                    if let Some(i) = order.iter().position(|&d| d == drive) {
                        shards[i] = Some(shard.clone());
                    }
                }
            }
            if first.is_none() {
                first = Some(r);
            }
        }
        let mut r = first.ok_or_else(|| StoreError::Internal("record without values".into()))?;
        if self.set.codec.is_some() && matches!(r.data, DataLayout::Inline(_)) {
            r.data = DataLayout::InlineShards(shards);
        }
        Ok(r)
    }

    /// All versions of `key`, newest first.
    fn versions(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<(RawKey, VersionRecord)>, StoreError> {
        let prefix = keys::exact_key(keys::VERSION, bucket, key);
        self.set_of(bucket, key)
            .scan_all(&prefix)?
            .into_iter()
            .map(|(k, values)| Ok((k, self.merge_record(bucket, key, &values)?)))
            .collect()
    }

    fn latest(&self, bucket: &str, key: &str) -> Result<Option<VersionRecord>, StoreError> {
        let prefix = keys::exact_key(keys::VERSION, bucket, key);
        let mut it = self.set_of(bucket, key).merged_iter();
        it.seek(&prefix);
        if !it.key().is_some_and(|k| k.starts_with(&prefix)) {
            it.status()?;
            return Ok(None);
        }
        let values = it.values();
        Ok(Some(self.merge_record(bucket, key, &values)?))
    }

    fn check_condition(
        current: Option<&VersionRecord>,
        cond: &WriteCondition,
    ) -> Result<(), StoreError> {
        let live = current.filter(|r| r.kind == VersionKind::Object);
        if cond.if_none_match_any && live.is_some() {
            return Err(StoreError::PreconditionFailed);
        }
        if let Some(etag) = &cond.if_match {
            match live {
                None => return Err(StoreError::NoSuchKey),
                Some(r) if !etag_matches(etag, &r.etag) => {
                    return Err(StoreError::PreconditionFailed)
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Writes `record` as the newest version of `key`, replacing the null version when the
    /// bucket is not versioned. Runs under the key's lock; `extra` adds to the same batch.
    fn commit_version(
        &self,
        bucket: &BucketRecord,
        key: &str,
        mut record: VersionRecord,
        cond: &WriteCondition,
        extra: CommitExtras,
    ) -> Result<VersionRecord, StoreError> {
        let CommitExtras {
            mut batch,
            mut garbage,
            per_drive_inline,
        } = extra;
        let versions = self.versions(&bucket.name, key)?;
        Self::check_condition(versions.first().map(|(_, r)| r), cond)?;
        if let Some((_, newest)) = versions.first() {
            // Keep versions strictly ordered even if the clock stepped back.
            if record.mod_time_ns <= newest.mod_time_ns {
                record.mod_time_ns = newest.mod_time_ns + 1;
            }
        }
        record.version_id = match bucket.versioning {
            Versioning::Enabled => Some(uuid::Uuid::new_v4().simple().to_string()),
            _ => None,
        };
        if record.version_id.is_none() {
            for (k, old) in versions.iter().filter(|(_, r)| r.version_id.is_none()) {
                batch.delete(k);
                garbage.extend(old.data_ids());
            }
        }
        let record_key = keys::version(
            &bucket.name,
            key,
            record.mod_time_ns,
            record.version_id.as_deref(),
        );
        match per_drive_inline {
            Some(shards) => {
                let values = shards
                    .into_iter()
                    .map(|shard| {
                        record::encode(&VersionRecord {
                            data: DataLayout::Inline(shard),
                            ..record.clone()
                        })
                    })
                    .collect();
                batch.put_per_drive(record_key.clone(), values);
            }
            None => batch.put(record_key.clone(), record::encode(&record)),
        }
        Self::add_garbage(&mut batch, &garbage);
        let set = self.set_of(&bucket.name, key);
        set.write(&batch)?;
        set.note_degraded_record(&record_key, &record.data_ids());
        Self::remove_garbage(set, &garbage);
        Ok(record)
    }

    /// Makes a staged body the newest version of `key`.
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        new: NewObject,
        staged: Staged,
        cond: &WriteCondition,
    ) -> Result<VersionRecord, StoreError> {
        let bucket = self.bucket(bucket)?;
        let _g = self.lock_for(&bucket.name, key)?;
        let etag = hex::encode(staged.digests.md5);
        let size = staged.digests.size;
        let mut per_drive = None;
        let data = match staged.content() {
            StagedContent::Inline(bytes) => DataLayout::Inline(bytes.clone()),
            StagedContent::InlineShards(shards) => {
                per_drive = Some(shards.clone());
                DataLayout::Inline(Vec::new())
            }
            StagedContent::File(id) => DataLayout::Parts {
                multipart: false,
                parts: vec![PartData {
                    number: 1,
                    size,
                    etag: etag.clone(),
                    data_id: id.clone(),
                    checksum: new.checksum.clone(),
                }],
            },
        };
        let record = VersionRecord {
            version_id: None,
            mod_time_ns: now_ns(),
            kind: VersionKind::Object,
            size,
            etag,
            meta: new.meta,
            checksum: new.checksum,
            data,
        };
        let committed = self.commit_version(
            &bucket,
            key,
            record,
            cond,
            CommitExtras {
                per_drive_inline: per_drive,
                ..Default::default()
            },
        )?;
        staged.into_committed();
        Ok(committed)
    }

    /// The current version of `key`, or the given version.
    pub fn head_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<VersionRecord, StoreError> {
        self.bucket(bucket)?;
        let record = match version_id {
            None => self.latest(bucket, key)?.ok_or(StoreError::NoSuchKey)?,
            Some(v) => {
                let wanted = (v != "null").then_some(v);
                self.versions(bucket, key)?
                    .into_iter()
                    .map(|(_, r)| r)
                    .find(|r| r.version_id.as_deref() == wanted)
                    .ok_or(StoreError::NoSuchVersion)?
            }
        };
        if record.kind == VersionKind::DeleteMarker {
            return Err(StoreError::DeleteMarker(Box::new(record)));
        }
        Ok(record)
    }

    /// Deletes `key`: removes the null version, or adds a delete marker in a versioned bucket,
    /// or removes exactly `version_id`. Deleting what does not exist succeeds, as in S3.
    pub fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<DeleteOutcome, StoreError> {
        let bucket = self.bucket(bucket)?;
        let _g = self.lock_for(&bucket.name, key)?;
        let versions = self.versions(&bucket.name, key)?;
        let mut batch = Batch::default();
        let mut garbage = Vec::new();
        if let Some(v) = version_id {
            let wanted = (v != "null").then_some(v);
            let mut outcome = DeleteOutcome {
                version_id: Some(v.to_string()),
                delete_marker: false,
            };
            if let Some((k, r)) = versions
                .iter()
                .find(|(_, r)| r.version_id.as_deref() == wanted)
            {
                outcome.delete_marker = r.kind == VersionKind::DeleteMarker;
                batch.delete(k);
                garbage.extend(r.data_ids());
            }
            Self::add_garbage(&mut batch, &garbage);
            let set = self.set_of(&bucket.name, key);
            set.write(&batch)?;
            Self::remove_garbage(set, &garbage);
            return Ok(outcome);
        }
        match bucket.versioning {
            Versioning::Unversioned => {
                for (k, r) in &versions {
                    batch.delete(k);
                    garbage.extend(r.data_ids());
                }
                Self::add_garbage(&mut batch, &garbage);
                let set = self.set_of(&bucket.name, key);
                set.write(&batch)?;
                Self::remove_garbage(set, &garbage);
                Ok(DeleteOutcome::default())
            }
            Versioning::Enabled | Versioning::Suspended => {
                let marker = VersionRecord {
                    version_id: None,
                    mod_time_ns: now_ns(),
                    kind: VersionKind::DeleteMarker,
                    size: 0,
                    etag: String::new(),
                    meta: ObjectMeta::default(),
                    checksum: None,
                    data: DataLayout::Inline(Vec::new()),
                };
                let r = self.commit_version(
                    &bucket,
                    key,
                    marker,
                    &WriteCondition::default(),
                    CommitExtras {
                        batch,
                        garbage,
                        per_drive_inline: None,
                    },
                )?;
                Ok(DeleteOutcome {
                    version_id: r.version_id.or(Some("null".into())),
                    delete_marker: true,
                })
            }
        }
    }

    /// Opens the content of `record` (a version of `bucket/key`) in `range` as a stream of
    /// chunks. All data files are opened before this returns, so a concurrent overwrite cannot
    /// pull them away mid-read. Shards that are missing or fail their bitrot check are decoded
    /// around and queued for healing.
    pub async fn read(
        &self,
        bucket: &str,
        key: &str,
        record: &VersionRecord,
        range: ByteRange,
    ) -> Result<tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>, StoreError> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let segments = || {
            let mut segments = Vec::new();
            if let DataLayout::Parts { parts, .. } = &record.data {
                let mut offset = 0u64;
                for part in parts {
                    let (lo, hi) = (offset, offset + part.size);
                    offset = hi;
                    if hi <= range.start || lo >= range.end {
                        continue;
                    }
                    segments.push(ecio::Segment {
                        data_id: part.data_id.clone(),
                        part_size: part.size,
                        from: range.start.max(lo) - lo,
                        to: range.end.min(hi) - lo,
                    });
                }
            }
            segments
        };
        match (&record.data, &self.set.codec) {
            (DataLayout::Inline(bytes), _) => {
                let slice =
                    Bytes::copy_from_slice(&bytes[range.start as usize..range.end as usize]);
                if !slice.is_empty() {
                    let _ = tx.try_send(Ok(slice));
                }
            }
            (DataLayout::InlineShards(shards), Some(codec)) => {
                let data = ecio::decode_inline(codec, shards, record.size)?;
                let slice = Bytes::copy_from_slice(&data[range.start as usize..range.end as usize]);
                if !slice.is_empty() {
                    let _ = tx.try_send(Ok(slice));
                }
            }
            (DataLayout::InlineShards(_), None) => {
                return Err(StoreError::Internal(
                    "inline shards without erasure coding".into(),
                ))
            }
            (DataLayout::Parts { .. }, None) => {
                let segments = segments();
                let set = self.set_of(bucket, key).clone();
                let files = tokio::task::spawn_blocking(move || {
                    let (_, slot) = set
                        .online()
                        .next()
                        .ok_or(StoreError::QuorumLost { have: 0, need: 1 })?;
                    segments
                        .into_iter()
                        .map(|seg| {
                            Ok((
                                slot.drive.open_at(&seg.data_id, seg.from)?,
                                seg.from,
                                seg.to,
                            ))
                        })
                        .collect::<Result<Vec<_>, StoreError>>()
                })
                .await
                .map_err(|e| StoreError::Internal(e.to_string()))??;
                tokio::task::spawn_blocking(move || stream_files(files, tx));
            }
            (DataLayout::Parts { .. }, Some(_)) => {
                let segments = segments();
                let set = self.set_of(bucket, key).clone();
                let order = self.order(bucket, key);
                let opened = tokio::task::spawn_blocking(move || {
                    ecio::open_segments(&set, &order, segments).map(|o| (set, o))
                })
                .await
                .map_err(|e| StoreError::Internal(e.to_string()))??;
                let order = self.order(bucket, key);
                tokio::task::spawn_blocking(move || {
                    let (set, segments) = opened;
                    for d in ecio::stream_segments(&set, &order, segments, tx) {
                        // Heal on read: rebuild the bad shards from the good ones.
                        match heal::heal_data_file(&set, &order, &d.data_id, d.part_size, &d.drives)
                        {
                            Ok(bytes) => {
                                tracing::info!(data_id = %d.data_id, drives = ?d.drives, bytes, "healed shards after a read")
                            }
                            Err(e) => {
                                tracing::warn!(data_id = %d.data_id, error = %e, "healing after a read failed")
                            }
                        }
                    }
                });
            }
        }
        Ok(rx)
    }
}

#[cfg(test)]
mod tests;

const READ_CHUNK: usize = 256 * 1024;

fn stream_files(
    files: Vec<(Box<dyn drive::DataReader>, u64, u64)>,
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    for (mut file, from, to) in files {
        let mut at = from;
        while at < to {
            let n = ((to - at) as usize).min(READ_CHUNK);
            let mut buf = vec![0u8; n];
            if let Err(e) = file.read_exact_at(at, &mut buf) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            at += n as u64;
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                return; // the client went away
            }
        }
    }
}

/// Compares an ETag from a header (maybe quoted, maybe `*`) with a stored one.
pub fn etag_matches(header: &str, stored: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|h| h == "*" || h.trim_matches('"') == stored)
}
