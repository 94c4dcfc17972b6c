//! The ACME series: the certificate's expiry, the next order, orders and failures.

use super::AcmeStatus;
use crate::util::prom;

/// The ACME certificate: when it expires, the next order, orders and failures.
pub fn render(out: &mut String, s: &AcmeStatus) {
    if let Some(c) = &s.certificate {
        prom::gauge(
            out,
            "wagate_acme_certificate_expiry_timestamp_seconds",
            "When the certificate being served expires (unix seconds).",
            c.not_after.max(0) as u64,
        );
    }
    if let Some(at) = s.next_order_at {
        prom::gauge(
            out,
            "wagate_acme_next_order_timestamp_seconds",
            "When the next ACME order (renewal or retry) is due (unix seconds).",
            at.max(0) as u64,
        );
    }
    prom::counter(
        out,
        "wagate_acme_orders_total",
        "ACME orders started since start.",
        s.orders,
    );
    prom::counter(
        out,
        "wagate_acme_issued_total",
        "Certificates issued since start.",
        s.issued,
    );
    prom::gauge(
        out,
        "wagate_acme_failures",
        "Consecutive failed ACME orders (0 after a success).",
        u64::from(s.failures),
    );
}
