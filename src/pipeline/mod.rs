//! The applier: one thread reads the journal in order and turns records into
//! derived state in sled, committing each step's results with its cursor.
//! Re-applying a suffix of the journal is harmless: the cursor and the results of a
//! step are committed together, so a step is either wholly applied or not at all.

pub mod counters;

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

pub struct Applier {
    journal: Arc<Journal>,
    store: Store,
    readers: [StreamReader; 2],
    counters: Counters,
    applied: watch::Sender<Applied>,
    purged_before: u64,
    overlay: Overlay,
    outbox: crate::outbox::apply::Pending,
    dedup_ttl: Duration,
    next_expiry: std::time::Instant,
}

impl Applier {
    /// Loads the cursors (blocking).
    pub fn new(
        journal: Arc<Journal>,
        store: Store,
        dedup_ttl: Duration,
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
                dedup_ttl,
                next_expiry: std::time::Instant::now(),
            },
            rx,
        ))
    }

    /// Runs until `stop` turns true and everything synced has been applied. Blocking:
    /// give it its own thread.
    pub fn run(mut self, runtime: tokio::runtime::Handle, mut stop: watch::Receiver<bool>) {
        let mut heads_rx = self.journal.heads();
        loop {
            let heads = heads_rx.borrow_and_update().clone();
            let progressed = match self.step(&heads) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "applying the journal failed; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if progressed {
                continue;
            }
            if *stop.borrow() {
                return;
            }
            runtime.block_on(async {
                tokio::select! {
                    _ = heads_rx.changed() => {}
                    _ = stop.changed() => {}
                }
            });
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
        if std::time::Instant::now() >= self.next_expiry {
            let horizon = crate::now_micros() - self.dedup_ttl.as_micros() as i64;
            let n = self.store.expire_items(horizon)?;
            if n > 0 {
                tracing::info!(keys = n, "expired dedup keys past WAGATE_DEDUP_TTL");
            }
            self.next_expiry = std::time::Instant::now() + Duration::from_secs(60);
        }
        Ok(progressed)
    }

    fn step_stream(&mut self, i: usize, heads: &Heads) -> Result<bool, StoreError> {
        let stream = self.readers[i].stream();
        let result = self.read_and_commit(i, heads);
        self.overlay.clear();
        self.outbox.clear();
        let cursor = match result {
            Ok(Some(cursor)) => cursor,
            Ok(None) => return Ok(false),
            Err(e) => {
                // Nothing of the step is applied: start again from the cursor in sled.
                self.counters = Counters::load(&self.store)?;
                self.readers[i] = self.journal.reader(stream, self.store.cursor(stream)?);
                return Err(e);
            }
        };
        self.applied.send_modify(|a| match stream {
            Stream::Main => a.main = cursor.last_seq,
            Stream::Quarantine => a.quarantine = cursor.last_seq,
        });
        Ok(true)
    }

    /// Applies up to `STEP_RECORDS` records of stream `i` in one commit; returns the
    /// new cursor, or `None` when there was nothing to read.
    fn read_and_commit(&mut self, i: usize, heads: &Heads) -> Result<Option<Cursor>, StoreError> {
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
        self.outbox.write(&mut changes);
        self.counters.write(&mut changes);
        self.store.commit(changes)?;
        Ok(Some(cursor))
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
        };
        if delivery.verdict.is_accepted() {
            self.counters.add("deliveries_accepted", 1);
            let outcome = events::Applier {
                store: &self.store,
                overlay: &mut self.overlay,
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
        } else {
            self.counters.add("deliveries_rejected", 1);
        }
        changes.put_delivery(&meta);
        Ok(())
    }
}
