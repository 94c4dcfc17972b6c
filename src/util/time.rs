//! Timestamps written for people and machines, and the one judgement of a time an
//! outside party claims. Nothing here panics or overflows, whatever the number:
//! RFC 3339 writes years 0000 to 9999 only, so a time before 1970 or from year
//! 10000 on is "out of range" and is written raw (its Unix seconds) instead.

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use serde::{Serialize, Serializer};

/// The last second RFC 3339 can write: `9999-12-31T23:59:59Z`.
pub const MAX_SECS: i64 = 253_402_300_799;

/// How far after its delivery was received an item's own time is still believed
/// (Meta's clock and ours differ a little; a day covers any honest difference).
pub const FUTURE_SKEW_SECS: i64 = 86_400;

const MICROS: i64 = 1_000_000;

/// Whether `secs` (Unix seconds) can be written as RFC 3339 here: 1970 to 9999.
pub fn representable(secs: i64) -> bool {
    (0..=MAX_SECS).contains(&secs)
}

/// Unix seconds to microseconds, saturating at the ends of `i64`.
pub fn secs_to_micros(secs: i64) -> i64 {
    secs.saturating_mul(MICROS)
}

/// Unix microseconds to whole seconds (rounded down, also before 1970).
pub fn micros_to_secs(micros: i64) -> i64 {
    micros.div_euclid(MICROS)
}

/// `2025-06-15T21:45:36Z`; `None` when out of range.
pub fn rfc3339_secs(secs: i64) -> Option<String> {
    representable(secs).then(|| {
        let t = UNIX_EPOCH + Duration::from_secs(secs as u64);
        humantime::format_rfc3339_seconds(t).to_string()
    })
}

/// `2025-06-15T21:45:36.123456Z`; `None` when out of range.
pub fn rfc3339_micros(micros: i64) -> Option<String> {
    // In range means micros >= 0 (seconds are rounded down).
    representable(micros_to_secs(micros)).then(|| {
        let t = UNIX_EPOCH + Duration::from_micros(micros as u64);
        humantime::format_rfc3339_micros(t).to_string()
    })
}

/// RFC 3339 with microseconds, or the raw Unix seconds when out of range: the
/// text form of [`JsonTime::micros`].
pub fn rfc3339(micros: i64) -> String {
    JsonTime::micros(micros).to_string()
}

/// A time as the API writes it: an RFC 3339 string, or, when out of range, its
/// raw Unix seconds as a JSON number (the number is the mark: a client that finds
/// a number where it expects a string has an out-of-range time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonTime {
    /// Unix microseconds, written with microseconds.
    Micros(i64),
    /// Unix seconds, written to the second.
    Secs(i64),
}

impl JsonTime {
    /// From Unix microseconds, written with microseconds.
    pub fn micros(micros: i64) -> JsonTime {
        JsonTime::Micros(micros)
    }

    /// From Unix seconds, written to the second.
    pub fn secs(secs: i64) -> JsonTime {
        JsonTime::Secs(secs)
    }

    /// The RFC 3339 text; `None` when out of range.
    pub fn text(&self) -> Option<String> {
        match *self {
            JsonTime::Micros(m) => rfc3339_micros(m),
            JsonTime::Secs(s) => rfc3339_secs(s),
        }
    }

    /// Unix seconds (rounded down).
    pub fn unix_secs(&self) -> i64 {
        match *self {
            JsonTime::Micros(m) => micros_to_secs(m),
            JsonTime::Secs(s) => s,
        }
    }
}

impl fmt::Display for JsonTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            Some(t) => f.write_str(&t),
            None => write!(f, "{}", self.unix_secs()),
        }
    }
}

impl Serialize for JsonTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.text() {
            Some(t) => s.serialize_str(&t),
            None => s.serialize_i64(self.unix_secs()),
        }
    }
}

/// An item's own time (a message's, a status's, an account event's), as claimed
/// in a delivery, judged against when that delivery was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemTime {
    /// Believable: after 1970, RFC 3339 can write it, and no more than
    /// [`FUTURE_SKEW_SECS`] after the delivery was received.
    Own(i64),
    /// None given (or `0`, which Meta never sends for a real time).
    Missing,
    /// Given but out of range: before 1970, from year 10000 on, or more than a
    /// day after receipt. Kept raw to show; never used to order, expire or
    /// deduplicate (the receive time is used instead).
    OutOfRange(i64),
}

impl ItemTime {
    pub fn judge(claimed: Option<i64>, received_secs: i64) -> ItemTime {
        let latest = received_secs.saturating_add(FUTURE_SKEW_SECS).min(MAX_SECS);
        match claimed {
            None | Some(0) => ItemTime::Missing,
            Some(t) if t > 0 && t <= latest => ItemTime::Own(t),
            Some(t) => ItemTime::OutOfRange(t),
        }
    }

    /// The believable time, if there is one.
    pub fn own(self) -> Option<i64> {
        match self {
            ItemTime::Own(t) => Some(t),
            _ => None,
        }
    }

