//! The outbox: send requests are journaled before they are acknowledged, then sent
//! by the sender (`sender.rs`): one message in flight per recipient, in order, at a
//! global pace, with backoff and jitter; every attempt's start and end is journaled.
//!
//! Crash rule: an attempt whose start is in the journal but whose end is not was in
//! flight when the process died. Meta may or may not have accepted it and has no
//! idempotency key, so it is settled as `unknown` at start-up and never resent. A
//! request with no attempt started is simply sent after the restart.

pub mod apply;
pub(crate) mod decide;
mod http;
mod job;
pub mod metrics;
pub mod record;
mod recover;
mod sender;

use crate::util::clock::Clock;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

pub use http::{api_routes, graph_routes, view, EntryView, Handles};
pub use job::Job;
use record::{encode, Pause, SendRequest, SendUpdate, State};

use crate::config::SendConfig;
use crate::journal::{Journal, JournalError, Kind, Stream};
use crate::store::{Store, StoreError};
use crate::upstream::Upstream;

/// How a message ended, for callers that wait (the Graph-compatible endpoint).
#[derive(Debug, Clone)]
pub struct Answer {
    pub state: State,
    pub status: u16,
    pub body: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Default)]
struct Shared {
    /// Ids this process is responsible for that are not final yet.
    live: HashSet<u64>,
    waiters: HashMap<u64, Vec<oneshot::Sender<Answer>>>,
    /// Idempotency keys submitted by this process (the store may not have them yet).
    keys: HashMap<String, u64>,
    closing: bool,
}

pub struct Outbox {
    journal: Arc<Journal>,
    store: Store,
    upstream: Upstream,
    config: SendConfig,
    sent_timeout_micros: i64,
    attempt_timeout: std::time::Duration,
    applied: watch::Receiver<crate::store::Applied>,
    tx: mpsc::UnboundedSender<job::Msg>,
    shared: Mutex<Shared>,
    /// One submission with an idempotency key at a time (check, then journal).
    submit_lock: tokio::sync::Mutex<()>,
    pause: watch::Sender<Option<Pause>>,
    /// Turns true once start-up recovery is done.
    ready: watch::Sender<bool>,
    /// Turns true when shutting down.
    stopping: watch::Sender<bool>,
    /// Turns true when the sender has stopped with nothing in flight.
    done: watch::Sender<bool>,
    clock: Clock,
}

impl Outbox {
    /// Creates the outbox and starts its sender task (inside a tokio runtime).
    pub fn start(
        journal: Arc<Journal>,
        store: Store,
        upstream: Upstream,
        config: &crate::config::Config,
        applied: watch::Receiver<crate::store::Applied>,
        clock: Clock,
    ) -> Arc<Outbox> {
        let (tx, rx) = mpsc::unbounded_channel();
        let outbox = Arc::new(Outbox {
            journal,
            store,
            upstream,
            config: config.send.clone(),
            sent_timeout_micros: config.send.sent_timeout.as_micros() as i64,
            attempt_timeout: config.graph.timeout,
            applied: applied.clone(),
            tx,
            shared: Mutex::default(),
            submit_lock: tokio::sync::Mutex::new(()),
            pause: watch::channel(None).0,
            ready: watch::channel(false).0,
            stopping: watch::channel(false).0,
            done: watch::channel(false).0,
            clock,
        });
        tokio::spawn(sender::run(outbox.clone(), rx));
        outbox
    }

