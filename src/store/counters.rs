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
    "items_skipped",
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
    /// Deliveries per UTC day of their receive time: (accepted, rejected).
    days: crate::store::DayCounts,
    dirty_days: std::collections::BTreeSet<u32>,
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
            days: store.day_counts()?,
            dirty_days: Default::default(),
        })
    }

    pub fn add(&mut self, name: &'static str, n: u64) {
        *self.values.entry(name).or_default() += n;
        self.dirty = true;
    }

    /// One entry moved from the state counted by `from` (none: it is new) to the one
    /// counted by `to` (per-state gauges such as `media_stored`).
    pub fn moved(&mut self, from: Option<&'static str>, to: &'static str) {
        if from == Some(to) {
            return;
        }
        if let Some(from) = from {
            let v = self.values.entry(from).or_default();
            *v = v.saturating_sub(1);
        }
        self.add(to, 1);
    }

    /// Counts a delivery in its receive day (the dashboard's "today").
    pub fn add_day(&mut self, received_at_micros: i64, accepted: bool) {
        let day = (received_at_micros.max(0) / 86_400_000_000) as u32;
        let e = self.days.entry(day).or_default();
        if accepted {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        self.dirty_days.insert(day);
    }

    pub fn write(&mut self, changes: &mut Changes) {
        for day in std::mem::take(&mut self.dirty_days) {
            let (a, r) = self.days.get(&day).copied().unwrap_or_default();
            changes.set_day_count(day, true, a);
            changes.set_day_count(day, false, r);
        }
        if self.dirty {
            for (name, value) in &self.values {
                changes.set_counter(name, *value);
            }
            self.dirty = false;
        }
    }
}
