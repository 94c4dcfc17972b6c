//! A person's requests about their data. The export (GDPR art. 15): one zip with
//! everything wagate holds about one contact, written as a stream so memory stays
//! small whatever the number of messages or media files.
//!
//! A feature: it reads the store and the journal; stored media files are opened
//! through a function handed in by `app`/`web` (only `media` knows their format).

mod erase_http;
mod erasures;
pub mod export;
mod http;
mod names;
pub mod redact;

use std::io::Read;
use std::sync::Arc;

use crate::journal::Journal;
use crate::store::{Store, StoreError};
use crate::util::clock::Clock;

pub use erase_http::{erase_routes, request_erasure, EraseHandles};
pub use erasures::{EraseCounts, EraseState, Erasure, Erasures, Request, Requester};
pub use http::{export_response, routes};

/// Opens a stored media file (by its file name under `<data>/media/`) as a reader
/// of its plaintext, only once the whole file has been authenticated.
pub type MediaOpener =
    Arc<dyn Fn(&str) -> std::io::Result<Box<dyn Read + Send>> + Send + Sync + 'static>;

/// What an export reads. Cheap to clone.
#[derive(Clone)]
pub struct Exporter {
    pub store: Store,
    pub journal: Arc<Journal>,
    pub open_media: MediaOpener,
    /// The time written into `README.txt` and the zip's entries.
    pub clock: Clock,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no such contact")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing the archive: {0}")]
    Zip(String),
}

impl From<rawzip::Error> for ExportError {
    fn from(e: rawzip::Error) -> Self {
        ExportError::Zip(e.to_string())
    }
}
