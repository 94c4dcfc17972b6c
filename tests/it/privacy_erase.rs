//! Erasure of one contact (`POST /api/contacts/{id}/erase`): once `done`, nothing of
//! the person is in any file under the data directory (plain or `\u`-escaped), the
//! API answers as if they never wrote, other contacts in the same deliveries are
//! untouched, and a retry from Meta does not bring an erased message back.

use serde_json::{json, Value};

use crate::support::erase;
use crate::support::scan::{escape_non_ascii, find_anywhere};
use crate::support::{data_path, TestApp, TEN_YEARS};

const A: &str = "16505551234";
const A_NAME: &str = "Sheena Nelson";
const A_TEXT: &str = "Does it come in another color?";
const A_SECRET: &str = "Zürich geheim ünïcode";
const B: &str = "447700900123";
const B_TEXT: &str = "Bea keeps this";
const OTHER_STATUS: &str = "wamid.HBgLMTY1MDU1NTU2NzgVAgARGBIwMDAwMDAwMDAwMDAwMDBDMDMA";
const A_WAMID: &str = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDBBMQA=";

/// One change holding a message from A and one from B, with both contacts; the
/// non-ASCII text written as Meta writes it (`\u`-escaped).
fn mixed() -> Vec<u8> {
    let v = json!({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{
    "messaging_product":"whatsapp",
    "metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
    "contacts":[{"profile":{"name":A_NAME},"wa_id":A},{"profile":{"name":"Bea Other"},"wa_id":B}],
    "messages":[
        {"from":A,"id":"wamid.mixed-a-0001","timestamp":"1749416390","type":"text","text":{"body":A_SECRET}},
        {"from":B,"id":"wamid.mixed-b-0001","timestamp":"1749416391","type":"text","text":{"body":B_TEXT}}
    ]}}]}]});
    let text = serde_json::to_string(&v).unwrap();
    escape_non_ascii(&text).into_bytes()
}

async fn wait_done(app: &TestApp, id: &str) -> Value {
    erase::wait_done(&app.client, &app.base, id).await
}

#[tokio::test]
async fn an_erased_contact_leaves_nothing_readable_and_others_stay() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = TEN_YEARS).await;
    let text = std::fs::read(data_path("payloads/msg_text.json")).unwrap();
    let statuses =
        std::fs::read(data_path("payloads/batch_one_change_three_statuses.json")).unwrap();
    app.deliver(text.clone()).await;
    app.deliver(mixed()).await;
    app.deliver(statuses).await;
    app.wait_applied().await;
    assert_eq!(app.get(&format!("/api/contacts/{A}")).await.status(), 200);
    let before = find_anywhere(app.dir.path(), &[A, A_NAME, A_TEXT, A_SECRET]);
    assert!(!before.is_empty(), "the person's data is stored before");

    let id = erase::request(&app.client, &app.base, A).await;
    let done = wait_done(&app, &id).await;
    assert_eq!(done["requested_by"], "api");
    // A: two messages, their two contacts entries, two statuses.
    assert_eq!(done["counts"]["items_removed"], 6, "{done}");
    let left = find_anywhere(app.dir.path(), &[A, A_NAME, A_TEXT, A_SECRET]);
    assert!(left.is_empty(), "{left:#?}");

    // As if A never wrote; B and the other recipient's status untouched.
    assert_eq!(app.get(&format!("/api/contacts/{A}")).await.status(), 404);
    assert_eq!(
        app.get(&format!("/api/messages/{A_WAMID}")).await.status(),
        404
    );
    let b = app.get_json("/api/messages/wamid.mixed-b-0001").await;
    assert_eq!(b["message"]["content"]["body"], B_TEXT, "{b}");
    assert_eq!(app.get(&format!("/api/contacts/{B}")).await.status(), 200);
    let all = app.get_json("/api/messages").await.to_string();
    assert!(!all.contains(A), "{all}");
    assert!(all.contains("wamid.mixed-b-0001"));
    // The other recipient's status, from the same batch as A's, is still there.
    let other = app.get_json(&format!("/api/messages/{OTHER_STATUS}")).await;
    assert_eq!(other["statuses"][0]["status"], "sent", "{other}");
    let stats = app.get_json("/api/stats").await.to_string();
    assert!(!stats.contains(A));

    // A retry of an erased message is not applied again.
    app.deliver(text).await;
    app.wait_applied().await;
    assert_eq!(
        app.get(&format!("/api/messages/{A_WAMID}")).await.status(),
        404
    );
    assert_eq!(app.get(&format!("/api/contacts/{A}")).await.status(), 404);
}

