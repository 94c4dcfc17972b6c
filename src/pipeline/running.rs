//! Whether the applier is getting on: when it last succeeded, how often it has
//! failed since, and why. `/healthz` and `/metrics` read it ([`ApplyHealth`]); what
//! the applier does after a failure (wait and retry, or end the process so that
//! systemd restarts it) is a pure function of it ([`after_failure`]).

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::format_duration;
use crate::util::backoff::Backoff;

/// Waits between retries of a failing step (equal jitter: never a busy loop).
pub const RETRY: Backoff = Backoff {
    base: Duration::from_millis(250),
    cap: Duration::from_secs(5),
};

/// What the applier's thread reports; read by the web layer. Times are the clock's
/// monotonic microseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthState {
    /// When the applier last did well: a step that succeeded, or a wake-up from idle.
    pub fine_at: i64,
    /// Waiting for new records (caught up): lag then is only the time to wake up.
    pub idle: bool,
    /// Failed steps since the last success.
    pub consecutive_failures: u32,
    /// When the current run of failures began.
    pub failing_since: Option<i64>,
    pub failures_total: u64,
    pub last_error: Option<String>,
}

/// The applier's health, shared between its thread and the web layer.
pub struct ApplyHealth {
    state: Mutex<HealthState>,
    /// Set once the applier gives up (store broken with room on disk): why.
    exit: watch::Sender<Option<String>>,
}

impl ApplyHealth {
    /// Fine as of `now`.
    pub fn new(now: i64) -> ApplyHealth {
        ApplyHealth {
            state: Mutex::new(HealthState {
                fine_at: now,
                ..HealthState::default()
            }),
            exit: watch::channel(None).0,
        }
    }

