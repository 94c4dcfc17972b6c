//! The media worker: one tokio task that owns the jobs. At start it waits for the
//! applier to catch up, sweeps (TTL, temp and orphan files), then runs every
//! pending job; new jobs arrive from the applier once their step is committed.
//! A media id runs at most once per process (`known`), and a job already final in
//! the store is never started. A job interrupted by a crash is still `pending`
//! after the restart and simply runs again (its temp file is swept first).

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use super::fetch::{infected, Fetcher, Outcome, CLEAN};
use super::record::{encode, MediaEntry, MediaState, MediaUpdate};
use super::scan::Verdict;
use crate::journal::{Journal, JournalError, Kind, Stream};
use crate::store::Applied;
use crate::store::Store;

pub struct MediaWorker {
    pub(super) journal: Arc<Journal>,
    pub(super) store: Store,
    pub(super) fetcher: Fetcher,
    applied: watch::Receiver<Applied>,
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
            journal,
            store,
            fetcher,
            applied,
            stopping: watch::channel(false).0,
            done: watch::channel(false).0,
        });
        tokio::spawn(run(w.clone(), jobs));
        w
    }

    pub fn stats(&self) -> &super::MediaStats {
        &self.fetcher.stats
    }

    /// Stops: downloads in flight are abandoned (their temp files removed); the jobs
    /// stay pending and run again at the next start.
    pub async fn shutdown(&self) {
        self.stopping.send_replace(true);
        let mut done = self.done.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(10), done.wait_for(|d| *d)).await;
    }

    pub(super) async fn journal(&self, u: &MediaUpdate) -> Result<(), JournalError> {
        self.journal
            .append(
                Stream::Main,
                Kind::MediaUpdate,
                crate::util::clock::now_micros(),
                encode(u),
            )
            .await
            .map(|_| ())
    }

    /// Waits until the applier has applied everything journaled so far.
    pub(super) async fn wait_applied(&self) {
        let target = self.journal.heads().borrow().clone();
        let mut applied = self.applied.clone();
        let _ = applied
            .wait_for(|a| a.overall(&target) >= target.last_seq)
            .await;
    }

    /// Below `WAGATE_MIN_FREE` free space, waits (without using up an attempt) until
    /// there is room again: deliveries need the disk more than media does.
    async fn wait_for_disk_space(&self) {
        let (dir, min_free) = (
            self.fetcher.files.dir().to_path_buf(),
            self.fetcher.min_free,
        );
        let mut warned = false;
        loop {
            let d = dir.clone();
            let free = tokio::task::spawn_blocking(move || crate::util::disk::free_bytes(&d))
                .await
                .ok()
                .and_then(Result::ok);
            // Unknown free space does not stop downloads (the write itself would fail).
            if free.is_none_or(|f| f >= min_free) {
                if warned {
                    tracing::info!(
                        "free disk space is back above WAGATE_MIN_FREE: media downloads resume"
                    );
                    self.fetcher.stats.paused_low_disk.store(0, Relaxed);
                }
                return;
            }
            if !warned {
                warned = true;
                self.fetcher.stats.paused_low_disk.store(1, Relaxed);
                tracing::warn!(
                    free_bytes = free.unwrap_or(0),
                    min_free,
                    "free disk space is below WAGATE_MIN_FREE: media downloads are paused"
                );
            }
            tokio::time::sleep(self.fetcher.config.disk_check_every).await;
        }
    }

    /// Full jitter: uniform in [0, min(cap, base * 2^(n-1))].
    fn backoff(&self, attempt: u32) -> Duration {
        let c = &self.fetcher.config;
        let exp = c
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(30))
            .min(c.backoff_cap);
        exp.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
    }
}

