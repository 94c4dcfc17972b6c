//! Retention: raw deliveries (journal segments) after `WAGATE_RAW_TTL`, messages,
//! statuses and account events after `WAGATE_EVENT_TTL`. Runs in the applier's
//! thread, so it never races the applier: a pass at start and then every few
//! minutes, done in slices of a bounded size with an applier step between two.
//! A busy day's expiry (hundreds of thousands of items in one pass) in one go held
//! processing for a minute and took hundreds of MB in sled; sliced, each part
//! takes milliseconds (docs/performance.md, "Retention").

use std::time::{Duration, SystemTime};

use crate::journal::{Cursor, Journal, Stream};
use crate::store::{Store, StoreError};
use crate::util::clock::Clock;
use crate::util::time::FUTURE_SKEW_SECS;

const EVERY: Duration = Duration::from_secs(600);
/// Entries deleted (for statuses and misplaced entries: looked at) in one slice.
const SLICE: usize = 1_000;

/// What a pass deletes, in order; a slice goes on where the one before stopped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Stage {
    #[default]
    Segments,
    Misplaced,
    Messages,
    Events,
    Calls,
    Statuses,
}

impl Stage {
    fn next(self) -> Option<Stage> {
        use Stage::*;
        match self {
            Segments => Some(Misplaced),
            Misplaced => Some(Messages),
            Messages => Some(Events),
            Events => Some(Calls),
            Calls => Some(Statuses),
            Statuses => None,
        }
    }
}

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
    /// Where the pass in progress is.
    stage: Stage,
    statuses_from: Option<Vec<u8>>,
    /// What the pass in progress deleted so far (logged once, at its end).
    pass: Report,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub segments: u64,
    pub bytes: u64,
    pub deliveries: u64,
    pub messages: u64,
    pub statuses: u64,
    pub events: u64,
    /// Call events (by their own time, like messages).
    pub calls: u64,
    /// Whether the slice stopped at its size: the pass goes on.
    pub more: bool,
}

impl Report {
    fn add(&mut self, other: &Report) {
        self.segments += other.segments;
        self.bytes += other.bytes;
        self.deliveries += other.deliveries;
        self.messages += other.messages;
        self.statuses += other.statuses;
        self.events += other.events;
        self.calls += other.calls;
    }
}

