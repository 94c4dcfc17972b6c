//! The webhook's own series: deliveries by verdict, journal failures, the ack
//! latency, handshakes. Counters start at zero with the process.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::journal::delivery::Verdict;
use crate::util::histogram::Histogram;
use crate::util::prom;

const VERDICTS: [Verdict; 7] = [
    Verdict::Accepted,
    Verdict::MissingHeader,
    Verdict::MalformedHeader,
    Verdict::Mismatch,
    Verdict::NoSecretConfigured,
    Verdict::TooLarge,
    Verdict::Truncated,
];

/// What the request path records. Counters start at zero with the process.
#[derive(Debug)]
pub struct WebhookMetrics {
    deliveries: [AtomicU64; 7],
    /// 503s: a delivery that could not be journaled.
    pub journal_failures: AtomicU64,
    /// From the first body byte read to the answer being ready (after fsync).
    pub ack_latency: Histogram,
    pub handshakes_ok: AtomicU64,
    pub handshakes_refused: AtomicU64,
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        WebhookMetrics {
            deliveries: Default::default(),
            journal_failures: AtomicU64::new(0),
            ack_latency: Histogram::latency(),
            handshakes_ok: AtomicU64::new(0),
            handshakes_refused: AtomicU64::new(0),
        }
    }
}

impl WebhookMetrics {
    pub fn delivery(&self, verdict: Verdict, latency_micros: u64) {
        self.deliveries[verdict as usize].fetch_add(1, Ordering::Relaxed);
        self.ack_latency.observe_micros(latency_micros);
    }

    /// Appends this feature's series to a `/metrics` page.
    pub fn render(&self, out: &mut String) {
        let deliveries = VERDICTS.map(|v| {
            (
                v.as_str(),
                self.deliveries[v as usize].load(Ordering::Relaxed),
            )
        });
        prom::labeled(
            out,
            "wagate_deliveries_total",
            "counter",
            "Webhook POSTs by verdict since start.",
            "verdict",
            deliveries,
        );
        prom::counter(
            out,
            "wagate_journal_failures_total",
            "Deliveries answered 503 because they could not be journaled.",
            self.journal_failures.load(Ordering::Relaxed),
        );
        self.ack_latency.render(
            out,
            "wagate_ack_latency_seconds",
            "Time to answer POST /webhook, fsync included.",
        );
        let handshakes = [
            ("ok", self.handshakes_ok.load(Ordering::Relaxed)),
            ("refused", self.handshakes_refused.load(Ordering::Relaxed)),
        ];
        prom::labeled(
            out,
            "wagate_handshakes_total",
            "counter",
            "Webhook handshakes since start.",
            "outcome",
            handshakes,
        );
    }
}
