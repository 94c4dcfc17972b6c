//! What an erasure does beyond messages and contacts: the forwarding queues and
//! dead letters drop the person's entries (and a target that comes back never gets
//! them); the outbox keeps its accounting (state, attempts) without the recipient
//! or the content, and a send still waiting to be retried is not sent; a contact
//! known only by its user id (no phone number) is erased as well. The data
//! directory is scanned byte by byte after each.

use std::time::Duration;

use serde_json::{json, Value};
use wagate::config::ForwardMode;
use wagate::util::clock::Clock;

use crate::support::erase::erase;
use crate::support::fake_graph::{FakeGraph, Reply};
use crate::support::fake_target::{Answer, FakeTarget, Got};
use crate::support::forward::{
    messages_body_from, payload, poll_target, spawn_clocked, target, PHONE, TARGET_SECRET,
};
use crate::support::scan::find_anywhere;
use crate::support::{eventually, send, TestApp, TEN_YEARS};

const A: &str = "16505550001";
const B: &str = "16505550002";

fn tried(got: &[Got], id: &str) -> bool {
    got.iter().any(|g| g.message_ids().iter().any(|m| m == id))
}

fn delivered(got: &[Got], id: &str) -> bool {
    got.iter()
        .any(|g| g.status == 200 && g.message_ids().iter().any(|m| m == id))
}

#[tokio::test]
async fn forwarding_queues_and_dead_letters_drop_the_erased_person() {
    // `picky` refuses whatever is about A (so A's entry is dead-lettered), `down`
    // refuses everything (so every entry stays queued: nothing is dead-lettered
    // for a target that is down).
    let picky = FakeTarget::start(TARGET_SECRET).await;
    picky.answer_bodies_with(Some((
        &format!("\"from\":\"{A}\""),
        Answer::status(500).body("cannot handle this one"),
    )));
    let down = FakeTarget::start(TARGET_SECRET).await;
    down.fallback(Some(Answer::status(502)));
    let app = spawn_clocked(
        Clock::manual_now(),
        vec![
            target("picky", &picky, TARGET_SECRET, ForwardMode::Meta),
            target("down", &down, TARGET_SECRET, ForwardMode::Meta),
        ],
        |c| {
            c.forward.max_attempts = 2;
            c.forward.backoff_base = Duration::from_secs(1);
            c.forward.backoff_cap = Duration::from_secs(60);
            c.forward.pause_after = Duration::from_secs(3600);
        },
    )
    .await;
    // Both before the clock moves: `down` then sees two contacts fail, so it counts
    // as down and dead-letters nothing.
    app.deliver(messages_body_from(PHONE, B, &["wamid.B1"]))
        .await;
    app.deliver(messages_body_from(PHONE, A, &["wamid.A1"]))
        .await;
    down.wait_until("A1 and B1 tried", |got| {
        tried(got, "wamid.A1") && tried(got, "wamid.B1")
    })
    .await;
    eventually("A1 dead-lettered for picky", async || {
        app.clock().advance(Duration::from_secs(1));
        let d = app.get_json("/api/forward/dead_letters?target=picky").await;
        d["dead_letters"][0].is_object()
    })
    .await;
    let v = poll_target(&app, "down", |t| t["queued"] == 2).await;
    assert_eq!(v["dead_lettered"], 0, "{v}");

    erase(&app.client, &app.base, A).await;
    let d = app.get_json("/api/forward/dead_letters?target=picky").await;
    assert_eq!(d["dead_letters"], json!([]), "{d}");
    let v = poll_target(&app, "down", |t| t["queued"] == 1).await;
    assert_eq!(v["dead_lettered"], 0, "{v}");
    let left = find_anywhere(app.dir.path(), &[A, "hi wamid.A1"]);
    assert!(left.is_empty(), "{left:#?}");

    // Back up: `down` gets B1 and never A1.
    down.fallback(None);
    let before = down.got().len();
    eventually("B1 delivered to down", async || {
        app.clock().advance(Duration::from_secs(5));
        delivered(&down.got(), "wamid.B1")
    })
    .await;
    poll_target(&app, "down", |t| t["queued"] == 0).await;
    assert!(!tried(&down.got()[before..], "wamid.A1"));
}

