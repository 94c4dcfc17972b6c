//! wagate: a self-hosted, durable front door for the WhatsApp Cloud API.
//!
//! [`serve`] runs the HTTP server on a listener the caller bound (tests bind port 0)
//! until `shutdown` resolves, then drains in-flight requests and shuts the
//! application down cleanly.

pub mod api;
pub mod app;
pub mod check;
pub mod config;
pub mod delivery;
pub mod disk;
pub mod events;
pub mod fsutil;
pub mod journal;
pub mod media;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod store;
pub mod upstream;
pub mod web;
pub mod webhook;

use std::future::Future;

pub use app::{App, AppState, StartError};
pub use config::Config;

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting,
/// finishes in-flight requests, syncs the journal and flushes state.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let routes = web::routes(app.state.clone());
    let outbox = app.state.outbox.clone();
    // Answer callers waiting on a send first, so the graceful stop is not held up.
    let shutdown = async move {
        shutdown.await;
        outbox.begin_shutdown();
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "wagate listening");
    }
    warp::serve(routes)
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
    tracing::info!("HTTP server stopped; shutting down");
    app.shutdown().await;
}

/// Unix time now, in microseconds.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
