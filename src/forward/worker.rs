//! One task per target: takes the queue in order, one entry at a time (so events of
//! one contact arrive in order), and keeps at the head until it is delivered,
//! dead-lettered or the target is disabled.
//!
//! - `2xx`: delivered (journaled, then the next entry).
//! - `410 Gone`: the target is disabled (journaled); its queue waits for an enable.
//! - Anything else (other statuses, timeouts, refused connections): retried with
//!   exponential backoff and full jitter; `Retry-After` on `429`/`503` wins. After
//!   `pause_after` without a success the target is paused: only probed (the head
//!   entry is tried again) every `probe_every`; a success resumes it.
//! - An entry older than `max_age` (or whose raw delivery is gone) is dead-lettered.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use tokio::sync::watch;

use super::record::{ForwardUpdate, QueueEntry};
use super::{read_body, Forwarder};
use crate::config::{ForwardMode, ForwardTarget};
use crate::events::reshape::{events_for, meta_body};

/// Entries read from the queue at once.
const BATCH: usize = 64;
/// `Retry-After` is honoured up to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

enum Outcome {
    /// Delivered or dead-lettered: on to the next entry.
    Done,
    /// The target answered 410.
    Disabled,
    Stopped,
}

/// One HTTP request of an entry: the whole (narrowed) payload in `meta` mode, one
/// event in `events` mode.
struct Request {
    /// The Standard Webhooks message id (`events` mode).
    event_id: Option<String>,
    body: Vec<u8>,
}

/// Counts the worker as stopped when dropped.
struct Running(Arc<Forwarder>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.send_modify(|n| *n = n.saturating_sub(1));
    }
}

pub(super) async fn run(f: Arc<Forwarder>, target: ForwardTarget) {
    let _running = Running(f.clone());
    let Some(notify) = f.notify.get(&target.id).cloned() else {
        return;
    };
    let mut stopping = f.stopping.subscribe();
    // What the journal says was delivered must be applied before the queue is read.
    tokio::select! {
        _ = f.wait_applied() => {}
        _ = stopping.wait_for(|s| *s) => return,
    }
    let mut after: Option<(u64, u64)> = None;
    loop {
        if *stopping.borrow() {
            return;
        }
        let (st, id) = (f.store.clone(), target.id.clone());
        let read = crate::store::blocking(move || {
            let state = st.forward_target(&id)?;
            let batch = st.forward_queue_after(&id, after, BATCH)?;
            Ok((state, batch))
        })
        .await;
        let (state, batch) = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(target_id = %target.id, error = %e, "cannot read the forward queue");
                if sleep_or_stop(&mut stopping, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        if state.is_some_and(|s| s.disabled.is_some()) || batch.is_empty() {
            tokio::select! {
                _ = notify.notified() => {}
                _ = stopping.wait_for(|s| *s) => return,
            }
            continue;
        }
        for e in batch {
            match deliver(&f, &target, &e, &mut stopping).await {
                Outcome::Done => after = Some((e.order, e.delivery)),
                Outcome::Disabled => {
                    // Read the state again only once the record is applied.
                    f.wait_applied().await;
                    break;
                }
                Outcome::Stopped => return,
            }
        }
    }
}

/// Returns true when stopping.
async fn sleep_or_stop(stopping: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stopping.wait_for(|s| *s) => true,
    }
}

async fn deliver(
    f: &Forwarder,
    t: &ForwardTarget,
    e: &QueueEntry,
    stopping: &mut watch::Receiver<bool>,
) -> Outcome {
    let max_age = f.config.max_age.as_micros().min(i64::MAX as u128) as i64;
    let give_up_at = e.enqueued_at_micros.saturating_add(max_age);
    let mut attempts = 0u32;
    let mut done = 0usize;
    let mut requests: Option<Vec<Request>> = None;
    let mut last_error: Option<String> = None;
    loop {
        if crate::now_micros() >= give_up_at {
            let error =
                last_error.unwrap_or_else(|| "not delivered within WAGATE_FORWARD_MAX_AGE".into());
            return dead_letter(f, t, e, attempts, error, stopping).await;
        }
        if requests.is_none() {
            match prepare(f, t, e).await {
                Ok(r) => requests = Some(r),
                Err(error) => return dead_letter(f, t, e, attempts, error, stopping).await,
            }
        }
        let reqs = requests.as_deref().unwrap_or_default();
        let mut failure: Option<(String, Option<Duration>)> = None;
        while done < reqs.len() {
            attempts += 1;
            let r = &reqs[done];
            let headers = sign(t, e, r);
            let now = crate::now_micros();
            f.update_live(&t.id, |l| {
                l.attempts += 1;
                l.last_attempt_at_micros = Some(now);
                l.next_attempt_at_micros = None;
            });
            let answer = f
                .upstream
                .post_to_target(&t.url, &headers, r.body.clone(), f.config.timeout)
                .await;
            match answer {
                Ok(a) if (200..300).contains(&a.status) => {
                    done += 1;
                    f.update_live(&t.id, |l| {
                        if l.paused {
                            tracing::info!(target_id = %t.id, "forwarding target answers again; resumed");
                        }
                        l.consecutive_failures = 0;
                        l.failing_since_micros = None;
                        l.paused = false;
                    });
                }
                Ok(a) if a.status == 410 => return disable(f, t, stopping).await,
                Ok(a) => {
                    let honour = matches!(a.status, 429 | 503);
                    let text = format!("HTTP {}: {}", a.status, a.body_start.trim());
                    failure = Some((text, a.retry_after.filter(|_| honour)));
                    break;
                }
                Err(text) => {
                    failure = Some((text, None));
                    break;
                }
            }
        }
        let Some((error, retry_after)) = failure else {
            let u = ForwardUpdate::Delivered {
                target: t.id.clone(),
                order: e.order,
                delivery: e.delivery,
                attempts,
            };
            return record(f, &u, stopping).await;
        };
        let delay = failed(f, t, &error, retry_after);
        last_error = Some(error);
        // Wake in time to dead-letter at the max age.
        let left =
            Duration::from_micros(give_up_at.saturating_sub(crate::now_micros()).max(0) as u64);
        let delay = delay.min(left);
        let at = crate::now_micros() + delay.as_micros() as i64;
        f.update_live(&t.id, |l| l.next_attempt_at_micros = Some(at));
        if sleep_or_stop(stopping, delay).await {
            return Outcome::Stopped;
        }
    }
}

