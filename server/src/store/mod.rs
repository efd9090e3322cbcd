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
pub mod fence;
pub mod heal;
mod iam;
pub mod keys;
mod list;
mod multipart;
mod policy;
pub mod quorum;
pub mod record;
pub mod set;
mod staging;
pub mod stamp;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

pub use list::{ListEntry, ListPage, ListQuery, UploadListing, VersionListing};
pub use multipart::CompletedPart;
pub use policy::BucketDocument;

/// S3's size and count limits of multipart uploads.
pub mod record_limits {
    pub use super::multipart::{MAX_OBJECT_SIZE, MAX_PARTS, MIN_PART_SIZE};
}
pub use staging::{Staged, StagedContent, StagingWriter};

use checksum::DigestRequest;
use drive::Drive;
pub use fence::{ClusterGuard, Fence};
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
    #[error("{0}")]
    InvalidBucketState(String),
    #[error("{0}")]
    InvalidRequest(String),
    /// Object lock keeps the version (retention or legal hold).
    #[error("{0}")]
    ObjectLocked(String),
    #[error("{0}")]
    QuotaExceeded(String),
    /// The version asked for is a delete marker (`true`: asked for by its version id).
    #[error("version is a delete marker")]
    DeleteMarker(Box<VersionRecord>, bool),
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
    /// A write reached only `have` drives of the `need` it needed: it was not acknowledged,
    /// and may yet take effect whole (its data is kept) or never.
    #[error("the change reached {have} drives, {need} are needed; it may still take effect")]
    Indeterminate { have: usize, need: usize },
    /// A drive holds a newer stamp for a key than the write's (the writer stamps again).
    #[error("a drive holds a newer record ({0:?})")]
    Stale(stamp::Stamp),
    /// A drive saw a newer fencing token for the locked resource than the write's: another
    /// writer took the lock since.
    #[error("a drive holds a newer lock token ({0:?})")]
    Fenced(stamp::Stamp),
    /// The cluster lock of the resource was lost (not renewed in time): nothing was written.
    #[error("the lock of {0} was lost")]
    LockLost(String),
}

/// Mutual exclusion for one key across the servers of a cluster (the store's own per-key
/// locks cover one process). The returned guard holds the lock until dropped; its fence goes
/// with every write done under it.
pub trait KeyLocker: Send + Sync {
    fn lock(&self, resource: &str) -> Result<ClusterGuard, StoreError>;
}

/// A key's lock: this process's stripe and, in a cluster, the quorum lock.
pub(crate) struct KeyGuard<'a> {
    cluster: Option<ClusterGuard>,
    _local: std::sync::MutexGuard<'a, ()>,
}

impl KeyGuard<'_> {
    /// What writes under this lock carry to the drives (`None` standalone).
    pub(crate) fn fence(&self) -> Option<&Fence> {
        self.cluster.as_ref().map(ClusterGuard::fence)
    }
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
    pub tags: Vec<(String, String)>,
    /// Object lock given with the write; `None` takes the bucket's default retention.
    pub retention: Option<record::Retention>,
    pub legal_hold: bool,
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
    /// Set 0 of pool 0: global records (buckets, policies, access keys) live here.
    set: Arc<DriveSet>,
    /// Every erasure set of every pool, pool after pool. Within a pool an object's records and
    /// data live in the set its key hashes to (`erasure::set_for_key`); which pool holds it is
    /// found by looking in each (see [`Store::home_set`]).
    sets: Vec<Arc<DriveSet>>,
    /// The indexes in `sets` of each pool's sets.
    pools: Vec<std::ops::Range<usize>>,
    /// Each pool's free bytes as last measured ([`Store::refresh_free_space`]); new objects
    /// are spread over the pools in proportion.
    pool_free: Mutex<Vec<u64>>,
    locks: Vec<Mutex<()>>,
    cluster_locks: Option<Arc<dyn KeyLocker>>,
    inline_limit: usize,
    region: String,
    /// Usage of buckets with a quota, as last counted, with the time of the count; this
    /// server's own commits since are added in.
    usage: Mutex<std::collections::HashMap<String, (std::time::Instant, BucketUsage)>>,
    /// Per set, the retractions and purges the scanner's sweep found, with when it first
    /// found each ([`Store::sweep_records`]).
    sweep_seen: Mutex<Vec<SweepSeen>>,
}

/// Records a sweep found to take back or purge, by key and stamp, with when first found.
type SweepSeen = std::collections::HashMap<(Vec<u8>, stamp::Stamp), std::time::Instant>;

/// What a bucket holds: every stored version (delete markers aside) and its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketUsage {
    pub objects: u64,
    pub bytes: u64,
    /// False when the count stopped at its limit (the numbers are then lower bounds).
    pub complete: bool,
}

/// How long a counted bucket usage serves quota checks before it is counted again.
/// How long a commit waits for a DeleteBucket under way in its bucket to end (it only looks
/// whether the bucket is empty); a mark older than this was left by a delete that died.
const DELETE_BUCKET_WAIT: Duration = Duration::from_secs(10);
const USAGE_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// Most versions a quota's usage count visits; past it the numbers are lower bounds.
const USAGE_SCAN_LIMIT: usize = 1_000_000;