#[tokio::test]
async fn the_outbox_keeps_its_accounting_but_not_the_recipient_or_content() {
    const CONTENT: &str = "Your order 4471 ships Tuesday";
    let fake = FakeGraph::start().await;
    let app = send::spawn(&fake, |_| {}).await;
    app.deliver(send::inbound(A, "wamid.from-a")).await;
    app.deliver(send::inbound(B, "wamid.from-b")).await;
    app.wait_applied().await;
    let to_a = send::send(&app, &send::text(A, CONTENT)).await;
    let to_b = send::send(&app, &send::text(B, "For B")).await;
    let before = send::finished(&app, to_a).await;
    send::finished(&app, to_b).await;
    assert_eq!(before["state"], "sent", "{before}");

    erase(&app.client, &app.base, A).await;
    let after = app.get_json(&format!("/api/outbox/{to_a}")).await;
    let text = after.to_string();
    assert!(!text.contains(A) && !text.contains(CONTENT), "{after}");
    assert_eq!(after["state"], before["state"], "{after}");
    assert_eq!(
        after["attempts"].as_array().map(Vec::len),
        Some(1),
        "{after}"
    );
    let b = app.get_json(&format!("/api/outbox/{to_b}")).await;
    assert_eq!(b["recipient"], B, "{b}");
    let left = find_anywhere(app.dir.path(), &[A, CONTENT]);
    assert!(left.is_empty(), "{left:#?}");
}

#[tokio::test]
async fn a_contact_known_only_by_user_id_is_erased() {
    const USER_ID: &str = "US.13491208655302741918";
    const TEXT: &str = "Hi, it's me with a username";
    let app = TestApp::spawn_with(|c| c.dedup_ttl = TEN_YEARS).await;
    app.deliver(payload("msg_text_bsuid_username_no_phone.json"))
        .await;
    app.deliver(messages_body_from(PHONE, B, &["wamid.B1"]))
        .await;
    app.wait_applied().await;
    let c: Value = app.get_json(&format!("/api/contacts/{USER_ID}")).await;
    assert_eq!(c["user_id"], USER_ID, "{c}");

    let done = erase(&app.client, &app.base, USER_ID).await;
    assert!(
        done["counts"]["items_removed"].as_u64() >= Some(2),
        "{done}"
    );
    assert_eq!(
        app.get(&format!("/api/contacts/{USER_ID}")).await.status(),
        404
    );
    assert_eq!(app.get("/api/messages/wamid.B1").await.status(), 200);
    let left = find_anywhere(app.dir.path(), &[USER_ID, TEXT, "@sheena"]);
    assert!(left.is_empty(), "{left:#?}");
}

#[tokio::test]
async fn a_send_waiting_to_be_retried_is_not_sent_once_its_recipient_is_erased() {
    let fake = FakeGraph::start().await;
    // Answered 503 once: the send waits for its retry, which the clock holds back.
    fake.script([Reply::status(503)]);
    let app = send::spawn_clocked(&fake, |_| {}).await;
    app.deliver(send::inbound(A, "wamid.from-a")).await;
    app.wait_applied().await;
    let id = send::send(&app, &send::text(A, "Still coming?")).await;
    let delay = send::retry_in(&app, id, 0).await;

    erase(&app.client, &app.base, A).await;
    app.clock().advance(delay + Duration::from_secs(1));
    let e = send::finished(&app, id).await;
    assert_eq!(e["state"], "failed", "{e}");
    assert_eq!(e["reason"], "not sent: its recipient's data was erased");
    assert_eq!(fake.received().len(), 1, "no second request");
    assert!(!e.to_string().contains(A), "{e}");
}

#[tokio::test]
async fn a_media_download_waiting_to_be_retried_stops_once_its_sender_is_erased() {
    use crate::support::fake_media::{Answer as MediaAnswer, FakeMedia, MEDIA_ID};
    use crate::support::media::{files_in, payload, setup};
    let fake = FakeMedia::start().await;
    // The file answered 503 once: the job waits for its retry, held by the clock.
    fake.script_files([MediaAnswer::Status(503)]);
    let f = fake.clone();
    let app = TestApp::spawn_clocked(Clock::manual_now(), move |c| {
        setup(c, &f);
        c.dedup_ttl = TEN_YEARS;
    })
    .await;
    app.deliver(payload(Some(&fake.file_url()), 10)).await;
    app.wait_applied().await;
    eventually("one failed attempt", async || {
        let v = app.get_json(&format!("/api/media/{MEDIA_ID}")).await;
        v["attempts"].as_u64() >= Some(1)
    })
    .await;
    let requests = fake.requests().len();

    erase(&app.client, &app.base, "16505551234").await;
    app.clock().advance(Duration::from_secs(3600));
    crate::support::stays("no request after the erasure", async || {
        fake.requests().len() == requests
    })
    .await;
    assert!(files_in(app.dir.path()).is_empty());
    assert_eq!(
        app.get(&format!("/api/media/{MEDIA_ID}")).await.status(),
        404
    );
}
