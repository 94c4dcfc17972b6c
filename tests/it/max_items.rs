//! One delivery cannot take processing down, whatever it holds: past
//! `WAGATE_MAX_ITEMS` its items are not applied (the raw body is kept, the delivery
//! flagged `items_skipped`), and the deliveries after it are processed as usual.

use serde_json::{json, Value};

use crate::support::TestApp;

const CAP: usize = 100;

/// Unix seconds now (items older than the dedup window are stale, never stored).
fn now() -> i64 {
    wagate::util::clock::now_micros() / 1_000_000
}

fn message(n: usize) -> Value {
    json!({"from": "16505551234", "id": format!("wamid.CAP{n}"), "timestamp": now().to_string(),
        "type": "text", "text": {"body": format!("number {n}")}})
}

/// 150 readable messages, then `empties` messages that are only `{}`.
fn flood(empties: usize) -> Vec<u8> {
    let mut messages: Vec<String> = (0..150).map(|n| message(n).to_string()).collect();
    messages.extend(std::iter::repeat_n("{}".to_string(), empties));
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},"messages":[{}]}}}}]}}]}}"#,
        messages.join(",")
    )
    .into_bytes()
}

fn single(n: usize) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"},
            "messages": [message(n)]}}]}]})
    .to_string()
    .into_bytes()
}

async fn stored(app: &TestApp, n: usize) -> bool {
    let status = app
        .get(&format!("/api/messages/wamid.CAP{n}"))
        .await
        .status();
    assert!(status == 200 || status == 404, "{status}");
    status == 200
}

#[tokio::test]
async fn items_past_the_cap_are_not_applied_and_the_delivery_says_so() {
    let app = TestApp::spawn_with(|c| c.processing.max_items = CAP).await;
    let body = flood(50_000);
    app.deliver(body.clone()).await;
    // Processing goes on with what comes next.
    app.deliver(single(1_000)).await;
    app.wait_applied().await;
    assert!(stored(&app, 1_000).await, "the next delivery was applied");

    for n in [0, 1, CAP - 1] {
        assert!(stored(&app, n).await, "message {n} is within the cap");
    }
    for n in [CAP, CAP + 1, 149] {
        assert!(!stored(&app, n).await, "message {n} is past the cap");
    }

    let list = app.get_json("/api/deliveries?verdict=accepted").await;
    let id = list["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["items"] == 50_150)
        .unwrap_or_else(|| panic!("the flood in {list}"))["id"]
        .clone();
    let detail = app.get_json(&format!("/api/deliveries/{id}")).await;
    assert_eq!(detail["items"], 50_150, "{detail}");
    assert_eq!(detail["items_skipped"], 50_150 - CAP, "{detail}");
    assert!(
        detail.get("parse_error").is_none_or(Value::is_null),
        "{detail}"
    );
    // The raw body is kept whole.
    let raw = app.get(&format!("/api/deliveries/{id}/raw")).await;
    assert_eq!(raw.bytes().await.unwrap().as_ref(), &body[..]);

    let m = app.metrics().await;
    let skipped = format!("\nwagate_items_skipped_total {}\n", 50_150 - CAP);
    assert!(m.contains(&skipped), "{m}");
    // The one that came next was not flagged.
    let next = &list["deliveries"][0];
    assert_eq!(next["items"], 1, "{list}");
    let next = app
        .get_json(&format!("/api/deliveries/{}", next["id"]))
        .await;
    assert!(next.get("items_skipped").is_none(), "{next}");

    app.stop().await;
}
