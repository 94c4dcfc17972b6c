//! Forwarding throughput to one target.
//!
//! ```text
//! cargo run --release --example forward_bench                    # 5,000 deliveries, 1 contact, answers at once
//! cargo run --release --example forward_bench -- 5000 1000 0     # deliveries, contacts, receiver delay (ms)
//! cargo run --release --example forward_bench -- 2000 1000 20    # a receiver taking 20 ms per request
//! cargo run --release --example forward_bench -- 2000 1000 20 1  # WAGATE_FORWARD_CONCURRENCY=1
//! ```
//!
//! Starts wagate in this process on 127.0.0.1:0 (temporary data directory) with
//! one `meta`-mode target: a local receiver (warp on port 0) that answers `200`
//! after the given delay and counts each message id it gets. The receiver first
//! answers `410`, so the target is disabled while N one-message deliveries are
//! posted (from C contacts, round robin) and queue up; then it answers `200`, the
//! target is enabled, and the time until every message has arrived is measured.
//! Prints entries/s, and how many requests carried a message already seen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Notify;
use wagate::config::{ForwardMode, ForwardTarget, Secret};
use wagate::{App, Config};
use warp::Filter;

const SECRET: &str = "bench_app_secret";
const TOKEN: &str = "bench-api-token-0123456789";

fn delivery(i: usize, contacts: usize, now: i64) -> Vec<u8> {
    let from = format!("1555{:07}", i % contacts);
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Bench"}, "wa_id": from}],
            "messages": [{"from": from, "id": format!("wamid.FWDBENCH{i:09}"),
                "timestamp": now.to_string(), "type": "text", "text": {"body": format!("hello {i}")}}]
        }}]}]
    }))
    .unwrap()
}

#[derive(Default)]
struct Received {
    counts: HashMap<String, u32>,
    requests: u64,
}

fn ids(body: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let mut out = Vec::new();
    for e in v["entry"].as_array().into_iter().flatten() {
        for c in e["changes"].as_array().into_iter().flatten() {
            for m in c["value"]["messages"].as_array().into_iter().flatten() {
                out.push(m["id"].as_str().unwrap_or("").to_string());
            }
        }
    }
    out
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (total, contacts, delay_ms) = (arg(0, 5000), arg(1, 1).max(1), arg(2, 0));
    let concurrency = arg(3, 4).clamp(1, 64);

    // The receiver: 410 until told otherwise, then 200 after `delay_ms`.
    let received: Arc<Mutex<Received>> = Arc::default();
    let open = Arc::new(AtomicBool::new(false));
    let notify = Arc::new(Notify::new());
    let (r, o, n) = (received.clone(), open.clone(), notify.clone());
    let route = warp::post()
        .and(warp::body::bytes())
        .then(move |body: bytes::Bytes| {
            let (r, o, n) = (r.clone(), o.clone(), n.clone());
            async move {
                if !o.load(Ordering::SeqCst) {
                    return warp::http::StatusCode::GONE;
                }
                if delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(delay_ms as u64)).await;
                }
                {
                    let mut r = r.lock().unwrap();
                    r.requests += 1;
                    for id in ids(&body) {
                        *r.counts.entry(id).or_default() += 1;
                    }
                }
                n.notify_waiters();
                warp::http::StatusCode::OK
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(warp::serve(route).incoming(listener).run());

    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::new(dir.path());
    config.app_secrets = vec![Secret::new(SECRET)];
    config.api_token = Some(Secret::new(TOKEN));
    config.forward.concurrency = concurrency;
    config.forward.targets = vec![ForwardTarget::new(
        "bench",
        &target_url,
        "target_secret",
        ForwardMode::Meta,
    )];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = App::start(config).await.expect("app starts");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(wagate::serve(listener, app, async {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::new();
    let get_target = || async {
        let v: serde_json::Value = client
            .get(format!("{base}/api/forward/targets"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["targets"][0].clone()
    };

    // Queue up N deliveries behind a disabled target.
    let now = wagate::util::clock::now_micros() / 1_000_000;
    for i in 0..total {
        let body = delivery(i, contacts, now);
        let resp = client
            .post(format!("{base}/webhook"))
            .header(
                "x-hub-signature-256",
                wagate::events::signature::sign(SECRET.as_bytes(), &body),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    loop {
        let t = get_target().await;
        if t["state"] == "disabled" && t["queued"].as_u64() == Some(total as u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    open.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let resp = client
        .post(format!("{base}/api/forward/targets/bench/enable"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    loop {
        let notified = notify.notified();
        if received.lock().unwrap().counts.len() >= total {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
    }
    let took = started.elapsed();
    let (requests, twice) = {
        let r = received.lock().unwrap();
        (r.requests, r.counts.values().filter(|n| **n > 1).count())
    };
    println!(
        "{total} deliveries, {contacts} contact(s), receiver delay {delay_ms} ms, concurrency {concurrency}: {:.2} s, {:.0} entries/s ({} requests, {twice} sent twice)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        requests,
    );
    let _ = stop_tx.send(());
    let _ = server.await;
}
