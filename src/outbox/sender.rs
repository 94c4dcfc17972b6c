//! The sender: one task that owns the queues. One message in flight per recipient,
//! in order (a retried message stays at the head of its recipient's queue); a global
//! pace of `WAGATE_SEND_RATE` attempts/s (no burst); exponential backoff with full
//! jitter; throughput errors back off everything, a pair rate limit (131056) or a
//! transient error only that recipient; a token error (190) pauses everything.
//! What comes after an attempt is decided by `decide.rs`; this file does the I/O.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::decide::{self, micros, Decision, GaveUp, Limits, Outcome};
use super::job::{Job, Msg};
use super::record::{AttemptResult, SendUpdate, State};
use super::{answer, Outbox};
use crate::events::redact::is_redacted_message;
use crate::upstream::{CallError, GraphResponse};
use crate::util::backoff::jitter;

/// Attempts in flight at once, over all recipients.
const MAX_IN_FLIGHT: usize = 64;

pub async fn run(ob: Arc<Outbox>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut d = Dispatcher {
        queues: HashMap::new(),
        busy: HashSet::new(),
        global_not_before: 0,
        next_slot: 0,
        interval: (1_000_000.0 / ob.config.rate) as i64,
        in_flight: 0,
        paused: false,
    };
    match super::recover::recover(&ob).await {
        Ok((jobs, paused)) => {
            d.paused = paused;
            for j in jobs {
                d.push(j);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "outbox recovery failed; pending messages wait for a restart")
        }
    }
    ob.ready.send_replace(true);
    let mut stopping = ob.stopping.subscribe();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Job, Decision)>();
    loop {
        let stop = *stopping.borrow();
        if stop && d.in_flight == 0 {
            break;
        }
        let wake = if stop {
            None
        } else {
            d.dispatch(&ob, &done_tx)
        };
        let sleep = async {
            match wake {
                Some(at) => ob.clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Job(j)) => d.push(j),
                Some(Msg::Resume) => d.paused = false,
                None => break,
            },
            Some((j, v)) = done_rx.recv() => d.done(j, v, ob.clock.mono_micros()),
            _ = sleep => {}
            _ = stopping.changed(), if !stop => {}
        }
    }
    ob.done.send_replace(true);
}

struct Dispatcher {
    queues: HashMap<String, VecDeque<Job>>,
    busy: HashSet<String>,
    /// Monotonic microseconds (the outbox's clock).
    global_not_before: i64,
    next_slot: i64,
    /// Microseconds between two attempts (the global pace).
    interval: i64,
    in_flight: usize,
    paused: bool,
}

impl Dispatcher {
    fn push(&mut self, job: Job) {
        self.queues
            .entry(job.recipient.clone())
            .or_default()
            .push_back(job);
    }

    /// Starts every attempt that may start now; returns when to look again.
    fn dispatch(
        &mut self,
        ob: &Arc<Outbox>,
        done: &mpsc::UnboundedSender<(Job, Decision)>,
    ) -> Option<i64> {
        if self.paused {
            return None;
        }
        let now = ob.clock.mono_micros();
        if self.global_not_before > now {
            return Some(self.global_not_before);
        }
        // Oldest head first, so recipients are served in submission order.
        let mut ready: Vec<(u64, String)> = Vec::new();
        let mut wake: Option<i64> = None;
        for (r, q) in &self.queues {
            let Some(head) = q.front() else { continue };
            if self.busy.contains(r) {
                continue;
            }
            if head.not_before > now {
                wake = Some(wake.map_or(head.not_before, |w| w.min(head.not_before)));
                continue;
            }
            ready.push((head.id, r.clone()));
        }
        ready.sort();
        for (_, r) in ready {
            if self.in_flight >= MAX_IN_FLIGHT {
                break;
            }
            if self.next_slot > now {
                wake = Some(wake.map_or(self.next_slot, |w| w.min(self.next_slot)));
                break;
            }
            self.next_slot = self.next_slot.max(now) + self.interval;
            let job = self.queues.get_mut(&r).and_then(|q| q.pop_front());
            let Some(job) = job else { continue };
            self.busy.insert(r);
            self.in_flight += 1;
            let (ob, done) = (ob.clone(), done.clone());
            tokio::spawn(async move {
                let decision = attempt(&ob, &job).await;
                let _ = done.send((job, decision));
            });
        }
        self.queues.retain(|_, q| !q.is_empty());
        wake
    }

    fn done(&mut self, mut job: Job, d: Decision, now: i64) {
        self.in_flight -= 1;
        self.busy.remove(&job.recipient);
        if let Some(hold) = d.hold_all {
            self.global_not_before = self.global_not_before.max(now.saturating_add(micros(hold)));
        }
        if d.state.is_final() {
            return;
        }
        job.attempts += 1;
        job.not_before = now.saturating_add(micros(d.retry_in.unwrap_or_default()));
        if d.pause_all {
            self.paused = true;
        }
        self.queues
            .entry(job.recipient.clone())
            .or_default()
            .push_front(job);
    }
}

