//! What the proof drivers (`kill_campaign`, `soak`, `ingest_bench`) share: the real
//! binary as a child process, in-process fakes of Meta (Graph sends, media lookup,
//! the media host) and of a forwarding target, Meta-shaped bodies, and reading
//! wagate back over its API. Everything listens on and talks to 127.0.0.1 only, on
//! ports the kernel picks.
//!
//! Each driver includes this with `#[path = "kit/mod.rs"] mod kit;` and uses its own
//! part of it.

#![allow(dead_code)]

pub mod api;
pub mod bodies;
pub mod child;
pub mod fakes;
pub mod load;
pub mod proc;

use std::time::Duration;

/// The app secret the drivers sign with.
pub const SECRET: &str = "proof_app_secret_do_not_use";
/// The API token the drivers read with.
pub const API_TOKEN: &str = "proof-api-token-0123456789abcdef";
/// The forwarding target's secret.
pub const TARGET_SECRET: &str = "proof_target_secret";
/// The Graph token wagate sends with.
pub const GRAPH_TOKEN: &str = "proof-graph-token";
/// The business phone number id of every body and send.
pub const PHONE_ID: &str = "106540352242922";
/// The dashboard password (soak).
pub const PASSWORD: &str = "proof-dashboard-password";

/// Errors are reported, not handled: a message for the summary.
pub type Res<T> = Result<T, String>;

/// Seconds since the Unix epoch (for bodies: wagate reads time through its own clock).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Polls `f` every 20 ms until it gives `Ok`, at most `limit`; the last `Err` otherwise.
pub async fn poll<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> Res<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(format!("{what}: not within {limit:?} ({e})"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The environment wagate runs with in the drivers: data in `dir`, a free port,
/// sends and media lookups to `graph`, media from `media` (its host and port: the
/// allow-list matches the port too), forwarding to `target`.
pub fn wagate_env(
    dir: &std::path::Path,
    graph: &str,
    media: &str,
    target: &str,
) -> Vec<(String, String)> {
    let dir = dir.to_string_lossy();
    let media_host = media.trim_start_matches("http://").trim_end_matches('/');
    let pairs = [
        ("WAGATE_DATA_DIR", dir.as_ref()),
        ("WAGATE_LISTEN", "127.0.0.1:0"),
        ("META_APP_SECRET", SECRET),
        ("WAGATE_API_TOKEN", API_TOKEN),
        ("WAGATE_ADMIN_PASSWORD", PASSWORD),
        ("RUST_LOG", "info"),
        ("WHATSAPP_TOKEN", GRAPH_TOKEN),
        ("WAGATE_GRAPH_URL", graph),
        ("WAGATE_PHONE_NUMBER_ID", PHONE_ID),
        ("WAGATE_GRAPH_TIMEOUT", "5s"),
        ("WAGATE_SEND_RATE", "500"),
        ("WAGATE_MEDIA_HOSTS", media_host),
        ("WAGATE_MEDIA_BACKOFF_BASE", "10ms"),
        ("WAGATE_MEDIA_BACKOFF_CAP", "100ms"),
        ("WAGATE_FORWARD_URL", target),
        ("WAGATE_FORWARD_SECRET", TARGET_SECRET),
        ("WAGATE_FORWARD_BACKOFF_BASE", "10ms"),
        ("WAGATE_FORWARD_BACKOFF_CAP", "100ms"),
    ];
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
