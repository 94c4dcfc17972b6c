//! Reads for the dashboard: per-day delivery counts, the newest delivery, a
//! delivery id by time, failed statuses, media and a contact's outbound messages
//! newest first. Every listing is a bounded range scan of an ordered index.

use std::collections::BTreeMap;

use super::model::{decode, prefixed};
use super::{be, from_be, Changes, DeliveryMeta, Store, StoreError, StoredStatus, T};
use crate::store::media::MediaEntry;
use crate::store::outbox::OutboxEntry;

/// A page of a listing, and where the next one starts.
#[derive(Debug)]
pub struct Scan<V> {
    pub items: Vec<V>,
    /// Pass back as `before` for the next page.
    pub next_before: Option<String>,
    /// The scan stopped at its budget before filling the page (search).
    pub budget_spent: bool,
}

impl<V> Default for Scan<V> {
    fn default() -> Self {
        Scan {
            items: Vec::new(),
            next_before: None,
            budget_spent: false,
        }
    }
}

/// Deliveries per UTC day (days since the Unix epoch): (accepted, rejected).
pub type DayCounts = BTreeMap<u32, (u64, u64)>;

const DAY_PREFIX: &[u8] = b"day/";

fn day_key(day: u32, accepted: bool) -> Vec<u8> {
    let mut k = DAY_PREFIX.to_vec();
    k.extend_from_slice(&day.to_be_bytes());
    k.push(if accepted { b'a' } else { b'r' });
    k
}

fn meta(v: &[u8]) -> Result<DeliveryMeta, StoreError> {
    decode(v)
}

impl Changes {
    pub fn set_day_count(&mut self, day: u32, accepted: bool, value: u64) {
        self.put(T::Meta, day_key(day, accepted), be(value));
    }
}

impl Store {
    /// Every day's delivery counts (one small key per day and verdict).
    pub fn day_counts(&self) -> Result<DayCounts, StoreError> {
        let mut out = DayCounts::new();
        for kv in self.tree(T::Meta).scan_prefix(DAY_PREFIX) {
            let (k, v) = kv?;
            let rest = &k[DAY_PREFIX.len()..];
            let (Some(day), Some(n)) = (
                rest.get(..4)
                    .and_then(|d| d.try_into().ok())
                    .map(u32::from_be_bytes),
                from_be(&v),
            ) else {
                continue;
            };
            let e = out.entry(day).or_default();
            match rest.get(4) {
                Some(b'a') => e.0 = n,
                _ => e.1 = n,
            }
        }
        Ok(out)
    }

    /// The newest delivery, accepted or rejected.
    pub fn last_delivery(&self) -> Result<Option<DeliveryMeta>, StoreError> {
        let mut newest: Option<DeliveryMeta> = None;
        for t in [T::DeliveriesAccepted, T::DeliveriesRejected] {
            if let Some((_, v)) = self.tree(t).last()? {
                let m = meta(&v)?;
                if newest.as_ref().is_none_or(|n| m.id > n.id) {
                    newest = Some(m);
                }
            }
        }
        Ok(newest)
    }

