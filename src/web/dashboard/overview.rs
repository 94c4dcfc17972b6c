//! `/`: is everything well? Today's deliveries, ack latency, processing lag, when
//! Meta last called, the last handshake, media and send failures.

use askama::Template;

use super::page::{self, Chrome};
use super::{render, respond, Ctx, Response};
use crate::httpkit::error::ApiError;
use crate::outbox::record::State;
use crate::store;

/// No delivery for this long: warn that Meta went quiet.
pub const SILENCE_SECS: i64 = 3600;
/// Media entries counted at most (newest first), outbox entries looked at.
const MEDIA_BUDGET: usize = 10_000;
const OUTBOX_BUDGET: usize = 1_000;

pub struct LastHandshake {
    pub at: String,
    pub ago: String,
    pub accepted: bool,
    pub reason: String,
    pub peer: String,
}

#[derive(Template)]
#[template(path = "dash/overview.html")]
struct Overview {
    chrome: Chrome,
    accepted_today: u64,
    rejected_today: u64,
    accepted_total: u64,
    rejected_total: u64,
    ack_count: u64,
    ack_p50: String,
    ack_p99: String,
    journal_head: u64,
    applied: u64,
    lag: u64,
    last_delivery: Option<(u64, String, String)>,
    silence: Option<String>,
    handshake: Option<LastHandshake>,
    media_failed: u64,
    media_pending: u64,
    media_stored: u64,
    media_partial: bool,
    send_failed: u64,
    send_unknown: u64,
    send_queued: u64,
    messages: u64,
    statuses: u64,
    events: u64,
}

fn bound(q: Option<f64>) -> String {
    match q {
        None => "-".into(),
        Some(s) if s.is_infinite() => "> 10 s".into(),
        Some(s) if s < 0.001 => format!("≤ {} µs", (s * 1e6).round()),
        Some(s) if s < 1.0 => format!("≤ {} ms", (s * 1e3 * 100.0).round() / 100.0),
        Some(s) => format!("≤ {s} s"),
    }
}

pub async fn page(ctx: Ctx) -> Response {
    respond(build(ctx).await)
}

async fn build(ctx: Ctx) -> Result<Response, ApiError> {
    let state = &ctx.req.state;
    let stats = crate::web::api::stats::stats(state).await?;
    let now_micros = state.clock.now_micros();
    let today = (now_micros / 86_400_000_000) as u32;
    let st = state.store.clone();
    let (days, last, handshake, (media, media_partial), outbox) = store::blocking(move || {
        Ok((
            st.day_counts()?,
            st.last_delivery()?,
            st.handshakes(1)?.into_iter().next(),
            st.media_state_counts(MEDIA_BUDGET)?,
            st.outbox_list(None, OUTBOX_BUDGET)?,
        ))
    })
    .await?;
    let (accepted_today, rejected_today) = days.get(&today).copied().unwrap_or_default();
    let ago = |micros: i64| page::duration((now_micros - micros) / 1_000_000);
    let silence = match &last {
        Some(m) if (now_micros - m.received_at_micros) / 1_000_000 > SILENCE_SECS => Some(format!(
            "No delivery from Meta for {}. Check the app's webhook subscription, the callback URL and that Meta can reach wagate.",
            ago(m.received_at_micros)
        )),
        None => Some("No delivery has arrived yet.".into()),
        _ => None,
    };
    let count = |s: &str| media.get(s).copied().unwrap_or(0);
    let outbox_count =
        |f: &dyn Fn(State) -> bool| outbox.iter().filter(|e| f(e.state)).count() as u64;
    let ack = &state.webhook.metrics.ack_latency;
    let counter = |k: &str| stats.counters.get(k).copied().unwrap_or(0);
    let view = Overview {
        chrome: Chrome::new(&ctx, "overview").await,
        accepted_today,
        rejected_today,
        accepted_total: stats.deliveries_accepted,
        rejected_total: stats.deliveries_rejected,
        ack_count: ack.count(),
        ack_p50: bound(ack.quantile(0.5)),
        ack_p99: bound(ack.quantile(0.99)),
        journal_head: stats.journal_head,
        applied: stats.applied,
        lag: stats.journal_head.saturating_sub(stats.applied),
        last_delivery: last.as_ref().map(|m| {
            (
                m.id,
                page::time(m.received_at_micros),
                ago(m.received_at_micros),
            )
        }),
        silence,
        handshake: handshake.map(|h| LastHandshake {
            at: page::time(h.at_micros),
            ago: ago(h.at_micros),
            accepted: h.accepted,
            reason: h.reason,
            peer: h.peer.unwrap_or_default(),
        }),
        media_failed: count("failed") + count("quarantined") + count("expired"),
        media_pending: count("pending"),
        media_stored: count("stored"),
        media_partial,
        send_failed: outbox_count(&|s| s == State::Failed),
        send_unknown: outbox_count(&|s| s == State::Unknown),
        send_queued: outbox_count(&|s| !s.is_final()),
        messages: counter("messages"),
        statuses: counter("statuses"),
        events: counter("events"),
    };
    Ok(render(&view))
}
