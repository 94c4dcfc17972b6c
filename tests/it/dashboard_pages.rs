//! The dashboard's pages with data: the corpus, hostile payloads, a rejected
//! delivery's diagnosis and re-verification, media inline.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::dashboard::{
    assert_security_headers, csrf_of, spawn, Browser, PAGES, PASSWORD,
};
use crate::support::fake_media::{png, FakeMedia, MEDIA_ID};
use crate::support::media::{payload, setup, wait_state};
use crate::support::{corpus, sign, TestApp, API_TOKEN, SECRET, TEN_YEARS};

#[tokio::test]
async fn every_page_renders_the_corpus() {
    let app = spawn().await;
    for (_, body, sig) in corpus() {
        assert_eq!(app.post_webhook(body, Some(&sig)).await.status(), 200);
    }
    app.wait_applied().await;
    let mut b = Browser::logged_in(&app).await;
    for path in PAGES {
        b.page(path).await;
    }
    let overview = b.page("/").await;
    assert!(overview.contains("accepted"), "{overview}");
    let messages = b.page("/dashboard/messages").await;
    assert!(messages.contains("16505551234"));
    let located = b.page("/dashboard/messages?type=location").await;
    assert!(located.contains("[location]"), "{located}");
    // Search in text, by direction, by day.
    let found = b.page("/dashboard/messages?q=PRIORITY+MAIL").await;
    assert!(found.contains("Priority Mail Express"), "{found}");
    let none = b.page("/dashboard/messages?day=2000-01-01").await;
    assert!(none.contains("No messages"));
    let statuses = b.page("/dashboard/statuses").await;
    assert!(statuses.contains("131047"), "{statuses}");
    assert!(
        statuses.contains("only a template can be sent"),
        "{statuses}"
    );
    assert!(statuses.contains("130472"));
    let events = b
        .page("/dashboard/events?field=message_template_status_update")
        .await;
    assert!(events.contains("message_template_status_update"));
    let conv = b.page("/dashboard/conversation?contact=16505551234").await;
    assert!(conv.contains("24-hour customer service window"));
    assert!(conv.contains("class=\"bubble"));
    // A delivery shows its headers, body and items.
    let list: Value = app.get_json("/api/deliveries?limit=1").await;
    let id = list["deliveries"][0]["id"].as_u64().unwrap();
    let detail = b.page(&format!("/dashboard/deliveries/{id}")).await;
    assert!(detail.contains("x-hub-signature-256"), "{detail}");
    assert!(detail.contains("Body (pretty-printed)"));
    assert!(detail.contains("<h2>Items</h2>"));
    let raw = b.get(&format!("/dashboard/deliveries/{id}/raw")).await;
    assert_eq!(raw.status(), 200);
    assert_security_headers(&raw, "raw");
    assert!(raw.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let page = b
        .page("/dashboard/deliveries?verdict=accepted&day=2099-01-01")
        .await;
    assert!(page.contains(&format!("/dashboard/deliveries/{id}\"")));
    let settings = b.page("/dashboard/settings").await;
    assert!(settings.contains("1 secret(s) configured (hidden)"));
    // The retention in force, next to a pointer to the privacy register.
    assert!(settings.contains("PRIVACY.md"));
    assert!(settings.contains("WAGATE_FORWARD_MAX_AGE"));
    assert!(!settings.contains(SECRET));
    assert!(!settings.contains(API_TOKEN));
    assert!(!settings.contains(PASSWORD));
    // A bad filter is a 400 page, an unknown delivery a 404 page, both locked down.
    let bad = b.get("/dashboard/deliveries?day=yesterday").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_security_headers(&bad, "400");
    let missing = b.get("/dashboard/deliveries/999999").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_security_headers(&missing, "404");
}

const HOSTILE: &[&str] = &[
    "<script>alert(1)</script>",
    "\"'><img src=x onerror=alert(1)>",
    "javascript:alert(document.cookie)",
    "</textarea></pre><svg onload=alert(1)>",
    "\u{202e}gnp.exe\u{200b}\u{200d}{{7*7}}",
];

fn hostile_delivery() -> Vec<u8> {
    let text = HOSTILE.join(" ");
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "1", "phone_number_id": "2"},
            "contacts": [{"profile": {"name": HOSTILE[1]}, "wa_id": "javascript:alert(1)"}],
            "messages": [{
                "from": "javascript:alert(1)",
                "id": "wamid.<script>x</script>",
                "timestamp": "1750000000",
                "type": "text",
                "text": {"body": text}
            }]
        }}]}]
    });
    serde_json::to_vec(&body).unwrap()
}

fn assert_inert(html: &str, what: &str) {
    let lower = html.to_lowercase();
    for bad in [
        "<script",
        "<img src=x",
        "<svg",
        "href=\"javascript:",
        "src=\"javascript:",
        "</textarea></pre>",
    ] {
        assert!(!lower.contains(bad), "{what}: {bad} rendered as markup");
    }
}

