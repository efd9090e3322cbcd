//! The RocksDB key space of one drive. Keys sort so that a bucket's objects come in key order
//! and, within a key, versions newest first; a listing is then a single range scan.
//!
//! Object keys may contain any byte, including 0x00, so they are escaped: 0x00 becomes
//! 0x00 0xFF and a key ends with 0x00 0x00. The escape keeps byte order and prefix relations.

pub const BUCKET: u8 = b'B';
pub const VERSION: u8 = b'O';
pub const UPLOAD: u8 = b'U';
pub const PART: u8 = b'P';
/// Data files to remove once a record that dropped them is durable.
pub const GARBAGE: u8 = b'G';
/// A bucket's policy document.
pub const POLICY: u8 = b'Y';
/// A bucket's CORS configuration document.
pub const CORS: u8 = b'R';
/// A bucket's lifecycle configuration document.
pub const LIFECYCLE: u8 = b'L';
/// Scoped access keys, by access key id (global metadata).
pub const ACCESS_KEY: u8 = b'K';
/// A cluster lock's newest fencing token on this drive, by locked resource (never listed).
pub const FENCE: u8 = b'F';

/// The fence record of a locked resource (`bucket/key`, or a bucket's `name/`).
pub fn fence(resource: &str) -> Vec<u8> {
    let mut k = vec![FENCE];
    k.extend_from_slice(resource.as_bytes());
    k
}

pub fn access_key(id: &str) -> Vec<u8> {
    let mut k = vec![ACCESS_KEY];
    k.extend_from_slice(id.as_bytes());
    k
}

pub fn bucket(name: &str) -> Vec<u8> {
    let mut k = vec![BUCKET];
    k.extend_from_slice(name.as_bytes());
    k
}

/// A bucket's document of `kind` (POLICY, CORS, LIFECYCLE).
pub fn bucket_document(kind: u8, bucket: &str) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(bucket.as_bytes());
    k
}

fn push_escaped(out: &mut Vec<u8>, key: &str) {
    for &b in key.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
}

fn unescape(bytes: &[u8]) -> Option<(String, usize)> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0 {
            match bytes.get(i + 1)? {
                0xFF => out.push(0),
                0x00 => return Some((String::from_utf8(out).ok()?, i + 2)),
                _ => return None,
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    None
}

/// Start of every key of `kind` in `bucket`.
pub fn bucket_prefix(kind: u8, bucket: &str) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k
}

/// Every key of `kind` in `bucket` that starts with `prefix`.
pub fn key_prefix(kind: u8, bucket: &str, prefix: &str) -> Vec<u8> {
    let mut k = bucket_prefix(kind, bucket);
    push_escaped(&mut k, prefix);
    k
}

/// All entries (versions or uploads) of exactly `key`.
pub fn exact_key(kind: u8, bucket: &str, key: &str) -> Vec<u8> {
    let mut k = key_prefix(kind, bucket, key);
    k.extend_from_slice(&[0, 0]);
    k
}

/// The first position after every entry of `key` (used to skip older versions).
pub fn after_key(kind: u8, bucket: &str, key: &str) -> Vec<u8> {
    let mut k = key_prefix(kind, bucket, key);
    k.extend_from_slice(&[0, 1]);
    k
}

/// Versions sort newest first: inverted modification time, then the version id.
pub fn version(bucket: &str, key: &str, mod_time_ns: u64, version_id: Option<&str>) -> Vec<u8> {
    let mut k = exact_key(VERSION, bucket, key);
    k.extend_from_slice(&(u64::MAX - mod_time_ns).to_be_bytes());
    k.extend_from_slice(version_id.unwrap_or("null").as_bytes());
    k
}

pub fn upload(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut k = exact_key(UPLOAD, bucket, key);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

pub fn part_prefix(upload_id: &str) -> Vec<u8> {
    let mut k = vec![PART];
    k.extend_from_slice(upload_id.as_bytes());
    k.push(0);
    k
}

pub fn part(upload_id: &str, number: u32) -> Vec<u8> {
    let mut k = part_prefix(upload_id);
    k.extend_from_slice(&number.to_be_bytes());
    k
}

pub fn garbage(data_id: &str) -> Vec<u8> {
    let mut k = vec![GARBAGE];
    k.extend_from_slice(data_id.as_bytes());
    k
}

/// The object key of a version or upload key of `bucket` (the part after the bucket).
pub fn decode_object_key(kind: u8, bucket: &str, raw: &[u8]) -> Option<String> {
    let start = bucket_prefix(kind, bucket);
    let rest = raw.strip_prefix(start.as_slice())?;
    unescape(rest).map(|(key, _)| key)
}

/// The smallest byte string greater than every string starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_their_raw_bytes_and_versions_newest_first() {
        let mut keys = ["a", "a\0b", "ab", "a/", "b", "\u{e9}", "a\0"];
        let mut encoded: Vec<Vec<u8>> = keys.iter().map(|k| version("bk", k, 10, None)).collect();
        keys.sort();
        encoded.sort();
        let decoded: Vec<String> = encoded
            .iter()
            .map(|e| decode_object_key(VERSION, "bk", e).unwrap())
            .collect();
        assert_eq!(
            decoded,
            keys.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        );
        assert!(version("bk", "k", 20, Some("v2")) < version("bk", "k", 10, Some("v1")));
        assert!(after_key(VERSION, "bk", "k") > version("bk", "k", 0, Some("zzzz")));
        assert!(after_key(VERSION, "bk", "k") < version("bk", "k\0", 0, None));
    }

    #[test]
    fn prefix_end_bounds_a_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
    }
}
