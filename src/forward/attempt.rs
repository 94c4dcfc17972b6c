//! One attempt at one queue entry: its requests built from the raw delivery (the
//! whole narrowed payload in `meta` mode, one event per item in `events` mode),
//! signed under the target's secret and sent in turn until one fails. Also records
//! what a failure costs (decided by `decide.rs`) and which contacts an entry
//! concerns (entries sharing one are sent in queue order).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::decide::{self, Answer, EntryNext, Limits, Retry, Streak};
use super::record::QueueEntry;
use super::{read_body, Forwarder};
use crate::config::{ForwardMode, ForwardTarget, Transport};
use crate::events::model::Item;
use crate::events::parse::{parse_capped, Parsed};
use crate::events::reshape::{events_for, meta_body};
use crate::util::backoff::jitter;

/// One HTTP request of an entry.
pub(super) struct Request {
    /// The Standard Webhooks message id (`events` mode).
    event_id: Option<String>,
    body: Vec<u8>,
    /// The subject, when the target is the bus (the message id is `event_id`).
    subject: Option<String>,
}

/// An entry read from the queue, with what the worker knows of it so far.
pub(super) struct Slot {
    pub entry: QueueEntry,
    /// The contacts its items concern (`""` for items of none, such as account
    /// events): two entries sharing one are never in flight at once.
    pub keys: Vec<String>,
    /// Requests made for it, over all attempts.
    pub attempts: u32,
    /// Requests already answered `2xx` (an `events`-mode entry makes one per item;
    /// a retry goes on from the first that failed).
    pub done: usize,
    pub requests: Option<Arc<Vec<Request>>>,
    pub last_error: Option<String>,
    /// Failures counted against it (while only its contacts' entries failed).
    pub failures: u32,
    /// Backing off on its own: it does not start before this (monotonic micros).
    pub not_before: Option<i64>,
}

impl Slot {
    pub fn new(entry: QueueEntry, keys: Vec<String>) -> Slot {
        Slot {
            entry,
            keys,
            attempts: 0,
            done: 0,
            requests: None,
            last_error: None,
            failures: 0,
            not_before: None,
        }
    }

    /// When `WAGATE_FORWARD_MAX_AGE` gives up on it (Unix micros).
    pub fn give_up_at(&self, f: &Forwarder) -> i64 {
        let max_age = f.config.max_age.as_micros().min(i64::MAX as u128) as i64;
        self.entry.enqueued_at_micros.saturating_add(max_age)
    }
}

pub(super) enum Attempt {
    /// Every request answered `2xx`.
    Delivered,
    /// A request failed: retry, after `Retry-After` if the target sent one.
    Failed {
        error: String,
        retry_after: Option<Duration>,
        /// Some of its requests were answered `2xx` in this attempt.
        progressed: bool,
    },
    /// The target answered `410 Gone`.
    Gone,
    /// It can never be sent (its raw delivery is gone): a dead letter.
    Unsendable(String),
}

/// [`attempt`], with a panic inside it turned into an `Unsendable` outcome (the
/// entry is dead-lettered with the reason; the worker goes on).
pub(super) fn guarded(
    f: Arc<Forwarder>,
    t: Arc<ForwardTarget>,
    slot: Slot,
) -> BoxFuture<'static, (Slot, Attempt)> {
    let (entry, keys, attempts) = (slot.entry.clone(), slot.keys.clone(), slot.attempts);
    Box::pin(async move {
        crate::util::task::catch(attempt(f, t, slot))
            .await
            .unwrap_or_else(|why| {
                let mut slot = Slot::new(entry, keys);
                slot.attempts = attempts;
                let error = format!("wagate failed on this entry: {why}");
                (slot, Attempt::Unsendable(error))
            })
    })
}

