//! Model entries an earlier version placed at the time they claimed, however far
//! ahead (year 9999, `i64::MAX`). Such a time is now out of range and an item goes
//! by its receive time (`util::time::ItemTime`); the entries left over are expired
//! by their delivery's receive time, so that retention deletes them too.

use super::model::{decode, del_message, prefixed, StoredEvent};
use super::{be, Changes, Store, StoreError, T};

impl Store {
    /// Whether a misplaced entry of delivery `delivery` is expired: the delivery was
    /// received before `before_secs`, or is forgotten (its segment is gone).
    pub(super) fn misplaced_expired(&self, delivery: u64, before_secs: i64) -> bool {
        match self.delivery(delivery) {
            Ok(Some(m)) => m.received_at_micros.div_euclid(1_000_000) < before_secs,
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Deletes the messages and account events placed after `after_secs` (no item
    /// is placed there today) whose delivery is expired as of `before_secs`, looking
    /// at `budget` of each. Returns how many messages and events were deleted.
    pub fn expire_misplaced(
        &self,
        after_secs: i64,
        before_secs: i64,
        budget: usize,
    ) -> Result<(u64, u64), StoreError> {
        let from = be((after_secs.max(0) as u64).saturating_add(1)).to_vec();
        let mut changes = Changes::new();
        let (mut messages, mut events) = (0, 0);
        for kv in self
            .tree(T::MessagesByTime)
            .range(from.clone()..)
            .take(budget)
        {
            let (suffix, _) = kv?;
            let m = self.message(&String::from_utf8_lossy(&suffix[8..]))?;
            if m.as_ref()
                .is_none_or(|m| self.misplaced_expired(m.delivery_id, before_secs))
            {
                del_message(&mut changes, &suffix, m.as_ref());
                messages += 1;
            }
        }
        for kv in self.tree(T::Events).range(from..).take(budget) {
            let (suffix, v) = kv?;
            let e: StoredEvent = decode(&v)?;
            if self.misplaced_expired(e.delivery_id, before_secs) {
                changes.del(T::Events, &suffix);
                changes.del(T::EventsByField, prefixed(&e.event.field, &suffix));
                events += 1;
            }
        }
        self.commit(changes)?;
        Ok((messages, events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{delivery, message};

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_764_670_000;

    #[test]
    fn entries_an_earlier_version_placed_ahead_expire_by_their_receive_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut c = Changes::new();
        // Received 10 days ago at year 9999 / i64::MAX; received now at i64::MAX; a
        // message of a forgotten delivery; one in the normal range.
        c.put_delivery(&delivery(1, NOW - 10 * DAY));
        c.put_delivery(&delivery(2, NOW));
        c.put_message(&message("wamid.OLD9999", 253_402_300_799, 1));
        c.put_message(&message("wamid.OLDMAX", i64::MAX, 1));
        c.put_message(&message("wamid.NEWMAX", i64::MAX, 2));
        c.put_message(&message("wamid.GONE", NOW + 10 * DAY, 3));
        c.put_message(&message("wamid.NORMAL", NOW - 10 * DAY, 1));
        store.commit(c).unwrap();
        let (messages, events) = store.expire_misplaced(NOW + DAY, NOW - DAY, 100).unwrap();
        assert_eq!((messages, events), (3, 0));
        let left: Vec<String> = store
            .messages(None, None, None, 10)
            .unwrap()
            .messages
            .into_iter()
            .map(|m| m.message.id)
            .collect();
        assert_eq!(left, ["wamid.NEWMAX", "wamid.NORMAL"]);
        assert!(store.message("wamid.OLDMAX").unwrap().is_none());
        assert!(store
            .messages(Some("1"), None, None, 10)
            .unwrap()
            .messages
            .iter()
            .all(|m| m.message.id != "wamid.OLD9999"));
    }
}