#[tokio::test]
async fn payload_values_render_as_text() {
    let app = spawn().await;
    app.deliver(hostile_delivery()).await;
    // A rejected one too: hostile headers and body.
    let resp = app
        .client
        .post(format!("{}/webhook", app.base))
        .header("x-hub-signature-256", "<script>alert(1)</script>")
        .header("x-evil", "\"><script>alert(2)</script>")
        .body(hostile_delivery())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    app.wait_applied().await;
    let mut b = Browser::logged_in(&app).await;
    let mut pages: Vec<String> = PAGES.iter().map(|p| p.to_string()).collect();
    pages.push("/dashboard/conversation?contact=javascript%3Aalert%281%29".into());
    pages.push("/dashboard/messages?q=%3Cscript%3E".into());
    pages.push("/dashboard/messages?contact=%22%3E%3Cscript%3E".into());
    let list: Value = app.get_json("/api/deliveries").await;
    for d in list["deliveries"].as_array().unwrap() {
        pages.push(format!("/dashboard/deliveries/{}", d["id"]));
    }
    let mut seen_escaped = false;
    for path in &pages {
        let html = b.page(path).await;
        assert_inert(&html, path);
        seen_escaped |= html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            || html.contains("&#60;script&#62;alert(1)&#60;/script&#62;");
    }
    assert!(seen_escaped, "the payload text is shown, escaped");
    let conv = b
        .page("/dashboard/conversation?contact=javascript%3Aalert%281%29")
        .await;
    assert!(conv.contains('\u{202e}'), "odd Unicode kept as text");
}

#[tokio::test]
async fn a_rejected_delivery_is_diagnosed_and_reverified() {
    let app = spawn().await;
    // Signed with a secret wagate does not know yet.
    let new_secret = "the-rotated-secret";
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"2"},"messages":[{"from":"15550001111","id":"wamid.REVERIFY1","timestamp":"1750000000","type":"text","text":{"body":"after the fix"}}]}}]}]}"#.to_vec();
    let sig = wagate::events::signature::sign(new_secret.as_bytes(), &body);
    assert_eq!(
        app.post_webhook(body.clone(), Some(&sig)).await.status(),
        403
    );
    // A body given a trailing newline on the way (signed over the exact bytes).
    let mut pretty = body.clone();
    pretty.push(b'\n');
    assert_eq!(
        app.post_webhook(pretty, Some(&sign(&body))).await.status(),
        403
    );
    app.wait_applied().await;
    let mut b = Browser::logged_in(&app).await;
    let list = b.page("/dashboard/deliveries?verdict=rejected").await;
    assert!(list.contains("mismatch"));
    let rejected: Value = app.get_json("/api/deliveries?verdict=rejected").await;
    let ids: Vec<u64> = rejected["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    let (pretty_id, wrong_id) = (ids[0], ids[1]);
    let d = b.page(&format!("/dashboard/deliveries/{wrong_id}")).await;
    assert!(d.contains("Diagnosis"));
    assert!(d.contains("no_secret_matches"), "{d}");
    let d = b.page(&format!("/dashboard/deliveries/{pretty_id}")).await;
    assert!(d.contains("body_rewritten"), "{d}");
    assert!(d.contains("trailing newline"), "{d}");

    // Fix the secret (a restart with old and new), then re-verify from the dashboard.
    let dir = app.stop().await;
    let app = TestApp::spawn_in(dir, |c| {
        c.admin_password = Some(wagate::config::Secret::new(PASSWORD));
        c.app_secrets
            .insert(0, wagate::config::Secret::new(new_secret));
        c.dedup_ttl = TEN_YEARS;
    })
    .await;
    b.base = app.base.clone();
    let list = b.page("/dashboard/deliveries?verdict=rejected").await;
    let csrf = csrf_of(&list);
    let resp = b
        .post("/dashboard/deliveries/reverify", &[("csrf", "wrong")])
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = b
        .post("/dashboard/deliveries/reverify", &[("csrf", &csrf)])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_security_headers(&resp, "reverify");
    let html = resp.text().await.unwrap();
    assert!(html.contains("1 accepted now, 1 still rejected"), "{html}");
    app.wait_applied().await;
    let m = b.page("/dashboard/messages?q=after+the+fix").await;
    assert!(m.contains("wamid") || m.contains("15550001111"), "{m}");
    let d = b.page(&format!("/dashboard/deliveries/{wrong_id}")).await;
    assert!(d.contains("re-verified as"), "{d}");
    assert!(d.contains("valid_now"), "{d}");
}

#[tokio::test]
async fn media_is_shown_inline_through_the_session() {
    let fake = FakeMedia::start().await;
    let f = fake.clone();
    let app = TestApp::spawn_with(move |c| {
        setup(c, &f);
        c.admin_password = Some(wagate::config::Secret::new(PASSWORD));
    })
    .await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    wait_state(&app, "stored").await;
    let mut b = Browser::logged_in(&app).await;
    let media = b.page("/dashboard/media").await;
    assert!(
        media.contains(MEDIA_ID) && media.contains("stored"),
        "{media}"
    );
    let conv = b.page("/dashboard/conversation?contact=16505551234").await;
    let src = format!("<img src=\"/dashboard/media/{MEDIA_ID}/content\"");
    assert!(conv.contains(&src), "{conv}");
    let resp = b.get(&format!("/dashboard/media/{MEDIA_ID}/content")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-security-policy"], "sandbox");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), png());
    // Not without a session.
    let mut anon = Browser::new(&app);
    let resp = anon
        .get(&format!("/dashboard/media/{MEDIA_ID}/content"))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}
