//! The dashboard's Forwarding page: targets with their state (no credentials or
//! query in the URL), the unrouted list, replays from the dashboard reaching a
//! scripted receiver (a delivery, a time range, a dead letter), CSRF, and enabling
//! a target after a `410`.

use std::time::Duration;

use reqwest::StatusCode;
use wagate::config::{ForwardMode, ForwardTarget, Secret};

use crate::support::dashboard::{assert_security_headers, csrf_of, Browser, PASSWORD};
use crate::support::fake_target::{Answer, FakeTarget};
use crate::support::forward::{messages_body, poll_target, spawn, target, PHONE, TARGET_SECRET};
use crate::support::TestApp;

async fn spawn_with_dashboard(
    targets: Vec<ForwardTarget>,
    tweak: impl FnOnce(&mut wagate::Config),
) -> TestApp {
    spawn(targets, |c| {
        c.admin_password = Some(Secret::new(PASSWORD));
        tweak(c);
    })
    .await
}

/// `2025-06-15T21:45:36` (UTC, as a `datetime-local` input sends it) `secs` from now.
fn local_time(secs_from_now: i64) -> String {
    let t = wagate::util::clock::now_micros() / 1_000_000 + secs_from_now;
    let at = std::time::UNIX_EPOCH + Duration::from_secs(t as u64);
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .trim_end_matches('Z')
        .to_string()
}

async fn delivery_id_of(app: &TestApp, wamid: &str) -> u64 {
    let m = app.get_json(&format!("/api/messages/{wamid}")).await;
    m["delivery_id"]
        .as_u64()
        .or_else(|| m["message"]["delivery_id"].as_u64())
        .unwrap_or_else(|| panic!("no delivery id in {m}"))
}

