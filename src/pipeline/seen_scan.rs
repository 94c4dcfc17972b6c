//! Building the applier's dedup filter from sled at start, on a thread of its own.

use super::Applier;
use crate::pipeline::seen::{self, ScanResult};
use crate::store::StoreError;

impl Applier {
    /// Reads the recent dedup keys from sled on a thread of its own; `step` merges
    /// them when done. Until then every item is looked up in sled.
    pub(super) fn start_seen_scan(&mut self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let store = self.store.clone();
        let scanner = self.seen.scanner();
        let started = std::thread::Builder::new()
            .name("dedup-scan".into())
            .spawn(move || {
                let t0 = std::time::Instant::now();
                let result = seen::scan(&store, scanner);
                tracing::debug!(elapsed = ?t0.elapsed(), "dedup keys scanned");
                let _ = tx.send(result);
            });
        match started {
            Ok(_) => self.seen_scan = Some(rx),
            Err(e) => {
                tracing::warn!(error = %e, "no dedup scan thread; every item is read from the store")
            }
        }
    }

    /// Takes in the startup scan if it has finished.
    pub(super) fn merge_seen_scan(&mut self) {
        let Some(rx) = &mut self.seen_scan else {
            return;
        };
        match rx.try_recv() {
            Ok(result) => self.seen_scanned(Some(result)),
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => self.seen_scanned(None),
        }
    }

    pub(super) fn seen_scanned(&mut self, result: Option<Result<ScanResult, StoreError>>) {
        self.seen_scan = None;
        match result {
            Some(Ok(scan)) => {
                self.seen.merge(scan);
                tracing::info!(keys = self.seen.len(), state = ?self.seen.state(), "dedup filter built");
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "scanning dedup keys failed; every item is read from the store")
            }
            None => tracing::warn!("the dedup scan stopped; every item is read from the store"),
        }
        self.applied.send_modify(|a| self.filter_progress(a));
    }
}