impl Retention {
    pub fn new(options: RetentionOptions) -> Self {
        Retention {
            options,
            next_run: 0,
            stage: Stage::Segments,
            statuses_from: None,
            pass: Report::default(),
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

    /// Runs one slice of the pass and schedules the next: at once while the pass
    /// goes on, else after a rest. `applied` is the main stream's committed cursor:
    /// only segments wholly before it are deleted.
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
        self.pass.add(&report);
        if !report.more {
            log_pass(&std::mem::take(&mut self.pass));
        }
        let rest = if report.more { Duration::ZERO } else { EVERY };
        self.next_run = self.options.clock.deadline(rest);
        Ok(())
    }

    /// One slice of the pass: `SLICE` entries at most, stage after stage from where
    /// the slice before stopped. `more` when the pass is not over.
    pub fn sweep(
        &mut self,
        journal: &Journal,
        store: &Store,
        applied: Option<Cursor>,
        now: SystemTime,
    ) -> Result<Report, StoreError> {
        let mut report = Report::default();
        let mut budget = SLICE;
        loop {
            let (used, done) = match self.stage {
                Stage::Segments => {
                    self.expire_segments(journal, store, applied, now, budget, &mut report)?
                }
                stage => self.expire_items(stage, store, now, budget, &mut report)?,
            };
            budget = budget.saturating_sub(used);
            if !done {
                report.more = true;
                return Ok(report);
            }
            match self.stage.next() {
                Some(next) => self.stage = next,
                None => {
                    self.stage = Stage::Segments;
                    return Ok(report);
                }
            }
            if budget == 0 {
                report.more = true;
                return Ok(report);
            }
        }
    }

    /// One stage's part of a slice over model entries, `budget` at most: how many
    /// it used, and whether the stage is done.
    fn expire_items(
        &mut self,
        stage: Stage,
        store: &Store,
        now: SystemTime,
        budget: usize,
        report: &mut Report,
    ) -> Result<(usize, bool), StoreError> {
        let since_epoch = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs().min(i64::MAX as u64) as i64)
        };
        let ttl = self.options.event_ttl.as_secs().min(i64::MAX as u64) as i64;
        let horizon = since_epoch(now).saturating_sub(ttl);
        // No item is placed after this today (an out-of-range time goes by the
        // receive time): what an earlier version put there goes by its delivery's.
        let misplaced_after = since_epoch(now).saturating_add(FUTURE_SKEW_SECS);
        let counted = |n: u64, into: &mut u64| {
            *into += n;
            (n as usize, (n as usize) < budget)
        };
        Ok(match stage {
            Stage::Segments => (0, true), // `expire_segments` does it
            // Looks at the first `SLICE` of each once a pass: what is not expired stays.
            Stage::Misplaced => {
                let (messages, events) = store.expire_misplaced(misplaced_after, horizon, SLICE)?;
                report.messages += messages;
                report.events += events;
                ((messages + events) as usize, true)
            }
            Stage::Messages => counted(
                store.expire_messages(horizon, budget)?,
                &mut report.messages,
            ),
            Stage::Events => counted(store.expire_events(horizon, budget)?, &mut report.events),
            Stage::Calls => counted(store.expire_calls(horizon, budget)?, &mut report.calls),
            Stage::Statuses => {
                let from = self.statuses_from.take();
                let (n, next) =
                    store.expire_statuses(horizon, misplaced_after, from.as_deref(), budget)?;
                report.statuses += n;
                let done = next.is_none();
                self.statuses_from = next;
                (if done { n as usize } else { budget }, done)
            }
        })
    }

    /// Journal segments wholly applied and wholly expired, oldest first: their
    /// deliveries' index entries first, `budget` at most, then the file. How many
    /// entries it forgot, and whether no expired segment is left.
    fn expire_segments(
        &self,
        journal: &Journal,
        store: &Store,
        applied: Option<Cursor>,
        now: SystemTime,
        budget: usize,
        report: &mut Report,
    ) -> Result<(usize, bool), StoreError> {
        let io = |e: crate::journal::JournalError| StoreError::Task(e.to_string());
        let raw_horizon = now
            .checked_sub(self.options.raw_ttl)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let segments = journal.segments(Stream::Main).map_err(io)?;
        let applied_segment = applied.map_or(0, |c| c.segment);
        let mut used = 0;
        for pair in segments.windows(2) {
            let (seg, next) = (&pair[0], &pair[1]);
            if seg.id >= applied_segment || seg.modified >= raw_horizon {
                break;
            }
            // Index first, file second: a crash in between leaves a file that the next
            // slice deletes, never an index entry pointing at nothing.
            let left = budget - used;
            let forgotten = store.forget_accepted(seg.id, next.id, left)? as usize;
            report.deliveries += forgotten as u64;
            used += forgotten;
            if forgotten == left || store.forget_unrouted(next.id, left)? as usize == left {
                return Ok((used, false));
            }
            journal.delete_segment(Stream::Main, seg.id).map_err(io)?;
            report.segments += 1;
            report.bytes += seg.bytes;
        }
        Ok((used, true))
    }
}

fn log_pass(pass: &Report) {
    if *pass != Report::default() {
        tracing::info!(
            segments = pass.segments,
            bytes = pass.bytes,
            deliveries = pass.deliveries,
            messages = pass.messages,
            statuses = pass.statuses,
            events = pass.events,
            calls = pass.calls,
            "retention pass deleted expired data"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JournalOptions;
    use crate::store::fixtures::{delivery, message};
    use crate::store::Changes;

    const DAY: u64 = 86_400;
    const NOW: i64 = 1_764_670_000;

    /// 2,500 expired messages take three slices, each due at once after the one
    /// before; the pass ends with one log line and rests until the next.
    #[test]
    fn a_pass_runs_in_slices_due_one_after_another() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let journal = Journal::open(&JournalOptions {
            dir: dir.path().join("journal"),
            segment_size: 1 << 20,
            quarantine_max: 1 << 20,
            queue: 16,
            batch_bytes: 1 << 16,
        })
        .unwrap();
        let mut c = Changes::new();
        c.put_delivery(&delivery(1, NOW - 2 * DAY as i64));
        for i in 0..2_500 {
            c.put_message(&message(&format!("wamid.{i}"), NOW - 2 * DAY as i64, 1));
        }
        store.commit(c).unwrap();
        let clock = Clock::manual(NOW * 1_000_000);
        let mut retention = Retention::new(RetentionOptions {
            raw_ttl: Duration::from_secs(DAY),
            event_ttl: Duration::from_secs(DAY),
            totals: Default::default(),
            clock: clock.clone(),
        });
        let mut slices = Vec::new();
        while retention.is_due() && slices.len() < 10 {
            let before = retention.options.totals.values()[3].1;
            retention.run(&journal, &store, None).unwrap();
            slices.push(retention.options.totals.values()[3].1 - before);
        }
        assert_eq!(slices, [1_000, 1_000, 500]);
        assert!(store
            .messages(None, None, None, 10)
            .unwrap()
            .messages
            .is_empty());
        assert_eq!(retention.pass, Report::default(), "the pass is over");
        clock.advance(EVERY);
        assert!(retention.is_due(), "the next pass is due after a rest");
    }
}
