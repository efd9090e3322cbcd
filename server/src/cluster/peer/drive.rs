//! A drive of another server, as the store sees it: its records ([`RemoteRecords`]) and its
//! shard files ([`Drive`]) over peer RPC.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Incoming;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::auth::StreamSeal;
use super::client::PeerClient;
use super::{Lookup, LookupRequest, Page, PageRequest, COMMIT_TRAILER, SIZE_HEADER};
use crate::store::drive::{DataReader, DataWriter, Drive, DriveSpace, STREAM_TIMEOUT};
use crate::store::set::{RecordPage, RemoteRecords, WireOp};
use crate::store::stamp::Stamp;
use crate::store::StoreError;

/// Committing a streamed shard (fsync and rename on the peer) may take this long.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct RemoteDrive {
    peer: Arc<PeerClient>,
    index: usize,
    /// `node:path`, for messages and the admin status.
    label: PathBuf,
}

impl RemoteDrive {
    pub fn new(peer: Arc<PeerClient>, index: usize, path: &Path) -> RemoteDrive {
        let label = PathBuf::from(format!("{}:{}", peer.name, path.display()));
        RemoteDrive { peer, index, label }
    }

    fn path(&self, rest: &str) -> String {
        format!("/peer/v1/drive/{}/{rest}", self.index)
    }

    fn offline(&self) -> io::Error {
        io::Error::other(format!("peer {} is offline", self.peer.name))
    }

    /// Waits up to `patience` for the peer (see [`PeerClient::wait`]).
    fn wait<F: std::future::Future>(&self, patience: Duration, fut: F) -> io::Result<F::Output> {
        let name = &self.peer.name;
        match self
            .peer
            .wait(async { tokio::time::timeout(patience, fut).await })
        {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("peer {name} sent nothing for {patience:?}"),
            )),
            Err(late) => Err(io::Error::other(format!("peer {name}: {late}"))),
        }
    }
}

fn io_err(e: StoreError) -> io::Error {
    match e {
        StoreError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

type FrameResult = Result<Frame<Bytes>, io::Error>;

/// A shard file streaming to a peer. Dropped without `commit`, the stream ends with an error
/// and the peer discards what it received. `commit` ends it with a trailer that seals the
/// SHA-256 of every byte sent for this one request: the peer installs the file only if what
/// it received has that digest (see [`super::auth`]).
struct RemoteWriter {
    peer: Arc<PeerClient>,
    tx: Option<mpsc::Sender<FrameResult>>,
    done: Option<oneshot::Receiver<Result<(), StoreError>>>,
    /// The digest of the bytes queued so far (hashed on the writing thread, which is store
    /// code off the executor).
    sent: Sha256,
    seal: StreamSeal,
}

impl RemoteWriter {
    /// Queues `frame` on the stream if there is room within `patience`; false if not (the
    /// frame was not taken).
    fn push(&mut self, frame: Frame<Bytes>, patience: Duration) -> io::Result<bool> {
        let name = &self.peer.name;
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| io::Error::other("stream already ended"))?;
        let room = self
            .peer
            .wait(async { tokio::time::timeout(patience, tx.reserve()).await })
            .map_err(|late| io::Error::other(format!("peer {name}: {late}")))?;
        match room {
            Ok(Ok(permit)) => {
                permit.send(Ok(frame));
                Ok(true)
            }
            Ok(Err(_)) => Err(io::Error::other(format!(
                "peer {name} closed the shard stream"
            ))),
            Err(_) => Ok(false),
        }
    }

    fn send(&mut self, frame: Frame<Bytes>) -> io::Result<()> {
        if self.push(frame, STREAM_TIMEOUT)? {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("peer {} stalled the shard stream", self.peer.name),
        ))
    }
}

impl Write for RemoteWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(Frame::data(Bytes::copy_from_slice(buf)))?;
        self.sent.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl DataWriter for RemoteWriter {
    fn responsive(&self) -> bool {
        self.peer.responsive()
    }

    fn offer(&mut self, buf: &[u8], patience: Duration) -> io::Result<bool> {
        let taken = self.push(Frame::data(Bytes::copy_from_slice(buf)), patience)?;
        if taken {
            self.sent.update(buf);
        }
        Ok(taken)
    }

    fn commit(mut self: Box<Self>) -> io::Result<()> {
        let digest: [u8; 32] = std::mem::take(&mut self.sent).finalize().into();
        let mut trailers = HeaderMap::new();
        trailers.insert(
            COMMIT_TRAILER,
            HeaderValue::from_str(&self.seal.seal(&digest)).expect("a seal is hex"),
        );
        self.send(Frame::trailers(trailers))?;
        self.tx = None;
        let done = self.done.take().expect("committed once");
        let name = &self.peer.name;
        let result = self
            .peer
            .wait(async { tokio::time::timeout(COMMIT_TIMEOUT, done).await })
            .map_err(|late| io::Error::other(format!("peer {name}: {late}")))?;
        match result {
            Ok(Ok(r)) => r.map_err(io_err),
            Ok(Err(_)) => Err(io::Error::other("shard upload task ended")),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("peer {name} did not commit in time"),
            )),
        }
    }
}

