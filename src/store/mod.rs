//! Derived state in sled. Only this module names sled.
//!
//! Every tree is opened once into [`Store`]. Writers collect changes in a
//! [`Changes`] and commit them in one transaction together with the journal cursor
//! they come from, so after a crash sled is at some consistent point and the
//! journal is re-applied from there. Keys are big-endian for ordered scans.

mod calls;
mod contacts;
pub mod counters;
mod dashboard;
mod dedup;
mod deliveries;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod forward;
mod generations;
mod handshakes;
mod history;
pub mod media;
mod misplaced;
mod model;
pub mod outbox;
mod progress;
mod snapshots;

use std::path::Path;
use std::sync::Arc;

use sled::Transactional;

pub use calls::CallPage;
pub use contacts::{ContactRecord, SERVICE_WINDOW_SECS};
pub use counters::Counters;
pub use dashboard::{DayCounts, Scan};
pub use dedup::RecordedKey;
pub use deliveries::{DeliveryMeta, DeliveryPage, VerdictFilter};
pub use generations::{current_dir, new_state_name, remove_stale, remove_state_dir, set_current};
pub use handshakes::Handshake;
pub use history::{HistoryChunkRecord, HistoryProgress};
pub use model::{MessageFilter, MessagePage, StoredEvent, StoredMessage, StoredStatus};
pub use progress::{Applied, FilterState};

use crate::journal::{Cursor, Stream};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored value is damaged: {0}")]
    Decode(String),
    #[error("storage task failed: {0}")]
    Task(String),
    #[error("cannot open the state store {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
}

impl From<sled::transaction::TransactionError<()>> for StoreError {
    fn from(e: sled::transaction::TransactionError<()>) -> Self {
        match e {
            sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
            sled::transaction::TransactionError::Abort(()) => StoreError::Task("aborted".into()),
        }
    }
}

/// The trees, in a fixed order (their index in `Store::trees`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T {
    /// Cursors and counters.
    Meta = 0,
    /// seq -> DeliveryMeta (JSON) of accepted deliveries.
    DeliveriesAccepted,
    /// seq -> DeliveryMeta (JSON) of rejected deliveries.
    DeliveriesRejected,
    /// quarantine segment + seq -> (): what to forget when a segment is dropped.
    QuarantineIndex,
    Handshakes,
    /// item key -> first seen (micros, BE); expired by a rolling scan.
    Dedup,
    /// wamid -> StoredMessage (JSON).
    Messages,
    /// ts + wamid -> ().
    MessagesByTime,
    /// contact id \0 ts + wamid -> ().
    MessagesByContact,
    /// type \0 ts + wamid -> ().
    MessagesByType,
    /// wamid \0 ts + rank + status -> StoredStatus (JSON): the timeline.
    Statuses,
    /// contact id -> ContactRecord (JSON).
    Contacts,
    /// wa_id or user_id \0 contact id -> ().
    ContactAlias,
    /// ts + digest -> StoredEvent (JSON).
    Events,
    /// field \0 ts + digest -> ().
    EventsByField,
    /// local id (BE) -> OutboxEntry (JSON).
    Outbox,
    /// idempotency key -> local id (BE).
    OutboxKeys,
    /// wamid -> local id (BE).
    OutboxByWamid,
    /// local id (BE) -> (): entries not final yet.
    OutboxPending,
    /// media id -> MediaEntry (JSON).
    Media,
    /// media id -> (): jobs not final yet.
    MediaPending,
    /// target \0 order (BE) + delivery (BE) -> QueueEntry (JSON): what each target has to get.
    ForwardQueue,
    /// target id -> TargetState (JSON).
    ForwardTargets,
    /// target \0 id (BE) -> DeadLetter (JSON).
    ForwardDead,
    /// delivery (BE) + item (u32 BE) -> Unrouted (JSON).
    ForwardUnrouted,
    /// ts + wamid -> (): failed statuses (the dashboard's failures page).
    StatusesFailed,
    /// created (micros, BE) + media id -> (): media newest first.
    MediaByTime,
    /// recipient \0 local id (BE) -> (): a contact's outbound messages.
    OutboxByRecipient,
    /// call id \0 event \0 status -> CallEvent (JSON): a call's events, one per (event, status).
    Calls,
    /// ts (BE) + call id -> (): calls by the time of each of their events.
    CallsByTime,
    /// contact \0 ts (BE) + call id -> ().
    CallsByContact,
    /// phone number id \0 phase (BE) + chunk order (BE) -> HistoryChunkRecord (JSON).
    HistoryChunks,
    /// phone number id \0 wamid -> (): messages imported from the history.
    HistoryMessages,
}

