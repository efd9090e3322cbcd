//! Listings as range scans over the record key space: objects (the newest version of each
//! key, skipping delete markers) and unfinished multipart uploads, with prefix, delimiter
//! roll-up into common prefixes, a start-after position and a page size. A common prefix is
//! skipped over with a single seek, so a page costs time in its own size, not the bucket's.

use std::ops::ControlFlow;

use super::record::{self, UploadRecord, VersionKind, VersionRecord};
use super::{keys, Store, StoreError};

#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Only entries strictly after this key (or common prefix) are returned.
    pub start_after: Option<String>,
    pub max_keys: usize,
}

#[derive(Clone, Debug)]
pub enum ListEntry<T> {
    Item(String, T),
    CommonPrefix(String),
}

impl<T> ListEntry<T> {
    pub fn name(&self) -> &str {
        match self {
            ListEntry::Item(k, _) | ListEntry::CommonPrefix(k) => k,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ListPage<T> {
    pub entries: Vec<ListEntry<T>>,
    pub truncated: bool,
}

impl<T> ListPage<T> {
    /// The name to continue after (NextMarker / continuation position).
    pub fn last_name(&self) -> Option<&str> {
        self.entries.last().map(ListEntry::name)
    }
}

pub type UploadListing = ListPage<UploadRecord>;

/// One entry of ListObjectVersions: a version or delete marker, and whether it is the newest
/// version of its key.
pub type VersionListing = ListPage<(VersionRecord, bool)>;

/// Where `key` rolls up under `delimiter` after `prefix`, if it does.
fn common_prefix<'a>(key: &'a str, prefix: &str, delimiter: Option<&str>) -> Option<&'a str> {
    let d = delimiter.filter(|d| !d.is_empty())?;
    let rest = &key[prefix.len()..];
    rest.find(d).map(|i| &key[..prefix.len() + i + d.len()])
}

impl Store {
    /// Generic scan over keys of `kind` in `bucket`. `decode` turns a raw record into an item
    /// (or `None` to skip it, e.g. a delete marker), told whether the record is the first of
    /// its key (the newest version); `one_per_key` keeps only that first record. A scan that
    /// resumes inside a key (`resume_at`) sees none of that key's records as first.
    fn scan<T>(
        &self,
        kind: u8,
        bucket: &str,
        query: &ListQuery,
        one_per_key: bool,
        resume_at: Option<Vec<u8>>,
        decode: impl Fn(&[u8], bool) -> Result<Option<T>, StoreError>,
    ) -> Result<ListPage<T>, StoreError> {
        let base = keys::key_prefix(kind, bucket, &query.prefix);
        let mut start = base.clone();
        let mut last_key: Option<String> = None;
        if let Some(after) = query
            .start_after
            .as_deref()
            .filter(|a| a.as_bytes() >= query.prefix.as_bytes())
        {
            match resume_at {
                Some(at) => {
                    start = at;
                    last_key = Some(after.to_string());
                }
                None => start = keys::after_key(kind, bucket, after),
            }
        }
        // A page reads at least its size in records (one more tells whether it is the last).
        let expect = query.max_keys.saturating_add(1);
        let mut it = if self.sets.len() == 1 {
            let (_, it) = self.bucket_and_seek(bucket, &start, expect)?;
            super::set::SetsIter::seeked(it)
        } else {
            self.bucket(bucket)?;
            let mut it = self.object_iter();
            it.expect(expect);
            it.seek(&start);
            it
        };
        let mut page = ListPage {
            entries: Vec::new(),
            truncated: false,
        };
        while it.valid() {
            let (Some(raw), Some(value)) = (it.key(), it.value()) else {
                break;
            };
            if !raw.starts_with(&base) {
                break;
            }
            let key = keys::decode_object_key(kind, bucket, raw)
                .ok_or_else(|| StoreError::Internal("undecodable record key".into()))?;
            if one_per_key && last_key.as_deref() == Some(key.as_str()) {
                it.next();
                continue;
            }
            let first = last_key.as_deref() != Some(key.as_str());
            let item = decode(value, first)?;
            last_key = Some(key.clone());
            let Some(item) = item else {
                it.next();
                continue;
            };
            if let Some(cp) = common_prefix(&key, &query.prefix, query.delimiter.as_deref()) {
                let cp = cp.to_string();
                let skip_to = keys::prefix_end(&keys::key_prefix(kind, bucket, &cp));
                if query.start_after.as_deref().is_none_or(|a| cp.as_str() > a) {
                    if page.entries.len() == query.max_keys {
                        page.truncated = true;
                        break;
                    }
                    page.entries.push(ListEntry::CommonPrefix(cp));
                }
                match skip_to {
                    Some(k) => it.seek(&k),
                    None => break,
                }
                continue;
            }
            if page.entries.len() == query.max_keys {
                page.truncated = true;
                break;
            }
            page.entries.push(ListEntry::Item(key, item));
            it.next();
        }
        it.status()?;
        Ok(page)
    }

