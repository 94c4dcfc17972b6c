//! The applier's side of forwarding: queues each delivery's new items for every
//! target that claims them (atomically with the items' dedup keys, since both go
//! into the same commit), records the unrouted ones, and applies `ForwardUpdate`
//! records. Like `media::apply::Pending`, what a step touches is kept here, written
//! once with the step's commit, and the targets' workers are woken once it is
//! committed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::Notify;

use super::record::{DeadLetter, Disabled, ForwardUpdate, QueueEntry, TargetState, Unrouted};
use crate::config::ForwardTarget;
use crate::events::identity::Fresh;
use crate::journal::Record;
use crate::store::{Changes, Store, StoreError};

type QKey = (String, u64, u64);

#[derive(Default)]
struct Layer {
    /// `None`: removed in this step.
    queue: HashMap<QKey, Option<QueueEntry>>,
    states: HashMap<String, TargetState>,
    dead: HashMap<(String, u64), DeadLetter>,
    unrouted: Vec<Unrouted>,
    touched: HashSet<String>,
}

#[derive(Default)]
pub struct Pending {
    targets: Arc<Vec<ForwardTarget>>,
    notify: HashMap<String, Arc<Notify>>,
    current: Layer,
    committing: Layer,
}

impl Pending {
    /// `notify` wakes each target's worker (by target id).
    pub fn new(targets: Arc<Vec<ForwardTarget>>, notify: HashMap<String, Arc<Notify>>) -> Pending {
        Pending {
            targets,
            notify,
            ..Default::default()
        }
    }

    /// A delivery was applied: queue its new items for each target that wants them.
    /// Returns how many items no target claims.
    pub fn enqueue(
        &mut self,
        store: &Store,
        delivery: u64,
        received_at_micros: i64,
        fresh: &[Fresh],
    ) -> Result<u64, StoreError> {
        if self.targets.is_empty() || fresh.is_empty() {
            return Ok(0);
        }
        let mut unrouted = 0;
        let targets = self.targets.clone();
        for f in fresh {
            if !targets
                .iter()
                .any(|t| t.claims(f.phone_number_id.as_deref()))
            {
                unrouted += 1;
                self.current.unrouted.push(Unrouted {
                    delivery,
                    item: f.index,
                    phone_number_id: f.phone_number_id.clone(),
                    field: f.field.clone(),
                    received_at_micros,
                });
            }
        }
        for t in targets.iter() {
            let items: Vec<u32> = fresh
                .iter()
                .filter(|f| t.claims(f.phone_number_id.as_deref()) && t.wants_field(&f.field))
                .map(|f| f.index)
                .collect();
            if items.is_empty() {
                continue;
            }
            self.put(
                store,
                QueueEntry {
                    target: t.id.clone(),
                    order: delivery,
                    delivery,
                    items,
                    enqueued_at_micros: received_at_micros,
                    replay: false,
                },
            )?;
        }
        Ok(unrouted)
    }

    fn put(&mut self, store: &Store, e: QueueEntry) -> Result<(), StoreError> {
        let key = (e.target.clone(), e.order, e.delivery);
        if self.entry(store, &key)?.is_none() {
            self.state(store, &e.target)?.queued += 1;
        }
        self.current.touched.insert(e.target.clone());
        self.current.queue.insert(key, Some(e));
        Ok(())
    }

    /// Removes a queued entry; the entry, if it was there.
    fn take(&mut self, store: &Store, key: QKey) -> Result<Option<QueueEntry>, StoreError> {
        let Some(e) = self.entry(store, &key)? else {
            return Ok(None);
        };
        let s = self.state(store, &key.0)?;
        s.queued = s.queued.saturating_sub(1);
        self.current.queue.insert(key, None);
        Ok(Some(e))
    }

