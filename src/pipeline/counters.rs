//! Running totals kept by the applier and committed with each step, so they stay
//! exact across crashes (they move together with the cursor).

use std::collections::BTreeMap;

use crate::store::{Changes, Store, StoreError};

/// Every counter the applier keeps.
pub const NAMES: &[&str] = &[
    "deliveries_accepted",
    "deliveries_rejected",
    "journal_undecodable",
    "items_new",
    "items_duplicate",
    "items_stale",
    "messages",
    "statuses",
    "events",
    "unparseable",
    "media_pending",
    "media_unscanned",
    "media_stored",
    "media_failed",
    "media_quarantined",
    "media_expired",
    "media_deleted",
    "sends_queued",
    "sends_sending",
    "sends_sent",
    "sends_failed",
    "sends_unknown",
    "forward_unrouted",
];

#[derive(Debug, Clone, Default)]
pub struct Counters {
    values: BTreeMap<&'static str, u64>,
    dirty: bool,
}

impl Counters {
    pub fn load(store: &Store) -> Result<Counters, StoreError> {
        let mut values = BTreeMap::new();
        for name in NAMES {
            values.insert(*name, store.counter(name)?);
        }
        Ok(Counters {
            values,
            dirty: false,
        })
    }

    pub fn add(&mut self, name: &'static str, n: u64) {
        *self.values.entry(name).or_default() += n;
        self.dirty = true;
    }

    /// For counts that go down (jobs leaving a state).
    pub fn sub(&mut self, name: &'static str, n: u64) {
        let v = self.values.entry(name).or_default();
        *v = v.saturating_sub(n);
        self.dirty = true;
    }

    pub fn write(&mut self, changes: &mut Changes) {
        if self.dirty {
            for (name, value) in &self.values {
                changes.set_counter(name, *value);
            }
            self.dirty = false;
        }
    }
}
