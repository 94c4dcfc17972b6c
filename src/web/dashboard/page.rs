//! What every page shares: the layout's data (navigation, CSRF token, warnings),
//! plain answers (redirect, 403, 404), the login page, the stylesheet, and value
//! formatting. Values are formatted here as plain text; the templates escape them.

use std::sync::OnceLock;

use askama::Template;
use http::{HeaderValue, StatusCode};
use sha2::Digest;
use warp::Reply;

use super::{Ctx, Req, Response};

const CSS: &str = include_str!("../../../static/dashboard.css");

/// `/static/dashboard.<hash>.css`: the name changes with the content, so it can be
/// cached for a year.
pub fn css_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let digest = sha2::Sha256::digest(CSS.as_bytes());
        format!("/static/dashboard.{}.css", &hex::encode(digest)[..12])
    })
}

pub fn static_file(path: &str) -> Response {
    if path != css_path() {
        return not_found();
    }
    let mut resp = CSS.into_response();
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        "cache-control",
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    resp
}

pub fn html(body: String) -> Response {
    let mut resp = warp::reply::html(body).into_response();
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

pub fn redirect(to: &str) -> Response {
    let mut resp = warp::reply::with_status("", StatusCode::SEE_OTHER).into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    resp
}

#[derive(Template)]
#[template(path = "dash/message.html")]
struct Message<'a> {
    css: &'a str,
    title: &'a str,
    text: &'a str,
}

pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let page = Message {
        css: css_path(),
        title,
        text,
    };
    let mut resp = super::render(&page);
    if resp.status().is_success() {
        *resp.status_mut() = status;
    }
    resp
}

pub fn forbidden(text: &str) -> Response {
    message(StatusCode::FORBIDDEN, "Forbidden", text)
}

/// `text` percent-encoded as one path segment (ids may hold `/`, `+`, `=`).
pub fn segment(text: &str) -> String {
    crate::httpkit::params::encode_segment(text)
}

pub fn too_large() -> Response {
    message(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Too large",
        "The form was larger than 16 KiB.",
    )
}

pub fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found", "There is nothing here.")
}

#[derive(Template)]
#[template(path = "dash/login.html")]
struct Login<'a> {
    css: &'a str,
    error: Option<String>,
    password_file: Option<String>,
}

pub fn login_page(req: &Req, error: Option<String>, status: StatusCode) -> Response {
    let password_file = req
        .state
        .config
        .admin_password
        .is_none()
        .then(|| req.state.config.data_dir.join("admin-password"))
        .map(|p| p.display().to_string());
    let mut resp = super::render(&Login {
        css: css_path(),
        error,
        password_file,
    });
    if resp.status().is_success() {
        *resp.status_mut() = status;
    }
    resp
}

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

const NAV: &[(&str, &str, &str)] = &[
    ("overview", "/", "Overview"),
    ("deliveries", "/dashboard/deliveries", "Deliveries"),
    ("messages", "/dashboard/messages", "Messages"),
    ("statuses", "/dashboard/statuses", "Failed statuses"),
    ("media", "/dashboard/media", "Media"),
    ("events", "/dashboard/events", "Account events"),
    ("forward", "/dashboard/forward", "Forwarding"),
    ("settings", "/dashboard/settings", "Settings"),
];

/// The layout's data: navigation, the CSRF token for the logout form, warnings
/// shown on every page (low disk, sending paused).
pub struct Chrome {
    pub css: &'static str,
    pub csrf: String,
    pub nav: Vec<NavItem>,
    pub warnings: Vec<String>,
}

