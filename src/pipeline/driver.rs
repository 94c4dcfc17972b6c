//! The applier's thread: step while there is work, wait when caught up, and after a
//! failure wait and retry (backoff), or give up when the store stays broken although
//! the disk has room again (`running::after_failure`). Every outcome is reported to
//! [`ApplyHealth`](super::running::ApplyHealth) for `/healthz` and `/metrics`.

use std::time::Duration;

use tokio::sync::watch;

use super::committer::Committer;
use super::running::{after_failure, Failure, Next};
use super::seen::ScanResult;
use super::Applier;
use crate::store::StoreError;

/// What woke the idle applier.
enum Wake {
    /// New records or a stop; `true` when the sender is gone.
    Changed(bool),
    /// The startup scan of dedup keys finished (`None`: its thread died).
    Scanned(Option<Result<ScanResult, StoreError>>),
}

impl Applier {
    /// Runs until `stop` turns true and everything synced has been applied, or until
    /// it gives up (see `running::after_failure`). Blocking: give it its own thread.
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
            let stepped = self
                .run_erasures()
                .and_then(|()| self.step(&heads))
                .and_then(|progressed| {
                    if progressed {
                        return Ok(true);
                    }
                    // Caught up: make the last step visible before waiting.
                    self.finish_in_flight()
                        .map(|()| false)
                        .map_err(|e| self.reset(e))
                });
            let health = self.options.health.clone();
            // A step handed to the committer is not a success yet: `publish` counts
            // it once committed; caught up, everything is.
            match stepped {
                Ok(true) => continue,
                Ok(false) => health.succeeded(self.clock.mono_micros()),
                Err(e) if self.after_failure(&e, &runtime, stop) => continue,
                Err(_) => return,
            }
            if *stop.borrow() {
                return;
            }
            health.idle(true, self.clock.mono_micros());
            let closed = self.wait(&runtime, &mut heads_rx, stop);
            health.idle(false, self.clock.mono_micros());
            if closed {
                // A sender gone (the app dropped without a shutdown) means nothing
                // more can arrive: stop rather than spin on a closed channel.
                tracing::debug!("applier: the app is gone; stopping");
                return;
            }
        }
    }

    /// Waits for new records, a stop, the dedup scan or the next sweep; whether the
    /// app is gone.
    fn wait(
        &mut self,
        runtime: &tokio::runtime::Handle,
        heads_rx: &mut watch::Receiver<crate::journal::Heads>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let seen_scan = &mut self.seen_scan;
        // Sweeps and expiry run between steps: wake for them when idle too.
        let due = self.retention.next_run().min(self.next_expiry);
        let clock = self.clock.clone();
        let erase = self.options.erase.as_ref().map(|e| e.erasures.wake());
        let wake = runtime.block_on(async {
            let erase = async {
                match erase {
                    Some(n) => n.notified().await,
                    None => std::future::pending().await,
                }
            };
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
                _ = erase => Wake::Changed(false),
            }
        });
        match wake {
            Wake::Changed(closed) => closed,
            Wake::Scanned(result) => {
                self.seen_scanned(result);
                false
            }
        }
    }

    /// After a failed step: reports it, then waits to retry (`true`) or stops
    /// (`false`: asked to stop, or given up).
    fn after_failure(
        &mut self,
        error: &StoreError,
        runtime: &tokio::runtime::Handle,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let now = self.clock.mono_micros();
        let state = self.options.health.failed(&error.to_string(), now);
        // A stop must not wait on a failure that may never clear (a vanished data
        // directory): what is not applied stays in the journal.
        if *stop.borrow() {
            tracing::error!(error = %error, "applying the journal failed; stopping anyway");
            return false;
        }
        let failing_since = state.failing_since.unwrap_or(now);
        let failure = Failure {
            store_broken: matches!(error, StoreError::Sled(_)),
            failures: state.consecutive_failures,
            failing_for: Duration::from_micros((now - failing_since).max(0) as u64),
            free: crate::util::disk::free_bytes(&self.options.data_dir).ok(),
        };
        let (stuck_after, min_free) = (self.options.stuck_after, self.options.min_free);
        match after_failure(
            &failure,
            stuck_after,
            min_free,
            crate::util::backoff::jitter(),
        ) {
            Next::Exit(reason) => {
                tracing::error!(error = %error, "{reason}");
                self.options.health.give_up(reason);
                false
            }
            Next::Retry(delay) => {
                tracing::error!(error = %error, failures = failure.failures, retry_in_ms = delay.as_millis() as u64, "applying the journal failed; retrying");
                let sleep = self.clock.sleep(delay);
                runtime.block_on(async {
                    tokio::select! {
                        _ = sleep => {}
                        _ = stop.changed() => {}
                    }
                });
                true
            }
        }
    }
}
