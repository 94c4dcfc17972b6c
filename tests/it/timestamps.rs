//! Times no real item has (year 10000 and later, `i64::MAX`, a message at
//! 9999-12-31T23:59:59): every read answers and shows the raw time, marked;
//! forwarding goes on past them, also after a restart; retention deletes them by
//! their receive time. And a forwarding entry that cannot be built is reported
//! (last error, metric, dead letter) while the worker goes on.

use std::time::Duration;

use serde_json::{json, Value};
use wagate::config::ForwardMode;
use wagate::util::clock::Clock;

use crate::support::dashboard::{Browser, PASSWORD};
use crate::support::fake_target::{Answer, FakeTarget};
use crate::support::forward::{messages_body_from, poll_target, spawn, target, PHONE};
use crate::support::{eventually, TestApp, TEN_YEARS};

const CONTACT: &str = "16505551234";
/// The first second RFC 3339 cannot write.
const YEAR_10000: i64 = 253_402_300_800;
/// 9999-12-31T23:59:59Z: its 24-hour window closes in year 10000.
const LAST_SECOND: i64 = YEAR_10000 - 1;

fn value_body(value: Value) -> Vec<u8> {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({"display_phone_number": "15550783881", "phone_number_id": PHONE});
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}))
    .unwrap()
}

fn message_at(id: &str, ts: i64) -> Vec<u8> {
    value_body(json!({
        "contacts": [{"profile": {"name": "Kerry"}, "wa_id": CONTACT}],
        "messages": [{"from": CONTACT, "id": id, "timestamp": ts.to_string(), "type": "text", "text": {"body": "from the far future"}}],
    }))
}

fn status_at(id: &str, status: &str, ts: i64) -> Vec<u8> {
    let mut s =
        json!({"id": id, "status": status, "timestamp": ts.to_string(), "recipient_id": CONTACT});
    if status == "failed" {
        s["errors"] =
            json!([{"code": 131049, "title": "not delivered", "message": "not delivered"}]);
    }
    value_body(json!({"statuses": [s]}))
}

/// The message, a failed status at `i64::MAX` and a sent one in year 10000.
async fn deliver_absurd_items(app: &TestApp) {
    app.deliver(message_at("wamid.FAR", LAST_SECOND)).await;
    app.deliver(status_at("wamid.OUTMAX", "failed", i64::MAX))
        .await;
    app.deliver(status_at("wamid.OUT10K", "sent", YEAR_10000))
        .await;
    app.wait_applied().await;
}

/// A time the API wrote: RFC 3339 of this millennium.
fn assert_rfc3339(v: &Value, what: &str) {
    let s = v.as_str().unwrap_or_else(|| panic!("{what}: {v}"));
    assert!(s.starts_with("20") && s.ends_with('Z'), "{what}: {s}");
}

#[tokio::test]
async fn every_read_answers_and_shows_the_raw_time_marked() {
    let app = TestApp::spawn_with(|c| {
        c.admin_password = Some(wagate::config::Secret::new(PASSWORD));
        c.dedup_ttl = TEN_YEARS;
    })
    .await;
    deliver_absurd_items(&app).await;

    // The contact's window counts from the receive time, not from year 9999.
    let contact = app.get_json(&format!("/api/contacts/{CONTACT}")).await;
    assert_eq!(contact["window_open"], true, "{contact}");
    assert_rfc3339(&contact["window_closes_at"], "window_closes_at");

    let list = app.get_json("/api/messages").await;
    let m = &list["messages"][0];
    assert_eq!(m["id"], "wamid.FAR", "{list}");
    assert_eq!(m["timestamp_out_of_range"], true, "{m}");
    assert_eq!(m["timestamp_raw"], LAST_SECOND, "{m}");
    assert!(m["timestamp"].as_i64().unwrap() < YEAR_10000, "{m}");

    for (id, raw) in [("wamid.OUTMAX", i64::MAX), ("wamid.OUT10K", YEAR_10000)] {
        let one = app.get_json(&format!("/api/messages/{id}")).await;
        let s = &one["statuses"][0];
        assert_eq!(s["timestamp_out_of_range"], true, "{one}");
        assert_eq!(s["timestamp_raw"], raw, "{one}");
    }
    assert_eq!(
        app.get_json("/api/messages/wamid.OUTMAX").await["current_status"],
        "failed"
    );

    let mut b = Browser::logged_in(&app).await;
    let messages = b.page("/dashboard/messages").await;
    assert!(messages.contains(&LAST_SECOND.to_string()), "{messages}");
    let conv = b
        .page(&format!("/dashboard/conversation?contact={CONTACT}"))
        .await;
    assert!(conv.contains(&LAST_SECOND.to_string()), "{conv}");
    assert!(conv.contains("out of range"), "{conv}");
    let statuses = b.page("/dashboard/statuses").await;
    assert!(statuses.contains(&i64::MAX.to_string()), "{statuses}");
    assert!(statuses.contains("out of range"), "{statuses}");
    for path in ["/", "/dashboard/events", "/dashboard/deliveries"] {
        b.page(path).await;
    }
}

