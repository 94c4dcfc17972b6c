//! The last handshake attempts (`GET /webhook`), for the dashboard. Diagnostic only,
//! so they live in sled alone, in a bounded ring.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{be, Store, StoreError, T};

const KEEP: usize = 500;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Handshake {
    pub at_micros: i64,
    pub peer: Option<String>,
    pub accepted: bool,
    pub reason: String,
}

/// Next key to use; keys are increasing so the oldest is first.
pub(super) struct Ring(Mutex<u64>);

impl Ring {
    pub(super) fn load(tree: &sled::Tree) -> Result<Ring, StoreError> {
        let next = match tree.last()? {
            Some((k, _)) => super::from_be(&k).unwrap_or(0) + 1,
            None => 0,
        };
        Ok(Ring(Mutex::new(next)))
    }
}

impl Store {
    /// Records one attempt and drops the oldest beyond the last 500 (blocking).
    pub fn record_handshake(&self, attempt: &Handshake) -> Result<(), StoreError> {
        let tree = self.tree(T::Handshakes);
        let inner = self.now();
        let key = {
            let mut next = inner.handshakes.0.lock().unwrap_or_else(|p| p.into_inner());
            let k = *next;
            *next += 1;
            k
        };
        tree.insert(be(key), serde_json::to_vec(attempt).expect("serialisable"))?;
        if key >= KEEP as u64 {
            tree.remove(be(key - KEEP as u64))?;
        }
        Ok(())
    }

    /// Newest first.
    pub fn handshakes(&self, limit: usize) -> Result<Vec<Handshake>, StoreError> {
        self.tree(T::Handshakes)
            .iter()
            .rev()
            .take(limit)
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Decode(e.to_string()))
            })
            .collect()
    }
}
