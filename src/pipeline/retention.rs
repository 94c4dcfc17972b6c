//! Retention: raw deliveries (journal segments) after `WAGATE_RAW_TTL`, messages,
//! statuses and account events after `WAGATE_EVENT_TTL`. Runs in the applier's
//! thread, at start and then every few minutes, so it never races the applier.

use std::time::{Duration, SystemTime};

use crate::journal::{Cursor, Journal, Stream};
use crate::store::{Store, StoreError};
use crate::util::clock::Clock;
use crate::util::time::FUTURE_SKEW_SECS;

const EVERY: Duration = Duration::from_secs(600);
const BUDGET: usize = 10_000;

#[derive(Debug, Clone)]
pub struct RetentionOptions {
    pub raw_ttl: Duration,
    pub event_ttl: Duration,
    /// What the sweeps deleted since start, for `/metrics`.
    pub totals: std::sync::Arc<RetentionTotals>,
    /// Ages count on it, and sweeps are scheduled on it.
    pub clock: Clock,
}

/// Running totals of the retention sweeps (segments, bytes, deliveries, messages,
/// statuses, events deleted since start).
#[derive(Debug, Default)]
pub struct RetentionTotals {
    pub deleted: [std::sync::atomic::AtomicU64; 6],
}

impl RetentionTotals {
    /// Names and values, in the order of `deleted`.
    pub fn values(&self) -> [(&'static str, u64); 6] {
        let v = |i: usize| self.deleted[i].load(std::sync::atomic::Ordering::Relaxed);
        [
            ("segments", v(0)),
            ("bytes", v(1)),
            ("deliveries", v(2)),
            ("messages", v(3)),
            ("statuses", v(4)),
            ("events", v(5)),
        ]
    }
}

pub struct Retention {
    options: RetentionOptions,
    /// Monotonic microseconds (the clock's).
    next_run: i64,
    statuses_from: Option<Vec<u8>>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub segments: u64,
    pub bytes: u64,
    pub deliveries: u64,
    pub messages: u64,
    pub statuses: u64,
    pub events: u64,
    /// Call events (by their own time, like messages).
    pub calls: u64,
}

impl Retention {
    pub fn new(options: RetentionOptions) -> Self {
        Retention {
            options,
            next_run: 0,
            statuses_from: None,
        }
    }

    /// Whether a sweep is due (checked between applier steps, so it must be cheap).
    pub fn is_due(&self) -> bool {
        self.options.clock.mono_micros() >= self.next_run
    }

    /// When the next sweep is due (the clock's monotonic microseconds).
    pub fn next_run(&self) -> i64 {
        self.next_run
    }

    /// Runs a sweep and schedules the next. `applied` is the main stream's committed
    /// cursor: only segments wholly before it are deleted.
    pub fn run(
        &mut self,
        journal: &Journal,
        store: &Store,
        applied: Option<Cursor>,
    ) -> Result<(), StoreError> {
        let report = self.sweep(journal, store, applied, self.options.clock.now())?;
        let counts = [
            report.segments,
            report.bytes,
            report.deliveries,
            report.messages,
            report.statuses,
            report.events,
        ];
        for (total, n) in self.options.totals.deleted.iter().zip(counts) {
            total.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
        if report != Report::default() {
            tracing::info!(
                segments = report.segments,
                bytes = report.bytes,
                deliveries = report.deliveries,
                messages = report.messages,
                statuses = report.statuses,
                events = report.events,
                "retention sweep deleted expired data"
            );
        }
        // A status pass in progress continues soon; otherwise rest.
        self.next_run = self
            .options
            .clock
            .deadline(if self.statuses_from.is_some() {
                Duration::from_secs(1)
            } else {
                EVERY
            });
        Ok(())
    }

    pub fn sweep(
        &mut self,
        journal: &Journal,
        store: &Store,
        applied: Option<Cursor>,
        now: SystemTime,
    ) -> Result<Report, StoreError> {
        let mut report = Report::default();
        let io = |e: crate::journal::JournalError| StoreError::Task(e.to_string());
        let raw_horizon = now
            .checked_sub(self.options.raw_ttl)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let segments = journal.segments(Stream::Main).map_err(io)?;
        let applied_segment = applied.map_or(0, |c| c.segment);
        for pair in segments.windows(2) {
            let (seg, next) = (&pair[0], &pair[1]);
            // Wholly applied (the applier is in a later segment) and wholly expired.
            if seg.id >= applied_segment || seg.modified >= raw_horizon {
                break;
            }
            // Index first, file second: a crash in between leaves a file that the next
            // sweep deletes, never an index entry pointing at nothing.
            report.deliveries += store.forget_accepted(seg.id, next.id)?;
            store.forget_unrouted(next.id)?;
            journal.delete_segment(Stream::Main, seg.id).map_err(io)?;
            report.segments += 1;
            report.bytes += seg.bytes;
        }

        let since_epoch = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs().min(i64::MAX as u64) as i64)
        };
        let ttl = self.options.event_ttl.as_secs().min(i64::MAX as u64) as i64;
        let event_horizon = since_epoch(now).saturating_sub(ttl);
        // No item is placed after this today (an out-of-range time goes by the
        // receive time): what an earlier version put there goes by its delivery's.
        let misplaced_after = since_epoch(now).saturating_add(FUTURE_SKEW_SECS);
        let (messages, events) = store.expire_misplaced(misplaced_after, event_horizon, BUDGET)?;
        (report.messages, report.events) = (messages, events);
        loop {
            let n = store.expire_messages(event_horizon, BUDGET)?;
            report.messages += n;
            if n < BUDGET as u64 {
                break;
            }
        }
        loop {
            let n = store.expire_events(event_horizon, BUDGET)?;
            report.events += n;
            if n < BUDGET as u64 {
                break;
            }
        }
        loop {
            let n = store.expire_calls(event_horizon, BUDGET)?;
            report.calls += n;
            if n < BUDGET as u64 {
                break;
            }
        }
        let (n, next) = store.expire_statuses(
            event_horizon,
            misplaced_after,
            self.statuses_from.as_deref(),
            BUDGET,
        )?;
        report.statuses += n;
        self.statuses_from = next;
        Ok(report)
    }
}
