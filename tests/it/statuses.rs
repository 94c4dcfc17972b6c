//! A message's current status is derived from its timeline: recording a status is a
//! write without a read, and the answer does not depend on arrival order.

use crate::support::TestApp;

fn status(wamid: &str, status: &str, ts: i64) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"1","phone_number_id":"2"}},"statuses":[{{"id":"{wamid}","status":"{status}","timestamp":"{ts}","recipient_id":"16505550000"}}]}},"field":"messages"}}]}}]}}"#
    )
}

async fn current_after(order: &[(&str, i64)]) -> (serde_json::Value, usize) {
    let app = TestApp::spawn().await;
    let now = wagate::util::clock::now_micros() / 1_000_000;
    for (s, dt) in order {
        app.deliver(status("wamid.S1", s, now + dt)).await;
    }
    app.wait_applied().await;
    let m = app.get_json("/api/messages/wamid.S1").await;
    let stored_current = app
        .state
        .store
        .model_snapshot()
        .unwrap()
        .iter()
        .filter(|(tree, _, _)| *tree == "status_current")
        .count();
    app.stop().await;
    (m, stored_current)
}

#[tokio::test]
async fn the_current_status_is_the_highest_of_the_timeline_in_any_order() {
    let orders: [&[(&str, i64)]; 3] = [
        &[
            ("sent", 0),
            ("delivered", 1),
            ("read", 2),
            ("warning", 3),
            ("deleted", 4),
        ],
        &[
            ("deleted", 4),
            ("read", 2),
            ("warning", 3),
            ("sent", 0),
            ("delivered", 1),
        ],
        &[
            ("warning", 3),
            ("delivered", 1),
            ("deleted", 4),
            ("read", 2),
            ("sent", 0),
        ],
    ];
    for order in orders {
        let (m, stored_current) = current_after(order).await;
        assert_eq!(m["current_status"], "read", "{order:?}");
        assert_eq!(m["statuses"].as_array().unwrap().len(), 5);
        assert_eq!(stored_current, 0, "nothing but the timeline is written");
    }
    // Only unknown statuses: the larger name, whatever the order.
    for order in [
        [("deleted", 0), ("warning", 1)],
        [("warning", 1), ("deleted", 0)],
    ] {
        assert_eq!(current_after(&order).await.0["current_status"], "warning");
    }
    // Failed is terminal, even before a later read.
    let (m, _) = current_after(&[("sent", 0), ("failed", 1), ("read", 2)]).await;
    assert_eq!(m["current_status"], "failed");
}
