//! What the outbox writes to the journal, and the entry the applier derives from it.
//!
//! The journal holds everything that cannot be recomputed: the request (its
//! sequence number is the local id), each attempt's start (written *before* the
//! call, so an attempt in flight at a crash is known), each attempt's end (Meta's
//! status, body, wamid, the class and the delay chosen), pauses and resumes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::upstream::Class;

/// `Kind::SendRequest` payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SendRequest {
    pub idempotency_key: Option<String>,
    pub phone_number_id: String,
    /// Who it goes to (`to` or `recipient`): the per-recipient order key.
    pub recipient: String,
    /// The Graph message object, sent as is.
    pub message: Value,
    pub force: bool,
    /// Came through the Graph-compatible endpoint.
    #[serde(default)]
    pub graph_compatible: bool,
}

/// `Kind::SendUpdate` payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "update", rename_all = "snake_case")]
pub enum SendUpdate {
    Started {
        id: u64,
        attempt: u32,
    },
    Ended {
        id: u64,
        attempt: u32,
        result: AttemptResult,
        /// The entry's state after this attempt (`queued` when it will be retried).
        state: State,
    },
    /// Without an attempt: given up (too old) or settled at start-up.
    Settled {
        id: u64,
        state: State,
        reason: String,
    },
    Paused {
        reason: String,
        token_fingerprint: Option<String>,
    },
    Resumed {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Queued,
    Sending,
    Sent,
    Failed,
    Unknown,
}

impl State {
    /// The applier's counter of sends in this state (a gauge in `/metrics`).
    pub fn counter(self) -> &'static str {
        match self {
            State::Queued => "sends_queued",
            State::Sending => "sends_sending",
            State::Sent => "sends_sent",
            State::Failed => "sends_failed",
            State::Unknown => "sends_unknown",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, State::Sent | State::Failed | State::Unknown)
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct AttemptResult {
    pub http_status: Option<u16>,
    /// `error.code` from Meta's body.
    pub error_code: Option<i64>,
    pub error: Option<String>,
    pub class: Option<Class>,
    /// Meta's answer.
    pub body: Option<Value>,
    pub wamid: Option<String>,
    /// Delay chosen before the next attempt.
    pub retry_in_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    pub attempt: u32,
    pub started_at_micros: i64,
    pub ended_at_micros: Option<i64>,
    #[serde(flatten)]
    pub result: AttemptResult,
}

/// The outbox's view of one message (derived; kept in the store).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutboxEntry {
    pub id: u64,
    pub created_at_micros: i64,
    #[serde(flatten)]
    pub request: SendRequest,
    pub state: State,
    pub attempts: Vec<Attempt>,
    /// Meta's last answer (status and body), the wamid once accepted.
    pub response_status: Option<u16>,
    pub response: Option<Value>,
    pub wamid: Option<String>,
    /// Why it failed or is unknown.
    pub reason: Option<String>,
    pub finished_at_micros: Option<i64>,
}

impl OutboxEntry {
    pub fn new(id: u64, at: i64, request: SendRequest) -> Self {
        OutboxEntry {
            id,
            created_at_micros: at,
            request,
            state: State::Queued,
            attempts: Vec::new(),
            response_status: None,
            response: None,
            wamid: None,
            reason: None,
            finished_at_micros: None,
        }
    }

    /// Applies an update; applying the same update twice changes nothing.
    pub fn apply(&mut self, update: &SendUpdate, at: i64) {
        match update {
            SendUpdate::Started { attempt, .. } => {
                if self.attempts.iter().all(|a| a.attempt != *attempt) {
                    self.attempts.push(Attempt {
                        attempt: *attempt,
                        started_at_micros: at,
                        ended_at_micros: None,
                        result: AttemptResult::default(),
                    });
                }
                if !self.state.is_final() {
                    self.state = State::Sending;
                }
            }
            SendUpdate::Ended {
                attempt,
                result,
                state,
                ..
            } => {
                if let Some(a) = self.attempts.iter_mut().find(|a| a.attempt == *attempt) {
                    a.ended_at_micros = Some(at);
                    a.result = result.clone();
                }
                self.response_status = result.http_status.or(self.response_status);
                self.response = result.body.clone().or(self.response.take());
                self.wamid = result.wamid.clone().or(self.wamid.take());
                self.set_state(*state, result.error.clone(), at);
            }
            SendUpdate::Settled { state, reason, .. } => {
                self.set_state(*state, Some(reason.clone()), at)
            }
            SendUpdate::Paused { .. } | SendUpdate::Resumed { .. } => {}
        }
    }

    fn set_state(&mut self, state: State, reason: Option<String>, at: i64) {
        self.state = state;
        if state.is_final() {
            self.finished_at_micros = Some(at);
            if state != State::Sent {
                self.reason = reason;
            }
        }
    }

    /// The attempt that started and never ended, if any.
    pub fn in_flight(&self) -> Option<u32> {
        self.attempts
            .iter()
            .find(|a| a.ended_at_micros.is_none())
            .map(|a| a.attempt)
    }
}

/// The outbox-wide pause (token error), derived from `Paused`/`Resumed`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pause {
    pub reason: String,
    pub since_micros: i64,
    pub token_fingerprint: Option<String>,
}

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialisable")
}
