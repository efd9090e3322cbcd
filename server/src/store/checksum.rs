//! Content digests computed while a body streams in: the MD5 behind the ETag, the optional
//! `x-amz-checksum-*` algorithm a client asked for, and the SHA-256 a signed payload promises.
//! Pure computation: no I/O, no S3 headers (the S3 layer maps names to algorithms).

use base64::Engine;
use md5::Digest as _;
use serde::{Deserialize, Serialize};

/// The checksum algorithms S3 supports for `x-amz-checksum-*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// The name S3 uses in `x-amz-checksum-algorithm` (upper case).
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// The lower-case suffix of the `x-amz-checksum-<suffix>` header.
    pub fn header_suffix(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "crc32",
            ChecksumAlgorithm::Crc32c => "crc32c",
            ChecksumAlgorithm::Crc64Nvme => "crc64nvme",
            ChecksumAlgorithm::Sha1 => "sha1",
            ChecksumAlgorithm::Sha256 => "sha256",
        }
    }

    pub fn parse(name: &str) -> Option<ChecksumAlgorithm> {
        ChecksumAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Length of the raw digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    /// Whether a multipart object's checksum is a checksum of the whole content (CRC64NVME,
    /// computed by combining part CRCs) rather than a checksum of the part checksums.
    pub fn full_object_for_multipart(self) -> bool {
        matches!(self, ChecksumAlgorithm::Crc64Nvme)
    }
}

/// A running checksum of one algorithm.
pub enum ChecksumHasher {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc64fast_nvme::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl ChecksumHasher {
    pub fn new(algorithm: ChecksumAlgorithm) -> ChecksumHasher {
        match algorithm {
            ChecksumAlgorithm::Crc32 => ChecksumHasher::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => ChecksumHasher::Crc32c(0),
            ChecksumAlgorithm::Crc64Nvme => {
                ChecksumHasher::Crc64Nvme(crc64fast_nvme::Digest::new())
            }
            ChecksumAlgorithm::Sha1 => ChecksumHasher::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => ChecksumHasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            ChecksumHasher::Crc32(h) => h.update(data),
            ChecksumHasher::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            ChecksumHasher::Crc64Nvme(h) => h.write(data),
            ChecksumHasher::Sha1(h) => h.update(data),
            ChecksumHasher::Sha256(h) => h.update(data),
        }
    }

