//! The applier: one thread reads the journal in order and turns records into
//! derived state in sled, committing each step's results with its cursor.
//! Re-applying a suffix of the journal is harmless: the cursor and the results of a
//! step are committed together, so a step is either wholly applied or not at all.

mod committer;
pub mod items;
pub mod metrics;
mod record;
pub mod retention;
pub mod seen;
mod seen_scan;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use committer::Committer;
use items::Overlay;
use seen::{ScanResult, SeenFilter};

use crate::util::clock::Clock;
use crate::journal::{Cursor, Heads, Journal, Stream, StreamReader};
use crate::store::{Applied, Counters};
use crate::store::{Changes, Store, StoreError};

/// What woke the idle applier.
enum Wake {
    /// New records or a stop; `true` when the sender is gone.
    Changed(bool),
    /// The startup scan of dedup keys finished (`None`: its thread died).
    Scanned(Option<Result<ScanResult, StoreError>>),
}

/// Records applied per commit at most: bounds the size of one sled transaction.
const STEP_RECORDS: usize = 256;
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
    dedup_ttl: Duration,
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
        dedup_ttl: Duration,
        retention: retention::RetentionOptions,
        media: crate::media::apply::Pending,
        forward: crate::forward::apply::Pending,
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
                media,
                forward,
                dedup_ttl,
                next_expiry: 0,
                expiry_from: None,
                committer: None,
                retention: retention::Retention::new(retention),
                seen: SeenFilter::new(dedup_ttl, clock.now_secs()),
                clock,
                seen_scan: None,
            },
            rx,
        ))
    }

    /// Holds at most `keys` dedup keys in memory (`WAGATE_MEMORY`) instead of the
    /// default. Call it before [`Applier::run`]: the filter starts empty again.
    pub fn with_dedup_capacity(mut self, keys: usize) -> Self {
        self.seen = SeenFilter::with_max_keys(self.dedup_ttl, self.clock.now_secs(), keys);
        self
    }

    /// Runs until `stop` turns true and everything synced has been applied. Blocking:
    /// give it its own thread.
    pub fn run(mut self, runtime: tokio::runtime::Handle, mut stop: watch::Receiver<bool>) {
        match Committer::start(self.store.clone()) {
            Ok(c) => self.committer = Some(c),
            Err(e) => tracing::warn!(error = %e, "no committer thread; committing inline"),
        }
        self.start_seen_scan();
        self.apply_until_stopped(runtime, &mut stop);
        if let Some(mut c) = self.committer.take() {
            let thread = c.thread.take();
            drop(c);
            if let Some(t) = thread {
                let _ = t.join();
            }
        }
    }

    fn apply_until_stopped(
        &mut self,
        runtime: tokio::runtime::Handle,
        stop: &mut watch::Receiver<bool>,
    ) {
        let mut heads_rx = self.journal.heads();
        loop {
            let heads = heads_rx.borrow_and_update().clone();
            let progressed = match self.step(&heads) {
                Ok(p) => p,
                Err(e) => {
                    // A stop must not wait on a failure that may never clear (a
                    // vanished data directory): what is not applied stays in the journal.
                    if *stop.borrow() {
                        tracing::error!(error = %e, "applying the journal failed; stopping anyway");
                        return;
                    }
                    tracing::error!(error = %e, "applying the journal failed; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if progressed {
                continue;
            }
            // Caught up: make the last step visible before waiting.
            if let Err(e) = self.finish_in_flight() {
                tracing::error!(error = %self.reset(e), "committing applied state failed; retrying");
                if *stop.borrow() {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            if *stop.borrow() {
                return;
            }
            // A sender gone (the app dropped without a shutdown) means nothing more
            // can arrive: stop rather than spin on a closed channel.
            let seen_scan = &mut self.seen_scan;
            // Sweeps and expiry run between steps: wake for them when idle too.
            let due = self.retention.next_run().min(self.next_expiry);
            let clock = self.clock.clone();
            let wake = runtime.block_on(async {
                let scanned = async {
                    match seen_scan {
                        Some(rx) => rx.await.ok(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    r = heads_rx.changed() => Wake::Changed(r.is_err()),
                    r = stop.changed() => Wake::Changed(r.is_err()),
                    r = scanned => Wake::Scanned(r),
                    _ = clock.sleep_until(due) => Wake::Changed(false),
                }
            });
            let closed = match wake {
                Wake::Changed(closed) => closed,
                Wake::Scanned(result) => {
                    self.seen_scanned(result);
                    false
                }
            };
            if closed {
                tracing::debug!("applier: the app is gone; stopping");
                return;
            }
        }
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
            let horizon = self.clock.now_micros() - self.dedup_ttl.as_micros() as i64;
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

    fn publish(&self, stream: Stream, cursor: Cursor) {
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

    /// Applies up to `STEP_RECORDS` records of stream `i` into one set of changes
    /// (with its cursor and the counters); `None` when there was nothing to read.
    fn prepare(
        &mut self,
        i: usize,
        heads: &Heads,
    ) -> Result<Option<(Changes, Cursor)>, StoreError> {
        let mut changes = Changes::new();
        let mut n = 0;
        let stream = self.readers[i].stream();
        while n < STEP_RECORDS {
            let next = self.readers[i]
                .next(heads)
                .map_err(|e| StoreError::Task(e.to_string()))?;
            let Some((record, pos)) = next else { break };
            self.apply_record(stream, &record, pos, &mut changes)?;
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
