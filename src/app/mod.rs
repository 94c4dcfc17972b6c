//! The application: opens the journal and the store, starts the workers, and
//! holds the state that handlers share. No globals: this is passed around.

pub mod check;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use rand::RngCore;
use tokio::sync::watch;

use crate::config::{Config, Secret};
use crate::events::signature::Verifier;
use crate::forward::Forwarder;
use crate::journal::{Journal, JournalError, JournalOptions};
use crate::media::{MediaFiles, MediaWorker};
use crate::outbox::Outbox;
use crate::pipeline::retention::{RetentionOptions, RetentionTotals};
use crate::pipeline::Applier;
use crate::store::{Applied, Store, StoreError};
use crate::util::clock::Clock;
use crate::web::dashboard::auth::Auth;
use crate::upstream::Upstream;
use crate::web::WebState;
use crate::webhook::Webhook;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Upstream(#[from] reqwest::Error),
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
    #[error(transparent)]
    Dashboard(#[from] crate::web::dashboard::auth::AuthError),
}

/// A running application: its state plus the workers to stop on shutdown.
pub struct App {
    pub state: WebState,
    stop: watch::Sender<bool>,
    applier: Mutex<Option<JoinHandle<()>>>,
}

impl App {
    /// Opens everything under `config.data_dir` and starts the background workers,
    /// on the system's clock. Must be called inside a tokio runtime.
    pub async fn start(config: Config) -> Result<App, StartError> {
        Self::start_with_clock(config, Clock::system()).await
    }

    /// [`App::start`] on `clock` (tests move a manual clock by hand).
    pub async fn start_with_clock(config: Config, clock: Clock) -> Result<App, StartError> {
        let config = Arc::new(config);
        let c = config.clone();
        let opened = blocking(move || open(&c)).await??;
        let c = config.clone();
        let dashboard = blocking(move || Auth::open(&c)).await??;
        let journal = Arc::new(opened.journal);
        let store = opened.store;
        let retention = Arc::new(RetentionTotals::default());
        let (jobs_tx, jobs_rx) = tokio::sync::mpsc::unbounded_channel();
        let notify = Forwarder::notifiers(&config.forward);
        let pending = Pending {
            media: crate::media::apply::Pending::new(config.media.ttl, Some(jobs_tx)),
            forward: crate::forward::apply::Pending::new(
                Arc::new(config.forward.targets.clone()),
                notify.clone(),
            ),
        };
        let (applier, applied) =
            start_applier(&config, &journal, &store, &retention, pending, &clock).await?;
        let upstream = Upstream::new(&config.graph, clock.clone())?;
        let media = Arc::new(opened.media);
        let fetcher = crate::media::Fetcher {
            upstream: upstream.clone(),
            files: media.clone(),
            config: config.media.clone(),
            idle: config.graph.timeout,
            min_free: config.min_free,
            stats: Arc::default(),
            clock: clock.clone(),
        };
        let (j, st, a) = (&journal, &store, &applied);
        let media_worker = MediaWorker::start(j.clone(), st.clone(), fetcher, a.clone(), jobs_rx);
        let forward = Forwarder::start(
            j.clone(),
            st.clone(),
            upstream.clone(),
            config.forward.clone(),
            notify,
            a.clone(),
            clock.clone(),
        );
        let outbox = Outbox::start(j.clone(), st.clone(), upstream, &config, a.clone(), clock.clone());
        let state = WebState {
            outbox,
            webhook: webhook(&config, &journal, &store, &clock),
            config,
            journal,
            store,
            media,
            media_worker,
            forward,
            api_token: opened.api_token,
            applied,
            started: Instant::now(),
            acme: Arc::default(),
            retention,
            dashboard: Arc::new(dashboard),
            clock,
        };
        Ok(App {
            state,
            stop: applier.stop,
            applier: Mutex::new(Some(applier.thread)),
        })
    }

    /// Syncs the journal, lets the applier catch up, flushes sled.
    pub async fn shutdown(&self) {
        self.state.outbox.shutdown().await;
        self.state.media_worker.shutdown().await;
        self.state.forward.shutdown().await;
        self.state.journal.shutdown().await;
        let _ = self.stop.send(true);
        let handle = self.applier.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        let store = self.state.store.clone();
        match crate::store::blocking(move || store.flush()).await {
            Ok(()) => tracing::info!("state flushed; shut down cleanly"),
            Err(e) => tracing::error!(error = %e, "flushing state on shutdown failed"),
        }
    }
}

/// The applier's thread and how to stop it.
struct Running {
    thread: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

/// What the applier hands to the features' sides of processing.
struct Pending {
    media: crate::media::apply::Pending,
    forward: crate::forward::apply::Pending,
}

/// Loads the applier (blocking) and starts it on its own thread.
async fn start_applier(
    config: &Config,
    journal: &Arc<Journal>,
    store: &Store,
    totals: &Arc<RetentionTotals>,
    pending: Pending,
    clock: &Clock,
) -> Result<(Running, watch::Receiver<Applied>), StartError> {
    let retention = RetentionOptions {
        raw_ttl: config.raw_ttl,
        event_ttl: config.event_ttl,
        totals: totals.clone(),
        clock: clock.clone(),
    };
    let (j, s, ttl, c) = (journal.clone(), store.clone(), config.dedup_ttl, clock.clone());
    let (applier, applied) = blocking(move || {
        Applier::new(j, s, ttl, retention, pending.media, pending.forward, c)
    })
    .await??;
    let applier = applier.with_dedup_capacity(config.memory.dedup_keys());
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::runtime::Handle::current();
    let thread = std::thread::Builder::new()
        .name("applier".into())
        .spawn(move || applier.run(runtime, stop_rx))
        .map_err(JournalError::Io)?;
    Ok((Running { thread, stop }, applied))
}

fn webhook(config: &Config, journal: &Arc<Journal>, store: &Store, clock: &Clock) -> Arc<Webhook> {
    Arc::new(Webhook {
        journal: journal.clone(),
        store: store.clone(),
        verifier: Arc::new(Verifier::new(&config.app_secrets)),
        verify_token: config.verify_token.clone(),
        max_body: config.max_body,
        trusted_proxies: config.trusted_proxies.clone(),
        metrics: Default::default(),
        clock: clock.clone(),
    })
}

/// Runs blocking start-up work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, StartError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StartError::Store(StoreError::Task(e.to_string())))
}

/// What lives under the data directory, opened.
struct Opened {
    journal: Journal,
    store: Store,
    api_token: Secret,
    media: MediaFiles,
}

fn open(config: &Config) -> Result<Opened, StartError> {
    let dir = &config.data_dir;
    let data_err = |source| StartError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    // The data holds personal data: a new directory is private to wagate's user.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .map_err(data_err)?;
    let api_token = match &config.api_token {
        Some(t) => t.clone(),
        None => load_or_create_token(&dir.join("api-token")).map_err(data_err)?,
    };
    let journal = Journal::open(&JournalOptions {
        dir: dir.clone(),
        segment_size: config.segment_size,
        quarantine_max: config.quarantine_max,
        queue: config.memory.journal_queue(),
        batch_bytes: config.memory.journal_batch_bytes(),
    })?;
    let store = Store::open_with_cache(&dir.join("state"), config.memory.store_cache())?;
    let media = crate::media::open(config)?;
    Ok(Opened {
        journal,
        store,
        api_token,
        media,
    })
}

/// Reads the API token file, or creates it (mode 0600, written to a temporary name,
/// fsynced, renamed). Logs where it is, never its value.
fn load_or_create_token(path: &Path) -> std::io::Result<Secret> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let token = text.trim().to_string();
        if token.len() >= 16 {
            tracing::info!(path = %path.display(), "API token read from file");
            return Ok(Secret::new(token));
        }
    }
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = hex::encode(raw);
    crate::util::fs::write_private_atomic(path, token.as_bytes())?;
    tracing::info!(path = %path.display(), "generated an API token (WAGATE_API_TOKEN was not set)");
    Ok(Secret::new(token))
}