    /// The raw digest bytes (big-endian for CRCs, as S3 encodes them before base64).
    pub fn finish(self) -> Vec<u8> {
        match self {
            ChecksumHasher::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            ChecksumHasher::Crc32c(c) => c.to_be_bytes().to_vec(),
            ChecksumHasher::Crc64Nvme(h) => h.sum64().to_be_bytes().to_vec(),
            ChecksumHasher::Sha1(h) => h.finalize().to_vec(),
            ChecksumHasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// What to compute over a body besides its MD5.
#[derive(Clone, Copy, Debug, Default)]
pub struct DigestRequest {
    pub checksum: Option<ChecksumAlgorithm>,
    pub sha256: bool,
}

/// The digests of a body that was fully received.
#[derive(Clone, Debug)]
pub struct BodyDigests {
    pub size: u64,
    pub md5: [u8; 16],
    pub checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
    pub sha256: Option<[u8; 32]>,
}

/// Accumulates [`BodyDigests`] chunk by chunk.
pub struct BodyHasher {
    size: u64,
    md5: md5::Md5,
    checksum: Option<(ChecksumAlgorithm, ChecksumHasher)>,
    sha256: Option<sha2::Sha256>,
}

impl BodyHasher {
    pub fn new(request: DigestRequest) -> BodyHasher {
        BodyHasher {
            size: 0,
            md5: md5::Md5::new(),
            checksum: request.checksum.map(|a| (a, ChecksumHasher::new(a))),
            sha256: request.sha256.then(sha2::Sha256::new),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        self.md5.update(data);
        if let Some((_, h)) = &mut self.checksum {
            h.update(data);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
    }

    pub fn finish(self) -> BodyDigests {
        BodyDigests {
            size: self.size,
            md5: self.md5.finalize().into(),
            checksum: self.checksum.map(|(a, h)| (a, h.finish())),
            sha256: self.sha256.map(|h| h.finalize().into()),
        }
    }
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn from_base64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// The S3 multipart ETag: MD5 of the concatenated binary part MD5s, then `-N`.
pub fn multipart_etag(part_etags_hex: &[&str]) -> Option<String> {
    let mut md5 = md5::Md5::new();
    for etag in part_etags_hex {
        md5.update(hex::decode(etag).ok()?);
    }
    Some(format!(
        "{}-{}",
        hex::encode(md5.finalize()),
        part_etags_hex.len()
    ))
}

/// The COMPOSITE multipart checksum: the checksum of the concatenated raw part checksums.
pub fn composite_checksum(algorithm: ChecksumAlgorithm, parts: &[Vec<u8>]) -> Vec<u8> {
    let mut h = ChecksumHasher::new(algorithm);
    for p in parts {
        h.update(p);
    }
    h.finish()
}

/// CRC-64/NVME of `a ‖ b` from the CRCs of `a` and `b` and the length of `b`, so a multipart
/// object gets a whole-content CRC64NVME without reading its parts again. Standard GF(2)
/// matrix method (zlib's crc32_combine), specialised to the reflected NVMe polynomial.
pub fn crc64nvme_combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    const POLY: u64 = 0x9a6c_9329_ac4b_c9b5; // reflected form of 0xad93d23594c93659
    fn times(mat: &[u64; 64], mut vec: u64) -> u64 {
        let mut sum = 0;
        let mut i = 0;
        while vec != 0 {
            if vec & 1 == 1 {
                sum ^= mat[i];
            }
            vec >>= 1;
            i += 1;
        }
        sum
    }
    fn square(out: &mut [u64; 64], mat: &[u64; 64]) {
        for (n, o) in out.iter_mut().enumerate() {
            *o = times(mat, mat[n]);
        }
    }
    if len_b == 0 {
        return crc_a;
    }
    let mut odd = [0u64; 64];
    let mut even = [0u64; 64];
    odd[0] = POLY;
    let mut row = 1u64;
    for o in odd.iter_mut().skip(1) {
        *o = row;
        row <<= 1;
    }
    square(&mut even, &odd);
    square(&mut odd, &even);
    let mut crc = crc_a;
    let mut len = len_b;
    loop {
        square(&mut even, &odd);
        if len & 1 == 1 {
            crc = times(&even, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
        square(&mut odd, &even);
        if len & 1 == 1 {
            crc = times(&odd, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
    }
    crc ^ crc_b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(a: ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
        let mut h = ChecksumHasher::new(a);
        h.update(data);
        h.finish()
    }

    #[test]
    fn crc64nvme_combine_matches_direct_crc() {
        let a = b"hello, erasure-coded ".repeat(37);
        let b = b"world of objects".repeat(101);
        let whole = [a.clone(), b.clone()].concat();
        let crc = |d: &[u8]| {
            u64::from_be_bytes(digest(ChecksumAlgorithm::Crc64Nvme, d).try_into().unwrap())
        };
        assert_eq!(
            crc64nvme_combine(crc(&a), crc(&b), b.len() as u64),
            crc(&whole)
        );
    }

    #[test]
    fn known_checksums_of_hello_world() {
        // Values as S3 returns them for the body "hello world".
        let data = b"hello world";
        assert_eq!(base64(&digest(ChecksumAlgorithm::Crc32, data)), "DUoRhQ==");
        assert_eq!(base64(&digest(ChecksumAlgorithm::Crc32c, data)), "yZRlqg==");
        assert_eq!(
            base64(&digest(ChecksumAlgorithm::Sha256, data)),
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
    }

    #[test]
    fn multipart_etag_is_md5_of_binary_md5s() {
        let e1 = hex::encode(md5::Md5::digest(b"a"));
        let e2 = hex::encode(md5::Md5::digest(b"b"));
        let mut joined = hex::decode(&e1).unwrap();
        joined.extend(hex::decode(&e2).unwrap());
        let expected = format!("{}-2", hex::encode(md5::Md5::digest(&joined)));
        assert_eq!(multipart_etag(&[&e1, &e2]).unwrap(), expected);
        assert!(multipart_etag(&["zz"]).is_none());
    }
}
