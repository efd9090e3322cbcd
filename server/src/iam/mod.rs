//! Identities that may sign requests and what each may do: the root credential (from the
//! environment, or generated on first start and kept in the first drive) may do everything;
//! scoped access keys (`keys`) are limited to their buckets and modes. Bucket policies
//! (`policy`) slot in behind [`Iam`].

pub mod keys;
pub mod policy;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::auth::SecretLookup;
use crate::http::Operation;
use crate::store::{Store, StoreError};
use keys::{AccessKeyRecord, AccessMode, SecretSealer};

#[derive(Clone, Serialize, Deserialize)]
pub struct Credential {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for Credential {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// Where the root credential came from, so the server knows whether to print it.
pub enum RootSource {
    Environment,
    Stored,
    Generated,
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

impl Credential {
    pub fn generate() -> Credential {
        const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        const ANY: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        Credential {
            access_key: format!("COFFER{}", random_string(14, UPPER)),
            secret_key: random_string(40, ANY),
        }
    }

    /// The root credential: `env` if both halves are given, else the one stored in `drive`,
    /// else a new one stored there (mode 0600).
    pub fn load_root(
        env: Option<Credential>,
        drive: &Path,
    ) -> std::io::Result<(Credential, RootSource)> {
        if let Some(c) = env {
            return Ok((c, RootSource::Environment));
        }
        let path = drive.join("root-credential.json");
        if let Ok(bytes) = std::fs::read(&path) {
            let c: Credential = serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?;
            return Ok((c, RootSource::Stored));
        }
        let c = Credential::generate();
        let bytes = serde_json::to_vec_pretty(&c).map_err(std::io::Error::other)?;
        crate::store::drive::write_file_durably(drive, "root-credential.json", &bytes)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok((c, RootSource::Generated))
    }
}

/// A request a principal may not make; answered with AccessDenied whatever the bucket's
/// existence, so a scoped key learns nothing about buckets outside its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("access denied")]
pub struct Denied;

/// An enabled scoped key as requests need it: the opened secret and the scope.
struct ActiveKey {
    secret: String,
    buckets: Vec<(String, AccessMode)>,
    expires_at: Option<i64>,
}

impl ActiveKey {
    fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }

