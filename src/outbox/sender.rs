//! The sender: one task that owns the queues. One message in flight per recipient,
//! in order (a retried message stays at the head of its recipient's queue); a global
//! pace of `WAGATE_SEND_RATE` attempts/s (no burst); exponential backoff with full
//! jitter; throughput errors back off everything, a pair rate limit (131056) or a
//! transient error only that recipient; a token error (190) pauses everything.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::record::{AttemptResult, SendRequest, SendUpdate, State};
use super::{answer, Outbox};
use crate::journal::Journal;
use crate::store::Applied;
use crate::upstream::{CallError, Class};

/// Attempts in flight at once, over all recipients.
const MAX_IN_FLIGHT: usize = 64;

#[derive(Debug, Clone)]
pub struct Job {
    pub id: u64,
    pub created_at_micros: i64,
    pub recipient: String,
    pub phone_number_id: String,
    pub message: Value,
    /// Attempts made so far.
    pub attempts: u32,
    pub(super) not_before: Instant,
}

impl Job {
    pub fn new(id: u64, created_at_micros: i64, req: &SendRequest, attempts: u32) -> Job {
        Job {
            id,
            created_at_micros,
            recipient: req.recipient.clone(),
            phone_number_id: req.phone_number_id.clone(),
            message: req.message.clone(),
            attempts,
            not_before: Instant::now(),
        }
    }
}

pub enum Msg {
    Job(Job),
    Resume,
}

/// What the dispatcher needs to know about an attempt's end.
pub struct Verdict {
    state: State,
    class: Option<Class>,
    delay: Duration,
}

/// Waits until the applier has applied everything journaled so far.
pub async fn wait_applied(journal: &Journal, mut applied: watch::Receiver<Applied>) {
    let target = journal.heads().borrow().clone();
    let _ = applied
        .wait_for(|a| a.overall(&target) >= target.last_seq)
        .await;
}

pub async fn run(ob: Arc<Outbox>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut d = Dispatcher {
        queues: HashMap::new(),
        busy: HashSet::new(),
        global_not_before: Instant::now(),
        next_slot: Instant::now(),
        interval: Duration::from_secs_f64(1.0 / ob.config.rate),
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
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Job, Verdict)>();
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
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Job(j)) => d.push(j),
                Some(Msg::Resume) => d.paused = false,
                None => break,
            },
            Some((j, v)) = done_rx.recv() => d.done(j, v),
            _ = sleep => {}
            _ = stopping.changed(), if !stop => {}
        }
    }
    ob.done.send_replace(true);
}

struct Dispatcher {
    queues: HashMap<String, VecDeque<Job>>,
    busy: HashSet<String>,
    global_not_before: Instant,
    next_slot: Instant,
    interval: Duration,
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
        done: &mpsc::UnboundedSender<(Job, Verdict)>,
    ) -> Option<Instant> {
        if self.paused {
            return None;
        }
        let now = Instant::now();
        if self.global_not_before > now {
            return Some(self.global_not_before);
        }
        // Oldest head first, so recipients are served in submission order.
        let mut ready: Vec<(u64, String)> = Vec::new();
        let mut wake: Option<Instant> = None;
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
                let verdict = attempt(&ob, &job).await;
                let _ = done.send((job, verdict));
            });
        }
        self.queues.retain(|_, q| !q.is_empty());
        wake
    }

    fn done(&mut self, mut job: Job, v: Verdict) {
        self.in_flight -= 1;
        self.busy.remove(&job.recipient);
        let until = Instant::now() + v.delay;
        if v.class == Some(Class::RetryAll) {
            self.global_not_before = self.global_not_before.max(until);
        }
        if v.state.is_final() {
            return;
        }
        job.attempts += 1;
        job.not_before = until;
        if v.class == Some(Class::Token) {
            self.paused = true;
        }
        self.queues
            .entry(job.recipient.clone())
            .or_default()
            .push_front(job);
    }
}

/// Full jitter: uniform in [0, min(cap, base * 2^(n-1))].
pub fn backoff(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let max = exp.min(cap);
    Duration::from_micros(rand::thread_rng().gen_range(0..=max.as_micros() as u64))
}

