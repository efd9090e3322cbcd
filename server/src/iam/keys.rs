//! Scoped access keys: the record kept in the metadata store, how its secret is sealed at
//! rest, and how a key's buckets and modes are written on the command line.
//!
//! Secrets are sealed with ChaCha20-Poly1305 under a key derived (HKDF-SHA256) from the root
//! secret key, with the access key id as associated data so a sealed secret cannot be moved
//! to another record. Changing the root password therefore makes every existing access key
//! unreadable: such keys stop authenticating and must be re-created (or rotated) under the
//! new root credential. That is accepted for now; a separately stored master key can lift it.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

pub use crate::store::record::{AccessKeyRecord, AccessMode};

const NONCE_LEN: usize = 12;
const HKDF_SALT: &[u8] = b"coffer access-key secrets";
const HKDF_INFO: &[u8] = b"chacha20poly1305 v1";

/// Seals and opens access key secrets. Its Debug output hides the key.
pub struct SecretSealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSealer").finish_non_exhaustive()
    }
}

impl SecretSealer {
    /// The sealer of a deployment whose root secret key is `root_secret`.
    pub fn from_root_secret(root_secret: &str) -> SecretSealer {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), root_secret.as_bytes());
        let mut okm = [0u8; 32];
        hk.expand(HKDF_INFO, &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        SecretSealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&okm)),
        }
    }

    /// Nonce followed by the ciphertext of `secret`, bound to `access_key`.
    pub fn seal(&self, access_key: &str, secret: &str) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: access_key.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encryption of a short secret cannot fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// The secret sealed in `sealed` for `access_key`, or None when it was sealed under
    /// another root secret (or for another key, or is damaged).
    pub fn open(&self, access_key: &str, sealed: &[u8]) -> Option<String> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: access_key.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

impl std::str::FromStr for AccessMode {
    type Err = String;

    fn from_str(s: &str) -> Result<AccessMode, String> {
        match s.to_ascii_lowercase().as_str() {
            "readwrite" | "rw" => Ok(AccessMode::ReadWrite),
            "readonly" | "ro" => Ok(AccessMode::ReadOnly),
            "writeonly" | "wo" => Ok(AccessMode::WriteOnly),
            _ => Err(format!(
                "unknown mode {s:?} (ReadWrite, ReadOnly or WriteOnly)"
            )),
        }
    }
}

impl AccessMode {
    pub fn can_read(self) -> bool {
        self != AccessMode::WriteOnly
    }

    pub fn can_write(self) -> bool {
        self != AccessMode::ReadOnly
    }
}

/// Parses `NAME[:MODE]` (mode ReadWrite when left out), as `admin key create --bucket` takes it.
pub fn parse_bucket_grant(s: &str) -> Result<(String, AccessMode), String> {
    let (name, mode) = match s.split_once(':') {
        Some((n, m)) => (n, m.parse()?),
        None => (s, AccessMode::ReadWrite),
    };
    if name.is_empty() {
        return Err("a bucket name is needed".into());
    }
    Ok((name.to_string(), mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_opens_only_with_the_same_root_and_key_id() {
        let sealer = SecretSealer::from_root_secret("root-secret-1");
        let sealed = sealer.seal("AKID", "s3cr3t-value");
        assert!(!sealed.windows(12).any(|w| w == b"s3cr3t-value"));
        assert_eq!(
            sealer.open("AKID", &sealed).as_deref(),
            Some("s3cr3t-value")
        );
        assert_eq!(sealer.open("OTHER", &sealed), None);
        let other = SecretSealer::from_root_secret("root-secret-2");
        assert_eq!(other.open("AKID", &sealed), None);
        assert_eq!(sealer.open("AKID", &sealed[..5]), None);
        // Two seals of one secret differ (fresh nonce).
        assert_ne!(sealer.seal("AKID", "x"), sealer.seal("AKID", "x"));
    }

    #[test]
    fn bucket_grants_parse() {
        assert_eq!(
            parse_bucket_grant("photos").unwrap(),
            ("photos".into(), AccessMode::ReadWrite)
        );
        assert_eq!(
            parse_bucket_grant("logs:ReadOnly").unwrap(),
            ("logs".into(), AccessMode::ReadOnly)
        );
        assert_eq!(
            parse_bucket_grant("in:writeonly").unwrap().1,
            AccessMode::WriteOnly
        );
        assert!(parse_bucket_grant("x:admin").is_err());
        assert!(parse_bucket_grant(":ReadOnly").is_err());
    }
}
