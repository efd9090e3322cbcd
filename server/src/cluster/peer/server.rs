//! The server side of peer RPC: serves this server's drives, lock votes and notices to the
//! other servers of the cluster (routes in the module documentation of `peer`).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use sha2::{Digest, Sha256};
use tokio::io::AsyncSeekExt;

use super::auth::{self, PeerAuthError, SeenNonces, StreamSeal};
use super::client::{full, PeerBody};
use super::locks::LockTable;
use super::{
    LockRequest, Lookup, LookupRequest, Notice, Page, PageRequest, AUTH_HEADER, COMMIT_TRAILER,
    SIZE_HEADER,
};
use crate::store::drive::{Drive, LocalDrive};
use crate::store::set::{DriveSet, WireOp};
use crate::store::StoreError;

/// A page of records answers with about this many bytes at most.
const PAGE_BYTES: usize = 4 << 20;

/// What the peer RPC listener serves.
pub struct PeerService {
    pub node: String,
    pub secret: Arc<Vec<u8>>,
    pub sets: Vec<Arc<DriveSet>>,
    /// This server's drives by their index in its `drives` list: (set, slot in the set) and
    /// the folder.
    pub drives: Vec<((usize, usize), LocalDrive)>,
    pub locks: Arc<LockTable>,
    /// Applies every notice another server sends; the sender hears back once it is applied.
    pub notify: NotifyFn,
    /// The nonces of the peer requests accepted within the time window: a replay is refused.
    pub seen: SeenNonces,
}

/// Applies a notice; the future completes once the change is in effect on this server.
pub type NotifyFn =
    Box<dyn Fn(Notice) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

type Resp = Response<PeerBody>;

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r
}

fn bad(why: impl std::fmt::Display) -> Resp {
    reply(StatusCode::BAD_REQUEST, why.to_string())
}

fn internal(why: impl std::fmt::Display) -> Resp {
    reply(StatusCode::INTERNAL_SERVER_ERROR, why.to_string())
}

/// A TLS handshake must finish within this, so a connection that never speaks cannot hold a
/// task forever.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that keeps failing the handshake (a peer without `--tls-ca`, or with another CA)
/// retries every ping; its refusal is logged at most this often per address.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// Serves peer RPC on `listener` until the task is dropped: HTTP/2 over TLS with `tls`
/// (a client that does not complete a TLS handshake is refused), else HTTP/2 in cleartext.
pub fn serve(
    listener: tokio::net::TcpListener,
    svc: Arc<PeerService>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let refusals = Arc::new(RefusalLog::default());
    tokio::spawn(async move {
        loop {
            let (stream, addr) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let svc = svc.clone();
            let acceptor = acceptor.clone();
            let refusals = refusals.clone();
            tokio::spawn(async move {
                let result = match acceptor {
                    None => serve_connection(TokioIo::new(stream), svc).await,
                    // The handshake runs in the connection's task so a slow peer never holds
                    // up the accept loop.
                    Some(acceptor) => {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(stream)) => serve_connection(TokioIo::new(stream), svc).await,
                            Ok(Err(e)) => {
                                refusals.refused(addr.ip(), &e.to_string());
                                return;
                            }
                            Err(_) => {
                                refusals.refused(addr.ip(), "the TLS handshake timed out");
                                return;
                            }
                        }
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "peer connection ended");
                }
            });
        }
    });
}

async fn serve_connection<I>(io: TokioIo<I>, svc: Arc<PeerService>) -> Result<(), hyper::Error>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let svc = svc.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&svc, req).await) }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(16 << 20)
        .max_concurrent_streams(1024);
    builder.serve_connection(io, service).await
}

/// When a refused handshake from each address was last logged.
#[derive(Default)]
struct RefusalLog {
    last: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, Instant>>,
}

impl RefusalLog {
    fn refused(&self, from: std::net::IpAddr, why: &str) {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last
            .get(&from)
            .is_some_and(|t| now.duration_since(*t) < REFUSAL_LOG_EVERY)
        {
            return;
        }
        // Bounded: addresses are peers, but anything can connect.
        if last.len() >= 1024 {
            last.clear();
        }
        last.insert(from, now);
        tracing::error!(
            peer = %from,
            error = why,
            "refused a peer RPC connection: its TLS handshake failed (a server without \
             --tls-ca, or one whose CA did not sign this server's certificate)"
        );
    }
}