async fn run(w: Arc<MediaWorker>, mut jobs: mpsc::UnboundedReceiver<String>) {
    let mut stopping = w.stopping.subscribe();
    if *stopping.borrow_and_update() {
        w.done.send_replace(true);
        return;
    }
    tokio::select! {
        _ = w.wait_applied() => {}
        _ = stopping.changed() => { w.done.send_replace(true); return; }
    }
    // Nothing downloads yet: every temp file and unknown file can go.
    super::sweep::sweep(&w, Duration::ZERO).await;
    // Without a token nothing can be fetched: jobs stay pending until a start with one.
    let enabled = w.fetcher.upstream.has_token();
    if !enabled {
        tracing::warn!("WHATSAPP_TOKEN is not set: media downloads wait (jobs stay pending)");
    }
    let sem = Arc::new(Semaphore::new(w.fetcher.config.concurrency));
    let mut known: HashSet<String> = HashSet::new();
    let mut set = JoinSet::new();
    let st = w.store.clone();
    match crate::store::blocking(move || st.media_pending()).await {
        Ok(pending) => {
            if !pending.is_empty() {
                tracing::info!(jobs = pending.len(), "resuming pending media downloads");
            }
            for e in pending.into_iter() {
                known.insert(e.media_id.clone());
                match (e.state, e.file.clone()) {
                    (MediaState::Unscanned, Some(file)) => {
                        if w.fetcher.config.clamd.is_none() {
                            tracing::warn!(media_id = %e.media_id, "media file waits for a malware scan, but WAGATE_CLAMD is not set: it is not served");
                            continue;
                        }
                        let w = w.clone();
                        set.spawn(async move { rescan(&w, &e.media_id, &file).await });
                    }
                    _ if enabled => {
                        set.spawn(job(w.clone(), e, sem.clone()));
                    }
                    _ => {}
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read pending media jobs; they wait for a restart")
        }
    }
    // Files younger than one download (plus a margin) may be in flight.
    let margin = w.fetcher.config.timeout + Duration::from_secs(600);
    // The timer sweep runs beside the jobs (it may wait for the applier to catch up).
    let sweeper = {
        let w = w.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(w.fetcher.config.sweep_every);
            every.tick().await;
            loop {
                every.tick().await;
                super::sweep::sweep(&w, margin).await;
            }
        })
    };
    loop {
        tokio::select! {
            id = jobs.recv() => {
                let Some(id) = id else { break };
                if !enabled || !known.insert(id.clone()) {
                    continue;
                }
                let st = w.store.clone();
                match crate::store::blocking(move || st.media_entry(&id)).await {
                    Ok(Some(e)) if e.state == MediaState::Pending => {
                        set.spawn(job(w.clone(), e, sem.clone()));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "cannot read a media job"),
                }
            }
            Some(_) = set.join_next(), if !set.is_empty() => {}
            _ = stopping.changed() => break,
        }
    }
    sweeper.abort();
    set.shutdown().await;
    w.done.send_replace(true);
}

