//! Downloads a 100 MB document through the whole media pipeline (webhook ->
//! applier -> job -> streaming download from a local server -> encrypted store) and
//! prints how much resident memory grew while it did.
//!
//! ```sh
//! cargo run --release --example media_download_bench [-- MB]
//! ```

use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wagate::config::Secret;

/// `VmHWM` (peak) and `VmRSS` (now) in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Fills `buf` with the next bytes of a fixed pseudo-random pattern.
fn pattern(x: &mut u64, buf: &mut [u8]) {
    for b in buf {
        *x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        *b = (*x >> 56) as u8;
    }
}

/// Serves `len` pattern bytes to every request, 64 KiB at a time.
async fn serve(listener: tokio::net::TcpListener, len: u64) {
    while let Ok((mut conn, _)) = listener.accept().await {
        tokio::spawn(async move {
            let mut head = [0u8; 4096];
            let _ = conn.read(&mut head).await;
            let hdr = format!("HTTP/1.1 200 OK\r\ncontent-type: application/pdf\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n");
            conn.write_all(hdr.as_bytes()).await?;
            let (mut x, mut left, mut buf) = (7u64, len, vec![0u8; 64 * 1024]);
            while left > 0 {
                let n = buf.len().min(left as usize);
                pattern(&mut x, &mut buf[..n]);
                conn.write_all(&buf[..n]).await?;
                left -= n as u64;
            }
            conn.shutdown().await
        });
    }
}

#[tokio::main]
async fn main() {
    let mb: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let len = mb * 1_000_000;
    let (mut x, mut left, mut buf, mut hash) = (7u64, len, vec![0u8; 64 * 1024], Sha256::new());
    while left > 0 {
        let n = buf.len().min(left as usize);
        pattern(&mut x, &mut buf[..n]);
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    drop(buf);
    let sha = base64::engine::general_purpose::STANDARD.encode(hash.finalize());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, len));

    let dir = tempfile::tempdir().unwrap();
    let mut config = wagate::Config::new(dir.path());
    config.app_secrets = vec![Secret::new("bench_secret")];
    config.api_token = Some(Secret::new("bench-api-token-0123456789"));
    config.graph.url = origin.clone();
    config.graph.token = Some(Secret::new("bench-token"));
    config.media.hosts = vec!["127.0.0.1".into()];
    let app = wagate::App::start(config).await.unwrap();
    let state = app.state.clone();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", api.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(wagate::serve(api, app, async {
        let _ = stop_rx.await;
    }));

    let now = wagate::util::clock::now_micros() / 1_000_000;
    let body = serde_json::json!({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
        "messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"2"},
        "contacts":[{"profile":{"name":"Bench"},"wa_id":"16505551234"}],
        "messages":[{"from":"16505551234","id":"wamid.bench","timestamp":now.to_string(),"type":"document",
            "document":{"id":"9001","mime_type":"application/pdf","sha256":sha,"file_size":len,"filename":"big.pdf",
            "url":format!("{origin}/media/big")}}]}}]}]});
    let body = serde_json::to_vec(&body).unwrap();
    let client = reqwest::Client::new();
    // Warm up the allocator and the server before measuring.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (hwm0, rss0) = rss_kib();
    let t = Instant::now();
    let sig = wagate::events::signature::sign(b"bench_secret", &body);
    let resp = client
        .post(format!("{base}/webhook"))
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let entry = loop {
        let st = state.store.clone();
        let e = tokio::task::spawn_blocking(move || st.media_entry("9001"))
            .await
            .unwrap()
            .unwrap();
        match e {
            Some(e) if e.state.is_final() => break e,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let secs = t.elapsed().as_secs_f64();
    let (hwm1, rss1) = rss_kib();
    println!("state: {} ({:?})", entry.state.as_str(), entry.last_error);
    println!(
        "{mb} MB document: webhook -> stored in {secs:.2}s ({:.0} MB/s)",
        mb as f64 / secs
    );
    println!(
        "resident memory: peak {hwm0} KiB -> {hwm1} KiB (growth {} KiB), now {rss0} -> {rss1} KiB",
        hwm1.saturating_sub(hwm0)
    );
    let _ = stop_tx.send(());
    let _ = server.await;
    assert_eq!(entry.state.as_str(), "stored");
    assert!(
        hwm1 - hwm0 < 16 * 1024,
        "resident memory grew by 16 MiB or more"
    );
}
