//! `GET /webhook` (Meta's subscription handshake) and `POST /webhook` (deliveries).
//! A POST is answered only after its record is synced to the journal.

pub mod diagnosis;
mod metrics;

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Buf;
use futures_util::{Stream as FutStream, StreamExt};
use http::{HeaderMap, StatusCode};
use subtle::ConstantTimeEq;
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use std::sync::Arc;

use crate::config::Secret;
use crate::events::signature::{Outcome, Verifier};
use crate::httpkit::client_ip::client_addr;
use crate::journal::delivery::{Delivery, Verdict};
use crate::journal::{Journal, Kind, Stream};
use crate::store::{Handshake, Store};
use crate::util::cidr::Cidr;
use crate::util::clock::Clock;
pub use metrics::WebhookMetrics;

/// A too-large body keeps this much, enough to see what it was.
pub const TOO_LARGE_KEEP: usize = 64 * 1024;

/// What the webhook's routes use. Built once by the application.
pub struct Webhook {
    pub journal: Arc<Journal>,
    /// Handshake attempts are recorded here.
    pub store: Store,
    pub verifier: Arc<Verifier>,
    /// `WHATSAPP_VERIFY_TOKEN`: the handshake is refused without it.
    pub verify_token: Option<Secret>,
    /// `WAGATE_MAX_BODY`.
    pub max_body: usize,
    pub trusted_proxies: Vec<Cidr>,
    pub metrics: WebhookMetrics,
    /// A delivery's receive time comes from it.
    pub clock: Clock,
}

pub fn routes(state: Arc<Webhook>) -> BoxedFilter<(warp::reply::Response,)> {
    let s = state.clone();
    let handshake = warp::get()
        .and(warp::path("webhook"))
        .and(warp::path::end())
        .and(warp::query::<HashMap<String, String>>())
        .and(crate::httpkit::peer())
        .and(warp::header::optional::<String>("x-forwarded-for"))
        .then(
            move |q: HashMap<String, String>, peer: Option<SocketAddr>, fwd: Option<String>| {
                let peer = client_addr(peer, fwd.as_deref(), &s.trusted_proxies);
                handshake(s.clone(), q, peer)
            },
        );
    let receive = warp::post()
        .and(warp::path("webhook"))
        .and(warp::path::end())
        .and(crate::httpkit::peer())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(move |peer, headers, body| receive(state.clone(), peer, headers, body));
    handshake.or(receive).unify().boxed()
}

async fn handshake(
    state: Arc<Webhook>,
    q: HashMap<String, String>,
    peer: Option<String>,
) -> warp::reply::Response {
    let mode = q.get("hub.mode").map(String::as_str);
    let token = q.get("hub.verify_token").map(String::as_str).unwrap_or("");
    let challenge = q.get("hub.challenge");
    let outcome = match (&state.verify_token, mode, challenge) {
        (None, _, _) => Err("no verify token configured (set WHATSAPP_VERIFY_TOKEN)"),
        (_, m, _) if m != Some("subscribe") => Err("hub.mode is not 'subscribe'"),
        (_, _, None) => Err("no hub.challenge"),
        (Some(expected), _, Some(_)) => {
            if bool::from(expected.expose().as_bytes().ct_eq(token.as_bytes())) {
                Ok(())
            } else {
                Err("hub.verify_token does not match")
            }
        }
    };
    let attempt = Handshake {
        at_micros: state.clock.now_micros(),
        peer,
        accepted: outcome.is_ok(),
        reason: outcome.err().unwrap_or("").to_string(),
    };
    match outcome {
        Ok(()) => tracing::info!(peer = ?attempt.peer, "webhook handshake verified"),
        Err(reason) => tracing::warn!(peer = ?attempt.peer, reason, "webhook handshake refused"),
    }
    let store = state.store.clone();
    let accepted = attempt.accepted;
    let counter = if accepted {
        &state.metrics.handshakes_ok
    } else {
        &state.metrics.handshakes_refused
    };
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Awaited, so the attempt is visible as soon as the answer is.
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = store.record_handshake(&attempt) {
            tracing::warn!(error = %e, "could not record the handshake attempt");
        }
    })
    .await;
    if accepted {
        let body = challenge.cloned().unwrap_or_default();
        warp::reply::with_header(body, "content-type", "text/plain; charset=utf-8").into_response()
    } else {
        warp::reply::with_status("forbidden", StatusCode::FORBIDDEN).into_response()
    }
}

/// What was read of a request body.
struct ReadBody {
    bytes: Vec<u8>,
    received: u64,
    too_large: bool,
    /// Why the body stopped short, when it did: what arrived is still kept.
    cut: Option<Cut>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Not all of it arrived within `WAGATE_BODY_TIMEOUT`.
    TimedOut,
    /// The client went away, or the stream broke, before the end.
    Broken,
}

