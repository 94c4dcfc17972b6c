//! The HTTP(S) server loop. warp 0.4 has no TLS of its own, so wagate accepts
//! connections itself, terminates TLS with rustls when configured, and serves the
//! warp filter through hyper (HTTP/1.1 and HTTP/2), with graceful shutdown.
//!
//! Every connection is bounded: at most `max_connections` at once (more wait in
//! the listen backlog), a head within `header_timeout`, a body within
//! `body_timeout`, and no connection idle (no byte either way) past `idle_timeout`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_service::Service;
use warp::filters::BoxedFilter;

use super::conn::{AcceptErrors, DeadlineBody, IdleIo};
use crate::config::ServerConfig;
use crate::httpkit::PeerAddr;
use crate::tls::TlsConfig;

/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type Routes = BoxedFilter<(warp::reply::Response,)>;

pub async fn run(
    listener: tokio::net::TcpListener,
    routes: Routes,
    tls: Option<Arc<TlsConfig>>,
    limits: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let limit = crate::util::fdlimit::open_files_limit();
    let cap = crate::util::fdlimit::connection_cap(limits.max_connections, limit);
    if cap < limits.max_connections {
        tracing::warn!(
            wanted = limits.max_connections,
            cap,
            open_files_limit = limit,
            "WAGATE_MAX_CONNECTIONS lowered to fit the open-file limit (raise LimitNOFILE)"
        );
    }
    let slots = Arc::new(Semaphore::new(cap));
    let mut errors = AcceptErrors::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = accept(&listener, &slots) => a,
            _ = &mut shutdown => break,
        };
        let (tcp, peer, slot) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                let (pause, report) = errors.failed(std::time::Instant::now());
                if let Some(n) = report {
                    tracing::warn!(error = %e, errors = n, "accept failed; pausing");
                }
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        errors.succeeded();
        let conn = Conn {
            routes: routes.clone(),
            tls: tls.clone(),
            limits: limits.clone(),
            peer,
        };
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            conn.serve(tcp, watcher).await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Waits for a free connection slot, then for a connection.
async fn accept(
    listener: &tokio::net::TcpListener,
    slots: &Arc<Semaphore>,
) -> std::io::Result<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let slot = slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| std::io::Error::other("connection slots closed"))?;
    let (tcp, peer) = listener.accept().await?;
    let _ = tcp.set_nodelay(true);
    Ok((tcp, peer, slot))
}

/// One accepted connection and what it is served with.
struct Conn {
    routes: Routes,
    tls: Option<Arc<TlsConfig>>,
    limits: ServerConfig,
    peer: SocketAddr,
}

impl Conn {
    async fn serve(self, tcp: TcpStream, watcher: hyper_util::server::graceful::Watcher) {
        let peer = self.peer;
        let Some(tls) = self.tls.clone() else {
            return self.http(tcp, watcher).await;
        };
        let mut stream =
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(tcp)).await {
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
        if stream.get_ref().1.alpn_protocol() == Some(crate::tls::ACME_TLS_ALPN) {
            // A CA's TLS-ALPN-01 validation: the handshake was the answer.
            tracing::debug!(%peer, "ACME TLS-ALPN-01 validation handshake");
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
            return;
        }
        self.http(stream, watcher).await
    }

    /// HTTP/1.1 or HTTP/2 over `io`, within the limits.
    async fn http<I>(self, io: I, watcher: hyper_util::server::graceful::Watcher)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (peer, body_timeout) = (self.peer, self.limits.body_timeout);
        let filtered = warp::service(self.routes);
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let mut req = req.map(|b| DeadlineBody::new(b, body_timeout));
            req.extensions_mut().insert(PeerAddr(peer));
            let mut filtered = filtered.clone();
            filtered.call(req)
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout);
        let io = TokioIo::new(IdleIo::new(io, self.limits.idle_timeout));
        let conn = builder.serve_connection_with_upgrades(io, svc);
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}
