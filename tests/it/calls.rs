//! Calls (the WhatsApp Business Calling API): `connect`, call statuses and
//! `terminate` make one call, its events in time order whatever the arrival order
//! and once each; a call status is not a message status; the SDP stays in the raw
//! delivery only. A call permission reply is a message with its answer and expiry.

use serde_json::Value;
use wagate::util::clock::Clock;

use crate::support::dashboard::{Browser, PASSWORD};
use crate::support::{data_path, TestApp};

const T0: i64 = 1_764_670_000;
const CALL: &str = "wacid.HBgLMTY1MDU1NTEyMzQVAgARGBJDQUxMMDAwMDAwMDAwMDAwMQA=";
const CONTACT: &str = "16505551234";

fn body(name: &str) -> Vec<u8> {
    std::fs::read(data_path(&format!("coex/{name}"))).expect("coex payload")
}

async fn app() -> TestApp {
    TestApp::spawn_clocked(Clock::manual((T0 + 400) * 1_000_000), |c| {
        c.admin_password = Some(wagate::config::Secret::new(PASSWORD));
    })
    .await
}

#[tokio::test]
async fn a_call_is_its_events_in_time_order_whatever_the_arrival_order() {
    let app = app().await;
    // Arrival: terminate, status, connect, and the connect again.
    for name in [
        "calls_terminate.json",
        "calls_status_accepted.json",
        "calls_connect.json",
        "calls_connect.json",
    ] {
        app.deliver(body(name)).await;
    }
    app.wait_applied().await;
    let c = app.get_json(&format!("/api/calls/{CALL}")).await;
    assert_eq!(c["id"], CALL);
    assert_eq!(c["contact"], CONTACT);
    assert_eq!(c["direction"], "USER_INITIATED");
    assert_eq!(
        (c["from"].clone(), c["to"].clone()),
        (CONTACT.into(), "15550783881".into())
    );
    assert_eq!(c["state"], "completed", "{c}");
    let events: Vec<_> = c["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["timestamp"].as_i64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("connect", T0 + 200),
        ("status", T0 + 201),
        ("terminate", T0 + 290),
    ];
    assert_eq!(events, want.map(|(e, t)| (e.to_string(), t)));
    assert_eq!(c["events"][1]["status"], "ACCEPTED");
    assert_eq!(
        (c["started_at"].clone(), c["ended_at"].clone()),
        ((T0 + 205).into(), (T0 + 290).into())
    );
    assert_eq!(c["duration_seconds"], 85);
    // Listed, by contact too; unknown ones are 404.
    let all = app.get_json("/api/calls").await;
    assert_eq!(all["calls"].as_array().unwrap().len(), 1, "{all}");
    let mine = app
        .get_json(&format!("/api/calls?contact={CONTACT}&limit=5"))
        .await;
    assert_eq!(mine["calls"][0]["id"], CALL);
    let none = app.get_json("/api/calls?contact=1999").await;
    assert_eq!(none["calls"], serde_json::json!([]));
    assert_eq!(app.get("/api/calls/wacid.nope").await.status(), 404);
    // A call status is not a message status; the SDP is nowhere in the model.
    assert_eq!(
        app.get(&format!("/api/messages/{CALL}")).await.status(),
        404
    );
    let snapshot = app.state.store.model_snapshot().unwrap();
    assert!(!snapshot
        .iter()
        .any(|(_, _, v)| String::from_utf8_lossy(v).contains("BUNDLE")));
    let events = app.get_json("/api/events").await;
    assert_eq!(
        events["events"],
        serde_json::json!([]),
        "calls are not account events"
    );
    // In line in the conversation.
    let mut browser = Browser::logged_in(&app).await;
    let page = browser
        .page(&format!("/dashboard/conversation?contact={CONTACT}"))
        .await;
    assert!(
        page.contains("[call from the contact] completed, "),
        "{page}"
    );
    // The contact's export holds its calls.
    let zip = app.get(&format!("/api/contacts/{CONTACT}/export")).await;
    assert_eq!(zip.status(), 200);
    let zip = zip.bytes().await.unwrap();
    assert!(
        zip.windows(11).any(|w| w == b"calls.jsonl"),
        "calls.jsonl in the archive"
    );
    app.stop().await;
}

#[tokio::test]
async fn calls_page_newest_first_with_a_cursor() {
    let app = app().await;
    let connect = String::from_utf8(body("calls_connect.json")).unwrap();
    for (i, id) in ["wacid.A", "wacid.B", "wacid.C"].iter().enumerate() {
        let b = connect
            .replace(CALL, id)
            .replace("1764670200", &(T0 + 100 + i as i64).to_string());
        app.deliver(b).await;
    }
    app.wait_applied().await;
    let first = app.get_json("/api/calls?limit=2").await;
    let ids = |v: &Value| -> Vec<String> {
        v["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().into())
            .collect()
    };
    assert_eq!(ids(&first), ["wacid.C", "wacid.B"]);
    let before = first["next_before"].as_str().unwrap();
    let rest = app
        .get_json(&format!("/api/calls?limit=2&before={before}"))
        .await;
    assert_eq!(ids(&rest), ["wacid.A"]);
    app.stop().await;
}

#[tokio::test]
async fn a_call_permission_reply_shows_its_answer_and_expiry() {
    let app = app().await;
    app.deliver(body("msg_call_permission_reply.json")).await;
    app.wait_applied().await;
    let list = app
        .get_json(&format!("/api/messages?contact={CONTACT}"))
        .await;
    let m = &list["messages"][0];
    assert_eq!(m["type"], "interactive");
    let c = &m["content"];
    assert_eq!(c["kind"], "call_permission_reply", "{m}");
    assert_eq!(c["response"], "accept");
    assert_eq!(c["expiration_timestamp"], 1_765_274_850);
    assert_eq!(c["response_source"], "user_action");
    assert_eq!(c["is_permanent"], false);
    let mut browser = Browser::logged_in(&app).await;
    let page = browser
        .page(&format!("/dashboard/conversation?contact={CONTACT}"))
        .await;
    assert!(
        page.contains("[call permission] accept until 2025-12-09"),
        "{page}"
    );
    app.stop().await;
}

#[tokio::test]
async fn call_events_expire_with_the_event_ttl() {
    let tweak = |c: &mut wagate::Config| c.event_ttl = std::time::Duration::from_secs(3600);
    let app = TestApp::spawn_clocked(Clock::manual((T0 + 400) * 1_000_000), tweak).await;
    app.deliver(body("calls_connect.json")).await;
    app.deliver(body("calls_terminate.json")).await;
    app.wait_applied().await;
    assert_eq!(
        app.get_json(&format!("/api/calls/{CALL}")).await["state"],
        "completed"
    );
    let dir = app.stop().await;
    // Two hours later the sweep (it runs at start) removes them.
    let later = Clock::manual((T0 + 2 * 3600) * 1_000_000);
    let app = TestApp::spawn_on(dir, later, tweak).await;
    app.deliver(body("msg_call_permission_reply.json")).await;
    app.wait_applied().await;
    assert_eq!(app.get(&format!("/api/calls/{CALL}")).await.status(), 404);
    assert_eq!(
        app.get_json("/api/calls").await["calls"],
        serde_json::json!([])
    );
    let left = app.state.store.model_snapshot().unwrap();
    assert!(
        !left.iter().any(|(t, _, _)| t.starts_with("calls")),
        "call trees emptied"
    );
    app.stop().await;
}
