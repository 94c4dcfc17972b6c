//! Per-item dedup reads: a stored message is its own dedup key; every other item
//! has a key in the dedup tree (first seen, micros BE), expired by a rolling scan
//! (`expire_rolling`, which the status timeline's expiry uses too).

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
        self.expire_rolling(T::Dedup, from, budget, |_, v, _| {
            super::from_be(v).is_some_and(|seen| (seen as i64) < before_micros)
        })
    }

    /// One step of a rolling expiry scan of tree `t`: looks at no more than `budget`
    /// keys after `from` and deletes each one `expired` says is (`expired` adds what
    /// goes with it, such as index entries, to the changes). Returns how many were
    /// deleted and where to continue (`None`: the end was reached; start over).
    pub(super) fn expire_rolling(
        &self,
        t: T,
        from: Option<&[u8]>,
        budget: usize,
        mut expired: impl FnMut(&[u8], &[u8], &mut Changes) -> bool,
    ) -> Result<(u64, Option<Vec<u8>>), StoreError> {
        let mut changes = Changes::new();
        let mut n = 0;
        let mut last = None;
        for (i, kv) in self.keys_after(t, from).enumerate() {
            let (k, v) = kv?;
            if expired(&k, &v, &mut changes) {
                changes.del(t, &k);
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
    /// dedup tree's keys (by first-seen time, in key order), then the stored
    /// messages (by their timestamp, newest first) until `found` answers `false`.
    /// Blocking; for building the applier's filter at start.
    pub fn recent_item_keys(
        &self,
        since_secs: i64,
        mut found: impl FnMut(RecordedKey, i64) -> bool,
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
            .rev()
        {
            let (suffix, _) = kv?;
            let secs = super::from_be(&suffix).unwrap_or(0) as i64;
            n += 1;
            if !found(RecordedKey::Message(&suffix[8.min(suffix.len())..]), secs) {
                break;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_expiry_keeps_to_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut c = Changes::new();
        // Keys a..e, first seen at 10, 20, ... 50; everything before 35 expires.
        for (i, k) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            c.remember_item(k.as_bytes(), (i as i64 + 1) * 10);
        }
        store.commit(c).unwrap();
        // (from, forgotten, continue after)
        let steps = [
            (None, 2, Some("b")),
            (Some("b"), 1, Some("d")),
            (Some("d"), 0, None),
        ];
        for (from, n, next) in steps {
            let (got, last) = store.expire_items(35, from.map(str::as_bytes), 2).unwrap();
            assert_eq!(
                (got, last.as_deref()),
                (n, next.map(str::as_bytes)),
                "from {from:?}"
            );
        }
        let left: Vec<bool> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|k| store.item_seen(k.as_bytes()).unwrap())
            .collect();
        assert_eq!(left, [false, false, false, true, true]);
    }
}
