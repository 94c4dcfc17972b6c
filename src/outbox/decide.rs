//! What the sender does after an attempt: a pure function of the attempt's outcome,
//! its number, the limits and the clock (and the jitter drawn for the backoff), so
//! every case is a row of a table test. The sender (`sender.rs`) does the I/O.
//!
//! - Accepted (2xx): `sent`. Any other error Meta calls permanent: `failed`.
//! - A token error (190, or no token configured): stays `queued`, all sending pauses.
//! - No connection was made (`CallError::NotSent`): retried, like a transient error.
//! - Timed out or broke after the request may have reached Meta
//!   (`CallError::Unknown`): `unknown`, never resent (Meta has no idempotency key).
//! - Retryable (transient, throughput, pair rate limit): after `Retry-After` or the
//!   backoff; `failed` at the last attempt or when the next one would be past the max
//!   age. A throughput limit (`Class::RetryAll`) holds every recipient, even when
//!   this message gives up.

use std::time::Duration;

use super::record::State;
use crate::config::SendConfig;
use crate::upstream::{CallError, Class};
use crate::util::backoff::Backoff;

/// The limits an outcome is judged against (`WAGATE_SEND_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub max_attempts: u32,
    pub max_age: Duration,
    pub backoff: Backoff,
}

impl Limits {
    pub fn of(c: &SendConfig) -> Limits {
        Limits {
            max_attempts: c.max_attempts,
            max_age: c.max_age,
            backoff: Backoff::new(c.backoff_base, c.backoff_cap),
        }
    }
}

/// How one attempt ended, as far as what next is concerned.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Meta answered: its answer's class and `Retry-After`.
    Answered {
        class: Class,
        retry_after: Option<Duration>,
    },
    /// No HTTP answer.
    NoAnswer(CallError),
}

impl Outcome {
    /// The class journaled with the attempt (none when nothing was answered,
    /// except a missing token, which is handled as a token error).
    pub fn class(&self) -> Option<Class> {
        match self {
            Outcome::Answered { class, .. } => Some(*class),
            Outcome::NoAnswer(CallError::NoToken) => Some(Class::Token),
            Outcome::NoAnswer(CallError::NotSent(_) | CallError::Unknown(_)) => None,
        }
    }
}

/// Why a message was given up while it could still have been retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaveUp {
    /// Older than the max age before an attempt started.
    TooOld,
    /// Its last allowed attempt failed.
    Attempts(u32),
    /// The next attempt, this long from now, would be past the max age.
    PastMaxAge { next_in: Duration },
    /// The recipient was erased (`POST /api/contacts/{id}/erase`) before it was sent.
    Erased,
}

impl GaveUp {
    /// The reason recorded for people, with the attempt's own error.
    pub fn reason(&self, max_age: Duration, error: &str) -> String {
        let age = humantime::format_duration(max_age);
        match self {
            GaveUp::TooOld => format!("gave up: older than WAGATE_SEND_MAX_AGE ({age})"),
            GaveUp::Attempts(n) => format!("gave up after {n} attempts: {error}"),
            GaveUp::Erased => "not sent: its recipient's data was erased".into(),
            GaveUp::PastMaxAge { next_in } => {
                let next_in = Duration::from_millis(next_in.as_millis() as u64);
                format!(
                    "gave up: the next attempt (in {}) would be past WAGATE_SEND_MAX_AGE ({age}): {error}",
                    humantime::format_duration(next_in),
                )
            }
        }
    }
}

/// What the sender does next.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub state: State,
    /// Wait before this message's next attempt (its recipient waits with it);
    /// journaled as `retry_in_ms`.
    pub retry_in: Option<Duration>,
    /// Hold every recipient this long (a throughput limit).
    pub hold_all: Option<Duration>,
    /// Pause all sending until the token is fixed.
    pub pause_all: bool,
    pub gave_up: Option<GaveUp>,
}

impl Decision {
    fn settled(state: State) -> Decision {
        Decision {
            state,
            retry_in: None,
            hold_all: None,
            pause_all: false,
            gave_up: None,
        }
    }

    /// Given up without an attempt.
    pub fn given_up(why: GaveUp) -> Decision {
        Decision {
            gave_up: Some(why),
            ..Decision::settled(State::Failed)
        }
    }

    /// Not attempted (its start could not be journaled): try again after `wait`.
    pub fn not_attempted(wait: Duration) -> Decision {
        Decision {
            retry_in: Some(wait),
            ..Decision::settled(State::Queued)
        }
    }
}

/// Before an attempt: a message older than the max age is given up.
pub fn before_attempt(created_at_micros: i64, now_micros: i64, limits: &Limits) -> Option<GaveUp> {
    let age = Duration::from_micros(now_micros.saturating_sub(created_at_micros).max(0) as u64);
    (age >= limits.max_age).then_some(GaveUp::TooOld)
}

/// After attempt number `attempt` (counted from 1) of a message created at
/// `created_at_micros`. `jitter` (in `[0, 1]`) is the backoff's random fraction.
pub fn next(
    outcome: &Outcome,
    attempt: u32,
    limits: &Limits,
    created_at_micros: i64,
    now_micros: i64,
    jitter: f64,
) -> Decision {
    let retry_after = match outcome {
        Outcome::Answered {
            class: Class::Accepted,
            ..
        } => return Decision::settled(State::Sent),
        Outcome::Answered {
            class: Class::Permanent,
            ..
        } => return Decision::settled(State::Failed),
        Outcome::Answered {
            class: Class::Token,
            ..
        }
        | Outcome::NoAnswer(CallError::NoToken) => {
            return Decision {
                pause_all: true,
                ..Decision::settled(State::Queued)
            }
        }
        Outcome::NoAnswer(CallError::Unknown(_)) => return Decision::settled(State::Unknown),
        Outcome::Answered {
            class: Class::Retry | Class::RetryAll | Class::PairRateLimit,
            retry_after,
        } => *retry_after,
        Outcome::NoAnswer(CallError::NotSent(_)) => None,
    };
    let wait = retry_after.unwrap_or_else(|| limits.backoff.delay(attempt, jitter));
    let hold_all = (outcome.class() == Some(Class::RetryAll)).then_some(wait);
    // Saturating: a `Retry-After` of any size is past the max age, never a wrap.
    let due = now_micros.saturating_add(micros(wait));
    let gave_up = if attempt >= limits.max_attempts {
        Some(GaveUp::Attempts(attempt))
    } else if due.saturating_sub(created_at_micros) >= micros(limits.max_age) {
        Some(GaveUp::PastMaxAge { next_in: wait })
    } else {
        None
    };
    Decision {
        state: if gave_up.is_some() {
            State::Failed
        } else {
            State::Queued
        },
        retry_in: gave_up.is_none().then_some(wait),
        hold_all,
        pause_all: false,
        gave_up,
    }
}

/// `d` in microseconds, at most `i64::MAX`.
pub fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