/// One attempt: journal its start, call Meta, journal its end, answer waiters.
async fn attempt(ob: &Outbox, job: &Job) -> Verdict {
    let n = job.attempts + 1;
    let cfg = &ob.config;
    let age = Duration::from_micros(
        (crate::util::clock::now_micros() - job.created_at_micros).max(0) as u64,
    );
    if age >= cfg.max_age {
        let reason = format!(
            "gave up: older than WAGATE_SEND_MAX_AGE ({})",
            humantime::format_duration(cfg.max_age)
        );
        return settle(ob, job, State::Failed, reason).await;
    }
    let start = SendUpdate::Started {
        id: job.id,
        attempt: n,
    };
    if let Err(e) = ob.update(&start).await {
        tracing::error!(id = job.id, error = %e, "cannot journal an attempt; not sending");
        return Verdict {
            state: State::Queued,
            class: None,
            delay: cfg.backoff_cap,
        };
    }
    let call = ob
        .upstream
        .send_message(&job.phone_number_id, &job.message)
        .await;
    let mut result = AttemptResult::default();
    let (class, retry_after) = match call {
        Ok(resp) => {
            result.http_status = Some(resp.status);
            result.error_code = resp.error.as_ref().and_then(|e| e.code);
            // Without Meta's error object, the HTTP status is the error.
            result.error = resp.error.as_ref().map(|e| e.summary()).or_else(|| {
                (!(200..300).contains(&resp.status)).then(|| format!("HTTP {}", resp.status))
            });
            result.wamid = resp
                .body
                .pointer("/messages/0/id")
                .and_then(Value::as_str)
                .map(str::to_string);
            result.body = Some(resp.body.clone());
            (Some(resp.class()), resp.retry_after)
        }
        Err(CallError::NotSent(e)) => {
            result.error = Some(format!("not sent: {e}"));
            (None, None)
        }
        Err(e @ (CallError::Unknown(_) | CallError::NoToken)) => {
            let token = matches!(e, CallError::NoToken);
            result.error = Some(e.to_string());
            (token.then_some(Class::Token), None)
        }
    };
    result.class = class;
    let unknown = class.is_none()
        && result
            .error
            .as_deref()
            .is_some_and(|e| !e.starts_with("not sent"));
    let retryable = matches!(
        class,
        None | Some(Class::Retry | Class::RetryAll | Class::PairRateLimit)
    );
    let wait = if retryable && !unknown {
        retry_after.unwrap_or_else(|| backoff(cfg.backoff_base, cfg.backoff_cap, n))
    } else {
        Duration::ZERO
    };
    let mut delay = Duration::ZERO;
    let state = match class {
        Some(Class::Accepted) => State::Sent,
        Some(Class::Permanent) => State::Failed,
        Some(Class::Token) => State::Queued,
        _ if unknown => State::Unknown,
        _ if retryable && n >= cfg.max_attempts => {
            result.error = Some(format!(
                "gave up after {n} attempts: {}",
                result.error.clone().unwrap_or_default()
            ));
            State::Failed
        }
        _ => {
            delay = wait;
            let due = crate::util::clock::now_micros() + delay.as_micros() as i64;
            if due - job.created_at_micros >= cfg.max_age.as_micros() as i64 {
                // The next attempt would be too late: give up now, with Meta's error.
                result.error = Some(format!(
                    "gave up: the next attempt (in {}) would be past WAGATE_SEND_MAX_AGE ({}): {}",
                    humantime::format_duration(Duration::from_millis(delay.as_millis() as u64)),
                    humantime::format_duration(cfg.max_age),
                    result.error.clone().unwrap_or_default()
                ));
                State::Failed
            } else {
                result.retry_in_ms = Some(delay.as_millis() as u64);
                State::Queued
            }
        }
    };
    // A throughput limit holds everyone, even when this message gives up.
    if class == Some(Class::RetryAll) {
        delay = wait;
    }
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
    if class == Some(Class::Token) {
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
    Verdict {
        state,
        class,
        delay,
    }
}

async fn settle(ob: &Outbox, job: &Job, state: State, reason: String) -> Verdict {
    let u = SendUpdate::Settled {
        id: job.id,
        state,
        reason: reason.clone(),
    };
    if let Err(e) = ob.update(&u).await {
        tracing::error!(id = job.id, error = %e, "cannot journal a settled message");
    }
    ob.finish(job.id, answer(job.id, state, None, None, Some(&reason)));
    Verdict {
        state,
        class: None,
        delay: Duration::ZERO,
    }
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
        since_micros: crate::util::clock::now_micros(),
        token_fingerprint,
    };
    ob.pause.send_replace(Some(p.clone()));
    ob.notify_paused(&p);
}