    /// The smallest delivery id received at or after `micros` (ids follow receive
    /// order), by binary search in each verdict's tree: a `before` cursor that lists
    /// what came earlier. `None`: nothing that recent.
    pub fn delivery_id_at(&self, micros: i64) -> Result<Option<u64>, StoreError> {
        let mut found: Option<u64> = None;
        for t in [T::DeliveriesAccepted, T::DeliveriesRejected] {
            let tree = self.tree(t);
            let (Some((first, _)), Some((last, _))) = (tree.first()?, tree.last()?) else {
                continue;
            };
            let (mut lo, mut hi) = (from_be(&first).unwrap_or(0), from_be(&last).unwrap_or(0));
            // recent(id): the first delivery at or after `id` is that recent. It is
            // monotonic in `id`; find the smallest id where it holds.
            let recent = |id: u64| -> Result<Option<u64>, StoreError> {
                match tree.range(be(id)..).next() {
                    Some(kv) => {
                        let m = meta(&kv?.1)?;
                        Ok((m.received_at_micros >= micros).then_some(m.id))
                    }
                    None => Ok(None),
                }
            };
            if recent(hi)?.is_none() {
                continue;
            }
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if recent(mid)?.is_some() {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            let Some(hi) = recent(lo)? else { continue };
            found = Some(found.map_or(hi, |f| f.min(hi)));
        }
        Ok(found)
    }

    /// Failed statuses, newest first, below the cursor `"<ts>_<wamid>"`.
    pub fn failed_statuses(
        &self,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Scan<StoredStatus>, StoreError> {
        let hi = before
            .map(super::model::decode_cursor)
            .unwrap_or_else(|| vec![0xff; 9]);
        let mut scan = Scan::default();
        let mut last = None;
        for kv in self.tree(T::StatusesFailed).range(..hi).rev() {
            let (k, _) = kv?;
            let Some(ts) = from_be(&k) else { continue };
            let id = String::from_utf8_lossy(&k[8..]).into_owned();
            // The timeline holds the full status (errors included).
            let timeline = self.statuses(&id)?;
            if let Some(s) = timeline
                .into_iter()
                .find(|s| s.status.status == "failed" && s.status.timestamp.max(0) as u64 == ts)
            {
                scan.items.push(s);
                last = Some(k.to_vec());
            }
            if scan.items.len() == limit {
                break;
            }
        }
        scan.next_before = (scan.items.len() == limit)
            .then(|| last.map(|k| super::model::encode_cursor(&k)))
            .flatten();
        Ok(scan)
    }

    /// Media entries, newest first, created before `before_micros`.
    pub fn media_newest(
        &self,
        before_micros: Option<i64>,
        limit: usize,
    ) -> Result<Scan<MediaEntry>, StoreError> {
        let hi = be(before_micros.unwrap_or(i64::MAX).max(0) as u64);
        let mut scan = Scan::default();
        for kv in self.tree(T::MediaByTime).range(..hi.to_vec()).rev() {
            let (k, _) = kv?;
            if let Some(v) = self.tree(T::Media).get(&k[8..])? {
                scan.items.push(decode::<MediaEntry>(&v)?);
            }
            if scan.items.len() == limit {
                scan.next_before = from_be(&k).map(|t| t.to_string());
                break;
            }
        }
        Ok(scan)
    }

    /// How many media jobs are in each state, over at most `budget` entries
    /// (newest first). Returns the counts and whether the budget ran out.
    pub fn media_state_counts(
        &self,
        budget: usize,
    ) -> Result<(BTreeMap<&'static str, u64>, bool), StoreError> {
        let mut counts = BTreeMap::new();
        for (i, kv) in self.tree(T::MediaByTime).iter().rev().enumerate() {
            if i == budget {
                return Ok((counts, true));
            }
            let (k, _) = kv?;
            if let Some(v) = self.tree(T::Media).get(&k[8..])? {
                let e: MediaEntry = decode(&v)?;
                *counts.entry(e.state.as_str()).or_default() += 1;
            }
        }
        Ok((counts, false))
    }

    /// A recipient's outbound messages (sent through wagate), newest first, local
    /// ids below `before`.
    pub fn outbox_for(
        &self,
        recipient: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let prefix = prefixed(recipient, b"");
        let hi = prefixed(recipient, &be(before.unwrap_or(u64::MAX)));
        let mut out = Vec::new();
        for kv in self
            .tree(T::OutboxByRecipient)
            .range(prefix.clone()..hi)
            .rev()
        {
            let (k, _) = kv?;
            if let Some(e) = from_be(&k[prefix.len()..])
                .map(|id| self.outbox_entry(id))
                .transpose()?
                .flatten()
            {
                out.push(e);
            }
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }
}