    /// Current objects of `bucket` (ListObjects v1/v2).
    pub fn list_objects(
        &self,
        bucket: &str,
        query: &ListQuery,
    ) -> Result<ListPage<VersionRecord>, StoreError> {
        self.scan(keys::VERSION, bucket, query, true, None, |v, _| {
            let r: VersionRecord = record::decode(v)?;
            Ok((r.kind == VersionKind::Object).then_some(r))
        })
    }

    /// Every version and delete marker of `bucket`, keys in order and each key's versions
    /// newest first (ListObjectVersions). `query.start_after` is the key marker; with
    /// `after_version` the listing resumes inside that key, after that version (`"null"`
    /// names the null version). A version marker that names no version resumes after the key.
    pub fn list_versions(
        &self,
        bucket: &str,
        query: &ListQuery,
        after_version: Option<&str>,
    ) -> Result<VersionListing, StoreError> {
        let resume_at = match (query.start_after.as_deref(), after_version) {
            (Some(key), Some(v)) => {
                self.versions(bucket, key)?
                    .into_iter()
                    .find(|(_, r)| r.is_named(v))
                    .map(|(raw, _)| {
                        // The smallest key after `raw`: the next version of the same key.
                        let mut k = raw.to_vec();
                        k.push(0);
                        k
                    })
            }
            _ => None,
        };
        self.scan(
            keys::VERSION,
            bucket,
            query,
            false,
            resume_at,
            |v, first| {
                let r: VersionRecord = record::decode(v)?;
                Ok(Some((r, first)))
            },
        )
    }

    /// Calls `f` with every version and delete marker of `bucket` in listing order (keys in
    /// order, each key's versions newest first), a page at a time, until it breaks.
    pub fn for_each_version(
        &self,
        bucket: &str,
        mut f: impl FnMut(&str, VersionRecord) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<(), StoreError> {
        let mut query = ListQuery {
            max_keys: 1000,
            ..ListQuery::default()
        };
        let mut after_version: Option<String> = None;
        loop {
            let page = self.list_versions(bucket, &query, after_version.as_deref())?;
            let truncated = page.truncated;
            let mut last = None;
            for entry in page.entries {
                if let ListEntry::Item(key, (v, _)) = entry {
                    let id = v.version_id.clone().unwrap_or_else(|| "null".into());
                    if f(&key, v)?.is_break() {
                        return Ok(());
                    }
                    last = Some((key, id));
                }
            }
            match last {
                Some((key, id)) if truncated => {
                    query.start_after = Some(key);
                    after_version = Some(id);
                }
                _ => return Ok(()),
            }
        }
    }

    /// Unfinished multipart uploads of `bucket` (ListMultipartUploads). With
    /// `after_upload_id`, the listing resumes inside the uploads of `query.start_after`, after
    /// that upload id (the key-marker / upload-id-marker pair).
    pub fn list_uploads(
        &self,
        bucket: &str,
        query: &ListQuery,
        after_upload_id: Option<&str>,
    ) -> Result<UploadListing, StoreError> {
        // Upload ids contain no 0 byte, so `id + 0x00` sorts right after `id` and before any
        // later upload id of the same key.
        let resume_at = query
            .start_after
            .as_deref()
            .zip(after_upload_id)
            .map(|(key, id)| {
                let mut k = keys::upload(bucket, key, id);
                k.push(0);
                k
            });
        self.scan(keys::UPLOAD, bucket, query, false, resume_at, |v, _| {
            Ok(Some(record::decode(v)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_rolls_up_after_the_prefix() {
        assert_eq!(common_prefix("a/b/c", "", Some("/")), Some("a/"));
        assert_eq!(common_prefix("a/b/c", "a/", Some("/")), Some("a/b/"));
        assert_eq!(common_prefix("a/b", "a/", Some("/")), None);
        assert_eq!(common_prefix("a/b", "", None), None);
        assert_eq!(common_prefix("x--y", "", Some("--")), Some("x--"));
    }
}