impl Drop for RemoteWriter {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            // An error frame resets the stream: the peer must not take a partial file.
            if tx
                .try_send(Err(io::Error::other("shard write abandoned")))
                .is_err()
            {
                // The channel is full or closed; dropping the sender with no commit trailer
                // is enough for the peer to discard the file.
            }
        }
    }
}

/// A shard file streaming from a peer, from some offset on. The stream starts at the first
/// read: a reader opened for a shard that is never needed (a parity shard of a healthy
/// object) must not hold HTTP/2 flow-control window that the shards being read need.
struct RemoteReader {
    drive: Arc<RemoteDrive>,
    id: String,
    body: Option<Incoming>,
    /// File offset of `buf[0]`.
    pos: u64,
    buf: BytesMut,
}

impl RemoteReader {
    fn open(drive: Arc<RemoteDrive>, id: &str, offset: u64) -> io::Result<RemoteReader> {
        if !drive.peer.reachable() {
            return Err(drive.offline());
        }
        Ok(RemoteReader {
            drive,
            id: id.to_string(),
            body: None,
            pos: offset,
            buf: BytesMut::new(),
        })
    }

    fn start(&mut self, offset: u64, patience: Duration) -> io::Result<()> {
        let d = &self.drive;
        if !d.peer.reachable() {
            return Err(d.offline());
        }
        let path = d.path(&format!("data/{}?offset={offset}", self.id));
        let resp = d.wait(patience, d.peer.send(Method::GET, &path, Bytes::new()))?;
        let resp = resp.map_err(io_err)?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no such shard file",
                ))
            }
            s => return Err(io::Error::other(format!("peer read: {s}"))),
        }
        self.body = Some(resp.into_body());
        self.pos = offset;
        self.buf.clear();
        Ok(())
    }

    /// Pulls the next data chunk of the stream into `buf`; false at the end.
    fn pull(&mut self, patience: Duration) -> io::Result<bool> {
        let Some(body) = self.body.as_mut() else {
            return Ok(false);
        };
        let drive = self.drive.clone();
        loop {
            let frame = drive.wait(patience, body.frame())?;
            match frame {
                None => return Ok(false),
                Some(Err(e)) => return Err(io::Error::other(e)),
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.buf.extend_from_slice(&data);
                        return Ok(true);
                    }
                }
            }
        }
    }
}

impl DataReader for RemoteReader {
    fn responsive(&self) -> bool {
        self.drive.peer.responsive()
    }

    fn read_exact_at(&mut self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.read_exact_within(offset, out, STREAM_TIMEOUT)
    }

    fn read_exact_within(
        &mut self,
        offset: u64,
        out: &mut [u8],
        patience: Duration,
    ) -> io::Result<()> {
        if self.body.is_none() || offset < self.pos {
            self.start(offset, patience)?;
        }
        // Skip forward within the stream (reads move forward block by block).
        while self.pos + (self.buf.len() as u64) < offset + out.len() as u64 {
            if offset > self.pos + self.buf.len() as u64 + (8 << 20) {
                self.start(offset, patience)?;
                continue;
            }
            if !self.pull(patience)? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "shard file ends early",
                ));
            }
        }
        let skip = (offset - self.pos) as usize;
        let _ = self.buf.split_to(skip);
        self.pos = offset;
        out.copy_from_slice(&self.buf[..out.len()]);
        let _ = self.buf.split_to(out.len());
        self.pos += out.len() as u64;
        Ok(())
    }
}

/// A remote drive shared by the readers it opens.
#[derive(Clone)]
pub struct SharedRemoteDrive(pub Arc<RemoteDrive>);

impl Drive for SharedRemoteDrive {
    fn root(&self) -> &Path {
        &self.0.label
    }

    fn create(&self, id: &str) -> io::Result<Box<dyn DataWriter>> {
        let d = &self.0;
        if !d.peer.reachable() {
            return Err(d.offline());
        }
        let (tx, rx) = mpsc::channel::<FrameResult>(4);
        let (done_tx, done_rx) = oneshot::channel();
        let peer = d.peer.clone();
        let path = d.path(&format!("data/{id}"));
        let (auth, seal) = d.peer.sign_stream(&Method::PUT, &path);
        d.peer.handle().spawn(async move {
            let stream = tokio_stream_from(rx);
            let body = StreamBody::new(stream).boxed();
            let result = async {
                let resp = peer.send_stream(Method::PUT, &path, auth, body).await?;
                let status = resp.status();
                let text = resp.into_body().collect().await.ok().map(|b| b.to_bytes());
                if status == StatusCode::OK {
                    Ok(())
                } else {
                    Err(StoreError::Io(io::Error::other(format!(
                        "peer {}: shard upload: {status}: {}",
                        peer.name,
                        text.map(|t| String::from_utf8_lossy(&t).to_string())
                            .unwrap_or_default()
                    ))))
                }
            }
            .await;
            let _ = done_tx.send(result);
        });
        Ok(Box::new(RemoteWriter {
            peer: d.peer.clone(),
            tx: Some(tx),
            done: Some(done_rx),
            sent: Sha256::new(),
            seal,
        }))
    }

