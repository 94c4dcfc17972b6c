//! The export of one contact's data (`GET /api/contacts/{id}/export`, the dashboard's
//! button): one zip with the record, messages, raw deliveries byte for byte and the
//! decrypted media, and nothing of anybody else.

use std::io::Read;

use serde_json::Value;

use crate::support::dashboard::{Browser, PASSWORD};
use crate::support::fake_media::{png, FakeMedia, MEDIA_ID};
use crate::support::media::{payload, setup, wait_state};
use crate::support::{data_path, TestApp, TEN_YEARS};

const A: &str = "16505551234";
const B: &str = "447700900123";
const B_NAME: &str = "Bea Other-Person";
const B_TEXT: &str = "only Bea wrote this";

/// The conformance text message, from contact B instead.
fn from_b() -> Vec<u8> {
    let raw = std::fs::read(data_path("payloads/msg_text.json")).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let mut v: Value = serde_json::from_str(&text.replace(A, B)).unwrap();
    let value = &mut v["entry"][0]["changes"][0]["value"];
    value["contacts"][0]["profile"]["name"] = B_NAME.into();
    value["messages"][0]["id"] = "wamid.from-bea-0001".into();
    value["messages"][0]["text"]["body"] = B_TEXT.into();
    serde_json::to_vec(&v).unwrap()
}

/// Every file of a zip archive, by name.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip archive");
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().to_string(), data)
        })
        .collect()
}

fn file<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    &files
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} in {names:?}"))
        .1
}

#[tokio::test]
async fn export_holds_the_contact_and_nobody_else() {
    let fake = FakeMedia::start().await;
    let f = fake.clone();
    let app = TestApp::spawn_with(move |c| {
        setup(c, &f);
        c.dedup_ttl = TEN_YEARS; // the corpus is years old
        c.admin_password = Some(wagate::config::Secret::new(PASSWORD));
    })
    .await;
    let text = std::fs::read(data_path("payloads/msg_text.json")).unwrap();
    app.deliver(text.clone()).await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    app.deliver(from_b()).await;
    wait_state(&app, "stored").await;
    app.wait_applied().await;
    let wamid = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDBBMQA=";
    let m = app.get_json(&format!("/api/messages/{wamid}")).await;
    let text_delivery = m["message"]["delivery_id"].as_u64().expect("delivery id");

    let resp = app.get(&format!("/api/contacts/{A}/export")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    let files = unzip(&resp.bytes().await.unwrap());
    for name in [
        "contact.json",
        "messages.jsonl",
        "outbox.jsonl",
        "README.txt",
    ] {
        file(&files, name);
    }
    // The raw delivery, byte for byte; the PNG decrypted.
    assert_eq!(
        file(&files, &format!("deliveries/{text_delivery}.json")),
        text
    );
    assert_eq!(file(&files, &format!("media/{MEDIA_ID}.png")), png());
    let contact: Value = serde_json::from_slice(file(&files, "contact.json")).unwrap();
    assert_eq!(contact["aliases"]["wa_id"], A);
    let messages = String::from_utf8(file(&files, "messages.jsonl").to_vec()).unwrap();
    assert_eq!(messages.lines().count(), 2, "{messages}");
    assert!(messages.contains(wamid));
    assert_eq!(
        files
            .iter()
            .filter(|(n, _)| n.starts_with("deliveries/"))
            .count(),
        2
    );
    // Nothing of B, in any file.
    for (name, data) in &files {
        let s = String::from_utf8_lossy(data);
        for needle in [B, B_NAME, B_TEXT] {
            assert!(!s.contains(needle), "{name} holds {needle}");
        }
    }
    // B's own export has B's message; an unknown contact is a 404; no token, 401.
    let b = unzip(
        &app.get(&format!("/api/contacts/{B}/export"))
            .await
            .bytes()
            .await
            .unwrap(),
    );
    assert!(String::from_utf8_lossy(file(&b, "messages.jsonl")).contains(B_TEXT));
    assert_eq!(
        app.get("/api/contacts/15550000000/export").await.status(),
        404
    );
    let anon = reqwest::get(format!("{}/api/contacts/{A}/export", app.base))
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);

    // The dashboard: a button on the conversation page, the same archive behind a session.
    let mut browser = Browser::logged_in(&app).await;
    let page = browser
        .page(&format!("/dashboard/conversation?contact={A}"))
        .await;
    assert!(
        page.contains(&format!("/dashboard/export?contact={A}")),
        "{page}"
    );
    let resp = browser.get(&format!("/dashboard/export?contact={A}")).await;
    assert_eq!(resp.status(), 200);
    let dash = unzip(&resp.bytes().await.unwrap());
    assert_eq!(file(&dash, &format!("media/{MEDIA_ID}.png")), png());
    let anon = Browser::new(&app)
        .get(&format!("/dashboard/export?contact={A}"))
        .await;
    assert_ne!(anon.status(), 200, "no session, no archive");
    app.stop().await;
}

#[tokio::test]
async fn export_contact_on_the_command_line_with_wagate_stopped() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = TEN_YEARS).await;
    let text = std::fs::read(data_path("payloads/msg_text.json")).unwrap();
    app.deliver(text.clone()).await;
    app.deliver(from_b()).await;
    app.wait_applied().await;
    let dir = app.stop().await;
    let out = crate::support::child::wagate()
        .env("WAGATE_DATA_DIR", dir.path())
        .args(["export-contact", A])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Standard output is the archive alone (logs go to standard error).
    assert!(out.stdout.starts_with(b"PK\x03\x04"));
    let files = unzip(&out.stdout);
    let deliveries: Vec<&[u8]> = files
        .iter()
        .filter(|(n, _)| n.starts_with("deliveries/"))
        .map(|(_, d)| d.as_slice())
        .collect();
    assert_eq!(deliveries, vec![text.as_slice()]);
    assert!(!String::from_utf8_lossy(file(&files, "messages.jsonl")).contains(B_TEXT));
    let unknown = crate::support::child::wagate()
        .env("WAGATE_DATA_DIR", dir.path())
        .args(["export-contact", "15550000000"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(unknown.stdout.is_empty());
}