/// B's text message number `i` (its own wamid).
fn from_b(i: usize) -> Vec<u8> {
    let raw =
        String::from_utf8(std::fs::read(data_path("payloads/msg_text.json")).unwrap()).unwrap();
    raw.replace(A, B)
        .replace(
            "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDBBMQA=",
            &format!("wamid.during-{i:04}"),
        )
        .into_bytes()
}

#[tokio::test]
async fn webhooks_are_answered_and_kept_while_an_erasure_runs() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = TEN_YEARS).await;
    app.deliver(std::fs::read(data_path("payloads/msg_text.json")).unwrap())
        .await;
    for i in 0..50 {
        app.deliver(from_b(i)).await;
    }
    app.wait_applied().await;
    let id = erase::request(&app.client, &app.base, A).await;
    // Deliveries keep coming while the erasure runs: each is answered 200 (`deliver`
    // asserts it) and none is lost once the state is swapped.
    for i in 50..150 {
        app.deliver(from_b(i)).await;
    }
    wait_done(&app, &id).await;
    app.wait_applied().await;
    for i in (0..150).step_by(7) {
        let m = app
            .get_json(&format!("/api/messages/wamid.during-{i:04}"))
            .await;
        assert_eq!(m["message"]["from"], B, "{m}");
    }
    assert_eq!(app.get(&format!("/api/contacts/{A}")).await.status(), 404);
}

#[tokio::test]
async fn the_dashboard_erases_after_the_number_is_typed_again() {
    let app = TestApp::spawn_with(|c| {
        c.dedup_ttl = TEN_YEARS;
        c.admin_password = Some(wagate::config::Secret::new(
            crate::support::dashboard::PASSWORD,
        ));
    })
    .await;
    app.deliver(std::fs::read(data_path("payloads/msg_text.json")).unwrap())
        .await;
    app.wait_applied().await;
    let mut browser = crate::support::dashboard::Browser::logged_in(&app).await;
    let page = browser
        .page(&format!("/dashboard/conversation?contact={A}"))
        .await;
    assert!(page.contains("action=\"/dashboard/erase\""), "{page}");
    // A wrong confirmation erases nothing.
    let csrf = crate::support::dashboard::csrf_of(&page);
    let form = |confirm| {
        [
            ("csrf", csrf.as_str()),
            ("contact", A),
            ("confirm", confirm),
        ]
    };
    let resp = browser
        .post("/dashboard/erase", &[("contact", A), ("confirm", A)])
        .await;
    assert_ne!(resp.status(), 202, "no CSRF token, no erasure");
    let resp = browser.post("/dashboard/erase", &form("1650555")).await;
    assert_eq!(resp.status(), 400);
    let resp = browser.post("/dashboard/erase", &form(A)).await;
    assert_eq!(resp.status(), 202);
    let html = resp.text().await.unwrap();
    let id = html
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 24)
        .unwrap_or_else(|| panic!("an erasure id in {html}"))
        .to_string();
    let done = wait_done(&app, &id).await;
    assert_eq!(done["requested_by"], "dashboard");
    assert_eq!(app.get(&format!("/api/contacts/{A}")).await.status(), 404);
}
