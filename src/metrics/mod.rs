//! `GET /metrics` in Prometheus text format (names prefixed `wagate_`), behind the
//! API token or `WAGATE_METRICS_TOKEN`.

pub mod histogram;

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use subtle::ConstantTimeEq;
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

pub use histogram::Histogram;

use crate::app::AppState;
use crate::delivery::Verdict;
use crate::web::error::ApiError;

const VERDICTS: [Verdict; 6] = [
    Verdict::Accepted,
    Verdict::MissingHeader,
    Verdict::MalformedHeader,
    Verdict::Mismatch,
    Verdict::NoSecretConfigured,
    Verdict::TooLarge,
];

/// What the request path records. Counters start at zero with the process.
#[derive(Debug)]
pub struct Metrics {
    deliveries: [AtomicU64; 6],
    /// 503s: a delivery that could not be journaled.
    pub journal_failures: AtomicU64,
    /// From the first body byte read to the answer being ready (after fsync).
    pub ack_latency: Histogram,
    pub handshakes_ok: AtomicU64,
    pub handshakes_refused: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            deliveries: Default::default(),
            journal_failures: AtomicU64::new(0),
            ack_latency: Histogram::latency(),
            handshakes_ok: AtomicU64::new(0),
            handshakes_refused: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn delivery(&self, verdict: Verdict, latency_micros: u64) {
        self.deliveries[verdict as usize].fetch_add(1, Ordering::Relaxed);
        self.ack_latency.observe_micros(latency_micros);
    }
}

