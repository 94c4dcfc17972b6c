//! Parameters (issue: bad parameters answered "no such endpoint", path
//! parameters not percent-decoded): every bad query or body answers `400`
//! naming the parameter; encoded ids find what they name.

use serde_json::json;

use crate::support::{dashboard, TestApp, API_TOKEN, TEN_YEARS};

async fn status_and_message(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    let url = format!("{}{}", app.base, path);
    let req = match method {
        "GET" => app.client.get(url),
        _ => app
            .client
            .post(url)
            .header("content-type", "application/json"),
    };
    let req = req
        .bearer_auth(API_TOKEN)
        .body(body.unwrap_or("").to_string());
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let json: serde_json::Value = resp.json().await.unwrap_or_default();
    (status, json["message"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter_route_by_route() {
    let app = TestApp::spawn().await;
    let cases: &[(&str, &str, Option<&str>, &str)] = &[
        ("GET", "/api/messages?limit=-1", None, "`limit`"),
        ("GET", "/api/messages?limit=0", None, "`limit`"),
        ("GET", "/api/messages?before=abc", None, "`before`"),
        ("GET", "/api/events?limit=501", None, "`limit`"),
        ("GET", "/api/deliveries?before=-5", None, "`before`"),
        (
            "GET",
            "/api/deliveries?limit=99999999999999999999999",
            None,
            "`limit`",
        ),
        ("GET", "/api/deliveries?verdict=maybe", None, "verdict"),
        ("GET", "/api/outbox?before=zz", None, "`before`"),
        ("GET", "/api/outbox?limit=x", None, "`limit`"),
        ("GET", "/api/forward/unrouted?limit=-1", None, "`limit`"),
        ("GET", "/api/forward/unrouted?before=1.5", None, "`before`"),
        ("GET", "/api/forward/dead_letters?limit=0", None, "`limit`"),
        (
            "POST",
            "/api/forward/replay",
            Some(r#"{"target":"t","from":99999999999999999999,"to":1}"#),
            "`from`",
        ),
        (
            "POST",
            "/api/forward/replay",
            Some(r#"{"target":"t","when":1}"#),
            "when",
        ),
        (
            "POST",
            "/api/forward/replay",
            Some("not json"),
            "invalid JSON body",
        ),
    ];
    for (method, path, body, names) in cases {
        let (status, message) = status_and_message(&app, method, path, *body).await;
        assert_eq!(status, 400, "{method} {path}: {message}");
        assert!(message.contains(names), "{method} {path}: {message}");
    }
    // Unknown paths and methods are still 404.
    let (status, _) = status_and_message(&app, "GET", "/api/nothing?limit=-1", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn percent_encoded_ids_are_decoded() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = TEN_YEARS).await;
    let wamid = "wamid.HBgLMTU1NTAwMDAwMDEVAgASGBQz+QUE/BQTk0MjNFRTQ1AA==";
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": "123"},
        "contacts": [{"profile": {"name": "A"}, "wa_id": "15550000001"}],
        "messages": [{"from": "15550000001", "id": wamid, "timestamp": "1760659300", "type": "text", "text": {"body": "hi"}}]
    }}]}]});
    app.deliver(body.to_string()).await;
    app.wait_applied().await;
    let encoded: String = url_encode(wamid);
    let got = app.get_json(&format!("/api/messages/{encoded}")).await;
    assert_eq!(got["message"]["id"], wamid, "{got}");
    let contact = app
        .get_json("/api/contacts/%31%35%35%35%30%30%30%30%30%30%31")
        .await;
    assert_eq!(contact["contact_id"], "15550000001", "{contact}");
    let (status, _) = status_and_message(&app, "GET", "/api/messages/%FF", None).await;
    assert_eq!(status, 400);
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_login_form_over_16_kib_is_413_not_a_failed_login() {
    let app = dashboard::spawn().await;
    let big = format!("password={}", "x".repeat(20 * 1024));
    let resp = app
        .client
        .post(format!("{}/login", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    dashboard::assert_security_headers(&resp, "413");
    // It did not count as a failed login: five wrong passwords still may be tried.
    let mut b = dashboard::Browser::new(&app);
    let ok = b.login(dashboard::PASSWORD).await;
    assert_eq!(ok.status(), 303, "the right password still works");
}
