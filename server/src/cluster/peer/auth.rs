//! Authentication of peer RPC requests: what a request signs, how the receiving server checks
//! it, and the set of nonces it already accepted.
//!
//! Every request carries `x-coffer-peer: v4:NODE:TIME:NONCE:BODY:MAC`, where `MAC` is an
//! HMAC-SHA256 under the cluster secret of the node, the time (Unix seconds), a random 128-bit
//! nonce, the method, the path with its query, and `BODY`: the hex SHA-256 of the whole body,
//! or `trailer` for a body that streams. The receiver refuses a wrong MAC, a time more than
//! [`MAX_SKEW_SECS`] off, a nonce it accepted before ([`SeenNonces`]), and a body whose digest
//! is not the signed one. So a captured request can be neither replayed nor given another body.
//!
//! A streamed body (a shard file) cannot be hashed before it is sent: its request signs
//! `trailer`, and the stream ends with the commit trailer `x-coffer-commit: DIGEST:SEAL`, where
//! `SEAL` is an HMAC of the request's own MAC and the digest of the bytes sent ([`StreamSeal`]).
//! The receiver hashes what it receives and installs the file only if the trailer is sealed for
//! this request and names that digest ([`check_seal`]). A replayed stream is refused at its
//! headers (its nonce was seen); an altered or truncated one, or one whose trailer was taken
//! from another request, never commits.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use http::StatusCode;
use sha2::{Digest, Sha256};

/// How far a peer's clock may be off; also how long a nonce is remembered.
pub const MAX_SKEW_SECS: u64 = 300;
/// The version of the signed message; a server of another build is told so.
/// v3: records are stamped (store/stamp.rs); a server of an earlier build would store and
/// read them as it did before stamps, so the builds must not talk.
/// v4: lock votes carry fencing tokens and grants answer with the voter's clock
/// ([`super::LockGrant`]); record batches may carry a fence (`WireOp::Fence`).
/// v5: `records/lookup` reads a record and a page in one call ([`super::LookupRequest`]).
const VERSION: &str = "v5";
/// The `BODY` of a request whose body streams and whose digest comes in the commit trailer.
const TRAILER: &str = "trailer";
/// At most this many nonces are remembered. Only requests whose MAC verified are remembered,
/// so only a holder of the cluster secret can fill the set; the bound keeps a runaway (or
/// compromised) peer from growing a server's memory without limit. When the set is full a
/// server refuses new requests (503) rather than forget a nonce still inside its window, which
/// would let that request be replayed. A nonce is kept until its signed second leaves the
/// window, about [`MAX_SKEW_SECS`] with synchronized clocks, so 2^21 of them (~50 MB at ~24
/// bytes each) allow about 7,000 peer requests a second, sustained.
const MAX_SEEN_NONCES: usize = 1 << 21;

/// Why a peer request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAuthError {
    #[error("malformed peer authentication")]
    Malformed,
    #[error("peer authentication of another version (a server of another build?)")]
    OtherVersion,
    #[error("peer clock is more than five minutes off")]
    OutsideWindow,
    #[error("wrong cluster secret")]
    WrongMac,
    #[error("replayed peer request (its nonce was already used)")]
    Replayed,
    #[error("too many peer requests in the replay window")]
    TooManyNonces,
    #[error("peer request body does not match its signed digest")]
    BodyMismatch,
    #[error("peer request body is not sent the way its route takes it (whole or streamed)")]
    WrongBodyKind,
    #[error("shard stream ended without a valid commit seal")]
    BadSeal,
    #[error("shard stream does not match its sealed digest")]
    StreamMismatch,
}

impl PeerAuthError {
    /// The status the caller gets: refused, except when this server is too busy to remember
    /// another nonce (the request may be retried).
    pub fn status(&self) -> StatusCode {
        match self {
            PeerAuthError::TooManyNonces => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::FORBIDDEN,
        }
    }
}

/// What a request signs about its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedBody {
    /// The SHA-256 of the whole body.
    Whole([u8; 32]),
    /// The body streams; its digest comes sealed in the commit trailer.
    Trailer,
}

impl SignedBody {
    /// The digest of a whole body.
    pub fn of(body: &[u8]) -> SignedBody {
        SignedBody::Whole(Sha256::digest(body).into())
    }

    fn encode(&self) -> String {
        match self {
            SignedBody::Whole(d) => hex::encode(d),
            SignedBody::Trailer => TRAILER.to_string(),
        }
    }

