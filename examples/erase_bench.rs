//! How long one contact's erasure takes with N stored messages.
//!
//! ```text
//! cargo run --release --example erase_bench               # 100,000 messages
//! cargo run --release --example erase_bench -- 300000
//! ```
//!
//! Fills a temporary data directory through the journal directly (signed-looking
//! deliveries of 10 text messages from 10 of 1,000 contacts, appended by 64 tasks
//! so group commit batches them), starts wagate on it and waits until everything
//! is applied, then erases one contact (about 1 in 1,000 messages, spread over
//! 1% of the deliveries and so over every segment) and prints how long each part
//! took and the erasure's counts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wagate::journal::delivery::{Delivery, Verdict};
use wagate::journal::{Journal, JournalOptions, Kind, Stream};
use wagate::privacy::{request_erasure, EraseState, Requester};
use wagate::{App, Config};

const PER_DELIVERY: usize = 10;
const CONTACTS: usize = 1000;

fn contact(i: usize) -> String {
    format!("1555{:07}", i % CONTACTS)
}

fn body(first: usize, now: i64) -> Vec<u8> {
    let messages: Vec<_> = (first..first + PER_DELIVERY)
        .map(|i| {
            json!({"from": contact(i), "id": format!("wamid.BENCH{i:09}"),
            "timestamp": (now - 3600).to_string(), "type": "text",
            "text": {"body": format!("order {i} please, thanks")}})
        })
        .collect();
    let contacts: Vec<_> = (first..first + PER_DELIVERY)
        .map(|i| json!({"profile": {"name": format!("Customer {}", i % CONTACTS)}, "wa_id": contact(i)}))
        .collect();
    serde_json::to_vec(
        &json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
        "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": contacts, "messages": messages}}]}]}),
    )
    .unwrap()
}

async fn fill(config: &Config, messages: usize, now: i64) {
    let journal = Arc::new(
        Journal::open(&JournalOptions {
            dir: config.data_dir.clone(),
            segment_size: config.segment_size,
            quarantine_max: config.quarantine_max,
            queue: config.memory.journal_queue(),
            batch_bytes: config.memory.journal_batch_bytes(),
        })
        .expect("journal"),
    );
    let deliveries = messages / PER_DELIVERY;
    let mut tasks = Vec::new();
    for t in 0..64 {
        let j = journal.clone();
        tasks.push(tokio::spawn(async move {
            for d in (t..deliveries).step_by(64) {
                let body = body(d * PER_DELIVERY, now);
                let delivery = Delivery {
                    peer: Some("127.0.0.1".into()),
                    verdict: Verdict::Accepted,
                    reason: String::new(),
                    secret_index: Some(0),
                    declared_length: Some(body.len() as u64),
                    received_length: body.len() as u64,
                    headers: vec![("content-type".into(), b"application/json".to_vec())],
                    body,
                    reverified_from: None,
                };
                j.append(
                    Stream::Main,
                    Kind::Delivery,
                    now * 1_000_000,
                    delivery.encode(),
                )
                .await
                .expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    journal.shutdown().await;
}

async fn wait_applied(app: &App) {
    let mut applied = app.state.applied.clone();
    let target = app.state.journal.heads().borrow().clone();
    while applied.borrow_and_update().overall(&target) < target.last_seq {
        applied.changed().await.unwrap();
    }
}

#[tokio::main]
async fn main() {
    let messages: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("a number"));
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.app_secrets = vec![wagate::config::Secret::new("bench")];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = Instant::now();
    fill(&config, messages, now).await;
    let filled = t.elapsed();
    let t = Instant::now();
    let app = App::start(config).await.expect("app starts");
    wait_applied(&app).await;
    let applied = t.elapsed();
    let t = Instant::now();
    let e = request_erasure(&app.state.erase_handles(), contact(0), Requester::Cli)
        .await
        .expect("erasure requested");
    let done = loop {
        let s = app.state.erasures.status(&e.erasure_id).unwrap().unwrap();
        if s.state == EraseState::Done {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let erased = t.elapsed();
    let journal_bytes: u64 = app
        .state
        .journal
        .segments(Stream::Main)
        .unwrap()
        .iter()
        .map(|s| s.bytes)
        .sum();
    println!("| messages | journal | fill | apply | erasure |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {messages} | {} MiB | {:.1} s | {:.1} s | {:.1} s |",
        journal_bytes >> 20,
        filled.as_secs_f64(),
        applied.as_secs_f64(),
        erased.as_secs_f64()
    );
    println!("counts: {}", serde_json::to_string(&done.counts).unwrap());
    app.shutdown().await;
}
