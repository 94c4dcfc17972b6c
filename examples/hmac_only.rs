//! The floor wagate's receiver is measured against: a warp server that only checks
//! the HMAC of `POST /webhook` and answers `200` (or `403`), keeping nothing.
//!
//! ```text
//! META_APP_SECRET=... target/release/examples/hmac_only            # 127.0.0.1:0
//! HMAC_ONLY_LISTEN=127.0.0.1:8081 target/release/examples/hmac_only
//! ```
//!
//! Prints `hmac-only listening addr=<addr>` once it listens (what
//! `scripts/ingest-bench` waits for). It reads the whole body (up to 4 MiB, as
//! wagate's default `WAGATE_MAX_BODY`), hex-decodes `X-Hub-Signature-256`, and
//! compares HMAC-SHA256 in constant time, as wagate does; it writes no journal, no
//! fsync, no processing. Tokio's default runtime: one worker per CPU it may run on.

use std::io::Write;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use warp::Filter;

fn valid(secret: &[u8], header: Option<&str>, body: &[u8]) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[tokio::main]
async fn main() {
    let secret: &'static [u8] = std::env::var("META_APP_SECRET")
        .unwrap_or_else(|_| "test_app_secret_do_not_use".into())
        .into_bytes()
        .leak();
    let listen = std::env::var("HMAC_ONLY_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
    let route = warp::post()
        .and(warp::path("webhook"))
        .and(warp::path::end())
        .and(warp::header::optional::<String>("x-hub-signature-256"))
        .and(warp::body::content_length_limit(4 * 1024 * 1024))
        .and(warp::body::bytes())
        .map(move |sig: Option<String>, body: bytes::Bytes| {
            let status = if valid(secret, sig.as_deref(), &body) {
                warp::http::StatusCode::OK
            } else {
                warp::http::StatusCode::FORBIDDEN
            };
            warp::reply::with_status("OK", status)
        });
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {listen}: {e}"));
    let addr = listener.local_addr().expect("local address");
    let mut out = std::io::stdout();
    let _ = writeln!(out, "hmac-only listening addr={addr}");
    let _ = out.flush();
    warp::serve(route).incoming(listener).run().await;
}