    fn decode(s: &str) -> Result<SignedBody, PeerAuthError> {
        if s == TRAILER {
            return Ok(SignedBody::Trailer);
        }
        let mut d = [0u8; 32];
        hex::decode_to_slice(s, &mut d).map_err(|_| PeerAuthError::Malformed)?;
        Ok(SignedBody::Whole(d))
    }
}

/// A request whose MAC and time were checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified<'a> {
    pub node: &'a str,
    pub time: u64,
    pub nonce: u128,
    pub body: SignedBody,
    /// The request's MAC: a commit seal is bound to it.
    mac: [u8; 32],
}

impl Verified<'_> {
    /// Checks a whole body against the signed digest.
    pub fn check_body(&self, body: &[u8]) -> Result<(), PeerAuthError> {
        match self.body {
            SignedBody::Whole(d) if SignedBody::of(body) == SignedBody::Whole(d) => Ok(()),
            SignedBody::Whole(_) => Err(PeerAuthError::BodyMismatch),
            SignedBody::Trailer => Err(PeerAuthError::WrongBodyKind),
        }
    }

    /// The key that checks this request's commit seal, for a request that signed
    /// [`SignedBody::Trailer`].
    pub fn stream_seal(&self, secret: &[u8]) -> Result<StreamSeal, PeerAuthError> {
        match self.body {
            SignedBody::Trailer => Ok(StreamSeal {
                secret: secret.to_vec(),
                request_mac: self.mac,
            }),
            SignedBody::Whole(_) => Err(PeerAuthError::WrongBodyKind),
        }
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn hmac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

fn request_mac(
    secret: &[u8],
    node: &str,
    time: u64,
    nonce: u128,
    method: &str,
    path: &str,
    body: &SignedBody,
) -> [u8; 32] {
    let mut m = hmac(secret);
    // No field holds a newline (HTTP forbids them in methods, paths and header values), so
    // the fields cannot be shifted into one another.
    m.update(
        format!(
            "coffer-peer-{VERSION}\n{node}\n{time}\n{nonce:032x}\n{method}\n{path}\n{}",
            body.encode()
        )
        .as_bytes(),
    );
    m.finalize().into_bytes().into()
}

/// The `x-coffer-peer` value for a request from `node` at `time` with `nonce`.
pub fn sign_at(
    secret: &[u8],
    node: &str,
    time: u64,
    nonce: u128,
    method: &str,
    path: &str,
    body: SignedBody,
) -> String {
    let mac = request_mac(secret, node, time, nonce, method, path, &body);
    format!(
        "{VERSION}:{node}:{time}:{nonce:032x}:{}:{}",
        body.encode(),
        hex::encode(mac)
    )
}

/// The `x-coffer-peer` value for a request from `node` sent now, with a fresh random nonce;
/// and, for a streamed body, the seal of its commit trailer.
pub fn sign(
    secret: &[u8],
    node: &str,
    method: &str,
    path: &str,
    body: SignedBody,
) -> (String, Option<StreamSeal>) {
    let (time, nonce) = (unix_now(), rand::random::<u128>());
    let seal = (body == SignedBody::Trailer).then(|| StreamSeal {
        secret: secret.to_vec(),
        request_mac: request_mac(secret, node, time, nonce, method, path, &body),
    });
    (sign_at(secret, node, time, nonce, method, path, body), seal)
}

/// Checks the MAC and the time of an `x-coffer-peer` value at `now`. The nonce is checked
/// apart ([`SeenNonces::admit`]), once the MAC proved the request came from the cluster.
pub fn verify<'a>(
    secret: &[u8],
    header: &'a str,
    method: &str,
    path: &str,
    now: u64,
) -> Result<Verified<'a>, PeerAuthError> {
    let rest = match header.split_once(':') {
        Some((VERSION, rest)) => rest,
        // `vN:` of another build, or the unversioned `NODE:TIME:MAC` of the builds before the
        // version field: all servers of a cluster must run one build, so say so.
        Some((v, _)) if v.len() > 1 && v[1..].bytes().all(|b| b.is_ascii_digit()) => {
            return Err(PeerAuthError::OtherVersion)
        }
        _ if header.split(':').count() == 3 => return Err(PeerAuthError::OtherVersion),
        _ => return Err(PeerAuthError::Malformed),
    };
    // The node name comes first and is the only field that might hold a colon.
    let mut parts = rest.rsplitn(5, ':');
    let (Some(given), Some(body), Some(nonce), Some(time), Some(node)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(PeerAuthError::Malformed);
    };
    let time: u64 = time.parse().map_err(|_| PeerAuthError::Malformed)?;
    if nonce.len() != 32 {
        return Err(PeerAuthError::Malformed);
    }
    let nonce = u128::from_str_radix(nonce, 16).map_err(|_| PeerAuthError::Malformed)?;
    let body = SignedBody::decode(body)?;
    let mut given_mac = [0u8; 32];
    hex::decode_to_slice(given, &mut given_mac).map_err(|_| PeerAuthError::Malformed)?;
    if time.abs_diff(now) > MAX_SKEW_SECS {
        return Err(PeerAuthError::OutsideWindow);
    }
    let mac = request_mac(secret, node, time, nonce, method, path, &body);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&mac[..], &given_mac[..])) {
        return Err(PeerAuthError::WrongMac);
    }
    Ok(Verified {
        node,
        time,
        nonce,
        body,
        mac,
    })
}

