//! Persisted records of the metadata store: buckets, object versions, multipart uploads and
//! their parts. Every record is encoded as one format-version byte followed by its postcard
//! encoding; `decode` is the single place a future migration chain hooks into.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::checksum::ChecksumAlgorithm;

/// Current format version of every record kind.
pub const RECORD_FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record is empty")]
    Empty,
    #[error("record has unknown format version {0}")]
    UnknownFormat(u8),
    #[error("record does not decode: {0}")]
    Corrupt(#[from] postcard::Error),
}

pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    let mut out = vec![RECORD_FORMAT_V1];
    // Invariant: our record types contain only postcard-encodable data (no maps with
    // non-string keys, no unsized sequences), so encoding into a Vec cannot fail.
    out.extend(postcard::to_stdvec(record).expect("records are always postcard-encodable"));
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RecordError> {
    match bytes.split_first() {
        None => Err(RecordError::Empty),
        Some((&RECORD_FORMAT_V1, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&v, _)) => Err(RecordError::UnknownFormat(v)),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    pub created_ns: u64,
    pub region: String,
    pub versioning: Versioning,
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
    /// In memory only: the index of the erasure set (across pools) this version was read from
    /// or written to, so its data is read from the same set.
    #[serde(skip)]
    pub set_index: usize,
}

impl VersionRecord {
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
        assert_eq!(hex::encode(encode(&sample())), V1_BYTES);
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
