//! Media kept at rest: encrypted files and their master keys.
//!
//! - `crypto/`: the encrypted file format (the only code that knows it).
//! - `keys.rs`: master keys, the key file, rotation.
//! - `files.rs`: the file store under `<data>/media/`: atomic writes, verified reads,
//!   deletion, sweeping temporary and orphan files.

pub mod crypto;
pub mod files;
pub mod keys;

use std::sync::Arc;

pub use crypto::{CryptoError, DecryptedInfo, VerifiedReader};
pub use files::{FileError, MediaFiles, StoredFile, SweepReport};
pub use keys::{KeyError, KeyStore, Keyring, MasterKey};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Files(#[from] FileError),
}

/// Opens the media keys (`WAGATE_MEDIA_KEY_FILE`, or `<data>/media-keys`, created on
/// first start) and the file store `<data>/media/`.
pub fn open(config: &Config) -> Result<MediaFiles, MediaError> {
    let keys = match &config.media_key_file {
        Some(path) => KeyStore::open(path, false)?,
        None => KeyStore::open(&config.data_dir.join("media-keys"), true)?,
    };
    Ok(MediaFiles::open(
        &config.data_dir.join("media"),
        Arc::new(keys),
    )?)
}
