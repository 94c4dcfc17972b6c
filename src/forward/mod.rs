//! Forwarding: hands each new event on to the business's own app(s).
//!
//! - `record.rs`: the journal payloads (`Kind::ForwardUpdate`) and derived entries.
//! - `apply.rs`: the applier's side: new items queued per target (atomically with
//!   their dedup keys), unrouted items recorded, updates applied.
//! - `worker.rs`: one task per target: in queue order, a few entries in flight
//!   (never two of one contact), backoff with full jitter, `Retry-After`, `410`
//!   disables, pause and probe, dead letters.
//! - `attempt.rs`: one attempt at an entry (requests built, signed, sent), what a
//!   failure costs, which contacts an entry concerns.
//! - `decide.rs`: what next after an answer or a failure (pure, table-tested).
//! - `replay.rs`: replays asked for through the API, journaled then queued.
//! - `http.rs`: `/api/forward/...`; `metrics.rs` the `wagate_forward_*` metrics.
//!
//! Delivery is at least once: an entry leaves its queue only when a `Delivered`
//! record is journaled after the target's `2xx`. After a crash, the entries in
//! flight and those whose `Delivered` record was not yet synced are sent again
//! (at most `WAGATE_FORWARD_CONCURRENCY` + `worker::MAX_UNSYNCED`); nothing else is.

pub mod apply;
mod attempt;
pub(crate) mod decide;
mod http;
pub mod metrics;
pub mod record;
mod replay;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{watch, Notify};

pub use http::{routes, Handles};
pub use replay::ReplayRequest;
pub use worker::MAX_UNSYNCED;

use crate::config::{ForwardConfig, ForwardTarget};
use crate::journal::delivery::Delivery;
use crate::journal::{Journal, JournalError, Kind, Stream};
use crate::store::Applied;
use crate::store::{Store, StoreError};
use crate::upstream::Upstream;
use crate::util::clock::Clock;
use record::{encode, ForwardUpdate, TargetState};

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("no forwarding target '{0}' is configured")]
    UnknownTarget(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What this process has seen of a target (since start; not persisted).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Live {
    /// Requests made (an events-mode entry makes one per item).
    pub attempts: u64,
    pub failures: u64,
    /// Bus publishes JetStream acknowledged as duplicates (the stream had the
    /// message already: another instance, or an earlier attempt, published it).
    pub duplicates: u64,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_error_at_micros: Option<i64>,
    pub last_attempt_at_micros: Option<i64>,
    /// Failing without a success since then.
    pub failing_since_micros: Option<i64>,
    /// Failing for longer than `WAGATE_FORWARD_PAUSE_AFTER`: only probed.
    pub paused: bool,
    pub next_attempt_at_micros: Option<i64>,
    /// Entries that could not be built or sent for a reason of their own (their raw
    /// delivery gone, a failure inside wagate): each dead-lettered with the reason.
    pub entry_failures: u64,
    /// Times the worker task died and was started again.
    pub worker_restarts: u64,
    /// Why the worker last died, until the target delivers again.
    pub worker_error: Option<String>,
}

/// A target as the API and the dashboard show it: its configuration, its durable
/// state, and what this process has seen of it.
pub struct TargetStatus {
    pub target: ForwardTarget,
    pub state: TargetState,
    pub live: Live,
}

impl TargetStatus {
    /// `active`, `retrying`, `paused`, `failed` (its worker died and is started
    /// again) or `disabled`.
    pub fn state_name(&self) -> &'static str {
        if self.state.disabled.is_some() {
            "disabled"
        } else if self.live.worker_error.is_some() {
            "failed"
        } else if self.live.paused {
            "paused"
        } else if self.live.consecutive_failures > 0 {
            "retrying"
        } else {
            "active"
        }
    }
}

pub struct Forwarder {
    journal: Arc<Journal>,
    store: Store,
    upstream: Upstream,
    config: ForwardConfig,
    notify: HashMap<String, Arc<Notify>>,
    live: Mutex<HashMap<String, Live>>,
    applied: watch::Receiver<Applied>,
    stopping: watch::Sender<bool>,
    /// Workers still running.
    running: watch::Sender<usize>,
    /// Backoff, max ages and probes count on it.
    clock: Clock,
}

impl Forwarder {
    /// One wake-up handle per configured target (shared with the applier's side).
    pub fn notifiers(config: &ForwardConfig) -> HashMap<String, Arc<Notify>> {
        config
            .targets
            .iter()
            .map(|t| (t.id.clone(), Arc::new(Notify::new())))
            .collect()
    }

    /// Starts one worker per target (inside a tokio runtime).
    pub fn start(
        journal: Arc<Journal>,
        store: Store,
        upstream: Upstream,
        config: ForwardConfig,
        notify: HashMap<String, Arc<Notify>>,
        applied: watch::Receiver<Applied>,
        clock: Clock,
    ) -> Arc<Forwarder> {
        let f = Arc::new(Forwarder {
            clock,
            journal,
            store,
            upstream,
            live: Mutex::new(HashMap::new()),
            notify,
            applied,
            stopping: watch::channel(false).0,
            running: watch::channel(config.targets.len()).0,
            config,
        });
        for t in &f.config.targets {
            tracing::info!(target_id = %t.id, url = %t.display_url(), mode = t.mode.as_str(), "forwarding to target");
            tokio::spawn(worker::supervised(f.clone(), t.clone()));
        }
        f
    }

