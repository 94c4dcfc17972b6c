//! The dashboard login under attack (issue 17, defect 5) and logouts across a
//! restart: a flood of concurrent wrong passwords from one address gets at most
//! the throttle's limit checked, the rest refused (429 locked out, 503 busy), and
//! once the limit is used up the right password is refused too; a logged-out
//! cookie stays refused after a restart.

use std::os::unix::fs::PermissionsExt;

use reqwest::StatusCode;

use crate::support::dashboard::{csrf_of, location, spawn, Browser, PASSWORD};
use crate::support::TestApp;

/// The throttle's documented limit: failures per address before it is refused.
const LIMIT: u64 = 5;
const FLOOD: usize = 200;

/// A Prometheus sample's value (none: 0).
fn sample(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// Resident memory of this test process, in KiB (the server runs in it).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_flood_of_wrong_passwords_gets_at_most_the_limit_checked() {
    let app = spawn().await;
    let rss_before = rss_kib();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{}/login", app.base);
    let flood = (0..FLOOD).map(|i| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .form(&[("password", format!("wrong password {i}"))])
                .send()
                .await
                .unwrap();
            let retry_after = resp.headers().get("retry-after").cloned();
            (resp.status(), retry_after, resp.text().await.unwrap())
        })
    });
    let answers = futures_util::future::join_all(flood).await;
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for a in answers {
        let (status, retry_after, body) = a.unwrap();
        *by_status.entry(status.as_u16()).or_default() += 1;
        match status {
            StatusCode::UNAUTHORIZED => assert!(body.contains("Wrong password")),
            StatusCode::TOO_MANY_REQUESTS => assert!(body.contains("try again in 5 minute")),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(retry_after.unwrap(), "5");
                assert!(body.contains("try again in 5 seconds"), "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let rss_after = rss_kib();
    eprintln!(
        "login flood of {FLOOD}: answers {by_status:?}; test process RSS {rss_before} KiB -> {rss_after} KiB"
    );
    let metrics = app.metrics().await;
    let checked = sample(&metrics, "wagate_dashboard_login_checks_total");
    assert!(
        (1..=LIMIT).contains(&checked),
        "{checked} passwords checked of {FLOOD}: {by_status:?}"
    );
    let wrong = by_status.get(&401).copied().unwrap_or(0) as u64;
    assert!(
        wrong <= LIMIT,
        "{wrong} answered 'wrong password': {by_status:?}"
    );
    let refused = sample(
        &metrics,
        "wagate_dashboard_login_refused_total{reason=\"locked\"}",
    ) + sample(
        &metrics,
        "wagate_dashboard_login_refused_total{reason=\"busy\"}",
    );
    assert_eq!(refused + checked, FLOOD as u64, "{metrics}");

    // One by one (never busy), wrong passwords are checked until the address has
    // used up the documented limit: then it is refused, the right password too.
    let mut b = Browser::new(&app);
    let mut more = 0;
    while b.login("still wrong").await.status() == StatusCode::UNAUTHORIZED {
        more += 1;
        assert!(checked + more <= LIMIT, "more than {LIMIT} checked");
    }
    assert_eq!(checked + more, LIMIT, "the limit, then refused");
    let resp = b.login(PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(b.cookie.is_none());
    let metrics = app.metrics().await;
    assert_eq!(
        sample(&metrics, "wagate_dashboard_login_checks_total"),
        LIMIT
    );
    app.stop().await;
}

#[tokio::test]
async fn a_logout_survives_a_restart() {
    let app = spawn().await;
    let mut b = Browser::logged_in(&app).await;
    let csrf = csrf_of(&b.page("/").await);
    let old = b.cookie.clone();
    let resp = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    let dir = app.stop().await;
    let app = TestApp::spawn_in(dir, |c| {
        c.admin_password = Some(wagate::config::Secret::new(PASSWORD));
    })
    .await;
    let mut b = Browser::new(&app);
    b.cookie = old;
    let resp = b.get("/").await;
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "the old cookie is refused"
    );
    assert_eq!(location(&resp), "/login");
    let logouts = app.dir.path().join("dashboard-logouts");
    let mode = std::fs::metadata(&logouts).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", logouts.display());
    // A new login works.
    Browser::logged_in(&app).await.page("/").await;
    app.stop().await;
}
