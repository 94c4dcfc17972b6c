//! The HTTP(S) server loop. warp 0.4 has no TLS of its own, so wagate accepts
//! connections itself, terminates TLS with rustls when configured, and serves the
//! warp filter through hyper (HTTP/1.1 and HTTP/2), with graceful shutdown.

use std::future::Future;

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tower_service::Service;
use warp::filters::BoxedFilter;

use crate::httpkit::PeerAddr;
use crate::tls::TlsConfig;

/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(
    listener: tokio::net::TcpListener,
    routes: BoxedFilter<(warp::reply::Response,)>,
    tls: Option<Arc<TlsConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let filtered = warp::service(routes.clone());
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(PeerAddr(peer));
                let mut filtered = filtered.clone();
                filtered.call(req)
            });
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc);
                    watcher.watch(conn).await
                }
                Some(tls) => {
                    let mut stream =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(tcp))
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
                    if stream.get_ref().1.alpn_protocol() == Some(crate::tls::ACME_TLS_ALPN) {
                        // A CA's TLS-ALPN-01 validation: the handshake was the answer.
                        tracing::debug!(%peer, "ACME TLS-ALPN-01 validation handshake");
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
                        return;
                    }
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
