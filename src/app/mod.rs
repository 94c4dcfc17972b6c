//! The application: opens the journal and the store, starts the workers, and
//! holds the state that handlers share. No globals: this is passed around.

pub mod check;
pub mod data_dir;
mod erase;

pub use erase::{erase_offline, EraseError};

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
use crate::pipeline::running::ApplyHealth;
use crate::pipeline::{Applier, Options, Pending, StepBounds};
use crate::store::{Applied, Store, StoreError};
use crate::upstream::Upstream;
use crate::util::clock::Clock;
use crate::web::dashboard::auth::Auth;
use crate::web::WebState;
use crate::webhook::Webhook;

/// Why wagate cannot start: each names the real cause and the path it is about.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use the data directory {path}: {source}")]
    OpenDataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("the data directory {path} is open to other users (mode {mode:o}) and holds personal data: {reason}")]
    DataDirOpen {
        path: String,
        mode: u32,
        reason: String,
    },
    #[error("cannot {what} {path}: {source}")]
    Path {
        what: &'static str,
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
        let (c, now) = (config.clone(), clock.now_secs());
        let dashboard = blocking(move || Auth::open(&c, now)).await??;
        let journal = Arc::new(opened.journal);
        let store = opened.store;
        let retention = Arc::new(RetentionTotals::default());
        let (jobs_tx, jobs_rx) = tokio::sync::mpsc::unbounded_channel();
        let notify = Forwarder::notifiers(&config.forward);
        let pending = crate::pipeline::Pending {
            media: crate::media::apply::Pending::new(config.media.ttl, Some(jobs_tx.clone())),
            forward: crate::forward::apply::Pending::new(
                Arc::new(config.forward.targets.clone()),
                notify.clone(),
            ),
        };
        let health = Arc::new(ApplyHealth::new(clock.mono_micros()));
        let media = Arc::new(opened.media);
        let mut options = applier_options(&config, &retention, &health, &clock);
        options.erase = Some(erase_context(
            &config,
            &opened.erasures,
            &media,
            &jobs_tx,
            &notify,
        ));
        let nice = config.processing.nice;
        let (applier, applied) =
            start_applier(&journal, &store, options, nice, pending, &clock).await?;
        let upstream =
            Upstream::new(&config.graph, clock.clone())?.with_bus(config.forward.nats.as_ref());
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
        let outbox = Outbox::start(
            j.clone(),
            st.clone(),
            upstream,
            &config,
            a.clone(),
            clock.clone(),
        );
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
            apply_health: health,
            dashboard: Arc::new(dashboard),
            clock,
            erasures: opened.erasures,
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

/// The applier's settings, from the configuration.
fn applier_options(
    config: &Config,
    totals: &Arc<RetentionTotals>,
    health: &Arc<ApplyHealth>,
    clock: &Clock,
) -> Options {
    Options {
        dedup_ttl: config.dedup_ttl,
        dedup_keys: config.memory.dedup_keys(),
        max_items: config.processing.max_items,
        step: StepBounds::default(),
        stuck_after: config.processing.stuck_after,
        data_dir: config.data_dir.clone(),
        min_free: config.min_free,
        retention: RetentionOptions {
            raw_ttl: config.raw_ttl,
            event_ttl: config.event_ttl,
            totals: totals.clone(),
            clock: clock.clone(),
        },
        health: health.clone(),
        erase: None,
    }
}

/// What the applier needs for erasures: the requests, the media files, new
/// feature sides for the rebuilding applier.
fn erase_context(
    config: &Arc<Config>,
    erasures: &crate::privacy::Erasures,
    media: &Arc<MediaFiles>,
    jobs: &tokio::sync::mpsc::UnboundedSender<String>,
    notify: &std::collections::HashMap<String, Arc<tokio::sync::Notify>>,
) -> Arc<crate::pipeline::erase::EraseContext> {
    let (c, jobs, notify) = (config.clone(), jobs.clone(), notify.clone());
    Arc::new(crate::pipeline::erase::EraseContext {
        erasures: erasures.clone(),
        media: media.clone(),
        pending: Box::new(move || crate::pipeline::Pending {
            media: crate::media::apply::Pending::new(c.media.ttl, Some(jobs.clone())),
            forward: crate::forward::apply::Pending::new(
                Arc::new(c.forward.targets.clone()),
                notify.clone(),
            ),
        }),
    })
}

/// Loads the applier (blocking) and starts it on its own thread.
async fn start_applier(
    journal: &Arc<Journal>,
    store: &Store,
    options: Options,
    nice: i32,
    pending: Pending,
    clock: &Clock,
) -> Result<(Running, watch::Receiver<Applied>), StartError> {
    let (j, s, c) = (journal.clone(), store.clone(), clock.clone());
    let (applier, applied) = blocking(move || Applier::new(j, s, options, pending, c)).await??;
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::runtime::Handle::current();
    let thread = std::thread::Builder::new()
        .name("applier".into())
        .spawn(move || {
            // Its committer and sled's I/O threads, started from it, inherit this.
            if let Err(e) = crate::util::priority::lower_this_thread(nice) {
                tracing::warn!(error = %e, nice, "could not lower the processing threads' priority");
            }
            applier.run(runtime, stop_rx)
        })
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
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StartError> {
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
    erasures: crate::privacy::Erasures,
}

fn open(config: &Config) -> Result<Opened, StartError> {
    let dir = &config.data_dir;
    data_dir::prepare(dir)?;
    let api_token = match &config.api_token {
        Some(t) => t.clone(),
        None => {
            let path = dir.join("api-token");
            load_or_create_token(&path).map_err(|source| StartError::Path {
                what: "read or create the API token file",
                path: path.display().to_string(),
                source,
            })?
        }
    };
    let journal = Journal::open(&JournalOptions {
        dir: dir.clone(),
        segment_size: config.segment_size,
        quarantine_max: config.quarantine_max,
        queue: config.memory.journal_queue(),
        batch_bytes: config.memory.journal_batch_bytes(),
    })?;
    let erasures = crate::privacy::Erasures::open(dir).map_err(|source| StartError::Path {
        what: "open the erasures directory",
        path: dir.join("erasures").display().to_string(),
        source,
    })?;
    crate::store::remove_stale(dir).map_err(|source| StartError::Path {
        what: "remove an old state directory in",
        path: dir.display().to_string(),
        source,
    })?;
    let store =
        Store::open_with_cache(&crate::store::current_dir(dir), config.memory.store_cache())?;
    let media = crate::media::open(config)?;
    Ok(Opened {
        journal,
        store,
        api_token,
        media,
        erasures,
    })
}

/// What `wagate export-contact` reads, opened while wagate is stopped (sled
/// allows one process: a running wagate makes this fail; use the HTTP route then).
/// No worker, no applier: the state is read as the last run left it.
pub fn open_for_export(config: &Config) -> Result<crate::privacy::Exporter, StartError> {
    let dir = &config.data_dir;
    if !crate::store::current_dir(dir).exists() {
        return Err(StartError::OpenDataDir {
            path: dir.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no state here"),
        });
    }
    let journal = Journal::open(&JournalOptions {
        dir: dir.clone(),
        segment_size: config.segment_size,
        quarantine_max: config.quarantine_max,
        queue: config.memory.journal_queue(),
        batch_bytes: config.memory.journal_batch_bytes(),
    })?;
    let media = Arc::new(crate::media::open(config)?);
    Ok(crate::privacy::Exporter {
        store: Store::open(&crate::store::current_dir(dir))?,
        journal: Arc::new(journal),
        open_media: crate::web::media_opener(media),
        clock: Clock::system(),
    })
}

/// Reads the API token file, or creates it (mode 0600, written to a temporary name,
/// fsynced, renamed). Logs where it is, never its value.
fn load_or_create_token(path: &Path) -> std::io::Result<Secret> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().len() >= 16 => {
            tracing::info!(path = %path.display(), "API token read from file");
            return Ok(Secret::new(text.trim().to_string()));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // Unreadable: never replaced behind the operator's back.
        Err(e) => return Err(e),
    }
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = hex::encode(raw);
    crate::util::fs::write_private_atomic(path, token.as_bytes())?;
    tracing::info!(path = %path.display(), "generated an API token (WAGATE_API_TOKEN was not set)");
    Ok(Secret::new(token))
}
