//! Access key records in the metadata store. They are global metadata: written to every drive
//! of the set with the same quorum rules as bucket records. The store only keeps the records;
//! sealing secrets and deciding what a key may do belong to `iam`.

use super::record::{self, AccessKeyRecord};
use super::set::Batch;
use super::{keys, Store, StoreError};

impl Store {
    /// Creates or replaces the record of `record.access_key`.
    pub fn put_access_key(&self, record: &AccessKeyRecord) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        batch.put(keys::access_key(&record.access_key), record::encode(record));
        self.set.write(&batch)
    }

    pub fn access_key(&self, id: &str) -> Result<Option<AccessKeyRecord>, StoreError> {
        match self.set.get(&keys::access_key(id))? {
            Some(bytes) => Ok(Some(record::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    pub fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>, StoreError> {
        let mut out = Vec::new();
        for (_, v) in self.set.scan(&[keys::ACCESS_KEY])? {
            out.push(record::decode(&v)?);
        }
        Ok(out)
    }

    /// Removes the key; returns whether it existed.
    pub fn delete_access_key(&self, id: &str) -> Result<bool, StoreError> {
        let existed = self.access_key(id)?.is_some();
        let mut batch = Batch::default();
        batch.delete(keys::access_key(id));
        self.set.write(&batch)?;
        Ok(existed)
    }
}
