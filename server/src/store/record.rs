//! Persisted records of the metadata store: buckets, object versions, multipart uploads and
//! their parts. Every record is encoded as one format-version byte followed by its postcard
//! encoding; `decode` is the single place the migration chain hooks into: each kind names its
//! current format ([`Record::FORMAT`]) and turns older bytes into today's record
//! ([`Record::migrate`]).

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::checksum::ChecksumAlgorithm;

/// The first format version, still current for most record kinds.
pub const RECORD_FORMAT_V1: u8 = 1;

/// A persisted record kind.
pub trait Record: Serialize + DeserializeOwned {
    /// The format version `encode` writes.
    const FORMAT: u8 = RECORD_FORMAT_V1;

    /// Decodes the postcard bytes of an older format version.
    fn migrate(format: u8, _bytes: &[u8]) -> Result<Self, RecordError> {
        Err(RecordError::UnknownFormat(format))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record is empty")]
    Empty,
    #[error("record has unknown format version {0}")]
    UnknownFormat(u8),
    #[error("record does not decode: {0}")]
    Corrupt(#[from] postcard::Error),
}

pub fn encode<T: Record>(record: &T) -> Vec<u8> {
    let mut out = vec![T::FORMAT];
    // Invariant: our record types contain only postcard-encodable data (no maps with
    // non-string keys, no unsized sequences), so encoding into a Vec cannot fail.
    out.extend(postcard::to_stdvec(record).expect("records are always postcard-encodable"));
    out
}

pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, RecordError> {
    match bytes.split_first() {
        None => Err(RecordError::Empty),
        Some((&v, rest)) if v == T::FORMAT => Ok(postcard::from_bytes(rest)?),
        Some((&v, rest)) => T::migrate(v, rest),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    pub created_ns: u64,
    pub region: String,
    pub versioning: Versioning,
    /// `Some` when the bucket was created with object lock (which cannot be turned off).
    pub object_lock: Option<ObjectLockConfig>,
    /// Bucket tags (PutBucketTagging).
    pub tags: Vec<(String, String)>,
    pub quota: Quota,
    /// A DeleteBucket is under way: it found (or is looking whether) the bucket is empty. A
    /// version committed meanwhile waits for its outcome and is taken back if the bucket went.
    pub deleting: bool,
}

/// A bucket's object lock configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLockConfig {
    /// Retention given to every new version that does not name its own.
    pub default_retention: Option<DefaultRetention>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    pub mode: RetentionMode,
    pub period: RetentionPeriod,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionPeriod {
    Days(u32),
    Years(u32),
}

impl DefaultRetention {
    /// The retention of a version written at `now_ns`.
    pub fn from(&self, now_ns: u64) -> Retention {
        const DAY_NS: u64 = 86_400 * 1_000_000_000;
        let days = match self.period {
            RetentionPeriod::Days(d) => u64::from(d),
            RetentionPeriod::Years(y) => u64::from(y) * 365,
        };
        Retention {
            mode: self.mode,
            until_ns: now_ns.saturating_add(days.saturating_mul(DAY_NS)),
        }
    }
}

/// Limits on what a bucket holds (unset: no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub max_bytes: Option<u64>,
    pub max_objects: Option<u64>,
}

/// What a bucket record looked like in format 1.
#[derive(Deserialize)]
struct BucketRecordV1 {
    name: String,
    created_ns: u64,
    region: String,
    versioning: Versioning,
}

/// What a bucket record looked like in format 2 (before `deleting`).
#[derive(Deserialize)]
struct BucketRecordV2 {
    name: String,
    created_ns: u64,
    region: String,
    versioning: Versioning,
    object_lock: Option<ObjectLockConfig>,
    tags: Vec<(String, String)>,
    quota: Quota,
}

impl Record for BucketRecord {
    const FORMAT: u8 = 3;

    fn migrate(format: u8, bytes: &[u8]) -> Result<Self, RecordError> {
        let v2 = match format {
            RECORD_FORMAT_V1 => {
                let v1: BucketRecordV1 = postcard::from_bytes(bytes)?;
                BucketRecordV2 {
                    name: v1.name,
                    created_ns: v1.created_ns,
                    region: v1.region,
                    versioning: v1.versioning,
                    object_lock: None,
                    tags: Vec::new(),
                    quota: Quota::default(),
                }
            }
            2 => postcard::from_bytes(bytes)?,
            other => return Err(RecordError::UnknownFormat(other)),
        };
        Ok(BucketRecord {
            name: v2.name,
            created_ns: v2.created_ns,
            region: v2.region,
            versioning: v2.versioning,
            object_lock: v2.object_lock,
            tags: v2.tags,
            quota: v2.quota,
            deleting: false,
        })
    }
}

/// What a scoped access key may do in one of its buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessMode {
    ReadWrite,
    ReadOnly,
    WriteOnly,
}

/// A scoped access key (global metadata: the same record on every drive). The secret is
/// stored only sealed (`iam::keys::SecretSealer`), never in plain text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    pub access_key: String,
    /// Nonce followed by the ChaCha20-Poly1305 ciphertext of the secret key.
    #[serde(with = "serde_bytes")]
    pub sealed_secret: Vec<u8>,
    pub buckets: Vec<(String, AccessMode)>,
    /// Unix seconds after which the key no longer authenticates.
    pub expires_at: Option<i64>,
    pub enabled: bool,
    pub created_ns: u64,
    pub description: String,
}

