//! The applier: one thread reads the journal in order and turns records into
//! derived state in sled, committing each step's results with its cursor.
//! Re-applying a suffix of the journal is harmless: the cursor and the results of a
//! step are committed together, so a step is either wholly applied or not at all.

mod coex;
mod committer;
mod driver;
pub mod erase;
pub mod items;
pub mod metrics;
mod options;
mod record;
pub mod retention;
pub mod running;
pub mod seen;
mod seen_scan;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use committer::Committer;
use items::Overlay;
pub use options::{Options, StepBounds};
use seen::{ScanResult, SeenFilter};

use crate::journal::{Cursor, Heads, Journal, Stream, StreamReader};
use crate::store::{Applied, Counters};
use crate::store::{Changes, Store, StoreError};
use crate::util::clock::Clock;

/// What the features hand the applier: their sides of processing.
pub struct Pending {
    pub media: crate::media::apply::Pending,
    pub forward: crate::forward::apply::Pending,
}

/// Dedup keys looked at per expiry step.
const EXPIRY_BUDGET: usize = 20_000;

pub struct Applier {
    journal: Arc<Journal>,
    store: Store,
    readers: [StreamReader; 2],
    counters: Counters,
    applied: watch::Sender<Applied>,
    purged_before: u64,
    overlay: Overlay,
    outbox: crate::outbox::apply::Pending,
    media: crate::media::apply::Pending,
    forward: crate::forward::apply::Pending,
    options: Options,
    /// When the next dedup-key expiry pass is due (the clock's monotonic microseconds).
    next_expiry: i64,
    clock: Clock,
    expiry_from: Option<Vec<u8>>,
    committer: Option<Committer>,
    retention: retention::Retention,
    seen: SeenFilter,
    /// The startup scan of the dedup keys in sled, until it is merged into `seen`.
    seen_scan: Option<tokio::sync::oneshot::Receiver<Result<ScanResult, StoreError>>>,
}

impl Applier {
    /// Loads the cursors (blocking).
    pub fn new(
        journal: Arc<Journal>,
        store: Store,
        options: Options,
        pending: Pending,
        clock: Clock,
    ) -> Result<(Applier, watch::Receiver<Applied>), StoreError> {
        let main = store.cursor(Stream::Main)?;
        let quarantine = store.cursor(Stream::Quarantine)?;
        let applied = Applied {
            main: main.map_or(0, |c| c.last_seq),
            quarantine: quarantine.map_or(0, |c| c.last_seq),
            ..Applied::default()
        };
        let (tx, rx) = watch::channel(applied);
        let counters = Counters::load(&store)?;
        Ok((
            Applier {
                readers: [
                    journal.reader(Stream::Main, main),
                    journal.reader(Stream::Quarantine, quarantine),
                ],
                journal,
                store,
                counters,
                applied: tx,
                purged_before: 0,
                overlay: Overlay::default(),
                outbox: Default::default(),
                media: pending.media,
                forward: pending.forward,
                next_expiry: 0,
                expiry_from: None,
                committer: None,
                retention: retention::Retention::new(options.retention.clone()),
                seen: SeenFilter::with_max_keys(
                    options.dedup_ttl,
                    clock.now_secs(),
                    options.dedup_keys,
                ),
                options,
                clock,
                seen_scan: None,
            },
            rx,
        ))
    }

    /// Applies up to one step of each stream. Returns whether anything was applied.
    pub fn step(&mut self, heads: &Heads) -> Result<bool, StoreError> {
        self.merge_seen_scan();
        let mut progressed = false;
        for i in 0..self.readers.len() {
            progressed |= self.step_stream(i, heads)?;
        }
        if heads.quarantine_oldest_segment > self.purged_before {
            let n = self
                .store
                .forget_dropped_quarantine(heads.quarantine_oldest_segment)?;
            if n > 0 {
                tracing::info!(
                    deliveries = n,
                    "forgot rejected deliveries dropped from quarantine"
                );
            }
            self.purged_before = heads.quarantine_oldest_segment;
        }
        if self.retention.is_due() {
            // The committed cursor, not the reader's: only what is durably applied may go.
            let committed = self.store.cursor(Stream::Main)?;
            self.retention.run(&self.journal, &self.store, committed)?;
        }
        if self.clock.mono_micros() >= self.next_expiry {
            let horizon = self.clock.now_micros() - self.options.dedup_ttl.as_micros() as i64;
            let (n, next) =
                self.store
                    .expire_items(horizon, self.expiry_from.as_deref(), EXPIRY_BUDGET)?;
            if n > 0 {
                tracing::info!(keys = n, "expired dedup keys past WAGATE_DEDUP_TTL");
            }
            // Keep scanning soon while a pass is under way; rest once it is done.
            let pause = if next.is_some() { 1 } else { 60 };
            self.seen.expire(self.clock.now_secs());
            self.expiry_from = next;
            self.next_expiry = self.clock.deadline(Duration::from_secs(pause));
        }
        Ok(progressed)
    }

