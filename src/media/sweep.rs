//! The media sweep, at start and on a timer: deletes stored files past their TTL
//! (the deletion is journaled *before* the file is removed, so a crash in between
//! leaves an orphan the next sweep removes, never a reference to a missing file),
//! then removes temp files and files no entry knows.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::record::{MediaEntry, MediaUpdate};
use super::worker_core::WorkerCore;
use crate::store::StoreError;

/// What the TTL part of a sweep found (the file part logs itself).
#[derive(Debug, Default)]
pub struct TtlReport {
    pub deleted: usize,
    pub errors: usize,
}

/// One sweep. `min_age`: temp and orphan files younger than this are spared (zero
/// at start, before any download runs).
pub async fn sweep(w: &WorkerCore, min_age: Duration) -> TtlReport {
    let report = match expired_entries(w).await {
        Ok(expired) => delete_expired(w, expired).await,
        Err(e) => {
            tracing::error!(error = %e, "media sweep: cannot read media entries");
            return TtlReport::default();
        }
    };
    // The deletions must be applied before the known set is read.
    w.wait_applied().await;
    sweep_temp_and_orphans(w, min_age).await;
    w.fetcher
        .stats
        .ttl_deleted
        .fetch_add(report.deleted as u64, Relaxed);
    tracing::info!(
        ttl_deleted = report.deleted,
        errors = report.errors,
        "media TTL sweep"
    );
    report
}

/// The entries whose file is past its TTL (or its own expiry).
async fn expired_entries(w: &WorkerCore) -> Result<Vec<MediaEntry>, StoreError> {
    let now = w.fetcher.clock.now_micros();
    let ttl = w.fetcher.config.ttl.as_micros().min(i64::MAX as u128) as i64;
    let st = w.store.clone();
    crate::store::blocking(move || {
        let mut out: Vec<MediaEntry> = Vec::new();
        st.media_for_each(|e| {
            let due = e
                .stored_at_micros
                .map(|s| s.saturating_add(ttl))
                .into_iter()
                .chain(e.expires_at_micros)
                .min();
            if e.live_file().is_some() && due.is_some_and(|d| d <= now) {
                out.push(e);
            }
            Ok(())
        })?;
        Ok(out)
    })
    .await
}

/// Journals each deletion, then removes the file.
async fn delete_expired(w: &WorkerCore, expired: Vec<MediaEntry>) -> TtlReport {
    let mut report = TtlReport::default();
    for e in expired {
        let Some(file) = e.live_file().map(str::to_string) else {
            continue;
        };
        let u = MediaUpdate::Deleted {
            media_id: e.media_id.clone(),
            file: file.clone(),
            reason: "WAGATE_MEDIA_TTL passed".into(),
        };
        if let Err(err) = w.journal(&u).await {
            tracing::error!(media_id = %e.media_id, error = %err, "media sweep: cannot journal a deletion; file kept");
            report.errors += 1;
            continue;
        }
        let files = w.fetcher.files.clone();
        match tokio::task::spawn_blocking(move || files.delete(&file)).await {
            Ok(Ok(_)) => {
                report.deleted += 1;
                tracing::info!(media_id = %e.media_id, "media sweep deleted an expired file");
            }
            Ok(Err(err)) => {
                report.errors += 1;
                tracing::warn!(media_id = %e.media_id, error = %err, "media sweep: cannot delete (the orphan sweep retries)");
            }
            Err(err) => {
                report.errors += 1;
                tracing::warn!(error = %err, "media sweep task failed");
            }
        }
    }
    report
}

/// Removes temp files and files no entry names (younger than `min_age` spared).
async fn sweep_temp_and_orphans(w: &WorkerCore, min_age: Duration) {
    let st = w.store.clone();
    let known = crate::store::blocking(move || {
        let mut known = HashSet::new();
        st.media_for_each(|e| {
            if let Some(f) = e.live_file() {
                known.insert(f.to_string());
            }
            Ok(())
        })?;
        Ok(known)
    })
    .await;
    let known = match known {
        Ok(known) => known,
        Err(e) => {
            tracing::error!(error = %e, "media sweep: cannot read the known files");
            return;
        }
    };
    let files = w.fetcher.files.clone();
    let res = tokio::task::spawn_blocking(move || {
        files.sweep_temp_and_orphans(|n| known.contains(n), min_age)
    })
    .await;
    match res {
        Ok(Ok(r)) => {
            let stats = &w.fetcher.stats;
            stats
                .temp_removed
                .fetch_add(r.temp_removed.len() as u64, Relaxed);
            stats
                .orphans_removed
                .fetch_add(r.orphans_removed.len() as u64, Relaxed);
        }
        Ok(Err(e)) => tracing::error!(error = %e, "media sweep of temp and orphan files failed"),
        Err(e) => tracing::error!(error = %e, "media sweep task failed"),
    }
}
