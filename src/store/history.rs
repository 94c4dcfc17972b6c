//! The coexistence history backfill: one record per chunk received (phase, chunk
//! order, progress, counts, or the error of a declined share) and one key per
//! message imported, both per phone number id. `GET /api/history` sums them.

use serde::{Deserialize, Serialize};

use super::model::{decode, json, prefixed};
use super::{be, Changes, Store, StoreError, T};

/// One `history[]` chunk as received.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct HistoryChunkRecord {
    pub phase: Option<i64>,
    pub chunk_order: Option<i64>,
    pub progress: Option<i64>,
    pub threads: u64,
    pub messages: u64,
    pub error_code: Option<i64>,
    pub error: Option<String>,
    /// Unix seconds the delivery was received.
    pub received_at: i64,
}

/// The backfill of one phone number, as `GET /api/history` answers it.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct HistoryProgress {
    pub phone_number_id: String,
    /// Phases seen (0: the last day, 1: up to 90 days, 2: up to 180 days).
    pub phases: Vec<i64>,
    pub chunks: u64,
    /// The highest `progress` seen (percent).
    pub progress: Option<i64>,
    /// Messages the chunks announced, and those stored (new, not duplicates).
    pub messages_received: u64,
    pub messages_imported: u64,
    /// The share was declined (error 2593109) or failed.
    pub declined: bool,
    pub error: Option<String>,
    pub last_chunk_at: Option<i64>,
}

fn chunk_key(phone: &str, r: &HistoryChunkRecord) -> Vec<u8> {
    let n = |x: Option<i64>| be(x.map_or(u64::MAX, |x| x.max(0) as u64));
    let mut rest = n(r.phase).to_vec();
    rest.extend(n(r.chunk_order));
    if r.error_code.is_some() {
        rest.extend(b"error");
    }
    prefixed(phone, &rest)
}

impl Changes {
    pub fn put_history_chunk(&mut self, phone: &str, r: &HistoryChunkRecord) {
        self.put(T::HistoryChunks, chunk_key(phone, r), json(r));
    }

    pub fn put_history_message(&mut self, phone: &str, wamid: &str) {
        self.put(T::HistoryMessages, prefixed(phone, wamid.as_bytes()), []);
    }
}

impl Store {
    /// The backfill of every phone number that had one, by phone number id.
    pub fn history(&self) -> Result<Vec<HistoryProgress>, StoreError> {
        let mut out: Vec<HistoryProgress> = Vec::new();
        for kv in self.tree(T::HistoryChunks).iter() {
            let (k, v) = kv?;
            let phone = k.split(|&b| b == 0).next().unwrap_or_default();
            let phone = String::from_utf8_lossy(phone).into_owned();
            let r: HistoryChunkRecord = decode(&v)?;
            if out.last().is_none_or(|p| p.phone_number_id != phone) {
                out.push(HistoryProgress {
                    phone_number_id: phone,
                    ..Default::default()
                });
            }
            let p = out.last_mut().expect("pushed");
            add_chunk(p, &r);
        }
        for p in &mut out {
            let prefix = prefixed(&p.phone_number_id, b"");
            p.messages_imported = self.tree(T::HistoryMessages).scan_prefix(prefix).count() as u64;
        }
        Ok(out)
    }
}

/// Adds one chunk to a phone number's progress.
fn add_chunk(p: &mut HistoryProgress, r: &HistoryChunkRecord) {
    p.last_chunk_at = p.last_chunk_at.max(Some(r.received_at));
    if let Some(code) = r.error_code {
        p.declined = true;
        p.error = Some(format!("{code}: {}", r.error.as_deref().unwrap_or("")));
        return;
    }
    p.chunks += 1;
    p.messages_received += r.messages;
    p.progress = p.progress.max(r.progress);
    if let Some(phase) = r.phase {
        if !p.phases.contains(&phase) {
            p.phases.push(phase);
            p.phases.sort_unstable();
        }
    }
}
