//! Event processing through the real server: per-item dedup, the model, the read API.

use proptest::prelude::*;
use serde_json::Value;

use crate::support::{corpus, data_path, TestApp, TEN_YEARS};

fn payload(file: &str) -> Vec<u8> {
    std::fs::read(data_path(&format!("payloads/{file}"))).unwrap()
}

async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| c.dedup_ttl = TEN_YEARS).await
}

fn first_message_id(file: &str) -> String {
    let v: Value = serde_json::from_slice(&payload(file)).unwrap();
    v["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_whole_corpus_is_parsed_into_the_model() {
    let app = spawn().await;
    for (_, body, sig) in corpus() {
        assert_eq!(app.post_webhook(body, Some(&sig)).await.status(), 200);
    }
    app.wait_applied().await;
    let stats = app.get_json("/api/stats").await;
    assert_eq!(stats["unparseable"], 0);
    assert_eq!(stats["items_stale"], 0);
    let (new, msgs, sts, evs) = (
        &stats["items_new"],
        &stats["messages"],
        &stats["statuses"],
        &stats["events"],
    );
    assert_eq!(
        new.as_u64().unwrap(),
        msgs.as_u64().unwrap() + sts.as_u64().unwrap() + evs.as_u64().unwrap()
    );
    // Some corpus files repeat an item of another (the batches reuse ids): those are duplicates.
    assert!(msgs.as_u64().unwrap() >= 30, "{stats}");
    assert!(sts.as_u64().unwrap() >= 12, "{stats}");
    assert!(stats["items_duplicate"].as_u64().unwrap() <= 6, "{stats}");

    let text = app
        .get_json(&format!(
            "/api/messages/{}",
            first_message_id("msg_text.json")
        ))
        .await;
    assert_eq!(text["direction"], "inbound");
    // The verbatim object comes back from the journal.
    assert!(text["message"]["raw"]["text"]["body"].is_string(), "{text}");
    assert_eq!(text["message"]["content"]["kind"], "text");
    assert!(!text["message"]["content"]["body"]
        .as_str()
        .unwrap()
        .is_empty());
    let image = app
        .get_json(&format!(
            "/api/messages/{}",
            first_message_id("msg_image_roundtrip.json")
        ))
        .await;
    assert_eq!(image["message"]["content"]["kind"], "media");
    assert_eq!(image["message"]["content"]["mime_type"], "image/png");
    let list = app.get_json("/api/messages?type=location").await;
    assert_eq!(list["messages"].as_array().unwrap().len(), 1);
    assert_eq!(list["messages"][0]["content"]["kind"], "location");
    let events = app
        .get_json("/api/events?field=message_template_status_update")
        .await;
    assert_eq!(events["events"].as_array().unwrap().len(), 2);
    let all = app.get_json("/api/events?limit=500").await;
    assert!(all["events"].as_array().unwrap().len() >= 11);
    // Every accepted delivery says how many items it carried.
    let deliveries = app.get_json("/api/deliveries?limit=500").await;
    assert!(deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["items"].as_u64().unwrap() >= 1));
    app.stop().await;
}