/// Runs one job until it is stored or final. Aborted at shutdown.
async fn job(w: Arc<MediaWorker>, entry: MediaEntry, sem: Arc<Semaphore>) {
    let id = entry.media_id.clone();
    let mut attempt = entry.attempts;
    // The webhook's URL is only worth a try before any attempt failed.
    let mut url = entry.webhook_url.clone().filter(|_| attempt == 0);
    let mut quick_retry_used = false;
    loop {
        if crate::util::clock::now_micros() >= entry.id_expires_at_micros {
            let reason = "media id expired (Meta keeps inbound media ids for 7 days)".to_string();
            finish(&w, &id, attempt, MediaState::Expired, reason, None).await;
            return;
        }
        let Ok(_permit) = sem.acquire().await else {
            return;
        };
        w.wait_for_disk_space().await;
        attempt += 1;
        let outcome = w.fetcher.attempt(&entry, url.take()).await;
        drop(_permit);
        match outcome {
            Outcome::Stored {
                file,
                mime_type,
                scan,
                unscanned,
            } => {
                let name = file.name.clone();
                let waiting = unscanned.is_some();
                let u = MediaUpdate::Stored {
                    media_id: id.clone(),
                    attempt,
                    file: file.name,
                    size: file.size,
                    sha256: hex::encode(file.sha256),
                    key_id: file.key_id,
                    mime_type,
                    scan,
                    unscanned,
                };
                match w.journal(&u).await {
                    Ok(()) if waiting => {
                        tracing::warn!(media_id = %id, size = file.size, attempt, "media stored but not scanned yet; not served until it is");
                        rescan(&w, &id, &name).await;
                        return;
                    }
                    Ok(()) => {
                        tracing::info!(media_id = %id, size = file.size, attempt, "media stored");
                        return;
                    }
                    Err(e) => {
                        // Not recorded: the file must not stay (it would be an orphan).
                        tracing::error!(media_id = %id, error = %e, "cannot journal a stored media file");
                        let files = w.fetcher.files.clone();
                        let _ = tokio::task::spawn_blocking(move || files.delete(&name)).await;
                        tokio::time::sleep(w.backoff(attempt)).await;
                    }
                }
            }
            Outcome::Final {
                state,
                reason,
                sha256,
            } => {
                finish(&w, &id, attempt, state, reason, sha256).await;
                return;
            }
            Outcome::Retry {
                reason,
                backoff,
                after,
            } => {
                let delay = match (backoff, after) {
                    (_, Some(a)) => a,
                    (false, None) if !quick_retry_used => Duration::ZERO,
                    _ => w.backoff(attempt),
                };
                quick_retry_used = !backoff && delay.is_zero();
                w.fetcher.stats.attempts_failed.fetch_add(1, Relaxed);
                tracing::warn!(media_id = %id, attempt, error = %reason, retry_in_ms = delay.as_millis() as u64, "media download failed; will retry");
                let u = MediaUpdate::Attempt {
                    media_id: id.clone(),
                    attempt,
                    error: reason,
                    retry_in_ms: delay.as_millis() as u64,
                };
                if let Err(e) = w.journal(&u).await {
                    tracing::error!(media_id = %id, error = %e, "cannot journal a media attempt");
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Scans an unscanned file again, with backoff, until clamd gives a verdict.
/// Aborted at shutdown; resumed at the next start (the entry stays `unscanned`).
async fn rescan(w: &MediaWorker, id: &str, file: &str) {
    let mut tries = 0u32;
    loop {
        tries += 1;
        tokio::time::sleep(w.backoff(tries)).await;
        match w.fetcher.scan_file(file).await {
            Ok(Verdict::Clean) => {
                let u = MediaUpdate::Scanned {
                    media_id: id.to_string(),
                    file: file.to_string(),
                    scan: CLEAN.into(),
                };
                match w.journal(&u).await {
                    Ok(()) => {
                        tracing::info!(media_id = %id, tries, "media scanned clean; now served");
                        return;
                    }
                    Err(e) => tracing::error!(media_id = %id, error = %e, "cannot journal a scan"),
                }
            }
            Ok(Verdict::Infected(name)) => {
                // Journaled first: the entry stops naming the file, then it goes (a
                // crash in between leaves an orphan for the sweep, never a reference).
                finish(w, id, 0, MediaState::Quarantined, infected(&name), None).await;
                w.fetcher.remove(file.to_string()).await;
                return;
            }
            Err(e) => {
                tracing::warn!(media_id = %id, tries, error = %e, "malware scan failed; will retry (the file is not served)")
            }
        }
    }
}

async fn finish(
    w: &MediaWorker,
    id: &str,
    attempt: u32,
    state: MediaState,
    reason: String,
    sha256: Option<String>,
) {
    tracing::warn!(media_id = %id, state = state.as_str(), reason = %reason, "media job given up");
    let u = MediaUpdate::Failed {
        media_id: id.to_string(),
        attempt,
        state,
        reason,
        sha256,
    };
    if let Err(e) = w.journal(&u).await {
        tracing::error!(media_id = %id, error = %e, "cannot journal a media failure; retried at next start");
    }
}
