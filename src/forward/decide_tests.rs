//! Table tests of forwarding's decisions: one row per case.

use super::*;

const SEC: i64 = 1_000_000;
const NOW: i64 = 1_700_000_000 * SEC;

fn limits() -> Limits {
    Limits {
        backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        pause_after: Duration::from_secs(600),
        probe_every: Duration::from_secs(300),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn answer(status: u16, retry_after: Option<Duration>) -> Result<TargetAnswer, String> {
    Ok(TargetAnswer {
        status,
        retry_after,
        body_start: " nope \n".into(),
    })
}

fn failed(error: &str, retry_after: Option<Duration>) -> Answer {
    Answer::Failed {
        error: error.into(),
        retry_after,
    }
}

#[test]
fn answers() {
    // (case, answer, meaning)
    #[rustfmt::skip]
    let rows = [
        ("200",                          answer(200, None),          Answer::Delivered),
        ("204",                          answer(204, None),          Answer::Delivered),
        ("2xx ignores Retry-After",      answer(202, Some(secs(9))), Answer::Delivered),
        ("410 disables",                 answer(410, None),          Answer::Gone),
        ("429 with Retry-After",         answer(429, Some(secs(9))), failed("HTTP 429: nope", Some(secs(9)))),
        ("503 with Retry-After",         answer(503, Some(secs(9))), failed("HTTP 503: nope", Some(secs(9)))),
        ("429 without Retry-After",      answer(429, None),          failed("HTTP 429: nope", None)),
        ("500: Retry-After ignored",     answer(500, Some(secs(9))), failed("HTTP 500: nope", None)),
        ("404",                          answer(404, None),          failed("HTTP 404: nope", None)),
        ("301 (redirects not followed)", answer(301, None),          failed("HTTP 301: nope", None)),
        ("timeout",                      Err("timed out".into()),    failed("timed out", None)),
        ("refused",                      Err("cannot connect".into()), failed("cannot connect", None)),
    ];
    for (case, a, want) in rows {
        assert_eq!(judge(&a), want, "{case}");
    }
}

#[test]
fn after_a_failure() {
    let streak = |failures, failing_secs: i64, paused| Streak {
        failures,
        since_micros: NOW - failing_secs * SEC,
        paused,
    };
    let retry = |paused, delay| Retry { paused, delay };
    let far = NOW + 86_400 * SEC;
    // (case, streak, Retry-After, give up at, jitter, what next)
    #[rustfmt::skip]
    let rows = [
        ("first failure",                   streak(1, 0, false),    None,              far,            1.0, retry(false, secs(1))),
        ("first failure, half jitter",      streak(1, 0, false),    None,              far,            0.5, retry(false, Duration::from_millis(500))),
        ("third failure",                   streak(3, 5, false),    None,              far,            1.0, retry(false, secs(4))),
        ("many failures: the cap",          streak(30, 60, false),  None,              far,            1.0, retry(false, secs(60))),
        ("no jitter drawn",                 streak(4, 60, false),   None,              far,            0.0, retry(false, secs(0))),
        ("Retry-After wins",                streak(2, 5, false),    Some(secs(120)),   far,            1.0, retry(false, secs(120))),
        ("Retry-After capped to an hour",   streak(2, 5, false),    Some(secs(7200)),  far,            1.0, retry(false, secs(3600))),
        ("just short of pause_after",       streak(9, 599, false),  None,              far,            1.0, retry(false, secs(60))),
        ("pause_after reached: paused",     streak(9, 600, false),  None,              far,            1.0, retry(true, secs(300))),
        ("paused: probe",                   streak(20, 900, true),  None,              far,            1.0, retry(true, secs(300))),
        ("paused, Retry-After wins",        streak(20, 900, true),  Some(secs(30)),    far,            1.0, retry(true, secs(30))),
        ("wake at the max age",             streak(3, 5, false),    None,              NOW + 2 * SEC,  1.0, retry(false, secs(2))),
        ("Retry-After past the max age",    streak(1, 0, false),    Some(secs(100)),   NOW + 10 * SEC, 1.0, retry(false, secs(10))),
        ("probe past the max age",          streak(20, 900, true),  None,              NOW + SEC,      1.0, retry(true, secs(1))),
        ("max age passed already",          streak(1, 0, false),    None,              NOW - SEC,      1.0, retry(false, secs(0))),
    ];
    for (case, s, retry_after, give_up_at, jitter, want) in rows {
        let got = after_failure(&s, retry_after, NOW, give_up_at, &limits(), jitter);
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn max_age_and_window() {
    // (case, now - give up at, dead letter)
    let rows = [("before", -1, false), ("at", 0, true), ("after", 1, true)];
    for (case, d, want) in rows {
        assert_eq!(past_max_age(NOW + d, NOW), want, "{case}");
    }
    // (failing, concurrency, window)
    for (failing, concurrency, want) in [(false, 8, 8), (true, 8, 1), (false, 1, 1)] {
        assert_eq!(
            window(failing, concurrency),
            want,
            "{failing} {concurrency}"
        );
    }
}
