//! The listener: accepts connections (plain TCP, or TLS when given a rustls configuration),
//! serves HTTP/1.1 and HTTP/2 with bounded header sizes, and shuts down gracefully (in-flight
//! requests finish) when asked.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Context;

/// Largest request head (request line plus headers) we accept.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How long a client may take to complete a TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the client reached this server, attached to every request as an extension: bucket
/// policies test `aws:SourceIp` and `aws:SecureTransport` against it.
#[derive(Clone, Copy, Debug)]
pub struct ClientConnection {
    pub peer: SocketAddr,
    pub tls: bool,
}

pub struct ServerHandle {
    pub local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// Stops accepting, lets in-flight requests finish (up to `grace`), then returns.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(grace, self.task).await;
    }
}

pub async fn serve(listener: TcpListener, ctx: Arc<Context>) -> std::io::Result<ServerHandle> {
    serve_with_tls(listener, ctx, None).await
}

/// Like [`serve`]; with `tls`, every connection is TLS (HTTP/1.1 or h2 by ALPN) and its
/// requests carry `ClientConnection { tls: true }`.
pub async fn serve_with_tls(
    listener: TcpListener,
    ctx: Arc<Context>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<ServerHandle> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let local_addr = listener.local_addr()?;
    let (tx, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .max_buf_size(MAX_HEADER_BYTES)
            // A client that half-closes after sending its request (or a truncated body) still
            // gets the answer instead of a dropped connection.
            .half_close(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(60));
        builder
            .http2()
            .max_header_list_size(MAX_HEADER_BYTES as u32);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = rx.changed() => break,
            };
            let _ = stream.set_nodelay(true);
            let ctx = ctx.clone();
            let connection = ClientConnection {
                peer,
                tls: acceptor.is_some(),
            };
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let ctx = ctx.clone();
                    let mut req = req.map(Body::new);
                    req.extensions_mut().insert(connection);
                    async move { Ok::<_, std::convert::Infallible>(super::handle(ctx, req).await) }
                });
            let watcher = graceful.watcher();
            let builder = builder.clone();
            let acceptor = acceptor.clone();
            // The handshake runs in the connection's task so a slow client never holds up
            // the accept loop.
            tokio::spawn(async move {
                let result = match acceptor {
                    None => {
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                    Some(acceptor) => {
                        let stream = match tokio::time::timeout(
                            TLS_HANDSHAKE_TIMEOUT,
                            acceptor.accept(stream),
                        )
                        .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        graceful.shutdown().await;
    });
    Ok(ServerHandle {
        local_addr,
        shutdown: tx,
        task,
    })
}