    pub fn apply(&mut self, store: &Store, record: &Record) -> Result<(), StoreError> {
        let update: ForwardUpdate = match serde_json::from_slice(&record.payload) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(seq = record.seq, error = %e, "forward record could not be decoded");
                return Ok(());
            }
        };
        let at = record.unix_micros;
        match update {
            ForwardUpdate::Delivered {
                target,
                order,
                delivery,
                ..
            } => {
                if self
                    .take(store, (target.clone(), order, delivery))?
                    .is_some()
                {
                    let s = self.state(store, &target)?;
                    s.delivered += 1;
                    s.last_success_micros = Some(at);
                }
            }
            ForwardUpdate::DeadLettered {
                target,
                order,
                delivery,
                attempts,
                error,
            } => {
                if let Some(e) = self.take(store, (target.clone(), order, delivery))? {
                    self.state(store, &target)?.dead_lettered += 1;
                    let d = DeadLetter {
                        id: record.seq,
                        target: target.clone(),
                        delivery,
                        items: e.items,
                        enqueued_at_micros: e.enqueued_at_micros,
                        dead_at_micros: at,
                        attempts,
                        error,
                        replayed_at_micros: None,
                    };
                    self.current.dead.insert((target, record.seq), d);
                }
            }
            ForwardUpdate::Disabled { target, reason } => {
                self.state(store, &target)?.disabled = Some(Disabled {
                    reason,
                    at_micros: at,
                });
                self.current.touched.insert(target);
            }
            ForwardUpdate::Enabled { target } => {
                self.state(store, &target)?.disabled = None;
                self.current.touched.insert(target);
            }
            ForwardUpdate::Replay {
                target,
                entries,
                dead_letter,
            } => {
                for r in entries {
                    self.put(
                        store,
                        QueueEntry {
                            target: target.clone(),
                            order: record.seq,
                            delivery: r.delivery,
                            items: r.items,
                            enqueued_at_micros: at,
                            replay: true,
                        },
                    )?;
                }
                if let Some(id) = dead_letter {
                    if let Some(mut d) = self.dead_letter(store, &target, id)? {
                        d.replayed_at_micros = Some(at);
                        self.current.dead.insert((target, id), d);
                    }
                }
            }
        }
        Ok(())
    }

    fn entry(&self, store: &Store, key: &QKey) -> Result<Option<QueueEntry>, StoreError> {
        for layer in [&self.current, &self.committing] {
            if let Some(e) = layer.queue.get(key) {
                return Ok(e.clone());
            }
        }
        store.forward_entry(&key.0, key.1, key.2)
    }

    fn dead_letter(
        &self,
        store: &Store,
        target: &str,
        id: u64,
    ) -> Result<Option<DeadLetter>, StoreError> {
        let key = (target.to_string(), id);
        for layer in [&self.current, &self.committing] {
            if let Some(d) = layer.dead.get(&key) {
                return Ok(Some(d.clone()));
            }
        }
        store.dead_letter(target, id)
    }

    fn state(&mut self, store: &Store, target: &str) -> Result<&mut TargetState, StoreError> {
        if !self.current.states.contains_key(target) {
            let known = match self.committing.states.get(target) {
                Some(s) => Some(s.clone()),
                None => store.forward_target(target)?,
            };
            let s = known.unwrap_or_else(|| TargetState {
                target: target.to_string(),
                ..Default::default()
            });
            self.current.states.insert(target.to_string(), s);
        }
        Ok(self.current.states.get_mut(target).expect("inserted"))
    }

    pub fn write(&self, changes: &mut Changes) {
        let l = &self.current;
        for ((target, order, delivery), e) in &l.queue {
            match e {
                Some(e) => changes.put_forward_entry(e),
                None => changes.del_forward_entry(target, *order, *delivery),
            }
        }
        for s in l.states.values() {
            changes.put_forward_target(s);
        }
        for d in l.dead.values() {
            changes.put_dead_letter(d);
        }
        for u in &l.unrouted {
            changes.put_unrouted(u);
        }
    }

    /// The step's writes go to be committed; a new step starts.
    pub fn hand_off(&mut self) {
        self.committing = std::mem::take(&mut self.current);
    }

    /// The step handed off is in sled now: wake the workers of the targets it touched.
    pub fn committed(&mut self) {
        for t in std::mem::take(&mut self.committing).touched {
            if let Some(n) = self.notify.get(&t) {
                n.notify_one();
            }
        }
    }

    pub fn clear(&mut self) {
        self.current = Layer::default();
        self.committing = Layer::default();
    }
}