impl Record for AccessKeyRecord {}

impl std::fmt::Debug for AccessKeyRecord {
    // Even the sealed secret stays out of log lines.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyRecord")
            .field("access_key", &self.access_key)
            .field("buckets", &self.buckets)
            .field("expires_at", &self.expires_at)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// Headers stored with an object and returned on GET/HEAD.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    /// `x-amz-meta-*` pairs, names lower-case without the prefix, in arrival order.
    pub user: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredChecksum {
    pub algorithm: ChecksumAlgorithm,
    /// Raw digest bytes.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// For multipart objects with a COMPOSITE checksum: the number of parts (`-N` suffix).
    pub parts: Option<u32>,
}

/// One stored part of an object's content: the whole body of a simple PUT (number 1), or one
/// part of a completed multipart upload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartData {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    pub data_id: String,
    pub checksum: Option<StoredChecksum>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DataLayout {
    /// Small objects live inside the record: one RocksDB write, no file.
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Content is the concatenation of these data files, in order. In an erasure-coded set
    /// each data file is one shard file per drive.
    Parts {
        multipart: bool,
        parts: Vec<PartData>,
    },
    /// In memory only, never persisted: the inline shards of an erasure-coded object gathered
    /// from the drives' records, by shard index (each drive persists only its own shard, as
    /// `Inline`).
    #[serde(skip)]
    InlineShards(Vec<Option<Vec<u8>>>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum VersionKind {
    Object,
    DeleteMarker,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// `None` is the S3 "null" version (unversioned or suspended buckets).
    pub version_id: Option<String>,
    pub mod_time_ns: u64,
    pub kind: VersionKind,
    pub size: u64,
    /// Hex ETag without quotes (`md5` or `md5-N`).
    pub etag: String,
    pub meta: ObjectMeta,
    pub checksum: Option<StoredChecksum>,
    pub data: DataLayout,
    /// Object tags (`x-amz-tagging`, PutObjectTagging), in the order they were given.
    pub tags: Vec<(String, String)>,
    /// Object lock: the retention period, if any.
    pub retention: Option<Retention>,
    /// Object lock: a legal hold keeps the version until it is lifted.
    pub legal_hold: bool,
    /// In memory only: the index of the erasure set (across pools) this version was read from
    /// or written to, so its data is read from the same set.
    #[serde(skip)]
    pub set_index: usize,
}

/// Object lock retention modes (S3's names; the admin API's JSON uses them too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionMode {
    #[serde(rename = "GOVERNANCE")]
    /// Removable or shortened by a caller allowed `s3:BypassGovernanceRetention`.
    Governance,
    /// Nobody can shorten or remove it, the root credential included.
    #[serde(rename = "COMPLIANCE")]
    Compliance,
}

impl RetentionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionMode::Governance => "GOVERNANCE",
            RetentionMode::Compliance => "COMPLIANCE",
        }
    }

    pub fn parse(s: &str) -> Option<RetentionMode> {
        match s {
            "GOVERNANCE" => Some(RetentionMode::Governance),
            "COMPLIANCE" => Some(RetentionMode::Compliance),
            _ => None,
        }
    }
}

/// A version's retention: it cannot be deleted or overwritten in place before `until_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub mode: RetentionMode,
    /// Unix nanoseconds.
    pub until_ns: u64,
}

/// What a version record looked like in format 1 (before tags and object lock).
#[derive(Deserialize)]
struct VersionRecordV1 {
    version_id: Option<String>,
    mod_time_ns: u64,
    kind: VersionKind,
    size: u64,
    etag: String,
    meta: ObjectMeta,
    checksum: Option<StoredChecksum>,
    data: DataLayout,
}

impl Record for VersionRecord {
    const FORMAT: u8 = 2;