const TREE_NAMES: &[&str] = &[
    "meta",
    "deliveries_accepted",
    "deliveries_rejected",
    "quarantine_index",
    "handshakes",
    "dedup",
    "messages",
    "messages_by_time",
    "messages_by_contact",
    "messages_by_type",
    "statuses",
    "contacts",
    "contact_alias",
    "events",
    "events_by_field",
    "outbox",
    "outbox_keys",
    "outbox_by_wamid",
    "outbox_pending",
    "media",
    "media_pending",
    "forward_queue",
    "forward_targets",
    "forward_dead",
    "forward_unrouted",
    "statuses_failed",
    "media_by_time",
    "outbox_by_recipient",
    "calls",
    "calls_by_time",
    "calls_by_contact",
    "history_chunks",
    "history_messages",
];

/// Cheap to clone; every clone sees the same state, also after
/// [`Store::swap_in`] puts a rebuilt one in its place (erasure).
#[derive(Clone)]
pub struct Store {
    inner: Arc<std::sync::RwLock<Arc<Inner>>>,
    /// States swapped in so far: readers holding state in memory read it again.
    swaps: Arc<std::sync::atomic::AtomicU64>,
}

struct Inner {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    handshakes: handshakes::Ring,
    /// Test hook: commits fail as sled's do on a full disk (see `fail_commits`).
    fault: std::sync::atomic::AtomicBool,
    dir: std::path::PathBuf,
}

/// A set of writes committed atomically across trees.
pub struct Changes {
    batches: Vec<sled::Batch>,
    empty: bool,
}

impl Changes {
    pub fn new() -> Self {
        Changes {
            batches: (0..TREE_NAMES.len())
                .map(|_| sled::Batch::default())
                .collect(),
            empty: true,
        }
    }
    pub(crate) fn put(&mut self, tree: T, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.empty = false;
        self.batches[tree as usize].insert(key.as_ref(), value.as_ref());
    }
    pub(crate) fn del(&mut self, tree: T, key: impl AsRef<[u8]>) {
        self.empty = false;
        self.batches[tree as usize].remove(key.as_ref());
    }
    pub fn is_empty(&self) -> bool {
        self.empty
    }
    pub fn set_cursor(&mut self, stream: Stream, cursor: Cursor) {
        self.put(
            T::Meta,
            cursor_key(stream),
            serde_json::to_vec(&cursor).expect("serialisable"),
        );
    }
    pub fn set_counter(&mut self, name: &str, value: u64) {
        self.put(T::Meta, counter_key(name), value.to_be_bytes());
    }
}

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

fn cursor_key(stream: Stream) -> Vec<u8> {
    format!("cursor/{stream:?}").into_bytes()
}

fn counter_key(name: &str) -> Vec<u8> {
    format!("count/{name}").into_bytes()
}

