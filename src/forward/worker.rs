//! One task per target: takes the queue in order and keeps up to
//! `WAGATE_FORWARD_CONCURRENCY` entries in flight, never two that concern the same
//! contact, so each contact's events arrive in order.
//!
//! - `2xx`: delivered. The `Delivered` record is journaled in the background (the
//!   next entry does not wait for its fsync); at most [`MAX_UNSYNCED`] such records
//!   are waiting for their sync at any time.
//! - `410 Gone`: the target is disabled (journaled); what is in flight finishes, then
//!   the queue waits for an enable and starts again from its head.
//! - Anything else (other statuses, timeouts, refused connections): the target sends
//!   one entry at a time until one is delivered, and `decide::after_failure` says
//!   who waits. While only entries of its contacts fail, it waits on its own
//!   (exponential backoff with full jitter) with its contacts' later entries behind
//!   it, and the other contacts' entries go on: a poisoned entry holds up its own
//!   contacts only, and after `max_attempts` such failures it is dead-lettered. When
//!   other contacts' entries fail too, the whole target backs off (`Retry-After` on
//!   `429`/`503` always does); after `pause_after` without a success it is paused:
//!   only probed every `probe_every`; a success resumes it.
//! - An entry older than `max_age` (or whose raw delivery is gone) is dead-lettered.
//!   After a crash every entry whose outcome was not yet in the journal is sent
//!   again: at most `WAGATE_FORWARD_CONCURRENCY + MAX_UNSYNCED`.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{watch, Notify};

use super::attempt::{failed, guarded, order_keys, unsendable, Attempt, Slot};
use super::decide::{self, EntryNext};
use super::record::ForwardUpdate;
use super::{record, sleep_or_stop, Forwarder};
use crate::config::ForwardTarget;
use crate::store::StoreError;
use crate::util::backoff::Backoff;
use crate::util::task::supervise;

/// Entries read from the queue at once.
const BATCH: usize = 64;
/// Entries read ahead of what is in flight (to find other contacts' entries).
const LOOKAHEAD: usize = 256;
/// Outcome records journaled but not yet synced, at most: bounds what a crash
/// sends again (with the entries in flight).
pub const MAX_UNSYNCED: usize = 16;
/// Failed entries remembered in a failing streak: enough to tell one contact
/// failing from everything failing.
const STREAK_KEPT: usize = 64;