#[tokio::test]
async fn the_page_shows_targets_and_replays_from_it_reach_the_target() {
    let (t, other) = (
        FakeTarget::start(TARGET_SECRET).await,
        FakeTarget::start("other_secret").await,
    );
    // Credentials and a query in the URL must never be shown.
    let url = t.url.replace("http://", "http://user:hunter2@") + "?token=sekrit";
    let mut bot = ForwardTarget::new("bot", &url, TARGET_SECRET, ForwardMode::Meta);
    bot.phone_number_ids = vec!["111".into()];
    let mut second = target("second", &other, "other_secret", ForwardMode::Events);
    second.phone_number_ids = vec!["222".into()];
    second.fields = vec!["messages".into()];
    let app = spawn_with_dashboard(vec![bot, second], |_| {}).await;
    app.deliver(messages_body("111", &["wamid.DF1"])).await;
    let unrouted = messages_body("333", &["wamid.DF_UNROUTED"]);
    app.deliver(unrouted.clone()).await;
    // A hostile phone number id in the unrouted list is shown as text.
    app.deliver(messages_body(
        "\"><script>alert(1)</script>",
        &["wamid.DF_X"],
    ))
    .await;
    t.wait_for(1).await;
    app.wait_applied().await;
    poll_target(&app, "bot", |t| t["delivered"] == 1).await;

    let mut b = Browser::logged_in(&app).await;
    let html = b.page("/dashboard/forward").await;
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("&#60;script&#62;alert(1)"), "{html}");
    assert!(
        html.contains("href=\"/dashboard/forward\" aria-current=\"page\">Forwarding</a>"),
        "nav link: {html}"
    );
    for shown in [
        "bot",
        "second",
        "/hook",
        "meta",
        "events",
        "phone numbers: 111",
        "fields: messages",
        "active",
        "<td class=\"mono\">333</td>",
        "No dead letters.",
    ] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    assert!(
        !html.contains("hunter2") && !html.contains("sekrit"),
        "{html}"
    );
    assert!(!html.contains(TARGET_SECRET) && !html.contains("other_secret"));
    let csrf = csrf_of(&html);

    // The unrouted delivery, from its own page, to the target that did not claim it.
    let id = delivery_id_of(&app, "wamid.DF_UNROUTED").await;
    let page = b.page(&format!("/dashboard/deliveries/{id}")).await;
    assert!(page.contains("Replay to target"), "{page}");
    let resp = b
        .post(
            "/dashboard/forward/replay",
            &[
                ("csrf", &csrf),
                ("target", "bot"),
                ("delivery", &id.to_string()),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_security_headers(&resp, "replayed");
    let done = resp.text().await.unwrap();
    assert!(
        done.contains("Replay queued") && done.contains("1 deliveries"),
        "{done}"
    );
    let got = t.wait_for(2).await;
    assert_eq!(got[1].body, unrouted, "the delivery, byte for byte");
    assert!(got[1].signed);

    // A time range (datetime-local inputs), with the target's filters: only 111's.
    let resp = b
        .post(
            "/dashboard/forward/replay",
            &[
                ("csrf", &csrf),
                ("target", "bot"),
                ("from", &local_time(-120)),
                ("to", &local_time(60)),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let got = t.wait_for(3).await;
    assert_eq!(got[2].message_ids(), ["wamid.DF1"]);

    // Without the CSRF token nothing is queued; bad input says why.
    let n = t.got().len();
    let resp = b
        .post(
            "/dashboard/forward/replay",
            &[("target", "bot"), ("delivery", &id.to_string())],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_security_headers(&resp, "403");
    for (form, status) in [
        (vec![("target", "bot"), ("delivery", "abc")], 400),
        (vec![("target", "nope"), ("delivery", "1")], 400),
        (vec![("target", "bot")], 400),
        (
            vec![("target", "bot"), ("from", "yesterday"), ("to", "now")],
            400,
        ),
        (vec![("target", "bot"), ("delivery", "999999")], 404),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let resp = b.post("/dashboard/forward/replay", &form).await;
        assert_eq!(resp.status().as_u16(), status, "{form:?}");
        assert_security_headers(&resp, "replay error");
    }
    let v = poll_target(&app, "bot", |t| t["delivered"] == 3).await;
    assert_eq!(v["queued"], 0);
    assert_eq!(t.got().len(), n, "nothing more was sent");
    assert!(other.got().is_empty());
}

#[tokio::test]
async fn enable_after_410_from_the_dashboard() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    t.script([Answer::status(410)]);
    let app = spawn_with_dashboard(
        vec![target("bot", &t, TARGET_SECRET, ForwardMode::Meta)],
        |_| {},
    )
    .await;
    let body = messages_body(PHONE, &["wamid.DG1"]);
    app.deliver(body.clone()).await;
    t.wait_for(1).await;
    poll_target(&app, "bot", |t| t["state"] == "disabled").await;
    let mut b = Browser::logged_in(&app).await;
    let html = b.page("/dashboard/forward").await;
    assert!(
        html.contains("disabled") && html.contains("410 Gone"),
        "{html}"
    );
    assert!(html.contains("action=\"/dashboard/forward/targets/bot/enable\""));
    let csrf = csrf_of(&html);
    let resp = b
        .post(
            "/dashboard/forward/targets/bot/enable",
            &[("csrf", "wrong")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        poll_target(&app, "bot", |_| true).await["state"],
        "disabled"
    );
    assert_eq!(t.got().len(), 1, "nothing sent while disabled");
    let resp = b
        .post("/dashboard/forward/targets/bot/enable", &[("csrf", &csrf)])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/dashboard/forward");
    let got = t.wait_for(2).await;
    assert_eq!(got[1].body, body, "the entry that got the 410, first");
    poll_target(&app, "bot", |t| {
        t["state"] == "active" && t["delivered"] == 1
    })
    .await;
    let html = b.page("/dashboard/forward").await;
    assert!(!html.contains("/enable\""), "no enable button now: {html}");
    let resp = b
        .post("/dashboard/forward/targets/nope/enable", &[("csrf", &csrf)])
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_replayed_from_the_dashboard() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    t.fallback(Some(Answer::status(500)));
    let app = spawn_with_dashboard(
        vec![target("bot", &t, TARGET_SECRET, ForwardMode::Meta)],
        |c| c.forward.max_age = Duration::from_secs(1),
    )
    .await;
    let body = messages_body(PHONE, &["wamid.DD1"]);
    app.deliver(body.clone()).await;
    poll_target(&app, "bot", |t| t["dead_lettered"] == 1).await;
    let mut b = Browser::logged_in(&app).await;
    let html = b.page("/dashboard/forward?target=bot").await;
    assert!(html.contains("HTTP 500"), "the last error: {html}");
    assert!(html.contains("name=\"dead_letter\""), "{html}");
    let dead = app.get_json("/api/forward/dead_letters").await;
    let id = dead["dead_letters"][0]["id"].as_u64().unwrap().to_string();
    t.fallback(None);
    let n = t.got().len();
    let resp = b
        .post(
            "/dashboard/forward/replay",
            &[
                ("csrf", &csrf_of(&html)),
                ("target", "bot"),
                ("dead_letter", &id),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let got = t.wait_for(n + 1).await;
    assert_eq!(got[n].body, body);
    poll_target(&app, "bot", |t| t["delivered"] == 1).await;
    let html = b.page("/dashboard/forward").await;
    assert!(html.contains("replayed "), "{html}");
}

#[tokio::test]
async fn unrouted_pages_never_split_a_delivery() {
    let t = FakeTarget::start(TARGET_SECRET).await;
    let mut bot = target("bot", &t, TARGET_SECRET, ForwardMode::Meta);
    bot.phone_number_ids = vec!["111".into()];
    let app = spawn_with_dashboard(vec![bot], |_| {}).await;
    // Three deliveries of 30 unrouted messages each.
    for d in 0..3 {
        let ids: Vec<String> = (0..30).map(|i| format!("wamid.UP{d}_{i:02}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        app.deliver(messages_body("999", &ids)).await;
    }
    app.wait_applied().await;
    let first = app.get_json("/api/forward/unrouted?limit=50").await;
    let items = first["unrouted"].as_array().unwrap();
    assert_eq!(items.len(), 60, "the second delivery whole");
    let before = first["next_before"].as_u64().unwrap();
    assert_eq!(items.last().unwrap()["delivery"].as_u64(), Some(before));
    let rest = app
        .get_json(&format!("/api/forward/unrouted?limit=50&before={before}"))
        .await;
    assert_eq!(rest["unrouted"].as_array().unwrap().len(), 30);
    assert!(rest["next_before"].is_null(), "{rest}");
    // The dashboard pages by 50 the same way.
    let mut b = Browser::logged_in(&app).await;
    let html = b.page("/dashboard/forward").await;
    assert_eq!(html.matches("<td class=\"mono\">999</td>").count(), 60);
    let older = format!("/dashboard/forward?before={before}");
    assert!(html.contains(&older), "{html}");
    let html = b.page(&older).await;
    assert_eq!(html.matches("<td class=\"mono\">999</td>").count(), 30);
    assert!(!html.contains("Older"));
}
