//! Coexistence (the WhatsApp Business app and the Cloud API on one number): echoes
//! of messages typed in the app are outbound messages of their contact, the history
//! backfill is stored with its own times and statuses and is never a stale replay,
//! neither opens the 24-hour window, and the app's contacts update the contact.
//! Bodies are shaped as Meta's webhook reference pages document them.

use std::time::Duration;

use serde_json::Value;
use wagate::util::clock::Clock;

use crate::support::dashboard::{Browser, PASSWORD};
use crate::support::{data_path, TestApp};

/// The time the bodies under `tests/data/coex/` are written around (2025-12-02).
const T0: i64 = 1_764_670_000;
const CONTACT: &str = "16505551234";
const ECHO: &str = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJFQ0hPMDAwMDAwMDAwMDAwMQA=";
const HIST_IN: &str = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBJISVNUMDAwMDAwMDAwMDAwMQA=";
const HIST_OUT: &str = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJISVNUMDAwMDAwMDAwMDAwMgA=";

fn body(name: &str) -> Vec<u8> {
    std::fs::read(data_path(&format!("coex/{name}"))).expect("coex payload")
}

async fn app_at(secs: i64, tweak: impl FnOnce(&mut wagate::config::Config)) -> TestApp {
    TestApp::spawn_clocked(Clock::manual(secs * 1_000_000), |c| {
        // History is up to 180 days old: kept past the default retention here.
        c.event_ttl = Duration::from_secs(365 * 24 * 3600);
        c.admin_password = Some(wagate::config::Secret::new(PASSWORD));
        tweak(c)
    })
    .await
}

fn inbound(wamid: &str, ts: i64) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},"contacts":[{{"profile":{{"name":"Kerry"}},"wa_id":"{CONTACT}"}}],"messages":[{{"from":"{CONTACT}","id":"{wamid}","timestamp":"{ts}","text":{{"body":"hi"}},"type":"text"}}]}},"field":"messages"}}]}}]}}"#
    )
}

