//! The outbox: entries by local id, idempotency keys, the wamid index, the pending
//! set (what the sender resumes after a restart) and the outbox-wide pause.

use super::{be, from_be, Changes, Store, StoreError, T};
use crate::outbox::record::{OutboxEntry, Pause};

const PAUSE_KEY: &[u8] = b"outbox/pause";

fn decode<V: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<V, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

impl Changes {
    pub fn put_outbox(&mut self, e: &OutboxEntry) {
        let id = be(e.id);
        self.put(T::Outbox, id, serde_json::to_vec(e).expect("serialisable"));
        if let Some(k) = &e.request.idempotency_key {
            self.put(T::OutboxKeys, k.as_bytes(), id);
        }
        self.put(
            T::OutboxByRecipient,
            super::model::prefixed(&e.request.recipient, &id),
            [],
        );
        if let Some(w) = &e.wamid {
            self.put(T::OutboxByWamid, w.as_bytes(), id);
        }
        if e.state.is_final() {
            self.del(T::OutboxPending, id);
        } else {
            self.put(T::OutboxPending, id, []);
        }
    }

    pub fn set_outbox_pause(&mut self, pause: Option<&Pause>) {
        match pause {
            Some(p) => self.put(
                T::Meta,
                PAUSE_KEY,
                serde_json::to_vec(p).expect("serialisable"),
            ),
            None => self.del(T::Meta, PAUSE_KEY),
        }
    }
}

impl Store {
    pub fn outbox_entry(&self, id: u64) -> Result<Option<OutboxEntry>, StoreError> {
        self.tree(T::Outbox)
            .get(be(id))?
            .map(|v| decode(&v))
            .transpose()
    }

    pub fn outbox_by_key(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.tree(T::OutboxKeys).get(key)?.and_then(|v| from_be(&v)))
    }

    pub fn outbox_by_wamid(&self, wamid: &str) -> Result<Option<OutboxEntry>, StoreError> {
        match self
            .tree(T::OutboxByWamid)
            .get(wamid)?
            .and_then(|v| from_be(&v))
        {
            Some(id) => self.outbox_entry(id),
            None => Ok(None),
        }
    }

    /// Entries not yet final, oldest first.
    pub fn outbox_pending(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree(T::OutboxPending).iter() {
            let (k, _) = kv?;
            if let Some(e) = from_be(&k).map(|id| self.outbox_entry(id)).transpose()? {
                out.extend(e);
            }
        }
        Ok(out)
    }

    /// Newest first, ids below `before`.
    pub fn outbox_list(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let hi = be(before.unwrap_or(u64::MAX));
        self.tree(T::Outbox)
            .range(..hi)
            .rev()
            .take(limit)
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    pub fn outbox_pause(&self) -> Result<Option<Pause>, StoreError> {
        self.tree(T::Meta)
            .get(PAUSE_KEY)?
            .map(|v| decode(&v))
            .transpose()
    }
}
