//! The committer thread: sled's writes are most of a step's cost, so they run
//! beside the applier, which prepares the next step meanwhile.

use crate::journal::{Cursor, Stream};
use crate::store::{Changes, Store, StoreError};

/// Commits prepared steps on its own thread, so that step k+1 is prepared (read,
/// parsed, deduplicated) while step k is written: sled's writes are most of the cost.
pub(super) struct Committer {
    pub(super) work: std::sync::mpsc::SyncSender<Changes>,
    pub(super) done: std::sync::mpsc::Receiver<Result<(), StoreError>>,
    pub(super) in_flight: Option<(Stream, Cursor)>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
}

impl Committer {
    pub(super) fn start(store: Store) -> std::io::Result<Committer> {
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
