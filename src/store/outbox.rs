//! The outbox: entries by local id, idempotency keys, the wamid index, the pending
//! set (what the sender resumes after a restart) and the outbox-wide pause.

use super::{be, from_be, Changes, Store, StoreError, T};
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

/// The outbox-wide pause (token error), derived from `Paused`/`Resumed`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pause {
    pub reason: String,
    pub since_micros: i64,
    pub token_fingerprint: Option<String>,
}

const PAUSE_KEY: &[u8] = b"outbox/pause";

fn decode<V: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<V, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

impl Changes {
    pub fn put_outbox(&mut self, e: &OutboxEntry) {
        let id = be(e.id);
        self.put(T::Outbox, id, serde_json::to_vec(e).expect("serialisable"));
        if let Some(k) = &e.request.idempotency_key {
            self.put(T::OutboxKeys, k.as_bytes(), id);
        }
        self.put(
            T::OutboxByRecipient,
            super::model::prefixed(&e.request.recipient, &id),
            [],
        );
        if let Some(w) = &e.wamid {
            self.put(T::OutboxByWamid, w.as_bytes(), id);
        }
        if e.state.is_final() {
            self.del(T::OutboxPending, id);
        } else {
            self.put(T::OutboxPending, id, []);
        }
    }

    pub fn set_outbox_pause(&mut self, pause: Option<&Pause>) {
        match pause {
            Some(p) => self.put(
                T::Meta,
                PAUSE_KEY,
                serde_json::to_vec(p).expect("serialisable"),
            ),
            None => self.del(T::Meta, PAUSE_KEY),
        }
    }
}

impl Store {
    pub fn outbox_entry(&self, id: u64) -> Result<Option<OutboxEntry>, StoreError> {
        self.tree(T::Outbox)
            .get(be(id))?
            .map(|v| decode(&v))
            .transpose()
    }

    pub fn outbox_by_key(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.tree(T::OutboxKeys).get(key)?.and_then(|v| from_be(&v)))
    }

    pub fn outbox_by_wamid(&self, wamid: &str) -> Result<Option<OutboxEntry>, StoreError> {
        match self
            .tree(T::OutboxByWamid)
            .get(wamid)?
            .and_then(|v| from_be(&v))
        {
            Some(id) => self.outbox_entry(id),
            None => Ok(None),
        }
    }

    /// Entries not yet final, oldest first.
    pub fn outbox_pending(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree(T::OutboxPending).iter() {
            let (k, _) = kv?;
            if let Some(e) = from_be(&k).map(|id| self.outbox_entry(id)).transpose()? {
                out.extend(e);
            }
        }
        Ok(out)
    }

    /// Newest first, ids below `before`.
    pub fn outbox_list(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let hi = be(before.unwrap_or(u64::MAX));
        self.tree(T::Outbox)
            .range(..hi)
            .rev()
            .take(limit)
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    pub fn outbox_pause(&self) -> Result<Option<Pause>, StoreError> {
        self.tree(T::Meta)
            .get(PAUSE_KEY)?
            .map(|v| decode(&v))
            .transpose()
    }
}
