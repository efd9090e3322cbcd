//! Multipart uploads: an upload record per upload, a part record per uploaded part, each
//! part's body in its own data file. Completing an upload moves no data: the new version's
//! record lists the chosen parts' data files in order.

use super::checksum::{self, ChecksumAlgorithm};
use super::record::{
    self, DataLayout, PartData, PartRecord, StoredChecksum, UploadRecord, VersionKind,
    VersionRecord,
};
use super::set::DriveSet;
use super::{keys, now_ns, NewObject, Staged, StagedContent, Store, StoreError, WriteCondition};
use std::sync::Arc;

/// S3's minimum size of every part but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
pub const MAX_PARTS: u32 = 10_000;
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;

/// One entry of a CompleteMultipartUpload request.
#[derive(Clone, Debug)]
pub struct CompletedPart {
    pub number: u32,
    pub etag: String,
    /// A checksum the client states for the part (base64 in the request, raw here).
    pub checksum: Option<Vec<u8>>,
}

/// The pool an upload id names: ids of pool 0 are a bare UUID (as before pools existed),
/// others end in `-POOL`. `None` for an id of no form we issue.
fn upload_pool(upload_id: &str) -> Option<usize> {
    match upload_id.split_once('-') {
        None => Some(0),
        Some((_, pool)) => pool.parse().ok().filter(|&p| p > 0),
    }
}

impl Store {
    /// The set holding upload `upload_id` of `bucket/key` (the pool is part of the id).
    pub(crate) fn upload_set(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<&Arc<DriveSet>, StoreError> {
        match upload_pool(upload_id) {
            Some(pool) if pool < self.pools.len() => {
                Ok(&self.sets[self.set_in_pool(pool, bucket, key)])
            }
            _ => Err(StoreError::NoSuchUpload),
        }
    }

    /// Starts a multipart upload; `new` (without checksum) is what the completed object gets.
    pub fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        new: NewObject,
        checksum_algorithm: Option<ChecksumAlgorithm>,
    ) -> Result<UploadRecord, StoreError> {
        self.bucket(bucket)?;
        // The upload lives where the object will: the pool of its current version, or the
        // pool a new object would go to.
        let set_index = self.home_set(bucket, key);
        let pool = self
            .pools
            .iter()
            .position(|r| r.contains(&set_index))
            .expect("every set belongs to a pool");
        let mut upload_id = uuid::Uuid::new_v4().simple().to_string();
        if pool > 0 {
            upload_id = format!("{upload_id}-{pool}");
        }
        let upload = UploadRecord {
            upload_id,
            bucket: bucket.to_string(),
            key: key.to_string(),
            initiated_ns: now_ns(),
            meta: new.meta,
            checksum_algorithm,
            tags: new.tags,
            retention: new.retention,
            legal_hold: new.legal_hold,
        };
        let mut batch = super::set::Batch::default();
        batch.put(
            keys::upload(bucket, key, &upload.upload_id),
            record::encode(&upload),
        );
        self.sets[set_index].write(&batch)?;
        Ok(upload)
    }

    pub fn upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadRecord, StoreError> {
        self.bucket(bucket)?;
        match self
            .upload_set(bucket, key, upload_id)?
            .get(&keys::upload(bucket, key, upload_id))?
        {
            Some(v) => Ok(record::decode(&v)?),
            None => Err(StoreError::NoSuchUpload),
        }
    }

    /// The parts of an upload of `bucket/key`.
    pub(crate) fn parts_of(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<PartRecord>, StoreError> {
        Self::parts_in(self.upload_set(bucket, key, upload_id)?, upload_id)
    }

    /// The parts of an upload whose records live in `set`.
    pub(crate) fn parts_in(
        set: &super::set::DriveSet,
        upload_id: &str,
    ) -> Result<Vec<PartRecord>, StoreError> {
        let prefix = keys::part_prefix(upload_id);
        set.scan(&prefix)?
            .iter()
            .map(|(_, v)| Ok(record::decode(v)?))
            .collect()
    }

    /// Parts of an upload in part-number order, after `marker`, at most `max`.
    pub fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> Result<(UploadRecord, Vec<PartRecord>, bool), StoreError> {
        let upload = self.upload(bucket, key, upload_id)?;
        let mut parts: Vec<PartRecord> = self
            .parts_of(bucket, key, upload_id)?
            .into_iter()
            .filter(|p| p.number > marker)
            .collect();
        let truncated = parts.len() > max;
        parts.truncate(max);
        Ok((upload, parts, truncated))
    }

    /// Records a staged body as part `number`, replacing an earlier upload of that number.
    pub fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        staged: Staged,
        checksum: Option<StoredChecksum>,
    ) -> Result<PartRecord, StoreError> {
        let g = self.lock_for(bucket, key)?;
        self.upload(bucket, key, upload_id)?;
        let StagedContent::File(data_id) = staged.content() else {
            return Err(StoreError::Internal(
                "parts are always staged to files".into(),
            ));
        };
        let part = PartRecord {
            number,
            size: staged.digests.size,
            etag: hex::encode(staged.digests.md5),
            data_id: data_id.clone(),
            last_modified_ns: now_ns(),
            checksum,
        };
        let mut batch = super::set::Batch::default();
        let mut garbage = Vec::new();
        let set = self.upload_set(bucket, key, upload_id)?;
        if !Arc::ptr_eq(staged.set(), set) {
            return Err(StoreError::Internal(
                "a part was staged outside its upload's set".into(),
            ));
        }
        if let Some(old) = set.get(&keys::part(upload_id, number))? {
            let old: PartRecord = record::decode(&old)?;
            garbage.push(old.data_id);
        }
        batch.put(keys::part(upload_id, number), record::encode(&part));
        Self::add_garbage(&mut batch, &garbage);
        Self::keep_if_indeterminate(set.write_fenced(&batch, g.fence()), staged)?;
        Self::remove_garbage(set, &garbage);
        Ok(part)
    }

