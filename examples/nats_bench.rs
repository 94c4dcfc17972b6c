//! Bus throughput: how fast the `nats` forwarding target publishes to JetStream.
//!
//! ```text
//! cargo run --release --example nats_bench                  # 5,000 deliveries, 1,000 contacts
//! cargo run --release --example nats_bench -- 5000 1 4      # deliveries, contacts, WAGATE_FORWARD_CONCURRENCY
//! ```
//!
//! Needs `nats-server` (Debian package). Starts wagate in this process on
//! 127.0.0.1:0 (temporary data directory) with `WAGATE_NATS_URL` pointing at a free
//! port where nothing listens yet, posts N one-message deliveries (from C contacts,
//! round robin), which queue up while the bus is down; then starts
//! `nats-server -js` on that port (temporary store) and measures from the first
//! message in the stream to the N-th (each one stored and acknowledged: PubAck).
//! Bounded: gives up after 120 s.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::json;
use wagate::config::{ForwardMode, ForwardTarget, NatsConfig, Secret, Transport};
use wagate::{App, Config};

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
            "messages": [{"from": from, "id": format!("wamid.NATSBENCH{i:09}"),
                "timestamp": now.to_string(), "type": "text", "text": {"body": format!("hello {i}")}}]
        }}]}]
    }))
    .unwrap()
}

async fn stream_len(js: &jetstream::Context) -> u64 {
    match js.get_stream("WAGATE").await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (total, contacts) = (arg(0, 5000), arg(1, 1000).max(1));
    let concurrency = arg(2, 4).clamp(1, 64);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");

    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::new(dir.path());
    config.app_secrets = vec![Secret::new(SECRET)];
    config.api_token = Some(Secret::new(TOKEN));
    config.forward.concurrency = concurrency;
    config.forward.backoff_base = Duration::from_millis(1);
    config.forward.backoff_cap = Duration::from_millis(5);
    config.forward.timeout = Duration::from_secs(2);
    config.forward.nats = Some(NatsConfig::new(&url));
    config.forward.targets = vec![ForwardTarget {
        transport: Transport::Nats,
        ..ForwardTarget::new("nats", &url, "", ForwardMode::Events)
    }];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = App::start(config).await.expect("app starts");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(wagate::serve(listener, app, async {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::new();

    // Queue up N deliveries while the bus is down.
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
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v: serde_json::Value = client
            .get(format!("{base}/api/forward/targets"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["targets"][0]["queued"].as_u64() == Some(total as u64) {
            break;
        }
        assert!(Instant::now() < deadline, "not queued in time: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let store = tempfile::tempdir().unwrap();
    let mut nats = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (apt-get install nats-server)");
    let js = loop {
        if let Ok(c) = async_nats::connect(&url).await {
            break jetstream::new(c);
        }
        assert!(Instant::now() < deadline, "nats-server did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    while stream_len(&js).await == 0 {
        assert!(Instant::now() < deadline, "nothing published");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (started, first) = (Instant::now(), stream_len(&js).await);
    let mut last = first;
    while last < total as u64 {
        assert!(
            Instant::now() < deadline,
            "only {last} of {total} published"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        last = stream_len(&js).await;
    }
    let took = started.elapsed();
    println!(
        "{total} deliveries, {contacts} contact(s), concurrency {concurrency}: {:.2} s for the last {}, {:.0} events/s published (PubAck each); stream holds {last}",
        took.as_secs_f64(),
        total as u64 - first,
        (total as u64 - first) as f64 / took.as_secs_f64(),
    );
    let _ = nats.kill();
    let _ = nats.wait();
    let _ = stop_tx.send(());
    let _ = server.await;
}
