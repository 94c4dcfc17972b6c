//! What a media job does next: pure functions of an attempt's outcome, the clock
//! and the limits (and the jitter drawn for the backoff), each tested as a table.
//! The job (`download.rs`) and the fetcher (`fetch.rs`) do the I/O.
//!
//! - A media id Meta no longer knows: `expired` once its 7 days are over, else
//!   `failed`. A permanent error or a file too large: `failed`. A digest mismatch:
//!   `quarantined`.
//! - Anything else is retried: after `Retry-After` when Meta sent one, at once (with
//!   a fresh URL) the first time a retry needs no backoff, else after the backoff.
//! - Below `WAGATE_MIN_FREE` free disk space downloads wait (no attempt used up).

use std::time::Duration;

use super::files::{FileError, StoredFile};
use super::record::MediaState;
use crate::upstream::media::FetchError;
use crate::util::backoff::Backoff;

/// A file stored by an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub file: StoredFile,
    pub mime_type: Option<String>,
    /// The malware scan's verdict, when scanning is on.
    pub scan: Option<String>,
    /// Why the scan could not run yet: the file is kept unscanned, never served.
    pub unscanned: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Stored(Stored),
    /// Give up in `state` (failed, quarantined, expired).
    Final {
        state: MediaState,
        reason: String,
        sha256: Option<String>,
    },
    Retry {
        reason: String,
        /// Wait (backoff, or `after`) before the next attempt; else retry at once
        /// with a fresh URL.
        backoff: bool,
        after: Option<Duration>,
    },
}

/// Give up in `state`.
pub fn give_up(state: MediaState, reason: impl Into<String>) -> Outcome {
    Outcome::Final {
        state,
        reason: reason.into(),
        sha256: None,
    }
}

fn retry_later(reason: String) -> Outcome {
    Outcome::Retry {
        reason,
        backoff: true,
        after: None,
    }
}

/// A lookup or download that failed, for a media id that expires at
/// `id_expires_at_micros`.
pub fn of_fetch_error(e: FetchError, now_micros: i64, id_expires_at_micros: i64) -> Outcome {
    match e {
        FetchError::Retry {
            reason,
            backoff,
            after,
        } => Outcome::Retry {
            reason,
            backoff,
            after,
        },
        FetchError::NoToken => retry_later(e.to_string()),
        FetchError::Gone(m) if id_expired(now_micros, id_expires_at_micros) => {
            give_up(MediaState::Expired, format!("media id expired: {m}"))
        }
        FetchError::Gone(m) => give_up(MediaState::Failed, format!("media id not found: {m}")),
        FetchError::TooLarge { .. } | FetchError::Permanent(_) => {
            give_up(MediaState::Failed, e.to_string())
        }
    }
}

/// A download the file store refused (`media_type` names the size cap).
pub fn of_store_error(e: FileError, media_type: &str) -> Outcome {
    match e {
        FileError::TooLarge { limit } => give_up(
            MediaState::Failed,
            format!("too large: more than {limit} bytes (declared size or the {media_type} cap); download cut"),
        ),
        FileError::DigestMismatch { expected, actual } => Outcome::Final {
            state: MediaState::Quarantined,
            reason: format!("sha256 mismatch: expected {expected}, got {actual}"),
            sha256: Some(actual),
        },
        FileError::Source(e) => retry_later(format!("download incomplete: {e}")),
        e => retry_later(format!("storing failed: {e}")),
    }
}

/// The wait before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    pub delay: Duration,
    /// The one retry at once is used up (until a retry with backoff).
    pub quick_retry_used: bool,
}

/// After attempt `attempt` ended in `Outcome::Retry { backoff, after, .. }`.
pub fn next_retry(
    backoff: bool,
    after: Option<Duration>,
    quick_retry_used: bool,
    attempt: u32,
    limits: &Backoff,
    jitter: f64,
) -> Retry {
    let delay = match (backoff, after) {
        (_, Some(a)) => a,
        (false, None) if !quick_retry_used => Duration::ZERO,
        _ => limits.delay(attempt, jitter),
    };
    Retry {
        delay,
        quick_retry_used: !backoff && delay.is_zero(),
    }
}

/// Meta keeps an inbound media id for 7 days.
pub fn id_expired(now_micros: i64, id_expires_at_micros: i64) -> bool {
    now_micros >= id_expires_at_micros
}

/// Whether downloads may run with `free` bytes free (unknown free space does not
/// stop them: the write itself would fail).
pub fn disk_ok(free: Option<u64>, min_free: u64) -> bool {
    free.is_none_or(|f| f >= min_free)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
