//! What the media worker's tasks (downloads, rescans, sweeps) work with: the
//! journal, the store, the fetcher and the applier's progress. Its own file so the
//! worker, the jobs and the sweep all import it one way.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::sync::watch;

use super::decide;
use super::fetch::Fetcher;
use super::record::{encode, MediaUpdate};
use crate::journal::{Journal, JournalError, Kind, Stream};
use crate::store::{Applied, Store};
use crate::util::backoff::Backoff;

pub struct WorkerCore {
    pub journal: Arc<Journal>,
    pub store: Store,
    pub fetcher: Fetcher,
    pub applied: watch::Receiver<Applied>,
}

impl WorkerCore {
    pub async fn journal(&self, u: &MediaUpdate) -> Result<(), JournalError> {
        self.journal
            .append(
                Stream::Main,
                Kind::MediaUpdate,
                self.fetcher.clock.now_micros(),
                encode(u),
            )
            .await
            .map(|_| ())
    }

    /// Waits until the applier has applied everything journaled so far.
    pub async fn wait_applied(&self) {
        let target = self.journal.heads().borrow().clone();
        let mut applied = self.applied.clone();
        let _ = applied
            .wait_for(|a| a.overall(&target) >= target.last_seq)
            .await;
    }

    /// `WAGATE_MEDIA_BACKOFF_*`.
    pub fn backoff(&self) -> Backoff {
        let c = &self.fetcher.config;
        Backoff::new(c.backoff_base, c.backoff_cap)
    }

    /// Below `WAGATE_MIN_FREE` free space, waits (without using up an attempt) until
    /// there is room again: deliveries need the disk more than media does.
    pub async fn wait_for_disk_space(&self) {
        let (dir, min_free) = (
            self.fetcher.files.dir().to_path_buf(),
            self.fetcher.min_free,
        );
        let mut warned = false;
        loop {
            let d = dir.clone();
            let free = tokio::task::spawn_blocking(move || crate::util::disk::free_bytes(&d))
                .await
                .ok()
                .and_then(Result::ok);
            if decide::disk_ok(free, min_free) {
                if warned {
                    tracing::info!(
                        "free disk space is back above WAGATE_MIN_FREE: media downloads resume"
                    );
                    self.fetcher.stats.paused_low_disk.store(0, Relaxed);
                }
                return;
            }
            if !warned {
                warned = true;
                self.fetcher.stats.paused_low_disk.store(1, Relaxed);
                tracing::warn!(
                    free_bytes = free.unwrap_or(0),
                    min_free,
                    "free disk space is below WAGATE_MIN_FREE: media downloads are paused"
                );
            }
            tokio::time::sleep(self.fetcher.config.disk_check_every).await;
        }
    }
}
