//! Outbound HTTP. The only module that calls out: one `reqwest::Client`, built once
//! (timeouts, `User-Agent: wagate/<version>`), shared by every feature that talks to
//! Meta (sending today; media download and forwarding reuse [`Upstream::http`] and
//! [`Upstream::graph_url`]).

pub mod acme;
pub mod forward;
mod graph_error;
pub mod media;
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
        })
    }

    /// An answer's `Retry-After`, as a delay from now.
    fn retry_after(&self, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
        retry_after(headers, self.clock.now())
    }

    /// The client itself, for callers that fetch other URLs (media, forwarding).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `{WAGATE_GRAPH_URL}/{WAGATE_GRAPH_VERSION}/{path}`.
    pub fn graph_url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.graph.url,
            self.graph.version,
            path.trim_start_matches('/')
        )
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
        self.post_json(&format!("{phone_number_id}/messages"), body)
            .await
    }

    /// POSTs JSON to a Graph path with the bearer token.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<GraphResponse, CallError> {
        let token = self.graph.token.as_ref().ok_or(CallError::NoToken)?;
        let resp = self
            .http
            .post(self.graph_url(path))
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

fn call_error(e: reqwest::Error) -> CallError {
    // A connect failure (refused, DNS, TLS handshake) means nothing was sent.
    if e.is_connect() || e.is_builder() {
        CallError::NotSent(e.to_string())
    } else {
        CallError::Unknown(e.to_string())
    }
}
