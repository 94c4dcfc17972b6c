//! A message waiting in the sender's queues, and what the sender's inbox takes.
//! Shared by the sender and start-up recovery (which hands back the jobs to run).

use serde_json::Value;

use super::record::SendRequest;

#[derive(Debug, Clone)]
pub struct Job {
    pub id: u64,
    pub created_at_micros: i64,
    pub recipient: String,
    pub phone_number_id: String,
    pub message: Value,
    /// Attempts made so far.
    pub attempts: u32,
    /// Monotonic microseconds (the outbox's clock) before which it waits; 0: now.
    pub(super) not_before: i64,
}

impl Job {
    pub fn new(id: u64, created_at_micros: i64, req: &SendRequest, attempts: u32) -> Job {
        Job {
            id,
            created_at_micros,
            recipient: req.recipient.clone(),
            phone_number_id: req.phone_number_id.clone(),
            message: req.message.clone(),
            attempts,
            not_before: 0,
        }
    }
}

/// What the sender task receives.
pub enum Msg {
    Job(Job),
    Resume,
}
