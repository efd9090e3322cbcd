//! The client side of peer RPC: one HTTP/2 connection pool per peer, signed requests, bounded
//! timeouts, and a liveness flag kept by a background ping so that calls to a dead peer fail
//! at once instead of waiting for a timeout.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::auth::{sign, SignedBody, StreamSeal};
use crate::store::quorum::{self, LeftBehind};
use crate::store::StoreError;

pub type PeerBody = BoxBody<Bytes, std::io::Error>;

/// Small calls (records, locks) must answer within this.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a peer is pinged, and how long a ping may take.
const PING_EVERY: Duration = Duration::from_millis(500);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// A peer that refuses connections is down at once; one that only answers slowly is down
/// after this many pings in a row time out (a busy peer is not a dead one: writes skip a
/// down peer, so marking it down too eagerly leaves writes on fewer drives).
const SLOW_PINGS_DOWN: u32 = 3;
/// A peer that answered nothing (no ping, no call) for this long is not waited for past a
/// quorum of the others (see [`crate::store::quorum::run`]); a healthy one answers a ping
/// every [`PING_EVERY`].
const RESPONSIVE: Duration = Duration::from_millis(1500);

pub struct PeerClient {
    /// The peer's node name.
    pub name: String,
    /// This server's node name (signs requests).
    me: String,
    base: String,
    secret: Arc<Vec<u8>>,
    http: PeerHttp,
    handle: tokio::runtime::Handle,
    up: AtomicBool,
    /// Whether the peer's being down was logged since it was last up.
    reported_down: AtomicBool,
    slow_pings: AtomicU32,
    /// When the peer last answered anything, in milliseconds since `epoch`.
    last_answer: AtomicU64,
    /// A quorum call left a call to the peer behind since it last answered.
    lagging: AtomicBool,
    epoch: Instant,
}

pub fn full(bytes: impl Into<Bytes>) -> PeerBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn peer_error(name: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Io(std::io::Error::other(format!("peer {name}: {what}")))
}

/// An error with its causes: hyper's own message ("client error (Connect)") says little; the
/// cause says why (refused, a certificate from an unknown CA, no TLS at the other end).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The connection pool to one peer: HTTP/2 in cleartext, or over TLS when the cluster has a
/// CA (`--tls-ca`); then a peer that does not present a certificate of that CA for its
/// topology host is never reached, so its drives stay offline.
enum PeerHttp {
    Cleartext(Client<HttpConnector, PeerBody>),
    Tls(Client<HttpsConnector<HttpConnector>, PeerBody>),
}

impl PeerHttp {
    fn new(tls: Option<Arc<rustls::ClientConfig>>) -> PeerHttp {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .http2_only(true)
            .http2_initial_stream_window_size(4 << 20)
            .http2_initial_connection_window_size(16 << 20)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .http2_keep_alive_timeout(Duration::from_secs(5))
            .timer(TokioTimer::new());
        match tls {
            None => PeerHttp::Cleartext(builder.build(connector)),
            Some(config) => {
                // The https connector hands the TCP connection to rustls; the plain connector
                // must not refuse the `https` scheme itself.
                connector.enforce_http(false);
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config((*config).clone())
                    .https_only()
                    .enable_http2()
                    .wrap_connector(connector);
                PeerHttp::Tls(builder.build(https))
            }
        }
    }

    fn scheme(&self) -> &'static str {
        match self {
            PeerHttp::Cleartext(_) => "http",
            PeerHttp::Tls(_) => "https",
        }
    }

    fn request(&self, req: Request<PeerBody>) -> ResponseFuture {
        match self {
            PeerHttp::Cleartext(c) => c.request(req),
            PeerHttp::Tls(c) => c.request(req),
        }
    }
}