#[tokio::test]
async fn the_same_item_in_two_different_bodies_counts_once() {
    let app = spawn().await;
    let body = payload("msg_text.json");
    app.deliver(body.clone()).await;
    // Same JSON value, other bytes (pretty-printed): a new delivery, the same item.
    let v: Value = serde_json::from_slice(&body).unwrap();
    app.deliver(serde_json::to_vec_pretty(&v).unwrap()).await;
    app.deliver(body).await;
    app.wait_applied().await;
    let stats = app.get_json("/api/stats").await;
    assert_eq!(
        (
            stats["items_new"].as_u64(),
            stats["items_duplicate"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(stats["messages"], 1);
    assert_eq!(stats["deliveries_accepted"], 3);
    app.stop().await;
}

#[tokio::test]
async fn batches_yield_every_item() {
    let app = spawn().await;
    app.deliver(payload("batch_two_entries_messages_and_statuses.json"))
        .await;
    app.deliver(payload("batch_one_change_three_statuses.json"))
        .await;
    app.wait_applied().await;
    let stats = app.get_json("/api/stats").await;
    let deliveries = app.get_json("/api/deliveries").await;
    let items: u64 = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["items"].as_u64().unwrap())
        .sum();
    assert!(stats["statuses"].as_u64().unwrap() >= 4, "{stats}");
    assert!(stats["messages"].as_u64().unwrap() >= 2, "{stats}");
    assert!(items >= stats["items_new"].as_u64().unwrap());
    app.stop().await;
}

#[tokio::test]
async fn statuses_out_of_order_end_at_the_highest_with_the_whole_timeline() {
    let app = spawn().await;
    for f in [
        "status_read_pmp_free_customer_service.json",
        "status_sent_pmp_free_customer_service.json",
        "status_delivered_pmp_free_customer_service.json",
        "status_read_pmp_free_customer_service.json",
    ] {
        app.deliver(payload(f)).await;
    }
    app.wait_applied().await;
    let v: Value =
        serde_json::from_slice(&payload("status_read_pmp_free_customer_service.json")).unwrap();
    let id = v["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
        .as_str()
        .unwrap();
    let m = app.get_json(&format!("/api/messages/{id}")).await;
    assert_eq!(m["current_status"], "read");
    assert_eq!(m["direction"], "outbound");
    let timeline: Vec<&str> = m["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(timeline.len(), 3, "{timeline:?}");
    assert!(
        timeline.contains(&"sent") && timeline.contains(&"delivered") && timeline.contains(&"read")
    );
    let stats = app.get_json("/api/stats").await;
    assert_eq!(stats["items_duplicate"], 1);
    app.stop().await;
}

#[tokio::test]
async fn a_failed_status_is_terminal_and_a_late_delivered_never_downgrades() {
    let app = spawn().await;
    let status = |id: &str, st: &str| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"1","phone_number_id":"2"}},"statuses":[{{"id":"{id}","status":"{st}","timestamp":"1700000000","recipient_id":"16505551234"}}]}},"field":"messages"}}]}}]}}"#
        )
    };
    for (id, st) in [
        ("wamid.A", "read"),
        ("wamid.A", "delivered"),
        ("wamid.B", "failed"),
        ("wamid.B", "read"),
    ] {
        app.deliver(status(id, st)).await;
    }
    app.wait_applied().await;
    assert_eq!(
        app.get_json("/api/messages/wamid.A").await["current_status"],
        "read"
    );
    assert_eq!(
        app.get_json("/api/messages/wamid.B").await["current_status"],
        "failed"
    );
    app.stop().await;
}

#[tokio::test]
async fn username_only_contacts_are_found_by_user_id() {
    let app = spawn().await;
    app.deliver(payload("msg_text_bsuid_username_no_phone.json"))
        .await;
    app.wait_applied().await;
    let list = app.get_json("/api/messages").await;
    let m = &list["messages"][0];
    assert_eq!(m["from"], Value::Null);
    let contact_id = m["contact_id"].as_str().unwrap();
    assert!(contact_id.starts_with("US."), "{contact_id}");
    let c = app.get_json(&format!("/api/contacts/{contact_id}")).await;
    assert_eq!(c["user_id"], contact_id);
    // The corpus message is old: its 24-hour window has closed.
    assert_eq!(c["window_open"], false);
    assert!(c["window_closes_at"].is_string());
    let by_contact = app
        .get_json(&format!("/api/messages?contact={contact_id}"))
        .await;
    assert_eq!(by_contact["messages"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_fresh_message_opens_the_service_window() {
    let app = spawn().await;
    let now = wagate::util::clock::now_micros() / 1_000_000;
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"1","phone_number_id":"2"}},"contacts":[{{"profile":{{"name":"Ana"}},"wa_id":"16505550000"}}],"messages":[{{"from":"16505550000","id":"wamid.FRESH","timestamp":"{now}","text":{{"body":"hi"}},"type":"text"}}]}},"field":"messages"}}]}}]}}"#
    );
    app.deliver(body).await;
    app.wait_applied().await;
    let c = app.get_json("/api/contacts/16505550000").await;
    assert_eq!(c["window_open"], true);
    assert_eq!(c["profile_name"], "Ana");
    app.stop().await;
}

#[tokio::test]
async fn items_older_than_the_dedup_horizon_are_stale_replays() {
    let app = TestApp::spawn().await; // default 7-day horizon; the corpus is older
    app.deliver(payload("msg_text.json")).await;
    app.wait_applied().await;
    let stats = app.get_json("/api/stats").await;
    assert_eq!(
        (stats["items_stale"].as_u64(), stats["messages"].as_u64()),
        (Some(1), Some(0))
    );
    app.stop().await;
}