/// Reads up to `max` bytes; past that keeps only the first `TOO_LARGE_KEEP` and stops.
async fn read_body<S, B>(body: S, max: usize, declared: Option<u64>) -> ReadBody
where
    S: FutStream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let declared_too_large = declared.is_some_and(|n| n > max as u64);
    let cap = if declared_too_large {
        TOO_LARGE_KEEP
    } else {
        max
    };
    let mut read = ReadBody {
        bytes: Vec::with_capacity(declared.map_or(8192, |n| (n as usize).min(cap))),
        received: 0,
        too_large: declared_too_large,
        cut: None,
    };
    while let Some(chunk) = body.next().await {
        let mut chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let timed_out =
                    std::error::Error::source(&e).is_some_and(crate::httpkit::is_body_timeout);
                read.cut = Some(if timed_out {
                    Cut::TimedOut
                } else {
                    Cut::Broken
                });
                return read;
            }
        };
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            read.received += n as u64;
            let room = cap.saturating_sub(read.bytes.len());
            read.bytes.extend_from_slice(&part[..n.min(room)]);
            chunk.advance(n);
        }
        if read.received > cap as u64 {
            read.bytes.truncate(TOO_LARGE_KEEP);
            read.received = read.received.max(declared.unwrap_or(0));
            read.too_large = true;
            return read;
        }
    }
    read
}

/// The verdict on a body that was cut short or too large; `None` when it arrived whole.
fn refused(read: &ReadBody, declared: Option<u64>, max: usize) -> Option<Outcome> {
    let (verdict, reason) = match (read.cut, read.too_large) {
        (Some(cut), _) => {
            let why = match cut {
                Cut::TimedOut => "did not arrive within WAGATE_BODY_TIMEOUT",
                Cut::Broken => "was cut short (the connection broke)",
            };
            let of = declared.map_or(String::new(), |d| format!(" of {d} declared"));
            let reason = format!("the body {why}: {} bytes{of} kept", read.received);
            (Verdict::Truncated, reason)
        }
        (None, true) => {
            let reason = format!(
                "body of {} bytes is over the {max} byte limit (WAGATE_MAX_BODY); first {} bytes kept",
                read.received,
                read.bytes.len()
            );
            (Verdict::TooLarge, reason)
        }
        (None, false) => return None,
    };
    Some(Outcome {
        verdict,
        secret_index: None,
        reason,
    })
}

async fn receive<S, B>(
    state: Arc<Webhook>,
    peer: Option<SocketAddr>,
    headers: HeaderMap,
    body: S,
) -> warp::reply::Response
where
    S: FutStream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let started = std::time::Instant::now();
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let read = read_body(body, state.max_body, declared).await;
    let read_cut = read.cut;
    let outcome = refused(&read, declared, state.max_body).unwrap_or_else(|| {
        let sig = headers.get("x-hub-signature-256").map(|v| v.as_bytes());
        state.verifier.verify(sig, &read.bytes)
    });
    let delivery = delivery_of(&state, peer, &headers, declared, read, outcome);
    let verdict = delivery.verdict;
    let stream = if verdict.is_accepted() {
        Stream::Main
    } else {
        Stream::Quarantine
    };
    let appended = state
        .journal
        .append(
            stream,
            Kind::Delivery,
            state.clock.now_micros(),
            delivery.encode(),
        )
        .await;
    let seq = match appended {
        Ok(a) => a.seq,
        Err(e) => {
            state
                .metrics
                .journal_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Not on disk: Meta must retry, so never 200.
            tracing::error!(error = %e, verdict = verdict.as_str(), "delivery could not be journaled");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily unable to store the delivery",
            );
        }
    };
    state
        .metrics
        .delivery(verdict, started.elapsed().as_micros() as u64);
    answer(verdict, read_cut, seq, peer)
}

/// The journal record of a delivery: who sent it, what was read, the verdict.
fn delivery_of(
    state: &Webhook,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    declared: Option<u64>,
    read: ReadBody,
    outcome: Outcome,
) -> Delivery {
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    Delivery {
        peer: client_addr(peer, forwarded, &state.trusted_proxies),
        verdict: outcome.verdict,
        reason: outcome.reason,
        secret_index: outcome.secret_index,
        declared_length: declared,
        received_length: read.received,
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect(),
        body: read.bytes,
        reverified_from: None,
    }
}

/// The answer to a journaled delivery `seq`, by its verdict.
fn answer(
    verdict: Verdict,
    cut: Option<Cut>,
    seq: u64,
    peer: Option<SocketAddr>,
) -> warp::reply::Response {
    match verdict {
        Verdict::Accepted => {
            tracing::debug!(seq, "delivery accepted");
            text(StatusCode::OK, "OK")
        }
        Verdict::TooLarge => {
            tracing::warn!(seq, peer = ?peer, "delivery rejected: too large");
            text(StatusCode::PAYLOAD_TOO_LARGE, "payload too large")
        }
        Verdict::Truncated if cut == Some(Cut::TimedOut) => {
            tracing::warn!(seq, peer = ?peer, "delivery rejected: body timed out");
            text(StatusCode::REQUEST_TIMEOUT, "request body timed out")
        }
        Verdict::Truncated => {
            tracing::warn!(seq, peer = ?peer, "delivery rejected: body cut short");
            text(StatusCode::BAD_REQUEST, "request body cut short")
        }
        other => {
            tracing::warn!(seq, peer = ?peer, verdict = other.as_str(), "delivery rejected");
            text(StatusCode::FORBIDDEN, "invalid signature")
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> warp::reply::Response {
    let reply = warp::reply::with_header(body, "content-type", "text/plain; charset=utf-8");
    warp::reply::with_status(reply, status).into_response()
}
