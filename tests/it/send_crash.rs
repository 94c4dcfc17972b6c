//! kill -9 and the outbox: a request journaled (202) but not yet sent is sent exactly
//! once after a restart; an attempt in flight at the kill is marked unknown, not resent.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::child::{start_with, Server};
use crate::support::fake_graph::{FakeGraph, Reply};
use crate::support::send::{PHONE_ID, TOKEN};
use crate::support::{api_json, eventually, API_TOKEN};

fn start(dir: &std::path::Path, fake: &FakeGraph, rate: &str) -> Server {
    start_with(
        dir,
        &[
            ("WAGATE_GRAPH_URL", fake.url.as_str()),
            ("WHATSAPP_TOKEN", TOKEN),
            ("WAGATE_PHONE_NUMBER_ID", PHONE_ID),
            ("WAGATE_SEND_RATE", rate),
            ("WAGATE_GRAPH_TIMEOUT", "20s"),
        ],
    )
}

async fn post(c: &reqwest::Client, s: &Server, text: &str) -> u64 {
    let body = json!({"to": "16505551234", "type": "text", "text": {"body": text}, "force": true});
    let resp = c
        .post(format!("{}/api/messages", s.base))
        .bearer_auth(API_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    resp.json::<Value>().await.unwrap()["id"].as_u64().unwrap()
}

/// Polls the outbox entry until it is in one of `states` (the child is another
/// process: there is no channel to wait on).
async fn wait_state(c: &reqwest::Client, s: &Server, id: u64, states: &[&str]) -> Value {
    eventually(&format!("message {id} in {states:?}"), async || {
        let e = api_json(c.get(format!("{}/api/outbox/{id}", s.base))).await;
        if states.iter().any(|st| e["state"] == *st) {
            Ok(e)
        } else {
            Err(e)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_the_202_sends_exactly_once() {
    let fake = FakeGraph::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    // One attempt every 5 s: B is journaled (202) but cannot have started when killed.
    let s = start(dir.path(), &fake, "0.2");
    let a = post(&c, &s, "A").await;
    wait_state(&c, &s, a, &["sent"]).await;
    let b = post(&c, &s, "B").await;
    s.kill();
    assert_eq!(fake.received().len(), 1, "B was not sent before the kill");

    let s = start(dir.path(), &fake, "80");
    let e = wait_state(&c, &s, b, &["sent", "failed", "unknown"]).await;
    assert_eq!(e["state"], "sent", "{e}");
    let texts: Vec<String> = fake
        .received()
        .iter()
        .map(|r| r.text().to_string())
        .collect();
    assert_eq!(texts, ["A", "B"], "each sent exactly once");

    // An attempt in flight at the kill: Meta may have it, so it is never resent.
    fake.script([Reply::ok().delayed(Duration::from_secs(15))]);
    let c_id = post(&c, &s, "C").await;
    fake.wait_for(3, false).await;
    s.kill();
    let s = start(dir.path(), &fake, "80");
    let e = wait_state(&c, &s, c_id, &["sent", "failed", "unknown"]).await;
    assert_eq!(e["state"], "unknown", "{e}");
    assert!(
        e["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("in flight"),
        "{e}"
    );
    let d = post(&c, &s, "D").await;
    wait_state(&c, &s, d, &["sent"]).await;
    let texts: Vec<String> = fake
        .received()
        .iter()
        .map(|r| r.text().to_string())
        .collect();
    assert_eq!(texts, ["A", "B", "C", "D"], "C was not resent");
    s.kill();
}
