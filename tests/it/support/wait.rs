//! The one polling helper: `eventually` re-checks a condition every few
//! milliseconds until it holds, or panics after `DEADLINE` naming what it awaited
//! and what it saw last. Where wagate offers a channel to wait on (the applier's
//! progress, the outbox, a fake's notification) tests wait on that instead.

use std::fmt::Display;
use std::ops::AsyncFnMut;
use std::time::Duration;

/// How long any test waits for anything: generous, so that a loaded machine is
/// never mistaken for a bug; reached only when something is really wrong.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Between two checks: short, so a test goes on soon after the condition holds.
const INTERVAL: Duration = Duration::from_millis(10);

/// What a check answers: held (with a value to hand back) or not yet (with what it
/// saw, for the panic message).
pub trait Condition {
    type Value;
    fn held(self) -> Result<Self::Value, String>;
}

impl Condition for bool {
    type Value = ();
    fn held(self) -> Result<(), String> {
        self.then_some(()).ok_or_else(String::new)
    }
}

impl<T> Condition for Option<T> {
    type Value = T;
    fn held(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

/// `Err` is "not yet", and what it carries is shown if the deadline passes.
impl<T, E: Display> Condition for Result<T, E> {
    type Value = T;
    fn held(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Runs `check` until its answer holds and returns the answer's value; after
/// `DEADLINE`, panics naming `what` (the awaited state: "the download to start")
/// and the last answer.
pub async fn eventually<C: Condition>(what: &str, mut check: impl AsyncFnMut() -> C) -> C::Value {
    let mut last = String::new();
    let poll = async {
        loop {
            match check().await.held() {
                Ok(value) => return value,
                Err(seen) => last = seen,
            }
            tokio::time::sleep(INTERVAL).await;
        }
    };
    match tokio::time::timeout(DEADLINE, poll).await {
        Ok(value) => value,
        Err(_) if last.is_empty() => panic!("waited {DEADLINE:?} for {what}, in vain"),
        Err(_) => panic!("waited {DEADLINE:?} for {what}, in vain; last seen: {last}"),
    }
}

// Its failure (a panic naming what was awaited and the last answer) takes `DEADLINE`:
// it was checked by hand, with a short one.
#[tokio::test]
async fn eventually_hands_back_the_value_once_the_condition_holds() {
    let mut checks = 0;
    let got = eventually("the third check", async || {
        checks += 1;
        (checks == 3).then_some(checks)
    })
    .await;
    assert_eq!(got, 3);
    eventually("a bool", async || true).await;
    let r: Result<&str, &str> = Ok("ok");
    assert_eq!(eventually("a result", async || r).await, "ok");
}

/// How long [`stays`] watches: a check that something does NOT happen cannot
/// wait for it; on a slow machine a short window can only miss a bug, never fail a
/// correct program.
pub const QUIET: Duration = Duration::from_millis(200);

/// Asserts that `check` holds throughout `QUIET` (e.g. "no request while the
/// clock stands still"): the one real-time wait tests may use, for a negative.
pub async fn stays(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let end = tokio::time::Instant::now() + QUIET;
    loop {
        assert!(check().await, "{what}: no longer true");
        if tokio::time::Instant::now() >= end {
            return;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}
