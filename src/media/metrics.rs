//! The media series: jobs by state (the applier's counters) and what the worker
//! has done since start.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::apply::state_counter;
use super::record::MediaState as M;
use super::MediaStats;
use crate::util::prom;

/// Appends the media series; `counters` are the applier's totals.
pub fn render(out: &mut String, counters: &BTreeMap<String, u64>, m: &MediaStats) {
    let states = [
        M::Pending,
        M::Unscanned,
        M::Stored,
        M::Failed,
        M::Quarantined,
        M::Expired,
        M::Deleted,
    ]
    .map(|s| {
        let v = counters.get(state_counter(s)).copied().unwrap_or(0);
        (s.as_str(), v)
    });
    prom::labeled(
        out,
        "wagate_media_jobs",
        "gauge",
        "Media jobs by state.",
        "state",
        states,
    );
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    prom::gauge(
        out,
        "wagate_media_paused_low_disk",
        "Whether media downloads wait for free disk space (1: paused).",
        load(&m.paused_low_disk),
    );
    prom::counter(
        out,
        "wagate_media_stored_bytes_total",
        "Plaintext bytes of media stored since start.",
        load(&m.bytes_stored),
    );
    prom::counter(
        out,
        "wagate_media_attempts_failed_total",
        "Media download attempts that failed and were retried, since start.",
        load(&m.attempts_failed),
    );
    let scans = ["clean", "infected", "error"]
        .into_iter()
        .zip(m.scans.iter().map(load));
    prom::labeled(
        out,
        "wagate_media_scans_total",
        "counter",
        "Malware scans by result, since start.",
        "result",
        scans,
    );
    let swept = [
        ("expired", load(&m.ttl_deleted)),
        ("temp", load(&m.temp_removed)),
        ("orphan", load(&m.orphans_removed)),
    ];
    prom::labeled(
        out,
        "wagate_media_sweep_removed_total",
        "counter",
        "Files removed by the media sweeps, since start.",
        "file",
        swept,
    );
}