    /// The raw time, when it was out of range.
    pub fn out_of_range(self) -> Option<i64> {
        match self {
            ItemTime::OutOfRange(t) => Some(t),
            _ => None,
        }
    }

    /// The time to order, expire and show it by: its own, else the receive time.
    pub fn or_received(self, received_secs: i64) -> i64 {
        self.own().unwrap_or(received_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[rustfmt::skip]
    fn formatting_at_the_boundaries() {
        let cases: &[(i64, Option<&str>, &str)] = &[
            // secs,               RFC 3339,                 as text
            (0,                    Some("1970-01-01T00:00:00Z"), "1970-01-01T00:00:00Z"),
            (-1,                   None,                     "-1"),
            (1_749_945_600,        Some("2025-06-15T00:00:00Z"), "2025-06-15T00:00:00Z"),
            (253_402_300_799,      Some("9999-12-31T23:59:59Z"), "9999-12-31T23:59:59Z"),
            (253_402_300_800,      None,                     "253402300800"),
            (i64::MAX,             None,                     "9223372036854775807"),
            (i64::MIN,             None,                     "-9223372036854775808"),
        ];
        for &(secs, rfc, text) in cases {
            assert_eq!(rfc3339_secs(secs).as_deref(), rfc, "{secs}");
            assert_eq!(JsonTime::secs(secs).to_string(), text, "{secs}");
            let json = serde_json::to_value(JsonTime::secs(secs)).unwrap();
            match rfc {
                Some(r) => assert_eq!(json, serde_json::json!(r)),
                None => assert_eq!(json, serde_json::json!(secs)),
            }
        }
    }

    #[test]
    #[rustfmt::skip]
    fn microseconds_at_the_boundaries() {
        let cases: &[(i64, Option<&str>, &str)] = &[
            (0,                    Some("1970-01-01T00:00:00.000000Z"), "1970-01-01T00:00:00.000000Z"),
            (-1,                   None,                     "-1"),
            (1_500_000,            Some("1970-01-01T00:00:01.500000Z"), "1970-01-01T00:00:01.500000Z"),
            (253_402_300_799_999_999, Some("9999-12-31T23:59:59.999999Z"), "9999-12-31T23:59:59.999999Z"),
            (253_402_300_800_000_000, None,                  "253402300800"),
            (i64::MAX,             None,                     "9223372036854"),
            (i64::MIN,             None,                     "-9223372036855"),
        ];
        for &(micros, rfc, text) in cases {
            assert_eq!(rfc3339_micros(micros).as_deref(), rfc, "{micros}");
            assert_eq!(rfc3339(micros), text, "{micros}");
        }
    }

    #[test]
    fn conversions_saturate() {
        assert_eq!(secs_to_micros(i64::MAX), i64::MAX);
        assert_eq!(secs_to_micros(i64::MIN), i64::MIN);
        assert_eq!(secs_to_micros(253_402_300_800), 253_402_300_800_000_000);
        assert_eq!(micros_to_secs(-1), -1);
        assert_eq!(micros_to_secs(i64::MIN), -9_223_372_036_855);
        assert_eq!(JsonTime::secs(i64::MAX).unix_secs(), i64::MAX);
        assert_eq!(JsonTime::micros(i64::MAX).unix_secs(), i64::MAX / MICROS);
    }

    #[test]
    #[rustfmt::skip]
    fn item_times_are_judged_against_the_receive_time() {
        const NOW: i64 = 1_764_670_000;
        use ItemTime::*;
        let cases = [
            (None,                          Missing),
            (Some(0),                       Missing),
            (Some(-1),                      OutOfRange(-1)),
            (Some(i64::MIN),                OutOfRange(i64::MIN)),
            (Some(1),                       Own(1)),
            (Some(NOW - 86_400 * 365),      Own(NOW - 86_400 * 365)),
            (Some(NOW),                     Own(NOW)),
            (Some(NOW + FUTURE_SKEW_SECS),  Own(NOW + FUTURE_SKEW_SECS)),
            (Some(NOW + FUTURE_SKEW_SECS + 1), OutOfRange(NOW + FUTURE_SKEW_SECS + 1)),
            (Some(MAX_SECS),                OutOfRange(MAX_SECS)),
            (Some(MAX_SECS + 1),            OutOfRange(MAX_SECS + 1)),
            (Some(i64::MAX),                OutOfRange(i64::MAX)),
        ];
        for (claimed, want) in cases {
            let got = ItemTime::judge(claimed, NOW);
            assert_eq!(got, want, "{claimed:?}");
            assert_eq!(got.or_received(NOW), got.own().unwrap_or(NOW));
        }
        // A receive time near the end of the range: still nothing RFC 3339 cannot write.
        assert_eq!(ItemTime::judge(Some(MAX_SECS + 1), MAX_SECS), OutOfRange(MAX_SECS + 1));
        assert_eq!(ItemTime::judge(Some(MAX_SECS), i64::MAX), Own(MAX_SECS));
    }
}