    fn open_at(&self, id: &str, offset: u64) -> io::Result<Box<dyn DataReader>> {
        Ok(Box::new(RemoteReader::open(self.0.clone(), id, offset)?))
    }

    fn size(&self, id: &str) -> io::Result<u64> {
        let d = &self.0;
        let path = d.path(&format!("data/{id}"));
        let resp = d
            .wait(
                STREAM_TIMEOUT,
                d.peer.send(Method::HEAD, &path, Bytes::new()),
            )?
            .map_err(io_err)?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no such shard file",
            ));
        }
        resp.headers()
            .get(SIZE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other("peer stat without a size"))
    }

    fn remove(&self, id: &str) -> io::Result<()> {
        let d = &self.0;
        let path = d.path(&format!("data/{id}"));
        d.peer
            .finish(d.peer.call_ok(Method::DELETE, &path, Vec::new()))
            .map(|_| ())
            .map_err(io_err)
    }

    fn clear_tmp(&self) -> io::Result<()> {
        // The drive's own server clears it.
        Ok(())
    }

    fn space(&self) -> io::Result<DriveSpace> {
        let d = &self.0;
        let bytes = d
            .peer
            .finish(d.peer.call_ok(Method::GET, &d.path("space"), Vec::new()))
            .map_err(io_err)?;
        postcard::from_bytes(&bytes).map_err(|e| io::Error::other(e.to_string()))
    }
}

impl RemoteRecords for RemoteDrive {
    fn write(&self, ops: Vec<WireOp>) -> Result<(), StoreError> {
        let body = postcard::to_stdvec(&ops).map_err(|e| StoreError::Internal(e.to_string()))?;
        let (status, bytes) = self.peer.finish(self.peer.call(
            Method::POST,
            &self.path("records/write"),
            body,
        ))?;
        let held = || {
            Stamp::from_bytes(&bytes).ok_or_else(|| {
                StoreError::Internal(format!("peer {}: a malformed stamp", self.peer.name))
            })
        };
        match status {
            StatusCode::OK => Ok(()),
            StatusCode::CONFLICT => Err(StoreError::Stale(held()?)),
            StatusCode::LOCKED => Err(StoreError::Fenced(held()?)),
            s => Err(StoreError::Io(io::Error::other(format!(
                "peer {}: record write: {s}: {}",
                self.peer.name,
                String::from_utf8_lossy(&bytes)
            )))),
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (status, bytes) = self.peer.finish(self.peer.call(
            Method::POST,
            &self.path("records/get"),
            key.to_vec(),
        ))?;
        match status {
            StatusCode::OK => Ok(Some(bytes.to_vec())),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(StoreError::Io(io::Error::other(format!(
                "peer {}: record read: {s}",
                self.peer.name
            )))),
        }
    }

    fn page(&self, from: &[u8], inclusive: bool, limit: usize) -> Result<RecordPage, StoreError> {
        let req = PageRequest {
            from: from.to_vec(),
            inclusive,
            limit: limit as u32,
        };
        let page: Page = self.records_call("records/page", &req)?;
        Ok(record_page(page))
    }

    fn get_and_page(
        &self,
        key: &[u8],
        from: &[u8],
        limit: usize,
    ) -> Result<(Option<Vec<u8>>, RecordPage), StoreError> {
        let req = LookupRequest {
            get: key.to_vec(),
            page: PageRequest {
                from: from.to_vec(),
                inclusive: true,
                limit: limit as u32,
            },
        };
        let lookup: Lookup = self.records_call("records/lookup", &req)?;
        Ok((
            lookup.value.map(serde_bytes::ByteBuf::into_vec),
            record_page(lookup.page),
        ))
    }

    fn reachable(&self) -> bool {
        self.peer.reachable()
    }

    fn responsive(&self) -> bool {
        self.peer.responsive()
    }
}

impl RemoteDrive {
    /// Sends `req` to the drive's records call `op` and reads its answer (both postcard).
    fn records_call<T: serde::de::DeserializeOwned>(
        &self,
        op: &str,
        req: &impl serde::Serialize,
    ) -> Result<T, StoreError> {
        let body = postcard::to_stdvec(req).map_err(|e| StoreError::Internal(e.to_string()))?;
        let bytes = self
            .peer
            .finish(self.peer.call_ok(Method::POST, &self.path(op), body))?;
        postcard::from_bytes(&bytes).map_err(|e| StoreError::Internal(e.to_string()))
    }
}

fn record_page(page: Page) -> RecordPage {
    (
        page.records
            .into_iter()
            .map(|(k, v)| (k.into_vec(), v.into_vec()))
            .collect(),
        page.more,
    )
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<FrameResult>,
) -> impl futures_util::Stream<Item = FrameResult> + Send + Sync + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
