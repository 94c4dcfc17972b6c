//! The index of deliveries: metadata by sequence id, by verdict, and which
//! quarantine segment holds each rejected one.

use serde::{Deserialize, Serialize};

use super::{be, from_be, Changes, Store, StoreError, T};
use crate::journal::delivery::Verdict;
use crate::journal::{RecordPos, Stream};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeliveryMeta {
    pub id: u64,
    /// Unix time in microseconds.
    pub received_at_micros: i64,
    pub verdict: Verdict,
    pub reason: String,
    /// Bytes received (a too-large body keeps only its start).
    pub size: u64,
    pub stored_size: u64,
    pub peer: Option<String>,
    pub secret_index: Option<u8>,
    pub stream: Stream,
    pub pos: RecordPos,
    /// Items found by processing (accepted deliveries).
    #[serde(default)]
    pub items: Option<u32>,
    /// Items past `WAGATE_MAX_ITEMS`, not applied (they stay in the raw delivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_skipped: Option<u32>,
    /// Why processing could not read it, when it could not.
    #[serde(default)]
    pub parse_error: Option<String>,
    /// A rejected delivery that re-verification accepted: the accepted copy's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverified_as: Option<u64>,
    /// An accepted copy made by re-verification: the rejected original's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverified_from: Option<u64>,
}

impl DeliveryMeta {
    /// The items processing applied: the first ones, up to `WAGATE_MAX_ITEMS` (what
    /// forwarding and reads may take from the raw body; none past them).
    pub fn items_applied(&self) -> usize {
        self.items
            .unwrap_or(0)
            .saturating_sub(self.items_skipped.unwrap_or(0)) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictFilter {
    Accepted,
    Rejected,
}

pub struct DeliveryPage {
    pub items: Vec<DeliveryMeta>,
    /// Pass as `before` for the next page.
    pub next_before: Option<u64>,
}

fn tree_for(accepted: bool) -> T {
    if accepted {
        T::DeliveriesAccepted
    } else {
        T::DeliveriesRejected
    }
}

fn decode_meta(v: &[u8]) -> Result<DeliveryMeta, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Decode(e.to_string()))
}

impl Changes {
    /// One key per delivery: accepted and rejected live in their own trees, so
    /// listing by verdict walks one tree and listing all merges two.
    pub fn put_delivery(&mut self, meta: &DeliveryMeta) {
        self.put(
            tree_for(meta.verdict.is_accepted()),
            be(meta.id),
            serde_json::to_vec(meta).expect("serialisable"),
        );
        if meta.stream == Stream::Quarantine {
            let mut k = be(meta.pos.segment).to_vec();
            k.extend_from_slice(&be(meta.id));
            self.put(T::QuarantineIndex, k, []);
        }
    }
}

impl Store {
    pub fn delivery(&self, id: u64) -> Result<Option<DeliveryMeta>, StoreError> {
        for t in [T::DeliveriesAccepted, T::DeliveriesRejected] {
            if let Some(v) = self.tree(t).get(be(id))? {
                return decode_meta(&v).map(Some);
            }
        }
        Ok(None)
    }

    /// Newest first, `limit` at most, ids below `before`. Walks the verdict's tree
    /// (or merges both), never more than `limit` entries of each.
    pub fn deliveries(
        &self,
        verdict: Option<VerdictFilter>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<DeliveryPage, StoreError> {
        let before = be(before.unwrap_or(u64::MAX));
        let page = |t: T| -> Result<Vec<DeliveryMeta>, StoreError> {
            self.tree(t)
                .range(..before)
                .rev()
                .take(limit)
                .map(|kv| decode_meta(&kv?.1))
                .collect()
        };
        let items: Vec<DeliveryMeta> = match verdict {
            Some(VerdictFilter::Accepted) => page(T::DeliveriesAccepted)?,
            Some(VerdictFilter::Rejected) => page(T::DeliveriesRejected)?,
            None => {
                let mut all = page(T::DeliveriesAccepted)?;
                all.extend(page(T::DeliveriesRejected)?);
                all.sort_unstable_by_key(|m| std::cmp::Reverse(m.id));
                all.truncate(limit);
                all
            }
        };
        let next_before = (items.len() == limit)
            .then(|| items.last().map(|m| m.id))
            .flatten();
        Ok(DeliveryPage { items, next_before })
    }

    /// Forgets accepted deliveries with ids in `from..to` (their journal segment is
    /// being deleted by retention), `budget` at most. Returns how many.
    pub fn forget_accepted(&self, from: u64, to: u64, budget: usize) -> Result<u64, StoreError> {
        let mut changes = Changes::new();
        let mut n = 0;
        for kv in self
            .tree(T::DeliveriesAccepted)
            .range(be(from)..be(to))
            .take(budget)
        {
            changes.del(T::DeliveriesAccepted, kv?.0);
            n += 1;
        }
        self.commit(changes)?;
        Ok(n)
    }

    /// Forgets rejected deliveries whose quarantine segment (id < `oldest_segment`)
    /// was dropped to stay within budget. Returns how many were forgotten.
    pub fn forget_dropped_quarantine(&self, oldest_segment: u64) -> Result<u64, StoreError> {
        let mut changes = Changes::new();
        let mut n = 0;
        for kv in self
            .tree(T::QuarantineIndex)
            .range(..be(oldest_segment).to_vec())
        {
            let (k, _) = kv?;
            let Some(id) = from_be(&k[8..]) else { continue };
            changes.del(T::QuarantineIndex, &k);
            changes.del(T::DeliveriesRejected, be(id));
            n += 1;
            if n % 4096 == 0 {
                self.commit(std::mem::take(&mut changes))?;
            }
        }
        self.commit(changes)?;
        Ok(n)
    }
}
