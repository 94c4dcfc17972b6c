//! The dashboard over HTTP: login, sessions, CSRF, throttling, security headers.

use reqwest::StatusCode;

use crate::support::dashboard::{
    assert_security_headers, csrf_of, location, spawn, Browser, PAGES, PASSWORD,
};
use crate::support::TestApp;

#[tokio::test]
async fn every_page_needs_a_session() {
    let app = spawn().await;
    let mut b = Browser::new(&app);
    for path in PAGES.iter().chain(&[
        "/dashboard/deliveries/1",
        "/dashboard/deliveries/1/raw",
        "/dashboard/media/123/content",
        "/dashboard/nope",
    ]) {
        let resp = b.get(path).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&resp), "/login", "{path}");
        assert_security_headers(&resp, path);
    }
    for path in [
        "/logout",
        "/dashboard/deliveries/reverify",
        "/dashboard/forward/replay",
        "/dashboard/forward/targets/default/enable",
    ] {
        let resp = b.post(path, &[("csrf", "x")]).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // A forged or stale cookie is no session either.
    b.cookie = Some("wagate_session=00.1.1.00".into());
    assert_eq!(b.get("/").await.status(), StatusCode::SEE_OTHER);
    // The login page and the stylesheet are open.
    let login = b.page("/login").await;
    assert!(login.contains("type=\"password\""));
    let css = login
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let resp = b.get(&css).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    // The JSON API is not opened by a dashboard session.
    let mut b = Browser::logged_in(&app).await;
    assert_eq!(b.get("/api/stats").await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_sets_a_locked_down_cookie_and_logout_ends_it() {
    let app = spawn().await;
    let mut b = Browser::new(&app);
    let resp = b.login("wrong password").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_security_headers(&resp, "failed login");
    assert!(resp.text().await.unwrap().contains("Wrong password"));
    assert!(b.cookie.is_none());

    let resp = b.login(PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");

    for path in PAGES {
        b.page(path).await;
    }
    let html = b.page("/").await;
    let csrf = csrf_of(&html);
    // CSRF: missing or wrong -> 403, the session stays.
    assert_eq!(b.post("/logout", &[]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        b.post("/logout", &[("csrf", "0123")]).await.status(),
        StatusCode::FORBIDDEN
    );
    b.page("/").await;
    let old = b.cookie.clone();
    let resp = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/login");
    assert!(b.cookie.is_none(), "the cookie is deleted");
    // The old cookie no longer works either (revoked on the server).
    b.cookie = old;
    assert_eq!(b.get("/").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn secure_cookie_behind_a_trusted_https_proxy() {
    let app = TestApp::spawn_with(|c| {
        c.admin_password = Some(wagate::config::Secret::new(PASSWORD));
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let b = Browser::new(&app);
    let resp = b
        .client
        .post(format!("{}/login", b.base))
        .header("x-forwarded-proto", "https")
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));
}

#[tokio::test]
async fn five_failures_refuse_the_address() {
    let app = spawn().await;
    let mut b = Browser::new(&app);
    for _ in 0..5 {
        assert_eq!(b.login("nope").await.status(), StatusCode::UNAUTHORIZED);
    }
    // Refused now, even with the right password.
    let resp = b.login(PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_security_headers(&resp, "throttled login");
    assert!(resp.text().await.unwrap().contains("try again in 5 minute"));
    assert!(b.cookie.is_none());
}

#[tokio::test]
async fn a_generated_password_file_is_used() {
    let app = TestApp::spawn().await;
    let path = app.dir.path().join("admin-password");
    let password = std::fs::read_to_string(&path).unwrap();
    let mut b = Browser::new(&app);
    let login = b.page("/login").await;
    assert!(
        login.contains("admin-password"),
        "the page says where it is"
    );
    assert!(!login.contains(password.trim()));
    assert_eq!(
        b.login(password.trim()).await.status(),
        StatusCode::SEE_OTHER
    );
    b.page("/").await;
}
