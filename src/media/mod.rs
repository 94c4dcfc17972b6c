//! Media kept at rest: encrypted files and their master keys.
//!
//! - `crypto/`: the encrypted file format (the only code that knows it).
//! - `keys.rs`: master keys, the key file, rotation.
//! - `files.rs`: the file store, under `<data>/media/` or in a bucket: atomic
//!   writes, verified reads, deletion; `files_sweep.rs` sweeping temporary and
//!   orphan files; `objects.rs` the bucket (`WAGATE_MEDIA_STORE`, the
//!   `object_store` client: the one outbound HTTP outside `upstream/`).
//! - `record.rs`: the media job entry and its journal records; `apply.rs` the
//!   applier's side (jobs created from media messages, records applied).
//! - `worker.rs`: the worker task that starts the jobs; `download.rs` one job (and
//!   rescans); `fetch.rs` one attempt (lookup, streaming download into the store,
//!   then the malware scan); `decide.rs` what next after an attempt (pure,
//!   table-tested); `worker_core.rs` what those share; `scan.rs` the clamd client;
//!   `sweep.rs` TTL, temp and orphan sweeps.
//! - `http.rs`: `GET /api/media/{id}` and `/content`.

pub mod apply;
pub mod crypto;
pub(crate) mod decide;
mod download;
mod fetch;
pub mod files;
mod http;
pub mod keys;
pub mod metrics;
pub mod objects;
pub mod record;
pub mod scan;
mod sweep;
mod worker;
mod worker_core;

pub use fetch::Fetcher;
pub use http::{content, routes, MediaView};
pub use worker::MediaWorker;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub use crypto::{CryptoError, DecryptedInfo, VerifiedReader};
pub use files::{FileError, MediaFiles, StoredFile, SweepReport};
pub use keys::{KeyError, KeyStore, Keyring, MasterKey};

use crate::config::Config;
use crate::events::model::{InboundMessage, MessageContent};
use record::{MediaEntry, MediaState, MEDIA_ID_LIFETIME_SECS};

/// What the media worker has done since start (for `/metrics`).
#[derive(Debug, Default)]
pub struct MediaStats {
    /// 1 while downloads wait for free disk space.
    pub paused_low_disk: AtomicU64,
    /// Plaintext bytes written to the store.
    pub bytes_stored: AtomicU64,
    /// Attempts that failed and will be retried.
    pub attempts_failed: AtomicU64,
    /// Scans by verdict: clean, infected, error.
    pub scans: [AtomicU64; 3],
    /// Sweeps: files deleted after their TTL, temp files and orphans removed.
    pub ttl_deleted: AtomicU64,
    pub temp_removed: AtomicU64,
    pub orphans_removed: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Files(#[from] FileError),
    #[error(transparent)]
    Store(#[from] objects::ObjectError),
}

/// Opens the media keys (`WAGATE_MEDIA_KEY_FILE`, or `<data>/media-keys`, created on
/// first start) and the file store: `<data>/media/`, or the bucket of
/// `WAGATE_MEDIA_STORE` (no request made yet: `wagate check` probes it).
pub fn open(config: &Config) -> Result<MediaFiles, MediaError> {
    let keys = match &config.media_key_file {
        Some(path) => KeyStore::open(path, false)?,
        None => KeyStore::open(&config.data_dir.join("media-keys"), true)?,
    };
    let keys = Arc::new(keys);
    Ok(match &config.media.store {
        None => MediaFiles::open(&config.data_dir.join("media"), keys)?,
        Some(store) => {
            let objects = objects::Objects::open(store)?;
            MediaFiles::in_bucket(&config.data_dir, objects, keys)
        }
    })
}

/// `wagate check`'s probe of `WAGATE_MEDIA_STORE`: builds the client, writes,
/// reads back and deletes a probe object; what failed, if anything did.
pub fn probe_store(store: &crate::config::MediaStoreConfig) -> Result<(), objects::ObjectError> {
    objects::Objects::open(store)?.probe()
}

/// The job for an inbound media message (image, audio, video, document, sticker
/// with a media id). Deterministic: built from the message and its delivery's
/// receive time only.
pub fn job_for(message: &InboundMessage, received_at_micros: i64) -> Option<MediaEntry> {
    let MessageContent::Media {
        media_type,
        id: Some(media_id),
        mime_type,
        sha256,
        filename,
        url,
        file_size,
        ..
    } = &message.content
    else {
        return None;
    };
    // Meta's clock, not ours: the media id lives 7 days from when it was sent.
    let sent_at = crate::util::time::secs_to_micros(message.timestamp).min(received_at_micros);
    Some(MediaEntry {
        media_id: media_id.clone(),
        message_id: message.id.clone(),
        media_type: media_type.clone(),
        mime_type: mime_type.clone(),
        declared_size: *file_size,
        declared_sha256: sha256.clone(),
        webhook_url: url.clone(),
        filename: filename.clone(),
        created_at_micros: received_at_micros,
        id_expires_at_micros: sent_at
            .saturating_add(crate::util::time::secs_to_micros(MEDIA_ID_LIFETIME_SECS)),
        state: MediaState::Pending,
        attempts: 0,
        last_error: None,
        stored_at_micros: None,
        expires_at_micros: None,
        file: None,
        size: None,
        sha256: None,
        key_id: None,
        scan: None,
        finished_at_micros: None,
        deleted_at_micros: None,
    })
}
