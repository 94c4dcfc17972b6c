//! Sending, more: 131056 backs off one recipient only, the give-up paths
//! (`WAGATE_SEND_MAX_ATTEMPTS`, `WAGATE_SEND_MAX_AGE`), `Retry-After` as an HTTP date,
//! the outbox rebuilt from the journal, and the Graph-compatible endpoint's early
//! answer when a 190 pauses sending.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_graph::{FakeGraph, Reply};
use crate::support::send::{
    finished, graph_config, let_pass, retry_in, send, spawn, spawn_clocked, text, PHONE_ID,
};
use crate::support::{eventually, TestApp, API_TOKEN, DEADLINE};

/// Polls `GET /api/outbox/{id}` until `done` holds; the entry.
async fn entry_until(app: &TestApp, id: u64, done: impl Fn(&Value) -> bool) -> Value {
    eventually(
        &format!("outbox entry {id} in the expected state"),
        async || {
            let e = app.get_json(&format!("/api/outbox/{id}")).await;
            if done(&e) {
                Ok(e)
            } else {
                Err(e)
            }
        },
    )
    .await
}

async fn resume(app: &TestApp) -> Value {
    app.post_json("/api/outbox/resume").await
}

#[tokio::test]
async fn pair_rate_limit_backs_off_that_recipient_alone() {
    let fake = FakeGraph::start().await;
    fake.script([Reply::error(400, "131056_pair_rate_limit.json").retry_after("1")]);
    let app = spawn_clocked(&fake, |_| {}).await;
    let a = send(&app, &text("16505550001", "A")).await;
    assert_eq!(retry_in(&app, a, 0).await, Duration::from_secs(1));
    // A is backing off for 1 s: B, to someone else, goes out with the clock standing still.
    let b = send(&app, &text("16505550002", "B")).await;
    assert_eq!(finished(&app, b).await["state"], "sent");
    let_pass(&app, &fake, 2, Duration::from_secs(1)).await;
    let e = finished(&app, a).await;
    assert_eq!(e["state"], "sent", "{e}");
    assert_eq!(e["attempts"][0]["class"], "pair_rate_limit");
    assert_eq!(e["attempts"][0]["error_code"], 131056);
    let texts: Vec<String> = fake.received().iter().map(|r| r.text().into()).collect();
    assert_eq!(texts, ["A", "B", "A"]);
}

#[tokio::test]
async fn throughput_error_holds_everyone() {
    // The contrast: 130429 (throughput) backs off every recipient.
    let fake = FakeGraph::start().await;
    fake.script([Reply::error(429, "130429_throughput.json").retry_after("1")]);
    let app = spawn_clocked(&fake, |_| {}).await;
    let a = send(&app, &text("16505550001", "A")).await;
    // B goes in once wagate has taken in A's 130429 (before that, nothing can hold it).
    assert_eq!(retry_in(&app, a, 0).await, Duration::from_secs(1));
    let b = send(&app, &text("16505550002", "B")).await;
    // B, to someone else, waits out the same second; then both go.
    let_pass(&app, &fake, 1, Duration::from_secs(1)).await;
    assert_eq!(finished(&app, b).await["state"], "sent");
    assert_eq!(finished(&app, a).await["state"], "sent");
}

#[tokio::test]
async fn throughput_error_on_a_last_attempt_still_holds_everyone() {
    // A gives up on its last attempt, but Meta's throughput limit still stands.
    let fake = FakeGraph::start().await;
    fake.script([Reply::error(429, "130429_throughput.json").retry_after("1")]);
    let app = spawn_clocked(&fake, |c| c.send.max_attempts = 1).await;
    let a = send(&app, &text("16505550001", "A")).await;
    assert_eq!(finished(&app, a).await["state"], "failed");
    let b = send(&app, &text("16505550002", "B")).await;
    let_pass(&app, &fake, 1, Duration::from_secs(1)).await;
    assert_eq!(finished(&app, b).await["state"], "sent");
}

