//! `GET /metrics` in Prometheus text format (names prefixed `wagate_`), behind the
//! API token or `WAGATE_METRICS_TOKEN`. Each feature writes its own series; this
//! page puts them together with the journal's and the disk's.

use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use super::WebState;
use crate::config::Secret;
use crate::httpkit::bearer_matches;
use crate::httpkit::error::ApiError;
use crate::util::prom;

pub fn routes(state: WebState) -> BoxedFilter<(warp::reply::Response,)> {
    warp::get()
        .and(warp::path("metrics"))
        .and(warp::path::end())
        .and(warp::header::optional::<String>("authorization"))
        .then(move |auth: Option<String>| {
            let state = state.clone();
            async move {
                let ok = |t: &Secret| bearer_matches(auth.as_deref(), t);
                let allowed =
                    ok(&state.api_token) || state.config.metrics_token.as_ref().is_some_and(ok);
                if !allowed {
                    return ApiError::Unauthorized.into_response();
                }
                match render(&state).await {
                    Ok(text) => {
                        warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4")
                            .into_response()
                    }
                    Err(e) => e.into_response(),
                }
            }
        })
        .boxed()
}

pub(crate) fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

async fn render(state: &WebState) -> Result<String, ApiError> {
    let stats = super::api::stats::stats(state).await?;
    let mut out = String::with_capacity(4096);
    state.webhook.metrics.render(&mut out);
    state.journal.fsync_latency().render(
        &mut out,
        "wagate_journal_fsync_seconds",
        "Duration of one group commit (write + fdatasync).",
    );
    prom::gauge(
        &mut out,
        "wagate_journal_head",
        "Last sequence number synced to the journal.",
        stats.journal_head,
    );
    let progress = *state.applied.borrow();
    crate::pipeline::metrics::render(
        &mut out,
        stats.journal_head,
        stats.applied,
        &progress,
        &stats.counters,
        &state.retention,
        &state.apply_health.snapshot(),
    );
    crate::media::metrics::render(&mut out, &stats.counters, state.media_worker.stats());
    crate::outbox::metrics::render(&mut out, &stats.counters);
    if let Some(acme) = state.acme.get() {
        crate::acme::metrics::render(&mut out, &acme.borrow());
    }
    state.dashboard.render_metrics(&mut out);
    render_disk(&mut out, state).await?;
    crate::forward::metrics::render(&state.forward, &mut out)
        .await
        .map_err(ApiError::from)?;
    render_memory(&mut out, state);
    prom::gauge(
        &mut out,
        "wagate_uptime_seconds",
        "Seconds since start.",
        stats.uptime_seconds,
    );
    Ok(out)
}

/// The memory budget and what the process takes.
fn render_memory(out: &mut String, state: &WebState) {
    prom::gauge(
        out,
        "wagate_memory_budget_bytes",
        "WAGATE_MEMORY: what the process should stay within.",
        state.config.memory.total,
    );
    if let Some(r) = crate::util::memory::resident() {
        prom::gauge(
            out,
            "wagate_resident_memory_bytes",
            "Resident memory of the process (VmRSS).",
            r.now,
        );
        prom::gauge(
            out,
            "wagate_resident_memory_peak_bytes",
            "Highest resident memory since start (VmHWM).",
            r.peak,
        );
    }
}

/// Disk used per data directory, free space, and whether it is below the minimum.
async fn render_disk(out: &mut String, state: &WebState) -> Result<(), ApiError> {
    let (dir, state_dir) = (state.config.data_dir.clone(), state.store.dir());
    let usage = tokio::task::spawn_blocking(move || {
        ["journal", "quarantine", "state", "media"].map(|d| {
            let path = if d == "state" {
                state_dir.clone()
            } else {
                dir.join(d)
            };
            (d, dir_bytes(&path))
        })
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    prom::labeled(
        out,
        "wagate_data_bytes",
        "gauge",
        "Disk used in the data directory.",
        "dir",
        usage,
    );
    let free = crate::util::disk::free_bytes(&state.config.data_dir).unwrap_or(0);
    prom::gauge(
        out,
        "wagate_disk_free_bytes",
        "Free space on the data directory's filesystem.",
        free,
    );
    prom::gauge(
        out,
        "wagate_disk_low",
        "1 when free space is below WAGATE_MIN_FREE.",
        u64::from(free < state.config.min_free),
    );
    Ok(())
}
