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
use crate::events::signature::Verifier;
use crate::httpkit::client_ip::client_addr;
use crate::journal::delivery::{Delivery, Verdict};
use crate::journal::{Journal, Kind, Stream};
use crate::store::{Handshake, Store};
use crate::util::cidr::Cidr;
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
        at_micros: crate::util::clock::now_micros(),
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
}

/// Reads up to `max` bytes; past that keeps only the first `TOO_LARGE_KEEP` and stops.
async fn read_body<S, B>(
    body: S,
    max: usize,
    declared: Option<u64>,
) -> Result<ReadBody, warp::Error>
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
    let mut bytes = Vec::with_capacity(declared.map_or(8192, |n| (n as usize).min(cap)));
    let mut received = 0u64;
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk?;
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            received += n as u64;
            let room = cap.saturating_sub(bytes.len());
            bytes.extend_from_slice(&part[..n.min(room)]);
            chunk.advance(n);
        }
        if received > cap as u64 {
            bytes.truncate(TOO_LARGE_KEEP);
            return Ok(ReadBody {
                bytes,
                received: received.max(declared.unwrap_or(0)),
                too_large: true,
            });
        }
    }
    Ok(ReadBody {
        bytes,
        received,
        too_large: declared_too_large,
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
    let read = match read_body(body, state.max_body, declared).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(peer = ?peer, error = %e, "webhook body could not be read");
            return text(StatusCode::BAD_REQUEST, "request body could not be read");
        }
    };
    let outcome =
        if read.too_large {
            crate::events::signature::Outcome {
                verdict: Verdict::TooLarge,
                secret_index: None,
                reason: format!(
                "body of {} bytes is over the {} byte limit (WAGATE_MAX_BODY); first {} bytes kept",
                read.received, state.max_body, read.bytes.len()
            ),
            }
        } else {
            let sig = headers.get("x-hub-signature-256").map(|v| v.as_bytes());
            state.verifier.verify(sig, &read.bytes)
        };
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let delivery = Delivery {
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
    };
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
            crate::util::clock::now_micros(),
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
    match verdict {
        Verdict::Accepted => {
            tracing::debug!(seq, "delivery accepted");
            text(StatusCode::OK, "OK")
        }
        Verdict::TooLarge => {
            tracing::warn!(seq, peer = ?peer, "delivery rejected: too large");
            text(StatusCode::PAYLOAD_TOO_LARGE, "payload too large")
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