#[tokio::test]
async fn an_echo_is_an_outbound_message_of_its_contact_and_opens_no_window() {
    let app = app_at(T0 + 200, |_| {}).await;
    app.deliver(body("smb_message_echoes_text.json")).await;
    app.wait_applied().await;
    let m = app.get_json(&format!("/api/messages/{ECHO}")).await;
    assert_eq!(m["direction"], "outbound", "{m}");
    assert_eq!(m["message"]["source"], "business_app");
    assert_eq!(m["message"]["to"], CONTACT);
    assert_eq!(m["message"]["contact_id"], CONTACT);
    assert_eq!(
        m["message"]["content"]["body"],
        "Your order shipped today:/ tracking soon"
    );
    let list = app
        .get_json(&format!("/api/messages?contact={CONTACT}"))
        .await;
    assert_eq!(list["messages"][0]["id"], ECHO);
    // The echo opened no window.
    let c = app.get_json(&format!("/api/contacts/{CONTACT}")).await;
    assert_eq!(c["window_open"], false, "{c}");
    assert_eq!(c["last_inbound_at"], Value::Null);
    // An inbound message does; a later echo does not move it.
    app.deliver(inbound("wamid.IN1", T0 + 50)).await;
    app.wait_applied().await;
    let c = app.get_json(&format!("/api/contacts/{CONTACT}")).await;
    assert_eq!(c["last_inbound_at"], T0 + 50, "{c}");
    assert_eq!(c["window_open"], true);
    // In time order in the contact's conversation: the echo is the newer.
    let list = app
        .get_json(&format!("/api/messages?contact={CONTACT}"))
        .await;
    let ids: Vec<_> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, [Value::from(ECHO), Value::from("wamid.IN1")]);
    let mut browser = Browser::logged_in(&app).await;
    let page = browser
        .page(&format!("/dashboard/conversation?contact={CONTACT}"))
        .await;
    let echo_at = page.find("Your order shipped").expect("the echo shown");
    let in_at = page
        .find("<div>hi</div>")
        .expect("the inbound message shown");
    assert!(in_at < echo_at, "in time order");
    assert!(page.contains("from the Business app"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn message_echoes_inside_a_messages_change_are_echoes_too() {
    let app = app_at(T0 + 200, |_| {}).await;
    let text = String::from_utf8(body("smb_message_echoes_text.json")).unwrap();
    app.deliver(text.replace(r#""field":"smb_message_echoes""#, r#""field":"messages""#))
        .await;
    app.wait_applied().await;
    let m = app.get_json(&format!("/api/messages/{ECHO}")).await;
    assert_eq!(m["direction"], "outbound");
    assert_eq!(m["message"]["source"], "business_app");
    let events = app.get_json("/api/events").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 0, "{events}");
    app.stop().await;
}

#[tokio::test]
async fn history_is_stored_with_its_own_times_never_stale_and_opens_no_window() {
    // A dedup horizon of a minute: any live message this old would be a stale replay.
    let app = app_at(T0, |c| c.dedup_ttl = Duration::from_secs(60)).await;
    app.deliver(body("history_phase0_chunk1.json")).await;
    app.wait_applied().await;
    let m = app.get_json(&format!("/api/messages/{HIST_IN}")).await;
    assert_eq!(m["direction"], "inbound", "{m}");
    assert_eq!(m["message"]["source"], "history");
    assert_eq!(m["message"]["timestamp"], 1_762_942_000);
    assert_eq!(m["current_status"], "read");
    let out = app.get_json(&format!("/api/messages/{HIST_OUT}")).await;
    assert_eq!(out["direction"], "outbound", "{out}");
    assert_eq!(out["current_status"], "delivered");
    let list = app
        .get_json(&format!("/api/messages?contact={CONTACT}"))
        .await;
    assert_eq!(list["messages"].as_array().unwrap().len(), 3, "{list}");
    assert_eq!(list["messages"][2]["id"], HIST_IN, "oldest last");
    let c = app.get_json(&format!("/api/contacts/{CONTACT}")).await;
    assert_eq!(c["window_open"], false, "{c}");
    // The chunk is an event with a summary; the progress is visible per phone number.
    let events = app.get_json("/api/events?field=history").await;
    let summary = events["events"][0]["summary"].as_str().unwrap().to_string();
    assert_eq!(
        summary,
        "history phase 0 chunk 1: 55%, 1 threads, 3 messages"
    );
    let h = app.get_json("/api/history").await;
    let p = &h["phone_numbers"][0];
    assert_eq!(p["phone_number_id"], "106540352242922", "{h}");
    assert_eq!(p["phases"], serde_json::json!([0]));
    assert_eq!(
        (p["chunks"].clone(), p["progress"].clone()),
        (1.into(), 55.into())
    );
    assert_eq!(p["messages_imported"], 3);
    // Dedup on the wamid still applies: the same chunk again imports nothing.
    app.deliver(body("history_phase0_chunk1.json")).await;
    app.wait_applied().await;
    let again = app.get_json("/api/history").await;
    assert_eq!(again["phone_numbers"][0]["messages_imported"], 3);
    let metrics = app.metrics().await;
    assert!(
        !metrics
            .lines()
            .any(|l| l.contains("stale") && !l.starts_with('#') && !l.ends_with(" 0")),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_declined_history_share_is_an_account_event_with_a_summary() {
    let app = app_at(T0, |_| {}).await;
    app.deliver(body("history_declined.json")).await;
    app.wait_applied().await;
    let events = app.get_json("/api/events?field=history").await;
    assert_eq!(
        events["events"][0]["summary"],
        "history sharing declined (2593109): History sharing is turned off by the business"
    );
    let h = app.get_json("/api/history").await;
    assert_eq!(h["phone_numbers"][0]["declined"], true, "{h}");
    app.stop().await;
}

#[tokio::test]
async fn app_contacts_set_the_saved_name_apart_from_the_profile_name() {
    let app = app_at(T0 + 400, |_| {}).await;
    app.deliver(inbound("wamid.IN2", T0 + 10)).await;
    app.deliver(body("smb_app_state_sync.json")).await;
    app.wait_applied().await;
    let c = app.get_json(&format!("/api/contacts/{CONTACT}")).await;
    assert_eq!(c["saved_name"], "Kerry Fisher (bakery)", "{c}");
    assert_eq!(c["profile_name"], "Kerry");
    let removed = app.get_json("/api/contacts/16505559999").await;
    assert_eq!(removed["saved_removed"], true, "{removed}");
    let events = app.get_json("/api/events?field=smb_app_state_sync").await;
    assert_eq!(
        events["events"][0]["summary"],
        "app contacts: 1 added or edited, 1 removed"
    );
    app.stop().await;
}