    pub fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<(), StoreError> {
        let g = self.lock_for(bucket, key)?;
        self.upload(bucket, key, upload_id)?;
        let mut batch = super::set::Batch::default();
        let mut garbage = Vec::new();
        for p in self.parts_of(bucket, key, upload_id)? {
            batch.delete(keys::part(upload_id, p.number));
            garbage.push(p.data_id);
        }
        batch.delete(keys::upload(bucket, key, upload_id));
        Self::add_garbage(&mut batch, &garbage);
        let set = self.upload_set(bucket, key, upload_id)?;
        set.write_fenced(&batch, g.fence())?;
        Self::remove_garbage(set, &garbage);
        Ok(())
    }

    /// Assembles the listed parts into the newest version of the key.
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        requested: &[CompletedPart],
        cond: &WriteCondition,
    ) -> Result<VersionRecord, StoreError> {
        let bucket_record = self.bucket(bucket)?;
        let g = self.lock_for(bucket, key)?;
        let upload = self.upload(bucket, key, upload_id)?;
        if requested.is_empty() {
            return Err(StoreError::InvalidPart("the upload lists no parts".into()));
        }
        let stored = self.parts_of(bucket, key, upload_id)?;
        let mut chosen: Vec<&PartRecord> = Vec::with_capacity(requested.len());
        let mut previous = 0u32;
        for want in requested {
            if want.number <= previous {
                return Err(StoreError::InvalidPartOrder);
            }
            previous = want.number;
            let part = stored
                .iter()
                .find(|p| p.number == want.number)
                .ok_or_else(|| {
                    StoreError::InvalidPart(format!("part {} was not uploaded", want.number))
                })?;
            if want.etag.trim_matches('"') != part.etag {
                return Err(StoreError::InvalidPart(format!(
                    "part {} has a different ETag",
                    want.number
                )));
            }
            if let (Some(stated), Some(have)) = (&want.checksum, &part.checksum) {
                if *stated != have.value {
                    return Err(StoreError::InvalidPart(format!(
                        "part {} has a different checksum",
                        want.number
                    )));
                }
            }
            chosen.push(part);
        }
        for p in &chosen[..chosen.len() - 1] {
            if p.size < MIN_PART_SIZE {
                return Err(StoreError::EntityTooSmall(p.number));
            }
        }
        let size: u64 = chosen.iter().map(|p| p.size).sum();
        if size > MAX_OBJECT_SIZE {
            return Err(StoreError::EntityTooLarge);
        }
        let etags: Vec<&str> = chosen.iter().map(|p| p.etag.as_str()).collect();
        let etag = checksum::multipart_etag(&etags)
            .ok_or_else(|| StoreError::Internal("stored part ETag is not hex".into()))?;
        let object_checksum = upload
            .checksum_algorithm
            .and_then(|alg| object_checksum(alg, &chosen));
        let record = VersionRecord {
            version_id: None,
            mod_time_ns: now_ns(),
            kind: VersionKind::Object,
            size,
            etag,
            meta: upload.meta.clone(),
            checksum: object_checksum,
            data: DataLayout::Parts {
                multipart: true,
                parts: chosen
                    .iter()
                    .map(|p| PartData {
                        number: p.number,
                        size: p.size,
                        etag: p.etag.clone(),
                        data_id: p.data_id.clone(),
                        checksum: p.checksum.clone(),
                    })
                    .collect(),
            },
            tags: upload.tags.clone(),
            retention: upload.retention,
            legal_hold: upload.legal_hold,
            set_index: 0,
        };
        let set_index = self.index_of(self.upload_set(bucket, key, upload_id)?);
        let mut batch = super::set::Batch::default();
        let mut garbage = Vec::new();
        for p in &stored {
            batch.delete(keys::part(upload_id, p.number));
            if !chosen.iter().any(|c| c.number == p.number) {
                garbage.push(p.data_id.clone());
            }
        }
        batch.delete(keys::upload(bucket, key, upload_id));
        let versions = self.versions(bucket, key)?;
        self.commit_version(
            &bucket_record,
            key,
            &versions,
            set_index,
            record,
            cond,
            super::CommitExtras {
                batch,
                garbage,
                per_drive_inline: None,
            },
            g.fence(),
        )
    }
}

/// The object checksum of a multipart upload: the whole-content CRC64NVME combined from the
/// parts, or the COMPOSITE checksum-of-checksums `-N` for the other algorithms. `None` when a
/// part lacks a checksum of the upload's algorithm.
fn object_checksum(alg: ChecksumAlgorithm, parts: &[&PartRecord]) -> Option<StoredChecksum> {
    let values: Option<Vec<Vec<u8>>> = parts
        .iter()
        .map(|p| {
            p.checksum
                .as_ref()
                .filter(|c| c.algorithm == alg)
                .map(|c| c.value.clone())
        })
        .collect();
    let values = values?;
    if alg.full_object_for_multipart() {
        let mut crc = 0u64;
        for (i, (p, v)) in parts.iter().zip(&values).enumerate() {
            let part_crc = u64::from_be_bytes(v.as_slice().try_into().ok()?);
            crc = if i == 0 {
                part_crc
            } else {
                checksum::crc64nvme_combine(crc, part_crc, p.size)
            };
        }
        return Some(StoredChecksum {
            algorithm: alg,
            value: crc.to_be_bytes().to_vec(),
            parts: None,
        });
    }
    Some(StoredChecksum {
        algorithm: alg,
        value: checksum::composite_checksum(alg, &values),
        parts: Some(parts.len() as u32),
    })
}
