//! Table tests of the media job's decisions: one row per case.

use std::io;

use super::*;

const SEC: i64 = 1_000_000;
const NOW: i64 = 1_700_000_000 * SEC;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn retry(reason: &str, backoff: bool, after: Option<Duration>) -> Outcome {
    Outcome::Retry {
        reason: reason.into(),
        backoff,
        after,
    }
}

fn fetch_retry(reason: &str, backoff: bool, after: Option<Duration>) -> FetchError {
    FetchError::Retry {
        reason: reason.into(),
        backoff,
        after,
    }
}

#[test]
fn fetch_errors() {
    use MediaState::{Expired, Failed};
    let later = NOW + SEC;
    let earlier = NOW - SEC;
    // (case, error, id expires at, outcome)
    #[rustfmt::skip]
    let rows = [
        ("5xx: backoff",                fetch_retry("HTTP 503", true, None),          later,   retry("HTTP 503", true, None)),
        ("429 with Retry-After",        fetch_retry("HTTP 429", true, Some(secs(7))), later,   retry("HTTP 429", true, Some(secs(7)))),
        ("timeout: fresh URL at once",  fetch_retry("timed out", false, None),        later,   retry("timed out", false, None)),
        ("no token: later",             FetchError::NoToken,                          later,   retry("WHATSAPP_TOKEN is not configured", true, None)),
        ("id gone before 7 days",       FetchError::Gone("HTTP 400".into()),          later,   give_up(Failed, "media id not found: HTTP 400")),
        ("id gone after 7 days",        FetchError::Gone("HTTP 400".into()),          earlier, give_up(Expired, "media id expired: HTTP 400")),
        ("id gone at its expiry",       FetchError::Gone("HTTP 400".into()),          NOW,     give_up(Expired, "media id expired: HTTP 400")),
        ("permanent",                   FetchError::Permanent("refused host".into()), later,   give_up(Failed, "refused host")),
        ("too large (Content-Length)",  FetchError::TooLarge { limit: 5, length: 9 }, later,   give_up(Failed, "larger than the limit of 5 bytes (Content-Length 9)")),
    ];
    for (case, e, expires, want) in rows {
        assert_eq!(of_fetch_error(e, NOW, expires), want, "{case}");
    }
}

#[test]
fn store_errors() {
    let quarantined = Outcome::Final {
        state: MediaState::Quarantined,
        reason: "sha256 mismatch: expected aa, got bb".into(),
        sha256: Some("bb".into()),
    };
    // (case, error, outcome)
    #[rustfmt::skip]
    let rows = [
        ("too large",       FileError::TooLarge { limit: 5 },                                          give_up(MediaState::Failed, "too large: more than 5 bytes (declared size or the image cap); download cut")),
        ("digest mismatch", FileError::DigestMismatch { expected: "aa".into(), actual: "bb".into() }, quarantined),
        ("cut download",    FileError::Source(io::Error::other("cut")),                                retry("download incomplete: cut", true, None)),
        ("disk error",      FileError::NotFound("x".into()),                                           retry("storing failed: no media file named x", true, None)),
    ];
    for (case, e, want) in rows {
        assert_eq!(of_store_error(e, "image"), want, "{case}");
    }
}

#[test]
fn retries() {
    let limits = Backoff::new(secs(1), secs(600));
    let r = |delay, quick_retry_used| Retry {
        delay,
        quick_retry_used,
    };
    // (case, backoff, Retry-After, quick retry used, attempt, jitter, what next)
    #[rustfmt::skip]
    let rows = [
        ("first retry without backoff: at once",  false, None,           false, 1,  1.0, r(secs(0), true)),
        ("second one backs off",                  false, None,           true,  2,  1.0, r(secs(2), false)),
        ("second one, zero jitter",               false, None,           true,  2,  0.0, r(secs(0), true)),
        ("backoff of attempt 1",                  true,  None,           false, 1,  1.0, r(secs(1), false)),
        ("backoff of attempt 4",                  true,  None,           true,  4,  1.0, r(secs(8), false)),
        ("backoff at the cap",                    true,  None,           false, 20, 1.0, r(secs(600), false)),
        ("half jitter",                           true,  None,           false, 4,  0.5, r(secs(4), false)),
        ("Retry-After wins",                      true,  Some(secs(30)), false, 1,  1.0, r(secs(30), false)),
        ("Retry-After beats the quick retry",     false, Some(secs(30)), false, 1,  1.0, r(secs(30), false)),
        ("Retry-After of zero without backoff",   false, Some(secs(0)),  true,  3,  1.0, r(secs(0), true)),
    ];
    for (case, backoff, after, used, attempt, jitter, want) in rows {
        let got = next_retry(backoff, after, used, attempt, &limits, jitter);
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn expiry_and_disk() {
    // (case, now - expiry, expired)
    for (case, d, want) in [("before", -1, false), ("at", 0, true), ("after", 1, true)] {
        assert_eq!(id_expired(NOW + d, NOW), want, "{case}");
    }
    // (case, free bytes, minimum, downloads run)
    #[rustfmt::skip]
    let rows = [
        ("plenty",            Some(10_000), 1000, true),
        ("exactly the floor", Some(1000),   1000, true),
        ("low disk: pause",   Some(999),    1000, false),
        ("unknown: run",      None,         1000, true),
        ("no floor",          Some(0),      0,    true),
    ];
    for (case, free, min_free, want) in rows {
        assert_eq!(disk_ok(free, min_free), want, "{case}");
    }
}