    fn migrate(format: u8, bytes: &[u8]) -> Result<Self, RecordError> {
        if format != RECORD_FORMAT_V1 {
            return Err(RecordError::UnknownFormat(format));
        }
        let v1: VersionRecordV1 = postcard::from_bytes(bytes)?;
        Ok(VersionRecord {
            version_id: v1.version_id,
            mod_time_ns: v1.mod_time_ns,
            kind: v1.kind,
            size: v1.size,
            etag: v1.etag,
            meta: v1.meta,
            checksum: v1.checksum,
            data: v1.data,
            tags: Vec::new(),
            retention: None,
            legal_hold: false,
            set_index: 0,
        })
    }
}

impl VersionRecord {
    /// Whether `id` (as clients give it: `"null"` names the null version) names this version.
    pub fn is_named(&self, id: &str) -> bool {
        self.version_id.as_deref() == (id != "null").then_some(id)
    }

    /// Whether object lock keeps this version at `now_ns` (retention not yet over, or a legal
    /// hold), and in which mode (`None` for a legal hold alone).
    pub fn locked_at(&self, now_ns: u64) -> Option<Option<RetentionMode>> {
        let retained = self
            .retention
            .filter(|r| r.until_ns > now_ns)
            .map(|r| r.mode);
        match (retained, self.legal_hold) {
            (Some(mode), _) => Some(Some(mode)),
            (None, true) => Some(None),
            (None, false) => None,
        }
    }

    pub fn data_ids(&self) -> Vec<String> {
        match &self.data {
            DataLayout::Inline(_) | DataLayout::InlineShards(_) => Vec::new(),
            DataLayout::Parts { parts, .. } => parts.iter().map(|p| p.data_id.clone()).collect(),
        }
    }