impl PeerClient {
    /// A client of the peer `name` at `rpc` (`host:port`), over TLS with `tls` (the peer's
    /// certificate must name `host`). Must be called inside the runtime; starts the peer's
    /// liveness ping.
    pub fn new(
        name: &str,
        rpc: &str,
        me: &str,
        secret: Arc<Vec<u8>>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Arc<PeerClient> {
        let http = PeerHttp::new(tls);
        let client = Arc::new(PeerClient {
            name: name.to_string(),
            me: me.to_string(),
            base: format!("{}://{rpc}", http.scheme()),
            secret,
            http,
            handle: tokio::runtime::Handle::current(),
            up: AtomicBool::new(false),
            reported_down: AtomicBool::new(false),
            slow_pings: AtomicU32::new(0),
            last_answer: AtomicU64::new(0),
            lagging: AtomicBool::new(false),
            epoch: Instant::now(),
        });
        let weak = Arc::downgrade(&client);
        client.handle.spawn(async move {
            loop {
                let Some(c) = weak.upgrade() else { return };
                let (ok, why) = match c.ping().await {
                    Ping::Answered => {
                        c.slow_pings.store(0, Ordering::SeqCst);
                        (true, String::new())
                    }
                    Ping::Refused(why) => (false, why),
                    Ping::Slow(why) => {
                        let slow = c.slow_pings.fetch_add(1, Ordering::SeqCst) + 1;
                        (slow < SLOW_PINGS_DOWN && c.up.load(Ordering::SeqCst), why)
                    }
                };
                let was = c.up.swap(ok, Ordering::SeqCst);
                if ok && !was {
                    tracing::info!(peer = %c.name, "peer is up");
                } else if !ok && !c.reported_down.swap(true, Ordering::SeqCst) {
                    // Said once each time it goes down, with the reason; also for a peer
                    // never reached (a wrong CA or a peer without TLS lasts, so it must show).
                    tracing::warn!(peer = %c.name, error = %why, "peer is down");
                }
                if ok {
                    c.reported_down.store(false, Ordering::SeqCst);
                }
                drop(c);
                tokio::time::sleep(PING_EVERY).await;
            }
        });
        client
    }

    async fn ping(&self) -> Ping {
        let sent = tokio::time::timeout(
            PING_TIMEOUT,
            self.http
                .request(self.signed(Method::GET, "/peer/v1/health", Bytes::new())),
        )
        .await;
        match sent {
            Ok(Ok(r)) if r.status() == StatusCode::OK => {
                self.answered();
                Ping::Answered
            }
            // Includes a failed TLS handshake: a certificate this cluster's CA did not sign
            // or that does not name the peer's host, or a peer that does not speak TLS.
            Ok(Err(e)) if e.is_connect() => Ping::Refused(with_causes(&e)),
            // A wrong secret or another server at the address is as good as no peer.
            Ok(Ok(r)) => Ping::Refused(format!("the health check answered {}", r.status())),
            Ok(Err(e)) => Ping::Slow(with_causes(&e)),
            Err(_) => Ping::Slow(format!("no answer within {PING_TIMEOUT:?}")),
        }
    }

    /// A request with a whole body, signed with its digest. Peer calls with whole bodies are
    /// small (records, locks, notices; an inline object's shards at most), so hashing them on
    /// the executor is cheap; shard files stream ([`PeerClient::sign_stream`]).
    fn signed(&self, method: Method, path: &str, body: Bytes) -> Request<PeerBody> {
        let (auth, _) = sign(
            &self.secret,
            &self.me,
            method.as_str(),
            path,
            SignedBody::of(&body),
        );
        self.request(method, path, auth, full(body))
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        auth: String,
        body: PeerBody,
    ) -> Request<PeerBody> {
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = format!("{}{path}", self.base)
            .parse()
            .expect("peer addresses come from a validated topology");
        req.headers_mut().insert(
            super::AUTH_HEADER,
            auth.parse().expect("the signature is ASCII"),
        );
        req
    }

    /// Whether the peer answered its last ping (and no call failed since).
    pub fn reachable(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    fn answered(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_answer.fetch_max(now, Ordering::Relaxed);
        self.lagging.store(false, Ordering::Relaxed);
    }

    /// Whether the peer is up, answered something within [`RESPONSIVE`], and kept up with
    /// the last quorum call since: one that went quiet (hung, not yet found down by the
    /// pings) is not waited for when others suffice, and healing does not write to it. Its
    /// next answer (a ping, every [`PING_EVERY`]) makes it responsive again.
    pub fn responsive(&self) -> bool {
        let last = Duration::from_millis(self.last_answer.load(Ordering::Relaxed));
        self.reachable()
            && !self.lagging.load(Ordering::Relaxed)
            && self.epoch.elapsed().saturating_sub(last) < RESPONSIVE
    }

    fn mark_down(&self) {
        if self.up.swap(false, Ordering::SeqCst) {
            tracing::warn!(peer = %self.name, "peer stopped answering");
        }
    }

    /// Sends one request with a whole body, signed with the body's digest; returns the
    /// response with its body still streaming.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Response<Incoming>, StoreError> {
        self.send_request(self.signed(method, path, body)).await
    }

    /// Signs a request whose body streams: its digest is not known yet, so the request signs
    /// that it streams, and the stream must end with a commit trailer sealed (with the
    /// returned seal) over the digest of what was sent. Returns the `x-coffer-peer` value
    /// for [`PeerClient::send_stream`], and the seal.
    pub fn sign_stream(&self, method: &Method, path: &str) -> (String, StreamSeal) {
        let (auth, seal) = sign(
            &self.secret,
            &self.me,
            method.as_str(),
            path,
            SignedBody::Trailer,
        );
        (auth, seal.expect("a streamed request has a seal"))
    }

    /// Sends a request signed by [`PeerClient::sign_stream`] with its streaming body.
    pub async fn send_stream(
        &self,
        method: Method,
        path: &str,
        auth: String,
        body: PeerBody,
    ) -> Result<Response<Incoming>, StoreError> {
        self.send_request(self.request(method, path, auth, body))
            .await
    }

    async fn send_request(&self, req: Request<PeerBody>) -> Result<Response<Incoming>, StoreError> {
        let sent = self.http.request(req).await;
        if sent.is_ok() {
            self.answered();
        }
        sent.map_err(|e| {
            // Only a failure to reach the peer says it is down; a request whose body the
            // caller abandoned (an upload that lost its quorum) says nothing about the peer.
            if e.is_connect() {
                self.mark_down();
            }
            peer_error(&self.name, e)
        })
    }

    /// A small call: sends `body`, reads the whole answer, within [`CALL_TIMEOUT`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), StoreError> {
        if !self.reachable() {
            return Err(peer_error(&self.name, "offline"));
        }
        let work = async {
            let resp = self.send(method, path, body.into()).await?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| peer_error(&self.name, e))?
                .to_bytes();
            Ok((status, bytes))
        };
        match tokio::time::timeout(CALL_TIMEOUT, work).await {
            Ok(r) => r,
            Err(_) => {
                self.mark_down();
                Err(peer_error(&self.name, "timed out"))
            }
        }
    }

    /// Like [`PeerClient::call`], failing unless the peer answers 200.
    pub async fn call_ok(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Bytes, StoreError> {
        let (status, bytes) = self.call(method, path, body).await?;
        if status != StatusCode::OK {
            return Err(peer_error(
                &self.name,
                format!("{path}: {status}: {}", String::from_utf8_lossy(&bytes)),
            ));
        }
        Ok(bytes)
    }

    /// Runs `fut` to completion from synchronous store code (a blocking thread, or a runtime
    /// worker, which is then handed over to other tasks meanwhile).
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        block_on(&self.handle, fut)
    }

    /// Like [`PeerClient::block_on`], giving up as soon as the quorum call this thread serves
    /// (see [`crate::store::quorum::run`]) returns without it.
    pub fn wait<F: Future>(&self, fut: F) -> Result<F::Output, LeftBehind> {
        let token = quorum::left_behind();
        let out = self.block_on(async move {
            match token {
                None => Ok(fut.await),
                Some(token) => tokio::select! {
                    biased;
                    out = fut => Ok(out),
                    () = token.cancelled() => Err(LeftBehind),
                },
            }
        });
        if out.is_err() {
            self.lagging.store(true, Ordering::Relaxed);
        }
        out
    }

    /// Waits (see [`PeerClient::wait`]) for a call that bounds its own time.
    pub fn finish<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.wait(call)
            .map_err(|late| peer_error(&self.name, late))?
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

pub fn block_on<F: Future>(handle: &tokio::runtime::Handle, fut: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::task::block_in_place(|| handle.block_on(fut)),
        Err(_) => handle.block_on(fut),
    }
}

/// What a ping found.
enum Ping {
    Answered,
    /// Nothing listens (or something that is not this cluster's peer), and why.
    Refused(String),
    /// No answer in time, or the connection broke.
    Slow(String),
}
