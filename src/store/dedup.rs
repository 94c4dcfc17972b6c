//! Per-item dedup reads: a stored message is its own dedup key; every other item
//! has a key in the dedup tree (first seen, micros BE), expired by a rolling scan.

use super::{be, Changes, Store, StoreError, T};

/// Where a recorded dedup key came from, for [`Store::recent_item_keys`].
pub enum RecordedKey<'a> {
    /// A key of the dedup tree, first seen at the given unix seconds.
    Item(&'a [u8]),
    /// A stored message's id, with the message's timestamp.
    Message(&'a [u8]),
}

impl Store {
    pub fn message_exists(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.tree(T::Messages).contains_key(id)?)
    }

    pub fn item_seen(&self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.tree(T::Dedup).contains_key(key)?)
    }

    /// Forgets dedup keys first seen before `before_micros`, looking at no more than
    /// `budget` keys after `from` (a rolling scan, so expiry never stalls the
    /// applier). Returns how many were forgotten and where to continue (`None`: the
    /// scan reached the end and starts over).
    pub fn expire_items(
        &self,
        before_micros: i64,
        from: Option<&[u8]>,
        budget: usize,
    ) -> Result<(u64, Option<Vec<u8>>), StoreError> {
        let mut changes = Changes::new();
        let mut n = 0;
        let mut last = None;
        let range = self.keys_after(T::Dedup, from);
        for (i, kv) in range.enumerate() {
            let (k, v) = kv?;
            if super::from_be(&v).is_some_and(|seen| (seen as i64) < before_micros) {
                changes.del(T::Dedup, &k);
                n += 1;
            }
            if i + 1 == budget {
                last = Some(k.to_vec());
                break;
            }
        }
        self.commit(changes)?;
        Ok((n, last))
    }

    /// Calls `found` with every dedup key recorded at or after `since_secs`: the
    /// dedup tree's keys (by first-seen time) and the stored messages (by their
    /// timestamp). Blocking; for building the applier's filter at start.
    pub fn recent_item_keys(
        &self,
        since_secs: i64,
        mut found: impl FnMut(RecordedKey, i64),
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        for kv in self.tree(T::Dedup).iter() {
            let (k, v) = kv?;
            let secs = super::from_be(&v).map_or(0, |m| m as i64 / 1_000_000);
            if secs >= since_secs {
                found(RecordedKey::Item(&k), secs);
                n += 1;
            }
        }
        for kv in self
            .tree(T::MessagesByTime)
            .range(be(since_secs.max(0) as u64)..)
        {
            let (suffix, _) = kv?;
            let secs = super::from_be(&suffix).unwrap_or(0) as i64;
            found(RecordedKey::Message(&suffix[8.min(suffix.len())..]), secs);
            n += 1;
        }
        Ok(n)
    }
}