/// Records a failed request; the delay before the next one.
fn failed(
    f: &Forwarder,
    t: &ForwardTarget,
    error: &str,
    retry_after: Option<Duration>,
) -> Duration {
    let now = crate::now_micros();
    let c = &f.config;
    let mut delay = Duration::ZERO;
    f.update_live(&t.id, |l| {
        l.failures += 1;
        l.consecutive_failures = l.consecutive_failures.saturating_add(1);
        l.last_error = Some(error.to_string());
        l.last_error_at_micros = Some(now);
        let since = *l.failing_since_micros.get_or_insert(now);
        let pause_after = c.pause_after.as_micros() as i64;
        if !l.paused && now - since >= pause_after {
            l.paused = true;
            tracing::warn!(target_id = %t.id, error, "forwarding target keeps failing; paused, probing every {:?}", c.probe_every);
        }
        delay = if l.paused {
            c.probe_every
        } else {
            // Full jitter: uniform in [0, min(cap, base * 2^(n-1))].
            let n = l.consecutive_failures.saturating_sub(1).min(30);
            let exp = c.backoff_base.saturating_mul(1u32 << n).min(c.backoff_cap);
            exp.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
        };
    });
    let delay = retry_after.map_or(delay, |r| r.min(MAX_RETRY_AFTER));
    tracing::warn!(target_id = %t.id, error, retry_in_ms = delay.as_millis() as u64, "forwarding failed; will retry");
    delay
}

/// The requests of an entry; `Err` when it can never be sent (raw delivery gone).
async fn prepare(f: &Forwarder, t: &ForwardTarget, e: &QueueEntry) -> Result<Vec<Request>, String> {
    let (journal, store, delivery) = (f.journal.clone(), f.store.clone(), e.delivery);
    let (body, received) =
        tokio::task::spawn_blocking(move || read_body(&journal, &store, delivery))
            .await
            .map_err(|e| e.to_string())??;
    match t.mode {
        ForwardMode::Meta => Ok(meta_body(&body, &e.items)
            .map_err(|err| err.to_string())?
            .map(|b| Request {
                event_id: None,
                body: b.into_owned(),
            })
            .into_iter()
            .collect()),
        ForwardMode::Events => Ok(events_for(&body, &e.items, e.delivery, received)
            .map_err(|err| err.to_string())?
            .into_iter()
            .map(|ev| Request {
                event_id: Some(ev.id),
                body: ev.body,
            })
            .collect()),
    }
}

/// The headers that sign one request under the target's secret.
fn sign(t: &ForwardTarget, e: &QueueEntry, r: &Request) -> Vec<(&'static str, String)> {
    let key = t.signing_key();
    let mut headers = vec![("x-wagate-delivery", e.delivery.to_string())];
    match &r.event_id {
        None => headers.push((
            "x-hub-signature-256",
            crate::webhook::signature::sign(&key, &r.body),
        )),
        Some(id) => {
            let ts = (crate::now_micros() / 1_000_000).to_string();
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

async fn dead_letter(
    f: &Forwarder,
    t: &ForwardTarget,
    e: &QueueEntry,
    attempts: u32,
    error: String,
    stopping: &mut watch::Receiver<bool>,
) -> Outcome {
    tracing::warn!(target_id = %t.id, delivery = e.delivery, attempts, error = %error, "forwarding given up: dead letter");
    let u = ForwardUpdate::DeadLettered {
        target: t.id.clone(),
        order: e.order,
        delivery: e.delivery,
        attempts,
        error,
    };
    record(f, &u, stopping).await
}

async fn disable(
    f: &Forwarder,
    t: &ForwardTarget,
    stopping: &mut watch::Receiver<bool>,
) -> Outcome {
    tracing::error!(target_id = %t.id, alert = "forwarding target disabled", "the target answered 410 Gone; forwarding to it stops until it is enabled again");
    let u = ForwardUpdate::Disabled {
        target: t.id.clone(),
        reason: "the target answered 410 Gone".into(),
    };
    match record(f, &u, stopping).await {
        Outcome::Done => Outcome::Disabled,
        other => other,
    }
}

/// Journals `u`, retrying until it is written (or stopping: then the entry is sent
/// again after the restart, which at-least-once allows).
async fn record(f: &Forwarder, u: &ForwardUpdate, stopping: &mut watch::Receiver<bool>) -> Outcome {
    let mut n = 0u32;
    loop {
        match f.journal(u).await {
            Ok(_) => return Outcome::Done,
            Err(e) => {
                n += 1;
                tracing::error!(target_id = %u.target(), error = %e, "cannot journal a forwarding outcome; retrying");
                let d = f.config.backoff_base.saturating_mul(n.min(10));
                if sleep_or_stop(stopping, d).await {
                    return Outcome::Stopped;
                }
            }
        }
    }
}