#[tokio::test]
async fn unparseable_json_with_a_valid_signature_is_kept_and_counted() {
    let app = spawn().await;
    app.deliver("{not json").await;
    app.deliver(r#"{"object":"page","entry":{}}"#).await;
    app.wait_applied().await;
    let stats = app.get_json("/api/stats").await;
    assert_eq!(stats["unparseable"], 2);
    assert_eq!(stats["deliveries_accepted"], 2);
    let list = app.get_json("/api/deliveries").await;
    let id = list["deliveries"][1]["id"].as_u64().unwrap();
    let d = app.get_json(&format!("/api/deliveries/{id}")).await;
    assert!(!d["parse_error"].as_str().unwrap().is_empty());
    assert_eq!(d["body"], "{not json");
    app.stop().await;
}

/// The model with each record's `delivery_id` removed (it names the first body that
/// carried an item, which depends on arrival order by design).
fn model(app: &TestApp) -> Vec<(String, Vec<u8>, Value)> {
    app.state
        .store
        .model_snapshot()
        .unwrap()
        .into_iter()
        .map(|(t, k, v)| {
            let mut json: Value = serde_json::from_slice(&v)
                .unwrap_or(Value::String(String::from_utf8_lossy(&v).into()));
            if let Some(o) = json.as_object_mut() {
                o.remove("delivery_id");
            }
            (t.to_string(), k, json)
        })
        .collect()
}

const PROPERTY_SET: &[&str] = &[
    "msg_text.json",
    "status_sent_pmp_free_customer_service.json",
    "status_delivered_pmp_free_customer_service.json",
    "status_read_pmp_free_customer_service.json",
    "batch_two_entries_messages_and_statuses.json",
    "field_message_template_status_update_approved.json",
    "msg_text_bsuid_username_no_phone.json",
];

async fn run_sequence(order: &[usize]) -> Vec<(String, Vec<u8>, Value)> {
    let app = spawn().await;
    for &i in order {
        app.deliver(payload(PROPERTY_SET[i])).await;
    }
    app.wait_applied().await;
    let state = model(&app);
    app.stop().await;
    state
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn any_interleaving_and_repetition_ends_in_the_same_state(
        order in Just((0..PROPERTY_SET.len()).collect::<Vec<_>>()).prop_shuffle(),
        repeats in proptest::collection::vec(0..PROPERTY_SET.len(), 0..6),
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let expected = rt.block_on(run_sequence(&(0..PROPERTY_SET.len()).collect::<Vec<_>>()));
        let mut sequence = order.clone();
        for (n, r) in repeats.iter().enumerate() {
            sequence.insert((n * 3) % (sequence.len() + 1), *r);
        }
        let got = rt.block_on(run_sequence(&sequence));
        prop_assert_eq!(got, expected);
    }
}

#[tokio::test]
async fn sled_rolled_back_to_an_earlier_point_reapplies_to_the_same_state() {
    let bodies: Vec<(String, Vec<u8>, String)> = corpus();
    let (first, second) = bodies.split_at(bodies.len() / 2);
    let keep_corpus = |c: &mut wagate::Config| c.dedup_ttl = TEN_YEARS;

    // sled loses everything after the first half (as if its background flush had not
    // run); the journal keeps it all.
    let app = spawn().await;
    for (_, b, s) in first {
        assert_eq!(app.post_webhook(b.clone(), Some(s)).await.status(), 200);
    }
    app.wait_applied().await;
    let dir = app.stop().await;
    let saved = tempfile::tempdir().unwrap();
    copy_dir(&dir.path().join("state"), saved.path());
    let app = TestApp::spawn_in(dir, keep_corpus).await;
    for (_, b, s) in second {
        assert_eq!(app.post_webhook(b.clone(), Some(s)).await.status(), 200);
    }
    app.wait_applied().await;
    let dir = app.stop().await;
    std::fs::remove_dir_all(dir.path().join("state")).unwrap();
    copy_dir(saved.path(), &dir.path().join("state"));

    let app = TestApp::spawn_in(dir, keep_corpus).await;
    app.wait_applied().await;
    let got = model(&app);
    let got_stats = app.get_json("/api/stats").await;
    let dir = app.stop().await;

    // Reference: the same journal applied in one pass, from nothing.
    std::fs::rename(
        dir.path().join("state"),
        dir.path().join("state.rolled-back"),
    )
    .unwrap();
    let app = TestApp::spawn_in(dir, keep_corpus).await;
    app.wait_applied().await;
    let reference = model(&app);
    let reference_stats = app.get_json("/api/stats").await;
    assert!(reference.len() > 100, "{} model entries", reference.len());
    assert_eq!(got, reference);
    for k in [
        "items_new",
        "items_duplicate",
        "messages",
        "statuses",
        "events",
        "deliveries_accepted",
    ] {
        assert_eq!(got_stats[k], reference_stats[k], "{k}");
    }
    app.stop().await;
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