    fn step_stream(&mut self, i: usize, heads: &Heads) -> Result<bool, StoreError> {
        let stream = self.readers[i].stream();
        let prepared = match self.prepare(i, heads) {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(false),
            Err(e) => return Err(self.reset(e)),
        };
        if let Err(e) = self.finish_in_flight() {
            return Err(self.reset(e));
        }
        let (changes, cursor) = prepared;
        self.overlay.hand_off();
        self.outbox.hand_off();
        self.media.hand_off();
        self.forward.hand_off();
        match &mut self.committer {
            Some(c) => {
                if c.work.send(changes).is_err() {
                    return Err(self.reset(StoreError::Task("committer stopped".into())));
                }
                c.in_flight = Some((stream, cursor));
            }
            None => {
                if let Err(e) = self.store.commit(changes) {
                    return Err(self.reset(e));
                }
                self.overlay.committed();
                self.outbox.committed();
                self.media.committed();
                self.forward.committed();
                self.publish(stream, cursor);
            }
        }
        Ok(true)
    }

    /// Waits for the step being committed, then publishes it as applied.
    fn finish_in_flight(&mut self) -> Result<(), StoreError> {
        let Some(c) = &mut self.committer else {
            return Ok(());
        };
        let Some((stream, cursor)) = c.in_flight.take() else {
            return Ok(());
        };
        c.done
            .recv()
            .map_err(|_| StoreError::Task("committer stopped".into()))??;
        self.overlay.committed();
        self.outbox.committed();
        self.media.committed();
        self.forward.committed();
        self.publish(stream, cursor);
        Ok(())
    }

    /// A step is committed: it counts as applied, and as a success.
    fn publish(&self, stream: Stream, cursor: Cursor) {
        self.options.health.succeeded(self.clock.mono_micros());
        self.applied.send_modify(|a| {
            match stream {
                Stream::Main => a.main = cursor.last_seq,
                Stream::Quarantine => a.quarantine = cursor.last_seq,
            }
            self.filter_progress(a);
        });
    }

    /// The dedup filter's state, for stats.
    fn filter_progress(&self, a: &mut Applied) {
        a.dedup_filter = self.seen.state();
        a.dedup_filter_keys = self.seen.len();
    }

    /// After a failed step: nothing uncommitted counts. Start again from the cursors
    /// in sled. Returns `error` for the caller to report.
    fn reset(&mut self, error: StoreError) -> StoreError {
        if let Some(c) = &mut self.committer {
            if c.in_flight.take().is_some() {
                let _ = c.done.recv();
            }
        }
        self.overlay.clear();
        self.outbox.clear();
        self.media.clear();
        self.forward.clear();
        let reload = || -> Result<_, StoreError> {
            Ok((
                Counters::load(&self.store)?,
                self.store.cursor(Stream::Main)?,
                self.store.cursor(Stream::Quarantine)?,
            ))
        };
        match reload() {
            Ok((counters, main, quarantine)) => {
                self.counters = counters;
                self.readers = [
                    self.journal.reader(Stream::Main, main),
                    self.journal.reader(Stream::Quarantine, quarantine),
                ];
            }
            Err(e) => tracing::error!(error = %e, "could not reload the applier's cursors"),
        }
        error
    }

    /// Applies records of stream `i` into one set of changes (with its cursor and the
    /// counters), up to the step's bounds; `None` when there was nothing to read.
    fn prepare(
        &mut self,
        i: usize,
        heads: &Heads,
    ) -> Result<Option<(Changes, Cursor)>, StoreError> {
        let mut changes = Changes::new();
        let (mut n, mut items, mut bytes) = (0, 0, 0);
        let stream = self.readers[i].stream();
        let bound = self.options.step;
        while n < bound.records && items < bound.items && bytes < bound.bytes {
            let next = self.readers[i]
                .next(heads)
                .map_err(|e| StoreError::Task(e.to_string()))?;
            let Some((record, pos)) = next else { break };
            items += self.apply_record(stream, &record, pos, &mut changes)?;
            bytes += record.payload.len();
            n += 1;
        }
        let Some(cursor) = self.readers[i].cursor().filter(|_| n > 0) else {
            return Ok(None);
        };
        changes.set_cursor(stream, cursor);
        self.overlay.write(&mut changes);
        self.outbox.write(&mut changes, &mut self.counters);
        self.media.write(&mut changes, &mut self.counters);
        self.forward.write(&mut changes);
        self.counters.write(&mut changes);
        Ok(Some((changes, cursor)))
    }
}