/// Sends what is left of `slot` (blocking reads off the async threads).
pub(super) async fn attempt(
    f: Arc<Forwarder>,
    t: Arc<ForwardTarget>,
    mut slot: Slot,
) -> (Slot, Attempt) {
    let reqs = match &slot.requests {
        Some(r) => r.clone(),
        None => match prepare(&f, &t, &slot.entry).await {
            Ok(r) => slot.requests.insert(Arc::new(r)).clone(),
            Err(error) => return (slot, Attempt::Unsendable(error)),
        },
    };
    let done_before = slot.done;
    while slot.done < reqs.len() {
        slot.attempts += 1;
        let r = &reqs[slot.done];
        let now = f.clock.now_micros();
        f.update_live(&t.id, |l| {
            l.attempts += 1;
            l.last_attempt_at_micros = Some(now);
            l.next_attempt_at_micros = None;
        });
        match send(&f, &t, &slot.entry, r).await {
            Answer::Delivered => {
                slot.done += 1;
                f.update_live(&t.id, |l| {
                    if l.paused {
                        tracing::info!(target_id = %t.id, "forwarding target answers again; resumed");
                    }
                    l.consecutive_failures = 0;
                    l.failing_since_micros = None;
                    l.paused = false;
                    l.worker_error = None;
                });
            }
            Answer::Gone => return (slot, Attempt::Gone),
            Answer::Failed { error, retry_after } => {
                let progressed = slot.done > done_before;
                let failed = Attempt::Failed {
                    error,
                    retry_after,
                    progressed,
                };
                return (slot, failed);
            }
        }
    }
    (slot, Attempt::Delivered)
}

/// Sends one request: a JetStream publish on the bus, or a signed HTTP POST.
async fn send(f: &Forwarder, t: &ForwardTarget, e: &QueueEntry, r: &Request) -> Answer {
    if let (Some(subject), Some(bus)) = (&r.subject, f.upstream.bus()) {
        let id = r.event_id.as_deref().unwrap_or_default();
        let published = bus
            .publish(subject.clone(), id, r.body.clone(), f.config.timeout)
            .await;
        if published.as_ref().is_ok_and(|p| p.duplicate) {
            f.update_live(&t.id, |l| l.duplicates += 1);
        }
        return decide::judge_publish(&published);
    }
    let headers = sign(t, e, r, f.clock.now_secs());
    let answer = f
        .upstream
        .post_to_target(&t.url, &headers, r.body.clone(), f.config.timeout)
        .await;
    decide::judge(&answer)
}

/// Records a failed request of `slot`'s entry (`others_failed`: entries of other
/// contacts failed too since the target's last success); what follows
/// ([`decide::after_failure`]).
pub(super) fn failed(
    f: &Forwarder,
    t: &ForwardTarget,
    slot: &Slot,
    error: &str,
    retry_after: Option<Duration>,
    others_failed: bool,
) -> Retry {
    let now = f.clock.now_micros();
    let limits = Limits::of(&f.config);
    let entry = decide::Entry {
        failures: slot.failures,
        give_up_at_micros: slot.give_up_at(f),
    };
    let retry = f.update_live(&t.id, |l| {
        l.failures += 1;
        l.consecutive_failures = l.consecutive_failures.saturating_add(1);
        l.last_error = Some(error.to_string());
        l.last_error_at_micros = Some(now);
        let streak = Streak {
            failures: l.consecutive_failures,
            since_micros: *l.failing_since_micros.get_or_insert(now),
            paused: l.paused,
            others_failed,
        };
        let retry = decide::after_failure(&streak, &entry, retry_after, now, &limits, jitter());
        if retry.paused && !l.paused {
            tracing::warn!(target_id = %t.id, error, "forwarding target keeps failing; paused, probing every {:?}", limits.probe_every);
        }
        l.paused = retry.paused;
        retry
    });
    // The lock is poisoned only if a thread panicked holding it: retry at once.
    let retry = retry.unwrap_or(Retry {
        paused: false,
        delay: Duration::ZERO,
        counted: false,
        entry: EntryNext::After(Duration::ZERO),
    });
    tracing::warn!(target_id = %t.id, error, retry_in_ms = retry.delay.as_millis() as u64, counted = retry.counted, "forwarding failed; will retry");
    retry
}

