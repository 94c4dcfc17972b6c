//! Sending set up for tests: wagate pointed at the fake Graph server with small
//! backoffs, messages posted to the outbox API, an entry once it is final.

use std::time::Duration;

use serde_json::{json, Value};
use wagate::Config;

use super::fake_graph::FakeGraph;
use super::{eventually, stays, TestApp, API_TOKEN, DEADLINE};
use wagate::util::clock::Clock;

pub const PHONE_ID: &str = "106540352242922";
pub const TOKEN: &str = "test-whatsapp-token";

/// Points `c` at the Graph server at `url`, with a fast rate and small backoffs.
pub fn graph_config(c: &mut Config, url: &str) {
    c.graph.url = url.to_string();
    c.graph.token = Some(wagate::config::Secret::new(TOKEN));
    c.graph.phone_number_id = Some(PHONE_ID.into());
    c.graph.timeout = Duration::from_secs(2);
    c.send.rate = 1000.0;
    c.send.backoff_base = Duration::from_millis(20);
    c.send.backoff_cap = Duration::from_millis(200);
    // The conformance status payloads carry 2025 timestamps.
    c.dedup_ttl = Duration::from_secs(3650 * 86400);
}

/// wagate sending to `fake`.
pub async fn spawn(fake: &FakeGraph, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let url = fake.url.clone();
    TestApp::spawn_with(move |c| {
        graph_config(c, &url);
        tweak(c);
    })
    .await
}

/// A fresh inbound text from `from`: opens the 24-hour window.
pub fn inbound(from: &str, wamid: &str) -> Vec<u8> {
    format!(
        "{{\"object\":\"whatsapp_business_account\",\"entry\":[{{\"id\":\"102290129340398\",\"changes\":[{{\"value\":{{\"messaging_product\":\"whatsapp\",\"metadata\":{{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"{PHONE_ID}\"}},\"contacts\":[{{\"profile\":{{\"name\":\"T\"}},\"wa_id\":\"{from}\"}}],\"messages\":[{{\"from\":\"{from}\",\"id\":\"{wamid}\",\"timestamp\":\"{}\",\"text\":{{\"body\":\"hi\"}},\"type\":\"text\"}}]}},\"field\":\"messages\"}}]}}]}}",
        wagate::util::clock::now_micros() / 1_000_000
    )
    .into_bytes()
}

/// A text message to `to`, forced past the 24-hour window check.
pub fn text(to: &str, body: &str) -> Value {
    json!({"to": to, "type": "text", "text": {"body": body}, "force": true})
}

/// `POST /api/messages` (with an `Idempotency-Key`): the status and the answer.
pub async fn post(app: &TestApp, body: &Value, key: Option<&str>) -> (u16, Value) {
    let mut req = app
        .client
        .post(format!("{}/api/messages", app.base))
        .bearer_auth(API_TOKEN)
        .json(body);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let resp = req.send().await.expect("POST /api/messages");
    (resp.status().as_u16(), resp.json().await.expect("JSON"))
}

/// Posts `body` (202 expected); the outbox id.
pub async fn send(app: &TestApp, body: &Value) -> u64 {
    let (status, v) = post(app, body, None).await;
    assert_eq!(status, 202, "{v}");
    v["id"].as_u64().expect("id")
}

/// Waits for the message to be final, then reads its outbox entry.
pub async fn finished(app: &TestApp, id: u64) -> Value {
    tokio::time::timeout(DEADLINE, app.state.outbox.wait(id))
        .await
        .unwrap_or_else(|_| panic!("message {id} not final in {DEADLINE:?}"))
        .expect("wait");
    app.get_json(&format!("/api/outbox/{id}")).await
}

/// wagate sending to `fake` on a manual clock standing at a whole second, with
/// pacing off: no retry and no pace slot comes due until the test moves the clock.
pub async fn spawn_clocked(fake: &FakeGraph, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let url = fake.url.clone();
    let now = wagate::util::clock::now_micros();
    let clock = Clock::manual(now - now % 1_000_000);
    TestApp::spawn_clocked(clock, move |c| {
        graph_config(c, &url);
        c.send.rate = 1e9;
        tweak(c);
    })
    .await
}

/// The delay wagate chose after attempt `n` (from 0), once it is journaled.
pub async fn retry_in(app: &TestApp, id: u64, n: usize) -> Duration {
    let ms = eventually(&format!("attempt {n} of {id} to be answered"), async || {
        let e = app.get_json(&format!("/api/outbox/{id}")).await;
        e["attempts"][n]["retry_in_ms"].as_u64().ok_or(e)
    })
    .await;
    Duration::from_millis(ms)
}

/// Moves the clock to 1 ms short of `delay` (a delay wagate chose, in whole ms as
/// journaled, or a pace slot) and checks `fake` still has `count` requests, then
/// 1 ms past it and waits for the next one.
pub async fn let_pass(app: &TestApp, fake: &FakeGraph, count: usize, delay: Duration) {
    if let Some(short) = delay.checked_sub(Duration::from_millis(1)) {
        app.clock().advance(short);
        stays("no request before the delay is over", async || {
            fake.received().len() == count
        })
        .await;
    }
    app.clock().advance(Duration::from_millis(2));
    fake.wait_for(count + 1, false).await;
}
