//! The applier's side of media: creates a job when a media message is applied and
//! applies `MediaUpdate` records. Entries touched in one step are kept here and
//! written once at the end of the step (mirrors `outbox::apply::Pending`). Jobs
//! created by a step are announced to the worker once that step is committed.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;

use super::record::{MediaEntry, MediaState, MediaUpdate};
use crate::journal::Record;
use crate::store::Counters;
use crate::store::{Changes, Store, StoreError};

#[derive(Default)]
pub struct Pending {
    entries: HashMap<String, MediaEntry>,
    /// Entries of the step being committed while the next one is prepared.
    committing: HashMap<String, MediaEntry>,
    /// State of each entry in `entries` before this step (none: created by it), so
    /// the per-state counts move with the step.
    before: HashMap<String, Option<MediaState>>,
    created: Vec<String>,
    created_committing: Vec<String>,
    notify: Option<mpsc::UnboundedSender<String>>,
    ttl_micros: i64,
}

impl Pending {
    pub fn new(ttl: Duration, notify: Option<mpsc::UnboundedSender<String>>) -> Pending {
        Pending {
            ttl_micros: ttl.as_micros().min(i64::MAX as u128) as i64,
            notify,
            ..Default::default()
        }
    }

    /// A media message was applied: its job, unless one exists for this media id.
    pub fn create(&mut self, store: &Store, entry: MediaEntry) -> Result<(), StoreError> {
        if self.entry(store, &entry.media_id)?.is_none() {
            self.created.push(entry.media_id.clone());
            self.before.insert(entry.media_id.clone(), None);
            self.entries.insert(entry.media_id.clone(), entry);
        }
        Ok(())
    }

    pub fn apply(&mut self, store: &Store, record: &Record) -> Result<(), StoreError> {
        let update: MediaUpdate = match serde_json::from_slice(&record.payload) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(seq = record.seq, error = %e, "media record could not be decoded");
                return Ok(());
            }
        };
        let ttl = self.ttl_micros;
        if let Some(e) = self.entry(store, update.media_id())? {
            e.apply(&update, record.unix_micros, ttl);
        }
        Ok(())
    }

    fn entry(&mut self, store: &Store, id: &str) -> Result<Option<&mut MediaEntry>, StoreError> {
        use std::collections::hash_map::Entry;
        match self.entries.entry(id.to_string()) {
            Entry::Occupied(e) => Ok(Some(e.into_mut())),
            Entry::Vacant(v) => {
                let known = match self.committing.get(id) {
                    Some(e) => Some(e.clone()),
                    None => store.media_entry(id)?,
                };
                if let Some(e) = &known {
                    self.before.insert(id.to_string(), Some(e.state));
                }
                Ok(known.map(|e| v.insert(e)))
            }
        }
    }

    pub fn write(&mut self, changes: &mut Changes, counters: &mut Counters) {
        for e in self.entries.values() {
            changes.put_media(e);
            let before = self.before.get(&e.media_id).copied().flatten();
            counters.moved(before.map(state_counter), state_counter(e.state));
        }
        self.before.clear();
    }

    /// The step's writes go to be committed; a new step starts.
    pub fn hand_off(&mut self) {
        self.committing = std::mem::take(&mut self.entries);
        self.created_committing = std::mem::take(&mut self.created);
    }

    /// The step handed off is in sled now: tell the worker about its new jobs.
    pub fn committed(&mut self) {
        self.committing.clear();
        if let Some(tx) = &self.notify {
            for id in self.created_committing.drain(..) {
                let _ = tx.send(id);
            }
        }
        self.created_committing.clear();
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.before.clear();
        self.committing.clear();
        self.created.clear();
        self.created_committing.clear();
    }
}

/// The applier's counter of media jobs in `state` (a gauge in `/metrics`).
pub fn state_counter(state: MediaState) -> &'static str {
    match state {
        MediaState::Pending => "media_pending",
        MediaState::Unscanned => "media_unscanned",
        MediaState::Stored => "media_stored",
        MediaState::Failed => "media_failed",
        MediaState::Quarantined => "media_quarantined",
        MediaState::Expired => "media_expired",
        MediaState::Deleted => "media_deleted",
    }
}