pub(crate) fn new_data_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub fn now_ns() -> u64 {
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
        let store = Store::assemble(vec![vec![Arc::new(set)]], None, region);
        store.collect_garbage()?;
        Ok(store)
    }

    /// A store over the assembled erasure sets of each pool (local and remote drives) whose
    /// writers lock keys with `cluster_locks` as well. Call [`Store::collect_garbage`] once the
    /// drives answer.
    pub fn assemble(
        pools: Vec<Vec<Arc<DriveSet>>>,
        cluster_locks: Option<Arc<dyn KeyLocker>>,
        region: &str,
    ) -> Store {
        assert!(
            !pools.is_empty() && pools.iter().all(|p| !p.is_empty()),
            "a store has at least one pool, and every pool an erasure set"
        );
        let mut ranges = Vec::with_capacity(pools.len());
        let mut sets = Vec::new();
        for pool in pools {
            let start = sets.len();
            sets.extend(pool);
            ranges.push(start..sets.len());
        }
        let set_count = sets.len();
        Store {
            set: sets[0].clone(),
            pool_free: Mutex::new(vec![1; ranges.len()]),
            pools: ranges,
            sets,
            cluster_locks,
            locks: (0..256).map(|_| Mutex::new(())).collect(),
            inline_limit: DEFAULT_INLINE_LIMIT,
            region: region.to_string(),
            usage: Mutex::new(std::collections::HashMap::new()),
            sweep_seen: Mutex::new(vec![SweepSeen::new(); set_count]),
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
            cluster,
            _local: local,
        })
    }

    /// Every erasure set, pool after pool (peer RPC serves their local drives).
    pub fn sets(&self) -> &[Arc<DriveSet>] {
        &self.sets
    }

    /// The indexes in [`Store::sets`] of each pool's sets.
    pub fn pools(&self) -> &[std::ops::Range<usize>] {
        &self.pools
    }

    /// The index of the set of pool `pool` that would hold `bucket/key`.
    fn set_in_pool(&self, pool: usize, bucket: &str, key: &str) -> usize {
        let range = &self.pools[pool];
        if range.len() == 1 {
            return range.start;
        }
        range.start + erasure::set_for_key(bucket, key, range.len())
    }

    /// The sets that may hold `bucket/key`: one per pool.
    fn key_sets(&self, bucket: &str, key: &str) -> impl Iterator<Item = usize> + '_ {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        (0..self.pools.len()).map(move |p| self.set_in_pool(p, &bucket, &key))
    }

    /// The set a new version of `bucket/key` goes to: the one holding its newest version, or
    /// for a new key a pool drawn in proportion to free space. With one pool there is no
    /// choice and nothing is looked up.
    fn home_set(&self, bucket: &str, key: &str) -> usize {
        if self.pools.len() == 1 {
            return self.set_in_pool(0, bucket, key);
        }
        match self.latest(bucket, key) {
            Ok(Some(r)) => return r.set_index,
            Ok(None) => {}
            // The commit looks again under the key's lock and fails if it cannot read.
            Err(e) => tracing::debug!(bucket, key, error = %e, "pool lookup failed"),
        }
        let free = self
            .pool_free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let pool = erasure::choose_pool(bucket, key, &free).unwrap_or(0);
        self.set_in_pool(pool, bucket, key)
    }

    /// The index in [`Store::sets`] of `set`.
    fn index_of(&self, set: &Arc<DriveSet>) -> usize {
        self.sets
            .iter()
            .position(|s| Arc::ptr_eq(s, set))
            .expect("staged bodies are written to one of the store's sets")
    }

    /// Measures each pool's free space (the smallest free space of a set's drives times its
    /// data shards, summed over the pool's sets) for placing new objects. Drives that cannot
    /// tell count as full; a pool where none can keeps its last measure.
    pub fn refresh_free_space(&self) {
        if self.pools.len() == 1 {
            return;
        }
        let mut measured = Vec::with_capacity(self.pools.len());
        for range in &self.pools {
            let mut pool_free = None::<u64>;
            for set in &self.sets[range.clone()] {
                let data = set.codec.as_ref().map_or(1, |c| c.geometry().data) as u64;
                let min = set
                    .parallel(&(0..set.len()).collect::<Vec<_>>(), |_, slot| {
                        slot.and_then(|s| s.drive.space().ok()).map(|s| s.free)
                    })
                    .into_iter()
                    .flatten()
                    .min();
                if let Some(min) = min {
                    *pool_free.get_or_insert(0) += min.saturating_mul(data);
                }
            }
            measured.push(pool_free);
        }
        let mut free = self.pool_free.lock().unwrap_or_else(|p| p.into_inner());
        for (have, new) in free.iter_mut().zip(measured) {
            if let Some(new) = new {
                *have = new;
            }
        }
    }

    /// Records of the object space (versions, uploads) of every set, merged in key order.
    pub(crate) fn object_iter(&self) -> set::SetsIter<'_> {
        set::SetsIter::new(&self.sets)
    }

    /// Removes data files whose records were replaced or deleted; a file on a drive that is
    /// away stays queued for the next call. Returns how many files were removed.
    pub fn collect_garbage(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        for set in &self.sets {
            let ids: Vec<String> = set
                .scan(&[keys::GARBAGE])?
                .into_iter()
                .map(|(k, _)| String::from_utf8_lossy(&k[1..]).to_string())
                .collect();
            removed += Self::remove_garbage(set, &ids);
        }
        Ok(removed)
    }

    /// Queues data files for removal in `batch`; they are removed once the batch is durable.
    fn add_garbage(batch: &mut Batch, ids: &[String]) {
        for id in ids {
            batch.put(keys::garbage(id), Vec::new());
        }
    }

    /// Removes the data files `ids` and their garbage records; returns how many went. A
    /// file some drive still holds keeps its record for [`Store::collect_garbage`].
    fn remove_garbage(set: &DriveSet, ids: &[String]) -> usize {
        let mut done = Batch::default();
        let mut removed = 0;
        for id in ids {
            match set.remove_data(id) {
                Ok(()) => {
                    done.delete(keys::garbage(id));
                    removed += 1;
                }
                Err(e) => {
                    tracing::debug!(data_id = %id, error = %e, "data file removal deferred")
                }
            }
        }
        if removed > 0 {
            if let Err(e) = set.write(&done) {
                tracing::warn!(error = %e, "could not clear garbage records");
            }
        }
        removed
    }

    // ---------------------------------------------------------------- buckets

    /// Creates bucket `name`; with `object_lock` it is versioned from the start and keeps
    /// that configuration for life.
    pub fn create_bucket(
        &self,
        name: &str,
        object_lock: Option<record::ObjectLockConfig>,
    ) -> Result<BucketRecord, StoreError> {
        let g = self.lock_for(name, "")?;
        if self.set.get(&keys::bucket(name))?.is_some() {
            return Err(StoreError::BucketAlreadyExists);
        }
        let record = BucketRecord {
            name: name.to_string(),
            created_ns: now_ns(),
            region: self.region.clone(),
            versioning: if object_lock.is_some() {
                Versioning::Enabled
            } else {
                Versioning::Unversioned
            },
            object_lock,
            tags: Vec::new(),
            quota: record::Quota::default(),
            deleting: false,
        };
        let mut batch = Batch::default();
        batch.put(keys::bucket(name), record::encode(&record));
        self.set.write_fenced(&batch, g.fence())?;
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

    /// Changes bucket `name`'s record under its lock: `change` may refuse with an error.
    pub fn update_bucket(
        &self,
        name: &str,
        change: impl FnOnce(&mut BucketRecord) -> Result<(), StoreError>,
    ) -> Result<BucketRecord, StoreError> {
        let g = self.lock_for(name, "")?;
        let mut record = self.bucket(name)?;
        change(&mut record)?;
        let mut batch = Batch::default();
        batch.put(keys::bucket(name), record::encode(&record));
        self.set.write_fenced(&batch, g.fence())?;
        Ok(record)
    }

    /// Turns versioning on or suspends it. A bucket with object lock stays versioned.
    pub fn set_versioning(&self, name: &str, versioning: Versioning) -> Result<(), StoreError> {
        self.update_bucket(name, |b| {
            if b.object_lock.is_some() && versioning != Versioning::Enabled {
                return Err(StoreError::InvalidBucketState(
                    "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.".into(),
                ));
            }
            b.versioning = versioning;
            Ok(())
        })
        .map(|_| ())
    }

    pub fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        let g = self.lock_for(name, "")?;
        let mut record = self.bucket(name)?;
        // Say a delete is under way before looking whether the bucket is empty: a version
        // committed after the look sees it and waits for the outcome (see `confirm_bucket`).
        record.deleting = true;
        self.put_bucket_record(&record, g.fence())?;
        let empty = self.bucket_is_empty(name);
        if !matches!(empty, Ok(true)) {
            record.deleting = false;
            self.put_bucket_record(&record, g.fence())?;
            return match empty {
                Ok(_) => Err(StoreError::BucketNotEmpty),
                Err(e) => Err(e),
            };
        }
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
            set.write_fenced(&batch, g.fence())?;
            Self::remove_garbage(set, &garbage);
        }
        let mut batch = Batch::default();
        batch.delete(keys::bucket(name));
        Self::delete_bucket_documents(&mut batch, name);
        self.set.write_fenced(&batch, g.fence())?;
        self.forget_usage(name);
        Ok(())
    }

    fn put_bucket_record(
        &self,
        record: &BucketRecord,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        batch.put(keys::bucket(&record.name), record::encode(record));
        self.set.write_fenced(&batch, fence)
    }

    /// Whether `bucket` holds no version at all (delete markers count).
    fn bucket_is_empty(&self, bucket: &str) -> Result<bool, StoreError> {
        let prefix = keys::bucket_prefix(keys::VERSION, bucket);
        let mut it = self.object_iter();
        it.seek(&prefix);
        if it.key().is_some_and(|k| k.starts_with(&prefix)) {
            return Ok(false);
        }
        it.status()?;
        Ok(true)
    }

    /// After version `record_key` of `bucket` was committed: whether the bucket it went into
    /// is still there. A DeleteBucket that looked before the commit landed did not see it; it
    /// marked the bucket first, so the commit waits for its outcome here and, when the bucket
    /// went (or was made anew), takes the version back: the PUT fails with NoSuchBucket rather
    /// than leave an object nobody can see until the name is reused.
    fn confirm_bucket(
        &self,
        bucket: &BucketRecord,
        set_index: usize,
        record_key: &[u8],
        record: &VersionRecord,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        let deadline = Instant::now() + DELETE_BUCKET_WAIT;
        let mut pause = Duration::from_millis(2);
        let gone = loop {
            match self.bucket(&bucket.name) {
                Err(StoreError::NoSuchBucket) => break true,
                // The commit stands when the bucket cannot be read: failing would drop the
                // body the version names.
                Err(_) => break false,
                Ok(now) if now.created_ns != bucket.created_ns => break true,
                // A delete that died before its end leaves the mark; the bucket stays.
                Ok(now) if !now.deleting || Instant::now() > deadline => break false,
                Ok(_) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
            }
        };
        if !gone {
            return Ok(());
        }
        // The delete found the bucket empty without this version, so it replaced nothing.
        let set = &self.sets[set_index];
        let mut batch = Batch::default();
        batch.delete(record_key);
        Self::add_garbage(&mut batch, &record.data_ids());
        match set.write_fenced(&batch, fence) {
            Ok(()) => {
                Self::remove_garbage(set, &record.data_ids());
                Err(StoreError::NoSuchBucket)
            }
            // Whether the version is still there is not known: its body stays (the sweep
            // settles it), and the client hears 503.
            Err(_) => Err(StoreError::Indeterminate {
                have: 0,
                need: set.write_quorum(),
            }),
        }
    }

    /// Counts what `bucket` holds: every version but delete markers, visiting at most `limit`
    /// entries.
    pub fn bucket_usage(&self, bucket: &str, limit: usize) -> Result<BucketUsage, StoreError> {
        let mut usage = BucketUsage {
            complete: true,
            ..Default::default()
        };
        let mut seen = 0usize;
        self.for_each_version(bucket, |_, v| {
            if seen >= limit {
                usage.complete = false;
                return Ok(std::ops::ControlFlow::Break(()));
            }
            seen += 1;
            if v.kind == VersionKind::Object {
                usage.objects += 1;
                usage.bytes += v.size;
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })?;
        Ok(usage)
    }

    /// Refuses a change that would take `bucket` past its quota. The usage is the last count
    /// (at most [`USAGE_TTL`] old, so writes through other servers are seen within it) plus
    /// this server's commits since.
    fn check_quota(
        &self,
        bucket: &BucketRecord,
        objects: i64,
        bytes: i64,
    ) -> Result<(), StoreError> {
        let quota = bucket.quota;
        if quota.max_bytes.is_none() && quota.max_objects.is_none() || (objects <= 0 && bytes <= 0)
        {
            return Ok(());
        }
        let cached = {
            let cache = self.usage.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&bucket.name)
                .filter(|(at, _)| at.elapsed() < USAGE_TTL)
                .map(|(_, u)| *u)
        };
        let usage = match cached {
            Some(u) => u,
            None => {
                let u = self.bucket_usage(&bucket.name, USAGE_SCAN_LIMIT)?;
                self.usage
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(bucket.name.clone(), (std::time::Instant::now(), u));
                u
            }
        };
        let after = |have: u64, delta: i64| have.saturating_add_signed(delta);
        if let Some(max) = quota.max_bytes {
            if bytes > 0 && after(usage.bytes, bytes) > max {
                return Err(StoreError::QuotaExceeded(format!(
                    "The bucket quota of {max} bytes would be exceeded ({} stored).",
                    usage.bytes
                )));
            }
        }
        if let Some(max) = quota.max_objects {
            if objects > 0 && after(usage.objects, objects) > max {
                return Err(StoreError::QuotaExceeded(format!(
                    "The bucket quota of {max} objects would be exceeded ({} stored).",
                    usage.objects
                )));
            }
        }
        Ok(())
    }

    /// Adds a committed change to the counted usage of `bucket`, if it has one.
    fn note_usage(&self, bucket: &str, objects: i64, bytes: i64) {
        let mut cache = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, u)) = cache.get_mut(bucket) {
            u.objects = u.objects.saturating_add_signed(objects);
            u.bytes = u.bytes.saturating_add_signed(bytes);
        }
    }

    /// Holds `resource` exclusively across the cluster (a quorum lock, leased) or, standalone,
    /// not at all: for background work one server at a time should do.
    pub fn lock_cluster(&self, resource: &str) -> Result<Option<ClusterGuard>, StoreError> {
        self.cluster_locks
            .as_ref()
            .map(|l| l.lock(resource))
            .transpose()
    }

    /// Forgets the counted usage of `bucket` (versions were removed).
    fn forget_usage(&self, bucket: &str) {
        self.usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(bucket);
    }

    // ---------------------------------------------------------------- objects

    /// Whether [`Store::stage`] reads the cluster to place a new object (the store has several
    /// pools: a key goes where its newest version is); then it must not run on the executor.
    pub fn places_by_lookup(&self) -> bool {
        self.pools.len() > 1
    }

    /// Whether a body of `len` bytes is kept in memory until its commit (an inline object),
    /// rather than written to the drives as it arrives.
    pub fn stays_in_memory(&self, len: u64) -> bool {
        len <= self.inline_limit as u64
    }

    /// Starts receiving the body of `bucket/key`; finish it, then pass it to
    /// [`Store::put_object`]. Reads the cluster when [`Store::places_by_lookup`].
    pub fn stage(&self, bucket: &str, key: &str, request: DigestRequest) -> StagingWriter {
        let set = &self.sets[self.home_set(bucket, key)];
        StagingWriter::new(
            set.clone(),
            Self::order(set, bucket, key),
            request,
            self.inline_limit,
        )
    }

    /// Starts receiving a part of multipart upload `upload_id` of `bucket/key`: always to
    /// data files (parts are never inline), in the set that holds the upload.
    pub fn stage_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        request: DigestRequest,
    ) -> StagingWriter {
        // An upload id of no pool fails when the part is recorded; stage anywhere meanwhile.
        let set = self
            .upload_set(bucket, key, upload_id)
            .unwrap_or_else(|_| &self.sets[self.set_in_pool(0, bucket, key)]);
        StagingWriter::new(set.clone(), Self::order(set, bucket, key), request, 0)
    }

    /// Which drive of `set` holds each shard of `bucket/key`.
    pub(crate) fn order(set: &DriveSet, bucket: &str, key: &str) -> Vec<usize> {
        erasure::shard_order(erasure::object_hash(bucket, key), set.len())
    }

    /// Decodes one record of set `set_index` from its per-drive values: with erasure coding,
    /// inline shards of each drive are gathered by shard index.
    fn merge_record(
        &self,
        set_index: usize,
        bucket: &str,
        key: &str,
        values: &[Option<Vec<u8>>],
    ) -> Result<VersionRecord, StoreError> {
        let set = &self.sets[set_index];
        let mut first: Option<VersionRecord> = None;
        let mut shards: Vec<Option<Vec<u8>>> = Vec::new();
        let order = if set.codec.is_some() {
            Self::order(set, bucket, key)
        } else {
            Vec::new()
        };
        for (drive, v) in values.iter().enumerate() {
            let Some(v) = v else { continue };
            let r: VersionRecord = record::decode(v)?;
            if set.codec.is_some() {
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
        if set.codec.is_some() && matches!(r.data, DataLayout::Inline(_)) {
            r.data = DataLayout::InlineShards(shards);
        }
        r.set_index = set_index;
        Ok(r)
    }

    /// The bucket's record (`NoSuchBucket` when there is none) and every version of `key`
    /// (see [`Store::versions`]); with one pool of one set, from one round trip to each drive
    /// (the path of every write).
    fn bucket_and_versions(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(BucketRecord, Vec<(RawKey, VersionRecord)>), StoreError> {
        if self.sets.len() > 1 {
            return Ok((self.bucket(bucket)?, self.versions(bucket, key)?));
        }
        let prefix = keys::exact_key(keys::VERSION, bucket, key);
        let (record, it) = self.bucket_and_seek(bucket, &prefix, 1)?;
        let versions = it
            .collect_prefix(&prefix)?
            .into_iter()
            .map(|(k, values)| Ok((k, self.merge_record(0, bucket, key, &values)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok((record, versions))
    }

    /// The bucket's record and the (only) set's records seeked to `from`, in one round trip
    /// (see [`set::MergedIter::expect`] for `expect`).
    fn bucket_and_seek(
        &self,
        bucket: &str,
        from: &[u8],
        expect: usize,
    ) -> Result<(BucketRecord, set::MergedIter<'_>), StoreError> {
        let (found, it) = self.set.get_and_seek(&keys::bucket(bucket), from, expect)?;
        let record = found
            .and_then(|(_, values)| values.into_iter().flatten().next())
            .ok_or(StoreError::NoSuchBucket)?;
        Ok((record::decode(&record)?, it))
    }

    /// All versions of `key` in every pool, newest first (record keys sort that way); each
    /// record knows its set.
    fn versions(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<(RawKey, VersionRecord)>, StoreError> {
        let prefix = keys::exact_key(keys::VERSION, bucket, key);
        let mut out = Vec::new();
        for set_index in self.key_sets(bucket, key) {
            for (k, values) in self.sets[set_index].scan_all(&prefix)? {
                out.push((k, self.merge_record(set_index, bucket, key, &values)?));
            }
        }
        if self.pools.len() > 1 {
            out.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(out)
    }

    /// The newest version of `key` in any pool.
    fn latest(&self, bucket: &str, key: &str) -> Result<Option<VersionRecord>, StoreError> {
        let prefix = keys::exact_key(keys::VERSION, bucket, key);
        // (record key, set, per-drive values) of the newest version seen so far.
        let mut newest: Option<(Vec<u8>, usize, set::DriveValues)> = None;
        for set_index in self.key_sets(bucket, key) {
            let mut it = self.sets[set_index].merged_iter();
            it.seek(&prefix);
            Self::newer(&mut newest, &prefix, set_index, &it)?;
        }
        newest
            .map(|(_, set_index, values)| self.merge_record(set_index, bucket, key, &values))
            .transpose()
    }

    /// Takes the version `it` sits on into `newest` if it is a version of `prefix` newer
    /// than what `newest` holds (record keys sort newest first).
    fn newer(
        newest: &mut Option<(Vec<u8>, usize, set::DriveValues)>,
        prefix: &[u8],
        set_index: usize,
        it: &set::MergedIter<'_>,
    ) -> Result<(), StoreError> {
        match it.key() {
            Some(k) if k.starts_with(prefix) => {
                if newest.as_ref().is_none_or(|(n, _, _)| k < n.as_slice()) {
                    *newest = Some((k.to_vec(), set_index, it.values()));
                }
                Ok(())
            }
            _ => it.status(),
        }
    }

    /// The bucket's record (`NoSuchBucket` when there is none) and the newest version of
    /// `key`. With one pool of one set, both come from one round trip to each drive (the
    /// path of every GET and HEAD).
    fn bucket_and_latest(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(BucketRecord, Option<VersionRecord>), StoreError> {
        if self.sets.len() > 1 {
            return Ok((self.bucket(bucket)?, self.latest(bucket, key)?));
        }
        let prefix = keys::exact_key(keys::VERSION, bucket, key);
        let (record, it) = self.bucket_and_seek(bucket, &prefix, 1)?;
        let mut newest = None;
        Self::newer(&mut newest, &prefix, 0, &it)?;
        let latest = newest
            .map(|(_, set_index, values)| self.merge_record(set_index, bucket, key, &values))
            .transpose()?;
        Ok((record, latest))
    }

    /// Writes each set's batch under the key lock's `fence`, then removes the data files it
    /// freed.
    fn write_per_set(
        &self,
        batches: Vec<(usize, Batch, Vec<String>)>,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        for (set_index, mut batch, garbage) in batches {
            let set = &self.sets[set_index];
            Self::add_garbage(&mut batch, &garbage);
            set.write_fenced(&batch, fence)?;
            Self::remove_garbage(set, &garbage);
        }
        Ok(())
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

    /// Writes `record` as the newest version of `key` into set `set_index`, replacing the null
    /// version when the bucket is not versioned. Runs under the key's lock, whose `fence` its
    /// writes carry, given the key's `versions` read under it; `extra` adds to the same batch.
    /// A null version in another pool (two first writes that chose different pools) is
    /// removed after the commit, so one live copy remains.
    #[allow(clippy::too_many_arguments)]
    fn commit_version(
        &self,
        bucket: &BucketRecord,
        key: &str,
        versions: &[(RawKey, VersionRecord)],
        set_index: usize,
        mut record: VersionRecord,
        cond: &WriteCondition,
        extra: CommitExtras,
        fence: Option<&Fence>,
    ) -> Result<VersionRecord, StoreError> {
        let CommitExtras {
            mut batch,
            mut garbage,
            per_drive_inline,
        } = extra;
        if record.kind == VersionKind::Object {
            match &bucket.object_lock {
                None if record.retention.is_some() || record.legal_hold => {
                    return Err(StoreError::InvalidRequest(
                        "Bucket is missing ObjectLockConfiguration".into(),
                    ))
                }
                Some(lock) if record.retention.is_none() => {
                    record.retention = lock.default_retention.map(|d| d.from(record.mod_time_ns));
                }
                _ => {}
            }
        }
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
        // What the bucket gains: the new version, less a null version it replaces.
        let replaced: Vec<&VersionRecord> = if record.version_id.is_none() {
            versions
                .iter()
                .map(|(_, r)| r)
                .filter(|r| r.version_id.is_none() && r.kind == VersionKind::Object)
                .collect()
        } else {
            Vec::new()
        };
        let is_object = u64::from(record.kind == VersionKind::Object);
        let delta_objects = is_object as i64 - replaced.len() as i64;
        let delta_bytes =
            (is_object * record.size) as i64 - replaced.iter().map(|r| r.size as i64).sum::<i64>();
        self.check_quota(bucket, delta_objects, delta_bytes)?;
        let mut elsewhere: Vec<(usize, Batch, Vec<String>)> = Vec::new();
        if record.version_id.is_none() {
            for (k, old) in versions.iter().filter(|(_, r)| r.version_id.is_none()) {
                if old.set_index == set_index {
                    batch.delete(k);
                    garbage.extend(old.data_ids());
                } else {
                    let mut b = Batch::default();
                    b.delete(k);
                    elsewhere.push((old.set_index, b, old.data_ids()));
                }
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
        let set = &self.sets[set_index];
        set.write_fenced(&batch, fence)?;
        self.confirm_bucket(bucket, set_index, &record_key, &record, fence)?;
        self.note_usage(&bucket.name, delta_objects, delta_bytes);
        set.note_degraded_record(&record_key, &record.data_ids());
        Self::remove_garbage(set, &garbage);
        // The commit stands: a null version left in another pool is older and hidden by it,
        // and the next write of the key removes it again. Failing here would drop the body
        // the committed version names.
        if let Err(e) = self.write_per_set(elsewhere, fence) {
            tracing::warn!(bucket = %bucket.name, key, error = %e,
                "an older null version in another pool was left behind");
        }
        record.set_index = set_index;
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
        let g = self.lock_for(bucket, key)?;
        let (bucket, versions) = self.bucket_and_versions(bucket, key)?;
        let set_index = self.index_of(staged.set());
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
            tags: new.tags,
            retention: new.retention,
            legal_hold: new.legal_hold,
            set_index,
        };
        let committed = self.commit_version(
            &bucket,
            key,
            &versions,
            set_index,
            record,
            cond,
            CommitExtras {
                per_drive_inline: per_drive,
                ..Default::default()
            },
            g.fence(),
        );
        Self::keep_if_indeterminate(committed, staged)
    }

    /// Hands a staged body to the record that now names it — or may yet name it: a commit
    /// that missed its quorum can still take effect (the scanner completes it, or takes it
    /// back with its data), so its data stays. Any other failure discards the body.
    fn keep_if_indeterminate<T>(
        committed: Result<T, StoreError>,
        staged: Staged,
    ) -> Result<T, StoreError> {
        match &committed {
            Ok(_) | Err(StoreError::Indeterminate { .. }) => {
                staged.into_committed();
            }
            Err(_) => drop(staged),
        }
        committed
    }

    /// The current version of `key`, or the given version.
    pub fn head_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<VersionRecord, StoreError> {
        let record = match version_id {
            None => self
                .bucket_and_latest(bucket, key)?
                .1
                .ok_or(StoreError::NoSuchKey)?,
            Some(v) => {
                self.bucket(bucket)?;
                self.versions(bucket, key)?
                    .into_iter()
                    .map(|(_, r)| r)
                    .find(|r| r.is_named(v))
                    .ok_or(StoreError::NoSuchVersion)?
            }
        };
        if record.kind == VersionKind::DeleteMarker {
            return Err(StoreError::DeleteMarker(
                Box::new(record),
                version_id.is_some(),
            ));
        }
        Ok(record)
    }

    /// Changes the current version of `key` (or `version_id`) in place on every drive of its
    /// set, under the key's lock: tags, retention, legal hold. `change` may refuse. A delete
    /// marker cannot be changed (`StoreError::DeleteMarker`).
    pub fn update_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        change: impl FnOnce(&mut VersionRecord) -> Result<(), StoreError>,
    ) -> Result<VersionRecord, StoreError> {
        self.bucket(bucket)?;
        let g = self.lock_for(bucket, key)?;
        let versions = self.versions(bucket, key)?;
        let (raw, mut record) = match version_id {
            None => versions.into_iter().next().ok_or(StoreError::NoSuchKey)?,
            Some(v) => versions
                .into_iter()
                .find(|(_, r)| r.is_named(v))
                .ok_or(StoreError::NoSuchVersion)?,
        };
        if record.kind == VersionKind::DeleteMarker {
            return Err(StoreError::DeleteMarker(
                Box::new(record),
                version_id.is_some(),
            ));
        }
        change(&mut record)?;
        let set = &self.sets[record.set_index];
        let mut batch = Batch::default();
        batch.put_per_drive(raw, self.per_drive_records(bucket, key, &record)?);
        set.write_fenced(&batch, g.fence())?;
        Ok(record)
    }

    /// The value each drive of its set keeps for `record`: the record itself, or with an
    /// erasure-coded inline body, the record with that drive's own shard (rebuilt from the
    /// shards read, so a drive that missed it gets it too).
    pub(crate) fn per_drive_records(
        &self,
        bucket: &str,
        key: &str,
        record: &VersionRecord,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let set = &self.sets[record.set_index];
        match (&record.data, &set.codec) {
            (DataLayout::InlineShards(shards), Some(codec)) => {
                let order = Self::order(set, bucket, key);
                let (body, _) = ecio::decode_inline(codec, shards, record.size)?;
                let framed = ecio::encode_inline(codec, &order, &body)?;
                Ok(framed
                    .into_iter()
                    .map(|shard| {
                        record::encode(&VersionRecord {
                            data: DataLayout::Inline(shard),
                            ..record.clone()
                        })
                    })
                    .collect())
            }
            (DataLayout::InlineShards(_), None) => Err(StoreError::Internal(
                "inline shards without erasure coding".into(),
            )),
            _ => Ok(vec![record::encode(record); set.len()]),
        }
    }

    /// Deletes `key`: removes the null version, or adds a delete marker in a versioned bucket,
    /// or removes exactly `version_id`. Deleting what does not exist succeeds, as in S3. A
    /// version object lock keeps is refused: COMPLIANCE retention and legal holds always,
    /// GOVERNANCE retention unless `bypass_governance`.
    pub fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        bypass_governance: bool,
    ) -> Result<DeleteOutcome, StoreError> {
        let g = self.lock_for(bucket, key)?;
        let (bucket, versions) = self.bucket_and_versions(bucket, key)?;
        self.delete_locked(&bucket, key, versions, version_id, bypass_governance, &g)
    }

    /// Expires the current version of `key` as a lifecycle rule does (a delete marker in a
    /// versioned bucket, removal otherwise), but only while it is still the object version
    /// `version_id` last modified at `mod_time_ns`: a second run, or a run after a newer
    /// write, changes nothing. Returns whether it expired it.
    pub fn expire_current(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        mod_time_ns: u64,
    ) -> Result<bool, StoreError> {
        let g = self.lock_for(bucket, key)?;
        let (bucket, versions) = self.bucket_and_versions(bucket, key)?;
        let still = versions.first().is_some_and(|(_, r)| {
            r.kind == VersionKind::Object
                && r.version_id.as_deref() == version_id
                && r.mod_time_ns == mod_time_ns
        });
        if !still {
            return Ok(false);
        }
        let exact = match bucket.versioning {
            Versioning::Unversioned => Some(version_id.unwrap_or("null")),
            Versioning::Enabled | Versioning::Suspended => None,
        };
        self.delete_locked(&bucket, key, versions, exact, false, &g)?;
        Ok(true)
    }

    /// The body of [`Store::delete_object`], under the key's lock, given its versions.
    fn delete_locked(
        &self,
        bucket: &BucketRecord,
        key: &str,
        versions: Vec<(RawKey, VersionRecord)>,
        version_id: Option<&str>,
        bypass_governance: bool,
        guard: &KeyGuard<'_>,
    ) -> Result<DeleteOutcome, StoreError> {
        let fence = guard.fence();
        self.forget_usage(&bucket.name);
        let mut batch = Batch::default();
        let garbage = Vec::new();
        if let Some(v) = version_id {
            let mut outcome = DeleteOutcome {
                version_id: Some(v.to_string()),
                delete_marker: false,
            };
            if let Some((k, r)) = versions.iter().find(|(_, r)| r.is_named(v)) {
                outcome.delete_marker = r.kind == VersionKind::DeleteMarker;
                check_unlocked(r, bypass_governance)?;
                batch.delete(k);
                self.write_per_set(vec![(r.set_index, batch, r.data_ids())], fence)?;
            }
            return Ok(outcome);
        }
        match bucket.versioning {
            Versioning::Unversioned => {
                let mut per_set: Vec<(usize, Batch, Vec<String>)> = Vec::new();
                for (k, r) in &versions {
                    check_unlocked(r, bypass_governance)?;
                    let at = match per_set.iter().position(|(s, _, _)| *s == r.set_index) {
                        Some(at) => at,
                        None => {
                            per_set.push((r.set_index, Batch::default(), Vec::new()));
                            per_set.len() - 1
                        }
                    };
                    per_set[at].1.delete(k);
                    per_set[at].2.extend(r.data_ids());
                }
                self.write_per_set(per_set, fence)?;
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
                    tags: Vec::new(),
                    retention: None,
                    legal_hold: false,
                    set_index: 0,
                };
                let set_index = match versions.first() {
                    Some((_, newest)) => newest.set_index,
                    None => self.home_set(&bucket.name, key),
                };
                let r = self.commit_version(
                    bucket,
                    key,
                    &versions,
                    set_index,
                    marker,
                    &WriteCondition::default(),
                    CommitExtras {
                        batch,
                        garbage,
                        per_drive_inline: None,
                    },
                    fence,
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
        let set = self.sets[record.set_index].clone();
        let codec = set.codec;
        match (&record.data, &codec) {
            (DataLayout::Inline(bytes), _) => {
                let slice =
                    Bytes::copy_from_slice(&bytes[range.start as usize..range.end as usize]);
                if !slice.is_empty() {
                    let _ = tx.try_send(Ok(slice));
                }
            }
            (DataLayout::InlineShards(shards), Some(codec)) => {
                let (data, rebuilt) = ecio::decode_inline(codec, shards, record.size)?;
                if rebuilt {
                    set.note_reconstructed();
                }
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
                let order = Self::order(&set, bucket, key);
                let opened = tokio::task::spawn_blocking(move || {
                    ecio::open_segments(&set, &order, segments).map(|o| (set, o))
                })
                .await
                .map_err(|e| StoreError::Internal(e.to_string()))??;
                let order = Self::order(&opened.0, bucket, key);
                let record_key = keys::version(
                    bucket,
                    key,
                    record.mod_time_ns,
                    record.version_id.as_deref(),
                );
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
                        // The version may have gone while it was read (deleted, overwritten):
                        // its removal came after its record's, so if the record is still
                        // there now, that removal is yet to come and takes the healed shards
                        // too; if it is gone, they are ours to remove.
                        if matches!(set.get(&record_key), Ok(None)) {
                            if let Err(e) = set.remove_data(&d.data_id) {
                                tracing::warn!(data_id = %d.data_id, error = %e, "could not remove shards healed for a deleted version");
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
mod sim;
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

/// Refuses to remove a version object lock keeps.
fn check_unlocked(record: &VersionRecord, bypass_governance: bool) -> Result<(), StoreError> {
    match record.locked_at(now_ns()) {
        None => Ok(()),
        Some(Some(record::RetentionMode::Governance))
            if bypass_governance && !record.legal_hold =>
        {
            Ok(())
        }
        Some(_) => Err(StoreError::ObjectLocked(
            "Access Denied because object protected by object lock.".into(),
        )),
    }
}

/// Compares an ETag from a header (maybe quoted, maybe `*`) with a stored one.
pub fn etag_matches(header: &str, stored: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|h| h == "*" || h.trim_matches('"') == stored)
}
