//! Meta's error bodies and what to do about them. Decisions key on `error.code`
//! (Meta: "build your app's error handling around error codes"), then the HTTP status.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"error": {...}}` as the Graph API sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphError {
    pub code: Option<i64>,
    pub error_subcode: Option<i64>,
    pub message: Option<String>,
    #[serde(rename = "type")]
    pub error_type: Option<String>,
    /// `error_data.details`.
    pub details: Option<String>,
    pub fbtrace_id: Option<String>,
    pub is_transient: Option<bool>,
}

impl GraphError {
    pub fn from_body(body: &Value) -> Option<GraphError> {
        let e = body.get("error")?.as_object()?;
        let int = |k: &str| e.get(k).and_then(Value::as_i64);
        let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
        Some(GraphError {
            code: int("code"),
            error_subcode: int("error_subcode"),
            message: text("message"),
            error_type: text("type"),
            details: e
                .get("error_data")
                .and_then(|d| d.get("details"))
                .and_then(Value::as_str)
                .map(str::to_string),
            fbtrace_id: text("fbtrace_id"),
            is_transient: e.get("is_transient").and_then(Value::as_bool),
        })
    }

    /// One line for people: message and details.
    pub fn summary(&self) -> String {
        match (&self.message, &self.details) {
            (Some(m), Some(d)) => format!("{m}: {d}"),
            (Some(m), None) => m.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => "no message".into(),
        }
    }
}

/// What to do after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// 2xx: Meta accepted the message.
    Accepted,
    /// Throughput limits of the app, account or number (HTTP 429, codes 4, 80007,
    /// 130429): back off everything.
    RetryAll,
    /// A transient failure of this message (5xx, 1, 2, 131000, 131057): back off its
    /// recipient.
    Retry,
    /// 131056: too many messages to this recipient; others can still be sent.
    PairRateLimit,
    /// 190: the token is expired or invalid; pause all sending until it is fixed.
    Token,
    /// Any other error: fix the request; never retried.
    Permanent,
}

pub fn classify(status: u16, error: Option<&GraphError>) -> Class {
    if (200..300).contains(&status) {
        return Class::Accepted;
    }
    match error.and_then(|e| e.code) {
        Some(190) => Class::Token,
        Some(131056) => Class::PairRateLimit,
        Some(4 | 80007 | 130429) => Class::RetryAll,
        Some(1 | 2 | 131000 | 131057) => Class::Retry,
        _ if status == 429 => Class::RetryAll,
        _ if status >= 500 => Class::Retry,
        _ if status == 401 && error.is_none() => Class::Token,
        _ => Class::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: i64) -> GraphError {
        GraphError::from_body(&serde_json::json!({"error": {"code": code}})).unwrap()
    }

    #[test]
    fn classes() {
        assert_eq!(classify(200, None), Class::Accepted);
        assert_eq!(classify(429, None), Class::RetryAll);
        assert_eq!(classify(503, None), Class::Retry);
        assert_eq!(classify(400, Some(&err(130429))), Class::RetryAll);
        assert_eq!(classify(400, Some(&err(80007))), Class::RetryAll);
        assert_eq!(classify(400, Some(&err(4))), Class::RetryAll);
        assert_eq!(classify(500, Some(&err(131000))), Class::Retry);
        assert_eq!(classify(400, Some(&err(131056))), Class::PairRateLimit);
        assert_eq!(classify(401, Some(&err(190))), Class::Token);
        assert_eq!(classify(400, Some(&err(190))), Class::Token);
        for code in [131047, 131026, 131048, 100, 131009] {
            assert_eq!(classify(400, Some(&err(code))), Class::Permanent, "{code}");
        }
    }

    #[test]
    fn details() {
        let body = serde_json::json!({"error": {"message": "(#131047) Re-engagement message",
            "code": 131047, "error_data": {"details": "More than 24 hours"}}});
        let e = GraphError::from_body(&body).unwrap();
        assert_eq!(e.details.as_deref(), Some("More than 24 hours"));
        assert!(e.summary().contains("Re-engagement"));
    }
}
