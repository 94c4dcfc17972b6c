//! The dashboard as a browser without JavaScript sees it: login, the session
//! cookie, CSRF fields, the security headers every answer must carry.

use reqwest::redirect::Policy;
use reqwest::StatusCode;

use super::{TestApp, TEN_YEARS};

pub const PASSWORD: &str = "dashboard-password-for-tests";

/// Every page behind the login (GET).
pub const PAGES: &[&str] = &[
    "/",
    "/dashboard/deliveries",
    "/dashboard/deliveries?verdict=rejected",
    "/dashboard/messages",
    "/dashboard/messages?direction=outbound",
    "/dashboard/conversation?contact=16505551234",
    "/dashboard/statuses",
    "/dashboard/media",
    "/dashboard/events",
    "/dashboard/settings",
    "/dashboard/forward",
];

/// A browser without JavaScript: keeps the session cookie by hand, follows no
/// redirects (so each answer can be checked).
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookie: Option<String>,
}

/// wagate with a dashboard password, keeping the corpus' old items.
pub async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| {
        c.admin_password = Some(wagate::config::Secret::new(PASSWORD));
        c.dedup_ttl = TEN_YEARS;
    })
    .await
}

/// The `value` of the hidden `csrf` input of a page.
pub fn csrf_of(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[i..i + html[i..].find('"').unwrap()].to_string()
}

pub fn assert_security_headers(resp: &reqwest::Response, what: &str) {
    let h = resp.headers();
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    let csp = get("content-security-policy");
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{what}: CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(get("cache-control"), "no-store", "{what}");
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser {
            base: app.base.clone(),
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    /// A logged-in browser.
    pub async fn logged_in(app: &TestApp) -> Browser {
        let mut b = Browser::new(app);
        let resp = b.login(PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert!(b.cookie.is_some());
        b
    }

    fn keep_cookie(&mut self, resp: &reqwest::Response) {
        if let Some(v) = resp.headers().get("set-cookie") {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap();
            let value = pair.split_once('=').unwrap().1;
            self.cookie = (!value.is_empty()).then(|| pair.to_string());
        }
    }

    pub async fn login(&mut self, password: &str) -> reqwest::Response {
        let resp = self
            .client
            .post(format!("{}/login", self.base))
            .form(&[("password", password)])
            .send()
            .await
            .unwrap();
        self.keep_cookie(&resp);
        resp
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.keep_cookie(&resp);
        resp
    }

    /// GET a page: 200, security headers, the HTML.
    pub async fn page(&mut self, path: &str) -> String {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        assert_security_headers(&resp, path);
        assert!(resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        resp.text().await.unwrap()
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.client.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.keep_cookie(&resp);
        resp
    }
}

/// Where a redirect points ("" for none).
pub fn location(resp: &reqwest::Response) -> &str {
    resp.headers()
        .get("location")
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}
