//! One media job: attempts until the file is stored or the job is final (what
//! follows each attempt is `decide.rs`'s), and the rescan of a file stored before
//! clamd could give a verdict. Both are aborted at shutdown and resumed at the next
//! start (the entry stays `pending` or `unscanned`).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::decide::{self, Outcome, Stored};
use super::fetch::{infected, CLEAN};
use super::record::{MediaEntry, MediaState, MediaUpdate};
use super::scan::Verdict;
use super::worker_core::WorkerCore;
use crate::upstream::media::{invalid_media_id, valid_media_id};
use crate::util::backoff::jitter;

/// Runs one job until it is stored or final. Aborted at shutdown.
pub async fn job(w: Arc<WorkerCore>, entry: MediaEntry, sem: Arc<Semaphore>) {
    let id = entry.media_id.clone();
    let mut attempt = entry.attempts;
    // The webhook's URL is only worth a try before any attempt failed.
    let mut url = entry.webhook_url.clone().filter(|_| attempt == 0);
    let mut quick_retry_used = false;
    if !valid_media_id(&id) {
        // Never put in a Graph URL (nor downloaded): Meta's ids are digits.
        let reason = invalid_media_id(&id);
        finish(&w, &id, attempt, MediaState::Failed, reason, None).await;
        return;
    }
    let generation = w.store.generation();
    loop {
        if w.store.generation() != generation && erased(&w, &id).await {
            // An erasure took its message away while the job waited: not downloaded.
            return;
        }
        let now = w.fetcher.clock.now_micros();
        if decide::id_expired(now, entry.id_expires_at_micros) {
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
            Outcome::Stored(stored) => {
                if record_stored(&w, &id, attempt, stored).await {
                    return;
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
                let limits = w.backoff();
                let next = decide::next_retry(
                    backoff,
                    after,
                    quick_retry_used,
                    attempt,
                    &limits,
                    jitter(),
                );
                quick_retry_used = next.quick_retry_used;
                retry_later(&w, &id, attempt, reason, next.delay).await;
            }
        }
    }
}

/// Journals a stored file (then rescans it if clamd could not scan it yet). False
/// when it could not be journaled: the file is removed and the job tries again.
async fn record_stored(w: &WorkerCore, id: &str, attempt: u32, stored: Stored) -> bool {
    let Stored {
        file,
        mime_type,
        scan,
        unscanned,
    } = stored;
    let (name, size) = (file.name.clone(), file.size);
    let waiting = unscanned.is_some();
    let u = MediaUpdate::Stored {
        media_id: id.to_string(),
        attempt,
        file: file.name,
        size,
        sha256: hex::encode(file.sha256),
        key_id: file.key_id,
        mime_type,
        scan,
        unscanned,
    };
    match w.journal(&u).await {
        Ok(()) if waiting => {
            tracing::warn!(media_id = %id, size, attempt, "media stored but not scanned yet; not served until it is");
            rescan(w, id, &name).await;
            true
        }
        Ok(()) => {
            tracing::info!(media_id = %id, size, attempt, "media stored");
            true
        }
        Err(e) => {
            // Not recorded: the file must not stay (it would be an orphan).
            tracing::error!(media_id = %id, error = %e, "cannot journal a stored media file");
            let files = w.fetcher.files.clone();
            let _ = tokio::task::spawn_blocking(move || files.delete(&name)).await;
            w.fetcher.clock.sleep(w.backoff().random(attempt)).await;
            false
        }
    }
}

/// Journals a failed attempt and waits `delay` before the next.
async fn retry_later(w: &WorkerCore, id: &str, attempt: u32, reason: String, delay: Duration) {
    w.fetcher.stats.attempts_failed.fetch_add(1, Relaxed);
    tracing::warn!(media_id = %id, attempt, error = %reason, retry_in_ms = delay.as_millis() as u64, "media download failed; will retry");
    let u = MediaUpdate::Attempt {
        media_id: id.to_string(),
        attempt,
        error: reason,
        retry_in_ms: delay.as_millis() as u64,
    };
    if let Err(e) = w.journal(&u).await {
        tracing::error!(media_id = %id, error = %e, "cannot journal a media attempt");
    }
    w.fetcher.clock.sleep(delay).await;
}

/// Scans an unscanned file again, with backoff, until clamd gives a verdict.
/// Aborted at shutdown; resumed at the next start (the entry stays `unscanned`).
pub async fn rescan(w: &WorkerCore, id: &str, file: &str) {
    let mut tries = 0u32;
    loop {
        tries += 1;
        w.fetcher.clock.sleep(w.backoff().random(tries)).await;
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
    w: &WorkerCore,
    id: &str,
    attempt: u32,
    state: MediaState,
    reason: String,
    sha256: Option<String>,
) {
    let shown = id.escape_default();
    tracing::warn!(media_id = %shown, state = state.as_str(), reason = %reason, "media job given up");
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

/// Whether the entry of media `id` is gone from the state (a rebuilt one, swapped in
/// by an erasure).
async fn erased(w: &WorkerCore, id: &str) -> bool {
    let (st, id) = (w.store.clone(), id.to_string());
    matches!(
        crate::store::blocking(move || st.media_entry(&id)).await,
        Ok(None)
    )
}
