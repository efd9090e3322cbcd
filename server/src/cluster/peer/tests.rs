//! Peer RPC against a peer server running in the test: captured requests replayed or altered
//! byte for byte, as an attacker on the network would, and the real client's signed calls and
//! sealed shard streams.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

use super::auth::{sign, SignedBody};
use super::client::{full, PeerBody};
use super::{LockTable, Notice, PeerClient, PeerService, RemoteDrive, SharedRemoteDrive};
use super::{AUTH_HEADER, COMMIT_TRAILER};
use crate::store::drive::{Drive, LocalDrive};
use crate::store::set::{DriveSet, RemoteRecords, Slot, WireOp};
use crate::store::stamp;

const SECRET: &[u8] = b"cluster secret";
const NOTIFY: &str = "/peer/v1/notify";
const SHARD: &str = "/peer/v1/drive/0/data/abcdef01";

/// A peer server on a loopback port, with one drive in a temporary folder; it stops with the
/// test's runtime.
struct Peer {
    addr: std::net::SocketAddr,
    notices: Arc<AtomicUsize>,
    drive: LocalDrive,
    _dir: tempfile::TempDir,
    http: Client<HttpConnector, PeerBody>,
}

impl Peer {
    async fn start() -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let drive = LocalDrive::open(&dir.path().join("drive")).unwrap();
        let records = Slot::open(Arc::new(drive.clone()), &dir.path().join("meta")).unwrap();
        let notices = Arc::new(AtomicUsize::new(0));
        let counter = notices.clone();
        let svc = PeerService {
            node: "peer".into(),
            secret: Arc::new(SECRET.to_vec()),
            sets: vec![Arc::new(DriveSet::single(records))],
            drives: vec![((0, 0), drive.clone())],
            locks: Arc::new(LockTable::new(
                super::LEASE,
                crate::store::stamp::process_clock(),
            )),
            notify: Box::new(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
                Box::pin(async {})
            }),
            seen: Default::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        super::serve(listener, Arc::new(svc), None);
        let http = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(HttpConnector::new());
        Peer {
            addr,
            notices,
            drive,
            _dir: dir,
            http,
        }
    }

    /// Sends `body` with the `x-coffer-peer` value `auth`, as captured off the wire.
    async fn send(&self, method: Method, path: &str, auth: &str, body: PeerBody) -> StatusCode {
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = format!("http://{}{path}", self.addr).parse().unwrap();
        req.headers_mut()
            .insert(AUTH_HEADER, HeaderValue::from_str(auth).unwrap());
        let resp = self.http.request(req).await.unwrap();
        let status = resp.status();
        resp.into_body().collect().await.unwrap();
        status
    }

    fn shard(&self) -> Option<Vec<u8>> {
        std::fs::read(self.drive.data_path("abcdef01")).ok()
    }
}

fn notice() -> Bytes {
    postcard::to_stdvec(&Notice::AccessKeys).unwrap().into()
}

/// A shard stream: its data, then the commit trailer `trailer`.
fn stream(data: &'static [u8], trailer: &str) -> PeerBody {
    let mut trailers = HeaderMap::new();
    trailers.insert(COMMIT_TRAILER, HeaderValue::from_str(trailer).unwrap());
    let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
        Ok(Frame::data(Bytes::from_static(&data[..4]))),
        Ok(Frame::data(Bytes::from_static(&data[4..]))),
        Ok(Frame::trailers(trailers)),
    ];
    StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

