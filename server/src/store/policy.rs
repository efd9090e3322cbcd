//! Bucket documents: the policy, CORS and lifecycle configuration of a bucket, each kept as
//! the client sent it (after the S3 layer validated it) so a GET returns it unchanged. The
//! store does not parse or evaluate them; `iam::policy` and the S3 layer do.

use serde::{Deserialize, Serialize};

use super::set::Batch;
use super::{keys, record, Store, StoreError};

/// The documents a bucket may carry, one of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketDocument {
    Policy,
    Cors,
    Lifecycle,
}

impl BucketDocument {
    pub const ALL: [BucketDocument; 3] = [
        BucketDocument::Policy,
        BucketDocument::Cors,
        BucketDocument::Lifecycle,
    ];

    fn key(self, bucket: &str) -> Vec<u8> {
        let kind = match self {
            BucketDocument::Policy => keys::POLICY,
            BucketDocument::Cors => keys::CORS,
            BucketDocument::Lifecycle => keys::LIFECYCLE,
        };
        keys::bucket_document(kind, bucket)
    }
}

/// The persisted form of a bucket document (versioned like every record, see `record::encode`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct DocumentRecord {
    document: String,
}

impl record::Record for DocumentRecord {}

impl Store {
    /// Stores `document` as `bucket`'s document of kind `kind`, replacing any previous one.
    pub fn put_bucket_document(
        &self,
        bucket: &str,
        kind: BucketDocument,
        document: String,
    ) -> Result<(), StoreError> {
        // The bucket's lock orders this against `delete_bucket`, so no document outlives its
        // bucket.
        let g = self.lock_for(bucket, "")?;
        self.bucket(bucket)?;
        let mut batch = Batch::default();
        batch.put(
            kind.key(bucket),
            record::encode(&DocumentRecord { document }),
        );
        self.set.write_fenced(&batch, g.fence())
    }

    /// `bucket`'s document of kind `kind`, `None` when it has none. Does not check that the
    /// bucket exists (a missing bucket has no documents).
    pub fn bucket_document(
        &self,
        bucket: &str,
        kind: BucketDocument,
    ) -> Result<Option<String>, StoreError> {
        match self.set.get(&kind.key(bucket))? {
            Some(bytes) => Ok(Some(record::decode::<DocumentRecord>(&bytes)?.document)),
            None => Ok(None),
        }
    }

    /// Removes a document of `bucket`; removing one that does not exist succeeds.
    pub fn delete_bucket_document(
        &self,
        bucket: &str,
        kind: BucketDocument,
    ) -> Result<(), StoreError> {
        let g = self.lock_for(bucket, "")?;
        self.bucket(bucket)?;
        let mut batch = Batch::default();
        batch.delete(kind.key(bucket));
        self.set.write_fenced(&batch, g.fence())
    }

    /// Adds the removal of every document of `bucket` to `batch` (the bucket is going).
    pub(crate) fn delete_bucket_documents(batch: &mut Batch, bucket: &str) {
        for kind in BucketDocument::ALL {
            batch.delete(kind.key(bucket));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_and_go_with_their_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "us-east-1").unwrap();
        assert!(matches!(
            store.put_bucket_document("nope", BucketDocument::Policy, "{}".into()),
            Err(StoreError::NoSuchBucket)
        ));
        store.create_bucket("b", None).unwrap();
        assert_eq!(
            store.bucket_document("b", BucketDocument::Policy).unwrap(),
            None
        );
        store
            .put_bucket_document("b", BucketDocument::Policy, "{\"a\":1}".into())
            .unwrap();
        assert_eq!(
            store
                .bucket_document("b", BucketDocument::Policy)
                .unwrap()
                .as_deref(),
            Some("{\"a\":1}")
        );
        store
            .delete_bucket_document("b", BucketDocument::Policy)
            .unwrap();
        assert_eq!(
            store.bucket_document("b", BucketDocument::Policy).unwrap(),
            None
        );
        store
            .delete_bucket_document("b", BucketDocument::Policy)
            .unwrap();

        store
            .put_bucket_document("b", BucketDocument::Policy, "{}".into())
            .unwrap();
        store.delete_bucket("b").unwrap();
        store.create_bucket("b", None).unwrap();
        assert_eq!(
            store.bucket_document("b", BucketDocument::Policy).unwrap(),
            None,
            "a recreated bucket does not inherit the old policy"
        );
    }
}
