//! Forwarding: meta mode (exact bytes, narrowed payloads, signatures), events mode
//! (Standard Webhooks), dedup across Meta's retries, routing filters, the unrouted
//! list, replay. Retries and failures are in `forward_retry.rs`.

use serde_json::json;
use wagate::config::ForwardMode;

use crate::support::fake_target::{FakeTarget, Got};
use crate::support::forward::{
    messages_body, payload, poll_target, replay, spawn, target, PHONE, TARGET_SECRET,
};
use crate::support::{TestApp, TEN_YEARS};

#[tokio::test]
async fn meta_mode_forwards_exact_bytes_once_across_meta_retries() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    let app = spawn(
        vec![target("bot", &t, TARGET_SECRET, ForwardMode::Meta)],
        |_| {},
    )
    .await;
    let body = payload("msg_text.json");
    app.deliver(body.clone()).await;
    app.deliver(body.clone()).await; // Meta's retry of the same delivery
    let marker = messages_body(PHONE, &["wamid.AFTER"]);
    app.deliver(marker.clone()).await;
    // In order per target: had the retry been forwarded, it would come before the marker.
    let got = t.wait_for(2).await;
    app.wait_applied().await;
    assert_eq!(got[0].body, body, "the original bytes");
    assert_eq!(got[1].body, marker);
    assert!(
        got.iter().all(|g| g.signed),
        "signed with the target's secret"
    );
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert!(got[0].header("user-agent").unwrap().starts_with("wagate/"));
    assert!(got[0].header("x-wagate-delivery").is_some());
    let targets = poll_target(&app, "bot", |t| t["delivered"] == 2).await;
    assert_eq!(targets["queued"], 0);
    assert_eq!(t.got().len(), 2, "the retried delivery was not forwarded");
}

#[tokio::test]
async fn meta_mode_narrows_a_delivery_to_the_items_not_seen() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    let app = spawn(
        vec![target("bot", &t, TARGET_SECRET, ForwardMode::Meta)],
        |_| {},
    )
    .await;
    app.deliver(messages_body(PHONE, &["wamid.N1"])).await;
    let both = messages_body(PHONE, &["wamid.N1", "wamid.N2"]);
    app.deliver(both.clone()).await;
    let got = t.wait_for(2).await;
    assert_eq!(got[0].message_ids(), ["wamid.N1"]);
    assert_ne!(got[1].body, both, "rebuilt, not the original");
    assert_eq!(got[1].message_ids(), ["wamid.N2"]);
    let v = got[1].json();
    let value = &v["entry"][0]["changes"][0]["value"];
    assert_eq!(value["contacts"][0]["profile"]["name"], "Kerry");
    assert_eq!(value["metadata"]["phone_number_id"], PHONE);
    assert!(got[1].signed);
}

#[tokio::test]
async fn events_mode_sends_one_standard_webhook_per_item() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let t = FakeTarget::start(secret).await;
    let app = spawn(vec![target("ev", &t, secret, ForwardMode::Events)], |_| {}).await;
    app.deliver(messages_body(PHONE, &["wamid.E1", "wamid.E2"]))
        .await;
    app.deliver(payload("status_delivered_pmp_free_customer_service.json"))
        .await;
    app.deliver(payload("field_account_update_volume_tier.json"))
        .await;
    let mut got = t.wait_for(4).await;
    assert!(got.iter().all(|g| g.signed), "webhook-signature verifies");
    // In order per contact only: the account event (no contact) and the status
    // (another contact) may overtake the messages. A stable sort keeps the
    // messages' order of arrival.
    let rank = |g: &Got| match g.json()["type"].as_str() {
        Some("whatsapp.message") => 0,
        Some("whatsapp.status") => 1,
        _ => 2,
    };
    got.sort_by_key(rank);
    let events: Vec<_> = got.iter().map(|g| g.json()).collect();
    let types: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "whatsapp.message",
            "whatsapp.message",
            "whatsapp.status",
            "whatsapp.event"
        ]
    );
    assert_eq!(events[0]["data"]["message"]["id"], "wamid.E1");
    assert_eq!(events[1]["data"]["message"]["content"]["kind"], "text");
    assert_eq!(
        events[1]["data"]["message"]["content"]["body"],
        "hi wamid.E2"
    );
    assert_eq!(
        events[1]["data"]["message"]["raw"]["text"]["body"],
        "hi wamid.E2"
    );
    assert_eq!(events[0]["data"]["contact"]["profile_name"], "Kerry");
    assert_eq!(events[2]["data"]["status"]["status"], "delivered");
    assert_eq!(events[3]["data"]["field"], "account_update");
    for (g, e) in got.iter().zip(&events) {
        assert_eq!(g.header("webhook-id"), e["data"]["id"].as_str());
        assert!(g.header("webhook-id").unwrap().starts_with("evt_"));
    }
    let ids: std::collections::HashSet<_> = got.iter().map(|g| g.header("webhook-id")).collect();
    assert_eq!(ids.len(), 4);
}

