//! Dashboard render times with a realistic amount of data.
//!
//! ```text
//! cargo run --release --example dashboard_bench                 # 100,000 messages, 50 requests per page
//! cargo run --release --example dashboard_bench -- 20000 20     # messages, requests per page
//! ```
//!
//! Starts wagate in this process on 127.0.0.1:0 with a temporary data directory,
//! posts signed webhooks through HTTP (10 text messages per delivery, 1,000
//! contacts, timestamps spread over the last 28 hours; plus status deliveries with
//! 5% failures, and some rejected deliveries), waits until everything is applied,
//! logs in, and fetches each dashboard page N times one after the other (a warm-up
//! round first). Prints p50 / p99 / max of the whole request (loopback HTTP
//! included) as a Markdown table, and exits 1 if any page's p99 is 50 ms or more.

use std::time::{Duration, Instant};

use serde_json::json;
use wagate::config::Secret;
use wagate::{App, Config};

const SECRET: &str = "bench_app_secret";
const PASSWORD: &str = "bench-dashboard-password";
const PER_DELIVERY: usize = 10;
const CONTACTS: usize = 1000;
const WORDS: &[&str] = &[
    "order", "delivery", "refund", "hello", "price", "invoice", "tomorrow", "thanks", "broken",
    "address", "photo", "urgent", "cancel", "receipt", "schedule",
];

fn contact(i: usize) -> String {
    format!("1555{:07}", i % CONTACTS)
}

fn message_delivery(first: usize, now: i64, total: usize) -> Vec<u8> {
    let messages: Vec<_> = (first..first + PER_DELIVERY)
        .map(|i| {
            let ts = now - (total.saturating_sub(i) as i64 * 100_800 / total as i64);
            let w = |k: usize| WORDS[(i * 7 + k * 3) % WORDS.len()];
            json!({
                "from": contact(i),
                "id": format!("wamid.BENCH{i:09}"),
                "timestamp": ts.to_string(),
                "type": "text",
                "text": {"body": format!("{} {} {} #{i}", w(0), w(1), w(2))}
            })
        })
        .collect();
    let contacts: Vec<_> = (first..first + PER_DELIVERY)
        .map(|i| json!({"profile": {"name": format!("Customer {}", i % CONTACTS)}, "wa_id": contact(i)}))
        .collect();
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": contacts,
            "messages": messages
        }}]}]
    }))
    .unwrap()
}

fn status_delivery(first: usize, now: i64) -> Vec<u8> {
    let statuses: Vec<_> = (first..first + PER_DELIVERY)
        .map(|i| {
            let failed = i % 20 == 0;
            let mut s = json!({
                "id": format!("wamid.OUT{i:09}"),
                "status": if failed { "failed" } else { "delivered" },
                "timestamp": (now - 3600 + (i as i64 % 3600)).to_string(),
                "recipient_id": contact(i)
            });
            if failed {
                s["errors"] = json!([{"code": 131047, "title": "Re-engagement message",
                    "message": "Re-engagement message",
                    "error_data": {"details": "More than 24 hours have passed since the recipient last replied to the sender number."}}]);
            }
            s
        })
        .collect();
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "statuses": statuses
        }}]}]
    }))
    .unwrap()
}

async fn post_all(base: &str, bodies: Vec<(Vec<u8>, bool)>) {
    let client = reqwest::Client::new();
    let url = format!("{base}/webhook");
    let queue = std::sync::Arc::new(std::sync::Mutex::new(bodies));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, url, queue) = (client.clone(), url.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some((body, valid)) = queue.lock().unwrap().pop() else {
                    return;
                };
                let sig = if valid {
                    wagate::events::signature::sign(SECRET.as_bytes(), &body)
                } else {
                    wagate::events::signature::sign(b"some other secret", &body)
                };
                let resp = client
                    .post(&url)
                    .header("x-hub-signature-256", sig)
                    .body(body)
                    .send()
                    .await
                    .expect("POST /webhook");
                assert_eq!(resp.status().as_u16(), if valid { 200 } else { 403 });
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let total: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let requests: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::new(dir.path());
    config.app_secrets = vec![Secret::new(SECRET)];
    config.admin_password = Some(Secret::new(PASSWORD));
    config.api_token = Some(Secret::new("bench-api-token-0123456789"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = App::start(config).await.expect("app starts");
    let state = app.state.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(wagate::serve(listener, app, async {
        let _ = stop_rx.await;
    }));

    let now = wagate::util::clock::now_micros() / 1_000_000;
    let started = Instant::now();
    let mut bodies: Vec<(Vec<u8>, bool)> = (0..total / PER_DELIVERY)
        .map(|d| (message_delivery(d * PER_DELIVERY, now, total), true))
        .collect();
    bodies.extend((0..total / 100).map(|d| (status_delivery(d * PER_DELIVERY, now), true)));
    bodies.extend((0..200).map(|d| {
        (
            message_delivery(total + d * PER_DELIVERY, now, total),
            false,
        )
    }));
    bodies.reverse(); // popped from the end: oldest first
    let deliveries = bodies.len();
    post_all(&base, bodies).await;
    // Wait until processing has caught up with everything journaled.
    let target = state.journal.heads().borrow().clone();
    let mut applied = state.applied.clone();
    while applied.borrow_and_update().overall(&target) < target.last_seq {
        applied.changed().await.unwrap();
    }
    eprintln!(
        "loaded {total} messages in {deliveries} deliveries in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .post(format!("{base}/login"))
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let rejected = state
        .store
        .deliveries(Some(wagate::store::VerdictFilter::Rejected), None, 1)
        .unwrap()
        .items[0]
        .id;
    let pages = [
        "/".to_string(),
        "/dashboard/deliveries".into(),
        "/dashboard/deliveries?verdict=rejected".into(),
        format!("/dashboard/deliveries/{rejected}"),
        "/dashboard/deliveries?day=2000-01-01".into(),
        "/dashboard/messages".into(),
        "/dashboard/messages?type=text&before=".into(),
        format!("/dashboard/messages?contact={}", contact(7)),
        "/dashboard/messages?q=urgent".into(),
        "/dashboard/messages?q=no-such-text".into(),
        format!("/dashboard/conversation?contact={}", contact(7)),
        "/dashboard/statuses".into(),
        "/dashboard/media".into(),
        "/dashboard/events".into(),
        "/dashboard/settings".into(),
    ];
    println!("| page | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|");
    let mut worst: f64 = 0.0;
    for page in &pages {
        let mut times = Vec::with_capacity(requests);
        for round in 0..=requests {
            let t = Instant::now();
            let resp = client
                .get(format!("{base}{page}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{page}");
            let _ = resp.bytes().await.unwrap();
            if round > 0 {
                times.push(t.elapsed());
            }
        }
        times.sort();
        let p99 = percentile(&times, 0.99);
        worst = worst.max(p99);
        println!(
            "| `{page}` | {:.2} | {:.2} | {:.2} |",
            percentile(&times, 0.5),
            p99,
            times.last().unwrap().as_secs_f64() * 1e3
        );
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    if worst < 50.0 {
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!("a page's p99 is {worst:.1} ms (limit 50 ms)");
        std::process::ExitCode::FAILURE
    }
}
