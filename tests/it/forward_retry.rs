//! Forwarding failures: retries with backoff, `Retry-After`, slow answers, `410`,
//! pause and probe, dead letters after the max age and their replay.

use std::time::Duration;

use serde_json::json;
use wagate::config::ForwardMode;

use crate::support::fake_target::{Answer, FakeTarget};
use crate::support::forward::{
    messages_body, poll_target, replay, spawn, spawn_clocked, target, PHONE, TARGET_SECRET,
};
use crate::support::{stays, TestApp};
use wagate::util::clock::Clock;

/// Waits until the target has taken in its `n`th failure (and so chosen its delay).
async fn failures(app: &TestApp, n: u64) {
    poll_target(app, "bot", |t| t["failures"] == n).await;
}

/// Once failure `n` is taken in, lets its backoff (at most the 40 ms cap) pass.
async fn backoff_passes(app: &TestApp, n: u64) {
    failures(app, n).await;
    app.clock().advance(Duration::from_millis(40));
}

#[tokio::test]
async fn retries_honour_retry_after_and_time_out_slow_answers() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    t.script([
        Answer::status(500),
        Answer::status(429).retry_after("1"),
        Answer::status(200).held(),
        Answer::status(503).retry_after("0"),
    ]);
    let app = spawn_clocked(
        Clock::manual_now(),
        vec![target("bot", &t, TARGET_SECRET, ForwardMode::Meta)],
        |c| c.forward.timeout = Duration::from_millis(400),
    )
    .await;
    let body = messages_body(PHONE, &["wamid.T1"]);
    app.deliver(body.clone()).await;
    app.deliver(messages_body(PHONE, &["wamid.T2"])).await;
    // 500: a backoff (at most the 40 ms cap), not a Retry-After.
    t.wait_for(1).await;
    backoff_passes(&app, 1).await;
    t.wait_for(2).await;
    // 429 with Retry-After: 1: not a moment sooner.
    failures(&app, 2).await;
    app.clock().advance(Duration::from_millis(999));
    stays("no retry before Retry-After", async || t.got().len() == 2).await;
    // Then the entry's own backoff (at most the 40 ms cap) on top.
    app.clock().advance(Duration::from_millis(42));
    // A slow answer (held past the 400 ms timeout) is a failure; then the 503.
    t.wait_for(3).await;
    backoff_passes(&app, 3).await;
    t.wait_for(4).await;
    backoff_passes(&app, 4).await;
    let got = t.wait_for(6).await;
    // T1: 500, 429, slow, 503, 200; then T2: head of line until delivered.
    assert!(
        got[..5].iter().all(|g| g.body == body),
        "head of line until delivered"
    );
    assert_eq!(got[5].message_ids(), ["wamid.T2"]);
    let v = poll_target(&app, "bot", |t| t["delivered"] == 2).await;
    assert_eq!(
        (v["attempts"].as_u64(), v["failures"].as_u64()),
        (Some(6), Some(4))
    );
    assert_eq!(v["state"], "active");
    assert!(v["last_error"].as_str().unwrap().contains("503"), "{v}");
    assert!(v["last_success"].is_string());
}

#[tokio::test]
async fn gone_disables_the_target_until_enabled() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    t.script([Answer::status(410)]);
    let app = spawn(
        vec![target("bot", &t, TARGET_SECRET, ForwardMode::Meta)],
        |_| {},
    )
    .await;
    app.deliver(messages_body(PHONE, &["wamid.G1"])).await;
    t.wait_for(1).await;
    let v = poll_target(&app, "bot", |t| t["state"] == "disabled").await;
    assert!(v["disabled"]["reason"].as_str().unwrap().contains("410"));
    app.deliver(messages_body(PHONE, &["wamid.G2"])).await;
    poll_target(&app, "bot", |t| t["queued"] == 2).await;
    let m = app.metrics().await;
    assert!(
        m.contains("wagate_forward_disabled{target=\"bot\"} 1"),
        "{m}"
    );
    assert_eq!(t.got().len(), 1, "nothing sent while disabled");
    let r = app.post_json("/api/forward/targets/bot/enable").await;
    assert_eq!(r["enabled"], "bot");
    let got = t.wait_for(3).await;
    assert_eq!(
        got[1].message_ids(),
        ["wamid.G1"],
        "the entry that got 410 again"
    );
    assert_eq!(got[2].message_ids(), ["wamid.G2"]);
    poll_target(&app, "bot", |t| t["state"] == "active" && t["queued"] == 0).await;
}

