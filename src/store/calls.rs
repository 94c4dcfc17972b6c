//! Calls: each event kept once per (call id, event, status), and two indexes (all
//! calls, a contact's calls) by the time of each event. A call is read whole from
//! its events (`events::calls::call_view`), so arrival order never matters.

use super::model::{decode, decode_cursor, encode_cursor, json, prefixed};
use super::{be, Changes, Store, StoreError, T};
use crate::events::calls::{call_view, CallView};
use crate::events::model::CallEvent;

pub struct CallPage {
    pub calls: Vec<CallView>,
    /// Opaque cursor for the next page (`before`).
    pub next_before: Option<String>,
}

fn ts_id(ts: i64, id: &str) -> Vec<u8> {
    let mut k = be(ts.max(0) as u64).to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

impl Changes {
    pub fn put_call_event(&mut self, e: &CallEvent) {
        let what = [e.event.as_str(), e.status.as_deref().unwrap_or("")].join("\0");
        self.put(T::Calls, prefixed(&e.id, what.as_bytes()), json(e));
        let suffix = ts_id(e.timestamp, &e.id);
        self.put(T::CallsByTime, &suffix, []);
        self.put(T::CallsByContact, prefixed(&e.contact_id, &suffix), []);
    }
}

impl Store {
    /// The call `id` from its events; `None` when none is stored.
    pub fn call(&self, id: &str) -> Result<Option<CallView>, StoreError> {
        let events = self
            .tree(T::Calls)
            .scan_prefix(prefixed(id, b""))
            .map(|kv| decode::<CallEvent>(&kv?.1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(call_view(events))
    }

    /// Deletes call events before `before_secs` with their index entries, `budget`
    /// index entries at most. Returns how many index entries went.
    pub fn expire_calls(&self, before_secs: i64, budget: usize) -> Result<u64, StoreError> {
        let mut changes = Changes::new();
        let mut n = 0;
        let old = self
            .tree(T::CallsByTime)
            .range(..be(before_secs.max(0) as u64));
        for kv in old.take(budget) {
            let (suffix, _) = kv?;
            let ts = super::from_be(&suffix).unwrap_or(0) as i64;
            let id = String::from_utf8_lossy(&suffix[8.min(suffix.len())..]).into_owned();
            changes.del(T::CallsByTime, &suffix);
            for kv in self.tree(T::Calls).scan_prefix(prefixed(&id, b"")) {
                let (k, v) = kv?;
                let e: CallEvent = decode(&v)?;
                if e.timestamp.max(0) == ts {
                    changes.del(T::Calls, &k);
                    changes.del(T::CallsByContact, prefixed(&e.contact_id, &suffix));
                }
            }
            n += 1;
        }
        self.commit(changes)?;
        Ok(n)
    }

    /// Newest first (by each call's latest event), optionally one contact's.
    pub fn calls(
        &self,
        contact: Option<&str>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<CallPage, StoreError> {
        let (tree, prefix) = match contact {
            Some(c) => (T::CallsByContact, prefixed(c, b"")),
            None => (T::CallsByTime, Vec::new()),
        };
        let mut hi = prefix.clone();
        hi.extend(before.map(decode_cursor).unwrap_or_else(|| vec![0xff; 9]));
        let mut page = CallPage {
            calls: Vec::new(),
            next_before: None,
        };
        for kv in self.tree(tree).range(prefix.clone()..hi).rev() {
            let (k, _) = kv?;
            let suffix = &k[prefix.len()..];
            let ts = super::from_be(suffix).unwrap_or(0) as i64;
            let id = String::from_utf8_lossy(&suffix[8.min(suffix.len())..]).into_owned();
            let Some(call) = self.call(&id)? else {
                continue;
            };
            // Listed once, at its latest event.
            if call.events.iter().any(|e| e.timestamp.max(0) > ts) {
                continue;
            }
            page.calls.push(call);
            if page.calls.len() == limit {
                page.next_before = Some(encode_cursor(suffix));
                break;
            }
        }
        Ok(page)
    }
}
