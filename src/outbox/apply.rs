//! The applier's side of the outbox: turns `SendRequest`/`SendUpdate` records into
//! entries in the store. Entries touched in one step are kept here and written once
//! at the end of the step (reads inside a step do not see uncommitted writes).
//! Re-applying a record changes nothing (see `OutboxEntry::apply`).

use std::collections::HashMap;

use super::record::{OutboxEntry, Pause, SendRequest, SendUpdate, State};
use crate::journal::{Kind, Record};
use crate::store::Counters;
use crate::store::{Changes, Store, StoreError};

#[derive(Default)]
pub struct Pending {
    entries: HashMap<u64, OutboxEntry>,
    /// State of each entry in `entries` before this step (none: created by it), so
    /// the per-state counts move with the step.
    before: HashMap<u64, Option<State>>,
    /// `Some(new pause state)` when the step changed it.
    pause: Option<Option<Pause>>,
    /// Entries of the step being committed while the next one is prepared.
    committing: HashMap<u64, OutboxEntry>,
}

impl Pending {
    pub fn apply(&mut self, store: &Store, kind: Kind, record: &Record) -> Result<(), StoreError> {
        match kind {
            Kind::SendRequest => {
                let Some(req) = decode::<SendRequest>(record) else {
                    return Ok(());
                };
                if self.entry(store, record.seq)?.is_none() {
                    let e = OutboxEntry::new(record.seq, record.unix_micros, req);
                    self.entries.insert(record.seq, e);
                    self.before.insert(record.seq, None);
                }
            }
            Kind::SendUpdate => {
                let Some(update) = decode::<SendUpdate>(record) else {
                    return Ok(());
                };
                match &update {
                    SendUpdate::Started { id, .. }
                    | SendUpdate::Ended { id, .. }
                    | SendUpdate::Settled { id, .. } => {
                        if let Some(e) = self.entry(store, *id)? {
                            e.apply(&update, record.unix_micros);
                        }
                    }
                    SendUpdate::Paused {
                        reason,
                        token_fingerprint,
                    } => {
                        self.pause = Some(Some(Pause {
                            reason: reason.clone(),
                            since_micros: record.unix_micros,
                            token_fingerprint: token_fingerprint.clone(),
                        }))
                    }
                    SendUpdate::Resumed { .. } => self.pause = Some(None),
                }
            }
            Kind::Delivery | Kind::MediaUpdate | Kind::ForwardUpdate => {}
        }
        Ok(())
    }

    fn entry(&mut self, store: &Store, id: u64) -> Result<Option<&mut OutboxEntry>, StoreError> {
        use std::collections::hash_map::Entry;
        match self.entries.entry(id) {
            Entry::Occupied(e) => Ok(Some(e.into_mut())),
            Entry::Vacant(v) => {
                let known = match self.committing.get(&id) {
                    Some(e) => Some(e.clone()),
                    None => store.outbox_entry(id)?,
                };
                if let Some(e) = &known {
                    self.before.insert(id, Some(e.state));
                }
                Ok(known.map(|e| v.insert(e)))
            }
        }
    }

    pub fn write(&mut self, changes: &mut Changes, counters: &mut Counters) {
        for e in self.entries.values() {
            changes.put_outbox(e);
            let before = self.before.get(&e.id).copied().flatten();
            counters.moved(before.map(State::counter), e.state.counter());
        }
        self.before.clear();
        if let Some(p) = &self.pause {
            changes.set_outbox_pause(p.as_ref());
        }
    }

    /// The step's writes go to be committed; a new step starts.
    pub fn hand_off(&mut self) {
        self.committing = std::mem::take(&mut self.entries);
        self.pause = None;
    }

    /// The step handed off is in sled now.
    pub fn committed(&mut self) {
        self.committing.clear();
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.before.clear();
        self.committing.clear();
        self.pause = None;
    }
}

fn decode<T: serde::de::DeserializeOwned>(record: &Record) -> Option<T> {
    match serde_json::from_slice(&record.payload) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(seq = record.seq, error = %e, "outbox record could not be decoded");
            None
        }
    }
}