    fn mode(&self, bucket: &str) -> Option<AccessMode> {
        self.buckets
            .iter()
            .find(|(b, _)| b == bucket)
            .map(|(_, m)| *m)
    }
}

/// What an operation needs from a scoped key.
enum Need {
    /// Allowed to every key (ListBuckets, filtered to the key's buckets).
    Nothing,
    /// Never allowed to a scoped key.
    RootOnly,
    /// The bucket must be one of the key's, in any mode (bucket metadata).
    Scope,
    Read,
    Write,
    /// Write on the destination bucket and read on the copy source's.
    Copy,
}

fn need(op: &Operation) -> Need {
    use Operation as O;
    #[allow(unreachable_patterns)]
    match op {
        O::ListBuckets => Need::Nothing,
        O::CreateBucket | O::DeleteBucket => Need::RootOnly,
        O::HeadBucket
        | O::GetBucketLocation
        | O::GetBucketVersioning
        | O::GetBucketTagging
        | O::GetObjectLockConfiguration
        | O::GetBucketCors
        | O::GetBucketLifecycleConfiguration => Need::Scope,
        O::ListObjects
        | O::ListObjectsV2
        | O::ListObjectVersions
        | O::ListMultipartUploads
        | O::GetObject
        | O::HeadObject
        | O::GetObjectTagging
        | O::GetObjectAttributes
        | O::GetObjectRetention
        | O::GetObjectLegalHold
        | O::ListParts => Need::Read,
        O::PutObject
        | O::PostObject
        | O::DeleteObject
        | O::DeleteObjects
        | O::CreateMultipartUpload
        | O::UploadPart
        | O::CompleteMultipartUpload
        | O::AbortMultipartUpload
        | O::PutObjectTagging
        | O::DeleteObjectTagging
        | O::PutObjectRetention
        | O::PutObjectLegalHold => Need::Write,
        O::CopyObject | O::UploadPartCopy => Need::Copy,
        // Operations added later (bucket configuration, policies) stay root-only until
        // someone decides otherwise here.
        _ => Need::RootOnly,
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The identity store consulted by authentication and authorization.
pub struct Iam {
    root: Credential,
    sealer: SecretSealer,
    /// Enabled keys whose secret opened, by access key id; rebuilt by `reload` after every
    /// change so that a lookup is one hash-map read.
    keys: RwLock<HashMap<String, Arc<ActiveKey>>>,
    /// Serializes reloads so an older snapshot never replaces a newer one.
    reloading: Mutex<()>,
}

impl Iam {
    /// Root only, no scoped keys.
    pub fn new(root: Credential) -> Iam {
        Iam {
            sealer: SecretSealer::from_root_secret(&root.secret_key),
            root,
            keys: RwLock::new(HashMap::new()),
            reloading: Mutex::new(()),
        }
    }

    /// Root and the access keys kept in `store`. A server starting with its cluster may find
    /// too few drives answering to tell which keys exist (peers restarting too): it asks again
    /// for up to `patience`, then starts with the root credential alone — access keys are
    /// refused, never guessed, until the periodic re-read finds a quorum.
    pub fn load_patiently(
        root: Credential,
        store: &Store,
        patience: std::time::Duration,
    ) -> Result<Iam, StoreError> {
        let iam = Iam::new(root);
        let start = std::time::Instant::now();
        loop {
            match iam.reload(store) {
                Ok(()) => return Ok(iam),
                Err(StoreError::QuorumLost { .. }) if start.elapsed() < patience => {
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                Err(e @ StoreError::QuorumLost { .. }) => {
                    tracing::warn!(error = %e, "access keys unknown yet: only the root credential is accepted until they are read");
                    return Ok(iam);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Re-reads every access key from `store`; call after each change to a key.
    pub fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let _g = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let mut active = HashMap::new();
        for record in store.list_access_keys()? {
            if !record.enabled {
                continue;
            }
            match self.sealer.open(&record.access_key, &record.sealed_secret) {
                Some(secret) => {
                    active.insert(
                        record.access_key.clone(),
                        Arc::new(ActiveKey {
                            secret,
                            buckets: record.buckets,
                            expires_at: record.expires_at,
                        }),
                    );
                }
                None => tracing::warn!(
                    access_key = %record.access_key,
                    "access key secret does not open under the current root credential; \
                     re-create or rotate the key"
                ),
            }
        }
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = active;
        Ok(())
    }

    pub fn root_access_key(&self) -> &str {
        &self.root.access_key
    }

    pub fn is_root(&self, access_key: &str) -> bool {
        self.root
            .access_key
            .as_bytes()
            .ct_eq(access_key.as_bytes())
            .into()
    }

    /// Seals access key secrets for storage.
    pub fn sealer(&self) -> &SecretSealer {
        &self.sealer
    }

    /// The enabled, unexpired scoped key `access_key`.
    fn active(&self, access_key: &str) -> Option<Arc<ActiveKey>> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.get(access_key)
            .filter(|k| !k.expired(unix_now()))
            .cloned()
    }

    /// The buckets `principal` may see, or None when it is not limited (root).
    pub fn bucket_scope(&self, principal: &str) -> Option<Vec<String>> {
        if self.is_root(principal) {
            return None;
        }
        Some(
            self.active(principal)
                .map(|k| k.buckets.iter().map(|(b, _)| b.clone()).collect())
                .unwrap_or_default(),
        )
    }

    /// Whether `principal` (an authenticated access key id) may perform `op` on `bucket`;
    /// `copy_source_bucket` is the bucket of `x-amz-copy-source` for copies.
    pub fn authorize(
        &self,
        principal: &str,
        op: &Operation,
        bucket: Option<&str>,
        copy_source_bucket: Option<&str>,
    ) -> Result<(), Denied> {
        if self.is_root(principal) {
            return Ok(());
        }
        let key = self.active(principal).ok_or(Denied)?;
        let mode = || bucket.and_then(|b| key.mode(b)).ok_or(Denied);
        let ok = match need(op) {
            Need::Nothing => true,
            Need::RootOnly => false,
            Need::Scope => mode().is_ok(),
            Need::Read => mode()?.can_read(),
            Need::Write => mode()?.can_write(),
            Need::Copy => {
                let source = copy_source_bucket.and_then(|b| key.mode(b)).ok_or(Denied)?;
                mode()?.can_write() && source.can_read()
            }
        };
        ok.then_some(()).ok_or(Denied)
    }
}

impl SecretLookup for Iam {
    fn secret_key(&self, access_key: &str) -> Option<String> {
        if self.is_root(access_key) {
            return Some(self.root.secret_key.clone());
        }
        self.active(access_key).map(|k| k.secret.clone())
    }
}

/// A new record for `access_key` with `secret` sealed by `iam`.
pub fn new_access_key_record(
    iam: &Iam,
    access_key: &str,
    secret: &str,
    buckets: Vec<(String, AccessMode)>,
    expires_at: Option<i64>,
    description: String,
) -> AccessKeyRecord {
    AccessKeyRecord {
        access_key: access_key.to_string(),
        sealed_secret: iam.sealer.seal(access_key, secret),
        buckets,
        expires_at,
        enabled: true,
        created_ns: crate::store::now_ns(),
        description,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_root_is_stored_and_reused_and_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (first, src) = Credential::load_root(None, dir.path()).unwrap();
        assert!(matches!(src, RootSource::Generated));
        let (again, src) = Credential::load_root(None, dir.path()).unwrap();
        assert!(matches!(src, RootSource::Stored));
        assert_eq!(first.secret_key, again.secret_key);
        let env = Credential {
            access_key: "a".into(),
            secret_key: "b".into(),
        };
        let (c, _) = Credential::load_root(Some(env), dir.path()).unwrap();
        assert_eq!(c.access_key, "a");
        assert!(!format!("{first:?}").contains(&first.secret_key));
        let iam = Iam::new(first.clone());
        assert_eq!(iam.secret_key(&first.access_key), Some(first.secret_key));
        assert_eq!(iam.secret_key("nobody"), None);
    }

    /// A test key: id, buckets and modes, expiry, enabled.
    type TestKey<'a> = (&'a str, Vec<(&'a str, AccessMode)>, Option<i64>, bool);

    fn iam_with(records: &[TestKey<'_>]) -> Iam {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "us-east-1").unwrap();
        let root = Credential {
            access_key: "root".into(),
            secret_key: "root-secret".into(),
        };
        let iam = Iam::new(root);
        for (id, buckets, expires, enabled) in records {
            let buckets = buckets.iter().map(|(b, m)| (b.to_string(), *m)).collect();
            let mut r =
                new_access_key_record(&iam, id, "secret-of-key", buckets, *expires, String::new());
            r.enabled = *enabled;
            store.put_access_key(&r).unwrap();
        }
        iam.reload(&store).unwrap();
        iam
    }

    #[test]
    fn scoped_keys_are_limited_to_their_buckets_and_modes() {
        use AccessMode::*;
        use Operation as O;
        let iam = iam_with(&[
            ("rw", vec![("a", ReadWrite), ("src", ReadOnly)], None, true),
            ("ro", vec![("a", ReadOnly)], None, true),
            ("wo", vec![("a", WriteOnly)], None, true),
            ("off", vec![("a", ReadWrite)], None, false),
            ("old", vec![("a", ReadWrite)], Some(1), true),
        ]);
        assert_eq!(iam.secret_key("rw").as_deref(), Some("secret-of-key"));
        assert_eq!(iam.secret_key("off"), None);
        assert_eq!(iam.secret_key("old"), None);
        assert_eq!(iam.secret_key("root").as_deref(), Some("root-secret"));
        let ok = |k: &str, op: O, b: Option<&str>| iam.authorize(k, &op, b, None).is_ok();
        assert!(ok("root", O::CreateBucket, Some("z")));
        for k in ["rw", "ro", "wo"] {
            assert!(ok(k, O::ListBuckets, None));
            assert!(ok(k, O::HeadBucket, Some("a")));
            assert!(!ok(k, O::HeadBucket, Some("b")));
            assert!(!ok(k, O::CreateBucket, Some("a")));
            assert!(!ok(k, O::DeleteBucket, Some("a")));
            assert!(!ok(k, O::GetObject, Some("b")));
            assert!(!ok(k, O::PutObject, Some("b")));
        }
        assert!(ok("rw", O::GetObject, Some("a")) && ok("rw", O::PutObject, Some("a")));
        assert!(ok("ro", O::GetObject, Some("a")) && ok("ro", O::ListObjectsV2, Some("a")));
        for op in [
            O::PutObject,
            O::DeleteObject,
            O::DeleteObjects,
            O::UploadPart,
        ] {
            assert!(!ok("ro", op.clone(), Some("a")));
            assert!(ok("wo", op, Some("a")));
        }
        for op in [O::GetObject, O::HeadObject, O::ListObjects, O::ListParts] {
            assert!(!ok("wo", op, Some("a")));
        }
        assert!(!ok("off", O::ListBuckets, None));
        assert!(!ok("old", O::ListBuckets, None));
        let copy = |k: &str, dst: &str, src: &str| {
            iam.authorize(k, &O::CopyObject, Some(dst), Some(src))
                .is_ok()
        };
        assert!(copy("rw", "a", "src"));
        assert!(!copy("rw", "src", "a"));
        assert!(!copy("rw", "a", "b"));
        assert!(!copy("wo", "a", "a"));
        assert!(!copy("ro", "a", "a"));
        assert_eq!(iam.bucket_scope("ro"), Some(vec!["a".to_string()]));
        assert_eq!(iam.bucket_scope("root"), None);
    }
}
