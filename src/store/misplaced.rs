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
        for kv in self.tree(T::MessagesByTime).range(from.clone()..).take(budget) {
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
