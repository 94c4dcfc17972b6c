//! What the outbox writes to the journal, and the entry the applier derives from it.
//!
//! The journal holds everything that cannot be recomputed: the request (its
//! sequence number is the local id), each attempt's start (written *before* the
//! call, so an attempt in flight at a crash is known), each attempt's end (Meta's
//! status, body, wamid, the class and the delay chosen), pauses and resumes.

use serde::{Deserialize, Serialize};

pub use crate::store::outbox::{Attempt, AttemptResult, OutboxEntry, Pause, SendRequest, State};

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

/// The outbox's rules for an entry: how a journaled update changes it.
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

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialisable")
}