#[tokio::test]
async fn targets_get_their_phone_numbers_and_fields_and_the_rest_is_unrouted() {
    let (a, b) = (FakeTarget::start("sa").await, FakeTarget::start("sb").await);
    let mut ta = target("a", &a, "sa", ForwardMode::Meta);
    ta.phone_number_ids = vec!["111".into()];
    let mut tb = target("b", &b, "sb", ForwardMode::Meta);
    tb.phone_number_ids = vec!["222".into()];
    tb.fields = vec!["messages".into()];
    let app = spawn(vec![ta, tb], |_| {}).await;
    app.deliver(messages_body("111", &["wamid.P1"])).await;
    app.deliver(messages_body("222", &["wamid.P2"])).await;
    app.deliver(messages_body("333", &["wamid.P3"])).await;
    app.deliver(payload("field_account_update_volume_tier.json"))
        .await;
    app.deliver(messages_body("111", &["wamid.P4"])).await;
    let got_a = a.wait_for(2).await;
    let got_b = b.wait_for(1).await;
    app.wait_applied().await;
    assert_eq!(got_a[0].message_ids(), ["wamid.P1"]);
    assert_eq!(got_a[1].message_ids(), ["wamid.P4"]);
    assert_eq!(got_b[0].message_ids(), ["wamid.P2"]);
    let unrouted = app.get_json("/api/forward/unrouted").await;
    let list = unrouted["unrouted"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{unrouted}");
    assert_eq!(list[0]["field"], "account_update", "newest first");
    assert_eq!(list[1]["phone_number_id"], "333");
    let m = app.metrics().await;
    assert!(m.contains("wagate_forward_unrouted_total 2"), "{m}");
    assert!(m.contains("wagate_forward_delivered_total{target=\"a\"}"));
}

#[tokio::test]
async fn replay_a_delivery_and_a_time_range() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    let app = spawn(
        vec![target("bot", &t, TARGET_SECRET, ForwardMode::Meta)],
        |_| {},
    )
    .await;
    let first = messages_body(PHONE, &["wamid.R1"]);
    app.deliver(first.clone()).await;
    app.deliver(messages_body(PHONE, &["wamid.R2"])).await;
    app.deliver(messages_body(PHONE, &["wamid.R2", "wamid.R3"]))
        .await;
    t.wait_for(3).await;
    app.wait_applied().await;
    let list = app.get_json("/api/deliveries?verdict=accepted").await;
    let first_id = list["deliveries"].as_array().unwrap().last().unwrap()["id"]
        .as_u64()
        .unwrap();
    let r = replay(&app, json!({"target": "bot", "delivery": first_id})).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let got = t.wait_for(4).await;
    assert_eq!(got[3].body, first, "the delivery again, byte for byte");
    let now = wagate::util::clock::now_micros() / 1_000_000;
    let r = replay(
        &app,
        json!({"target": "bot", "from": now - 60, "to": now + 1}),
    )
    .await;
    assert_eq!((r.0, r.1["deliveries"].as_u64()), (200, Some(3)), "{}", r.1);
    let got = t.wait_for(7).await;
    let ids: Vec<_> = got[4..].iter().flat_map(|g| g.message_ids()).collect();
    assert_eq!(ids, ["wamid.R1", "wamid.R2", "wamid.R3"], "each event once");
    for bad in [
        json!({"target": "nope", "delivery": first_id}),
        json!({"target": "bot"}),
        json!({"target": "bot", "delivery": 1, "from": 1, "to": 2}),
    ] {
        assert_eq!(replay(&app, bad).await.0, 400);
    }
    assert_eq!(
        replay(&app, json!({"target": "bot", "delivery": 999_999}))
            .await
            .0,
        404
    );
    poll_target(&app, "bot", |t| t["delivered"] == 7).await;
}

#[tokio::test]
async fn rebuilt_from_the_journal_nothing_is_sent_again() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    let targets = || vec![target("bot", &t, TARGET_SECRET, ForwardMode::Meta)];
    let app = spawn(targets(), |_| {}).await;
    app.deliver(messages_body(PHONE, &["wamid.B1"])).await;
    app.deliver(messages_body("999", &["wamid.B2"])).await;
    t.wait_for(2).await;
    poll_target(&app, "bot", |t| t["delivered"] == 2).await;
    let dir = app.stop().await;
    // Derived state is rebuilt from the journal: the queue, the counts, the outcomes.
    std::fs::remove_dir_all(dir.path().join("state")).unwrap();
    let app = TestApp::spawn_in(dir, |c| {
        c.dedup_ttl = TEN_YEARS;
        c.forward.targets = targets();
    })
    .await;
    app.wait_applied().await;
    let v = poll_target(&app, "bot", |t| t["delivered"] == 2).await;
    assert_eq!(v["queued"], 0, "{v}");
    app.deliver(messages_body(PHONE, &["wamid.B3"])).await;
    let got = t.wait_for(3).await;
    assert_eq!(
        got[2].message_ids(),
        ["wamid.B3"],
        "B1 and B2 were not sent again"
    );
}
