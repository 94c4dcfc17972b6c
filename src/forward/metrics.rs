//! The `wagate_forward_*` metrics: per target, from its durable state and the
//! worker's counters since start.

use std::fmt::Write;

use super::record::TargetState;
use super::{ForwardError, Forwarder, Live};

/// Appends the `wagate_forward_*` metrics to `out`.
pub async fn render(forward: &Forwarder, out: &mut String) -> Result<(), ForwardError> {
    let all = forward.statuses().await?;
    type Get = fn(&TargetState, &Live) -> u64;
    let series: [(&str, &str, &str, Get); 10] = [
        (
            "wagate_forward_queue_depth",
            "gauge",
            "Entries waiting per target.",
            |s, _| s.queued,
        ),
        (
            "wagate_forward_delivered_total",
            "counter",
            "Entries delivered per target.",
            |s, _| s.delivered,
        ),
        (
            "wagate_forward_dead_letters_total",
            "counter",
            "Entries dead-lettered per target.",
            |s, _| s.dead_lettered,
        ),
        (
            "wagate_forward_attempts_total",
            "counter",
            "Requests made per target since start.",
            |_, l| l.attempts,
        ),
        (
            "wagate_forward_failures_total",
            "counter",
            "Failed requests per target since start.",
            |_, l| l.failures,
        ),
        (
            "wagate_forward_entry_failures_total",
            "counter",
            "Entries per target that could not be built or sent (dead-lettered with the reason) since start.",
            |_, l| l.entry_failures,
        ),
        (
            "wagate_forward_worker_restarts_total",
            "counter",
            "Times a target's worker died and was started again since start.",
            |_, l| l.worker_restarts,
        ),
        (
            "wagate_forward_paused",
            "gauge",
            "1 while a target is paused (only probed).",
            |_, l| u64::from(l.paused),
        ),
        (
            "wagate_forward_disabled",
            "gauge",
            "1 while a target is disabled (it answered 410).",
            |s, _| u64::from(s.disabled.is_some()),
        ),
        (
            "wagate_forward_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last delivery per target (0: none).",
            |s, _| {
                s.last_success_micros
                    .map_or(0, |m| (m / 1_000_000).max(0) as u64)
            },
        ),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for t in &all {
            let _ = writeln!(
                out,
                "{name}{{target=\"{}\"}} {}",
                t.target.id,
                get(&t.state, &t.live)
            );
        }
    }
    Ok(())
}