/// Records an entry that can never be sent (it is dead-lettered with `error`).
pub(super) fn unsendable(f: &Forwarder, t: &ForwardTarget, error: &str) {
    let now = f.clock.now_micros();
    f.update_live(&t.id, |l| {
        l.entry_failures += 1;
        l.last_error = Some(error.to_string());
        l.last_error_at_micros = Some(now);
    });
}

/// The contacts the entry's items concern, read from its raw delivery (blocking).
/// An entry that cannot be read gets none: its attempt dead-letters it.
pub(super) fn order_keys(f: &Forwarder, e: &QueueEntry) -> Vec<String> {
    let Ok((body, _)) = read_body(&f.journal, &f.store, e.delivery) else {
        return Vec::new();
    };
    // Only the items up to the last one of the entry are built.
    let last = e.items.iter().max().map_or(0, |&i| i as usize + 1);
    let Ok(Parsed { items, .. }) = parse_capped(&body, last) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = e
        .items
        .iter()
        .filter_map(|&i| items.get(i as usize))
        .map(|item| match item {
            Item::Message { message, .. } => message.contact_id.clone(),
            Item::Status { status, .. } => status
                .recipient_id
                .clone()
                .or_else(|| status.recipient_user_id.clone())
                .unwrap_or_default(),
            Item::Contact { contact, .. } => contact.contact_id.clone(),
            Item::Call { call, .. } => call.contact_id.clone(),
            Item::Change { .. } => String::new(),
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The requests of an entry; `Err` when it can never be sent (raw delivery gone).
async fn prepare(f: &Forwarder, t: &ForwardTarget, e: &QueueEntry) -> Result<Vec<Request>, String> {
    let (journal, store, delivery) = (f.journal.clone(), f.store.clone(), e.delivery);
    let (body, meta) = tokio::task::spawn_blocking(move || read_body(&journal, &store, delivery))
        .await
        .map_err(|e| e.to_string())??;
    let received = meta.received_at_micros;
    if t.transport == Transport::Nats {
        let bus = f.upstream.bus().ok_or("WAGATE_NATS_URL is not set")?;
        let events =
            events_for(&body, &e.items, e.delivery, received).map_err(|x| x.to_string())?;
        return Ok(events
            .into_iter()
            .map(|ev| Request {
                subject: Some(
                    bus.config()
                        .subject(&ev.field, ev.phone_number_id.as_deref()),
                ),
                event_id: Some(ev.id),
                body: ev.body,
            })
            .collect());
    }
    match t.mode {
        ForwardMode::Meta => Ok(meta_body(&body, &e.items)
            .map_err(|err| err.to_string())?
            .map(|b| Request {
                event_id: None,
                body: b.into_owned(),
                subject: None,
            })
            .into_iter()
            .collect()),
        ForwardMode::Events => Ok(events_for(&body, &e.items, e.delivery, received)
            .map_err(|err| err.to_string())?
            .into_iter()
            .map(|ev| Request {
                event_id: Some(ev.id),
                body: ev.body,
                subject: None,
            })
            .collect()),
    }
}

/// The headers that sign one request under the target's secret.
fn sign(
    t: &ForwardTarget,
    e: &QueueEntry,
    r: &Request,
    now_secs: i64,
) -> Vec<(&'static str, String)> {
    let key = t.signing_key();
    let mut headers = vec![("x-wagate-delivery", e.delivery.to_string())];
    match &r.event_id {
        None => headers.push((
            "x-hub-signature-256",
            crate::events::signature::sign(&key, &r.body),
        )),
        Some(id) => {
            let ts = now_secs.to_string();
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
            mac.update(format!("{id}.{ts}.").as_bytes());
            mac.update(&r.body);
            let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            headers.push(("webhook-id", id.clone()));
            headers.push(("webhook-timestamp", ts));
            headers.push(("webhook-signature", format!("v1,{sig}")));
        }
    }
    headers
}