fn digest(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[tokio::test]
async fn replayed_peer_request_is_refused_by_a_running_peer() {
    let peer = Peer::start().await;
    let (auth, _) = sign(SECRET, "a", "POST", NOTIFY, SignedBody::of(&notice()));
    let first = peer.send(Method::POST, NOTIFY, &auth, full(notice())).await;
    assert_eq!(first, StatusCode::OK);
    let replay = peer.send(Method::POST, NOTIFY, &auth, full(notice())).await;
    assert_eq!(replay, StatusCode::FORBIDDEN);
    assert_eq!(
        peer.notices.load(Ordering::SeqCst),
        1,
        "the replay took no effect"
    );
}

#[tokio::test]
async fn peer_request_with_altered_body_is_refused_by_a_running_peer() {
    let peer = Peer::start().await;
    let (auth, _) = sign(SECRET, "a", "POST", NOTIFY, SignedBody::of(b"another body"));
    let status = peer.send(Method::POST, NOTIFY, &auth, full(notice())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(peer.notices.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn replayed_shard_stream_commits_nothing() {
    let peer = Peer::start().await;
    let (auth, seal) = sign(SECRET, "a", "PUT", SHARD, SignedBody::Trailer);
    let trailer = seal.unwrap().seal(&digest(b"shard bytes"));
    let first = peer
        .send(Method::PUT, SHARD, &auth, stream(b"shard bytes", &trailer))
        .await;
    assert_eq!(first, StatusCode::OK);
    assert_eq!(peer.shard().as_deref(), Some(&b"shard bytes"[..]));
    // The shard is deleted (or overwritten) later; a replay must not bring it back.
    std::fs::remove_file(peer.drive.data_path("abcdef01")).unwrap();
    let replay = peer
        .send(Method::PUT, SHARD, &auth, stream(b"shard bytes", &trailer))
        .await;
    assert_eq!(replay, StatusCode::FORBIDDEN);
    assert_eq!(peer.shard(), None);
}

#[tokio::test]
async fn altered_shard_stream_commits_nothing() {
    let peer = Peer::start().await;
    // Bytes changed in flight under a trailer sealed for the original bytes.
    let (auth, seal) = sign(SECRET, "a", "PUT", SHARD, SignedBody::Trailer);
    let trailer = seal.unwrap().seal(&digest(b"shard bytes"));
    let altered = peer
        .send(Method::PUT, SHARD, &auth, stream(b"evil bytes!", &trailer))
        .await;
    assert_eq!(altered, StatusCode::FORBIDDEN);
    // The trailer of the old format, which sealed nothing.
    let (auth, _) = sign(SECRET, "a", "PUT", SHARD, SignedBody::Trailer);
    let unsealed = peer
        .send(Method::PUT, SHARD, &auth, stream(b"evil bytes!", "1"))
        .await;
    assert_eq!(unsealed, StatusCode::FORBIDDEN);
    // A request signed with a whole-body digest cannot stream a shard.
    let (auth, _) = sign(SECRET, "a", "PUT", SHARD, SignedBody::of(b"evil bytes!"));
    let whole = peer
        .send(Method::PUT, SHARD, &auth, full(&b"evil bytes!"[..]))
        .await;
    assert_eq!(whole, StatusCode::FORBIDDEN);
    assert_eq!(peer.shard(), None);
    assert_eq!(
        std::fs::read_dir(peer._dir.path().join("drive").join("tmp"))
            .unwrap()
            .count(),
        0,
        "no temporary file is left behind"
    );
}

/// The real client of `peer`, once it answered a ping.
async fn connected(peer: &Peer) -> Arc<PeerClient> {
    let client = PeerClient::new(
        "peer",
        &peer.addr.to_string(),
        "me",
        Arc::new(SECRET.to_vec()),
        None,
    );
    // The client reaches a peer only once its liveness ping answered (a signed request too).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.reachable() {
        assert!(Instant::now() < deadline, "the peer never answered a ping");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_answers_a_record_and_a_page_as_a_get_and_a_page_would() {
    let peer = Peer::start().await;
    let drive = RemoteDrive::new(connected(&peer).await, 0, std::path::Path::new("/d"));
    tokio::task::spawn_blocking(move || {
        let clock = stamp::process_clock();
        let put = |k: &str, v: &str| WireOp::Put(k.into(), stamp::seal(clock.now(), v.as_bytes()));
        drive
            .write(vec![
                put("b/photos", "bucket"),
                put("v/photos/a", "first"),
                put("v/photos/b", "second"),
                put("v/photos/c", "third"),
            ])
            .unwrap();
        for (get, from, limit) in [
            ("b/photos", "v/photos/", 2),
            ("b/photos", "v/photos/b", 8),
            ("b/none", "v/other/", 8),
        ] {
            let (value, page) = drive
                .get_and_page(get.as_bytes(), from.as_bytes(), limit)
                .unwrap();
            assert_eq!(value, drive.get(get.as_bytes()).unwrap(), "{get}");
            assert_eq!(
                page,
                drive.page(from.as_bytes(), true, limit).unwrap(),
                "{from}"
            );
        }
        let (value, (records, more)) = drive.get_and_page(b"b/photos", b"v/photos/", 2).unwrap();
        assert_eq!(stamp::open(&value.unwrap()).payload, Some(&b"bucket"[..]));
        let keys: Vec<&[u8]> = records.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, [&b"v/photos/a"[..], b"v/photos/b"]);
        assert!(more, "a third version follows");
        let (value, (records, more)) = drive.get_and_page(b"b/none", b"w", 8).unwrap();
        assert_eq!((value, records.len(), more), (None, 0, false));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_drive_writes_and_reads_a_shard_on_a_running_peer() {
    let peer = Peer::start().await;
    let client = connected(&peer).await;
    client
        .call_ok(Method::POST, NOTIFY, notice().to_vec())
        .await
        .unwrap();
    assert_eq!(peer.notices.load(Ordering::SeqCst), 1);
    let drive = SharedRemoteDrive(Arc::new(RemoteDrive::new(
        client,
        0,
        std::path::Path::new("/d"),
    )));
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let read = tokio::task::spawn_blocking({
        let data = data.clone();
        move || {
            let mut w = drive.create("abcdef01")?;
            for chunk in data.chunks(100_000) {
                w.write_all(chunk)?;
            }
            w.commit()?;
            let mut back = vec![0; data.len() - 10];
            drive
                .open_at("abcdef01", 10)?
                .read_exact_at(10, &mut back)?;
            std::io::Result::Ok((drive.size("abcdef01")?, back))
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(peer.shard().as_deref(), Some(&data[..]));
    assert_eq!(read.0, data.len() as u64);
    assert_eq!(read.1, data[10..]);
}