#[tokio::test]
async fn max_attempts_fails_with_the_last_error() {
    let fake = FakeGraph::start().await;
    fake.script((0..3).map(|_| Reply::status(503)));
    let app = spawn(&fake, |c| c.send.max_attempts = 3).await;
    let id = send(&app, &text("16505551234", "never")).await;
    let e = finished(&app, id).await;
    assert_eq!(e["state"], "failed", "{e}");
    let attempts = e["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{e}");
    assert!(attempts.iter().all(|a| a["http_status"] == 503));
    assert!(attempts[2]["retry_in_ms"].is_null(), "{e}");
    assert_eq!(e["response_status"], 503);
    let reason = e["reason"].as_str().unwrap();
    assert!(
        reason.contains("gave up after 3 attempts") && reason.contains("503"),
        "{reason}"
    );
    // Nothing more goes out: a later message to the same recipient is next.
    let next = send(&app, &text("16505551234", "next")).await;
    finished(&app, next).await;
    let texts: Vec<String> = fake.received().iter().map(|r| r.text().into()).collect();
    assert_eq!(texts, ["never", "never", "never", "next"]);
}

#[tokio::test]
async fn max_age_gives_up_instead_of_a_retry_past_it() {
    let fake = FakeGraph::start().await;
    fake.script([Reply::error(503, "131000_unknown.json").retry_after("2")]);
    let app = spawn_clocked(&fake, |c| c.send.max_age = Duration::from_millis(500)).await;
    let id = send(&app, &text("16505551234", "stale soon")).await;
    // Settled with the clock standing still: it does not wait for a retry it would never make.
    let e = finished(&app, id).await;
    assert_eq!(e["state"], "failed", "{e}");
    assert_eq!(e["attempts"].as_array().unwrap().len(), 1, "{e}");
    let reason = e["reason"].as_str().unwrap();
    assert!(reason.contains("WAGATE_SEND_MAX_AGE"), "{reason}");
    assert!(
        reason.contains("131000") || reason.contains("unknown error"),
        "{reason}"
    );
    assert_eq!(e["response_status"], 503);
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn max_age_settles_a_message_held_past_it() {
    // Held by a token pause longer than the max age: failed at once, not sent.
    let fake = FakeGraph::start().await;
    fake.script([Reply::error(401, "190_token_expired.json")]);
    let app = spawn_clocked(&fake, |c| c.send.max_age = Duration::from_millis(300)).await;
    let id = send(&app, &text("16505551234", "held")).await;
    entry_until(&app, id, |e| e["attempts"][0]["class"] == "token").await;
    eventually("sending to be paused", async || {
        !app.get_json("/api/outbox").await["paused"].is_null()
    })
    .await;
    // Let it grow older than WAGATE_SEND_MAX_AGE while paused.
    app.clock().advance(Duration::from_millis(400));
    assert_eq!(resume(&app).await["resumed"], true);
    let e = finished(&app, id).await;
    assert_eq!(e["state"], "failed", "{e}");
    assert!(
        e["reason"]
            .as_str()
            .unwrap()
            .contains("older than WAGATE_SEND_MAX_AGE"),
        "{e}"
    );
    assert_eq!(e["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(fake.received().len(), 1, "no attempt after the max age");
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let fake = FakeGraph::start().await;
    let app = spawn_clocked(&fake, |_| {}).await;
    // The clock stands at a whole second: a date 2 s on is exactly 2 s away.
    let date = httpdate::fmt_http_date(app.clock().now() + Duration::from_secs(2));
    fake.script([Reply::status(503).retry_after(&date)]);
    let id = send(&app, &text("16505551234", "dated")).await;
    assert_eq!(retry_in(&app, id, 0).await, Duration::from_secs(2));
    let_pass(&app, &fake, 1, Duration::from_secs(2)).await;
    let e = finished(&app, id).await;
    assert_eq!(e["state"], "sent", "{e}");
    assert_eq!(fake.received().len(), 2);
}

#[tokio::test]
async fn outbox_is_rebuilt_from_the_journal() {
    let fake = FakeGraph::start().await;
    fake.script([
        Reply::ok_wamid("wamid.REBUILT1"),
        Reply::error(400, "131047_reengagement.json"),
        // Longer than wagate's 2 s timeout: unknown.
        Reply::ok().delayed(Duration::from_secs(3)),
        Reply::status(503).retry_after("600"),
    ]);
    let app = spawn(&fake, |_| {}).await;
    let sent = send(&app, &text("16505550001", "sent")).await;
    assert_eq!(finished(&app, sent).await["state"], "sent");
    let failed = send(&app, &text("16505550002", "failed")).await;
    assert_eq!(finished(&app, failed).await["state"], "failed");
    let unknown = send(&app, &text("16505550003", "unknown")).await;
    assert_eq!(finished(&app, unknown).await["state"], "unknown");
    let retrying = send(&app, &text("16505550004", "retrying")).await;
    let r = entry_until(&app, retrying, |e| {
        !e["attempts"][0]["retry_in_ms"].is_null()
    })
    .await;
    assert_eq!(r["state"], "queued", "{r}");
    let ids = [sent, failed, unknown, retrying];
    let mut before = Vec::new();
    for id in ids {
        before.push(app.get_json(&format!("/api/outbox/{id}")).await);
    }
    let list_before = app.get_json("/api/outbox").await;

    let dir = app.stop().await;
    std::fs::rename(dir.path().join("state"), dir.path().join("state.broken")).unwrap();
    let url = fake.url.clone();
    let app = TestApp::spawn_in(dir, move |c| graph_config(c, &url)).await;
    app.wait_applied().await;
    for (id, b) in ids.iter().zip(&before) {
        let a = app.get_json(&format!("/api/outbox/{id}")).await;
        assert_eq!(&a, b, "entry {id} after the rebuild");
    }
    assert_eq!(app.get_json("/api/outbox").await, list_before);
    assert_eq!(before[0]["wamid"], "wamid.REBUILT1");
    let states: Vec<&str> = before
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["sent", "failed", "unknown", "queued"]);
    let m = app.get_json("/api/messages/wamid.REBUILT1").await;
    assert_eq!(m["outbound"]["id"], sent, "{m}");
    // A new message to the first recipient: had anything older been due again for
    // that recipient it would have gone first (one queue per recipient, in order).
    let next = send(&app, &text("16505550001", "after")).await;
    assert!(next > retrying);
    assert_eq!(finished(&app, next).await["state"], "sent");
    let texts: Vec<String> = fake.received().iter().map(|r| r.text().into()).collect();
    assert_eq!(texts, ["sent", "failed", "unknown", "retrying", "after"]);
    let r = app.get_json(&format!("/api/outbox/{retrying}")).await;
    assert_eq!(
        r["state"], "queued",
        "still waiting for its Retry-After: {r}"
    );
    app.stop().await;
}

#[tokio::test]
async fn graph_endpoint_answers_early_when_a_190_pauses_sending() {
    let fake = FakeGraph::start().await;
    fake.script([Reply::error(401, "190_token_expired.json")]);
    let app = spawn(&fake, |_| {}).await;
    let url = format!("{}/v23.0/{PHONE_ID}/messages", app.base);
    let msg = json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}}});
    let post = || {
        app.client
            .post(&url)
            .bearer_auth(API_TOKEN)
            .json(&msg)
            .send()
    };
    let check = |v: &Value| {
        assert_eq!(v["error"]["code"], 190, "{v}");
        assert_eq!(v["error"]["type"], "OAuthException", "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains("paused"), "{m}");
    };
    // The caller waiting when Meta refuses the token is answered then.
    let resp = tokio::time::timeout(DEADLINE, post())
        .await
        .expect("answered early")
        .unwrap();
    assert_eq!(resp.status(), 401);
    let a: u64 = resp.headers()["x-wagate-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    check(&resp.json().await.unwrap());
    // A caller arriving while paused is answered at once; Meta is not called.
    let resp = tokio::time::timeout(DEADLINE, post())
        .await
        .expect("answered at once")
        .unwrap();
    assert_eq!(resp.status(), 401);
    let b: u64 = resp.headers()["x-wagate-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    check(&resp.json().await.unwrap());
    assert_eq!(fake.received().len(), 1);
    for id in [a, b] {
        assert_eq!(
            app.get_json(&format!("/api/outbox/{id}")).await["state"],
            "queued"
        );
    }
    // Both stay queued and go out once sending resumes.
    assert_eq!(resume(&app).await["resumed"], true);
    assert_eq!(finished(&app, a).await["state"], "sent");
    assert_eq!(finished(&app, b).await["state"], "sent");
    assert_eq!(fake.received().len(), 3);
}