/// Refuses a request that failed authentication, saying why in the log.
fn refused(path: &str, node: Option<&str>, why: PeerAuthError) -> Resp {
    tracing::warn!(path, node, why = %why, "peer request refused");
    reply(why.status(), why.to_string())
}

async fn handle(svc: &PeerService, req: Request<Incoming>) -> Resp {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let auth = req
        .headers()
        .get(AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let now = auth::unix_now();
    // The MAC first: only a request from the cluster may take room in the set of nonces.
    let signed = match auth::verify(
        &svc.secret,
        &auth,
        req.method().as_str(),
        &path_and_query,
        now,
    ) {
        Ok(v) => v,
        Err(why) => return refused(&path_and_query, None, why),
    };
    if let Err(why) = svc.seen.admit(signed.time, signed.nonce, now) {
        return refused(&path_and_query, Some(signed.node), why);
    }
    let (head, body) = req.into_parts();
    let path = head.uri.path().to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // A shard upload is the one body that streams; its digest comes in the commit trailer.
    if let (&Method::PUT, ["peer", "v1", "drive", d, "data", id]) = (&head.method, &parts[..]) {
        let Some((_, drive)) = d.parse::<usize>().ok().and_then(|d| svc.drives.get(d)) else {
            return reply(StatusCode::NOT_FOUND, "no such drive");
        };
        return match signed.stream_seal(&svc.secret) {
            Ok(seal) => put_data(drive, id, seal, body, &path_and_query, signed.node).await,
            Err(why) => refused(&path_and_query, Some(signed.node), why),
        };
    }
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return bad(e),
    };
    if let Err(why) = signed.check_body(&body) {
        return refused(&path_and_query, Some(signed.node), why);
    }
    route(svc, &head.method, &parts, head.uri.query(), body).await
}

