//! What forwarding does after an answer: pure functions of the answer, the target's
//! failing streak, the limits and the clock (and the jitter drawn for the backoff),
//! each tested as a table. The worker (`worker.rs`, `attempt.rs`) does the I/O.
//!
//! - `2xx`: that request is delivered (an entry is delivered when all of its are).
//! - `410 Gone`: the target is disabled until it is enabled again.
//! - Anything else (other statuses, timeouts, refused connections): while only
//!   entries of that entry's contacts fail, it backs off on its own (full jitter)
//!   and other contacts' entries go on; after `max_attempts` such failures it is
//!   dead-lettered. When other contacts' entries fail too the target backs off; `Retry-After` on `429`/`503` wins (up to an hour).
//!   After `pause_after` without a success it is paused: only probed every
//!   `probe_every`.
//! - The wait never runs past the entry's max age: it wakes in time to dead-letter it.

use std::time::Duration;

use crate::config::ForwardConfig;
use crate::upstream::forward::TargetAnswer;
use crate::upstream::nats::Published;
use crate::util::backoff::Backoff;

/// `Retry-After` is honoured up to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The limits failures are judged against (`WAGATE_FORWARD_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub backoff: Backoff,
    pub pause_after: Duration,
    pub probe_every: Duration,
    /// Failures of one entry, counted while only its contacts' entries fail, before it
    /// is dead-lettered.
    pub max_attempts: u32,
}

impl Limits {
    pub fn of(c: &ForwardConfig) -> Limits {
        Limits {
            backoff: Backoff::new(c.backoff_base, c.backoff_cap),
            pause_after: c.pause_after,
            probe_every: c.probe_every,
            max_attempts: c.max_attempts,
        }
    }
}

/// What one request's answer means.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Delivered,
    /// `410 Gone`: disable the target.
    Gone,
    /// Retry, after `Retry-After` when the target sent one with a `429` or `503`.
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
}

/// Judges the target's answer to one request (`Err`: no answer, and why).
pub fn judge(answer: &Result<TargetAnswer, String>) -> Answer {
    let a = match answer {
        Ok(a) => a,
        Err(error) => {
            return Answer::Failed {
                error: error.clone(),
                retry_after: None,
            }
        }
    };
    match a.status {
        200..=299 => Answer::Delivered,
        410 => Answer::Gone,
        status => Answer::Failed {
            error: format!("HTTP {status}: {}", a.body_start.trim()),
            retry_after: a.retry_after.filter(|_| matches!(status, 429 | 503)),
        },
    }
}

/// Judges a bus publish: delivered once JetStream acknowledged it (a duplicate
/// included: the stream holds it), else a failure to retry (there is no `410` and
/// no `Retry-After` on the bus).
pub fn judge_publish(published: &Result<Published, String>) -> Answer {
    match published {
        Ok(_) => Answer::Delivered,
        Err(error) => Answer::Failed {
            error: format!("NATS: {error}"),
            retry_after: None,
        },
    }
}

/// The target's failing streak, the failure being judged counted in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Streak {
    /// Failures in a row.
    pub failures: u32,
    /// When the streak started (Unix micros).
    pub since_micros: i64,
    /// Paused before this failure.
    pub paused: bool,
    /// Entries of other contacts failed too since the last success: the target
    /// fails everything, not just this entry's contacts.
    pub others_failed: bool,
}

/// The entry whose request failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    /// Failures counted against it before this one.
    pub failures: u32,
    /// When `WAGATE_FORWARD_MAX_AGE` gives up on it (Unix micros).
    pub give_up_at_micros: i64,
}

/// What becomes of the entry that failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EntryNext {
    /// Tried again, not before this wait; its contacts' later entries wait behind it.
    After(Duration),
    /// Failed `max_attempts` times: a dead letter; its contacts' next entries go on.
    DeadLetter,
}

/// What follows a failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    /// The target is (now, or still) paused: only probed.
    pub paused: bool,
    /// Wait before the target is tried again, with any entry.
    pub delay: Duration,
    /// The failure counts against the entry (towards `max_attempts`).
    pub counted: bool,
    pub entry: EntryNext,
}

/// After a failed request of `entry`.
///
/// While only entries of this entry's contacts fail (`!others_failed`, not paused)
/// the failure counts against it: it waits its own backoff, and other contacts'
/// entries go on at once (a poisoned entry holds up its own contacts only) until
/// it has failed `max_attempts` times. When entries of other contacts fail too, or
/// the target is paused, the target fails everything: nothing counts against the
/// entry, and the target backs off (paused after `pause_after` without a success:
/// only probed every `probe_every`). The entry then waits past the target's delay,
/// so the next try is another entry's. `Retry-After` holds the whole target back.
pub fn after_failure(
    streak: &Streak,
    entry: &Entry,
    retry_after: Option<Duration>,
    now_micros: i64,
    limits: &Limits,
    jitter: f64,
) -> Retry {
    let failing_for = now_micros - streak.since_micros;
    let paused = streak.paused || failing_for >= limits.pause_after.as_micros() as i64;
    let counted = !paused && !streak.others_failed;
    let failures = entry.failures + u32::from(counted);
    let delay = match (retry_after, paused, counted) {
        (Some(r), _, _) => r.min(MAX_RETRY_AFTER),
        (None, true, _) => limits.probe_every,
        (None, false, false) => limits.backoff.delay(streak.failures, jitter),
        (None, false, true) => Duration::ZERO,
    };
    // Wake in time to dead-letter it at the max age.
    let left = entry.give_up_at_micros.saturating_sub(now_micros).max(0) as u64;
    let left = Duration::from_micros(left);
    let entry = match counted && failures >= limits.max_attempts {
        true => EntryNext::DeadLetter,
        false => {
            EntryNext::After((delay + limits.backoff.delay(failures.max(1), jitter)).min(left))
        }
    };
    Retry {
        paused,
        delay: delay.min(left),
        counted,
        entry,
    }
}

/// An entry not delivered by its max age is dead-lettered.
pub fn past_max_age(now_micros: i64, give_up_at_micros: i64) -> bool {
    now_micros >= give_up_at_micros
}

/// Entries in flight at once: one while failing (until one is delivered).
pub fn window(failing: bool, concurrency: usize) -> usize {
    if failing {
        1
    } else {
        concurrency
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
