//! Forwarding: the per-target queues, target states, dead letters and the
//! unrouted list. Queue and dead-letter keys are `target \0 u64 BE ...` so each
//! target's entries are one ordered range.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{be, from_be, Changes, DeliveryMeta, Store, StoreError, T};

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

fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<V, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

fn prefix(target: &str) -> Vec<u8> {
    let mut k = target.as_bytes().to_vec();
    k.push(0);
    k
}

pub fn queue_key(target: &str, order: u64, delivery: u64) -> Vec<u8> {
    let mut k = prefix(target);
    k.extend(be(order));
    k.extend(be(delivery));
    k
}

fn dead_key(target: &str, id: u64) -> Vec<u8> {
    let mut k = prefix(target);
    k.extend(be(id));
    k
}

fn unrouted_key(delivery: u64, item: u32) -> Vec<u8> {
    let mut k = be(delivery).to_vec();
    k.extend(item.to_be_bytes());
    k
}

fn json<V: serde::Serialize>(v: &V) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialisable")
}

impl Changes {
    pub fn put_forward_entry(&mut self, e: &QueueEntry) {
        self.put(
            T::ForwardQueue,
            queue_key(&e.target, e.order, e.delivery),
            json(e),
        );
    }
    pub fn del_forward_entry(&mut self, target: &str, order: u64, delivery: u64) {
        self.del(T::ForwardQueue, queue_key(target, order, delivery));
    }
    pub fn put_forward_target(&mut self, s: &TargetState) {
        self.put(T::ForwardTargets, s.target.as_bytes(), json(s));
    }
    pub fn put_dead_letter(&mut self, d: &DeadLetter) {
        self.put(T::ForwardDead, dead_key(&d.target, d.id), json(d));
    }
    pub fn put_unrouted(&mut self, u: &Unrouted) {
        self.put(
            T::ForwardUnrouted,
            unrouted_key(u.delivery, u.item),
            json(u),
        );
    }
}

impl Store {
    pub fn forward_entry(
        &self,
        target: &str,
        order: u64,
        delivery: u64,
    ) -> Result<Option<QueueEntry>, StoreError> {
        self.tree(T::ForwardQueue)
            .get(queue_key(target, order, delivery))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// The next `limit` entries of `target`'s queue after (`order`, `delivery`).
    pub fn forward_queue_after(
        &self,
        target: &str,
        after: Option<(u64, u64)>,
        limit: usize,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        let p = prefix(target);
        let start = match after {
            Some((o, d)) => std::ops::Bound::Excluded(queue_key(target, o, d)),
            None => std::ops::Bound::Included(p.clone()),
        };
        let mut out = Vec::new();
        for kv in self
            .tree(T::ForwardQueue)
            .range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded))
        {
            let (k, v) = kv?;
            if !k.starts_with(&p) || out.len() >= limit {
                break;
            }
            out.push(decode(&v)?);
        }
        Ok(out)
    }

    pub fn forward_target(&self, target: &str) -> Result<Option<TargetState>, StoreError> {
        self.tree(T::ForwardTargets)
            .get(target.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    pub fn dead_letter(&self, target: &str, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        self.tree(T::ForwardDead)
            .get(dead_key(target, id))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Dead letters of `target`, newest first (every target's without one: read
    /// whole, then sorted; dead letters are meant to be few).
    pub fn dead_letters(
        &self,
        target: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let tree = self.tree(T::ForwardDead);
        let mut out: Vec<DeadLetter> = Vec::new();
        match target {
            Some(t) => {
                for kv in tree.scan_prefix(prefix(t)).rev().take(limit) {
                    out.push(decode(&kv?.1)?);
                }
            }
            None => {
                for kv in tree.iter() {
                    out.push(decode(&kv?.1)?);
                }
                out.sort_by_key(|d| std::cmp::Reverse(d.id));
                out.truncate(limit);
            }
        }
        Ok(out)
    }

    /// Accepted deliveries received in [`from`, `to`] (micros), oldest first, at most
    /// `limit`. Sequence numbers follow receive times up to a little jitter, so the
    /// start is found by bisection (with a minute of slack) instead of a full scan.
    pub fn accepted_between(
        &self,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryMeta>, StoreError> {
        const SLACK: i64 = 60_000_000;
        let tree = self.tree(T::DeliveriesAccepted);
        let (Some(first), Some(last)) = (tree.first()?, tree.last()?) else {
            return Ok(Vec::new());
        };
        let seq = |k: &[u8]| from_be(k).unwrap_or(0);
        let (mut lo, mut hi) = (seq(&first.0), seq(&last.0).saturating_add(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match tree.range(be(mid)..).next().transpose()? {
                Some((k, v)) if decode::<DeliveryMeta>(&v)?.received_at_micros < from - SLACK => {
                    lo = seq(&k) + 1
                }
                _ => hi = mid,
            }
        }
        let mut out = Vec::new();
        for kv in tree.range(be(lo)..) {
            let meta: DeliveryMeta = decode(&kv?.1)?;
            if meta.received_at_micros > to.saturating_add(SLACK) || out.len() >= limit {
                break;
            }
            if (from..=to).contains(&meta.received_at_micros) {
                out.push(meta);
            }
        }
        Ok(out)
    }

    /// Forgets unrouted items of deliveries below `before` (their raw delivery is
    /// being deleted by retention), `budget` at most. Returns how many.
    pub fn forget_unrouted(&self, before: u64, budget: usize) -> Result<u64, StoreError> {
        let mut changes = Changes::new();
        let mut n = 0;
        let tree = self.tree(T::ForwardUnrouted);
        for kv in tree.range(..be(before).to_vec()).take(budget) {
            changes.del(T::ForwardUnrouted, kv?.0);
            n += 1;
        }
        self.commit(changes)?;
        Ok(n)
    }

    /// Unrouted items of deliveries below `before`, newest delivery first: about
    /// `limit` of them, the last delivery's all (so a page never splits one), and the
    /// `before` of the next page when there may be one.
    pub fn unrouted(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<Unrouted>, Option<u64>), StoreError> {
        let tree = self.tree(T::ForwardUnrouted);
        let iter = match before {
            Some(b) => tree.range(..be(b).to_vec()),
            None => tree.iter(),
        };
        let mut out: Vec<Unrouted> = Vec::new();
        for kv in iter.rev() {
            let u: Unrouted = decode(&kv?.1)?;
            if out.len() >= limit.max(1) && out.last().is_some_and(|l| l.delivery != u.delivery) {
                let next = out.last().map(|l| l.delivery);
                return Ok((out, next));
            }
            out.push(u);
        }
        Ok((out, None))
    }
}