impl Store {
    /// Opens (or creates, mode 0700) the store in `dir` with the default cache;
    /// errors name `dir`. Blocking.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Self::open_with_cache(dir, crate::config::MemoryBudget::default().store_cache())
    }

    /// Opens the store in `dir`, sled's page cache at most `cache_bytes` as sled
    /// counts them (serialised; about twice that in memory). Blocking.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let at = |source: std::io::Error| StoreError::Open {
            path: dir.display().to_string(),
            source,
        };
        crate::util::fs::private_dir(dir).map_err(at)?;
        snapshots::remove_unfinished(dir);
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(500))
            .open()
            .map_err(|e| match e {
                sled::Error::Io(e) => at(e),
                e => at(std::io::Error::other(e.to_string())),
            })?;
        // sled made its files under the umask (0077 in the binary): made private
        // whatever the umask (`blobs/` and what is in it).
        crate::util::fs::make_tree_private(dir, 1).map_err(at)?;
        // Older versions kept each message's current status in its own tree; it is
        // derived from the timeline now.
        db.drop_tree("status_current")?;
        let trees = TREE_NAMES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<Vec<_>, _>>()?;
        let handshakes = handshakes::Ring::load(&trees[T::Handshakes as usize])?;
        Ok(Store {
            inner: Arc::new(std::sync::RwLock::new(Arc::new(Inner {
                db,
                trees,
                handshakes,
                fault: Default::default(),
                dir: dir.to_path_buf(),
            }))),
            swaps: Default::default(),
        })
    }

    fn now(&self) -> Arc<Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn tree(&self, t: T) -> sled::Tree {
        self.now().trees[t as usize].clone()
    }

    /// Where the state in use lives.
    pub fn dir(&self) -> std::path::PathBuf {
        self.now().dir.clone()
    }

    /// Puts `other`'s state in place of this one for every clone of this handle
    /// (blocking: flushes `other` first). Returns the directory of the state it
    /// replaced, which is closed once the last reader in flight lets go of it.
    pub fn swap_in(&self, other: &Store) -> Result<std::path::PathBuf, StoreError> {
        other.flush()?;
        let new = other.now();
        let mut slot = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::replace(&mut *slot, new);
        self.swaps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(old.dir.clone())
    }

    /// How many times a rebuilt state was swapped in: a reader that keeps some of
    /// the state in memory (a forwarding worker's read-ahead) reads it again when
    /// this changes, since what it holds may be erased.
    pub fn generation(&self) -> u64 {
        self.swaps.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Test hook: while `on`, every commit fails with an I/O error, as sled's do on a
    /// full disk (a store that stays broken until it is reopened).
    #[doc(hidden)]
    pub fn fail_commits(&self, on: bool) {
        self.now()
            .fault
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Commits `changes` atomically (blocking).
    pub fn commit(&self, changes: Changes) -> Result<(), StoreError> {
        if changes.empty {
            return Ok(());
        }
        let inner = self.now();
        if inner.fault.load(std::sync::atomic::Ordering::SeqCst) {
            let e = std::io::Error::other("injected fault: no space left on device");
            return Err(StoreError::Sled(sled::Error::Io(e)));
        }
        let batches = changes.batches;
        inner.trees.as_slice().transaction(|txs| {
            for (tx, batch) in txs.iter().zip(batches.iter()) {
                tx.apply_batch(batch)?;
            }
            Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
        })?;
        Ok(())
    }

    /// Entries of `t` after `from` (all of them without one): the next slice of a
    /// rolling scan.
    pub(crate) fn keys_after(&self, t: T, from: Option<&[u8]>) -> sled::Iter {
        match from {
            Some(k) => self
                .tree(t)
                .range::<&[u8], _>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded)),
            None => self.tree(t).iter(),
        }
    }

    pub fn cursor(&self, stream: Stream) -> Result<Option<Cursor>, StoreError> {
        match self.tree(T::Meta).get(cursor_key(stream))? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Decode(e.to_string())),
            None => Ok(None),
        }
    }

    pub fn counter(&self, name: &str) -> Result<u64, StoreError> {
        Ok(self
            .tree(T::Meta)
            .get(counter_key(name))?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Writes sled's dirty pages (blocking; sled 0.34's `flush_async` can deadlock).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.now().db.flush()?;
        Ok(())
    }

    pub fn size_on_disk(&self) -> u64 {
        self.now().db.size_on_disk().unwrap_or(0)
    }
}

/// Runs blocking store work off the async threads.
pub async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

pub(crate) fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub(crate) fn from_be(b: &[u8]) -> Option<u64> {
    b.get(..8)?.try_into().ok().map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_status_tree_of_older_versions_is_dropped_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let old = db.open_tree("status_current").unwrap();
            old.insert("wamid.X", "read").unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let names = store.now().db.tree_names();
        assert!(!names.iter().any(|n| n.as_ref() == b"status_current"));
        assert!(names.iter().any(|n| n.as_ref() == b"statuses"));
    }
}
