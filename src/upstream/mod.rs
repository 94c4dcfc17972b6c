//! Outbound HTTP. The only module that calls out: one `reqwest::Client`, built once
//! (timeouts, `User-Agent: wagate/<version>`), shared by every feature that talks to
//! Meta (sending today; media download and forwarding reuse [`Upstream::http`] and
//! [`Upstream::graph_url`]).

pub mod acme;
pub mod forward;
mod graph_error;
pub mod media;
pub mod nats;
mod retry_after;

use std::time::Duration;

use serde_json::Value;

pub use graph_error::{classify, Class, GraphError};
pub use retry_after::parse_retry_after;
pub(crate) use retry_after::retry_after;

use crate::config::GraphConfig;
use crate::util::clock::Clock;

pub const USER_AGENT: &str = concat!("wagate/", env!("CARGO_PKG_VERSION"));

/// What came back from one Graph call that got an HTTP answer.
#[derive(Debug, Clone)]
pub struct GraphResponse {
    pub status: u16,
    /// The body as JSON (a non-JSON body is kept as a JSON string).
    pub body: Value,
    /// `Retry-After`, seconds or HTTP date, as a delay from now.
    pub retry_after: Option<Duration>,
    /// Meta's error object, when the body has one.
    pub error: Option<GraphError>,
}

impl GraphResponse {
    pub fn class(&self) -> Class {
        classify(self.status, self.error.as_ref())
    }
}

/// A call that got no HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The request cannot have reached Meta (no connection was made): safe to retry.
    #[error("not sent: {0}")]
    NotSent(String),
    /// Timed out or broke after the request may have reached Meta: never resend
    /// automatically (Meta has no idempotency key).
    #[error("outcome unknown: {0}")]
    Unknown(String),
    #[error("WHATSAPP_TOKEN is not configured")]
    NoToken,
}

/// The shared outbound client and where the Graph API is.
#[derive(Clone)]
pub struct Upstream {
    http: reqwest::Client,
    graph: GraphConfig,
    /// `Retry-After` dates are read against it.
    clock: Clock,
    /// The event bus (`WAGATE_NATS_URL`), when set.
    bus: Option<std::sync::Arc<nats::Bus>>,
}

impl Upstream {
    pub fn new(graph: &GraphConfig, clock: Clock) -> Result<Upstream, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(10).min(graph.timeout))
            .timeout(graph.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            // Redirects are followed by hand where wanted (media: allowed hosts only).
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Upstream {
            http,
            graph: graph.clone(),
            clock,
            bus: None,
        })
    }

    /// With the event bus, when one is configured (one client for the process).
    pub fn with_bus(mut self, nats: Option<&crate::config::NatsConfig>) -> Upstream {
        self.bus = nats.map(|c| std::sync::Arc::new(nats::Bus::new(c.clone())));
        self
    }

    /// The event bus, if configured.
    pub fn bus(&self) -> Option<&nats::Bus> {
        self.bus.as_deref()
    }

    /// An answer's `Retry-After`, as a delay from now.
    fn retry_after(&self, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
        retry_after(headers, self.clock.now())
    }

    /// The client itself, for callers that fetch other URLs (media, forwarding).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `{WAGATE_GRAPH_URL}/{WAGATE_GRAPH_VERSION}/{segments...}`, each segment
    /// percent-encoded as exactly one path segment (`/`, `?`, `#`, `%` included), so
    /// an id can never reach another path or add a query. An empty, `.` or `..`
    /// segment is refused (the URL library would drop it).
    pub fn graph_url(&self, segments: &[&str]) -> Result<reqwest::Url, String> {
        graph_url(&self.graph.url, &self.graph.version, segments)
    }

    pub fn has_token(&self) -> bool {
        self.graph.token.is_some()
    }

    /// A short, stable fingerprint of the configured token (never the token).
    pub fn token_fingerprint(&self) -> Option<String> {
        use sha2::Digest;
        let t = self.graph.token.as_ref()?;
        Some(hex::encode(
            &sha2::Sha256::digest(t.expose().as_bytes())[..8],
        ))
    }

    /// `POST /{phone_number_id}/messages` with `body`.
    pub async fn send_message(
        &self,
        phone_number_id: &str,
        body: &Value,
    ) -> Result<GraphResponse, CallError> {
        self.post_json(&[phone_number_id, "messages"], body).await
    }

    /// POSTs JSON to a Graph path (its segments, see [`Upstream::graph_url`]) with
    /// the bearer token.
    pub async fn post_json(
        &self,
        segments: &[&str],
        body: &Value,
    ) -> Result<GraphResponse, CallError> {
        let token = self.graph.token.as_ref().ok_or(CallError::NoToken)?;
        let url = self.graph_url(segments).map_err(CallError::NotSent)?;
        let resp = self
            .http
            .post(url)
            .bearer_auth(token.expose())
            .json(body)
            .send()
            .await
            .map_err(call_error)?;
        let status = resp.status().as_u16();
        let retry_after = self.retry_after(resp.headers());
        // The answer has started: a broken body still means Meta saw the request.
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| CallError::Unknown(format!("reading the answer: {e}")))?;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        let error = GraphError::from_body(&body);
        Ok(GraphResponse {
            status,
            body,
            retry_after,
            error,
        })
    }
}