/// One attempt: journal its start, call Meta, journal its end, answer waiters. What
/// comes next is [`decide::next`]'s.
async fn attempt(ob: &Outbox, job: &Job) -> Decision {
    let n = job.attempts + 1;
    let limits = Limits::of(&ob.config);
    let now = ob.clock.now_micros();
    if let Some(why) = decide::before_attempt(job.created_at_micros, now, &limits) {
        return give_up(ob, job, why, limits.max_age).await;
    }
    if recipient_erased(ob, job).await {
        return give_up(ob, job, GaveUp::Erased, limits.max_age).await;
    }
    let start = SendUpdate::Started {
        id: job.id,
        attempt: n,
    };
    if let Err(e) = ob.update(&start).await {
        tracing::error!(id = job.id, error = %e, "cannot journal an attempt; not sending");
        return Decision::not_attempted(ob.config.backoff_cap);
    }
    let call = ob
        .upstream
        .send_message(&job.phone_number_id, &job.message)
        .await;
    let (outcome, mut result) = observe(call);
    let now = ob.clock.now_micros();
    let d = decide::next(&outcome, n, &limits, job.created_at_micros, now, jitter());
    result.class = outcome.class();
    result.retry_in_ms = d
        .retry_in
        .map(|r| u64::try_from(r.as_millis()).unwrap_or(u64::MAX));
    if let Some(why) = d.gave_up {
        let error = result.error.take().unwrap_or_default();
        result.error = Some(why.reason(limits.max_age, &error));
    }
    ended(ob, job, n, result, &d).await;
    d
}

/// What an attempt's call came to, and the result to journal (Meta's answer as is).
fn observe(call: Result<GraphResponse, CallError>) -> (Outcome, AttemptResult) {
    let mut result = AttemptResult::default();
    let resp = match call {
        Ok(resp) => resp,
        Err(e) => {
            result.error = Some(e.to_string());
            return (Outcome::NoAnswer(e), result);
        }
    };
    result.http_status = Some(resp.status);
    result.error_code = resp.error.as_ref().and_then(|e| e.code);
    // Without Meta's error object, the HTTP status is the error.
    result.error =
        resp.error.as_ref().map(|e| e.summary()).or_else(|| {
            (!(200..300).contains(&resp.status)).then(|| format!("HTTP {}", resp.status))
        });
    result.wamid = resp
        .body
        .pointer("/messages/0/id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let outcome = Outcome::Answered {
        class: resp.class(),
        retry_after: resp.retry_after,
    };
    result.body = Some(resp.body);
    (outcome, result)
}

/// Journals an attempt's end, pauses on a token error, answers waiters when final.
async fn ended(ob: &Outbox, job: &Job, n: u32, result: AttemptResult, d: &Decision) {
    let state = d.state;
    let end = SendUpdate::Ended {
        id: job.id,
        attempt: n,
        result: result.clone(),
        state,
    };
    if let Err(e) = ob.update(&end).await {
        tracing::error!(id = job.id, error = %e, "cannot journal an attempt's outcome");
    }
    tracing::info!(id = job.id, attempt = n, status = ?result.http_status, code = ?result.error_code, state = ?state, "send attempt");
    if d.pause_all {
        pause(ob, result.error.as_deref().unwrap_or("token error (190)")).await;
    }
    if state.is_final() {
        let a = answer(
            job.id,
            state,
            result.http_status,
            result.body.as_ref(),
            result.error.as_deref(),
        );
        ob.finish(job.id, a);
    }
}

/// Gives a message up without an attempt (journaled as settled).
/// Whether the recipient was erased while the job waited: its entry then has lost
/// its recipient and content (`privacy::redact`), and it is not sent. The store is
/// read only once an erasure swapped the state in this process; a job recovered at
/// start carries the redacted message itself.
async fn recipient_erased(ob: &Outbox, job: &Job) -> bool {
    if is_redacted_message(&job.message) {
        return true;
    }
    if ob.store.generation() == 0 {
        return false;
    }
    let (st, id) = (ob.store.clone(), job.id);
    match crate::store::blocking(move || st.outbox_entry(id)).await {
        Ok(e) => e.is_some_and(|e| is_redacted_message(&e.request.message)),
        Err(e) => {
            tracing::warn!(id, error = %e, "cannot read an outbox entry before sending");
            false
        }
    }
}

async fn give_up(ob: &Outbox, job: &Job, why: GaveUp, max_age: Duration) -> Decision {
    let (state, reason) = (State::Failed, why.reason(max_age, ""));
    let u = SendUpdate::Settled {
        id: job.id,
        state,
        reason: reason.clone(),
    };
    if let Err(e) = ob.update(&u).await {
        tracing::error!(id = job.id, error = %e, "cannot journal a settled message");
    }
    ob.finish(job.id, answer(job.id, state, None, None, Some(&reason)));
    Decision::given_up(why)
}

async fn pause(ob: &Outbox, reason: &str) {
    let reason = format!("Meta refused the token (190): {reason}. Fix WHATSAPP_TOKEN and restart, or POST /api/outbox/resume");
    tracing::error!(alert = "sending paused", "{reason}");
    let token_fingerprint = ob.upstream.token_fingerprint();
    let u = SendUpdate::Paused {
        reason: reason.clone(),
        token_fingerprint: token_fingerprint.clone(),
    };
    if let Err(e) = ob.update(&u).await {
        tracing::error!(error = %e, "cannot journal the pause");
    }
    let p = super::record::Pause {
        reason,
        since_micros: ob.clock.now_micros(),
        token_fingerprint,
    };
    ob.pause.send_replace(Some(p.clone()));
    ob.notify_paused(&p);
}
