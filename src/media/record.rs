//! What the media worker writes to the journal, and the entry the applier derives.
//!
//! A job (a [`MediaEntry`] in state `pending`) is derived from the inbound message
//! itself, so it needs no record of its own. The journal holds what cannot be
//! recomputed: each failed attempt (so the count survives a restart), that a file
//! was stored (its name, size, digest, key id), a final failure, and a deletion
//! (journaled before the file is removed).

use serde::{Deserialize, Serialize};

pub use crate::store::media::{MediaEntry, MediaState};

/// Meta's media-id lifetime for inbound media ("Media IDs in webhooks expire after 7 days").
pub const MEDIA_ID_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// Largest file accepted per media type (Meta's own limits for inbound media).
pub fn type_cap(media_type: &str) -> u64 {
    const MB: u64 = 1024 * 1024;
    match media_type {
        "image" => 5 * MB,
        "audio" | "video" => 16 * MB,
        "sticker" => 500 * 1024,
        _ => 100 * MB,
    }
}

/// The media rules for a job: how a journaled update changes it.
impl MediaEntry {
    /// Applies a journaled update. Re-applying one changes nothing.
    pub fn apply(&mut self, u: &MediaUpdate, at_micros: i64, ttl_micros: i64) {
        match u {
            MediaUpdate::Attempt { attempt, error, .. } => {
                if self.state == MediaState::Pending && *attempt >= self.attempts {
                    self.attempts = *attempt;
                    self.last_error = Some(error.clone());
                }
            }
            MediaUpdate::Stored {
                attempt,
                file,
                size,
                sha256,
                key_id,
                mime_type,
                scan,
                unscanned,
                ..
            } => {
                if self.state != MediaState::Pending {
                    return;
                }
                self.state = match unscanned {
                    Some(_) => MediaState::Unscanned,
                    None => MediaState::Stored,
                };
                self.attempts = self.attempts.max(*attempt);
                self.file = Some(file.clone());
                self.size = Some(*size);
                self.sha256 = Some(sha256.clone());
                self.key_id = Some(key_id.clone());
                self.scan = scan.clone();
                if mime_type.is_some() {
                    self.mime_type = mime_type.clone();
                }
                self.stored_at_micros = Some(at_micros);
                self.expires_at_micros = Some(at_micros.saturating_add(ttl_micros));
                self.finished_at_micros = Some(at_micros);
                self.last_error = unscanned.clone();
            }
            MediaUpdate::Scanned { file, scan, .. } => {
                if self.state == MediaState::Unscanned && self.file.as_deref() == Some(file) {
                    self.state = MediaState::Stored;
                    self.scan = Some(scan.clone());
                    self.last_error = None;
                }
            }
            MediaUpdate::Failed {
                attempt,
                state,
                reason,
                sha256,
                ..
            } => {
                // An unscanned file found infected on a later scan is quarantined too.
                let from_unscanned =
                    self.state == MediaState::Unscanned && *state == MediaState::Quarantined;
                if !(self.state == MediaState::Pending || from_unscanned) || !state.is_final() {
                    return;
                }
                if from_unscanned {
                    self.file = None;
                }
                self.state = *state;
                self.attempts = self.attempts.max(*attempt);
                self.last_error = Some(reason.clone());
                self.sha256 = sha256.clone().or(self.sha256.take());
                self.finished_at_micros = Some(at_micros);
            }
            MediaUpdate::Deleted { file, reason, .. } => {
                if self.live_file() == Some(file) {
                    self.state = MediaState::Deleted;
                    self.deleted_at_micros = Some(at_micros);
                    self.last_error = Some(reason.clone());
                }
            }
        }
    }
}

/// `Kind::MediaUpdate` payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "update", rename_all = "snake_case")]
pub enum MediaUpdate {
    /// Attempt `attempt` failed and will be retried.
    Attempt {
        media_id: String,
        attempt: u32,
        error: String,
        retry_in_ms: u64,
    },
    /// The file is stored under `file` (written, fsynced, renamed before this).
    Stored {
        media_id: String,
        attempt: u32,
        file: String,
        size: u64,
        sha256: String,
        key_id: String,
        mime_type: Option<String>,
        /// The malware scan's verdict, when scanning is on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scan: Option<String>,
        /// Why the scan could not run yet (the file is kept, never served, and
        /// scanned again later).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unscanned: Option<String>,
    },
    /// An unscanned file was scanned clean.
    Scanned {
        media_id: String,
        file: String,
        scan: String,
    },
    /// Given up: `failed`, `quarantined` (digest mismatch) or `expired`.
    Failed {
        media_id: String,
        attempt: u32,
        state: MediaState,
        reason: String,
        /// The digest actually received (quarantine).
        sha256: Option<String>,
    },
    /// The file is to be removed (journaled before it is).
    Deleted {
        media_id: String,
        file: String,
        reason: String,
    },
}

impl MediaUpdate {
    pub fn media_id(&self) -> &str {
        match self {
            MediaUpdate::Attempt { media_id, .. }
            | MediaUpdate::Stored { media_id, .. }
            | MediaUpdate::Failed { media_id, .. }
            | MediaUpdate::Scanned { media_id, .. }
            | MediaUpdate::Deleted { media_id, .. } => media_id,
        }
    }
}

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialisable")
}
