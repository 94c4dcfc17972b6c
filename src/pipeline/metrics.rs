//! The processing series: how far the applier has got, the dedup filter, items
//! by outcome, what was stored, and what the retention sweeps deleted.

use std::collections::BTreeMap;

use super::retention::RetentionTotals;
use super::running::HealthState;
use crate::store::{Applied, FilterState};
use crate::util::prom;

/// Appends the processing series. `head` is the journal's last synced sequence
/// number, `applied` everything up to which is processed, `counters` the applier's
/// totals.
pub fn render(
    out: &mut String,
    head: u64,
    applied: u64,
    progress: &Applied,
    counters: &BTreeMap<String, u64>,
    retention: &RetentionTotals,
    health: &HealthState,
) {
    let count = |k: &str| counters.get(k).copied().unwrap_or(0);
    prom::gauge(
        out,
        "wagate_applied",
        "Everything up to this sequence number is processed.",
        applied,
    );
    prom::gauge(
        out,
        "wagate_apply_lag",
        "Journal records not processed yet.",
        head.saturating_sub(applied),
    );
    prom::gauge(
        out,
        "wagate_apply_failing",
        "1 while applying the journal fails (the last step failed); 0 when it works.",
        u64::from(health.consecutive_failures > 0),
    );
    prom::counter(
        out,
        "wagate_apply_failures_total",
        "Failed applier steps since start (each is retried).",
        health.failures_total,
    );
    prom::gauge(
        out,
        "wagate_dedup_filter_keys",
        "Recent dedup keys held in memory (new items need no read from the store).",
        progress.dedup_filter_keys as u64,
    );
    prom::gauge(
        out,
        "wagate_dedup_filter_ready",
        "1 once the dedup filter is built from the store; 0 while it is building.",
        u64::from(progress.dedup_filter == FilterState::Ready),
    );
    let outcomes = ["new", "duplicate", "stale"].map(|k| (k, count(&format!("items_{k}"))));
    prom::labeled(
        out,
        "wagate_items_total",
        "counter",
        "Webhook items by outcome.",
        "outcome",
        outcomes,
    );
    for (key, help) in [
        ("messages", "Inbound messages stored."),
        ("statuses", "Status updates stored."),
        ("events", "Account events stored."),
        (
            "unparseable",
            "Accepted deliveries that are not Meta's JSON.",
        ),
        (
            "items_skipped",
            "Items past WAGATE_MAX_ITEMS in one delivery, not applied (kept raw).",
        ),
    ] {
        prom::counter(out, &format!("wagate_{key}_total"), help, count(key));
    }
    prom::counter(
        out,
        "wagate_forward_unrouted_total",
        "New items whose phone number no forwarding target claims.",
        count("forward_unrouted"),
    );
    prom::labeled(
        out,
        "wagate_retention_deleted_total",
        "counter",
        "What the retention sweeps deleted since start.",
        "what",
        retention.values(),
    );
}
