//! A store that fails (as sled does on a full disk) is seen: `/healthz` answers 503
//! with the reason once processing has failed for `WAGATE_STUCK_AFTER`, `/metrics`
//! says failing; the applier retries and recovers when the fault clears. A store
//! that stays broken although the disk has room ends the server (exit 75 for
//! systemd), and a restart applies what was left from the journal.

use std::time::Duration;

use serde_json::{json, Value};
use wagate::util::clock::Clock;

use crate::support::{eventually, TestApp};

/// Unix seconds now (items older than the dedup window are stale, never stored).
fn now() -> i64 {
    wagate::util::clock::now_micros() / 1_000_000
}

fn body(n: usize) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"},
            "messages": [{"from": "16505551234", "id": format!("wamid.HEALTH{n}"), "timestamp": now().to_string(),
                "type": "text", "text": {"body": "hi"}}]}}]}]})
    .to_string()
    .into_bytes()
}

/// `/healthz`: its status and body.
async fn health(app: &TestApp) -> (u16, String) {
    let r = app.get("/healthz").await;
    (r.status().as_u16(), r.text().await.unwrap())
}

fn metric(m: &str, name: &str) -> u64 {
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} in {m}"))
        .parse()
        .unwrap()
}

async fn stored(app: &TestApp, n: usize) -> bool {
    app.get(&format!("/api/messages/wamid.HEALTH{n}"))
        .await
        .status()
        == 200
}

#[tokio::test]
async fn a_failing_store_turns_healthz_503_until_it_recovers() {
    // No free space counts as "room" here: the applier never gives up.
    let app = TestApp::spawn_clocked(Clock::manual_now(), |c| c.min_free = u64::MAX).await;
    app.deliver(body(0)).await;
    app.wait_applied().await;
    assert_eq!(health(&app).await, (200, "ok".into()));

    app.state.store.fail_commits(true);
    app.deliver(body(1)).await;
    eventually("the applier to report failing", async || {
        metric(&app.metrics().await, "wagate_apply_failing") == 1
    })
    .await;
    assert_eq!(
        health(&app).await.0,
        200,
        "not stuck before WAGATE_STUCK_AFTER"
    );

    app.clock().advance(Duration::from_secs(31));
    let (status, text) = health(&app).await;
    assert_eq!(status, 503, "{text}");
    let why: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(why["status"], "stuck");
    let reason = why["reason"].as_str().unwrap();
    assert!(
        reason.contains("failed") && reason.contains("no space left"),
        "{reason}"
    );
    assert!(!stored(&app, 1).await);

    // The fault clears: the next retry (after its backoff) applies what waited.
    app.state.store.fail_commits(false);
    app.clock().advance(Duration::from_secs(10));
    app.wait_applied().await;
    assert!(stored(&app, 1).await);
    assert_eq!(health(&app).await, (200, "ok".into()));
    let m = app.metrics().await;
    assert_eq!(metric(&m, "wagate_apply_failing"), 0);
    assert!(metric(&m, "wagate_apply_failures_total") >= 1, "{m}");
    app.stop().await;
}

#[tokio::test]
async fn a_store_broken_with_room_on_disk_ends_the_server_for_a_restart() {
    let tweak = |c: &mut wagate::Config| {
        c.min_free = 0;
        c.processing.stuck_after = Duration::from_secs(2);
    };
    let app = TestApp::spawn_clocked(Clock::manual_now(), tweak).await;
    app.deliver(body(0)).await;
    app.wait_applied().await;
    app.state.store.fail_commits(true);
    app.deliver(body(1)).await;
    eventually("the applier to report failing", async || {
        metric(&app.metrics().await, "wagate_apply_failing") == 1
    })
    .await;
    app.clock().advance(Duration::from_secs(3));
    let (ended, dir) = app.exited().await;
    let e = ended.expect_err("the server gave up");
    assert_eq!(e.exit_code(), 75);
    assert!(e.to_string().contains("disk has room"), "{e}");

    // A fresh start (a new store) applies what was left in the journal.
    let app = TestApp::spawn_in(dir, tweak).await;
    app.wait_applied().await;
    assert!(stored(&app, 0).await && stored(&app, 1).await);
    assert_eq!(health(&app).await, (200, "ok".into()));
    app.stop().await;
}
