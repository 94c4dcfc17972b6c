//! `GET /metrics`: Prometheus text after some traffic.

use crate::support::{TestApp, API_TOKEN, TEN_YEARS, VERIFY_TOKEN};

#[tokio::test]
async fn metrics_show_the_traffic() {
    const METRICS_TOKEN: &str = "metrics-token-0123456789";
    let app = TestApp::spawn_with(|c| {
        c.metrics_token = Some(wagate::config::Secret::new(METRICS_TOKEN));
        c.dedup_ttl = TEN_YEARS;
    })
    .await;
    for i in 0..3 {
        app.deliver(format!(r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messages":[{{"id":"wamid.M{i}","from":"1","timestamp":"1700000000","type":"text","text":{{"body":"x"}}}}]}}}}]}}]}}"#)).await;
    }
    assert_eq!(app.post_webhook("x", Some("sha256=00")).await.status(), 403);
    let url = format!(
        "{}/webhook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1",
        app.base
    );
    assert_eq!(app.client.get(url).send().await.unwrap().status(), 200);
    app.wait_applied().await;

    let get = |token: Option<&'static str>| {
        let mut req = app.client.get(format!("{}/metrics", app.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(get(None).await.unwrap().status(), 401);
    assert_eq!(
        get(Some("wrong-token-0123456789")).await.unwrap().status(),
        401
    );
    assert_eq!(get(Some(API_TOKEN)).await.unwrap().status(), 200);
    let text = get(Some(METRICS_TOKEN))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "wagate_deliveries_total{verdict=\"accepted\"} 3",
        "wagate_deliveries_total{verdict=\"malformed_header\"} 1",
        "wagate_ack_latency_seconds_count 4",
        "wagate_items_total{outcome=\"new\"} 3",
        "wagate_messages_total 3",
        "wagate_handshakes_total{outcome=\"ok\"} 1",
        "wagate_apply_lag 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.contains("wagate_journal_fsync_seconds_bucket{le=\"+Inf\"}"));
    assert!(text.contains("wagate_data_bytes{dir=\"journal\"}"));
    assert!(text.lines().any(|l| l == "wagate_disk_low 0"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404_whatever_the_method() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (reqwest::Method::GET, "/favicon.ico"),
        (reqwest::Method::GET, "/nope"),
        (reqwest::Method::POST, "/nope"),
        (reqwest::Method::PUT, "/webhook"),
    ] {
        let resp = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{method} {path}");
    }
    app.stop().await;
}
