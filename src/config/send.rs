//! Graph API and sending settings (`WAGATE_GRAPH_*`, `WHATSAPP_TOKEN`,
//! `WAGATE_PHONE_NUMBER_ID`, `WAGATE_SEND_*`, `WAGATE_SENT_TIMEOUT`), read by `config.rs`.

use std::time::Duration;

use super::{bad, count_var, duration_var, ConfigError, Secret};

pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com";
pub const DEFAULT_GRAPH_VERSION: &str = "v23.0";

/// Where and how wagate calls the Graph API.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Base URL without the version, e.g. `https://graph.facebook.com`.
    pub url: String,
    /// API version path segment, e.g. `v23.0`.
    pub version: String,
    /// System-user access token (`WHATSAPP_TOKEN`); sending is refused without it.
    pub token: Option<Secret>,
    /// The sender's phone number id when a request does not name one.
    pub phone_number_id: Option<String>,
    /// Whole-request timeout of one call.
    pub timeout: Duration,
}

/// The outbox's pacing, retries and limits.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// Messages (attempts) per second, over all recipients.
    pub rate: f64,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub max_attempts: u32,
    pub max_age: Duration,
    /// An accepted message with no `sent` status after this long is flagged.
    pub sent_timeout: Duration,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            url: DEFAULT_GRAPH_URL.into(),
            version: DEFAULT_GRAPH_VERSION.into(),
            token: None,
            phone_number_id: None,
            timeout: Duration::from_secs(30),
        }
    }
}

impl Default for SendConfig {
    fn default() -> Self {
        SendConfig {
            rate: 80.0,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(10),
            max_attempts: 10,
            max_age: Duration::from_secs(3600),
            sent_timeout: Duration::from_secs(600),
        }
    }
}

pub(super) fn read_graph(
    get: &impl Fn(&str) -> Option<String>,
    g: &mut GraphConfig,
) -> Result<(), ConfigError> {
    if let Some(v) = get("WAGATE_GRAPH_URL") {
        let v = v.trim().trim_end_matches('/');
        if !(v.starts_with("http://") || v.starts_with("https://"))
            || v.contains(char::is_whitespace)
        {
            return Err(bad(
                "WAGATE_GRAPH_URL",
                format!("'{v}' is not an http(s) URL"),
            ));
        }
        g.url = v.to_string();
    }
    if let Some(v) = get("WAGATE_GRAPH_VERSION") {
        let v = v.trim();
        let ok = v.strip_prefix('v').is_some_and(|n| {
            n.split('.').count() == 2
                && n.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        if !ok {
            return Err(bad(
                "WAGATE_GRAPH_VERSION",
                format!("'{v}' is not a version like v23.0"),
            ));
        }
        g.version = v.to_string();
    }
    g.token = get("WHATSAPP_TOKEN").map(|t| Secret::new(t.trim()));
    if let Some(v) = get("WAGATE_PHONE_NUMBER_ID") {
        if !v.trim().bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "WAGATE_PHONE_NUMBER_ID",
                "must be digits (Meta's phone number id)",
            ));
        }
        g.phone_number_id = Some(v.trim().to_string());
    }
    duration_var(get, "WAGATE_GRAPH_TIMEOUT", &mut g.timeout)
}

pub(super) fn read_send(
    get: &impl Fn(&str) -> Option<String>,
    s: &mut SendConfig,
) -> Result<(), ConfigError> {
    if let Some(v) = get("WAGATE_SEND_RATE") {
        s.rate = v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r > 0.0 && *r <= 10_000.0)
            .ok_or_else(|| {
                bad(
                    "WAGATE_SEND_RATE",
                    format!("'{v}' is not a rate between 0 and 10000 messages/s"),
                )
            })?;
    }
    duration_var(get, "WAGATE_SEND_BACKOFF_BASE", &mut s.backoff_base)?;
    duration_var(get, "WAGATE_SEND_BACKOFF_CAP", &mut s.backoff_cap)?;
    if s.backoff_cap < s.backoff_base {
        return Err(bad(
            "WAGATE_SEND_BACKOFF_CAP",
            "must not be shorter than WAGATE_SEND_BACKOFF_BASE",
        ));
    }
    count_var(
        get,
        "WAGATE_SEND_MAX_ATTEMPTS",
        1..=1000,
        &mut s.max_attempts,
    )?;
    duration_var(get, "WAGATE_SEND_MAX_AGE", &mut s.max_age)?;
    duration_var(get, "WAGATE_SENT_TIMEOUT", &mut s.sent_timeout)
}
