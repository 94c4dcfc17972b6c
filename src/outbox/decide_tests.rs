//! Table tests of the sender's decisions: one row per case.

use super::*;

const SEC: i64 = 1_000_000;
const CREATED: i64 = 1_700_000_000 * SEC;

fn limits() -> Limits {
    Limits {
        max_attempts: 5,
        max_age: Duration::from_secs(3600),
        backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(10)),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn answered(class: Class, retry_after: Option<Duration>) -> Outcome {
    Outcome::Answered { class, retry_after }
}

fn retry(state: State, retry_in: Duration) -> Decision {
    Decision {
        retry_in: Some(retry_in),
        ..Decision::settled(state)
    }
}

fn hold_all(d: Decision, hold: Duration) -> Decision {
    Decision {
        hold_all: Some(hold),
        ..d
    }
}

fn gave_up(why: GaveUp) -> Decision {
    Decision::given_up(why)
}

#[test]
fn after_an_attempt() {
    use Class::*;
    let not_sent = || Outcome::NoAnswer(CallError::NotSent("connection refused".into()));
    let unknown = || Outcome::NoAnswer(CallError::Unknown("timed out".into()));
    let no_token = || Outcome::NoAnswer(CallError::NoToken);
    let pause = || Decision {
        pause_all: true,
        ..Decision::settled(State::Queued)
    };
    let (sent, failed) = (
        Decision::settled(State::Sent),
        Decision::settled(State::Failed),
    );
    let queued = |d| retry(State::Queued, d);
    let past_age = |d| gave_up(GaveUp::PastMaxAge { next_in: d });
    let huge = Duration::from_secs(u64::MAX);
    // (case, outcome, attempt, age at its end, jitter, decision)
    #[rustfmt::skip]
    let rows = [
        ("2xx",                              answered(Accepted, None),             1, 10, 1.0, sent.clone()),
        ("2xx at the last attempt",          answered(Accepted, None),             5, 10, 1.0, sent),
        ("131047 permanent",                 answered(Permanent, None),            1, 10, 1.0, failed.clone()),
        ("permanent ignores Retry-After",    answered(Permanent, Some(ms(5000))),  1, 10, 1.0, failed),
        ("190 token",                        answered(Token, None),                1, 10, 1.0, pause()),
        ("no token configured",              no_token(),                           3, 10, 1.0, pause()),
        ("503: backoff of attempt 1",        answered(Retry, None),                1, 10, 1.0, queued(ms(250))),
        ("503: backoff of attempt 3",        answered(Retry, None),                3, 10, 1.0, queued(ms(1000))),
        ("503: half the jitter",             answered(Retry, None),                3, 10, 0.5, queued(ms(500))),
        ("503 with Retry-After",             answered(Retry, Some(ms(7000))),      1, 10, 1.0, queued(ms(7000))),
        ("429 / 130429: hold everyone",      answered(RetryAll, None),             2, 10, 1.0, hold_all(queued(ms(500)), ms(500))),
        ("429 with Retry-After",             answered(RetryAll, Some(ms(3000))),   1, 10, 1.0, hold_all(queued(ms(3000)), ms(3000))),
        ("131056 pair rate limit",           answered(PairRateLimit, None),        2, 10, 1.0, queued(ms(500))),
        ("not sent (no connection): retry",  not_sent(),                           1, 10, 1.0, queued(ms(250))),
        ("not sent, no jitter: at once",     not_sent(),                           4, 10, 0.0, queued(ms(0))),
        ("timeout after sending: unknown",   unknown(),                            1, 10, 1.0, Decision::settled(State::Unknown)),
        ("unknown at the last attempt",      unknown(),                            5, 10, 1.0, Decision::settled(State::Unknown)),
        ("last attempt: 503",                answered(Retry, None),                5, 10, 1.0, gave_up(GaveUp::Attempts(5))),
        ("past the last attempt",            answered(Retry, None),                9, 10, 1.0, gave_up(GaveUp::Attempts(9))),
        ("last attempt: not sent",           not_sent(),                           5, 10, 1.0, gave_up(GaveUp::Attempts(5))),
        ("last attempt: 429 holds everyone", answered(RetryAll, Some(ms(2000))),   5, 10, 1.0, hold_all(gave_up(GaveUp::Attempts(5)), ms(2000))),
        ("next attempt past the max age",    answered(Retry, Some(ms(1000))),      1, 3599, 1.0, past_age(ms(1000))),
        ("next attempt inside the max age",  answered(Retry, Some(ms(1000))),      1, 3598, 1.0, queued(ms(1000))),
        ("backoff past the max age",         answered(PairRateLimit, None),        3, 3599, 1.0, past_age(ms(1000))),
        ("429 past the max age holds all",   answered(RetryAll, Some(ms(1000))),   1, 3599, 1.0, hold_all(past_age(ms(1000)), ms(1000))),
        // Found by fuzzing: a Retry-After beyond i64 microseconds wrapped to "now".
        ("Retry-After: u64::MAX seconds",    answered(Retry, Some(huge)),          1, 10, 1.0, past_age(huge)),
        ("429, Retry-After: u64::MAX s",     answered(RetryAll, Some(huge)),       1, 10, 1.0, hold_all(past_age(huge), huge)),
    ];
    for (case, outcome, attempt, age_secs, jitter, want) in rows {
        let now = CREATED + age_secs * SEC;
        let got = next(&outcome, attempt, &limits(), CREATED, now, jitter);
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn before_an_attempt() {
    // (case, age in seconds, given up)
    let rows = [
        ("fresh", 0, None),
        ("clock went back", -5, None),
        ("just inside the max age", 3599, None),
        ("at the max age", 3600, Some(GaveUp::TooOld)),
        ("past the max age", 7200, Some(GaveUp::TooOld)),
    ];
    for (case, age, want) in rows {
        let got = before_attempt(CREATED, CREATED + age * SEC, &limits());
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn journaled_class() {
    let rows = [
        (answered(Class::Retry, None), Some(Class::Retry)),
        (Outcome::NoAnswer(CallError::NoToken), Some(Class::Token)),
        (Outcome::NoAnswer(CallError::NotSent("x".into())), None),
        (Outcome::NoAnswer(CallError::Unknown("x".into())), None),
    ];
    for (outcome, want) in rows {
        assert_eq!(outcome.class(), want, "{outcome:?}");
    }
}

#[test]
fn reasons() {
    let age = Duration::from_secs(3600);
    let rows = [
        (GaveUp::TooOld, "gave up: older than WAGATE_SEND_MAX_AGE (1h)"),
        (GaveUp::Attempts(10), "gave up after 10 attempts: HTTP 503"),
        (
            GaveUp::PastMaxAge {
                next_in: Duration::from_micros(2_500_700),
            },
            "gave up: the next attempt (in 2s 500ms) would be past WAGATE_SEND_MAX_AGE (1h): HTTP 503",
        ),
    ];
    for (why, want) in rows {
        assert_eq!(why.reason(age, "HTTP 503"), want);
    }
}
