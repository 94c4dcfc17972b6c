//! Messages, statuses, contacts and account events, with the indexes the read API
//! walks. Index keys end in `ts (BE) + id`, so newest-first is a reverse range scan
//! and the order does not depend on arrival order (re-applying is deterministic).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{be, Changes, Store, StoreError, T};
use crate::events::model::{AccountEvent, InboundMessage, StatusUpdate};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredMessage {
    #[serde(flatten)]
    pub message: InboundMessage,
    pub direction: String,
    pub waba_id: String,
    pub phone_number_id: Option<String>,
    pub delivery_id: u64,
    /// The sender's profile name in the delivery this message came in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
}

/// The value of a `messages_by_contact` entry for a message that does not open the
/// service window.
pub(super) const NO_WINDOW: &[u8] = b"n";

impl StoredMessage {
    /// Whether the message opens the 24-hour window: only an inbound message the
    /// user sent through the Cloud API does (not an echo, not a history message).
    pub fn opens_window(&self) -> bool {
        self.direction == "inbound" && self.message.source.is_none()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredStatus {
    #[serde(flatten)]
    pub status: StatusUpdate,
    pub phone_number_id: Option<String>,
    pub delivery_id: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredEvent {
    #[serde(flatten)]
    pub event: AccountEvent,
    pub waba_id: String,
    pub phone_number_id: Option<String>,
    pub delivery_id: u64,
}

/// One key of a model tree: (tree name, key, value).
pub type SnapshotEntry = (&'static str, Vec<u8>, Vec<u8>);

/// Which messages a listing walks: by contact, else by type, else all; none older
/// than `since_secs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct MessageFilter<'a> {
    pub contact: Option<&'a str>,
    pub msg_type: Option<&'a str>,
    pub since_secs: Option<i64>,
}

pub struct MessagePage {
    pub messages: Vec<StoredMessage>,
    /// Opaque cursor for the next page (`before`).
    pub next_before: Option<String>,
}

fn ts_key(ts: i64, id: &[u8]) -> Vec<u8> {
    let mut k = be(ts.max(0) as u64).to_vec();
    k.extend_from_slice(id);
    k
}

/// The failures index key: the status's timestamp (BE) + wamid.
fn failed_key(id: &str, ts: i64) -> Vec<u8> {
    ts_key(ts, id.as_bytes())
}

fn failed_key_raw(id: &[u8], ts_be: &[u8]) -> Vec<u8> {
    let mut k = ts_be.to_vec();
    k.extend_from_slice(id);
    k
}

pub(super) fn prefixed(prefix: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = prefix.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(rest);
    k
}

pub(super) fn json<V: Serialize>(v: &V) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialisable")
}

pub(super) fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<V, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

/// Cursor text `"<ts>_<id>"` <-> the `ts + id` key suffix.
pub fn encode_cursor(suffix: &[u8]) -> String {
    let ts = super::from_be(suffix).unwrap_or(0);
    format!(
        "{ts}_{}",
        String::from_utf8_lossy(&suffix[8.min(suffix.len())..])
    )
}

pub(super) fn decode_cursor(cursor: &str) -> Vec<u8> {
    match cursor.split_once('_') {
        Some((ts, id)) => ts_key(ts.parse().unwrap_or(i64::MAX), id.as_bytes()),
        None => ts_key(cursor.parse().unwrap_or(i64::MAX), b""),
    }
}

impl Changes {
    pub fn remember_item(&mut self, key: &[u8], seen_micros: i64) {
        self.put(T::Dedup, key, be(seen_micros as u64));
    }

    pub fn put_message(&mut self, m: &StoredMessage) {
        let id = m.message.id.as_bytes();
        let suffix = ts_key(m.message.timestamp, id);
        self.put(T::Messages, id, json(m));
        self.put(T::MessagesByTime, &suffix, []);
        // Marked when the message does not open the service window (an echo, a
        // history message): the window is the newest unmarked entry's.
        let mark: &[u8] = match m.opens_window() {
            true => b"",
            false => NO_WINDOW,
        };
        self.put(
            T::MessagesByContact,
            prefixed(&m.message.contact_id, &suffix),
            mark,
        );
        self.put(
            T::MessagesByType,
            prefixed(&m.message.msg_type, &suffix),
            [],
        );
    }

    pub fn put_status(&mut self, s: &StoredStatus, rank: u8) {
        let mut k = prefixed(&s.status.id, &be(s.status.timestamp.max(0) as u64));
        k.push(rank);
        k.extend_from_slice(s.status.status.as_bytes());
        self.put(T::Statuses, k, json(s));
        if s.status.status == "failed" {
            self.put(
                T::StatusesFailed,
                failed_key(&s.status.id, s.status.timestamp),
                [],
            );
        }
    }

    pub fn put_event(&mut self, e: &StoredEvent, digest: &[u8]) {
        let suffix = ts_key(e.event.timestamp.unwrap_or(0), digest);
        self.put(T::Events, &suffix, json(e));
        self.put(T::EventsByField, prefixed(&e.event.field, &suffix), []);
    }
}

/// Deletes the message at index suffix `suffix` (`ts + id`) and its index entries.
pub(super) fn del_message(changes: &mut Changes, suffix: &[u8], m: Option<&StoredMessage>) {
    changes.del(T::MessagesByTime, suffix);
    if let Some(m) = m {
        changes.del(T::Messages, m.message.id.as_bytes());
        changes.del(
            T::MessagesByContact,
            prefixed(&m.message.contact_id, suffix),
        );
        changes.del(T::MessagesByType, prefixed(&m.message.msg_type, suffix));
    }
}

impl Store {
    /// Deletes messages whose timestamp is before `before_secs`, with their index
    /// entries, `budget` at most. Returns how many.
    pub fn expire_messages(&self, before_secs: i64, budget: usize) -> Result<u64, StoreError> {
        let mut changes = Changes::new();
        let mut n = 0;
        for kv in self
            .tree(T::MessagesByTime)
            .range(..be(before_secs.max(0) as u64))
            .take(budget)
        {
            let (suffix, _) = kv?;
            let m = self.message(&String::from_utf8_lossy(&suffix[8..]))?;
            del_message(&mut changes, &suffix, m.as_ref());
            n += 1;
        }
        self.commit(changes)?;
        Ok(n)
    }

    /// Deletes account events before `before_secs`, `budget` at most.
    pub fn expire_events(&self, before_secs: i64, budget: usize) -> Result<u64, StoreError> {
        let mut changes = Changes::new();
        let mut n = 0;
        for kv in self
            .tree(T::Events)
            .range(..be(before_secs.max(0) as u64))
            .take(budget)
        {
            let (suffix, v) = kv?;
            let e: StoredEvent = decode(&v)?;
            changes.del(T::Events, &suffix);
            changes.del(T::EventsByField, prefixed(&e.event.field, &suffix));
            n += 1;
        }
        self.commit(changes)?;
        Ok(n)
    }

    /// Deletes status timeline entries before `before_secs`, looking at `budget` keys
    /// after `from` (a rolling scan: the timeline is keyed by message id). Entries
    /// placed after `misplaced_after` go by their delivery's receive time (see
    /// `misplaced.rs`). Returns how many were deleted and where to continue (`None`:
    /// the pass is complete).
    pub fn expire_statuses(
        &self,
        before_secs: i64,
        misplaced_after: i64,
        from: Option<&[u8]>,
        budget: usize,
    ) -> Result<(u64, Option<Vec<u8>>), StoreError> {
        self.expire_rolling(T::Statuses, from, budget, |k, v, changes| {
            let Some(sep) = k.iter().position(|&b| b == 0) else {
                return false;
            };
            let (id, rest) = (&k[..sep], &k[sep + 1..]);
            let ts = super::from_be(rest).unwrap_or(0) as i64;
            let expired = ts < before_secs
                || (ts > misplaced_after
                    && decode::<StoredStatus>(v)
                        .is_ok_and(|s| self.misplaced_expired(s.delivery_id, before_secs)));
            if expired && rest.ends_with(b"failed") {
                changes.del(T::StatusesFailed, failed_key_raw(id, &rest[..8]));
            }
            expired
        })
    }

    pub fn message(&self, id: &str) -> Result<Option<StoredMessage>, StoreError> {
        self.tree(T::Messages)
            .get(id)?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Newest first; with `contact` or `type` the matching index is walked.
    pub fn messages(
        &self,
        contact: Option<&str>,
        msg_type: Option<&str>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<MessagePage, StoreError> {
        let filter = MessageFilter {
            contact,
            msg_type,
            ..MessageFilter::default()
        };
        let scan = self.messages_where(&filter, before, limit, usize::MAX, |_| true)?;
        Ok(MessagePage {
            messages: scan.items,
            next_before: scan.next_before,
        })
    }

    /// Newest first, the messages `keep` accepts, looking at no more than `budget`
    /// index entries (a bounded scan, for text search). When the budget runs out
    /// first, `next_before` is where the scan stopped and `budget_spent` is set.
    pub fn messages_where(
        &self,
        f: &MessageFilter<'_>,
        before: Option<&str>,
        limit: usize,
        budget: usize,
        keep: impl Fn(&StoredMessage) -> bool,
    ) -> Result<super::Scan<StoredMessage>, StoreError> {
        let before = before.map(decode_cursor).unwrap_or_else(|| vec![0xff; 9]);
        let (tree, prefix) = match (f.contact, f.msg_type) {
            (Some(c), _) => (T::MessagesByContact, prefixed(c, b"")),
            (None, Some(t)) => (T::MessagesByType, prefixed(t, b"")),
            (None, None) => (T::MessagesByTime, Vec::new()),
        };
        let mut hi = prefix.clone();
        hi.extend_from_slice(&before);
        let mut lo = prefix.clone();
        lo.extend_from_slice(&be(f.since_secs.unwrap_or(0).max(0) as u64));
        let mut scan = super::Scan::default();
        let mut last_suffix = None;
        for (i, kv) in self.tree(tree).range(lo..hi).rev().enumerate() {
            let (k, _) = kv?;
            let suffix = &k[prefix.len()..];
            if i == budget {
                scan.next_before = Some(encode_cursor(suffix));
                scan.budget_spent = true;
                return Ok(scan);
            }
            let Some(m) = self.message(&String::from_utf8_lossy(&suffix[8..]))? else {
                continue;
            };
            // Contact and type together: walk the contact's index, filter by type.
            if f.msg_type
                .is_some_and(|t| f.contact.is_some() && m.message.msg_type != t)
                || !keep(&m)
            {
                continue;
            }
            scan.items.push(m);
            last_suffix = Some(suffix.to_vec());
            if scan.items.len() == limit {
                break;
            }
        }
        scan.next_before = (scan.items.len() == limit)
            .then(|| last_suffix.map(|s| encode_cursor(&s)))
            .flatten();
        Ok(scan)
    }

    /// The timeline of `id`, in (timestamp, status order).
    pub fn statuses(&self, id: &str) -> Result<Vec<StoredStatus>, StoreError> {
        self.tree(T::Statuses)
            .scan_prefix(prefixed(id, b""))
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    /// The message's current status, from its timeline: the highest rank (`failed`
    /// above all, so it is terminal; an unknown status only when there is nothing
    /// else; between two unknown ones the larger name). It never goes backwards and
    /// does not depend on the order statuses arrived in, and recording a status
    /// needs no read.
    pub fn current_status(&self, id: &str) -> Result<Option<String>, StoreError> {
        let prefix = prefixed(id, b"");
        let mut best: Option<(u8, Vec<u8>)> = None;
        for kv in self.tree(T::Statuses).scan_prefix(&prefix) {
            let (k, _) = kv?;
            // ts (8) + rank (1) + status
            let Some((&rank, status)) = k[prefix.len()..].get(8..).and_then(|r| r.split_first())
            else {
                continue;
            };
            if best
                .as_ref()
                .is_none_or(|(r, s)| (rank, status) > (*r, s.as_slice()))
            {
                best = Some((rank, status.to_vec()));
            }
        }
        Ok(best.map(|(_, s)| String::from_utf8_lossy(&s).into_owned()))
    }

    /// Newest first, optionally one field.
    pub fn events(
        &self,
        field: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        match field {
            Some(f) => {
                for kv in self
                    .tree(T::EventsByField)
                    .scan_prefix(prefixed(f, b""))
                    .rev()
                    .take(limit)
                {
                    let (k, _) = kv?;
                    if let Some(v) = self.tree(T::Events).get(&k[f.len() + 1..])? {
                        out.push(decode(&v)?);
                    }
                }
            }
            None => {
                for kv in self.tree(T::Events).iter().rev().take(limit) {
                    out.push(decode(&kv?.1)?);
                }
            }
        }
        Ok(out)
    }

    /// Every key and value of the model trees, for comparing two states in tests.
    pub fn model_snapshot(&self) -> Result<Vec<SnapshotEntry>, StoreError> {
        let mut out = Vec::new();
        for t in [
            T::Messages,
            T::MessagesByTime,
            T::MessagesByContact,
            T::MessagesByType,
            T::Statuses,
            T::Contacts,
            T::ContactAlias,
            T::Events,
            T::EventsByField,
            T::Calls,
            T::CallsByTime,
            T::CallsByContact,
            T::HistoryChunks,
            T::HistoryMessages,
        ] {
            for kv in self.tree(t).iter() {
                let (k, v) = kv?;
                out.push((super::TREE_NAMES[t as usize], k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }
}
