//! Sending (issue 6) against the fake Graph server: retries and backoff bounds,
//! Retry-After, permanent errors, the token pause, per-recipient order, pacing,
//! idempotency, the 24-hour window, the status join, the Graph-compatible endpoint.

use std::time::Duration;

use serde_json::json;

use crate::support::fake_graph::{FakeGraph, Reply};
use crate::support::send::{
    finished, graph_config, inbound, let_pass, post, retry_in, send, spawn, spawn_clocked, text,
    PHONE_ID, TOKEN,
};
use crate::support::{eventually, stays, TestApp};

#[tokio::test]
async fn retries_429_503_then_200_within_backoff_bounds() {
    let fake = FakeGraph::start().await;
    fake.script([
        Reply::status(429),
        Reply::error(503, "131000_unknown.json"),
        Reply::ok(),
    ]);
    let app = spawn_clocked(&fake, |_| {}).await;
    let id = send(&app, &text("16505551234", "retry me")).await;
    // Each retry waits for its chosen delay, within the full-jitter bound, and no less.
    for (n, bound_ms) in [(0usize, 20u64), (1, 40)] {
        let chosen = retry_in(&app, id, n).await;
        assert!(
            chosen <= Duration::from_millis(bound_ms),
            "attempt {n}: delay {chosen:?} above full-jitter bound {bound_ms} ms"
        );
        let_pass(&app, &fake, n + 1, chosen).await;
    }
    let e = finished(&app, id).await;
    assert_eq!(e["state"], "sent", "{e}");
    let got = fake.received();
    assert_eq!(got.len(), 3);
    assert!(got
        .iter()
        .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))));
    assert!(got[0].user_agent.as_deref().unwrap().starts_with("wagate/"));
    assert_eq!(got[0].path, format!("/v23.0/{PHONE_ID}/messages"));
    let attempts = e["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0]["http_status"], 429);
    assert_eq!(attempts[1]["error_code"], 131000);
    assert_eq!(e["wamid"], e["response"]["messages"][0]["id"]);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let fake = FakeGraph::start().await;
    fake.script([
        Reply::error(429, "130429_throughput.json").retry_after("1"),
        Reply::ok(),
    ]);
    let app = spawn_clocked(&fake, |_| {}).await;
    let id = send(&app, &text("16505551234", "later")).await;
    assert_eq!(retry_in(&app, id, 0).await, Duration::from_secs(1));
    let_pass(&app, &fake, 1, Duration::from_secs(1)).await;
    let e = finished(&app, id).await;
    assert_eq!(e["state"], "sent");
}

