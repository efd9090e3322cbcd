//! Bucket policy records: the policy document of a bucket, kept as the client sent it (after
//! the S3 layer validated it) so GetBucketPolicy returns it unchanged. The store does not
//! parse or evaluate policies; that is `iam::policy`'s job.

use serde::{Deserialize, Serialize};

use super::set::Batch;
use super::{keys, record, Store, StoreError};

/// The persisted form of a bucket policy (versioned like every record, see `record::encode`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PolicyRecord {
    document: String,
}

impl Store {
    /// Stores `document` as the policy of `bucket`, replacing any previous one.
    pub fn put_bucket_policy(&self, bucket: &str, document: String) -> Result<(), StoreError> {
        // The bucket's lock orders this against `delete_bucket`, so no policy outlives its bucket.
        let _g = self.lock_for(bucket, "")?;
        self.bucket(bucket)?;
        let mut batch = Batch::default();
        batch.put(
            keys::policy(bucket),
            record::encode(&PolicyRecord { document }),
        );
        self.set.write(&batch)
    }

    /// The policy document of `bucket`, `None` when it has none. Does not check that the
    /// bucket exists (a missing bucket has no policy).
    pub fn bucket_policy(&self, bucket: &str) -> Result<Option<String>, StoreError> {
        match self.set.get(&keys::policy(bucket))? {
            Some(bytes) => Ok(Some(record::decode::<PolicyRecord>(&bytes)?.document)),
            None => Ok(None),
        }
    }

    /// Removes the policy of `bucket`; removing a policy that does not exist succeeds.
    pub fn delete_bucket_policy(&self, bucket: &str) -> Result<(), StoreError> {
        let _g = self.lock_for(bucket, "")?;
        self.bucket(bucket)?;
        let mut batch = Batch::default();
        batch.delete(keys::policy(bucket));
        self.set.write(&batch)
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
            store.put_bucket_policy("nope", "{}".into()),
            Err(StoreError::NoSuchBucket)
        ));
        store.create_bucket("b").unwrap();
        assert_eq!(store.bucket_policy("b").unwrap(), None);
        store.put_bucket_policy("b", "{\"a\":1}".into()).unwrap();
        assert_eq!(
            store.bucket_policy("b").unwrap().as_deref(),
            Some("{\"a\":1}")
        );
        store.delete_bucket_policy("b").unwrap();
        assert_eq!(store.bucket_policy("b").unwrap(), None);
        store.delete_bucket_policy("b").unwrap();

        store.put_bucket_policy("b", "{}".into()).unwrap();
        store.delete_bucket("b").unwrap();
        store.create_bucket("b").unwrap();
        assert_eq!(
            store.bucket_policy("b").unwrap(),
            None,
            "a recreated bucket does not inherit the old policy"
        );
    }
}