/// Seals (sender) or checks (receiver) the digest of a streamed body in the commit trailer,
/// bound to the one request that streamed it: a seal is the HMAC of the request's MAC (which
/// covers its nonce, path and time) and the digest, so no other request can carry it.
pub struct StreamSeal {
    secret: Vec<u8>,
    request_mac: [u8; 32],
}

impl StreamSeal {
    fn mac(&self, digest: &[u8; 32]) -> [u8; 32] {
        let mut m = hmac(&self.secret);
        m.update(format!("coffer-peer-{VERSION}-commit\n").as_bytes());
        m.update(&self.request_mac);
        m.update(digest);
        m.finalize().into_bytes().into()
    }

    /// The commit trailer's value for a stream of bytes whose SHA-256 is `digest`.
    pub fn seal(&self, digest: &[u8; 32]) -> String {
        format!("{}:{}", hex::encode(digest), hex::encode(self.mac(digest)))
    }

    /// Checks a commit trailer against the SHA-256 of the bytes received.
    pub fn check(&self, trailer: &str, received: &[u8; 32]) -> Result<(), PeerAuthError> {
        let (digest, given) = trailer.split_once(':').ok_or(PeerAuthError::BadSeal)?;
        let (mut d, mut g) = ([0u8; 32], [0u8; 32]);
        hex::decode_to_slice(digest, &mut d).map_err(|_| PeerAuthError::BadSeal)?;
        hex::decode_to_slice(given, &mut g).map_err(|_| PeerAuthError::BadSeal)?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&self.mac(&d)[..], &g[..])) {
            return Err(PeerAuthError::BadSeal);
        }
        if &d != received {
            return Err(PeerAuthError::StreamMismatch);
        }
        Ok(())
    }
}

/// The nonces of the requests accepted within the window, by their signed second.
///
/// A nonce is kept as long as a request of its time passes the time check, and no longer:
/// entries older than the window are dropped as time goes on. The horizon only moves forward,
/// and any request dated before it is refused here, so a wall clock stepping back cannot bring
/// a forgotten nonce's request back into the window.
#[derive(Default)]
pub struct SeenNonces {
    inner: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    by_second: BTreeMap<u64, HashSet<u128>>,
    len: usize,
    /// Requests dated before this are refused; nonces before it are forgotten.
    horizon: u64,
}

impl SeenNonces {
    /// Remembers the nonce of a request whose MAC and time were checked at `now`; refuses it
    /// if the nonce was seen before (a replay), or when too many are remembered.
    pub fn admit(&self, time: u64, nonce: u128, now: u64) -> Result<(), PeerAuthError> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let seen = &mut *guard;
        seen.horizon = seen.horizon.max(now.saturating_sub(MAX_SKEW_SECS));
        while let Some(oldest) = seen.by_second.first_entry() {
            if *oldest.key() >= seen.horizon {
                break;
            }
            seen.len -= oldest.remove().len();
        }
        if time < seen.horizon {
            return Err(PeerAuthError::OutsideWindow);
        }
        if seen
            .by_second
            .get(&time)
            .is_some_and(|s| s.contains(&nonce))
        {
            return Err(PeerAuthError::Replayed);
        }
        if seen.len >= MAX_SEEN_NONCES {
            return Err(PeerAuthError::TooManyNonces);
        }
        seen.by_second.entry(time).or_default().insert(nonce);
        seen.len += 1;
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"secret";
    const LOCK: &str = "/peer/v1/lock";

    fn signed(body: &[u8]) -> String {
        sign(SECRET, "node-1", "POST", LOCK, SignedBody::of(body)).0
    }

