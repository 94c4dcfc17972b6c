//! What forwarding writes to the journal (`Kind::ForwardUpdate`), and the derived
//! entries the applier keeps in the store.
//!
//! A queue entry is derived from the delivery itself (its new items), so it needs no
//! record of its own. The journal holds what cannot be recomputed: that an entry was
//! delivered, that it was dead-lettered, that a target was disabled (410) or enabled
//! again, and replays asked for through the API.

use serde::{Deserialize, Serialize};

/// One delivery's items waiting for one target. Ordered by (`order`, `delivery`):
/// `order` is the journal sequence of the record that queued it (the delivery
/// itself, or a replay).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueueEntry {
    pub target: String,
    pub order: u64,
    pub delivery: u64,
    /// Indexes of the items in the parsed delivery.
    pub items: Vec<u32>,
    /// The delivery's receive time, or the replay's: `WAGATE_FORWARD_MAX_AGE` counts from it.
    pub enqueued_at_micros: i64,
    #[serde(default)]
    pub replay: bool,
}

/// An entry given up after `WAGATE_FORWARD_MAX_AGE` (or whose raw delivery is gone).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    /// The journal sequence of the record that dead-lettered it.
    pub id: u64,
    pub target: String,
    pub delivery: u64,
    pub items: Vec<u32>,
    pub enqueued_at_micros: i64,
    pub dead_at_micros: i64,
    pub attempts: u32,
    pub error: String,
    #[serde(default)]
    pub replayed_at_micros: Option<i64>,
}

/// A target's durable state (derived from the journal).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TargetState {
    pub target: String,
    /// Queue entries waiting.
    pub queued: u64,
    /// Entries delivered (all time).
    pub delivered: u64,
    pub dead_lettered: u64,
    pub last_success_micros: Option<i64>,
    /// Set by a `410 Gone`; cleared by `POST /api/forward/targets/{id}/enable`.
    pub disabled: Option<Disabled>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Disabled {
    pub reason: String,
    pub at_micros: i64,
}

/// A new item whose phone number no target claims.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Unrouted {
    pub delivery: u64,
    pub item: u32,
    pub phone_number_id: Option<String>,
    pub field: String,
    pub received_at_micros: i64,
}

/// The items of one delivery to queue again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplayItems {
    pub delivery: u64,
    pub items: Vec<u32>,
}

/// `Kind::ForwardUpdate` payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "update", rename_all = "snake_case")]
pub enum ForwardUpdate {
    /// The target answered 2xx to everything of this entry.
    Delivered {
        target: String,
        order: u64,
        delivery: u64,
        attempts: u32,
    },
    /// Given up: older than the max age, or its raw delivery is gone.
    DeadLettered {
        target: String,
        order: u64,
        delivery: u64,
        attempts: u32,
        error: String,
    },
    /// The target answered `410 Gone`.
    Disabled { target: String, reason: String },
    /// An operator enabled the target again.
    Enabled { target: String },
    /// Queue these again for `target`, whatever it has seen.
    Replay {
        target: String,
        entries: Vec<ReplayItems>,
        /// When replaying a dead letter: its id (marked replayed).
        #[serde(default)]
        dead_letter: Option<u64>,
    },
}

impl ForwardUpdate {
    pub fn target(&self) -> &str {
        match self {
            ForwardUpdate::Delivered { target, .. }
            | ForwardUpdate::DeadLettered { target, .. }
            | ForwardUpdate::Disabled { target, .. }
            | ForwardUpdate::Enabled { target }
            | ForwardUpdate::Replay { target, .. } => target,
        }
    }
}

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialisable")
}
