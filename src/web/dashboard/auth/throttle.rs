//! Login throttling. An attempt is reserved before the password is checked, and
//! the reservation counts as a failure unless the check succeeds: concurrent
//! attempts from one address cannot all be checked before the first failure is
//! recorded. At most [`MAX_CHECKS`] Argon2 checks run at once (each takes ~19 MiB
//! and a blocking thread); when none is free the attempt is refused at once
//! (answered 503 with `Retry-After`), never queued.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Failed logins per address before it is refused, within `WINDOW_SECS`.
pub const FAILURES: usize = 5;
pub const WINDOW_SECS: i64 = 5 * 60;
/// How long an address is refused after too many failures.
pub const LOCK_SECS: i64 = 5 * 60;
/// Password checks (Argon2id) running at once, whatever the address.
pub const MAX_CHECKS: usize = 2;
/// `Retry-After` (seconds) when every check is busy.
pub const BUSY_RETRY_SECS: u64 = 5;
/// Addresses remembered before expired ones are forgotten (bounded memory).
const PRUNE_ABOVE: usize = 10_000;

/// Why an attempt was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many failures from this address: this many seconds to wait.
    Locked(i64),
    /// Every password check is in use: try again shortly.
    Busy,
}

#[derive(Default)]
struct State {
    /// Failure (and reservation) times per address, within the window.
    failures: HashMap<IpAddr, Vec<i64>>,
    /// Refused until (unix seconds).
    locked: HashMap<IpAddr, i64>,
}

pub struct Throttle {
    state: Mutex<State>,
    checks: Arc<Semaphore>,
    /// Password checks started since start (for `/metrics`).
    pub checked: AtomicU64,
    /// Attempts refused without a check: locked out, every check busy.
    pub refused_locked: AtomicU64,
    pub refused_busy: AtomicU64,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            state: Mutex::default(),
            checks: Arc::new(Semaphore::new(MAX_CHECKS)),
            checked: AtomicU64::new(0),
            refused_locked: AtomicU64::new(0),
            refused_busy: AtomicU64::new(0),
        }
    }
}

/// A reserved attempt: counted as a failure unless [`Attempt::succeeded`] is
/// called (dropped unchecked, cancelled, or failed: it stays counted).
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    addr: IpAddr,
    /// One of the `MAX_CHECKS` check slots, held until the check is over.
    pub permit: Option<OwnedSemaphorePermit>,
}

impl Attempt<'_> {
    /// The password was right: the address' failures and lock are forgotten.
    pub fn succeeded(self) {
        let mut s = self.throttle.lock();
        s.failures.remove(&self.addr);
        s.locked.remove(&self.addr);
    }
}

impl Throttle {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(seconds to wait)` while `addr` is refused (the tests' view: logins
    /// ask [`Throttle::reserve`], which checks the same).
    #[cfg(test)]
    pub fn locked(&self, addr: IpAddr, now: i64) -> Result<(), i64> {
        match self.lock().locked.get(&addr) {
            Some(until) if *until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Reserves an attempt from `addr` at `now`, and a check slot. The reservation
    /// that reaches [`FAILURES`] within the window locks the address (it is still
    /// checked: if it succeeds, the lock is lifted).
    pub fn reserve(&self, addr: IpAddr, now: i64) -> Result<Attempt<'_>, Refused> {
        let mut s = self.lock();
        if let Some(until) = s.locked.get(&addr).filter(|u| **u > now) {
            self.refused_locked.fetch_add(1, Relaxed);
            return Err(Refused::Locked(until - now));
        }
        let Ok(permit) = self.checks.clone().try_acquire_owned() else {
            self.refused_busy.fetch_add(1, Relaxed);
            return Err(Refused::Busy);
        };
        if s.failures.len() > PRUNE_ABOVE {
            s.failures
                .retain(|_, v| v.iter().any(|at| now - at < WINDOW_SECS));
            s.locked.retain(|_, until| *until > now);
        }
        let list = s.failures.entry(addr).or_default();
        list.retain(|at| now - at < WINDOW_SECS);
        list.push(now);
        if list.len() >= FAILURES {
            list.clear();
            s.locked.insert(addr, now + LOCK_SECS);
            tracing::warn!(%addr, "dashboard login refused for 5 minutes after 5 attempts");
        }
        self.checked.fetch_add(1, Relaxed);
        Ok(Attempt {
            throttle: self,
            addr,
            permit: Some(permit),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn five_attempts_lock_an_address_for_five_minutes() {
        let t = Throttle::default();
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        for i in 0..5 {
            assert!(t.locked(a, 100 + i).is_ok());
            drop(t.reserve(a, 100 + i).expect("checked"));
        }
        assert_eq!(t.locked(a, 104), Err(300));
        assert_eq!(t.reserve(a, 104).err(), Some(Refused::Locked(300)));
        assert!(t.reserve(b, 104).is_ok(), "another address");
        assert!(t.locked(a, 404).is_ok(), "the lock ends");
        // Failures spread over more than the window do not add up.
        for i in 0..10 {
            drop(t.reserve(b, 1000 + i * 100).expect("checked"));
        }
        assert!(t.locked(b, 2000).is_ok());
        assert_eq!(t.checked.load(Relaxed), 16);
    }

    #[test]
    fn a_reservation_counts_before_its_check_ends() {
        let t = Throttle::default();
        let a = ip("192.0.2.1");
        // Two checks running (not finished): they already count.
        let first = t.reserve(a, 10).unwrap();
        let second = t.reserve(a, 10).unwrap();
        assert_eq!(
            t.reserve(a, 10).err(),
            Some(Refused::Busy),
            "two checks at once"
        );
        drop(first);
        drop(second);
        for _ in 0..3 {
            drop(t.reserve(a, 10).unwrap());
        }
        assert_eq!(t.reserve(a, 10).err(), Some(Refused::Locked(LOCK_SECS)));
        assert_eq!(t.checked.load(Relaxed), 5);
        assert_eq!(t.refused_busy.load(Relaxed), 1);
    }

    #[test]
    fn success_forgets_the_failures_and_the_lock() {
        let t = Throttle::default();
        let a = ip("2001:db8::1");
        for _ in 0..4 {
            drop(t.reserve(a, 10).unwrap());
        }
        // The fifth locks the address, but it was the right password.
        t.reserve(a, 10).unwrap().succeeded();
        assert!(t.locked(a, 10).is_ok());
        for _ in 0..4 {
            drop(t.reserve(a, 11).unwrap());
        }
        assert!(t.locked(a, 11).is_ok(), "counting starts again");
    }

    #[test]
    fn a_busy_refusal_does_not_count() {
        let t = Throttle::default();
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let _hold = [t.reserve(b, 1).unwrap(), t.reserve(b, 1).unwrap()];
        for _ in 0..10 {
            assert_eq!(t.reserve(a, 1).err(), Some(Refused::Busy));
        }
        assert!(t.locked(a, 1).is_ok());
    }
}