#[tokio::test]
async fn a_target_failing_for_long_is_paused_probed_and_resumes() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    t.fallback(Some(Answer::status(502)));
    let app = spawn_clocked(
        Clock::manual_now(),
        vec![target("bot", &t, TARGET_SECRET, ForwardMode::Meta)],
        |c| {
            c.forward.pause_after = Duration::from_millis(150);
            c.forward.probe_every = Duration::from_millis(300);
            // One entry failing alone could be a poisoned one: not what this
            // tests (forward_poison.rs does).
            c.forward.max_attempts = 1_000_000;
        },
    )
    .await;
    app.deliver(messages_body(PHONE, &["wamid.P1"])).await;
    // Failing for longer than the pause threshold: paused.
    failures(&app, 1).await;
    app.clock().advance(Duration::from_millis(200));
    let v = poll_target(&app, "bot", |t| t["state"] == "paused").await;
    assert!(v["failing_since"].is_string() && v["next_attempt_at"].is_string());
    // Probed every 300 ms, not sooner.
    let n = t.got().len();
    app.clock().advance(Duration::from_millis(299));
    stays("no probe before its time", async || t.got().len() == n).await;
    // Then the entry's own backoff (at most the 40 ms cap) on top.
    app.clock().advance(Duration::from_millis(42));
    t.wait_for(n + 1).await;
    let m = app.metrics().await;
    assert!(m.contains("wagate_forward_paused{target=\"bot\"} 1"), "{m}");
    // The target recovers: the next probe delivers and forwarding resumes.
    poll_target(&app, "bot", |t| {
        t["failures"].as_u64() == Some(n as u64 + 1)
    })
    .await;
    t.fallback(None);
    app.clock().advance(Duration::from_millis(342));
    poll_target(&app, "bot", |t| {
        t["state"] == "active" && t["delivered"] == 1
    })
    .await;
}

#[tokio::test]
async fn too_old_goes_to_dead_letters_and_replays_from_there() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    t.fallback(Some(Answer::status(500)));
    let app = spawn_clocked(
        Clock::manual_now(),
        vec![target("bot", &t, TARGET_SECRET, ForwardMode::Meta)],
        |c| {
            c.forward.max_age = Duration::from_secs(2);
            // Given up by age here, not by attempts (forward_poison.rs).
            c.forward.max_attempts = 1_000_000;
        },
    )
    .await;
    let body = messages_body(PHONE, &["wamid.D1"]);
    app.deliver(body.clone()).await;
    failures(&app, 1).await;
    app.clock().advance(Duration::from_secs(3));
    let v = poll_target(&app, "bot", |t| t["dead_lettered"] == 1).await;
    assert_eq!(v["queued"], 0);
    let dead = app.get_json("/api/forward/dead_letters?target=bot").await;
    let d = &dead["dead_letters"][0];
    assert!(d["error"].as_str().unwrap().contains("500"), "{dead}");
    assert!(d["attempts"].as_u64().unwrap() >= 1);
    let id = d["id"].as_u64().unwrap();
    t.fallback(None);
    let n = t.got().len();
    let r = replay(&app, json!({"target": "bot", "dead_letter": id})).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let got = t.wait_for(n + 1).await;
    assert_eq!(got[n].body, body);
    poll_target(&app, "bot", |t| t["delivered"] == 1).await;
    let dead = app.get_json("/api/forward/dead_letters").await;
    assert!(
        dead["dead_letters"][0]["replayed_at_micros"].is_i64(),
        "{dead}"
    );
    assert_eq!(
        replay(&app, json!({"target": "bot", "dead_letter": id + 1000}))
            .await
            .0,
        404
    );
}