#[tokio::test]
async fn an_events_target_gets_what_follows_an_absurd_time_also_after_a_restart() {
    let t = FakeTarget::start("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").await;
    let targets = || {
        vec![target(
            "ev",
            &t,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ForwardMode::Events,
        )]
    };
    let app = spawn(targets(), |_| {}).await;
    app.deliver(status_at("wamid.OUT10K", "sent", YEAR_10000))
        .await;
    app.deliver(messages_body_from_contact("wamid.NEXT1")).await;
    let got = t.wait_for(2).await;
    let absurd = got[0].json();
    assert_eq!(absurd["type"], "whatsapp.status", "{absurd}");
    assert_rfc3339(&absurd["timestamp"], "event timestamp");
    assert_eq!(absurd["timestamp_out_of_range"], true, "{absurd}");
    assert_eq!(absurd["timestamp_raw"], YEAR_10000, "{absurd}");
    assert_eq!(absurd["data"]["status"]["timestamp_raw"], YEAR_10000);
    assert_eq!(got[1].json()["data"]["message"]["id"], "wamid.NEXT1");

    let dir = app.stop().await;
    let app = TestApp::spawn_in(dir, |c| {
        c.dedup_ttl = TEN_YEARS;
        c.forward.targets = targets();
    })
    .await;
    app.deliver(status_at("wamid.OUTMAX", "failed", i64::MAX))
        .await;
    app.deliver(messages_body_from_contact("wamid.NEXT2")).await;
    let got = t.wait_for(4).await;
    assert_eq!(got[2].json()["timestamp_raw"], i64::MAX);
    assert_eq!(got[3].json()["data"]["message"]["id"], "wamid.NEXT2");
    let v = poll_target(&app, "ev", |t| t["delivered"] == 4).await;
    assert_eq!(v["state"], "active", "{v}");
    assert_eq!(v["dead_lettered"], 0, "{v}");
}

fn messages_body_from_contact(id: &str) -> Vec<u8> {
    messages_body_from(PHONE, CONTACT, &[id])
}

#[tokio::test]
async fn retention_deletes_absurd_times_by_their_receive_time() {
    let app = TestApp::spawn_clocked(Clock::manual_now(), |c| {
        c.event_ttl = Duration::from_secs(86_400);
        c.dedup_ttl = Duration::from_secs(86_400);
    })
    .await;
    deliver_absurd_items(&app).await;
    assert_eq!(app.get("/api/messages/wamid.FAR").await.status(), 200);
    // Past the TTL and the next sweep (every 10 minutes).
    app.clock().advance(Duration::from_secs(2 * 86_400 + 3600));
    app.deliver(message_at("wamid.NOW", app.clock().now_secs()))
        .await;
    eventually("the absurd items to expire", async || {
        let mut left = Vec::new();
        for id in ["wamid.FAR", "wamid.OUTMAX", "wamid.OUT10K"] {
            if app.get(&format!("/api/messages/{id}")).await.status() != 404 {
                left.push(id);
            }
        }
        left.is_empty()
            .then_some(())
            .ok_or(format!("{left:?} left"))
    })
    .await;
    app.wait_applied().await;
    let list = app.get_json("/api/messages").await;
    assert_eq!(list["messages"][0]["id"], "wamid.NOW", "{list}");
}

#[tokio::test]
async fn an_entry_that_cannot_be_built_is_reported_and_the_worker_goes_on() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let t = FakeTarget::start(secret).await;
    t.fallback(Some(Answer::status(503)));
    let targets = || vec![target("ev", &t, secret, ForwardMode::Events)];
    let app = spawn(targets(), |_| {}).await;
    app.deliver(messages_body_from_contact("wamid.LOST")).await;
    app.deliver(messages_body_from_contact("wamid.KEPT")).await;
    t.wait_for(1).await;
    app.wait_applied().await;
    let list = app.get_json("/api/deliveries?limit=2").await;
    let lost = list["deliveries"][1]["id"].as_u64().unwrap();
    let dir = app.stop().await;
    // The first delivery's raw bytes can no longer be read (as after a lost segment).
    {
        let store = wagate::store::Store::open(&dir.path().join("state")).unwrap();
        let mut meta = store.delivery(lost).unwrap().unwrap();
        meta.pos.segment = 999_999;
        let mut changes = wagate::store::Changes::new();
        changes.put_delivery(&meta);
        store.commit(changes).unwrap();
        store.flush().unwrap();
    }
    t.fallback(None);
    let app = TestApp::spawn_in(dir, |c| {
        c.dedup_ttl = TEN_YEARS;
        c.forward.targets = targets();
    })
    .await;
    t.wait_until("wamid.KEPT forwarded", |got| {
        got.iter()
            .any(|g| g.status == 200 && g.json()["data"]["message"]["id"] == "wamid.KEPT")
    })
    .await;
    let v = poll_target(&app, "ev", |t| {
        t["delivered"] == 1 && t["dead_lettered"] == 1
    })
    .await;
    assert_eq!(v["state"], "active", "the worker goes on: {v}");
    assert_eq!(v["entry_failures"], 1, "{v}");
    let error = v["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("no longer in the journal"), "{v}");
    let dead = app.get_json("/api/forward/dead_letters?target=ev").await;
    assert_eq!(dead["dead_letters"][0]["delivery"], lost, "{dead}");
    assert!(dead["dead_letters"][0]["error"]
        .as_str()
        .unwrap()
        .contains("no longer in the journal"));
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("wagate_forward_entry_failures_total{target=\"ev\"} 1"),
        "{metrics}"
    );
}