/// Serves a request whose body was read whole and checked.
async fn route(
    svc: &PeerService,
    method: &Method,
    parts: &[&str],
    query: Option<&str>,
    body: Bytes,
) -> Resp {
    match (method.clone(), parts) {
        (Method::GET, ["peer", "v1", "health"]) => reply(StatusCode::OK, svc.node.clone()),
        (Method::POST, ["peer", "v1", "lock"]) => {
            match postcard::from_bytes::<LockRequest>(&body) {
                Ok(l) => match svc.locks.try_lock(&l) {
                    Some(grant) => reply(
                        StatusCode::OK,
                        postcard::to_stdvec(&grant).expect("a lock grant serializes"),
                    ),
                    None => reply(StatusCode::CONFLICT, "held, or waiting out the lease"),
                },
                Err(e) => bad(e),
            }
        }
        (Method::POST, ["peer", "v1", "unlock"]) => {
            match postcard::from_bytes::<LockRequest>(&body) {
                Ok(l) => {
                    svc.locks.unlock(&l.resource, l.owner, l.token);
                    reply(StatusCode::OK, "")
                }
                Err(e) => bad(e),
            }
        }
        (Method::POST, ["peer", "v1", "notify"]) => match postcard::from_bytes::<Notice>(&body) {
            Ok(n) => {
                (svc.notify)(n).await;
                reply(StatusCode::OK, "")
            }
            Err(e) => bad(e),
        },
        (method, ["peer", "v1", "drive", d, rest @ ..]) => {
            let Some((slot, drive)) = d.parse::<usize>().ok().and_then(|d| svc.drives.get(d))
            else {
                return reply(StatusCode::NOT_FOUND, "no such drive");
            };
            match (method, rest) {
                (Method::POST, ["records", op]) => records(svc, *slot, op, body).await,
                (Method::GET, ["space"]) => {
                    let drive = drive.clone();
                    match tokio::task::spawn_blocking(move || drive.space()).await {
                        Ok(Ok(space)) => reply(
                            StatusCode::OK,
                            postcard::to_stdvec(&space).expect("a drive space serializes"),
                        ),
                        Ok(Err(e)) => reply(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    }
                }
                (Method::GET, ["data", id]) => {
                    let offset = query
                        .and_then(|q| q.strip_prefix("offset="))
                        .and_then(|o| o.parse().ok())
                        .unwrap_or(0);
                    get_data(drive, id, offset).await
                }
                (Method::HEAD, ["data", id]) => match valid_id(id) {
                    Err(r) => *r,
                    Ok(()) => match tokio::fs::metadata(drive.data_path(id)).await {
                        Ok(m) => {
                            let mut r = reply(StatusCode::OK, "");
                            r.headers_mut().insert(SIZE_HEADER, m.len().into());
                            r
                        }
                        Err(_) => reply(StatusCode::NOT_FOUND, ""),
                    },
                },
                (Method::DELETE, ["data", id]) => match valid_id(id) {
                    Err(r) => *r,
                    Ok(()) => {
                        let (drive, id) = (drive.clone(), id.to_string());
                        let result = tokio::task::spawn_blocking(move || drive.remove(&id)).await;
                        match result {
                            Ok(Ok(())) => reply(StatusCode::OK, ""),
                            Ok(Err(e)) => internal(e),
                            Err(e) => internal(e),
                        }
                    }
                },
                _ => reply(StatusCode::NOT_FOUND, "no such route"),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "no such route"),
    }
}

/// Data ids are hex (and `.`-free): never a path.
fn valid_id(id: &str) -> Result<(), Box<Resp>> {
    if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(Box::new(bad("malformed data id")))
    }
}

async fn records(svc: &PeerService, (set, slot): (usize, usize), op: &str, body: Bytes) -> Resp {
    let set = svc.sets[set].clone();
    let op = op.to_string();
    let result = tokio::task::spawn_blocking(move || -> Result<Resp, String> {
        let records = set.slots[slot]
            .as_ref()
            .and_then(|s| s.local_records())
            .ok_or("drive is not local")?;
        let db = records.db();
        match op.as_str() {
            "write" => {
                let ops: Vec<WireOp> = postcard::from_bytes(&body).map_err(|e| e.to_string())?;
                match records.apply(&ops) {
                    Ok(()) => Ok(reply(StatusCode::OK, "")),
                    // The drive holds a newer stamp: the writer learns which and stamps again.
                    Err(StoreError::Stale(held)) => {
                        Ok(reply(StatusCode::CONFLICT, held.to_bytes().to_vec()))
                    }
                    // The drive saw a newer lock token: the writer's lock was taken over.
                    Err(StoreError::Fenced(held)) => {
                        Ok(reply(StatusCode::LOCKED, held.to_bytes().to_vec()))
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            "get" => match db.get(&body).map_err(|e| e.to_string())? {
                Some(v) => Ok(reply(StatusCode::OK, v)),
                None => Ok(reply(StatusCode::NOT_FOUND, "")),
            },
            "page" => {
                let req: PageRequest = postcard::from_bytes(&body).map_err(|e| e.to_string())?;
                let out = postcard::to_stdvec(&read_page(db, &req)?).map_err(|e| e.to_string())?;
                Ok(reply(StatusCode::OK, out))
            }
            "lookup" => {
                let req: LookupRequest = postcard::from_bytes(&body).map_err(|e| e.to_string())?;
                let lookup = Lookup {
                    value: db
                        .get(&req.get)
                        .map_err(|e| e.to_string())?
                        .map(serde_bytes::ByteBuf::from),
                    page: read_page(db, &req.page)?,
                };
                let out = postcard::to_stdvec(&lookup).map_err(|e| e.to_string())?;
                Ok(reply(StatusCode::OK, out))
            }
            _ => Ok(reply(StatusCode::NOT_FOUND, "no such records call")),
        }
    })
    .await;
    match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// The records `req` asks for, in key order.
fn read_page(db: &rocksdb::DB, req: &PageRequest) -> Result<Page, String> {
    let mut it = db.raw_iterator();
    it.seek(&req.from);
    if !req.inclusive && it.key() == Some(req.from.as_slice()) {
        it.next();
    }
    let mut page = Page::default();
    let mut bytes = 0;
    while it.valid() && page.records.len() < req.limit as usize && bytes < PAGE_BYTES {
        let (k, v) = (it.key().unwrap_or_default(), it.value().unwrap_or_default());
        bytes += k.len() + v.len();
        page.records.push((k.to_vec().into(), v.to_vec().into()));
        it.next();
    }
    it.status().map_err(|e| e.to_string())?;
    page.more = it.valid();
    Ok(page)
}

/// Receives a shard file into the drive's temporary area; installs it only when the stream
/// ends with the commit trailer and that trailer seals, for this request, the digest of the
/// bytes received. The digest is checked before the file is synced and moved into place, so
/// an altered, truncated or foreign-sealed stream leaves nothing behind.
async fn put_data(
    drive: &LocalDrive,
    id: &str,
    seal: StreamSeal,
    body: Incoming,
    path: &str,
    node: &str,
) -> Resp {
    if let Err(r) = valid_id(id) {
        return *r;
    }
    let tmp = drive.tmp_path(id);
    let received = receive(&tmp, body).await;
    let (file, checked) = match received {
        Ok(Received {
            trailer: Some(trailer),
            digest,
            file,
        }) => (file, seal.check(&trailer, &digest)),
        Ok(Received { trailer: None, .. }) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return bad("shard stream ended without commit");
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return bad(format!("shard stream failed: {e}"));
        }
    };
    if let Err(why) = checked {
        drop(file);
        let _ = tokio::fs::remove_file(&tmp).await;
        return refused(path, Some(node), why);
    }
    let (drive, id) = (drive.clone(), id.to_string());
    let installed = tokio::task::spawn_blocking(move || {
        let r = file.sync_data().and_then(|()| drive.install(&tmp, &id));
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    })
    .await;
    match installed {
        Ok(Ok(())) => reply(StatusCode::OK, ""),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// Received data is hashed and written in batches of about this many bytes.
const WRITE_BATCH: usize = 1 << 20;

/// A shard stream written to its temporary file, not yet synced.
struct Received {
    /// The commit trailer's value; `None` if the stream ended without one.
    trailer: Option<String>,
    /// The SHA-256 of the bytes received.
    digest: [u8; 32],
    file: std::fs::File,
}

/// The file a stream goes to, and the digest of what went into it.
struct Sink {
    file: std::fs::File,
    hash: Sha256,
}

impl Sink {
    /// Hashes and writes `chunks` on a blocking thread: hashing is CPU work and writing waits
    /// on the disk, neither belongs on the executor. A batch at a time keeps memory per stream
    /// at about [`WRITE_BATCH`] (HTTP/2 flow control holds the sender back meanwhile).
    async fn write(mut self, chunks: Vec<Bytes>) -> std::io::Result<Sink> {
        tokio::task::spawn_blocking(move || {
            for c in &chunks {
                self.hash.update(c);
                self.file.write_all(c)?;
            }
            Ok(self)
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

async fn receive(tmp: &Path, mut body: Incoming) -> std::io::Result<Received> {
    let file = tokio::fs::File::create(tmp).await?.into_std().await;
    let mut sink = Sink {
        file,
        hash: Sha256::new(),
    };
    let (mut batch, mut batched) = (Vec::new(), 0);
    let mut trailer = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(std::io::Error::other)?;
        match frame.into_data() {
            Ok(data) => {
                batched += data.len();
                batch.push(data);
                if batched >= WRITE_BATCH {
                    sink = sink.write(std::mem::take(&mut batch)).await?;
                    batched = 0;
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    // A trailer that is not text is kept as one that does not verify.
                    trailer = trailers
                        .get(COMMIT_TRAILER)
                        .map(|v| v.to_str().unwrap_or_default().to_string());
                }
            }
        }
    }
    if !batch.is_empty() {
        sink = sink.write(batch).await?;
    }
    Ok(Received {
        trailer,
        digest: sink.hash.finalize().into(),
        file: sink.file,
    })
}

async fn get_data(drive: &LocalDrive, id: &str, offset: u64) -> Resp {
    if let Err(r) = valid_id(id) {
        return *r;
    }
    let mut file = match tokio::fs::File::open(drive.data_path(id)).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return reply(StatusCode::NOT_FOUND, "")
        }
        Err(e) => return internal(e),
    };
    if let Err(e) = file.seek(std::io::SeekFrom::Start(offset)).await {
        return internal(e);
    }
    let stream =
        tokio_util::io::ReaderStream::with_capacity(file, 256 << 10).map(|r| r.map(Frame::data));
    Response::new(BodyExt::boxed(StreamBody::new(stream)))
}
