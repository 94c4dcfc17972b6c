//! What the store benchmarks (`erase_bench`, `retention_bench`) share: a temporary
//! data directory filled through the journal directly (deliveries of 10 text
//! messages from 10 of 1,000 contacts, appended by 64 tasks so group commit batches
//! them), and waiting until a running wagate has applied all of it.

#![allow(dead_code)]

use std::sync::Arc;

use serde_json::json;
use wagate::journal::delivery::{Delivery, Verdict};
use wagate::journal::{Journal, JournalOptions, Kind, Stream};
use wagate::{App, Config};

pub const PER_DELIVERY: usize = 10;
const CONTACTS: usize = 1000;

/// The contact of message `i`.
pub fn contact(i: usize) -> String {
    format!("1555{:07}", i % CONTACTS)
}

/// A delivery of messages `first..first + PER_DELIVERY`, each stamped `ts`.
pub fn body(first: usize, ts: i64) -> Vec<u8> {
    let messages: Vec<_> = (first..first + PER_DELIVERY)
        .map(|i| {
            json!({"from": contact(i), "id": format!("wamid.BENCH{i:09}"),
            "timestamp": ts.to_string(), "type": "text",
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

/// An accepted delivery record of `body`.
pub fn accepted(body: Vec<u8>) -> Vec<u8> {
    Delivery {
        peer: Some("127.0.0.1".into()),
        verdict: Verdict::Accepted,
        reason: String::new(),
        secret_index: Some(0),
        declared_length: Some(body.len() as u64),
        received_length: body.len() as u64,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body,
        reverified_from: None,
    }
    .encode()
}

/// Journals `messages` messages stamped `ts` (seconds) into `config`'s data directory.
pub async fn fill(config: &Config, messages: usize, ts: i64) {
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
                let record = accepted(body(d * PER_DELIVERY, ts));
                j.append(Stream::Main, Kind::Delivery, ts * 1_000_000, record)
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

/// Waits until `app` has applied everything journaled so far.
pub async fn wait_applied(app: &App) {
    let mut applied = app.state.applied.clone();
    let target = app.state.journal.heads().borrow().clone();
    while applied.borrow_and_update().overall(&target) < target.last_seq {
        applied.changed().await.unwrap();
    }
}