#[tokio::test]
async fn permanent_error_fails_after_one_attempt() {
    let fake = FakeGraph::start().await;
    fake.script([Reply::error(400, "131047_reengagement.json")]);
    let app = spawn(&fake, |_| {}).await;
    let id = send(&app, &text("16505551234", "too late")).await;
    let e = finished(&app, id).await;
    assert_eq!(e["state"], "failed", "{e}");
    assert_eq!(e["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(e["attempts"][0]["error_code"], 131047);
    assert_eq!(e["attempts"][0]["class"], "permanent");
    assert!(
        e["reason"].as_str().unwrap().contains("More than 24 hours"),
        "{e}"
    );
    assert_eq!(e["response_status"], 400);
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn token_error_pauses_until_resumed() {
    let fake = FakeGraph::start().await;
    fake.script([Reply::error(401, "190_token_expired.json")]);
    let app = spawn_clocked(&fake, |_| {}).await;
    let a = send(&app, &text("16505551234", "A")).await;
    fake.wait_for(1, true).await;
    // The pause is journaled right after Meta's answer: wait for it to show.
    let list = eventually("sending to be paused", async || {
        let list = app.get_json("/api/outbox").await;
        if list["paused"].is_null() {
            Err(list)
        } else {
            Ok(list)
        }
    })
    .await;
    assert!(
        list["paused"]["reason"].as_str().unwrap().contains("190"),
        "{list}"
    );
    let b = send(&app, &text("16505550000", "B")).await;
    // Nothing goes out while paused, however long it lasts.
    app.clock().advance(Duration::from_secs(600));
    stays("nothing sent while paused", async || {
        fake.received().len() == 1
    })
    .await;
    assert_eq!(
        app.get_json(&format!("/api/outbox/{a}")).await["state"],
        "queued"
    );
    let r = app.post_json("/api/outbox/resume").await;
    assert_eq!(r["resumed"], true);
    assert_eq!(finished(&app, a).await["state"], "sent");
    assert_eq!(finished(&app, b).await["state"], "sent");
    let texts: Vec<String> = fake
        .received()
        .iter()
        .map(|r| r.text().to_string())
        .collect();
    assert_eq!(texts, ["A", "A", "B"]);
    assert!(app.get_json("/api/outbox").await["paused"].is_null());
}

#[tokio::test]
async fn one_in_flight_per_recipient_in_order() {
    let fake = FakeGraph::start().await;
    fake.set_default_delay(Duration::from_millis(15));
    fake.script([Reply::status(503).delayed(Duration::from_millis(15))]);
    let app = spawn(&fake, |_| {}).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        for r in ["16505550001", "16505550002", "16505550003"] {
            ids.push(send(&app, &text(r, &format!("{r}-{n}"))).await);
        }
    }
    for id in &ids {
        assert_eq!(finished(&app, *id).await["state"], "sent");
    }
    let got = fake.received();
    assert_eq!(got.len(), 16);
    for r in ["16505550001", "16505550002", "16505550003"] {
        let mine: Vec<_> = got.iter().filter(|x| x.to() == r).collect();
        for w in mine.windows(2) {
            assert!(w[1].at >= w[0].answered.unwrap(), "two in flight for {r}");
        }
        let sent: Vec<&str> = mine
            .iter()
            .filter(|x| x.status == 200)
            .map(|x| x.text())
            .collect();
        let want: Vec<String> = (0..5).map(|n| format!("{r}-{n}")).collect();
        assert_eq!(sent, want, "order for {r}");
    }
    // Different recipients did overlap (only the recipient is serialised).
    assert!(got.windows(2).any(|w| w[1].at < w[0].answered.unwrap()));
}

#[tokio::test]
async fn pacing_holds_the_rate() {
    let fake = FakeGraph::start().await;
    let app = spawn_clocked(&fake, |c| c.send.rate = 20.0).await;
    for n in 0..4 {
        send(&app, &text(&format!("1650555{n:04}"), "paced")).await;
    }
    // One slot every 50 ms at 20/s: the next goes out only once its slot is due.
    fake.wait_for(1, false).await;
    for n in 1..4 {
        let_pass(&app, &fake, n, Duration::from_millis(50)).await;
    }
    assert_eq!(fake.wait_for(4, true).await.len(), 4);
}

#[tokio::test]
async fn idempotency_key_gives_one_message() {
    let fake = FakeGraph::start().await;
    let app = spawn(&fake, |_| {}).await;
    let body = text("16505551234", "once");
    let (s1, v1) = post(&app, &body, Some("order-42")).await;
    let (s2, v2) = post(&app, &body, Some("order-42")).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(v1["id"], v2["id"]);
    assert_eq!(
        (v1["duplicate"].as_bool(), v2["duplicate"].as_bool()),
        (Some(false), Some(true))
    );
    let id = v1["id"].as_u64().unwrap();
    finished(&app, id).await;
    let (_, v3) = post(&app, &body, Some("order-42")).await;
    assert_eq!(v3["id"], id);
    let (_, v4) = post(&app, &body, Some("order-43")).await;
    assert_ne!(v4["id"], id);
    finished(&app, v4["id"].as_u64().unwrap()).await;
    assert_eq!(fake.received().len(), 2);
    // After a restart the key is still known.
    let dir = app.stop().await;
    let url = fake.url.clone();
    let app = TestApp::spawn_in(dir, move |c| graph_config(c, &url)).await;
    let (_, v5) = post(&app, &body, Some("order-42")).await;
    assert_eq!(v5["id"], id);
}

#[tokio::test]
async fn window_check_refuses_free_form_unless_forced() {
    let fake = FakeGraph::start().await;
    let app = spawn(&fake, |_| {}).await;
    let free = json!({"to": "16505551234", "type": "text", "text": {"body": "hi"}});
    let (status, v) = post(&app, &free, None).await;
    assert_eq!(status, 409, "{v}");
    assert!(v["message"].as_str().unwrap().contains("window"), "{v}");
    let template = json!({"to": "16505551234", "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}});
    assert_eq!(post(&app, &template, None).await.0, 202);
    let mut forced = free.clone();
    forced["force"] = json!(true);
    assert_eq!(post(&app, &forced, None).await.0, 202);
    app.deliver(inbound("16505551234", "wamid.INBOUND1")).await;
    app.wait_applied().await;
    assert_eq!(post(&app, &free, None).await.0, 202);
    assert_eq!(
        post(
            &app,
            &json!({"to": "+1 650 555 1234", "type": "text", "text": {"body": "x"}}),
            None
        )
        .await
        .0,
        202
    );
    // "force" is wagate's, never sent to Meta.
    let got = fake.wait_for(4, true).await;
    assert!(got
        .iter()
        .all(|r| r.body.get("force").is_none() && r.body["messaging_product"] == "whatsapp"));
}