    pub fn parts_count(&self) -> Option<u32> {
        match &self.data {
            DataLayout::Parts {
                multipart: true,
                parts,
            } => Some(parts.len() as u32),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadRecord {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub initiated_ns: u64,
    pub meta: ObjectMeta,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// Tags, retention and legal hold given at CreateMultipartUpload, for the completed object.
    pub tags: Vec<(String, String)>,
    pub retention: Option<Retention>,
    pub legal_hold: bool,
}

/// What an upload record looked like in format 1.
#[derive(Deserialize)]
struct UploadRecordV1 {
    upload_id: String,
    bucket: String,
    key: String,
    initiated_ns: u64,
    meta: ObjectMeta,
    checksum_algorithm: Option<ChecksumAlgorithm>,
}

impl Record for UploadRecord {
    const FORMAT: u8 = 2;

    fn migrate(format: u8, bytes: &[u8]) -> Result<Self, RecordError> {
        if format != RECORD_FORMAT_V1 {
            return Err(RecordError::UnknownFormat(format));
        }
        let v1: UploadRecordV1 = postcard::from_bytes(bytes)?;
        Ok(UploadRecord {
            upload_id: v1.upload_id,
            bucket: v1.bucket,
            key: v1.key,
            initiated_ns: v1.initiated_ns,
            meta: v1.meta,
            checksum_algorithm: v1.checksum_algorithm,
            tags: Vec::new(),
            retention: None,
            legal_hold: false,
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartRecord {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    pub data_id: String,
    pub last_modified_ns: u64,
    pub checksum: Option<StoredChecksum>,
}

impl Record for PartRecord {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> VersionRecord {
        VersionRecord {
            version_id: None,
            mod_time_ns: 1_700_000_000_000_000_000,
            kind: VersionKind::Object,
            size: 5,
            etag: "5d41402abc4b2a76b9719d911017c592".into(),
            meta: ObjectMeta {
                content_type: Some("text/plain".into()),
                user: vec![("color".into(), "blue".into())],
                ..Default::default()
            },
            checksum: None,
            data: DataLayout::Inline(b"hello".to_vec()),
            tags: Vec::new(),
            retention: None,
            legal_hold: false,
            set_index: 0,
        }
    }

    /// Bytes written by format version 1; decoding them must keep working after any format
    /// change (add a migration, never break this test).
    const V1_BYTES: &str = "01008080a8b1e39fe7cb170005203564343134303261626334623261373662393731396439313130313763353932010a746578742f706c61696e00000000000105636f6c6f7204626c756500000568656c6c6f";

    /// An access key record as format version 1 wrote it.
    const ACCESS_KEY_V1_BYTES: &str = "01034b4559030102030101620101d00f0102046e6f7465";

    #[test]
    fn access_key_record_v1_bytes_still_decode() {
        let record = AccessKeyRecord {
            access_key: "KEY".into(),
            sealed_secret: vec![1, 2, 3],
            buckets: vec![("b".into(), AccessMode::ReadOnly)],
            expires_at: Some(1000),
            enabled: true,
            created_ns: 2,
            description: "note".into(),
        };
        let decoded: AccessKeyRecord = decode(&hex::decode(ACCESS_KEY_V1_BYTES).unwrap()).unwrap();
        assert_eq!(decoded, record);
        assert_eq!(hex::encode(encode(&record)), ACCESS_KEY_V1_BYTES);
        assert!(!format!("{record:?}").contains("sealed"));
    }

    #[test]
    fn version_record_v1_bytes_still_decode() {
        let decoded: VersionRecord = decode(&hex::decode(V1_BYTES).unwrap()).unwrap();
        assert_eq!(decoded, sample());
        // Written again, it is format 2 and keeps what it had.
        let again = encode(&decoded);
        assert_eq!(again[0], 2);
        assert_eq!(decode::<VersionRecord>(&again).unwrap(), sample());
    }

    /// A version record with tags and object lock as format version 2 wrote it.
    const V2_BYTES: &str = "02008080a8b1e39fe7cb170005203564343134303261626334623261373662393731396439313130313763353932010a746578742f706c61696e00000000000105636f6c6f7204626c756500000568656c6c6f01047465616d046461746101018080d09de9ceb8fd1801";

    #[test]
    fn version_record_v2_bytes_still_decode() {
        let record = VersionRecord {
            tags: vec![("team".into(), "data".into())],
            retention: Some(Retention {
                mode: RetentionMode::Compliance,
                until_ns: 1_800_000_000_000_000_000,
            }),
            legal_hold: true,
            ..sample()
        };
        assert_eq!(hex::encode(encode(&record)), V2_BYTES);
        let decoded: VersionRecord = decode(&hex::decode(V2_BYTES).unwrap()).unwrap();
        assert_eq!(decoded, record);
        assert_eq!(
            decoded.locked_at(1_700_000_000_000_000_000),
            Some(Some(RetentionMode::Compliance))
        );
        assert_eq!(decoded.locked_at(1_900_000_000_000_000_000), Some(None));
    }

    #[test]
    fn bucket_record_v1_bytes_still_decode() {
        // name "b", created 7, region "r", Enabled, as format 1 wrote it.
        let decoded: BucketRecord = decode(&hex::decode("01016207017201").unwrap()).unwrap();
        assert_eq!(
            decoded,
            BucketRecord {
                name: "b".into(),
                created_ns: 7,
                region: "r".into(),
                versioning: Versioning::Enabled,
                object_lock: None,
                tags: Vec::new(),
                quota: Quota::default(),
                deleting: false,
            }
        );
        assert_eq!(decode::<BucketRecord>(&encode(&decoded)).unwrap(), decoded);
    }

    #[test]
    fn bucket_record_v2_bytes_still_decode() {
        // name "b", created 7, region "r", Enabled, object lock without default retention,
        // tags [("t", "v")], quota of 9 bytes, as format 2 wrote it.
        let decoded: BucketRecord =
            decode(&hex::decode("0201620701720101000101740176010900").unwrap()).unwrap();
        assert_eq!(
            decoded,
            BucketRecord {
                name: "b".into(),
                created_ns: 7,
                region: "r".into(),
                versioning: Versioning::Enabled,
                object_lock: Some(ObjectLockConfig {
                    default_retention: None
                }),
                tags: vec![("t".into(), "v".into())],
                quota: Quota {
                    max_bytes: Some(9),
                    max_objects: None,
                },
                deleting: false,
            }
        );
        assert_eq!(decode::<BucketRecord>(&encode(&decoded)).unwrap(), decoded);
    }

    /// An upload record as format version 1 wrote it.
    #[test]
    fn upload_record_v1_bytes_still_decode() {
        let v1 = "0102696401620161020000000000000000";
        let decoded: UploadRecord = decode(&hex::decode(v1).unwrap()).unwrap();
        assert_eq!(
            (
                decoded.upload_id.as_str(),
                decoded.bucket.as_str(),
                decoded.key.as_str()
            ),
            ("id", "b", "a")
        );
        assert_eq!(decoded.initiated_ns, 2);
        assert!(decoded.tags.is_empty() && decoded.retention.is_none() && !decoded.legal_hold);
    }

    #[test]
    fn unknown_format_is_refused() {
        let mut bytes = encode(&sample());
        bytes[0] = 99;
        assert!(matches!(
            decode::<VersionRecord>(&bytes),
            Err(RecordError::UnknownFormat(99))
        ));
        assert!(matches!(
            decode::<VersionRecord>(&[]),
            Err(RecordError::Empty)
        ));
    }
}