pub fn routes(state: AppState) -> BoxedFilter<(warp::reply::Response,)> {
    warp::get()
        .and(warp::path("metrics"))
        .and(warp::path::end())
        .and(warp::header::optional::<String>("authorization"))
        .then(move |auth: Option<String>| {
            let state = state.clone();
            async move {
                let given = auth
                    .as_deref()
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or("");
                let ok = |t: &str| bool::from(given.trim().as_bytes().ct_eq(t.as_bytes()));
                let allowed = ok(state.api_token.expose())
                    || state
                        .config
                        .metrics_token
                        .as_ref()
                        .is_some_and(|t| ok(t.expose()));
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

async fn render(state: &AppState) -> Result<String, ApiError> {
    let stats = crate::api::stats::stats(state).await?;
    let m = &state.metrics;
    let mut out = String::with_capacity(4096);
    let _ = writeln!(out, "# HELP wagate_deliveries_total Webhook POSTs by verdict since start.\n# TYPE wagate_deliveries_total counter");
    for v in VERDICTS {
        let n = m.deliveries[v as usize].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "wagate_deliveries_total{{verdict=\"{}\"}} {n}",
            v.as_str()
        );
    }
    counter(
        &mut out,
        "wagate_journal_failures_total",
        "Deliveries answered 503 because they could not be journaled.",
        m.journal_failures.load(Ordering::Relaxed),
    );
    m.ack_latency.render(
        &mut out,
        "wagate_ack_latency_seconds",
        "Time to answer POST /webhook, fsync included.",
    );
    state.journal.fsync_latency().render(
        &mut out,
        "wagate_journal_fsync_seconds",
        "Duration of one group commit (write + fdatasync).",
    );
    gauge(
        &mut out,
        "wagate_journal_head",
        "Last sequence number synced to the journal.",
        stats.journal_head,
    );
    gauge(
        &mut out,
        "wagate_applied",
        "Everything up to this sequence number is processed.",
        stats.applied,
    );
    gauge(
        &mut out,
        "wagate_apply_lag",
        "Journal records not processed yet.",
        stats.journal_head.saturating_sub(stats.applied),
    );
    gauge(
        &mut out,
        "wagate_dedup_filter_keys",
        "Recent dedup keys held in memory (new items need no read from the store).",
        stats.dedup_filter_keys as u64,
    );
    gauge(
        &mut out,
        "wagate_dedup_filter_ready",
        "1 once the dedup filter is built from the store; 0 while it is building.",
        u64::from(stats.dedup_filter == crate::events::seen::FilterState::Ready),
    );
    let _ = writeln!(
        out,
        "# HELP wagate_items_total Webhook items by outcome.\n# TYPE wagate_items_total counter"
    );
    for kind in ["new", "duplicate", "stale"] {
        let v = stats
            .counters
            .get(&format!("items_{kind}"))
            .copied()
            .unwrap_or(0);
        let _ = writeln!(out, "wagate_items_total{{outcome=\"{kind}\"}} {v}");
    }
    for (key, help) in [
        ("messages", "Inbound messages stored."),
        ("statuses", "Status updates stored."),
        ("events", "Account events stored."),
        (
            "unparseable",
            "Accepted deliveries that are not Meta's JSON.",
        ),
    ] {
        let v = stats.counters.get(key).copied().unwrap_or(0);
        counter(&mut out, &format!("wagate_{key}_total"), help, v);
    }
    let _ = writeln!(
        out,
        "# HELP wagate_handshakes_total Webhook handshakes since start.\n# TYPE wagate_handshakes_total counter\nwagate_handshakes_total{{outcome=\"ok\"}} {}\nwagate_handshakes_total{{outcome=\"refused\"}} {}",
        m.handshakes_ok.load(Ordering::Relaxed),
        m.handshakes_refused.load(Ordering::Relaxed)
    );
    render_media_and_sends(&mut out, state, &stats.counters);
    let _ = writeln!(
        out,
        "# HELP wagate_retention_deleted_total What the retention sweeps deleted since start.\n# TYPE wagate_retention_deleted_total counter"
    );
    for (what, n) in state.retention.values() {
        let _ = writeln!(out, "wagate_retention_deleted_total{{what=\"{what}\"}} {n}");
    }
    if let Some(acme) = state.acme.get() {
        render_acme(&mut out, &acme.borrow());
    }
    let dir = state.config.data_dir.clone();
    let usage = tokio::task::spawn_blocking(move || {
        ["journal", "quarantine", "state", "media"].map(|d| (d, dir_bytes(&dir.join(d))))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let _ = writeln!(
        out,
        "# HELP wagate_data_bytes Disk used in the data directory.\n# TYPE wagate_data_bytes gauge"
    );
    for (d, bytes) in usage {
        let _ = writeln!(out, "wagate_data_bytes{{dir=\"{d}\"}} {bytes}");
    }
    let free = crate::disk::free_bytes(&state.config.data_dir).unwrap_or(0);
    gauge(
        &mut out,
        "wagate_disk_free_bytes",
        "Free space on the data directory's filesystem.",
        free,
    );
    gauge(
        &mut out,
        "wagate_disk_low",
        "1 when free space is below WAGATE_MIN_FREE.",
        u64::from(free < state.config.min_free),
    );
    crate::forward::render_metrics(state, &mut out).await?;
    counter(
        &mut out,
        "wagate_forward_unrouted_total",
        "New items whose phone number no forwarding target claims.",
        stats.counters.get("forward_unrouted").copied().unwrap_or(0),
    );
    gauge(
        &mut out,
        "wagate_uptime_seconds",
        "Seconds since start.",
        stats.uptime_seconds,
    );
    Ok(out)
}

/// Media jobs and sends by state (applier counters), and the media worker's totals.
fn render_media_and_sends(
    out: &mut String,
    state: &AppState,
    counters: &std::collections::BTreeMap<String, u64>,
) {
    use crate::media::record::MediaState as M;
    use crate::outbox::record::State as S;
    let _ = writeln!(
        out,
        "# HELP wagate_media_jobs Media jobs by state.\n# TYPE wagate_media_jobs gauge"
    );
    for s in [
        M::Pending,
        M::Unscanned,
        M::Stored,
        M::Failed,
        M::Quarantined,
        M::Expired,
        M::Deleted,
    ] {
        let v = counters.get(crate::media::apply::state_counter(s)).copied();
        let _ = writeln!(
            out,
            "wagate_media_jobs{{state=\"{}\"}} {}",
            s.as_str(),
            v.unwrap_or(0)
        );
    }
    let _ = writeln!(
        out,
        "# HELP wagate_sends Outbound messages by state.\n# TYPE wagate_sends gauge"
    );
    for s in [S::Queued, S::Sending, S::Sent, S::Failed, S::Unknown] {
        let name = s.counter();
        let v = counters.get(name).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "wagate_sends{{state=\"{}\"}} {v}",
            &name["sends_".len()..]
        );
    }
    let m = &state.media_worker.stats();
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    gauge(
        out,
        "wagate_media_paused_low_disk",
        "Whether media downloads wait for free disk space (1: paused).",
        load(&m.paused_low_disk),
    );
    counter(
        out,
        "wagate_media_stored_bytes_total",
        "Plaintext bytes of media stored since start.",
        load(&m.bytes_stored),
    );
    counter(
        out,
        "wagate_media_attempts_failed_total",
        "Media download attempts that failed and were retried, since start.",
        load(&m.attempts_failed),
    );
    let _ = writeln!(
        out,
        "# HELP wagate_media_scans_total Malware scans by result, since start.\n# TYPE wagate_media_scans_total counter"
    );
    for (i, r) in ["clean", "infected", "error"].iter().enumerate() {
        let _ = writeln!(
            out,
            "wagate_media_scans_total{{result=\"{r}\"}} {}",
            load(&m.scans[i])
        );
    }
    let _ = writeln!(
        out,
        "# HELP wagate_media_sweep_removed_total Files removed by the media sweeps, since start.\n# TYPE wagate_media_sweep_removed_total counter"
    );
    for (what, a) in [
        ("expired", &m.ttl_deleted),
        ("temp", &m.temp_removed),
        ("orphan", &m.orphans_removed),
    ] {
        let _ = writeln!(
            out,
            "wagate_media_sweep_removed_total{{file=\"{what}\"}} {}",
            load(a)
        );
    }
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

/// The ACME certificate: when it expires, the next order, orders and failures.
fn render_acme(out: &mut String, s: &crate::acme::AcmeStatus) {
    if let Some(c) = &s.certificate {
        gauge(
            out,
            "wagate_acme_certificate_expiry_timestamp_seconds",
            "When the certificate being served expires (unix seconds).",
            c.not_after.max(0) as u64,
        );
    }
    if let Some(at) = s.next_order_at {
        gauge(
            out,
            "wagate_acme_next_order_timestamp_seconds",
            "When the next ACME order (renewal or retry) is due (unix seconds).",
            at.max(0) as u64,
        );
    }
    counter(
        out,
        "wagate_acme_orders_total",
        "ACME orders started since start.",
        s.orders,
    );
    counter(
        out,
        "wagate_acme_issued_total",
        "Certificates issued since start.",
        s.issued,
    );
    gauge(
        out,
        "wagate_acme_failures",
        "Consecutive failed ACME orders (0 after a success).",
        u64::from(s.failures),
    );
}
