//! The media worker: one tokio task that owns the jobs. At start it waits for the
//! applier to catch up, sweeps (TTL, temp and orphan files), then runs every
//! pending job; new jobs arrive from the applier once their step is committed.
//! A media id runs at most once per process (`known`), and a job already final in
//! the store is never started. A job interrupted by a crash is still `pending`
//! after the restart and simply runs again (its temp file is swept first).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use super::download::{job, rescan};
use super::fetch::Fetcher;
use super::record::{MediaEntry, MediaState};
use super::sweep::sweep;
use super::worker_core::WorkerCore;
use crate::journal::Journal;
use crate::store::{Applied, Store};

pub struct MediaWorker {
    core: Arc<WorkerCore>,
    stopping: watch::Sender<bool>,
    done: watch::Sender<bool>,
}

impl MediaWorker {
    /// Starts the worker task (inside a tokio runtime); `jobs` receives the media
    /// ids of jobs the applier has created.
    pub fn start(
        journal: Arc<Journal>,
        store: Store,
        fetcher: Fetcher,
        applied: watch::Receiver<Applied>,
        jobs: mpsc::UnboundedReceiver<String>,
    ) -> Arc<MediaWorker> {
        let w = Arc::new(MediaWorker {
            core: Arc::new(WorkerCore {
                journal,
                store,
                fetcher,
                applied,
            }),
            stopping: watch::channel(false).0,
            done: watch::channel(false).0,
        });
        tokio::spawn(run(w.clone(), jobs));
        w
    }

    pub fn stats(&self) -> &super::MediaStats {
        &self.core.fetcher.stats
    }

    /// Stops: downloads in flight are abandoned (their temp files removed); the jobs
    /// stay pending and run again at the next start.
    pub async fn shutdown(&self) {
        self.stopping.send_replace(true);
        let mut done = self.done.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(10), done.wait_for(|d| *d)).await;
    }
}

/// The jobs running, and the media ids this process has started.
struct Jobs {
    core: Arc<WorkerCore>,
    /// Without a token nothing can be fetched: jobs stay pending until a start with one.
    enabled: bool,
    sem: Arc<Semaphore>,
    known: HashSet<String>,
    set: JoinSet<()>,
}

impl Jobs {
    /// Starts the jobs pending at start, and the rescans of unscanned files.
    async fn resume_pending(&mut self) {
        let st = self.core.store.clone();
        let pending = match crate::store::blocking(move || st.media_pending()).await {
            Ok(pending) => pending,
            Err(e) => {
                tracing::error!(error = %e, "cannot read pending media jobs; they wait for a restart");
                return;
            }
        };
        if !pending.is_empty() {
            tracing::info!(jobs = pending.len(), "resuming pending media downloads");
        }
        for e in pending {
            self.known.insert(e.media_id.clone());
            match (e.state, e.file.clone()) {
                (MediaState::Unscanned, Some(file)) => {
                    if self.core.fetcher.config.clamd.is_none() {
                        tracing::warn!(media_id = %e.media_id, "media file waits for a malware scan, but WAGATE_CLAMD is not set: it is not served");
                        continue;
                    }
                    let w = self.core.clone();
                    self.set
                        .spawn(async move { rescan(&w, &e.media_id, &file).await });
                }
                _ if self.enabled => self.spawn(e),
                _ => {}
            }
        }
    }

    /// A job the applier created: started once, if still pending.
    async fn created(&mut self, id: String) {
        if !self.enabled || !self.known.insert(id.clone()) {
            return;
        }
        let st = self.core.store.clone();
        match crate::store::blocking(move || st.media_entry(&id)).await {
            Ok(Some(e)) if e.state == MediaState::Pending => self.spawn(e),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot read a media job"),
        }
    }

    fn spawn(&mut self, e: MediaEntry) {
        self.set.spawn(job(self.core.clone(), e, self.sem.clone()));
    }
}

async fn run(w: Arc<MediaWorker>, mut created: mpsc::UnboundedReceiver<String>) {
    let mut stopping = w.stopping.subscribe();
    if *stopping.borrow_and_update() {
        w.done.send_replace(true);
        return;
    }
    let core = w.core.clone();
    tokio::select! {
        _ = core.wait_applied() => {}
        _ = stopping.changed() => { w.done.send_replace(true); return; }
    }
    // Nothing downloads yet: every temp file and unknown file can go.
    sweep(&core, Duration::ZERO).await;
    let enabled = core.fetcher.upstream.has_token();
    if !enabled {
        tracing::warn!("WHATSAPP_TOKEN is not set: media downloads wait (jobs stay pending)");
    }
    let mut jobs = Jobs {
        sem: Arc::new(Semaphore::new(core.fetcher.config.concurrency)),
        core: core.clone(),
        enabled,
        known: HashSet::new(),
        set: JoinSet::new(),
    };
    jobs.resume_pending().await;
    let sweeper = tokio::spawn(sweep_on_timer(core));
    loop {
        tokio::select! {
            id = created.recv() => match id {
                Some(id) => jobs.created(id).await,
                None => break,
            },
            Some(_) = jobs.set.join_next(), if !jobs.set.is_empty() => {}
            _ = stopping.changed() => break,
        }
    }
    sweeper.abort();
    jobs.set.shutdown().await;
    w.done.send_replace(true);
}

/// The timer sweep, beside the jobs (it may wait for the applier to catch up).
async fn sweep_on_timer(core: Arc<WorkerCore>) {
    // Files younger than one download (plus a margin) may be in flight.
    let margin = core.fetcher.config.timeout + Duration::from_secs(600);
    let every = core.fetcher.config.sweep_every;
    loop {
        core.fetcher.clock.sleep(every).await;
        sweep(&core, margin).await;
    }
}