    /// What the receiving server does with a request with a whole body.
    fn accept(
        seen: &SeenNonces,
        header: &str,
        method: &str,
        path: &str,
        body: &[u8],
        now: u64,
    ) -> Result<(), PeerAuthError> {
        let v = verify(SECRET, header, method, path, now)?;
        seen.admit(v.time, v.nonce, now)?;
        v.check_body(body)
    }

    #[test]
    fn signatures_verify_only_with_the_same_secret_method_and_path() {
        let h = signed(b"body");
        let now = unix_now();
        let v = verify(SECRET, &h, "POST", LOCK, now).unwrap();
        assert_eq!(v.node, "node-1");
        assert_eq!(
            verify(b"other", &h, "POST", LOCK, now),
            Err(PeerAuthError::WrongMac)
        );
        assert_eq!(
            verify(SECRET, &h, "GET", LOCK, now),
            Err(PeerAuthError::WrongMac)
        );
        assert_eq!(
            verify(SECRET, &h, "POST", "/peer/v1/unlock", now),
            Err(PeerAuthError::WrongMac)
        );
        assert_eq!(
            verify(SECRET, "garbage", "POST", LOCK, now),
            Err(PeerAuthError::Malformed)
        );
    }

    #[test]
    fn a_request_of_another_build_is_refused_as_such() {
        let now = unix_now();
        let earlier = format!("node-1:{now}:{}", "0".repeat(64));
        assert_eq!(
            verify(SECRET, &earlier, "POST", LOCK, now),
            Err(PeerAuthError::OtherVersion)
        );
        // v2: the build before stamped records; v3: before fenced locks; v4: before lookups.
        for other in ["v2", "v3", "v4", "v6"] {
            let header = format!("{other}:node-1:{now}:x:y:z:w");
            assert_eq!(
                verify(SECRET, &header, "POST", LOCK, now),
                Err(PeerAuthError::OtherVersion)
            );
        }
    }

    #[test]
    fn signature_covers_the_query() {
        let path = "/peer/v1/drive/0/data/ab?offset=0";
        let (h, _) = sign(SECRET, "n", "GET", path, SignedBody::of(b""));
        let now = unix_now();
        assert!(verify(SECRET, &h, "GET", path, now).is_ok());
        assert_eq!(
            verify(SECRET, &h, "GET", "/peer/v1/drive/0/data/ab?offset=9", now),
            Err(PeerAuthError::WrongMac)
        );
    }

    #[test]
    fn node_names_with_colons_verify() {
        let (h, _) = sign(SECRET, "[::1]:9001", "GET", LOCK, SignedBody::of(b""));
        let v = verify(SECRET, &h, "GET", LOCK, unix_now()).unwrap();
        assert_eq!(v.node, "[::1]:9001");
    }

    #[test]
    fn replayed_peer_request_is_refused() {
        let seen = SeenNonces::default();
        let h = signed(b"lock a");
        let now = unix_now();
        assert_eq!(accept(&seen, &h, "POST", LOCK, b"lock a", now), Ok(()));
        assert_eq!(
            accept(&seen, &h, "POST", LOCK, b"lock a", now),
            Err(PeerAuthError::Replayed)
        );
        // Later within the window too.
        assert_eq!(
            accept(&seen, &h, "POST", LOCK, b"lock a", now + MAX_SKEW_SECS),
            Err(PeerAuthError::Replayed)
        );
        // Another request of the same sender, same second, passes: nonces differ.
        assert_eq!(
            accept(&seen, &signed(b"lock a"), "POST", LOCK, b"lock a", now),
            Ok(())
        );
    }

    #[test]
    fn peer_request_with_altered_body_is_refused() {
        let seen = SeenNonces::default();
        let h = signed(b"lock a");
        assert_eq!(
            accept(&seen, &h, "POST", LOCK, b"lock b", unix_now()),
            Err(PeerAuthError::BodyMismatch)
        );
        // A request that signed a stream may not come with a whole body, nor the reverse.
        let (streamed, _) = sign(SECRET, "node-1", "POST", LOCK, SignedBody::Trailer);
        assert_eq!(
            accept(&seen, &streamed, "POST", LOCK, b"lock b", unix_now()),
            Err(PeerAuthError::WrongBodyKind)
        );
        // The digest in the header cannot be changed to the altered body's.
        let altered = format!(
            "{}:{}:{}",
            h.rsplitn(3, ':').nth(2).unwrap(),
            hex::encode(Sha256::digest(b"lock b")),
            h.rsplit(':').next().unwrap()
        );
        assert_eq!(
            accept(&seen, &altered, "POST", LOCK, b"lock b", unix_now()),
            Err(PeerAuthError::WrongMac)
        );
    }