/// See [`Upstream::graph_url`].
fn graph_url(base: &str, version: &str, segments: &[&str]) -> Result<reqwest::Url, String> {
    if let Some(bad) = segments.iter().find(|s| matches!(**s, "" | "." | "..")) {
        return Err(format!("refused a Graph path segment '{bad}'"));
    }
    let mut url =
        reqwest::Url::parse(base).map_err(|e| format!("bad WAGATE_GRAPH_URL '{base}': {e}"))?;
    url.path_segments_mut()
        .map_err(|_| format!("WAGATE_GRAPH_URL '{base}' cannot take a path"))?
        .pop_if_empty()
        .push(version)
        .extend(segments);
    Ok(url)
}

fn call_error(e: reqwest::Error) -> CallError {
    // A connect failure (refused, DNS, TLS handshake) means nothing was sent.
    if e.is_connect() || e.is_builder() {
        CallError::NotSent(e.to_string())
    } else {
        CallError::Unknown(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::graph_url;

    #[test]
    fn every_id_is_one_path_segment() {
        let url = |base: &str, segs: &[&str]| graph_url(base, "v23.0", segs).map(|u| u.to_string());
        let g = "https://graph.facebook.com";
        assert_eq!(
            url(g, &["123"]).unwrap(),
            "https://graph.facebook.com/v23.0/123"
        );
        assert_eq!(
            url(&format!("{g}/"), &["1", "messages"]).unwrap(),
            "https://graph.facebook.com/v23.0/1/messages"
        );
        assert_eq!(
            url("http://127.0.0.1:9/prefix", &["1"]).unwrap(),
            "http://127.0.0.1:9/prefix/v23.0/1"
        );
        for (evil, want) in [
            ("../../me", "https://graph.facebook.com/v23.0/..%2F..%2Fme"),
            (
                "9/../../../oauth/access_token",
                "https://graph.facebook.com/v23.0/9%2F..%2F..%2F..%2Foauth%2Faccess_token",
            ),
            (
                "123?fields=access_token&x=",
                "https://graph.facebook.com/v23.0/123%3Ffields=access_token&x=",
            ),
            ("1#frag", "https://graph.facebook.com/v23.0/1%23frag"),
            ("%2e%2e", "https://graph.facebook.com/v23.0/%252e%252e"),
        ] {
            let u = url(g, &[evil]).unwrap();
            assert_eq!(u, want, "{evil}");
            let parsed = reqwest::Url::parse(&u).unwrap();
            assert_eq!(parsed.query(), None, "{evil}");
            assert_eq!(parsed.path_segments().unwrap().count(), 2, "{evil}");
        }
        for refused in ["", ".", ".."] {
            assert!(url(g, &[refused]).is_err(), "{refused:?}");
        }
    }
}
