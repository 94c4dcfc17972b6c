//! Sending, continued: the status join on the conformance status payloads, the
//! Graph-compatible endpoint, and the real pywa SDK through wagate (run by `.ci/run`).

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_graph::{FakeGraph, Reply};
use crate::support::send::{finished, inbound, send, spawn, text, PHONE_ID};
use crate::support::{data_path, eventually, sign, API_TOKEN};

#[tokio::test]
async fn status_webhooks_join_the_sent_message() {
    let fake = FakeGraph::start().await;
    let wamid = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBIwMDAwMDAwMDAwMDAwMDBDMDIA";
    fake.script([Reply::ok_wamid(wamid)]);
    let app = spawn(&fake, |c| c.send.sent_timeout = Duration::from_millis(100)).await;
    let id = send(&app, &text("16505551234", "joined")).await;
    let quiet = send(&app, &text("16505559999", "no status")).await;
    assert_eq!(finished(&app, id).await["wamid"], wamid);
    for f in [
        "status_sent_pmp_free_customer_service.json",
        "status_delivered_pmp_free_customer_service.json",
        "status_read_pmp_free_customer_service.json",
    ] {
        let body = std::fs::read(data_path(&format!("payloads/{f}"))).unwrap();
        let sig = sign(&body);
        assert_eq!(app.post_webhook(body, Some(&sig)).await.status(), 200);
    }
    app.wait_applied().await;
    let m = app.get_json(&format!("/api/messages/{wamid}")).await;
    assert_eq!(m["direction"], "outbound");
    assert_eq!(m["outbound"]["id"], id, "{m}");
    assert_eq!(m["outbound"]["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(m["outbound"]["message"]["text"]["body"], "joined");
    let statuses: Vec<&str> = m["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["sent", "delivered", "read"], "{m}");
    assert_eq!(m["statuses"][0]["pricing"]["category"], "service");
    assert_eq!(m["current_status"], "read");
    assert_eq!(m["outbound"]["sent_overdue"], false);
    // The other one heard nothing: flagged once WAGATE_SENT_TIMEOUT has passed.
    finished(&app, quiet).await;
    eventually("the silent message to be flagged overdue", async || {
        let q = app.get_json(&format!("/api/outbox/{quiet}")).await;
        if q["sent_overdue"] == true {
            Ok(())
        } else {
            Err(q)
        }
    })
    .await;
}

#[tokio::test]
async fn graph_compatible_endpoint_answers_like_meta() {
    let fake = FakeGraph::start().await;
    fake.script([
        Reply::status(503),
        Reply::ok_wamid("wamid.COMPAT1"),
        Reply::error(400, "131009_invalid_parameter.json"),
    ]);
    let app = spawn(&fake, |_| {}).await;
    let url = format!("{}/v23.0/{PHONE_ID}/messages", app.base);
    let msg = json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}}});
    let resp = app
        .client
        .post(&url)
        .bearer_auth(API_TOKEN)
        .json(&msg)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-wagate-id"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["messages"][0]["id"], "wamid.COMPAT1");
    let resp = app
        .client
        .post(&url)
        .bearer_auth(API_TOKEN)
        .json(&msg)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], 131009);
    let free = json!({"to": "16505551234", "type": "text", "text": {"body": "x"}});
    let resp = app
        .client
        .post(&url)
        .bearer_auth(API_TOKEN)
        .json(&free)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], 131047);
    let resp = app.client.post(&url).json(&msg).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(fake.received().len(), 3);
}

/// Driven by `.ci/run` after `pip install pywa`: the real pywa client sends a text
/// through wagate's Graph-compatible endpoint to the fake Graph server.
#[tokio::test]
#[ignore = "needs python3 with pywa; run by .ci/run"]
async fn pywa_sends_through_wagate() {
    let fake = FakeGraph::start().await;
    fake.script([Reply::status(503)]);
    let app = spawn(&fake, |_| {}).await;
    app.deliver(inbound("16505551234", "wamid.PYWAIN")).await;
    app.wait_applied().await;
    let script = data_path("../pywa/send_via_wagate.py");
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .args([&base, API_TOKEN, PHONE_ID, "16505551234"])
            .output()
            .expect("run python3")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "pywa stdout: {stdout}\npywa stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the pywa script failed");
    let got = fake.received();
    assert_eq!(got.len(), 2, "one retry after the 503, then sent");
    assert_eq!(got[1].text(), "hello from pywa");
    let wamid = got[1].path.clone();
    assert!(wamid.ends_with(&format!("{PHONE_ID}/messages")));
    assert!(stdout.contains("wamid.FAKE000002"), "pywa saw Meta's wamid");
}
