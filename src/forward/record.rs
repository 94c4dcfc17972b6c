//! What forwarding writes to the journal (`Kind::ForwardUpdate`), and the derived
//! entries the applier keeps in the store.
//!
//! A queue entry is derived from the delivery itself (its new items), so it needs no
//! record of its own. The journal holds what cannot be recomputed: that an entry was
//! delivered, that it was dead-lettered, that a target was disabled (410) or enabled
//! again, and replays asked for through the API.

use serde::{Deserialize, Serialize};

pub use crate::store::forward::{DeadLetter, Disabled, QueueEntry, TargetState, Unrouted};

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
