//! Media jobs: entries by media id and the pending set (what the worker resumes
//! after a restart).

use super::{Changes, Store, StoreError, T};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MediaState {
    Pending,
    /// Downloaded and stored, waiting for a malware scan that could not run yet
    /// (clamd down, a timeout, a file too large for it): kept, never served.
    Unscanned,
    Stored,
    Failed,
    Quarantined,
    Expired,
    Deleted,
}

impl MediaState {
    pub fn is_final(self) -> bool {
        !matches!(self, MediaState::Pending | MediaState::Unscanned)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MediaState::Pending => "pending",
            MediaState::Unscanned => "unscanned",
            MediaState::Stored => "stored",
            MediaState::Failed => "failed",
            MediaState::Quarantined => "quarantined",
            MediaState::Expired => "expired",
            MediaState::Deleted => "deleted",
        }
    }
}

/// One media item (derived; kept in the store, keyed by media id).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MediaEntry {
    pub media_id: String,
    /// The inbound message (wamid) that carried it.
    pub message_id: String,
    pub media_type: String,
    pub mime_type: Option<String>,
    /// `file_size` from the webhook, when sent.
    pub declared_size: Option<u64>,
    /// `sha256` from the webhook (base64), when sent.
    pub declared_sha256: Option<String>,
    /// The webhook's own URL (expires ~5 minutes after it was issued).
    pub webhook_url: Option<String>,
    /// The sender's file name (documents).
    pub filename: Option<String>,
    pub created_at_micros: i64,
    /// After this Meta no longer knows the media id: the job gives up as `expired`.
    pub id_expires_at_micros: i64,
    pub state: MediaState,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub stored_at_micros: Option<i64>,
    /// `stored_at + WAGATE_MEDIA_TTL`: the sweeper deletes the file after this.
    pub expires_at_micros: Option<i64>,
    /// Server-generated file name under `<data>/media/`.
    pub file: Option<String>,
    /// Plaintext size and SHA-256 (hex) of the stored file.
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub key_id: Option<String>,
    /// The malware scan's verdict (`clean (clamd)`), when `WAGATE_CLAMD` is set.
    #[serde(default)]
    pub scan: Option<String>,
    pub finished_at_micros: Option<i64>,
    pub deleted_at_micros: Option<i64>,
}

impl MediaEntry {
    /// The file to keep, if it is one the store should still hold.
    pub fn live_file(&self) -> Option<&str> {
        matches!(self.state, MediaState::Stored | MediaState::Unscanned)
            .then_some(self.file.as_deref())
            .flatten()
    }

    /// The file that may be served: stored, and scanned clean when scanning is on.
    pub fn servable_file(&self) -> Option<&str> {
        (self.state == MediaState::Stored)
            .then_some(self.file.as_deref())
            .flatten()
    }

    /// The expected SHA-256 from the webhook, decoded.
    pub fn declared_digest(&self) -> Option<[u8; 32]> {
        use base64::Engine;
        let b = self.declared_sha256.as_deref()?;
        let raw = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
        raw.try_into().ok()
    }
}

fn decode(bytes: &[u8]) -> Result<MediaEntry, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

impl Changes {
    pub fn put_media(&mut self, e: &MediaEntry) {
        let key = e.media_id.as_bytes();
        self.put(T::Media, key, serde_json::to_vec(e).expect("serialisable"));
        let mut by_time = super::be(e.created_at_micros.max(0) as u64).to_vec();
        by_time.extend_from_slice(key);
        self.put(T::MediaByTime, by_time, []);
        if e.state.is_final() {
            self.del(T::MediaPending, key);
        } else {
            self.put(T::MediaPending, key, []);
        }
    }
}

impl Store {
    pub fn media_entry(&self, media_id: &str) -> Result<Option<MediaEntry>, StoreError> {
        self.tree(T::Media)
            .get(media_id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Jobs not final yet.
    pub fn media_pending(&self) -> Result<Vec<MediaEntry>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tree(T::MediaPending).iter() {
            let (k, _) = kv?;
            if let Some(e) = self.tree(T::Media).get(&k)? {
                out.push(decode(&e)?);
            }
        }
        Ok(out)
    }

    /// Calls `f` on every entry (the sweeps; media entries are few and small).
    pub fn media_for_each(
        &self,
        mut f: impl FnMut(MediaEntry) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for kv in self.tree(T::Media).iter() {
            let (_, v) = kv?;
            f(decode(&v)?)?;
        }
        Ok(())
    }
}
