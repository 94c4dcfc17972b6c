//! Time, read and waited on in one place: the system's clock in production, a
//! clock moved by hand in tests (so a test can let a day pass without waiting
//! for it, and a retry fires when the test says so, not when a machine gets to it).
//!
//! Two readings: wall time (`now_micros`, unix microseconds: what is recorded
//! and compared with Meta's timestamps) and monotonic time (`mono_micros`: what
//! waits and schedules count in, immune to the wall clock being set). A manual
//! clock moves both together.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// Unix time now, in microseconds, from the system clock. Prefer a [`Clock`];
/// this is for the few places with no clock to hand (start-up, the CLI).
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Where wagate reads the time and waits. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Clock {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// The system's clocks; monotonic time counts from `origin`.
    System { origin: tokio::time::Instant },
    /// Moved only by `advance` and `set`: unix microseconds.
    Manual(Arc<watch::Sender<i64>>),
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The system's clocks.
    pub fn system() -> Clock {
        Clock {
            kind: Kind::System {
                origin: tokio::time::Instant::now(),
            },
        }
    }

    /// A clock that stands at `start` (unix microseconds) until moved.
    pub fn manual(start_micros: i64) -> Clock {
        Clock {
            kind: Kind::Manual(Arc::new(watch::channel(start_micros).0)),
        }
    }

    /// A manual clock standing at the system's time now.
    pub fn manual_now() -> Clock {
        Clock::manual(now_micros())
    }

    /// Unix time, in microseconds.
    pub fn now_micros(&self) -> i64 {
        match &self.kind {
            Kind::System { .. } => now_micros(),
            Kind::Manual(t) => *t.borrow(),
        }
    }

    /// Unix time, in seconds.
    pub fn now_secs(&self) -> i64 {
        self.now_micros().div_euclid(1_000_000)
    }

    /// Unix time as a `SystemTime` (for HTTP dates and file ages).
    pub fn now(&self) -> SystemTime {
        let micros = self.now_micros();
        if micros >= 0 {
            UNIX_EPOCH + Duration::from_micros(micros as u64)
        } else {
            UNIX_EPOCH
        }
    }

    /// Monotonic time in microseconds, from an arbitrary origin: for deadlines.
    pub fn mono_micros(&self) -> i64 {
        match &self.kind {
            Kind::System { origin } => origin.elapsed().as_micros() as i64,
            Kind::Manual(t) => *t.borrow(),
        }
    }

    /// The monotonic deadline `d` from now.
    pub fn deadline(&self, d: Duration) -> i64 {
        self.mono_micros()
            .saturating_add(d.as_micros().min(i64::MAX as u128) as i64)
    }

    /// Waits `d`, counted from this call (as `tokio::time::sleep` does), not from
    /// the first poll.
    pub fn sleep(&self, d: Duration) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.sleep_until(self.deadline(d))
    }

    /// Waits until monotonic time `at`.
    pub fn sleep_until(&self, at: i64) -> impl std::future::Future<Output = ()> + Send + 'static {
        let kind = self.kind.clone();
        async move { Self::wait(kind, at).await }
    }

    async fn wait(kind: Kind, at: i64) {
        match &kind {
            Kind::System { origin } => {
                let at = Duration::from_micros(at.max(0) as u64);
                tokio::time::sleep_until(*origin + at).await
            }
            Kind::Manual(t) => {
                let mut rx = t.subscribe();
                // The sender lives as long as this clock: `changed` only fails
                // when the clock is gone, and then nobody will move it.
                while *rx.borrow_and_update() < at {
                    if rx.changed().await.is_err() {
                        return std::future::pending().await;
                    }
                }
            }
        }
    }

    /// Moves a manual clock forward (tests). Does nothing to the system clock.
    pub fn advance(&self, d: Duration) {
        if let Kind::Manual(t) = &self.kind {
            let d = d.as_micros().min(i64::MAX as u128) as i64;
            t.send_modify(|now| *now = now.saturating_add(d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_moves_only_by_hand_and_wakes_sleepers() {
        let clock = Clock::manual(1_000_000);
        assert_eq!((clock.now_secs(), clock.mono_micros()), (1, 1_000_000));
        // The deadline is taken when `sleep` is called, not when the task first runs.
        let sleeper = tokio::spawn(clock.sleep(Duration::from_secs(10)));
        clock.advance(Duration::from_secs(9));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke a second early");
        clock.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        assert_eq!(clock.now_secs(), 11);
    }

    #[tokio::test]
    async fn the_system_clock_reads_the_system() {
        let clock = Clock::system();
        let before = now_micros();
        assert!(clock.now_micros() >= before);
        clock.sleep(Duration::from_millis(1)).await;
        assert!(clock.mono_micros() >= 1_000);
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now_micros() - before < 3_600_000_000);
    }
}
