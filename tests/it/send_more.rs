//! Sending, more: 131056 backs off one recipient only, the give-up paths
//! (`WAGATE_SEND_MAX_ATTEMPTS`, `WAGATE_SEND_MAX_AGE`), `Retry-After` as an HTTP date,
//! the outbox rebuilt from the journal, and the Graph-compatible endpoint's early
//! answer when a 190 pauses sending.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::support::fake_graph::{FakeGraph, Reply};
use crate::support::send::{finished, graph_config, send, spawn, text, PHONE_ID};
use crate::support::{eventually, TestApp, API_TOKEN};

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
    let app = spawn(&fake, |_| {}).await;
    let a = send(&app, &text("16505550001", "A")).await;
    let first = fake.wait_for(1, true).await;
    let a_answered = first[0].answered.unwrap();
    // A is backing off for 1 s: B, to someone else, goes out at once.
    let b = send(&app, &text("16505550002", "B")).await;
    assert_eq!(finished(&app, b).await["state"], "sent");
    let e = finished(&app, a).await;
    assert_eq!(e["state"], "sent", "{e}");
    assert_eq!(e["attempts"][0]["class"], "pair_rate_limit");
    assert_eq!(e["attempts"][0]["error_code"], 131056);
    let got = fake.received();
    let texts: Vec<&str> = got.iter().map(|r| r.text()).collect();
    assert_eq!(texts, ["A", "B", "A"]);
    let b_gap = got[1].at - a_answered;
    let a_gap = got[2].at - a_answered;
    eprintln!("131056: B arrived {b_gap:?} after A's 131056, A's retry {a_gap:?} after it");
    assert!(b_gap < Duration::from_millis(500), "B was held: {b_gap:?}");
    assert!(
        a_gap >= Duration::from_millis(995),
        "A came back early: {a_gap:?}"
    );
}

#[tokio::test]
async fn throughput_error_holds_everyone() {
    // The contrast: 130429 (throughput) backs off every recipient.
    let fake = FakeGraph::start().await;
    fake.script([Reply::error(429, "130429_throughput.json").retry_after("1")]);
    let app = spawn(&fake, |_| {}).await;
    let a = send(&app, &text("16505550001", "A")).await;
    let first = fake.wait_for(1, true).await;
    // B goes in once wagate has taken in A's 130429 (before that, nothing can hold it).
    entry_until(&app, a, |e| e["attempts"][0]["http_status"].is_number()).await;
    let b = send(&app, &text("16505550002", "B")).await;
    assert_eq!(finished(&app, b).await["state"], "sent");
    assert_eq!(finished(&app, a).await["state"], "sent");
    let got = fake.received();
    let b = got.iter().find(|r| r.text() == "B").unwrap();
    let gap = b.at - first[0].answered.unwrap();
    eprintln!("130429: B arrived {gap:?} after A's 130429 (Retry-After: 1)");
    assert!(gap >= Duration::from_millis(995), "B was not held: {gap:?}");
}

#[tokio::test]
async fn throughput_error_on_a_last_attempt_still_holds_everyone() {
    // A gives up on its last attempt, but Meta's throughput limit still stands.
    let fake = FakeGraph::start().await;
    fake.script([Reply::error(429, "130429_throughput.json").retry_after("1")]);
    let app = spawn(&fake, |c| c.send.max_attempts = 1).await;
    let a = send(&app, &text("16505550001", "A")).await;
    assert_eq!(finished(&app, a).await["state"], "failed");
    let first = fake.wait_for(1, true).await;
    let b = send(&app, &text("16505550002", "B")).await;
    assert_eq!(finished(&app, b).await["state"], "sent");
    let gap = fake.received()[1].at - first[0].answered.unwrap();
    eprintln!("130429 on a last attempt: B arrived {gap:?} after it (Retry-After: 1)");
    assert!(gap >= Duration::from_millis(995), "B was not held: {gap:?}");
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
    let app = spawn(&fake, |c| c.send.max_age = Duration::from_millis(500)).await;
    let id = send(&app, &text("16505551234", "stale soon")).await;
    let t0 = Instant::now();
    let e = finished(&app, id).await;
    let took = t0.elapsed();
    eprintln!("max age 500 ms, Retry-After 2 s: failed after {took:?}");
    assert_eq!(e["state"], "failed", "{e}");
    assert_eq!(e["attempts"].as_array().unwrap().len(), 1, "{e}");
    let reason = e["reason"].as_str().unwrap();
    assert!(reason.contains("WAGATE_SEND_MAX_AGE"), "{reason}");
    assert!(
        reason.contains("131000") || reason.contains("unknown error"),
        "{reason}"
    );
    assert!(
        took < Duration::from_millis(1500),
        "waited for a retry it would never make"
    );
    assert_eq!(e["response_status"], 503);
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn max_age_settles_a_message_held_past_it() {
    // Held by a token pause longer than the max age: failed at once, not sent.
    let fake = FakeGraph::start().await;
    fake.script([Reply::error(401, "190_token_expired.json")]);
    let app = spawn(&fake, |c| c.send.max_age = Duration::from_millis(300)).await;
    let id = send(&app, &text("16505551234", "held")).await;
    entry_until(&app, id, |e| e["attempts"][0]["class"] == "token").await;
    // Let it grow older than WAGATE_SEND_MAX_AGE while paused.
    tokio::time::sleep(Duration::from_millis(400)).await;
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
    let (wall, mono) = (SystemTime::now(), Instant::now());
    let date = httpdate::fmt_http_date(wall + Duration::from_secs(2));
    // The date has whole seconds: it is between 1 and 2 s away.
    let until = httpdate::parse_http_date(&date).unwrap();
    let due = mono + until.duration_since(wall).unwrap();
    fake.script([Reply::status(503).retry_after(&date)]);
    let app = spawn(&fake, |_| {}).await;
    let id = send(&app, &text("16505551234", "dated")).await;
    let e = finished(&app, id).await;
    assert_eq!(e["state"], "sent", "{e}");
    let got = fake.received();
    assert_eq!(got.len(), 2);
    let gap = got[1].at - got[0].answered.unwrap();
    let chosen = e["attempts"][0]["retry_in_ms"].as_u64().unwrap();
    eprintln!("Retry-After: {date} -> delay chosen {chosen} ms, observed gap {gap:?}");
    assert!(
        got[1].at + Duration::from_millis(5) >= due,
        "retried before the date"
    );
    // Loose: a loaded CI machine may be late; `chosen` below pins the delay itself.
    assert!(got[1].at < due + Duration::from_secs(5), "{gap:?}");
    // The date is at most 2 s away; under load the answer may be read late.
    assert!(chosen <= 2000, "{chosen} ms");
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
    let resp = tokio::time::timeout(Duration::from_secs(5), post())
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
    let resp = tokio::time::timeout(Duration::from_secs(5), post())
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
