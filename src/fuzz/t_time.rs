//! Timestamps from outside (Meta's, query and form values) and their display.

use std::time::{Duration, UNIX_EPOCH};

use super::input::Input;
use crate::config::{format_duration, parse_duration, parse_size};
use crate::util::time::rfc3339;
use crate::web::dashboard::page;

/// The last second of year 9999: what RFC 3339 can write.
const MAX_RFC3339_SECS: i64 = 253_402_300_799;

/// `micros (i64), text`: every display of a time, and every reading of one.
pub fn timestamps(data: &[u8]) {
    let mut inp = Input::new(data);
    let micros = inp.i64();
    let text = String::from_utf8_lossy(inp.rest()).into_owned();
    let shown = rfc3339(micros);
    let secs = micros.div_euclid(1_000_000);
    if (0..=MAX_RFC3339_SECS).contains(&secs) {
        let back = humantime::parse_rfc3339(&shown).expect("rfc3339 reads back");
        let want = UNIX_EPOCH + Duration::from_micros(micros as u64);
        assert_eq!(back, want, "{shown}");
    }
    let _ = (
        page::time(micros),
        page::time_secs(micros),
        page::duration(micros),
    );
    for end in [false, true] {
        if let Some(t) = page::parse_time(&text, end) {
            let _ = (page::time_secs(t), rfc3339(t.saturating_mul(1_000_000)));
        }
    }
    if let Some(day) = page::parse_day(&text) {
        assert_eq!(day % 86_400, 0, "a day starts at midnight");
        let _ = page::time_secs(day);
    }
    if let Ok(d) = parse_duration(&text) {
        let printed = format_duration(d);
        assert_eq!(parse_duration(&printed), Ok(d), "{printed}");
    }
    let _ = parse_size(&text);
    if let Ok(t) = httpdate::parse_http_date(&text) {
        let _ = httpdate::fmt_http_date(t);
    }
}

pub fn seeds() -> Vec<Vec<u8>> {
    let case = |micros: i64, text: &str| [&micros.to_le_bytes()[..], text.as_bytes()].concat();
    vec![
        case(1_700_000_000_123_456, "2025-06-15"),
        case(0, "2025-06-15 21:45"),
        case(-1, "2025-06-15T21:45:36"),
        case(253_402_300_799_999_999, "1760659300"),
        case(i64::MAX, "1h30m"),
        case(i64::MIN, "4MiB"),
        case(86_400_000_000, "Sun, 06 Nov 1994 08:49:37 GMT"),
    ]
}

pub const DICT: &[&[u8]] = &[
    b"9999-12-31",
    b"10000-01-01",
    b"1970-01-01",
    b"-",
    b":",
    b"T",
    b" ",
    b"23:59:59",
    b"24:00",
    b"253402300800",
    b"9223372036854775807",
    b"d",
    b"h",
    b"ms",
    b"ns",
    b"GiB",
    b"KiB",
    b"Z",
];