/// Counts the worker as stopped when dropped.
struct Running(Arc<Forwarder>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The worker of `target`, started again when it dies (a panic, which a failure
/// of one entry never is: see [`guarded`]). Until it delivers again the target
/// shows `failed`, with the reason as its `last_error`.
pub(super) async fn supervised(f: Arc<Forwarder>, target: ForwardTarget) {
    let _running = Running(f.clone());
    let restart = Backoff::new(f.config.backoff_base, f.config.backoff_cap);
    let crashed = |n: u32, why: String| {
        let (f, id) = (f.clone(), target.id.clone());
        async move {
            let error = format!("the forwarding worker stopped: {why}");
            tracing::error!(target_id = %id, restarts = n, error = %error, alert = "forwarding worker failed", "forwarding worker failed; starting it again");
            let now = f.clock.now_micros();
            f.update_live(&id, |l| {
                l.worker_restarts += 1;
                l.worker_error = Some(error.clone());
                l.last_error = Some(error);
                l.last_error_at_micros = Some(now);
            });
            let mut stopping = f.stopping.subscribe();
            !sleep_or_stop(&f.clock, &mut stopping, restart.ceiling(n)).await
        }
    };
    supervise(|| run(f.clone(), target.clone()), crashed).await
}

async fn run(f: Arc<Forwarder>, target: ForwardTarget) {
    let Some(notify) = f.notify.get(&target.id).cloned() else {
        return;
    };
    let mut stopping = f.stopping.subscribe();
    // What the journal says was delivered must be applied before the queue is read.
    tokio::select! {
        _ = f.wait_applied() => {}
        _ = stopping.wait_for(|s| *s) => return,
    }
    Worker {
        generation: f.store.generation(),
        f,
        t: Arc::new(target),
        stopping,
        waiting: VecDeque::new(),
        cursor: None,
        caught_up: false,
        refresh_state: true,
        disabled: false,
        inflight: FuturesUnordered::new(),
        busy: Vec::new(),
        journaling: FuturesUnordered::new(),
        not_before: None,
        entry_wake: None,
        streak: Vec::new(),
        failing: false,
        gone: false,
    }
    .run(&notify)
    .await
}

struct Worker {
    f: Arc<Forwarder>,
    t: Arc<ForwardTarget>,
    stopping: watch::Receiver<bool>,
    /// Read from the queue, not in flight, in queue order (a failed entry goes back
    /// to its place).
    waiting: VecDeque<Slot>,
    /// The last entry read.
    cursor: Option<(u64, u64)>,
    /// The last read found the end of the queue (until the applier wakes us).
    caught_up: bool,
    /// Read the target's state (disabled or not) again.
    refresh_state: bool,
    disabled: bool,
    inflight: FuturesUnordered<BoxFuture<'static, (Slot, Attempt)>>,
    /// The contacts of the entries in flight.
    busy: Vec<String>,
    /// Outcome records on their way to the journal.
    journaling: FuturesUnordered<BoxFuture<'static, ()>>,
    /// The target backs off: nothing starts before this (monotonic microseconds of
    /// the forwarder's clock).
    not_before: Option<i64>,
    /// The earliest end of an entry's own backoff, when one held it back (monotonic).
    entry_wake: Option<i64>,
    /// The contacts of each entry that failed since the target's last success (at
    /// most [`STREAK_KEPT`]).
    streak: Vec<Vec<String>>,
    /// The last outcome was a failure: one entry at a time until one is delivered.
    failing: bool,
    /// A `410` was answered: let what is in flight finish, then wait for an enable.
    gone: bool,
    /// The store's generation the queue was read from ([`crate::store::Store::generation`]).
    /// When the store's differs, a rebuilt state was swapped in (an erasure) and what
    /// was read ahead may be gone: what is in flight finishes, then the queue is read
    /// again from its head.
    generation: u64,
}

enum Event {
    Settled(Box<Slot>, Attempt),
    Journaled,
    Woken,
    Timer,
    Stopping,
}

impl Worker {
    async fn run(mut self, notify: &Notify) {
        loop {
            let stopping = *self.stopping.borrow();
            let generation = self.f.store.generation();
            let swapped = generation != self.generation;
            if (stopping || self.gone || swapped) && self.inflight.is_empty() {
                while self.journaling.next().await.is_some() {}
                if stopping {
                    return;
                }
                // Disabled, or a state swapped in: start again from the head once
                // every outcome is applied.
                tokio::select! {
                    _ = self.f.wait_applied() => {}
                    _ = self.stopping.wait_for(|s| *s) => return,
                }
                self.waiting.clear();
                self.cursor = None;
                self.caught_up = false;
                self.refresh_state = true;
                (self.gone, self.generation) = (false, generation);
                self.streak.clear();
                continue;
            }
            if !stopping && !self.gone && !swapped {
                if let Err(e) = self.refill().await {
                    tracing::error!(target_id = %self.t.id, error = %e, "cannot read the forward queue");
                    self.not_before = Some(self.f.clock.deadline(Duration::from_secs(1)));
                }
                self.start();
            }
            let clock = self.f.clock.clone();
            let wake = match (self.not_before, self.entry_wake) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timer = clock.sleep_until(wake.unwrap_or(0));
            let event = tokio::select! {
                Some((slot, a)) = self.inflight.next(), if !self.inflight.is_empty() => Event::Settled(Box::new(slot), a),
                Some(()) = self.journaling.next(), if !self.journaling.is_empty() => Event::Journaled,
                _ = notify.notified() => Event::Woken,
                _ = timer, if wake.is_some() => Event::Timer,
                _ = self.stopping.wait_for(|s| *s), if !stopping => Event::Stopping,
            };
            match event {
                Event::Settled(slot, a) => self.settle(*slot, a).await,
                Event::Woken => {
                    self.caught_up = false;
                    self.refresh_state = true;
                }
                Event::Timer => {
                    let now = self.f.clock.mono_micros();
                    if self.not_before.is_some_and(|t| t <= now) {
                        self.not_before = None;
                    }
                }
                Event::Journaled | Event::Stopping => {}
            }
        }
    }

    /// Reads the target's state if asked, and the queue ahead while there is room.
    async fn refill(&mut self) -> Result<(), StoreError> {
        loop {
            let want = !self.disabled && !self.caught_up && self.waiting.len() < LOOKAHEAD;
            if !want && !self.refresh_state {
                return Ok(());
            }
            let (f, id, after) = (self.f.clone(), self.t.id.clone(), self.cursor);
            let (refresh, n) = (self.refresh_state, if want { BATCH } else { 0 });
            let (state, batch) = crate::store::blocking(move || {
                let state = match refresh {
                    true => Some(f.store.forward_target(&id)?),
                    false => None,
                };
                let mut batch = Vec::new();
                if n > 0 {
                    for e in f.store.forward_queue_after(&id, after, n)? {
                        let keys = order_keys(&f, &e);
                        batch.push(Slot::new(e, keys));
                    }
                }
                Ok((state, batch))
            })
            .await?;
            if let Some(s) = state {
                self.disabled = s.is_some_and(|s| s.disabled.is_some());
                self.refresh_state = false;
            }
            if n > 0 {
                self.caught_up = batch.len() < n;
                if let Some(last) = batch.last() {
                    self.cursor = Some((last.entry.order, last.entry.delivery));
                }
                self.waiting.extend(batch);
            }
        }
    }

    /// Starts what may start: in queue order, up to the window (one while failing),
    /// skipping entries backing off on their own and entries whose contacts have an
    /// earlier entry in flight or waiting.
    fn start(&mut self) {
        let now = self.f.clock.mono_micros();
        self.entry_wake = None;
        let swapped = self.f.store.generation() != self.generation;
        if self.disabled || self.gone || swapped || self.not_before.is_some_and(|t| t > now) {
            return;
        }
        let limit = decide::window(self.failing, self.f.config.concurrency);
        let mut blocked: HashSet<String> = self.busy.iter().cloned().collect();
        let mut i = 0;
        while i < self.waiting.len()
            && self.inflight.len() < limit
            && self.journaling.len() < MAX_UNSYNCED
        {
            let (keys, own) = (&self.waiting[i].keys, self.waiting[i].not_before);
            let backing_off = own.filter(|t| *t > now);
            if backing_off.is_some() || keys.iter().any(|k| blocked.contains(k)) {
                if let Some(t) = backing_off {
                    self.entry_wake = Some(self.entry_wake.map_or(t, |w| w.min(t)));
                }
                blocked.extend(keys.iter().cloned());
                i += 1;
                continue;
            }
            let Some(slot) = self.waiting.remove(i) else {
                break;
            };
            if decide::past_max_age(self.f.clock.now_micros(), slot.give_up_at(&self.f)) {
                let error = slot
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "not delivered within WAGATE_FORWARD_MAX_AGE".into());
                self.dead_letter(slot, error);
                continue;
            }
            blocked.extend(slot.keys.iter().cloned());
            self.busy.extend(slot.keys.iter().cloned());
            self.inflight
                .push(guarded(self.f.clone(), self.t.clone(), slot));
        }
    }

    async fn settle(&mut self, slot: Slot, outcome: Attempt) {
        for k in &slot.keys {
            if let Some(i) = self.busy.iter().position(|b| b == k) {
                self.busy.swap_remove(i);
            }
        }
        match outcome {
            Attempt::Delivered => {
                self.failing = false;
                self.streak.clear();
                let u = ForwardUpdate::Delivered {
                    target: self.t.id.clone(),
                    order: slot.entry.order,
                    delivery: slot.entry.delivery,
                    attempts: slot.attempts,
                };
                self.journal_later(u);
            }
            Attempt::Failed {
                error,
                retry_after,
                progressed,
            } => self.failed(slot, error, retry_after, progressed),
            Attempt::Gone => {
                if !self.gone {
                    self.gone = true;
                    tracing::error!(target_id = %self.t.id, alert = "forwarding target disabled", "the target answered 410 Gone; forwarding to it stops until it is enabled again");
                    let u = ForwardUpdate::Disabled {
                        target: self.t.id.clone(),
                        reason: "the target answered 410 Gone".into(),
                    };
                    record(&self.f, &u, &mut self.f.stopping.subscribe()).await;
                }
                self.put_back(slot);
            }
            Attempt::Unsendable(error) => {
                unsendable(&self.f, &self.t, &error);
                self.dead_letter(slot, error)
            }
        }
    }

    /// A request of `slot` failed: it waits (on its own, or with the whole target),
    /// or it failed too often and goes to the dead letters.
    fn failed(
        &mut self,
        mut slot: Slot,
        error: String,
        retry_after: Option<Duration>,
        progressed: bool,
    ) {
        if progressed {
            self.streak.clear();
        }
        // An entry of other contacts failed too: the target fails everything.
        let others_failed = self
            .streak
            .iter()
            .any(|keys| !keys.iter().any(|k| slot.keys.contains(k)));
        if !self.streak.contains(&slot.keys) && self.streak.len() < STREAK_KEPT {
            self.streak.push(slot.keys.clone());
        }
        let retry = failed(&self.f, &self.t, &slot, &error, retry_after, others_failed);
        if !retry.delay.is_zero() {
            self.back_off(retry.delay);
        }
        self.failing = true;
        slot.failures += u32::from(retry.counted);
        match retry.entry {
            EntryNext::DeadLetter => {
                let error = format!(
                    "failed {} times while other contacts' entries did not (WAGATE_FORWARD_MAX_ATTEMPTS); last: {error}",
                    slot.failures
                );
                self.dead_letter(slot, error);
            }
            EntryNext::After(d) => {
                slot.not_before = Some(self.f.clock.deadline(d));
                slot.last_error = Some(error);
                self.put_back(slot);
            }
        }
    }

    /// Nothing starts for `delay` (or longer, when already backing off longer).
    fn back_off(&mut self, delay: Duration) {
        let clock = &self.f.clock;
        let at = clock.deadline(delay);
        let at = self.not_before.map_or(at, |b| b.max(at));
        self.not_before = Some(at);
        let micros = clock.now_micros() + (at - clock.mono_micros());
        self.f
            .update_live(&self.t.id, |l| l.next_attempt_at_micros = Some(micros));
    }

    /// Back into `waiting` at its place in queue order.
    fn put_back(&mut self, slot: Slot) {
        let key = (slot.entry.order, slot.entry.delivery);
        let at = self
            .waiting
            .partition_point(|s| (s.entry.order, s.entry.delivery) < key);
        self.waiting.insert(at, slot);
    }

    fn dead_letter(&mut self, slot: Slot, error: String) {
        let e = &slot.entry;
        tracing::warn!(target_id = %self.t.id, delivery = e.delivery, attempts = slot.attempts, error = %error, "forwarding given up: dead letter");
        self.journal_later(ForwardUpdate::DeadLettered {
            target: self.t.id.clone(),
            order: e.order,
            delivery: e.delivery,
            attempts: slot.attempts,
            error,
        });
    }

    /// Journals `u` in the background (the entry leaves the queue once it is applied).
    fn journal_later(&mut self, u: ForwardUpdate) {
        let f = self.f.clone();
        let mut stopping = f.stopping.subscribe();
        self.journaling.push(Box::pin(async move {
            record(&f, &u, &mut stopping).await;
        }));
    }
}