    pub fn snapshot(&self) -> HealthState {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A step (or the wait before one) succeeded.
    pub fn succeeded(&self, now: i64) {
        let mut s = self.lock();
        if s.consecutive_failures > 0 {
            tracing::info!(
                failures = s.consecutive_failures,
                "applying the journal works again"
            );
        }
        s.fine_at = now;
        s.consecutive_failures = 0;
        s.failing_since = None;
        s.idle = false;
    }

    /// Caught up and waiting (`true`), or woken (`false`, which counts as fine).
    pub fn idle(&self, idle: bool, now: i64) {
        let mut s = self.lock();
        s.idle = idle;
        s.fine_at = now;
    }

    /// A step failed; the state after it.
    pub fn failed(&self, error: &str, now: i64) -> HealthState {
        let mut s = self.lock();
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        s.failing_since.get_or_insert(now);
        s.failures_total += 1;
        s.last_error = Some(error.to_string());
        s.idle = false;
        s.clone()
    }

    /// The applier gave up: the server is to stop and the process to exit 75.
    pub fn give_up(&self, reason: String) {
        self.exit.send_replace(Some(reason));
    }

    /// Resolves (with the reason) once the applier has given up; never otherwise.
    pub async fn given_up(&self) -> String {
        let mut rx = self.exit.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

/// Why processing counts as stuck (for `/healthz`), or `None` while it gets on:
/// failing, or busy and behind, with nothing going well for `stuck_after`. `lag`
/// is the journal records not applied yet.
pub fn stuck(s: &HealthState, now: i64, lag: u64, stuck_after: Duration) -> Option<String> {
    let quiet = Duration::from_micros(now.saturating_sub(s.fine_at).max(0) as u64);
    if quiet < stuck_after {
        return None;
    }
    let quiet = format_duration(Duration::from_secs(quiet.as_secs()));
    if s.consecutive_failures > 0 {
        let error = s.last_error.as_deref().unwrap_or("unknown error");
        return Some(format!(
            "applying the journal has failed {} times in a row, with no success for {quiet}: {error}",
            s.consecutive_failures
        ));
    }
    (!s.idle && lag > 0)
        .then(|| format!("processing is {lag} records behind with no progress for {quiet}"))
}

/// What the applier does after a failed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Try again after this wait.
    Retry(Duration),
    /// End the process (exit 75) for systemd to restart it: why.
    Exit(String),
}

/// What a failure tells about the applier's way forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The store itself failed (sled's error; it may stay broken until reopened).
    pub store_broken: bool,
    /// Failed steps in a row, this one included.
    pub failures: u32,
    /// Since the first of them.
    pub failing_for: Duration,
    /// Free space on the data directory's filesystem, if it could be read.
    pub free: Option<u64>,
}

/// Retry with backoff, or give up: a store that has failed for `stuck_after` while
/// the disk has `min_free` free (so it is not waiting for room) will not heal by
/// itself: a fresh process reopens it and re-applies from the journal. `fraction`
/// is the jitter, in `[0, 1]`.
pub fn after_failure(f: &Failure, stuck_after: Duration, min_free: u64, fraction: f64) -> Next {
    let room = f.free.is_some_and(|free| free >= min_free);
    if f.store_broken && room && f.failing_for >= stuck_after {
        let since = format_duration(Duration::from_secs(f.failing_for.as_secs()));
        return Next::Exit(format!(
            "the store has failed {} times in a row for {since} although the disk has room again; exiting for a restart (processing resumes from the journal)",
            f.failures
        ));
    }
    Next::Retry(RETRY.at_least_half(f.failures, fraction))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn state(fine_at: i64, idle: bool, failures: u32) -> HealthState {
        HealthState {
            fine_at,
            idle,
            consecutive_failures: failures,
            failing_since: (failures > 0).then_some(fine_at),
            failures_total: u64::from(failures),
            last_error: (failures > 0).then(|| "storage error: disk full".into()),
        }
    }

    #[test]
    fn stuck_only_after_the_quiet_time() {
        let after = Duration::from_secs(30);
        // (fine at, idle, failures, now, lag, stuck?)
        let rows: &[(i64, bool, u32, i64, u64, bool)] = &[
            (0, false, 0, 10 * S, 5, false),
            (0, false, 0, 30 * S, 5, true),
            (0, false, 0, 30 * S, 0, false),
            (0, true, 0, 300 * S, 5, false),
            (0, false, 3, 29 * S, 0, false),
            (0, false, 3, 31 * S, 0, true),
            (0, true, 1, 31 * S, 0, true),
            (40 * S, false, 0, 30 * S, 9, false),
        ];
        for &(fine_at, idle, failures, now, lag, want) in rows {
            let got = stuck(&state(fine_at, idle, failures), now, lag, after);
            assert_eq!(
                got.is_some(),
                want,
                "{fine_at} {idle} {failures} {now} {lag}: {got:?}"
            );
        }
        let why = stuck(&state(0, false, 3), 31 * S, 0, after).unwrap();
        assert!(
            why.contains("failed 3 times") && why.contains("disk full"),
            "{why}"
        );
        let why = stuck(&state(0, false, 0), 90 * S, 7, after).unwrap();
        assert_eq!(
            why,
            "processing is 7 records behind with no progress for 90s"
        );
    }

    #[test]
    fn retries_until_the_store_stays_broken_with_room_on_disk() {
        let after = Duration::from_secs(30);
        let mib = 1 << 20;
        let f = |store_broken, failures, secs, free| Failure {
            store_broken,
            failures,
            failing_for: Duration::from_secs(secs),
            free,
        };
        // (failure, exits?)
        let rows = [
            (f(true, 1, 0, Some(600 * mib)), false),
            (f(true, 9, 29, Some(600 * mib)), false),
            (f(true, 9, 30, Some(600 * mib)), true),
            (f(true, 9, 3600, Some(100 * mib)), false),
            (f(true, 9, 3600, None), false),
            (f(false, 9, 3600, Some(600 * mib)), false),
        ];
        for (failure, exits) in rows {
            let next = after_failure(&failure, after, 512 * mib, 0.5);
            assert_eq!(
                matches!(next, Next::Exit(_)),
                exits,
                "{failure:?}: {next:?}"
            );
        }
        let waits: Vec<_> = [1, 2, 5, 40]
            .map(|n| after_failure(&f(true, n, 0, None), after, 0, 1.0))
            .to_vec();
        assert_eq!(
            waits,
            [250, 500, 4000, 5000].map(|ms| Next::Retry(Duration::from_millis(ms)))
        );
    }
}