    #[test]
    fn peer_request_outside_time_window_is_refused() {
        let seen = SeenNonces::default();
        let now = unix_now();
        for time in [now - MAX_SKEW_SECS - 1, now + MAX_SKEW_SECS + 1] {
            let h = sign_at(SECRET, "n", time, 7, "POST", LOCK, SignedBody::of(b""));
            assert_eq!(
                accept(&seen, &h, "POST", LOCK, b"", now),
                Err(PeerAuthError::OutsideWindow)
            );
        }
        for time in [now - MAX_SKEW_SECS, now + MAX_SKEW_SECS] {
            let h = sign_at(SECRET, "n", time, 7, "POST", LOCK, SignedBody::of(b""));
            assert_eq!(accept(&seen, &h, "POST", LOCK, b"", now), Ok(()));
        }
    }

    #[test]
    fn nonces_are_forgotten_only_once_their_requests_are_out_of_the_window() {
        let seen = SeenNonces::default();
        let t = 1_000_000;
        seen.admit(t, 1, t).unwrap();
        seen.admit(t + 10, 2, t + 10).unwrap();
        assert_eq!(
            seen.admit(t, 1, t + MAX_SKEW_SECS),
            Err(PeerAuthError::Replayed)
        );
        assert_eq!(seen.len(), 2);
        // One second later the first request is out of the window: its nonce goes.
        assert_eq!(
            seen.admit(t + 10, 3, t + MAX_SKEW_SECS + 1),
            Ok(()),
            "a fresh nonce passes"
        );
        assert_eq!(seen.len(), 2);
        // A clock stepping back does not bring the forgotten request back.
        assert_eq!(seen.admit(t, 1, t), Err(PeerAuthError::OutsideWindow));
    }

    #[test]
    fn a_full_nonce_set_refuses_rather_than_grows() {
        let seen = SeenNonces::default();
        let t = 1_000_000;
        {
            let mut s = seen.inner.lock().unwrap();
            s.by_second
                .insert(t, (0..MAX_SEEN_NONCES as u128).collect::<HashSet<_>>());
            s.len = MAX_SEEN_NONCES;
        }
        let fresh = MAX_SEEN_NONCES as u128 + 1;
        assert_eq!(seen.admit(t, fresh, t), Err(PeerAuthError::TooManyNonces));
        assert_eq!(
            PeerAuthError::TooManyNonces.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        // A replay is still called one.
        assert_eq!(seen.admit(t, 5, t), Err(PeerAuthError::Replayed));
        // Once the window moves past them, the old nonces make room.
        assert_eq!(
            seen.admit(t + MAX_SKEW_SECS + 1, fresh, t + MAX_SKEW_SECS + 1),
            Ok(())
        );
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn stream_seals_bind_the_digest_to_one_request() {
        let path = "/peer/v1/drive/0/data/ab";
        let (h, seal) = sign(SECRET, "n", "PUT", path, SignedBody::Trailer);
        let seal = seal.expect("a streamed request has a seal");
        let v = verify(SECRET, &h, "PUT", path, unix_now()).unwrap();
        let check = v.stream_seal(SECRET).unwrap();
        let sent: [u8; 32] = Sha256::digest(b"shard bytes").into();
        let trailer = seal.seal(&sent);
        assert_eq!(check.check(&trailer, &sent), Ok(()));
        let other: [u8; 32] = Sha256::digest(b"other bytes").into();
        assert_eq!(
            check.check(&trailer, &other),
            Err(PeerAuthError::StreamMismatch)
        );
        assert_eq!(check.check("1", &sent), Err(PeerAuthError::BadSeal));
        // A trailer sealed for another request does not commit this one.
        let (_, another) = sign(SECRET, "n", "PUT", path, SignedBody::Trailer);
        assert_eq!(
            check.check(&another.unwrap().seal(&sent), &sent),
            Err(PeerAuthError::BadSeal)
        );
        // Nor does one sealed with another secret.
        let (_, foreign) = sign(b"other", "n", "PUT", path, SignedBody::Trailer);
        assert_eq!(
            check.check(&foreign.unwrap().seal(&sent), &sent),
            Err(PeerAuthError::BadSeal)
        );
    }
}