    /// Stops the workers: a request in flight is let finish (up to the timeout) and
    /// its outcome journaled; waiting entries stay queued for the next start.
    pub async fn shutdown(&self) {
        self.stopping.send_replace(true);
        let mut running = self.running.subscribe();
        let limit = self.config.timeout + std::time::Duration::from_secs(5);
        let _ = tokio::time::timeout(limit, running.wait_for(|n| *n == 0)).await;
    }

    pub fn targets(&self) -> &[ForwardTarget] {
        &self.config.targets
    }

    pub fn target(&self, id: &str) -> Result<&ForwardTarget, ForwardError> {
        self.config
            .targets
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| ForwardError::UnknownTarget(id.to_string()))
    }

    pub fn live(&self, id: &str) -> Live {
        self.live
            .lock()
            .map(|l| l.get(id).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Every configured target with its state.
    pub async fn statuses(&self) -> Result<Vec<TargetStatus>, StoreError> {
        let (targets, st) = (self.config.targets.clone(), self.store.clone());
        let states = crate::store::blocking(move || {
            targets
                .into_iter()
                .map(|t| {
                    let s = st.forward_target(&t.id)?.unwrap_or_else(|| TargetState {
                        target: t.id.clone(),
                        ..Default::default()
                    });
                    Ok((t, s))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?;
        Ok(states
            .into_iter()
            .map(|(target, state)| TargetStatus {
                live: self.live(&target.id),
                target,
                state,
            })
            .collect())
    }

    /// Changes what this process has seen of a target; `None` if the lock is poisoned.
    fn update_live<R>(&self, id: &str, f: impl FnOnce(&mut Live) -> R) -> Option<R> {
        let mut l = self.live.lock().ok()?;
        Some(f(l.entry(id.to_string()).or_default()))
    }

    /// Journals a forwarding record; its sequence number once it is synced.
    async fn journal(&self, u: &ForwardUpdate) -> Result<u64, JournalError> {
        self.journal
            .append(
                Stream::Main,
                Kind::ForwardUpdate,
                self.clock.now_micros(),
                encode(u),
            )
            .await
            .map(|a| a.seq)
    }

    /// Waits until the applier has applied everything journaled so far.
    async fn wait_applied(&self) {
        let target = self.journal.heads().borrow().clone();
        let mut applied = self.applied.clone();
        let _ = applied
            .wait_for(|a| a.overall(&target) >= target.last_seq)
            .await;
    }

    /// Enables a target a `410` disabled (journaled).
    pub async fn enable(&self, id: &str) -> Result<(), ForwardError> {
        self.target(id)?;
        self.journal(&ForwardUpdate::Enabled { target: id.into() })
            .await?;
        tracing::info!(target_id = %id, "forwarding target enabled");
        Ok(())
    }
}

/// Returns true when stopping.
pub(super) async fn sleep_or_stop(
    clock: &Clock,
    stopping: &mut watch::Receiver<bool>,
    d: Duration,
) -> bool {
    tokio::select! {
        _ = clock.sleep(d) => false,
        _ = stopping.wait_for(|s| *s) => true,
    }
}

/// Journals `u`, retrying until it is written (or stopping: then the entry is sent
/// again after the restart, which at-least-once allows).
pub(super) async fn record(f: &Forwarder, u: &ForwardUpdate, stopping: &mut watch::Receiver<bool>) {
    let mut n = 0u32;
    loop {
        match f.journal(u).await {
            Ok(_) => return,
            Err(e) => {
                n += 1;
                tracing::error!(target_id = %u.target(), error = %e, "cannot journal a forwarding outcome; retrying");
                let d = f.config.backoff_base.saturating_mul(n.min(10));
                if sleep_or_stop(&f.clock, stopping, d).await {
                    return;
                }
            }
        }
    }
}

/// The exact body of accepted delivery `id`, read back from the journal, and its
/// record (receive time, items applied) (blocking).
fn read_body(
    journal: &Journal,
    store: &Store,
    id: u64,
) -> Result<(Vec<u8>, crate::store::DeliveryMeta), String> {
    let meta = store
        .delivery(id)
        .map_err(|e| e.to_string())?
        .filter(|m| m.verdict.is_accepted())
        .ok_or_else(|| format!("delivery {id} is not an accepted delivery wagate still knows"))?;
    let record = journal
        .read_at(meta.stream, meta.pos)
        .map_err(|e| format!("delivery {id} is no longer in the journal: {e}"))?;
    Delivery::decode(&record.payload)
        .map(|d| (d.body, meta))
        .map_err(|e| format!("delivery {id} cannot be decoded: {e}"))
}