    /// The clock the outbox reads and waits on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    pub fn paused(&self) -> Option<Pause> {
        self.pause.borrow().clone()
    }

    /// Journals `req` (the sequence number is its id) and queues it. With an
    /// idempotency key already seen, returns the earlier id and `false`.
    pub async fn submit(&self, req: SendRequest) -> Result<(u64, bool), OutboxError> {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|r| *r).await;
        let _guard = match req.idempotency_key {
            Some(_) => Some(self.submit_lock.lock().await),
            None => None,
        };
        if let Some(key) = req.idempotency_key.clone() {
            let known = self.lock().keys.get(&key).copied();
            let known = match known {
                Some(id) => Some(id),
                None => {
                    let st = self.store.clone();
                    crate::store::blocking(move || st.outbox_by_key(&key)).await?
                }
            };
            if let Some(id) = known {
                return Ok((id, false));
            }
        }
        let now = self.clock.now_micros();
        let appended = self
            .journal
            .append(Stream::Main, Kind::SendRequest, now, encode(&req))
            .await?;
        let id = appended.seq;
        {
            let mut s = self.lock();
            s.live.insert(id);
            if let Some(key) = &req.idempotency_key {
                if s.keys.len() >= 4096 {
                    // Keys of applied requests are in the store: forget those.
                    let applied = self.applied.borrow().main;
                    s.keys.retain(|_, id| *id > applied);
                }
                s.keys.insert(key.clone(), id);
            }
        }
        let _ = self.tx.send(job::Msg::Job(Job::new(id, now, &req, 0)));
        Ok((id, true))
    }

    /// Waits until message `id` is final (or sending pauses, or wagate stops).
    pub async fn wait(&self, id: u64) -> Result<Answer, OutboxError> {
        let rx = {
            let mut s = self.lock();
            if s.live.contains(&id) && !s.closing {
                if let Some(p) = self.paused() {
                    return Ok(paused_answer(&p));
                }
                let (tx, rx) = oneshot::channel();
                s.waiters.entry(id).or_default().push(tx);
                Some(rx)
            } else {
                None
            }
        };
        if let Some(rx) = rx {
            if let Ok(a) = rx.await {
                return Ok(a);
            }
        }
        // Final already (an idempotent repeat) or handled by an earlier process.
        let entry = self.entry_when_applied(id).await?;
        Ok(match entry {
            Some(e) if e.state.is_final() => answer_of(&e),
            _ => closing_answer(id),
        })
    }

    /// The stored entry, once the applier has caught up with the journal.
    pub async fn entry_when_applied(
        &self,
        id: u64,
    ) -> Result<Option<record::OutboxEntry>, OutboxError> {
        self.wait_applied().await;
        let st = self.store.clone();
        Ok(crate::store::blocking(move || st.outbox_entry(id)).await?)
    }

    /// Journals a resume and lets the sender continue.
    pub async fn resume(&self, reason: &str) -> Result<bool, OutboxError> {
        if self.paused().is_none() {
            return Ok(false);
        }
        self.update(&SendUpdate::Resumed {
            reason: reason.into(),
        })
        .await?;
        self.pause.send_replace(None);
        let _ = self.tx.send(job::Msg::Resume);
        Ok(true)
    }

    /// Stops starting attempts and answers every waiter (the message stays queued).
    pub fn begin_shutdown(&self) {
        let waiters = {
            let mut s = self.lock();
            s.closing = true;
            std::mem::take(&mut s.waiters)
        };
        for (id, ws) in waiters {
            for w in ws {
                let _ = w.send(closing_answer(id));
            }
        }
        self.stopping.send_replace(true);
    }

    /// Waits for attempts in flight to end (their outcome journaled).
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        let mut done = self.done.subscribe();
        let limit = self.attempt_timeout + std::time::Duration::from_secs(2);
        if tokio::time::timeout(limit, done.wait_for(|d| *d))
            .await
            .is_err()
        {
            tracing::warn!("an attempt was still in flight at shutdown; it will show as unknown");
        }
    }

    /// Whether an accepted message has heard no status for too long.
    pub fn sent_overdue(&self, e: &record::OutboxEntry, has_status: bool) -> bool {
        e.state == State::Sent
            && !has_status
            && e.finished_at_micros
                .is_some_and(|t| self.clock.now_micros() - t > self.sent_timeout_micros)
    }

    async fn update(&self, u: &SendUpdate) -> Result<(), JournalError> {
        self.journal
            .append(
                Stream::Main,
                Kind::SendUpdate,
                self.clock.now_micros(),
                encode(u),
            )
            .await
            .map(|_| ())
    }

    /// Waits until the applier has applied everything journaled so far.
    async fn wait_applied(&self) {
        let target = self.journal.heads().borrow().clone();
        let mut applied = self.applied.clone();
        let _ = applied
            .wait_for(|a| a.overall(&target) >= target.last_seq)
            .await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Message `id` is final: answer its waiters.
    fn finish(&self, id: u64, answer: Answer) {
        let waiters = {
            let mut s = self.lock();
            s.live.remove(&id);
            s.waiters.remove(&id).unwrap_or_default()
        };
        for w in waiters {
            let _ = w.send(answer.clone());
        }
    }

    /// Sending paused: answer every waiter with Meta's token error.
    fn notify_paused(&self, pause: &Pause) {
        let waiters = std::mem::take(&mut self.lock().waiters);
        for w in waiters.into_values().flatten() {
            let _ = w.send(paused_answer(pause));
        }
    }
}

pub fn answer_of(e: &record::OutboxEntry) -> Answer {
    answer(
        e.id,
        e.state,
        e.response_status,
        e.response.as_ref(),
        e.reason.as_deref(),
    )
}

/// Meta's own answer when there is one; else a Graph-shaped error from wagate.
pub fn answer(
    id: u64,
    state: State,
    status: Option<u16>,
    body: Option<&Value>,
    reason: Option<&str>,
) -> Answer {
    let reason = reason.unwrap_or("failed");
    let (status, body) = match (state, status, body) {
        (State::Unknown, _, _) => (504, graph_error(reason, id)),
        (_, Some(s), Some(b)) => (s, b.clone()),
        _ => (502, graph_error(reason, id)),
    };
    Answer {
        state,
        status,
        body,
    }
}

fn paused_answer(p: &Pause) -> Answer {
    Answer {
        state: State::Queued,
        status: 401,
        body: serde_json::json!({"error": {"message": format!("wagate: sending is paused: {}", p.reason),
            "type": "OAuthException", "code": 190}}),
    }
}

fn closing_answer(id: u64) -> Answer {
    Answer {
        state: State::Queued,
        status: 503,
        body: graph_error("wagate is shutting down; the message stays queued", id),
    }
}

/// A Graph-shaped error body for answers wagate makes itself.
pub fn graph_error(message: &str, id: u64) -> Value {
    serde_json::json!({"error": {"message": format!("wagate: {message}"), "type": "WagateError",
        "code": 0, "error_data": {"details": message, "wagate_id": id}}})
}
