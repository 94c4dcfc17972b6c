//! Forwarding set up for tests: wagate forwarding to fake targets with small retry
//! delays, Meta deliveries made to order, replays, a target's state over the API.

use std::time::Duration;

use serde_json::{json, Value};
use wagate::config::{ForwardMode, ForwardTarget};
use wagate::util::clock::Clock;

use super::fake_target::FakeTarget;
use super::{data_path, eventually, TestApp, API_TOKEN, TEN_YEARS};

pub const TARGET_SECRET: &str = "target_secret_for_tests";
pub const PHONE: &str = "106540352242922";

pub fn target(id: &str, t: &FakeTarget, secret: &str, mode: ForwardMode) -> ForwardTarget {
    ForwardTarget::new(id, &t.url, secret, mode)
}

/// wagate forwarding to `targets`, with retry delays small enough for tests.
pub async fn spawn(
    targets: Vec<ForwardTarget>,
    tweak: impl FnOnce(&mut wagate::Config),
) -> TestApp {
    spawn_clocked(Clock::system(), targets, tweak).await
}

/// The same on `clock` (a manual one: backoffs pass when the test moves it).
pub async fn spawn_clocked(
    clock: Clock,
    targets: Vec<ForwardTarget>,
    tweak: impl FnOnce(&mut wagate::Config),
) -> TestApp {
    TestApp::spawn_clocked(clock, |c| {
        c.dedup_ttl = TEN_YEARS;
        c.forward.targets = targets;
        c.forward.timeout = Duration::from_secs(5);
        c.forward.backoff_base = Duration::from_millis(10);
        c.forward.backoff_cap = Duration::from_millis(40);
        tweak(c);
    })
    .await
}

/// A Meta delivery with one text message per id, for `phone`, sent now.
pub fn messages_body(phone: &str, ids: &[&str]) -> Vec<u8> {
    messages_body_from(phone, "16505551234", ids)
}

/// The same, from contact `from`.
pub fn messages_body_from(phone: &str, from: &str, ids: &[&str]) -> Vec<u8> {
    let ts = wagate::util::clock::now_micros() / 1_000_000;
    let messages: Vec<_> = ids
        .iter()
        .map(|id| json!({"from": from, "id": id, "timestamp": ts.to_string(), "type": "text", "text": {"body": format!("hi {id}")}}))
        .collect();
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone},
        "contacts": [{"profile": {"name": "Kerry"}, "wa_id": from}],
        "messages": messages}}]}]}))
    .unwrap()
}

/// A payload of the conformance corpus.
pub fn payload(file: &str) -> Vec<u8> {
    std::fs::read(data_path(&format!("payloads/{file}"))).unwrap()
}

/// `POST /api/forward/replay`: the status and the JSON answer.
pub async fn replay(app: &TestApp, body: Value) -> (u16, Value) {
    let resp = app
        .client
        .post(format!("{}/api/forward/replay", app.base))
        .bearer_auth(API_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or_default(),
    )
}

/// Polls `GET /api/forward/targets` until target `id` satisfies `ok`; the target.
pub async fn poll_target(app: &TestApp, id: &str, ok: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("target {id} in the expected state"), async || {
        let all = app.get_json("/api/forward/targets").await;
        let found = all["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .cloned();
        match found {
            Some(t) if ok(&t) => Ok(t),
            Some(t) => Err(t),
            None => Err(all),
        }
    })
    .await
}
