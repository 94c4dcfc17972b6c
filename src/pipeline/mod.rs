//! The applier: one thread reads the journal in order and turns records into
//! derived state in sled, committing each step's results with its cursor.
//! Re-applying a suffix of the journal is harmless: the cursor and the results of a
//! step are committed together, so a step is either wholly applied or not at all.

pub mod counters;
pub mod retention;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use counters::Counters;

use crate::delivery::Delivery;
use crate::events::apply::{self as events, Delivered, Overlay};
use crate::journal::{Cursor, Heads, Journal, Kind, Record, RecordPos, Stream, StreamReader};
use crate::store::{Changes, DeliveryMeta, Store, StoreError};

/// How far the applier has got in each stream (last sequence number applied).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub main: u64,
    pub quarantine: u64,
}

impl Applied {
    /// The largest sequence number such that everything up to it is applied.
    pub fn overall(&self, heads: &Heads) -> u64 {
        let lagging = [
            (self.main < heads.main).then_some(self.main),
            (self.quarantine < heads.quarantine).then_some(self.quarantine),
        ];
        lagging
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(heads.last_seq)
    }
}

/// Records applied per commit at most: bounds the size of one sled transaction.
const STEP_RECORDS: usize = 2048;
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
    next_expiry: std::time::Instant,
    expiry_from: Option<Vec<u8>>,
    committer: Option<Committer>,
    retention: retention::Retention,
}

/// Commits prepared steps on its own thread, so that step k+1 is prepared (read,
/// parsed, deduplicated) while step k is written: sled's writes are most of the cost.
struct Committer {
    work: std::sync::mpsc::SyncSender<Changes>,
    done: std::sync::mpsc::Receiver<Result<(), StoreError>>,
    in_flight: Option<(Stream, Cursor)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Committer {
    fn start(store: Store) -> std::io::Result<Committer> {
        let (work, work_rx) = std::sync::mpsc::sync_channel::<Changes>(1);
        let (done_tx, done) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("committer".into())
            .spawn(move || {
                for changes in work_rx {
                    if done_tx.send(store.commit(changes)).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Committer {
            work,
            done,
            in_flight: None,
            thread: Some(thread),
        })
    }
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
    ) -> Result<(Applier, watch::Receiver<Applied>), StoreError> {
        let main = store.cursor(Stream::Main)?;
        let quarantine = store.cursor(Stream::Quarantine)?;
        let applied = Applied {
            main: main.map_or(0, |c| c.last_seq),
            quarantine: quarantine.map_or(0, |c| c.last_seq),
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
                next_expiry: std::time::Instant::now(),
                expiry_from: None,
                committer: None,
                retention: retention::Retention::new(retention),
            },
            rx,
        ))
    }

    /// Runs until `stop` turns true and everything synced has been applied. Blocking:
    /// give it its own thread.
    pub fn run(mut self, runtime: tokio::runtime::Handle, mut stop: watch::Receiver<bool>) {
        match Committer::start(self.store.clone()) {
            Ok(c) => self.committer = Some(c),
            Err(e) => tracing::warn!(error = %e, "no committer thread; committing inline"),
        }
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
            let closed = runtime.block_on(async {
                tokio::select! {
                    r = heads_rx.changed() => r.is_err(),
                    r = stop.changed() => r.is_err(),
                }
            });
            if closed {
                tracing::debug!("applier: the app is gone; stopping");
                return;
            }
        }
    }

    /// Applies up to one step of each stream. Returns whether anything was applied.
    pub fn step(&mut self, heads: &Heads) -> Result<bool, StoreError> {
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
        if std::time::Instant::now() >= self.next_expiry {
            let horizon = crate::now_micros() - self.dedup_ttl.as_micros() as i64;
            let (n, next) =
                self.store
                    .expire_items(horizon, self.expiry_from.as_deref(), EXPIRY_BUDGET)?;
            if n > 0 {
                tracing::info!(keys = n, "expired dedup keys past WAGATE_DEDUP_TTL");
            }
            // Keep scanning soon while a pass is under way; rest once it is done.
            let pause = if next.is_some() { 1 } else { 60 };
            self.expiry_from = next;
            self.next_expiry = std::time::Instant::now() + Duration::from_secs(pause);
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
        self.applied.send_modify(|a| match stream {
            Stream::Main => a.main = cursor.last_seq,
            Stream::Quarantine => a.quarantine = cursor.last_seq,
        });
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

    fn apply_record(
        &mut self,
        stream: Stream,
        record: &Record,
        pos: RecordPos,
        changes: &mut Changes,
    ) -> Result<(), StoreError> {
        match Kind::from_u8(record.kind) {
            Some(Kind::Delivery) => {}
            Some(Kind::MediaUpdate) => return self.media.apply(&self.store, record),
            Some(Kind::ForwardUpdate) => return self.forward.apply(&self.store, record),
            Some(kind) => return self.outbox.apply(&self.store, kind, record),
            None => {
                tracing::warn!(
                    seq = record.seq,
                    kind = record.kind,
                    "skipping a journal record of unknown kind"
                );
                return Ok(());
            }
        }
        let delivery = match Delivery::decode(&record.payload) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(seq = record.seq, error = %e, "journal record could not be decoded");
                self.counters.add("journal_undecodable", 1);
                return Ok(());
            }
        };
        let mut meta = DeliveryMeta {
            id: record.seq,
            received_at_micros: record.unix_micros,
            verdict: delivery.verdict,
            reason: delivery.reason.clone(),
            size: delivery.received_length,
            stored_size: delivery.body.len() as u64,
            peer: delivery.peer.clone(),
            secret_index: delivery.secret_index,
            stream,
            pos,
            items: None,
            parse_error: None,
            reverified_as: None,
            reverified_from: delivery.reverified_from,
        };
        if let Some(original) = delivery.reverified_from {
            if let Some(mut rejected) = self.store.delivery(original)? {
                rejected.reverified_as = Some(record.seq);
                changes.put_delivery(&rejected);
            }
        }
        self.counters
            .add_day(record.unix_micros, delivery.verdict.is_accepted());
        if delivery.verdict.is_accepted() {
            self.counters.add("deliveries_accepted", 1);
            let outcome = events::Applier {
                store: &self.store,
                overlay: &mut self.overlay,
                media: &mut self.media,
                changes,
                counters: &mut self.counters,
                dedup_ttl: self.dedup_ttl,
            }
            .apply(&Delivered {
                id: record.seq,
                received_at_micros: record.unix_micros,
                body: &delivery.body,
            })?;
            meta.items = outcome.items;
            meta.parse_error = outcome.parse_error;
            let unrouted = self.forward.enqueue(
                &self.store,
                record.seq,
                record.unix_micros,
                &outcome.fresh,
            )?;
            if unrouted > 0 {
                self.counters.add("forward_unrouted", unrouted);
            }
        } else {
            self.counters.add("deliveries_rejected", 1);
        }
        changes.put_delivery(&meta);
        Ok(())
    }
}
