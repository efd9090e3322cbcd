//! Identities that may sign requests. For now the root credential only: from the
//! environment, or generated on first start and kept in the first drive. Scoped access keys
//! and bucket policies arrive with the identity issue and slot in behind [`Iam`].

pub mod policy;

use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::auth::SecretLookup;

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

/// The identity store consulted by authentication.
pub struct Iam {
    root: Credential,
}

impl Iam {
    pub fn new(root: Credential) -> Iam {
        Iam { root }
    }

    pub fn root_access_key(&self) -> &str {
        &self.root.access_key
    }
}

impl SecretLookup for Iam {
    fn secret_key(&self, access_key: &str) -> Option<String> {
        let same: bool = self
            .root
            .access_key
            .as_bytes()
            .ct_eq(access_key.as_bytes())
            .into();
        same.then(|| self.root.secret_key.clone())
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
}
