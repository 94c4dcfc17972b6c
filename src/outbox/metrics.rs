//! The outbox's series: sends by state (the applier's counters).

use std::collections::BTreeMap;

use super::record::State as S;
use crate::util::prom;

/// Appends `wagate_sends`; `counters` are the applier's totals.
pub fn render(out: &mut String, counters: &BTreeMap<String, u64>) {
    let states = [S::Queued, S::Sending, S::Sent, S::Failed, S::Unknown].map(|s| {
        let name = s.counter();
        (
            &name["sends_".len()..],
            counters.get(name).copied().unwrap_or(0),
        )
    });
    prom::labeled(
        out,
        "wagate_sends",
        "gauge",
        "Outbound messages by state.",
        "state",
        states,
    );
}
