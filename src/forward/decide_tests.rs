//! Table tests of forwarding's decisions: one row per case.

use super::*;

const SEC: i64 = 1_000_000;
const NOW: i64 = 1_700_000_000 * SEC;

fn limits() -> Limits {
    Limits {
        backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        pause_after: Duration::from_secs(600),
        probe_every: Duration::from_secs(300),
        max_attempts: 3,
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
    let streak = |failures, failing_secs: i64, paused, others_failed| Streak {
        failures,
        since_micros: NOW - failing_secs * SEC,
        paused,
        others_failed,
    };
    let entry = |failures, give_up_at_micros| Entry {
        failures,
        give_up_at_micros,
    };
    let far = NOW + 86_400 * SEC;
    let (only, others) = (false, true);
    // Counted against the entry, the target waits `delay`, the entry `after`.
    let counted = |delay, after| Retry {
        paused: false,
        delay,
        counted: true,
        entry: EntryNext::After(after),
    };
    let target = |paused, delay, after| Retry {
        paused,
        delay,
        counted: false,
        entry: EntryNext::After(after),
    };
    let dead = Retry {
        paused: false,
        delay: secs(0),
        counted: true,
        entry: EntryNext::DeadLetter,
    };
    let ms = Duration::from_millis;
    // (case, streak, entry, Retry-After, jitter, what next)
    #[rustfmt::skip]
    let rows = [
        ("only its contact fails: others go", streak(1, 0, false, only),     entry(0, far),          None,             1.0, counted(secs(0), secs(1))),
        ("half jitter",                       streak(1, 0, false, only),     entry(0, far),          None,             0.5, counted(secs(0), ms(500))),
        ("its own count sets its backoff",    streak(7, 20, false, only),    entry(1, far),          None,             1.0, counted(secs(0), secs(2))),
        ("max attempts: dead letter",         streak(9, 30, false, only),    entry(2, far),          None,             1.0, dead),
        ("Retry-After holds the target",      streak(1, 0, false, only),     entry(0, far),          Some(secs(120)),  1.0, counted(secs(120), secs(121))),
        ("Retry-After capped to an hour",     streak(1, 0, false, only),     entry(0, far),          Some(secs(7200)), 1.0, counted(secs(3600), secs(3601))),
        ("others fail too: target backs off", streak(3, 5, false, others),   entry(0, far),          None,             1.0, target(false, secs(4), secs(5))),
        ("others fail: not counted",          streak(3, 5, false, others),   entry(2, far),          None,             1.0, target(false, secs(4), secs(6))),
        ("many failures: the cap",            streak(30, 60, false, others), entry(0, far),          None,             1.0, target(false, secs(60), secs(61))),
        ("no jitter drawn",                   streak(4, 60, false, others),  entry(0, far),          None,             0.0, target(false, secs(0), secs(0))),
        ("Retry-After wins",                  streak(2, 5, false, others),   entry(0, far),          Some(secs(120)),  1.0, target(false, secs(120), secs(121))),
        ("just short of pause_after",         streak(9, 599, false, others), entry(0, far),          None,             1.0, target(false, secs(60), secs(61))),
        ("pause_after reached: paused",       streak(9, 600, false, others), entry(0, far),          None,             1.0, target(true, secs(300), secs(301))),
        ("one entry for pause_after: paused", streak(9, 600, false, only),   entry(2, far),          None,             1.0, target(true, secs(300), secs(302))),
        ("paused: probe",                     streak(20, 900, true, others), entry(0, far),          None,             1.0, target(true, secs(300), secs(301))),
        ("paused, Retry-After wins",          streak(20, 900, true, others), entry(0, far),          Some(secs(30)),   1.0, target(true, secs(30), secs(31))),
        ("wake at the max age",               streak(3, 5, false, others),   entry(0, NOW + 2 * SEC),  None,           1.0, target(false, secs(2), secs(2))),
        ("own wait up to the max age",        streak(1, 0, false, only),     entry(1, NOW + SEC),    None,             1.0, counted(secs(0), secs(1))),
        ("Retry-After past the max age",      streak(1, 0, false, only),     entry(0, NOW + 10 * SEC), Some(secs(100)), 1.0, counted(secs(10), secs(10))),
        ("probe past the max age",            streak(20, 900, true, others), entry(0, NOW + SEC),    None,             1.0, target(true, secs(1), secs(1))),
        ("max age passed already",            streak(1, 0, false, others),   entry(0, NOW - SEC),    None,             1.0, target(false, secs(0), secs(0))),
    ];
    for (case, s, e, retry_after, jitter, want) in rows {
        let got = after_failure(&s, &e, retry_after, NOW, &limits(), jitter);
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

#[test]
fn bus_publishes() {
    let acked = |duplicate| {
        Ok(Published {
            sequence: 7,
            duplicate,
        })
    };
    // (case, publish outcome, meaning)
    #[rustfmt::skip]
    let rows = [
        ("stored", acked(false), Answer::Delivered),
        ("a duplicate: the stream has it", acked(true), Answer::Delivered),
        ("no PubAck", Err("no PubAck (timed out)".to_string()), failed("NATS: no PubAck (timed out)", None)),
        ("stream refused", Err("stream WAGATE exists".to_string()), failed("NATS: stream WAGATE exists", None)),
    ];
    for (case, published, want) in rows {
        assert_eq!(judge_publish(&published), want, "{case}");
    }
}
