//! The state the HTTP layer serves from.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::config::{Config, Secret};
use crate::forward::Forwarder;
use crate::journal::Journal;
use crate::media::{MediaFiles, MediaWorker};
use crate::outbox::Outbox;
use crate::store::{Applied, Store};
use crate::util::clock::Clock;
use crate::webhook::Webhook;

/// What the HTTP layer serves from: every feature's handle. Built by `app`;
/// feature routes get only the handles they use. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    pub config: Arc<Config>,
    pub journal: Arc<Journal>,
    pub store: Store,
    /// Encrypted media files and their keys.
    pub media: Arc<MediaFiles>,
    /// The webhook: its signature verifier and its metrics.
    pub webhook: Arc<Webhook>,
    pub api_token: Secret,
    pub applied: watch::Receiver<Applied>,
    pub outbox: Arc<Outbox>,
    /// Media download jobs and sweeps.
    pub media_worker: Arc<MediaWorker>,
    /// Forwarding to the business's app(s).
    pub forward: Arc<Forwarder>,
    pub started: Instant,
    /// What the retention sweeps deleted since start.
    pub retention: Arc<crate::pipeline::retention::RetentionTotals>,
    /// Whether the applier gets on (`/healthz`, `/metrics`).
    pub apply_health: Arc<crate::pipeline::running::ApplyHealth>,
    /// Dashboard login: password hash, session key, throttling.
    pub dashboard: Arc<super::dashboard::auth::Auth>,
    /// The ACME certificate manager's status, once it runs (set by `main`).
    pub acme: Arc<std::sync::OnceLock<watch::Receiver<crate::acme::AcmeStatus>>>,
    /// Pages and answers that depend on "now" (the 24-hour window, session expiry).
    pub clock: Clock,
    /// Erasure requests and their records.
    pub erasures: crate::privacy::Erasures,
}

impl WebState {
    /// What the outbox's routes use.
    pub fn outbox_handles(&self) -> crate::outbox::Handles {
        crate::outbox::Handles {
            outbox: self.outbox.clone(),
            store: self.store.clone(),
            default_phone: self.config.graph.phone_number_id.clone(),
        }
    }

    /// What the erasure routes use.
    pub fn erase_handles(&self) -> crate::privacy::EraseHandles {
        crate::privacy::EraseHandles {
            erasures: self.erasures.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
        }
    }

    /// What the contact export reads: the store, the journal, and stored media
    /// opened (authenticated, then decrypted) through the media files.
    pub fn exporter(&self) -> crate::privacy::Exporter {
        crate::privacy::Exporter {
            store: self.store.clone(),
            journal: self.journal.clone(),
            open_media: media_opener(self.media.clone()),
            clock: self.clock.clone(),
        }
    }

    /// What `/healthz` looks at.
    pub fn health_handles(&self) -> super::health::Handles {
        super::health::Handles {
            health: self.apply_health.clone(),
            journal: self.journal.clone(),
            applied: self.applied.clone(),
            clock: self.clock.clone(),
            stuck_after: self.config.processing.stuck_after,
        }
    }

    /// What the forwarding routes use.
    pub fn forward_handles(&self) -> crate::forward::Handles {
        crate::forward::Handles {
            forward: self.forward.clone(),
            store: self.store.clone(),
        }
    }
}

/// Stored media files opened for the export: the whole file authenticated, then a
/// reader of its plaintext (the format stays `media`'s).
pub fn media_opener(media: Arc<MediaFiles>) -> crate::privacy::MediaOpener {
    Arc::new(move |file: &str| {
        let r = media.open_verified(file).map_err(std::io::Error::other)?;
        Ok(Box::new(r) as Box<dyn std::io::Read + Send>)
    })
}
