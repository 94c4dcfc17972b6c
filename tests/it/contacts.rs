//! Contacts: found by any of their ids, and a service window that follows the
//! newest inbound message without a contact write per message.

use serde_json::Value;

use crate::support::{data_path, TestApp, TEN_YEARS};

fn text_from(wa_id: &str, wamid: &str, ts: i64, name: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"1","phone_number_id":"2"}},"contacts":[{{"profile":{{"name":"{name}"}},"wa_id":"{wa_id}"}}],"messages":[{{"from":"{wa_id}","id":"{wamid}","timestamp":"{ts}","text":{{"body":"hi"}},"type":"text"}}]}},"field":"messages"}}]}}]}}"#
    )
}

/// The stored contact records (the `contacts` tree), as raw bytes.
fn contact_records(app: &TestApp) -> Vec<Vec<u8>> {
    app.state
        .store
        .model_snapshot()
        .unwrap()
        .into_iter()
        .filter(|(tree, _, _)| *tree == "contacts")
        .map(|(_, _, v)| v)
        .collect()
}

#[tokio::test]
async fn a_contact_is_found_by_its_user_id_as_well_as_its_phone_number() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = TEN_YEARS).await;
    let body = std::fs::read(data_path(
        "payloads/msg_image_real_capture_with_url_bsuid.json",
    ))
    .unwrap();
    app.deliver(body).await;
    app.wait_applied().await;
    let by_phone = app.get_json("/api/contacts/16505551234").await;
    let by_user_id = app.get_json("/api/contacts/US.13491208655302741918").await;
    assert_eq!(by_user_id, by_phone);
    assert_eq!(by_user_id["contact_id"], "16505551234");
    assert_eq!(by_user_id["user_id"], "US.13491208655302741918");
    assert_eq!(by_user_id["last_inbound_at"], 1778766865);
    // A message filter names the contact by either id too.
    let by_alias = app
        .get_json("/api/messages?contact=US.13491208655302741918")
        .await;
    assert_eq!(by_alias["messages"].as_array().unwrap().len(), 1);
    let missing = app.get("/api/contacts/US.0").await;
    assert_eq!(missing.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn the_window_follows_the_newest_message_and_messages_write_no_contact() {
    let app = TestApp::spawn().await;
    let now = wagate::util::clock::now_micros() / 1_000_000;
    app.deliver(text_from("16505550001", "wamid.W1", now - 3600, "Ana"))
        .await;
    app.wait_applied().await;
    let records = contact_records(&app);
    assert_eq!(records.len(), 1);
    let c = app.get_json("/api/contacts/16505550001").await;
    assert_eq!(c["last_inbound_at"], now - 3600);
    assert_eq!(c["window_open"], true);

    // A newer message, then an older one arriving late: the window follows the
    // newest, and the stored record is untouched (nothing about the contact changed).
    app.deliver(text_from("16505550001", "wamid.W2", now - 60, "Ana"))
        .await;
    app.deliver(text_from("16505550001", "wamid.W0", now - 7200, "Ana"))
        .await;
    app.wait_applied().await;
    assert_eq!(contact_records(&app), records);
    let c: Value = app.get_json("/api/contacts/16505550001").await;
    assert_eq!(c["last_inbound_at"], now - 60);
    let closes = time::OffsetDateTime::parse(
        c["window_closes_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(closes.unix_timestamp(), now - 60 + 86_400);

    // The name is the newest message's, whatever the arrival order: a newer
    // message with another name wins, a late older one with a third name does not.
    app.deliver(text_from("16505550001", "wamid.W3", now, "Aaron"))
        .await;
    app.deliver(text_from("16505550001", "wamid.W00", now - 9000, "Zed"))
        .await;
    app.wait_applied().await;
    let c = app.get_json("/api/contacts/16505550001").await;
    assert_eq!(
        (c["profile_name"].as_str(), c["last_inbound_at"].as_i64()),
        (Some("Aaron"), Some(now))
    );
    let m = app.get_json("/api/messages/wamid.W00").await;
    assert_eq!(m["message"]["profile_name"], "Zed");
    app.stop().await;
}
