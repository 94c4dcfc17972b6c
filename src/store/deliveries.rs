//! The index of deliveries: metadata by sequence id, by verdict, and which
//! quarantine segment holds each rejected one.

use serde::{Deserialize, Serialize};

use super::{be, from_be, Changes, Store, StoreError, T};
use crate::delivery::Verdict;
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
    /// Why processing could not read it, when it could not.
    #[serde(default)]
    pub parse_error: Option<String>,
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

fn verdict_key(accepted: bool, id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = if accepted { 0 } else { 1 };
    k[1..].copy_from_slice(&be(id));
    k
}

impl Changes {
    pub fn put_delivery(&mut self, meta: &DeliveryMeta) {
        self.put(
            T::Deliveries,
            be(meta.id),
            serde_json::to_vec(meta).expect("serialisable"),
        );
        self.put(
            T::DeliveriesByVerdict,
            verdict_key(meta.verdict.is_accepted(), meta.id),
            [],
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
        match self.tree(T::Deliveries).get(be(id))? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Decode(e.to_string())),
            None => Ok(None),
        }
    }

    /// Newest first, `limit` at most, ids below `before`. Walks an index, never the
    /// whole table.
    pub fn deliveries(
        &self,
        verdict: Option<VerdictFilter>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<DeliveryPage, StoreError> {
        let before = before.unwrap_or(u64::MAX);
        let ids: Vec<u64> = match verdict {
            None => self
                .tree(T::Deliveries)
                .range(..be(before))
                .rev()
                .take(limit)
                .map(|kv| kv.map(|(k, _)| from_be(&k).unwrap_or(0)))
                .collect::<Result<_, _>>()?,
            Some(v) => {
                let accepted = v == VerdictFilter::Accepted;
                let lo = verdict_key(accepted, 0);
                let hi = verdict_key(accepted, before);
                self.tree(T::DeliveriesByVerdict)
                    .range(lo..hi)
                    .rev()
                    .take(limit)
                    .map(|kv| kv.map(|(k, _)| from_be(&k[1..]).unwrap_or(0)))
                    .collect::<Result<_, _>>()?
            }
        };
        let mut items = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(meta) = self.delivery(*id)? {
                items.push(meta);
            }
        }
        let next_before = (ids.len() == limit).then(|| ids.last().copied()).flatten();
        Ok(DeliveryPage { items, next_before })
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
            changes.del(T::Deliveries, be(id));
            changes.del(T::DeliveriesByVerdict, verdict_key(false, id));
            n += 1;
            if n % 4096 == 0 {
                self.commit(std::mem::take(&mut changes))?;
            }
        }
        self.commit(changes)?;
        Ok(n)
    }
}
