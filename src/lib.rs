//! wagate: a self-hosted, durable front door for the WhatsApp Cloud API.
//!
//! [`serve`] runs the HTTP server on a listener the caller bound (tests bind port 0)
//! until `shutdown` resolves, then drains in-flight requests and shuts the
//! application down cleanly.

pub mod acme;
pub mod app;
pub mod config;
pub mod events;
pub mod forward;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;
pub mod httpkit;
pub mod journal;
pub mod media;
pub mod outbox;
pub mod pipeline;
pub mod privacy;
pub mod store;
pub mod tls;
pub mod upstream;
pub mod util;
pub mod web;
pub mod webhook;

use std::future::Future;

pub use app::{App, StartError};
pub use config::Config;

/// Why serving ended other than by the shutdown asked for.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The applier gave up: the store stays broken although the disk has room. A
    /// new process reopens it and re-applies from the journal.
    #[error("processing is stuck: {0}")]
    Stuck(String),
}

/// `EX_TEMPFAIL` (sysexits.h): a temporary failure; a restart is expected to help.
pub const EX_TEMPFAIL: u8 = 75;

impl ServeError {
    /// The process's exit code for it (systemd's `Restart=on-failure` restarts it).
    pub fn exit_code(&self) -> u8 {
        match self {
            ServeError::Stuck(_) => EX_TEMPFAIL,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting,
/// finishes in-flight requests, syncs the journal and flushes state. Stops the same
/// way, with an error, when processing gives up ([`ServeError::Stuck`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with_tls(listener, app, None, shutdown).await
}

/// [`serve`], over HTTPS when `tls` is given.
pub async fn serve_with_tls(
    listener: tokio::net::TcpListener,
    app: App,
    tls: Option<std::sync::Arc<tls::TlsConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let https = tls.is_some();
    let routes = web::routes(app.state.clone());
    let outbox = app.state.outbox.clone();
    let health = app.state.apply_health.clone();
    let (gave_up, mut why) = tokio::sync::oneshot::channel();
    // Answer callers waiting on a send first, so the graceful stop is not held up.
    let shutdown = async move {
        tokio::select! {
            () = shutdown => {}
            reason = health.given_up() => {
                tracing::error!(%reason, "stopping: processing is stuck");
                let _ = gave_up.send(reason);
            }
        }
        outbox.begin_shutdown();
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, https, "wagate listening");
    }
    let limits = app.state.config.server.clone();
    web::server::run(listener, routes, tls, limits, shutdown).await;
    tracing::info!("HTTP server stopped; shutting down");
    app.shutdown().await;
    match why.try_recv() {
        Ok(reason) => Err(ServeError::Stuck(reason)),
        Err(_) => Ok(()),
    }
}

/// Reloads the TLS certificate files on every SIGHUP, for as long as the process
/// runs (with ACME there are none; SIGHUP is then only logged, not fatal).
pub fn reload_tls_on_sighup(tls: std::sync::Arc<tls::TlsConfig>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: certificate reload disabled");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) if tls.is_managed() => {
                    tracing::info!("SIGHUP: the certificate is managed by ACME; nothing to reload")
                }
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: TLS reload failed; keeping the certificate in use")
                }
            }
        }
    });
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