impl Chrome {
    pub async fn new(ctx: &Ctx, active: &str) -> Chrome {
        let mut warnings = Vec::new();
        let state = &ctx.req.state;
        let dir = state.config.data_dir.clone();
        let free = tokio::task::spawn_blocking(move || crate::util::disk::free_bytes(&dir))
            .await
            .ok()
            .and_then(Result::ok);
        if let Some(free) = free.filter(|f| *f < state.config.min_free) {
            warnings.push(format!(
                "Low disk space: {} free in the data directory (WAGATE_MIN_FREE is {}). Deliveries that cannot be written are answered 503.",
                size(free),
                size(state.config.min_free)
            ));
        }
        if let Some(p) = state.outbox.paused() {
            warnings.push(format!(
                "Sending is paused since {}: {}",
                time(p.since_micros),
                p.reason
            ));
        }
        Chrome {
            css: css_path(),
            csrf: ctx.chrome_csrf.clone(),
            nav: NAV
                .iter()
                .map(|(key, href, label)| NavItem {
                    href,
                    label,
                    current: *key == active,
                })
                .collect(),
            warnings,
        }
    }
}

/// `2025-06-15 21:45:36 UTC` from Unix microseconds; a time out of range (before
/// 1970, from year 10000 on) as its raw Unix seconds, marked.
pub fn time(micros: i64) -> String {
    time_secs(crate::util::time::micros_to_secs(micros))
}

/// From Unix seconds.
pub fn time_secs(secs: i64) -> String {
    match crate::util::time::rfc3339_secs(secs) {
        Some(s) => s.replacen('T', " ", 1).replace('Z', " UTC"),
        None => format!("{secs} (out of range)"),
    }
}

/// An item's time (Unix seconds), and the raw time it was sent with when that was
/// out of range (the item then goes by its receive time).
pub fn item_time(secs: i64, raw: Option<i64>) -> String {
    match raw {
        Some(raw) => format!("{} (sent as {raw}: out of range)", time_secs(secs)),
        None => time_secs(secs),
    }
}

/// `3 h 5 min`, `42 s`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        3600..=86_399 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `YYYY-MM-DD` -> Unix seconds at the start of that UTC day.
pub fn parse_day(text: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(&format!("{} 00:00:00", text.trim())).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
}

/// `YYYY-MM-DD HH:MM[:SS]` (or with a `T`, as a `datetime-local` input sends it),
/// UTC, or plain Unix seconds -> Unix seconds. Without seconds, `end` means the
/// last second of that minute (an inclusive upper bound).
pub fn parse_time(text: &str, end: bool) -> Option<i64> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok();
    }
    let t = t.replacen('T', " ", 1);
    let (t, extra) = match t.len() {
        16 => (format!("{t}:00"), if end { 59 } else { 0 }),
        _ => (t, 0),
    };
    let at = humantime::parse_rfc3339_weak(&t).ok()?;
    at.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64 + extra)
}

/// `key=value&...` for links, each part percent-encoded; empty values left out.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(-1), "-1 (out of range)");
        assert_eq!(time(i64::MAX), "9223372036854 (out of range)");
        assert_eq!(time_secs(253_402_300_799), "9999-12-31 23:59:59 UTC");
        assert_eq!(time_secs(253_402_300_800), "253402300800 (out of range)");
        assert_eq!(time_secs(i64::MIN), "-9223372036854775808 (out of range)");
        assert_eq!(
            item_time(0, Some(i64::MAX)),
            "1970-01-01 00:00:00 UTC (sent as 9223372036854775807: out of range)"
        );
        assert_eq!(parse_day("2025-06-15"), Some(1_749_945_600));
        assert_eq!(parse_day("junk"), None);
        assert_eq!(parse_time("2025-06-15T00:01", false), Some(1_749_945_660));
        assert_eq!(parse_time("2025-06-15 00:01", true), Some(1_749_945_719));
        assert_eq!(parse_time("2025-06-15 00:01:30", true), Some(1_749_945_690));
        assert_eq!(parse_time("1749945600", false), Some(1_749_945_600));
        assert_eq!(parse_time("tomorrow", false), None);
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(duration(3700), "1 h 1 min");
        assert_eq!(query(&[("a", "x y&"), ("b", "")]), "a=x+y%26");
    }
}
